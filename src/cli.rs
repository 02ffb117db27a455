//! The command line: parse, run the pipeline, print, and choose the exit status.

use crate::flow::{self, Preview, Stop, Ui};
use crate::outcome::{Location, Node, Outcome, Record, Verdict};
use crate::plan::{self, Strategy};
use crate::txn;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "kubelet-remediate",
    version = crate::outcome::LONG_VERSION,
    about = "Find and fix what keeps the kubelet from passing the CIS kubelet controls (by default makeIPTablesUtilChains, CIS 4.2.7 / 4.2.6 / 3.2.6; --control all: every 4.1 file and 4.2 setting)",
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The exit statuses of the node commands (plan, apply, rollback, verify), shown under `--help`
/// and in the README and the man pages.
pub const EXIT_STATUS: &str = "Exit status:
  0    compliant (nothing to change, or fixed and verified)
  1    error or refusal: unreadable or malformed input, settings the kubelet would refuse
       to start with (one line on stderr names file:line:column), a failed and rolled-back
       apply, a question answered no (or Ctrl-D)
  2    not compliant: changes proposed (plan), or a restart still needed
  3    the platform manages these files (OpenShift, Bottlerocket): apply the advice
  64   command-line usage error
  130  interrupted at a question (Ctrl-C): nothing was changed
With --output json, plan, apply, rollback and verify print one record (docs/report.schema.json)
whatever happens, errors included.";

/// `verify`'s exit statuses.
pub const VERIFY_EXIT_STATUS: &str = "Exit status:
  0    every source says makeIPTablesUtilChains is true
  1    a source could not be read (see the checks), or no running kubelet was found
  2    a source says false (the running kubelet, configz, or the files the next start reads)
  64   command-line usage error";

/// `scan`'s exit statuses.
pub const SCAN_EXIT_STATUS: &str = "Exit status:
  0    no finding (or none left after --fix)
  1    a path cannot be read
  2    findings remain (a false, or a skipped file that looks like it sets one; also when
       --fix was not confirmed)
  64   command-line usage error (a path that is neither a file nor a directory)
  130  interrupted at the --fix question (Ctrl-C): nothing was changed";

/// `summarize`'s exit statuses.
pub const SUMMARIZE_EXIT_STATUS: &str = "Exit status:
  0    every node is compliant (or was fixed)
  1    an input could not be read as records (listed), or no record was found
  2    a node is not compliant, or a node --expect-nodes names has no record
  64   command-line usage error";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute the effective value and propose the minimal fix as a unified diff (writes nothing).
    #[command(after_help = EXIT_STATUS)]
    Plan(PlanArgs),
    /// Apply the fix: show it, confirm, back up, write atomically, restart, verify.
    #[command(after_help = EXIT_STATUS)]
    Apply(ApplyArgs),
    /// Restore the files of one apply from its backups.
    #[command(after_help = EXIT_STATUS)]
    Rollback(RollbackArgs),
    /// Check the running kubelet (and, with --configz, its own merged configuration).
    #[command(after_help = VERIFY_EXIT_STATUS)]
    Verify(VerifyArgs),
    /// Find (and with --fix, fix) every false in a repository's manifests.
    #[command(after_help = SCAN_EXIT_STATUS)]
    Scan(ScanArgs),
    /// Read many nodes' JSON records and print the fleet's table, JSON or JUnit.
    #[command(after_help = SUMMARIZE_EXIT_STATUS)]
    Summarize(SummarizeArgs),
    /// List the controls: ids, CIS ids in a benchmark, what passes, the fix or why none.
    Controls(ControlsArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Write the man pages (roff): kubelet-remediate(8) and one per subcommand.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, clap::Args)]
