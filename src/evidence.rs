//! Read the node and collect every place that sets makeIPTablesUtilChains, with provenance.
//!
//! Sources, lowest to highest precedence (cmd/kubelet/app/server.go): the built-in default
//! (true), the `--config` file, the `--config-dir` drop-ins (merge patches in WalkDir order),
//! then the command line, which the kubelet re-parses over the merged configuration.

use crate::config::{self, ConfigDoc, Value};
use crate::error::{Error, Result};
use crate::flags::{self, Cmdline, FLAG};
use crate::k3s;
use crate::platform::{self, Platform};
use crate::root::{self, EntryKind, NodeFs};
use crate::systemd::exec::{Arg, EnvOrigin, Service};
use crate::systemd::lookup::{self, UnitLayout};
use crate::text::{Files, SourceFile};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The unit to inspect; detected when `None`.
    pub unit: Option<String>,
    /// Files only: no /proc.
    pub offline: bool,
}

/// A config document and the path the kubelet was given for it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub named: String,
    pub doc: ConfigDoc,
}

/// The configuration files one kubelet command line selects.
#[derive(Debug, Clone, Default)]
pub struct Configs {
    pub config: Option<ConfigSource>,
    pub config_dir: Option<String>,
    pub dropins: Vec<ConfigSource>,
    /// A digest of the merged configuration (as the kubelet would decode it) apart from the
    /// key: what the plan's proof compares. The tree itself is dropped once merged, so a large
    /// config is held once, not once per evaluation.
    pub merged: Option<[u8; 32]>,
    /// What the reader noticed about how the kubelet treats these paths.
    pub notes: Vec<String>,
}

/// The kubelet process found running, and what it was started with.
#[derive(Debug, Clone)]
pub struct Running {
    pub pid: u32,
    pub argv: Vec<String>,
    pub cmdline: Cmdline,
    pub configs: Configs,
    /// Config files modified after the process started: what it loaded is no longer on disk,
    /// so its value cannot be read back from the files.
    pub changed_since_start: Vec<String>,
    /// The latest time the process can have started (from /proc/PID/stat), when readable.
    pub started: Option<std::time::SystemTime>,
}

/// Everything read from the node.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub files: Files,
    pub platform: Platform,
    pub service: Service,
    /// Arguments after the kubelet binary (argv[0] is the kubelet itself).
    pub argv: Vec<Arg>,
    pub cmdline: Cmdline,
    pub configs: Configs,
    pub running: Option<Running>,
    /// Whether `/proc` was left unread (`--offline`): then `running` is unknown, not absent.
    pub offline: bool,
    /// The pending-restart marker an earlier `--no-restart` write left (`state.rs`).
    pub pending: Option<std::result::Result<crate::state::Pending, String>>,
    pub notes: Vec<String>,
}

impl Evidence {
    /// A restart the marker says is owed and nothing shows was made: no kubelet was seen (with
    /// `/proc` unread), or the one running started before the write.
    pub fn restart_owed(&self) -> Option<&str> {
        let p = self.pending.as_ref()?;
        let written = p.as_ref().ok().map(|p| p.written());
        let owed = match (&self.running, written) {
            (_, None) => true,
            (None, _) => self.offline,
            (Some(r), Some(w)) => r.started.is_none_or(|s| s <= w),
        };
        let at = match p {
            Ok(p) => p.written_at.as_str(),
            Err(why) => why.as_str(),
        };
        owed.then_some(at)
    }

    /// The last value the kubelet's command line gives a flag outside the settings table
    /// (`--kubeconfig`), in either form (`--name=v`, `--name v`; `_` spelled as `-`).
    pub fn flag(&self, name: &str) -> Option<String> {
        let argv = &self.argv;
        let mut found = None;
        for (i, a) in argv.iter().enumerate() {
            let Some(body) = a.value.text.strip_prefix("--") else {
                continue;
            };
            let (n, v) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if n.replace('_', "-") == name {
                found = v.or_else(|| argv.get(i + 1).map(|a| a.value.text.clone()));
            }
        }
        found
    }

    pub fn argv_text(&self) -> Vec<String> {
        self.argv.iter().map(|a| a.value.text.clone()).collect()
    }
}

pub fn gather(fs: &NodeFs, opts: &Options) -> Result<Evidence> {
    let unit = match &opts.unit {
        Some(u) if u.contains('.') => u.clone(),
        Some(u) => format!("{u}.service"),
        None => platform::detect_unit(fs)?,
    };
    let layout = lookup::find(fs, &unit).map_err(|e| match e {
        // The default name was not the operator's choice: the message says what was tried.
        Error::NoUnit(mut n) if opts.unit.is_none() => {
            n.also = k3s::UNITS.iter().map(|(u, _)| u.to_string()).collect();
            Error::NoUnit(n)
        }
        e => e,
    })?;
    gather_with_layout(fs, opts, layout)
}

