//! Fuzz target `k3s_config`: the property is `checks::k3s_config` (shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::k3s_config(data));
