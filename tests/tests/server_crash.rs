//! Guarantee 3, "ack means durable", and guarantee 2 across server crashes:
//! a server killed with SIGKILL right after acks still has every acked
//! event after a restart on the same data directory, and re-sent events are
//! dropped; and under full ingest load, killed again and again, it loses
//! no acknowledged event and stores none twice.

use std::time::Duration;

use loghound_shared::api::IngestResponse;
use loghound_tests::data::{append, events, numbered_line, numbered_lines, parse_numbered};
use loghound_tests::http::{hit_message, ingest};
use loghound_tests::load::{assert_acked_once, total_acked, Load, LoadOptions};
use loghound_tests::{
    assert_count_stays, search_all, temp_dir, token, wait_for_count, wait_until_count_at_least,
    Agent, Server,
};

const THREADS: u64 = 4;
const BATCHES_PER_THREAD: u64 = 5;
const EVENTS_PER_BATCH: u64 = 200;

/// The batches one thread of `acked_batches_survive_kill9` sends.
fn thread_batches(thread: u64) -> Vec<Vec<loghound_shared::Event>> {
    let file_id = format!("direct-{thread}");
    let mut offset = 0;
    (0..BATCHES_PER_THREAD)
        .map(|batch| {
            let first = (thread * BATCHES_PER_THREAD + batch) * EVENTS_PER_BATCH;
            let messages: Vec<String> = (first..first + EVENTS_PER_BATCH)
                .map(|n| numbered_line("srvdirect", n))
                .collect();
            let batch = events(&file_id, offset, &messages);
            offset = batch.last().unwrap().end_offset.0;
            batch
        })
        .collect()
}

#[test]
fn acked_batches_survive_kill9() {
    let tmp = temp_dir();
    let mut server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    // Concurrent senders (group commit), then SIGKILL the moment the last
    // ack is in: nothing may depend on a later flush.
    let senders: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (url, ingest_token) = (url.clone(), ingest_token.clone());
            std::thread::spawn(move || {
                for batch in thread_batches(thread) {
                    let answer = ingest(&url, &ingest_token, "e2e-direct", &batch);
                    assert_eq!(
                        answer,
                        IngestResponse {
                            accepted: EVENTS_PER_BATCH,
                            duplicates: 0
                        }
                    );
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("sender thread");
    }
    server.kill9();
    server.restart();

    let total = THREADS * BATCHES_PER_THREAD * EVENTS_PER_BATCH;
    wait_for_count(
        &url,
        &read_token,
        "srvdirect",
        total,
        Duration::from_secs(30),
    );
    assert_count_stays(
        &url,
        &read_token,
        "srvdirect",
        total,
        Duration::from_secs(2),
    );

    // What the server knew before the crash, it still knows: a re-sent
    // batch is all duplicates.
    let again = ingest(&url, &ingest_token, "e2e-direct", &thread_batches(2)[3]);
    assert_eq!(
        again,
        IngestResponse {
            accepted: 0,
            duplicates: EVENTS_PER_BATCH
        },
        "re-sending an acked batch after a server crash"
    );
    // And the same lines from another agent are other lines.
    let other = ingest(&url, &ingest_token, "e2e-other", &thread_batches(2)[3]);
    assert_eq!(
        other.accepted, EVENTS_PER_BATCH,
        "another agent's events are not duplicates"
    );
}

#[test]
fn agent_ships_through_server_kill9() {
    const TAG: &str = "srvcrash";
    const FIRST: u64 = 60_000;
    const TOTAL: u64 = 80_000;
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log_file = logs.join("app.log");
    let mut server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);

    append(&log_file, &numbered_lines(TAG, 0..FIRST));
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[format!("{}/*.log", logs.display())],
        &["--batch-max-bytes", "65536"],
    );

    // Kill the server while the agent is mid-file: some batches acked,
    // others in flight.
    let at_kill = wait_until_count_at_least(&url, &read_token, TAG, 1, Duration::from_secs(30));
    server.kill9();
    eprintln!("server killed with {at_kill} of {FIRST} lines searchable");
    append(&log_file, &numbered_lines(TAG, FIRST..FIRST + 10_000));
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    append(&log_file, &numbered_lines(TAG, FIRST + 10_000..TOTAL));

    wait_for_count(&url, &read_token, TAG, TOTAL, Duration::from_secs(90));
    assert_count_stays(&url, &read_token, TAG, TOTAL, Duration::from_secs(3));
    agent.assert_running();
    server.assert_running();

    let mut seen = vec![0u32; TOTAL as usize];
    for hit in search_all(&url, &read_token, TAG) {
        let number = parse_numbered(TAG, hit_message(&hit)).expect("a numbered line");
        seen[number as usize] += 1;
    }
    let wrong: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, copies)| **copies != 1)
        .take(10)
        .map(|(number, copies)| format!("{:?}: {copies} copies", numbered_line(TAG, number as u64)))
        .collect();
    assert!(
        wrong.is_empty(),
        "lines not present exactly once:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn sigterm_stops_the_server_and_data_survives() {
    let tmp = temp_dir();
    let mut server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let messages: Vec<String> = (0..50).map(|n| numbered_line("srvterm", n)).collect();
    let answer = ingest(&url, &ingest_token, "e2e-term", &events("f1", 0, &messages));
    assert_eq!(answer.accepted, 50);

    server.terminate(Duration::from_secs(15));
    server.restart();
    wait_for_count(&url, &read_token, "srvterm", 50, Duration::from_secs(30));
    assert_count_stays(&url, &read_token, "srvterm", 50, Duration::from_secs(2));
}

