//! Every non-compliant node tree, fixed with its plan, evaluates to true, changes only lines
//! that carry the setting, keeps everything else byte for byte, and plans clean afterwards.

mod common;
use common::*;
use kubelet_remediate::plan::Strategy;

const NON_COMPLIANT: &[&str] = &[
    "aks",
    "bom-dropin",
    "capital-false-dropin",
    "config-absolute-symlink",
    "config-dir-null",
    "config-dir-override",
    "config-dir-symlinked-file",
    "config-relative-symlink",
    "dropin-miscased-key",
    "duplicate-keys",
    "eks-al2",
    "eks-al2023",
    "envfile-glob",
    "exec-prefixes",
    "execstart-continuation",
    "false-in-two-places",
    "flow-mapping-dropin",
    "k3s-agent",
    "k3s-cli-wins",
    "kops",
    "kubeadm-deb",
    "kubeadm-rpm",
    "last-wins-false-last",
    "lone-cr-dropin",
    "nul-dropin",
    "rke2-server",
    "underscore-zero",
];

fn fix_and_replan(case: &str, strategy: Option<Strategy>) {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes").join(case), tmp.path());
    let p = plan_root(tmp.path(), strategy).unwrap();
    assert!(!p.verdict.compliant(), "{case}");
    assert!(!p.plan.changes.is_empty(), "{case}: no change proposed");
    for c in &p.plan.changes {
        let (removed, added) = changed_lines(&c.before, &c.after);
        assert!(!removed.is_empty(), "{case}: {} unchanged", c.path);
        for l in &removed {
            assert!(
                carries_setting(l),
                "{case}: {} lost an unrelated line: {l:?}",
                c.path
            );
        }
        assert!(
            added.len() <= removed.len(),
            "{case}: lines added to {}",
            c.path
        );
        for l in &added {
            // The same line with the setting removed or set to true, nothing else new.
            let flag_gone = !carries_setting(l);
            let set_true = l.contains("=true") || l.contains(": true") || l.contains("\": true");
            assert!(flag_gone || set_true, "{case}: unexpected new line {l:?}");
        }
        // Line endings and the trailing newline survive.
        assert_eq!(c.before.ends_with('\n'), c.after.ends_with('\n'));
    }
    let before_argv = p.ev.argv_text();
    write_plan(tmp.path(), &p.plan);
    let again = plan_root(tmp.path(), strategy).unwrap();
    assert!(
        again.verdict.compliant(),
        "{case}: still not compliant after the fix"
    );
    assert!(
        again.plan.changes.is_empty(),
        "{case}: a second plan proposes more changes"
    );
    let strip =
        |v: Vec<String>| -> Vec<String> { v.into_iter().filter(|a| !carries_setting(a)).collect() };
    assert_eq!(
        strip(before_argv),
        strip(again.ev.argv_text()),
        "{case}: other arguments changed"
    );
}

#[test]
fn default_strategies_fix_every_case() {
    for c in NON_COMPLIANT {
        fix_and_replan(c, None);
    }
}

#[test]
fn set_true_everywhere_fixes_every_case() {
    for c in NON_COMPLIANT {
        fix_and_replan(c, Some(Strategy::SetTrue));
    }
}

#[test]
fn remove_everywhere_fixes_every_case() {
    for c in NON_COMPLIANT {
        fix_and_replan(c, Some(Strategy::Remove));
    }
}

#[test]
fn managed_platforms_get_advice_not_edits() {
    let p = plan_root(&repo().join("testdata/nodes/openshift"), None).unwrap();
    assert!(!p.verdict.compliant());
    assert!(p.plan.changes.is_empty());
    assert!(p.ev.platform.durability()[0].contains("kind: KubeletConfig"));
}

#[test]
fn false_in_two_places_fixes_both_at_once() {
    let p = plan_root(&repo().join("testdata/nodes/false-in-two-places"), None).unwrap();
    let paths: Vec<&str> = p.plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/etc/default/kubelet", "/var/lib/kubelet/config.yaml"]
    );
    assert!(p.plan.changes[0].after.contains("KUBELET_EXTRA_ARGS=\n"));
    assert!(
        p.plan.changes[1]
            .after
            .contains("makeIPTablesUtilChains: true\n")
    );
}

#[test]
fn symlinked_config_is_edited_at_its_target_inside_the_root() {
    for (case, target) in [
        (
            "config-absolute-symlink",
            "/etc/kubernetes/kubelet/config.yaml",
        ),
        (
            "config-relative-symlink",
            "/var/lib/kubelet/generated/config-v2.yaml",
        ),
    ] {
        let p = plan_root(&repo().join("testdata/nodes").join(case), None).unwrap();
        assert_eq!(p.plan.changes[0].path, target, "{case}");
        assert_eq!(
            p.plan.changes[0].via.as_deref(),
            Some("/var/lib/kubelet/config.yaml")
        );
    }
}

#[test]
fn crlf_line_endings_survive() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("testdata/nodes/kubeadm-deb"), tmp.path());
    let f = tmp.path().join("etc/default/kubelet");
    let crlf = std::fs::read_to_string(&f).unwrap().replace('\n', "\r\n");
    std::fs::write(&f, &crlf).unwrap();
    let p = plan_root(tmp.path(), None).unwrap();
    let after = &p.plan.changes[0].after;
    assert_eq!(
        after.as_ref(),
        crlf.replace(" --make-iptables-util-chains=false", "")
    );
}

/// One file reached under two names (a `--config-dir` drop-in symlinked to the `--config` file)
/// is planned once: one change, one edit.
#[test]
fn a_file_reached_under_two_names_is_edited_once() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(
        &repo().join("testdata/nodes/config-dir-override"),
        tmp.path(),
    );
    let cfg = tmp.path().join("var/lib/kubelet/config.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "makeIPTablesUtilChains: true",
        "makeIPTablesUtilChains: false",
    );
    std::fs::write(&cfg, text).unwrap();
    let d = tmp.path().join("etc/kubernetes/kubelet.conf.d");
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::symlink("/var/lib/kubelet/config.yaml", d.join("50-same.conf")).unwrap();
    let p = plan_root(tmp.path(), None).unwrap();
    assert!(!p.verdict.compliant());
    assert_eq!(
        p.plan.changes.len(),
        1,
        "{:?}",
        p.plan.changes.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    assert_eq!(p.plan.changes[0].path, "/var/lib/kubelet/config.yaml");
    assert_eq!(p.plan.changes[0].edits.len(), 1);
    write_plan(tmp.path(), &p.plan);
    assert!(plan_root(tmp.path(), None).unwrap().verdict.compliant());
}
