#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Run kubelet-remediate on the node and turn its JSON record into Ansible's ok/changed/failed."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kubelet_remediate
short_description: Fix the CIS kubelet controls (makeIPTablesUtilChains by default; 4.2 with controls)
version_added: 0.1.0
author: kubelet-remediate maintainers (@kubelet-remediate)
description:
  - Runs C(kubelet-remediate plan) (I(mode=plan), or under check mode) or
    C(kubelet-remediate apply --yes) on the node and returns its JSON record.
  - C(apply) backs up, writes atomically, restarts the kubelet over D-Bus, verifies the new
    process, and rolls back by itself when the kubelet does not come back.
  - The task is ok when the node is compliant, changed when it was fixed (or, in plan mode and
    check mode, would be), and failed when the fix was rolled back or anything else went wrong.
options:
  binary:
    description: Path of the kubelet-remediate binary on the node.
    type: path
    required: true
  mode:
    description:
      - C(plan) reports and never changes anything; C(apply) fixes, restarts, verifies and
        rolls back on failure.
    type: str
    choices: [plan, apply]
    default: plan
  root:
    description: The node's root file system (a chroot or a test tree can point elsewhere).
    type: path
    default: /
  dbus_address:
    description:
      - systemd's D-Bus address. Unset, the node's C(/run/systemd/private), then its system bus.
    type: str
  settle:
    description: Seconds the restarted kubelet must stay active, with the same main PID.
    type: float
    default: 10
  node_name:
    description: The node's name in the record (the tool's default is the node's hostname).
    type: str
  controls:
    description:
      - The controls to judge and fix (C(--control)), by id (C(read-only-port)), CIS id of
        I(benchmark) (C(4.2.4)), or C(all). Unset, make-iptables-util-chains alone.
    type: list
    elements: str
  benchmark:
    description: The benchmark the CIS ids and rules are read in (kube-bench's names).
    type: str
    default: cis-1.12
attributes:
  check_mode:
    support: full
    description: Runs C(plan) instead of C(apply); changed tells whether apply would change.
  diff_mode:
    support: full
    description: The unified diff of every file the fix changes.
"""

EXAMPLES = r"""
- name: Report only
  kubelet_remediate.cis.kubelet_remediate:
    binary: /usr/local/sbin/kubelet-remediate
    mode: plan

- name: Fix, restart, verify (rolled back by the tool if the kubelet does not come back)
  kubelet_remediate.cis.kubelet_remediate:
    binary: /usr/local/sbin/kubelet-remediate
    mode: apply
    settle: 15
    node_name: "{{ inventory_hostname }}"
  register: result

- name: Every 4.2 control; what needs a person is reported, not failed
  kubelet_remediate.cis.kubelet_remediate:
    binary: /usr/local/sbin/kubelet-remediate
    mode: apply
    controls: [all]
    benchmark: eks-1.8.0
"""

RETURN = r"""
record:
  description:
    - The record kubelet-remediate printed (docs/report.schema.json), or null when it printed
      none (the binary is missing, or crashed).
  returned: always
  type: dict
result:
  description:
    - The record's result (compliant, non-compliant, changed, restart-needed, refused, managed,
      rolled-back, error).
  returned: when a record was printed
  type: str
  sample: changed
exit_code:
  description: The tool's exit status (0 compliant or fixed, 1 error, 2 not compliant, 3 managed).
  returned: when the tool ran
  type: int
  sample: 0
stderr:
  description: What the tool printed on standard error.
  returned: when the tool ran
  type: str
cmd:
  description: The command line that was run.
  returned: when the tool ran
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

# What each result means for Ansible when applying (plan mode never fails on a finding).
APPLY_OK = {"compliant"}
APPLY_CHANGED = {"changed"}
WOULD_CHANGE = {"non-compliant", "restart-needed"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            binary=dict(type="path", required=True),
            mode=dict(type="str", choices=["plan", "apply"], default="plan"),
            root=dict(type="path", default="/"),
            dbus_address=dict(type="str"),
            settle=dict(type="float", default=10.0),
            node_name=dict(type="str"),
            controls=dict(type="list", elements="str"),
            benchmark=dict(type="str", default="cis-1.12"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    command = "apply" if p["mode"] == "apply" and not module.check_mode else "plan"
    if not os.access(p["binary"], os.X_OK):
        if module.check_mode:
            # Under --check the install task did not copy it: nothing to evaluate yet.
            module.exit_json(changed=True, record=None,
                             msg="%s is not installed yet (check mode): it would be" % p["binary"])
        module.fail_json(msg="%s: not an executable (set kubelet_remediate_binary)" % p["binary"], record=None)

    argv = [p["binary"], command, "--root", p["root"], "--output", "json"]
    if p["node_name"]:
        argv += ["--node-name", p["node_name"]]
    if p["controls"]:
        argv += ["--control", ",".join(p["controls"]), "--benchmark", p["benchmark"]]
    if command == "apply":
        argv += ["--yes", "--settle", str(p["settle"])]
        if p["dbus_address"]:
            argv += ["--dbus-address", p["dbus_address"]]
    rc, out, err = module.run_command(argv)
    try:
        record = json.loads(out)
    except ValueError:
        module.fail_json(msg="kubelet-remediate printed no record (exit %d): %s" % (rc, err.strip()),
                         exit_code=rc, stderr=err, record=None)

    result = record.get("result")
    report = record.get("report") or {}
    diffs = "".join(c.get("diff", "") for c in report.get("changes") or [])
    # Not "rc": Ansible takes a non-zero rc as a failure, and plan exits 2 on a finding.
    ret = dict(record=record, result=result, exit_code=rc, stderr=err, cmd=argv)
    if module._diff and diffs:
        ret["diff"] = dict(prepared=diffs)
    error = (record.get("error") or {}).get("message")

    if command == "plan":
        ret["changed"] = result in WOULD_CHANGE
        if result == "error":
            module.fail_json(msg=error or "plan failed", **ret)
        if result in ("refused", "managed"):
            module.warn("%s: %s" % (result, report.get("refused") or "; ".join(report.get("advice") or [])))
        module.exit_json(msg=result, **ret)

    if result in APPLY_OK:
        module.exit_json(changed=False, msg="compliant: makeIPTablesUtilChains is true", **ret)
    if result in APPLY_CHANGED:
        pid = ((record.get("restart") or {}).get("result") or {}).get("main_pid")
        module.exit_json(changed=True, msg="fixed: the kubelet (pid %s) runs with makeIPTablesUtilChains true" % pid, **ret)
    if result == "non-compliant" and p["controls"]:
        # Everything that could be fixed safely was (changed tells); what is left needs a
        # person: reported, not a failure that would stop the rollout.
        left = [c["id"] for c in report.get("controls") or [] if c.get("status") != "pass" and not c.get("fixable")]
        module.warn("controls that need a person: %s" % ", ".join(left))
        module.exit_json(changed=bool(record.get("applied")), msg="fixed what is safe; left: %s" % ", ".join(left), **ret)
    # rolled-back, refused, managed, error: the node is not compliant and the rollout must stop.
    ret["changed"] = bool(record.get("applied"))
    module.fail_json(msg="%s: %s" % (result, error or report.get("refused") or "; ".join(report.get("advice") or [])), **ret)


if __name__ == "__main__":
    main()
