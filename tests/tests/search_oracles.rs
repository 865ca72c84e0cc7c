//! Search answers checked against oracles nobody here wrote: loghub's
//! structured CSVs (each line's Level, Component, EventTemplate and time)
//! and the raw Apache access log, counted independently in this file.
//!
//! The lines go through the real agent into the real server; every expected
//! count comes from the CSV (or, for the access log, from splitting the raw
//! line here), never from the server's own parsing code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use loghound_tests::data::{complete_lines, days_from_civil, rfc3339_utc, words};
use loghound_tests::http::get_search;
use loghound_tests::paths::{corpus_dir, loghub_file};
use loghound_tests::{temp_dir, wait_for_count, Pipeline};

const WAIT: Duration = Duration::from_secs(120);

/// One CSV row, by column name.
type Row = HashMap<String, String>;

struct Dataset {
    name: &'static str,
    /// CSV column holding the level, if the dataset has one.
    level_column: Option<&'static str>,
    /// CSV column naming the component, if any.
    component_column: Option<&'static str>,
    /// Event time from a CSV row, for datasets whose lines carry a full date.
    time_ms: Option<fn(&Row) -> Option<i64>>,
}

const DATASETS: [Dataset; 12] = [
    Dataset {
        name: "Android",
        level_column: Some("Level"),
        component_column: Some("Component"),
        time_ms: None,
    },
    Dataset {
        name: "Apache",
        level_column: Some("Level"),
        component_column: None,
        time_ms: Some(apache_time),
    },
    Dataset {
        name: "BGL",
        level_column: Some("Level"),
        component_column: Some("Component"),
        time_ms: Some(bgl_time),
    },
    Dataset {
        name: "HDFS",
        level_column: Some("Level"),
        component_column: Some("Component"),
        time_ms: Some(hdfs_time),
    },
    Dataset {
        name: "HPC",
        level_column: None,
        component_column: Some("Component"),
        time_ms: None,
    },
    Dataset {
        name: "Hadoop",
        level_column: Some("Level"),
        component_column: Some("Component"),
        time_ms: Some(dash_date_comma_time),
    },
    Dataset {
        name: "HealthApp",
        level_column: None,
        component_column: Some("Component"),
        time_ms: Some(healthapp_time),
    },
    Dataset {
        name: "Linux",
        level_column: None,
        component_column: Some("Component"),
        time_ms: None,
    },
    Dataset {
        name: "OpenSSH",
        level_column: None,
        component_column: None,
        time_ms: None,
    },
    Dataset {
        name: "Proxifier",
        level_column: None,
        component_column: Some("Program"),
        time_ms: None,
    },
    Dataset {
        name: "Spark",
        level_column: Some("Level"),
        component_column: Some("Component"),
        time_ms: Some(spark_time),
    },
    Dataset {
        name: "Zookeeper",
        level_column: Some("Level"),
        component_column: Some("Component"),
        time_ms: Some(dash_date_comma_time),
    },
];

/// loghub's level words as syslog severity names.
fn severity_of(level: &str) -> Option<&'static str> {
    Some(match level {
        "INFO" | "I" => "info",
        "WARN" | "WARNING" | "W" => "warning",
        "ERROR" | "error" | "E" | "SEVERE" => "error",
        "FATAL" | "F" => "critical",
        "DEBUG" | "D" | "V" => "debug",
        "notice" => "notice",
        _ => return None,
    })
}

fn ms(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64, milli: i64) -> i64 {
    ((days_from_civil(year, month, day) * 24 + h) * 60 + m) * 60_000 + s * 1000 + milli
}

