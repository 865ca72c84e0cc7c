//! Severity: the eight syslog levels, the words and numbers programs use
//! for them, and the search for a level near the start of a text line.
//!
//! Mapping decisions (the aliases of [`Severity::from_word`]):
//! `emerg`/`panic` → emergency; `fatal` and `crit` → critical (log4j's
//! FATAL and Python's CRITICAL are the same top level; syslog's emergency
//! and alert are kept for lines that say so); Java's `severe` → error (its
//! highest level, as the log4j JUL bridge maps it); `trace`, `verbose`,
//! `fine`/`finer`/`finest` and `dbg` → debug. Single letters are never
//! words: [`Severity::from_letter`] is for a known level column only
//! (Android logcat's `V D I W E F A`, glog's `I W E F`).
//!
//! In text, a level is a whole token among the first 8 tokens after the
//! timestamp (or the first 8 of the line when there is none). An
//! all-capitals token (`ERROR`, `WARN`) counts as it is; a lower- or
//! mixed-case one only when decorated as levels are: `[error]`, `<warn>`,
//! `info:`, `level=debug`, `ERROR:root:` — so "failed to read error
//! count" is not an error line — or when it is the column right after a
//! timestamp that starts the line (`2016-09-28 04:30:30, Info  Component
//! …`, `2026-01-02 03:04:05 warn …`), where it can only be the level. Android logcat's level column (the letter
//! after `MM-dd HH:mm:ss.SSS pid tid`) is read explicitly.

use serde::{Deserialize, Serialize};

use super::timestamp::Found;

/// Tokens looked at after the timestamp.
const LEVEL_SEARCH_TOKENS: usize = 8;
/// Tokens looked at in all, when the timestamp was found mid-line.
const LEVEL_SEARCH_TOKENS_MAX: usize = 16;

/// Syslog severities, most severe first (their numeric order is 0..=7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 0: the system is unusable.
    Emergency,
    /// 1: act immediately.
    Alert,
    /// 2: critical conditions (also FATAL).
    Critical,
    /// 3: errors (also SEVERE).
    Error,
    /// 4: warnings.
    Warning,
    /// 5: normal but significant.
    Notice,
    /// 6: informational.
    Info,
    /// 7: debug (also TRACE, VERBOSE).
    Debug,
}

const ALL: [Severity; 8] = [
    Severity::Emergency,
    Severity::Alert,
    Severity::Critical,
    Severity::Error,
    Severity::Warning,
    Severity::Notice,
    Severity::Info,
    Severity::Debug,
];

impl Severity {
    /// The syslog name, as stored in the index: `emergency`, `alert`,
    /// `critical`, `error`, `warning`, `notice`, `info`, `debug`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Emergency => "emergency",
            Severity::Alert => "alert",
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
            Severity::Info => "info",
            Severity::Debug => "debug",
        }
    }

    /// The syslog number, 0 (emergency) to 7 (debug).
    pub fn syslog_code(self) -> u8 {
        self as u8
    }

    /// The severity of a syslog `<PRI>` value (its low three bits).
    pub fn from_syslog_pri(pri: u16) -> Severity {
        ALL[usize::from(pri % 8)]
    }

    /// A level word, case-insensitive, with the aliases in the module docs.
    pub fn from_word(word: &str) -> Option<Severity> {
        Self::from_word_bytes(word.as_bytes())
    }

    /// [`Severity::from_word`] on bytes.
    pub fn from_word_bytes(word: &[u8]) -> Option<Severity> {
        if word.len() < 3 || word.len() > 13 {
            return None;
        }
        let mut lower = [0u8; 13];
        for (slot, byte) in lower.iter_mut().zip(word) {
            *slot = byte.to_ascii_lowercase();
        }
        Some(match &lower[..word.len()] {
            b"emerg" | b"emergency" | b"panic" => Severity::Emergency,
            b"alert" => Severity::Alert,
            b"crit" | b"critical" | b"fatal" => Severity::Critical,
            b"err" | b"error" | b"severe" => Severity::Error,
            b"warn" | b"warning" => Severity::Warning,
            b"notice" => Severity::Notice,
            b"info" | b"information" | b"informational" => Severity::Info,
            b"debug" | b"dbg" | b"trace" | b"verbose" | b"fine" | b"finer" | b"finest" => {
                Severity::Debug
            }
            _ => return None,
        })
    }

    /// A one-letter level column (logcat `V D I W E F A`, glog `I W E F`).
    pub fn from_letter(letter: u8) -> Option<Severity> {
        Some(match letter {
            b'V' | b'D' => Severity::Debug,
            b'I' => Severity::Info,
            b'W' => Severity::Warning,
            b'E' => Severity::Error,
            b'F' | b'A' => Severity::Critical,
            _ => return None,
        })
    }

    /// A numeric level: syslog 0..=7, or bunyan/pino's 10 trace, 20
    /// debug, 30 info, 40 warn, 50 error, 60 fatal (in-between values
    /// round up to the next of these, so 45 is an error).
    pub fn from_number(number: f64) -> Option<Severity> {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        if number <= 7.0 && number.fract() == 0.0 {
            return Some(ALL[number as usize]);
        }
        Some(match number {
            n if n < 10.0 => return None,
            n if n <= 20.0 => Severity::Debug,
            n if n <= 30.0 => Severity::Info,
            n if n <= 40.0 => Severity::Warning,
            n if n <= 50.0 => Severity::Error,
            n if n <= 100.0 => Severity::Critical,
            _ => return None,
        })
    }
}

