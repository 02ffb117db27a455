//! The CIS kubelet controls (section 4.2) as rows: ids per benchmark, when each passes, its record form and fix.
//!
//! Facts: docs/kubelet-controls.md (§0 the summary, §2 the ids per kube-bench profile, §3 each
//! setting). A control is judged on the effective values `effective.rs` computes (what the
//! kubelet runs), never on kube-bench's string match; where the two differ the advice says so.
//! Adding a control is a row in [`CONTROLS`] plus its tests.

use crate::effective::{Judgement, Layer, Role};
use crate::evidence::Evidence;
use crate::files::{Check, Facts, FileRule, Which};
use crate::settings::Value;
use serde::Serialize;
use serde_json::json;

/// The benchmark profiles, by kube-bench's names.
pub const BENCHMARKS: &[&str] = &[
    "cis-1.7",
    "cis-1.8",
    "cis-1.9",
    "cis-1.10",
    "cis-1.11",
    "cis-1.12",
    "cis-1.20",
    "cis-1.23",
    "cis-1.24",
    "eks-1.5.0",
    "eks-1.7.0",
    "eks-1.8.0",
    "aks-1.7",
    "aks-1.8",
    "gke-1.6.0",
    "gke-1.9.0",
];

pub const DEFAULT_BENCHMARK: &str = "cis-1.12";

/// The control without `--control`: the tool's first, judged and fixed exactly as before.
pub const DEFAULT_CONTROL: &str = "make-iptables-util-chains";

// Profile groups with the same 4.2 checks (§2).
const CIS_NEW: &[&str] = &[
    "cis-1.7", "cis-1.8", "cis-1.9", "cis-1.10", "cis-1.11", "cis-1.12",
];
const CIS_OLD: &[&str] = &["cis-1.20", "cis-1.23", "cis-1.24"];
const MANAGED: &[&str] = &[
    "eks-1.5.0",
    "eks-1.7.0",
    "eks-1.8.0",
    "aks-1.7",
    "aks-1.8",
    "gke-1.6.0",
];

/// A control's id in a group of benchmarks, and whether it is Automated (scored) there.
#[derive(Debug, Clone, Copy)]
pub struct Cis {
    pub benchmarks: &'static [&'static str],
    pub id: &'static str,
    pub automated: bool,
}

const fn cis(benchmarks: &'static [&'static str], id: &'static str, automated: bool) -> Cis {
    Cis {
        benchmarks,
        id,
        automated,
    }
}

/// How a failing control is fixed.
#[derive(Debug, Clone, Copy)]
pub enum Fix {
    /// The planner removes or rewrites the setting (the one-control planner).
    Planned,
    /// Every place that makes it fail is removed, so a lower layer or the default applies, or
    /// (when that is not enough) given the compliant value; proved on the re-read node
    /// (`fix.rs`).
    Auto(AutoFix),
    /// As `Auto`, but proposed only when the control is named explicitly (never by `all`):
    /// the change can break clients that worked before.
    OptIn(AutoFix),
    /// A person chooses the value: advice only.
    Advice,
    /// A 4.1 file control: chmod to `current & allowed`, chown 0:0 (`files.rs`); no restart.
    File,
}

/// A fix by removing (or rewriting) the places that make a control fail.
#[derive(Debug, Clone, Copy)]
pub struct AutoFix {
    /// The setting whose places are fixed (a row of `settings::SETTINGS`).
    pub setting: &'static str,
    /// Whether what a place sets makes the control fail.
    pub bad: fn(Layer, &Value) -> bool,
    /// What to write where removing is not enough (a lower layer or the default fails too), or
    /// where the place cannot be removed cleanly; `None`: only removal.
    pub good: Option<&'static str>,
    /// The feature gate the fix is about, for a map-valued setting: only that gate's pair or
    /// key is touched.
    pub gate: Option<&'static str>,
    /// When the fix is safe (`Err`: why not; the control stays `fixable: false`).
    pub when: Option<Condition>,
    /// For a list setting: the allowed items in a benchmark. The compliant value is then the
    /// current list's allowed items (in their order), or the whole allowed list.
    pub list: Option<fn(&str) -> &'static [&'static str]>,
}

/// When a fix is safe: `Err` says why not.
pub type Condition = fn(&FixCtx) -> Result<(), String>;

/// What a fix's condition may read: the node's files and the effective values.
pub struct FixCtx<'a> {
    pub fs: &'a crate::root::NodeFs,
    pub ev: &'a Evidence,
    pub j: &'a Judgement,
}

/// The sysctls `setupKernelTunables` checks with protectKernelDefaults, and the values it
/// needs (component-helpers/node/util/sysctl).
pub const KERNEL_TUNABLES: &[(&str, &str)] = &[
    ("vm.overcommit_memory", "1"),
    ("vm.panic_on_oom", "0"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("kernel.keys.root_maxkeys", "1000000"),
    ("kernel.keys.root_maxbytes", "25000000"),
];

/// systemd-sysctl's directories, highest priority first (sysctl.d(5)).
const SYSCTL_DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

impl FixCtx<'_> {
    /// How the user of a kubeconfig authenticates: `cert` (a client certificate), a token kind
    /// (`exec`, `token`, `tokenFile`, `auth-provider`), or why it cannot be told.
    pub fn kubeconfig_auth(&self, path: &str) -> Result<&'static str, String> {
        use crate::config::Value as V;
        let (resolved, text) = self
            .fs
            .read(path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{path} does not exist"))?;
        let f = crate::text::SourceFile::new(path.into(), resolved, text);
        let doc = crate::config::yaml::parse(&f, crate::config::Keep::Tree)
            .map_err(|e| e.to_string())?
            .value;
        let get = |v: &'_ V, k: &str| match v {
            V::Map(m) => m.get(k).cloned(),
            _ => None,
        };
        let named = |list: Option<V>, name: &Option<V>| match list {
            Some(V::Seq(items)) => items
                .into_iter()
                .rfind(|i| name.is_none() || get(i, "name") == *name),
            _ => None,
        };
        let context = get(&doc, "current-context");
        let user_name = named(get(&doc, "contexts"), &context)
            .and_then(|c| get(&c, "context"))
            .and_then(|c| get(&c, "user"));
        let user = named(get(&doc, "users"), &user_name)
            .and_then(|u| get(&u, "user"))
            .ok_or_else(|| format!("{path}: no user for the current context"))?;
        for (key, kind) in [
            ("exec", "exec"),
            ("token", "token"),
            ("tokenFile", "tokenFile"),
            ("auth-provider", "auth-provider"),
        ] {
            if get(&user, key).is_some_and(|v| v != V::Null) {
                return Ok(kind);
            }
        }
        if get(&user, "client-certificate").is_some()
            || get(&user, "client-certificate-data").is_some()
        {
            return Ok("cert");
        }
        Err(format!(
            "{path}: its user has neither a client certificate nor a token"
        ))
    }

    /// The sysctls the kubelet checks that are not persisted with the value it needs in
    /// sysctl.d (systemd-sysctl: a file name in a higher directory hides the same name below;
    /// files apply in name order, the last setting of a key winning), and, unless offline, not
    /// set so in /proc/sys now.
    pub fn kernel_tunables_missing(&self) -> Vec<String> {
        let mut files: std::collections::BTreeMap<String, String> = Default::default();
        for dir in SYSCTL_DIRS.iter().rev() {
            for e in self.fs.read_dir(dir).unwrap_or_default() {
                if e.name.ends_with(".conf") {
                    files.insert(e.name.clone(), format!("{dir}/{}", e.name));
                }
            }
        }
        let mut set: std::collections::HashMap<String, String> = Default::default();
        for path in files.values() {
            let Ok(Some((_, text))) = self.fs.read(path) else {
                continue;
            };
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                if let Some((k, v)) = line.split_once('=') {
                    let k = k.trim().trim_start_matches('-').replace('/', ".");
                    set.insert(k, v.trim().to_string());
                }
            }
        }
        let mut missing = Vec::new();
        for (k, want) in KERNEL_TUNABLES {
            if set.get(*k).map(String::as_str) != Some(*want) {
                missing.push(format!("{k}={want} (not persisted in sysctl.d)"));
                continue;
            }
            if !self.ev.offline {
                let now = self
                    .fs
                    .read(&format!("/proc/sys/{}", k.replace('.', "/")))
                    .ok()
                    .flatten()
                    .map(|(_, t)| t.trim().to_string());
                if now.as_deref() != Some(*want) {
                    missing.push(format!(
                        "{k}={want} (/proc/sys has {})",
                        now.as_deref().unwrap_or("nothing")
                    ));
                }
            }
        }
        missing
    }

    /// The node's host name (`/etc/hostname`, trimmed and lowercased), when readable.
    pub fn hostname(&self) -> Option<String> {
        let (_, text) = self.fs.read("/etc/hostname").ok()??;
        let h = text.trim().to_ascii_lowercase();
        (!h.is_empty()).then_some(h)
    }
}

