//! The Go stand-in kubelet (tests/kubelet-stand-in): built once per source change with Debian's
//! Go 1.19 and the kubelet's own parsing libraries, then asked for its verdict.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const GO: &str = "/usr/lib/go-1.19/bin/go";
const LIBS: &[&str] = &[
    "github.com/spf13/pflag",
    "sigs.k8s.io/yaml",
    "sigs.k8s.io/json",
    "github.com/evanphx/json-patch",
];

/// Why the Go stand-in cannot be built here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !Path::new(GO).exists() {
        return Some(format!("{GO} is missing (apt-get install golang-1.19-go)"));
    }
    for l in LIBS {
        if !Path::new("/usr/share/gocode/src").join(l).is_dir() {
            return Some(format!(
                "/usr/share/gocode/src/{l} is missing (its -dev package)"
            ));
        }
    }
    None
}

/// Skip a test outside CI when Go is missing; in CI it must run.
pub fn skip() -> bool {
    super::skip_without(unavailable())
}

/// The binary, rebuilt when main.go or the flag list is newer. Built in a private directory and
/// renamed into place, so test binaries building at once never see half a file.
pub fn binary() -> PathBuf {
    let repo = super::repo();
    build(
        "go-stand-in",
        "kubelet",
        &[
            repo.join("tests/kubelet-stand-in/main.go"),
            repo.join("src/kubelet_flags.txt"),
        ],
    )
}

/// A Go program from `sources` (its main.go first; every file is copied beside it under its
/// own name, main.go's as main.go), built as `name` under target's `dir`, rebuilt when a source
/// is newer.
pub fn build(dir: &str, name: &str, sources: &[PathBuf]) -> PathBuf {
    let out_dir = Path::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .parent()
        .unwrap()
        .join(dir);
    let bin = out_dir.join(name);
    let newest = sources
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .max()
        .unwrap();
    if std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= newest)
    {
        return bin;
    }
    std::fs::create_dir_all(&out_dir).unwrap();
    let work = tempfile::tempdir_in(&out_dir).unwrap();
    for (i, src) in sources.iter().enumerate() {
        let to = if i == 0 {
            "main.go".to_string()
        } else if src.file_name().unwrap() == "kubelet_flags.txt" {
            "flags.txt".to_string()
        } else {
            src.file_name().unwrap().to_string_lossy().into_owned()
        };
        std::fs::copy(src, work.path().join(to)).unwrap();
    }
    let built = work.path().join(name);
    let o = Command::new(GO)
        .args(["build", "-o"])
        .arg(&built)
        .arg(".")
        .current_dir(work.path())
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .env(
            "GOCACHE",
            std::env::var("GOCACHE")
                .unwrap_or_else(|_| out_dir.join("cache").display().to_string()),
        )
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&built, &bin).unwrap();
    bin
}

/// Run a line-oriented Go oracle: every line of `lines` on its stdin (written from a thread,
/// so a long input cannot deadlock against its output), its answer lines back.
pub fn ask_lines(bin: &Path, lines: impl Iterator<Item = String>) -> Vec<String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut c = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = lines.map(|l| l + "\n").collect();
    let mut stdin = c.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let o = c.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(o.status.success(), "{}", bin.display());
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What the stand-in concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Value(bool),
    Refused(String),
}

/// Run the stand-in as `argv` (argv[0] included) chrooted into `root`, in working directory
/// `cwd`.
pub fn judge(bin: &Path, root: &Path, cwd: &str, argv: &[String]) -> Judged {
    judge_all(bin, root, cwd, argv).0
}

/// The stand-in's verdict and, when the kubelet would start, every table setting's value (and
/// `client_ca_error` beside them).
pub fn judge_all(
    bin: &Path,
    root: &Path,
    cwd: &str,
    argv: &[String],
) -> (Judged, Option<serde_json::Value>) {
    let o = Command::new(bin)
        .arg0(&argv[0])
        .args(&argv[1..])
        .env("STAND_IN_ROOT", root)
        .env("STAND_IN_CWD", cwd)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "stand-in failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let judged = match v["value"].as_bool() {
        Some(b) => Judged::Value(b),
        None => Judged::Refused(v["refused"].as_str().unwrap_or("").to_string()),
    };
    let settings = v
        .get("settings")
        .filter(|s| !s.is_null())
        .cloned()
        .map(|mut s| {
            s["client_ca_error"] = v["client_ca_error"].clone();
            s
        });
    (judged, settings)
}