pub struct ControlsArgs {
    /// The benchmark whose CIS ids are shown (kube-bench's names).
    #[arg(long, value_name = "NAME", default_value = crate::controls::DEFAULT_BENCHMARK,
          value_parser = clap::builder::PossibleValuesParser::new(crate::controls::BENCHMARKS))]
    pub benchmark: String,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write every page into DIR (kubelet-remediate.8, kubelet-remediate-plan.8, ...);
    /// without it, print kubelet-remediate(8) alone.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What the node commands' record and messages say (`plan`, `apply`, `rollback`, `verify`).
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The node's name in the JSON record (default: $NODE_NAME, $SYSTEM_UPGRADE_NODE_NAME, or
    /// the node's /etc/hostname inside --root).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Print only errors (the exit status and the JSON record still tell the result).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print the node, the record's timings and every warning on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryOutput {
    Text,
    Json,
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    /// Record files (one JSON object, JSON lines, or `kubectl logs` output) or directories of
    /// them; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: SummaryOutput,
    /// The nodes that must have a record, one name a line: any without one is `missing`
    /// and fails the gate (exit 2).
    #[arg(long, value_name = "FILE")]
    pub expect_nodes: Option<PathBuf>,
    /// Print nothing but unreadable inputs (the exit status is the gate).
    #[arg(short, long)]
    pub quiet: bool,
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
    #[arg(short = 'o', long, value_enum, default_value = "text")]
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
    #[command(flatten)]
    pub controls: ControlArgs,
}

/// Which CIS controls to judge, read in which benchmark.
#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// The controls: all, ids (`kubelet-remediate controls` lists them) or CIS ids of
    /// --benchmark, comma-separated (default: make-iptables-util-chains alone).
    #[arg(long, value_name = "LIST")]
    pub control: Option<String>,
    /// The benchmark whose CIS ids and rules are used (kube-bench's names).
    #[arg(long, value_name = "NAME", default_value = crate::controls::DEFAULT_BENCHMARK,
          value_parser = clap::builder::PossibleValuesParser::new(crate::controls::BENCHMARKS))]
    pub benchmark: String,
}

impl ControlArgs {
    /// The selection; `check` has already refused a bad one as a usage error.
    pub fn selection(&self) -> Result<crate::controls::Selection, String> {
        crate::controls::select(self.control.as_deref(), Some(&self.benchmark))
    }
}

/// Checks clap cannot make alone (a CIS id is read in the chosen benchmark): a usage error.
pub fn check(cli: &Cli) -> Result<(), clap::Error> {
    let controls = match &cli.command {
        Command::Plan(a) => &a.eval.controls,
        Command::Apply(a) => &a.eval.controls,
        Command::Verify(a) => &a.controls,
        _ => return Ok(()),
    };
    controls.selection().map(|_| ()).map_err(|why| {
        <Cli as clap::CommandFactory>::command().error(
            clap::error::ErrorKind::InvalidValue,
            format!("--control: {why}"),
        )
    })
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    /// Colour the text output (auto: when stdout is a terminal and NO_COLOR is unset).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

/// `plan --every`'s floor: an audit loop more often than this only loads the node.
pub const MIN_EVERY_SECS: u64 = 10;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub eval: EvalArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Also save the plan (every edit and the sha256 of each file) for `apply --plan`.
    #[arg(long = "out", value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Audit forever: plan again every SECS seconds (at least 10), one record per line with
    /// --output json, a timestamped separator before each text report (the audit DaemonSet's
    /// mode).
    #[arg(long, value_name = "SECS", conflicts_with = "save",
          value_parser = clap::value_parser!(u64).range(MIN_EVERY_SECS..))]
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
    #[command(flatten)]
    pub record: RecordArgs,
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub restart: RestartArgs,
    /// Apply exactly this saved plan (refused if any of its files changed since, or if it was
    /// made for another node or root).
    #[arg(long, value_name = "FILE", conflicts_with = "strategy")]
    pub plan: Option<PathBuf>,
    /// Where backup sets go, inside the root.
    #[arg(long, value_name = "DIR", default_value = txn::DEFAULT_BACKUP_DIR)]
    pub backup_dir: String,
}

/// How `apply` and `rollback` restart the kubelet after writing.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// Write the files only; restart the kubelet yourself (until a restart is seen, later runs
    /// report restart-needed).
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
    #[command(flatten)]
    pub record: RecordArgs,
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
    /// Do not read the restarted kubelet back from /proc.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub restart: RestartArgs,
    /// Where the backup sets are, inside the root (as given to apply).
    #[arg(long, value_name = "DIR", default_value = txn::DEFAULT_BACKUP_DIR)]
    pub backup_dir: String,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    /// The kubelet's systemd unit (default: kubelet.service, else a k3s/rke2 unit).
    #[arg(long, value_name = "NAME")]
    pub unit: Option<String>,
    /// Ask neither systemd nor /proc: check the files, and the kubelet through --configz.
    #[arg(long)]
    pub offline: bool,
    /// systemd's D-Bus address, for the kubelet's MainPID (default: the node's private socket,
    /// then its system bus; without systemd, a /proc scan).
    #[arg(long, value_name = "ADDR")]
    pub dbus_address: Option<String>,
    /// The kubelet's configz endpoint, e.g. http://127.0.0.1:8001/api/v1/nodes/NAME/proxy/configz
    #[arg(long, value_name = "URL")]
    pub configz: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub controls: ControlArgs,
}

