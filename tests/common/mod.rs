//! Test support: copy node trees, plan them through the library, write a plan's result.
#![allow(dead_code)]

use kubelet_remediate::evidence::{self, Evidence, Options};
use kubelet_remediate::plan::{self, Plan, Strategy};
use kubelet_remediate::root::NodeFs;
use kubelet_remediate::verdict::{self, Verdict};
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every node tree under testdata/nodes, sorted.
pub fn node_trees() -> Vec<PathBuf> {
    let mut cases: Vec<_> = std::fs::read_dir(repo().join("testdata/nodes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// Whether a test must skip because a part it drives is missing (`why`): outside CI it says
/// why and skips; CI must run every test, so there it fails.
pub fn skip_without(why: Option<String>) -> bool {
    match why {
        Some(why) if std::env::var_os("CI").is_none() => {
            skipped(&why);
            true
        }
        Some(why) => panic!("CI must run this test: {why}"),
        None => false,
    }
}

static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Say that the running test skips, and why, where a person sees it: straight to standard error
/// (the harness captures `println!` and `eprintln!`, so a skip looked like a pass), and again in
/// a summary when the test binary exits.
pub fn skipped(why: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let line = format!("SKIPPED {test}: {why}");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    let mut all = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if all.is_empty() {
        // libtest ends with process::exit, which runs atexit handlers.
        unsafe { libc::atexit(skipped_summary) };
    }
    all.push(line);
}

extern "C" fn skipped_summary() {
    use std::io::Write;
    let all = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{} test(s) of this binary skipped, not passed (CI=1 makes them fail instead):",
        all.len()
    );
    for l in all.iter() {
        let _ = writeln!(err, "  {l}");
    }
}

/// Copy a tree, keeping symlinks as symlinks, with the modes and owners a node has: git keeps
/// only the executable bit, so every file is made 0644 (0755 when executable) and root's,
/// then `testdata/nodes/<tree>.modes` (when there is one) gives the files the platform's own
/// modes and owners. Ownership needs root, as the suite runs; elsewhere it is left as is.
/// A copy of a copy (a prepared tree booted in a sandbox) keeps the modes and owners it has.
pub fn copy_tree(from: &Path, to: &Path) {
    let checkout = from.starts_with(repo().join("testdata"));
    copy_dir(from, to, checkout);
    let manifest = PathBuf::from(format!("{}.modes", from.display()));
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        apply_modes(to, &text, &manifest);
    }
}

fn copy_dir(from: &Path, to: &Path, checkout: bool) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_dir(&e.path(), &dst, checkout);
        } else {
            // fs::copy keeps the permission bits; the owner is set here.
            std::fs::copy(e.path(), &dst).unwrap();
            let meta = e.metadata().unwrap();
            let (mode, uid, gid) = if checkout {
                let exec = meta.permissions().mode() & 0o111 != 0;
                (if exec { 0o755 } else { 0o644 }, 0, 0)
            } else {
                (meta.permissions().mode() & 0o7777, meta.uid(), meta.gid())
            };
            let _ = std::os::unix::fs::lchown(&dst, Some(uid), Some(gid));
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Every file of a tree (not following symlinks) with its content or link target, mode and
/// owner: what "restored byte for byte" compares. `skip` leaves out the tool's own state.
pub fn snapshot(root: &Path, skip: &[&str]) -> Vec<(String, Vec<u8>, u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    fn walk(
        root: &Path,
        dir: &Path,
        skip: &[&str],
        out: &mut Vec<(String, Vec<u8>, u32, u32, u32)>,
    ) {
        let mut ents: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if skip.iter().any(|s| rel.starts_with(s)) {
                continue;
            }
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                walk(root, &e.path(), skip, out);
                continue;
            }
            let data = if m.file_type().is_symlink() {
                std::fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            out.push((rel, data, m.mode(), m.uid(), m.gid()));
        }
    }
    let mut out = Vec::new();
    walk(root, root, skip, &mut out);
    out
}

