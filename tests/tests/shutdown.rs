//! SIGTERM: the agent stops reading, sends what it has read, waits for the
//! acks (bounded), writes its checkpoints and exits 0; restarted, it goes
//! on exactly where the acks left off.

use std::time::Duration;

use loghound_tests::data::numbered_line;
use loghound_tests::writer::NumberedWriter;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, temp_dir, token, wait_for_count,
    wait_until_count_at_least, Agent, Server,
};

const TAG: &str = "sigterm";
const TOTAL: u64 = 20_000;

/// The acked offset of the one file in the agent's checkpoints.
fn checkpointed_offset(state_dir: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(state_dir.join("checkpoints.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = json["files"].as_array().expect("files array");
    assert_eq!(files.len(), 1, "one checkpointed file: {text}");
    files[0]["offset"].as_u64().expect("numeric offset")
}

/// How many whole numbered lines fill `offset` bytes from the start.
fn lines_in(offset: u64) -> u64 {
    let (mut bytes, mut number) = (0, 0);
    while bytes < offset {
        bytes += numbered_line(TAG, number).len() as u64 + 1;
        number += 1;
    }
    assert_eq!(bytes, offset, "checkpoint {offset} is not at a line end");
    number
}

#[test]
fn sigterm_flushes_checkpoints_and_exits_zero() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let state_dir = tmp.path().join("agent");
    // Old batches linger before they are sent: SIGTERM finds lines read but
    // not yet sent, and must send them.
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &state_dir,
        &[format!("{}/*.log", logs.display())],
        &["--batch-max-age-ms", "1500"],
    );
    let writer = NumberedWriter::start(
        &logs.join("app.log"),
        TAG,
        0,
        TOTAL,
        40,
        Duration::from_millis(20),
    );

    let mut shipped = 0;
    for _ in 0..2 {
        // Terminate a running agent that is shipping, not one starting up.
        wait_until_count_at_least(&url, &read_token, TAG, shipped + 1, Duration::from_secs(30));
        let status = agent.terminate(Duration::from_secs(30));
        assert!(
            status.success(),
            "agent exit status after SIGTERM: {status}"
        );
        // Everything the agent shipped is acked and checkpointed, and the
        // server holds exactly the lines below the checkpoint.
        let acked_lines = lines_in(checkpointed_offset(&state_dir));
        assert!(acked_lines > 0);
        wait_for_count(&url, &read_token, TAG, acked_lines, Duration::from_secs(30));
        assert_count_stays(&url, &read_token, TAG, acked_lines, Duration::from_secs(1));
        shipped = acked_lines;
        agent.start_again();
    }

    let total = writer.join();
    wait_for_count(&url, &read_token, TAG, total, Duration::from_secs(60));
    assert_count_stays(&url, &read_token, TAG, total, Duration::from_secs(2));
    assert_each_number_once(&url, &read_token, TAG, total);
    agent.assert_running();
}