/// A small xorshift generator: the kill moments vary from run to run, and
/// the seed is printed so a failing run can be read back.
struct Moments(u64);

impl Moments {
    fn from_clock() -> Moments {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Moments(nanos | 1)
    }

    fn below_ms(&mut self, max_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(self.0 % max_ms)
    }
}

#[test]
fn acked_events_survive_repeated_kill9_under_full_load() {
    const TAG: &str = "srvkills";
    const KILLS: usize = 6;
    let tmp = temp_dir();
    let mut server = Server::start(&tmp.path().join("server"));
    let url = server.url();
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let mut moments = Moments::from_clock();
    eprintln!("kill moments seed: {}", moments.0);

    // Clients at full speed: each batch is retried until acked, so every
    // kill catches requests in flight, half-written WAL records and
    // uncommitted index work.
    let load = Load::start(&LoadOptions {
        url: url.clone(),
        token: ingest_token,
        tag: TAG.into(),
        clients: 4,
        events_per_batch: 250,
        pad_bytes: 40,
        batches_per_client: None,
        max_retry_pause: Duration::from_secs(1),
    });
    for kill in 1..=KILLS {
        std::thread::sleep(moments.below_ms(2_000));
        let acked = load.acked_events();
        server.kill9();
        eprintln!("kill {kill}: SIGKILL with {acked} events acked");
        std::thread::sleep(moments.below_ms(300));
        server.restart();
    }
    let after_last = load.acked_events();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while load.acked_events() < after_last + 2_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "ingest did not resume after the last restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let reports = load.stop();
    let transport_errors: u64 = reports.iter().map(|r| r.transport_errors).sum();
    assert!(
        transport_errors > 0,
        "the kills interrupted no request: the test did not test anything"
    );

    let acked = total_acked(&reports);
    wait_until_count_at_least(&url, &read_token, TAG, acked, Duration::from_secs(120));
    // A given-up batch that was logged becomes searchable within a commit.
    std::thread::sleep(Duration::from_secs(3));
    let unacked_stored = assert_acked_once(&url, &read_token, TAG, &reports);
    eprintln!(
        "{acked} acked events searchable once after {KILLS} kills; \
         {unacked_stored} given-up events stored; {transport_errors} requests cut off"
    );
    server.assert_running();
}
