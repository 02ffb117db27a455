//! The service as systemd will run it: its effective `ExecStart=`, environment and argv.
//!
//! Directives apply in load order (fragment, then drop-ins). An empty `ExecStart=`,
//! `Environment=` or `EnvironmentFile=` resets the list. Later `Environment=` assignments of a
//! name win, and values from `EnvironmentFile=`s (read in order, each overriding the previous)
//! override every `Environment=` (systemd's exec_context_load_environment runs after the unit's
//! own environment is built). In the command line a whole-word `$VAR` is split at whitespace,
//! `${VAR}` anywhere becomes its exact value, `$$` is a literal `$` (replace_env_argv).

use super::envfile;
use super::lookup::UnitLayout;
use super::unit::{self, Directive};
use super::words::{self, Word};
use crate::error::{Error, Result};
use crate::root::NodeFs;
use crate::text::{FileId, Files, SourceFile, Span, Traced};
use std::collections::HashMap;
use std::sync::Arc;

/// Where an environment value was assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvOrigin {
    /// An `Environment=` line of a unit file.
    Directive { file: FileId, line: usize },
    /// A line of an `EnvironmentFile=`.
    File { file: FileId, line: usize },
}

/// One assignment of a variable, and whether it is the one the service sees.
#[derive(Debug, Clone)]
pub struct EnvEntry {
    pub name: String,
    pub value: Traced,
    pub origin: EnvOrigin,
    /// `None` if this assignment is the value the service gets; else why it is not.
    pub inert: Option<String>,
}

impl EnvEntry {
    fn in_file(&self) -> bool {
        matches!(self.origin, EnvOrigin::File { .. })
    }

    /// Whether the value names the flag (any spelling): such an overridden assignment is kept,
    /// since the report lists it as inert; others are dropped once overridden.
    fn mentions_flag(&self) -> bool {
        self.value
            .text
            .replace('_', "-")
            .contains(crate::flags::FLAG)
    }
}

#[derive(Debug, Clone)]
pub struct EnvFileRef {
    pub path: String,
    pub optional: bool,
    pub file: Option<FileId>,
    pub line: usize,
    pub unit_file: FileId,
}

/// One argument the service's process will receive.
#[derive(Debug, Clone)]
pub struct Arg {
    pub value: Traced,
    /// The variable that produced it (`$VAR` split or `${VAR}`), if any.
    /// Shared by every argument split from one variable.
    pub var: Option<Arc<str>>,
    /// The text this argument was cut from, and its range there (quotes included): deleting
    /// that range (with blanks of the same text next to it) removes exactly this argument.
    /// Shared by every argument cut from it (never copied per argument).
    pub container: Arc<Traced>,
    pub raw: std::ops::Range<usize>,
    /// Whether removing `raw` from the container removes the argument and nothing else.
    pub removable: bool,
}

