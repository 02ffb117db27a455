//! k3s and RKE2: the kubelet runs inside the k3s/rke2 process and gets its flags from
//! `kubelet-arg` entries, which this module turns into the kubelet's argv with provenance.
//!
//! Order (domain doc section 6; k3s pkg/configfilearg): `/etc/rancher/<dist>/config.yaml`, then
//! `config.yaml.d/*.yaml` in lexical order (a later `kubelet-arg` replaces the list, a
//! `kubelet-arg+` appends), then `--kubelet-arg` on the unit's command line; k3s folds the
//! entries into a map by flag name, so the last entry for a flag wins, as in the kubelet.
//! `--config-dir` drop-ins live in `/var/lib/rancher/<dist>/agent/etc/kubelet.conf.d/`.

use crate::error::{Error, Result};
use crate::root::NodeFs;
use crate::systemd::exec::{Arg, Service};
use crate::text::{CharOffsets, FileId, Files, SourceFile, Traced};
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::sync::Arc;

/// Units that run a kubelet inside, and their distribution.
pub const UNITS: &[(&str, &str)] = &[
    ("k3s.service", "k3s"),
    ("k3s-agent.service", "k3s"),
    ("rke2-server.service", "rke2"),
    ("rke2-agent.service", "rke2"),
];

pub fn dist_of(unit: &str) -> Option<&'static str> {
    UNITS.iter().find(|(u, _)| *u == unit).map(|(_, d)| *d)
}

/// The directory k3s/rke2 passes to the kubelet as `--config-dir`.
pub fn kubelet_conf_dir(dist: &str) -> String {
    format!("/var/lib/rancher/{dist}/agent/etc/kubelet.conf.d")
}

/// The file k3s/rke2 rewrites at every start: never a place for an edit.
pub fn is_generated(path: &str) -> bool {
    path.ends_with("/00-k3s-defaults.conf") || path.ends_with("/00-rke2-defaults.conf")
}

/// One `kubelet-arg` entry, as an argument for the kubelet.
struct Entry {
    arg: Arg,
    /// `kubelet-arg` (a config file) or `--kubelet-arg` (the unit's command line).
    via: &'static str,
}

