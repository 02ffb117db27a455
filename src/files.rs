//! The files the CIS 4.1 controls protect, named by the kubelet's own command line and config (never a fixed list), their mode and owner, and the chmod/chown that fixes them.
//!
//! Facts: docs/kubelet-controls.md §4. The unit is every file systemd loads for it (the
//! fragment and each drop-in, as `systemd/lookup.rs` resolves them); the kubeconfig is the last
//! `--kubeconfig` (a relative one from the unit's `WorkingDirectory=`, where the kubelet opens
//! it); the client CA is the effective `clientCAFile` (`effective.rs` resolves a config value
//! against the config file's directory); the config files are `--config` and each
//! `--config-dir` drop-in. Paths are followed inside the root (`root.rs`): a symlink is judged
//! and changed at its target, never outside the root. kube-bench's rule is its `bitmask`: the
//! file's bits must be a subset of the allowed mode, so setuid, setgid and sticky always fail.

use crate::controls::{ControlReport, Selection, Status};
use crate::effective::Judgement;
use crate::evidence::Evidence;
use crate::meta::{Meta, MetaChange};
use crate::root::NodeFs;
use crate::settings::Value;

/// Which of the kubelet's files a control is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Unit,
    Kubeconfig,
    ClientCa,
    Config,
}

impl Which {
    pub fn what(self) -> &'static str {
        match self {
            Which::Unit => "the kubelet unit's files",
            Which::Kubeconfig => "the --kubeconfig file",
            Which::ClientCa => "the client CA file",
            Which::Config => "the --config file and --config-dir drop-ins",
        }
    }
}

/// What a control checks of its files.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// The mode's bits are a subset of the benchmark's `allowed` mode. A fix that would take
    /// away any of `opt_in_drops` is made only when the control is named (other local readers
    /// may need them).
    Mode {
        allowed: fn(&str) -> u32,
        opt_in_drops: u32,
    },
    /// Owned by root:root (0:0).
    Owner,
}

/// A 4.1 control's rule: which files, what of them.
#[derive(Debug, Clone, Copy)]
pub struct FileRule {
    pub files: Which,
    pub check: Check,
}

/// What a named file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A regular file, with its mode and owner.
    File(Meta),
    /// Nothing there: nothing to protect.
    Missing,
    /// Something else where a file is named: a directory, a FIFO, a device, a socket.
    NotFile(&'static str),
    /// It could not be looked at.
    Unreadable(String),
}

/// One file a control covers.
#[derive(Debug, Clone)]
pub struct Fact {
    /// As the kubelet or systemd names it.
    pub named: String,
    /// Inside the root after symlinks: the file judged and changed.
    pub resolved: String,
    pub state: State,
}

/// The files of every 4.1 control, looked at once per evaluation.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    unit: Vec<Fact>,
    kubeconfig: Vec<Fact>,
    client_ca: Vec<Fact>,
    config: Vec<Fact>,
}

impl Facts {
    pub fn of(&self, w: Which) -> &[Fact] {
        match w {
            Which::Unit => &self.unit,
            Which::Kubeconfig => &self.kubeconfig,
            Which::ClientCa => &self.client_ca,
            Which::Config => &self.config,
        }
    }
}

fn kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

fn fact(fs: &NodeFs, named: &str) -> Fact {
    let (resolved, state) = match fs.stat(named) {
        Ok(Some((r, m))) if m.is_file() => (r, State::File(Meta::of(&m))),
        Ok(Some((r, m))) => (r, State::NotFile(kind(&m))),
        Ok(None) => (
            fs.resolve(named).unwrap_or_else(|_| named.to_string()),
            State::Missing,
        ),
        Err(e) => (named.to_string(), State::Unreadable(e.to_string())),
    };
    Fact {
        named: named.to_string(),
        resolved,
        state,
    }
}

/// [`gather`] when `ids` has a 4.1 control; nothing is looked at otherwise.
pub fn gather_for(fs: &NodeFs, ev: &Evidence, j: &Judgement, ids: &[&str]) -> Facts {
    let any = ids
        .iter()
        .any(|id| crate::controls::get(id).is_some_and(|c| c.file.is_some()));
    if any {
        gather(fs, ev, j)
    } else {
        Facts::default()
    }
}

/// Look at every file the 4.1 controls cover, as this evidence and judgement name them.
pub fn gather(fs: &NodeFs, ev: &Evidence, j: &Judgement) -> Facts {
    let unit = ev
        .service
        .unit_files
        .iter()
        .map(|id| fact(fs, &ev.files.get(*id).path))
        .collect();
    let cwd = ev.service.working_dir.as_deref().unwrap_or("/");
    let kubeconfig = ev
        .flag("kubeconfig")
        .filter(|p| !p.is_empty())
        .map(|p| fact(fs, &crate::root::join(cwd, &p)))
        .into_iter()
        .collect();
    let client_ca = match j.value("client-ca-file") {
        Some(Value::Str(p)) if !p.is_empty() => vec![fact(fs, &crate::root::join(cwd, p))],
        _ => Vec::new(),
    };
    let config = ev
        .configs
        .config
        .iter()
        .chain(&ev.configs.dropins)
        .map(|c| fact(fs, &ev.files.get(c.doc.file).path))
        .collect();
    Facts {
        unit,
        kubeconfig,
        client_ca,
        config,
    }
}