/// The effective values a control reads, and the benchmark it is judged under; for a 4.1
/// control, its rule and the files' metadata.
pub struct Ctx<'a> {
    pub j: &'a Judgement,
    pub benchmark: &'a str,
    pub file: Option<(&'a FileRule, &'a Facts)>,
}

impl Ctx<'_> {
    fn value(&self, id: &str) -> Option<&Value> {
        self.j.value(id)
    }

    fn bool(&self, id: &str) -> Option<bool> {
        match self.value(id)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn int(&self, id: &str) -> Option<i64> {
        match self.value(id)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn str(&self, id: &str) -> Option<&str> {
        match self.value(id)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    fn json(&self, id: &str) -> serde_json::Value {
        self.value(id)
            .map_or(serde_json::Value::Null, Value::to_json)
    }

    /// A 4.1 control: every file it covers passes its rule.
    fn files_pass(&self) -> bool {
        self.file.is_some_and(|(r, f)| r.passes(f, self.benchmark))
    }

    /// A 4.1 control's value: `{"path", "mode", "owner"}` per file.
    fn files_value(&self) -> serde_json::Value {
        self.file
            .map_or(serde_json::Value::Null, |(r, f)| r.value(f))
    }

    /// The RotateKubeletServerCertificate gate as set (`None`: unset, its default true).
    fn gate(&self) -> Option<bool> {
        match self.value("feature-gates")? {
            Value::Map(m) => m.get("RotateKubeletServerCertificate").copied(),
            _ => None,
        }
    }
}

/// One control.
pub struct Control {
    pub id: &'static str,
    /// When it passes, in words (the README's table).
    pub passes_when: &'static str,
    pub title: &'static str,
    pub cis: &'static [Cis],
    /// The settings it reads (rows of `settings::SETTINGS`): their places are its findings.
    pub settings: &'static [&'static str],
    /// Whether the kubelet's effective values pass it under the context's benchmark.
    pub passes: fn(&Ctx) -> bool,
    /// `effective.value` in the record: one form per control.
    pub value: fn(&Ctx) -> serde_json::Value,
    pub fix: Fix,
    /// What to do when it fails (the facts doc's safe fix, or why there is none).
    pub advice: &'static str,
    /// What kube-bench concludes when nothing sets it (§3), for the disagreement note; for a
    /// 4.1 control, which file kube-bench stats instead (§4).
    pub kube_bench_when_unset: &'static str,
    /// The text kube-bench compares the first flag's value or the --config value with (§1.7:
    /// a string compare), when it compares one: where the kubelet reads the text differently
    /// (`00`, `f`, `0s`, a defaulted `0`), the advice says so.
    pub kube_bench_text: Option<&'static str>,
    /// A 4.1 file control: which of the kubelet's files, and what of them (`settings` is empty).
    pub file: Option<FileRule>,
}

/// The cipher suites the CIS benchmarks allow (§3.12); cis-1.12 drops the two `TLS_RSA_*`.
const CIPHERS_CIS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
];

/// The allowed cipher list of a benchmark; benchmarks without one are judged by cis-1.12's.
pub fn allowed_ciphers(benchmark: &str) -> &'static [&'static str] {
    if matches!(
        benchmark,
        "cis-1.7"
            | "cis-1.8"
            | "cis-1.9"
            | "cis-1.10"
            | "cis-1.11"
            | "cis-1.20"
            | "cis-1.23"
            | "cis-1.24"
    ) {
        CIPHERS_CIS
    } else {
        &CIPHERS_CIS[..6]
    }
}

/// Profiles whose event-qps check needs exactly 0 (§3.8).
fn event_qps_zero(benchmark: &str) -> bool {
    matches!(
        benchmark,
        "cis-1.20" | "cis-1.23" | "aks-1.7" | "aks-1.8" | "gke-1.6.0"
    )
}

// The 4.1 file controls' allowed modes (§4: kube-bench's bitmask per profile); a benchmark
// without the check is judged by cis-1.12's.
fn service_mode(b: &str) -> u32 {
    match b {
        "cis-1.20" | "cis-1.23" => 0o644,
        _ => 0o600,
    }
}

fn kubeconfig_mode(b: &str) -> u32 {
    match b {
        "cis-1.20" | "cis-1.23" => 0o644,
        b if !b.starts_with("cis-") => 0o644,
        _ => 0o600,
    }
}

fn client_ca_mode(b: &str) -> u32 {
    match b {
        "cis-1.7" | "cis-1.8" | "cis-1.9" | "cis-1.10" | "cis-1.24" => 0o600,
        _ => 0o644,
    }
}

fn config_mode(b: &str) -> u32 {
    match b {
        "cis-1.20" | "cis-1.23" | "gke-1.9.0" => 0o644,
        b if b.starts_with("eks-") || b.starts_with("aks-") => 0o644,
        _ => 0o600,
    }
}

// The 4.1 groups: every CIS profile (the first nine of BENCHMARKS), every managed one.
const CIS_ALL: &[&str] = BENCHMARKS.split_at(9).0;
const MANAGED_ALL: &[&str] = BENCHMARKS.split_at(9).1;
// 4.1.9/4.1.10 are Manual in cis-1.7 and cis-1.24 (§2).
const CONFIG_MANUAL: &[&str] = &["cis-1.7", "cis-1.24"];
const CONFIG_AUTOMATED: &[&str] = &[
    "cis-1.8", "cis-1.9", "cis-1.10", "cis-1.11", "cis-1.12", "cis-1.20", "cis-1.23",
];

/// The config file controls' ids: Manual in cis-1.7 and 1.24, Automated elsewhere.
const fn config_cis(id: &'static str, managed: &'static str) -> [Cis; 3] {
    [
        cis(CONFIG_MANUAL, id, false),
        cis(CONFIG_AUTOMATED, id, true),
        cis(MANAGED_ALL, managed, true),
    ]
}
const CONFIG_MODE_CIS: [Cis; 3] = config_cis("4.1.9", "3.1.3");
const CONFIG_OWNER_CIS: [Cis; 3] = config_cis("4.1.10", "3.1.4");

