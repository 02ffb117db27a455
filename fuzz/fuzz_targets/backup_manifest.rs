//! Fuzz target `backup_manifest`: the property is `checks::backup_manifest` (shared with tests/fuzz_corpus.rs).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::backup_manifest(data));