/// `gather` for a unit whose files are already known. The planner's proof uses it: an edit
/// changes contents, never which unit files exist.
pub fn gather_with_layout(fs: &NodeFs, opts: &Options, layout: UnitLayout) -> Result<Evidence> {
    let mut files = Files::default();
    let mut service = Service::load(fs, &mut files, layout)?;
    let mut notes: Vec<String> = service.warnings.clone();
    for (hidden, winner) in &service.layout.shadowed_dropins {
        notes.push(format!(
            "{hidden} is hidden by {winner} (same name, higher-priority directory)"
        ));
    }
    for m in &service.layout.masked_dropins {
        notes.push(format!(
            "{m} masks every drop-in of that name (symlink to /dev/null)"
        ));
    }
    for f in &service.layout.shadowed_fragments {
        notes.push(format!(
            "{f} is not used: {} takes precedence",
            service.layout.fragment
        ));
    }
    let (platform, argv) = match k3s::dist_of(&service.layout.name) {
        Some(dist) => {
            let (argv, n) = k3s::kubelet_argv(fs, &mut files, dist, &service)?;
            notes.extend(n);
            let p = if dist == "k3s" {
                Platform::K3s
            } else {
                Platform::Rke2
            };
            (p, argv)
        }
        None => {
            refuse_wrappers(&files, &service)?;
            let p = platform::detect(fs, &service)?;
            // Moved, not copied: a huge ExecStart= is held once.
            let argv = std::mem::take(&mut service.argv);
            (p, platform::kubelet_argv(&p, argv))
        }
    };
    let texts: Vec<&str> = argv.iter().map(|a| a.value.text.as_str()).collect();
    let cmdline = flags::parse(&texts);
    drop(texts);
    let cwd = service.working_dir.clone().unwrap_or_else(|| "/".into());
    let configs = load_configs(fs, &mut files, &cmdline, &cwd)
        .map_err(|e| at_flag(&files, &argv, &cmdline, e))?;
    let running = if opts.offline {
        None
    } else {
        find_running(fs, &mut files)?
    };
    Ok(Evidence {
        files,
        platform,
        service,
        argv,
        cmdline,
        configs,
        running,
        offline: opts.offline,
        pending: crate::state::pending(fs),
        notes,
    })
}

/// Programs that would run the kubelet through their own parsing (a shell's quoting and
/// expansion, env's assignments): what the kubelet receives cannot be read off ExecStart=, so the
/// tool says so instead of judging the wrapper's arguments.
const WRAPPERS: &[&str] = &["sh", "bash", "dash", "ash", "ksh", "zsh", "busybox", "env"];

fn refuse_wrappers(files: &Files, service: &Service) -> Result<()> {
    let Some(first) = service.argv.first() else {
        return Ok(());
    };
    let base = first.value.text.rsplit('/').next().unwrap_or("");
    if !WRAPPERS.contains(&base) {
        return Ok(());
    }
    let d = &service.exec;
    Err(Error::parse(
        &files.get(d.file).path,
        d.line,
        1,
        format!(
            "ExecStart= runs the kubelet through {base} ({}): the tool does not model {base}'s quoting and expansion, so it cannot tell what the kubelet receives; nothing is judged or edited. Start the kubelet directly from ExecStart= (systemd's own $VAR expansion is modelled) or check this node by hand",
            first.value.text
        ),
    ))
}

/// A `--config` or `--config-dir` path that cannot be read: say where the flag naming it is.
fn at_flag(files: &Files, argv: &[Arg], cmd: &Cmdline, e: Error) -> Error {
    let Error::Io { path, cause } = &e else {
        return e;
    };
    let named = [&cmd.config, &cmd.config_dir]
        .into_iter()
        .flatten()
        .find(|(_, v)| path.ends_with(v.trim_end_matches('/')));
    let Some((i, _)) = named else {
        return e;
    };
    // The value's argument; with "--config PATH" the flag is the one before it.
    let flag = if argv[*i].value.text.starts_with("--") {
        *i
    } else {
        i.saturating_sub(1)
    };
    match arg_origin(files, &argv[flag]) {
        Some(o) => Error::parse(
            &o.path,
            o.line,
            o.column,
            format!("{}: {path}: {cause}", argv[flag].value.text),
        ),
        None => e,
    }
}

