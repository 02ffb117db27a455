//! What `plan` prints: one report model, rendered as JSON or as text for a person.

use crate::controls::{ControlReport, Selection, Status as ControlStatus};
use crate::evidence::Evidence;
use crate::plan::{Change, Plan};
use crate::verdict::{self, Finding, Outcome, Status, Verdict, Winner};
use serde::Serialize;

pub const TITLE: &str = "Ensure that the --make-iptables-util-chains argument is set to true";
pub const IDS: &[&str] = &[
    "CIS Kubernetes 4.2.7 (benchmarks 1.5-1.6, 1.20-1.24)",
    "CIS Kubernetes 4.2.6 (benchmarks 1.7-1.12, k3s, RKE2)",
    "CIS EKS 3.2.6 (1.5+), CIS AKS 3.2.6 (1.7, 1.8), CIS GKE 3.2.6 (1.6)",
    "CIS GKE 3.2.7 (1.2), older CIS EKS/AKS 3.2.7",
];

#[derive(Debug, Serialize)]
pub struct Control {
    pub title: &'static str,
    pub ids: &'static [&'static str],
}

#[derive(Debug, Serialize)]
pub struct Source {
    /// `command-line`, `config`, `config-dir` or `default`.
    pub kind: &'static str,
    pub path: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub text: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Effective {
    pub value: Option<bool>,
    pub source: Option<Source>,
}

#[derive(Debug, Serialize)]
pub struct PlatformInfo {
    pub id: &'static str,
    pub name: &'static str,
    /// The platform owns the files: no edits, only the platform-level fix.
    pub managed: bool,
}

#[derive(Debug, Serialize)]
pub struct UnitInfo {
    pub name: String,
    pub fragment: String,
    pub drop_ins: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RunningInfo {
    pub pid: u32,
    /// The value the running process got (`null`: it was started with a refused setting).
    pub value: Option<bool>,
    /// Whether its command line is the one the unit gives now.
    pub matches_unit: bool,
    /// Config files modified since it started (then `value` is what the files say now, not
    /// necessarily what it loaded).
    pub changed_since_start: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Restart {
    pub unit: String,
    pub daemon_reload: bool,
    /// Whether a restart is needed at all (a change, or a process running with old settings).
    pub needed: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub control: Control,
    /// Every selected control is `pass` (and, without `--control`, makeIPTablesUtilChains is
    /// true on disk and in the running kubelet).
    pub compliant: bool,
    /// The benchmark the controls' CIS ids and rules are read in.
    pub benchmark: &'static str,
    /// One verdict per selected control, in table order (`controls.rs`).
    pub controls: Vec<ControlReport>,
    /// `--control` was given: the text report lists the controls.
    #[serde(skip)]
    pub selected: bool,
    /// Why the kubelet would refuse to start, when it would.
    pub refused: Option<String>,
    pub effective: Effective,
    pub platform: PlatformInfo,
    pub unit: UnitInfo,
    pub config: Option<String>,
    pub config_dir: Option<String>,
    pub findings: Vec<Finding>,
    pub running: Option<RunningInfo>,
    pub changes: Vec<Change>,
    pub advice: Vec<String>,
    pub notes: Vec<String>,
    pub restart: Restart,
}

impl Report {
    pub fn new(
        ev: &Evidence,
        v: &Verdict,
        plan: &Plan,
        sel: &Selection,
        controls: Vec<ControlReport>,
    ) -> Report {
        let effective = match &v.outcome {
            Outcome::Refused(_) => Effective {
                value: None,
                source: None,
            },
            Outcome::Value(b, w) => Effective {
                value: Some(*b),
                source: Some(match (w, v.winner) {
                    (Winner::Default, _) | (_, None) => Source {
                        kind: "default",
                        path: None,
                        line: None,
                        column: None,
                        text: None,
                    },
                    (_, Some(i)) => {
                        let f = &v.findings[i];
                        Source {
                            kind: f.source,
                            path: Some(f.path.clone()),
                            line: Some(f.line),
                            column: Some(f.column),
                            text: Some(f.text.clone()),
                        }
                    }
                }),
            },
        };
        let mut notes = ev.notes.clone();
        notes.extend(plan.notes.iter().cloned());
        notes.extend(ev.configs.notes.iter().cloned());
        if let Some(src) = &ev.configs.config {
            for (k, line) in src.doc.near_misses() {
                notes.push(format!(
                    "{}:{line}: \"{k}\" is not makeIPTablesUtilChains (--config is decoded case-sensitively): the kubelet ignores it",
                    src.named
                ));
            }
        }
        for src in ev.configs.config.iter().chain(&ev.configs.dropins) {
            for line in &src.doc.later_documents {
                notes.push(format!(
                    "{}:{line}: in a later YAML document: the kubelet decodes only the first document of the file, so this is inert (not edited)",
                    src.named
                ));
            }
        }
        if ev.configs.config_dir.is_some() {
            notes.push("--config-dir is honoured from Kubernetes 1.30 (beta); 1.28-1.29 need KUBELET_CONFIG_DROPIN_DIR_ALPHA set in the kubelet's environment".into());
        }
        let running = ev.running.as_ref().map(|r| {
            let value = match verdict::effective(&r.cmdline, &r.configs) {
                Outcome::Value(b, _) => Some(b),
                Outcome::Refused(_) => None,
            };
            let matches_unit = r.argv.get(1..) == ev.argv_text().get(1..);
            if !matches_unit {
                notes.push(format!(
                    "the running kubelet (pid {}) was started with a different command line than {} gives now: the unit or an environment file changed since; a restart (after systemctl daemon-reload for unit changes) applies it",
                    r.pid, ev.service.layout.name
                ));
            }
            if !r.changed_since_start.is_empty() {
                notes.push(format!(
                    "modified since the running kubelet (pid {}) started, so what it loaded cannot be read back: {}; a restart makes the files authoritative",
                    r.pid,
                    r.changed_since_start.join(", ")
                ));
            }
            RunningInfo {
                pid: r.pid,
                value,
                matches_unit,
                changed_since_start: r.changed_since_start.clone(),
            }
        });
        let file_ok = v.compliant();
        // Unknown is not a pass: a process that loaded files since edited needs a restart.
        let owed = ev.restart_owed();
        if let Some(at) = owed {
            notes.push(format!(
                "files were written without a restart ({at}, marker {}) and no kubelet started since has been seen: the running kubelet keeps its old settings until {} restarts",
                crate::state::pending_path(),
                ev.service.layout.name
            ));
        }
        let running_ok = owed.is_none()
            && running
                .as_ref()
                .is_none_or(|r| r.value == Some(true) && r.changed_since_start.is_empty());
        let mut advice = Vec::new();
        // What keeps an edit in place; a chmod or chown survives the platform's rewrites
        // (os.WriteFile keeps an existing file's mode: docs/kubelet-controls.md §4).
        if !file_ok || plan.changes.iter().any(Change::edits_content) || ev.platform.managed() {
            advice.extend(ev.platform.durability());
        }
        if !file_ok && let Outcome::Refused(why) = &v.outcome {
            advice.push(format!(
                "fix the setting the kubelet refuses first (nothing is proposed automatically): {why}. Never write --make-iptables-util-chains:true (the colon spelling in some CIS remediation texts): it is an unknown flag."
            ));
        }
        let refused = match &v.outcome {
            Outcome::Refused(w) => Some(w.clone()),
            _ => None,
        };
        // The first control keeps its own account of the running kubelet (and of a restart the
        // marker says is owed); every selected control must pass.
        let first_ok = !sel.has(crate::controls::DEFAULT_CONTROL) || (file_ok && running_ok);
        let controls_ok = controls.iter().all(|c| c.status == ControlStatus::Pass);
        let restart_for_controls = controls.iter().any(|c| c.restart_needed);
        Report {
            control: Control {
                title: TITLE,
                ids: IDS,
            },
            compliant: first_ok && controls_ok && owed.is_none(),
            benchmark: sel.benchmark,
            selected: !sel.default,
            refused,
            effective,
            platform: PlatformInfo {
                id: ev.platform.id(),
                name: ev.platform.name(),
                managed: ev.platform.managed(),
            },
            unit: UnitInfo {
                name: ev.service.layout.name.clone(),
                fragment: ev.service.layout.fragment.clone(),
                drop_ins: ev.service.layout.dropins.clone(),
            },
            config: ev.configs.config.as_ref().map(|c| c.named.clone()),
            config_dir: ev.configs.config_dir.clone(),
            findings: v.findings.clone(),
            changes: plan.changes.clone(),
            advice,
            notes,
            restart: Restart {
                unit: ev.service.layout.name.clone(),
                daemon_reload: plan.daemon_reload,
                needed: plan.changes.iter().any(Change::edits_content)
                    || (file_ok && !running_ok)
                    || restart_for_controls,
            },
            running,
            controls,
        }
    }

    /// The finding the kubelet refuses, if it is one.
    pub fn refused_at(&self) -> Option<&Finding> {
        self.refused.as_ref()?;
        self.findings.iter().find(|f| f.status == Status::Refused)
    }

    /// 0 compliant, 2 changes proposed or needed, 1 the kubelet would refuse its settings.
    pub fn exit_code(&self) -> i32 {
        if self.refused.is_some() {
            1
        } else if self.compliant {
            0
        } else {
            2
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes") + "\n"
    }

    pub fn to_text(&self, color: bool) -> String {
        self.text(color, true)
    }

    /// The text without the proposed diff (`apply --plan` shows the saved plan's instead).
    pub fn to_text_without_changes(&self, color: bool) -> String {
        self.text(color, false)
    }

    fn text(&self, color: bool, changes: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut o = String::new();
        if self.selected {
            o += &self.controls_text(&paint);
            o += &self.tail_text(&paint, changes);
            return o;
        }
        o += &format!("control:  {}\n", self.control.title);
        o += "          CIS Kubernetes 4.2.7 / 4.2.6, EKS/AKS/GKE 3.2.6\n";
        o += &format!("platform: {}\n", self.platform.name);
        o += &format!(
            "unit:     {} ({}{})\n",
            self.unit.name,
            self.unit.fragment,
            match self.unit.drop_ins.len() {
                0 => String::new(),
                n => format!(" + {n} drop-in{}", if n == 1 { "" } else { "s" }),
            }
        );
        if let Some(c) = &self.config {
            o += &format!("config:   {c}\n");
        }
        if let Some(d) = &self.config_dir {
            o += &format!("config-dir: {d}\n");
        }
        let verdict = match (&self.refused, self.effective.value, self.compliant) {
            (Some(_), _, _) => paint(
                "1;31",
                "REFUSED: the kubelet would not start with these settings",
            ),
            (None, Some(true), true) => paint("1;32", "COMPLIANT: makeIPTablesUtilChains is true"),
            (None, Some(true), false) => paint(
                "1;33",
                "NOT COMPLIANT: the files say true, but the running kubelet has false or loaded older files (restart needed)",
            ),
            _ => paint("1;31", "NOT COMPLIANT: makeIPTablesUtilChains is false"),
        };
        o += &format!("verdict:  {verdict}\n");
        if let Some(r) = &self.refused {
            o += &format!("          {r}\n");
        }
        match &self.effective.source {
            Some(s) if s.kind == "default" => {
                o += "          decided by: the kubelet's default (true): nothing sets it\n"
            }
            Some(s) => {
                o += &format!(
                    "          decided by: {} at {}:{}:{} ({})\n",
                    s.text.as_deref().unwrap_or(""),
                    s.path.as_deref().unwrap_or(""),
                    s.line.unwrap_or(0),
                    s.column.unwrap_or(0),
                    s.kind
                )
            }
            None => {}
        }
        if let Some(r) = &self.running {
            let value = if r.changed_since_start.is_empty() {
                r.value
                    .map_or("an unparsable value".into(), |v| v.to_string())
            } else {
                "an unknown value (its config files changed since it started)".into()
            };
            let older = if r.matches_unit {
                ""
            } else {
                " (started from an older command line)"
            };
            o += &format!("running:  pid {} has {value}{older}\n", r.pid);
        }
        if !self.findings.is_empty() {
            o += "\nevidence (command line wins over --config-dir, which wins over --config):\n";
            for f in &self.findings {
                let status = match f.status {
                    Status::Effective => paint("1", "effective"),
                    Status::Overridden => "overridden".into(),
                    Status::Inert => "inert".into(),
                    Status::Refused => paint("31", "refused"),
                };
                let via = match &f.via {
                    Some(v) if crate::systemd::envfile::valid_name(v) => format!(" (via ${v})"),
                    Some(v) => format!(" (via {v})"),
                    None => String::new(),
                };
                o += &format!(
                    "  {}:{}:{}  {}{via}  [{status}]\n",
                    f.path,
                    f.line,
                    f.column,
                    if f.text.is_empty() { "\"\"" } else { &f.text }
                );
                if let Some(n) = &f.note {
                    o += &format!("      {n}\n");
                }
            }
        }
        o += &self.tail_text(&paint, changes);
        o
    }

    /// The node, then each selected control: status, value, where it is decided, the places
    /// that set it, and advice.
    fn controls_text(&self, paint: &dyn Fn(&str, &str) -> String) -> String {
        let mut o = String::new();
        o += &format!("platform: {}\n", self.platform.name);
        o += &format!("unit:     {}\n", self.unit.name);
        if let Some(c) = &self.config {
            o += &format!("config:   {c}\n");
        }
        if let Some(d) = &self.config_dir {
            o += &format!("config-dir: {d}\n");
        }
        let count = |st| self.controls.iter().filter(|c| c.status == st).count();
        o += &format!(
            "benchmark: {}: {} pass, {} fail{}\n",
            self.benchmark,
            count(ControlStatus::Pass),
            count(ControlStatus::Fail),
            match &self.refused {
                Some(r) => format!("; REFUSED: the kubelet would not start: {r}"),
                None => String::new(),
            }
        );
        for c in &self.controls {
            let status = match c.status {
                ControlStatus::Pass => paint("1;32", "pass"),
                ControlStatus::Fail => paint("1;31", "FAIL"),
                ControlStatus::Refused => paint("1;31", "REFUSED"),
                ControlStatus::Error => paint("1;31", "ERROR"),
            };
            let auto = crate::controls::automated_word(c.automated)
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            o += &format!(
                "\n{:<7} {status}  {}  {}{auto}\n",
                c.cis.unwrap_or("-"),
                c.id,
                c.title
            );
            let at = match &c.effective.source {
                Some(s) => format!("{} at {}:{}:{}", s.kind, s.path, s.line, s.column),
                None => "the default".into(),
            };
            let files = crate::controls::get(c.id).is_some_and(|x| x.file.is_some());
            match c.effective.value.as_array() {
                // A 4.1 control: one line per file, as `ls -l` would order it.
                Some(list) if files => {
                    if list.is_empty() {
                        o += "        files: none\n";
                    }
                    for (i, f) in list.iter().enumerate() {
                        let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                        o += &format!(
                            "        {}{}  {}  {}{}\n",
                            if i == 0 { "files: " } else { "       " },
                            s("mode"),
                            s("owner"),
                            s("path"),
                            f.get("named")
                                .and_then(|n| n.as_str())
                                .map(|n| format!(" (named {n})"))
                                .unwrap_or_default()
                        );
                    }
                }
                _ => o += &format!("        value: {} ({at})\n", c.effective.value),
            }
            for f in &c.findings {
                o += &format!(
                    "        {}:{}:{}  {}  [{}]\n",
                    f.at.path, f.at.line, f.at.column, f.text, f.role
                );
                if let Some(n) = &f.note {
                    o += &format!("            {n}\n");
                }
            }
            for a in &c.advice {
                o += &format!("        - {a}\n");
            }
        }
        o
    }

    /// What every report ends with: the proposed change, the restart, advice and notes.
    fn tail_text(&self, paint: &dyn Fn(&str, &str) -> String, changes: bool) -> String {
        let mut o = String::new();
        if changes && !self.changes.is_empty() {
            o += "\nproposed change:\n";
            for c in &self.changes {
                if let Some(via) = &c.via {
                    let how = if c.edits_content() {
                        "edited"
                    } else {
                        "changed"
                    };
                    o += &format!("# {via} is a symlink to {}: the target is {how}\n", c.path);
                }
                for line in crate::meta::header(&c.path, &c.meta).lines() {
                    o += &paint("1", line);
                    o += "\n";
                }
                for line in c.diff.lines() {
                    let l = if line.starts_with("+++") || line.starts_with("---") {
                        paint("1", line)
                    } else if line.starts_with('+') {
                        paint("32", line)
                    } else if line.starts_with('-') {
                        paint("31", line)
                    } else if line.starts_with("@@") {
                        paint("36", line)
                    } else {
                        line.to_string()
                    };
                    o += &l;
                    o += "\n";
                }
            }
        }
        if self.restart.needed {
            let cmd = restart_command(&self.restart.unit, self.restart.daemon_reload);
            o += &format!("\nthen: {cmd}\n");
        }
        if !self.advice.is_empty() {
            o += "\nadvice:\n";
            for a in &self.advice {
                o += &format!("  - {}\n", a.replace('\n', "\n    "));
            }
        }
        if !self.notes.is_empty() {
            o += "\nnotes:\n";
            for n in &self.notes {
                o += &format!("  - {n}\n");
            }
        }
        o
    }
}

/// The shell command that applies a change by hand: daemon-reload first when units changed.
pub fn restart_command(unit: &str, daemon_reload: bool) -> String {
    let reload = if daemon_reload {
        "systemctl daemon-reload && "
    } else {
        ""
    };
    format!("{reload}systemctl restart {unit}")
}
