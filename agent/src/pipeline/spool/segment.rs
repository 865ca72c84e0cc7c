//! The on-disk format of the spool: segment files of checksummed records,
//! one record per batch.
//!
//! A segment (`<spool dir>/<first record number, 20 digits>.seg`) starts
//! with the 8 bytes `LHSPOOL2` (format 2) and holds records back to back:
//!
//! ```text
//! magic u32 LE ("LHSR") | payload length u32 LE | CRC-32 of payload u32 LE
//! payload: header length u32 LE | header JSON | batch body (zstd NDJSON)
//! ```
//!
//! The header says how many events the batch holds and, for each stream
//! in it, the position of its last event: `{"num_events": n, "streams":
//! [[stream id, end offset], …]}`. Format 1 (`LHSPOOL1`, written by agents
//! before sources had a seam) is the same but for the header's key,
//! `file_ends`; its segments are still read and replayed, never appended
//! to (segments found at start are sealed).
//! Records are only ever appended, so a crash can leave at most
//! one torn record, at the end of the last segment: [`scan`] finds it and
//! reports it (its batch was never counted as spooled, so its lines are
//! still in the log file). A record whose checksum does not match is
//! reported with its position and skipped, and the scan looks for the next
//! intact record behind it, so everything intact is still sent.

use std::io;

use loghound_shared::{ByteOffset, FileId};
use serde::{Deserialize, Serialize};

/// First bytes of every segment file this agent writes.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"LHSPOOL2";
/// First bytes of a segment of format 1.
const SEGMENT_MAGIC_V1: &[u8; 8] = b"LHSPOOL1";

/// The format of a segment, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentFormat {
    /// `LHSPOOL1`: headers name `file_ends`.
    V1,
    /// `LHSPOOL2`: headers name `streams`.
    V2,
}

impl SegmentFormat {
    /// The format of a segment starting with `bytes`, if it is one.
    pub(crate) fn of(bytes: &[u8]) -> Option<Self> {
        match bytes.get(..SEGMENT_MAGIC.len())? {
            magic if magic == SEGMENT_MAGIC => Some(Self::V2),
            magic if magic == SEGMENT_MAGIC_V1 => Some(Self::V1),
            _ => None,
        }
    }
}
/// First bytes of every record.
const RECORD_MAGIC: [u8; 4] = *b"LHSR";
/// Bytes before a record's payload.
pub(crate) const RECORD_HEADER_BYTES: usize = 12;
/// A payload claiming more than this is not a record (the batches the
/// agent builds are far smaller).
const MAX_PAYLOAD_BYTES: usize = 256 << 20;
/// File name extension of segments.
pub(crate) const SEGMENT_EXTENSION: &str = "seg";

/// What a record says about its batch, besides the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordHeader {
    pub(crate) num_events: usize,
    /// For each stream in the batch, the end offset of its last event.
    pub(crate) streams: Vec<(FileId, ByteOffset)>,
}

/// A record header of format 1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordHeaderV1 {
    num_events: usize,
    file_ends: Vec<(FileId, ByteOffset)>,
}

fn parse_header(format: SegmentFormat, json: &[u8]) -> Result<RecordHeader, serde_json::Error> {
    match format {
        SegmentFormat::V2 => serde_json::from_slice(json),
        SegmentFormat::V1 => {
            let RecordHeaderV1 {
                num_events,
                file_ends,
            } = serde_json::from_slice(json)?;
            Ok(RecordHeader {
                num_events,
                streams: file_ends,
            })
        }
    }
}

/// Encodes one record.
pub(crate) fn encode_record(header: &RecordHeader, body: &[u8]) -> io::Result<Vec<u8>> {
    let header_json = serde_json::to_vec(header)?;
    let payload_len = 4 + header_json.len() + body.len();
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("batch of {payload_len} bytes is larger than a spool record may be"),
        ));
    }
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + payload_len);
    record.extend_from_slice(&RECORD_MAGIC);
    record.extend_from_slice(&(payload_len as u32).to_le_bytes());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    record.extend_from_slice(&header_json);
    record.extend_from_slice(body);
    let crc = crc32fast::hash(&record[RECORD_HEADER_BYTES..]);
    record[8..12].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Why a record cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("no record magic")]
    Magic,
    #[error("record claims {0} payload bytes")]
    Length(usize),
    #[error("record ends past the end of the file (torn write)")]
    Torn,
    #[error("checksum mismatch")]
    Checksum,
    #[error("bad record header: {0}")]
    Header(String),
}

