#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: deployment_info
short_description: Read deployments from the CodeDeploy ledger
version_added: 0.1.0
description:
  - Reads the ledger that the C(rollout.codedeploy.deploy) playbook writes, like CodeDeploy's C(get-deployment)
    and C(list-deployments).
  - With O(deployment_id), returns that one deployment with every instance and its lifecycle events
    (status, start, end, duration, error code, message and log tail).
  - Otherwise lists deployments, newest first, optionally of one O(application) and O(deployment_group) and with
    some O(statuses), without instances.
  - With O(summary) (and O(application) and O(deployment_group)), also returns RV(summary), the delivery figures of the
    group's last deployments (success rate, median and 95th percentile duration, rollbacks and time to rollback); with
    O(publish_metrics) it publishes them as CloudWatch metrics.
  - The ledger is a SQLite file on the controller or a DynamoDB table (O(ledger)); this module only reads it and
    never creates it.
  - "Runs on the controller (C(delegate_to: localhost)): that is where the SQLite ledger lives."
  - With O(deployment_id) and O(report), also writes the deployment's report (docs/report.md), for any past deployment
    in the ledger, as a self-contained HTML page with a timeline of each host and lifecycle event, the plan, the revision,
    the load-balancer actions and the rollback link, and the same data as JSON.
author:
  - rollout.codedeploy maintainers (@rollout)
requirements:
  - boto3 and botocore, only for a DynamoDB ledger
attributes:
  check_mode:
    description: Can run in check mode and return the same result.
    support: full
    details:
      - This module does not modify the ledger. With O(publish_metrics) in check mode it publishes nothing and returns
        the metrics it would publish. In check mode it writes no report and says which report files would change.
  diff_mode:
    description: Returns details on what has changed when in diff mode.
    support: none
  platform:
    support: full
    platforms: posix
