//! Every table setting's effective value, computed as the kubelet computes it, with every place that sets it.
//!
//! cmd/kubelet/app/server.go, per setting (docs/kubelet-controls.md §1):
//! 1. The defaults: without `--config` the legacy set, with it the v1beta1 set (§1.1).
//! 2. `--config`, decoded into the v1beta1 type case-sensitively (JSON: every occurrence in
//!    turn, a type error anywhere refuses; YAML: duplicates already collapsed, the last kept),
//!    then defaulted (an unset pointer gets the default; `""`/`0s` and negative pid limits are
//!    replaced too: [`Field`]). Relative paths resolve against the file's directory.
//! 3. `--config-dir` drop-ins, merged as JSON merge patches into the marshalled internal
//!    configuration (Go field names), then decoded by encoding/json: keys match
//!    case-insensitively and are met in sorted order at every level, so the last spelling in
//!    that order wins; a `null` deletes only its exact spelling; lists are replaced, maps merged.
//! 4. The command line, by the row's merge rule (last wins, stringSlice appends, feature gates
//!    per key, `--seccomp-default` OR'd with the config key).
//!
//! Then what the kubelet refuses on the result (`Setting::valid`, and the serving-certificate
//! rule across two settings). Adding a setting is a row in `settings.rs`: nothing here names one.

use crate::config::{self, Entry, Format};
use crate::evidence::{self, ConfigSource, Evidence, Origin};
use crate::flags::Cmdline;
use crate::settings::{self, Field, FlagType, Merge, Setting, Value};
use std::collections::BTreeMap;

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Nothing sets it: the default of the set in force.
    Default,
    /// `cmdline.settings[i]`.
    Flag(usize),
    /// `configs.config`'s entry `i`.
    Config(usize),
    /// `configs.dropins[d]`'s entry `i`.
    Dropin(usize, usize),
}

/// What one place does to the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It decides the value (for a map or an appended list: it contributes to it).
    Effective,
    /// A later layer, or a later occurrence, wins over it.
    Overridden,
    /// The kubelet never reads it (a mis-cased key in `--config`, a YAML key a later duplicate
    /// hides, a drop-in `null` that deletes nothing the base holds).
    Ignored,
    /// The kubelet refuses to start because of it.
    Refused,
}

#[derive(Debug, Clone)]
pub struct Place {
    pub layer: Layer,
    pub role: Role,
    pub note: Option<String>,
    /// What it sets, decoded (a feature gate's entry: that gate's bool); `None` when it sets
    /// nothing the kubelet reads (null, an ignored or refused place).
    pub sets: Option<Value>,
}

/// One setting's verdict.
#[derive(Debug, Clone)]
pub struct Effective {
    pub id: &'static str,
    pub setting: &'static Setting,
    /// The value the kubelet runs with, or why it refuses to start over this setting.
    pub value: Result<Value, String>,
    /// The layer that decided the value (the last contributing one for merged values).
    pub source: Layer,
    /// Every place that sets it, lowest precedence first.
    pub places: Vec<Place>,
}

/// Every setting of the table, in table order, and the first reason the kubelet refuses.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    pub settings: Vec<Effective>,
    pub refused: Option<String>,
}

impl Judgement {
    pub fn get(&self, id: &str) -> Option<&Effective> {
        self.settings.iter().find(|e| e.id == id)
    }

    /// The effective value of `id` when the kubelet would start.
    pub fn value(&self, id: &str) -> Option<&Value> {
        self.get(id)?.value.as_ref().ok()
    }
}

/// Where a layer is written, for messages and reports.
pub fn locate(ev: &Evidence, layer: Layer) -> Option<Origin> {
    match layer {
        Layer::Default => None,
        Layer::Flag(i) => evidence::arg_origin(&ev.files, &ev.argv[ev.cmdline.settings[i].arg]),
        Layer::Config(i) => ev.configs.config.as_ref().map(|c| origin(c, i)),
        Layer::Dropin(d, i) => Some(origin(&ev.configs.dropins[d], i)),
    }
}