/// Decodes the record at the start of `bytes`, in a segment of `format`:
/// its header, the range of its body within `bytes`, and its total length.
pub(crate) fn decode_record(
    format: SegmentFormat,
    bytes: &[u8],
) -> Result<(RecordHeader, std::ops::Range<usize>, usize), RecordError> {
    if bytes.len() < RECORD_HEADER_BYTES {
        let prefix = bytes.len().min(RECORD_MAGIC.len());
        return Err(if bytes[..prefix] == RECORD_MAGIC[..prefix] {
            RecordError::Torn
        } else {
            RecordError::Magic
        });
    }
    if bytes[..4] != RECORD_MAGIC {
        return Err(RecordError::Magic);
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let payload_len = word(4) as usize;
    if !(4..=MAX_PAYLOAD_BYTES).contains(&payload_len) {
        return Err(RecordError::Length(payload_len));
    }
    let total = RECORD_HEADER_BYTES + payload_len;
    if bytes.len() < total {
        return Err(RecordError::Torn);
    }
    let payload = &bytes[RECORD_HEADER_BYTES..total];
    if crc32fast::hash(payload) != word(8) {
        return Err(RecordError::Checksum);
    }
    let header_len = word(RECORD_HEADER_BYTES) as usize;
    let header_end = 4usize
        .checked_add(header_len)
        .filter(|end| *end <= payload.len())
        .ok_or_else(|| RecordError::Header(format!("header length {header_len}")))?;
    let header = parse_header(format, &payload[4..header_end])
        .map_err(|error| RecordError::Header(error.to_string()))?;
    let body = RECORD_HEADER_BYTES + header_end..total;
    Ok((header, body, total))
}

/// An intact record found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScannedRecord {
    /// Byte position of the record in the segment.
    pub(crate) position: u64,
    /// Length of the whole record.
    pub(crate) len: u64,
    pub(crate) header: RecordHeader,
}

/// Damage found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The file does not start with [`SEGMENT_MAGIC`]; nothing in it is
    /// trusted.
    NotASegment,
    /// `len` bytes at `position` are not an intact record and were skipped.
    Corrupt {
        position: u64,
        len: u64,
        error: RecordError,
    },
    /// The file ends with an incomplete record at `position`.
    TornTail { position: u64, len: u64 },
}

/// What a segment holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    pub(crate) records: Vec<ScannedRecord>,
    pub(crate) damage: Vec<Damage>,
    /// Where the last intact record ends.
    pub(crate) intact_end: u64,
    /// The segment's format; `None` when it is not a segment.
    pub(crate) format: Option<SegmentFormat>,
}

/// Reads every intact record of a segment's bytes; see the module docs.
pub(crate) fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let Some(format) = SegmentFormat::of(bytes) else {
        scan.damage.push(Damage::NotASegment);
        return scan;
    };
    scan.format = Some(format);
    let mut position = SEGMENT_MAGIC.len();
    scan.intact_end = position as u64;
    while position < bytes.len() {
        match decode_record(format, &bytes[position..]) {
            Ok((header, _, len)) => {
                scan.records.push(ScannedRecord {
                    position: position as u64,
                    len: len as u64,
                    header,
                });
                position += len;
                scan.intact_end = position as u64;
            }
            Err(RecordError::Torn) if next_intact(format, bytes, position + 1).is_none() => {
                scan.damage.push(Damage::TornTail {
                    position: position as u64,
                    len: (bytes.len() - position) as u64,
                });
                return scan;
            }
            Err(error) => {
                let next = next_intact(format, bytes, position + 1).unwrap_or(bytes.len());
                scan.damage.push(Damage::Corrupt {
                    position: position as u64,
                    len: (next - position) as u64,
                    error,
                });
                position = next;
            }
        }
    }
    scan
}