options:
  deployment_id:
    description:
      - The deployment to return, with its instances and their lifecycle events (for example C(d-4K2ZQ7B1M)).
      - Fails when the ledger holds no such deployment, or when there is no ledger at O(ledger).
    type: str
  application:
    description:
      - List the deployments of this application only.
    type: str
  deployment_group:
    description:
      - List the deployments of this deployment group of O(application) only.
    type: str
  statuses:
    description:
      - List only deployments with one of these statuses.
    type: list
    elements: str
    choices: [Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped]
  limit:
    description:
      - List at most this many deployments (the newest); C(0) lists all.
    type: int
    default: 50
  ledger:
    description:
      - Where the ledger is, as the playbooks' C(codedeploy_ledger) variable says it.
      - A path to a SQLite file on the controller (C(~) is expanded), or C(dynamodb://<table>) for a DynamoDB table,
        reached with the AWS options of this module (O(region), O(endpoint_url), O(profile), ...).
      - Defaults to the environment variable E(CODEDEPLOY_LEDGER), else C(~/.ansible/codedeploy/ledger.sqlite3).
      - When there is no ledger at this location yet, listing returns an empty list (with a warning naming the
        location) and O(deployment_id) fails naming the location.
    type: str
  summary:
    description:
      - Summarize the group's last deployments (needs O(application) and O(deployment_group)); see RV(summary).
      - The window is the O(summary.last) most recent deployments created by a user that finished (V(Succeeded), V(Failed)
        or V(Stopped)); rollback deployments are not in it but give the time to rollback of the deployments they rolled back.
      - The figures are computed from every deployment of the group in the ledger, whatever O(limit) and O(statuses) say.
    type: dict
    suboptions:
      last:
        description: How many deployments to summarize.
        type: int
        default: 20
  publish_metrics:
    description:
      - Publish RV(summary)'s figures as CloudWatch metrics (C(PutMetricData)) in O(namespace), with the dimensions
        C(Application) and C(DeploymentGroup); needs O(summary). The metrics are listed in docs/metrics.md.
      - Uses this module's AWS options (O(region), O(endpoint_url), ...); needs C(cloudwatch:PutMetricData).
      - In check mode nothing is published; RV(metrics) lists what would be.
    type: bool
    default: false
  namespace:
    description: The CloudWatch namespace of the published metrics.
    type: str
    default: Rollout/CodeDeploy
  report:
    description:
      - Write the report of O(deployment_id) into a directory, as C(<deployment id>.html) and C(<deployment id>.json).
      - The files are replaced atomically and only when their content changes (the report holds no generation time,
        so writing the report of a finished deployment again reports no change). They are created with mode C(0600), since
        hook log tails may hold secrets; a missing directory is created with mode C(0700).
      - The report links the deployment's rollback (or the deployment it rolls back) as C(<id>.html) in the same
        directory; write the linked deployment's report there too to follow the link.
    type: dict
    suboptions:
      path:
        description:
          - The directory to write the report into, on the host the module runs on (the controller). C(~) is expanded.
        type: path
        required: true
      format:
        description:
          - Which files to write.
        type: list
        elements: str
        choices: [html, json]
        default: [html, json]
notes:
  - The AWS options (O(region), O(endpoint_url), O(access_key), ...) are used only for a DynamoDB ledger and O(publish_metrics).
    The DynamoDB table needs C(dynamodb:GetItem), C(dynamodb:Query) and C(dynamodb:BatchGetItem).
  - A deployment whose controller stopped renewing its lease (for example a killed C(ansible-playbook)) keeps its
    last status until the next deployment to its group marks it Failed; RV(deployments[].lease_expired) tells such
    deployments apart.
seealso:
  - module: rollout.codedeploy.revision
  - name: The deployment report
    description: What the report shows, and its JSON shape (docs/report.md in the collection).
    link: https://github.com/rollout/codedeploy/blob/main/docs/report.md
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
"""

EXAMPLES = r"""
- name: Show one deployment with its instances and lifecycle events
  rollout.codedeploy.deployment_info:
    deployment_id: d-4K2ZQ7B1M
  delegate_to: localhost
  register: found

- name: Print the failed events with their log tails
  ansible.builtin.debug:
    msg: "{{ item.0.host }} {{ item.1.event }}: {{ item.1.message }} {{ item.1.log_tail }}"
  loop: "{{ found.deployments[0].instances | subelements('events') }}"
  when: item.1.status == 'Failed'

- name: The last five deployments of web/production
  rollout.codedeploy.deployment_info:
    application: web
    deployment_group: production
    limit: 5
  delegate_to: localhost
  register: recent

- name: The delivery figures of web/production's last 20 deployments, also published to CloudWatch
  rollout.codedeploy.deployment_info:
    application: web
    deployment_group: production
    summary: {last: 20}
    publish_metrics: true
    region: eu-west-1
  delegate_to: localhost
  register: figures

- name: Write the HTML and JSON report of a past deployment
  rollout.codedeploy.deployment_info:
    deployment_id: d-4K2ZQ7B1M
    report:
      path: /var/www/deployments
  delegate_to: localhost
  register: reported

- name: Say where it is
  ansible.builtin.debug:
    msg: "open {{ reported.report.html }}"

- name: Deployments still running anywhere, from the team's DynamoDB ledger
  rollout.codedeploy.deployment_info:
    ledger: dynamodb://codedeploy-ledger
    statuses: [Created, InProgress, Ready]
    region: eu-west-1
  delegate_to: localhost
  register: running
"""

RETURN = r"""
ledger:
  description: The ledger that was read (an absolute path, or C(dynamodb://<table>)).
  returned: always
  type: str
  sample: /home/deploy/.ansible/codedeploy/ledger.sqlite3
report:
  description:
    - Only with O(report), the files of the report, by format (C(html), C(json)), and which of them changed
      (in check mode, which of them would change).
  returned: when O(report) is given
  type: dict
  contains:
    html:
      description: The HTML report's path.
      type: str
      sample: /var/www/deployments/d-4K2ZQ7B1M.html
    json:
      description: The JSON report's path.
      type: str
      sample: /var/www/deployments/d-4K2ZQ7B1M.json
    changed:
      description: The formats whose file was written (or would be, in check mode) because its content changed.
      type: list
      elements: str
      sample: [html, json]
deployments:
  description:
    - With O(deployment_id), a list of that one deployment, with RV(deployments[].instances).
    - Otherwise the deployments found, newest first, without instances.
  returned: always
  type: list
  elements: dict
  contains:
    deployment_id:
      description: The deployment's id.
      type: str
      sample: d-4K2ZQ7B1M
    application:
      description: The application.
      type: str
      sample: web
    deployment_group:
      description: The deployment group.
      type: str
      sample: production
    deployment_group_id:
      description: The deployment group's id, when the controller recorded one.
      type: str
    status:
      description: C(Created), C(Queued), C(InProgress), C(Baking), C(Ready), C(Succeeded), C(Failed) or C(Stopped).
      type: str
      sample: Failed
    creator:
      description: Who created the deployment; C(user), or C(rollback) for an automatic rollback.
      type: str
      sample: user
    description:
      description: The deployment's description.
      type: str
    create_time:
      description: When it was created (UTC ISO 8601).
      type: str
      sample: "2026-11-22T02:03:04.123Z"
    start_time:
      description: When it started (UTC ISO 8601), or null.
      type: str
    complete_time:
      description: When it finished (UTC ISO 8601), or null.
      type: str
    error:
      description: Null, or the CodeDeploy error code and a message saying what failed, where, why and what to do.
      type: dict
      sample: {code: HOOK_EXECUTION_FAILURE, message: "ValidateService failed on web-3 (d-4K2ZQ7B1M): scripts/check.sh exited 1."}
    revision:
      description:
        - The revision deployed, as the controller recorded it (location and sha256).
        - URL credentials (a presigned URL's signature and access key id, tokens, C(user:password@)) are shown as C(REDACTED).
      type: dict
    deployment_config:
      description: The deployment configuration (a name, or a custom configuration).
      type: raw
      sample: CodeDeployDefault.OneAtATime
    options:
      description: The deployment options (file_exists_behavior, ignore_application_stop_failures, ...).
      type: dict
    overview:
      description:
        - Instance counts by status, like CodeDeploy's deploymentOverview, plus C(Unknown).
      type: dict
      sample: {Pending: 0, InProgress: 1, Succeeded: 6, Failed: 1, Skipped: 0, Ready: 0, Unknown: 0}
    rollback_info:
      description:
        - Null, or the rollback links, C(rollback_deployment_id) (on the deployment that was rolled back),
          C(rollback_triggering_deployment_id) (on the rollback) and C(rollback_message).
      type: dict
    lease_expires:
      description: Until when the controller running the deployment holds its group's lock; null once finished.
      type: str
    lease_expired:
      description:
        - True for an unfinished deployment whose lock lease expired, so that its controller is probably gone;
          the next deployment to the group marks it Failed.
      type: bool
    owner:
      description:
        - The controller that runs or ran the deployment (C(ansible-playbook pid N on HOST (user U)), C(user@host pid N) or
          what the controller set), with C(, AWX job J launched by NAME) under AWX.
      type: str
      sample: "ansible-playbook pid 12 on automation-job-17-x2 (user runner), AWX job 17 launched by alice"
    actor:
      description:
        - Who started the deployment, the parts of RV(deployments[].owner); null without an owner. A part the owner does not
          name is null.
        - C(controller) (the process part), C(program), C(pid), C(host) and C(user) (the controller's OS user), C(awx_job_id)
          and C(awx_user) (the AWX or Automation Controller job and the user who launched it, from its C(awx_job_id) and
          C(awx_user_name) job variables, or C(tower_*)).
      type: dict
      sample: {controller: "ansible-playbook pid 12 on automation-job-17-x2 (user runner)", program: ansible-playbook, pid: 12,
               host: automation-job-17-x2, user: runner, awx_job_id: "17", awx_user: alice}
    unhealthy:
      description: Instances InProgress or Failed, the count that admission against minimum healthy hosts uses.
      type: int
    stop_request:
      description: Null, or C(rollback), C(requested_at) and C(requested_by) of a requested stop.
      type: dict
    continue_request:
      description:
        - Null, or C(requested_at) and C(requested_by) of the continue that let a blue/green deployment waiting in status V(Ready)
          reroute its traffic (C(rollout.codedeploy.continue)).
      type: dict
    swap:
      description:
        - Null, or the swap record of a blue/green deployment (see docs/traffic-shifting.md and docs/blue-green.md).
        - C(state) is V(installing), V(ready), V(shifting), V(rerouted), V(rolled_back) or V(stopped).
        - With a weighted shift (a target group pair, or a canary or linear deployment config), C(steps) lists the planned
          C(green_percent) and C(wait_seconds), C(blue_target_group) and C(green_target_group) name the pair's sides, and
          C(traffic) lists every weight change in order, each with C(step) (0 is the start, before the green hosts join),
          C(green_percent), C(weights) (per load balancer, C(listener <arn>) or C(haproxy <backend>@<runtime api>), the weight
          of each target group or server by name), C(time) (UTC ISO 8601, when the weights were set) and C(reason).
        - Other keys may describe the green and blue fleets (C(green_asg), C(blue_asg)).
      type: dict
      sample:
        state: rerouted
        blue_target_group: web-blue
        green_target_group: web-green
        steps: [{green_percent: 10, wait_seconds: 300}, {green_percent: 100, wait_seconds: 0}]
        traffic:
          - {step: 0, green_percent: 0, time: "2026-11-30T17:10:27.573Z", reason: "before the green hosts join: all traffic on blue",
             weights: {"listener arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2":
                       {web-blue: 100, web-green: 0}}}
          - {step: 1, green_percent: 10, time: "2026-11-30T17:10:35.270Z", reason: "step 1 of 2, 300 s at this share",
             weights: {"listener arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2":
                       {web-blue: 90, web-green: 10}}}
    instances:
      description: Only with O(deployment_id), the instances in the order of the deployment.
      type: list
      elements: dict
      contains:
        instance_id:
          description: The instance's id.
          type: str
        host:
          description: The inventory host.
          type: str
        zone:
          description: The Availability Zone, when known.
          type: str
        status:
          description: C(Pending), C(InProgress), C(Succeeded), C(Failed), C(Skipped), C(Unknown) or C(Ready).
          type: str
        start:
          description: When the instance started (UTC ISO 8601).
          type: str
        end:
          description: When it ended (UTC ISO 8601).
          type: str
        error_code:
          description: The error code of a failure.
          type: str
        message:
          description: What happened on the instance.
          type: str
        out_of_service:
          description: Whether the instance was left out of its load balancers.
          type: bool
        events:
          description: The lifecycle events recorded for the instance, in lifecycle order.
          type: list
          elements: dict
          contains:
            event:
              description: The lifecycle event (C(ApplicationStop), C(BeforeInstall), ...).
              type: str
            status:
              description: C(Pending), C(InProgress), C(Succeeded), C(Failed), C(Skipped) or C(Unknown).
              type: str
            start:
              description: When the event started (UTC ISO 8601).
              type: str
            end:
              description: When it ended (UTC ISO 8601).
              type: str
            duration:
              description: Its duration in seconds.
              type: float
            error_code:
              description: The agent's error code of a failure (for example C(ScriptFailed)).
              type: str
            message:
              description: The failure's message.
              type: str
            log_tail:
              description: The end of the scripts' output (up to 4096 characters).
              type: str
summary:
  description:
    - With O(summary), the figures of the group's last O(summary.last) finished user deployments (docs/metrics.md defines them).
    - Durations are in seconds, from a deployment's C(start_time) (or C(create_time)) to its C(complete_time); the 95th
      percentile is the nearest rank (the ceil(0.95 n)-th smallest duration).
    - Time to rollback runs from the failure (the failed deployment's C(complete_time), or its rollback's C(create_time) when
      that is earlier) to the rollback's C(complete_time).
  returned: when O(summary) is given
  type: dict
  contains:
    application:
      description: The application, or null with no deployment.
      type: str
    deployment_group:
      description: The deployment group, or null with no deployment.
      type: str
    last:
      description: The window asked for (O(summary.last)).
      type: int
    deployments:
      description: How many deployments the window holds (at most O(summary.last)).
      type: int
    succeeded:
      description: How many of them succeeded.
      type: int
    failed:
      description: How many failed.
      type: int
    stopped:
      description: How many were stopped.
      type: int
    success_rate:
      description: RV(summary.succeeded) / RV(summary.deployments), from 0 to 1; null with no deployment.
      type: float
      sample: 0.95
    duration_median_seconds:
      description: The median duration.
      type: float
    duration_p95_seconds:
      description: The 95th percentile duration (nearest rank).
      type: float
    rollbacks:
      description: How many deployments of the window a linked rollback deployment rolled back.
      type: int
    time_to_rollback_median_seconds:
      description: The median time to rollback of those whose rollback finished; null when none did.
      type: float
    time_to_rollback_max_seconds:
      description: The longest time to rollback; null when none finished.
      type: float
    rolled_back:
      description: Each rolled-back deployment, C(deployment_id), C(status), C(rollback_deployment_id), C(rollback_status),
        C(time_to_rollback_seconds).
      type: list
      elements: dict
    deployment_ids:
      description: The deployments of the window, newest first.
      type: list
      elements: str
    oldest_create_time:
      description: The creation time of the oldest deployment of the window.
      type: str
    newest_create_time:
      description: The creation time of the newest.
      type: str
metrics:
  description:
    - With O(publish_metrics), the CloudWatch metric data published (in check mode, that would be published), each with
      C(MetricName), C(Dimensions), C(Value) and C(Unit). A figure without a value (no deployment, no rollback) is left out.
  returned: when O(publish_metrics) is true
  type: list
  elements: dict
  sample:
    - {MetricName: SuccessRate, Unit: Percent, Value: 95.0,
       Dimensions: [{Name: Application, Value: web}, {Name: DeploymentGroup, Value: production}]}
namespace:
  description: The CloudWatch namespace of RV(metrics).
  returned: when O(publish_metrics) is true
  type: str
  sample: Rollout/CodeDeploy
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as ledger_api
from ansible_collections.rollout.codedeploy.plugins.module_utils import metrics
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import redact_revision
from ansible_collections.rollout.codedeploy.plugins.module_utils import report as reports


def aws_settings(module):
    """The ledger's ``aws`` dict from the module's AWS options."""
    region, endpoint_url, params = get_aws_connection_info(module)
    return {"region": region, "endpoint_url": endpoint_url, "access_key": params.get("aws_access_key_id"),
            "secret_key": params.get("aws_secret_access_key"), "session_token": params.get("aws_session_token"),
            "profile": params.get("profile_name"), "verify": params.get("verify")}


def read(module, location):
    """(the deployments asked for, every deployment of the group when a summary is asked for, else None)."""
    params = module.params
    kind, _target = ledger_api.parse_location(location)
    aws = aws_settings(module) if kind == "dynamodb" else None
    try:
        ledger = ledger_api.open_ledger(location, aws=aws, readonly=True)
    except ledger_api.LedgerMissingError as exc:
        if params["deployment_id"]:
            module.fail_json(msg="cannot read deployment %s: %s" % (params["deployment_id"], exc.message))
        module.warn(exc.message)
        return [], ([] if params["summary"] is not None else None)
    with ledger:
        if params["deployment_id"]:
            found = ledger.get_deployment(params["deployment_id"], include_instances=True)
            if params["report"]:
                found["_related"] = related(ledger, found)
            return [found], None
        listed = ledger.list_deployments(params["application"], params["deployment_group"], params["statuses"], params["limit"])
        if params["summary"] is None:
            return listed, None
        return listed, ledger.list_deployments(params["application"], params["deployment_group"], None, 0)


def publish(module, data):
    """PutMetricData in chunks of 20 (CloudWatch's limit per call); nothing in check mode."""
    if module.check_mode or not data:
        return
    client = module.client("cloudwatch")
    try:
        for start in range(0, len(data), 20):
            client.put_metric_data(Namespace=module.params["namespace"], MetricData=data[start:start + 20])
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg="cannot publish the deployment metrics to CloudWatch namespace %s (needs cloudwatch:PutMetricData)"
                             % module.params["namespace"])


def related(ledger, deployment):
    """The deployments linked to ``deployment`` by its rollback_info (without instances), for the report."""
    links = deployment.get("rollback_info") or {}
    found = []
    for key in ("rollback_deployment_id", "rollback_triggering_deployment_id"):
        if links.get(key):
            try:
                found.append(ledger.get_deployment(links[key], include_instances=False))
            except ledger_api.LedgerError:
                found.append({"deployment_id": links[key], "status": None, "description": "not in this ledger"})
    return found


def write_report(module, deployment, linked):
    """Write the report of ``deployment``; return (the ``report`` result, whether a file changed)."""
    options = module.params["report"]
    try:
        paths, changed = reports.write_report(reports.report_data(deployment, linked), options["path"], options["format"],
                                              check=module.check_mode)
    except reports.ReportError as exc:
        module.fail_json(msg="cannot write the report of %s: %s" % (deployment["deployment_id"], exc.message))
    return dict(paths, changed=changed), bool(changed)


def main():
    argument_spec = dict(
        deployment_id=dict(type="str"),
        application=dict(type="str"),
        deployment_group=dict(type="str"),
        statuses=dict(type="list", elements="str", choices=list(ledger_api.DEPLOYMENT_STATUSES)),
        limit=dict(type="int", default=50),
        ledger=dict(type="str", fallback=(env_fallback, ["CODEDEPLOY_LEDGER"])),
        summary=dict(type="dict", options=dict(last=dict(type="int", default=20))),
        publish_metrics=dict(type="bool", default=False),
        namespace=dict(type="str", default=metrics.DEFAULT_NAMESPACE),
        report=dict(type="dict", options=dict(
            path=dict(type="path", required=True),
            format=dict(type="list", elements="str", choices=list(reports.FORMATS), default=list(reports.FORMATS)),
        )),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        check_boto3=False,  # a SQLite ledger needs no boto3; the DynamoDB backend says when it is missing
        mutually_exclusive=[("deployment_id", "application"), ("deployment_id", "deployment_group"), ("deployment_id", "statuses")],
        required_by={"deployment_group": "application", "summary": ("application", "deployment_group"), "report": "deployment_id"},
    )
    if module.params["limit"] < 0:
        module.fail_json(msg="limit must be 0 (all) or more, got %d" % module.params["limit"])
    if module.params["publish_metrics"] and module.params["summary"] is None:
        module.fail_json(msg="publish_metrics needs summary (for example summary: {last: 20}) and application and deployment_group: "
                             "the metrics are the summary's figures")
    location = module.params["ledger"] or ledger_api.DEFAULT_LOCATION
    try:
        kind, target = ledger_api.parse_location(location)
        location = target if kind == "sqlite" else location
        listed, group = read(module, location)
        # Records written before credentials were redacted on the way in are redacted on the way out.
        deployments = redact_revision(listed)
        for deployment in deployments:
            deployment["actor"] = ledger_api.owner_actor(deployment.get("owner"))
        result = {"changed": False, "ledger": location, "deployments": deployments}
        if group is not None:
            result["summary"] = metrics.summarize(group, module.params["summary"]["last"])
    except ledger_api.LedgerError as exc:
        module.fail_json(msg=exc.message, ledger=location)
    except metrics.MetricsError as exc:
        module.fail_json(msg=exc.message)
    if module.params["publish_metrics"]:
        result["metrics"] = metrics.metric_data(result["summary"], module.params["application"], module.params["deployment_group"])
        result["namespace"] = module.params["namespace"]
        publish(module, result["metrics"])
        result["changed"] = bool(result["metrics"])
    if module.params["report"]:
        linked = deployments[0].pop("_related")
        result["report"], wrote = write_report(module, deployments[0], linked)
        result["changed"] = result["changed"] or wrote
    module.exit_json(**result)


if __name__ == "__main__":
    main()
