//! Cutting a byte stream into lines.
//!
//! [`LineSplitter`] is fed whatever bytes were appended to a file and hands
//! back every line whose `\n` has arrived, with the byte range it covers.
//! A partial last line is kept until its newline comes. A line longer than
//! `max_line_bytes` is cut: its first `max_line_bytes` bytes are kept, the
//! rest is skipped (but still counted, so offsets stay exact), and it is
//! emitted with `truncated` once its newline arrives. Memory per file is
//! therefore bounded by `max_line_bytes`.

use loghound_shared::ByteOffset;

/// One complete line as read from a file, before any text conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// Position of the line's first byte.
    pub offset: ByteOffset,
    /// Position just after the line's `\n`.
    pub end_offset: ByteOffset,
    /// The line without its `\n` and without a trailing `\r` (when not cut).
    pub bytes: Vec<u8>,
    /// The line was longer than the limit and was cut.
    pub truncated: bool,
}

/// A line as text, ready to become an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLine {
    /// The line, invalid UTF-8 replaced.
    pub message: String,
    /// Whether anything had to be replaced.
    pub invalid_utf8: bool,
}

impl RawLine {
    /// Converts to text. Invalid UTF-8 becomes U+FFFD and is flagged; a cut
    /// that split a multi-byte character is not counted as invalid.
    pub fn into_text(self) -> TextLine {
        let mut bytes = self.bytes;
        if self.truncated {
            if let Err(error) = std::str::from_utf8(&bytes) {
                // Incomplete sequence at the very end: the cut split a character.
                if error.error_len().is_none() {
                    bytes.truncate(error.valid_up_to());
                }
            }
        }
        match String::from_utf8(bytes) {
            Ok(message) => TextLine {
                message,
                invalid_utf8: false,
            },
            Err(error) => TextLine {
                message: String::from_utf8_lossy(error.as_bytes()).into_owned(),
                invalid_utf8: true,
            },
        }
    }
}

/// Splits appended bytes into lines; see the module docs.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// Bytes consumed so far: the file position the next chunk starts at.
    consumed: u64,
    /// Start of the line being assembled in `partial`.
    line_start: u64,
    partial: Vec<u8>,
    /// Bytes of the current line beyond `max_line_bytes` that were dropped.
    overflow_bytes: u64,
    /// The dropped overflow so far is exactly one `\r` (so the line may
    /// still turn out to fit once its `\r\n` ending is removed).
    overflow_is_cr: bool,
}

impl LineSplitter {
    /// A splitter whose first byte sits at `start` in the file.
    pub fn new(start: ByteOffset, max_line_bytes: usize) -> Self {
        debug_assert!(max_line_bytes > 0);
        Self {
            max_line_bytes,
            consumed: start.0,
            line_start: start.0,
            partial: Vec::new(),
            overflow_bytes: 0,
            overflow_is_cr: false,
        }
    }

    /// File position of the next byte to feed.
    pub fn consumed(&self) -> ByteOffset {
        ByteOffset(self.consumed)
    }

    /// Where the first line not yet emitted starts.
    pub fn pending_line_start(&self) -> ByteOffset {
        ByteOffset(self.line_start)
    }

    /// Forgets everything and restarts at `start` (after a truncation).
    pub fn reset(&mut self, start: ByteOffset) {
        *self = Self::new(start, self.max_line_bytes);
    }

