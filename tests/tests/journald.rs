//! The journald input end to end: real journal files written by
//! `systemd-journal-remote`, read by the agent's journalctl child, searched
//! on the real server. Every entry exactly once, its fields mapped
//! (`app:sshd severity:<=warning`), cursor resume across agent kill -9, a
//! journalctl that keeps dying, a journal vacuumed while the agent is
//! stopped (what is gone is reported, nothing invented), and a precise
//! error when journalctl is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loghound_tests::data::{numbered_line, numbered_term};
use loghound_tests::http::hit_message;
use loghound_tests::journal::{append_entries, now_us, JournalEntry};
use loghound_tests::paths::agent_bin;
use loghound_tests::process::agent_status;
use loghound_tests::wait::describe_numbers;
use loghound_tests::{
    assert_count_stays, assert_each_number_once, search, temp_dir, token, wait_for_count,
    wait_until_count_at_least, Agent, Server,
};

/// The fields of entry `n`: a priority, identifier, host and pid that vary
/// with `n`, so the test can count what each query must find.
fn entry(tag: &str, n: u64) -> JournalEntry {
    let priority = (n % 8).to_string();
    let (identifier, unit) = if n.is_multiple_of(3) {
        ("sshd", "ssh.service")
    } else {
        ("cron", "cron.service")
    };
    let host = format!("web-{}", n % 2);
    let pid = (1000 + n % 50).to_string();
    JournalEntry::new(
        now_us(),
        numbered_line(tag, n),
        &[
            ("PRIORITY", &priority),
            ("SYSLOG_IDENTIFIER", identifier),
            ("_SYSTEMD_UNIT", unit),
            ("_HOSTNAME", &host),
            ("_PID", &pid),
            ("SYSLOG_FACILITY", "4"),
        ],
    )
}

fn entries(tag: &str, range: std::ops::Range<u64>) -> Vec<JournalEntry> {
    range.map(|n| entry(tag, n)).collect()
}

/// A test's directory with an empty journal directory, and a server.
struct Setup {
    tmp: tempfile::TempDir,
    journal_dir: PathBuf,
    _server: Server,
    url: String,
    ingest: String,
    read: String,
}

fn setup() -> Setup {
    let tmp = temp_dir();
    let journal_dir = tmp.path().join("journal");
    std::fs::create_dir_all(&journal_dir).expect("create the journal directory");
    let server = Server::start(&tmp.path().join("server"));
    Setup {
        url: server.url(),
        ingest: token(server.data_dir(), &["ingest"]),
        read: token(server.data_dir(), &["read"]),
        tmp,
        journal_dir,
        _server: server,
    }
}

/// An agent config with one journald input on `journal_dir`.
fn config(dir: &Path, journal_dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[[inputs]]\ntype = \"journald\"\ndirectory = \"{}\"\ntags = {{ env = \"test\" }}\n{extra}\n",
            journal_dir.display()
        ),
    )
    .expect("write agent.toml");
    path
}

fn start_agent(url: &str, token: &str, state_dir: &Path, config: &Path, extra: &[&str]) -> Agent {
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    Agent::start_with(url, token, state_dir, &[] as &[&str], &args)
}