fn read_doc(
    fs: &NodeFs,
    files: &mut Files,
    path: &str,
    why: &str,
    keep: config::Keep,
) -> Result<(ConfigDoc, Value)> {
    let Some((resolved, text)) = fs.read(path)? else {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("No such file ({why}: the kubelet fails to start without it)"),
            ),
        ));
    };
    let id = files.add(SourceFile::new(path.into(), resolved, text));
    config::parse(id, files.get(id), keep)
}

/// Load `--config` and `--config-dir` as the given command line names them.
pub fn load_configs(fs: &NodeFs, files: &mut Files, cmd: &Cmdline, cwd: &str) -> Result<Configs> {
    let mut c = Configs::default();
    let mut merged: Option<Value> = None;
    if let Some((_, p)) = &cmd.config {
        // Relative paths resolve against the kubelet's working directory (kube-bench#1256).
        let named = root::join(cwd, p);
        // Only drop-ins are merged into it; otherwise it is only compared, as a digest.
        let keep = if cmd.config_dir.is_some() {
            config::Keep::Tree
        } else {
            config::Keep::Digest
        };
        let (doc, value) = read_doc(fs, files, &named, "named by --config", keep)?;
        merged = Some(value);
        c.config = Some(ConfigSource { named, doc });
    }
    if let Some((_, d)) = &cmd.config_dir {
        let dir = root::join(cwd, d);
        let mut paths = Vec::new();
        // filepath.WalkDir lstats its root: a missing one is an error the kubelet returns; a
        // symlink is not followed (unless the path ends in '/', which makes the kernel follow
        // it), so it is a non-directory entry, read only if its name ends in .conf.
        let link = if d.ends_with('/') {
            None
        } else {
            fs.read_link(&dir)?
        };
        if let Some(target) = link {
            if dir.ends_with(".conf") {
                paths.push(dir.clone());
            } else {
                c.notes.push(format!(
                    "--config-dir {dir} is a symlink (to {target}): the kubelet's filepath.WalkDir does not follow a symlinked root, so no drop-in in it is read (name the directory itself, or end the path with '/')"
                ));
            }
        } else if fs.is_dir(&dir) {
            walk(fs, &dir, &mut paths)?;
        } else if fs.exists(&dir) {
            if dir.ends_with(".conf") {
                paths.push(dir.clone());
            }
        } else {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "No such directory (named by --config-dir: the kubelet's WalkDir fails on it, so the kubelet refuses to start)",
                ),
            ));
        }
        for p in paths {
            let (doc, value) =
                read_doc(fs, files, &p, "found in --config-dir", config::Keep::Tree)?;
            config::require_type_meta(&value, files.get(doc.file))?;
            let mut base = merged.take().unwrap_or(Value::Map(Default::default()));
            config::merge_into(&mut base, value);
            merged = Some(base);
            c.dropins.push(ConfigSource { named: p, doc });
        }
        c.config_dir = Some(dir);
    }
    c.merged = merged.as_ref().map(config::digest_without_key);
    Ok(c)
}

/// Go's filepath.WalkDir: entries of each directory in name order, descending as met; symlinks
/// are not followed as directories. Only names ending in `.conf` are drop-ins.
fn walk(fs: &NodeFs, dir: &str, out: &mut Vec<String>) -> Result<()> {
    for e in fs.read_dir(dir)? {
        let p = format!("{}/{}", dir.trim_end_matches('/'), e.name);
        match e.kind {
            EntryKind::Dir => walk(fs, &p, out)?,
            _ if e.name.ends_with(".conf") => out.push(p),
            _ => {}
        }
    }
    Ok(())
}

