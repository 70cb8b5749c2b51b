#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lifecycle
short_description: Run CodeDeploy lifecycle events of a deployment on a host
version_added: 0.1.0
description:
  - Runs a consecutive slice of an EC2/on-premises CodeDeploy lifecycle on the managed host, the way the
    CodeDeploy agent would, keeping the agent's layout under O(deployment_root) so that a host the real
    agent managed keeps its history.
  - V(ApplicationStop), V(BeforeBlockTraffic) and V(AfterBlockTraffic) run the scripts of the last revision
    that installed successfully on the host; on a first deployment they succeed without running anything.
    Every other event runs the scripts of the revision being deployed.
  - V(DownloadBundle) unpacks the bundle that the action plugin in front of this module copied to the host
    (refusing archive entries that would land outside the archive), V(Install) copies the revision's
    files and applies its permissions.
  - The load-balancer events V(BlockTraffic) and V(AllowTraffic) are the controller's and are refused here.
  - One deployment at a time per host, as with the agent. A run holds the host for its deployment in the file
    C(.rollout-host.lock) under O(deployment_root); a run of another deployment waits for it (O(host_lock_wait)).
    A run that does not end the host's lifecycle (O(release_host_lock=false)) keeps the host for the deployment's next
    run for O(host_lock_hold) seconds; a run of the same deployment always gets in. A failed run releases the host.
    A lock whose run ended without releasing it, or that expired, is taken over (C(host_lock_taken_over)).
  - Use it through the roles and playbooks of this collection; the action plugin of the same name copies
    the bundle from the controller's cache first.
author:
  - rollout.codedeploy maintainers (@rollout)
