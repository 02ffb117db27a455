//! Stamps the git revision into the binary for `--version` and the JSON record's `tool`.
//! `KUBELET_REMEDIATE_GIT_REVISION` set by a packager (a tarball has no .git) wins.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KUBELET_REMEDIATE_GIT_REVISION");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit or checkout moves HEAD or the branch it names. Only files that exist are
    // watched: cargo takes a missing one as changed, and would rerun this (and rebuild the
    // crate) on every build of a tree without .git, such as an unpacked source tarball.
    for f in [".git/HEAD", ".git/packed-refs"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{r}");
    }
    let rev = std::env::var("KUBELET_REMEDIATE_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let r = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !r.is_empty()).then_some(r)
        });
    if let Some(r) = rev {
        let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
        println!("cargo:rustc-env=KUBELET_REMEDIATE_GIT_REVISION={r}");
        println!("cargo:rustc-env=KUBELET_REMEDIATE_VERSION_LINE={version} ({r})");
    }
}
