//! Fuzz target `saved_plan`: the property is `checks::saved_plan` (shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::saved_plan(data));
