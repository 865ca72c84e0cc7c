//! The query language on arbitrary text: parse and compile against the
//! real schema must answer every input (a query or an error with a
//! position inside the text), never panic or overflow the stack.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use loghound_server::index::schema::{self, Fields};

static FIELDS: LazyLock<Fields> = LazyLock::new(|| schema::build().1);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = loghound_server::query::compile(text, &FIELDS) {
        let chars = text.chars().count();
        assert!(
            error.position <= chars,
            "error position {} past the end ({chars} characters) of {text:?}: {error}",
            error.position
        );
    }
});
