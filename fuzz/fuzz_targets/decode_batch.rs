//! The server's batch decoder on arbitrary bodies: it must answer every
//! body (events or a precise error) within its limits, never panic or
//! run away, and what it accepts must encode and decode to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loghound_shared::{decode_batch, encode_batch, Limits};

/// Small limits, so bombs and long lines are cut quickly.
const LIMITS: Limits = Limits {
    max_compressed_bytes: 64 << 10,
    max_decompressed_bytes: 1 << 20,
    max_line_bytes: 64 << 10,
    max_events: 1000,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Half the inputs are compressed here first, so the fuzzer reaches the
    // NDJSON and event checks instead of only the zstd frame parser.
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        match zstd::bulk::compress(rest, 1) {
            Ok(body) => body,
            Err(_) => return,
        }
    };
    let Ok(events) = decode_batch(&body, &LIMITS) else {
        return;
    };
    assert!(events.len() <= LIMITS.max_events);
    let again = encode_batch(&events, 1).expect("encoding accepted events");
    let decoded = decode_batch(&again, &Limits::default()).expect("re-decoding accepted events");
    assert_eq!(decoded, events, "accepted events changed on a round trip");
});