pub fn judge(ev: &Evidence) -> Judgement {
    let cwd = ev.service.working_dir.as_deref().unwrap_or("/");
    judge_sources(&ev.cmdline, &ev.configs, cwd, &|layer| locate(ev, layer))
}

/// The running kubelet's settings, from the command line and files it was started with.
pub fn judge_running(ev: &Evidence, r: &evidence::Running) -> Judgement {
    let cwd = ev.service.working_dir.as_deref().unwrap_or("/");
    let locate = |layer| match layer {
        Layer::Config(i) => r.configs.config.as_ref().map(|c| origin(c, i)),
        Layer::Dropin(d, i) => Some(origin(&r.configs.dropins[d], i)),
        _ => None,
    };
    judge_sources(&r.cmdline, &r.configs, cwd, &locate)
}

fn origin(src: &ConfigSource, i: usize) -> Origin {
    let e = &src.doc.entries[i];
    Origin {
        path: src.named.clone(),
        line: e.line,
        column: e.column,
    }
}

/// The settings a command line and its configuration files give; `locate` places a layer for
/// messages.
pub fn judge_sources(
    cmd: &Cmdline,
    configs: &evidence::Configs,
    cwd: &str,
    locate: &dyn Fn(Layer) -> Option<Origin>,
) -> Judgement {
    let mut settings: Vec<Effective> = settings::SETTINGS
        .iter()
        .map(|(id, s)| one(cmd, configs, cwd, id, s))
        .collect();
    cross_checks(&mut settings);
    let at = |layer| {
        locate(layer)
            .map(|o| format!("{}:{}:{}: ", o.path, o.line, o.column))
            .unwrap_or_default()
    };
    let refused = cmd
        .refused
        .first()
        .map(|(_, why)| why.clone())
        .or_else(|| {
            configs
                .dropins
                .iter()
                .find_map(|d| d.doc.duplicate.as_ref().map(|dup| (d, dup)))
                .map(|(d, (k, line, col))| {
                    format!(
                        "{}:{line}:{col}: \"{k}\" is defined twice: a --config-dir drop-in is decoded strictly, with no lenient fallback, so the kubelet refuses to start",
                        d.named
                    )
                })
        })
        .or_else(|| {
            settings.iter().find_map(|e| {
                e.value
                    .as_ref()
                    .err()
                    .map(|why| format!("{}{why}", at(e.source)))
            })
        });
    Judgement { settings, refused }
}

/// A value with where it came from, as the layers are folded.
struct State {
    value: Value,
    source: Layer,
}

fn one(
    cmd: &Cmdline,
    configs: &evidence::Configs,
    cwd: &str,
    id: &'static str,
    s: &'static Setting,
) -> Effective {
    let mut places = Vec::new();
    let mut st = State {
        value: s.default(configs.config.is_some()),
        source: Layer::Default,
    };
    let out = |value: Result<Value, String>, source, places| Effective {
        id,
        setting: s,
        value,
        source,
        places,
    };
    if let (Some(key), Some(src)) = (s.key, &configs.config) {
        if let Err((why, at)) = from_config(s, key, src, &mut st, &mut places) {
            return out(Err(why), at, places);
        }
        if s.field == Field::Path
            && let Value::Str(p) = &st.value
            && !p.is_empty()
            && !p.starts_with('/')
            && st.source != Layer::Default
        {
            let dir = src.named.rsplit_once('/').map_or("/", |(d, _)| d);
            st.value = Value::Str(crate::root::join(if dir.is_empty() { "/" } else { dir }, p));
        }
    }
    if let (Some(key), Some(_)) = (s.key, &configs.config_dir)
        && let Err((why, at)) = from_dropins(s, key, &configs.dropins, &mut st, &mut places)
    {
        return out(Err(why), at, places);
    }
    from_flags(id, s, cmd, cwd, &mut st, &mut places);
    if let Err(why) = (s.valid)(&st.value) {
        for p in places.iter_mut().filter(|p| p.role == Role::Effective) {
            p.role = Role::Refused;
        }
        return out(Err(why), st.source, places);
    }
    let State { value, source } = st;
    out(Ok(value), source, places)
}

