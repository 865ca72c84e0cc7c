//! Cost of parsing one line (timestamp, severity, fields), over every line
//! of ../shared/corpus: `cargo bench -p loghound-server --bench parse`.

use std::path::PathBuf;
use std::time::Instant;

use loghound_server::parse::{parse, FormatHint};

fn main() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let loghub = corpus.join("loghub");
    let Ok(entries) = std::fs::read_dir(&loghub) else {
        eprintln!("corpus missing: {}", loghub.display());
        std::process::exit(1);
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    paths.push(corpus.join("apache_access/apache_logs"));
    let mut lines = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => lines.extend(text.lines().map(str::to_owned)),
            Err(error) => eprintln!("skipping {}: {error}", path.display()),
        }
    }
    let received_at_ms = 1_764_000_000_000;
    let rounds = 30;
    let started = Instant::now();
    let mut found = 0usize;
    for _ in 0..rounds {
        for line in &lines {
            found += usize::from(
                parse(line, FormatHint::Auto, received_at_ms)
                    .timestamp_ms
                    .is_some(),
            );
        }
    }
    let elapsed = started.elapsed();
    let parsed = rounds * lines.len();
    println!(
        "parse: {} lines x {rounds}: {:.0} ns per line, {:.0} lines/s ({} with a timestamp per round)",
        lines.len(),
        elapsed.as_nanos() as f64 / parsed as f64,
        parsed as f64 / elapsed.as_secs_f64(),
        found / rounds
    );
}
