//! Request bodies as the ingest routes read them: with a size bound and
//! an idle timeout, then decompressed (gzip, deflate or zstd, by
//! `Content-Encoding`) with a bound on what decompression makes.

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;

use super::AppError;

/// Past the limit, how much more of a body is read and thrown away so that
/// the client, still sending, gets the 413 instead of a broken pipe.
const MAX_DRAIN_BYTES: usize = 64 << 20;

/// Reads the body, refusing more than `limit` bytes without holding them
/// and a client that sends nothing for `idle_timeout`.
pub(super) async fn read_body(
    mut body: Body,
    limit: usize,
    idle_timeout: std::time::Duration,
) -> Result<Vec<u8>, AppError> {
    let mut collected = Vec::new();
    let mut over_by = 0usize;
    loop {
        let Ok(next) = tokio::time::timeout(idle_timeout, body.frame()).await else {
            return Err(AppError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                format!("request body stalled for {} ms", idle_timeout.as_millis()),
            ));
        };
        let Some(frame) = next else {
            break;
        };
        let frame = frame.map_err(|error| {
            AppError::bad_request(format!("could not read request body: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if over_by == 0 && collected.len() + data.len() <= limit {
            collected.extend_from_slice(&data);
            continue;
        }
        if over_by == 0 {
            collected = Vec::new();
        }
        over_by += data.len();
        if over_by > MAX_DRAIN_BYTES {
            break;
        }
    }
    if over_by > 0 {
        return Err(AppError::too_large(
            format!("request body exceeds max_compressed_bytes ({limit})"),
            "max_compressed_bytes",
        ));
    }
    Ok(collected)
}

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Identity,
    Gzip,
    /// HTTP's `deflate`: zlib-wrapped (Vector's `zlib`).
    Deflate,
    Zstd,
}

/// The body's `Content-Encoding`: none, `gzip` or `zstd`; anything else
/// is a 415 naming it.
pub(super) fn encoding_of(headers: &HeaderMap) -> Result<Encoding, AppError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if text.eq_ignore_ascii_case("zstd") {
        Ok(Encoding::Zstd)
    } else if text.eq_ignore_ascii_case("deflate") {
        Ok(Encoding::Deflate)
    } else if text.eq_ignore_ascii_case("identity") || text.is_empty() {
        Ok(Encoding::Identity)
    } else {
        Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content-encoding {text:?}: send gzip, deflate, zstd or none"),
        ))
    }
}

/// The body decompressed; more than `max` bytes of it is a 413
/// (`max_decompressed_bytes`), counted while decompressing.
pub(super) fn decompress(
    body: Vec<u8>,
    encoding: Encoding,
    max: usize,
) -> Result<Vec<u8>, AppError> {
    let too_large = || {
        AppError::too_large(
            format!("the body decompresses to more than max_decompressed_bytes ({max})"),
            "max_decompressed_bytes",
        )
    };
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity if body.len() > max => return Err(too_large()),
        Encoding::Identity => return Ok(body),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body.as_slice())),
        Encoding::Deflate => Box::new(flate2::read::ZlibDecoder::new(body.as_slice())),
        Encoding::Zstd => Box::new(
            zstd::stream::read::Decoder::new(body.as_slice())
                .map_err(|e| AppError::bad_request(format!("cannot read the zstd body: {e}")))?,
        ),
    };
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            AppError::bad_request(format!("cannot decompress the {encoding:?} body: {e}"))
        })?;
    if out.len() > max {
        return Err(too_large());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn decompression_is_bounded_by_what_it_makes() {
        let raw = vec![b'a'; 10_000];
        assert_eq!(decompress(gzip(&raw), Encoding::Gzip, 10_000).unwrap(), raw);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&raw).unwrap();
        let zlib = zlib.finish().unwrap();
        assert_eq!(
            decompress(zlib.clone(), Encoding::Deflate, 10_000).unwrap(),
            raw
        );
        let zstd = zstd::encode_all(raw.as_slice(), 1).unwrap();
        assert_eq!(
            decompress(zstd.clone(), Encoding::Zstd, 10_000).unwrap(),
            raw
        );
        for (body, encoding) in [
            (gzip(&raw), Encoding::Gzip),
            (zstd, Encoding::Zstd),
            (raw, Encoding::Identity),
        ] {
            let (status, _, _) = decompress(body, encoding, 9_999).unwrap_err().parts();
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{encoding:?}");
        }
        let error = decompress(b"not gzip".to_vec(), Encoding::Gzip, 100).unwrap_err();
        let (status, message, _) = error.parts();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("Gzip"), "{message}");
    }

    #[test]
    fn encodings_are_read_from_the_header() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_ENCODING, value.parse().unwrap());
            encoding_of(&headers)
        };
        assert_eq!(encoding_of(&HeaderMap::new()).unwrap(), Encoding::Identity);
        assert_eq!(with("GZIP").unwrap(), Encoding::Gzip);
        assert_eq!(with("zstd").unwrap(), Encoding::Zstd);
        let error = with("br").unwrap_err();
        let (status, message, _) = error.parts();
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(message.contains("\"br\""), "{message}");
    }
}
