//! Property: wherever the setting is placed, and however it is spelled, the planned edit makes
//! the node evaluate to true, touches only lines that carry the setting, leaves every other
//! argument and config value as it was, and planning again finds nothing to do.

mod common;
use common::*;
use kubelet_remediate::verdict::Outcome;
use proptest::prelude::*;
use std::path::Path;

/// A flag occurrence: spelling of the name, and the value (None: bare flag).
#[derive(Debug, Clone)]
struct Flag(bool, Option<&'static str>);

impl Flag {
    fn text(&self) -> String {
        let name = if self.0 {
            "make_iptables_util_chains"
        } else {
            "make-iptables-util-chains"
        };
        match self.1 {
            Some(v) => format!("--{name}={v}"),
            None => format!("--{name}"),
        }
    }
}

fn flag() -> impl Strategy<Value = Flag> {
    (
        any::<bool>(),
        prop::option::weighted(
            0.9,
            prop::sample::select(vec!["true", "false", "False", "0", "1", "f", "t", "TRUE"]),
        ),
    )
        .prop_map(|(u, v)| Flag(u, v))
}

fn flags() -> impl Strategy<Value = Vec<Flag>> {
    prop::collection::vec(flag(), 0..=2)
}

/// A YAML or JSON value for the key (None: absent).
fn key_value() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "true", "false", "no", "off", "null", "yes",
    ]))
}

/// A way a word reaches the kubelet that it refuses (server.go: "unknown command", or a pflag
/// parse error).
#[derive(Debug, Clone, Copy)]
enum Stray {
    /// Text after " # " in an environment-file value.
    InlineComment,
    /// `${OTHER}` written in an environment file (systemd does not expand it there).
    BracedInEnvFile,
    /// `${UNSET}` in ExecStart=: an empty argument.
    EmptyBraced,
    /// `$$VAR` in ExecStart=: a literal `$VAR`.
    DollarDollar,
    /// `--` before flags.
    DoubleDash,
    /// `-make-iptables-util-chains=false`.
    SingleDash,
    /// `--make-iptables-util-chains:true`.
    Colon,
}

fn stray() -> impl Strategy<Value = Option<Stray>> {
    prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            Stray::InlineComment,
            Stray::BracedInEnvFile,
            Stray::EmptyBraced,
            Stray::DollarDollar,
            Stray::DoubleDash,
            Stray::SingleDash,
            Stray::Colon,
        ]),
    )
}

#[derive(Debug, Clone)]
struct Node {
    /// ExecStart= prefix: "", "-", "+", "!", "!!", ":" (no substitution), "@" (argv[0] given).
    prefix: &'static str,
    stray: Option<Stray>,
    /// Drop-in keys spelled `makeIptablesUtilChains` (encoding/json still matches them).
    miscased: bool,
    literal: Vec<Flag>,
    env_directive: Vec<Flag>,
    env_file: Vec<Flag>,
    env_file_overrides_directive: bool,
    json: bool,
    config: Option<&'static str>,
    dropins: Vec<Option<&'static str>>,
}

fn node() -> impl Strategy<Value = Node> {
    (
        prop::sample::select(vec!["", "", "", "-", "+", "!", "!!", ":", "@"]),
        stray(),
        prop::bool::weighted(0.2),
        flags(),
        flags(),
        flags(),
        any::<bool>(),
        any::<bool>(),
        key_value(),
        prop::collection::vec(key_value(), 0..=2),
    )
        .prop_map(
            |(
                prefix,
                stray,
                miscased,
                literal,
                env_directive,
                env_file,
                env_file_overrides_directive,
                json,
                config,
                dropins,
            )| Node {
                prefix,
                stray,
                miscased,
                literal,
                env_directive,
                env_file,
                env_file_overrides_directive,
                json,
                config,
                dropins,
            },
        )
}

fn join(fs: &[Flag]) -> String {
    fs.iter().map(Flag::text).collect::<Vec<_>>().join(" ")
}

