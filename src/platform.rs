//! Which distribution laid out the node, and what that means for a fix (domain doc section 6).
//!
//! The platform decides the advice (what regenerates the files, where the durable fix lives)
//! and whether the files may be edited at all: OpenShift's MachineConfig and Bottlerocket's
//! read-only, templated root own theirs, so those get a platform-level fix instead.

use crate::error::Result;
use crate::root::NodeFs;
use crate::systemd::exec::{Arg, Service};
use crate::systemd::lookup;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    KubeadmDeb,
    KubeadmRpm,
    EksAl2,
    EksAl2023,
    Aks,
    Gke,
    Kops,
    OpenShift,
    Bottlerocket,
    K3s,
    Rke2,
    Generic,
}

impl Platform {
    pub fn id(self) -> &'static str {
        match self {
            Platform::KubeadmDeb => "kubeadm-deb",
            Platform::KubeadmRpm => "kubeadm-rpm",
            Platform::EksAl2 => "eks-al2",
            Platform::EksAl2023 => "eks-al2023",
            Platform::Aks => "aks",
            Platform::Gke => "gke",
            Platform::Kops => "kops",
            Platform::OpenShift => "openshift",
            Platform::Bottlerocket => "bottlerocket",
            Platform::K3s => "k3s",
            Platform::Rke2 => "rke2",
            Platform::Generic => "generic",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::KubeadmDeb => "kubeadm (deb packages)",
            Platform::KubeadmRpm => "kubeadm (rpm packages)",
            Platform::EksAl2 => "Amazon EKS, Amazon Linux 2 (bootstrap.sh)",
            Platform::EksAl2023 => "Amazon EKS, Amazon Linux 2023 (nodeadm)",
            Platform::Aks => "Azure AKS",
            Platform::Gke => "Google GKE (Container-Optimized OS)",
            Platform::Kops => "kops",
            Platform::OpenShift => "OpenShift 4",
            Platform::Bottlerocket => "Bottlerocket",
            Platform::K3s => "k3s",
            Platform::Rke2 => "RKE2",
            Platform::Generic => "generic systemd node",
        }
    }

    /// Whether the kubelet runs inside another process (k3s, RKE2), so no kubelet command line
    /// exists to read back: the files are the evidence there.
    pub fn kubelet_in_process(self) -> bool {
        matches!(self, Platform::K3s | Platform::Rke2)
    }

    /// Files that the platform owns: never edit them, print the platform-level fix.
    pub fn managed(self) -> bool {
        matches!(self, Platform::OpenShift | Platform::Bottlerocket)
    }

    /// What keeps a fix in place on this platform (printed with every plan that edits).
    pub fn durability(self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        match self {
            Platform::KubeadmDeb | Platform::KubeadmRpm => s(&[
                "kubeadm upgrade rewrites /var/lib/kubelet/config.yaml from the ConfigMap kube-system/kubelet-config and rewrites /var/lib/kubelet/kubeadm-flags.env: make the fix there too, or the next upgrade undoes it.",
                "ConfigMap fix: kubectl -n kube-system edit configmap kubelet-config, and under data.kubelet set \"makeIPTablesUtilChains: true\" (or delete a false line).",
                "kubeadm config fix: remove make-iptables-util-chains from nodeRegistration.kubeletExtraArgs in the kubeadm InitConfiguration/JoinConfiguration.",
            ]),
            Platform::EksAl2 => s(&[
                "On Amazon Linux 2, bootstrap.sh writes these files at first boot only: the edit persists on this node, but new nodes come from the launch template; fix --kubelet-extra-args / KUBELET_EXTRA_ARGS in its user data too.",
            ]),
            Platform::EksAl2023 => s(&[
                "nodeadm regenerates /etc/eks/kubelet/environment and /etc/kubernetes/kubelet/config.json at every boot: an edit lasts until the next reboot.",
                "Durable fix: a NodeConfig that sets spec.kubelet.config.makeIPTablesUtilChains: true and keeps make-iptables-util-chains out of spec.kubelet.flags, e.g. in the launch template user data or a drop-in under /etc/eks/nodeadm.d/:\n---\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      makeIPTablesUtilChains: true",
            ]),
            Platform::Aks => s(&[
                "AKS regenerates /etc/default/kubelet and /etc/default/kubeletconfig.json on node image upgrade and reimage (inferred): reapply after each, or fix the node pool's custom kubelet configuration.",
            ]),
            Platform::Gke => s(&[
                "GKE recreates nodes on upgrade and repair (inferred): the edit lasts for this node's life; fix the node pool's kubelet configuration for new nodes.",
            ]),
            Platform::Kops => s(&[
                "nodeup regenerates /etc/sysconfig/kubelet and /var/lib/kubelet/kubelet.conf from the cluster spec: set spec.kubelet.makeIptablesUtilChains: true (or remove it) in the kops Cluster/InstanceGroup and run kops update cluster.",
            ]),
            Platform::OpenShift => s(&[
                "OpenShift: the Machine Config Operator owns the kubelet files; editing them marks the node Degraded. Apply a KubeletConfig instead (adjust the pool selector):\n---\napiVersion: machineconfiguration.openshift.io/v1\nkind: KubeletConfig\nmetadata:\n  name: make-iptables-util-chains\nspec:\n  machineConfigPoolSelector:\n    matchLabels:\n      pools.operator.machineconfiguration.openshift.io/worker: \"\"\n  kubeletConfig:\n    makeIPTablesUtilChains: true",
            ]),
            Platform::Bottlerocket => s(&[
                "Bottlerocket: the root file system is read-only (dm-verity) and the kubelet files are rendered from settings; its kubelet config never sets makeIPTablesUtilChains, so the default (true) applies. Nothing to edit on the node.",
            ]),
            Platform::K3s | Platform::Rke2 => {
                let d = if self == Platform::K3s { "k3s" } else { "rke2" };
                vec![format!(
                    "{d} reads kubelet-arg from /etc/rancher/{d}/config.yaml and config.yaml.d/*.yaml at every start, so the edit persists; a config management tool or the install script's INSTALL_{}_EXEC may put it back. Never edit /var/lib/rancher/{d}/agent/etc/kubelet.conf.d/00-{d}-defaults.conf ({d} rewrites it at every start): to set the key there, add a 50-*.conf drop-in.",
                    d.to_uppercase()
                )]
            }
            Platform::Generic => Vec::new(),
        }
    }
}