/// Control `id`'s verdict in a record's `report.controls`.
pub fn control<'a>(j: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    j["report"]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id} in the record"))
}

/// Give the copied kubeadm tree at `root` a health port of its own (sandboxes share the
/// host's network, so two kubelets on 10248 would answer for each other).
pub fn own_healthz_port(root: &Path) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = root.join("var/lib/kubelet/config.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("healthzPort: 10248\n"));
    std::fs::write(
        &cfg,
        text.replace("healthzPort: 10248\n", &format!("healthzPort: {port}\n")),
    )
    .unwrap();
}

/// The tool's own state inside a node root: backups, the log, the lock and marker.
pub const STATE: &[&str] = &["var/lib/kubelet-remediate", "var/log", "run"];

/// A file's mode (permission bits with setuid/setgid/sticky) and owner.
pub fn mode_owner(p: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// Give the copied tree at `root` the modes and owners of a `.modes` manifest: lines of
/// `MODE UID:GID /node/path` (octal mode), `#` comments.
pub fn apply_modes(root: &Path, text: &str, manifest: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}: {line:?}", manifest.display(), n + 1);
        let mut parts = line.split_whitespace();
        let (Some(mode), Some(owner), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("{}: not MODE UID:GID PATH", at());
        };
        let mode = u32::from_str_radix(mode, 8).unwrap_or_else(|_| panic!("{}: mode", at()));
        let (uid, gid) = owner
            .split_once(':')
            .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
            .unwrap_or_else(|| panic!("{}: owner", at()));
        let file = root.join(path.trim_start_matches('/'));
        assert!(
            std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()),
            "{}: not a regular file of the tree",
            at()
        );
        // Owner first: a chown clears setuid and setgid.
        std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

pub struct Planned {
    pub ev: Evidence,
    pub verdict: Verdict,
    pub plan: Plan,
}

pub fn plan_root(
    root: &Path,
    strategy: Option<Strategy>,
) -> kubelet_remediate::error::Result<Planned> {
    let fs = NodeFs::new(root);
    let opts = Options {
        unit: None,
        offline: true,
    };
    let ev = evidence::gather(&fs, &opts)?;
    let verdict = verdict::judge(&ev);
    let plan = plan::plan(&fs, &opts, &ev, &verdict, strategy)?;
    Ok(Planned { ev, verdict, plan })
}

/// Write every change's new content into the tree (a stand-in for `apply`).
pub fn write_plan(root: &Path, plan: &Plan) {
    for c in &plan.changes {
        std::fs::write(
            root.join(c.path.trim_start_matches('/')),
            c.after.as_bytes(),
        )
        .unwrap();
    }
}

/// Lines removed and added by a change.
pub fn changed_lines(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for op in similar::TextDiff::from_lines(before, after).iter_all_changes() {
        match op.tag() {
            similar::ChangeTag::Delete => removed.push(op.value().to_string()),
            similar::ChangeTag::Insert => added.push(op.value().to_string()),
            similar::ChangeTag::Equal => {}
        }
    }
    (removed, added)
}

/// Whether a line carries the setting (flag in any spelling, or the config key).
pub fn carries_setting(line: &str) -> bool {
    // k3s kubelet-arg entries name the flag without its dashes.
    // Drop-in keys count in any case (encoding/json folds them).
    line.replace('_', "-").contains("make-iptables-util-chains")
        || line.to_ascii_lowercase().contains("makeiptablesutilchains")
}

pub mod kubelet_go;
pub mod sandbox;

/// docs/report.schema.json, compiled.
pub fn record_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("docs/report.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// Panics with every violation when `j` is not a valid record.
pub fn assert_valid_record(j: &serde_json::Value) {
    let errors: Vec<String> = record_validator()
        .iter_errors(j)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{j:#}");
}

/// `path` when it exists; otherwise the test skips (outside CI) or fails (in CI), saying that
/// `how` makes it, as `.ci/run` does.
pub fn built(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    skip_without(Some(format!(
        "{} is missing: {how} (as .ci/run does)",
        path.display()
    )));
    None
}
