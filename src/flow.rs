//! The node commands as library flows with a typed outcome: plan, apply (lock, plan, confirm,
//! connect, write, restart, verify, roll back), rollback and verify. The CLI, the container
//! entrypoint and the tests all run these; only the prompts and the rendering differ.

use crate::configz;
use crate::controls::{self, Selection};
use crate::effective;
use crate::error::Error;
use crate::evidence::{self, Evidence, Options};
use crate::outcome::{Check, Failure, Location, Outcome, RestartDone, Verdict};
use crate::plan::{self, Plan, Strategy};
use crate::report::{Report, restart_command};
use crate::restart::{self, Restarted};
use crate::root::NodeFs;
use crate::saved::{SavedPlan, sha256_hex};
use crate::state::Pending;
use crate::systemd::dbus::Systemd;
use crate::txn::{self, FileChange, Manifest};
use crate::verdict::{self, Outcome as Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a flow stopped.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// Reading or writing the node failed; nothing was changed.
    #[error(transparent)]
    Node(#[from] Error),
    /// Anything else before a write (no systemd, not confirmed, no kubelet); nothing changed.
    #[error("{0}")]
    Before(String),
    /// After files were written: `restored` says whether the backups were put back and the
    /// kubelet came back with its old settings.
    #[error("{message}")]
    After { message: String, restored: bool },
    /// Interrupted at a question (Ctrl-C): nothing was changed.
    #[error("interrupted")]
    Interrupted,
}

/// The exit status of an interrupted run (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

impl Stop {
    fn into_failure(self) -> (Verdict, Failure) {
        let (verdict, files_changed) = match &self {
            Stop::After { restored: true, .. } => (Verdict::RolledBack, true),
            Stop::After { .. } => (Verdict::Error, true),
            _ => (Verdict::Error, false),
        };
        let location = match &self {
            Stop::Node(Error::Parse {
                path, line, column, ..
            }) => Some(Location {
                path: path.clone(),
                line: *line,
                column: *column,
            }),
            _ => None,
        };
        let failure = Failure {
            message: self.to_string(),
            files_changed,
            location,
        };
        (verdict, failure)
    }
}

impl Outcome {
    /// The outcome of a flow that stopped.
    pub fn failed(stop: Stop) -> Outcome {
        let mut o = Outcome::new(Verdict::Error, 1);
        o.fail(stop);
        o
    }

    fn fail(&mut self, stop: Stop) {
        let code = if matches!(stop, Stop::Interrupted) {
            INTERRUPTED
        } else {
            1
        };
        let (verdict, failure) = stop.into_failure();
        self.result = verdict;
        self.exit_code = code;
        self.error = Some(failure);
    }

    fn set(&mut self, result: Verdict, exit_code: i32) {
        self.result = result;
        self.exit_code = exit_code;
    }
}

/// The flows ask and show through this; `Unattended` says yes without showing anything.
pub trait Ui {
    /// Show what is about to happen and ask. `Err`: no one can answer (`Stop::Before`, no
    /// terminal) or the question was interrupted (`Stop::Interrupted`).
    fn confirm(&mut self, question: &str, preview: Preview<'_>) -> Result<bool, Stop>;
    /// The restarted unit has been watched this long (of `--settle`).
    fn progress(&mut self, _spent: Duration) {}
}

/// What a confirmation is about.
pub enum Preview<'a> {
    /// The report and its proposed changes; from `apply --plan`, the saved plan's changes
    /// (which are what gets written) instead of the report's.
    Apply {
        report: &'a Report,
        saved: Option<(&'a Path, &'a [FileChange])>,
    },
    /// The files are right; only the running kubelet is not.
    Restart { report: &'a Report, unit: &'a str },
    /// The backup set to restore.
    Rollback { set: &'a Manifest },
}

/// `--yes`: no questions, nothing shown.
pub struct Unattended;

impl Ui for Unattended {
    fn confirm(&mut self, _: &str, _: Preview<'_>) -> Result<bool, Stop> {
        Ok(true)
    }
}

/// How to evaluate the node.
#[derive(Debug, Clone, Default)]
pub struct Eval {
    pub unit: Option<String>,
    pub offline: bool,
    pub strategy: Option<Strategy>,
    /// The controls to judge (`--control`, `--benchmark`); by default the first one alone.
    pub controls: Selection,
}

impl Eval {
    fn options(&self) -> Options {
        Options {
            unit: self.unit.clone(),
            offline: self.offline,
        }
    }
}

/// How to reach systemd and how long the restarted kubelet must stay up.
#[derive(Debug, Clone)]
pub struct Restart {
    pub dbus_address: Option<String>,
    pub settle: Duration,
    pub job_timeout: Duration,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            dbus_address: None,
            settle: Duration::from_secs(10),
            job_timeout: Duration::from_secs(120),
        }
    }
}

impl Restart {
    fn connect(&self, fs: &NodeFs) -> Result<Systemd, Stop> {
        Systemd::connect(&restart::candidates(
            fs.root(),
            self.dbus_address.as_deref(),
        ))
        .map_err(|e| Stop::Before(e.to_string()))
    }

    fn options(&self) -> restart::Options {
        restart::Options {
            settle: self.settle,
            job_timeout: self.job_timeout,
        }
    }
}

/// The node's root, checked: it must be a directory.
pub fn open_root(root: &Path) -> Result<NodeFs, Stop> {
    let meta = std::fs::metadata(root)
        .map_err(|e| Stop::Before(format!("--root {}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(Stop::Before(format!(
            "--root {}: not a directory",
            root.display()
        )));
    }
    Ok(NodeFs::new(root))
}