/// The kubelet's argv for a k3s/rke2 service, and notes on entries that were replaced.
pub fn kubelet_argv(
    fs: &NodeFs,
    files: &mut Files,
    dist: &str,
    service: &Service,
) -> Result<(Vec<Arg>, Vec<String>)> {
    let mut notes = Vec::new();
    let cli = &service.argv;
    // The configuration file: --config/-c on the command line, else the distribution default.
    let mut config = format!("/etc/rancher/{dist}/config.yaml");
    let env_name = format!("{}_CONFIG_FILE", dist.to_uppercase());
    if let Some(e) = service.var(&env_name) {
        config = e.value.text.clone();
    }
    for (i, a) in cli.iter().enumerate() {
        let t = &a.value.text;
        if let Some(v) = t.strip_prefix("--config=") {
            config = v.to_string();
        } else if (t == "--config" || t == "-c") && i + 1 < cli.len() {
            config = cli[i + 1].value.text.clone();
        }
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut sources = vec![config.clone()];
    let dropin_dir = format!("{config}.d");
    let mut dropins: Vec<String> = fs
        .read_dir(&dropin_dir)?
        .into_iter()
        .filter(|e| e.name.ends_with(".yaml") || e.name.ends_with(".yml"))
        .map(|e| format!("{dropin_dir}/{}", e.name))
        .collect();
    dropins.sort();
    sources.extend(dropins);
    for path in sources {
        let Some((resolved, text)) = fs.read(&path)? else {
            continue;
        };
        let id = files.add(SourceFile::new(path.clone(), resolved, text));
        for (append, items) in kubelet_arg_items(id, files.get(id))? {
            if !append && !entries.is_empty() {
                notes.push(format!(
                    "{path}: kubelet-arg replaces the {} entries set before it (use kubelet-arg+ to append)",
                    entries.len()
                ));
                entries.clear();
            }
            entries.extend(items);
        }
    }
    // --kubelet-arg on the command line comes last, so it wins.
    let mut i = 1;
    while i < cli.len() {
        let a = &cli[i];
        let t = &a.value.text;
        if let Some(v) = t.strip_prefix("--kubelet-arg=") {
            let off = t.len() - v.len();
            entries.push(Entry {
                arg: as_kubelet_flag(
                    &a.value.slice(off..t.len()),
                    a.container.clone(),
                    a.raw.clone(),
                    a.removable,
                ),
                via: "--kubelet-arg",
            });
        } else if t == "--kubelet-arg" && i + 1 < cli.len() {
            let v = &cli[i + 1];
            entries.push(Entry {
                // Two tokens: deleting one would leave the other behind, so only set-true applies.
                arg: as_kubelet_flag(&v.value, v.container.clone(), v.raw.clone(), false),
                via: "--kubelet-arg",
            });
            i += 1;
        }
        i += 1;
    }
    let mut argv = vec![Arg {
        value: Traced::made_up("kubelet"),
        var: None,
        container: Default::default(),
        raw: 0..0,
        removable: false,
    }];
    let made_up = |text: &str| Arg {
        value: Traced::made_up(text),
        var: None,
        container: Default::default(),
        raw: 0..0,
        removable: false,
    };
    // What k3s itself always passes before the user's kubelet-args (pkg/daemons/agent
    // agent_linux.go argsMap: "kubeconfig" is cfg.KubeConfigKubelet, <data-dir>/agent/
    // kubelet.kubeconfig, which k3s rewrites at every start with os.Create): the file the
    // 4.1.5/4.1.6 controls protect.
    argv.push(made_up(&format!(
        "--kubeconfig=/var/lib/rancher/{dist}/agent/kubelet.kubeconfig"
    )));
    let dir = kubelet_conf_dir(dist);
    if fs.is_dir(&dir) {
        argv.push(made_up(&format!("--config-dir={dir}")));
    }
    argv.extend(entries.into_iter().map(|e| Arg {
        var: Some(e.via.into()),
        ..e.arg
    }));
    Ok((argv, notes))
}

/// `--` + the entry (k3s accepts entries with or without the dashes).
fn as_kubelet_flag(
    v: &Traced,
    container: Arc<Traced>,
    raw: std::ops::Range<usize>,
    removable: bool,
) -> Arg {
    let mut value = Traced::default();
    if !v.text.starts_with("--") {
        value.push('-', None);
        value.push('-', None);
    }
    value.append(v);
    Arg {
        value,
        var: None,
        container,
        raw,
        removable,
    }
}

/// Every top-level `kubelet-arg` / `kubelet-arg+` of a k3s config file, in order.
fn kubelet_arg_items(id: FileId, f: &SourceFile) -> Result<Vec<(bool, Vec<Entry>)>> {
    let mut p = Parser::new_from_str(&f.text);
    // saphyr counts characters and breaks lines at a lone `\r` too: its positions are mapped
    // through their character index, never through line and column (text::CharOffsets).
    let mut pos = CharOffsets::new(&f.text);
    let mut ev = Vec::new();
    while let Some(e) = p.next_event() {
        let (e, span) = e.map_err(|e| {
            let (line, column) = f.line_col(pos.byte(e.marker().index()));
            Error::parse(&f.path, line, column, format!("invalid YAML: {}", e.info()))
        })?;
        ev.push((e, pos.byte(span.start.index())));
    }
    let mut out = Vec::new();
    let Some(mut i) = ev
        .iter()
        .position(|e| matches!(e.0, Event::MappingStart(..)))
    else {
        return Ok(out); // empty file, or not a mapping: no kubelet-arg
    };
    i += 1;
    while i < ev.len() && !matches!(ev[i].0, Event::MappingEnd) {
        let append = match &ev[i].0 {
            Event::Scalar(k, ..) if k == "kubelet-arg" => Some(false),
            Event::Scalar(k, ..) if k == "kubelet-arg+" => Some(true),
            _ => None,
        };
        i = skip(&ev, i); // the key
        let Some(append) = append else {
            i = skip(&ev, i); // someone else's value
            continue;
        };
        match &ev[i].0 {
            Event::Scalar(v, style, ..) => {
                out.push((append, vec![item(id, f, ev[i].1, v, *style, false)]));
                i += 1;
            }
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                i += 1;
                while !matches!(ev[i].0, Event::SequenceEnd) {
                    if let Event::Scalar(v, style, ..) = &ev[i].0 {
                        items.push(item(id, f, ev[i].1, v, *style, true));
                    }
                    i = skip(&ev, i);
                }
                i += 1;
                out.push((append, items));
            }
            _ => i = skip(&ev, i),
        }
    }
    Ok(out)
}

