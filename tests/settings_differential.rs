//! The settings table's value parsers (src/settings.rs) against spf13/pflag itself: the same
//! texts through pflag's `Set` for bool, int32, int64, duration and stringSlice flags (built with
//! Debian's Go 1.19 and pflag, tests/settings-go), hand-picked edge cases and random ones
//! (proptest), and the answers must agree: accepted or refused, and the same value.

mod common;
use common::kubelet_go;
use common::repo;
use kubelet_remediate::settings::{FlagType, Value, format_duration, parse};
use proptest::prelude::*;

const TYPES: &[(&str, FlagType)] = &[
    ("bool", FlagType::Bool),
    ("int32", FlagType::Int32),
    ("int64", FlagType::Int64),
    ("duration", FlagType::Duration),
    ("stringSlice", FlagType::StringSlice),
];

/// What the Rust side makes of `text`, in the oracle's format.
fn rust(ty: FlagType, text: &str) -> String {
    match parse(ty, text) {
        Err(_) => "err".into(),
        Ok(Value::Bool(b)) => format!("ok\t{b}"),
        Ok(Value::Int(i)) => format!("ok\t{i}"),
        Ok(Value::Duration(d)) => format!("ok\t{}", format_duration(d)),
        Ok(Value::List(l)) => format!("ok\t{}", l.unwrap_or_default().join("\x1f")),
        Ok(other) => panic!("{other:?}"),
    }
}

/// Every (type, text) through the Go oracle in one process.
fn go(cases: &[(&str, FlagType, String)]) -> Vec<String> {
    let bin = kubelet_go::build(
        "settings-go",
        "settings",
        &[repo().join("tests/settings-go/main.go")],
    );
    kubelet_go::ask_lines(
        &bin,
        cases
            .iter()
            .map(|(name, _, text)| format!("{name}\t{}", text.replace('\n', "\\n"))),
    )
}

fn agree(cases: &[(&str, FlagType, String)]) -> Result<(), String> {
    let want = go(cases);
    assert_eq!(want.len(), cases.len());
    for ((name, ty, text), want) in cases.iter().zip(want) {
        let got = rust(*ty, text);
        if got != want {
            return Err(format!(
                "{name} {text:?}: pflag says {want:?}, we say {got:?}"
            ));
        }
    }
    Ok(())
}

const EDGES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "+1",
    "true",
    "True",
    "TRUE",
    "t",
    "F",
    "yes",
    "on",
    "010",
    "08",
    "0x0",
    "0X1F",
    "0o17",
    "0b101",
    "0b",
    "0x",
    "1_000",
    "0x_1",
    "_1",
    "1_",
    "1__0",
    "2147483647",
    "2147483648",
    "-2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "0s",
    "0h0m0s",
    "4h",
    "4h0m0s",
    "1h30m",
    "1.5s",
    ".5s",
    "5.s",
    "300ms",
    "1µs",
    "1μs",
    "1us",
    "2ns",
    "-1m",
    "1d",
    "1",
    "h",
    ".s",
    "2562047h",
    "2562048h",
    "1.0000000009s",
    "1h0m0.000000001s",
    "a,b",
    "\"a,b\",c",
    " a , b",
    "a,",
    ",",
    "\"a",
    "a\"b",
    "\"a\"b",
    "\"say \"\"hi\"\"\"",
    "a,b\nc",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
];

#[test]
fn the_parsers_agree_with_pflag_on_the_edge_cases() {
    if kubelet_go::skip() {
        return;
    }
    let mut cases = Vec::new();
    for (name, ty) in TYPES {
        for e in EDGES {
            cases.push((*name, *ty, e.to_string()));
        }
    }
    agree(&cases).unwrap();
}

#[test]
fn the_parsers_agree_with_pflag_on_random_text() {
    if kubelet_go::skip() {
        return;
    }
    // Text made of what these syntaxes are made of, so most cases are near-misses.
    let alphabet = prop::sample::select(vec![
        "0", "1", "7", "9", "x", "o", "b", "_", "-", "+", ".", "h", "m", "s", "ms", "µs", "n",
        "us", "e", ",", "\"", " ", "a", "f", "t", "T", "F",
    ]);
    let strategy = prop::collection::vec(
        (
            0..TYPES.len(),
            prop::collection::vec(alphabet, 0..8).prop_map(|v| v.concat()),
        ),
        200,
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |batch| {
            let cases: Vec<_> = batch
                .into_iter()
                .map(|(t, text)| (TYPES[t].0, TYPES[t].1, text))
                .collect();
            agree(&cases).map_err(TestCaseError::fail)
        })
        .unwrap();
}