/// Run a parsed command line; the result is the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Plan(a) => Ok(run_plan(a)),
        Command::Apply(a) => Ok(run_apply(a)),
        Command::Rollback(a) => Ok(run_rollback(a)),
        Command::Verify(a) => Ok(run_verify(a)),
        Command::Scan(a) => run_scan(a),
        Command::Summarize(a) => run_summarize(a),
        Command::Controls(a) => {
            print!("{}", controls_listing(&a.benchmark, a.output));
            Ok(0)
        }
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
        Command::Man(a) => {
            crate::manpage::run(<Cli as clap::CommandFactory>::command(), a.dir.as_deref())
                .map(|_| 0)
        }
    }
}

/// How much text to print (`-q`, `-v`).
#[derive(Debug, Clone, Copy)]
struct Say {
    quiet: bool,
    verbose: bool,
}

impl RecordArgs {
    fn say(&self) -> Say {
        Say {
            quiet: self.quiet,
            verbose: self.verbose,
        }
    }
}

/// One line for stderr, the same shape for every kind of message: `kubelet-remediate:
/// PATH:LINE:COL: KIND: message` when the input at fault is known, else `kubelet-remediate:
/// KIND: message`.
pub fn message_line(kind: &str, location: Option<&Location>, message: &str) -> String {
    match location {
        Some(l) => {
            let at = format!("{}:{}:{}", l.path, l.line, l.column);
            // Messages from the readers start with their own location: said once.
            let bare = message
                .strip_prefix(&at)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(message);
            format!("kubelet-remediate: {at}: {kind}: {bare}")
        }
        None => format!("kubelet-remediate: {kind}: {message}"),
    }
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
        controls: e.controls.selection().unwrap_or_default(),
    }
}

/// Open the root and run one node flow: the record, stamped with who, where and when.
fn node_record(
    root: &std::path::Path,
    name: Option<&str>,
    command: &'static str,
    body: impl FnOnce(&crate::root::NodeFs, &Node) -> Outcome,
) -> Record {
    let started = std::time::SystemTime::now();
    match flow::open_root(root) {
        Ok(fs) => {
            let node = Node::identify(name, &fs);
            let outcome = body(&fs, &node);
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
            eprintln!("{}", message_line("warning", None, w));
        }
    }
    if let Some(e) = &o.error {
        let kind = if o.result == Verdict::Refused {
            "refused"
        } else {
            "error"
        };
        let tail = if e.files_changed {
            ""
        } else {
            "; nothing was changed"
        };
        let text = if o.exit_code == flow::INTERRUPTED {
            "interrupted at the question"
        } else {
            &e.message
        };
        eprintln!("{}{tail}", message_line(kind, e.location.as_ref(), text));
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

fn run_plan(a: &PlanArgs) -> i32 {
    let json = a.out.output == Output::Json;
    let say = a.record.say();
    let once = || {
        node_record(
            &a.node.root,
            a.record.node_name.as_deref(),
            "plan",
            |fs, node| flow::plan(fs, &eval(&a.eval), a.save.as_deref(), node.name.as_deref()),
        )
    };
    let Some(secs) = a.every else {
        let r = once();
        print_report(&r, json, color(&a.out), say);
        return finish(&r, json, say);
    };
    // The audit DaemonSet's loop: one compact record per line, so `kubectl logs` is JSON lines;
    // in text, each report under a line saying when it was made.
    loop {
        let r = once();
        if json {
            println!("{}", serde_json::to_string(&r).expect("record serializes"));
        } else {
            if !say.quiet {
                println!(
                    "==== {} plan {} ({}, exit {}) ====",
                    r.finished_at,
                    r.node.root,
                    r.outcome.result.name(),
                    r.outcome.exit_code
                );
            }
            print_report(&r, false, color(&a.out), say);
        }
        std::thread::sleep(Duration::from_secs(secs.max(MIN_EVERY_SECS)));
    }
}

/// `plan`'s text report.
fn print_report(r: &Record, json: bool, color: bool, say: Say) {
    let Some(report) = &r.outcome.report else {
        return;
    };
    if !json && !say.quiet {
        print!("{}", report.to_text(color));
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
                    t += &crate::meta::header(&c.path, &c.meta);
                    if c.edits_content() {
                        t += &plan::unified(&c.path, &c.before, &c.after);
                    }
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
                    let mut what = Vec::new();
                    if !f.backup.is_empty() {
                        what.push("content".to_string());
                    }
                    let change = f.change();
                    if let Some(m) = change.mode {
                        what.push(format!("mode {}", m.from));
                    }
                    if let Some(o) = change.owner {
                        what.push(format!("owner {}", o.from));
                    }
                    t += &format!("  restore {} ({})\n", f.path, what.join(", "));
                }
                t
            }
        }
    }
}

