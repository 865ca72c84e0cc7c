//! Guarantees 1 and 2 through copytruncate rotation with the rotated copies
//! inside the glob (`app.log*`, so that lines written just before a
//! rotation are not missed): a busy writer (about 10,000 lines a second),
//! logrotate-style rotations every 0.5 to 1 s (`app.log.N` → `app.log.N+1`,
//! `cp app.log app.log.1`, truncate `app.log`), and the copies must never
//! be shipped a second time: each one continues the stream it was copied
//! from, read only past what was read of that stream already.
//!
//! A line written between the copy and the truncation exists only in
//! `app.log` until the truncation destroys it, whatever the agent does.
//! The exact tests therefore either hold the writer still from the copy to
//! the truncation, or let it write and wait, before truncating, until the
//! server has every line written so far (so the copy is shorter than what
//! was read of the stream). The free-running test lets the writer go on
//! through both and asserts what can be asserted: no line twice, every line
//! written outside the copy-to-truncation windows once.
//!
//! Only counts are asserted, never times: the waits are bounded polls.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::time::Duration;

use loghound_tests::wait::number_counts;
use loghound_tests::writer::NumberedWriter;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, temp_dir, token, wait_for_count, Agent, Server,
};

/// Lines per writer tick and the tick: about 10,000 lines a second.
const LINES_PER_TICK: u64 = 220;
const TICK: Duration = Duration::from_millis(20);
/// Time between rotations, in turn.
const BETWEEN_ROTATIONS: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_millis(800),
    Duration::from_millis(650),
    Duration::from_millis(1_000),
];
/// Rotated copies kept; the oldest is deleted, as `rotate N` does. Large
/// enough that no copy is deleted before the agent could read it, even
/// after a crash.
const KEEP: usize = 12;
const SETTLE: Duration = Duration::from_secs(90);

struct Rig {
    logs: PathBuf,
    live: PathBuf,
    server: Server,
    read_token: String,
    agent: Agent,
    /// Last, so that it is removed after the processes, whose logs are
    /// printed from it when a test fails.
    _tmp: tempfile::TempDir,
}

impl Rig {
    fn start() -> Rig {
        let tmp = temp_dir();
        let logs = tmp.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let server = Server::start(&tmp.path().join("server"));
        let ingest_token = token(server.data_dir(), &["ingest"]);
        let read_token = token(server.data_dir(), &["read"]);
        let agent = Agent::start_with(
            &server.url(),
            &ingest_token,
            &tmp.path().join("agent"),
            &[format!("{}/app.log*", logs.display())],
            &["--rescan-interval-ms", "300", "--batch-max-age-ms", "200"],
        );
        Rig {
            _tmp: tmp,
            live: logs.join("app.log"),
            logs,
            server,
            read_token,
            agent,
        }
    }

    fn rotated(&self, n: usize) -> PathBuf {
        self.logs.join(format!("app.log.{n}"))
    }

    /// `app.log.N` → `app.log.N+1`, the oldest deleted.
    fn shift_copies(&self) {
        if self.rotated(KEEP).exists() {
            std::fs::remove_file(self.rotated(KEEP)).expect("delete the oldest copy");
        }
        for n in (1..KEEP).rev() {
            if self.rotated(n).exists() {
                std::fs::rename(self.rotated(n), self.rotated(n + 1)).expect("shift a copy");
            }
        }
    }

    /// `cp app.log app.log.1`: a new file (a new inode) with its content.
    fn copy(&self) {
        std::fs::copy(&self.live, self.rotated(1)).expect("copy app.log");
    }

    /// Truncates `app.log` in place, as `copytruncate` does on its own
    /// descriptor; the writer's append-mode descriptor writes at the new end.
    fn truncate(&self) {
        OpenOptions::new()
            .write(true)
            .open(&self.live)
            .and_then(|file| file.set_len(0))
            .expect("truncate app.log");
    }