/// A 4.1 control's row: its rule, judged on the files (`files.rs`), fixed by chmod or chown.
#[allow(clippy::too_many_arguments)]
const fn file_control(
    id: &'static str,
    passes_when: &'static str,
    title: &'static str,
    cis: &'static [Cis],
    files: Which,
    check: Check,
    advice: &'static str,
    kube_bench: &'static str,
) -> Control {
    Control {
        id,
        passes_when,
        title,
        cis,
        settings: &[],
        passes: |c| c.files_pass(),
        value: |c| c.files_value(),
        fix: Fix::File,
        advice,
        kube_bench_when_unset: kube_bench,
        kube_bench_text: None,
        file: Some(FileRule { files, check }),
    }
}

const fn mode(allowed: fn(&str) -> u32) -> Check {
    Check::Mode {
        allowed,
        opt_in_drops: 0,
    }
}

const KUBE_BENCH_SERVICE: &str = "kube-bench stats the first existing path of its fixed list ($kubeletsvc: /etc/systemd/system/kubelet.service.d/10-kubeadm.conf, then /etc/systemd/system/kubelet.service, /lib/systemd/system/kubelet.service), not the files systemd loads (current kubeadm packages keep the drop-in under /usr/lib)";
const KUBE_BENCH_KUBECONFIG: &str = "kube-bench stats the first existing path of its fixed list ($kubeletkubeconfig: /etc/kubernetes/kubelet.conf first), not the kubelet's --kubeconfig; the gke profiles stat the kube-proxy kubeconfig";
const KUBE_BENCH_CA: &str = "kube-bench takes the CA from a --client-ca-file= flag in ps (the = form only), else the first existing path of its fixed list; it never reads clientCAFile from the config file";
const KUBE_BENCH_CONFIG: &str = "kube-bench stats the first existing path of its fixed list ($kubeletconf; aks-1.7 stats /etc/kubernetes/azure.json, gke-1.6.0 /home/kubernetes/kubelet-config.yaml), not the kubelet's --config, and never the --config-dir drop-ins";