impl Arg {
    pub fn span(&self) -> Option<Span> {
        self.container.span_of(self.raw.clone())
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub layout: UnitLayout,
    /// Files of the unit in load order (fragment first).
    pub unit_files: Vec<FileId>,
    pub exec: Directive,
    /// `ExecStart=` lines that a later reset dropped.
    pub exec_dropped: Vec<Directive>,
    pub env: Vec<EnvEntry>,
    pub env_files: Vec<EnvFileRef>,
    pub working_dir: Option<String>,
    /// The command line systemd runs. `evidence::gather` moves it into `Evidence::argv` (the
    /// kubelet's part of it) rather than holding a huge ExecStart= twice.
    pub argv: Vec<Arg>,
    /// Warnings systemd would log (ignored lines and assignments).
    pub warnings: Vec<String>,
}

fn read_into(fs: &NodeFs, files: &mut Files, path: &str) -> Result<Option<FileId>> {
    Ok(fs
        .read(path)?
        .map(|(resolved, text)| files.add(SourceFile::new(path.into(), resolved, text))))
}

impl Service {
    pub fn load(fs: &NodeFs, files: &mut Files, layout: UnitLayout) -> Result<Service> {
        let mut unit_files = Vec::new();
        let mut warnings = Vec::new();
        let mut dirs: Vec<Directive> = Vec::new();
        for p in std::iter::once(&layout.fragment).chain(&layout.dropins) {
            let Some(id) = read_into(fs, files, p)? else {
                return Err(Error::io(
                    p.clone(),
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            };
            unit_files.push(id);
            let parsed = unit::parse(id, files.get(id))?;
            for ig in parsed.ignored {
                warnings.push(format!("{}:{}: {}", p, ig.line, ig.reason));
            }
            if let Some(e) = parsed.stopped {
                // load-fragment.c: the fragment's parse error fails the unit; a drop-in's is
                // ignored by unit_load_dropin(), keeping what was read before it.
                if unit_files.len() == 1 {
                    return Err(e);
                }
                warnings.push(format!(
                    "{e}; systemd stops reading this drop-in there and ignores the rest of it"
                ));
            }
            dirs.extend(
                parsed
                    .directives
                    .into_iter()
                    .filter(|d| d.section == "Service"),
            );
        }

        let mut execs: Vec<Directive> = Vec::new();
        let mut exec_dropped = Vec::new();
        let mut env: Vec<EnvEntry> = Vec::new();
        let mut env_files: Vec<EnvFileRef> = Vec::new();
        let mut working_dir = None;
        let mut service_type = String::from("simple");
        let mut unset: Vec<(String, FileId, usize)> = Vec::new();
        for d in &dirs {
            let path = &files.get(d.file).path;
            match d.key.as_str() {
                "ExecStart" if d.value.is_empty() => exec_dropped.append(&mut execs),
                "ExecStart" => execs.push(d.clone()),
                "Environment" if d.value.is_empty() => {
                    for e in &mut env {
                        e.inert = Some(format!(
                            "reset by the empty Environment= at {path}:{}",
                            d.line
                        ));
                    }
                }
                "Environment" => {
                    let ws = words::split(&d.value, words::EXEC)
                        .map_err(|(m, at)| at_error(files, d, at, format!("Environment=: {m}")))?;
                    for w in ws {
                        let w = expand_percent(w.value, &layout.name);
                        let Some(eq) = w.text.find('=') else {
                            warnings.push(format!(
                                "{path}:{}: invalid environment assignment '{}', systemd ignores it",
                                d.line, w.text
                            ));
                            continue;
                        };
                        let name = w.text[..eq].to_string();
                        if !envfile::valid_name(&name) {
                            warnings.push(format!(
                                "{path}:{}: invalid variable name '{name}', systemd ignores it",
                                d.line
                            ));
                            continue;
                        }
                        env.push(EnvEntry {
                            name,
                            value: w.slice(eq + 1..w.text.len()),
                            origin: EnvOrigin::Directive {
                                file: d.file,
                                line: d.line,
                            },
                            inert: None,
                        });
                    }
                }
                "EnvironmentFile" if d.value.is_empty() => env_files.clear(),
                "EnvironmentFile" => {
                    let v = expand_percent(d.value.clone(), &layout.name).text;
                    let v = v.trim();
                    let (optional, p) = match v.strip_prefix('-') {
                        Some(rest) => (true, rest.trim()),
                        None => (false, v),
                    };
                    env_files.push(EnvFileRef {
                        path: p.to_string(),
                        optional,
                        file: None,
                        line: d.line,
                        unit_file: d.file,
                    });
                }
                "UnsetEnvironment" if d.value.is_empty() => unset.clear(),
                "UnsetEnvironment" => {
                    let ws = words::split(&d.value, words::EXEC).map_err(|(m, at)| {
                        at_error(files, d, at, format!("UnsetEnvironment=: {m}"))
                    })?;
                    for w in ws {
                        let w = expand_percent(w.value, &layout.name).text;
                        let name = w.split('=').next().unwrap_or("");
                        if envfile::valid_name(name) {
                            unset.push((w, d.file, d.line));
                        } else {
                            warnings.push(format!(
                                "{path}:{}: invalid UnsetEnvironment= entry '{w}', systemd ignores it",
                                d.line
                            ));
                        }
                    }
                }
                "WorkingDirectory" => {
                    let v = d.value.text.trim().trim_start_matches('-');
                    working_dir = (!v.is_empty() && v != "~").then(|| v.to_string());
                }
                "Type" => service_type = d.value.text.trim().to_string(),
                _ => {}
            }
        }
        let exec = match execs.len() {
            0 => {
                return Err(Error::Unsupported(format!(
                    "{}: the unit has no ExecStart= after its drop-ins are applied",
                    layout.fragment
                )));
            }
            1 => execs.pop().unwrap(),
            _ if service_type != "oneshot" => {
                let d = &execs[1];
                return Err(Error::parse(
                    &files.get(d.file).path,
                    d.line,
                    1,
                    "a second ExecStart= without an empty ExecStart= reset first: systemd refuses to load a non-oneshot service like this",
                ));
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "{}: a oneshot unit with several ExecStart= cannot be the kubelet",
                    layout.fragment
                )));
            }
        };

