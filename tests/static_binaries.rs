//! The static release binaries (`scripts/build-static.sh`, run by `.ci/run` before the tests):
//! x86_64 and aarch64 musl, no dynamic loader, and the same verdict as the test build on every
//! testdata tree; the aarch64 one under qemu-user.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn binary(triple: &str) -> Option<PathBuf> {
    let p = repo()
        .join("target")
        .join(triple)
        .join("release/kubelet-remediate");
    built(p, "run scripts/build-static.sh")
}

/// (e_machine, has PT_INTERP) of a 64-bit little-endian ELF file.
fn elf(path: &Path) -> (u16, bool) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{}", path.display());
    assert_eq!(b[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36) as usize, u16_at(0x38));
    const PT_INTERP: u32 = 3;
    let interp = (0..phnum as usize).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP);
    (u16_at(0x12), interp)
}

/// `plan --output json` over a tree: the record's report (the verdict, findings, diffs).
fn report(runner: &[&Path], tree: &Path) -> Value {
    let (first, rest) = runner.split_first().unwrap();
    let o = Command::new(first)
        .args(rest)
        .args([
            "plan",
            "--offline",
            "--output",
            "json",
            "--node-name",
            "n",
            "--root",
        ])
        .arg(tree)
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: {}",
            tree.display(),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(j["exit_code"].as_i64(), o.status.code().map(i64::from));
    j["report"].clone()
}

fn same_verdicts_as_the_test_build(runner: &[&Path]) {
    let native = Path::new(env!("CARGO_BIN_EXE_kubelet-remediate"));
    let trees = node_trees();
    assert!(trees.len() >= 30);
    for tree in &trees {
        assert_eq!(
            report(runner, tree),
            report(&[native], tree),
            "{}",
            tree.display()
        );
    }
}

#[test]
fn x86_64_musl_is_static_and_judges_like_the_test_build() {
    let Some(bin) = binary("x86_64-unknown-linux-musl") else {
        return;
    };
    assert_eq!(elf(&bin), (62, false), "x86-64, no dynamic loader");
    same_verdicts_as_the_test_build(&[&bin]);
}

#[test]
fn aarch64_musl_is_static_and_judges_like_the_test_build_under_qemu() {
    let Some(bin) = binary("aarch64-unknown-linux-musl") else {
        return;
    };
    assert_eq!(elf(&bin), (183, false), "AArch64, no dynamic loader");
    let qemu = Path::new("/usr/bin/qemu-aarch64");
    if skip_without(
        (!qemu.exists()).then(|| "qemu-aarch64 is missing: apt-get install qemu-user".into()),
    ) {
        return;
    }
    same_verdicts_as_the_test_build(&[qemu, &bin]);
}