/// The table: the 4.1 file controls, then the 4.2 settings, each in the benchmarks' order.
pub const CONTROLS: &[Control] = &[
    file_control(
        "service-file-mode",
        "every unit file's mode within 600 (644 in cis-1.20/1.23)",
        "Ensure that the kubelet service file permissions are set to 600 or more restrictive",
        &[cis(CIS_ALL, "4.1.1", true)],
        Which::Unit,
        mode(service_mode),
        "chmod the kubelet unit's fragment and drop-ins to 600 (only the extra bits are dropped); systemd reads them as root, so nothing else needs them",
        KUBE_BENCH_SERVICE,
    ),
    file_control(
        "service-file-owner",
        "every unit file owned by 0:0",
        "Ensure that the kubelet service file ownership is set to root:root",
        &[cis(CIS_ALL, "4.1.2", true)],
        Which::Unit,
        Check::Owner,
        "chown 0:0 the kubelet unit's fragment and drop-ins",
        KUBE_BENCH_SERVICE,
    ),
    file_control(
        "kubeconfig-file-mode",
        "the `--kubeconfig` mode within 600 (644 in cis-1.20/1.23, eks, aks, gke)",
        "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive",
        &[cis(CIS_ALL, "4.1.5", true), cis(MANAGED_ALL, "3.1.1", true)],
        Which::Kubeconfig,
        mode(kubeconfig_mode),
        "chmod the kubelet's --kubeconfig to 600 (644 where the benchmark allows it); it holds the kubelet's credentials, which only the kubelet (root) reads",
        KUBE_BENCH_KUBECONFIG,
    ),
    file_control(
        "kubeconfig-file-owner",
        "the `--kubeconfig` owned by 0:0",
        "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root",
        &[cis(CIS_ALL, "4.1.6", true), cis(MANAGED_ALL, "3.1.2", true)],
        Which::Kubeconfig,
        Check::Owner,
        "chown 0:0 the kubelet's --kubeconfig",
        KUBE_BENCH_KUBECONFIG,
    ),
    file_control(
        "client-ca-file-mode",
        "the client CA's mode within 644 (600 in cis-1.7 to 1.10 and 1.24)",
        "Ensure that the certificate authorities file permissions are set to 644 or more restrictive",
        &[cis(CIS_ALL, "4.1.7", false)],
        Which::ClientCa,
        // §4: below 644 other local readers of the CA (kube-proxy, agents) may lose it.
        Check::Mode {
            allowed: client_ca_mode,
            opt_in_drops: 0o044,
        },
        "chmod the client CA file (the effective clientCAFile) to the benchmark's mode; going below 644 takes read access from other local readers (kube-proxy, monitoring agents), so that fix is made only when the control is named",
        KUBE_BENCH_CA,
    ),
    file_control(
        "client-ca-file-owner",
        "the client CA owned by 0:0",
        "Ensure that the client certificate authorities file ownership is set to root:root",
        &[cis(CIS_ALL, "4.1.8", false)],
        Which::ClientCa,
        Check::Owner,
        "chown 0:0 the client CA file (the effective clientCAFile)",
        KUBE_BENCH_CA,
    ),
    file_control(
        "config-file-mode",
        "`--config` and each `--config-dir` drop-in within 600 (644 in cis-1.20/1.23, eks, aks, gke-1.9.0)",
        "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more restrictive",
        &CONFIG_MODE_CIS,
        Which::Config,
        mode(config_mode),
        "chmod the --config file and each --config-dir drop-in to the benchmark's mode; kubeadm and nodeadm rewrite these files with os.WriteFile, which keeps an existing file's mode, so the chmod survives their rewrites (not a re-image)",
        KUBE_BENCH_CONFIG,
    ),
    file_control(
        "config-file-owner",
        "`--config` and each `--config-dir` drop-in owned by 0:0",
        "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root",
        &CONFIG_OWNER_CIS,
        Which::Config,
        Check::Owner,
        "chown 0:0 the --config file and each --config-dir drop-in",
        KUBE_BENCH_CONFIG,
    ),
    Control {
        id: "anonymous-auth",
        passes_when: "anonymous auth is false",
        title: "Ensure that the --anonymous-auth argument is set to false",
        cis: &[
            cis(CIS_NEW, "4.2.1", true),
            cis(CIS_OLD, "4.2.1", true),
            cis(MANAGED, "3.2.1", true),
        ],
        settings: &["anonymous-auth"],
        passes: |c| c.bool("anonymous-auth") == Some(false),
        value: |c| c.json("anonymous-auth"),
        // Only while the API server can still authenticate to the kubelet (§3.1).
        fix: Fix::Auto(AutoFix {
            setting: "anonymous-auth",
            bad: |_, v| *v == Value::Bool(true),
            good: Some("false"),
            gate: None,
            when: Some(|c| {
                let ca =
                    matches!(c.j.value("client-ca-file"), Some(Value::Str(p)) if !p.is_empty());
                let webhook = c.j.value("authentication-token-webhook") == Some(&Value::Bool(true));
                if ca || webhook {
                    Ok(())
                } else {
                    Err("neither a client CA file nor webhook authentication is configured: with anonymous auth off the API server could no longer authenticate to the kubelet (kubectl logs/exec, metrics would get 401)".into())
                }
            }),
            list: None,
        }),
        advice: "set authentication.anonymous.enabled: false in the --config file (or --anonymous-auth=false without one), and remove any --anonymous-auth=true; first make sure the API server can still authenticate to the kubelet (a client CA file with its CA, or webhook authentication), or kubectl logs/exec and metrics scrapers get 401",
        kube_bench_when_unset: "FAIL (it needs the flag or key to read false; with a --config file the kubelet's default is already false)",
        kube_bench_text: Some("false"),
        file: None,
    },
    Control {
        id: "authorization-mode",
        passes_when: "the mode is not `AlwaysAllow`",
        title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
        cis: &[
            cis(CIS_NEW, "4.2.2", true),
            cis(CIS_OLD, "4.2.2", true),
            cis(MANAGED, "3.2.2", true),
        ],
        settings: &["authorization-mode"],
        passes: |c| {
            c.str("authorization-mode")
                .is_some_and(|m| m != "AlwaysAllow")
        },
        value: |c| c.json("authorization-mode"),
        // §3.2: only with --config (whose default is Webhook), webhook authentication on and a
        // client CA set, so the API server's requests can still be authenticated and authorized.
        fix: Fix::OptIn(AutoFix {
            setting: "authorization-mode",
            bad: |_, v| *v == Value::Str("AlwaysAllow".into()),
            good: Some("Webhook"),
            gate: None,
            when: Some(|c| {
                let mut missing = Vec::new();
                if c.ev.configs.config.is_none() {
                    missing.push("a --config file");
                }
                if c.j.value("authentication-token-webhook") != Some(&Value::Bool(true)) {
                    missing.push("webhook authentication");
                }
                if !matches!(c.j.value("client-ca-file"), Some(Value::Str(p)) if !p.is_empty()) {
                    missing.push("a client CA file");
                }
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "Webhook authorization needs {} first",
                        missing.join(", ")
                    ))
                }
            }),
            list: None,
        }),
        advice: "use authorization.mode: Webhook (the default with a --config file) and drop --authorization-mode=AlwaysAllow; Webhook sends a SubjectAccessReview per request, so the API server's kubelet-client identity needs RBAC (kubeadm binds system:kubelet-api-admin), bearer tokens need webhook authentication and client certificates a client CA file",
        kube_bench_when_unset: "FAIL (it needs the flag or key; with a --config file the kubelet runs Webhook)",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "client-ca-file",
        passes_when: "a client CA file is set",
        title: "Ensure that the --client-ca-file argument is set as appropriate",
        cis: &[
            cis(CIS_NEW, "4.2.3", true),
            cis(CIS_OLD, "4.2.3", true),
            cis(MANAGED, "3.2.3", true),
        ],
        settings: &["client-ca-file"],
        passes: |c| c.str("client-ca-file").is_some_and(|p| !p.is_empty()),
        value: |c| c.json("client-ca-file"),
        fix: Fix::Advice,
        advice: "set authentication.x509.clientCAFile to the cluster CA the API server's kubelet client certificate is signed by (kubeadm and EKS: /etc/kubernetes/pki/ca.crt, AKS: /etc/kubernetes/certs/ca.crt); the file must exist and hold a PEM certificate or the kubelet exits",
        kube_bench_when_unset: "FAIL",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "read-only-port",
        passes_when: "the read-only port is 0",
        title: "Verify that the --read-only-port argument is set to 0",
        cis: &[
            cis(CIS_NEW, "4.2.4", false),
            cis(CIS_OLD, "4.2.4", false),
            cis(MANAGED, "3.2.4", true),
        ],
        settings: &["read-only-port"],
        passes: |c| c.int("read-only-port") == Some(0),
        value: |c| c.json("read-only-port"),
        fix: Fix::Auto(AutoFix {
            setting: "read-only-port",
            bad: |_, v| *v != Value::Int(0),
            good: Some("0"),
            gate: None,
            when: None,
            list: None,
        }),
        advice: "remove --read-only-port=N when a --config file is in use (its default is 0) or set readOnlyPort: 0; without a config file add --read-only-port=0. Consumers of :10255 (old metrics agents) stop working",
        kube_bench_when_unset: "PASS in the CIS profiles (a false pass without a --config file, where the kubelet serves 10255), FAIL in eks/aks",
        kube_bench_text: Some("0"),
        file: None,
    },
    Control {
        id: "streaming-connection-idle-timeout",
        passes_when: "the idle timeout is above 0 (a 0 in `--config` runs as 4h)",
        title: "Ensure that the --streaming-connection-idle-timeout argument is not set to 0",
        cis: &[
            cis(CIS_NEW, "4.2.5", false),
            cis(CIS_OLD, "4.2.5", false),
            cis(MANAGED, "3.2.5", true),
        ],
        settings: &["streaming-connection-idle-timeout"],
        passes: |c| matches!(c.value("streaming-connection-idle-timeout"), Some(Value::Duration(d)) if *d > 0),
        value: |c| c.json("streaming-connection-idle-timeout"),
        // A zero in the --config file is defaulted to 4h: only flags and drop-ins are real zeros.
        fix: Fix::Auto(AutoFix {
            setting: "streaming-connection-idle-timeout",
            bad: |l, v| *v == Value::Duration(0) && !matches!(l, Layer::Config(_)),
            good: None,
            gate: None,
            when: None,
            list: None,
        }),
        advice: "remove every zero (a flag, a --config-dir drop-in) so the 4h default applies; a zero in the --config file is already replaced by 4h when the kubelet loads it. kube-bench compares the text with \"0\": it passes 0s and fails a literal 0 in --config",
        kube_bench_when_unset: "PASS",
        kube_bench_text: Some("0"),
        file: None,
    },
    Control {
        id: "make-iptables-util-chains",
        passes_when: "it is true",
        title: "Ensure that the --make-iptables-util-chains argument is set to true",
        cis: &[
            cis(CIS_NEW, "4.2.6", true),
            cis(CIS_OLD, "4.2.7", true),
            cis(MANAGED, "3.2.6", true),
        ],
        settings: &["make-iptables-util-chains"],
        passes: |c| c.bool("make-iptables-util-chains") == Some(true),
        value: |c| c.json("make-iptables-util-chains"),
        fix: Fix::Planned,
        advice: "remove --make-iptables-util-chains=false (the default is true) or set makeIPTablesUtilChains: true",
        kube_bench_when_unset: "PASS",
        kube_bench_text: Some("true"),
        file: None,
    },
    Control {
        id: "hostname-override",
        passes_when: "no non-empty `--hostname-override`",
        title: "Ensure that the --hostname-override argument is not set",
        cis: &[cis(CIS_NEW, "4.2.7", false), cis(CIS_OLD, "4.2.8", false)],
        settings: &["hostname-override"],
        passes: |c| c.str("hostname-override").is_none_or(str::is_empty),
        value: |c| match c.str("hostname-override") {
            Some(h) if !h.is_empty() => json!(h),
            _ => serde_json::Value::Null,
        },
        // Removing the override changes nothing only when it is the host name already.
        fix: Fix::Auto(AutoFix {
            setting: "hostname-override",
            bad: |_, v| matches!(v, Value::Str(h) if !h.is_empty()),
            good: None,
            gate: None,
            when: Some(|c| {
                let Some(Value::Str(o)) = c.j.value("hostname-override") else {
                    return Err("no override is in force".into());
                };
                let o = o.trim().to_ascii_lowercase();
                match c.hostname() {
                    Some(h) if h == o => Ok(()),
                    Some(h) => Err(format!(
                        "the override ({o}) is not the host name ({h}): removing it renames the node"
                    )),
                    None => Err("the node's /etc/hostname cannot be read, so removing the override could rename the node".into()),
                }
            }),
            list: None,
        }),
        advice: "removing --hostname-override renames the node unless the value equals the host name (trimmed, lowercased): a new Node registers and the old one goes NotReady; on EKS the name must stay the EC2 private DNS name, so keep it there and record the exception",
        kube_bench_when_unset: "PASS (an empty --hostname-override= is unset for the kubelet but present for kube-bench: WARN)",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "event-qps",
        passes_when: "event QPS >= 0 (exactly 0 in cis-1.20/1.23, aks, gke-1.6.0)",
        title: "Ensure that the --event-qps argument is set to a level which ensures appropriate event capture",
        cis: &[
            cis(CIS_NEW, "4.2.8", false),
            cis(CIS_OLD, "4.2.9", false),
            cis(MANAGED, "3.2.7", true),
        ],
        settings: &["event-qps"],
        passes: |c| {
            c.int("event-qps").is_some_and(|q| {
                if event_qps_zero(c.benchmark) {
                    q == 0
                } else {
                    q >= 0
                }
            })
        },
        value: |c| c.json("event-qps"),
        fix: Fix::Advice,
        advice: "the cis-1.20/1.23, aks and gke-1.6.0 profiles pass only eventRecordQPS: 0 (the default is 50): setting 0 may lower event throughput, so choose it deliberately; every other profile passes any value >= 0",
        kube_bench_when_unset: "PASS in cis-1.7 to 1.12 and 1.24, FAIL where exactly 0 is required",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "tls-cert-file",
        passes_when: "both `tlsCertFile` and `tlsPrivateKeyFile` are set",
        title: "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate",
        cis: &[cis(CIS_NEW, "4.2.9", false), cis(CIS_OLD, "4.2.10", false)],
        settings: &["tls-cert-file", "tls-private-key-file"],
        passes: |c| {
            c.str("tls-cert-file").is_some_and(|p| !p.is_empty())
                && c.str("tls-private-key-file").is_some_and(|p| !p.is_empty())
        },
        value: |c| json!({"tlsCertFile": c.json("tls-cert-file"), "tlsPrivateKeyFile": c.json("tls-private-key-file")}),
        fix: Fix::Advice,
        advice: "set tlsCertFile and tlsPrivateKeyFile to a serving certificate signed by a CA the API server trusts; without them the kubelet serves a self-signed one (serverTLSBootstrap: true with approved serving CSRs meets the intent, though kube-bench still warns)",
        kube_bench_when_unset: "WARN",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "rotate-certificates",
        passes_when: "it is true (unset is false)",
        title: "Ensure that the --rotate-certificates argument is not set to false",
        cis: &[
            cis(CIS_NEW, "4.2.10", true),
            cis(CIS_OLD, "4.2.11", true),
            cis(MANAGED, "3.2.8", true),
        ],
        settings: &["rotate-certificates"],
        passes: |c| c.bool("rotate-certificates") == Some(true),
        value: |c| c.json("rotate-certificates"),
        // Only when the kubelet can get a client certificate to rotate (§3.10).
        fix: Fix::Auto(AutoFix {
            setting: "rotate-certificates",
            bad: |_, v| *v == Value::Bool(false),
            good: Some("true"),
            gate: None,
            when: Some(|c| {
                // k3s and RKE2 issue the kubelet's client certificate and rewrite its
                // kubeconfig at every start (pkg/daemons/agent): rotation is theirs.
                if c.ev.platform.kubelet_in_process() {
                    return Err("k3s and RKE2 issue and renew the kubelet's client certificate themselves (its kubeconfig is rewritten at every start): leave rotation to them".into());
                }
                let bootstrap =
                    c.ev.flag("bootstrap-kubeconfig")
                        .is_some_and(|p| !p.is_empty());
                let Some(path) = c.ev.flag("kubeconfig").filter(|p| !p.is_empty()) else {
                    return if bootstrap {
                        Ok(())
                    } else {
                        Err("the kubelet has no --kubeconfig and no --bootstrap-kubeconfig".into())
                    };
                };
                match c.kubeconfig_auth(&path) {
                    Ok("cert") => Ok(()),
                    Ok(kind) => Err(format!(
                        "the kubelet's kubeconfig ({path}) authenticates with {kind}: with certificate rotation on, the kubelet would drop it and wait for a client certificate (EKS)"
                    )),
                    Err(_) if bootstrap => Ok(()),
                    Err(why) => Err(format!("no client certificate to rotate: {why}")),
                }
            }),
            list: None,
        }),
        advice: "set rotateCertificates: true when the kubelet's kubeconfig authenticates with a client certificate (or a --bootstrap-kubeconfig is given) and client CSRs are approved; never on a token or exec-plugin kubeconfig (EKS), where the kubelet would drop its token",
        kube_bench_when_unset: "PASS (a false pass: unset is false for the kubelet)",
        kube_bench_text: Some("true"),
        file: None,
    },
    Control {
        id: "rotate-server-certificates",
        passes_when: "the `RotateKubeletServerCertificate` gate is not false (unset: true)",
        title: "Verify that the RotateKubeletServerCertificate argument is set to true",
        cis: &[
            cis(CIS_NEW, "4.2.11", false),
            cis(CIS_OLD, "4.2.12", false),
            cis(MANAGED, "3.2.9", true),
        ],
        settings: &["feature-gates", "rotate-server-certificates"],
        passes: |c| c.gate() != Some(false),
        value: |c| json!({"RotateKubeletServerCertificate": c.gate(), "serverTLSBootstrap": c.json("rotate-server-certificates")}),
        // Only an explicit false is dropped: the gate's default is true.
        fix: Fix::Auto(AutoFix {
            setting: "feature-gates",
            bad: |_, v| match v {
                Value::Bool(b) => !b,
                Value::Map(m) => m.get("RotateKubeletServerCertificate") == Some(&false),
                _ => false,
            },
            good: Some("true"),
            gate: Some("RotateKubeletServerCertificate"),
            when: None,
            list: None,
        }),
        advice: "remove RotateKubeletServerCertificate=false from --feature-gates or featureGates (the gate defaults to true); to actually rotate the serving certificate also set serverTLSBootstrap: true together with an approver for kubelet-serving CSRs",
        kube_bench_when_unset: "PASS in the CIS profiles, FAIL in eks/aks/gke (they need the gate written as true)",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "tls-cipher-suites",
        passes_when: "a non-empty list, every entry in the benchmark's list",
        title: "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers",
        cis: &[cis(CIS_NEW, "4.2.12", false), cis(CIS_OLD, "4.2.13", false)],
        settings: &["tls-cipher-suites"],
        passes: |c| match c.value("tls-cipher-suites") {
            Some(Value::List(Some(l))) => {
                !l.is_empty()
                    && l.iter()
                        .all(|s| allowed_ciphers(c.benchmark).contains(&s.as_str()))
            }
            _ => false,
        },
        value: |c| c.json("tls-cipher-suites"),
        // §3.12, opt-in: clients that need CBC or RSA key exchange stop connecting.
        fix: Fix::OptIn(AutoFix {
            setting: "tls-cipher-suites",
            // Every place that sets the list: it is written once, where the kubelet reads it.
            bad: |_, _| true,
            good: None,
            gate: None,
            when: None,
            list: Some(allowed_ciphers),
        }),
        advice: "set tlsCipherSuites to the benchmark's list (or keep only its entries); clients that need CBC or RSA key exchange then fail to connect",
        kube_bench_when_unset: "WARN",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "pod-max-pids",
        passes_when: "the pod PID limit is above 0",
        title: "Ensure that a limit is set on pod PIDs",
        cis: &[cis(CIS_NEW, "4.2.13", false)],
        settings: &["pod-max-pids"],
        passes: |c| c.int("pod-max-pids").is_some_and(|p| p > 0),
        value: |c| c.json("pod-max-pids"),
        fix: Fix::Advice,
        advice: "set podPidsLimit to a positive per-pod limit that fits the workloads (-1, the default, means no per-pod limit); kube-bench passes any value, -1 included",
        kube_bench_when_unset: "FAIL",
        kube_bench_text: None,
        file: None,
    },
    Control {
        id: "protect-kernel-defaults",
        passes_when: "it is true",
        title: "Ensure that the --protect-kernel-defaults argument is set to true",
        cis: &[cis(CIS_OLD, "4.2.6", true)],
        settings: &["protect-kernel-defaults"],
        passes: |c| c.bool("protect-kernel-defaults") == Some(true),
        value: |c| c.json("protect-kernel-defaults"),
        // Only when the kubelet would find every value it checks, now and after a reboot.
        fix: Fix::Auto(AutoFix {
            setting: "protect-kernel-defaults",
            bad: |_, v| *v == Value::Bool(false),
            good: Some("true"),
            gate: None,
            when: Some(|c| {
                let missing = c.kernel_tunables_missing();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "with protectKernelDefaults the kubelet exits unless every sysctl it checks has its value; missing: {} (write them to /etc/sysctl.d/90-kubelet.conf and run sysctl --system first)",
                        missing.join(", ")
                    ))
                }
            }),
            list: None,
        }),
        advice: "set protectKernelDefaults: true only after vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.panic=10, kernel.panic_on_oops=1, kernel.keys.root_maxkeys=1000000 and kernel.keys.root_maxbytes=25000000 are set and persisted in /etc/sysctl.d: otherwise the kubelet exits at its next start",
        kube_bench_when_unset: "FAIL",
        kube_bench_text: Some("true"),
        file: None,
    },
    Control {
        id: "seccomp-default",
        passes_when: "the flag or the key is true",
        title: "Ensure that the --seccomp-default parameter is set to true",
        cis: &[cis(&["cis-1.11", "cis-1.12"], "4.2.14", false)],
        settings: &["seccomp-default"],
        passes: |c| c.bool("seccomp-default") == Some(true),
        value: |c| c.json("seccomp-default"),
        fix: Fix::Advice,
        advice: "set seccompDefault: true after checking that workloads run under the RuntimeDefault seccomp profile (pods needing blocked syscalls must set their own profile); kube-bench only checks that the flag or key is present",
        kube_bench_when_unset: "WARN",
        kube_bench_text: None,
        file: None,
    },
];

