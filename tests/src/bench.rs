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
    Some((ticks / 100.0, status_bytes(pid, "VmHWM:")?))
}

/// Resident anonymous memory (heap, stacks; not mapped files) of a live
/// process, in bytes: `RssAnon`. Peak RSS also counts the pages of index
/// files a process maps and reads, which the kernel can drop at will.
pub fn anon_rss(pid: u32) -> Option<u64> {
    status_bytes(pid, "RssAnon:")
}

/// A `… kB` line of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
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

/// Statuses of [`RequestLines`] and their weights (per 1000).
const STATUSES: [(u32, u32); 7] = [
    (200, 850),
    (301, 30),
    (302, 30),
    (401, 20),
    (404, 50),
    (500, 15),
    (503, 5),
];

/// JSON request lines, the same sequence every run:
/// `{"time": …, "status": …, "path": …, "client_ip": …, "duration_ms": …,
/// "msg": …}` with 7 weighted statuses, 100 paths, 100,000 client
/// addresses and durations spread over four orders of magnitude (most
/// requests fast).
pub struct RequestLines {
    state: u64,
}

impl Default for RequestLines {
    fn default() -> Self {
        RequestLines {
            state: 0x2545_f491_4f6c_dd1d,
        }
    }
}

impl RequestLines {
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The next line, timed `time_ms`, without a line end.
    pub fn line(&mut self, time_ms: i64) -> String {
        let total: u32 = STATUSES.iter().map(|(_, w)| w).sum();
        let mut pick = (self.next() % u64::from(total)) as u32;
        let status = STATUSES
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or(200, |(s, _)| *s);
        let path = self.next() % 100;
        let ip = self.next() % 100_000;
        let exponent = (self.next() % 1000) as f64 / 250.0;
        let duration = (10f64.powf(exponent) * 100.0).round() / 1000.0;
        format!(
            "{{\"time\":\"{}\",\"status\":{status},\"path\":\"/api/v1/r{path}\",\"client_ip\":\"10.{}.{}.{}\",\"duration_ms\":{duration},\"msg\":\"request served\"}}",
            crate::data::rfc3339_utc(time_ms),
            ip / 65536,
            ip / 256 % 256,
            ip % 256
        )
    }
}