impl Ui for Terminal {
    fn confirm(&mut self, question: &str, p: Preview<'_>) -> Result<bool, Stop> {
        let text = self.preview(&p);
        if !self.json && !self.quiet {
            print!("{text}");
            self.shown = true;
        }
        if self.yes {
            return Ok(true);
        }
        if std::io::stdin().is_terminal() && (self.json || self.quiet) {
            // Never ask blind: what would be written goes to stderr first.
            eprint!("{text}");
        }
        match ask(question).map_err(|why| Stop::Before(why.into()))? {
            Answer::Yes => Ok(true),
            Answer::No => Ok(false),
            Answer::Interrupted => Err(Stop::Interrupted),
        }
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

const NO_TERMINAL: &str = "standard input is not a terminal, so there is no one to confirm: pass --yes to proceed unattended";

/// What the person at the terminal said.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    Interrupted,
}

/// Ask a yes/no question on the terminal, default no. `y` is yes; `n`, Enter, Escape, Ctrl-D
/// and the end of input are no; Ctrl-C is `Interrupted`. The terminal is put in raw mode before
/// the question is shown, so a Ctrl-C typed at it is a key, never a SIGINT that kills the run
/// half-way through asking; the keys are read with dialoguer's console; the cursor is never
/// hidden, so nothing is left to restore however the question ends. (dialoguer's own Confirm
/// hid the cursor and, on Ctrl-C, raised SIGINT with it hidden; it also ignored Ctrl-D.)
/// Without a terminal on standard input there is no one to ask: `Err` says so (pass --yes).
fn ask(question: &str) -> Result<Answer, &'static str> {
    use dialoguer::console::{Key, Term};
    if !std::io::stdin().is_terminal() {
        return Err(NO_TERMINAL);
    }
    let term = Term::stderr();
    let raw = RawTerminal::enter();
    let _ = term.write_str(&format!("{question} [y/N] "));
    let answer = loop {
        match term.read_key_raw() {
            Ok(Key::Char('y' | 'Y')) => break Answer::Yes,
            Ok(Key::Char('n' | 'N' | '\u{4}') | Key::Enter | Key::Escape) => break Answer::No,
            Ok(Key::CtrlC) => break Answer::Interrupted,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break Answer::Interrupted,
            Err(_) | Ok(Key::Unknown) => break Answer::No, // end of input, or no terminal
            Ok(_) => continue,
        }
    };
    drop(raw);
    let _ = term.write_line(match answer {
        Answer::Yes => "yes",
        Answer::No => "no",
        Answer::Interrupted => "^C",
    });
    Ok(answer)
}

/// Standard input's terminal in raw mode (no signals from keys, no echo, no line editing; output
/// processing kept) until dropped, when its settings are put back.
struct RawTerminal(Option<libc::termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own; failure leaves it as it was.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return RawTerminal(None);
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            raw.c_oflag = saved.c_oflag;
            if libc::tcsetattr(0, libc::TCSADRAIN, &raw) != 0 {
                return RawTerminal(None);
            }
            RawTerminal(Some(saved))
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restoring the settings read in enter().
            unsafe { libc::tcsetattr(0, libc::TCSADRAIN, saved) };
        }
    }
}

