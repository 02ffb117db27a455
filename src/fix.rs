//! The controls' automatic fixes: every place that makes a control fail, removed or rewritten as span edits, proved on the re-read node.
//!
//! A control with `Fix::Auto` names the setting to fix and which values are bad. Every place
//! that sets a bad value (flag, `--config` key, drop-in key, or one feature gate's pair or key)
//! is removed, so a lower layer or the default applies (docs/kubelet-controls.md §3.4, §3.5,
//! §3.11: "delete the flag", "drop the zero", "remove the =false pair"); when that leaves the
//! control failing (no `--config`: the legacy read-only port 10255) or a place cannot be removed
//! cleanly, it is given the compliant value instead. The one-control planner's edits for
//! makeIPTablesUtilChains join them, and the whole set is proved together: on the node re-read
//! through the edits, the kubelet starts, every fixed control passes, every other setting keeps
//! its effective value, the command line apart from the fixed flags and the configuration apart
//! from the table's settings are unchanged. One diff per file, whatever fixes it.

use crate::controls::{self, AutoFix, ControlReport, Fix, Selection, Status};
use crate::effective::{self, Judgement, Layer};
use crate::evidence::{self, Evidence, Options};
use crate::plan::{self, Edit, Plan};
use crate::root::NodeFs;
use crate::settings::{self, FlagType, Value};
use crate::text::FileId;
use std::collections::BTreeMap;