fn num(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

/// `HH:MM:SS` with an optional `,mmm` or `.mmm` (longer fractions cut to ms).
fn clock(text: &str) -> Option<(i64, i64, i64, i64)> {
    let (hms, frac) = match text.find([',', '.']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let mut parts = hms.split(':');
    let (h, m, s) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    let milli = if frac.is_empty() {
        0
    } else {
        num(&format!("{:0<3}", &frac[..frac.len().min(3)]))?
    };
    Some((h, m, s, milli))
}

fn col<'a>(row: &'a HashMap<String, String>, name: &str) -> &'a str {
    row.get(name).map(String::as_str).unwrap_or_default()
}

fn hdfs_time(row: &HashMap<String, String>) -> Option<i64> {
    let (d, t) = (col(row, "Date"), format!("{:0>6}", col(row, "Time")));
    Some(ms(
        2000 + num(&d[0..2])?,
        num(&d[2..4])?,
        num(&d[4..6])?,
        num(&t[0..2])?,
        num(&t[2..4])?,
        num(&t[4..6])?,
        0,
    ))
}

fn dash_date_comma_time(row: &HashMap<String, String>) -> Option<i64> {
    let d: Vec<i64> = col(row, "Date").split('-').filter_map(num).collect();
    let (h, m, s, milli) = clock(col(row, "Time"))?;
    Some(ms(*d.first()?, *d.get(1)?, *d.get(2)?, h, m, s, milli))
}

fn spark_time(row: &HashMap<String, String>) -> Option<i64> {
    let d: Vec<i64> = col(row, "Date").split('/').filter_map(num).collect();
    let (h, m, s, milli) = clock(col(row, "Time"))?;
    Some(ms(
        2000 + d.first()?,
        *d.get(1)?,
        *d.get(2)?,
        h,
        m,
        s,
        milli,
    ))
}

fn bgl_time(row: &HashMap<String, String>) -> Option<i64> {
    // 2005-06-03-15.42.50.675872
    let t = col(row, "Time");
    let p: Vec<&str> = t.splitn(4, '-').collect();
    let hms: Vec<&str> = p.get(3)?.split('.').collect();
    let micros = hms.get(3)?;
    Some(ms(
        num(p[0])?,
        num(p.get(1)?)?,
        num(p.get(2)?)?,
        num(hms[0])?,
        num(hms[1])?,
        num(hms[2])?,
        num(&micros[..3])?,
    ))
}

fn apache_time(row: &HashMap<String, String>) -> Option<i64> {
    // Sun Dec 04 04:47:44 2005
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = col(row, "Time").split_whitespace().collect();
    let month_name = *parts.get(1)?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let (h, m, s, milli) = clock(parts.get(3)?)?;
    Some(ms(
        num(parts.get(4)?)?,
        month,
        num(parts.get(2)?)?,
        h,
        m,
        s,
        milli,
    ))
}

fn healthapp_time(row: &HashMap<String, String>) -> Option<i64> {
    // 20171223-22:15:29:606, parts unpadded; the last is milliseconds
    let (d, t) = col(row, "Time").split_once('-')?;
    let c: Vec<i64> = t.split(':').filter_map(num).collect();
    Some(ms(
        num(&d[0..4])?,
        num(&d[4..6])?,
        num(&d[6..8])?,
        *c.first()?,
        *c.get(1)?,
        *c.get(2)?,
        *c.get(3)?,
    ))
}

