//! The effective value, computed exactly as the kubelet computes it, and every finding's role.
//!
//! cmd/kubelet/app/server.go, in order:
//! 1. `--config` (`loadConfigFile` → DecodeKubeletConfiguration): decoded into the versioned
//!    type, case-sensitively; strict decoding refuses duplicate keys and the lenient fallback
//!    then decodes again. For YAML, sigs.k8s.io/yaml has already collapsed duplicates (the last
//!    one is all that is left); for JSON every occurrence is decoded in turn, so a bad one
//!    anywhere fails and the last good one wins. `null` leaves the default, true.
//! 2. `--config-dir` (`mergeKubeletConfigurations`): the internal configuration is marshalled
//!    with Go field names (`MakeIPTablesUtilChains`: it has no json tags), each drop-in (decoded
//!    strictly: a duplicate key refuses the kubelet) is applied as a JSON merge patch (a `null`
//!    deletes that exact key only), and the result is unmarshalled by encoding/json, which
//!    matches keys case-insensitively and applies them in the marshalled (sorted) key order: the
//!    last key that folds to the field wins, and a non-bool one fails the decoding.
//! 3. The command line, parsed again over the merged object: its last occurrence wins.

use crate::config::{self, ConfigDoc, Format, KeyValue};
use crate::evidence::{self, Evidence, Origin};
use crate::flags::{Cmdline, KEY};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which source decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// `cmdline.occurrences[i]`.
    Flag(usize),
    /// `configs.config`'s occurrence `occ`.
    Config(usize),
    /// `configs.dropins[i]`'s occurrence `occ`.
    Dropin(usize, usize),
    /// Nothing sets it (or a `null` leaves it unset): the default, true.
    Default,
}

/// What the kubelet does with this command line and these files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Value(bool, Winner),
    /// The kubelet would refuse to start; the message says why.
    Refused(String),
}

/// What `--config` contributes: `Ok(None)` when it leaves the default.
fn config_value(doc: &ConfigDoc, named: &str) -> Result<Option<(bool, usize)>, String> {
    let invalid =
        |o: &config::KeyOcc, why: &str| format!("{named}:{}:{}: {KEY}: {why}", o.line, o.column);
    if doc.format == Format::Json
        && let Some((_, o)) = doc
            .exact()
            .find(|(_, o)| matches!(o.value, KeyValue::Invalid(_)))
        && let KeyValue::Invalid(why) = &o.value
    {
        return Err(invalid(o, why));
    }
    match doc.exact().last() {
        Some((i, o)) => match &o.value {
            KeyValue::Bool(b) => Ok(Some((*b, i))),
            KeyValue::Null => Ok(None),
            KeyValue::Invalid(why) => Err(invalid(o, why)),
        },
        None => Ok(None),
    }
}

