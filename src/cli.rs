//! The command line: parse, run the pipeline, print, and choose the exit status.

use crate::flow::{self, Preview, Ui};
use crate::outcome::{Node, Outcome, Record, Verdict};
use crate::plan::{self, Strategy};
use crate::txn;
use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "kubelet-remediate",
    version = crate::outcome::LONG_VERSION,
    about = "Find and fix what keeps the kubelet's makeIPTablesUtilChains from being true (CIS 4.2.7 / 4.2.6 / 3.2.6)",
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The node's name in the JSON record (default: $NODE_NAME, $SYSTEM_UPGRADE_NODE_NAME, or
    /// the node's /etc/hostname inside --root).
    #[arg(long, global = true, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Print only errors (the exit status and the JSON record still tell the result).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print the node, the record's timings and every warning on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The exit statuses, shown under `--help` (and in the README).
pub const EXIT_STATUS: &str = "Exit status:
  0   compliant (nothing to change, or fixed and verified)
  1   error or refusal: unreadable or malformed input, settings the kubelet would refuse to
      start with (one line on stderr names file:line:column), a failed and rolled-back apply
  2   not compliant: changes proposed (plan), or a restart still needed
  3   the platform manages these files (OpenShift, Bottlerocket): apply the advice
  64  command-line usage error
With --output json, plan, apply, rollback and verify print one record (docs/report.schema.json)
whatever happens, errors included.";

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
    /// Read many nodes' JSON records and print the fleet's table (or JUnit).
    Summarize(SummarizeArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryOutput {
    Text,
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    /// Record files (one JSON object, JSON lines, or `kubectl logs` output) or directories of
    /// them; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: SummaryOutput,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Audit forever: plan again every SECS seconds, one record per line with --output json
    /// (the audit DaemonSet's mode).
    #[arg(long, value_name = "SECS", conflicts_with = "save")]
    pub every: Option<u64>,
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
    #[command(flatten)]
    pub restart: RestartArgs,
    /// Apply exactly this saved plan (refused if any of its files changed since).
    #[arg(long, value_name = "FILE", conflicts_with = "strategy")]
    pub plan: Option<PathBuf>,
    /// Where backup sets go, inside the root.
    #[arg(long, value_name = "DIR", default_value = txn::DEFAULT_BACKUP_DIR)]
    pub backup_dir: String,
}

/// How `apply` and `rollback` restart the kubelet after writing.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// Write the files only; restart the kubelet yourself.
    #[arg(long)]
    pub no_restart: bool,
    /// How long the restarted kubelet must stay active, with the same main PID, to count.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub settle: f64,
    /// systemd's D-Bus address (default: the node's /run/systemd/private, then its system bus).
    #[arg(long, value_name = "ADDR")]
    pub dbus_address: Option<String>,
}

impl RestartArgs {
    /// `None` with `--no-restart`.
    fn flow(&self) -> Option<flow::Restart> {
        let settle = if self.settle.is_finite() {
            self.settle.max(0.0)
        } else {
            0.0
        };
        (!self.no_restart).then(|| flow::Restart {
            dbus_address: self.dbus_address.clone(),
            settle: Duration::from_secs_f64(settle),
            ..flow::Restart::default()
        })
    }
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
    #[command(flatten)]
    pub restart: RestartArgs,
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

/// Run a parsed command line; the result is the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let say = Say {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let name = cli.node_name.as_deref();
    match &cli.command {
        Command::Plan(a) => Ok(run_plan(a, name, say)),
        Command::Apply(a) => Ok(run_apply(a, name, say)),
        Command::Rollback(a) => Ok(run_rollback(a, name, say)),
        Command::Verify(a) => Ok(run_verify(a, name, say)),
        Command::Scan(a) => run_scan(a),
        Command::Summarize(a) => run_summarize(a),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                a.shell,
                &mut cmd,
                "kubelet-remediate",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            // Section 8: it administers the node (as systemctl(1) does not, kubeadm(8) does).
            match clap_mangen::Man::new(cmd)
                .section("8")
                .render(&mut std::io::stdout())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(0),
            }
        }
    }
}

/// How much text to print (`-q`, `-v`).
#[derive(Debug, Clone, Copy)]
struct Say {
    quiet: bool,
    verbose: bool,
}

