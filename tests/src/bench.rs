//! Helpers shared by the benchmark binaries (`src/bin/bench_*.rs`):
//! corpus lines, process usage from `/proc`, percentiles, sizes on disk.

use std::fs;
use std::path::Path;

use crate::paths::corpus_dir;

/// Every line of ../shared/corpus (loghub samples and the Apache access
/// log), without line ends, in a stable order.
pub fn corpus_lines() -> Vec<String> {
    let loghub = corpus_dir().join("loghub");
    let mut paths: Vec<_> = fs::read_dir(&loghub)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", loghub.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.push(corpus_dir().join("apache_access").join("apache_logs"));
    paths.sort();
    let mut lines = Vec::new();
    for path in paths {
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        lines.extend(text.lines().map(|l| l.trim_end_matches('\r').to_string()));
    }
    lines
}

/// CPU seconds (user + system) and peak RSS in bytes of a live process.
pub fn usage(pid: u32) -> Option<(f64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm_kib * 1024))
}

/// The `p`th percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Bytes of every file under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The `--flag value` pairs of the command line; exits with `usage` when a
/// flag is not in `known` or has no value, or a value does not parse.
pub struct Flags {
    usage: &'static str,
    pairs: Vec<(String, String)>,
}

impl Flags {
    /// Reads the process's arguments.
    pub fn parse(usage: &'static str, known: &[&str]) -> Flags {
        let mut pairs = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            match args.next() {
                Some(value) if known.contains(&flag.as_str()) => pairs.push((flag, value)),
                _ => {
                    eprintln!("bad or incomplete flag {flag}; usage: {usage}");
                    std::process::exit(2);
                }
            }
        }
        Flags { usage, pairs }
    }

    /// The last value given for `flag`, or `default`.
    pub fn get<T: std::str::FromStr>(&self, flag: &str, default: T) -> T {
        match self.pairs.iter().rev().find(|(name, _)| name == flag) {
            None => default,
            Some((_, value)) => value.parse().unwrap_or_else(|_| {
                eprintln!("bad value {value:?} for {flag}; usage: {}", self.usage);
                std::process::exit(2);
            }),
        }
    }
}