/// The position of the next intact record at or after `from`.
fn next_intact(format: SegmentFormat, bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + RECORD_MAGIC.len() <= bytes.len() {
        let found = bytes[at..]
            .windows(RECORD_MAGIC.len())
            .position(|window| window == RECORD_MAGIC)?;
        at += found;
        if decode_record(format, &bytes[at..]).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n: usize) -> RecordHeader {
        RecordHeader {
            num_events: n,
            streams: vec![(FileId::new("f1").unwrap(), ByteOffset(n as u64 * 100))],
        }
    }

    fn segment(records: &[(RecordHeader, &[u8])]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = SEGMENT_MAGIC.to_vec();
        let mut positions = Vec::new();
        for (header, body) in records {
            positions.push(bytes.len());
            bytes.extend(encode_record(header, body).unwrap());
        }
        (bytes, positions)
    }

    #[test]
    fn records_round_trip() {
        let record = encode_record(&header(3), b"zstd body").unwrap();
        let (decoded, body, len) = decode_record(SegmentFormat::V2, &record).unwrap();
        assert_eq!(decoded, header(3));
        assert_eq!(&record[body], b"zstd body");
        assert_eq!(len, record.len());
        let (bytes, positions) = segment(&[(header(1), b"one"), (header(2), b"two")]);
        let scan = scan(&bytes);
        assert!(scan.damage.is_empty(), "{:?}", scan.damage);
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.records[1].position, positions[1] as u64);
        assert_eq!(scan.records[1].header, header(2));
        assert_eq!(scan.intact_end, bytes.len() as u64);
    }

    #[test]
    fn a_torn_tail_is_reported_and_what_precedes_it_kept() {
        let (bytes, positions) = segment(&[(header(1), b"one"), (header(2), b"two")]);
        // Every possible cut inside the second record.
        for cut in positions[1] + 1..bytes.len() {
            let scan = scan(&bytes[..cut]);
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.intact_end, positions[1] as u64, "cut at {cut}");
            assert_eq!(
                scan.damage,
                vec![Damage::TornTail {
                    position: positions[1] as u64,
                    len: (cut - positions[1]) as u64
                }],
                "cut at {cut}"
            );
        }
        // A cut exactly between records is no damage.
        let scan = scan(&bytes[..positions[1]]);
        assert_eq!((scan.records.len(), scan.damage.len()), (1, 0));
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_the_records_behind_it_are_found() {
        let (mut bytes, positions) = segment(&[
            (header(1), b"one"),
            (header(2), b"two two two"),
            (header(3), b"three"),
        ]);
        // Flip one bit in the second record's body.
        let flip = positions[2] - 2;
        bytes[flip] ^= 0x10;
        let scan = scan(&bytes);
        let found: Vec<usize> = scan.records.iter().map(|r| r.header.num_events).collect();
        assert_eq!(found, [1, 3]);
        assert_eq!(
            scan.damage,
            vec![Damage::Corrupt {
                position: positions[1] as u64,
                len: (positions[2] - positions[1]) as u64,
                error: RecordError::Checksum
            }]
        );
        assert_eq!(scan.intact_end, bytes.len() as u64);
    }

    #[test]
    fn a_corrupt_length_field_does_not_hide_later_records() {
        let (mut bytes, positions) = segment(&[(header(1), b"one"), (header(2), b"two")]);
        // The first record claims to run far past the end of the file.
        bytes[positions[0] + 4..positions[0] + 8].copy_from_slice(&1_000_000u32.to_le_bytes());
        let scan = scan(&bytes);
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.records[0].header, header(2));
        assert!(
            matches!(scan.damage[..], [Damage::Corrupt { position, .. }] if position == positions[0] as u64),
            "{:?}",
            scan.damage
        );
    }

    #[test]
    fn garbage_is_not_a_segment() {
        assert_eq!(scan(b"hello world").damage, vec![Damage::NotASegment]);
        assert_eq!(scan(b"").damage, vec![Damage::NotASegment]);
        let scan = scan(SEGMENT_MAGIC);
        assert!(scan.records.is_empty() && scan.damage.is_empty());
    }

    #[test]
    fn trailing_garbage_that_is_not_a_record_is_reported() {
        let (mut bytes, _) = segment(&[(header(1), b"one")]);
        let end = bytes.len();
        bytes.extend_from_slice(b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let scan = scan(&bytes);
        assert_eq!(scan.records.len(), 1);
        assert_eq!(
            scan.damage,
            vec![Damage::Corrupt {
                position: end as u64,
                len: 16,
                error: RecordError::Magic
            }]
        );
        assert_eq!(scan.intact_end, end as u64);
    }

    /// A segment as agents before format 2 wrote it (`LHSPOOL1`, headers
    /// with `file_ends`), built byte by byte.
    fn format_1_segment(bodies: &[&[u8]]) -> Vec<u8> {
        let mut bytes = b"LHSPOOL1".to_vec();
        for (index, body) in bodies.iter().enumerate() {
            let header = format!(
                r#"{{"num_events":{},"file_ends":[["f1",{}]]}}"#,
                index + 1,
                100 * (index + 1)
            );
            let mut payload = (header.len() as u32).to_le_bytes().to_vec();
            payload.extend_from_slice(header.as_bytes());
            payload.extend_from_slice(body);
            bytes.extend_from_slice(b"LHSR");
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        bytes
    }

    #[test]
    fn a_format_1_segment_is_read() {
        let bytes = format_1_segment(&[b"one", b"two"]);
        let scan = scan(&bytes);
        assert!(scan.damage.is_empty(), "{:?}", scan.damage);
        assert_eq!(scan.format, Some(SegmentFormat::V1));
        assert_eq!(
            scan.records
                .iter()
                .map(|r| r.header.clone())
                .collect::<Vec<_>>(),
            [header(1), header(2)]
        );
        let second = &scan.records[1];
        let (_, body, _) =
            decode_record(SegmentFormat::V1, &bytes[second.position as usize..]).unwrap();
        assert_eq!(&bytes[second.position as usize..][body], b"two");
        // A format-1 header is not a format-2 one, and the other way round.
        assert!(decode_record(SegmentFormat::V2, &bytes[second.position as usize..]).is_err());
    }
}