    /// Feeds the bytes that follow [`Self::consumed`]; complete lines are
    /// appended to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<RawLine>) {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let body = match newline {
                Some(index) => &chunk[..index],
                None => chunk,
            };
            self.append(body);
            self.consumed += body.len() as u64;
            match newline {
                Some(index) => {
                    self.consumed += 1;
                    out.push(self.finish_line());
                    chunk = &chunk[index + 1..];
                }
                None => break,
            }
        }
    }

    /// Ends the partial last line where the bytes end, for a file that
    /// will never get its `\n` (it was released): `None` if there is none.
    pub fn take_partial(&mut self) -> Option<RawLine> {
        if self.consumed == self.line_start {
            return None;
        }
        let line = RawLine {
            offset: ByteOffset(self.line_start),
            end_offset: ByteOffset(self.consumed),
            bytes: std::mem::take(&mut self.partial),
            truncated: self.overflow_bytes > 0,
        };
        self.line_start = self.consumed;
        self.overflow_bytes = 0;
        self.overflow_is_cr = false;
        Some(line)
    }

    fn append(&mut self, body: &[u8]) {
        let room = self.max_line_bytes - self.partial.len();
        let (kept, dropped) = body.split_at(room.min(body.len()));
        self.partial.extend_from_slice(kept);
        if !dropped.is_empty() {
            self.overflow_is_cr = self.overflow_bytes == 0 && dropped == b"\r";
            self.overflow_bytes += dropped.len() as u64;
        }
    }

    fn finish_line(&mut self) -> RawLine {
        let mut bytes = std::mem::take(&mut self.partial);
        let fits_without_cr = self.overflow_bytes == 1 && self.overflow_is_cr;
        let truncated = self.overflow_bytes > 0 && !fits_without_cr;
        if !truncated && !fits_without_cr && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = RawLine {
            offset: ByteOffset(self.line_start),
            end_offset: ByteOffset(self.consumed),
            bytes,
            truncated,
        };
        self.line_start = self.consumed;
        self.overflow_bytes = 0;
        self.overflow_is_cr = false;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(splitter: &mut LineSplitter, bytes: &[u8]) -> Vec<RawLine> {
        let mut out = Vec::new();
        splitter.push(bytes, &mut out);
        out
    }

    fn line(offset: u64, end: u64, bytes: &[u8], truncated: bool) -> RawLine {
        RawLine {
            offset: ByteOffset(offset),
            end_offset: ByteOffset(end),
            bytes: bytes.to_vec(),
            truncated,
        }
    }

    #[test]
    fn splits_on_newline_and_drops_carriage_return() {
        let mut splitter = LineSplitter::new(ByteOffset(0), 100);
        let lines = split(&mut splitter, b"one\ntwo\r\n\nthree\n");
        assert_eq!(
            lines,
            vec![
                line(0, 4, b"one", false),
                line(4, 9, b"two", false),
                line(9, 10, b"", false),
                line(10, 16, b"three", false),
            ]
        );
        assert_eq!(splitter.consumed(), ByteOffset(16));
    }

    #[test]
    fn partial_last_line_waits_for_its_newline() {
        let mut splitter = LineSplitter::new(ByteOffset(100), 100);
        assert_eq!(
            split(&mut splitter, b"done\nhal"),
            vec![line(100, 105, b"done", false)]
        );
        assert_eq!(split(&mut splitter, b"f a li"), vec![]);
        assert_eq!(splitter.pending_line_start(), ByteOffset(105));
        assert_eq!(
            split(&mut splitter, b"ne\r"),
            vec![],
            "a \\r alone does not end a line"
        );
        assert_eq!(
            split(&mut splitter, b"\nnext"),
            vec![line(105, 118, b"half a line", false)]
        );
        assert_eq!(splitter.consumed(), ByteOffset(122));
    }

    #[test]
    fn long_line_is_cut_and_next_offset_stays_exact() {
        let mut splitter = LineSplitter::new(ByteOffset(0), 4);
        // The long line arrives in pieces; the overflow is skipped, not kept.
        let mut lines = split(&mut splitter, b"abcdefg");
        lines.extend(split(&mut splitter, b"hij\nok\n"));
        assert_eq!(
            lines,
            vec![line(0, 11, b"abcd", true), line(11, 14, b"ok", false)]
        );
    }

    #[test]
    fn line_at_the_limit_is_not_truncated_even_with_crlf() {
        let mut splitter = LineSplitter::new(ByteOffset(0), 4);
        let lines = split(&mut splitter, b"abcd\nwxyz\r\nabcde\r\n");
        assert_eq!(
            lines,
            vec![
                line(0, 5, b"abcd", false),
                line(5, 11, b"wxyz", false),
                line(11, 18, b"abcd", true),
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let mut splitter = LineSplitter::new(ByteOffset(0), 100);
        let mut lines = split(&mut splitter, b"ok \xc3\xa9\nbad \xff\xfe\n");
        let bad = lines.pop().unwrap().into_text();
        let good = lines.pop().unwrap().into_text();
        assert_eq!(good.message, "ok é");
        assert!(!good.invalid_utf8);
        assert_eq!(bad.message, "bad \u{fffd}\u{fffd}");
        assert!(bad.invalid_utf8);
    }

    #[test]
    fn cut_through_a_character_is_not_invalid_utf8() {
        let mut splitter = LineSplitter::new(ByteOffset(0), 4);
        // "abc" + the first byte of "é": the cut splits the character.
        let text = split(&mut splitter, "abcé\n".as_bytes())
            .pop()
            .unwrap()
            .into_text();
        assert_eq!(text.message, "abc");
        assert!(!text.invalid_utf8);
    }

    #[test]
    fn partial_line_is_taken_as_is_and_only_once() {
        let mut splitter = LineSplitter::new(ByteOffset(10), 100);
        assert_eq!(
            split(&mut splitter, b"done\nhalf"),
            vec![line(10, 15, b"done", false)]
        );
        assert_eq!(splitter.take_partial(), Some(line(15, 19, b"half", false)));
        assert_eq!(splitter.pending_line_start(), ByteOffset(19));
        assert_eq!(splitter.take_partial(), None);
    }

    #[test]
    fn reset_starts_over() {
        let mut splitter = LineSplitter::new(ByteOffset(0), 100);
        split(&mut splitter, b"old partial");
        splitter.reset(ByteOffset(0));
        assert_eq!(
            split(&mut splitter, b"new\n"),
            vec![line(0, 4, b"new", false)]
        );
    }
}
