//! Guarantees 1 and 2 under everything at once: writers append numbered
//! lines to several files at a high rate while a rotator renames,
//! recreates, copies and truncates them, and meanwhile the server and the
//! agent are each killed with SIGKILL and restarted several times. In the
//! end every numbered line is searchable exactly once.
//!
//! The three files rotate in the three ways a host does it:
//! - `ren-in.log`: rename + create, the rotated names (`ren-in.log.N`) still
//!   match the agent's globs, so the agent must recognise them;
//! - `ren-out.log`: rename + create to `ren-out.log.N`, which no glob
//!   matches, so the agent must drain the renamed file it holds before
//!   letting it go, and after a crash find it again by its inode;
//! - `copy.log`: copytruncate, the copy in `old/`. Copy-then-truncate
//!   destroys whatever the agent had not read by the truncation, and
//!   whatever is written between the copy and the truncation, whatever the
//!   agent does, so the rotator holds the writer still and waits until
//!   everything written is searchable before copying and truncating.
//!   What is tested is that the truncation is recognised (a new generation
//!   shipped from its first byte) under crashes, not the window itself.
//!
//! The writers hold their files open in append mode and reopen their path
//! a little after a rename, as applications told by `postrotate` do.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use loghound_tests::http::search_page;
use loghound_tests::wait::describe_numbers;
use loghound_tests::writer::NumberedWriter;
use loghound_tests::{assert_count_stays, assert_each_number_once, temp_dir, token, Agent, Server};

/// About 1,500 lines a second per file.
const LINES_PER_TICK: u64 = 30;
const TICK: Duration = Duration::from_millis(20);
/// Lines per file; at the rate above, about 16 s of writing.
const TOTAL: u64 = 24_000;
/// Between rotations of one file.
const BETWEEN_ROTATIONS: Duration = Duration::from_millis(1_500);
/// Between a rename and the writer reopening its path.
const REOPEN_DELAY: Duration = Duration::from_millis(200);
/// How many rotated generations are kept before the oldest is deleted:
/// enough that only files the agent drained long ago are deleted (a file
/// deleted while the agent is down and behind on it is lost to any agent).
const KEEP: usize = 6;
/// Crashes of each process during the run.
const SERVER_KILLS: usize = 4;
const AGENT_KILLS: usize = 4;

/// Renames `live` to `rotated(1)` (shifting older ones, deleting the
/// oldest, as logrotate's `rotate N` does), creates an empty `live` and
/// makes the writer reopen it.
fn rotate_by_rename(writer: &NumberedWriter, live: &Path, rotated: &dyn Fn(usize) -> PathBuf) {
    if rotated(KEEP).exists() {
        std::fs::remove_file(rotated(KEEP)).expect("delete the oldest rotated file");
    }
    for n in (1..KEEP).rev() {
        if rotated(n).exists() {
            std::fs::rename(rotated(n), rotated(n + 1)).expect("shift a rotated file");
        }
    }
    std::fs::rename(live, rotated(1)).expect("rename the live file");
    std::fs::File::create(live).expect("create the new live file");
    std::thread::sleep(REOPEN_DELAY);
    writer.paused().reopen();
}