impl FileRule {
    /// The metadata that passes, from `m` (only the bits and owner the rule is about change):
    /// `current & allowed` for a mode, 0:0 for an owner. A chown by root clears setuid and
    /// setgid on Linux (chown(2)), so the owner fix drops them explicitly: the change shown is
    /// the change made.
    fn fixed(&self, m: Meta, benchmark: &str) -> Meta {
        match self.check {
            Check::Mode { allowed, .. } => Meta {
                mode: m.mode & allowed(benchmark),
                ..m
            },
            Check::Owner => Meta {
                mode: m.mode & !0o6000,
                uid: 0,
                gid: 0,
            },
        }
    }

    fn passes_meta(&self, m: Meta, benchmark: &str) -> bool {
        match self.check {
            Check::Mode { allowed, .. } => m.mode & !allowed(benchmark) == 0,
            Check::Owner => (m.uid, m.gid) == (0, 0),
        }
    }

    /// Whether every file passes (a missing one has nothing to protect; no file at all passes).
    pub fn passes(&self, facts: &Facts, benchmark: &str) -> bool {
        facts.of(self.files).iter().all(|f| match &f.state {
            State::File(m) => self.passes_meta(*m, benchmark),
            State::Missing => true,
            State::NotFile(_) | State::Unreadable(_) => false,
        })
    }

    /// Whether a file could not be judged (not a regular file, unreadable).
    pub fn undecidable(&self, facts: &Facts) -> bool {
        facts
            .of(self.files)
            .iter()
            .any(|f| matches!(f.state, State::NotFile(_) | State::Unreadable(_)))
    }

    /// The record's value: `{"path", "mode", "owner"}` per existing file (`named` too when a
    /// symlink leads there).
    pub fn value(&self, facts: &Facts) -> serde_json::Value {
        let files = facts.of(self.files).iter().filter_map(|f| {
            let State::File(m) = f.state else {
                return None;
            };
            let mut o = serde_json::json!({
                "path": f.resolved, "mode": m.mode_text(), "owner": m.owner_text()
            });
            if f.named != f.resolved {
                o["named"] = f.named.clone().into();
            }
            Some(o)
        });
        serde_json::Value::Array(files.collect())
    }

    /// What to tell about its files: missing ones, ones that are not files, what fails.
    pub fn notes(&self, facts: &Facts, benchmark: &str) -> Vec<String> {
        let mut out = Vec::new();
        for f in facts.of(self.files) {
            let at = if f.named == f.resolved {
                f.named.clone()
            } else {
                format!("{} (a symlink to {})", f.named, f.resolved)
            };
            match &f.state {
                State::Missing => out.push(format!(
                    "{at} does not exist: nothing to protect, left out of the value"
                )),
                State::NotFile(k) => out.push(format!(
                    "{at} is {k}, not a regular file: not judged, not changed (check what replaced it)"
                )),
                State::Unreadable(why) => out.push(format!("{at}: {why}")),
                State::File(m) if !self.passes_meta(*m, benchmark) => {
                    let want = self.fixed(*m, benchmark);
                    out.push(match self.check {
                        Check::Mode { allowed, .. } => format!(
                            "{at} has mode {} (allowed: {} or fewer bits): chmod {} {}",
                            m.mode_text(),
                            crate::meta::mode_text(allowed(benchmark)),
                            crate::meta::mode_text(want.mode),
                            f.resolved
                        ),
                        Check::Owner => format!(
                            "{at} is owned by {}: chown 0:0 {}",
                            m.owner_text(),
                            f.resolved
                        ),
                    });
                }
                State::File(_) => {}
            }
        }
        out
    }
}

/// One file's planned metadata change, and the controls it fixes.
#[derive(Debug, Clone)]
pub struct MetaFix {
    pub resolved: String,
    pub named: String,
    pub change: MetaChange,
    pub controls: Vec<&'static str>,
}

