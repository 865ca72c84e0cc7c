//! Query pipes (`| stats`, `| top`, `| timechart`, `| sort`, `| limit`)
//! checked against oracles computed here: the raw Apache access log split
//! in this file, and JSON lines generated here with their values kept.
//!
//! The lines go through the real agent into the real server; the tables
//! come from `GET /api/v1/stats` and from the `loghound stats` command.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loghound_tests::data::{complete_lines, days_from_civil, rfc3339_utc};
use loghound_tests::http::{get_with_params, Answer};
use loghound_tests::paths::{corpus_dir, loghound_bin};
use loghound_tests::{temp_dir, wait_for_count, Pipeline};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);
const FROM: &str = "1970-01-01T00:00:00Z";
const TO: &str = "2100-01-01T00:00:00Z";

fn stats_answer(url: &str, token: &str, q: &str, from: &str, to: &str) -> Answer {
    get_with_params(
        url,
        "/api/v1/stats",
        Some(token),
        &[("q", q), ("from", from), ("to", to)],
    )
    .unwrap_or_else(|e| panic!("stats {q:?}: {e}"))
}

/// The table of `q` over all of time: column names and rows.
fn table(url: &str, token: &str, q: &str) -> (Vec<String>, Vec<Vec<Value>>, Value) {
    table_in(url, token, q, FROM, TO)
}

fn table_in(
    url: &str,
    token: &str,
    q: &str,
    from: &str,
    to: &str,
) -> (Vec<String>, Vec<Vec<Value>>, Value) {
    let answer = stats_answer(url, token, q, from, to);
    assert_eq!(answer.status, 200, "stats {q:?}: {}", answer.body);
    let body: Value = answer.json();
    let columns = body["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("a column name").to_owned())
        .collect();
    let rows = body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("a row").clone())
        .collect();
    (columns, rows, body)
}

/// The value at rank ⌊q × (n − 1)⌋ of the sorted values, the definition
/// docs/QUERY.md gives.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).floor() as usize;
    sorted.get(rank).copied()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {value}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// One access-log line, split here.
struct Access {
    ip: String,
    time_ms: i64,
    method: Option<String>,
    path: Option<String>,
    status: u64,
    bytes: Option<u64>,
}

fn month(name: &str) -> Option<i64> {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    months.iter().position(|m| *m == name).map(|i| i as i64 + 1)
}