/// `--config`: decoded case-sensitively into the v1beta1 type, then defaulted.
fn from_config(
    s: &Setting,
    key: &'static [&'static str],
    src: &ConfigSource,
    st: &mut State,
    places: &mut Vec<Place>,
) -> Result<(), (String, Layer)> {
    let yaml = src.doc.format == Format::Yaml;
    let mut first_error: Option<(String, Layer)> = None;
    let mut set = false;
    for (i, e, value) in candidates(&src.doc.entries, key) {
        let layer = Layer::Config(i);
        if !e.exact_keys() {
            places.push(Place {
                layer,
                role: Role::Ignored,
                note: Some(format!(
                    "\"{}\" is not the field's spelling ({}): --config is decoded case-sensitively, so the kubelet ignores it",
                    e.written.join("."),
                    key.join(".")
                )),
                sets: None,
            });
            continue;
        }
        if e.shadowed {
            places.push(Place {
                layer,
                role: Role::Ignored,
                note: Some("a later key of the same name in this YAML mapping hides it (duplicates collapse to the last)".into()),
                sets: None,
            });
            continue;
        }
        match decode_at(s, e, value, yaml) {
            Err(why) => {
                places.push(Place {
                    layer,
                    role: Role::Refused,
                    note: Some(why.clone()),
                    sets: None,
                });
                first_error.get_or_insert((why, layer));
            }
            Ok(Some(v)) => {
                let sets = Some(v.clone());
                merge_value(s, &mut st.value, v, e.gate());
                st.source = layer;
                set = true;
                places.push(Place {
                    layer,
                    role: Role::Effective,
                    note: None,
                    sets,
                });
            }
            Ok(None) if e.gate().is_some() => {
                // A map element is decoded into a fresh zero value: a null gate is false.
                merge_value(s, &mut st.value, Value::Bool(false), e.gate());
                st.source = layer;
                set = true;
                places.push(Place {
                    layer,
                    role: Role::Effective,
                    note: Some("null decodes into a map element as false".into()),
                    sets: Some(Value::Bool(false)),
                });
            }
            Ok(None) if e.written.len() < key.len() => {
                places.push(Place {
                    layer,
                    role: Role::Ignored,
                    note: Some("null where a struct is expected leaves it as it was".into()),
                    sets: None,
                });
            }
            Ok(None) => {
                // null sets a pointer, a slice or a map to nil (unset: the default applies
                // again); it leaves a plain value as it was.
                let nil = matches!(s.field, Field::Pointer | Field::NegativeIsDefault)
                    || matches!(s.ty, FlagType::StringSlice | FlagType::MapStringBool);
                if nil {
                    st.value = s.default(true);
                    st.source = Layer::Default;
                }
                places.push(Place {
                    layer,
                    role: Role::Effective,
                    note: Some("null leaves the field unset: the default applies".into()),
                    sets: None,
                });
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    supersede(places, |l| matches!(l, Layer::Config(_)), st.source, s);
    // v1beta1 defaulting on what the file decoded to.
    let zero = match (&st.value, s.field) {
        (Value::Str(v), Field::DefaultedWhenZero) => v.is_empty(),
        (Value::Duration(d), Field::DefaultedWhenZero) => *d == 0,
        (Value::Int(i), Field::NegativeIsDefault) => *i < 0,
        _ => false,
    };
    if set && zero {
        let note = format!(
            "the kubelet's defaulting replaces {} with {} when it loads --config",
            st.value,
            s.default(true)
        );
        st.value = s.default(true);
        if let Some(p) = places.iter_mut().rev().find(|p| p.layer == st.source) {
            p.note = Some(note);
        }
    }
    Ok(())
}

/// `--config-dir`: each drop-in a merge patch over the marshalled internal configuration,
/// whose field names sort before a drop-in's spelling; encoding/json then meets every spelling
/// in sorted order and the last one wins.
fn from_dropins(
    s: &Setting,
    key: &'static [&'static str],
    dropins: &[ConfigSource],
    st: &mut State,
    places: &mut Vec<Place>,
) -> Result<(), (String, Layer)> {
    // The merged document's spellings of this setting: written path → (value, layer).
    type Merged = BTreeMap<Vec<String>, (Result<Option<Value>, String>, Layer)>;
    let mut merged: Merged = BTreeMap::new();
    let base: Vec<String> = s.internal.iter().map(|k| k.to_string()).collect();
    if let Value::Map(m) = &st.value {
        for (g, b) in m {
            let mut p = base.clone();
            p.push(g.clone());
            merged.insert(p, (Ok(Some(Value::Bool(*b))), st.source));
        }
    } else {
        merged.insert(base, (Ok(Some(st.value.clone())), st.source));
    }
    let first_dropin = places.len();
    for (d, src) in dropins.iter().enumerate() {
        // A drop-in is decoded into a map first (sigs.k8s.io/json, PreserveInts) and marshalled
        // again, so its JSON numbers are re-printed as Go prints an int64 or float64, as a
        // YAML number is: `1.0` reaches the field as `1`.
        let normalized = true;
        for (i, e, value) in candidates(&src.doc.entries, key) {
            let layer = Layer::Dropin(d, i);
            let w = &e.written;
            if *value == config::Value::Null {
                // RFC 7386: null deletes the exact key (and what lies under it).
                let before = merged.len();
                merged.retain(|k, _| !k.starts_with(w));
                let note = if merged.len() == before {
                    "null in a drop-in deletes only this exact spelling from the merged configuration, which does not hold it: the value from --config (or the default) stays"
                } else {
                    "null in a drop-in deletes this key from the merged configuration"
                };
                places.push(Place {
                    layer,
                    role: Role::Ignored,
                    note: Some(note.into()),
                    sets: None,
                });
                continue;
            }
            // A value replaces whatever a prefix of it, or the key itself, held.
            merged.retain(|k, _| !(k.starts_with(w) || w.starts_with(k)));
            let decoded = decode_at(s, e, value, normalized);
            let sets = decoded.clone().ok().flatten();
            merged.insert(w.clone(), (decoded, layer));
            places.push(Place {
                layer,
                role: Role::Effective,
                note: None,
                sets,
            });
        }
    }
    // Decoded in sorted order: a type error anywhere refuses; per field (per gate) the last wins.
    let mut value = st.value.clone();
    if let Value::Map(m) = &mut value {
        m.clear();
    }
    let mut source = st.source;
    for (path, (v, layer)) in &merged {
        match v {
            Err(why) => return Err((why.clone(), *layer)),
            Ok(None) => {}
            Ok(Some(v)) => {
                let gate = (path.len() > key.len()).then(|| path[key.len()].as_str());
                merge_value(s, &mut value, v.clone(), gate);
                source = *layer;
            }
        }
    }
    st.value = value;
    st.source = source;
    let winners: Vec<Layer> = merged.values().map(|(_, l)| *l).collect();
    for p in &mut places[first_dropin..] {
        if p.role == Role::Effective && !winners.contains(&p.layer) {
            p.role = Role::Overridden;
            p.note = Some(
                "another drop-in's value, or a spelling encoding/json meets later, wins".into(),
            );
        }
    }
    if !winners.iter().any(|l| matches!(l, Layer::Config(_))) {
        supersede(places, |l| matches!(l, Layer::Config(_)), st.source, s);
        for p in places[..first_dropin].iter_mut() {
            if p.role == Role::Effective && matches!(st.source, Layer::Dropin(..)) && !is_map(s) {
                p.role = Role::Overridden;
                p.note = Some("a --config-dir drop-in wins over --config".into());
            }
        }
    }
    Ok(())
}

/// The command line, by the row's merge rule.
fn from_flags(
    id: &str,
    s: &Setting,
    cmd: &Cmdline,
    cwd: &str,
    st: &mut State,
    places: &mut Vec<Place>,
) {
    let occ: Vec<usize> = (0..cmd.settings.len())
        .filter(|i| cmd.settings[*i].id == id)
        .collect();
    let Some(&last) = occ.last() else {
        return;
    };
    let lower = places.len();
    let files_value = st.value.clone();
    for (n, &i) in occ.iter().enumerate() {
        let mut v = cmd.settings[i].value.clone();
        if s.field == Field::Path
            && let Value::Str(p) = &v
            && !p.is_empty()
            && !p.starts_with('/')
        {
            // A relative flag value is opened from the kubelet's working directory.
            v = Value::Str(crate::root::join(cwd, p));
        }
        let sets = Some(v.clone());
        match (s.merge, n) {
            // pflag stringSlice: the first Set replaces the list, later ones append.
            (Merge::AppendFlags, 0) | (Merge::LastWins | Merge::FlagOrConfig, _) => st.value = v,
            (Merge::AppendFlags, _) => {
                if let (Value::List(Some(a)), Value::List(b)) = (&mut st.value, v) {
                    a.extend(b.unwrap_or_default());
                }
            }
            // kubeletConfigFlagPrecedence: the flag's gates win per key, the config's others stay.
            (Merge::PerKey, _) => merge_value(s, &mut st.value, v, None),
        }
        places.push(Place {
            layer: Layer::Flag(i),
            role: Role::Effective,
            note: None,
            sets,
        });
    }
    let (in_files, on_cmdline) = places.split_at_mut(lower);
    let overridden = |p: &mut Place, why: &str| {
        if p.role == Role::Effective {
            p.role = Role::Overridden;
            p.note = Some(why.into());
        }
    };
    match s.merge {
        Merge::LastWins | Merge::FlagOrConfig => {
            for p in on_cmdline
                .iter_mut()
                .filter(|p| p.layer != Layer::Flag(last))
            {
                overridden(p, "a later occurrence on the command line wins");
            }
        }
        Merge::AppendFlags | Merge::PerKey => {}
    }
    match s.merge {
        Merge::LastWins | Merge::AppendFlags => {
            st.source = Layer::Flag(last);
            for p in in_files.iter_mut() {
                overridden(p, "the command line wins over the configuration files");
            }
        }
        Merge::PerKey => st.source = Layer::Flag(last),
        Merge::FlagOrConfig => {
            // createAndInitKubelet: the flag's field OR the configuration's.
            let flag = st.value == Value::Bool(true);
            let config = files_value == Value::Bool(true);
            st.value = Value::Bool(flag || config);
            if flag {
                st.source = Layer::Flag(last);
                for p in in_files.iter_mut() {
                    overridden(
                        p,
                        "the flag is true, and the kubelet ORs it with the configuration",
                    );
                }
            } else if let Some(p) = on_cmdline.iter_mut().find(|p| p.layer == Layer::Flag(last)) {
                overridden(
                    p,
                    "a false flag cannot turn off the configuration's value: the kubelet ORs the two",
                );
            }
        }
    }
}

fn is_map(s: &Setting) -> bool {
    s.ty == FlagType::MapStringBool
}

/// Mark earlier places of the same file layer overridden by the one that decided.
fn supersede(places: &mut [Place], of: impl Fn(Layer) -> bool, winner: Layer, s: &Setting) {
    if is_map(s) {
        return;
    }
    for p in places.iter_mut() {
        if of(p.layer) && p.layer != winner && p.role == Role::Effective && p.note.is_none() {
            p.role = Role::Overridden;
            p.note = Some("a later occurrence in this file wins".into());
        }
    }
}

/// Put a decoded value into the state: a gate into the map, a map merged per key, else replace.
fn merge_value(s: &Setting, into: &mut Value, v: Value, gate: Option<&str>) {
    match (into, v, gate) {
        (Value::Map(m), Value::Bool(b), Some(g)) => {
            m.insert(g.to_string(), b);
        }
        (Value::Map(m), Value::Map(add), None) if is_map(s) => m.extend(add),
        (into, v, _) => *into = v,
    }
}

/// Decode an entry's value for the setting (a gate's value as a bool).
fn decode_at(
    s: &Setting,
    e: &Entry,
    value: &config::Value,
    normalized: bool,
) -> Result<Option<Value>, String> {
    if let config::Value::Folded { .. } = value {
        return Err("a value reached through a YAML alias of a digested collection cannot be judged: inline it".into());
    }
    let ty = if e.gate().is_some() {
        FlagType::Bool
    } else if e.written.len() < s.key.map_or(0, <[_]>::len) {
        // null into a struct leaves it as it was (encoding/json); in a drop-in the merge
        // patch has already deleted the key.
        if *value == config::Value::Null {
            return Ok(None);
        }
        // A non-mapping where a struct is expected (`authentication: 5`).
        return Err(format!(
            "json: cannot unmarshal {} into Go struct field {} of type struct",
            config::json::kind(value),
            e.written.join(".")
        ));
    } else {
        s.ty
    };
    settings::decode(ty, value, normalized).map_err(|why| format!("{}: {why}", e.written.join(".")))
}

/// The entries of a file that concern the table path `key`, with the value each gives it: the
/// key itself, a gate under it, or a prefix holding a non-mapping (or, through an alias, a
/// mapping searched for the rest of the path).
fn candidates<'e>(
    entries: &'e [Entry],
    key: &'static [&'static str],
) -> impl Iterator<Item = (usize, &'e Entry, &'e config::Value)> {
    entries.iter().enumerate().filter_map(move |(i, e)| {
        if e.path == key {
            return Some((i, e, &e.value));
        }
        if key.starts_with(e.path) && e.path.len() < key.len() {
            return match &e.value {
                config::Value::Map(m) => lookup(m, &key[e.path.len()..]).map(|v| (i, e, v)),
                v => Some((i, e, v)),
            };
        }
        None
    })
}