/// Read, judge and plan.
pub fn evaluate(fs: &NodeFs, e: &Eval) -> Result<(Evidence, Report, Plan), Error> {
    let opts = e.options();
    let ev = evidence::gather(fs, &opts)?;
    let v = verdict::judge(&ev);
    // Only a selected control is fixed.
    let p = if e.controls.has(controls::DEFAULT_CONTROL) {
        plan::plan(fs, &opts, &ev, &v, e.strategy)?
    } else {
        Plan::default()
    };
    let mut j = effective::judge(&ev);
    // With --control, a client CA file the kubelet cannot load is a refusal like any other
    // (without it, the first control is judged exactly as before controls existed).
    if !e.controls.default && j.refused.is_none() {
        j.refused = effective::client_ca_refusal(fs, &j);
    }
    let running = ev
        .running
        .as_ref()
        .map(|r| effective::judge_running(&ev, r));
    let sel = &e.controls;
    let facts = crate::files::gather_for(fs, &ev, &j, &sel.ids);
    let first = controls::judge(&ev, &j, running.as_ref(), &facts, sel, &|id| fixes(&p, id));
    // The other controls' automatic fixes join the first one's in one proved plan; the file
    // controls' chmods and chowns join the changes of the files they touch.
    let p = crate::fix::extend(fs, &opts, &ev, &j, sel, &first, p);
    // Like the settings' fixes, nothing while the kubelet would refuse its settings: that is
    // fixed first.
    let p = if j.refused.is_none() {
        crate::files::extend(fs, &ev, &facts, &first, sel, p)
    } else {
        p
    };
    let mut judged = controls::judge(&ev, &j, running.as_ref(), &facts, sel, &|id| fixes(&p, id));
    for (id, why) in &p.held {
        if let Some(c) = judged
            .iter_mut()
            .find(|c| c.id == *id && c.status == controls::Status::Fail)
        {
            c.advice.insert(0, why.clone());
        }
    }
    let mut report = Report::new(&ev, &v, &p, &e.controls, judged);
    if report.refused.is_none() {
        report.refused = j.refused.clone();
    }
    if !e.controls.default {
        report
            .notes
            .extend(controls::kube_bench_config_note(fs, &ev));
    }
    Ok((ev, report, p))
}

/// The same controls under the same benchmark (however they were named).
fn same_controls(a: &Selection, b: &Selection) -> bool {
    a.ids == b.ids && a.benchmark == b.benchmark && a.explicit == b.explicit
}

/// Whether the plan's changes fix control `id`.
fn fixes(p: &Plan, id: &str) -> bool {
    p.changes.iter().any(|c| c.controls.contains(&id))
}

/// Runs `body`, then stamps the total time; a stop becomes the outcome's error.
fn run(body: impl FnOnce(&mut Outcome) -> Result<(), Stop>) -> Outcome {
    let t = Instant::now();
    let mut out = Outcome::new(Verdict::Error, 1);
    if let Err(stop) = body(&mut out) {
        out.fail(stop);
    }
    out.timings.total_ms = t.elapsed().as_millis();
    out
}

/// The result a report stands for when nothing is written.
fn judged(report: &Report, nothing_to_write: bool) -> (Verdict, i32) {
    if report.refused.is_some() {
        (Verdict::Refused, 1)
    } else if report.compliant {
        (Verdict::Compliant, 0)
    } else if report.platform.managed {
        (Verdict::Managed, 3)
    } else if nothing_to_write && report.restart.needed {
        (Verdict::RestartNeeded, 2)
    } else {
        // A fix is proposed, or what fails needs a person (the controls' advice says what).
        (Verdict::NonCompliant, 2)
    }
}

/// `plan`: evaluate, optionally save the plan for `apply --plan` (made for `node`), write
/// nothing on the node.
pub fn plan(fs: &NodeFs, e: &Eval, save: Option<&Path>, node: Option<&str>) -> Outcome {
    run(|out| {
        let t = Instant::now();
        let (ev, report, p) = evaluate(fs, e)?;
        out.timings.evidence_ms = Some(t.elapsed().as_millis());
        if let Some(path) = save {
            let saved =
                SavedPlan::from_plan(&ev.service.layout.name, &p, node, fs.root(), &e.controls);
            let text = serde_json::to_string_pretty(&saved).expect("plan serializes") + "\n";
            fs_err::write(path, text).map_err(|e| Stop::Before(e.to_string()))?;
        }
        let (result, code) = judged(&report, p.changes.is_empty());
        out.set(result, code);
        out.error = refusal(&report);
        out.report = Some(report);
        Ok(())
    })
}

/// What `apply` needs besides the node.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub eval: Eval,
    /// `None`: write the files only (`--no-restart`).
    pub restart: Option<Restart>,
    /// Apply exactly this saved plan.
    pub saved_plan: Option<PathBuf>,
    /// This node's name, checked against the saved plan's.
    pub node: Option<String>,
    pub backup_dir: String,
    pub lock_timeout: Duration,
}

/// The report an apply stored before anything could fail.
fn report(out: &Outcome) -> &Report {
    out.report.as_ref().expect("stored first")
}

/// `apply`: lock, recover an interrupted set, plan, confirm, connect, write, restart, verify,
/// and roll back when the restarted kubelet does not come up compliant.
pub fn apply(fs: &NodeFs, o: &ApplyOptions, ui: &mut dyn Ui) -> Outcome {
    run(|out| apply_into(fs, o, ui, out))
}