/// Looks for a level in the tokens near the start of a text line.
pub fn find_in_text(bytes: &[u8], start: usize, found: Option<&Found>) -> Option<Severity> {
    if let Some(found) = found {
        if let Some(severity) = logcat_column(bytes, found.end) {
            return Some(severity);
        }
        if let Some(severity) = column_after_timestamp(bytes, start, found) {
            return Some(severity);
        }
    }
    let mut tokens_after_timestamp = 0;
    for (token_start, token) in tokens(bytes, start).take(LEVEL_SEARCH_TOKENS_MAX) {
        if let Some(found) = found {
            if token_start < found.end && token_start + token.len() > found.start {
                continue; // part of the timestamp
            }
            if token_start >= found.end {
                tokens_after_timestamp += 1;
            }
        } else {
            tokens_after_timestamp += 1;
        }
        if tokens_after_timestamp > LEVEL_SEARCH_TOKENS {
            return None;
        }
        if let Some(severity) = level_token(token) {
            return Some(severity);
        }
    }
    None
}

/// Whitespace-separated tokens from `start`, with their offsets.
fn tokens(bytes: &[u8], start: usize) -> impl Iterator<Item = (usize, &[u8])> {
    let rest = bytes.get(start..).unwrap_or_default();
    let mut offset = start;
    rest.split(|byte| byte.is_ascii_whitespace())
        .map(move |token| {
            let token_start = offset;
            offset += token.len() + 1;
            (token_start, token)
        })
        .filter(|(_, token)| !token.is_empty())
}

/// Tokens that may stand before a line's leading timestamp (a sequence
/// number, a host) for the token after it still to be a column.
const TOKENS_BEFORE_TIMESTAMP: usize = 1;

/// The level column right after a timestamp at the start of the line:
/// the first token after it (past a lone separator such as `,`, `-` or
/// `|`), a level word in any case (`Info`, `warn`, `Error`): in that place
/// it is a column, not a word of the message.
fn column_after_timestamp(bytes: &[u8], start: usize, found: &Found) -> Option<Severity> {
    let leading = tokens(bytes, start)
        .take_while(|(token_start, _)| *token_start < found.start)
        .count();
    if leading > TOKENS_BEFORE_TIMESTAMP {
        return None;
    }
    let is_separator = |token: &[u8]| {
        token
            .iter()
            .all(|byte| matches!(byte, b',' | b'-' | b'|' | b':' | b';'))
    };
    let (_, token) = tokens(bytes, found.end)
        .take(2)
        .find(|(_, token)| !is_separator(token))?;
    let mut core = token;
    while let [b'[' | b'<' | b'(', rest @ ..] = core {
        core = rest;
    }
    while let [rest @ .., b']' | b'>' | b')' | b':' | b',' | b';' | b'|'] = core {
        core = rest;
    }
    Severity::from_word_bytes(core)
}

/// Logcat threadtime: after the timestamp, `pid tid L tag: …`.
fn logcat_column(bytes: &[u8], timestamp_end: usize) -> Option<Severity> {
    let mut rest = tokens(bytes, timestamp_end);
    let (_, pid) = rest.next()?;
    let (_, tid) = rest.next()?;
    let (_, level) = rest.next()?;
    let all_digits = |token: &[u8]| token.iter().all(u8::is_ascii_digit);
    if level.len() == 1 && all_digits(pid) && all_digits(tid) {
        Severity::from_letter(level[0])
    } else {
        None
    }
}

