//! Turn a non-compliant verdict into minimal span edits, and prove them before proposing.
//!
//! Each false setting is fixed where it is written: a flag token is deleted (strategy `remove`,
//! the default for flags, since the kubelet's default is true) or its value set to `true`; a
//! config key is set to `true` (`set-true`, the default for files) or its entry deleted. The
//! edited texts are then evaluated again through an overlay of the node: the effective value
//! must be true, and the kubelet's argv (ignoring this flag) and merged configuration (ignoring
//! this key) must be exactly what they were. An edit that fails this proof is retried with the
//! other strategy; if none passes, nothing is proposed.

use crate::error::{Error, Result};
use crate::evidence::{self, Evidence, Options};
use crate::flags::FLAG;
use crate::root::NodeFs;
use crate::systemd::exec::Arg;
use crate::text::{FileId, Span};
use crate::verdict::{self, Finding, Handle, Status, Verdict};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Delete the setting (the kubelet's default is true).
    Remove,
    /// Set the setting to true where it is written.
    SetTrue,
}

impl Strategy {
    fn other(self) -> Strategy {
        match self {
            Strategy::Remove => Strategy::SetTrue,
            Strategy::SetTrue => Strategy::Remove,
        }
    }
}

/// One replacement of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
    pub replacement: String,
}

/// The new content of one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    /// The file's path inside the node (after symlinks: the file that is written).
    pub path: String,
    /// The path the kubelet or systemd names, when it differs (a symlink).
    pub via: Option<String>,
    pub diff: String,
    /// Shared with the evidence and the proof's overlay: a large file is held once per version.
    #[serde(skip)]
    pub before: Arc<str>,
    #[serde(skip)]
    pub after: Arc<str>,
    /// Which findings this change fixes, and how.
    pub fixes: Vec<String>,
    /// The ids of the controls this change fixes (one diff per file, whatever fixes it).
    pub controls: Vec<&'static str>,
    /// The span replacements that turn `before` into `after` (start, end, replacement).
    #[serde(skip)]
    pub edits: Vec<(usize, usize, String)>,
    /// A mode or owner change (4.1 controls): `mode`/`owner` `{"from","to"}` in the record.
    #[serde(flatten)]
    pub meta: crate::meta::MetaChange,
}