/// A path inside a mapping reached through an alias (keys matched as encoding/json does).
fn lookup<'v>(m: &'v BTreeMap<String, config::Value>, rest: &[&str]) -> Option<&'v config::Value> {
    let (first, more) = rest.split_first()?;
    let (_, v) = m.iter().rev().find(|(k, _)| config::folds_eq(k, first))?;
    match (more.is_empty(), v) {
        (true, v) => Some(v),
        (false, config::Value::Map(inner)) => lookup(inner, more),
        (false, v) => Some(v),
    }
}

/// Rules across two settings (validation.go): a serving-certificate request needs the gate.
fn cross_checks(all: &mut [Effective]) {
    let value = |all: &[Effective], id: &str| {
        all.iter()
            .find(|e| e.id == id)
            .and_then(|e| e.value.as_ref().ok().cloned())
    };
    let bootstrap = value(all, "rotate-server-certificates");
    let gates = value(all, "feature-gates");
    if let (Some(Value::Bool(true)), Some(Value::Map(g))) = (bootstrap, gates)
        && g.get("RotateKubeletServerCertificate") == Some(&false)
        && let Some(e) = all
            .iter_mut()
            .find(|e| e.id == "rotate-server-certificates")
    {
        e.value = Err("invalid configuration: serverTLSBootstrap true requires feature gate RotateKubeletServerCertificate".into());
    }
}