fn lock_timeout() -> Duration {
    let secs = std::env::var("KUBELET_REMEDIATE_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn color(o: &OutputArgs) -> bool {
    match o.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

fn eval(e: &EvalArgs) -> flow::Eval {
    flow::Eval {
        unit: e.unit.clone(),
        offline: e.offline,
        strategy: e.strategy,
    }
}

/// Open the root and run one node flow: the record, stamped with who, where and when.
fn node_record(
    root: &std::path::Path,
    name: Option<&str>,
    command: &'static str,
    body: impl FnOnce(&crate::root::NodeFs) -> Outcome,
) -> Record {
    let started = std::time::SystemTime::now();
    match flow::open_root(root) {
        Ok(fs) => {
            let node = Node::identify(name, &fs);
            let outcome = body(&fs);
            Record::new(node, command, started, outcome)
        }
        Err(stop) => {
            let node = Node {
                name: name.map(str::to_string),
                name_from: name.map(|_| "--node-name"),
                root: root.display().to_string(),
            };
            Record::new(node, command, started, Outcome::failed(stop))
        }
    }
}

/// The closing lines every node command shares: the error on stderr, `-v`'s details, and the
/// record on stdout with `--output json`.
fn finish(r: &Record, json: bool, say: Say) -> i32 {
    let o = &r.outcome;
    if json {
        print!("{}", r.to_json());
    }
    if !say.quiet {
        for w in &o.warnings {
            eprintln!("kubelet-remediate: warning: {w}");
        }
    }
    if let Some(e) = &o.error {
        let tail = if e.files_changed {
            ""
        } else {
            "; nothing was changed"
        };
        eprintln!("kubelet-remediate: error: {}{tail}", e.message);
    }
    if say.verbose {
        let t = &o.timings;
        let ms = |v: Option<u128>| v.map_or("-".to_string(), |v| format!("{v} ms"));
        eprintln!(
            "kubelet-remediate: node {} ({}), {} {}: {} (exit {}) in {} ms (evidence {}, write {}, restart {})",
            r.node.name.as_deref().unwrap_or("(unnamed)"),
            r.node.name_from.unwrap_or("no name found"),
            r.command,
            r.node.root,
            o.result.name(),
            o.exit_code,
            t.total_ms,
            ms(t.evidence_ms),
            ms(t.write_ms),
            ms(t.restart_ms),
        );
    }
    o.exit_code
}

fn run_plan(a: &PlanArgs, name: Option<&str>, say: Say) -> i32 {
    let json = a.out.output == Output::Json;
    let once = || {
        node_record(&a.node.root, name, "plan", |fs| {
            flow::plan(fs, &eval(&a.eval), a.save.as_deref())
        })
    };
    let Some(secs) = a.every else {
        let r = once();
        print_report(&r, json, color(&a.out), say);
        return finish(&r, json, say);
    };
    // The audit DaemonSet's loop: one compact record per line, so `kubectl logs` is JSON lines.
    loop {
        let r = once();
        if json {
            println!("{}", serde_json::to_string(&r).expect("record serializes"));
        } else {
            print_report(&r, false, color(&a.out), say);
        }
        std::thread::sleep(Duration::from_secs(secs.max(1)));
    }
}

/// `plan`'s text: the report, and the refusal's location on stderr.
fn print_report(r: &Record, json: bool, color: bool, say: Say) {
    let Some(report) = &r.outcome.report else {
        return;
    };
    if !json && !say.quiet {
        print!("{}", report.to_text(color));
    }
    if let Some(line) = report.refusal_line() {
        eprintln!("kubelet-remediate: {line}");
    }
}

/// Prompts on the terminal; shows the preview on stdout in text mode, and on stderr before
/// asking in JSON mode (stdout is the record's).
struct Terminal {
    yes: bool,
    json: bool,
    color: bool,
    quiet: bool,
    settle: f64,
    /// The report was already printed with the question.
    shown: bool,
}

impl Terminal {
    fn preview(&self, p: &Preview<'_>) -> String {
        match p {
            Preview::Apply {
                report,
                saved: Some((path, changes)),
            } => {
                // The saved plan's diff is what gets written: shown once, instead of the
                // fresh plan's.
                let mut t = report.to_text_without_changes(self.color);
                t += &format!("\napplying the saved plan {}:\n", path.display());
                for c in *changes {
                    t += &plan::unified(&c.path, &c.before, &c.after);
                }
                t
            }
            Preview::Apply {
                report,
                saved: None,
            }
            | Preview::Restart { report, .. } => report.to_text(self.color),
            Preview::Rollback { set } => {
                let mut t = format!("backup {} from {} ({}):\n", set.id, set.time, set.state);
                for f in &set.files {
                    t += &format!("  restore {}\n", f.path);
                }
                t
            }
        }
    }
}

impl Ui for Terminal {
    fn confirm(&mut self, question: &str, p: Preview<'_>) -> Result<bool, String> {
        let text = self.preview(&p);
        if !self.json && !self.quiet {
            print!("{text}");
            self.shown = true;
        }
        if self.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(
                "standard input is not a terminal, so there is no one to confirm: pass --yes to proceed unattended"
                    .into(),
            );
        }
        if self.json || self.quiet {
            // Never ask blind: what would be written goes to stderr first.
            eprint!("{text}");
        }
        Ok(dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact_on(&dialoguer::console::Term::stderr())
            .unwrap_or(false))
    }

    fn progress(&mut self, spent: Duration) {
        if !self.json && !self.quiet && std::io::stderr().is_terminal() {
            eprint!(
                "\rwatching the kubelet settle: {:.1} / {:.0} s ",
                spent.as_secs_f64(),
                self.settle
            );
        }
    }
}

/// `--root` as an undo hint needs it (the default `/` does not).
fn root_flag(root: &std::path::Path) -> String {
    if root == std::path::Path::new("/") {
        String::new()
    } else {
        format!("--root {} ", root.display())
    }
}

fn run_apply(a: &ApplyArgs, name: Option<&str>, say: Say) -> i32 {
    let json = a.out.output == Output::Json;
    let mut ui = Terminal {
        yes: a.yes,
        json,
        color: color(&a.out),
        quiet: say.quiet,
        settle: a.restart.settle,
        shown: false,
    };
    let opts = flow::ApplyOptions {
        eval: eval(&a.eval),
        restart: a.restart.flow(),
        saved_plan: a.plan.clone(),
        backup_dir: a.backup_dir.clone(),
        lock_timeout: lock_timeout(),
    };
    let r = node_record(&a.node.root, name, "apply", |fs| {
        flow::apply(fs, &opts, &mut ui)
    });
    if !json && !say.quiet {
        print_apply(&r, &a.node.root, ui.shown, ui.color);
    }
    if let Some(line) = r.outcome.report.as_ref().and_then(|p| p.refusal_line()) {
        eprintln!(
            "kubelet-remediate: {line}; nothing is applied automatically, nothing was changed"
        );
    }
    finish(&r, json, say)
}

fn print_apply(r: &Record, root: &std::path::Path, shown: bool, color: bool) {
    let o = &r.outcome;
    if o.result == Verdict::Compliant {
        println!("nothing to do: makeIPTablesUtilChains is already true");
        return;
    }
    if let (Some(report), false) = (&o.report, shown) {
        print!("{}", report.to_text(color));
    }
    match (o.result, &o.applied, &o.restart) {
        (Verdict::Managed, ..) => {
            let platform = o.report.as_ref().map_or("", |p| p.platform.name);
            println!(
                "\nnot applied: {platform} manages these files; apply the platform-level fix above"
            );
        }
        (Verdict::RestartNeeded, None, Some(rs)) => println!(
            "\nthe files are already right; the running kubelet needs: {}",
            rs.command
        ),
        (_, Some(ap), rs) => {
            println!("\napplied: {}", ap.files.join(", "));
            println!(
                "backup:  {} (undo: kubelet-remediate rollback {}{})",
                ap.backup_dir,
                root_flag(root),
                ap.backup_id
            );
            match rs {
                Some(rs) if o.result == Verdict::Changed && rs.done => {
                    let res = rs.result.as_ref();
                    println!(
                        "restarted {}{}: pid {} runs with makeIPTablesUtilChains true",
                        rs.unit,
                        if res.is_some_and(|x| x.reloaded) {
                            " after daemon-reload"
                        } else {
                            ""
                        },
                        res.map_or(0, |x| x.main_pid)
                    )
                }
                Some(rs) if !rs.done => println!("now run: {}", rs.command),
                _ => {}
            }
        }
        (Verdict::Changed, None, Some(rs)) => println!(
            "\nrestarted {}: pid {} runs with makeIPTablesUtilChains true",
            rs.unit,
            rs.result.as_ref().map_or(0, |x| x.main_pid)
        ),
        _ => {}
    }
}

fn run_rollback(a: &RollbackArgs, name: Option<&str>, say: Say) -> i32 {
    let json = a.output == Output::Json;
    let which = match (&a.id, a.last, a.list) {
        (_, _, true) => flow::Which::List,
        (Some(id), _, _) => flow::Which::Id(id.clone()),
        (None, true, _) => flow::Which::Last,
        (None, false, false) => {
            eprintln!(
                "kubelet-remediate: error: name a backup set, or pass --last or --list; nothing was changed"
            );
            return 64;
        }
    };
    let mut ui = Terminal {
        yes: a.yes,
        json,
        color: false,
        quiet: say.quiet,
        settle: a.restart.settle,
        shown: false,
    };
    let opts = flow::RollbackOptions {
        which,
        force: a.force,
        backup_dir: a.backup_dir.clone(),
        restart: a.restart.flow(),
        lock_timeout: lock_timeout(),
    };
    let r = node_record(&a.node.root, name, "rollback", |fs| {
        flow::rollback(fs, &opts, &mut ui)
    });
    if !json && !say.quiet {
        print_rollback(&r, &a.backup_dir);
    }
    finish(&r, json, say)
}

fn print_rollback(r: &Record, backup_dir: &str) {
    let o = &r.outcome;
    if let Some(sets) = &o.backups {
        if sets.is_empty() {
            println!("no backups in {backup_dir}");
        }
        for m in sets {
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
    let Some(rb) = &o.rolled_back else {
        return;
    };
    for p in &rb.restored {
        println!("restored: {p}");
    }
    for p in &rb.unchanged {
        println!("already original: {p}");
    }
    match &o.restart {
        Some(rs) if rs.done && o.error.is_none() => println!(
            "restarted {}: pid {} runs with makeIPTablesUtilChains {}",
            rs.unit,
            rs.result.as_ref().map_or(0, |x| x.main_pid),
            rs.value
                .map_or("as the restored files say".into(), |v| v.to_string())
        ),
        Some(rs) if !rs.done && !rb.restored.is_empty() => println!("now run: {}", rs.command),
        _ => {}
    }
}

fn run_verify(a: &VerifyArgs, name: Option<&str>, say: Say) -> i32 {
    let json = a.output == Output::Json;
    let opts = flow::VerifyOptions {
        unit: a.unit.clone(),
        dbus_address: a.dbus_address.clone(),
        configz: a.configz.clone(),
    };
    let r = node_record(&a.node.root, name, "verify", |fs| flow::verify(fs, &opts));
    if !json && !say.quiet {
        for c in r.outcome.checks.iter().flatten() {
            let v = c.value.map_or("error".to_string(), |b| b.to_string());
            println!("{}: makeIPTablesUtilChains {v} ({})", c.source, c.detail);
        }
        if r.outcome.checks.is_some() {
            println!(
                "{}",
                match r.outcome.result {
                    Verdict::Compliant => "verified: makeIPTablesUtilChains is true",
                    Verdict::NonCompliant =>
                        "NOT COMPLIANT: makeIPTablesUtilChains is false in at least one source",
                    _ => "could not verify",
                }
            );
        }
    }
    finish(&r, json, say)
}

/// Ask on the terminal, or refuse without one (`scan --fix`).
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

/// `summarize`: 0 when every node is compliant (or was fixed), 2 when any is not, 1 when a
/// record cannot be read.
pub fn run_summarize(a: &SummarizeArgs) -> anyhow::Result<i32> {
    use crate::summary;
    let fleet = summary::read(&a.paths)?;
    print!(
        "{}",
        match a.output {
            SummaryOutput::Text => summary::text(&fleet),
            SummaryOutput::Junit => summary::junit(&fleet),
        }
    );
    Ok(if fleet.all_compliant() { 0 } else { 2 })
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
