//! The kubelet settings the CIS section 4.2 controls judge, as data: one row per setting (its
//! flag and pflag type, its config path, both default sets, its merge rule), and the value
//! parsers that read a flag or a default exactly as the kubelet's own libraries do.
//!
//! Facts: docs/kubelet-controls.md (checked against the kubelet's code). Two default sets
//! (§1.1): without `--config` the kubelet applies `applyLegacyDefaults` over the v1beta1
//! defaults, which changes exactly four values (anonymous auth on, webhook authn off, mode
//! AlwaysAllow, read-only port 10255); with `--config` an absent key gets the v1beta1 default.
//! Flag values parse with spf13/pflag's `Set` of each type (§1.4); a repeated scalar flag's last
//! occurrence wins, a repeated stringSlice appends, `--feature-gates` merges per key (§1.2), and
//! `--seccomp-default` is OR'd with the config key (§3.15). Adding a setting is a row here plus
//! its tests.

use std::collections::BTreeMap;
use std::fmt;

/// A flag's pflag type (what its `Set` accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagType {
    /// `strconv.ParseBool`; a bare `--flag` is true.
    Bool,
    /// `strconv.ParseInt(s, 0, 32)`.
    Int32,
    /// `strconv.ParseInt(s, 0, 64)`.
    Int64,
    /// Taken as it is.
    String,
    /// `time.ParseDuration`.
    Duration,
    /// One CSV record (`encoding/csv`); repeated flags append.
    StringSlice,
    /// component-base `MapStringBool`: `k=v[,k=v]`, values by ParseBool; repeated flags merge.
    MapStringBool,
}

/// A setting's value, in one form per type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    /// Nanoseconds, as Go's `time.Duration`.
    Duration(i64),
    Str(String),
    /// A stringSlice; `None` is Go's nil (unset: the library's defaults apply).
    List(Option<Vec<String>>),
    Map(BTreeMap<String, bool>),
}

impl fmt::Display for Value {
    /// The value as the kubelet would print it (Go's `%v`; a duration as `4h0m0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Duration(d) => f.write_str(&format_duration(*d)),
            Value::Str(s) => f.write_str(s),
            Value::List(None) => f.write_str("[]"),
            Value::List(Some(l)) => write!(f, "[{}]", l.join(",")),
            Value::Map(m) => {
                let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                f.write_str(&pairs.join(","))
            }
        }
    }
}

impl Value {
    /// The value in JSON, one form per type: bools, integers, a duration as Go prints it
    /// (`"4h0m0s"`), strings, a list (or null when unset), an object of gates.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Duration(d) => J::String(format_duration(*d)),
            Value::Str(s) => J::String(s.clone()),
            Value::List(None) => J::Null,
            Value::List(Some(l)) => J::from(l.clone()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), J::Bool(*v))).collect()),
        }
    }
}

/// How a setting's sources combine, lowest layer first (defaults, `--config`, `--config-dir`
/// drop-ins in order, flags in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The last layer that sets it wins (a scalar, a struct field, a list replaced wholesale by
    /// a drop-in); repeated flags: the last wins.
    LastWins,
    /// As `LastWins` across files, but repeated flags append (pflag stringSlice: the first
    /// occurrence replaces the file's list, later ones append to it).
    AppendFlags,
    /// A map merged key by key at every layer; the flag wins per key (server.go
    /// `kubeletConfigFlagPrecedence` adds back every config key the flags did not set).
    PerKey,
    /// The flag and the config key are two fields, OR'd by `createAndInitKubelet`
    /// (`--seccomp-default`).
    FlagOrConfig,
}

/// One kubelet setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The flag without dashes (`None`: config only).
    pub flag: Option<&'static str>,
    pub ty: FlagType,
    /// The field's path in a KubeletConfiguration (`None`: flag only, such as
    /// `--hostname-override`).
    pub key: Option<&'static [&'static str]>,
    /// The same field's path in the internal configuration, which has no json tags, so
    /// `json.Marshal` writes the Go field names (pkg/kubelet/apis/config/types.go): the base a
    /// `--config-dir` drop-in is merged into, and whose spelling sorts before a drop-in's.
    pub internal: &'static [&'static str],
    /// The default when the kubelet runs without `--config` (legacy defaults), as Go writes it.
    pub default_without_config: &'static str,
    /// The default when `--config` is given and the key is absent (v1beta1 defaults).
    pub default_with_config: &'static str,
    pub merge: Merge,
    /// How the v1beta1 field decodes and is defaulted.
    pub field: Field,
    /// What the kubelet refuses beyond the type (validation.go and the code that uses it), on
    /// the effective value.
    pub valid: fn(&Value) -> Result<(), String>,
}

