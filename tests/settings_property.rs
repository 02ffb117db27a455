//! Property: with the table's settings scattered over flags (an environment file), the
//! `--config` file (YAML or JSON, with or without one at all), and `--config-dir` drop-ins, in
//! the table's spelling or a mis-cased one, repeated, nested parents written twice, values of
//! every type and of wrong types, the planner's effective value of every setting (or its
//! refusal) is what the Go stand-in computes with the kubelet's own libraries.

mod common;
use common::*;
use proptest::prelude::*;
use std::path::Path;

/// An abstract configuration value, rendered as YAML or JSON.
#[derive(Debug, Clone)]
enum V {
    Bool(bool),
    /// A number as YAML writes it; JSON gets `json` instead when given.
    Num(&'static str, &'static str),
    Str(&'static str),
    Null,
    List(Vec<&'static str>),
    Map(Vec<(&'static str, bool)>),
}

impl V {
    fn yaml(&self) -> String {
        match self {
            V::Bool(b) => b.to_string(),
            V::Num(y, _) => y.to_string(),
            V::Str(s) => format!("\"{s}\""),
            V::Null => "null".into(),
            V::List(l) => format!("[{}]", l.join(", ")),
            V::Map(m) => {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", items.join(", "))
            }
        }
    }

    fn json(&self) -> String {
        match self {
            V::Num(_, j) => j.to_string(),
            V::List(l) => {
                let items: Vec<String> = l.iter().map(|s| format!("\"{s}\"")).collect();
                format!("[{}]", items.join(", "))
            }
            V::Map(m) => {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", items.join(", "))
            }
            other => other.yaml(),
        }
    }
}

/// Values a setting of each type may be given in a file (mostly valid, some not).
fn file_value(id: &str) -> BoxedStrategy<V> {
    let s = kubelet_remediate::settings::get(id).unwrap();
    use kubelet_remediate::settings::FlagType as T;
    let pick = |v: Vec<V>| prop::sample::select(v).boxed();
    match (s.ty, id) {
        (T::Bool, _) => pick(vec![
            V::Bool(true),
            V::Bool(false),
            V::Bool(false),
            V::Null,
            V::Str("false"),
        ]),
        (T::Int32 | T::Int64, _) => pick(vec![
            V::Num("0", "0"),
            V::Num("010", "10"),
            V::Num("0x0", "0"),
            V::Num("10255", "10255"),
            V::Num("1_000", "1000"),
            V::Num("1.0", "1.0"),
            V::Num("-1", "-1"),
            V::Num("70000", "70000"),
            V::Null,
        ]),
        (T::Duration, _) => pick(vec![
            V::Str("0s"),
            V::Str("5m"),
            V::Str("0h0m0s"),
            V::Str("0"),
            V::Num("0", "0"),
            V::Null,
        ]),
        (T::String, "authorization-mode") => pick(vec![
            V::Str("Webhook"),
            V::Str("AlwaysAllow"),
            V::Str(""),
            V::Str("webhook"),
        ]),
        (T::String, _) => pick(vec![
            V::Str("/etc/kubernetes/pki/ca.crt"),
            V::Str("pki/node.crt"),
            V::Str(""),
            V::Null,
        ]),
        (T::StringSlice, _) => pick(vec![
            V::List(vec![
                "TLS_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ]),
            V::List(vec![]),
            V::List(vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]),
            V::Null,
        ]),
        (T::MapStringBool, _) => pick(vec![
            V::Map(vec![("RotateKubeletServerCertificate", false)]),
            V::Map(vec![
                ("RotateKubeletServerCertificate", true),
                ("Other", false),
            ]),
            V::Map(vec![("Other", true)]),
            V::Null,
        ]),
    }
}

/// Flag values by type.
fn flag_value(id: &str) -> BoxedStrategy<&'static str> {
    let s = kubelet_remediate::settings::get(id).unwrap();
    use kubelet_remediate::settings::FlagType as T;
    let v: Vec<&'static str> = match (s.ty, id) {
        (T::Bool, _) => vec!["true", "false", "0", "t"],
        (T::Int32 | T::Int64, _) => vec!["0", "010", "0x10", "-1", "50"],
        (T::Duration, _) => vec!["0s", "5m", "0", "1h30m"],
        (T::String, "authorization-mode") => vec!["Webhook", "AlwaysAllow"],
        (T::String, "hostname-override") => vec!["node-1", ""],
        (T::String, _) => vec!["/etc/kubernetes/pki/ca.crt", "rel/ca.crt", ""],
        (T::StringSlice, _) => vec![
            "TLS_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
        ],
        (T::MapStringBool, _) => vec![
            "RotateKubeletServerCertificate=false",
            "RotateKubeletServerCertificate=true,Other=true",
        ],
    };
    prop::sample::select(v).boxed()
}

/// Where one setting is written.
#[derive(Debug, Clone)]
enum Place {
    Flag(&'static str, &'static str),
    /// File 0 is `--config`, 1.. are drop-ins; `miscase` upper-cases one key's first letter.
    File(usize, &'static str, V, Option<usize>),
}

fn place(dropins: usize) -> impl Strategy<Value = Place> {
    let ids: Vec<&'static str> = kubelet_remediate::settings::SETTINGS
        .iter()
        .map(|(i, _)| *i)
        .collect();
    (
        prop::sample::select(ids),
        0..=dropins,
        any::<bool>(),
        prop::option::weighted(0.15, 0..3usize),
    )
        .prop_flat_map(move |(id, file, as_flag, miscase)| {
            let s = kubelet_remediate::settings::get(id).unwrap();
            if as_flag || s.key.is_none() {
                flag_value(id).prop_map(move |v| Place::Flag(id, v)).boxed()
            } else {
                file_value(id)
                    .prop_map(move |v| Place::File(file, id, v, miscase))
                    .boxed()
            }
        })
}

#[derive(Debug, Clone)]
struct Layout {
    with_config: bool,
    json: bool,
    dropins: usize,
    places: Vec<Place>,
}

fn layout() -> impl Strategy<Value = Layout> {
    (prop::bool::weighted(0.8), any::<bool>(), 0..=2usize).prop_flat_map(
        |(with_config, json, dropins)| {
            prop::collection::vec(place(dropins), 1..8).prop_map(move |places| Layout {
                with_config,
                json,
                dropins,
                places,
            })
        },
    )
}

/// A file's text: each setting as its own nested block (so shared parents repeat: a YAML
/// duplicate, a JSON object decoded twice), in YAML or JSON.
fn file_text(entries: &[(&'static str, &V, Option<usize>)], json: bool) -> String {
    let key_path = |id: &str, miscase: Option<usize>| -> Vec<String> {
        let k = kubelet_remediate::settings::get(id).unwrap().key.unwrap();
        k.iter()
            .enumerate()
            .map(|(i, c)| {
                if miscase.is_some_and(|m| m.min(k.len() - 1) == i) {
                    let mut cs = c.chars();
                    let f = cs.next().unwrap().to_ascii_uppercase();
                    format!("{f}{}", cs.as_str())
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    if json {
        let mut members = vec![
            "\"apiVersion\": \"kubelet.config.k8s.io/v1beta1\"".to_string(),
            "\"kind\": \"KubeletConfiguration\"".to_string(),
            "\"maxPods\": 50".to_string(),
        ];
        for (id, v, m) in entries {
            let path = key_path(id, *m);
            let mut t = v.json();
            for k in path.iter().rev() {
                t = format!("{{\"{k}\": {t}}}");
            }
            members.push(t[1..t.len() - 1].to_string());
        }
        format!("{{\n  {}\n}}\n", members.join(",\n  "))
    } else {
        let mut t = String::from(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n# local\nmaxPods: 50\n",
        );
        for (id, v, m) in entries {
            let path = key_path(id, *m);
            for (depth, k) in path.iter().enumerate() {
                let indent = "  ".repeat(depth);
                if depth + 1 == path.len() {
                    t += &format!("{indent}{k}: {}\n", v.yaml());
                } else {
                    t += &format!("{indent}{k}:\n");
                }
            }
        }
        t
    }
}

fn write(root: &Path, rel: &str, s: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

fn build(root: &Path, l: &Layout) {
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), root);
    let unit = "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf";
    let ext = if l.json { "json" } else { "yaml" };
    let config_flag = if l.with_config {
        format!("--config=/var/lib/kubelet/config.{ext}")
    } else {
        String::new()
    };
    let text = std::fs::read_to_string(root.join(unit)).unwrap();
    write(
        root,
        unit,
        &text.replace("--config=/var/lib/kubelet/config.yaml", &config_flag),
    );
    let mut flags: Vec<String> = l
        .places
        .iter()
        .filter_map(|p| match p {
            Place::Flag(id, v) => Some(format!("--{id}={v}")),
            _ => None,
        })
        .collect();
    if l.dropins > 0 {
        flags.push("--config-dir=/etc/kubernetes/kubelet.conf.d".into());
    }
    write(
        root,
        "etc/default/kubelet",
        &format!("KUBELET_EXTRA_ARGS=\"{}\"\n", flags.join(" ")),
    );
    for file in 0..=l.dropins {
        let entries: Vec<_> = l
            .places
            .iter()
            .filter_map(|p| match p {
                Place::File(f, id, v, m) if *f == file => Some((*id, v, *m)),
                _ => None,
            })
            .collect();
        if file == 0 {
            std::fs::remove_file(root.join("var/lib/kubelet/config.yaml")).unwrap();
            write(
                root,
                &format!("var/lib/kubelet/config.{ext}"),
                &file_text(&entries, l.json),
            );
        } else {
            // Drop-ins are YAML when the config is JSON and the other way round.
            write(
                root,
                &format!("etc/kubernetes/kubelet.conf.d/{file}0-local.conf"),
                &file_text(&entries, !l.json),
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(160), ..ProptestConfig::default() })]

    #[test]
    fn every_setting_is_the_kubelet_libraries_value(l in layout()) {
        if common::kubelet_go::skip() {
            return Ok(());
        }
        let bin = common::kubelet_go::binary();
        let t = tempfile::tempdir().unwrap();
        build(t.path(), &l);
        let fs = kubelet_remediate::root::NodeFs::new(t.path());
        let opts = kubelet_remediate::evidence::Options { unit: None, offline: true };
        // Every generated file is well-formed: the planner reads every layout.
        let ev = kubelet_remediate::evidence::gather(&fs, &opts).unwrap();
        let ours = kubelet_remediate::effective::judge(&ev);
        let argv = ev.argv_text();
        let (_, theirs) = common::kubelet_go::judge_all(&bin, t.path(), "/", &argv);
        match (&ours.refused, &theirs) {
            (None, Some(theirs)) => {
                for e in &ours.settings {
                    let mine = e.value.as_ref().unwrap().to_json();
                    prop_assert_eq!(&mine, &theirs[e.id], "{}", e.id);
                }
                let ca = kubelet_remediate::effective::client_ca_refusal(&fs, &ours);
                prop_assert_eq!(ca.is_some(), theirs["client_ca_error"] != "", "client CA: {:?}", ca);
            }
            (Some(_), None) => {}
            (a, b) => prop_assert!(false, "planner refused: {:?}; kubelet libraries: {:?}", a, b.is_some()),
        }
    }
}

/// A Judgement made of the stand-in's values, so the controls' own predicates judge what the
/// kubelet's libraries computed.
fn judgement_of(theirs: &serde_json::Value) -> kubelet_remediate::effective::Judgement {
    use kubelet_remediate::effective::{Effective, Judgement, Layer};
    use kubelet_remediate::settings::{self, FlagType, Value};
    let settings = settings::SETTINGS
        .iter()
        .map(|(id, s)| {
            let v = &theirs[*id];
            let value = match s.ty {
                FlagType::Bool => Value::Bool(v.as_bool().unwrap()),
                FlagType::Int32 | FlagType::Int64 => Value::Int(v.as_i64().unwrap()),
                FlagType::Duration => {
                    Value::Duration(settings::parse_duration(v.as_str().unwrap()).unwrap())
                }
                FlagType::String => Value::Str(v.as_str().unwrap().to_string()),
                FlagType::StringSlice => Value::List(
                    v.as_array()
                        .map(|a| a.iter().map(|i| i.as_str().unwrap().to_string()).collect()),
                ),
                FlagType::MapStringBool => Value::Map(
                    v.as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, b)| (k.clone(), b.as_bool().unwrap()))
                        .collect(),
                ),
            };
            Effective {
                id,
                setting: s,
                value: Ok(value),
                source: Layer::Default,
                places: Vec::new(),
            }
        })
        .collect();
    Judgement {
        settings,
        refused: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(96), ..ProptestConfig::default() })]

    /// `plan --control all` on a random layout: after its edits are written, the kubelet's own
    /// libraries (the Go stand-in) start the kubelet, and every control the plan said it fixes
    /// passes on what they compute.
    #[test]
    fn every_fix_holds_for_the_kubelet_libraries(l in layout()) {
        if common::kubelet_go::skip() {
            return Ok(());
        }
        let bin = common::kubelet_go::binary();
        let t = tempfile::tempdir().unwrap();
        build(t.path(), &l);
        let fs = kubelet_remediate::root::NodeFs::new(t.path());
        let eval = kubelet_remediate::flow::Eval {
            offline: true,
            controls: kubelet_remediate::controls::select(Some("all"), None).unwrap(),
            ..Default::default()
        };
        let Ok((_, report, plan)) = kubelet_remediate::flow::evaluate(&fs, &eval) else {
            return Ok(());
        };
        // Content edits (the 4.1 controls' chmods leave the bytes alone).
        if !plan.changes.iter().any(|c| c.edits_content()) {
            return Ok(());
        }
        for c in &plan.changes {
            std::fs::write(t.path().join(c.path.trim_start_matches('/')), c.after.as_bytes()).unwrap();
        }
        let ev = kubelet_remediate::evidence::gather(&fs, &kubelet_remediate::evidence::Options { unit: None, offline: true }).unwrap();
        let (_, theirs) = common::kubelet_go::judge_all(&bin, t.path(), "/", &ev.argv_text());
        let theirs = theirs.expect("the kubelet's libraries start the edited node");
        let j = judgement_of(&theirs);
        // The settings controls: the stand-in judges settings, not file modes.
        for c in report.controls.iter().filter(|c| c.fixable) {
            let row = kubelet_remediate::controls::get(c.id).unwrap();
            if row.file.is_some() {
                continue;
            }
            let (pass, value) = kubelet_remediate::controls::evaluate(row, &j, &Default::default(), "cis-1.12");
            prop_assert!(pass, "{} was fixed, but the kubelet's libraries compute {}", c.id, value);
        }
    }
}
