//! The command line: parse, run the pipeline, print, and choose the exit status.

use crate::configz;
use crate::evidence::{self, Evidence, Options};
use crate::plan::{self, Plan, Strategy};
use crate::report::{Report, restart_command};
use crate::restart;
use crate::root::NodeFs;
use crate::saved::SavedPlan;
use crate::systemd::dbus::Systemd;
use crate::txn::{self, FileChange};
use crate::verdict::{self, Outcome};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "kubelet-remediate",
    version,
    about = "Find and fix what keeps the kubelet's makeIPTablesUtilChains from being true (CIS 4.2.7 / 4.2.6 / 3.2.6)",
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The exit statuses, shown under `--help` (and in the README).
pub const EXIT_STATUS: &str = "Exit status:
  0   compliant (nothing to change, or fixed and verified)
  1   error or refusal: unreadable or malformed input, settings the kubelet would refuse to
      start with (one line on stderr names file:line:column), a failed and rolled-back apply
  2   not compliant: changes proposed (plan), or a restart still needed
  3   the platform manages these files (OpenShift, Bottlerocket): apply the advice
  64  command-line usage error";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute the effective value and propose the minimal fix as a unified diff (writes nothing).
    Plan(PlanArgs),
    /// Apply the fix: show it, confirm, back up, write atomically, verify.
    Apply(ApplyArgs),
    /// Restore the files of one apply from its backups.
    Rollback(RollbackArgs),
    /// Check the running kubelet (and, with --configz, its own merged configuration).
    Verify(VerifyArgs),
    /// Find (and with --fix, fix) every false in a repository's manifests.
    Scan(ScanArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanOutput {
    Text,
    Json,
    Sarif,
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories (recursive) of YAML and JSON manifests.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: ScanOutput,
    /// Rewrite each file in place with the minimal edit (asks first, unless --yes).
    #[arg(long)]
    pub fix: bool,
    /// Fix without asking.
    #[arg(long, requires = "fix")]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's file system is mounted here (a DaemonSet mounts the host at /host).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Read files only: no /proc scan for the running kubelet.
    #[arg(long)]
    pub offline: bool,
    /// The kubelet's systemd unit (default: kubelet.service, else a k3s/rke2 unit).
    #[arg(long, value_name = "NAME")]
    pub unit: Option<String>,
    /// How to fix every false setting (default: remove flags, set config keys to true).
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    /// Colour the text output (auto: when stdout is a terminal and NO_COLOR is unset).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Also save the plan (every edit and the sha256 of each file) for `apply --plan`.
    #[arg(long = "out", value_name = "FILE")]
    pub save: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
    /// Write the files only; restart the kubelet yourself.
    #[arg(long)]
    pub no_restart: bool,
    /// How long the restarted kubelet must stay active, with the same main PID, to count.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub settle: f64,
    /// systemd's D-Bus address (default: the node's /run/systemd/private, then its system bus).
    #[arg(long, value_name = "ADDR")]
    pub dbus_address: Option<String>,
    /// Apply exactly this saved plan (refused if any of its files changed since).
    #[arg(long, value_name = "FILE", conflicts_with = "strategy")]
    pub plan: Option<PathBuf>,
    /// Where backup sets go, inside the root.
    #[arg(long, value_name = "DIR", default_value = txn::DEFAULT_BACKUP_DIR)]
    pub backup_dir: String,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// List the backup sets.
    #[arg(long, conflicts_with_all = ["last", "id"])]
    pub list: bool,
    /// Roll back the most recent apply.
    #[arg(long, conflicts_with = "id")]
    pub last: bool,
    /// The backup set to restore.
    pub id: Option<String>,
    /// Restore without asking.
    #[arg(long)]
    pub yes: bool,
    /// Restore files even if they changed after that apply.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_name = "DIR", default_value = txn::DEFAULT_BACKUP_DIR)]
    pub backup_dir: String,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The kubelet's systemd unit (default: kubelet.service, else a k3s/rke2 unit).
    #[arg(long, value_name = "NAME")]
    pub unit: Option<String>,
    /// systemd's D-Bus address, for the kubelet's MainPID (default: the node's private socket,
    /// then its system bus; without systemd, a /proc scan).
    #[arg(long, value_name = "ADDR")]
    pub dbus_address: Option<String>,
    /// The kubelet's configz endpoint, e.g. http://127.0.0.1:8001/api/v1/nodes/NAME/proxy/configz
    #[arg(long, value_name = "URL")]
    pub configz: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// An error after files were written (and restored): `main` must not add "nothing was changed".
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AfterWrites(pub String);

/// Run a parsed command line; the result is the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Plan(a) => run_plan(&a),
        Command::Apply(a) => run_apply(&a),
        Command::Rollback(a) => run_rollback(&a),
        Command::Verify(a) => run_verify(&a),
        Command::Scan(a) => run_scan(&a),
    }
}