/// A v1beta1 field's Go shape, which decides what `null`, a zero and an absent key do
/// (staging/src/k8s.io/kubelet/config/v1beta1/types.go, pkg/kubelet/apis/config/v1beta1/defaults.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A pointer (`*bool`, `*int32`): `null` unsets it; unset, it gets the default.
    Pointer,
    /// A plain value: `null` leaves it as it was; unset, it is the type's zero.
    Plain,
    /// A plain value the defaulting also replaces when zero (`""`, `0s`): `authorization.mode`,
    /// `streamingConnectionIdleTimeout`.
    DefaultedWhenZero,
    /// A pointer whose negative values the defaulting turns into -1 (`podPidsLimit`).
    NegativeIsDefault,
    /// A file path (a plain string): relative in the `--config` file, it resolves against that
    /// file's directory (`resolveRelativePaths` over `KubeletConfigurationPathRefs`).
    Path,
}

impl Setting {
    /// A name for messages: the flag, else the config path.
    pub fn name(&self) -> String {
        match (self.flag, self.key) {
            (Some(f), _) => format!("--{f}"),
            (None, Some(k)) => k.join("."),
            (None, None) => String::new(),
        }
    }

    /// The default for a kubelet started with (`true`) or without a `--config` file.
    pub fn default(&self, with_config: bool) -> Value {
        let text = if with_config {
            self.default_with_config
        } else {
            self.default_without_config
        };
        // A list written as "" in the table is Go's nil: unset, the TLS library's own list.
        if self.ty == FlagType::StringSlice && text.is_empty() {
            return Value::List(None);
        }
        parse(self.ty, text).expect("the table's defaults parse (tested)")
    }

    /// A flag value, as pflag's `Set` of this type reads it; `Err` is why the kubelet refuses.
    pub fn parse_flag(&self, s: &str) -> Result<Value, String> {
        parse(self.ty, s).map_err(|why| {
            format!(
                "invalid argument \"{s}\" for \"{}\" flag: {why}",
                self.name()
            )
        })
    }
}

/// The setting of the first control (CIS 4.2.7 / 4.2.6): the one-control planner's flag and key
/// (`flags::FLAG`, `flags::KEY`) are this row's.
pub const MAKE_IPTABLES_UTIL_CHAINS: Setting = Setting {
    flag: Some("make-iptables-util-chains"),
    ty: FlagType::Bool,
    key: Some(&["makeIPTablesUtilChains"]),
    internal: &["MakeIPTablesUtilChains"],
    default_without_config: "true",
    default_with_config: "true",
    merge: Merge::LastWins,
    field: Field::Pointer,
    valid: valid::any,
};