/// The control with this id.
pub fn get(id: &str) -> Option<&'static Control> {
    CONTROLS.iter().find(|c| c.id == id)
}

impl Control {
    /// Its id and automation in `benchmark`, if the benchmark has it.
    pub fn cis_in(&self, benchmark: &str) -> Option<(&'static str, bool)> {
        self.cis
            .iter()
            .find(|c| c.benchmarks.contains(&benchmark))
            .map(|c| (c.id, c.automated))
    }

    /// The fix column: what this version does about it failing.
    pub fn fix_text(&self) -> &'static str {
        match self.file {
            Some(FileRule {
                check: Check::Mode { opt_in_drops, .. },
                ..
            }) if opt_in_drops != 0 => {
                "automatic (chmod, no restart); opt-in when named where it takes read access away"
            }
            Some(FileRule {
                check: Check::Mode { .. },
                ..
            }) => "automatic (chmod, no restart)",
            Some(FileRule {
                check: Check::Owner,
                ..
            }) => "automatic (chown, no restart)",
            None => fix_word(self.fix),
        }
    }

    /// The benchmark whose rule judges it: the chosen one, or cis-1.12 when the chosen one
    /// lacks the control.
    pub fn rule_benchmark<'b>(&self, benchmark: &'b str) -> &'b str {
        if self.cis_in(benchmark).is_some() {
            benchmark
        } else {
            DEFAULT_BENCHMARK
        }
    }
}