fn write(root: &Path, rel: &str, s: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn build(root: &Path, n: &Node) {
    write(
        root,
        "usr/lib/systemd/system/kubelet.service",
        "[Unit]\nDescription=kubelet\n\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n",
    );
    let var = if n.env_file_overrides_directive {
        "KUBELET_EXTRA_ARGS"
    } else {
        "KUBELET_DROPIN_ARGS"
    };
    let dir_flag = if n.dropins.is_empty() {
        ""
    } else {
        " --config-dir=/etc/kubernetes/kubelet.conf.d"
    };
    let ext = if n.json { "json" } else { "yaml" };
    let argv0 = if n.prefix == "@" { " kubelet" } else { "" };
    let (exec_extra, literal_extra, env_extra) = match n.stray {
        Some(Stray::EmptyBraced) => (" ${KUBELET_UNSET_ARGS}", "", ""),
        Some(Stray::DollarDollar) => (" $$KUBELET_EXTRA_ARGS", "", ""),
        Some(Stray::DoubleDash) => ("", "-- ", ""),
        Some(Stray::SingleDash) => ("", "-make-iptables-util-chains=false ", ""),
        Some(Stray::Colon) => ("", "--make-iptables-util-chains:true ", ""),
        Some(Stray::InlineComment) => ("", "", " # tuned for the batch pool"),
        Some(Stray::BracedInEnvFile) => ("", "", " ${NODE_LABELS}"),
        None => ("", "", ""),
    };
    write(
        root,
        "etc/systemd/system/kubelet.service.d/10-args.conf",
        &format!(
            "# generated\n[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.{ext}{dir_flag}\"\nEnvironment=\"{var}=--v=2 {}\"\nEnvironmentFile=-/etc/default/kubelet\nExecStart=\nExecStart={}/usr/bin/kubelet{argv0} $KUBELET_CONFIG_ARGS \\\n    {literal_extra}{} \\\n    $KUBELET_DROPIN_ARGS $KUBELET_EXTRA_ARGS --node-ip=10.0.0.7{exec_extra}\n",
            join(&n.env_directive),
            n.prefix,
            join(&n.literal),
        ),
    );
    // Unquoted, so an inline " # ..." stays in the value as systemd keeps it.
    let q = if env_extra.is_empty() { "\"" } else { "" };
    write(
        root,
        "etc/default/kubelet",
        &format!(
            "# local flags\nNODE_LABELS=--node-labels=pool=batch\nKUBELET_EXTRA_ARGS={q}--max-pods=50 {}{env_extra}{q}\n",
            join(&n.env_file)
        ),
    );
    let cfg = if n.json {
        let key = n.config.map_or(String::new(), |v| {
            let v = match v {
                "no" | "off" => "false",
                "yes" => "true",
                v => v,
            };
            format!("  \"makeIPTablesUtilChains\": {v},\n")
        });
        format!(
            "{{\n  \"apiVersion\": \"kubelet.config.k8s.io/v1beta1\",\n{key}  \"kind\": \"KubeletConfiguration\",\n  \"maxPods\": 50\n}}\n"
        )
    } else {
        let key = n.config.map_or(String::new(), |v| {
            format!("makeIPTablesUtilChains: {v}  # set by hand\n")
        });
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n# comment\n{key}maxPods: 50\n"
        )
    };
    write(root, &format!("var/lib/kubelet/config.{ext}"), &cfg);
    for (i, d) in n.dropins.iter().enumerate() {
        let name = if n.miscased {
            "makeIptablesUtilChains"
        } else {
            "makeIPTablesUtilChains"
        };
        let key = d.map_or(String::new(), |v| format!("{name}: {v}\n"));
        write(
            root,
            &format!("etc/kubernetes/kubelet.conf.d/{}0-x.conf", i + 1),
            &format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{key}serializeImagePulls: false\n"
            ),
        );
    }
}

/// The planner's verdict: `Some(value)`, or `None` when the kubelet would refuse.
fn planner_verdict(root: &Path) -> (Option<bool>, Vec<String>) {
    let fs = kubelet_remediate::root::NodeFs::new(root);
    let opts = kubelet_remediate::evidence::Options {
        unit: None,
        offline: true,
    };
    let ev = kubelet_remediate::evidence::gather(&fs, &opts).unwrap();
    let v = match kubelet_remediate::verdict::judge(&ev).outcome {
        Outcome::Value(b, _) => Some(b),
        Outcome::Refused(_) => None,
    };
    (v, ev.argv_text())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(96), ..ProptestConfig::default() })]

    /// Whatever the layout, the kubelet's own libraries (the Go stand-in, given the argv the
    /// planner computed) reach the planner's verdict.
    #[test]
    fn the_verdict_is_the_kubelet_libraries_verdict(n in node()) {
        if common::kubelet_go::skip() {
            return Ok(());
        }
        let tmp = tempfile::tempdir().unwrap();
        build(tmp.path(), &n);
        let (ours, argv) = planner_verdict(tmp.path());
        let theirs = common::kubelet_go::judge(&common::kubelet_go::binary(), tmp.path(), "/", &argv);
        let theirs = match theirs {
            common::kubelet_go::Judged::Value(b) => Some(b),
            common::kubelet_go::Judged::Refused(_) => None,
        };
        prop_assert_eq!(ours, theirs, "argv {:?}", argv);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(96), ..ProptestConfig::default() })]

    #[test]
    fn planned_edits_always_yield_true_and_touch_only_the_setting(n in node()) {
        let tmp = tempfile::tempdir().unwrap();
        build(tmp.path(), &n);
        let p = plan_root(tmp.path(), None).unwrap();
        match p.verdict.outcome {
            Outcome::Refused(_) => return Ok(()), // not a verdict: nothing is proposed
            Outcome::Value(true, _) => {
                prop_assert!(p.plan.changes.is_empty());
                return Ok(());
            }
            Outcome::Value(false, _) => {}
        }
        prop_assert!(!p.plan.changes.is_empty());
        for c in &p.plan.changes {
            let (removed, _) = changed_lines(&c.before, &c.after);
            for l in &removed {
                prop_assert!(carries_setting(l), "unrelated line changed in {}: {:?}", c.path, l);
            }
        }
        let argv_before: Vec<String> = p.ev.argv_text().into_iter().filter(|a| !carries_setting(a)).collect();
        let merged_before = p.ev.configs.merged;
        write_plan(tmp.path(), &p.plan);
        let again = plan_root(tmp.path(), None).unwrap();
        prop_assert!(again.verdict.compliant(), "not compliant after the fix: {:?}", again.verdict.outcome);
        prop_assert!(again.plan.changes.is_empty());
        let argv_after: Vec<String> = again.ev.argv_text().into_iter().filter(|a| !carries_setting(a)).collect();
        prop_assert_eq!(argv_before, argv_after);
        prop_assert_eq!(merged_before, again.ev.configs.merged);
    }
}
