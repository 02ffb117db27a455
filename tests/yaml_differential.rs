//! The YAML reader's scalar resolution (`config::yaml::resolve`) against yaml.v2 itself, through
//! sigs.k8s.io/yaml as the kubelet reads a config (tests/yaml-go, Debian's Go 1.19 and
//! libraries): a plain scalar must come out null, a bool, a number or a string on both sides.
//! Edge cases and random near-misses.

mod common;
use common::{kubelet_go, repo};
use kubelet_remediate::config::yaml::{Resolved, resolve};
use proptest::prelude::*;

fn ours(s: &str) -> &'static str {
    match resolve(s) {
        Resolved::Null => "null",
        Resolved::Bool(true) => "true",
        Resolved::Bool(false) => "false",
        Resolved::Int | Resolved::Float => "number",
        Resolved::Str => "string",
    }
}

fn theirs(cases: &[String]) -> Vec<String> {
    let bin = kubelet_go::build(
        "yaml-go",
        "resolve",
        &[repo().join("tests/yaml-go/main.go")],
    );
    kubelet_go::ask_lines(&bin, cases.iter().cloned())
}

fn agree(cases: &[String]) -> Result<(), String> {
    let want = theirs(cases);
    assert_eq!(want.len(), cases.len());
    for (s, want) in cases.iter().zip(want) {
        // Not a scalar there (a lone `-` starts a sequence), or NaN and infinities, which have
        // no JSON form: sigs.k8s.io/yaml fails on them. Resolution is not what is compared.
        if want == "err" {
            continue;
        }
        if ours(s) != want {
            return Err(format!("{s:?}: yaml.v2 says {want}, we say {}", ours(s)));
        }
    }
    Ok(())
}

const EDGES: &[&str] = &[
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "nul",
    "y",
    "Y",
    "yes",
    "n",
    "no",
    "on",
    "off",
    "ON",
    "Off",
    "true",
    "TRUE",
    "tRUE",
    "false",
    "0",
    "1",
    "-1",
    "+1",
    "+-1",
    "010",
    "0777",
    "08",
    "0x1F",
    "-0x1F",
    "0o17",
    "0b101",
    "-0b101",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "1e3",
    "1E+3",
    "1.",
    ".5",
    "+.5",
    "-.5",
    ".",
    "1.5",
    "1.5.5",
    ".inf",
    "-.Inf",
    "+.INF",
    ".nan",
    ".NaN",
    "inf",
    "nan",
    "NaN",
    "infinity",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10",
    "2001-1-2",
    "2001-13-01",
    "2001-12-14T21:59:43Z",
    "1h",
    "4h0m0s",
    "0s",
    "10255",
    "-",
    "+",
    "0x",
    "0b",
    "Webhook",
    "AlwaysAllow",
];

#[test]
fn plain_scalars_resolve_as_yaml_v2_resolves_them() {
    if kubelet_go::skip() {
        return;
    }
    let cases: Vec<String> = EDGES.iter().map(|s| s.to_string()).collect();
    agree(&cases).unwrap();
}

#[test]
fn random_plain_scalars_resolve_as_yaml_v2_resolves_them() {
    if kubelet_go::skip() {
        return;
    }
    let alphabet = prop::sample::select(vec![
        "0", "1", "2", "7", "9", "x", "o", "b", "_", "-", "+", ".", "e", "E", "inf", "nan", "y",
        "n", "t", "f", "T", "Z", "2001-", "12-", "14", "a",
    ]);
    let strategy = prop::collection::vec(
        prop::collection::vec(alphabet, 1..6).prop_map(|v| v.concat()),
        300,
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |batch| {
            agree(&batch).map_err(TestCaseError::fail)
        })
        .unwrap();
}