/// Whether `c` passes on these values (a 4.1 control: on these files) under `benchmark` (a
/// benchmark without the control: by the cis-1.12 rule), and its record value.
pub fn evaluate(
    c: &Control,
    j: &Judgement,
    facts: &Facts,
    benchmark: &str,
) -> (bool, serde_json::Value) {
    let ctx = Ctx {
        j,
        benchmark: c.rule_benchmark(benchmark),
        file: c.file.as_ref().map(|r| (r, facts)),
    };
    ((c.passes)(&ctx), (c.value)(&ctx))
}

/// Which controls a command judges, under which benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub benchmark: &'static str,
    /// Control ids, in table order.
    pub ids: Vec<&'static str>,
    /// Named one by one (by id or CIS id): opt-in fixes may be proposed.
    pub explicit: bool,
    /// No `--control`: the first control alone, exactly as before controls existed.
    pub default: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            benchmark: DEFAULT_BENCHMARK,
            ids: vec![DEFAULT_CONTROL],
            explicit: false,
            default: true,
        }
    }
}

impl Selection {
    pub fn has(&self, id: &str) -> bool {
        self.ids.contains(&id)
    }
}

/// `--control LIST` and `--benchmark NAME`: `all`, ids, or CIS ids read in the benchmark.
pub fn select(list: Option<&str>, benchmark: Option<&str>) -> Result<Selection, String> {
    let benchmark = match benchmark {
        None => DEFAULT_BENCHMARK,
        Some(b) => BENCHMARKS
            .iter()
            .copied()
            .find(|n| *n == b)
            .ok_or_else(|| {
                format!(
                    "unknown benchmark \"{b}\" (one of: {})",
                    BENCHMARKS.join(", ")
                )
            })?,
    };
    let Some(list) = list else {
        return Ok(Selection {
            benchmark,
            ..Selection::default()
        });
    };
    let mut picked = Vec::new();
    let mut explicit = true;
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "all" {
            explicit = false;
            picked.extend(CONTROLS.iter().map(|c| c.id));
            continue;
        }
        let c = CONTROLS
            .iter()
            .find(|c| c.id == item || c.cis_in(benchmark).is_some_and(|(id, _)| id == item))
            .ok_or_else(|| {
                format!(
                    "unknown control \"{item}\" (an id from `kubelet-remediate controls`, a CIS id of {benchmark}, or all)"
                )
            })?;
        picked.push(c.id);
    }
    if picked.is_empty() {
        return Err("--control needs at least one control id, CIS id, or all".into());
    }
    let ids = CONTROLS
        .iter()
        .map(|c| c.id)
        .filter(|id| picked.contains(id))
        .collect();
    Ok(Selection {
        benchmark,
        ids,
        explicit,
        default: false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The kubelet would refuse to start.
    Refused,
    /// The tool could not read what it needs.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// `command-line`, `config` or `config-dir`.
    pub kind: &'static str,
    pub path: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EffectiveOut {
    pub value: serde_json::Value,
    /// Where the deciding value is written; null for a default.
    pub source: Option<Source>,
}

/// One place that sets a setting the control reads.
#[derive(Debug, Clone, Serialize)]
pub struct FindingOut {
    pub setting: &'static str,
    #[serde(flatten)]
    pub at: Source,
    /// The setting as written (the argument, or the keys and the value's text).
    pub text: String,
    /// `effective`, `overridden`, `ignored` or `refused`.
    pub role: &'static str,
    pub note: Option<String>,
}

/// A control's verdict, as the record's `report.controls[]` carries it.
#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    pub id: &'static str,
    pub cis: Option<&'static str>,
    pub automated: Option<bool>,
    pub title: &'static str,
    pub status: Status,
    pub effective: EffectiveOut,
    pub fixable: bool,
    pub findings: Vec<FindingOut>,
    pub advice: Vec<String>,
    /// The files pass but the running kubelet does not: a restart applies them.
    #[serde(skip)]
    pub restart_needed: bool,
}

fn kind(layer: Layer) -> &'static str {
    match layer {
        Layer::Flag(_) => "command-line",
        Layer::Config(_) => "config",
        Layer::Dropin(..) => "config-dir",
        Layer::Default => "default",
    }
}