        // Environment files override Environment=, and each other, in order
        // (exec_context_load_environment: each entry is a glob, its matches read sorted).
        let mut loaded: Vec<EnvFileRef> = Vec::new();
        for ef in env_files {
            let unit_path = files.get(ef.unit_file).path.clone();
            if !ef.path.starts_with('/') {
                if ef.optional {
                    warnings.push(format!(
                        "{unit_path}:{}: EnvironmentFile=-{} is not an absolute path: systemd ignores it",
                        ef.line, ef.path
                    ));
                    continue;
                }
                return Err(Error::parse(
                    &unit_path,
                    ef.line,
                    1,
                    format!(
                        "EnvironmentFile={} is not an absolute path: systemd fails to start the unit",
                        ef.path
                    ),
                ));
            }
            let matches = glob(fs, &ef.path)?;
            if matches.is_empty() {
                if ef.optional {
                    loaded.push(ef);
                    continue;
                }
                return Err(Error::io(
                    ef.path.clone(),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!(
                            "No such file (EnvironmentFile= without '-' at {unit_path}:{}: systemd will fail to start the unit)",
                            ef.line
                        ),
                    ),
                ));
            }
            for path in matches {
                let id = read_into(fs, files, &path)?;
                if let Some(id) = id {
                    let mut compact_at = COMPACT_FROM.max(2 * env.len());
                    envfile::parse(id, files.get(id), &mut |a| {
                        env.push(EnvEntry {
                            name: a.name,
                            value: a.value,
                            origin: EnvOrigin::File {
                                file: id,
                                line: a.line,
                            },
                            inert: None,
                        });
                        if env.len() >= compact_at {
                            drop_dead(&mut env);
                            compact_at = COMPACT_FROM.max(2 * env.len());
                        }
                    });
                }
                loaded.push(EnvFileRef {
                    path,
                    file: id,
                    ..ef.clone()
                });
            }
        }
        let env_files = loaded;
        mark_overridden(&mut env, files);
        // UnsetEnvironment= applies last (exec_child: strv_env_delete after the merge): NAME
        // removes the variable, NAME=VALUE only that exact assignment.
        for (pattern, file, line) in &unset {
            let at = format!("{}:{line}", files.get(*file).path);
            for e in env.iter_mut().filter(|e| e.inert.is_none()) {
                let hit = match pattern.split_once('=') {
                    Some((n, v)) => e.name == n && e.value.text == v,
                    None => e.name == *pattern,
                };
                if hit {
                    e.inert = Some(format!("removed by UnsetEnvironment={pattern} at {at}"));
                }
            }
        }
        // Overridden assignments matter only where they mention the flag (the report lists
        // those as inert); the rest would cost memory per line of a large environment file.
        env.retain(|e| e.inert.is_none() || e.mentions_flag());
        env.shrink_to_fit();

