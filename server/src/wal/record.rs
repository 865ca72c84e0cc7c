//! The on-disk form of one write-ahead log record.
//!
//! ```text
//! u32 LE  payload length
//! u32 LE  CRC-32 of the payload
//! payload:
//!   u64 LE  sequence number
//!   i64 LE  received_at, ms since the Unix epoch
//!   u16 LE  origin length, its top bit the body format; then the origin
//!   the body
//! ```
//!
//! The top bit of the origin length tells the two body formats apart:
//! clear, the record was written by an earlier release and its body is an
//! agent batch exactly as received (its origin an agent id); set, the body
//! was written by the ingest room. Origins are at most 32 KiB, so the bit
//! was always clear before.

use crate::log::BodyFormat;

/// Bytes of the length + CRC prefix.
pub const HEADER_BYTES: usize = 8;
/// Largest payload a record may hold; larger lengths are corruption.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;
/// Longest origin a record can hold.
pub const MAX_ORIGIN_BYTES: usize = 0x7FFF;
/// The origin length's bit that marks [`BodyFormat::Ingest`].
const INGEST_FORMAT_BIT: u16 = 0x8000;

/// One logged batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the server received the batch.
    pub received_at_ms: i64,
    /// Who sent it (at most [`MAX_ORIGIN_BYTES`]).
    pub origin: String,
    /// How the body is to be read.
    pub format: BodyFormat,
    /// The body.
    pub body: Vec<u8>,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than the record announces: a write cut short by a crash.
    #[error("torn record: {needed} bytes announced, {available} present")]
    Torn {
        /// Bytes the header announces (header included).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The bytes are all there but do not check out.
    #[error("corrupt record: {0}")]
    Corrupt(&'static str),
}

impl Record {
    /// Appends the encoded record to `out`. The origin must be at most
    /// [`MAX_ORIGIN_BYTES`] long (the log checks before encoding).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_parts(
            self.seq,
            self.received_at_ms,
            &self.origin,
            self.format,
            &self.body,
            out,
        );
    }

    /// Decodes the record at the start of `bytes`, returning it and its
    /// encoded length.
    pub fn decode(bytes: &[u8]) -> Result<(Record, usize), RecordError> {
        if bytes.len() < HEADER_BYTES {
            return Err(RecordError::Torn {
                needed: HEADER_BYTES,
                available: bytes.len(),
            });
        }
        let payload_len = u32::from_le_bytes(le4(&bytes[0..4])) as usize;
        if !(18..=MAX_PAYLOAD_BYTES).contains(&payload_len) {
            return Err(RecordError::Corrupt("impossible length"));
        }
        let total = HEADER_BYTES + payload_len;
        if bytes.len() < total {
            return Err(RecordError::Torn {
                needed: total,
                available: bytes.len(),
            });
        }
        let crc = u32::from_le_bytes(le4(&bytes[4..8]));
        let payload = &bytes[HEADER_BYTES..total];
        if crc32fast::hash(payload) != crc {
            return Err(RecordError::Corrupt("checksum mismatch"));
        }
        let seq = u64::from_le_bytes(le8(&payload[0..8]));
        let received_at_ms = i64::from_le_bytes(le8(&payload[8..16]));
        let origin_field = u16::from_le_bytes([payload[16], payload[17]]);
        let format = if origin_field & INGEST_FORMAT_BIT != 0 {
            BodyFormat::Ingest
        } else {
            BodyFormat::LegacyAgentBatch
        };
        let origin_len = usize::from(origin_field & !INGEST_FORMAT_BIT);
        let origin_bytes = payload
            .get(18..18 + origin_len)
            .ok_or(RecordError::Corrupt("origin past the end"))?;
        let origin = std::str::from_utf8(origin_bytes)
            .map_err(|_| RecordError::Corrupt("origin is not UTF-8"))?;
        if format == BodyFormat::LegacyAgentBatch && loghound_shared::AgentId::new(origin).is_err()
        {
            return Err(RecordError::Corrupt("invalid agent id"));
        }
        let body = payload[18 + origin_len..].to_vec();
        Ok((
            Record {
                seq,
                received_at_ms,
                origin: origin.to_string(),
                format,
                body,
            },
            total,
        ))
    }
}

/// Appends a record made of these parts to `out`, as
/// [`Record::encode_into`] does, without building the record first.
pub fn encode_parts(
    seq: u64,
    received_at_ms: i64,
    origin: &str,
    format: BodyFormat,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let origin = origin.as_bytes();
    let payload_len = 8 + 8 + 2 + origin.len() + body.len();
    out.reserve(HEADER_BYTES + payload_len);
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&received_at_ms.to_le_bytes());
    let mut origin_len = (origin.len().min(MAX_ORIGIN_BYTES)) as u16;
    if format == BodyFormat::Ingest {
        origin_len |= INGEST_FORMAT_BIT;
    }
    out.extend_from_slice(&origin_len.to_le_bytes());
    out.extend_from_slice(origin);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start + HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn le4(bytes: &[u8]) -> [u8; 4] {
    let mut out = [0; 4];
    out.copy_from_slice(bytes);
    out
}

fn le8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(seq: u64, body: Vec<u8>) -> Record {
        Record {
            seq,
            received_at_ms: 1_700_000_000_123,
            origin: "agent-1".into(),
            format: BodyFormat::Ingest,
            body,
        }
    }

    #[test]
    fn every_cut_of_a_record_is_torn_not_misread() {
        let mut bytes = Vec::new();
        record(7, b"hello".to_vec()).encode_into(&mut bytes);
        for cut in 0..bytes.len() {
            assert!(
                matches!(Record::decode(&bytes[..cut]), Err(RecordError::Torn { .. })),
                "cut at {cut}"
            );
        }
        assert_eq!(
            Record::decode(&bytes).unwrap().0,
            record(7, b"hello".to_vec())
        );
    }

    #[test]
    fn flipped_bits_are_detected() {
        let mut bytes = Vec::new();
        record(1, vec![42; 100]).encode_into(&mut bytes);
        for i in HEADER_BYTES..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(Record::decode(&damaged).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn records_of_earlier_releases_read_as_legacy_agent_batches() {
        // Encoded as the previous release did: the origin length's top bit
        // clear, the origin an agent id.
        let mut legacy = record(3, b"zstd bytes".to_vec());
        legacy.format = BodyFormat::LegacyAgentBatch;
        let mut bytes = Vec::new();
        legacy.encode_into(&mut bytes);
        assert_eq!(bytes[HEADER_BYTES + 17] & 0x80, 0);
        assert_eq!(Record::decode(&bytes).unwrap().0, legacy);
        let mut bad = legacy.clone();
        bad.origin = "not an agent id!".into();
        let mut bytes = Vec::new();
        bad.encode_into(&mut bytes);
        assert!(Record::decode(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn prop_round_trip(seq in any::<u64>(), body in proptest::collection::vec(any::<u8>(), 0..500)) {
            let mut bytes = Vec::new();
            record(seq, body.clone()).encode_into(&mut bytes);
            let (decoded, len) = Record::decode(&bytes).unwrap();
            prop_assert_eq!(len, bytes.len());
            prop_assert_eq!(decoded, record(seq, body));
        }
    }
}
