//! Which manifests make a kubelet run with makeIPTablesUtilChains false, judged as it judges.
//!
//! Argument lists go through the planner's own pflag model (`flags::parse`: last occurrence
//! wins, a bare bool flag is true, every strconv.ParseBool spelling, `_` = `-`), so a later
//! `=true` overrides an earlier false. Configuration fields are decoded as the kubelet's
//! sigs.k8s.io/yaml does (YAML 1.1 booleans; a quoted "false" is a string it refuses).

use super::tree::{Kind, Node};
use crate::config::yaml::yaml11_bool;
use crate::flags::{self, FLAG, KEY};
use crate::text::SourceFile;
use saphyr_parser::ScalarStyle;

/// One place that sets the value false, with the edit that makes it true.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Byte offset the finding points at (the false value, or the false argument).
    pub at: usize,
    pub kind: &'static str,
    pub message: String,
    /// Bytes to replace, and with what; `None` when the text cannot be edited exactly.
    pub edit: Option<(usize, usize, String)>,
}

const WORKLOADS: &[(&str, &[&str])] = &[
    ("Pod", &["spec"]),
    ("Deployment", &["spec", "template", "spec"]),
    ("DaemonSet", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("ReplicaSet", &["spec", "template", "spec"]),
    ("ReplicationController", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
    ("PodTemplate", &["template", "spec"]),
];

/// Where Cluster API keeps kubeadm configurations, by kind.
const CAPI: &[(&str, &[&str])] = &[
    ("KubeadmConfig", &["spec"]),
    ("KubeadmConfigTemplate", &["spec", "template", "spec"]),
    ("KubeadmControlPlane", &["spec", "kubeadmConfigSpec"]),
    (
        "KubeadmControlPlaneTemplate",
        &["spec", "template", "spec", "kubeadmConfigSpec"],
    ),
];

/// The findings of one document (a `List` is judged item by item).
pub fn judge(f: &SourceFile, root: &Node, out: &mut Vec<Hit>) {
    let kind = root.get("kind").and_then(Node::str).unwrap_or("");
    let api = root.get("apiVersion").and_then(Node::str).unwrap_or("");
    let name = describe(root, kind);
    if kind == "List" || kind.ends_with("List") && root.get("items").is_some() {
        for item in root.get("items").map(Node::items).unwrap_or_default() {
            judge(f, item, out);
        }
        return;
    }
    if let Some((_, path)) = WORKLOADS.iter().find(|(k, _)| *k == kind) {
        if let Some(spec) = root.at(path) {
            workload(f, spec, &name, out);
        }
        return;
    }
    if let Some((_, path)) = CAPI.iter().find(|(k, _)| *k == kind)
        && api.starts_with("bootstrap.cluster.x-k8s.io/")
            | api.starts_with("controlplane.cluster.x-k8s.io/")
    {
        if let Some(spec) = root.at(path) {
            for c in ["initConfiguration", "joinConfiguration"] {
                if let Some(args) = spec.at(&[c, "nodeRegistration", "kubeletExtraArgs"]) {
                    extra_args(f, args, "cluster-api", &format!("{name} {c}"), out);
                }
            }
        }
        return;
    }
    match kind {
        "KubeletConfiguration" => {
            if let Some(v) = root.get(KEY) {
                out.extend(bool_field(f, v, "kubelet-configuration", &name));
            }
        }
        "InitConfiguration" | "JoinConfiguration" if api.starts_with("kubeadm.k8s.io/") => {
            if let Some(args) = root.at(&["nodeRegistration", "kubeletExtraArgs"]) {
                extra_args(f, args, "kubeadm", &name, out);
            }
        }
        "NodeConfig" if api.starts_with("node.eks.aws/") => {
            let flags = root.at(&["spec", "kubelet", "flags"]);
            let from_flags = flags.and_then(|l| {
                let items: Vec<&Node> = l.items().iter().collect();
                args_list(f, &items, None, false)
            });
            match from_flags {
                // Flags are applied over the config: they decide when they set it.
                Some(hit) => out.extend(hit.map(|mut h| {
                    h.kind = "eks-nodeconfig";
                    h.message = format!("{name} spec.kubelet.flags: {}", h.message);
                    h
                })),
                None => {
                    if let Some(v) = root.at(&["spec", "kubelet", "config", KEY]) {
                        out.extend(bool_field(f, v, "eks-nodeconfig", &name));
                    }
                }
            }
        }
        "KubeletConfig" if api.starts_with("machineconfiguration.openshift.io/") => {
            if let Some(v) = root.at(&["spec", "kubeletConfig", KEY]) {
                out.extend(bool_field(f, v, "openshift-kubeletconfig", &name));
            }
        }
        "ConfigMap" => configmap(f, root, &name, out),
        "Kustomization" if api.starts_with("kustomize.config.k8s.io/") => {
            kustomization(f, root, &name, out)
        }
        // kind and apiVersion are optional in a kustomization.yaml.
        "" if root.get("patches").is_some() || root.get("patchesStrategicMerge").is_some() => {
            kustomization(f, root, "Kustomization", out)
        }
        "" if root.get("kubelet-arg").is_some() => {
            let a = root.get("kubelet-arg").unwrap();
            let items = match &a.kind {
                Kind::Seq(items) => items.iter().collect::<Vec<_>>(),
                Kind::Scalar(..) => vec![a],
                _ => Vec::new(),
            };
            if let Some(Some(mut h)) = args_list(f, &items, None, true) {
                h.kind = "k3s-config";
                h.message = format!("k3s/RKE2 kubelet-arg: {}", h.message);
                out.push(h);
            }
        }
        _ => {}
    }
}

/// `Kind namespace/name`, for messages.
fn describe(root: &Node, kind: &str) -> String {
    let meta = |k: &str| root.at(&["metadata", k]).and_then(Node::str);
    match (meta("namespace"), meta("name")) {
        (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
        (None, Some(n)) => format!("{kind} {n}"),
        _ if kind.is_empty() => "document".into(),
        _ => kind.to_string(),
    }
}

fn workload(f: &SourceFile, spec: &Node, name: &str, out: &mut Vec<Hit>) {
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec.get(list).map(Node::items).unwrap_or_default() {
            let command = c.get("command").map(Node::items).unwrap_or_default();
            let is_kubelet = command
                .first()
                .and_then(Node::str)
                .is_some_and(|c| c.rsplit('/').next() == Some("kubelet"));
            if !is_kubelet {
                continue;
            }
            let mut argv: Vec<&Node> = command.iter().collect();
            argv.extend(c.get("args").map(Node::items).unwrap_or_default());
            let cname = c.get("name").and_then(Node::str).unwrap_or("?");
            if let Some(Some(mut h)) = args_list(f, &argv[1..], argv.first().copied(), false) {
                h.kind = "workload";
                h.message = format!("{name} container \"{cname}\": {}", h.message);
                out.push(h);
            }
        }
    }
}

/// Judge an argument list: `None` when it never names the flag, `Some(None)` when it does and
/// the last occurrence is not false, `Some(Some(hit))` for a false. k3s writes `kubelet-arg`
/// items without the leading `--`.
fn args_list(
    f: &SourceFile,
    items: &[&Node],
    argv0: Option<&Node>,
    k3s: bool,
) -> Option<Option<Hit>> {
    let mut argv = vec![argv0.and_then(Node::str).unwrap_or("kubelet").to_string()];
    let mut added = Vec::with_capacity(items.len());
    for n in items {
        let s = n.str().unwrap_or("");
        if k3s && !s.starts_with('-') {
            argv.push(format!("--{s}"));
            added.push(2);
        } else {
            argv.push(s.to_string());
            added.push(0);
        }
    }
    let cmd = flags::parse(&argv);
    let last = cmd.occurrences.last()?;
    if last.value != Ok(false) {
        return Some(None);
    }
    let i = last.arg - 1;
    let node = items[i];
    let edit = last.value_range.as_ref().and_then(|r| {
        let (start, _) = node.exact(f)?;
        let shift = added[i];
        (r.start >= shift).then(|| {
            (
                start + r.start - shift,
                start + r.end - shift,
                "true".to_string(),
            )
        })
    });
    Some(Some(Hit {
        at: node.start,
        kind: "",
        message: format!(
            "\"{}\" runs the kubelet with --{FLAG} false (its last occurrence decides)",
            argv[last.arg]
        ),
        edit,
    }))
}

/// kubeadm's `kubeletExtraArgs`: a map (v1beta3, CAPI v1beta1) or a list of `{name, value}`
/// (v1beta4, CAPI v1beta2); kubeadm passes each as `--name=value`, and the last one wins.
fn extra_args(f: &SourceFile, args: &Node, kind: &'static str, name: &str, out: &mut Vec<Hit>) {
    let ours = |k: &str| k.trim_start_matches('-').replace('_', "-") == FLAG;
    let last = match &args.kind {
        Kind::Map(entries) => entries
            .iter()
            .rev()
            .find(|(k, _)| k.str().is_some_and(ours))
            .map(|(_, v)| v),
        Kind::Seq(items) => items
            .iter()
            .rev()
            .find(|i| i.get("name").and_then(Node::str).is_some_and(ours))
            .and_then(|i| i.get("value")),
        _ => None,
    };
    let Some(v) = last else { return };
    let Some(text) = v.str() else { return };
    if flags::parse_bool(text) != Some(false) {
        return;
    }
    let edit = v
        .exact(f)
        .map(|(start, _)| (start, start + text.len(), "true".to_string()));
    out.push(Hit {
        at: v.start,
        kind,
        message: format!(
            "{name} nodeRegistration.kubeletExtraArgs sets {FLAG} to \"{text}\": kubeadm starts the kubelet with --{FLAG}={text}"
        ),
        edit,
    });
}

/// A `makeIPTablesUtilChains` field: a false, or a quoted bool the kubelet refuses to decode.
fn bool_field(f: &SourceFile, v: &Node, kind: &'static str, name: &str) -> Option<Hit> {
    let Kind::Scalar(text, style) = &v.kind else {
        return None;
    };
    if *style == ScalarStyle::Plain {
        if yaml11_bool(text) != Some(false) {
            return None;
        }
        let edit = v
            .exact(f)
            .map(|(start, _)| (start, start + text.len(), "true".to_string()));
        return Some(Hit {
            at: v.start,
            kind,
            message: format!("{name} sets {KEY}: {text}"),
            edit,
        });
    }
    yaml11_bool(text).or(flags::parse_bool(text))?;
    Some(Hit {
        at: v.start,
        kind,
        message: format!(
            "{name} sets {KEY} to the string \"{text}\": the kubelet cannot decode a string into a bool and refuses to start (write it unquoted: true)"
        ),
        edit: v.extent(f).map(|r| (r.start, r.end, "true".to_string())),
    })
}

/// A ConfigMap whose data value is a KubeletConfiguration (kubeadm's kube-system/kubelet-config,
/// key `kubelet`).
fn configmap(f: &SourceFile, root: &Node, name: &str, out: &mut Vec<Hit>) {
    for (k, v) in root.get("data").map(Node::entries).unwrap_or_default() {
        if v.str().is_some_and(|t| t.contains("KubeletConfiguration")) {
            let key = k.str().unwrap_or("?");
            embedded(
                f,
                v,
                &format!("{name} data.{key}"),
                Some("kubelet-configuration"),
                "configmap",
                out,
            );
        }
    }
}

/// A kustomization's inline patches (`patches[].patch`, and `patchesStrategicMerge` entries
/// that are YAML rather than file names): each is a manifest of its own, judged as one.
fn kustomization(f: &SourceFile, root: &Node, name: &str, out: &mut Vec<Hit>) {
    for (i, p) in root
        .get("patches")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(v) = p.get("patch") {
            embedded(
                f,
                v,
                &format!("{name} patches[{i}].patch"),
                None,
                "kustomization",
                out,
            );
        }
    }
    let psm = root
        .get("patchesStrategicMerge")
        .map(Node::items)
        .unwrap_or_default();
    for (i, v) in psm.iter().enumerate() {
        // A one-line entry is a file name, which the scan reads on its own.
        if v.str().is_some_and(|t| t.contains('\n')) {
            let label = format!("{name} patchesStrategicMerge[{i}]");
            embedded(f, v, &label, None, "kustomization", out);
        }
    }
}

/// The findings of a YAML document held in string `v` (only those of kind `only`, if given),
/// reported as `kind`. Positions inside a literal block (`|`) map line by line to the outer
/// file, so the edit is exact; otherwise the finding points at the string, with no edit.
fn embedded(
    f: &SourceFile,
    v: &Node,
    label: &str,
    only: Option<&str>,
    kind: &'static str,
    out: &mut Vec<Hit>,
) {
    let Kind::Scalar(text, style) = &v.kind else {
        return;
    };
    let inner = SourceFile::new(f.path.clone(), f.resolved.clone(), text.as_str());
    let Ok(docs) = super::tree::parse(&inner) else {
        return;
    };
    let map = (*style == ScalarStyle::Literal)
        .then(|| block_lines(&f.text, v.start, &inner))
        .flatten();
    for d in docs {
        let mut hits = Vec::new();
        judge(&inner, &d.root, &mut hits);
        for h in hits
            .into_iter()
            .filter(|h| only.is_none_or(|k| h.kind == k))
        {
            let to_outer = |off: usize| map.as_ref().and_then(|m| outer(m, &inner, off));
            let edit = h.edit.as_ref().and_then(|(s, e, r)| {
                let (os, oe) = (to_outer(*s)?, to_outer(*e)?);
                (f.text.get(os..oe) == inner.text.get(*s..*e)).then(|| (os, oe, r.clone()))
            });
            out.push(Hit {
                at: to_outer(h.at).unwrap_or(v.start),
                kind,
                message: format!("{label}: {}", h.message),
                edit,
            });
        }
    }
}

/// For a literal block scalar starting at `start` (its `|` indicator), the outer byte offset
/// where each content line's text begins, verified against the decoded content.
fn block_lines(outer_text: &str, start: usize, inner: &SourceFile) -> Option<Vec<usize>> {
    // The parser places a block scalar at its indicator or at its first content line.
    let header_end = if outer_text[start..].starts_with(['|', '>']) {
        start + outer_text[start..].find('\n')? + 1
    } else {
        outer_text[..start].rfind('\n').map_or(0, |i| i + 1)
    };
    let rest = &outer_text[header_end..];
    let indent = rest
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())?;
    let mut starts = Vec::new();
    let mut at = header_end;
    for line in inner.text.split('\n') {
        let here = outer_text.get(at..)?;
        let raw = here.split('\n').next()?;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            starts.push(at + content.len().min(indent));
        } else {
            if content.get(indent..)? != line {
                return None;
            }
            starts.push(at + indent);
        }
        at += raw.len() + 1;
        if at > outer_text.len() {
            break;
        }
    }
    Some(starts)
}

fn outer(lines: &[usize], inner: &SourceFile, off: usize) -> Option<usize> {
    let r = inner.line_range(off);
    let (line, _) = inner.line_col(off);
    Some(lines.get(line - 1)? + (off - r.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_block_maps_line_by_line() {
        let outer_text = "data:\n  kubelet: |\n    kind: KubeletConfiguration\n    a:\n      b: 1\n\n    makeIPTablesUtilChains: false\n";
        let inner_text =
            "kind: KubeletConfiguration\na:\n  b: 1\n\nmakeIPTablesUtilChains: false\n";
        let inner = SourceFile::new("/i".into(), "/i".into(), inner_text);
        let off = inner_text.find("false").unwrap();
        for start in [
            outer_text.find('|').unwrap(),
            outer_text.find("kind").unwrap(),
        ] {
            let lines = block_lines(outer_text, start, &inner).unwrap();
            let o = outer(&lines, &inner, off).unwrap();
            assert_eq!(&outer_text[o..o + 5], "false");
        }
    }
}