        let argv = expand(files, &exec, &env, &layout.name)?;
        Ok(Service {
            layout,
            unit_files,
            exec,
            exec_dropped,
            env,
            env_files,
            working_dir,
            argv,
            warnings,
        })
    }

    /// The live value of a variable, if set.
    pub fn var(&self, name: &str) -> Option<&EnvEntry> {
        self.env
            .iter()
            .rev()
            .find(|e| e.name == name && e.inert.is_none())
    }
}

fn at_error(files: &Files, d: &Directive, at: usize, msg: String) -> Error {
    let f = files.get(d.file);
    let (line, col) = d.value.loc(at).map_or((d.line, 1), |l| f.line_col(l.start));
    Error::parse(&f.path, line, col, msg)
}

/// Later assignments (and any environment file assignment) hide earlier ones of the same name.
fn mark_overridden(env: &mut [EnvEntry], files: &Files) {
    let describe = |o: &EnvOrigin| match o {
        EnvOrigin::Directive { file, line } | EnvOrigin::File { file, line } => {
            format!("{}:{}", files.get(*file).path, line)
        }
    };
    // One pass for each name's winner: the last file assignment if any, else the last
    // directive assignment (linear in the number of assignments).
    let mut winner: HashMap<String, usize> = HashMap::new();
    for (j, e) in env.iter().enumerate() {
        if e.inert.is_some() {
            continue;
        }
        match winner.get_mut(&e.name) {
            Some(w) if e.in_file() || !env[*w].in_file() => *w = j,
            Some(_) => {}
            None => {
                winner.insert(e.name.clone(), j);
            }
        }
    }
    for i in 0..env.len() {
        if env[i].inert.is_some() {
            continue;
        }
        let w = winner[&env[i].name];
        if w != i {
            let why = if env[w].in_file() && !env[i].in_file() {
                format!(
                    "overridden by the environment file at {} (EnvironmentFile= values win over Environment=)",
                    describe(&env[w].origin)
                )
            } else {
                format!("overridden by {}", describe(&env[w].origin))
            };
            env[i].inert = Some(why);
        }
    }
}

/// Entries before compaction is worth a pass (small environments are never compacted).
const COMPACT_FROM: usize = 4096;

/// Drop assignments that are certain to be overridden, whatever comes later, and that do not
/// mention the flag: a later assignment of the same name and kind exists, or a directive's
/// name has a file assignment (EnvironmentFile= wins over Environment=). The final precedence
/// pass would mark them inert and drop them anyway; dropping them while reading keeps a
/// 100,000-line environment file from being held whole. Run at doubling sizes: linear.
fn drop_dead(env: &mut Vec<EnvEntry>) {
    let mut last: HashMap<(&str, bool), usize> = HashMap::new();
    for (j, e) in env.iter().enumerate() {
        last.insert((&e.name, e.in_file()), j);
    }
    let keep: Vec<bool> = env
        .iter()
        .enumerate()
        .map(|(j, e)| {
            let file = e.in_file();
            let dead = last[&(e.name.as_str(), file)] != j
                || (!file && last.contains_key(&(e.name.as_str(), true)));
            !dead || e.inert.is_some() || e.mentions_flag()
        })
        .collect();
    drop(last);
    let mut k = keep.into_iter();
    env.retain(|_| k.next().unwrap_or(true));
    env.shrink_to_fit();
}

/// The assignment of each variable the service gets (at most one is live per name).
fn live_env(env: &[EnvEntry]) -> HashMap<&str, &EnvEntry> {
    env.iter()
        .filter(|e| e.inert.is_none())
        .map(|e| (e.name.as_str(), e))
        .collect()
}