/// The settings table, by id (the flag's name, or the config key's for config-only settings).
/// `event-qps` defaults to 50 from Kubernetes 1.27 (5 before).
pub const SETTINGS: &[(&str, Setting)] = &[
    (
        "anonymous-auth",
        Setting {
            flag: Some("anonymous-auth"),
            ty: FlagType::Bool,
            key: Some(&["authentication", "anonymous", "enabled"]),
            internal: &["Authentication", "Anonymous", "Enabled"],
            default_without_config: "true",
            default_with_config: "false",
            merge: Merge::LastWins,
            field: Field::Pointer,
            valid: valid::any,
        },
    ),
    (
        "authentication-token-webhook",
        Setting {
            flag: Some("authentication-token-webhook"),
            ty: FlagType::Bool,
            key: Some(&["authentication", "webhook", "enabled"]),
            internal: &["Authentication", "Webhook", "Enabled"],
            default_without_config: "false",
            default_with_config: "true",
            merge: Merge::LastWins,
            field: Field::Pointer,
            valid: valid::any,
        },
    ),
    (
        "authorization-mode",
        Setting {
            flag: Some("authorization-mode"),
            ty: FlagType::String,
            key: Some(&["authorization", "mode"]),
            internal: &["Authorization", "Mode"],
            default_without_config: "AlwaysAllow",
            default_with_config: "Webhook",
            merge: Merge::LastWins,
            field: Field::DefaultedWhenZero,
            valid: valid::authorization_mode,
        },
    ),
    (
        "client-ca-file",
        Setting {
            flag: Some("client-ca-file"),
            ty: FlagType::String,
            key: Some(&["authentication", "x509", "clientCAFile"]),
            internal: &["Authentication", "X509", "ClientCAFile"],
            default_without_config: "",
            default_with_config: "",
            merge: Merge::LastWins,
            field: Field::Path,
            valid: valid::any,
        },
    ),
    (
        "read-only-port",
        Setting {
            flag: Some("read-only-port"),
            ty: FlagType::Int32,
            key: Some(&["readOnlyPort"]),
            internal: &["ReadOnlyPort"],
            default_without_config: "10255",
            default_with_config: "0",
            merge: Merge::LastWins,
            field: Field::Plain,
            valid: valid::port,
        },
    ),
    (
        "streaming-connection-idle-timeout",
        Setting {
            flag: Some("streaming-connection-idle-timeout"),
            ty: FlagType::Duration,
            key: Some(&["streamingConnectionIdleTimeout"]),
            internal: &["StreamingConnectionIdleTimeout"],
            default_without_config: "4h0m0s",
            default_with_config: "4h0m0s",
            merge: Merge::LastWins,
            field: Field::DefaultedWhenZero,
            valid: valid::any,
        },
    ),
    ("make-iptables-util-chains", MAKE_IPTABLES_UTIL_CHAINS),
    (
        "hostname-override",
        Setting {
            flag: Some("hostname-override"),
            ty: FlagType::String,
            key: None,
            internal: &[],
            default_without_config: "",
            default_with_config: "",
            merge: Merge::LastWins,
            field: Field::Plain,
            valid: valid::hostname,
        },
    ),
    (
        "event-qps",
        Setting {
            flag: Some("event-qps"),
            ty: FlagType::Int32,
            key: Some(&["eventRecordQPS"]),
            internal: &["EventRecordQPS"],
            default_without_config: "50",
            default_with_config: "50",
            merge: Merge::LastWins,
            field: Field::Pointer,
            valid: valid::not_negative,
        },
    ),
    (
        "tls-cert-file",
        Setting {
            flag: Some("tls-cert-file"),
            ty: FlagType::String,
            key: Some(&["tlsCertFile"]),
            internal: &["TLSCertFile"],
            default_without_config: "",
            default_with_config: "",
            merge: Merge::LastWins,
            field: Field::Path,
            valid: valid::any,
        },
    ),
    (
        "tls-private-key-file",
        Setting {
            flag: Some("tls-private-key-file"),
            ty: FlagType::String,
            key: Some(&["tlsPrivateKeyFile"]),
            internal: &["TLSPrivateKeyFile"],
            default_without_config: "",
            default_with_config: "",
            merge: Merge::LastWins,
            field: Field::Path,
            valid: valid::any,
        },
    ),
    (
        "rotate-certificates",
        Setting {
            flag: Some("rotate-certificates"),
            ty: FlagType::Bool,
            key: Some(&["rotateCertificates"]),
            internal: &["RotateCertificates"],
            default_without_config: "false",
            default_with_config: "false",
            merge: Merge::LastWins,
            field: Field::Plain,
            valid: valid::any,
        },
    ),
    (
        "rotate-server-certificates",
        Setting {
            flag: Some("rotate-server-certificates"),
            ty: FlagType::Bool,
            key: Some(&["serverTLSBootstrap"]),
            internal: &["ServerTLSBootstrap"],
            default_without_config: "false",
            default_with_config: "false",
            merge: Merge::LastWins,
            field: Field::Plain,
            valid: valid::any,
        },
    ),
    (
        "feature-gates",
        Setting {
            flag: Some("feature-gates"),
            ty: FlagType::MapStringBool,
            key: Some(&["featureGates"]),
            internal: &["FeatureGates"],
            default_without_config: "",
            default_with_config: "",
            merge: Merge::PerKey,
            field: Field::Plain,
            valid: valid::any,
        },
    ),
    (
        "tls-cipher-suites",
        Setting {
            flag: Some("tls-cipher-suites"),
            ty: FlagType::StringSlice,
            key: Some(&["tlsCipherSuites"]),
            internal: &["TLSCipherSuites"],
            default_without_config: "",
            default_with_config: "",
            merge: Merge::AppendFlags,
            field: Field::Plain,
            valid: valid::cipher_suites,
        },
    ),
    (
        "pod-max-pids",
        Setting {
            flag: Some("pod-max-pids"),
            ty: FlagType::Int64,
            key: Some(&["podPidsLimit"]),
            internal: &["PodPidsLimit"],
            default_without_config: "-1",
            default_with_config: "-1",
            merge: Merge::LastWins,
            field: Field::NegativeIsDefault,
            valid: valid::any,
        },
    ),
    (
        "protect-kernel-defaults",
        Setting {
            flag: Some("protect-kernel-defaults"),
            ty: FlagType::Bool,
            key: Some(&["protectKernelDefaults"]),
            internal: &["ProtectKernelDefaults"],
            default_without_config: "false",
            default_with_config: "false",
            merge: Merge::LastWins,
            field: Field::Plain,
            valid: valid::any,
        },
    ),
    (
        "seccomp-default",
        Setting {
            flag: Some("seccomp-default"),
            ty: FlagType::Bool,
            key: Some(&["seccompDefault"]),
            internal: &["SeccompDefault"],
            default_without_config: "false",
            default_with_config: "false",
            merge: Merge::FlagOrConfig,
            field: Field::Pointer,
            valid: valid::any,
        },
    ),
    // Where the kubelet serves /healthz: what apply waits for after a restart with --control.
    (
        "healthz-bind-address",
        Setting {
            flag: Some("healthz-bind-address"),
            ty: FlagType::String,
            key: Some(&["healthzBindAddress"]),
            internal: &["HealthzBindAddress"],
            default_without_config: "127.0.0.1",
            default_with_config: "127.0.0.1",
            merge: Merge::LastWins,
            field: Field::DefaultedWhenZero,
            valid: valid::any,
        },
    ),
    (
        "healthz-port",
        Setting {
            flag: Some("healthz-port"),
            ty: FlagType::Int32,
            key: Some(&["healthzPort"]),
            internal: &["HealthzPort"],
            default_without_config: "10248",
            default_with_config: "10248",
            merge: Merge::LastWins,
            field: Field::Pointer,
            valid: valid::healthz_port,
        },
    ),
];

