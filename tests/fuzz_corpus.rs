//! Replays every input under `fuzz/regressions/TARGET/` (crashes the fuzzers found, and the
//! field reports that started them) through that target's checks (`fuzz/checks.rs`), under
//! plain `cargo test`: a fixed crash stays fixed without nightly or libFuzzer.

#[path = "../fuzz/checks.rs"]
mod checks;

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("config_file", checks::config_file),
    ("config_json", checks::config_json),
    ("config_dropin", checks::config_dropin),
    ("env_file", checks::env_file),
    ("unit_file", checks::unit_file),
    ("k3s_config", checks::k3s_config),
    ("argv", checks::argv),
    ("saved_plan", checks::saved_plan),
    ("backup_manifest", checks::backup_manifest),
    ("summarize", checks::summarize),
    ("scan", checks::scan),
];

#[test]
fn every_regression_input_passes_its_targets_checks() {
    let dir = checks::testdata()
        .parent()
        .unwrap()
        .join("fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let check = TARGETS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("fuzz/regressions/{name}: no such fuzz target"))
            .1;
        for input in std::fs::read_dir(entry.path()).unwrap() {
            let input = input.unwrap().path();
            let data = std::fs::read(&input).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{}: the check failed", input.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs under {}", dir.display());
}

/// Every target's checks are exercised by at least one committed input, so each replays
/// something real (and the table above cannot name a target the fuzz crate lacks).
#[test]
fn every_fuzz_target_is_in_the_fuzz_crate() {
    let manifest =
        std::fs::read_to_string(checks::testdata().parent().unwrap().join("fuzz/Cargo.toml"))
            .unwrap();
    for (t, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "fuzz/Cargo.toml has no target {t}"
        );
    }
    assert_eq!(manifest.matches("[[bin]]").count(), TARGETS.len());
}