/// The kubelet's own fold over its sources.
pub fn effective(cmd: &Cmdline, configs: &evidence::Configs) -> Outcome {
    if let Some((_, why)) = cmd.refused.first() {
        return Outcome::Refused(why.clone());
    }
    let mut state = (true, Winner::Default);
    if let Some(src) = &configs.config {
        match config_value(&src.doc, &src.named) {
            Err(why) => return Outcome::Refused(why),
            Ok(Some((b, i))) => state = (b, Winner::Config(i)),
            Ok(None) => {}
        }
    }
    if configs.config_dir.is_some() {
        // Keys of the merged JSON that fold to the field, in the order encoding/json meets
        // them (json.Marshal of the merge patch's map sorts keys bytewise).
        let mut keys: BTreeMap<&str, (&KeyValue, Winner)> = BTreeMap::new();
        let base = KeyValue::Bool(state.0);
        keys.insert(config::GO_FIELD, (&base, state.1));
        for (i, src) in configs.dropins.iter().enumerate() {
            if let Some((k, line, col)) = &src.doc.duplicate {
                return Outcome::Refused(format!(
                    "{}:{line}:{col}: \"{k}\" is defined twice: a --config-dir drop-in is decoded strictly, with no lenient fallback, so the kubelet refuses to start",
                    src.named
                ));
            }
            for (j, o) in src.doc.occurrences.iter().enumerate() {
                match o.value {
                    KeyValue::Null => {
                        keys.remove(o.key.as_str());
                    }
                    _ => {
                        keys.insert(&o.key, (&o.value, Winner::Dropin(i, j)));
                    }
                }
            }
        }
        for (v, w) in keys.into_values() {
            match v {
                KeyValue::Bool(b) => state = (*b, w),
                KeyValue::Invalid(why) => {
                    let at = match w {
                        Winner::Dropin(i, j) => {
                            let o = &configs.dropins[i].doc.occurrences[j];
                            format!("{}:{}:{}: ", configs.dropins[i].named, o.line, o.column)
                        }
                        _ => String::new(),
                    };
                    return Outcome::Refused(format!("{at}{KEY}: {why}"));
                }
                KeyValue::Null => {}
            }
        }
    }
    if let Some(last) = cmd.occurrences.last()
        && let Ok(v) = last.value
    {
        return Outcome::Value(v, Winner::Flag(cmd.occurrences.len() - 1));
    }
    Outcome::Value(state.0, state.1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// This setting decides the value.
    Effective,
    /// A higher-precedence setting wins over it.
    Overridden,
    /// systemd never passes it to the kubelet.
    Inert,
    /// The kubelet refuses to start because of it.
    Refused,
}

/// Where a finding can be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handle {
    /// `ev.argv[i]`, occurrence `j` of the flag.
    Arg {
        arg: usize,
        occ: usize,
    },
    /// Occurrence `occ` in the `--config` file (`dropin: None`) or in drop-in `dropin`.
    Key {
        dropin: Option<usize>,
        occ: usize,
    },
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub path: String,
    pub line: usize,
    pub column: usize,
    /// `command-line`, `config`, `config-dir` or `inert`.
    pub source: &'static str,
    /// The setting as the kubelet or systemd sees it.
    pub text: String,
    /// The value it sets (`null`: unset / unparsable).
    pub sets: Option<bool>,
    pub via: Option<String>,
    pub status: Status,
    pub note: Option<String>,
    #[serde(skip)]
    pub handle: Handle,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
    /// Index in `findings` of the deciding one.
    pub winner: Option<usize>,
}

impl Verdict {
    pub fn compliant(&self) -> bool {
        matches!(self.outcome, Outcome::Value(true, _))
    }
}