/// `[17/May/2015:10:05:03 +0000]` → ms (the sample is all `+0000`).
fn access_time(line: &str) -> Option<i64> {
    let inside = line.split('[').nth(1)?.split(']').next()?;
    let (stamp, zone) = inside.split_once(' ')?;
    assert_eq!(zone, "+0000", "the sample's zone");
    let mut parts = stamp.split([':', '/']);
    let day: i64 = parts.next()?.parse().ok()?;
    let month = month(parts.next()?)?;
    let year: i64 = parts.next()?.parse().ok()?;
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    Some(((days_from_civil(year, month, day) * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

fn split_access(line: &str) -> Access {
    let quoted: Vec<&str> = line.split('"').collect();
    let request: Vec<&str> = quoted
        .get(1)
        .map_or(Vec::new(), |r| r.split_whitespace().collect());
    // A request line is `METHOD PATH [HTTP/x]`.
    let well_formed = matches!(request.len(), 2 | 3)
        && request[0].chars().all(|c| c.is_ascii_uppercase())
        && request.get(2).is_none_or(|p| p.starts_with("HTTP/"));
    let mut after = quoted.get(2).map_or("", |s| s).split_whitespace();
    Access {
        ip: line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
        time_ms: access_time(line).expect("a time in every line"),
        method: well_formed.then(|| request[0].to_owned()),
        path: well_formed.then(|| request[1].to_owned()),
        status: after.next().and_then(|s| s.parse().ok()).expect("a status"),
        bytes: after.next().and_then(|s| s.parse().ok()),
    }
}

fn write_with_final_newline(from: &Path, to: &Path) -> Vec<String> {
    let mut contents = std::fs::read(from).unwrap_or_else(|e| {
        panic!(
            "read {} (the team corpus beside the repo): {e}",
            from.display()
        )
    });
    if !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    std::fs::write(to, &contents).expect("write watched file");
    complete_lines(&contents)
}

fn key_cell(value: &Option<String>) -> Value {
    value.as_ref().map_or(Value::Null, |s| json!(s))
}

#[test]
fn access_log_tables_match_the_raw_file() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lines = write_with_final_newline(
        &corpus_dir().join("apache_access").join("apache_logs"),
        &logs.join("access.log"),
    );
    let access: Vec<Access> = lines.iter().map(|l| split_access(l)).collect();

    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let (url, read) = (pipeline.url.clone(), pipeline.read_token.clone());
    wait_for_count(&url, &read, "", lines.len() as u64, WAIT);

    // count() by status: every status and its count, in status order.
    let mut by_status: BTreeMap<u64, u64> = BTreeMap::new();
    for a in &access {
        *by_status.entry(a.status).or_default() += 1;
    }
    let (columns, rows, body) = table(&url, &read, "| stats count() by (status)");
    assert_eq!(columns, ["status", "count()"]);
    let expected: Vec<Vec<Value>> = by_status
        .iter()
        .map(|(s, n)| vec![json!(s), json!(n)])
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(body["count"], json!(lines.len()));

    // The search part narrows the table exactly as it narrows a search.
    let errors = access.iter().filter(|a| a.status >= 500).count();
    let (_, rows, _) = table(&url, &read, "status:>=500 | stats count()");
    assert_eq!(rows, vec![vec![json!(errors)]]);

    // top 10 by client_ip: most frequent first, ties by address.
    let mut by_ip: HashMap<&str, u64> = HashMap::new();
    for a in &access {
        *by_ip.entry(a.ip.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&str, u64)> = by_ip.iter().map(|(ip, n)| (*ip, *n)).collect();
    ranked.sort_by(|(ip_a, a), (ip_b, b)| b.cmp(a).then(ip_a.cmp(ip_b)));
    let (columns, rows, body) = table(&url, &read, "| top 10 by client_ip");
    assert_eq!(columns, ["client_ip", "count()"]);
    let expected: Vec<Vec<Value>> = ranked
        .iter()
        .take(10)
        .map(|(ip, n)| vec![json!(ip), json!(n)])
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(body["groups"], json!(by_ip.len()));

    // count_distinct, and numeric aggregates with exact percentiles, per method.
    let (_, rows, _) = table(&url, &read, "| stats count_distinct(client_ip)");
    assert_eq!(rows, vec![vec![json!(by_ip.len())]]);
    let mut bytes_by_method: BTreeMap<Option<String>, (u64, Vec<f64>)> = BTreeMap::new();
    for a in &access {
        let entry = bytes_by_method.entry(a.method.clone()).or_default();
        entry.0 += 1;
        entry.1.extend(a.bytes.map(|b| b as f64));
    }
    let (columns, rows, _) = table(
        &url,
        &read,
        "| stats count(), count(bytes), sum(bytes), min(bytes), max(bytes), p50(bytes) p99(bytes) by (method)",
    );
    assert_eq!(
        columns,
        [
            "method",
            "count()",
            "count(bytes)",
            "sum(bytes)",
            "min(bytes)",
            "max(bytes)",
            "p50(bytes)",
            "p99(bytes)"
        ]
    );
    assert_eq!(rows.len(), bytes_by_method.len(), "{rows:?}");
    for row in &rows {
        let method = row[0].as_str().map(str::to_owned);
        let (count, values) = &bytes_by_method[&method];
        let as_json = |v: Option<f64>| v.map_or(Value::Null, |v| json!(v as u64));
        assert_eq!(row[1], json!(count), "{method:?}");
        assert_eq!(row[2], json!(values.len()), "{method:?}");
        if values.is_empty() {
            assert!(row[3..].iter().all(Value::is_null), "{method:?}: {row:?}");
            continue;
        }
        assert_eq!(number(&row[3]), values.iter().sum::<f64>(), "{method:?}");
        assert_eq!(
            row[4],
            as_json(values.iter().copied().reduce(f64::min)),
            "{method:?}"
        );
        assert_eq!(
            row[5],
            as_json(values.iter().copied().reduce(f64::max)),
            "{method:?}"
        );
        assert_eq!(row[6], as_json(percentile(values, 50.0)), "{method:?}");
        assert_eq!(row[7], as_json(percentile(values, 99.0)), "{method:?}");
    }

    // sort and limit on a computed column: the five most requested paths.
    let mut by_path: HashMap<Option<String>, u64> = HashMap::new();
    for a in &access {
        *by_path.entry(a.path.clone()).or_default() += 1;
    }
    let mut paths: Vec<(Option<String>, u64)> = by_path.into_iter().collect();
    paths.sort_by(|(pa, a), (pb, b)| {
        b.cmp(a)
            .then(pa.is_none().cmp(&pb.is_none()))
            .then(pa.cmp(pb))
    });
    let (_, rows, _) = table(
        &url,
        &read,
        "| stats count() as hits by (path) | sort hits desc, path | limit 5",
    );
    let expected: Vec<Vec<Value>> = paths
        .iter()
        .take(5)
        .map(|(p, n)| vec![key_cell(p), json!(n)])
        .collect();
    assert_eq!(rows, expected);

    // timechart span=1h: every hour of the sample, empty ones as 0.
    let first = access.iter().map(|a| a.time_ms).min().unwrap();
    let last = access.iter().map(|a| a.time_ms).max().unwrap();
    let hour = 3_600_000;
    let (start, end) = (
        first.div_euclid(hour) * hour,
        (last.div_euclid(hour) + 1) * hour,
    );
    let mut per_hour: BTreeMap<i64, u64> = (start..end)
        .step_by(hour as usize)
        .map(|h| (h, 0))
        .collect();
    for a in &access {
        *per_hour
            .entry(a.time_ms.div_euclid(hour) * hour)
            .or_default() += 1;
    }
    let (columns, rows, body) = table_in(
        &url,
        &read,
        "| timechart span=1h count()",
        &rfc3339_utc(start),
        &rfc3339_utc(end),
    );
    assert_eq!(columns, ["_time", "count()"]);
    assert_eq!(body["interval_ms"], json!(hour));
    let expected: Vec<Vec<Value>> = per_hour
        .iter()
        .map(|(h, n)| vec![json!(rfc3339_utc(*h)), json!(n)])
        .collect();
    assert_eq!(rows, expected);

    // The CLI prints the same table, aligned.
    let output = Command::new(loghound_bin())
        .args([
            "stats",
            "| stats count() by (status)",
            "--from",
            FROM,
            "--to",
            TO,
        ])
        .args(["--server", &url, "--token", &read])
        .output()
        .expect("run loghound stats");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let mut expected = vec![vec!["status", "count()"]];
    let status_rows: Vec<(String, String)> = by_status
        .iter()
        .map(|(s, n)| (s.to_string(), n.to_string()))
        .collect();
    expected.extend(
        status_rows
            .iter()
            .map(|(s, n)| vec![s.as_str(), n.as_str()]),
    );
    assert_eq!(printed, expected, "{stdout}");
    let widths: BTreeSet<usize> = stdout.lines().map(|l| l.chars().count()).collect();
    assert_eq!(
        widths.len(),
        1,
        "right-aligned counts make equal lines: {stdout}"
    );
    // The fields of the matches: top values, distinct counts and numeric
    // summaries, against the same raw lines.
    let fields = |q: &str| -> Value {
        let answer = get_with_params(
            &url,
            "/api/v1/fields",
            Some(&read),
            &[("q", q), ("from", FROM), ("to", TO), ("top", "3")],
        )
        .expect("fields");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    let body = fields("");
    assert_eq!(body["count"], json!(lines.len()));
    let field = |body: &Value, name: &str| -> Value {
        body["fields"]
            .as_array()
            .and_then(|all| all.iter().find(|f| f["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no field {name} in {body}"))
    };
    let status = field(&body, "status");
    assert_eq!(status["count"], json!(lines.len()));
    assert_eq!(status["distinct"], json!(by_status.len()));
    let mut frequent: Vec<(u64, u64)> = by_status.iter().map(|(s, n)| (*s, *n)).collect();
    frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let expected: Vec<Value> = frequent
        .iter()
        .take(3)
        .map(|(s, n)| json!({"value": s, "count": n}))
        .collect();
    assert_eq!(status["top"], json!(expected));
    let bytes: Vec<f64> = access
        .iter()
        .filter_map(|a| a.bytes.map(|b| b as f64))
        .collect();
    let sent = field(&body, "bytes");
    assert_eq!(sent["count"], json!(bytes.len()));
    let numeric = &sent["numeric"];
    assert_eq!(
        numeric["min"].as_f64(),
        bytes.iter().copied().reduce(f64::min),
        "{sent}"
    );
    assert_eq!(
        numeric["max"].as_f64(),
        bytes.iter().copied().reduce(f64::max),
        "{sent}"
    );
    assert_eq!(numeric["p99"].as_f64(), percentile(&bytes, 99.0), "{sent}");
    let mean = bytes.iter().sum::<f64>() / bytes.len() as f64;
    assert!(close(number(&numeric["avg"]), mean), "{sent}");
    let ips = field(&body, "client_ip");
    assert_eq!(ips["distinct"], json!(by_ip.len()));
    assert_eq!(
        ips["top"][0],
        json!({"value": ranked[0].0, "count": ranked[0].1})
    );
    assert!(ips.get("numeric").is_none(), "{ips}");
    let host = field(&body, "host");
    assert_eq!(host["count"], json!(lines.len()));
    assert_eq!(host["distinct"], json!(1));
    // A search narrows them as it narrows a search.
    let not_found = access.iter().filter(|a| a.status == 404).count();
    let body = fields("status:404 | stats count()");
    assert_eq!(body["count"], json!(not_found));
    assert_eq!(
        field(&body, "status")["top"],
        json!([{"value": 404, "count": not_found}])
    );
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn json_fields_give_exact_percentiles_and_averages_per_group() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut lines = String::new();
    // Per path: the durations (numbers, or numeric strings), users.
    let mut durations: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut users: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let n = 20_000;
    for i in 0..n {
        let path = format!("/api/v{}/items", random.below(40));
        let user = random.below(500);
        // Skewed: most requests are fast, a few are very slow.
        let duration = if random.below(50) == 0 {
            1000.0 + random.below(9_000_000) as f64 / 1000.0
        } else {
            random.below(300_000) as f64 / 1000.0
        };
        let mut line =
            json!({"msg": format!("request {i} done"), "path": path, "user": format!("u{user}")});
        match random.below(20) {
            0 => {} // no duration
            1 => line["duration_ms"] = json!(format!("{}", duration.round())),
            _ => line["duration_ms"] = json!(duration),
        }
        if let Some(d) = line.get("duration_ms") {
            let value = d
                .as_f64()
                .or_else(|| d.as_str().and_then(|s| s.parse().ok()));
            durations.entry(path.clone()).or_default().extend(value);
        }
        users.entry(path.clone()).or_default().insert(user);
        *counts.entry(path).or_default() += 1;
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(logs.join("api.log"), &lines).unwrap();

    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let (url, read) = (pipeline.url.clone(), pipeline.read_token.clone());
    wait_for_count(&url, &read, "", n, WAIT);

    let (columns, rows, body) = table(
        &url,
        &read,
        "| stats count(), avg(duration_ms), min(duration_ms), max(duration_ms), \
         p50(duration_ms), p90(duration_ms), p99(duration_ms), count_distinct(user) by (path)",
    );
    assert_eq!(columns.len(), 9, "{columns:?}");
    assert!(
        body.get("estimated").is_none(),
        "small groups are exact: {body}"
    );
    let expected_paths: Vec<&String> = counts.keys().collect();
    let got_paths: Vec<&str> = rows
        .iter()
        .map(|r| r[0].as_str().expect("a path"))
        .collect();
    assert_eq!(got_paths, expected_paths, "groups in path order");
    for row in &rows {
        let path = row[0].as_str().unwrap_or_default();
        let values = &durations[path];
        assert_eq!(row[1], json!(counts[path]), "{path}");
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            close(number(&row[2]), mean),
            "{path}: avg {} vs {mean}",
            row[2]
        );
        let min = values.iter().copied().reduce(f64::min).unwrap();
        let max = values.iter().copied().reduce(f64::max).unwrap();
        assert!(close(number(&row[3]), min), "{path}: min");
        assert!(close(number(&row[4]), max), "{path}: max");
        for (column, p) in [(5, 50.0), (6, 90.0), (7, 99.0)] {
            let exact = percentile(values, p).unwrap();
            assert!(
                close(number(&row[column]), exact),
                "{path}: p{p} {} vs {exact}",
                row[column]
            );
        }
        assert_eq!(row[8], json!(users[path].len()), "{path}");
    }

    // The slowest paths by p99, as an operator asks it.
    let mut by_p99: Vec<(f64, &String)> = durations
        .iter()
        .map(|(p, v)| (percentile(v, 99.0).unwrap(), p))
        .collect();
    by_p99.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let (_, rows, _) = table(
        &url,
        &read,
        "| stats p99(duration_ms) by (path) | sort p99(duration_ms) desc | limit 3",
    );
    let got: Vec<&str> = rows
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default())
        .collect();
    let expected: Vec<&str> = by_p99.iter().take(3).map(|(_, p)| p.as_str()).collect();
    assert_eq!(got, expected);
}

#[test]
fn bad_pipes_get_positioned_errors() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("a.log"), "one line\n").unwrap();
    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let (url, read) = (pipeline.url.clone(), pipeline.read_token.clone());
    wait_for_count(&url, &read, "", 1, WAIT);
    for (q, position, words) in [
        ("error | stats p99() by (path)", 14, "needs a field"),
        (
            "| stats count() by (status) | sort hits",
            35,
            "no column 'hits'",
        ),
        ("| stats bogus(x)", 8, "unknown aggregate"),
        ("| stats count() | top 5 by host", 18, "only one of"),
        ("| limit 5", 2, "needs a table"),
        ("| timechart span=1x count()", 17, "invalid span"),
        ("| stats count() by (message)", 20, "cannot be grouped"),
        ("error", 5, "needs pipes"),
        ("(error | stats count()", 0, ""),
    ] {
        let answer = stats_answer(&url, &read, q, FROM, TO);
        assert_eq!(answer.status, 400, "{q:?}: {}", answer.body);
        let error = answer.error_body();
        if !words.is_empty() {
            assert_eq!(error.position, Some(position), "{q:?}: {}", answer.body);
            assert!(error.error.contains(words), "{q:?}: {}", error.error);
        } else {
            assert!(error.position.is_some(), "{q:?}: {}", answer.body);
        }
    }
    // A search is refused at the pipe, which it cannot answer.
    let answer = get_with_params(
        &url,
        "/api/v1/search",
        Some(&read),
        &[("q", "one | stats count()")],
    )
    .expect("search");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.error_body().position, Some(4), "{}", answer.body);
    // A `|` inside quotes is text, not a pipe.
    let answer =
        get_with_params(&url, "/api/v1/search", Some(&read), &[("q", "\"a|b\"")]).expect("search");
    assert_eq!(answer.status, 200, "{}", answer.body);
}