fn node_fs(n: &NodeArgs) -> anyhow::Result<NodeFs> {
    let meta =
        std::fs::metadata(&n.root).with_context(|| format!("--root {}", n.root.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "--root {}: not a directory",
        n.root.display()
    );
    Ok(NodeFs::new(&n.root))
}

fn options(e: &EvalArgs) -> Options {
    Options {
        unit: e.unit.clone(),
        offline: e.offline,
    }
}

fn color(o: &OutputArgs) -> bool {
    match o.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Read, judge and plan.
fn evaluate(fs: &NodeFs, e: &EvalArgs) -> anyhow::Result<(Evidence, Report, Plan)> {
    let opts = options(e);
    let ev = evidence::gather(fs, &opts)?;
    let v = verdict::judge(&ev);
    let p = plan::plan(fs, &opts, &ev, &v, e.strategy)?;
    let report = Report::new(&ev, &v, &p);
    Ok((ev, report, p))
}

pub fn run_plan(a: &PlanArgs) -> anyhow::Result<i32> {
    let fs = node_fs(&a.node)?;
    let (ev, report, p) = evaluate(&fs, &a.eval)?;
    if let Some(path) = &a.save {
        let saved = SavedPlan::from_plan(&ev.service.layout.name, &p);
        let text = serde_json::to_string_pretty(&saved)? + "\n";
        fs_err::write(path, text)?;
    }
    match a.out.output {
        Output::Json => print!("{}", report.to_json()),
        Output::Text => print!("{}", report.to_text(color(&a.out))),
    }
    if let Some(line) = report.refusal_line() {
        eprintln!("kubelet-remediate: {line}");
    }
    Ok(report.exit_code())
}

fn lock_timeout() -> Duration {
    let secs = std::env::var("KUBELET_REMEDIATE_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// Ask on the terminal, or refuse without one.
fn confirm(yes: bool, prompt: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "standard input is not a terminal, so there is no one to confirm: pass --yes to proceed unattended"
        );
    }
    Ok(dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(false)
        .interact()
        .unwrap_or(false))
}

/// `scan`: 0 when nothing (or nothing after --fix) is false, 2 when findings remain.
pub fn run_scan(a: &ScanArgs) -> anyhow::Result<i32> {
    use crate::scan::{self, output};
    let mut found = scan::scan(&a.paths)?;
    let render = |s: &scan::Scan| match a.output {
        ScanOutput::Text => output::text(s),
        ScanOutput::Json => output::json(s),
        ScanOutput::Sarif => output::sarif(s),
        ScanOutput::Junit => output::junit(s),
    };
    let fixable = found.findings().any(|f| f.edit.is_some());
    if a.fix && fixable {
        if a.output == ScanOutput::Text {
            print!("{}", render(&found));
        }
        if !confirm(a.yes, "Rewrite these files in place?")? {
            eprintln!("kubelet-remediate: nothing was changed");
            return Ok(2);
        }
        let written = scan::write_fixes(&found)?;
        if a.output == ScanOutput::Text {
            for w in &written {
                println!("fixed {w}");
            }
        }
        // What is left is judged again from the files as written.
        found = scan::scan(&a.paths)?;
        if a.output != ScanOutput::Text || found.findings().next().is_some() {
            print!("{}", render(&found));
        }
    } else {
        print!("{}", render(&found));
    }
    Ok(if found.findings().next().is_some() {
        2
    } else {
        0
    })
}

pub fn run_apply(a: &ApplyArgs) -> anyhow::Result<i32> {
    let fs = node_fs(&a.node)?;
    // One apply or rollback at a time, and the plan is made under the lock, so a second run
    // sees the first one's result instead of applying it twice.
    let _lock = txn::lock(&fs, lock_timeout())?;
    // A set a killed run left unfinished is rolled back first, so this plan starts from the
    // original files.
    for note in txn::recover(&fs, &a.backup_dir)? {
        eprintln!("kubelet-remediate: {note}");
    }
    let (ev, report, p) = evaluate(&fs, &a.eval)?;
    let json = a.out.output == Output::Json;
    let unit = ev.service.layout.name.clone();
    let check_process = !ev.platform.kubelet_in_process();

    if ev.platform.managed() && !report.compliant {
        if json {
            print!("{}", report.to_json());
        } else {
            print!("{}", report.to_text(color(&a.out)));
            println!(
                "\nnot applied: {} manages these files; apply the platform-level fix above",
                ev.platform.name()
            );
        }
        return Ok(3);
    }
    if let Some(line) = report.refusal_line() {
        // The report still goes to stdout (JSON stays machine-readable); one line on stderr.
        if json {
            print!("{}", report.to_json());
        } else {
            print!("{}", report.to_text(color(&a.out)));
        }
        eprintln!(
            "kubelet-remediate: {line}; nothing is applied automatically, nothing was changed"
        );
        return Ok(1);
    }

    // What to write: the fresh plan, or exactly the saved one.
    let (changes, daemon_reload) = match &a.plan {
        Some(path) => {
            // Never block on a FIFO or read /dev/zero without end: a regular file, bounded.
            let bytes = crate::inroot::read_host_file(path, 64 << 20)
                .with_context(|| format!("--plan {}", path.display()))?;
            let text = String::from_utf8(bytes)
                .with_context(|| format!("--plan {}: not UTF-8", path.display()))?;
            let saved = SavedPlan::parse(&path.display().to_string(), &text)?;
            let mut changes = Vec::new();
            for f in &saved.files {
                // The saved path is resolved inside the root like any read, and the write
                // goes to that resolved path (re-checked at write time).
                let Some((resolved, current)) = fs.read(&f.path)? else {
                    bail!(
                        "{}: missing; the plan {} cannot be applied",
                        f.path,
                        path.display()
                    );
                };
                let after = saved.after(f, &current)?;
                changes.push(FileChange {
                    path: resolved,
                    before: current,
                    after: after.into(),
                });
            }
            (changes, saved.daemon_reload)
        }
        None => (
            p.changes
                .iter()
                .map(|c| FileChange {
                    path: c.path.clone(),
                    before: c.before.clone(),
                    after: c.after.clone(),
                })
                .collect::<Vec<_>>(),
            p.daemon_reload,
        ),
    };

    if changes.is_empty() {
        let restart_only = !report.compliant && !a.no_restart;
        if !restart_only {
            if json {
                print!("{}", report.to_json());
            } else if report.compliant {
                println!("nothing to do: makeIPTablesUtilChains is already true");
            } else {
                print!("{}", report.to_text(color(&a.out)));
                println!(
                    "\nthe files are already right; the running kubelet needs: {}",
                    restart_command(&unit, false)
                );
            }
            return Ok(if report.compliant { 0 } else { 2 });
        }
        // The files are right but the running kubelet is not: only a restart is needed.
        if !json {
            print!("{}", report.to_text(color(&a.out)));
        }
        let sd = connect(a)?;
        if !confirm(a.yes, &format!("Restart {unit}?"))? {
            eprintln!("not restarted");
            return Ok(1);
        }
        let r = restart::restart_and_verify(
            &sd,
            &fs,
            &unit,
            false,
            check_process,
            restart_options(a),
            &mut progress(a),
        )
        .map_err(|why| anyhow::anyhow!("{why}; see journalctl -u {unit}"))?;
        if json {
            let out = serde_json::json!({
                "applied": false, "files": [], "compliant": true,
                "restart": {"unit": unit, "daemon_reload": false, "done": true, "result": r,
                            "address": sd.address},
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!(
                "\nrestarted {unit}: pid {} runs with makeIPTablesUtilChains true",
                r.main_pid
            );
        }
        return Ok(0);
    }

    if !json {
        print!("{}", report.to_text(color(&a.out)));
        if let Some(path) = &a.plan {
            println!("\napplying the saved plan {}:", path.display());
            for c in &changes {
                print!("{}", plan::unified(&c.path, &c.before, &c.after));
            }
        }
    }
    let restart = restart_command(&unit, daemon_reload);
    // Reach systemd before writing anything: no connection, no change.
    let sd = if a.no_restart {
        None
    } else {
        Some(connect(a)?)
    };
    if !confirm(a.yes, "Apply these changes?")? {
        eprintln!("not applied");
        return Ok(1);
    }
    let opts = Options {
        offline: true,
        ..options(&a.eval)
    };
    // Writes change contents, never which unit files exist: reuse the layout, as the proof does.
    let layout = ev.service.layout.clone();
    let verify = || -> Result<(), String> {
        let ev =
            evidence::gather_with_layout(&fs, &opts, layout.clone()).map_err(|e| e.to_string())?;
        match verdict::judge(&ev).outcome {
            Outcome::Value(true, _) => Ok(()),
            Outcome::Value(false, _) => {
                Err("makeIPTablesUtilChains still evaluates to false".into())
            }
            Outcome::Refused(why) => Err(why),
        }
    };
    let started = std::time::Instant::now();
    let applied = txn::apply(
        &fs,
        &changes,
        (&unit, daemon_reload),
        &a.backup_dir,
        &verify,
    )?;
    let write_ms = started.elapsed().as_millis();
    for w in &applied.warnings {
        eprintln!("kubelet-remediate: warning: {w}");
    }
    let mut restarted = None;
    if let Some(sd) = &sd {
        match restart::restart_and_verify(
            sd,
            &fs,
            &unit,
            daemon_reload,
            check_process,
            restart_options(a),
            &mut progress(a),
        ) {
            Ok(r) => restarted = Some(r),
            Err(why) => {
                return Err(roll_back_after_failed_restart(
                    &fs,
                    sd,
                    a,
                    &unit,
                    daemon_reload,
                    &applied,
                    &why,
                ));
            }
        }
    }
    if json {
        let out = serde_json::json!({
            "applied": true,
            "backup_id": applied.backup_id,
            "backup_dir": applied.backup_dir,
            "files": applied.files,
            "compliant": true,
            "write_ms": write_ms,
            "warnings": applied.warnings,
            "restart": {"unit": unit, "daemon_reload": daemon_reload, "done": restarted.is_some(),
                        "command": restart, "result": restarted,
                        "address": sd.as_ref().map(|s| s.address.clone())},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("\napplied: {}", applied.files.join(", "));
        println!(
            "backup:  {} (undo: kubelet-remediate rollback {})",
            applied.backup_dir, applied.backup_id
        );
        match &restarted {
            Some(r) => println!(
                "restarted {unit}{}: pid {} runs with makeIPTablesUtilChains true",
                if r.reloaded {
                    " after daemon-reload"
                } else {
                    ""
                },
                r.main_pid
            ),
            None => println!("now run: {restart}"),
        }
    }
    Ok(0)
}

fn connect(a: &ApplyArgs) -> anyhow::Result<Systemd> {
    Ok(Systemd::connect(&restart::candidates(
        &a.node.root,
        a.dbus_address.as_deref(),
    ))?)
}

fn restart_options(a: &ApplyArgs) -> restart::Options {
    restart::Options {
        settle: Duration::from_secs_f64(a.settle.max(0.0)),
        job_timeout: Duration::from_secs(120),
    }
}

/// A progress line on a terminal while the unit settles.
fn progress(a: &ApplyArgs) -> impl FnMut(Duration) + '_ {
    let tty = std::io::stderr().is_terminal() && a.out.output == Output::Text;
    move |spent: Duration| {
        if tty {
            eprint!(
                "\rwatching the kubelet settle: {:.1} / {:.0} s ",
                spent.as_secs_f64(),
                a.settle
            );
        }
    }
}

/// The restart failed or the new kubelet is not compliant: put every file back, reload if
/// units changed, restart the old configuration and wait for it, then report.
fn roll_back_after_failed_restart(
    fs: &NodeFs,
    sd: &Systemd,
    a: &ApplyArgs,
    unit: &str,
    daemon_reload: bool,
    applied: &txn::Applied,
    why: &str,
) -> anyhow::Error {
    let restored = match txn::rollback(fs, &a.backup_dir, &applied.backup_id, false) {
        Ok(r) => r,
        Err(e) => {
            return anyhow::Error::new(AfterWrites(format!(
                "{why}; restoring the backups failed too ({e}): run kubelet-remediate rollback {} and see journalctl -u {unit}",
                applied.backup_id
            )));
        }
    };
    let back = (|| -> Result<u32, String> {
        if daemon_reload {
            sd.reload().map_err(|e| e.0)?;
        }
        let result = sd
            .restart(unit, Duration::from_secs(120))
            .map_err(|e| e.0)?;
        if result != "done" {
            return Err(format!(
                "restarting the old configuration ended with \"{result}\""
            ));
        }
        let s = sd
            .settle(
                unit,
                Duration::from_secs_f64(a.settle.max(0.0)),
                &mut |_| {},
            )
            .map_err(|e| e.0)?;
        Ok(s.main_pid)
    })();
    match back {
        Ok(pid) => anyhow::Error::new(AfterWrites(format!(
            "{why}; rolled back {} (backup {}); {unit} is active again with its old settings (pid {pid}); see journalctl -u {unit}",
            restored.restored.join(", "),
            applied.backup_id
        ))),
        Err(e) => anyhow::Error::new(AfterWrites(format!(
            "{why}; rolled back {} (backup {}), but {unit} did not come back: {e}; see journalctl -u {unit}",
            restored.restored.join(", "),
            applied.backup_id
        ))),
    }
}

pub fn run_rollback(a: &RollbackArgs) -> anyhow::Result<i32> {
    let fs = node_fs(&a.node)?;
    let _lock = txn::lock(&fs, lock_timeout())?;
    let sets = txn::list(&fs, &a.backup_dir)?;
    if a.list {
        if a.output == Output::Json {
            println!("{}", serde_json::to_string_pretty(&sets)?);
        } else if sets.is_empty() {
            println!("no backups in {}", a.backup_dir);
        } else {
            for m in &sets {
                let files: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
                println!(
                    "{}  {}  {:<11}  {}",
                    m.id,
                    m.time,
                    m.state,
                    files.join(", ")
                );
            }
        }
        return Ok(0);
    }
    let id = match (&a.id, a.last) {
        (Some(id), _) => id.clone(),
        (None, true) => match sets.last() {
            Some(m) => m.id.clone(),
            None => bail!("no backups in {}: nothing to roll back", a.backup_dir),
        },
        (None, false) => bail!("name a backup set, or pass --last or --list"),
    };
    let Some(m) = sets.iter().find(|m| m.id == id) else {
        bail!(
            "{}/{id}: no such backup set (see rollback --list)",
            a.backup_dir
        );
    };
    if a.output == Output::Text {
        println!("backup {} from {} ({}):", m.id, m.time, m.state);
        for f in &m.files {
            println!("  restore {}", f.path);
        }
    }
    if !confirm(a.yes, "Restore these files?")? {
        eprintln!("not restored");
        return Ok(1);
    }
    let r = txn::rollback(&fs, &a.backup_dir, &id, a.force)?;
    for w in &r.warnings {
        eprintln!("kubelet-remediate: warning: {w}");
    }
    if a.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for p in &r.restored {
            println!("restored: {p}");
        }
        for p in &r.unchanged {
            println!("already original: {p}");
        }
        if !r.restored.is_empty() {
            println!("now run: {}", restart_command(&r.unit, r.daemon_reload));
        }
    }
    Ok(0)
}

/// One source `verify` consulted, and what it said.
#[derive(Debug, serde::Serialize)]
struct Check {
    source: String,
    value: Option<bool>,
    detail: String,
}

pub fn run_verify(a: &VerifyArgs) -> anyhow::Result<i32> {
    let fs = node_fs(&a.node)?;
    let opts = Options {
        unit: a.unit.clone(),
        offline: false,
    };
    let ev = evidence::gather(&fs, &opts)?;
    let unit = ev.service.layout.name.clone();
    let mut checks = Vec::new();
    if ev.platform.kubelet_in_process() {
        // The kubelet runs inside k3s/rke2: its flags are not on any command line.
        let ok = verdict::judge(&ev).compliant();
        checks.push(Check {
            source: format!(
                "{} files (the kubelet runs inside {unit})",
                ev.platform.name()
            ),
            value: Some(ok),
            detail: "kubelet-arg entries and kubelet.conf.d drop-ins as they are now".into(),
        });
    } else {
        // The unit's main process if systemd answers, else the /proc scan.
        let from_systemd = Systemd::connect(&restart::candidates(
            &a.node.root,
            a.dbus_address.as_deref(),
        ))
        .ok()
        .and_then(|sd| sd.state(&unit).ok())
        .map(|s| s.main_pid)
        .filter(|p| *p != 0);
        let pid = from_systemd.or(ev.running.as_ref().map(|r| r.pid));
        match pid {
            Some(pid) => {
                let source = format!("the running kubelet (pid {pid})");
                // Read once: whether its configs changed since it started, and its value.
                let (value, detail) = match restart::read_process(&fs, pid) {
                    Ok(r) if !r.changed_since_start.is_empty() => (
                        None,
                        format!(
                            "{} changed since it started, so what it loaded cannot be read from disk (--configz reads it from the kubelet)",
                            r.changed_since_start.join(", ")
                        ),
                    ),
                    Ok(r) => match restart::process_verdict(&r) {
                        Ok(v) => (
                            Some(v),
                            "its command line and the files it names".to_string(),
                        ),
                        Err(why) => (None, why),
                    },
                    Err(why) => (None, why),
                };
                checks.push(Check {
                    source,
                    value,
                    detail,
                });
            }
            None if a.configz.is_none() => {
                bail!(
                    "no running kubelet found ({unit} has no main process, and /proc has no kubelet): start it, or pass --configz"
                )
            }
            None => {}
        }
    }
    if let Some(url) = &a.configz {
        let source = format!("configz {url}");
        let got = configz::fetch(url, Duration::from_secs(10)).and_then(|body| {
            let doc: serde_json::Value =
                serde_json::from_str(&body).map_err(|e| format!("{url}: not JSON: {e}"))?;
            configz::value_from_document(&doc)
        });
        checks.push(match got {
            Ok((v, present)) => Check {
                source,
                value: Some(v),
                detail: if present {
                    "the kubelet's merged configuration".into()
                } else {
                    "absent from configz: the default, true".into()
                },
            },
            Err(why) => Check {
                source,
                value: None,
                detail: why,
            },
        });
    }
    if !ev.platform.kubelet_in_process() {
        // The files are what the next restart runs: a process that says true while they say
        // false (say, after a rollback without a restart) is not a compliant node.
        let (value, detail) = match verdict::judge(&ev).outcome {
            Outcome::Value(v, _) => (
                Some(v),
                format!("{unit}, its drop-ins, environment files and configs as they are now"),
            ),
            Outcome::Refused(why) => (None, format!("the kubelet would refuse to start: {why}")),
        };
        checks.push(Check {
            source: "the files on disk (what the next restart runs)".into(),
            value,
            detail,
        });
    }
    // A definite false anywhere is "not compliant" even if another source could not be read.
    let failed = checks.iter().any(|c| c.value.is_none());
    let says_false = checks.iter().any(|c| c.value == Some(false));
    let compliant = !failed && !says_false;
    let code = if says_false {
        2
    } else if failed {
        1
    } else {
        0
    };
    if a.output == Output::Json {
        let out =
            serde_json::json!({"compliant": compliant && !failed, "unit": unit, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for c in &checks {
            let v = c.value.map_or("error".to_string(), |b| b.to_string());
            println!("{}: makeIPTablesUtilChains {v} ({})", c.source, c.detail);
        }
        println!(
            "{}",
            match code {
                0 => "verified: makeIPTablesUtilChains is true",
                2 => "NOT COMPLIANT: makeIPTablesUtilChains is false in at least one source",
                _ => "could not verify",
            }
        );
    }
    Ok(code)
}