/// Why the kubelet exits over its client CA file, if it does: `InitializeTLS` loads a set
/// `clientCAFile` with `certutil.NewPool`, so a file that cannot be read, or holds no PEM
/// certificate, stops it (docs/kubelet-controls.md §3.3). Read inside the node's root.
pub fn client_ca_refusal(fs: &crate::root::NodeFs, j: &Judgement) -> Option<String> {
    let Some(Value::Str(path)) = j.value("client-ca-file") else {
        return None;
    };
    if path.is_empty() {
        return None;
    }
    match fs.read(path) {
        Ok(Some((_, text))) if has_pem_certificate(&text) => None,
        Ok(Some(_)) => Some(format!(
            "unable to load client CA file {path}: data does not contain any valid RSA or ECDSA certificates"
        )),
        Ok(None) => Some(format!(
            "unable to load client CA file {path}: open {path}: no such file or directory"
        )),
        Err(e) => Some(format!("unable to load client CA file {path}: {e}")),
    }
}

/// A PEM block of type CERTIFICATE whose body is base64.
fn has_pem_certificate(text: &str) -> bool {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    text.split(begin).skip(1).any(|rest| {
        rest.split_once(end).is_some_and(|(body, _)| {
            let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            !b64.is_empty()
                && b64.len().is_multiple_of(4)
                && b64
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        })
    })
}