fn apply_into(
    fs: &NodeFs,
    o: &ApplyOptions,
    ui: &mut dyn Ui,
    out: &mut Outcome,
) -> Result<(), Stop> {
    // One apply or rollback at a time, and the plan is made under the lock, so a second run
    // sees the first one's result instead of applying it twice.
    // A saved plan is checked before anything else: a file that is not one, or one made for
    // another node or root, is refused before the node is even read.
    let saved = match &o.saved_plan {
        Some(path) => Some(read_saved(fs, path, o.node.as_deref())?),
        None => None,
    };
    let _lock = txn::lock(fs, o.lock_timeout)?;
    // A set a killed run left unfinished is rolled back first, so this plan starts from the
    // original files.
    out.warnings.extend(txn::recover(fs, &o.backup_dir)?);
    let t = Instant::now();
    // A saved plan is judged and verified with the controls it was made for.
    let eval = match &saved {
        Some((shown, s)) => {
            let made = s
                .selection()
                .map_err(|why| Stop::Before(format!("--plan {shown}: {why}")))?;
            match made {
                Some(made) if o.eval.controls.default || same_controls(&made, &o.eval.controls) => {
                    Eval {
                        controls: made,
                        ..o.eval.clone()
                    }
                }
                None if o.eval.controls.default => o.eval.clone(),
                _ => {
                    return Err(Stop::Before(format!(
                        "--plan {shown} was made with {}: apply it with the same --control and --benchmark, or with neither",
                        match &s.controls {
                            Some(c) => format!(
                                "--control {} --benchmark {}",
                                c.join(","),
                                s.benchmark.as_deref().unwrap_or("")
                            ),
                            None => "no --control".into(),
                        }
                    )));
                }
            }
        }
        None => o.eval.clone(),
    };
    let (ev, fresh, p) = evaluate(fs, &eval)?;
    out.timings.evidence_ms = Some(t.elapsed().as_millis());
    let unit = ev.service.layout.name.clone();
    let check_process = !ev.platform.kubelet_in_process();
    // The controls the plan fixes: the written files and the restarted kubelet must pass each.
    let fixed: Vec<&'static str> = p
        .changes
        .iter()
        .flat_map(|c| c.controls.iter().copied())
        .collect();
    let sel = &eval.controls;
    let check_new = |pid: u32| -> Result<(), String> {
        let r = restart::read_process(fs, pid)?;
        if sel.has(controls::DEFAULT_CONTROL) && !restart::process_verdict(&r)? {
            return Err(format!(
                "the new kubelet (pid {pid}) still runs with makeIPTablesUtilChains false"
            ));
        }
        let j = effective::judge_running(&ev, &r);
        passes(&j, None, &fixed, sel)
            .map_err(|why| format!("the new kubelet (pid {pid}) {why}"))?;
        // With --control the change can touch authentication or TLS: a kubelet that stays
        // active but does not serve is not a success.
        match (&o.restart, sel.default) {
            (Some(r), false) => {
                healthz(&j, r.settle).map_err(|why| format!("the new kubelet (pid {pid}) {why}"))
            }
            _ => Ok(()),
        }
    };
    let process_check: Option<&dyn Fn(u32) -> Result<(), String>> =
        check_process.then_some(&check_new);
    if ev.pending.is_some() && ev.restart_owed().is_none() {
        // A kubelet started after the marked write: the marker has done its job.
        settle_marker(fs, None, out);
    }
    out.report = Some(fresh);

    let (changes, daemon_reload) = match &saved {
        Some((shown, saved)) => saved_changes(fs, shown, saved)?,
        None => (
            p.changes
                .iter()
                .map(|c| FileChange {
                    path: c.path.clone(),
                    before: c.before.clone(),
                    after: c.after.clone(),
                    meta: c.meta.clone(),
                })
                .collect(),
            p.daemon_reload,
        ),
    };
    let (result, code) = judged(report(out), changes.is_empty());
    // Nothing to write and no restart owed: what fails needs a person (NonCompliant).
    if matches!(
        result,
        Verdict::Refused | Verdict::Managed | Verdict::Compliant
    ) || (changes.is_empty() && result == Verdict::NonCompliant)
    {
        out.set(result, code);
        out.error = refusal(report(out));
        return Ok(());
    }

    let mut restart_done = RestartDone::pending(&unit, daemon_reload, None);
    if changes.is_empty() {
        // The files are right but the running kubelet is not: only a restart is needed.
        let Some(r) = &o.restart else {
            out.restart = Some(restart_done);
            out.set(Verdict::RestartNeeded, 2);
            return Ok(());
        };
        let sd = r.connect(fs)?;
        restart_done.address = Some(sd.address.clone());
        if !ui.confirm(
            &format!("Restart {unit}?"),
            Preview::Restart {
                report: report(out),
                unit: &unit,
            },
        )? {
            return Err(Stop::Before("not restarted".into()));
        }
        let done = restart_timed(&sd, r, &mut restart_done, false, process_check, ui, out)
            .map_err(|why| Stop::Before(format!("{why}; see journalctl -u {unit}")))?;
        restart_done.value = check_process.then_some(true);
        restart_done.result = Some(done);
        out.restart = Some(restart_done);
        out.set(Verdict::Changed, 0);
        settle_marker(fs, None, out);
        return Ok(());
    }

    // A mode or owner change needs no restart and no daemon-reload (systemd and the kubelet
    // read the same bytes): only content, or a kubelet already behind its files, restarts.
    let restart_due = changes.iter().any(FileChange::edits_content) || report(out).restart.needed;
    // Reach systemd before writing anything: no connection, no change.
    let sd = match &o.restart {
        Some(r) if restart_due => Some(r.connect(fs)?),
        _ => None,
    };
    restart_done.address = sd.as_ref().map(|s| s.address.clone());
    let saved = o.saved_plan.as_deref().map(|p| (p, &changes[..]));
    if !ui.confirm(
        "Apply these changes?",
        Preview::Apply {
            report: report(out),
            saved,
        },
    )? {
        return Err(Stop::Before("not applied".into()));
    }
    let opts = Options {
        offline: true,
        ..eval.options()
    };
    // Writes change contents, never which unit files exist: reuse the layout, as the proof does.
    let layout = ev.service.layout.clone();
    let verify = || -> Result<(), String> {
        let ev =
            evidence::gather_with_layout(fs, &opts, layout.clone()).map_err(|e| e.to_string())?;
        if sel.has(controls::DEFAULT_CONTROL) {
            match verdict::judge(&ev).outcome {
                Value::Value(true, _) => {}
                Value::Value(false, _) => {
                    return Err("makeIPTablesUtilChains still evaluates to false".into());
                }
                Value::Refused(why) => return Err(why),
            }
        }
        let j = effective::judge(&ev);
        let facts = crate::files::gather_for(fs, &ev, &j, &fixed);
        passes(&j, Some(&facts), &fixed, sel).map_err(|why| format!("the written files: {why}"))
    };
    let t = Instant::now();
    let applied = txn::apply(fs, &changes, (&unit, daemon_reload), &o.backup_dir, &verify)?;
    out.timings.write_ms = Some(t.elapsed().as_millis());
    out.warnings.extend(applied.warnings.iter().cloned());
    out.applied = Some(applied.clone());

    if !restart_due {
        let (result, code) = written(report(out));
        out.set(result, code);
        return Ok(());
    }
    let (Some(sd), Some(r)) = (&sd, &o.restart) else {
        // Written, not restarted: with no kubelet running (read from /proc), the next start
        // uses the new files; otherwise the running one still has the old settings.
        let idle = !eval.offline && ev.running.is_none();
        out.restart = Some(restart_done);
        if idle {
            out.set(Verdict::Changed, 0);
        } else {
            out.set(Verdict::RestartNeeded, 2);
            let files = applied.files.clone();
            let owed = Pending::new("apply", &unit, daemon_reload, files);
            settle_marker(fs, Some(&owed), out);
        }
        return Ok(());
    };
    match restart_timed(
        sd,
        r,
        &mut restart_done,
        daemon_reload,
        process_check,
        ui,
        out,
    ) {
        Ok(done) => {
            restart_done.value = check_process.then_some(true);
            restart_done.result = Some(done);
            out.restart = Some(restart_done);
            let (result, code) = written(report(out));
            out.set(result, code);
            settle_marker(fs, None, out);
            Ok(())
        }
        Err(why) => {
            out.restart = Some(restart_done);
            Err(roll_back_after_failed_restart(
                fs,
                sd,
                o,
                r,
                &unit,
                daemon_reload,
                &applied,
                &why,
                out,
            ))
        }
    }
}

