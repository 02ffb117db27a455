//! Fuzz target `config_dropin`: the property is `checks::config_dropin` (shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config_dropin(data));