/// The running kubelet, found by scanning /proc inside the root for a process named kubelet.
fn find_running(fs: &NodeFs, files: &mut Files) -> Result<Option<Running>> {
    let mut pids: Vec<u32> = fs
        .read_dir("/proc")?
        .into_iter()
        .filter_map(|e| e.name.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        if let Some(r) = running_at(fs, files, pid, true)? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// The process `pid` inside the root (its argv, and the configs it names, read now). With
/// `kubelet_only`, `None` unless argv[0] is a kubelet.
pub fn running_at(
    fs: &NodeFs,
    files: &mut Files,
    pid: u32,
    kubelet_only: bool,
) -> Result<Option<Running>> {
    let Ok(Some((_, raw))) = fs.read(&format!("/proc/{pid}/cmdline")) else {
        return Ok(None);
    };
    let argv: Vec<String> = raw
        .trim_end_matches('\0')
        .split('\0')
        .map(str::to_string)
        .collect();
    let Some(first) = argv.first() else {
        return Ok(None);
    };
    if kubelet_only && first.rsplit('/').next() != Some("kubelet") {
        return Ok(None);
    }
    let cmdline = flags::parse(&argv);
    let cwd = fs
        .read_link(&format!("/proc/{pid}/cwd"))?
        .unwrap_or_else(|| "/".into());
    let configs = load_configs(fs, files, &cmdline, &cwd)?;
    let mut changed_since_start = Vec::new();
    let mut latest_start = None;
    if let Some((earliest, tick)) = start_time(fs, pid) {
        // The process started in [earliest, earliest + tick); the two clock reads add
        // microseconds. A file counts as modified after the start only past that window, so a
        // file written before the start can never be taken for one written after it.
        let started = earliest + tick + std::time::Duration::from_millis(2);
        latest_start = Some(started);
        for src in configs.config.iter().chain(&configs.dropins) {
            let f = files.get(src.doc.file);
            if fs.mtime(&f.resolved).is_some_and(|m| m > started) {
                changed_since_start.push(src.named.clone());
            }
        }
    }
    Ok(Some(Running {
        pid,
        argv,
        cmdline,
        configs,
        changed_since_start,
        started: latest_start,
    }))
}

/// The earliest time a process can have started, and the width of the window it started in.
///
/// Field 22 of /proc/PID/stat is the start in clock ticks since boot (truncated to a tick), and
/// boot time on the real-time clock is CLOCK_REALTIME - CLOCK_BOOTTIME read back to back, to
/// the nanosecond. (`btime` in /proc/stat is truncated to the second: files written in the
/// second before a restart then looked modified after it, and a second `apply` restarted again.)
fn start_time(fs: &NodeFs, pid: u32) -> Option<(std::time::SystemTime, std::time::Duration)> {
    let (_, pstat) = fs.read(&format!("/proc/{pid}/stat")).ok()??;
    // The command name (field 2) may contain spaces and parentheses: count after the last ')'.
    let after = &pstat[pstat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf and clock_gettime only write the values they return.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    let clock = |id| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec for clock_gettime to fill.
        (unsafe { libc::clock_gettime(id, &mut ts) } == 0)
            .then(|| std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    };
    let real = clock(libc::CLOCK_REALTIME)?;
    let since_boot = clock(libc::CLOCK_BOOTTIME)?;
    let boot = std::time::UNIX_EPOCH + real.checked_sub(since_boot)?;
    let tick = std::time::Duration::from_nanos(1_000_000_000 / hz);
    // In u64 nanoseconds: a kubelet up for over 497 days (2^32 ticks at 100 Hz) is not wrapped.
    let since = std::time::Duration::from_nanos((1_000_000_000 / hz).saturating_mul(ticks));
    Some((boot + since, tick))
}

/// Where a setting lives, for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Origin {
    pub path: String,
    pub line: usize,
    pub column: usize,
}

/// Where an argument's first byte came from.
pub fn arg_origin(files: &Files, a: &Arg) -> Option<Origin> {
    // An argument with no bytes of its own (an empty ${VAR}) is where its word was written.
    let loc = a
        .value
        .first_loc()
        .or_else(|| a.container.loc(a.raw.start))
        .or_else(|| a.container.first_loc())?;
    let f = files.get(loc.file);
    let (line, column) = f.line_col(loc.start);
    Some(Origin {
        path: f.path.clone(),
        line,
        column,
    })
}

/// Settings of the flag that systemd will not pass: overridden `Environment=` values and
/// `ExecStart=` lines dropped by a reset. They do not make the node non-compliant.
pub fn inert_settings(ev: &Evidence) -> Vec<(Origin, String, String)> {
    let mut out = Vec::new();
    let mentions = |t: &str| t.replace('_', "-").contains(&format!("--{FLAG}"));
    for e in &ev.service.env {
        if let Some(why) = &e.inert
            && mentions(&e.value.text)
        {
            let (EnvOrigin::Directive { file, line } | EnvOrigin::File { file, line }) = e.origin;
            out.push((
                Origin {
                    path: ev.files.get(file).path.clone(),
                    line,
                    column: 1,
                },
                format!("{}={}", e.name, e.value.text),
                why.clone(),
            ));
        }
    }
    for d in &ev.service.exec_dropped {
        if mentions(&d.value.text) {
            out.push((
                Origin {
                    path: ev.files.get(d.file).path.clone(),
                    line: d.line,
                    column: 1,
                },
                format!("ExecStart={}", d.value.text),
                "dropped by a later empty ExecStart= reset".into(),
            ));
        }
    }
    out
}
