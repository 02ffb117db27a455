//! `scan`: find every false at its source in a repository's manifests, and fix it in place.
//!
//! The sources that regenerate nodes (kubeadm's ConfigMap, CAPI templates, EKS NodeConfig,
//! OpenShift KubeletConfig, k3s config, kubelet-running workloads, KubeletConfiguration files)
//! are judged as the kubelet judges them ([`sources`]) and fixed with the same minimal span
//! edits as `plan`: only the bytes of the false change, so comments, order, quoting,
//! indentation and line endings stay as they were.

pub mod output;
pub mod sources;
pub mod tree;

use crate::plan::{apply_edits, unified};
use crate::text::SourceFile;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Files larger than this are skipped (a manifest is kilobytes).
const MAX_MANIFEST: u64 = 16 << 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub kind: &'static str,
    pub message: String,
    /// The unified diff of this finding's own fix, if it can be fixed exactly.
    pub diff: Option<String>,
    /// The document of the stream it is in (0-based), for JUnit's test cases.
    #[serde(skip)]
    pub document: usize,
    #[serde(skip)]
    pub edit: Option<(usize, usize, String)>,
    /// The source line, for the text output.
    #[serde(skip)]
    pub evidence: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
    /// A line of the skipped file that looks like it sets the value false: the file is not
    /// judged, but it must not pass unseen (scan exits 2).
    pub suspect: Option<Suspect>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Suspect {
    pub line: usize,
    pub text: String,
}

/// One file that parsed: its documents and what was found in them.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub path: String,
    pub host: PathBuf,
    pub text: String,
    pub documents: usize,
    pub findings: Vec<Finding>,
}

impl Scanned {
    /// The file with every fixable finding fixed, if any is.
    pub fn fixed(&self) -> Option<String> {
        let edits: Vec<_> = self
            .findings
            .iter()
            .filter_map(|f| f.edit.clone())
            .collect();
        if edits.is_empty() {
            return None;
        }
        apply_edits(&self.text, &edits)
    }
}

#[derive(Debug, Default)]
pub struct Scan {
    pub files: Vec<Scanned>,
    pub skipped: Vec<Skipped>,
}

impl Scan {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.files.iter().flat_map(|f| f.findings.iter())
    }

    /// Whether the scan must fail: a finding, or a skipped file with a suspect line.
    pub fn blocks(&self) -> bool {
        self.findings().next().is_some() || self.skipped.iter().any(|s| s.suspect.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// A path named on the command line that is neither a file nor a directory (`/dev/null`, a
    /// FIFO): a usage error, never "0 files, nothing found".
    #[error("{0}: not a regular file or a directory: nothing to scan")]
    NotScannable(String),
}

/// Scan files and directories (recursively; hidden directories such as `.git` are not entered,
/// and symlinks are not followed, so a link cannot lead the scan or a fix out of the tree).
pub fn scan(paths: &[PathBuf]) -> Result<Scan, ScanError> {
    let mut files = Vec::new();
    for p in paths {
        let meta =
            std::fs::symlink_metadata(p).map_err(|e| ScanError::Io(p.display().to_string(), e))?;
        if meta.is_dir() {
            walk(p, &mut files).map_err(|e| ScanError::Io(p.display().to_string(), e))?;
        } else if meta.is_file() || meta.is_symlink() {
            files.push(p.clone());
        } else {
            return Err(ScanError::NotScannable(p.display().to_string()));
        }
    }
    let mut out = Scan::default();
    for p in files {
        scan_file(&p, &mut out);
    }
    Ok(out)
}

/// The path a diff names (`a/PATH`): without a leading `./`.
pub fn diff_path(p: &str) -> &str {
    p.strip_prefix("./").unwrap_or(p)
}

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            if !e.file_name().to_string_lossy().starts_with('.') {
                walk(&p, out)?;
            }
        } else if t.is_file() && is_manifest(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn scan_file(p: &Path, out: &mut Scan) {
    // One spelling of a path in every output (JSON, text, SARIF, JUnit): without `./`.
    let path = diff_path(&p.display().to_string()).to_string();
    let skip = |out: &mut Scan, reason: String, text: &str| {
        out.skipped.push(Skipped {
            path: path.clone(),
            reason,
            suspect: suspect(text),
        })
    };
    let text = match read(p) {
        Ok(t) => t,
        Err(reason) => return skip(out, reason, ""),
    };
    // A chart template is Go template text; one with no action renders as itself (Helm copies
    // it through text/template unchanged), so only one with `{{` is skipped.
    if helm_template(p) && text.contains("{{") {
        return skip(
            out,
            "a Helm chart template with template actions: scan what it renders to (helm template CHART --output-dir DIR)"
                .into(),
            &text,
        );
    }
    // A .json file is JSON: the kubelet (and kubectl) decode a buffer starting with `{` with a
    // strict JSON decoder, which refuses a trailing comma or a comment that YAML would take.
    if p.extension().is_some_and(|e| e == "json")
        && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text)
    {
        let why = format!(
            "not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        );
        return skip(out, why, &text);
    }
    let f = SourceFile::new(path.clone(), path.clone(), text);
    let docs = match tree::parse(&f) {
        Ok(d) => d,
        Err(e) if f.text.contains("{{") => {
            return skip(
                out,
                format!("a template ({{{{ }}}}), not YAML: {e}"),
                &f.text,
            );
        }
        Err(e) => return skip(out, e, &f.text),
    };
    let mut findings = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let mut hits = Vec::new();
        sources::judge(&f, &d.root, &mut hits);
        for h in hits {
            let (line, column) = f.line_col(h.at);
            let diff = h.edit.as_ref().and_then(|e| {
                let after = apply_edits(&f.text, std::slice::from_ref(e))?;
                Some(unified(diff_path(&path), &f.text, &after))
            });
            let lr = f.line_range(h.at);
            findings.push(Finding {
                path: path.clone(),
                line,
                column,
                kind: h.kind,
                message: h.message,
                diff,
                document: i,
                edit: h.edit,
                evidence: f.text[lr].trim_end_matches(['\n', '\r']).to_string(),
            });
        }
    }
    // The text is kept only where there is something to fix or show: memory stays flat over
    // a repository of compliant files.
    let text = if findings.is_empty() {
        String::new()
    } else {
        f.text.to_string()
    };
    out.files.push(Scanned {
        path,
        host: p.to_path_buf(),
        text,
        documents: docs.len(),
        findings,
    });
}