/// Copies `live` to `copy` and truncates `live`, with the writer held
/// still from before the wait until after the truncation.
fn rotate_by_copytruncate(
    writer: &NumberedWriter,
    live: &Path,
    copy: &Path,
    url: &str,
    read_token: &str,
    tag: &str,
) {
    let pause = writer.paused();
    let written = pause.next();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match search_page(url, read_token, tag, 1, None) {
            Ok(page) if page.count == written => break,
            Ok(page) if page.count > written || Instant::now() > deadline => panic!(
                "{tag}: {} of the {written} lines written before a copytruncate are searchable: {}",
                page.count,
                describe_numbers(url, read_token, tag, written)
            ),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    std::fs::copy(live, copy).expect("copy the live file");
    std::fs::OpenOptions::new()
        .write(true)
        .open(live)
        .and_then(|file| file.set_len(0))
        .expect("truncate the live file");
    drop(pause);
}

#[test]
fn every_line_once_through_rotations_truncations_and_crashes() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    let old = logs.join("old");
    std::fs::create_dir_all(&old).unwrap();
    let mut server = Server::start(&tmp.path().join("server"));
    let ingest_token = token(server.data_dir(), &["ingest"]);
    let read_token = token(server.data_dir(), &["read"]);
    let url = server.url();
    let mut agent = Agent::start_with(
        &url,
        &ingest_token,
        &tmp.path().join("agent"),
        &[
            format!("{}/*.log", logs.display()),
            format!("{}/ren-in.log.*", logs.display()),
        ],
        &["--rescan-interval-ms", "300", "--batch-max-age-ms", "200"],
    );

    let ren_in = logs.join("ren-in.log");
    let ren_out = logs.join("ren-out.log");
    let copy = logs.join("copy.log");
    let writers = [
        NumberedWriter::start(&ren_in, "chaosrenin", 0, TOTAL, LINES_PER_TICK, TICK),
        NumberedWriter::start(&ren_out, "chaosrenout", 0, TOTAL, LINES_PER_TICK, TICK),
        NumberedWriter::start(&copy, "chaoscopy", 0, TOTAL, LINES_PER_TICK, TICK),
    ];
    let writing_done = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let rotator = scope.spawn(|| {
            let mut rotations = 0usize;
            let mut round = 0usize;
            while !writing_done.load(Ordering::SeqCst) {
                std::thread::sleep(BETWEEN_ROTATIONS / 3);
                match round % 3 {
                    0 => rotate_by_rename(&writers[0], &ren_in, &|n| {
                        logs.join(format!("ren-in.log.{n}"))
                    }),
                    1 => rotate_by_rename(&writers[1], &ren_out, &|n| {
                        logs.join(format!("ren-out.log.{n}"))
                    }),
                    _ => {
                        let target = old.join(format!("copy.log.{}", round / 3));
                        rotate_by_copytruncate(
                            &writers[2],
                            &copy,
                            &target,
                            &url,
                            &read_token,
                            "chaoscopy",
                        );
                    }
                }
                round += 1;
                rotations += 1;
            }
            rotations
        });

        // Crashes: alternately the server (down for a moment, so batches
        // fail and are retried) and the agent (restarted at once, from its
        // checkpoints), spread over the writing.
        let crashes = SERVER_KILLS + AGENT_KILLS;
        let writing_time = TICK * (TOTAL / LINES_PER_TICK) as u32;
        let gap = writing_time / (crashes as u32 + 1);
        for crash in 0..crashes {
            std::thread::sleep(gap);
            if crash % 2 == 0 {
                server.kill9();
                std::thread::sleep(Duration::from_millis(300 + 150 * crash as u64));
                server.restart();
            } else {
                agent.kill9();
                agent.restart();
            }
        }

        let started = Instant::now();
        for writer in &writers {
            while writer.written() < TOTAL {
                assert!(
                    started.elapsed() < Duration::from_secs(300),
                    "writers did not finish"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        writing_done.store(true, Ordering::SeqCst);
        let rotations = rotator.join().expect("rotator thread panicked");
        assert!(
            rotations >= 6,
            "only {rotations} rotations happened while the writers ran"
        );
    });

    for tag in ["chaosrenin", "chaosrenout", "chaoscopy"] {
        let deadline = Instant::now() + Duration::from_secs(120);
        while search_page(&url, &read_token, tag, 1, None).map(|page| page.count) != Ok(TOTAL) {
            assert!(
                Instant::now() < deadline,
                "{tag}: not every line arrived: {}",
                describe_numbers(&url, &read_token, tag, TOTAL)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for tag in ["chaosrenin", "chaosrenout", "chaoscopy"] {
        assert_count_stays(&url, &read_token, tag, TOTAL, Duration::from_secs(2));
        assert_each_number_once(&url, &read_token, tag, TOTAL);
    }
    server.assert_running();
    agent.assert_running();
}
