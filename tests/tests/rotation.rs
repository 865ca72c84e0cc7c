//! Guarantees 1 and 2 through log rotation: numbered lines are written at a
//! steady rate while the file is rotated under the running agent, and in
//! the end every line is searchable exactly once.
//!
//! The writer holds its file open like an application does, so after a
//! rename it goes on writing to the rotated file for a while before it
//! reopens its path; those lines must be read from the rotated file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loghound_tests::writer::NumberedWriter;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, temp_dir, token, wait_for_count, Agent, Server,
};

/// Lines per writer tick and the tick: about 2,000 lines a second.
const LINES_PER_TICK: u64 = 40;
const TICK: Duration = Duration::from_millis(20);
const ROTATIONS: usize = 3;
/// Between rotations, and between a rename and the writer reopening.
const BETWEEN_ROTATIONS: Duration = Duration::from_millis(700);
const REOPEN_DELAY: Duration = Duration::from_millis(150);
const TOTAL: u64 = 8_000;

struct Setup {
    _tmp: tempfile::TempDir,
    logs: PathBuf,
    server: Server,
    read_token: String,
    agent: Agent,
}

fn setup(glob_in_logs: &str) -> Setup {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(logs.join("old")).unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let agent = Agent::start_with(
        &server.url(),
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/{glob_in_logs}", logs.display())],
        &["--rescan-interval-ms", "300", "--batch-max-age-ms", "200"],
    );
    Setup {
        _tmp: tmp,
        logs,
        server,
        read_token,
        agent,
    }
}

/// Waits for the writer to finish, then checks that every line arrived once.
fn finish(mut setup: Setup, writer: NumberedWriter, tag: &str) {
    let total = writer.join();
    assert_eq!(total, TOTAL);
    let url = setup.server.url();
    wait_for_count(&url, &setup.read_token, tag, total, Duration::from_secs(60));
    assert_count_stays(&url, &setup.read_token, tag, total, Duration::from_secs(2));
    assert_each_number_once(&url, &setup.read_token, tag, total);
    setup.agent.assert_running();
}

/// logrotate without copytruncate: `app.log.N` → `app.log.N+1`, `app.log`
/// → `rotated(1)`, a new `app.log`, and the writer reopens a bit later.
fn rename_rotations(writer: &NumberedWriter, live: &Path, rotated: impl Fn(usize) -> PathBuf) {
    for _ in 0..ROTATIONS {
        std::thread::sleep(BETWEEN_ROTATIONS);
        for n in (1..ROTATIONS).rev() {
            if rotated(n).exists() {
                std::fs::rename(rotated(n), rotated(n + 1)).unwrap();
            }
        }
        std::fs::rename(live, rotated(1)).unwrap();
        std::fs::File::create(live).unwrap();
        std::thread::sleep(REOPEN_DELAY);
        writer.paused().reopen();
    }
}

/// The rotated names match the glob (`app.log*`): the agent follows the
/// renamed file to its end and does not ship it a second time.
#[test]
fn rename_and_create_with_rotated_names_in_the_glob() {
    const TAG: &str = "renamein";
    let setup = setup("app.log*");
    let live = setup.logs.join("app.log");
    let writer = NumberedWriter::start(&live, TAG, 0, TOTAL, LINES_PER_TICK, TICK);
    let logs = setup.logs.clone();
    rename_rotations(&writer, &live, |n| logs.join(format!("app.log.{n}")));
    finish(setup, writer, TAG);
}

/// The rotated name is outside the glob (`old/app.log.N` for `*.log`): the
/// agent still drains the file it holds open before letting it go.
#[test]
fn rename_and_create_with_rotated_names_outside_the_glob() {
    const TAG: &str = "renameout";
    let setup = setup("*.log");
    let live = setup.logs.join("app.log");
    let writer = NumberedWriter::start(&live, TAG, 0, TOTAL, LINES_PER_TICK, TICK);
    let old = setup.logs.join("old");
    rename_rotations(&writer, &live, |n| old.join(format!("app.log.{n}")));
    finish(setup, writer, TAG);
}

/// `: > app.log` while the writer goes on: each truncation starts a new
/// generation whose lines are all shipped (the lines before it were
/// shipped already: a truncation destroys what was not read).
#[test]
fn truncation_in_place_starts_a_new_generation() {
    const TAG: &str = "truncinplace";
    let setup = setup("*.log");
    let live = setup.logs.join("app.log");
    let writer = NumberedWriter::start(&live, TAG, 0, TOTAL, LINES_PER_TICK, TICK);
    let url = setup.server.url();
    for _ in 0..ROTATIONS {
        std::thread::sleep(BETWEEN_ROTATIONS);
        let pause = writer.paused();
        wait_for_count(
            &url,
            &setup.read_token,
            TAG,
            pause.next(),
            Duration::from_secs(30),
        );
        std::fs::File::create(&live).unwrap();
    }
    finish(setup, writer, TAG);
}