#[test]
fn journal_entries_ship_once_with_their_fields_mapped() {
    const TAG: &str = "jfields";
    const FIRST: u64 = 3_000;
    const TOTAL: u64 = 5_000;
    let Setup {
        tmp,
        journal_dir,
        _server,
        url,
        ingest,
        read,
    } = setup();
    let journal = journal_dir.join("remote.journal");

    let realtime_us = now_us() - 5_000_000;
    let mut first = entries(TAG, 0..FIRST);
    first[0].realtime_us = realtime_us;
    // A message that is not UTF-8, and one over several lines: the journal
    // gives both as arrays of bytes.
    first.push(JournalEntry::new(
        now_us(),
        b"jbytes bad \xff byte".to_vec(),
        &[("SYSLOG_IDENTIFIER", "kernel"), ("PRIORITY", "3")],
    ));
    first.push(JournalEntry::new(
        now_us(),
        b"jlines first\nsecond line".to_vec(),
        &[("SYSLOG_IDENTIFIER", "app")],
    ));
    append_entries(&journal, &first);

    let _agent = start_agent(
        &url,
        &ingest,
        &tmp.path().join("agent"),
        &config(tmp.path(), &journal_dir, ""),
        &[],
    );
    wait_for_count(&url, &read, TAG, FIRST, Duration::from_secs(60));

    // Entries written while the agent follows the journal.
    append_entries(&journal, &entries(TAG, FIRST..TOTAL));
    wait_for_count(&url, &read, TAG, TOTAL, Duration::from_secs(60));
    assert_each_number_once(&url, &read, TAG, TOTAL);

    let count = |query: &str| search(&url, &read, query).0;
    let expected = (0..TOTAL)
        .filter(|n| n.is_multiple_of(3) && n % 8 <= 4)
        .count() as u64;
    assert_eq!(
        count(&format!("{TAG} app:sshd severity:<=warning")),
        expected
    );
    let errors = (0..TOTAL).filter(|n| n % 8 == 3).count() as u64;
    assert_eq!(count(&format!("{TAG} severity:error")), errors);
    let web1 = (0..TOTAL).filter(|n| n % 2 == 1).count() as u64;
    assert_eq!(count(&format!("{TAG} host:web-1")), web1);
    let pids = (0..TOTAL).filter(|n| 1000 + n % 50 >= 1040).count() as u64;
    assert_eq!(count(&format!("{TAG} pid:>=1040")), pids);
    assert_eq!(
        count(&format!("{TAG} _SYSTEMD_UNIT:ssh.service")),
        (0..TOTAL).filter(|n| n.is_multiple_of(3)).count() as u64
    );
    assert_eq!(count(&format!("{TAG} tags.env:test")), TOTAL);

    let (_, hits) = search(&url, &read, &numbered_term(0));
    let hit = hits.first().expect("entry 0 is searchable");
    assert_eq!(hit_message(hit), numbered_line(TAG, 0));
    assert_eq!(hit["app"], "sshd");
    assert_eq!(hit["host"], "web-0");
    assert_eq!(hit["source"], "journal:ssh.service");
    assert_eq!(hit["fields"]["SYSLOG_FACILITY"], 4);
    let expected_time = loghound_tests::data::rfc3339_utc((realtime_us / 1000) as i64);
    assert_eq!(
        hit["timestamp"].as_str().map(|t| t.get(..19)),
        Some(expected_time.get(..19)),
        "the event time is the entry's __REALTIME_TIMESTAMP: {hit}"
    );

    let (bytes_count, hits) = search(&url, &read, "jbytes");
    assert_eq!(bytes_count, 1);
    assert_eq!(hit_message(&hits[0]), "jbytes bad \u{FFFD} byte");
    assert_eq!(hits[0]["invalid_utf8"], true);
    assert_eq!(hits[0]["severity"], "error");
    let (_, hits) = search(&url, &read, "jlines");
    assert_eq!(
        hits.first().map(hit_message),
        Some("jlines first\nsecond line")
    );
}