/// One token as a level, following the decoration rules in the module docs.
fn level_token(token: &[u8]) -> Option<Severity> {
    let first = *token.first()?;
    // Cheap reject: level words start with a letter, or a bracket before one.
    if !(first.is_ascii_alphabetic() || matches!(first, b'[' | b'<' | b'(' | b'"' | b'\'')) {
        return None;
    }
    let mut core = token;
    let mut decorated = false;
    while let [b'[' | b'<' | b'(' | b'"' | b'\'', rest @ ..] = core {
        core = rest;
        decorated = true;
    }
    while let [rest @ .., b']' | b'>' | b')' | b':' | b',' | b';' | b'"' | b'\'' | b'|'] = core {
        core = rest;
        decorated = true;
    }
    if let Some(equals) = core.iter().position(|&byte| byte == b'=') {
        let key = &core[..equals];
        let is_level_key = [&b"level"[..], b"severity", b"lvl", b"loglevel"]
            .iter()
            .any(|name| key.eq_ignore_ascii_case(name));
        if !is_level_key {
            return None;
        }
        core = &core[equals + 1..];
        while let [b'"' | b'\'', rest @ ..] = core {
            core = rest;
        }
        decorated = true;
    } else if let Some(colon) = core.iter().position(|&byte| byte == b':') {
        core = &core[..colon]; // Python's `ERROR:root:message`
        decorated = true;
    }
    let severity = Severity::from_word_bytes(core)?;
    let capitals = core.iter().all(u8::is_ascii_uppercase);
    (capitals || decorated).then_some(severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_text(line: &str) -> Option<Severity> {
        find_in_text(line.as_bytes(), 0, None)
    }

    #[test]
    fn names_and_codes_round_trip() {
        for (code, severity) in ALL.iter().enumerate() {
            assert_eq!(usize::from(severity.syslog_code()), code);
            assert_eq!(Severity::from_word(severity.name()), Some(*severity));
            assert_eq!(Severity::from_syslog_pri(code as u16 + 8 * 4), *severity);
        }
    }

    #[test]
    fn aliases() {
        for (word, expected) in [
            ("FATAL", Severity::Critical),
            ("Crit", Severity::Critical),
            ("SEVERE", Severity::Error),
            ("err", Severity::Error),
            ("WARN", Severity::Warning),
            ("Warning", Severity::Warning),
            ("informational", Severity::Info),
            ("TRACE", Severity::Debug),
            ("panic", Severity::Emergency),
            ("emerg", Severity::Emergency),
        ] {
            assert_eq!(Severity::from_word(word), Some(expected), "{word}");
        }
        for word in ["E", "w", "errors", "informative", "", "é", "warnings"] {
            assert_eq!(Severity::from_word(word), None, "{word}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(Severity::from_number(3.0), Some(Severity::Error));
        assert_eq!(Severity::from_number(0.0), Some(Severity::Emergency));
        assert_eq!(Severity::from_number(10.0), Some(Severity::Debug));
        assert_eq!(Severity::from_number(30.0), Some(Severity::Info));
        assert_eq!(Severity::from_number(40.0), Some(Severity::Warning));
        assert_eq!(Severity::from_number(50.0), Some(Severity::Error));
        assert_eq!(Severity::from_number(60.0), Some(Severity::Critical));
        assert_eq!(Severity::from_number(8.0), None);
        assert_eq!(Severity::from_number(-1.0), None);
        assert_eq!(Severity::from_number(f64::NAN), None);
    }

    #[test]
    fn decorated_and_capital_tokens() {
        assert_eq!(in_text("[error] x"), Some(Severity::Error));
        assert_eq!(in_text("app <warn> x"), Some(Severity::Warning));
        assert_eq!(in_text("info: listening"), Some(Severity::Info));
        assert_eq!(in_text("msg=x level=debug"), Some(Severity::Debug));
        assert_eq!(in_text("msg=x level=\"warn\""), Some(Severity::Warning));
        assert_eq!(in_text("ERROR:root:boom"), Some(Severity::Error));
        assert_eq!(in_text("- WARN  [main] x"), Some(Severity::Warning));
        assert_eq!(in_text("| INFO | x"), Some(Severity::Info));
    }

    #[test]
    fn body_words_are_not_levels() {
        assert_eq!(in_text("failed to read error count"), None);
        assert_eq!(in_text("status=error code=5"), None);
        assert_eq!(in_text("Error count is 5"), None);
        assert_eq!(
            in_text("a b c d e f g h ERROR"),
            None,
            "ninth token is too far"
        );
        assert_eq!(in_text("a b c d e f g ERROR"), Some(Severity::Error));
    }

    fn with_timestamp(line: &str) -> Option<Severity> {
        let found = crate::parse::timestamp::find(line.as_bytes(), 0, 1_795_000_000_000);
        find_in_text(line.as_bytes(), 0, found.as_ref())
    }

    #[test]
    fn a_level_word_in_any_case_is_the_column_after_a_leading_timestamp() {
        for (line, expected) in [
            (
                "2016-09-28 04:30:30, Info      CBS    Starting initialization.",
                Severity::Info,
            ),
            (
                "2026-01-02 03:04:05 warn disk almost full",
                Severity::Warning,
            ),
            ("2026-01-02T03:04:05Z Error: cannot bind", Severity::Error),
            (
                "2026-01-02 03:04:05,123 | Debug | cache miss",
                Severity::Debug,
            ),
            (
                "[2026-01-02 03:04:05] Notice server ready",
                Severity::Notice,
            ),
            (
                "17 2026-01-02 03:04:05 Fatal out of memory",
                Severity::Critical,
            ),
            ("2026/01/02 03:04:05 [Warn] retrying", Severity::Warning),
        ] {
            assert_eq!(with_timestamp(line), Some(expected), "{line}");
        }
        for line in [
            // Further into the message, a lower-case word stays a word.
            "2026-01-02 03:04:05 worker 3: error count is 5",
            "2026-01-02 03:04:05 Connection info refreshed",
            // A timestamp in the middle of free text starts no column.
            "job 42 of user ann ended at 2026-01-02 03:04:05 info sent",
            "2026-01-02 03:04:05 errors were found",
        ] {
            assert_eq!(with_timestamp(line), None, "{line}");
        }
    }

    #[test]
    fn common_layouts_give_their_level() {
        for (line, expected) in [
            // Python logging, default and basicConfig formats.
            (
                "2026-01-02 03:04:05,123 - app.db - WARNING - pool exhausted",
                Some(Severity::Warning),
            ),
            ("ERROR:root:connection reset", Some(Severity::Error)),
            // log4j / logback.
            (
                "2026-01-02 03:04:05,123 INFO  [main] o.a.k.Server - started",
                Some(Severity::Info),
            ),
            // Go's log/slog text handler.
            (
                "time=2026-01-02T03:04:05.123Z level=WARN msg=\"slow query\" ms=812",
                Some(Severity::Warning),
            ),
            // Rails.
            (
                "I, [2026-01-02T03:04:05.123456 #4242]  INFO -- : Started GET \"/\"",
                Some(Severity::Info),
            ),
            // nginx error log.
            (
                "2026/01/02 03:04:05 [error] 31#31: *7 open() failed",
                Some(Severity::Error),
            ),
            // PostgreSQL: LOG is not a level; ERROR is.
            (
                "2026-01-02 03:04:05.123 UTC [4242] ERROR:  relation \"x\" does not exist",
                Some(Severity::Error),
            ),
            // Windows CBS, mixed case after the timestamp.
            (
                "2016-09-28 04:30:31, Warning   CBS    Failed to get session",
                Some(Severity::Warning),
            ),
        ] {
            assert_eq!(with_timestamp(line), expected, "{line}");
        }
    }

    #[test]
    fn logcat_letter_needs_pid_and_tid() {
        let line = b"03-17 16:13:38.811  1702  2395 D WindowManager: x";
        let found = crate::parse::timestamp::find(line, 0, 1_500_000_000_000).expect("logcat");
        assert_eq!(find_in_text(line, 0, Some(&found)), Some(Severity::Debug));
        let line = b"03-17 16:13:38.811 user D x";
        let found = crate::parse::timestamp::find(line, 0, 1_500_000_000_000).expect("logcat");
        assert_eq!(find_in_text(line, 0, Some(&found)), None);
    }
}