impl Change {
    /// Whether the content changes (not only the mode or owner): only then is a restart due.
    pub fn edits_content(&self) -> bool {
        !self.diff.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub daemon_reload: bool,
    pub notes: Vec<String>,
    /// Controls with an automatic fix that was not proposed, and why (`fix.rs`): their advice.
    pub held: Vec<(&'static str, String)>,
}

/// Whether two evaluations give the kubelet the same arguments and configuration, apart
/// from this flag and this key.
fn same_apart_from_setting(a: &Evidence, b: &Evidence) -> bool {
    let ours = |a: &String| {
        a.strip_prefix("--").is_some_and(|b| {
            let name = b.split('=').next().unwrap_or("");
            name.replace('_', "-") == FLAG
        })
    };
    // Compared in place: copying every argument's text for the comparison doubled a huge
    // command line's memory.
    fn argv(e: &Evidence, ours: impl Fn(&String) -> bool) -> Vec<&String> {
        e.argv
            .iter()
            .map(|a| &a.value.text)
            .filter(|a| !ours(a))
            .collect()
    }
    let named = |e: &Evidence| e.configs.config.as_ref().map(|c| c.named.clone());
    argv(a, ours) == argv(b, ours)
        && named(a) == named(b)
        && a.configs.config_dir == b.configs.config_dir
        && a.configs.merged == b.configs.merged
}

pub fn plan(
    fs: &NodeFs,
    opts: &Options,
    ev: &Evidence,
    v: &Verdict,
    strategy: Option<Strategy>,
) -> Result<Plan> {
    let mut p = Plan::default();
    if !matches!(v.outcome, verdict::Outcome::Value(false, _)) || ev.platform.managed() {
        return Ok(p);
    }
    let targets: Vec<&Finding> = v
        .findings
        .iter()
        .filter(|f| f.sets == Some(false) && f.status != Status::Inert && f.handle != Handle::None)
        .collect();
    let preferred = |f: &Finding| {
        strategy.unwrap_or(match f.handle {
            Handle::Arg { .. } => Strategy::Remove,
            _ => Strategy::SetTrue,
        })
    };
    let mut last_err = String::new();
    // First every target with its preferred strategy, then the alternative for all of them.
    for round in 0..2 {
        let mut edits = Vec::new();
        let mut fixes: Vec<(FileId, String)> = Vec::new();
        for f in &targets {
            let first = if round == 0 {
                preferred(f)
            } else {
                preferred(f).other()
            };
            let (e, used) = match edit_for(ev, f, first) {
                Some(e) => (e, first),
                None => match edit_for(ev, f, first.other()) {
                    Some(e) => (e, first.other()),
                    None => {
                        return Err(Error::Unsupported(format!(
                            "{}:{}: no safe edit for {} (it is assembled from several sources)",
                            f.path, f.line, f.text
                        )));
                    }
                },
            };
            let how = match used {
                Strategy::Remove => "remove",
                Strategy::SetTrue => "set to true",
            };
            fixes.push((e.file, format!("{}:{}: {} ({how})", f.path, f.line, f.text)));
            if !edits.contains(&e) {
                edits.push(e);
            }
        }
        match prove(fs, opts, ev, &edits) {
            Ok(texts) => {
                let fixes: Vec<(FileId, String, &'static str)> = fixes
                    .into_iter()
                    .map(|(f, s)| (f, s, crate::controls::DEFAULT_CONTROL))
                    .collect();
                (p.changes, p.daemon_reload) = changes(ev, texts, &edits, &fixes);
                if round == 1 {
                    p.notes.push(format!(
                        "the preferred strategy did not pass the proof ({last_err}); the alternative did"
                    ));
                }
                return Ok(p);
            }
            Err(e) => last_err = e,
        }
    }
    Err(Error::Unsupported(format!(
        "no edit could be proven safe: {last_err}"
    )))
}

/// One change per edited file: its diff, what it fixes (`(file, description, control)`) and
/// which controls; and whether a unit file changed (a daemon-reload is needed).
pub fn changes(
    ev: &Evidence,
    texts: BTreeMap<FileId, Arc<str>>,
    edits: &[Edit],
    fixes: &[(FileId, String, &'static str)],
) -> (Vec<Change>, bool) {
    let mut out = Vec::new();
    let mut daemon_reload = false;
    let units = &ev.service.unit_files;
    for (file, after) in texts {
        let sf = ev.files.get(file);
        daemon_reload |= units.contains(&file);
        let mut controls: Vec<&'static str> = Vec::new();
        for (_, _, c) in fixes.iter().filter(|(id, ..)| *id == file) {
            if !controls.contains(c) {
                controls.push(c);
            }
        }
        // In the table's order, as report.controls lists them.
        controls.sort_by_key(|id| crate::controls::CONTROLS.iter().position(|c| c.id == *id));
        out.push(Change {
            controls,
            path: sf.resolved.clone(),
            via: (sf.resolved != sf.path).then(|| sf.path.clone()),
            diff: unified(&sf.resolved, &sf.text, &after),
            before: sf.text.clone(),
            after,
            fixes: fixes
                .iter()
                .filter(|(id, ..)| *id == file)
                .map(|(_, s, _)| s.clone())
                .collect(),
            edits: edits
                .iter()
                .filter(|e| e.file == file)
                .map(|e| (e.start, e.end, e.replacement.clone()))
                .collect(),
            meta: Default::default(),
        });
    }
    (out, daemon_reload)
}

/// Each edited file's new text, by file.
pub type Texts = BTreeMap<FileId, Arc<str>>;

/// The edited texts of every touched file, and the overlay that re-reads the node through them
/// (by resolved path).
pub fn edited(
    ev: &Evidence,
    edits: &[Edit],
) -> std::result::Result<(Texts, HashMap<String, Arc<str>>), String> {
    let mut by_file: BTreeMap<FileId, Vec<&Edit>> = BTreeMap::new();
    for e in edits {
        by_file.entry(e.file).or_default().push(e);
    }
    let mut texts = BTreeMap::new();
    let mut overlay = HashMap::new();
    for (file, es) in by_file {
        let sf = ev.files.get(file);
        let spans: Vec<(usize, usize, String)> = es
            .iter()
            .map(|e| (e.start, e.end, e.replacement.clone()))
            .collect();
        let t: Arc<str> = apply_edits(&sf.text, &spans)
            .ok_or_else(|| format!("overlapping edits in {}", sf.path))?
            .into();
        overlay.insert(sf.resolved.clone(), t.clone());
        texts.insert(file, t);
    }
    Ok((texts, overlay))
}

/// The edited texts, and the node re-read through them (offline: the files as edited).
pub fn reread(
    fs: &NodeFs,
    opts: &Options,
    ev: &Evidence,
    edits: &[Edit],
) -> std::result::Result<(Texts, Evidence), String> {
    let (texts, overlay) = edited(ev, edits)?;
    let after_fs = fs.with_overlay(overlay);
    let check = Options {
        offline: true,
        ..opts.clone()
    };
    let after = evidence::gather_with_layout(&after_fs, &check, ev.service.layout.clone())
        .map_err(|e| format!("the edited node does not load: {e}"))?;
    Ok((texts, after))
}

/// Apply the edits in memory, re-read the node through them, and check the result.
fn prove(
    fs: &NodeFs,
    opts: &Options,
    ev: &Evidence,
    edits: &[Edit],
) -> std::result::Result<BTreeMap<FileId, Arc<str>>, String> {
    let (texts, after) = reread(fs, opts, ev, edits)?;
    let verdict = verdict::judge(&after);
    if !verdict.compliant() {
        return Err("the edited node still does not evaluate to true".into());
    }
    if !same_apart_from_setting(&after, ev) {
        return Err("the edit would change other kubelet arguments or configuration".into());
    }
    Ok(texts)
}

fn edit_for(ev: &Evidence, f: &Finding, s: Strategy) -> Option<Edit> {
    match (f.handle, s) {
        (Handle::Arg { arg, .. }, Strategy::Remove) => remove_arg(ev, &ev.argv[arg]),
        (Handle::Arg { arg, occ }, Strategy::SetTrue) => {
            let a = &ev.argv[arg];
            let r = ev.cmdline.occurrences[occ].value_range.clone()?;
            let sp = a.value.span_of(r)?;
            Some(replace(sp, "true"))
        }
        (Handle::Key { dropin, occ }, s) => {
            let src = match dropin {
                None => ev.configs.config.as_ref()?,
                Some(i) => &ev.configs.dropins[i],
            };
            if crate::k3s::is_generated(&src.named) {
                return None; // rewritten by k3s/rke2 at every start
            }
            let o = &src.doc.occurrences[occ];
            let file = src.doc.file;
            match s {
                Strategy::SetTrue => Some(Edit {
                    file,
                    start: o.value_span.start,
                    end: o.value_span.end,
                    replacement: "true".into(),
                }),
                Strategy::Remove => o.removal.clone().map(|r| Edit {
                    file,
                    start: r.start,
                    end: r.end,
                    replacement: String::new(),
                }),
            }
        }
        (Handle::None, _) => None,
    }
}

pub(crate) fn replace(sp: Span, with: &str) -> Edit {
    Edit {
        file: sp.file,
        start: sp.start,
        end: sp.end,
        replacement: with.into(),
    }
}

/// Delete an argument and one run of blanks next to it, staying inside the text it came from
/// (so `KEY=` and quotes around a value are never touched).
pub(crate) fn remove_arg(ev: &Evidence, a: &Arg) -> Option<Edit> {
    if !a.removable {
        return None;
    }
    let c = &a.container;
    let b = c.text.as_bytes();
    let blank = |i: usize| matches!(b[i], b' ' | b'\t') && c.loc(i).is_some();
    let mut r = a.raw.clone();
    let mut s = r.start;
    while s > 0 && blank(s - 1) {
        s -= 1;
    }
    if s < r.start {
        r.start = s;
    } else {
        while r.end < b.len() && blank(r.end) {
            r.end += 1;
        }
    }
    let sp = c.span_of(r)?;
    let sf = ev.files.get(sp.file);
    // A continuation line left holding only its backslash goes whole.
    let line = sf.line_range(sp.start);
    if sp.end <= line.end {
        let rest = format!(
            "{}{}",
            &sf.text[line.start..sp.start],
            &sf.text[sp.end..line.end]
        );
        if rest.trim() == "\\" {
            return Some(Edit {
                file: sp.file,
                start: line.start,
                end: line.end,
                replacement: String::new(),
            });
        }
    }
    Some(replace(sp, ""))
}

/// Apply span replacements to a text; `None` if spans overlap or fall outside it.
pub fn apply_edits(text: &str, edits: &[(usize, usize, String)]) -> Option<String> {
    // From the end of the text back; insertions at one place keep their order in the list.
    let mut es: Vec<(usize, &(usize, usize, String))> = edits.iter().enumerate().collect();
    es.sort_by_key(|(i, e)| std::cmp::Reverse((e.0, *i)));
    let es = es.into_iter().map(|(_, e)| e);
    let mut t = text.to_string();
    let mut floor = usize::MAX;
    for (start, end, rep) in es {
        if start > end
            || *end > floor.min(t.len())
            || !t.is_char_boundary(*start)
            || !t.is_char_boundary(*end)
        {
            return None;
        }
        t.replace_range(*start..*end, rep);
        floor = *start;
    }
    Some(t)
}

/// A unified diff with `a/` and `b/` prefixes, three lines of context.
pub fn unified(path: &str, before: &str, after: &str) -> String {
    let rel = path.trim_start_matches('/');
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{rel}"), &format!("b/{rel}"))
        .to_string()
}