    /// Waits until the server has every line the writer wrote so far.
    fn wait_for_written(&self, tag: &str, written: u64) {
        wait_for_count(&self.server.url(), &self.read_token, tag, written, SETTLE);
    }

    /// Waits for the writer to finish, then checks every line arrived once.
    fn finish(mut self, writer: NumberedWriter, tag: &str, total: u64) {
        assert_eq!(writer.join(), total);
        let url = self.server.url();
        wait_for_count(&url, &self.read_token, tag, total, SETTLE);
        assert_count_stays(&url, &self.read_token, tag, total, Duration::from_secs(2));
        assert_each_number_once(&url, &self.read_token, tag, total);
        self.agent.assert_running();
        self.server.assert_running();
    }
}

/// What a rotation does besides copying and truncating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    None,
    /// The agent is killed before the copy and started after the
    /// truncation: it finds the copy and the truncated file at start.
    AgentStoppedThroughout,
    /// The agent is killed between the copy and the truncation and
    /// started again before the truncation.
    AgentBetween,
    /// The agent is killed just after the truncation.
    AgentAfter,
    /// The server is killed between the copy and the truncation.
    ServerBetween,
    /// The server is killed just after the truncation.
    ServerAfter,
}

/// How the copy relates to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copy {
    /// The writer is held still from before the copy to after the
    /// truncation: the copy holds every line (the agent may be behind).
    WriterHeld,
    /// The writer goes on after the copy; the truncation waits until the
    /// server has every line written, so the copy is shorter than what was
    /// read of the stream.
    WhileWriting,
}

fn crash_before(rig: &mut Rig, crash: Crash) {
    if crash == Crash::AgentStoppedThroughout {
        rig.agent.kill9();
    }
}

fn crash_between(rig: &mut Rig, crash: Crash) {
    match crash {
        Crash::AgentBetween => rig.agent.restart(),
        Crash::ServerBetween => rig.server.restart(),
        _ => {}
    }
}

fn crash_after(rig: &mut Rig, crash: Crash) {
    match crash {
        Crash::AgentStoppedThroughout => {
            // Lines written while it is down are read from the new content.
            std::thread::sleep(Duration::from_millis(300));
            rig.agent.start_again();
        }
        Crash::AgentAfter => rig.agent.restart(),
        Crash::ServerAfter => rig.server.restart(),
        _ => {}
    }
}

fn rotate(rig: &mut Rig, writer: &NumberedWriter, tag: &str, how: Copy, crash: Crash) {
    rig.shift_copies();
    crash_before(rig, crash);
    match how {
        Copy::WriterHeld => {
            let pause = writer.paused();
            rig.copy();
            crash_between(rig, crash);
            rig.truncate();
            drop(pause);
        }
        Copy::WhileWriting => {
            rig.copy();
            std::thread::sleep(Duration::from_millis(100));
            crash_between(rig, crash);
            if crash == Crash::AgentStoppedThroughout {
                // The agent must read the lines written after the copy
                // from app.log before the truncation destroys them.
                rig.agent.start_again();
            }
            let pause = writer.paused();
            rig.wait_for_written(tag, pause.next());
            rig.truncate();
            drop(pause);
            if crash == Crash::AgentStoppedThroughout {
                return;
            }
        }
    }
    crash_after(rig, crash);
}

/// Runs `rounds` rotations, the n-th done as `plan(n)` says, while the
/// writer writes `total` lines; then checks every line arrived once.
fn run(tag: &str, total: u64, rounds: usize, plan: impl Fn(usize) -> (Copy, Crash)) {
    let mut rig = Rig::start();
    let writer = NumberedWriter::start(&rig.live, tag, 0, total, LINES_PER_TICK, TICK);
    for round in 0..rounds {
        std::thread::sleep(BETWEEN_ROTATIONS[round % BETWEEN_ROTATIONS.len()]);
        let (how, crash) = plan(round);
        rotate(&mut rig, &writer, tag, how, crash);
    }
    rig.finish(writer, tag, total);
}

