//! Oracle tests on real logs nobody here wrote: every line of the 12 loghub
//! samples against loghub's own structured CSV, and every line of an
//! Apache combined access log against an independent regex. Expected
//! times are computed with the `time` crate from the CSV's columns, read
//! as UTC; year-less formats get the year of the fixed receive time.

use std::path::PathBuf;

use csv::StringRecord;
use time::format_description::{self, OwnedFormatItem};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{parse, FormatHint, Severity};

/// 2017-12-31T12:00:00Z: after every sample, so year-less lines are 2017.
const RECEIVED_AT_MS: i64 = 1_514_721_600_000;
const YEAR: &str = "2017";
/// The one dataset whose timestamps are knowingly not found.
const HPC: &str = "HPC";

fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(
        dir.is_dir(),
        "the shared log corpus is missing: expected it at {}",
        dir.display()
    );
    dir
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Lines as a tailer delivers them: split on `\n`, CR kept for `parse`.
fn lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

fn format(description: &str) -> OwnedFormatItem {
    format_description::parse_owned::<2>(description).expect("valid format description")
}

/// Parses `text` with `description` as UTC, returning ms since the epoch.
fn utc_ms(text: &str, description: &OwnedFormatItem) -> i64 {
    let time = PrimitiveDateTime::parse(text, description)
        .unwrap_or_else(|error| panic!("oracle cannot parse {text:?}: {error}"));
    (time.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Loghub's Level column as a severity, mapped independently of the parser.
fn level_oracle(level: &str) -> Severity {
    match level {
        "INFO" | "I" => Severity::Info,
        "WARN" | "WARNING" | "W" => Severity::Warning,
        "ERROR" | "error" | "E" => Severity::Error,
        "SEVERE" => Severity::Error,
        "FATAL" | "F" => Severity::Critical,
        "notice" => Severity::Notice,
        "D" | "V" => Severity::Debug,
        other => panic!("no oracle mapping for level {other:?}"),
    }
}

struct Dataset {
    name: &'static str,
    /// The line's time from its CSV row.
    expected_ms: fn(&Columns) -> Option<i64>,
    /// Whether the CSV's `Level` column is a severity.
    has_level: bool,
}

/// One CSV row by column name.
struct Columns<'a> {
    headers: &'a StringRecord,
    record: &'a StringRecord,
}

impl Columns<'_> {
    fn get(&self, name: &str) -> &str {
        let index = self
            .headers
            .iter()
            .position(|header| header == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        &self.record[index]
    }
}

fn iso(text: &str) -> i64 {
    utc_ms(
        text,
        &format("[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"),
    )
}

const DATASETS: [Dataset; 12] = [
    Dataset {
        name: "Android",
        expected_ms: |c| Some(iso(&format!("{YEAR}-{} {}", c.get("Date"), c.get("Time")))),
        has_level: true,
    },
    Dataset {
        name: "Apache",
        expected_ms: |c| {
            let ctime =
                "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] [year]";
            Some(utc_ms(c.get("Time"), &format(ctime)))
        },
        has_level: true,
    },
    Dataset {
        name: "BGL",
        expected_ms: |c| {
            let ibm = "[year]-[month]-[day]-[hour].[minute].[second].[subsecond]";
            Some(utc_ms(c.get("Time"), &format(ibm)))
        },
        has_level: true,
    },
    Dataset {
        name: "HDFS",
        expected_ms: |c| {
            let compact = "[year][month][day] [hour][minute][second]";
            Some(utc_ms(
                &format!("20{} {}", c.get("Date"), c.get("Time")),
                &format(compact),
            ))
        },
        has_level: true,
    },
    Dataset {
        name: "HPC",
        expected_ms: |c| Some(c.get("Time").parse::<i64>().expect("epoch") * 1000),
        has_level: false,
    },
    Dataset {
        name: "Hadoop",
        expected_ms: |c| {
            Some(iso(&format!(
                "{} {}",
                c.get("Date"),
                c.get("Time").replace(',', ".")
            )))
        },
        has_level: true,
    },
    Dataset {
        name: "HealthApp",
        expected_ms: |c| {
            // Java's `yyyyMMdd-H:m:s:S`: unpadded, the last a count of ms.
            let (date, time) = c.get("Time").split_once('-').expect("date-time");
            let parts: Vec<i64> = time
                .split(':')
                .map(|part| part.parse().expect("number"))
                .collect();
            let midnight = utc_ms(
                &format!("{date} 00:00:00"),
                &format("[year][month][day] [hour]:[minute]:[second]"),
            );
            Some(midnight + ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000 + parts[3])
        },
        has_level: false,
    },
    Dataset {
        name: "Linux",
        expected_ms: |c| Some(syslog_ms(c.get("Month"), c.get("Date"), c.get("Time"))),
        has_level: false, // its Level column is the host name
    },
    Dataset {
        name: "OpenSSH",
        expected_ms: |c| Some(syslog_ms(c.get("Date"), c.get("Day"), c.get("Time"))),
        has_level: false,
    },
    Dataset {
        name: "Proxifier",
        expected_ms: |c| {
            let text = format!("{YEAR}.{}", c.get("Time"));
            Some(utc_ms(
                &text,
                &format("[year].[month].[day] [hour]:[minute]:[second]"),
            ))
        },
        has_level: false,
    },
    Dataset {
        name: "Spark",
        expected_ms: |c| {
            Some(iso(&format!(
                "20{} {}",
                c.get("Date").replace('/', "-"),
                c.get("Time")
            )))
        },
        has_level: true,
    },
    Dataset {
        name: "Zookeeper",
        expected_ms: |c| {
            Some(iso(&format!(
                "{} {}",
                c.get("Date"),
                c.get("Time").replace(',', ".")
            )))
        },
        has_level: true,
    },
];

fn syslog_ms(month: &str, day: &str, time: &str) -> i64 {
    let text = format!("{YEAR} {month} {day} {time}");
    let description = "[year] [month repr:short] [day padding:none] [hour]:[minute]:[second]";
    utc_ms(&text, &format(description))
}

struct Rates {
    lines: usize,
    timestamp_hits: usize,
    timestamps_found: usize,
    severity_hits: usize,
    severity_found_without_level_column: usize,
    /// Lines without a Level column that the parser gave a level, and why.
    unlabelled_levels: Vec<String>,
}

fn check_dataset(dataset: &Dataset) -> Rates {
    let dir = corpus_dir().join("loghub");
    let log = read(dir.join(format!("{}_2k.log", dataset.name)));
    let csv_path = dir.join(format!("{}_2k.log_structured.csv", dataset.name));
    let mut reader = csv::Reader::from_path(&csv_path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", csv_path.display()));
    let headers = reader.headers().expect("a header row").clone();
    let records: Vec<StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("well-formed CSV");
    let lines = lines(&log);
    assert_eq!(lines.len(), records.len(), "{}: line count", dataset.name);

    let mut rates = Rates {
        lines: lines.len(),
        timestamp_hits: 0,
        timestamps_found: 0,
        severity_hits: 0,
        severity_found_without_level_column: 0,
        unlabelled_levels: Vec::new(),
    };
    let mut misses = Vec::new();
    for (line_number, (line, record)) in lines.iter().zip(&records).enumerate() {
        let columns = Columns {
            headers: &headers,
            record,
        };
        assert_eq!(columns.get("LineId"), (line_number + 1).to_string());
        let parsed = parse(line, FormatHint::Auto, RECEIVED_AT_MS);
        let expected_ms = (dataset.expected_ms)(&columns);
        rates.timestamps_found += usize::from(parsed.timestamp_ms.is_some());
        if parsed.timestamp_ms == expected_ms {
            rates.timestamp_hits += 1;
        } else if misses.len() < 5 {
            misses.push(format!(
                "time {:?} != {expected_ms:?}: {line}",
                parsed.timestamp_ms
            ));
        }
        if dataset.has_level {
            let expected = level_oracle(columns.get("Level"));
            if parsed.severity == Some(expected) {
                rates.severity_hits += 1;
            } else if misses.len() < 5 {
                misses.push(format!(
                    "severity {:?} != {expected:?}: {line}",
                    parsed.severity
                ));
            }
        } else if let Some(severity) = parsed.severity {
            rates.severity_found_without_level_column += 1;
            rates
                .unlabelled_levels
                .push(format!("{severity:?}: {line}"));
        }
    }
    eprintln!(
        "{:<10} lines {} timestamp {}/{} severity {}/{} (levels found where the CSV has none: {}) {misses:#?}",
        dataset.name,
        rates.lines,
        rates.timestamp_hits,
        rates.lines,
        rates.severity_hits,
        if dataset.has_level { rates.lines } else { 0 },
        rates.severity_found_without_level_column,
    );
    rates
}

#[test]
fn loghub_timestamps_and_severities_match_the_structured_csv() {
    let mut failures = Vec::new();
    for dataset in &DATASETS {
        let rates = check_dataset(dataset);
        if dataset.name == HPC {
            // Documented gap: HPC's epoch is its fifth token, and a bare
            // number mid-line is never taken as a time. No wrong guesses.
            assert_eq!(rates.timestamps_found, 0, "HPC");
        } else if rates.timestamp_hits != rates.lines {
            failures.push(format!("{}: timestamps", dataset.name));
        }
        if dataset.has_level && rates.severity_hits != rates.lines {
            failures.push(format!("{}: severities", dataset.name));
        }
    }
    assert!(failures.is_empty(), "mismatches (see stderr): {failures:?}");
}

#[test]
fn loghub_lines_without_a_level_column_get_no_invented_level() {
    // HPC, HealthApp, Proxifier and OpenSSH have no level column; Linux's
    // `combo` column is a host. A level found there must be one the line
    // itself states near its start, not a guess from the message body.
    for dataset in DATASETS.iter().filter(|dataset| !dataset.has_level) {
        let rates = check_dataset(dataset);
        let unexplained: Vec<&String> = rates
            .unlabelled_levels
            .iter()
            .filter(|line| !stated_level(line))
            .collect();
        assert!(unexplained.is_empty(), "{}: {unexplained:#?}", dataset.name);
    }
}

/// Whether `line` (as `"{severity:?}: {line}"`) states that level as the
/// first word of its syslog message: OpenSSH's `error: …`/`fatal: …`, xinetd's
/// `warning: …`, logrotate's cron job's `logger "ALERT exited …"`.
fn stated_level(line: &str) -> bool {
    let Some((severity, line)) = line.split_once(": ") else {
        return false;
    };
    let Some((_, message)) = line.split_once("]: ").or_else(|| line.split_once(": ")) else {
        return false;
    };
    let first_word = message
        .split(' ')
        .next()
        .unwrap_or_default()
        .trim_end_matches(':');
    matches!(
        (severity, first_word),
        ("Alert", "ALERT") | ("Critical", "fatal") | ("Error", "error") | ("Warning", "warning")
    )
}

#[test]
fn syslog_program_and_pid_match_the_csv() {
    let dir = corpus_dir().join("loghub");
    for (name, program_column, pid_column) in [
        ("Linux", Some("Component"), "PID"),
        ("OpenSSH", None, "Pid"),
    ] {
        let log = read(dir.join(format!("{name}_2k.log")));
        let mut reader =
            csv::Reader::from_path(dir.join(format!("{name}_2k.log_structured.csv"))).expect("csv");
        let headers = reader.headers().expect("headers").clone();
        let mut tags_with_spaces = 0;
        for (line, record) in lines(&log).iter().zip(reader.records()) {
            let record = record.expect("row");
            let columns = Columns {
                headers: &headers,
                record: &record,
            };
            let fields = parse(line, FormatHint::Auto, RECEIVED_AT_MS).fields;
            if let Some(column) = program_column {
                let program = columns.get(column);
                if program.contains(' ') {
                    // `syslogd 1.4.1: restart.`: a tag with a space is not
                    // recognised; then no field, rather than a wrong one.
                    tags_with_spaces += 1;
                    assert!(!fields.contains_key("program"), "{line}");
                    continue;
                }
                assert_eq!(fields["program"], program, "{line}");
            }
            match columns.get(pid_column) {
                "" => assert!(!fields.contains_key("pid"), "{line}"),
                pid => assert_eq!(fields["pid"].to_string(), pid, "{line}"),
            }
        }
        eprintln!("{name}: tags with a space, not recognised: {tags_with_spaces}");
        assert!(tags_with_spaces <= 8, "{name}: {tags_with_spaces}");
    }
}

#[test]
fn apache_access_log_fields_match_an_independent_regex() {
    let text = read(corpus_dir().join("apache_access/apache_logs"));
    let oracle = regex::Regex::new(
        r#"^\S+ \S+ \S+ \[([^\]]+)\] "(\S+) (\S+)(?: \S+)?" (\d{3}) (\d+|-)(?: |$)"#,
    )
    .expect("valid regex");
    let bracket = format(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]",
    );
    let lines = lines(&text);
    assert_eq!(lines.len(), 10_000);
    for line in lines {
        let captures = oracle
            .captures(line)
            .unwrap_or_else(|| panic!("the oracle does not match {line}"));
        let parsed = parse(line, FormatHint::Auto, RECEIVED_AT_MS);
        let fields = &parsed.fields;
        let time = OffsetDateTime::parse(&captures[1], &bracket).expect("bracket time");
        let expected_ms = (time.unix_timestamp_nanos() / 1_000_000) as i64;
        assert_eq!(parsed.timestamp_ms, Some(expected_ms), "{line}");
        assert_eq!(fields["method"], captures[2], "{line}");
        assert_eq!(fields["path"], captures[3], "{line}");
        assert_eq!(fields["status"].to_string(), captures[4], "{line}");
        match &captures[5] {
            "-" => assert!(!fields.contains_key("bytes"), "{line}"),
            bytes => assert_eq!(fields["bytes"].to_string(), bytes, "{line}"),
        }
        assert_eq!(parsed.severity, None);
    }
}