/// The index after the node starting at `i`.
fn skip(ev: &[(Event<'_>, usize)], mut i: usize) -> usize {
    let mut depth = 0usize;
    loop {
        match ev[i].0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth -= 1,
            _ => {}
        }
        i += 1;
        if depth == 0 || i >= ev.len() {
            return i;
        }
    }
}

/// One entry with its bytes: the scalar's value mapped to the file when written without
/// escapes, and the whole `- item` line as what removing it deletes.
fn item(
    id: FileId,
    f: &SourceFile,
    start: usize,
    v: &str,
    style: ScalarStyle,
    in_block_seq: bool,
) -> Entry {
    let quoted = matches!(style, ScalarStyle::DoubleQuoted | ScalarStyle::SingleQuoted);
    let vstart = start + usize::from(quoted);
    let exact = f.text.get(vstart..vstart + v.len()) == Some(v);
    // Only a value written without escapes maps byte for byte onto the file.
    let value = if exact {
        Traced::from_file(id, vstart, v)
    } else {
        Traced::made_up(v)
    };
    // Removable when the item is alone on its line in a block sequence: `  - "..."`.
    let lr = crate::config::yaml::line_range(&f.text, start);
    let line_text = &f.text[lr.clone()];
    let after = start + v.len() + 2 * usize::from(quoted);
    let alone = in_block_seq
        && exact
        && line_text.trim_start().starts_with('-')
        && f.text.get(after..lr.end).is_some_and(|rest| {
            let rest = rest.trim();
            rest.is_empty() || rest.starts_with('#')
        });
    let container = Arc::new(Traced::from_file(id, lr.start, line_text));
    let raw = 0..container.text.len();
    Entry {
        arg: as_kubelet_flag(&value, container, raw, alone),
        via: "kubelet-arg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn argv(files: &[(&str, &str)]) -> Vec<String> {
        let t = tempfile::tempdir().unwrap();
        for (p, s) in files {
            let p = t.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        }
        let node = NodeFs::new(t.path());
        let layout = crate::systemd::lookup::find(&node, "k3s.service").unwrap();
        let mut files = Files::default();
        let s = Service::load(&node, &mut files, layout).unwrap();
        let (argv, _) = kubelet_argv(&node, &mut files, "k3s", &s).unwrap();
        argv.into_iter().map(|a| a.value.text).collect()
    }

    const UNIT: &str = "etc/systemd/system/k3s.service";
    /// What k3s passes itself, before the user's kubelet-args.
    const KUBECONFIG: &str = "--kubeconfig=/var/lib/rancher/k3s/agent/kubelet.kubeconfig";

    #[test]
    fn later_kubelet_arg_replaces_plus_appends_cli_comes_last() {
        let a = argv(&[
            (
                UNIT,
                "[Service]\nExecStart=/usr/local/bin/k3s server --kubelet-arg=v=4 --kubelet-arg max-pods=9\n",
            ),
            ("etc/rancher/k3s/config.yaml", "kubelet-arg: [a=1, b=2]\n"),
            (
                "etc/rancher/k3s/config.yaml.d/10-x.yaml",
                "kubelet-arg:\n  - c=3\n",
            ),
            (
                "etc/rancher/k3s/config.yaml.d/20-y.yaml",
                "kubelet-arg+: \"--d=4\"\nother: [x]\n",
            ),
        ]);
        assert_eq!(
            a,
            [
                "kubelet",
                KUBECONFIG,
                "--c=3",
                "--d=4",
                "--v=4",
                "--max-pods=9"
            ]
        );
    }

    #[test]
    fn config_flag_and_env_choose_the_file() {
        let a = argv(&[
            (
                UNIT,
                "[Service]\nExecStart=/usr/local/bin/k3s server -c /etc/k3s-custom.yaml\n",
            ),
            ("etc/rancher/k3s/config.yaml", "kubelet-arg: [ignored=1]\n"),
            ("etc/k3s-custom.yaml", "kubelet-arg: [used=1]\n"),
        ]);
        assert_eq!(a, ["kubelet", KUBECONFIG, "--used=1"]);
    }
}
