//! The SQL lexer and the statement classifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::multiplex::{classify, lexer};

fuzz_target!(|data: &[u8]| {
    let _ = lexer::tokens(data).count();
    let _ = classify::classify(data, true);
    let _ = classify::classify(data, false);
});
