//! `loghound tail`: follows new matching lines as they arrive, like
//! `tail -f` for the fleet, reconnecting where it left off.
//!
//! The server sends server-sent events; they are parsed here by hand (a
//! line-based format: `id:`, `event:`, `data:`, a blank line ends an event)
//! rather than with another dependency.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use loghound_shared::api::{Hit, TailDropped, TAIL_EVENT_DROPPED, TAIL_EVENT_HIT, TAIL_PATH};

use super::client::error_message;

/// What to follow.
#[derive(Debug, Clone)]
pub struct TailArgs {
    /// Server base URL.
    pub server: String,
    /// A token with the `read` scope.
    pub token: String,
    /// The query.
    pub query: String,
    /// Print each hit as the server's JSON, one per line.
    pub json: bool,
    /// A private CA to trust instead of the default roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
    /// The `event:` field; `message` when absent.
    pub event: String,
    /// The `data:` lines joined by newlines.
    pub data: String,
}

/// Builds events from the lines of an SSE stream.
#[derive(Debug, Default)]
pub struct SseParser {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds one line (its end of line may be left on); returns the event a
    /// blank line completes. Comments and unknown fields are ignored.
    pub fn push_line(&mut self, line: &str) -> Option<SseEvent> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            let id = self.id.take();
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(SseEvent {
                id,
                event: event.unwrap_or_else(|| "message".to_string()),
                data,
            });
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {} // a comment (empty field name), `retry`, or unknown
        }
        None
    }
}

/// Longest SSE line read; a longer one means a broken or hostile stream.
const MAX_LINE_BYTES: u64 = 64 << 20;
/// Reconnect delays grow from this…
const BACKOFF_START: Duration = Duration::from_millis(250);
/// …up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// No byte (not even a keep-alive comment, sent every 15 s) for this long
/// means the connection is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(45);

/// Reads one line of at most [`MAX_LINE_BYTES`] into `line`; false at the
/// end of the stream.
pub fn read_sse_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    let read = reader.take(MAX_LINE_BYTES).read_until(b'\n', line)?;
    if read as u64 == MAX_LINE_BYTES && line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "server-sent event line too long",
        ));
    }
    Ok(read > 0)
}

/// How one connection ended.
enum Ended {
    /// The server closed the stream or the connection failed.
    Disconnected(String),
    /// The server dropped us for reading too slowly.
    Dropped,
    /// The server asked us to wait.
    RetryAfter(Duration),
}

/// Follows the tail until the process is interrupted, printing
/// `TIMESTAMP HOST SOURCE MESSAGE` lines (or the hits' JSON) to stdout.
/// Errors only for what retrying cannot fix: a refused token or query.
pub fn run(args: &TailArgs) -> anyhow::Result<()> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(READ_TIMEOUT))
        .tls_config(super::tls::client_tls(args.ca_file.as_deref())?)
        .build()
        .new_agent();
    let url = format!("{}{TAIL_PATH}", args.server.trim_end_matches('/'));
    let mut last_id: Option<String> = None;
    let mut backoff = BACKOFF_START;
    loop {
        let (ended, received) = follow(&agent, &url, args, &mut last_id)?;
        if received {
            backoff = BACKOFF_START;
        }
        let wait = match ended {
            Ended::Dropped => {
                eprintln!("loghound: the server dropped this tail (output too slow); resuming");
                Duration::ZERO
            }
            Ended::Disconnected(reason) => {
                eprintln!(
                    "loghound: tail disconnected ({reason}); reconnecting in {} ms",
                    backoff.as_millis()
                );
                let wait = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                wait
            }
            Ended::RetryAfter(wait) => wait.min(BACKOFF_MAX),
        };
        std::thread::sleep(wait);
    }
}

/// One connection: prints what arrives until it ends. Returns how it ended
/// and whether any event came.
fn follow(
    agent: &ureq::Agent,
    url: &str,
    args: &TailArgs,
    last_id: &mut Option<String>,
) -> anyhow::Result<(Ended, bool)> {
    let mut request = agent
        .get(url)
        .header("Authorization", &format!("Bearer {}", args.token))
        .header("Accept", "text/event-stream")
        .query("q", &args.query);
    if let Some(id) = last_id.as_deref() {
        request = request.header("Last-Event-ID", id);
    }
    let mut response = match request.call() {
        Ok(response) => response,
        Err(error) => return Ok((Ended::Disconnected(error.to_string()), false)),
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let message = error_message(text);
        if let Some(secs) = retry_after {
            eprintln!("loghound: server answered {status}: {message}; retrying in {secs} s");
            return Ok((Ended::RetryAfter(Duration::from_secs(secs)), false));
        }
        if status.is_server_error() {
            return Ok((Ended::Disconnected(format!("{status}: {message}")), false));
        }
        bail!("server answered {status}: {message}");
    }
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut parser = SseParser::default();
    let mut line = Vec::new();
    let mut received = false;
    let stdout = std::io::stdout();
    loop {
        match read_sse_line(&mut reader, &mut line) {
            Ok(true) => {}
            Ok(false) => return Ok((Ended::Disconnected("stream ended".into()), received)),
            Err(error) => return Ok((Ended::Disconnected(error.to_string()), received)),
        }
        let Some(event) = parser.push_line(&String::from_utf8_lossy(&line)) else {
            continue;
        };
        received = true;
        match event.event.as_str() {
            TAIL_EVENT_HIT => {
                let mut out = stdout.lock();
                if args.json {
                    writeln!(out, "{}", event.data)?;
                } else {
                    let hit: Hit = serde_json::from_str(&event.data)
                        .context("server sent an unreadable hit")?;
                    writeln!(
                        out,
                        "{} {} {} {}",
                        hit.timestamp, hit.host, hit.source, hit.message
                    )?;
                }
                out.flush()?;
                if event.id.is_some() {
                    *last_id = event.id;
                }
            }
            TAIL_EVENT_DROPPED => {
                if let Ok(dropped) = serde_json::from_str::<TailDropped>(&event.data) {
                    *last_id = Some(dropped.last_id);
                }
                return Ok((Ended::Dropped, received));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        text.split_inclusive('\n')
            .filter_map(|line| parser.push_line(line))
            .collect()
    }

    #[test]
    fn parses_events_comments_and_multiline_data() {
        let events = parse_all(
            ": tail after 5\n\nid: 7\nevent: hit\ndata: {\"a\":1}\n\n:\n\ndata:x\r\ndata: y\r\n\r\n",
        );
        assert_eq!(
            events,
            vec![
                SseEvent {
                    id: Some("7".into()),
                    event: "hit".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    id: None,
                    event: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn an_unfinished_event_is_not_emitted() {
        assert!(parse_all("id: 1\nevent: hit\ndata: {}\n").is_empty());
    }

    #[test]
    fn lines_are_read_one_at_a_time() {
        let mut reader = std::io::Cursor::new(b"data: ok\n".to_vec());
        let mut line = Vec::new();
        assert!(read_sse_line(&mut reader, &mut line).unwrap());
        assert_eq!(line, b"data: ok\n");
        assert!(!read_sse_line(&mut reader, &mut line).unwrap());
    }
}
