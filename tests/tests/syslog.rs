//! Syslog listeners end to end, with real clients: util-linux `logger`
//! (TCP with line and octet-counted framing, UDP, RFC 5424 and RFC 3164)
//! and rsyslog (`imfile` → `omfwd` over TCP with octet counting and a
//! disk-assisted retry queue), the server killed with SIGKILL while rsyslog
//! forwards.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loghound_tests::data::{append, numbered_lines, parse_numbered};
use loghound_tests::http::{hit_message, hit_str, search, search_all};
use loghound_tests::{
    assert_count_stays, temp_dir, token, wait_for_count, wait_until_count_at_least, Server,
    ServerOptions,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// A port free on 127.0.0.1 for TCP and for UDP when this returns.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A server with a TCP listener `net` and a UDP listener `dgram` on
/// `port` (both), and a read token.
fn server_with_syslog(root: &Path, port: u16, extra: &str) -> (Server, String) {
    let config = root.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[[syslog]]\nname = \"net\"\nlisten = \"127.0.0.1:{port}\"\nprotocol = \"tcp\"\n{extra}\n\
             [[syslog]]\nname = \"dgram\"\nlisten = \"127.0.0.1:{port}\"\nprotocol = \"udp\"\n"
        ),
    )
    .expect("write server.toml");
    let data = root.join("data");
    let server = Server::start_with(
        &data,
        ServerOptions {
            config: Some(config),
            ..ServerOptions::default()
        },
    );
    let token = token(&data, &["read"]);
    (server, token)
}

fn logger(args: &[&str]) {
    let output = Command::new("logger")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `logger` (util-linux): {error}"));
    assert!(
        output.status.success(),
        "logger {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn this_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read the host name");
    name.trim().to_string()
}

#[test]
fn logger_over_tcp_udp_and_octet_counting_with_headers_as_fields() {
    let root = temp_dir();
    let port = free_port();
    let (server, token) = server_with_syslog(root.path(), port, "");
    let url = server.url();
    let port_arg = port.to_string();
    let to = |protocol: &'static str| ["--server", "127.0.0.1", "--port", &port_arg, protocol];

    // RFC 5424 over TCP, one message per line, with structured data.
    let mut args = to("--tcp").to_vec();
    args.extend([
        "--rfc5424",
        "--id=4242",
        "-t",
        "billing",
        "-p",
        "local3.err",
        "--sd-id",
        "order@32473",
        "--sd-param",
        "id=\"77\"",
        "tcp5424 payment declined",
    ]);
    logger(&args);
    // RFC 3164 over TCP with octet counting.
    let mut args = to("--tcp").to_vec();
    args.extend([
        "--octet-count",
        "--rfc3164",
        "-t",
        "cron",
        "-p",
        "cron.notice",
        "counted3164 job started",
    ]);
    logger(&args);
    // RFC 5424 over UDP.
    let mut args = to("--udp").to_vec();
    args.extend([
        "--rfc5424",
        "-t",
        "dns",
        "-p",
        "daemon.warning",
        "udp5424 zone reloaded",
    ]);
    logger(&args);
    // Many messages on one connection, from a file: every one, in order.
    let lines = root.path().join("lines.txt");
    append(&lines, &numbered_lines("bulk", 0..2000));
    let lines_arg = lines.to_string_lossy().into_owned();
    let mut args = to("--tcp").to_vec();
    args.extend(["--octet-count", "--rfc5424", "-t", "bulk", "-f", &lines_arg]);
    logger(&args);

    wait_for_count(&url, &token, "payment declined", 1, DEADLINE);
    wait_for_count(&url, &token, "job started", 1, DEADLINE);
    wait_for_count(&url, &token, "zone reloaded", 1, DEADLINE);
    wait_for_count(&url, &token, "program:bulk", 2000, DEADLINE);

    let host = this_host();
    let (_, hits) = search(&url, &token, "payment declined");
    let hit = &hits[0];
    assert_eq!(hit_message(hit), "tcp5424 payment declined");
    assert_eq!(hit_str(hit, "host"), Some(host.as_str()));
    assert_eq!(hit_str(hit, "app"), Some("billing"));
    assert_eq!(hit_str(hit, "severity"), Some("error"), "{hit}");
    assert_eq!(hit_str(hit, "source"), Some("syslog/net/127.0.0.1"));
    assert_eq!(hit["fields"]["facility"], "local3", "{hit}");
    assert_eq!(hit["fields"]["order@32473"]["id"], "77", "{hit}");
    assert_eq!(hit["fields"]["pid"], 4242, "{hit}");

    let (_, hits) = search(&url, &token, "job started");
    let hit = &hits[0];
    assert_eq!(hit_message(hit), "counted3164 job started");
    assert_eq!(hit_str(hit, "app"), Some("cron"));
    assert_eq!(hit_str(hit, "severity"), Some("notice"), "{hit}");
    assert_eq!(hit["fields"]["facility"], "cron", "{hit}");

    let (_, hits) = search(&url, &token, "zone reloaded");
    let hit = &hits[0];
    assert_eq!(hit_str(hit, "source"), Some("syslog/dgram/127.0.0.1"));
    assert_eq!(hit_str(hit, "severity"), Some("warning"), "{hit}");
    assert_eq!(hit["fields"]["facility"], "daemon", "{hit}");

    // Fields are searchable like any other.
    wait_for_count(&url, &token, "facility:local3 severity:error", 1, DEADLINE);
    wait_for_count(&url, &token, "app:dns", 1, DEADLINE);
    // The file's lines, each once, newest first in the order sent.
    let bulk = search_all(&url, &token, "program:bulk");
    let numbers: Vec<u64> = bulk
        .iter()
        .map(|hit| parse_numbered("bulk", hit_message(hit)).unwrap_or(u64::MAX))
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..2000).collect::<Vec<_>>());
}