fn source(ev: &Evidence, layer: Layer) -> Option<Source> {
    let o = crate::effective::locate(ev, layer)?;
    Some(Source {
        kind: kind(layer),
        path: o.path,
        line: o.line,
        column: o.column,
    })
}

/// What a place says, as written.
fn text(ev: &Evidence, layer: Layer) -> String {
    let entry = |src: &crate::evidence::ConfigSource, i: usize| {
        let e = &src.doc.entries[i];
        let f = ev.files.get(src.doc.file);
        format!(
            "{}: {}",
            e.written.join("."),
            f.text.get(e.value_span.clone()).unwrap_or("")
        )
    };
    match layer {
        Layer::Flag(i) => ev.argv[ev.cmdline.settings[i].arg].value.text.clone(),
        Layer::Config(i) => ev
            .configs
            .config
            .as_ref()
            .map_or_else(String::new, |c| entry(c, i)),
        Layer::Dropin(d, i) => entry(&ev.configs.dropins[d], i),
        Layer::Default => String::new(),
    }
}

/// Judge the selected controls on the node's files (`j`) and, when a kubelet runs, on what it
/// was started with (`running`): a control passes only when both pass. `planned` says which
/// controls the plan's edits fix.
/// The 4.1 controls are judged on `facts`, the files as they are (no restart involved).
pub fn judge(
    ev: &Evidence,
    j: &Judgement,
    running: Option<&Judgement>,
    facts: &Facts,
    sel: &Selection,
    planned: &dyn Fn(&str) -> bool,
) -> Vec<ControlReport> {
    sel.ids
        .iter()
        .filter_map(|id| get(id))
        .map(|c| match &c.file {
            Some(rule) => one_file(sel, c, rule, facts, planned(c.id)),
            None => one(ev, j, running, sel, c, planned(c.id)),
        })
        .collect()
}

impl ControlReport {
    /// `c`'s verdict in the selection's benchmark (its CIS id and automation there), with its
    /// value; fixable when it fails and the plan fixes it. Findings and advice come after.
    fn of(
        c: &'static Control,
        sel: &Selection,
        status: Status,
        effective: EffectiveOut,
        planned: bool,
    ) -> ControlReport {
        let (cis, automated) = match c.cis_in(sel.benchmark) {
            Some((id, a)) => (Some(id), Some(a)),
            None => (None, None),
        };
        ControlReport {
            id: c.id,
            cis,
            automated,
            title: c.title,
            status,
            effective,
            fixable: status == Status::Fail && planned,
            findings: Vec::new(),
            advice: Vec::new(),
            restart_needed: false,
        }
    }
}

/// A 4.1 control: its files' metadata against the rule. A file that is not a regular file
/// (or cannot be looked at) is an error, never a pass: something unexpected stands there.
fn one_file(
    sel: &Selection,
    c: &'static Control,
    rule: &FileRule,
    facts: &Facts,
    planned: bool,
) -> ControlReport {
    let bench = c.rule_benchmark(sel.benchmark);
    let status = if rule.undecidable(facts) {
        Status::Error
    } else if rule.passes(facts, bench) {
        Status::Pass
    } else {
        Status::Fail
    };
    let mut advice = rule.notes(facts, bench);
    if facts.of(rule.files).is_empty() {
        advice.push(format!(
            "the kubelet names no {}: nothing to protect",
            rule.files.what().trim_start_matches("the ")
        ));
    }
    if bench != sel.benchmark {
        advice.push(format!(
            "{} has no such control: judged by the {DEFAULT_BENCHMARK} rule",
            sel.benchmark
        ));
    }
    if status == Status::Fail {
        if !planned {
            advice.push(c.advice.to_string());
        }
        advice.push(c.kube_bench_when_unset.to_string());
    }
    let value = EffectiveOut {
        value: rule.value(facts),
        source: None,
    };
    ControlReport {
        advice,
        ..ControlReport::of(c, sel, status, value, planned)
    }
}

fn one(
    ev: &Evidence,
    j: &Judgement,
    running: Option<&Judgement>,
    sel: &Selection,
    c: &'static Control,
    planned: bool,
) -> ControlReport {
    let rule = c.rule_benchmark(sel.benchmark);
    let ctx = Ctx {
        j,
        benchmark: rule,
        file: None,
    };
    let mut advice = Vec::new();
    let mut findings = Vec::new();
    let mut decided = None;
    let mut restart_needed = false;
    for id in c.settings {
        let Some(e) = j.get(id) else { continue };
        if decided.is_none() && e.source != Layer::Default {
            decided = Some(e.source);
        }
        for p in &e.places {
            if let Some(at) = source(ev, p.layer) {
                findings.push(FindingOut {
                    setting: e.id,
                    at,
                    text: text(ev, p.layer),
                    role: match p.role {
                        Role::Effective => "effective",
                        Role::Overridden => "overridden",
                        Role::Ignored => "ignored",
                        Role::Refused => "refused",
                    },
                    note: p.note.clone(),
                });
            }
        }
    }
    let status = if j.refused.is_some() {
        Status::Refused
    } else if !(c.passes)(&ctx) {
        Status::Fail
    } else if let Some(r) = running
        && (r.refused.is_some()
            || !(c.passes)(&Ctx {
                j: r,
                benchmark: rule,
                file: None,
            }))
    {
        advice.push(format!(
            "the files pass, but the running kubelet was started with {}: restart {} to apply them",
            (c.value)(&Ctx {
                j: r,
                benchmark: rule,
                file: None
            }),
            ev.service.layout.name
        ));
        restart_needed = true;
        Status::Fail
    } else {
        Status::Pass
    };
    if rule != sel.benchmark {
        advice.push(format!(
            "{} has no such control: judged by the {DEFAULT_BENCHMARK} rule",
            sel.benchmark
        ));
    }
    if status == Status::Fail && !planned {
        let how = match c.fix {
            Fix::Planned | Fix::Auto(_) => "",
            // (An opt-in fix that was not asked for says so in its own advice line.)
            Fix::OptIn(_) => "",
            Fix::Advice => " (a person chooses the value: no automatic fix)",
            Fix::File => "",
        };
        advice.push(format!("{}{how}", c.advice));
    }
    if status != Status::Refused {
        advice.extend(scanner_notes(ev, j, c, status));
    }
    let value = if j.refused.is_some() {
        serde_json::Value::Null
    } else {
        (c.value)(&ctx)
    };
    let value = EffectiveOut {
        value,
        source: decided.and_then(|l| source(ev, l)),
    };
    ControlReport {
        findings,
        advice,
        restart_needed,
        ..ControlReport::of(c, sel, status, value, planned)
    }
}

/// Where kube-bench's reading differs from the kubelet's (§1.7): it reads the first
/// occurrence of a flag in `ps`, else the `--config` key, never drop-ins or defaults.
fn scanner_notes(ev: &Evidence, j: &Judgement, c: &Control, status: Status) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(note) = text_compare(ev, j, c) {
        out.push(note);
    }
    // kube-bench's verdict on an unset setting, when it is not the kubelet's (or depends on
    // the profile).
    let theirs = c.kube_bench_when_unset;
    let differs = theirs.contains(" in ") || (status == Status::Pass) != theirs.starts_with("PASS");
    for id in c.settings {
        let Some(e) = j.get(id) else { continue };
        let flags = e
            .places
            .iter()
            .filter(|p| matches!(p.layer, Layer::Flag(_)))
            .count();
        match e.source {
            Layer::Default if differs => out.push(format!(
                "nothing sets {}: the kubelet runs its default ({}); kube-bench, reading only flags and the --config key, reports {}",
                e.setting.name(),
                if ev.configs.config.is_some() { "the --config default set" } else { "the legacy default set, without --config" },
                c.kube_bench_when_unset
            )),
            Layer::Dropin(..) => out.push(format!(
                "{} comes from a --config-dir drop-in, which kube-bench never reads",
                e.setting.name()
            )),
            Layer::Flag(_) if flags > 1 && e.setting.merge == crate::settings::Merge::LastWins => out.push(format!(
                "{} is given {flags} times: the kubelet takes the last, kube-bench the first",
                e.setting.name()
            )),
            _ => {}
        }
    }
    out
}