/// systemd specifiers a kubelet unit uses: `%n` (full unit name), `%N` (without the type
/// suffix), `%p` (before any `@`), `%%`. Others are left as written.
fn expand_percent(t: Traced, unit: &str) -> Traced {
    if !t.text.contains('%') {
        return t;
    }
    let stem = unit.rsplit_once('.').map_or(unit, |(s, _)| s);
    let prefix = stem.split('@').next().unwrap_or(stem);
    let mut out = Traced::default();
    let b = t.text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let rep = match b.get(i + 1) {
                Some(b'%') => Some("%"),
                Some(b'n') => Some(unit),
                Some(b'N') => Some(stem),
                Some(b'p') => Some(prefix),
                _ => None,
            };
            if let Some(rep) = rep {
                for c in rep.chars() {
                    out.push(c, t.loc(i));
                }
                i += 2;
                continue;
            }
        }
        let c = t.text[i..].chars().next().unwrap();
        out.push(c, t.loc(i));
        i += c.len_utf8();
    }
    out
}

fn expand(files: &Files, exec: &Directive, env: &[EnvEntry], unit: &str) -> Result<Vec<Arg>> {
    let v = &exec.value;
    // Prefixes @ - : + ! (and !!) may precede the path.
    let skip = v
        .text
        .find(|c: char| !matches!(c, '@' | '-' | ':' | '+' | '!'))
        .unwrap_or(v.text.len());
    let at_prefix = v.text[..skip].contains('@');
    // ':' turns environment variable substitution off: `$VAR` reaches the process as it is.
    let no_subst = v.text[..skip].contains(':');
    let whole = Arc::new(v.slice(skip..v.text.len()));
    let body: &Traced = &whole;
    let ws: Vec<Word> = words::split(body, words::EXEC)
        .map_err(|(m, at)| at_error(files, exec, at + skip, format!("ExecStart=: {m}")))?;
    let vars = live_env(env);
    let live = |name: &str| vars.get(name).copied();
    let mut argv = Vec::with_capacity(ws.len());
    for (i, w) in ws.into_iter().enumerate() {
        if at_prefix && i == 0 {
            continue; // with '@' the second word is argv[0]
        }
        let value = expand_percent(w.value, unit);
        let t = &value.text;
        if no_subst {
            argv.push(Arg {
                value,
                var: None,
                container: whole.clone(),
                raw: w.raw,
                removable: true,
            });
            continue;
        }
        if let Some(name) = t.strip_prefix('$')
            && !name.starts_with('{')
            && !name.starts_with('$')
            && envfile::valid_name(name)
        {
            if let Some(e) = live(name) {
                let value = Arc::new(e.value.clone());
                let var: Arc<str> = name.into();
                let parts = words::split(&e.value, words::VAR_SPLIT).unwrap_or_default();
                argv.reserve(parts.len());
                for p in parts {
                    argv.push(Arg {
                        value: p.value,
                        var: Some(var.clone()),
                        container: value.clone(),
                        raw: p.raw,
                        removable: true,
                    });
                }
            }
            continue;
        }
        let (expanded, var) = replace_braced(value, &vars);
        argv.push(Arg {
            removable: var.is_none(),
            value: expanded,
            var: var.map(Into::into),
            container: whole.clone(),
            raw: w.raw,
        });
    }
    Ok(argv)
}

/// Replace `${NAME}` (exactly, no splitting) and `$$` inside one word.
fn replace_braced(w: Traced, vars: &HashMap<&str, &EnvEntry>) -> (Traced, Option<String>) {
    if !w.text.contains('$') {
        return (w, None);
    }
    let mut out = Traced::default();
    let mut var = None;
    let t = &w.text;
    let mut i = 0;
    while i < t.len() {
        let rest = &t[i..];
        if rest.starts_with("$$") {
            out.push('$', w.loc(i));
            i += 2;
            continue;
        }
        if let Some(inner) = rest.strip_prefix("${")
            && let Some(close) = inner.find('}')
        {
            let name = &inner[..close];
            if let Some(e) = vars.get(name) {
                out.append(&e.value);
            }
            var = Some(name.to_string());
            i += 2 + close + 1;
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(c, w.loc(i));
        i += c.len_utf8();
    }
    (out, var)
}

/// glob(3) as systemd calls it (flags 0): every match of `pattern`, sorted; a component
/// without `*`, `?` or `[` must exist as named. `*` and `?` do not match a leading dot.
fn glob(fs: &NodeFs, pattern: &str) -> Result<Vec<String>> {
    let mut paths = vec![String::new()];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for base in &paths {
            if !comp.contains(['*', '?', '[']) {
                let p = format!("{base}/{}", unescape_glob(comp));
                if (last && fs.exists(&p)) || (!last && fs.is_dir(&p)) {
                    next.push(p);
                }
                continue;
            }
            let dir = if base.is_empty() { "/" } else { base.as_str() };
            for e in fs.read_dir(dir)? {
                if fnmatch(comp.as_bytes(), e.name.as_bytes()) {
                    let p = format!("{base}/{}", e.name);
                    if last || fs.is_dir(&p) {
                        next.push(p);
                    }
                }
            }
        }
        paths = next;
    }
    if comps.is_empty() {
        return Ok(Vec::new());
    }
    paths.sort();
    Ok(paths)
}