#[test]
fn an_oversized_message_is_cut_and_the_rest_of_the_connection_is_kept() {
    let root = temp_dir();
    let port = free_port();
    let (server, token) = server_with_syslog(root.path(), port, "max_message_bytes = 1000");
    let url = server.url();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let long = format!(
        "<13>1 2026-12-04T10:00:00Z h a - - - oversized {}",
        "x".repeat(5000)
    );
    let body = format!(
        "<13>1 2026-12-04T10:00:00Z h a - - - before\n{long}\n<13>1 2026-12-04T10:00:00Z h a - - - after\n"
    );
    std::io::Write::write_all(&mut stream, body.as_bytes()).expect("send");
    drop(stream);
    wait_for_count(&url, &token, "before OR after OR oversized", 3, DEADLINE);
    let (_, hits) = search(&url, &token, "oversized");
    assert_eq!(hits[0]["truncated"], true, "{}", hits[0]);
    assert!(hit_message(&hits[0]).len() < 1000);
}

/// A running `rsyslogd -n` with its own configuration.
struct Rsyslog {
    child: Child,
    log: PathBuf,
}

impl Rsyslog {
    fn start(dir: &Path, watched: &Path, port: u16) -> Rsyslog {
        let binary = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or_else(|| {
                panic!(
                    "rsyslogd not found: install Debian's rsyslog package (scripts/test.sh does)"
                )
            });
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("rsyslog work directory");
        let config = dir.join("rsyslog.conf");
        // imfile follows the file; omfwd forwards each line over TCP with
        // octet counting, retrying forever through a queue that holds
        // lines while the server is down.
        std::fs::write(
            &config,
            format!(
                r#"global(workDirectory="{work}")
module(load="imfile" PollingInterval="1")
input(type="imfile" File="{watched}" Tag="forwarded" Facility="local5" Severity="info" freshStartTail="off")
action(type="omfwd" Target="127.0.0.1" Port="{port}" Protocol="tcp" TCP_Framing="octet-counted"
       Template="RSYSLOG_SyslogProtocol23Format"
       queue.type="LinkedList" queue.size="100000" queue.filename="fwd" queue.saveOnShutdown="on"
       action.resumeRetryCount="-1" action.resumeInterval="1")
"#,
                work = work.display(),
                watched = watched.display(),
            ),
        )
        .expect("write rsyslog.conf");
        let log = dir.join("rsyslogd.log");
        let log_file = std::fs::File::create(&log).expect("rsyslog log");
        let child = Command::new(binary)
            .arg("-n")
            .arg("-f")
            .arg(&config)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        Rsyslog { child, log }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("----- rsyslogd output -----\n{text}");
        }
    }
}

/// How many times each numbered line `0..total` is searchable.
fn copies(url: &str, token: &str, total: u64) -> Vec<u32> {
    let mut seen = vec![0u32; total as usize];
    for hit in search_all(url, token, "app:forwarded") {
        let number = parse_numbered("fwd", hit_message(&hit))
            .unwrap_or_else(|| panic!("a forwarded hit that is not a numbered line: {hit}"));
        seen[number as usize] += 1;
    }
    seen
}

#[test]
fn rsyslog_forwarding_through_a_server_kill9_keeps_every_line_sent_after_its_retry() {
    let root = temp_dir();
    let port = free_port();
    let (mut server, token) = server_with_syslog(root.path(), port, "");
    let url = server.url();
    let watched = root.path().join("app.log");
    append(&watched, b"");
    let _rsyslog = Rsyslog::start(root.path(), &watched, port);

    // Before the crash: lines forwarded and searchable.
    append(&watched, &numbered_lines("fwd", 0..3000));
    wait_until_count_at_least(&url, &token, "app:forwarded", 1000, DEADLINE);
    // SIGKILL while rsyslog forwards; lines go on being written.
    server.kill9();
    append(&watched, &numbered_lines("fwd", 3000..4000));
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    // rsyslog reconnects on its own and sends what its queue kept.
    append(&watched, &numbered_lines("fwd", 4000..6000));
    let total = 6000u64;

    // Wait until the last line arrived and nothing more comes.
    let deadline = Instant::now() + DEADLINE;
    while search(&url, &token, "n0005999").0 == 0 {
        assert!(Instant::now() < deadline, "the last line never arrived");
        std::thread::sleep(Duration::from_millis(250));
    }
    let settled = copies(&url, &token, total);
    let count: u64 = settled.iter().map(|&c| u64::from(c)).sum();
    assert_count_stays(&url, &token, "app:forwarded", count, Duration::from_secs(3));

    let twice: Vec<usize> = (0..settled.len()).filter(|&n| settled[n] > 1).collect();
    let missing: Vec<usize> = (0..settled.len()).filter(|&n| settled[n] == 0).collect();
    eprintln!(
        "rsyslog through a kill -9: {} of {total} lines stored, {} missing {:?}, {} twice {:?}",
        count,
        missing.len(),
        &missing[..missing.len().min(20)],
        twice.len(),
        &twice[..twice.len().min(20)],
    );
    // Lines in the sockets' buffers when the server died are lost to
    // plain TCP syslog; they can only be lines written before the restart
    // (the first 4000), and only a contiguous stretch of them around the kill.
    assert!(
        missing.iter().all(|&n| n < 4000),
        "lines written after the server was back are missing: {:?}",
        &missing[..missing.len().min(20)]
    );
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        assert_eq!(
            last - first + 1,
            missing.len(),
            "missing lines are not one stretch around the kill: {missing:?}"
        );
    }
    // A line resent after the reconnect is kept again; every other line once.
    assert!(twice.len() <= 1, "lines stored twice: {twice:?}");
}