/// kube-bench's string compare on the text it would read (the first flag, else the --config
/// value), against the kubelet's reading of the same setting.
fn text_compare(ev: &Evidence, j: &Judgement, c: &Control) -> Option<String> {
    let literal = c.kube_bench_text?;
    let id = c.settings.first()?;
    let e = j.get(id)?;
    let value = e.value.as_ref().ok()?;
    let first_flag = e.places.iter().find(|p| matches!(p.layer, Layer::Flag(_)));
    let config = e
        .places
        .iter()
        .rev()
        .find(|p| matches!(p.layer, Layer::Config(_)));
    let (place, text) = match (first_flag, config) {
        (Some(p), _) => {
            let Layer::Flag(i) = p.layer else { return None };
            let occ = &ev.cmdline.settings[i];
            let arg = &ev.argv[occ.arg].value.text;
            let t = match &occ.value_range {
                Some(r) => arg.get(r.clone())?.to_string(),
                // A bare bool flag: kube-bench's regex reads "true" for it too.
                None if e.setting.ty == crate::settings::FlagType::Bool => "true".into(),
                None => ev.argv.get(occ.arg + 1)?.value.text.clone(),
            };
            (p, t)
        }
        (None, Some(p)) => {
            let Layer::Config(i) = p.layer else {
                return None;
            };
            let src = ev.configs.config.as_ref()?;
            let en = &src.doc.entries[i];
            let f = ev.files.get(src.doc.file);
            let t = f
                .text
                .get(en.value_span.clone())?
                .trim_matches(['"', '\''])
                .to_string();
            (p, t)
        }
        _ => return None,
    };
    let bench_equal = if literal == "true" || literal == "false" {
        text.eq_ignore_ascii_case(literal)
    } else {
        text == literal
    };
    let kubelet_equal = crate::settings::parse(e.setting.ty, literal).ok().as_ref() == Some(value);
    let from = match place.layer {
        Layer::Flag(_) => "the first flag",
        _ => "the --config file",
    };
    (bench_equal != kubelet_equal).then(|| {
        format!(
            "kube-bench reads \"{text}\" ({from}) and compares the text with \"{literal}\", so it takes it as {}{literal}; the kubelet runs {value}: an honest disagreement with the scanner",
            if bench_equal { "" } else { "not " },
        )
    })
}

/// kube-bench's `$kubeletconf`: the first of these that exists (cfg/config.yaml node.kubelet,
/// §1.7), never the path the kubelet's own `--config` names.
const KUBE_BENCH_CONFIGS: &[&str] = &[
    "/etc/kubernetes/kubelet-config.yaml",
    "/etc/kubernetes/kubelet/kubelet-config.json",
    "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
    "/var/lib/kubelet/config.yaml",
    "/etc/kubernetes/azure.json",
    "/var/lib/kubelet/config.yml",
    "/etc/kubernetes/kubelet/config.json",
    "/etc/kubernetes/kubelet/config",
    "/home/kubernetes/kubelet-config.yaml",
    "/home/kubernetes/kubelet-config.yml",
    "/etc/default/kubeletconfig.json",
    "/etc/default/kubelet",
    "/var/lib/kubelet/kubeconfig",
];

/// When kube-bench would read another file than the kubelet's `--config` (or one where the
/// kubelet has none), the note that explains its config-key findings.
pub fn kube_bench_config_note(fs: &crate::root::NodeFs, ev: &Evidence) -> Option<String> {
    let theirs = KUBE_BENCH_CONFIGS.iter().find(|p| fs.exists(p));
    let ours = ev.configs.config.as_ref().map(|c| c.named.as_str());
    match (theirs, ours) {
        (Some(t), Some(o)) if *t == o => None,
        (Some(t), Some(o)) => Some(format!(
            "kube-bench reads its config keys from {t} (the first of its fixed list that exists), not from the kubelet's --config {o}: its findings for config keys describe another file"
        )),
        (None, Some(o)) => Some(format!(
            "kube-bench's fixed list of config paths has no file here: it finds no config key, while the kubelet reads --config {o}"
        )),
        (Some(t), None) => Some(format!(
            "the kubelet runs without --config, but kube-bench reads config keys from {t}: its findings for config keys describe a file the kubelet does not read"
        )),
        (None, None) => None,
    }
}

/// The table as `kubelet-remediate controls` lists it.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub id: &'static str,
    pub cis: Option<&'static str>,
    pub automated: Option<bool>,
    pub title: &'static str,
    pub settings: &'static [&'static str],
    /// A 4.1 control: the files it covers, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<&'static str>,
    pub fix: &'static str,
    pub advice: &'static str,
}

pub fn list(benchmark: &str) -> Vec<Listed> {
    CONTROLS
        .iter()
        .map(|c| {
            let (cis, automated) = c
                .cis_in(benchmark)
                .map_or((None, None), |(i, a)| (Some(i), Some(a)));
            Listed {
                id: c.id,
                cis,
                automated,
                title: c.title,
                settings: c.settings,
                files: c.file.map(|f| f.files.what()),
                fix: c.fix_text(),
                advice: c.advice,
            }
        })
        .collect()
}

/// `Automated` or `Manual` in a benchmark; `None`: the benchmark lacks the control.
pub fn automated_word(automated: Option<bool>) -> Option<&'static str> {
    automated.map(|a| if a { "Automated" } else { "Manual" })
}

/// The fix column: what this version does about a failing control.
pub fn fix_word(f: Fix) -> &'static str {
    match f {
        Fix::Planned | Fix::Auto(_) => "automatic",
        Fix::File => "automatic (chmod or chown, no restart)",
        Fix::OptIn(_) => "automatic when named (opt-in)",
        Fix::Advice => "advice",
    }
}

/// The README's controls table: each control's ids in the benchmark groups, when it passes, and
/// what this version does when it fails (tests/contract.rs holds the README to it).
pub fn markdown_table() -> String {
    let mut o = String::from(
        "| id | cis-1.7 to 1.12 | cis-1.20 to 1.24 | eks, aks, gke-1.6.0 | passes when | when it fails |\n|---|---|---|---|---|---|\n",
    );
    for c in CONTROLS {
        let id = |b: &str| {
            c.cis_in(b).map_or("-".to_string(), |(id, a)| {
                format!("{id}{}", if a { "" } else { " (M)" })
            })
        };
        o += &format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            c.id,
            id("cis-1.12"),
            id("cis-1.24"),
            id("eks-1.8.0"),
            c.passes_when,
            c.fix_text()
        );
    }
    o += "\n(M): Manual in that benchmark (kube-bench warns); otherwise Automated. seccomp-default is in cis-1.11 and cis-1.12 only; gke-1.9.0 has no kubelet 4.2 checks (only 3.1.1 to 3.1.4); 4.1.9 and 4.1.10 are Manual in cis-1.7. The 4.1 controls judge the files the kubelet's command line and config name (a symlink at its target); a fix changes mode or owner only, with no restart.\n";
    o
}
