//! Splitting a syslog TCP stream into messages (RFC 6587).
//!
//! A connection uses one framing, told by its first byte: a digit starts
//! octet counting (`LEN SP MSG`, as rsyslog and syslog-ng send with
//! octet-counted framing and RFC 5425 requires over TLS); anything else is
//! non-transparent framing, one message per line (LF, a trailing CR
//! dropped, empty lines skipped).
//!
//! A message longer than the limit is cut at it and marked truncated; the
//! rest of it is skipped and the next message read, so one oversized
//! message loses nothing else. Memory per connection is bounded by the
//! limit plus what one read adds. Only a broken octet count cannot be
//! resynchronised from: it is an error and the connection ends there.

/// How a connection frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `LEN SP MSG`.
    OctetCounting,
    /// One message per line.
    Lines,
}

/// One message out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message's bytes (at most the limit).
    pub bytes: Vec<u8>,
    /// The message was longer and was cut.
    pub truncated: bool,
}

/// A stream that cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// An octet-counted connection sent something that is not `LEN SP`.
    #[error("octet-counted framing broken at stream byte {at}: expected a length and a space, found {found:?}")]
    BadOctetCount {
        /// Position in the connection's stream of the frame's start.
        at: u64,
        /// The bytes found there (at most 16).
        found: String,
    },
}

/// Longest `LEN` accepted: ten digits.
const MAX_LEN_DIGITS: usize = 10;

/// The framing state of one connection.
#[derive(Debug)]
pub struct Decoder {
    max_message_bytes: usize,
    framing: Option<Framing>,
    buf: Vec<u8>,
    /// Stream position of `buf[0]`.
    consumed: u64,
    /// Bytes of an oversized message still to skip (octet counting).
    skip_bytes: u64,
    /// The rest of an oversized line is being skipped (line framing).
    skip_line: bool,
    failed: bool,
}