/// Add the automatic fixes of the selected failing controls to `plan` (the one-control plan,
/// possibly empty). `Ok(plan)` unchanged when there is nothing to add; a control whose edits
/// do not pass the proof is left out (it stays `fixable: false`) and the reason is a note.
pub fn extend(
    fs: &NodeFs,
    opts: &Options,
    ev: &Evidence,
    j: &Judgement,
    sel: &Selection,
    reports: &[ControlReport],
    mut plan: Plan,
) -> Plan {
    if ev.platform.managed() || j.refused.is_some() {
        return plan;
    }
    let base: Vec<Edit> = plan_edits(ev, &plan);
    let mut base_fixes: Vec<(FileId, String, &'static str)> = Vec::new();
    for c in &plan.changes {
        let Some(file) = file_of(ev, &c.path) else {
            continue;
        };
        for f in &c.fixes {
            base_fixes.push((file, f.clone(), controls::DEFAULT_CONTROL));
        }
    }
    let mut targets: Vec<&'static str> = Vec::new();
    if !plan.changes.is_empty() {
        targets.push(controls::DEFAULT_CONTROL);
    }
    let mut edits = base;
    let mut fixes = base_fixes;
    let mut texts = None;
    // The controls to fix, each with its rounds: removal first; then the compliant value where
    // removal is not enough; then the value set where the kubelet reads it (the --config
    // file, else the platform's local flags) with the bad places removed. A list is written
    // once (a repeated flag would append it again): no per-place rewrite.
    let mut todo: Vec<(&'static controls::Control, AutoFix)> = Vec::new();
    for r in reports.iter().filter(|r| r.status == Status::Fail) {
        let Some(c) = controls::get(r.id) else {
            continue;
        };
        let auto = match c.fix {
            Fix::Auto(a) => a,
            // Opt-in: a change that can break clients is made only when asked for by name.
            Fix::OptIn(a) if sel.explicit => a,
            Fix::OptIn(_) => {
                plan.held.push((
                    c.id,
                    format!(
                        "an opt-in fix: name the control (--control {}) to have it proposed",
                        c.id
                    ),
                ));
                continue;
            }
            _ => continue,
        };
        if let Some(when) = auto.when {
            let ctx = controls::FixCtx { fs, ev, j };
            if let Err(why) = when(&ctx) {
                plan.held
                    .push((c.id, format!("not fixed automatically: {why}")));
                continue;
            }
        }
        todo.push((c, auto));
    }
    let rounds = |auto: &AutoFix| -> &'static [Round] {
        if auto.list.is_some() {
            &[Round::Remove, Round::Set]
        } else {
            &[Round::Remove, Round::Rewrite, Round::Set]
        }
    };
    let first = |auto: &AutoFix| {
        let want = Wanted::of(auto, j, sel)?;
        rounds(auto)
            .iter()
            .find_map(|&r| edits_for(ev, j, auto, &want, r).filter(|(e, _)| !e.is_empty()))
    };
    // Every control's first choice, proved together: one re-read of the node when they hold.
    let batch: Option<Vec<Fixing>> = todo.iter().map(|(_, a)| first(a)).collect();
    if let Some(batch) = batch.filter(|b| !b.is_empty()) {
        let mut all = edits.clone();
        let mut with = targets.clone();
        for ((c, _), (mine, _)) in todo.iter().zip(&batch) {
            all.extend(mine.iter().cloned());
            with.push(c.id);
        }
        if let Ok(t) = prove(fs, opts, ev, &all, &with, sel) {
            for ((c, _), (_, what)) in todo.iter().zip(batch) {
                fixes.extend(what.into_iter().map(|(f, s)| (f, s, c.id)));
            }
            edits = all;
            targets = with;
            texts = Some(t);
            todo.clear();
        }
    }
    // Otherwise one control at a time, each round in turn, each proved with those before it.
    for (c, auto) in todo {
        let mut tried = Vec::new();
        for &round in rounds(&auto) {
            let Some(want) = Wanted::of(&auto, j, sel) else {
                break;
            };
            let Some((mine, what)) = edits_for(ev, j, &auto, &want, round) else {
                continue;
            };
            if mine.is_empty() {
                continue;
            }
            let mut all = edits.clone();
            all.extend(mine.iter().cloned());
            let mut with = targets.clone();
            with.push(c.id);
            match prove(fs, opts, ev, &all, &with, sel) {
                Ok(t) => {
                    edits = all;
                    targets = with;
                    fixes.extend(what.into_iter().map(|(f, s)| (f, s, c.id)));
                    texts = Some(t);
                    tried.clear();
                    break;
                }
                Err(why) => tried.push(why),
            }
        }
        if tried.is_empty() && !fixed_now(&plan, c.id) && !targets.contains(&c.id) {
            plan.held.push((
                c.id,
                "not fixed automatically: a place that sets it is written in a form the planner does not edit (a quoted or nested list, a generated file)".into(),
            ));
        }
        if !tried.is_empty() {
            plan.held.push((
                c.id,
                format!(
                    "no automatic fix passed the proof ({}): follow the advice",
                    tried.join("; ")
                ),
            ));
        }
    }
    if let Some(texts) = texts {
        let (changes, daemon_reload) = plan::changes(ev, texts, &edits, &fixes);
        plan.changes = changes;
        plan.daemon_reload = daemon_reload;
    }
    plan
}

/// Whether the plan's changes already fix control `id`.
fn fixed_now(plan: &Plan, id: &str) -> bool {
    plan.changes.iter().any(|c| c.controls.contains(&id))
}

/// The one-control plan's edits, by file.
fn plan_edits(ev: &Evidence, plan: &Plan) -> Vec<Edit> {
    plan.changes
        .iter()
        .filter_map(|c| Some((file_of(ev, &c.path)?, c)))
        .flat_map(|(file, c)| {
            c.edits.iter().map(move |(start, end, r)| Edit {
                file,
                start: *start,
                end: *end,
                replacement: r.clone(),
            })
        })
        .collect()
}

fn file_of(ev: &Evidence, resolved: &str) -> Option<FileId> {
    ev.files.by_resolved(resolved)
}

/// Edits, and what each fixes (file, description).
type Fixing = (Vec<Edit>, Vec<(FileId, String)>);

/// The compliant value, as each place writes it: a literal (`0`, `false`, `Webhook`) is the same
/// everywhere; a list (the benchmark's cipher suites, the operator's own kept in order when any
/// is allowed) is a CSV flag value, a YAML flow or block sequence, or a JSON array.
struct Wanted {
    /// The literal, or the list's items; `None`: the fix only removes.
    text: Option<String>,
    items: Option<Vec<String>>,
}

impl Wanted {
    fn of(auto: &AutoFix, j: &Judgement, sel: &Selection) -> Option<Wanted> {
        let Some(allowed) = auto.list else {
            return Some(Wanted {
                text: auto.good.map(str::to_string),
                items: None,
            });
        };
        let allowed = allowed(sel.benchmark);
        let current = match j.value(auto.setting) {
            Some(Value::List(Some(l))) => l.clone(),
            _ => Vec::new(),
        };
        let mut items: Vec<String> = current
            .into_iter()
            .filter(|c| allowed.contains(&c.as_str()))
            .collect();
        if items.is_empty() {
            items = allowed.iter().map(|c| c.to_string()).collect();
        }
        Some(Wanted {
            text: Some(items.join(",")),
            items: Some(items),
        })
    }

    /// As a flag's value.
    fn flag(&self) -> Option<String> {
        self.text.clone()
    }

    /// As a value in a configuration file: `column` is where a block sequence's first `- `
    /// stands (`None`: inline, a flow sequence).
    fn config(&self, json: bool, column: Option<usize>) -> Option<String> {
        let Some(items) = &self.items else {
            return self.text.clone();
        };
        Some(match (json, column) {
            (true, _) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| format!("\"{i}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (false, None) => format!("[{}]", items.join(", ")),
            (false, Some(col)) => items
                .iter()
                .map(|i| format!("- {i}"))
                .collect::<Vec<_>>()
                .join(&format!("\n{}", " ".repeat(col))),
        })
    }
}

/// How a control's places are fixed, tried in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Every bad place removed.
    Remove,
    /// Every bad place given the compliant value.
    Rewrite,
    /// Every bad place removed, and the compliant value set in the `--config` file (its entry
    /// rewritten, or the key added) or, without one, added to the platform's local flags.
    Set,
}

/// The edits that fix `auto`'s bad places in this round, with a description of each; `None`
/// when a bad place cannot be edited.
fn edits_for(
    ev: &Evidence,
    j: &Judgement,
    auto: &AutoFix,
    want: &Wanted,
    round: Round,
) -> Option<Fixing> {
    let e = j.get(auto.setting)?;
    let rewrite = round == Round::Rewrite;
    let mut edits = Vec::new();
    let mut what = Vec::new();
    if round == Round::Set {
        want.text.as_ref()?;
        let s = settings::get(auto.setting)?;
        let (edit, how) = set_value(ev, s, want)?;
        what.push((edit.file, how));
        edits.push(edit);
    }
    for p in &e.places {
        let Some(sets) = &p.sets else { continue };
        if !(auto.bad)(p.layer, sets) {
            continue;
        }
        let (edit, how) = match p.layer {
            Layer::Default => continue,
            // The Set round writes the --config entry itself.
            Layer::Config(_) if round == Round::Set => continue,
            Layer::Flag(i) => flag_edit(ev, i, auto, want, rewrite)?,
            Layer::Config(i) => {
                entry_edit(ev, ev.configs.config.as_ref()?, i, auto, want, rewrite)?
            }
            Layer::Dropin(d, i) => entry_edit(ev, &ev.configs.dropins[d], i, auto, want, rewrite)?,
        };
        let Some(edit) = edit else { continue };
        let at = effective::locate(ev, p.layer)?;
        what.push((edit.file, format!("{}:{}: {how}", at.path, at.line)));
        edits.extend(value_apart(ev, p.layer, auto, rewrite));
        edits.push(edit);
    }
    Some((edits, what))
}

/// The argument holding a flag's value when it is written apart (`--read-only-port 10255`):
/// removing the flag removes it too.
fn value_apart(ev: &Evidence, layer: Layer, auto: &AutoFix, rewrite: bool) -> Vec<Edit> {
    let Layer::Flag(i) = layer else {
        return Vec::new();
    };
    let occ = &ev.cmdline.settings[i];
    let ty = settings::get(occ.id).map(|s| s.ty);
    if rewrite || auto.gate.is_some() || occ.value_range.is_some() || ty == Some(FlagType::Bool) {
        return Vec::new();
    }
    ev.argv
        .get(occ.arg + 1)
        .and_then(|a| plan::remove_arg(ev, a))
        .into_iter()
        .collect()
}

/// The compliant value written where the kubelet reads it: with a `--config` file, its last
/// exact entry of the key rewritten, or the key added in the file's style (never a file k3s or
/// RKE2 regenerate); without one, the flag added to the platform's local flags.
fn set_value(ev: &Evidence, s: &settings::Setting, want: &Wanted) -> Option<(Edit, String)> {
    let Some(src) = &ev.configs.config else {
        return add_flag(ev, s.flag?, &want.flag()?);
    };
    if crate::k3s::is_generated(&src.named) {
        return None;
    }
    let key = s.key?;
    let f = ev.files.get(src.doc.file);
    let existing = src
        .doc
        .entries
        .iter()
        .rev()
        .find(|e| e.path == key && e.exact_keys() && !e.shadowed && e.gate().is_none());
    let json = src.doc.format == crate::config::Format::Json;
    let (start, end, replacement, line, how) = match existing {
        Some(e) if e.exact => {
            let good = want.config(json, block_column(&f.text, e))?;
            (e.value_span.start, e.value_span.end, good, e.line, "set")
        }
        Some(_) => return None,
        None => {
            let good = want.config(json, None)?;
            let (at, text) = crate::config::add_key(&src.doc, &f.text, key, &good)?;
            (at, at, text, f.line_col(at).0, "add")
        }
    };
    let good = want.text.clone().unwrap_or_default();
    Some((
        Edit {
            file: src.doc.file,
            start,
            end,
            replacement,
        },
        format!("{}:{line}: {}: {good} ({how})", src.named, key.join(".")),
    ))
}

/// Where the platform keeps local flags: the `KUBELET_EXTRA_ARGS` assignment systemd uses, in
/// a file under /etc (kubeadm's /etc/default/kubelet or /etc/sysconfig/kubelet, EKS AL2's
/// extra-args drop-in; never a vendor file under /usr/lib or /lib). The flag goes at the end of
/// its value, inside its quotes.
fn add_flag(ev: &Evidence, flag: &str, good: &str) -> Option<(Edit, String)> {
    use crate::systemd::exec::EnvOrigin;
    let e = ev
        .service
        .env
        .iter()
        .rev()
        .find(|e| e.name == "KUBELET_EXTRA_ARGS" && e.inert.is_none())?;
    let (EnvOrigin::Directive { file, line } | EnvOrigin::File { file, line }) = e.origin;
    let sf = ev.files.get(file);
    if !sf.path.starts_with("/etc/") {
        return None;
    }
    let word = format!("--{flag}={good}");
    let (at, replacement) = match e
        .value
        .text
        .len()
        .checked_sub(1)
        .and_then(|i| e.value.loc(i))
    {
        Some(last) if last.file == file => (last.end, format!(" {word}")),
        Some(_) => return None,
        None => {
            // An empty value: right after `KUBELET_EXTRA_ARGS=` (and an environment file's
            // opening quote).
            let start = *sf.line_starts().get(line.checked_sub(1)?)?;
            let range = sf.line_range(start);
            let name = "KUBELET_EXTRA_ARGS=";
            let mut at = range.start + sf.text[range].find(name)? + name.len();
            if matches!(e.origin, EnvOrigin::File { .. })
                && matches!(sf.text.as_bytes().get(at), Some(b'"' | b'\''))
            {
                at += 1;
            }
            (at, word.clone())
        }
    };
    Some((
        Edit {
            file,
            start: at,
            end: at,
            replacement,
        },
        format!("{}:{line}: {word} (add)", sf.path),
    ))
}

/// A flag's edit: removed, its value rewritten, or (a gate) its pair dropped from the list.
fn flag_edit(
    ev: &Evidence,
    i: usize,
    auto: &AutoFix,
    want: &Wanted,
    rewrite: bool,
) -> Option<(Option<Edit>, String)> {
    let occ = &ev.cmdline.settings[i];
    let flag = &ev.argv[occ.arg];
    // The value's text and bytes: after '=' in the flag, or the next argument.
    let (holder, range) = match &occ.value_range {
        Some(r) => (flag, r.clone()),
        None => {
            let next = ev.argv.get(occ.arg + 1)?;
            (next, 0..next.value.text.len())
        }
    };
    let text = &flag.value.text;
    if let Some(gate) = auto.gate {
        let value = &holder.value.text[range.clone()];
        let keep: Vec<&str> = value
            .split(',')
            .filter(|pair| pair.split('=').next().map(str::trim) != Some(gate))
            .collect();
        if keep.iter().all(|p| p.trim().is_empty()) {
            let e = plan::remove_arg(ev, flag)?;
            return Some((Some(e), format!("{text} (remove)")));
        }
        let sp = holder.value.span_of(range)?;
        return Some((
            Some(plan::replace(sp, &keep.join(","))),
            format!("{text} (drop {gate})"),
        ));
    }
    if rewrite {
        let good = want.flag()?;
        let sp = holder.value.span_of(range)?;
        return Some((
            Some(plan::replace(sp, &good)),
            format!("{text} (set {good})"),
        ));
    }
    Some((
        Some(plan::remove_arg(ev, flag)?),
        format!("{text} (remove)"),
    ))
}

/// A config entry's edit: its line removed, or its value rewritten.
fn entry_edit(
    ev: &Evidence,
    src: &evidence::ConfigSource,
    i: usize,
    auto: &AutoFix,
    want: &Wanted,
    rewrite: bool,
) -> Option<(Option<Edit>, String)> {
    if crate::k3s::is_generated(&src.named) {
        return None; // rewritten by k3s/rke2 at every start
    }
    let e = &src.doc.entries[i];
    if auto.gate.is_some() && e.gate() != auto.gate {
        return Some((None, String::new()));
    }
    let file = src.doc.file;
    let shown = e.written.join(".");
    match (rewrite, &e.removal) {
        (false, Some(r)) => Some((
            Some(Edit {
                file,
                start: r.start,
                end: r.end,
                replacement: String::new(),
            }),
            format!("{shown} (remove)"),
        )),
        _ if e.exact => {
            let json = src.doc.format == crate::config::Format::Json;
            let text = &ev.files.get(file).text;
            let good = want.config(json, block_column(text, e))?;
            Some((
                Some(Edit {
                    file,
                    start: e.value_span.start,
                    end: e.value_span.end,
                    replacement: good.clone(),
                }),
                format!("{shown} (set {})", want.text.clone().unwrap_or(good)),
            ))
        }
        _ => None,
    }
}

/// Where a YAML block sequence's first `- ` stands, when the entry's value is one.
fn block_column(text: &str, e: &crate::config::Entry) -> Option<usize> {
    let start = e.value_span.start;
    if text.as_bytes().get(start) != Some(&b'-') {
        return None;
    }
    let line = crate::config::yaml::line_range(text, start);
    Some(start - line.start)
}

/// The edited node: it loads, the kubelet starts, every target control passes, and nothing
/// else the kubelet reads changes.
fn prove(
    fs: &NodeFs,
    opts: &Options,
    ev: &Evidence,
    edits: &[Edit],
    targets: &[&'static str],
    sel: &Selection,
) -> Result<plan::Texts, String> {
    let (texts, after) = plan::reread(fs, opts, ev, edits)?;
    let before = effective::judge(ev);
    let now = effective::judge(&after);
    if let Some(why) = &now.refused {
        return Err(format!("the kubelet would refuse the edited node: {why}"));
    }
    let mut fixed_settings: Vec<&str> = Vec::new();
    for id in targets {
        let c = controls::get(id).ok_or("unknown control")?;
        if !controls::evaluate(c, &now, &Default::default(), sel.benchmark).0 {
            return Err(format!("{id} still fails after the edits"));
        }
        match c.fix {
            Fix::Auto(a) | Fix::OptIn(a) => fixed_settings.push(a.setting),
            _ => fixed_settings.extend(c.settings.iter().copied()),
        }
    }
    // Every other setting keeps its value; a fixed gate's map keeps its other gates.
    for (b, a) in before.settings.iter().zip(&now.settings) {
        let (bv, av) = (b.value.as_ref().ok(), a.value.as_ref().ok());
        let same = if !fixed_settings.contains(&b.id) {
            bv == av
        } else if let (Some(Value::Map(x)), Some(Value::Map(y))) = (bv, av) {
            let gates: Vec<&str> = targets
                .iter()
                .filter_map(|id| match controls::get(id)?.fix {
                    Fix::Auto(a) | Fix::OptIn(a) => a.gate,
                    _ => None,
                })
                .collect();
            let strip = |m: &BTreeMap<String, bool>| {
                m.iter()
                    .filter(|(k, _)| !gates.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect::<BTreeMap<_, _>>()
            };
            strip(x) == strip(y)
        } else {
            true
        };
        if !same {
            return Err(format!("the edits would change {}", b.setting.name()));
        }
    }
    // The command line apart from the fixed settings' flags, and the configuration apart from
    // the table's settings.
    let fixed_flags: Vec<&str> = fixed_settings
        .iter()
        .filter_map(|id| settings::get(id)?.flag)
        .collect();
    let rest = |e: &Evidence| -> Vec<String> {
        let skip: Vec<usize> = e
            .cmdline
            .settings
            .iter()
            .filter(|o| {
                settings::get(o.id)
                    .and_then(|s| s.flag)
                    .is_some_and(|f| fixed_flags.contains(&f))
            })
            .flat_map(|o| {
                let apart = o.value_range.is_none()
                    && settings::get(o.id).is_some_and(|s| s.ty != FlagType::Bool);
                if apart {
                    vec![o.arg, o.arg + 1]
                } else {
                    vec![o.arg]
                }
            })
            .collect();
        e.argv
            .iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .map(|(_, a)| a.value.text.clone())
            .collect()
    };
    let named = |e: &Evidence| e.configs.config.as_ref().map(|c| c.named.clone());
    let same_rest = rest(ev) == rest(&after)
        && named(ev) == named(&after)
        && ev.configs.config_dir == after.configs.config_dir
        && ev.configs.merged == after.configs.merged;
    if !same_rest {
        return Err("the edits would change other kubelet arguments or configuration".into());
    }
    Ok(texts)
}