#[test]
fn agent_kill9_resumes_after_the_last_acked_cursor() {
    const TAG: &str = "jkill";
    const TOTAL: u64 = 60_000;
    let Setup {
        tmp,
        journal_dir,
        _server,
        url,
        ingest,
        read,
    } = setup();
    let journal = journal_dir.join("remote.journal");
    append_entries(&journal, &entries(TAG, 0..20_000));

    let config = config(tmp.path(), &journal_dir, "");
    // Small batches: many acks and checkpoints between the kills.
    let mut agent = start_agent(
        &url,
        &ingest,
        &tmp.path().join("agent"),
        &config,
        &["--batch-max-bytes", "16384"],
    );
    let mut seen = 0;
    let mut written = 20_000;
    for round in 0..4 {
        seen = wait_until_count_at_least(&url, &read, TAG, seen + 1, Duration::from_secs(60));
        agent.kill9();
        eprintln!("round {round}: killed with {seen} entries searchable");
        let more = written + 10_000;
        append_entries(&journal, &entries(TAG, written..more));
        written = more;
        agent.restart();
    }
    assert_eq!(written, TOTAL);
    let deadline = Instant::now() + Duration::from_secs(90);
    while search(&url, &read, TAG).0 < TOTAL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        search(&url, &read, TAG).0,
        TOTAL,
        "{}",
        describe_numbers(&url, &read, TAG, TOTAL)
    );
    assert_each_number_once(&url, &read, TAG, TOTAL);
    assert_count_stays(&url, &read, TAG, TOTAL, Duration::from_secs(2));

    // An agent killed with SIGKILL leaves no journalctl behind (journalctl
    // ends when the pipe it writes to loses its reader).
    assert_eq!(journalctls_reading(&journal_dir).len(), 1);
    agent.kill9();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journalctls_reading(&journal_dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(journalctls_reading(&journal_dir), Vec::<u32>::new());
}