/// What the kubelet refuses, per setting (each cites the check it follows).
pub mod valid {
    use super::Value;

    pub fn any(_: &Value) -> Result<(), String> {
        Ok(())
    }

    /// validation.go: `readOnlyPort` 0 (off) or a port.
    pub fn port(v: &Value) -> Result<(), String> {
        match v {
            Value::Int(p) if !(0..=65535).contains(p) => Err(format!(
                "readOnlyPort ({p}) must be between 0 and 65535, inclusive"
            )),
            _ => Ok(()),
        }
    }

    /// validation.go: `healthzPort` 0 (off) or a port.
    pub fn healthz_port(v: &Value) -> Result<(), String> {
        match v {
            Value::Int(p) if !(0..=65535).contains(p) => Err(format!(
                "healthzPort ({p}) must be between 0 and 65535, inclusive"
            )),
            _ => Ok(()),
        }
    }

    /// validation.go: `eventRecordQPS` must not be negative.
    pub fn not_negative(v: &Value) -> Result<(), String> {
        match v {
            Value::Int(q) if *q < 0 => Err(format!(
                "eventRecordQPS ({q}) must not be a negative number"
            )),
            _ => Ok(()),
        }
    }

    /// cmd/kubelet/app/auth.go `BuildAuthz`: exactly `AlwaysAllow` or `Webhook`.
    pub fn authorization_mode(v: &Value) -> Result<(), String> {
        match v {
            Value::Str(m) if m.is_empty() => Err("no authorization mode specified".into()),
            Value::Str(m) if m != "AlwaysAllow" && m != "Webhook" => Err(format!(
                "unknown authorization mode {m} (only AlwaysAllow and Webhook, case-sensitive)"
            )),
            _ => Ok(()),
        }
    }

    /// nodeutil.GetHostname: a non-empty override that trims to nothing.
    pub fn hostname(v: &Value) -> Result<(), String> {
        match v {
            Value::Str(h) if !h.is_empty() && h.trim().is_empty() => {
                Err("--hostname-override: empty hostname is invalid".into())
            }
            _ => Ok(()),
        }
    }

    /// component-base cli/flag/ciphersuites_flag.go: the names of Go's `tls.CipherSuites()` and
    /// `tls.InsecureCipherSuites()`, plus two legacy spellings; exact and case-sensitive.
    pub const CIPHER_SUITES: &[&str] = &[
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    ];

    /// `InitializeTLS` → `cliflag.TLSCipherSuites`: an unknown name stops the kubelet.
    pub fn cipher_suites(v: &Value) -> Result<(), String> {
        if let Value::List(Some(l)) = v
            && let Some(bad) = l.iter().find(|c| !CIPHER_SUITES.contains(&c.as_str()))
        {
            return Err(format!("Cipher suite {bad} not supported or doesn't exist"));
        }
        Ok(())
    }
}