impl Decoder {
    /// A decoder that keeps messages up to `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Decoder {
            max_message_bytes,
            framing: None,
            buf: Vec::new(),
            consumed: 0,
            skip_bytes: 0,
            skip_line: false,
            failed: false,
        }
    }

    /// The connection's framing, once its first byte is known.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Bytes held for a message not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Adds bytes read from the connection and appends the messages they
    /// complete to `out`. After an error the decoder takes nothing more.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        if self.failed {
            return Ok(());
        }
        if self.skip_bytes > 0 {
            let skipped = (data.len() as u64).min(self.skip_bytes);
            self.skip_bytes -= skipped;
            self.consumed += skipped;
            data = &data[skipped as usize..];
        }
        let Some(framing) = self.framing else {
            // Undecided: hold the first bytes until they tell, then read
            // them under the framing they chose.
            self.buf.extend_from_slice(data);
            let framing = match detect(&self.buf) {
                Some(framing) => framing,
                None if self.buf.len() > MAX_LEN_DIGITS + 2 => Framing::Lines,
                None => return Ok(()),
            };
            self.framing = Some(framing);
            let held = std::mem::take(&mut self.buf);
            return self.push(&held, out);
        };
        match framing {
            Framing::Lines => {
                self.push_lines(data, out);
                Ok(())
            }
            Framing::OctetCounting => {
                self.buf.extend_from_slice(data);
                let result = self.take_counted(out);
                if result.is_err() {
                    self.failed = true;
                    self.buf = Vec::new();
                }
                result
            }
        }
    }

    /// The connection ended: a line without its newline is still a
    /// message; a partial octet-counted frame is returned as truncated.
    pub fn finish(&mut self) -> Option<Frame> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let bytes = std::mem::take(&mut self.buf);
        match self.framing {
            Some(Framing::Lines) => line_frame(bytes, self.skip_line),
            Some(Framing::OctetCounting) => {
                // The partial body after `LEN SP`, if the header is whole.
                let space = bytes.iter().position(|&b| b == b' ')?;
                let body = bytes[space + 1..].to_vec();
                (!body.is_empty()).then_some(Frame {
                    bytes: body,
                    truncated: true,
                })
            }
            None => line_frame(bytes, false),
        }
    }

    fn push_lines(&mut self, mut data: &[u8], out: &mut Vec<Frame>) {
        while let Some(newline) = memchr(b'\n', data) {
            let line = &data[..newline];
            self.consumed += newline as u64 + 1;
            data = &data[newline + 1..];
            if self.skip_line {
                self.skip_line = false;
                continue;
            }
            let room = self.max_message_bytes - self.buf.len();
            let (kept, truncated) = if line.len() > room {
                (&line[..room], true)
            } else {
                (line, false)
            };
            let mut bytes = std::mem::take(&mut self.buf);
            bytes.extend_from_slice(kept);
            if let Some(frame) = line_frame(bytes, truncated) {
                out.push(frame);
            }
        }
        if self.skip_line {
            self.consumed += data.len() as u64;
            return;
        }
        let room = self.max_message_bytes - self.buf.len();
        if data.len() > room {
            // An oversized line: emit what fits, skip to its newline.
            self.buf.extend_from_slice(&data[..room]);
            self.consumed += data.len() as u64;
            let bytes = std::mem::take(&mut self.buf);
            if let Some(frame) = line_frame(bytes, true) {
                out.push(frame);
            }
            self.skip_line = true;
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    fn take_counted(&mut self, out: &mut Vec<Frame>) -> Result<(), FrameError> {
        let mut at = 0;
        loop {
            // Whitespace between frames (some senders add a newline).
            while self.buf.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let rest = &self.buf[at..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let Some(&after) = rest.get(digits) else {
                if digits > MAX_LEN_DIGITS {
                    return Err(self.bad_count(at));
                }
                break;
            };
            if digits == 0 || digits > MAX_LEN_DIGITS || after != b' ' || rest[0] == b'0' {
                return Err(self.bad_count(at));
            }
            let len = rest[..digits]
                .iter()
                .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
            let body_start = at + digits + 1;
            let available = (self.buf.len() - body_start) as u64;
            let max = self.max_message_bytes as u64;
            if len > max {
                // Oversized: keep the limit's worth once it has arrived,
                // then skip the rest as it comes.
                if available < max {
                    break;
                }
                let end = body_start + self.max_message_bytes;
                out.push(Frame {
                    bytes: self.buf[body_start..end].to_vec(),
                    truncated: true,
                });
                let in_buffer = available.min(len);
                self.skip_bytes = len - in_buffer;
                at = body_start + in_buffer as usize;
                continue;
            }
            if available < len {
                break;
            }
            let end = body_start + len as usize;
            out.push(Frame {
                bytes: self.buf[body_start..end].to_vec(),
                truncated: false,
            });
            at = end;
        }
        self.consumed += at as u64;
        self.buf.drain(..at);
        if self.skip_bytes > 0 {
            // Everything buffered belongs to the skipped message.
            self.consumed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    fn bad_count(&self, at: usize) -> FrameError {
        let found = &self.buf[at..self.buf.len().min(at + 16)];
        FrameError::BadOctetCount {
            at: self.consumed + at as u64,
            found: String::from_utf8_lossy(found).into_owned(),
        }
    }
}

/// The framing `held` (a connection's first bytes) shows: octet counting
/// when it starts with `LEN SP <` (a length, then a syslog message's
/// `<PRI>`), lines when it cannot; `None` while too few bytes have come.
fn detect(held: &[u8]) -> Option<Framing> {
    let start = held.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &held[start..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest[0] == b'0' || digits > MAX_LEN_DIGITS {
        return Some(Framing::Lines);
    }
    match rest.get(digits..digits + 2) {
        Some(b" <") => Some(Framing::OctetCounting),
        Some(_) => Some(Framing::Lines),
        None if rest.len() > digits && rest[digits] != b' ' => Some(Framing::Lines),
        None => None,
    }
}

/// A line's frame: without a trailing CR; `None` for an empty line.
fn line_frame(mut bytes: Vec<u8>, truncated: bool) -> Option<Frame> {
    if bytes.last() == Some(&b'\r') && !truncated {
        bytes.pop();
    }
    (!bytes.iter().all(u8::is_ascii_whitespace)).then_some(Frame { bytes, truncated })
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(max: usize, chunks: &[&[u8]]) -> (Vec<Frame>, Result<(), FrameError>) {
        let mut decoder = Decoder::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(error) = decoder.push(chunk, &mut out) {
                return (out, Err(error));
            }
        }
        out.extend(decoder.finish());
        (out, Ok(()))
    }

    fn texts(frames: &[Frame]) -> Vec<(String, bool)> {
        frames
            .iter()
            .map(|f| (String::from_utf8_lossy(&f.bytes).into_owned(), f.truncated))
            .collect()
    }

    #[test]
    fn lines_split_on_newlines_dropping_cr_and_empty_lines() {
        let (frames, result) = decode_all(100, &[b"<13>one\r\n\n<13>tw", b"o\n  \n<13>three"]);
        result.unwrap();
        assert_eq!(
            texts(&frames),
            [
                ("<13>one".into(), false),
                ("<13>two".into(), false),
                ("<13>three".into(), false)
            ]
        );
    }

    #[test]
    fn octet_counting_is_chosen_by_a_leading_digit() {
        let (frames, result) = decode_all(100, &[b"7 <13>a\nb", b"5 <13>c\n3 <1>"]);
        result.unwrap();
        assert_eq!(
            texts(&frames),
            [
                ("<13>a\nb".into(), false),
                ("<13>c".into(), false),
                ("<1>".into(), false)
            ]
        );
    }

    #[test]
    fn an_oversized_line_is_cut_and_the_next_one_is_kept() {
        let long = format!("<13>{}\n<13>next\n", "x".repeat(50));
        let (frames, result) = decode_all(20, &[&long.as_bytes()[..30], &long.as_bytes()[30..]]);
        result.unwrap();
        assert_eq!(
            texts(&frames),
            [
                (format!("<13>{}", "x".repeat(16)), true),
                ("<13>next".into(), false)
            ]
        );
    }

    #[test]
    fn an_oversized_counted_frame_is_cut_and_the_next_one_is_kept() {
        let body = format!("<13>{}", "y".repeat(60));
        let stream = format!("{} {body}8 <13>next", body.len());
        let bytes = stream.as_bytes();
        let (frames, result) = decode_all(20, &[&bytes[..10], &bytes[10..40], &bytes[40..]]);
        result.unwrap();
        assert_eq!(
            texts(&frames),
            [(body[..20].to_string(), true), ("<13>next".into(), false)]
        );
    }

    #[test]
    fn a_broken_count_is_an_error_naming_where() {
        let (frames, result) = decode_all(100, &[b"5 <13>a", b"x <13>b"]);
        assert_eq!(texts(&frames), [("<13>a".into(), false)]);
        assert_eq!(
            result,
            Err(FrameError::BadOctetCount {
                at: 7,
                found: "x <13>b".into()
            })
        );
    }

    #[test]
    fn a_partial_message_at_the_end_is_kept() {
        let (frames, _) = decode_all(100, &[b"9 <13>ab"]);
        assert_eq!(texts(&frames), [("<13>ab".into(), true)]);
        let (frames, _) = decode_all(100, &[b"<13>no newline"]);
        assert_eq!(texts(&frames), [("<13>no newline".into(), false)]);
    }

    fn arb_messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
        // Message bodies start with `<` as syslog messages do, never end
        // with whitespace and hold no newline, so both framings carry them
        // exactly.
        let body = proptest::collection::vec(0x21u8..0x7f, 0..120).prop_map(|mut body| {
            body.insert(0, b'<');
            body
        });
        proptest::collection::vec(body, 0..30)
    }

    proptest! {
        /// However the stream is cut into reads, both framings give back
        /// the messages sent, each cut at the limit exactly when longer.
        #[test]
        fn any_split_gives_the_same_messages(
            messages in arb_messages(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
            counted in any::<bool>(),
            max in 480usize..600,
        ) {
            let max = max / 8; // 60..75: some messages are longer
            let mut stream = Vec::new();
            for m in &messages {
                if counted {
                    stream.extend_from_slice(format!("{} ", m.len()).as_bytes());
                    stream.extend_from_slice(m);
                } else {
                    stream.extend_from_slice(m);
                    stream.push(b'\n');
                }
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&stream[last..p]);
                last = p;
            }
            chunks.push(&stream[last..]);
            let (frames, result) = decode_all(max, &chunks);
            prop_assert!(result.is_ok());
            let expected: Vec<Frame> = messages
                .iter()
                .map(|m| Frame {
                    bytes: m[..m.len().min(max)].to_vec(),
                    truncated: m.len() > max,
                })
                .collect();
            prop_assert_eq!(frames, expected);
        }
    }
}
