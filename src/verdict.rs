//! The effective value, computed exactly as the kubelet computes it, and every finding's role.
//!
//! Precedence (cmd/kubelet/app/server.go): default true < `--config` < `--config-dir` drop-ins
//! (merge patches: a later file wins, `null` deletes the key so the default returns) < the
//! command line (last occurrence wins). A value the kubelet cannot parse is not a verdict: the
//! kubelet refuses to start, and so is reported as refused.

use crate::config::KeyValue;
use crate::evidence::{self, Configs, Evidence, Origin};
use crate::flags::{Cmdline, KEY};
use serde::Serialize;

/// Which source decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// `cmdline.occurrences[i]`.
    Flag(usize),
    /// The `--config` file.
    Config,
    /// `configs.dropins[i]`.
    Dropin(usize),
    /// Nothing sets it (or a drop-in's `null` removed it): the default, true.
    Default,
}

/// What the kubelet does with this command line and these files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Value(bool, Winner),
    /// The kubelet would refuse to start; the message says why.
    Refused(String),
}

/// The kubelet's own fold over its sources.
pub fn effective(cmd: &Cmdline, configs: &Configs) -> Outcome {
    if let Some((_, why)) = cmd.refused.first() {
        return Outcome::Refused(why.clone());
    }
    let docs = configs.config.iter().map(|c| (Winner::Config, c)).chain(
        configs
            .dropins
            .iter()
            .enumerate()
            .map(|(i, c)| (Winner::Dropin(i), c)),
    );
    let mut state: Option<(bool, Winner)> = None;
    for (w, src) in docs {
        match evidence::doc_value(&src.doc) {
            Some(KeyValue::Invalid(why)) => {
                return Outcome::Refused(format!("{}: {KEY}: {why}", src.named));
            }
            Some(KeyValue::Bool(b)) => state = Some((b, w)),
            Some(KeyValue::Null) => state = None,
            None => {}
        }
    }
    if let Some(last) = cmd.occurrences.last()
        && let Ok(v) = last.value
    {
        return Outcome::Value(v, Winner::Flag(cmd.occurrences.len() - 1));
    }
    match state {
        Some((b, w)) => Outcome::Value(b, w),
        None => Outcome::Value(true, Winner::Default),
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
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
    let outcome = effective(&ev.cmdline, &ev.configs);
    let win = match &outcome {
        Outcome::Value(_, w) => Some(*w),
        Outcome::Refused(_) => None,
    };
    let mut findings = Vec::new();
    let mut winner = None;
    for (j, occ) in ev.cmdline.occurrences.iter().enumerate() {
        let a = &ev.argv[occ.arg];
        let o = evidence::arg_origin(&ev.files, a).unwrap_or(Origin {
            path: ev.service.layout.fragment.clone(),
            line: 0,
            column: 0,
        });
        let refused = ev.cmdline.refused.iter().find(|(i, _)| *i == occ.arg);
        let status = if refused.is_some() {
            Status::Refused
        } else if win == Some(Winner::Flag(j)) {
            winner = Some(findings.len());
            Status::Effective
        } else {
            Status::Overridden
        };
        findings.push(Finding {
            path: o.path,
            line: o.line,
            column: o.column,
            source: "command-line",
            text: a.value.text.clone(),
            sets: occ.value.clone().ok(),
            via: a.var.clone(),
            status,
            note: refused.map(|(_, m)| m.clone()).or_else(|| {
                (status == Status::Overridden)
                    .then(|| "a later occurrence on the command line wins".into())
            }),
            handle: Handle::Arg {
                arg: occ.arg,
                occ: j,
            },
        });
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
        let last = src.doc.occurrences.len().saturating_sub(1);
        for (k, occ) in src.doc.occurrences.iter().enumerate() {
            let this = match dropin {
                None => Winner::Config,
                Some(i) => Winner::Dropin(i),
            };
            let (sets, invalid) = match &occ.value {
                KeyValue::Bool(b) => (Some(*b), None),
                KeyValue::Null => (None, None),
                KeyValue::Invalid(m) => (None, Some(m.clone())),
            };
            let dup = src.doc.occurrences.len() > 1;
            let status = if invalid.is_some() {
                Status::Refused
            } else if win == Some(this) && k == last {
                winner = Some(findings.len());
                Status::Effective
            } else {
                Status::Overridden
            };
            let note = invalid.or_else(|| match (occ.value.clone(), status) {
                (_, Status::Overridden) if flag_wins => {
                    Some("the command line wins over the configuration files".into())
                }
                (KeyValue::Null, _) => Some(
                    "null leaves the field unset (a drop-in's null deletes it): the default, true, applies"
                        .into(),
                ),
                _ if dup => Some(format!(
                    "{KEY} appears {} times in this file: strict decoding refuses duplicates, lenient keeps one; every false occurrence is fixed",
                    src.doc.occurrences.len()
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
                text: format!("{KEY}: {raw}"),
                sets,
                via: None,
                status,
                note,
                handle: Handle::Key { dropin, occ: k },
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