pub fn judge(ev: &Evidence) -> Verdict {
    let mut outcome = effective(&ev.cmdline, &ev.configs);
    // Another setting the kubelet refuses (a port of 70000, an unknown cipher) stops it too.
    if let Outcome::Value(..) = outcome
        && let Some(why) = crate::effective::judge(ev).refused
    {
        outcome = Outcome::Refused(why);
    }
    let win = match &outcome {
        Outcome::Value(_, w) => Some(*w),
        Outcome::Refused(_) => None,
    };
    let mut findings = Vec::new();
    let mut winner = None;
    // A command-line finding, located at the bytes its argument came from.
    let arg_finding = |arg: usize, sets, status, note, handle| {
        let a = &ev.argv[arg];
        let o = evidence::arg_origin(&ev.files, a).unwrap_or(Origin {
            path: ev.service.layout.fragment.clone(),
            line: ev.service.exec.line,
            column: 1,
        });
        Finding {
            path: o.path,
            line: o.line,
            column: o.column,
            source: "command-line",
            text: a.value.text.clone(),
            sets,
            via: a.var.as_deref().map(str::to_string),
            status,
            note,
            handle,
        }
    };
    for (j, occ) in ev.cmdline.occurrences.iter().enumerate() {
        let refused = ev.cmdline.refused.iter().find(|(i, _)| *i == occ.arg);
        let status = if refused.is_some() {
            Status::Refused
        } else if win == Some(Winner::Flag(j)) {
            winner = Some(findings.len());
            Status::Effective
        } else {
            Status::Overridden
        };
        let note = refused.map(|(_, m)| m.clone()).or_else(|| {
            (status == Status::Overridden)
                .then(|| "a later occurrence on the command line wins".into())
        });
        let handle = Handle::Arg {
            arg: occ.arg,
            occ: j,
        };
        findings.push(arg_finding(
            occ.arg,
            occ.value.clone().ok(),
            status,
            note,
            handle,
        ));
    }
    // A refusal caused by another argument (a stray word, an unknown flag): it is a finding of
    // its own, so the report names the file, line and column the word came from.
    for (i, why) in &ev.cmdline.refused {
        if !ev.cmdline.occurrences.iter().any(|o| o.arg == *i) {
            let note = Some(why.clone());
            findings.push(arg_finding(*i, None, Status::Refused, note, Handle::None));
        }
    }
    let flag_wins = matches!(win, Some(Winner::Flag(_)));
    let sources = ev.configs.config.iter().map(|c| (None, c)).chain(
        ev.configs
            .dropins
            .iter()
            .enumerate()
            .map(|(i, c)| (Some(i), c)),
    );
    for (dropin, src) in sources {
        let f = ev.files.get(src.doc.file);
        let exact_count = src.doc.exact().count();
        for (k, occ) in src.doc.occurrences.iter().enumerate() {
            // `--config` is decoded case-sensitively: a mis-cased key there is only a note.
            if dropin.is_none() && occ.key != KEY {
                continue;
            }
            let this = match dropin {
                None => Winner::Config(k),
                Some(i) => Winner::Dropin(i, k),
            };
            let (sets, invalid) = match &occ.value {
                KeyValue::Bool(b) => (Some(*b), None),
                KeyValue::Null => (None, None),
                KeyValue::Invalid(m) => (None, Some(m.clone())),
            };
            let refused_here = matches!(&outcome, Outcome::Refused(w) if w.starts_with(&format!("{}:{}:{}:", src.named, occ.line, occ.column)));
            let status = if refused_here || (invalid.is_some() && win.is_none()) {
                Status::Refused
            } else if win == Some(this) {
                winner = Some(findings.len());
                Status::Effective
            } else {
                Status::Overridden
            };
            let dup = dropin.is_none() && exact_count > 1;
            let note = invalid.or_else(|| match (occ.value.clone(), status) {
                (_, Status::Overridden) if flag_wins => {
                    Some("the command line wins over the configuration files".into())
                }
                (KeyValue::Null, _) if dropin.is_some() => Some(format!(
                    "null in a drop-in deletes this exact key from the merged configuration; the value from --config (or the default) stays, since the kubelet merges into its internal object, keyed {}",
                    config::GO_FIELD
                )),
                (KeyValue::Null, _) => Some("null leaves the field unset: the default, true, applies".into()),
                _ if dup => Some(format!(
                    "{KEY} appears {exact_count} times in this file: strict decoding refuses duplicates and the lenient fallback keeps the last; every false occurrence is fixed"
                )),
                _ if occ.key != KEY => Some(format!(
                    "\"{}\" is not the field's spelling, but drop-ins are decoded by encoding/json, which matches keys case-insensitively: it takes effect",
                    occ.key
                )),
                (_, Status::Overridden) => Some("a later configuration source wins".into()),
                _ => None,
            });
            let raw = &f.text[occ.value_span.clone()];
            findings.push(Finding {
                path: src.named.clone(),
                line: occ.line,
                column: occ.column,
                source: if dropin.is_some() {
                    "config-dir"
                } else {
                    "config"
                },
                text: format!("{}: {raw}", occ.key),
                sets,
                via: None,
                status,
                note,
                handle: Handle::Key { dropin, occ: k },
            });
        }
        if dropin.is_some()
            && let Some((k, line, column)) = &src.doc.duplicate
        {
            findings.push(Finding {
                path: src.named.clone(),
                line: *line,
                column: *column,
                source: "config-dir",
                text: format!("{k}: (defined twice)"),
                sets: None,
                via: None,
                status: Status::Refused,
                note: Some("a drop-in is decoded strictly: a key defined twice makes the kubelet refuse to start".into()),
                handle: Handle::None,
            });
        }
    }
    for (o, text, why) in evidence::inert_settings(ev) {
        findings.push(Finding {
            path: o.path,
            line: o.line,
            column: o.column,
            source: "inert",
            text,
            sets: None,
            via: None,
            status: Status::Inert,
            note: Some(why),
            handle: Handle::None,
        });
    }
    Verdict {
        outcome,
        findings,
        winner,
    }
}