fn run_apply(a: &ApplyArgs) -> i32 {
    let json = a.out.output == Output::Json;
    let say = a.record.say();
    let mut ui = Terminal {
        yes: a.yes,
        json,
        color: color(&a.out),
        quiet: say.quiet,
        settle: a.restart.settle,
        shown: false,
    };
    let r = node_record(
        &a.node.root,
        a.record.node_name.as_deref(),
        "apply",
        |fs, node| {
            let opts = flow::ApplyOptions {
                eval: eval(&a.eval),
                restart: a.restart.flow(),
                saved_plan: a.plan.clone(),
                node: node.name.clone(),
                backup_dir: a.backup_dir.clone(),
                lock_timeout: lock_timeout(),
            };
            flow::apply(fs, &opts, &mut ui)
        },
    );
    if !json && !say.quiet {
        print_apply(&r, &a.node.root, &a.backup_dir, ui.shown, ui.color);
    }
    finish(&r, json, say)
}

fn print_apply(r: &Record, root: &std::path::Path, backup_dir: &str, shown: bool, color: bool) {
    let o = &r.outcome;
    if o.result == Verdict::Compliant {
        println!("nothing to do: makeIPTablesUtilChains is already true");
        return;
    }
    // Before a write the report is what there is to show; after a successful one it describes
    // the node as it was, so only what changed is shown.
    if let (Some(report), false, false) = (&o.report, shown, o.applied.is_some()) {
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
            if !shown && let Some(report) = &o.report {
                for c in &report.changes {
                    print!("{}", c.diff);
                }
            }
            println!("\napplied: {}", ap.files.join(", "));
            println!(
                "backup:  {} (undo: {})",
                ap.backup_dir,
                flow::rollback_command(root, backup_dir, &ap.backup_id)
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
                    );
                    println!("verdict: COMPLIANT (files and the restarted kubelet)");
                }
                Some(rs) if !rs.done && o.result == Verdict::RestartNeeded => {
                    println!("verdict: files COMPLIANT; the running kubelet needs a restart");
                    println!("now run: {}", rs.command);
                }
                Some(rs) if !rs.done && o.result == Verdict::Changed => {
                    println!("verdict: COMPLIANT (files; no kubelet is running)");
                    println!("now run: {}", rs.command);
                }
                _ => {}
            }
        }
        (Verdict::Changed, None, Some(rs)) => {
            println!(
                "\nrestarted {}: pid {} runs with makeIPTablesUtilChains true",
                rs.unit,
                rs.result.as_ref().map_or(0, |x| x.main_pid)
            );
            println!("verdict: COMPLIANT (files and the restarted kubelet)");
        }
        _ => {}
    }
}