fn unescape_glob(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        out.push(if c == '\\' {
            it.next().unwrap_or('\\')
        } else {
            c
        });
    }
    out
}

/// fnmatch(3) for one path component, with glob's rule that a leading dot is matched only
/// literally.
fn fnmatch(p: &[u8], n: &[u8]) -> bool {
    if n.first() == Some(&b'.') && p.first() != Some(&b'.') {
        return false;
    }
    fn m(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|k| m(&p[1..], &n[k..])),
            Some(b'?') => !n.is_empty() && m(&p[1..], &n[1..]),
            Some(b'[') => {
                let Some(c) = n.first() else { return false };
                let mut i = 1;
                let neg = matches!(p.get(i), Some(b'!' | b'^'));
                if neg {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                while i < p.len() && (first || p[i] != b']') {
                    first = false;
                    if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                        hit |= p[i] <= *c && *c <= p[i + 2];
                        i += 3;
                    } else {
                        hit |= p[i] == *c;
                        i += 1;
                    }
                }
                if i >= p.len() {
                    // No closing bracket: '[' is literal.
                    return *c == b'[' && m(&p[1..], &n[1..]);
                }
                hit != neg && m(&p[i + 1..], &n[1..])
            }
            Some(b'\\') if p.len() > 1 => n.first() == Some(&p[1]) && m(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && m(&p[1..], &n[1..]),
        }
    }
    m(p, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn node(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (p, s) in files {
            let p = t.path().join(p.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        }
        t
    }

    fn argv(t: &tempfile::TempDir) -> (Vec<String>, Service) {
        let fs = NodeFs::new(t.path());
        let layout = super::super::lookup::find(&fs, "kubelet.service").unwrap();
        let mut files = Files::default();
        let s = Service::load(&fs, &mut files, layout).unwrap();
        (s.argv.iter().map(|a| a.value.text.clone()).collect(), s)
    }

    #[test]
    fn kubeadm_style_expansion_and_env_file_override() {
        let t = node(&[
            (
                "/usr/lib/systemd/system/kubelet.service",
                "[Service]\nExecStart=/usr/bin/kubelet\n",
            ),
            (
                "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
                "[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\nEnvironment=\"KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\"\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nEnvironmentFile=-/etc/default/kubelet\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS ${KUBELET_EXTRA_ARGS}x\n",
            ),
            (
                "/etc/default/kubelet",
                "KUBELET_EXTRA_ARGS='--node-ip=10.0.0.1 --v=2'\n",
            ),
        ]);
        let (a, s) = argv(&t);
        assert_eq!(
            a,
            vec![
                "/usr/bin/kubelet",
                "--config=/var/lib/kubelet/config.yaml",
                "--node-ip=10.0.0.1",
                "--v=2",
                "--node-ip=10.0.0.1 --v=2x"
            ]
        );
        assert_eq!(s.exec_dropped.len(), 1);
        let inert: Vec<_> = s.env.iter().filter(|e| e.inert.is_some()).collect();
        assert_eq!(inert.len(), 1);
        assert!(
            inert[0]
                .inert
                .as_ref()
                .unwrap()
                .contains("EnvironmentFile= values win")
        );
    }

    #[test]
    fn a_long_environment_file_keeps_what_compaction_may_not_drop() {
        // Past COMPACT_FROM lines overridden assignments are dropped while the file is read:
        // the result must be what the final precedence pass alone gives.
        let mut env = String::new();
        for i in 0..3 * COMPACT_FROM {
            env += &format!("KUBELET_EXTRA_ARGS=--v={}\n", i % 10);
            if i == COMPACT_FROM / 2 {
                env += "KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\n";
            }
            if i == COMPACT_FROM + 7 {
                env += "ONCE=--node-ip=10.0.0.9\n";
            }
        }
        env += "KUBELET_EXTRA_ARGS=--v=4 --max-pods=50\n";
        let t = node(&[
            (
                "/usr/lib/systemd/system/kubelet.service",
                "[Service]\nEnvironment=ONCE=--v=1 DIRECTIVE=--v=2\nEnvironmentFile=/etc/default/kubelet\nExecStart=/usr/bin/kubelet $ONCE $DIRECTIVE $KUBELET_EXTRA_ARGS\n",
            ),
            ("/etc/default/kubelet", &env),
        ]);
        let (a, s) = argv(&t);
        assert_eq!(
            a,
            vec![
                "/usr/bin/kubelet",
                "--node-ip=10.0.0.9",
                "--v=2",
                "--v=4",
                "--max-pods=50"
            ]
        );
        let inert: Vec<_> = s.env.iter().filter(|e| e.inert.is_some()).collect();
        assert_eq!(inert.len(), 1, "only the overridden false is kept");
        assert!(
            inert[0]
                .value
                .text
                .contains("make-iptables-util-chains=false")
        );
        assert!(s.env.len() < 10, "held: {}", s.env.len());
    }

    #[test]
    fn fnmatch_like_glob() {
        assert!(fnmatch(b"*.env", b"a.env"));
        assert!(!fnmatch(b"*.env", b".a.env"));
        assert!(fnmatch(b"[0-9][!a]?", b"1bc"));
        assert!(!fnmatch(b"[0-9][!a]?", b"1ac"));
        assert!(fnmatch(b"a\\*", b"a*"));
    }

    #[test]
    fn env_file_globs_unset_environment_and_colon_prefix() {
        let t = node(&[
            (
                "/etc/systemd/system/kubelet.service",
                "[Service]\nEnvironment=A=--v=1 B=--v=2 C=keep\nEnvironmentFile=-/etc/kubelet.d/*.env\nUnsetEnvironment=B C=other\nExecStart=/usr/bin/kubelet $A $B $C\n",
            ),
            ("/etc/kubelet.d/20.env", "A=--v=20\n"),
            ("/etc/kubelet.d/10.env", "A=--v=10\n"),
            ("/etc/kubelet.d/.hidden.env", "A=--v=99\n"),
        ]);
        let (a, s) = argv(&t);
        assert_eq!(a, vec!["/usr/bin/kubelet", "--v=20", "keep"]);
        assert_eq!(s.env_files.len(), 2);
        let t = node(&[(
            "/etc/systemd/system/kubelet.service",
            "[Service]\nEnvironment=A=--v=1\nExecStart=:/usr/bin/kubelet $A ${A} $$A\n",
        )]);
        assert_eq!(argv(&t).0, vec!["/usr/bin/kubelet", "$A", "${A}", "$$A"]);
    }

    #[test]
    fn two_execstarts_without_reset_is_refused() {
        let t = node(&[
            (
                "/etc/systemd/system/kubelet.service",
                "[Service]\nExecStart=/a\n",
            ),
            (
                "/etc/systemd/system/kubelet.service.d/x.conf",
                "[Service]\nExecStart=/b\n",
            ),
        ]);
        let fs = NodeFs::new(t.path());
        let layout = super::super::lookup::find(&fs, "kubelet.service").unwrap();
        let e = Service::load(&fs, &mut Files::default(), layout)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("x.conf:2:1: a second ExecStart="),
            "{e}"
        );
    }
}
