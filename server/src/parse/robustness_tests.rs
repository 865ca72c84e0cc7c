//! `parse` must never panic: every format cut short at every character,
//! non-ASCII spliced in at every position, and random strings.

use proptest::prelude::*;

use super::{parse, FormatHint};

const HINTS: [FormatHint; 5] = [
    FormatHint::Auto,
    FormatHint::Json,
    FormatHint::Apache,
    FormatHint::Syslog,
    FormatHint::Plain,
];

/// 2026-11-18T12:00:00Z, and two extremes.
const RECEIVED: [i64; 3] = [1_795_003_200_000, i64::MIN, i64::MAX];

/// One line of every shape the scanners know.
const SAMPLES: [&str; 21] = [
    "2026-11-17T04:12:00.123+01:00 ERROR [main] x",
    "2026-11-17 03:12:00,123 - WARN  [a@1] - y",
    "2005-06-03-15.42.50.675872 R02 RAS KERNEL FATAL z",
    "2026/11/17 03:12:00 [error] 12#0: *1 open()",
    "<34>1 2026-11-17T03:12:00.003Z web3 su 812 ID47 - msg",
    "<13>Nov  4 03:12:00 web3 sshd[812]: error: x",
    "[Sun Dec 04 04:47:44.123456 2005] [notice] x",
    r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /a HTTP/1.1" 200 2 "-" "ua" 0.5"#,
    "17/06/09 20:10:40 INFO spark.X: y",
    "081109 203615 148 INFO dfs.DataNode: z",
    "03-17 16:13:38.811  1702  2395 D Tag: w",
    "20171223-22:15:29:606|Step_LSC|30002312|x",
    "[10.30 16:49:06] chrome.exe - x",
    "25-Nov-2025 03:12:00.123 INFO [main] y",
    "I1117 03:12:00.123456   1 main.go:10] x",
    "1794913600.25 x",
    "1794913600123 y",
    r#"{"time":"2026-11-17T03:12:00Z","level":30,"a":{"b":[1,"x",{"c":null}]}}"#,
    "- 1117838570 2005.06.03 R02 2005-06-03-15.42.50.675872 R02 RAS KERNEL INFO",
    "Jun 14 15:16:01 combo syslogd 1.4.1: restart.",
    "2026-11-17 03:12:00 ERROR:root:boom level=warn",
];

const SPLICES: [&str; 6] = ["é", "日", "\u{1F600}", "\0", "\u{feff}", "\r"];

fn parse_every_way(line: &str) {
    for hint in HINTS {
        for received_at_ms in RECEIVED {
            let _ = parse(line, hint, received_at_ms);
        }
    }
}

#[test]
fn every_prefix_of_every_format() {
    for sample in SAMPLES {
        for (index, _) in sample.char_indices().chain([(sample.len(), ' ')]) {
            parse_every_way(&sample[..index]);
            parse_every_way(&sample[index..]);
        }
    }
}

#[test]
fn non_ascii_at_every_position() {
    for sample in SAMPLES {
        for (index, replaced) in sample.char_indices() {
            for splice in SPLICES {
                let inserted = format!("{}{splice}{}", &sample[..index], &sample[index..]);
                parse_every_way(&inserted);
                let after = index + replaced.len_utf8();
                let overwritten = format!("{}{splice}{}", &sample[..index], &sample[after..]);
                parse_every_way(&overwritten);
            }
        }
    }
}

#[test]
fn samples_all_find_a_timestamp() {
    // Guards the samples above: a sample no scanner recognises would make
    // the two tests above exercise nothing.
    for sample in SAMPLES {
        let parsed = parse(sample, FormatHint::Auto, RECEIVED[0]);
        assert!(parsed.timestamp_ms.is_some(), "{sample}");
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(line in any::<String>()) {
        parse_every_way(&line);
    }

    #[test]
    fn timestamp_like_noise_never_panics(
        line in r#"[<>0-9 :.,/+TZ\[\]{}"=a-zA-Zé日-]{0,80}"#
    ) {
        parse_every_way(&line);
    }

    #[test]
    fn sample_mutations_never_panic(
        sample in prop::sample::select(&SAMPLES[..]),
        cut in 0usize..120,
        noise in r#"[0-9 :.\-é\[\]"]{0,6}"#,
    ) {
        let mut line = sample.to_owned();
        let mut cut = cut.min(line.len());
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.insert_str(cut, &noise);
        parse_every_way(&line);
    }
}