fn run_rollback(a: &RollbackArgs) -> i32 {
    let json = a.output == Output::Json;
    let say = a.record.say();
    let which = match (&a.id, a.last, a.list) {
        (_, _, true) => flow::Which::List,
        (Some(id), _, _) => flow::Which::Id(id.clone()),
        (None, true, _) => flow::Which::Last,
        (None, false, false) => {
            eprintln!(
                "{}",
                message_line(
                    "error",
                    None,
                    "name a backup set, or pass --last or --list; nothing was changed"
                )
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
        offline: a.offline,
    };
    let r = node_record(
        &a.node.root,
        a.record.node_name.as_deref(),
        "rollback",
        |fs, _| flow::rollback(fs, &opts, &mut ui),
    );
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

fn run_verify(a: &VerifyArgs) -> i32 {
    let json = a.output == Output::Json;
    let say = a.record.say();
    let opts = flow::VerifyOptions {
        unit: a.unit.clone(),
        offline: a.offline,
        dbus_address: a.dbus_address.clone(),
        configz: a.configz.clone(),
        controls: a.controls.selection().unwrap_or_default(),
    };
    let r = node_record(
        &a.node.root,
        a.record.node_name.as_deref(),
        "verify",
        |fs, _| flow::verify(fs, &opts),
    );
    if !json && !say.quiet {
        for c in r.outcome.checks.iter().flatten() {
            match c.control {
                Some(id) => {
                    let v = c.value.map_or("error", |b| if b { "pass" } else { "FAIL" });
                    println!("{}: {id} {v} ({})", c.source, c.detail);
                }
                None => {
                    let v = c.value.map_or("error".to_string(), |b| b.to_string());
                    println!("{}: makeIPTablesUtilChains {v} ({})", c.source, c.detail);
                }
            }
        }
        if r.outcome.checks.is_some() {
            println!(
                "{}",
                match (r.outcome.result, a.controls.control.is_some()) {
                    (Verdict::Compliant, false) => "verified: makeIPTablesUtilChains is true",
                    (Verdict::NonCompliant, false) =>
                        "NOT COMPLIANT: makeIPTablesUtilChains is false in at least one source",
                    (Verdict::Compliant, true) => "verified: every selected control passes",
                    (Verdict::NonCompliant, true) =>
                        "NOT COMPLIANT: a selected control fails in at least one source",
                    _ => "could not verify",
                }
            );
        }
    }
    finish(&r, json, say)
}

/// `summarize`: the gate is `Fleet::exit_code` (0 all compliant, 2 a node is not or is
/// missing, 1 an input could not be read).
pub fn run_summarize(a: &SummarizeArgs) -> anyhow::Result<i32> {
    use crate::summary;
    use anyhow::Context;
    let mut fleet = summary::read(&a.paths)?;
    if let Some(p) = &a.expect_nodes {
        let names = std::fs::read_to_string(p)
            .with_context(|| format!("--expect-nodes {}", p.display()))?;
        fleet.expect(&names);
    }
    for u in &fleet.unreadable {
        let location = u.line.map(|line| Location {
            path: u.path.clone(),
            line,
            column: 1,
        });
        let text = match u.line {
            Some(_) => u.reason.clone(),
            None => format!("{}: {}", u.path, u.reason),
        };
        eprintln!("{}", message_line("error", location.as_ref(), &text));
    }
    if fleet.nodes.is_empty() && fleet.unreadable.is_empty() && fleet.missing.is_empty() {
        eprintln!("{}", message_line("error", None, "no records found"));
    }
    if !a.quiet {
        print!(
            "{}",
            match a.output {
                SummaryOutput::Text => summary::text(&fleet),
                SummaryOutput::Json => summary::json(&fleet),
                SummaryOutput::Junit => summary::junit(&fleet),
            }
        );
    }
    Ok(fleet.exit_code())
}

/// `scan`: 0 when nothing (or nothing after --fix) is false, 2 when findings remain.
pub fn run_scan(a: &ScanArgs) -> anyhow::Result<i32> {
    use crate::scan::{self, output};
    let mut found = match scan::scan(&a.paths) {
        Err(e @ scan::ScanError::NotScannable(_)) => {
            eprintln!("{}", message_line("error", None, &e.to_string()));
            return Ok(64);
        }
        r => r?,
    };
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
        let yes = a.yes || {
            match ask("Rewrite these files in place?").map_err(anyhow::Error::msg)? {
                Answer::Yes => true,
                Answer::No => false,
                Answer::Interrupted => {
                    eprintln!(
                        "{}",
                        message_line("error", None, "interrupted; nothing was changed")
                    );
                    return Ok(flow::INTERRUPTED);
                }
            }
        };
        if !yes {
            eprintln!(
                "{}",
                message_line("error", None, "not fixed; nothing was changed")
            );
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
        if a.output != ScanOutput::Text || found.blocks() {
            print!("{}", render(&found));
        }
    } else {
        print!("{}", render(&found));
    }
    Ok(if found.blocks() { 2 } else { 0 })
}

/// `kubelet-remediate controls`: the table, as text or JSON.
pub fn controls_listing(benchmark: &str, output: Output) -> String {
    let rows = crate::controls::list(benchmark);
    match output {
        Output::Json => {
            let doc = serde_json::json!({"benchmark": benchmark, "controls": rows});
            serde_json::to_string_pretty(&doc).expect("the table serializes") + "\n"
        }
        Output::Text => {
            let mut o = format!(
                "controls ({benchmark}; `-` where it has no such control: judged by the cis-1.12 rule)\n\n"
            );
            for r in &rows {
                let auto = crate::controls::automated_word(r.automated).unwrap_or("-");
                o += &format!(
                    "{:<7} {:<34} {:<9} {}\n        {}; fix: {}\n",
                    r.cis.unwrap_or("-"),
                    r.id,
                    auto,
                    r.title,
                    match r.files {
                        Some(f) => format!("files: {f}"),
                        None => format!("settings: {}", r.settings.join(", ")),
                    },
                    r.fix
                );
            }
            o
        }
    }
}
