//! The .deb (`scripts/build-deb.sh`, run by `.ci/run` before the tests): its control fields,
//! and, unpacked, a binary that runs and names its revision, the man page in section 8, the
//! three shell completions and the record's schema.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn deb() -> PathBuf {
    repo().join(format!(
        "target/x86_64-unknown-linux-musl/debian/kubelet-remediate_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ))
}

#[test]
fn the_deb_installs_a_static_binary_its_man_page_and_completions() {
    let Some(deb) = built(deb(), "run scripts/build-deb.sh") else {
        return;
    };
    let field = |name: &str| {
        let o = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "kubelet-remediate");
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Section"), "admin");
    assert_eq!(field("Depends"), "", "static: no library dependencies");
    assert!(field("Version").starts_with(env!("CARGO_PKG_VERSION")));

    let t = tempfile::tempdir().unwrap();
    let x = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(t.path())
        .status()
        .unwrap();
    assert!(x.success());
    let root = t.path();
    let v = Command::new(root.join("usr/sbin/kubelet-remediate"))
        .arg("--version")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&v.stdout);
    assert!(
        line.starts_with(&format!(
            "kubelet-remediate {} (",
            env!("CARGO_PKG_VERSION")
        )),
        "{line}"
    );
    for f in [
        "usr/share/man/man8/kubelet-remediate.8.gz",
        "usr/share/man/man8/kubelet-remediate-apply.8.gz",
        "usr/share/man/man8/kubelet-remediate-summarize.8.gz",
        "usr/share/doc/kubelet-remediate/summary.schema.json",
        "usr/share/doc/kubelet-remediate/scan.schema.json",
        "usr/share/bash-completion/completions/kubelet-remediate",
        "usr/share/zsh/vendor-completions/_kubelet-remediate",
        "usr/share/fish/vendor_completions.d/kubelet-remediate.fish",
        "usr/share/doc/kubelet-remediate/report.schema.json",
        "usr/share/doc/kubelet-remediate/copyright",
    ] {
        assert!(
            std::fs::metadata(root.join(f)).is_ok_and(|m| m.len() > 0),
            "{f}"
        );
    }
    let page = |name: &str| {
        let o = Command::new("gzip")
            .arg("-dc")
            .arg(root.join(format!("usr/share/man/man8/{name}.8.gz")))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let man = page("kubelet-remediate");
    assert!(man.contains(".TH kubelet-remediate 8"), "{man}");
    assert!(
        man.contains("summarize"),
        "the man page lists every command"
    );
    // Every page the main one names is shipped, with its options and exit statuses.
    let apply = page("kubelet-remediate-apply");
    assert!(apply.contains("backup\\-dir"), "{apply}");
    assert!(apply.contains(".SH \"EXIT STATUS\"\n.nf"), "{apply}");
}