/// The unit to inspect when `--unit` is not given: kubelet.service, else a k3s/rke2 unit.
pub fn detect_unit(fs: &NodeFs) -> Result<String> {
    if !lookup::unit_exists(fs, "kubelet.service")? {
        for (unit, _) in crate::k3s::UNITS {
            if lookup::unit_exists(fs, unit)? {
                return Ok(unit.to_string());
            }
        }
    }
    // Missing: lookup reports it, naming kubelet.service.
    Ok("kubelet.service".into())
}

fn os_release_id(fs: &NodeFs) -> Option<String> {
    for p in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(Some((_, t))) = fs.read(p) {
            return t.lines().find_map(|l| {
                l.strip_prefix("ID=")
                    .map(|v| v.trim_matches(['"', '\'']).to_string())
            });
        }
    }
    None
}

pub fn detect(fs: &NodeFs, s: &Service) -> Result<Platform> {
    let argv0 = s
        .argv
        .first()
        .map(|a| a.value.text.clone())
        .unwrap_or_default();
    let uses_env_file = |p: &str| s.env_files.iter().any(|e| e.path == p);
    let has_dropin = |n: &str| {
        s.layout
            .dropins
            .iter()
            .any(|d| d.ends_with(&format!("/{n}")))
    };
    Ok(if os_release_id(fs).as_deref() == Some("bottlerocket") {
        Platform::Bottlerocket
    } else if argv0.ends_with("/kubenswrapper") || fs.is_dir("/etc/machine-config-daemon") {
        Platform::OpenShift
    } else if uses_env_file("/etc/eks/kubelet/environment") || fs.exists("/usr/bin/nodeadm") {
        Platform::EksAl2023
    } else if fs.exists("/etc/eks/bootstrap.sh") || has_dropin("10-kubelet-args.conf") {
        Platform::EksAl2
    } else if has_dropin("10-componentconfig.conf") || fs.exists("/etc/default/kubeletconfig.json")
    {
        Platform::Aks
    } else if argv0.starts_with("/home/kubernetes/bin/") {
        Platform::Gke
    } else if s.var("DAEMON_ARGS").is_some() {
        Platform::Kops
    } else if has_dropin("10-kubeadm.conf") || fs.exists("/var/lib/kubelet/kubeadm-flags.env") {
        if uses_env_file("/etc/sysconfig/kubelet") && !uses_env_file("/etc/default/kubelet") {
            Platform::KubeadmRpm
        } else {
            Platform::KubeadmDeb
        }
    } else {
        Platform::Generic
    })
}

/// The kubelet's own argv from the service's: OpenShift runs `kubenswrapper /usr/bin/kubelet ...`.
pub fn kubelet_argv(p: &Platform, mut argv: Vec<Arg>) -> Vec<Arg> {
    let wrapped = *p == Platform::OpenShift
        || argv
            .first()
            .is_some_and(|a| a.value.text.ends_with("/kubenswrapper"));
    if wrapped && argv.len() > 1 {
        argv.remove(0);
    }
    argv
}