/// The journalctl processes whose command line names `directory`.
fn journalctls_reading(directory: &Path) -> Vec<u32> {
    let needle = format!("--directory={}", directory.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let is_journalctl = args
            .first()
            .is_some_and(|program| program.ends_with("journalctl"));
        if is_journalctl && args.contains(&needle) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_journalctl_that_keeps_dying_is_restarted_and_loses_nothing() {
    const TAG: &str = "jdies";
    const TOTAL: u64 = 12_000;
    let Setup {
        tmp,
        journal_dir,
        _server,
        url,
        ingest,
        read,
    } = setup();
    let journal = journal_dir.join("remote.journal");
    // A journalctl that is killed 1.5 s after every start of a follow.
    let wrapper = tmp.path().join("dying-journalctl");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\ncase \"$*\" in\n  *--follow*) exec timeout -s KILL 1.5 journalctl \"$@\" ;;\n  *) exec journalctl \"$@\" ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = config(
        tmp.path(),
        &journal_dir,
        &format!("journalctl = \"{}\"", wrapper.display()),
    );
    let state_dir = tmp.path().join("agent");
    let _agent = start_agent(&url, &ingest, &state_dir, &config, &[]);
    for chunk in 0..6 {
        append_entries(&journal, &entries(TAG, chunk * 2_000..(chunk + 1) * 2_000));
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_for_count(&url, &read, TAG, TOTAL, Duration::from_secs(90));
    assert_each_number_once(&url, &read, TAG, TOTAL);
    let status = agent_status(&state_dir);
    assert!(
        status.contains("journalctl ended") && status.contains("starting it again in"),
        "status says journalctl died and is restarted:\n{status}"
    );
}

#[test]
fn a_journal_vacuumed_while_the_agent_is_stopped_is_reported_not_invented() {
    const TAG: &str = "jvacuum";
    let Setup {
        tmp,
        journal_dir,
        _server,
        url,
        ingest,
        read,
    } = setup();
    let old = journal_dir.join("old.journal");
    append_entries(&old, &entries(TAG, 0..1_000));
    let config = config(tmp.path(), &journal_dir, "");
    let state_dir = tmp.path().join("agent");
    let mut agent = start_agent(&url, &ingest, &state_dir, &config, &[]);
    wait_for_count(&url, &read, TAG, 1_000, Duration::from_secs(60));
    assert!(agent.terminate(Duration::from_secs(20)).success());

    // While the agent is stopped: 500 more entries, then the whole file is
    // vacuumed, and a new journal file gets 300 entries.
    append_entries(&old, &entries(TAG, 1_000..1_500));
    std::fs::remove_file(&old).unwrap();
    append_entries(
        &journal_dir.join("new.journal"),
        &entries(TAG, 1_500..1_800),
    );
    agent.start_again();
    wait_for_count(&url, &read, TAG, 1_300, Duration::from_secs(60));
    assert_count_stays(&url, &read, TAG, 1_300, Duration::from_secs(2));
    let (seen, _) = loghound_tests::wait::number_counts(&url, &read, TAG, 1_800);
    let copies = |range: std::ops::Range<usize>| seen[range].iter().map(|&c| c as u64).sum::<u64>();
    assert_eq!(copies(0..1_000), 1_000, "what was shipped stays once");
    assert_eq!(copies(1_000..1_500), 0, "vacuumed entries are not invented");
    assert_eq!(copies(1_500..1_800), 300, "the new file is shipped once");
    assert!(seen[1_500..].iter().all(|&c| c == 1));
    let status = agent_status(&state_dir);
    assert!(
        status.contains("no longer holds the last entry shipped"),
        "status reports the loss:\n{status}"
    );
}

#[test]
fn a_missing_journalctl_is_a_startup_error_naming_the_input() {
    let tmp = temp_dir();
    let journal_dir = tmp.path().join("journal");
    std::fs::create_dir_all(&journal_dir).unwrap();
    let config = config(
        tmp.path(),
        &journal_dir,
        "journalctl = \"/nonexistent/bin/journalctl\"",
    );
    let output = Command::new(agent_bin())
        .args([
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--state-dir",
        ])
        .arg(tmp.path().join("agent"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run loghound-agent");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the agent must not run: {stderr}");
    assert!(
        stderr.contains(&format!("input journald:{}", journal_dir.display()))
            && stderr.contains("cannot run /nonexistent/bin/journalctl"),
        "stderr names the input and the program: {stderr}"
    );

    // And a bad match is a config error naming the key.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[inputs]]\ntype = \"journald\"\nmatch = [\"_systemd_unit=x\"]\n",
    )
    .unwrap();
    let output = Command::new(agent_bin())
        .args(["--server", "http://127.0.0.1:9", "--token", "t", "--config"])
        .arg(&bad)
        .output()
        .expect("run loghound-agent");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("inputs[0].match"),
        "{stderr}"
    );
}

#[test]
fn units_and_matches_narrow_what_an_input_reads() {
    const TAG: &str = "jfilter";
    const TOTAL: u64 = 3_000;
    let Setup {
        tmp,
        journal_dir,
        _server,
        url,
        ingest,
        read,
    } = setup();
    append_entries(&journal_dir.join("remote.journal"), &entries(TAG, 0..TOTAL));
    let config = tmp.path().join("agent.toml");
    let dir = journal_dir.display();
    std::fs::write(
        &config,
        format!(
            "[[inputs]]\ntype = \"journald\"\ndirectory = \"{dir}\"\nunits = [\"ssh.service\"]\ntags = {{ input = \"units\" }}\n\n\
             [[inputs]]\ntype = \"journald\"\ndirectory = \"{dir}\"\nmatch = [\"_HOSTNAME=web-1\", \"+\", \"PRIORITY=0\"]\ntags = {{ input = \"match\" }}\n"
        ),
    )
    .unwrap();
    let _agent = start_agent(&url, &ingest, &tmp.path().join("agent"), &config, &[]);
    let units = (0..TOTAL).filter(|n| n.is_multiple_of(3)).count() as u64;
    let matched = (0..TOTAL).filter(|n| n % 2 == 1 || n % 8 == 0).count() as u64;
    wait_for_count(
        &url,
        &read,
        &format!("{TAG} tags.input:units"),
        units,
        Duration::from_secs(60),
    );
    wait_for_count(
        &url,
        &read,
        &format!("{TAG} tags.input:match"),
        matched,
        Duration::from_secs(60),
    );
    assert_count_stays(&url, &read, TAG, units + matched, Duration::from_secs(2));
    assert_eq!(
        search(&url, &read, &format!("{TAG} tags.input:units -app:sshd")).0,
        0
    );
}