/// The chmods and chowns that fix the selected failing 4.1 controls: per file, every control's
/// change combined (one change, one backup), and the controls held back (opt-in, and why).
pub fn plan(
    facts: &Facts,
    reports: &[ControlReport],
    sel: &Selection,
) -> (Vec<MetaFix>, Vec<(&'static str, String)>) {
    let mut fixes: Vec<MetaFix> = Vec::new();
    let mut now: Vec<(String, Meta, Meta)> = Vec::new();
    let mut held = Vec::new();
    for r in reports.iter().filter(|r| r.status == Status::Fail) {
        let Some(c) = crate::controls::get(r.id) else {
            continue;
        };
        let Some(rule) = c.file else { continue };
        let bench = c.rule_benchmark(sel.benchmark);
        let mut mine = Vec::new();
        for f in facts.of(rule.files) {
            let State::File(m) = f.state else { continue };
            if rule.passes_meta(m, bench) {
                continue;
            }
            mine.push((f, m, rule.fixed(m, bench)));
        }
        if let Check::Mode { opt_in_drops, .. } = rule.check
            && !sel.explicit
            && mine
                .iter()
                .any(|(_, m, to)| m.mode & opt_in_drops & !to.mode != 0)
        {
            held.push((
                c.id,
                format!(
                    "an opt-in fix: taking group or other read away from the client CA can break other local readers (kube-proxy, agents); name the control (--control {}) to have it proposed",
                    c.id
                ),
            ));
            continue;
        }
        for (f, m, _) in mine {
            let slot = match now.iter().position(|(p, ..)| *p == f.resolved) {
                Some(i) => i,
                None => {
                    now.push((f.resolved.clone(), m, m));
                    fixes.push(MetaFix {
                        resolved: f.resolved.clone(),
                        named: f.named.clone(),
                        change: MetaChange::default(),
                        controls: Vec::new(),
                    });
                    now.len() - 1
                }
            };
            // Each control's rule applied to what the ones before it made of the file.
            now[slot].2 = rule.fixed(now[slot].2, bench);
            fixes[slot].change = MetaChange::between(now[slot].1, now[slot].2);
            if !fixes[slot].controls.contains(&c.id) {
                fixes[slot].controls.push(c.id);
            }
        }
    }
    (fixes, held)
}

/// Add the chmods and chowns of the selected failing 4.1 controls to `plan`: a file the plan
/// already edits gets them on its change (one change, one backup); any other file gets a
/// change of its own that keeps its content (checked by digest when applied). Nothing on a
/// managed platform, whose files the platform owns.
pub fn extend(
    fs: &NodeFs,
    ev: &Evidence,
    facts: &Facts,
    reports: &[ControlReport],
    sel: &Selection,
    mut p: crate::plan::Plan,
) -> crate::plan::Plan {
    if ev.platform.managed() {
        return p;
    }
    let (fixes, held) = plan(facts, reports, sel);
    p.held.extend(held);
    for f in fixes {
        let mut what: Vec<String> = Vec::new();
        if let Some(m) = &f.change.mode {
            what.push(format!("{}: mode {} -> {}", f.resolved, m.from, m.to));
        }
        if let Some(o) = &f.change.owner {
            what.push(format!("{}: owner {} -> {}", f.resolved, o.from, o.to));
        }
        if let Some(c) = p.changes.iter_mut().find(|c| c.path == f.resolved) {
            c.meta = f.change;
            c.fixes.extend(what);
            for id in f.controls {
                if !c.controls.contains(&id) {
                    c.controls.push(id);
                }
            }
            c.controls
                .sort_by_key(|id| crate::controls::CONTROLS.iter().position(|c| c.id == *id));
            continue;
        }
        // Its content, shared with the evidence when it was read there.
        let text = match ev.files.by_resolved(&f.resolved) {
            Some(id) => Ok(ev.files.get(id).text.clone()),
            None => match fs.read(&f.resolved) {
                Ok(Some((_, t))) => Ok(t),
                Ok(None) => Err("it disappeared while the plan was made".to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        let text = match text {
            Ok(t) => t,
            Err(why) => {
                for id in f.controls {
                    p.held
                        .push((id, format!("{} cannot be read back: {why}", f.resolved)));
                }
                continue;
            }
        };
        p.changes.push(crate::plan::Change {
            via: (f.named != f.resolved).then(|| f.named.clone()),
            path: f.resolved,
            diff: String::new(),
            before: text.clone(),
            after: text,
            fixes: what,
            controls: f.controls,
            edits: Vec::new(),
            meta: f.change,
        });
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_drops_only_extra_bits_and_chown_drops_setuid() {
        let mode = FileRule {
            files: Which::Config,
            check: Check::Mode {
                allowed: |_| 0o600,
                opt_in_drops: 0,
            },
        };
        let owner = FileRule {
            files: Which::Config,
            check: Check::Owner,
        };
        let m = |mode| Meta {
            mode,
            uid: 1000,
            gid: 5,
        };
        assert_eq!(mode.fixed(m(0o644), "x").mode, 0o600);
        assert_eq!(mode.fixed(m(0o640), "x").mode, 0o600);
        assert_eq!(mode.fixed(m(0o400), "x").mode, 0o400);
        assert_eq!(mode.fixed(m(0o4755), "x").mode, 0o600);
        assert!(!mode.passes_meta(m(0o1600), "x"));
        assert!(mode.passes_meta(m(0o400), "x"));
        let o = owner.fixed(m(0o2644), "x");
        assert_eq!((o.mode, o.uid, o.gid), (0o644, 0, 0));
    }
}