/// Wait up to `window` for the kubelet's own health endpoint (its effective
/// `healthzBindAddress`:`healthzPort`, `/healthz`) to answer `ok`; a port of 0 turns it off.
fn healthz(j: &effective::Judgement, window: Duration) -> Result<(), String> {
    let port = match j.value("healthz-port") {
        Some(crate::settings::Value::Int(0)) => return Ok(()),
        Some(crate::settings::Value::Int(p)) => *p,
        _ => return Ok(()),
    };
    let host = match j.value("healthz-bind-address") {
        // Listening on every address: ask on loopback.
        Some(crate::settings::Value::Str(a)) if a != "0.0.0.0" && a != "::" && !a.is_empty() => {
            if a.contains(':') {
                format!("[{a}]")
            } else {
                a.clone()
            }
        }
        _ => "127.0.0.1".into(),
    };
    let url = format!("http://{host}:{port}/healthz");
    let deadline = Instant::now() + window;
    let mut last;
    loop {
        match configz::fetch(&url, Duration::from_secs(2)) {
            Ok(body) if body.trim() == "ok" => return Ok(()),
            Ok(body) => last = format!("{url} answered {:?}", body.trim()),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!("is not healthy: {last}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every control in `ids` passes on these values (the kubelet starting at all); the 4.1
/// controls on `facts`, and only when given (a process has no file modes).
fn passes(
    j: &effective::Judgement,
    facts: Option<&crate::files::Facts>,
    ids: &[&'static str],
    sel: &Selection,
) -> Result<(), String> {
    if let Some(why) = &j.refused {
        return Err(format!("would be refused: {why}"));
    }
    let none = crate::files::Facts::default();
    for id in ids {
        let Some(c) = controls::get(id) else { continue };
        let facts = match (c.file.is_some(), facts) {
            (true, None) => continue,
            (_, f) => f.unwrap_or(&none),
        };
        if !controls::evaluate(c, j, facts, sel.benchmark).0 {
            return Err(format!("still fails {id}"));
        }
    }
    Ok(())
}

/// The result of an apply whose changes are written (and the kubelet restarted, when due):
/// selected controls the changes do not fix still fail, and need a person.
fn written(report: &Report) -> (Verdict, i32) {
    let needs_a_person = report
        .controls
        .iter()
        .any(|c| c.status != controls::Status::Pass && !c.fixable);
    if needs_a_person {
        (Verdict::NonCompliant, 2)
    } else {
        (Verdict::Changed, 0)
    }
}

/// Write the pending-restart marker (`Some`: files changed, no restart) or remove it (a restart
/// was made or seen). After the commit point: a failure is a warning, never an error.
fn settle_marker(fs: &NodeFs, owed: Option<&Pending>, out: &mut Outcome) {
    let r = match owed {
        Some(p) => txn::mark_pending(fs, p),
        None => txn::clear_pending(fs),
    };
    if let Err(e) = r {
        out.warnings
            .push(format!("the pending-restart marker: {e}"));
    }
}

/// A refusal as the record's `error`, located at the setting the kubelet refuses.
fn refusal(report: &Report) -> Option<Failure> {
    let why = report.refused.as_ref()?;
    Some(Failure {
        message: why.clone(),
        files_changed: false,
        location: report.refused_at().map(|f| Location {
            path: f.path.clone(),
            line: f.line,
            column: f.column,
        }),
    })
}

impl RestartDone {
    /// Not restarted yet: the unit, the command that restarts it by hand, the address that
    /// answered (when one was reached).
    fn pending(unit: &str, daemon_reload: bool, sd: Option<&Systemd>) -> RestartDone {
        RestartDone {
            unit: unit.to_string(),
            daemon_reload,
            command: restart_command(unit, daemon_reload),
            done: false,
            address: sd.map(|s| s.address.clone()),
            result: None,
            value: None,
        }
    }
}

/// Restart `rd`'s unit over `sd` (reloading first when `units_changed`), watch it settle and,
/// with `check_process`, read the new kubelet back; the time goes into `out`, and `rd` notes
/// that the restart was made, whatever came of it.
#[allow(clippy::too_many_arguments)]
fn restart_timed(
    sd: &Systemd,
    r: &Restart,
    rd: &mut RestartDone,
    units_changed: bool,
    check_process: Option<&dyn Fn(u32) -> Result<(), String>>,
    ui: &mut dyn Ui,
    out: &mut Outcome,
) -> Result<Restarted, String> {
    let t = Instant::now();
    let res = restart::restart_and_verify(
        sd,
        &rd.unit,
        units_changed,
        check_process,
        r.options(),
        &mut |d| ui.progress(d),
    );
    out.timings.restart_ms = Some(t.elapsed().as_millis());
    rd.done = true;
    res
}

/// The saved plan at `path`, checked to be one and made for this node and root.
fn read_saved(fs: &NodeFs, path: &Path, node: Option<&str>) -> Result<(String, SavedPlan), Stop> {
    let shown = path.display().to_string();
    // Never block on a FIFO or read /dev/zero without end: a regular file, bounded.
    let bytes = crate::inroot::read_host_file(path, 64 << 20)
        .map_err(|e| Stop::Before(format!("--plan {shown}: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Stop::Before(format!("--plan {shown}: not UTF-8")))?;
    let saved = SavedPlan::parse(&shown, &text)?;
    saved.check_target(&shown, node, fs.root())?;
    Ok((shown, saved))
}

/// The saved plan's writes, from the files as they are now. A file that already holds the
/// plan's result is skipped, so re-applying an applied plan is "nothing to do".
fn saved_changes(
    fs: &NodeFs,
    shown: &str,
    saved: &SavedPlan,
) -> Result<(Vec<FileChange>, bool), Stop> {
    let mut changes = Vec::new();
    for f in &saved.files {
        // The saved path is resolved inside the root like any read, and the write goes to
        // that resolved path (re-checked at write time).
        // The plan names the file itself (its symlinks resolved): one that is a symlink now
        // was swapped in since, and whatever it leads to is not what was reviewed.
        if let Some(to) = fs.read_link(&f.path)? {
            return Err(Stop::Before(format!(
                "{}: now a symlink (to {to}), swapped in since the plan {shown} was made: refused, make a new plan",
                f.path
            )));
        }
        let Some((resolved, current)) = fs.read(&f.path)? else {
            return Err(Stop::Before(format!(
                "{}: missing; the plan {shown} cannot be applied",
                f.path
            )));
        };
        let planned = |why: String| Stop::Before(format!("--plan {shown}: {}: {why}", f.path));
        let meta = fs
            .stat(&resolved)?
            .map(|(_, m)| crate::meta::Meta::of(&m))
            .ok_or_else(|| Stop::Before(format!("{}: missing", f.path)))?;
        let meta_done = f.meta.is_empty() || f.meta.target(meta).map_err(planned)? == meta;
        let content_done = sha256_hex(current.as_bytes()) == f.sha256_after;
        if content_done && meta_done {
            continue;
        }
        let after: std::sync::Arc<str> = if f.sha256_before == f.sha256_after {
            // A mode or owner change: the content must still be what was planned.
            saved.after(f, &current)?;
            current.clone()
        } else {
            saved.after(f, &current)?.into()
        };
        if !f.meta.starts_at(meta).map_err(planned)? {
            return Err(Stop::Before(format!(
                "{}: its mode or owner changed since the plan was made (now {} {}): make a new plan",
                f.path,
                meta.mode_text(),
                meta.owner_text()
            )));
        }
        changes.push(FileChange {
            path: resolved,
            before: current,
            after,
            meta: f.meta.clone(),
        });
    }
    Ok((changes, saved.daemon_reload))
}

/// The restart failed or the new kubelet is not compliant: put every file back, reload if
/// units changed, restart the old configuration and wait for it.
#[allow(clippy::too_many_arguments)]
fn roll_back_after_failed_restart(
    fs: &NodeFs,
    sd: &Systemd,
    o: &ApplyOptions,
    r: &Restart,
    unit: &str,
    daemon_reload: bool,
    applied: &txn::Applied,
    why: &str,
    out: &mut Outcome,
) -> Stop {
    let restored = match txn::rollback(fs, &o.backup_dir, &applied.backup_id, false) {
        Ok(r) => r,
        Err(e) => {
            return Stop::After {
                message: format!(
                    "{why}; restoring the backups failed too ({e}): run {} and see journalctl -u {unit}",
                    rollback_command(fs.root(), &o.backup_dir, &applied.backup_id)
                ),
                restored: false,
            };
        }
    };
    let files = restored.restored.join(", ");
    out.rolled_back = Some(restored);
    match restart_old(sd, unit, daemon_reload, r) {
        Ok(pid) => Stop::After {
            message: format!(
                "{why}; rolled back {files} (backup {}); {unit} is active again with its old settings (pid {pid}); see journalctl -u {unit}",
                applied.backup_id
            ),
            restored: true,
        },
        Err(e) => Stop::After {
            message: format!(
                "{why}; rolled back {files} (backup {}), but {unit} did not come back: {e}; see journalctl -u {unit}",
                applied.backup_id
            ),
            restored: false,
        },
    }
}

/// Reload if units changed, restart, and wait for the unit to settle: its main PID.
fn restart_old(sd: &Systemd, unit: &str, daemon_reload: bool, r: &Restart) -> Result<u32, String> {
    if daemon_reload {
        sd.reload().map_err(|e| e.0)?;
    }
    let result = sd.restart(unit, r.job_timeout).map_err(|e| e.0)?;
    if result != "done" {
        return Err(format!(
            "restarting the old configuration ended with \"{result}\""
        ));
    }
    let s = sd.settle(unit, r.settle, &mut |_| {}).map_err(|e| e.0)?;
    Ok(s.main_pid)
}

/// The command that undoes an apply, as it must be typed for this root and backup directory
/// (every option the apply was given that rollback needs to find the set).
pub fn rollback_command(root: &Path, backup_dir: &str, id: &str) -> String {
    let mut c = String::from("kubelet-remediate rollback");
    if root != Path::new("/") {
        c += &format!(" --root {}", shell_word(&root.display().to_string()));
    }
    if backup_dir != txn::DEFAULT_BACKUP_DIR {
        c += &format!(" --backup-dir {}", shell_word(backup_dir));
    }
    c + " " + &shell_word(id)
}

/// A word a POSIX shell reads back as itself.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Which backup set `rollback` acts on.
#[derive(Debug, Clone)]
pub enum Which {
    List,
    Last,
    Id(String),
}

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub which: Which,
    pub force: bool,
    pub backup_dir: String,
    /// `None`: restore the files only (`--no-restart`).
    pub restart: Option<Restart>,
    pub lock_timeout: Duration,
    /// Do not read the restarted kubelet back from /proc.
    pub offline: bool,
}

/// `rollback`: list the backup sets (read-only, no lock), or restore one and restart the
/// kubelet with the restored files, watching it settle.
pub fn rollback(fs: &NodeFs, o: &RollbackOptions, ui: &mut dyn Ui) -> Outcome {
    run(|out| {
        if let Which::List = o.which {
            // Listing takes no lock and creates nothing: it may run beside an apply.
            out.backups = Some(txn::list(fs, &o.backup_dir)?);
            out.set(Verdict::Listed, 0);
            return Ok(());
        }
        let _lock = txn::lock(fs, o.lock_timeout)?;
        let sets = txn::list(fs, &o.backup_dir)?;
        let id = match &o.which {
            Which::Id(id) => id.clone(),
            _ => match sets.last() {
                Some(m) => m.id.clone(),
                None => {
                    return Err(Stop::Before(format!(
                        "no backups in {}: nothing to roll back",
                        o.backup_dir
                    )));
                }
            },
        };
        let Some(set) = sets.iter().find(|m| m.id == id) else {
            return Err(Stop::Before(format!(
                "{}/{id}: no such backup set (see rollback --list)",
                o.backup_dir
            )));
        };
        // A set that only changed modes or owners (4.1 controls) is restored without a
        // restart: the kubelet and systemd read the same bytes.
        let content = set.files.iter().any(|f| !f.backup.is_empty());
        let sd = match &o.restart {
            Some(r) if content => Some(r.connect(fs)?),
            _ => None,
        };
        if !ui.confirm("Restore these files?", Preview::Rollback { set })? {
            return Err(Stop::Before("not restored".into()));
        }
        let t = Instant::now();
        let restored = txn::rollback(fs, &o.backup_dir, &id, o.force)?;
        out.timings.write_ms = Some(t.elapsed().as_millis());
        out.warnings.extend(restored.warnings.iter().cloned());
        let (unit, daemon_reload) = (restored.unit.clone(), restored.daemon_reload);
        let changed = !restored.restored.is_empty() && content;
        out.rolled_back = Some(restored);
        out.set(Verdict::RolledBack, 0);
        if !content {
            return Ok(());
        }
        let mut done = RestartDone::pending(&unit, daemon_reload, sd.as_ref());
        if changed && o.restart.is_none() {
            let files = out
                .rolled_back
                .as_ref()
                .map_or(Vec::new(), |r| r.restored.clone());
            let owed = Pending::new("rollback", &unit, daemon_reload, files);
            settle_marker(fs, Some(&owed), out);
        }
        if let (Some(sd), Some(r), true) = (&sd, &o.restart, changed) {
            // The restored files are what the kubelet must run with now: restart, settle,
            // and read back what the new process has (the restored value, often false).
            let in_process = evidence::gather(
                fs,
                &Options {
                    unit: Some(unit.clone()),
                    offline: true,
                },
            )
            .is_ok_and(|ev| ev.platform.kubelet_in_process());
            match restart_timed(sd, r, &mut done, daemon_reload, None, ui, out) {
                Ok(res) => {
                    if !in_process && !o.offline {
                        done.value = restart::process_value(fs, res.main_pid).ok();
                    }
                    done.result = Some(res);
                    settle_marker(fs, None, out);
                }
                Err(why) => {
                    out.restart = Some(done);
                    return Err(Stop::After {
                        message: format!(
                            "the files were restored, but {unit} did not come back: {why}; see journalctl -u {unit}"
                        ),
                        restored: false,
                    });
                }
            }
        }
        out.restart = Some(done);
        Ok(())
    })
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub unit: Option<String>,
    /// No /proc and no systemd: the files, and `configz` when given.
    pub offline: bool,
    pub dbus_address: Option<String>,
    pub configz: Option<String>,
    /// `--control`: judge these controls in every source (by default, makeIPTablesUtilChains).
    pub controls: Selection,
}

/// `verify`: what the running kubelet has (its main process, or configz), and what the files
/// on disk give the next restart.
pub fn verify(fs: &NodeFs, o: &VerifyOptions) -> Outcome {
    run(|out| {
        let t = Instant::now();
        let ev = evidence::gather(
            fs,
            &Options {
                unit: o.unit.clone(),
                offline: o.offline,
            },
        )?;
        out.timings.evidence_ms = Some(t.elapsed().as_millis());
        let checks = if o.controls.default {
            checks(fs, o, &ev)?
        } else {
            control_checks(fs, o, &ev)?
        };
        // A definite false anywhere is "not compliant" even if another source could not be read.
        let unknown = checks.iter().any(|c| c.value.is_none());
        let says_false = checks.iter().any(|c| c.value == Some(false));
        let (result, code) = if says_false {
            (Verdict::NonCompliant, 2)
        } else if unknown {
            (Verdict::Error, 1)
        } else {
            (Verdict::Compliant, 0)
        };
        if result == Verdict::Error {
            out.error = Some(Failure {
                message: "could not verify: a source could not be read (see checks)".into(),
                files_changed: false,
                location: None,
            });
        }
        out.checks = Some(checks);
        out.set(result, code);
        Ok(())
    })
}

/// Why verify has nothing to ask: no kubelet process, and no --configz.
fn no_kubelet(o: &VerifyOptions, systemd_said: &str) -> Stop {
    if o.offline {
        Stop::Before("verify --offline checks the running kubelet through --configz only: pass --configz URL (or leave out --offline)".into())
    } else {
        Stop::Before(format!(
            "no running kubelet found ({systemd_said}; /proc has no kubelet process): start it, or pass --configz"
        ))
    }
}

/// The configz document at `url`.
fn configz_document(url: &str) -> Result<serde_json::Value, String> {
    let body = configz::fetch(url, Duration::from_secs(10))?;
    serde_json::from_str(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

/// The kubelet's process: the unit's main process if systemd answers, else the /proc scan;
/// with it, what systemd said (or that it was never reached, and where it was looked for).
fn main_pid(fs: &NodeFs, o: &VerifyOptions, ev: &Evidence) -> (Option<u32>, String) {
    let unit = &ev.service.layout.name;
    // The unit's main process if systemd answers, else the /proc scan; what systemd said
    // (or that it was never reached, and where it was looked for) goes into the message.
    let (from_systemd, systemd_said) = if o.offline {
        (
            None,
            "--offline: neither systemd nor /proc was asked".to_string(),
        )
    } else {
        match Systemd::connect(&restart::candidates(fs.root(), o.dbus_address.as_deref())) {
            Ok(sd) => match sd.state(unit) {
                Ok(s) if s.main_pid != 0 => (Some(s.main_pid), String::new()),
                Ok(_) => (None, format!("{unit} has no main process")),
                Err(e) => (
                    None,
                    format!("systemd ({}) did not say: {}", sd.address, e.0),
                ),
            },
            Err(e) => (None, format!("systemd was not reached: {}", e.0)),
        }
    };
    let proc_pid = if o.offline {
        None
    } else {
        ev.running.as_ref().map(|r| r.pid)
    };
    (from_systemd.or(proc_pid), systemd_said)
}

fn checks(fs: &NodeFs, o: &VerifyOptions, ev: &Evidence) -> Result<Vec<Check>, Stop> {
    let unit = &ev.service.layout.name;
    let mut checks = Vec::new();
    if ev.platform.kubelet_in_process() {
        // The kubelet runs inside k3s/rke2: its flags are not on any command line.
        checks.push(Check {
            control: None,
            source: format!(
                "{} files (the kubelet runs inside {unit})",
                ev.platform.name()
            ),
            value: Some(verdict::judge(ev).compliant()),
            detail: "kubelet-arg entries and kubelet.conf.d drop-ins as they are now".into(),
        });
    } else {
        let (pid, systemd_said) = main_pid(fs, o, ev);
        match pid {
            Some(pid) => {
                // Read once: whether its configs changed since it started, and its value.
                let (value, detail) = match restart::read_process(fs, pid) {
                    Ok(r) if !r.changed_since_start.is_empty() => (
                        None,
                        format!(
                            "{} changed since it started, so what it loaded cannot be read from disk (--configz reads it from the kubelet)",
                            r.changed_since_start.join(", ")
                        ),
                    ),
                    Ok(r) => match restart::process_verdict(&r) {
                        Ok(v) => (Some(v), "its command line and the files it names".into()),
                        Err(why) => (None, why),
                    },
                    Err(why) => (None, why),
                };
                checks.push(Check {
                    control: None,
                    source: format!("the running kubelet (pid {pid})"),
                    value,
                    detail,
                });
            }
            None if o.configz.is_none() => return Err(no_kubelet(o, &systemd_said)),
            None => {}
        }
    }
    if let Some(url) = &o.configz {
        let source = format!("configz {url}");
        let got = configz_document(url).and_then(|doc| configz::value_from_document(&doc));
        checks.push(match got {
            Ok((v, present)) => Check {
                source,
                control: None,
                value: Some(v),
                detail: if present {
                    "the kubelet's merged configuration".into()
                } else {
                    "absent from configz: the default, true".into()
                },
            },
            Err(why) => Check {
                source,
                control: None,
                value: None,
                detail: why,
            },
        });
    }
    if !ev.platform.kubelet_in_process() {
        // The files are what the next restart runs: a process that says true while they say
        // false (say, after a rollback without a restart) is not a compliant node.
        let (value, detail) = match verdict::judge(ev).outcome {
            Value::Value(v, _) => (
                Some(v),
                format!("{unit}, its drop-ins, environment files and configs as they are now"),
            ),
            Value::Refused(why) => (None, format!("the kubelet would refuse to start: {why}")),
        };
        checks.push(Check {
            control: None,
            source: "the files on disk (what the next restart runs)".into(),
            value,
            detail,
        });
    }
    Ok(checks)
}

/// `verify --control`: each selected control, judged on the running kubelet (its command line
/// and the files it names), on configz when given, and on the files the next restart runs.
fn control_checks(fs: &NodeFs, o: &VerifyOptions, ev: &Evidence) -> Result<Vec<Check>, Stop> {
    let sel = &o.controls;
    let chosen: Vec<&controls::Control> =
        sel.ids.iter().filter_map(|id| controls::get(id)).collect();
    let mut checks = Vec::new();
    // The 4.1 controls are about files, so only the files source (`facts`) judges them.
    let mut each = |source: &str,
                    judged: Result<&effective::Judgement, &str>,
                    facts: Option<&crate::files::Facts>,
                    skip: &dyn Fn(&controls::Control) -> bool| {
        for c in &chosen {
            if skip(c) || (c.file.is_some() && facts.is_none()) {
                continue;
            }
            let (value, detail) = match (judged, facts, &c.file) {
                (_, Some(facts), Some(rule)) => {
                    let (pass, v) =
                        controls::evaluate(c, &Default::default(), facts, sel.benchmark);
                    let undecidable = rule.undecidable(facts);
                    (
                        (!undecidable).then_some(pass),
                        if undecidable {
                            rule.notes(facts, c.rule_benchmark(sel.benchmark))
                                .join("; ")
                        } else {
                            format!("{v}")
                        },
                    )
                }
                (judged, ..) => match judged {
                    Ok(j) if j.refused.is_some() => (
                        None,
                        format!(
                            "the kubelet would refuse to start: {}",
                            j.refused.as_deref().unwrap_or("")
                        ),
                    ),
                    Ok(j) => {
                        let (pass, v) =
                            controls::evaluate(c, j, &Default::default(), sel.benchmark);
                        (Some(pass), format!("{v}"))
                    }
                    Err(why) => (None, why.to_string()),
                },
            };
            checks.push(Check {
                source: source.to_string(),
                control: Some(c.id),
                value,
                detail,
            });
        }
    };
    let none = |_: &controls::Control| false;
    // The 4.1 controls alone are about files: no kubelet needs to run (or --configz be given).
    let files_only = chosen.iter().all(|c| c.file.is_some());
    if !ev.platform.kubelet_in_process() && !files_only {
        let (pid, systemd_said) = main_pid(fs, o, ev);
        match pid {
            Some(pid) => {
                let source = format!("the running kubelet (pid {pid})");
                match restart::read_process(fs, pid) {
                    Ok(r) if !r.changed_since_start.is_empty() => {
                        let why = format!(
                            "{} changed since it started, so what it loaded cannot be read from disk (--configz reads it from the kubelet)",
                            r.changed_since_start.join(", ")
                        );
                        each(&source, Err(&why), None, &none);
                    }
                    Ok(r) => each(&source, Ok(&effective::judge_running(ev, &r)), None, &none),
                    Err(why) => each(&source, Err(&why), None, &none),
                }
            }
            None if o.configz.is_none() => return Err(no_kubelet(o, &systemd_said)),
            None => {}
        }
    }
    if let Some(url) = o.configz.as_ref().filter(|_| !files_only) {
        let source = format!("configz {url}");
        let got = configz_document(url).and_then(|doc| configz::judgement(&doc));
        // configz carries no flag-only setting (--hostname-override, the --seccomp-default
        // flag): those controls are judged from the process and the files only.
        let flag_only = |c: &controls::Control| {
            c.settings.iter().any(|id| {
                crate::settings::get(id).is_some_and(|s| {
                    s.key.is_none() || s.merge == crate::settings::Merge::FlagOrConfig
                })
            })
        };
        match &got {
            Ok(j) => each(&source, Ok(j), None, &flag_only),
            Err(why) => each(&source, Err(why), None, &flag_only),
        }
    }
    let files = effective::judge(ev);
    let facts = crate::files::gather_for(fs, ev, &files, &sel.ids);
    each(
        "the files on disk (what the next restart runs)",
        Ok(&files),
        Some(&facts),
        &none,
    );
    Ok(checks)
}