/// The first line of a file that could not be judged that looks like it sets the value false:
/// the flag with a false-looking value, or the key followed by one.
fn suspect(text: &str) -> Option<Suspect> {
    const FALSE: &[&str] = &["false", "0", "f", "no", "off", "n"];
    text.lines().enumerate().find_map(|(i, l)| {
        let lower = l.to_ascii_lowercase();
        let hit = [
            crate::flags::FLAG,
            "make_iptables_util_chains",
            "makeiptablesutilchains",
        ]
        .iter()
        .filter_map(|k| lower.find(&k.to_ascii_lowercase()).map(|at| (at, k.len())))
        .any(|(at, len)| {
            let rest = lower[at + len..].trim_start_matches(['"', '\'', ' ', ':', '=', '\t']);
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            FALSE.contains(&word.as_str())
        });
        hit.then(|| Suspect {
            line: i + 1,
            text: l.trim().chars().take(200).collect(),
        })
    })
}

/// A file under `templates/` of a directory holding `Chart.yaml`: Go template text, which may
/// even parse as YAML without meaning what it says.
fn helm_template(p: &Path) -> bool {
    p.ancestors().skip(1).any(|d| {
        d.file_name().is_some_and(|n| n == "templates")
            && d.parent().is_some_and(|c| c.join("Chart.yaml").is_file())
    })
}

fn read(p: &Path) -> Result<String, String> {
    let bytes = crate::inroot::read_host_file_with(p, MAX_MANIFEST, libc::O_NOFOLLOW)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())
}

/// Write every fixable file in place: a temporary file next to it (created exclusively, given
/// the original's mode and owner, synced), renamed over it. Nothing is left beside the file,
/// and a file that changed since it was scanned is not touched. Returns the paths written.
pub fn write_fixes(scan: &Scan) -> Result<Vec<String>, ScanError> {
    let mut written = Vec::new();
    for s in &scan.files {
        let Some(after) = s.fixed() else { continue };
        write_in_place(&s.host, &s.text, &after).map_err(|e| ScanError::Io(s.path.clone(), e))?;
        written.push(s.path.clone());
    }
    Ok(written)
}

fn write_in_place(path: &Path, before: &str, after: &str) -> std::io::Result<()> {
    let now = std::fs::read(path)?;
    if now != before.as_bytes() {
        return Err(std::io::Error::other(
            "changed since it was scanned; scan again",
        ));
    }
    let meta = std::fs::symlink_metadata(path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.kubelet-remediate.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(after.as_bytes())?;
        // Owner first: chown clears setuid bits, which the mode then restores.
        let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