fn read_csv(name: &str) -> Vec<HashMap<String, String>> {
    let path = corpus_dir()
        .join("loghub")
        .join(format!("{name}_2k.log_structured.csv"));
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = reader.headers().expect("CSV headers").clone();
    reader
        .records()
        .map(|r| {
            let record = r.expect("CSV record");
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Phrases (as word lists) that every line of a template contains: the
/// constant parts between `<*>`.
fn template_phrases(template: &str) -> Vec<Vec<String>> {
    template
        .split("<*>")
        .map(|fragment| words(fragment).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect()
}

fn contains_phrase(line_words: &[String], phrase: &[String]) -> bool {
    line_words.windows(phrase.len()).any(|w| w == phrase)
}

fn quoted(phrases: &[Vec<String>]) -> String {
    phrases
        .iter()
        .map(|p| format!("\"{}\"", p.join(" ")))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Check {
    failures: Vec<String>,
    passed: usize,
}

impl Check {
    fn count(
        &mut self,
        url: &str,
        token: &str,
        what: &str,
        q: &str,
        range: (&str, &str),
        expected: u64,
    ) {
        let answer = get_search(
            url,
            Some(token),
            &[("q", q), ("from", range.0), ("to", range.1), ("limit", "0")],
        );
        let got = match answer {
            Ok(a) if a.status == 200 => serde_json::from_str::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| v["count"].as_u64()),
            Ok(a) => {
                self.failures
                    .push(format!("{what}: {q:?} answered {}: {}", a.status, a.body));
                return;
            }
            Err(e) => {
                self.failures.push(format!("{what}: {q:?} failed: {e}"));
                return;
            }
        };
        if got == Some(expected) {
            self.passed += 1;
        } else {
            self.failures.push(format!(
                "{what}: {q:?} counted {got:?}, the oracle says {expected}"
            ));
        }
    }
}

const ALL: (&str, &str) = ("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z");

fn write_with_final_newline(from: &Path, to: &Path) -> Vec<String> {
    let mut contents = std::fs::read(from).expect("read corpus file");
    if !contents.ends_with(b"\n") {
        contents.push(b'\n');
    }
    std::fs::write(to, &contents).expect("write watched file");
    complete_lines(&contents)
}

#[test]
fn loghub_counts_match_the_structured_csvs() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut raw: BTreeMap<&str, (PathBuf, Vec<String>)> = BTreeMap::new();
    for dataset in &DATASETS {
        let path = logs.join(format!("{}.log", dataset.name.to_lowercase()));
        let lines = write_with_final_newline(&loghub_file(dataset.name), &path);
        raw.insert(dataset.name, (path, lines));
    }
    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let (url, read) = (pipeline.url.clone(), pipeline.read_token.clone());
    wait_for_count(&url, &read, "", 2000 * DATASETS.len() as u64, WAIT);

    let mut check = Check {
        failures: Vec::new(),
        passed: 0,
    };
    for dataset in &DATASETS {
        let rows = read_csv(dataset.name);
        let (path, lines) = &raw[dataset.name];
        assert_eq!(
            rows.len(),
            lines.len(),
            "{}: CSV rows vs raw lines",
            dataset.name
        );
        let source = format!("source:\"{}\"", path.display());
        let line_words: Vec<Vec<String>> = lines.iter().map(|l| words(l).collect()).collect();
        check.count(&url, &read, dataset.name, &source, ALL, rows.len() as u64);

        // Severity, from the CSV's own Level column.
        if let Some(column) = dataset.level_column {
            let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
            for row in &rows {
                let level = col(row, column);
                let severity = severity_of(level)
                    .unwrap_or_else(|| panic!("{}: unmapped level {level:?}", dataset.name));
                *expected.entry(severity).or_default() += 1;
            }
            for (severity, n) in expected {
                check.count(
                    &url,
                    &read,
                    dataset.name,
                    &format!("{source} severity:{severity}"),
                    ALL,
                    n,
                );
            }
        }

        // Components and templates whose words single out exactly their own
        // rows among this dataset's raw lines.
        let mut groups: Vec<(String, Vec<Vec<String>>, BTreeSet<usize>)> = Vec::new();
        let mut by_key: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            by_key
                .entry(format!("template\u{0}{}", col(row, "EventTemplate")))
                .or_default()
                .insert(i);
            if let Some(column) = dataset.component_column {
                by_key
                    .entry(format!("component\u{0}{}", col(row, column)))
                    .or_default()
                    .insert(i);
            }
        }
        for (key, members) in by_key {
            let (kind, text) = key.split_once('\u{0}').expect("key has a kind");
            let phrases = if kind == "template" {
                template_phrases(text)
            } else {
                vec![words(text).collect()]
            };
            if phrases.is_empty() || phrases.iter().any(Vec::is_empty) {
                continue;
            }
            let matching: BTreeSet<usize> = (0..lines.len())
                .filter(|&i| phrases.iter().all(|p| contains_phrase(&line_words[i], p)))
                .collect();
            if matching == members {
                groups.push((format!("{} {kind}", dataset.name), phrases, members));
            }
        }
        assert!(
            groups.len() >= 3,
            "{}: too few distinctive templates/components ({})",
            dataset.name,
            groups.len()
        );
        for (what, phrases, members) in groups.iter().take(25) {
            check.count(
                &url,
                &read,
                what,
                &format!("{source} {}", quoted(phrases)),
                ALL,
                members.len() as u64,
            );
        }

        // A time range from the CSV's own timestamps: [25th, 75th percentile).
        if let Some(time_ms) = dataset.time_ms {
            let mut times: Vec<i64> = rows
                .iter()
                .map(|r| {
                    time_ms(r)
                        .unwrap_or_else(|| panic!("{}: unreadable CSV time in {r:?}", dataset.name))
                })
                .collect();
            times.sort_unstable();
            let (from, to) = (times[times.len() / 4], times[times.len() * 3 / 4]);
            let expected = times.iter().filter(|&&t| t >= from && t < to).count() as u64;
            assert!(
                expected > 0 && from < to,
                "{}: degenerate time range",
                dataset.name
            );
            let range = (rfc3339_utc(from), rfc3339_utc(to));
            check.count(
                &url,
                &read,
                &format!("{} time range", dataset.name),
                &source,
                (&range.0, &range.1),
                expected,
            );
        }
    }
    assert!(
        check.failures.is_empty(),
        "{} of {} oracle checks failed:\n{}",
        check.failures.len(),
        check.failures.len() + check.passed,
        check.failures.join("\n")
    );
    assert!(check.passed > 100, "only {} checks ran", check.passed);
}

#[test]
fn access_log_fields_match_counts_from_the_raw_file() {
    let tmp = temp_dir();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let path = logs.join("access.log");
    let lines = write_with_final_newline(
        &corpus_dir().join("apache_access").join("apache_logs"),
        &path,
    );

    // Split each raw line here: `... "METHOD path proto" status bytes ...`.
    let (mut server_errors, mut not_found, mut posts) = (0u64, 0u64, 0u64);
    for line in &lines {
        let quoted_parts: Vec<&str> = line.split('"').collect();
        let method = quoted_parts
            .get(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default();
        let status: u32 = quoted_parts
            .get(2)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        server_errors += u64::from(status >= 500);
        not_found += u64::from(status == 404);
        posts += u64::from(method == "POST");
    }
    assert!(
        server_errors > 0 && not_found > 0 && posts > 0,
        "the sample has each kind"
    );

    let pipeline = Pipeline::start(tmp.path(), &format!("{}/*.log", logs.display()));
    let (url, read) = (pipeline.url.clone(), pipeline.read_token.clone());
    wait_for_count(&url, &read, "", lines.len() as u64, WAIT);
    let mut check = Check {
        failures: Vec::new(),
        passed: 0,
    };
    check.count(&url, &read, "access", "status:>=500", ALL, server_errors);
    check.count(&url, &read, "access", "status:404", ALL, not_found);
    check.count(&url, &read, "access", "method:POST", ALL, posts);
    check.count(&url, &read, "access", "method:post status:404", ALL, {
        lines
            .iter()
            .filter(|l| {
                let q: Vec<&str> = l.split('"').collect();
                q.get(1).is_some_and(|r| r.starts_with("POST "))
                    && q.get(2).and_then(|s| s.split_whitespace().next()) == Some("404")
            })
            .count() as u64
    });
    assert!(check.failures.is_empty(), "{}", check.failures.join("\n"));
}