/// A configuration value as encoding/json decodes it into the field's Go type (the v1beta1
/// field for `--config`, the internal one after a `--config-dir` merge: the same Go types).
/// `Ok(None)` is JSON null (see [`Field`] for what it does). A `normalized` number (YAML, whose
/// number sigs.k8s.io/yaml re-prints, or a drop-in's, decoded into a map and marshalled again)
/// arrives as Go prints an int64 or float64 (no exponent below 1e21), so `1.0` there decodes
/// into an int32, and `1.0` in a JSON `--config` does not.
pub fn decode(
    ty: FlagType,
    v: &crate::config::Value,
    normalized: bool,
) -> Result<Option<Value>, String> {
    use crate::config::Value as C;
    let kind = crate::config::json::kind(v);
    let mismatch = |go: &str| format!("json: cannot unmarshal {kind} into Go value of type {go}");
    match (ty, v) {
        // metav1.Duration.UnmarshalJSON reads null as "" and ParseDuration("") fails.
        (FlagType::Duration, C::Null) => Err("time: invalid duration \"\"".into()),
        (_, C::Null) => Ok(None),
        (FlagType::Bool, C::Bool(b)) => Ok(Some(Value::Bool(*b))),
        (FlagType::Bool, _) => Err(mismatch("bool")),
        (FlagType::Int32 | FlagType::Int64, C::Num(n)) => {
            let (bits, go) = if ty == FlagType::Int32 {
                (32, "int32")
            } else {
                (64, "int64")
            };
            let json = if normalized {
                yaml_number_as_json(n)?
            } else {
                n.clone()
            };
            json_int(&json, bits)
                .map(|i| Some(Value::Int(i)))
                .ok_or_else(|| {
                    format!("json: cannot unmarshal number {json} into Go value of type {go}")
                })
        }
        (FlagType::Int32, _) => Err(mismatch("int32")),
        (FlagType::Int64, _) => Err(mismatch("int64")),
        (FlagType::Duration, C::Str(s)) => parse_duration(s).map(|d| Some(Value::Duration(d))),
        (FlagType::Duration, _) => Err(mismatch("string")),
        (FlagType::String, C::Str(s)) => Ok(Some(Value::Str(s.clone()))),
        (FlagType::String, _) => Err(mismatch("string")),
        (FlagType::StringSlice, C::Seq(items)) => items
            .iter()
            .map(|i| match i {
                C::Str(s) => Ok(s.clone()),
                other => Err(format!(
                    "json: cannot unmarshal {} into Go value of type string",
                    crate::config::json::kind(other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|l| Some(Value::List(Some(l)))),
        (FlagType::StringSlice, _) => Err(mismatch("[]string")),
        (FlagType::MapStringBool, C::Map(m)) => m
            .iter()
            .map(|(k, v)| match v {
                C::Bool(b) => Ok((k.clone(), *b)),
                other => Err(format!(
                    "json: cannot unmarshal {} into Go value of type bool",
                    crate::config::json::kind(other)
                )),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(|m| Some(Value::Map(m))),
        (FlagType::MapStringBool, _) => Err(mismatch("map[string]bool")),
    }
}

/// encoding/json's int decoding: `strconv.ParseInt(text, 10, bits)` of the number's text.
fn json_int(text: &str, bits: u32) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_int(text.trim_start_matches('+'), bits)
        .ok()
        .filter(|_| !text.starts_with('+'))
        // ParseInt(base 10) has no octal: a JSON number never has a leading 0 besides "0".
        .filter(|_| !(digits.len() > 1 && digits.starts_with('0')))
}

/// The JSON text sigs.k8s.io/yaml writes for a YAML number yaml.v2 resolved (`Resolved::Int`
/// or `Float`): an int in decimal; a float64 as encoding/json prints it ('f' format without an
/// exponent from 1e-6 to 1e21, else 'e'); infinities and NaN cannot be written, so the
/// conversion fails and the kubelet refuses the file.
fn yaml_number_as_json(text: &str) -> Result<String, String> {
    let plain = text.replace('_', "");
    if let Ok(i) = parse_int(&plain, 64) {
        return Ok(i.to_string());
    }
    let unsigned = plain.strip_prefix('+').unwrap_or(&plain);
    let (base, digits) = base0(unsigned);
    if let Ok(u) = u64::from_str_radix(digits, base) {
        return Ok(u.to_string());
    }
    if let Some(rest) = plain
        .strip_prefix("0b")
        .or_else(|| plain.strip_prefix("-0b"))
    {
        // yaml.v2's legacy binary branch (see config::yaml::resolve).
        let neg = plain.starts_with('-') != rest.starts_with('-');
        let b = rest.trim_start_matches(['+', '-']);
        if let Ok(u) = i128::from_str_radix(b, 2) {
            return Ok((if neg { -u } else { u }).to_string());
        }
    }
    let f: f64 = match plain.to_ascii_lowercase().as_str() {
        ".inf" | "+.inf" | "-.inf" | ".nan" => f64::NAN,
        t => t
            .parse()
            .map_err(|_| format!("the number {text} cannot be read"))?,
    };
    if !f.is_finite() {
        return Err(format!(
            "json: unsupported value: {text} (YAML infinity or NaN)"
        ));
    }
    let a = f.abs();
    Ok(if a == 0.0 || (1e-6..1e21).contains(&a) {
        format!("{f}")
    } else {
        format!("{f:e}")
    })
}

/// The setting with this id.
pub fn get(id: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|(i, _)| *i == id).map(|(_, s)| s)
}

/// The setting a (normalized) flag name sets.
pub fn by_flag(flag: &str) -> Option<(&'static str, &'static Setting)> {
    SETTINGS
        .iter()
        .find(|(_, s)| s.flag == Some(flag))
        .map(|(i, s)| (*i, s))
}

/// A value of type `ty` from text, as pflag's `Set` reads it (`--tls-cipher-suites=` is an
/// empty list, `--feature-gates=` an empty map).
pub fn parse(ty: FlagType, s: &str) -> Result<Value, String> {
    match ty {
        FlagType::Bool => parse_bool(s)
            .map(Value::Bool)
            .ok_or_else(|| format!("strconv.ParseBool: parsing \"{s}\": invalid syntax")),
        FlagType::Int32 => parse_int(s, 32).map(Value::Int),
        FlagType::Int64 => parse_int(s, 64).map(Value::Int),
        FlagType::String => Ok(Value::Str(s.to_string())),
        FlagType::Duration => parse_duration(s).map(Value::Duration),
        // pflag's readAsCSV: "" is an empty list, not one empty field.
        FlagType::StringSlice if s.is_empty() => Ok(Value::List(Some(Vec::new()))),
        FlagType::StringSlice => parse_csv(s).map(|l| Value::List(Some(l))),
        FlagType::MapStringBool => parse_map_string_bool(s).map(Value::Map),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, bits)`: an optional sign; the base from the prefix (`0x`,
/// `0o`, `0b`, a leading `0` for octal, else decimal); `_` between digits (base 0 allows it,
/// `underscoreOK` places it); out of range is an error.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing \"{s}\": invalid syntax");
    let range = || format!("strconv.ParseInt: parsing \"{s}\": value out of range");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return Err(syntax());
    }
    let (base, digits) = base0(body);
    if !underscore_ok(body) {
        return Err(syntax());
    }
    let mut n: u128 = 0;
    let mut any = false;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = c.to_digit(base).ok_or_else(syntax)?;
        any = true;
        n = n * base as u128 + d as u128;
        if n > 1 << 64 {
            return Err(range());
        }
    }
    if !any && base != 8 {
        return Err(syntax());
    }
    let max = (1u128 << (bits - 1)) - 1;
    if n > if neg { max + 1 } else { max } {
        return Err(range());
    }
    let v = n as i128;
    Ok(if neg { -v } else { v } as i64)
}

/// ParseUint's base 0 on an unsigned number: the radix and the digits after the prefix (a
/// prefix counts only with a digit after it, `len >= 3`; else a leading 0 is octal).
pub(crate) fn base0(s: &str) -> (u32, &str) {
    let b = s.as_bytes();
    match (b.first(), b.get(1).map(u8::to_ascii_lowercase)) {
        (Some(b'0'), Some(b'x')) if b.len() >= 3 => (16, &s[2..]),
        (Some(b'0'), Some(b'o')) if b.len() >= 3 => (8, &s[2..]),
        (Some(b'0'), Some(b'b')) if b.len() >= 3 => (2, &s[2..]),
        (Some(b'0'), Some(_)) => (8, &s[1..]),
        _ => (10, s),
    }
}

/// Go's `underscoreOK` (strconv/atoi.go), on the number without its sign: an underscore only
/// after a digit or a base prefix, and followed by a digit.
pub(crate) fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    // '^' start, '0' a digit or base prefix, '_' an underscore, '!' anything else.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`; units ns, us, µs, μs,
/// ms, s, m, h; out of range is an error. Nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac = &r[..n];
            rest = &r[n..];
        }
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        let mut v: u128 = 0;
        for d in int.bytes() {
            v = v * 10 + u128::from(d - b'0');
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        v *= scale;
        // The fraction, truncated to whole nanoseconds as Go does (leadingFraction).
        let mut f_scale = scale;
        let mut f_val: u128 = 0;
        for d in frac.bytes() {
            if f_scale < 10 {
                break;
            }
            f_scale /= 10;
            f_val += u128::from(d - b'0') * f_scale;
        }
        total += v + f_val;
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    let limit: u128 = if neg { 1 << 63 } else { (1 << 63) - 1 };
    if total > limit {
        return Err(invalid());
    }
    let t = total as i128;
    Ok(if neg { -t } else { t } as i64)
}

/// Go's `time.Duration.String`: `4h0m0s`, `1m30s`, `1.5s`, `300ms`, `1µs`, `0s`.
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        // Less than a second: one unit, with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("\u{b5}s", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", fraction(u, div));
    }
    let secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = fraction(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// `v / div` with its fraction, trailing zeros dropped (`1500000, 1000000` -> `1.5`).
fn fraction(v: u64, div: u64) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// One CSV record, as pflag's `readAsCSV` reads a stringSlice value (`encoding/csv`, default
/// options: `,` separates, a field starting with `"` is quoted with `""` for a quote; a bare `"`
/// in an unquoted field or text after a closing quote is an error).
pub fn parse_csv(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    let quoted_error =
        || format!("parse error: extraneous or missing \" in quoted-field in \"{s}\"");
    loop {
        if let Some(q) = rest.strip_prefix('"') {
            let mut field = String::new();
            let mut r = q;
            loop {
                match r.find('"') {
                    None => return Err(quoted_error()),
                    Some(i) => {
                        field.push_str(&r[..i]);
                        r = &r[i + 1..];
                        if let Some(after) = r.strip_prefix('"') {
                            field.push('"');
                            r = after;
                            continue;
                        }
                        break;
                    }
                }
            }
            out.push(field);
            match r.chars().next() {
                // Read returns one record: a line break ends it.
                None | Some('\n') | Some('\r') => return Ok(out),
                Some(',') => rest = &r[1..],
                Some(_) => return Err(quoted_error()),
            }
        } else {
            let end = rest.find([',', '\n']).unwrap_or(rest.len());
            let field = &rest[..end];
            if field.contains('"') {
                return Err(format!(
                    "parse error: bare \" in non-quoted-field in \"{s}\""
                ));
            }
            out.push(field.strip_suffix('\r').unwrap_or(field).to_string());
            if !rest[end..].starts_with(',') {
                return Ok(out);
            }
            rest = &rest[end + 1..];
        }
    }
}

/// component-base `MapStringBool.Set`: split on `,`, skip empty pairs, each `k=v` (split once
/// at `=`, both sides trimmed, the value by ParseBool).
pub fn parse_map_string_bool(s: &str) -> Result<BTreeMap<String, bool>, String> {
    let mut m = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err("malformed pair, expect string=bool".into());
        };
        let (k, v) = (k.trim(), v.trim());
        let b = parse_bool(v).ok_or_else(|| {
            format!(
                "invalid value of {k}: {v}, err: strconv.ParseBool: parsing \"{v}\": invalid syntax"
            )
        })?;
        m.insert(k.to_string(), b);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_every_flag_is_a_kubelet_flag_of_its_kind() {
        for (id, s) in SETTINGS {
            for with in [false, true] {
                let _ = s.default(with);
            }
            if let Some(f) = s.flag {
                let kind = crate::flags::kind(f).unwrap_or_else(|| panic!("{id}: --{f} unknown"));
                assert_eq!(
                    kind == crate::flags::Kind::Bool,
                    s.ty == FlagType::Bool,
                    "{id}: kubelet_flags.txt says {kind:?}"
                );
            }
            assert!(s.flag.is_some() || s.key.is_some(), "{id}");
        }
        // The flag list the planner and the Go stand-in share names each row's pflag type.
        for line in include_str!("kubelet_flags.txt").lines() {
            let Some((ty, name)) = line.split_once(' ') else {
                continue;
            };
            let want = match by_flag(name).map(|(_, s)| s.ty) {
                None => continue,
                Some(FlagType::Bool) => "bool",
                Some(FlagType::Int32) => "int32",
                Some(FlagType::Int64) => "int64",
                Some(FlagType::String) => "string",
                Some(FlagType::Duration) => "duration",
                Some(FlagType::StringSlice) => "stringSlice",
                Some(FlagType::MapStringBool) => "mapStringBool",
            };
            assert_eq!(ty, want, "kubelet_flags.txt: {name}");
        }
        // The four legacy defaults differ (docs/kubelet-controls.md §1.1), and only they.
        let differ: Vec<&str> = SETTINGS
            .iter()
            .filter(|(_, s)| s.default(false) != s.default(true))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            differ,
            [
                "anonymous-auth",
                "authentication-token-webhook",
                "authorization-mode",
                "read-only-port"
            ]
        );
        assert_eq!(
            get("read-only-port").unwrap().default(false),
            Value::Int(10255)
        );
        assert_eq!(
            by_flag("make-iptables-util-chains").map(|(id, _)| id),
            Some("make-iptables-util-chains")
        );
    }

    #[test]
    fn integers_parse_as_strconv_parse_int_base_0() {
        for (s, want) in [
            ("0", 0),
            ("00", 0),
            ("10255", 10255),
            ("+5", 5),
            ("-1", -1),
            ("010", 8),
            ("0x0", 0),
            ("0X1f", 31),
            ("0o17", 15),
            ("0b101", 5),
            ("1_000", 1000),
            ("0x_1_0", 16),
            ("0_10", 8),
        ] {
            assert_eq!(parse_int(s, 32), Ok(want), "{s}");
        }
        for bad in [
            "", "-", "1e3", "0x", "0b", "0x__1", "0x1_", "_1", "1__0", "1.0", " 1", "08", "0xg",
        ] {
            assert!(parse_int(bad, 32).is_err(), "{bad}");
        }
        assert_eq!(parse_int("2147483647", 32), Ok(i32::MAX as i64));
        assert!(parse_int("2147483648", 32).is_err());
        assert_eq!(parse_int("-2147483648", 32), Ok(i32::MIN as i64));
        assert_eq!(parse_int("-9223372036854775808", 64), Ok(i64::MIN));
        assert!(parse_int("9223372036854775808", 64).is_err());
        assert!(
            parse_int("70000", 32).is_ok(),
            "a port out of range is validation, not parsing"
        );
    }

    #[test]
    fn durations_parse_and_print_as_go_does() {
        let h = 3_600_000_000_000i64;
        for (s, want) in [
            ("0", 0),
            ("0s", 0),
            ("0h0m0s", 0),
            ("4h", 4 * h),
            ("4h0m0s", 4 * h),
            ("1h30m", h + h / 2),
            ("300ms", 300_000_000),
            ("1.5s", 1_500_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("-1m", -60_000_000_000),
            ("+2s", 2_000_000_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("1us", 1_000),
            ("2ns", 2),
            ("1.0000000009s", 1_000_000_000),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "1", "1d", "h", ".s", "-", "1.5", "1h 30m", "2562048h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for (d, want) in [
            (0, "0s"),
            (4 * h, "4h0m0s"),
            (90_000_000_000, "1m30s"),
            (1_500_000_000, "1.5s"),
            (300_000_000, "300ms"),
            (1_000, "1\u{b5}s"),
            (1_500, "1.5\u{b5}s"),
            (2, "2ns"),
            (-60_000_000_000, "-1m0s"),
            (h + 1, "1h0m0.000000001s"),
        ] {
            assert_eq!(format_duration(d), want, "{d}");
        }
    }

    #[test]
    fn lists_and_maps_parse_as_pflag_and_component_base() {
        assert_eq!(
            parse(FlagType::StringSlice, "a,b"),
            Ok(Value::List(Some(vec!["a".into(), "b".into()])))
        );
        assert_eq!(parse_csv("\"a,b\",c"), Ok(vec!["a,b".into(), "c".into()]));
        assert_eq!(
            parse_csv("\"say \"\"hi\"\"\""),
            Ok(vec!["say \"hi\"".into()])
        );
        assert_eq!(parse_csv(" a , b"), Ok(vec![" a ".into(), " b".into()]));
        assert_eq!(parse_csv("a,"), Ok(vec!["a".into(), "".into()]));
        assert_eq!(parse_csv("a,b\nc"), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(
            parse(FlagType::StringSlice, ""),
            Ok(Value::List(Some(vec![])))
        );
        assert_eq!(
            get("tls-cipher-suites").unwrap().default(true),
            Value::List(None)
        );
        assert!(parse_csv("a\"b").is_err());
        assert!(parse_csv("\"a\"b").is_err());
        assert!(parse_csv("\"a").is_err());
        let m = parse_map_string_bool("RotateKubeletServerCertificate=false, A = true").unwrap();
        assert!(!m["RotateKubeletServerCertificate"]);
        assert!(m["A"]);
        assert_eq!(
            parse_map_string_bool("A").unwrap_err(),
            "malformed pair, expect string=bool"
        );
        assert_eq!(parse_map_string_bool("A=true,,").unwrap().len(), 1);
        assert!(
            parse_map_string_bool("A=true, ").is_err(),
            "a blank pair is not an empty one"
        );
        assert!(parse_map_string_bool("=true").unwrap()[""]);
        assert!(
            parse_map_string_bool("A=yes")
                .unwrap_err()
                .contains("invalid value of A")
        );
        assert!(parse(FlagType::MapStringBool, "").unwrap() == Value::Map(BTreeMap::new()));
        assert_eq!(
            get("read-only-port").unwrap().parse_flag("x").unwrap_err(),
            "invalid argument \"x\" for \"--read-only-port\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
    }
}
