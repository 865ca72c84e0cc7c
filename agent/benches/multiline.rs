//! Per-line cost of the agent's line splitting alone and with multi-line
//! joining, on the same bytes: the loghub Hadoop sample (Java log4j lines,
//! every one starting with a date) and the same sample with a 12-line
//! Java stack trace after every 20th line.
//!
//! `cargo bench -p loghound-agent --bench multiline` (no criterion: a
//! plain timing loop over the library's splitter and joiner keeps the
//! agent's dependency list short).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loghound_agent::sources::file::lines::{LineSplitter, RawLine};
use loghound_agent::sources::file::multiline::{Joiner, MultilineSettings};
use loghound_shared::ByteOffset;

const TRACE: &str = "java.lang.IllegalStateException: connection pool exhausted\n\
\tat org.example.db.Pool.acquire(Pool.java:88)\n\
\tat org.example.db.Repository.find(Repository.java:120)\n\
\tat org.example.Handler.handle(Handler.java:41)\n\
\tat java.base/java.lang.Thread.run(Thread.java:1583)\n\
Caused by: java.net.SocketTimeoutException: Connect timed out\n\
\tat java.base/sun.nio.ch.NioSocketImpl.timedFinishConnect(NioSocketImpl.java:546)\n\
\tat java.base/sun.nio.ch.NioSocketImpl.connect(NioSocketImpl.java:592)\n\
\tat java.base/java.net.SocksSocketImpl.connect(SocksSocketImpl.java:327)\n\
\tat java.base/java.net.Socket.connect(Socket.java:751)\n\
\tat org.example.db.Pool.open(Pool.java:140)\n\
\t... 12 more\n";

fn main() {
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/loghub/Hadoop_2k.log");
    let text = match std::fs::read_to_string(&sample) {
        Ok(text) => text.replace("\r\n", "\n"),
        Err(error) => {
            eprintln!("cannot read {}: {error}", sample.display());
            std::process::exit(1);
        }
    };
    let mut with_traces = String::new();
    for (number, line) in text.lines().enumerate() {
        with_traces.push_str(line);
        with_traces.push('\n');
        if number % 20 == 19 {
            with_traces.push_str(TRACE);
        }
    }
    let settings = Arc::new(MultilineSettings {
        start: regex_lite::Regex::new(r"^\d{4}-\d{2}-\d{2} ").expect("a valid pattern"),
        max_lines: 500,
        max_bytes: 256 << 10,
        flush_ms: 500,
    });
    println!("| input | lines | events | split only ns/line | split + join ns/line |");
    println!("|---|---|---|---|---|");
    for (name, bytes) in [
        ("Hadoop_2k.log", text.as_bytes()),
        (
            "Hadoop_2k.log + a 12-line trace every 20 lines",
            with_traces.as_bytes(),
        ),
    ] {
        let (lines, split_only) = measure(bytes, None);
        let (events, joined) = measure(bytes, Some(&settings));
        println!(
            "| {name} | {lines} | {events} | {:.0} | {:.0} |",
            split_only.as_nanos() as f64 / lines as f64,
            joined.as_nanos() as f64 / lines as f64,
        );
    }
}

/// Best of several rounds of splitting (and joining) `bytes` whole:
/// (lines or events out, time per round).
fn measure(bytes: &[u8], settings: Option<&Arc<MultilineSettings>>) -> (usize, Duration) {
    let mut best = Duration::MAX;
    let mut count = 0;
    for _ in 0..30 {
        let start = Instant::now();
        let mut lines: Vec<RawLine> = Vec::new();
        let mut splitter = LineSplitter::new(ByteOffset(0), 256 << 10);
        for chunk in bytes.chunks(64 << 10) {
            splitter.push(chunk, &mut lines);
        }
        count = lines.len();
        if let Some(settings) = settings {
            let mut joiner = Joiner::new(Arc::clone(settings));
            let mut out = Vec::new();
            let now = Instant::now();
            for line in lines {
                joiner.push(line, now, &mut out);
            }
            joiner.flush(&mut out);
            count = black_box(out).len();
        } else {
            black_box(&lines);
        }
        best = best.min(start.elapsed());
    }
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    if settings.is_none() {
        return (lines, best);
    }
    (count, best)
}