attributes:
  check_mode:
    support: full
    details: In check mode nothing runs; the result lists, per event, the scripts that would run.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  deployment_id:
    description: The deployment's id, C(d-) followed by 9 upper-case letters and digits.
    type: str
    required: true
  deployment_group_id:
    description:
      - The deployment group's id; names the group's folders under O(deployment_root).
      - Use the id of an existing CodeDeploy deployment group to keep the history the agent left on the host.
    type: str
    required: true
  application_name:
    description: The application name, given to the scripts as E(APPLICATION_NAME).
    type: str
    required: true
  deployment_group_name:
    description: The deployment group name, given to the scripts as E(DEPLOYMENT_GROUP_NAME).
    type: str
    required: true
  events:
    description: The lifecycle events to run, in lifecycle order.
    type: list
    elements: str
    required: true
  bundle_src:
    description:
      - The bundle on the controller. The action plugin copies it to the host and sets O(bundle) for V(DownloadBundle).
    type: path
  appspec:
    description:
      - The revision's appspec as normalized by M(rollout.codedeploy.appspec_info) on the controller.
      - When omitted, V(DownloadBundle) reads C(appspec.yml) from the unpacked revision (needs PyYAML on the host).
    type: dict
  bundle:
    description: Path on the host of the bundle to unpack in V(DownloadBundle). The action plugin sets it.
    type: path
  bundle_tmpdir:
    description:
      - A private temporary folder on the host that holds O(bundle) and nothing else; the module removes it, with
        whatever is left in it, when it ends, whether the events succeeded or not.
      - The action plugin sets it for the folder it copies the bundle to, so that no separate remote command is needed
        to clean up. Never point it at a folder that holds anything else.
    type: path
  bundle_url:
    description:
      - Let the host download the bundle itself from this URL (for example a presigned S3 GET URL) instead of receiving
        it from the controller. Checked against O(bundle_sha256) like a copied bundle.
    type: str
  bundle_sha256:
    description: The bundle's expected sha256; V(DownloadBundle) fails when the bundle differs.
    type: str
  bundle_type:
    description: The bundle's type; detected from its content when omitted.
    type: str
    choices: [zip, tar, tgz]
  revision:
    description:
      - Where the revision came from, for the scripts' environment.
      - C(s3) (keys C(bucket), C(key), C(version), C(etag)) sets E(BUNDLE_BUCKET), E(BUNDLE_KEY), E(BUNDLE_VERSION) and E(BUNDLE_ETAG);
        C(git) (key C(commit)) sets E(BUNDLE_COMMIT).
    type: dict
  reuse_deployment:
    description:
      - Instead of a bundle, take the revision from the archive that deployment O(reuse_deployment) left on this host
        (hard links, no download). Used by rollbacks.
    type: str
  file_exists_behavior:
    description: What Install does with files that already exist where the revision installs; the appspec's own setting wins.
    type: str
    choices: [DISALLOW, OVERWRITE, RETAIN]
    default: DISALLOW
  ignore_application_stop_failures:
    description: Carry on when V(ApplicationStop), V(BeforeBlockTraffic) or V(AfterBlockTraffic) of the last revision fail.
    type: bool
    default: false
  deployment_root:
    description: The agent's deployment root on the host.
    type: path
    default: /opt/codedeploy-agent/deployment-root
  max_revisions:
    description: How many revisions of the group to keep on the host; the last successful one is always kept.
    type: int
    default: 5
  keep_bundle:
    description: Keep C(bundle.tar) beside the unpacked archive (the agent keeps both; by default only the archive is kept).
    type: bool
    default: false
  release_host_lock:
    description:
      - Release the host after this run. Set V(false) on every run but the last of a deployment whose lifecycle on the host
        spans several runs (the load-balancer steps in between are the controller's), so that no other deployment gets in
        between them. A failed run always releases the host.
      - With O(events=[]) and V(true), the run only releases the host when this deployment holds it.
    type: bool
    default: true
  host_lock_wait:
    description:
      - Seconds to wait while another deployment holds the host before failing with error code C(HostLocked), naming it.
      - V(0) fails at once.
    type: int
    default: 300
  host_lock_hold:
    description:
      - With O(release_host_lock=false), how many seconds the host stays held for this deployment after the run, for the
        controller's steps before its next run. A lock older than that whose deployment never came back is taken over.
    type: int
    default: 600
notes:
  - The module returns C(failed) when an event fails; its result still carries every event's status, error code and log tail.
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - rollout.codedeploy.attributes.action
"""

EXAMPLES = r"""
- name: Run the install half of an in-place deployment (no load balancer)
  rollout.codedeploy.lifecycle:
    deployment_id: d-EXAMPLE01
    deployment_group_id: 0b3c5a61-2f4e-5d8a-9c1e-7a6b5c4d3e2f
    application_name: web
    deployment_group_name: production
    events: [ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService]
    bundle: /var/cache/web-1.4.2.tgz
    bundle_sha256: 9f2c1d...
  register: host_deployment

- name: Roll a host back to the revision an earlier deployment left on it
  rollout.codedeploy.lifecycle:
    deployment_id: d-ROLLBACK1
    deployment_group_id: 0b3c5a61-2f4e-5d8a-9c1e-7a6b5c4d3e2f
    application_name: web
    deployment_group_name: production
    events: [ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService]
    reuse_deployment: d-EXAMPLE00
    file_exists_behavior: OVERWRITE
"""

RETURN = r"""
status:
  description: V(Succeeded) when every event succeeded (or its failure was ignored), else V(Failed).
  returned: always
  type: str
  sample: Failed
events:
  description: One entry per event that ran (or, in check mode, would run).
  returned: always
  type: list
  elements: dict
  contains:
    event:
      description: The lifecycle event.
      type: str
    status:
      description: V(Succeeded), V(Failed), V(Skipped), or V(Pending) in check mode.
      type: str
    error_code:
      description: The agent's diagnostics code (V(Success), V(ScriptMissing), V(ScriptNotExecutable), V(ScriptTimedOut), V(ScriptFailed), V(UnknownError)).
      type: str
    message:
      description: What happened, in the agent's words where it has them.
      type: str
    start:
      description: UTC ISO 8601 start time.
      type: str
    end:
      description: UTC ISO 8601 end time.
      type: str
    duration:
      description: Seconds.
      type: float
    log_tail:
      description: The last 2 KB or so of the event's script output.
      type: str
failed_event:
  description: The event that failed.
  returned: on failure
  type: str
  sample: ValidateService
error_code:
  description: The failed event's diagnostics code.
  returned: on failure
  type: str
  sample: ScriptFailed
script:
  description: The failed script's location in the revision.
  returned: on failure, when a script failed
  type: str
  sample: scripts/validate_service.sh
log_tail:
  description: The failed event's log tail.
  returned: on failure
  type: str
deployment_dir:
  description: The deployment's folder on the host.
  returned: always
  type: str
  sample: /opt/codedeploy-agent/deployment-root/0b3c5a61-2f4e-5d8a-9c1e-7a6b5c4d3e2f/d-EXAMPLE01
archive_root:
  description: Where the revision is unpacked on the host (the folder holding its appspec).
  returned: once the bundle is on the host
  type: str
bundle_tmpdir_removed:
  description: Whether O(bundle_tmpdir) is gone from the host.
  returned: when O(bundle_tmpdir) is set
  type: bool
host_lock:
  description: What this run did with the host lock, V(released), V(kept) (for the deployment's next run),
    V(not held) or V(held by another deployment).
  returned: unless in check mode
  type: str
  sample: released
host_lock_waited:
  description: Seconds this run waited for another deployment to release the host.
  returned: when it waited
  type: float
host_lock_taken_over:
  description: The lock this run took over, as the lock file held it, with C(why) it no longer counted.
  returned: when a stale lock was taken over
  type: dict
interrupted:
  description: An event an earlier run started and never finished (the controller or the host died), as C(deployment_id), C(event), C(started).
  returned: when an earlier run was cut off
  type: dict
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rollout.codedeploy.plugins.module_utils.constants import DEFAULT_DEPLOYMENT_ROOT, DEFAULT_MAX_REVISIONS
from ansible_collections.rollout.codedeploy.plugins.module_utils.lifecycle import HostDeployment, LifecycleError, HOST_EVENTS, os_error_text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deployment_id=dict(type="str", required=True),
            deployment_group_id=dict(type="str", required=True),
            application_name=dict(type="str", required=True),
            deployment_group_name=dict(type="str", required=True),
            events=dict(type="list", elements="str", required=True),
            appspec=dict(type="dict"),
            bundle=dict(type="path"),
            bundle_src=dict(type="path"),  # read by the action plugin, which copies the bundle and sets bundle
            bundle_tmpdir=dict(type="path"),
            bundle_url=dict(type="str", no_log=True),
            bundle_sha256=dict(type="str"),
            bundle_type=dict(type="str", choices=["zip", "tar", "tgz"]),
            revision=dict(type="dict"),
            reuse_deployment=dict(type="str"),
            file_exists_behavior=dict(type="str", choices=["DISALLOW", "OVERWRITE", "RETAIN"], default="DISALLOW"),
            ignore_application_stop_failures=dict(type="bool", default=False),
            deployment_root=dict(type="path", default=DEFAULT_DEPLOYMENT_ROOT),
            max_revisions=dict(type="int", default=DEFAULT_MAX_REVISIONS),
            keep_bundle=dict(type="bool", default=False),
            release_host_lock=dict(type="bool", default=True),
            host_lock_wait=dict(type="int", default=300),
            host_lock_hold=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    upload = module.params.get("bundle_tmpdir")
    try:
        result = HostDeployment(module.params).run(module.params["events"], check_mode=module.check_mode)
        msg = result.get("message") or "%s failed" % result.get("failed_event")
    except LifecycleError as exc:
        result = {"events": [], "status": "Failed", "host_events": list(HOST_EVENTS)}
        msg = exc.message
    except EnvironmentError as exc:
        result = {"events": [], "status": "Failed", "host_events": list(HOST_EVENTS)}
        msg = os_error_text(exc)
    finally:
        if upload:
            # DownloadBundle moved the bundle into the deployment's folder, or this run does not need it.
            shutil.rmtree(upload, ignore_errors=True)
    if upload:
        result["bundle_tmpdir_removed"] = not os.path.lexists(upload)
    stale = result.get("host_lock_taken_over")
    if stale:
        module.warn("took over the host lock of %s (%s/%s): %s" % (
            stale.get("deployment_id"), stale.get("application"), stale.get("deployment_group"), stale.get("why")))
    if result["status"] == "Failed":
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