/// The writer held still over copy and truncation; no crashes.
#[test]
fn copies_in_the_glob_are_never_shipped_twice() {
    run("ctheld", 80_000, 8, |_| (Copy::WriterHeld, Crash::None));
}

/// The writer goes on between copy and truncation, so every copy is
/// shorter than what was read of its stream: it holds nothing to ship.
#[test]
fn a_copy_shorter_than_what_was_read_ships_nothing() {
    run("ctshort", 80_000, 8, |round| {
        let how = if round % 2 == 0 {
            Copy::WhileWriting
        } else {
            Copy::WriterHeld
        };
        (how, Crash::None)
    });
}

/// kill -9 of the agent and of the server at every point of a rotation.
#[test]
fn copies_are_never_shipped_twice_through_agent_and_server_kill9() {
    const PLAN: [(Copy, Crash); 10] = [
        (Copy::WriterHeld, Crash::AgentAfter),
        (Copy::WhileWriting, Crash::AgentBetween),
        (Copy::WriterHeld, Crash::ServerBetween),
        (Copy::WriterHeld, Crash::AgentBetween),
        (Copy::WhileWriting, Crash::ServerAfter),
        (Copy::WhileWriting, Crash::AgentAfter),
        (Copy::WriterHeld, Crash::ServerAfter),
        (Copy::WhileWriting, Crash::ServerBetween),
        (Copy::WriterHeld, Crash::AgentAfter),
        (Copy::WhileWriting, Crash::None),
    ];
    run("ctkill", 110_000, PLAN.len(), |round| PLAN[round]);
}

/// Copies taken while the agent is stopped: with the truncation also done
/// while it is stopped, and with the truncation done after it started.
#[test]
fn copies_taken_while_the_agent_is_stopped_continue_their_stream() {
    run("ctstopped", 70_000, 6, |round| {
        let how = if round % 2 == 0 {
            Copy::WriterHeld
        } else {
            Copy::WhileWriting
        };
        (how, Crash::AgentStoppedThroughout)
    });
}

/// logrotate as it is: the writer never waits. Lines written between a
/// copy and its truncation may be destroyed before anyone reads them; no
/// line is ever shipped twice, and every line written outside those
/// windows is there.
#[test]
fn a_free_running_writer_loses_at_most_the_copy_windows_and_duplicates_nothing() {
    const TAG: &str = "ctfree";
    const TOTAL: u64 = 80_000;
    let rig = Rig::start();
    let writer = NumberedWriter::start(&rig.live, TAG, 0, TOTAL, LINES_PER_TICK, TICK);
    let mut windows = Vec::new();
    for round in 0..8 {
        std::thread::sleep(BETWEEN_ROTATIONS[round % BETWEEN_ROTATIONS.len()]);
        rig.shift_copies();
        let before = writer.written();
        rig.copy();
        rig.truncate();
        windows.push(before..writer.written());
    }
    assert_eq!(writer.join(), TOTAL);
    let url = rig.server.url();
    // Everything outside the windows, at least; then nothing more arrives.
    let outside = TOTAL - windows.iter().map(|w| w.end - w.start).sum::<u64>();
    loghound_tests::wait_until_count_at_least(&url, &rig.read_token, TAG, outside, SETTLE);
    std::thread::sleep(Duration::from_secs(3));
    let (seen, foreign) = number_counts(&url, &rig.read_token, TAG, TOTAL);
    let twice: Vec<usize> = (0..seen.len()).filter(|&n| seen[n] > 1).collect();
    assert!(
        twice.is_empty(),
        "{} lines shipped more than once (first: {:?})",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    let in_window = |n: u64| windows.iter().any(|w| w.contains(&n));
    let missing: Vec<u64> = (0..TOTAL)
        .filter(|&n| seen[n as usize] == 0 && !in_window(n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} lines written outside a copy-to-truncation window are missing (first: {:?}; windows {windows:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        foreign.is_empty(),
        "foreign hits: {:?}",
        &foreign[..foreign.len().min(5)]
    );
}
