# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IAM policies of docs/security.md (docs/iam/*.json) are enough, and every action in them is needed.

A private moto server (127.0.0.1, a free port outside the worlds' 5000-5700) runs with IAM
authorization on (``/moto-api/reset-auth``). An IAM user gets exactly the documented policy, and
the collection's own code paths run with that user's keys over HTTP: the S3 revision fetch, the
revision module's upload, the inventory plugin, traffic control on a target group and a classic
load balancer, the alarm gate, SNS and EventBridge triggers, and the DynamoDB ledger (read-write
and read-only). Then each required action is taken out of the policy in turn and the feature that
needs it must fail with an access error.

moto checks resources only for S3; for the other services it checks the action alone. So a
second test records every call the in-process code makes (a botocore event hook on each client)
and checks each call's action *and* resource ARN against the documented statements.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
import yaml

from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle as bundles
from ansible_collections.rollout.codedeploy.plugins.module_utils import green_fleet
from ansible_collections.rollout.codedeploy.plugins.module_utils import lifecycle_hooks
from ansible_collections.rollout.codedeploy.plugins.module_utils import shift
from ansible_collections.rollout.codedeploy.plugins.module_utils import traffic as tr
from ansible_collections.rollout.codedeploy.plugins.module_utils.alarms import check_alarms
from ansible_collections.rollout.codedeploy.plugins.module_utils.ledger import open_ledger
from ansible_collections.rollout.codedeploy.plugins.module_utils.notify import Notifier
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import reroute, service
from world import paths
from world.aws import Resources
from world.moto_launch import DRAIN_DIR_ENV

pytestmark = [pytest.mark.aws]

IAM_DIR = os.path.join(paths.REPO, "docs", "iam")
SECURITY_DOC = os.path.join(paths.REPO, "docs", "security.md")
#: The per-feature files, in the order controller-policy.json concatenates their statements.
FEATURES = ("revision-fetch", "revision-upload", "inventory", "target-groups", "classic-elb", "alarms", "triggers", "ledger-dynamodb",
            "blue-green", "blue-green-copy", "traffic-shift", "scale-out")
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
BUCKET = "rollout-iam-revisions"
PREFIX = "web/"
VALUES = {"REGION": REGION, "ACCOUNT_ID": ACCOUNT, "REVISION_BUCKET": BUCKET, "REVISION_PREFIX": PREFIX,
          "TARGET_GROUP_NAME": "web-tg", "CLASSIC_ELB_NAME": "web-clb", "ALARM_NAME": "web-5xx", "TOPIC_NAME": "deploys",
          "EVENT_BUS_NAME": "deploys", "LEDGER_TABLE": "rollout-ledger*", "LOAD_BALANCER": "shift-alb",
          "METRICS_NAMESPACE": "Rollout/CodeDeploy"}
#: Called by the code but not needed for it to work: without it a message gives fewer details.
OPTIONAL = frozenset(["elasticloadbalancing:DescribeTargetGroupAttributes"])
#: Never called as such, but S3 needs it to answer 404 instead of 403 for a missing key (moto does not model that).
IMPLICIT = frozenset(["s3:ListBucket"])
#: Checked by AWS on the caller when an Auto Scaling group launches from a launch template (and iam:PassRole for its instance
#: profile), but not by moto, which launches the copy's instances as itself: documented, not provable here.
AWS_SIDE = frozenset(["ec2:RunInstances", "ec2:CreateTags", "ec2:DescribeLaunchTemplateVersions", "iam:PassRole",
                      "autoscaling:CreateOrUpdateTags"])
#: Actions of code that runs in a subprocess (ansible-inventory, the revision module): proven by the removal test only.
SUBPROCESS = {"inventory": {"ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"},
              "revision-upload": {"s3:GetObject", "s3:PutObject"}}
DENIED = re.compile(r"AccessDenied|UnauthorizedOperation|not authorized|\b403\b")
REVISION_DEPLOYMENT = {"s3": {"bucket": BUCKET, "key": PREFIX + "app.tgz", "version": None}, "bundle_type": "tgz"}


def policy_file(name):
    with open(os.path.join(IAM_DIR, name + ".json"), encoding="utf-8") as handle:
        return json.load(handle)


def substitute(policy, values=None):
    """The policy with its placeholders (REGION, ACCOUNT_ID, ...) replaced by this test's values."""
    text = json.dumps(policy)
    for key, value in sorted((values or VALUES).items(), key=lambda item: -len(item[0])):
        text = text.replace(key, value)
    return json.loads(text)


def as_list(value):
    return value if isinstance(value, list) else [value]


def actions_of(policy):
    return set(a for s in policy["Statement"] for a in as_list(s["Action"]))


def without(policy, action):
    """A copy of ``policy`` with ``action`` taken out of every statement (statements left empty are dropped)."""
    statements = []
    for statement in policy["Statement"]:
        kept = [a for a in as_list(statement["Action"]) if a != action]
        if kept:
            statements.append(dict(statement, Action=kept))
    return dict(policy, Statement=statements)


def for_moto(policy):
    """What moto can evaluate: it checks resources for S3 only (elsewhere it asks about resource "*"), signs CloudWatch
    requests as ``monitoring``, and authorizes a DynamoDB transaction as TransactWriteItems where AWS checks UpdateItem."""
    statements = []
    for statement in substitute(policy)["Statement"]:
        actions = as_list(statement["Action"])
        moto_actions = list(actions)
        moto_actions += ["monitoring:" + a.split(":", 1)[1] for a in actions if a.startswith("cloudwatch:")]
        if "dynamodb:UpdateItem" in actions:
            moto_actions.append("dynamodb:TransactWriteItems")
        moto_statement = dict(statement, Action=moto_actions)
        if not all(a.startswith("s3:") for a in actions):
            moto_statement["Resource"] = "*"
            moto_statement.pop("Condition", None)
        statements.append(moto_statement)
    return {"Version": policy["Version"], "Statement": statements}


# ----------------------------------------------------------------------------------------------
# A moto server of our own with IAM authorization on
# ----------------------------------------------------------------------------------------------
def free_port():
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not 5000 <= port <= 5700:
            return port


class EnforcingMoto:
    """moto_server on 127.0.0.1 with IAM authorization on; ``admin`` clients set the scene, ``user()`` makes restricted keys."""

    def __init__(self, state_dir):
        self.endpoint = "http://127.0.0.1:%d" % free_port()
        self.log = open(os.path.join(state_dir, "moto.log"), "ab")  # pylint: disable=consider-using-with
        # The world's moto launcher: moto plus the Auto Scaling lifecycle calls it lacks (world/moto_launch.py).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(paths.REPO, "tests")] + (
            [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
        env[DRAIN_DIR_ENV] = os.path.join(state_dir, "drain")
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "world.moto_launch", "-H", "127.0.0.1", "-p", self.endpoint.rsplit(":", 1)[1]],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env, cwd=paths.REPO)
        self._users = 0
        self.admin = None

    def wait(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("moto_server did not start on %s" % self.endpoint) from None
                time.sleep(0.1)

    def enforce(self):
        """IAM authorization on from now on: every request must be signed by an IAM user's key and be allowed."""
        request = urllib.request.Request(self.endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["status"] == "ok"

    def client(self, service_name, keys):
        return boto3.client(service_name, region_name=REGION, endpoint_url=self.endpoint, aws_access_key_id=keys["access_key"],
                            aws_secret_access_key=keys["secret_key"])

    def make_user(self, iam, policy):
        self._users += 1
        name = "controller-%d" % self._users
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="rollout-codedeploy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}

    def user(self, documented):
        """AWS settings (as the collection takes them) of a new IAM user holding ``documented`` (made moto-readable)."""
        keys = self.make_user(self.client("iam", self.admin), for_moto(documented))
        return dict(keys, region=REGION, endpoint_url=self.endpoint)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class _AdminMoto:
    """What world.aws.Resources expects of a moto server: ``client(service)``, here with the admin user's keys."""

    def __init__(self, moto):
        self.moto = moto

    def client(self, service_name, region=REGION):
        assert region == REGION
        return self.moto.client(service_name, self.moto.admin)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The enforcing server and the resources every scenario uses, built by an administrator user."""
    state = tmp_path_factory.mktemp("iam-moto")
    moto = EnforcingMoto(str(state))
    try:
        moto.wait()
        root = {"access_key": "testing", "secret_key": "testing"}
        moto.admin = moto.make_user(moto.client("iam", root), {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        moto.enforce()
        built = build_scene(moto, state)
        yield built
    finally:
        moto.stop()


def build_scene(moto, state):
    res = Resources(_AdminMoto(moto))

    def admin(name):
        return moto.client(name, moto.admin)

    res.bucket(BUCKET)
    bundles.create(os.path.join(paths.REPO, "examples", "sample-app"), str(state / "app.tgz"), "tgz")
    version = res.s3.put_object(Bucket=BUCKET, Key=PREFIX + "app.tgz", Body=(state / "app.tgz").read_bytes())["VersionId"]
    res.s3.put_object(Bucket=BUCKET, Key="other/app.tgz", Body=b"not for this controller")
    target_group = res.target_group("web-tg", port=8080)
    admin("elb").create_load_balancer(LoadBalancerName="web-clb", Subnets=list(res.network()["subnets"].values()),
                                      Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}])
    instances = res.launch(2, {"Role": "web"})
    res.autoscaling_group("web-asg", 1)
    admin("cloudwatch").put_metric_alarm(AlarmName="web-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
                                         Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5.0,
                                         ComparisonOperator="GreaterThanThreshold")
    blue = res.target_group("shift-blue", port=8080, with_load_balancer=False)
    green = res.target_group("shift-green", port=8080, with_load_balancer=False)
    shift_lb = admin("elbv2").create_load_balancer(Name="shift-alb", Subnets=list(res.network()["subnets"].values()), Type="application",
                                                   Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
    shift_listener = admin("elbv2").create_listener(LoadBalancerArn=shift_lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": blue, "Weight": 100}, {"TargetGroupArn": green, "Weight": 0}]}}
    ])["Listeners"][0]["ListenerArn"]
    shift_rule = admin("elbv2").create_rule(ListenerArn=shift_listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                                            Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                                                {"TargetGroupArn": blue, "Weight": 100}, {"TargetGroupArn": green, "Weight": 0}]}}])["Rules"][0]["RuleArn"]
    topic = admin("sns").create_topic(Name="deploys")["TopicArn"]
    bus = admin("events").create_event_bus(Name="deploys")["EventBusArn"]
    return {"moto": moto, "state": state, "version": version, "target_group": target_group, "instances": instances,
            "asg_instances": res.asg_instances("web-asg"), "topic": topic, "bus": bus, "tables": 0, "uploads": 0,
            "shift_listener": shift_listener, "shift_rule": shift_rule}


# ----------------------------------------------------------------------------------------------
# The collection's code paths, one per feature; each raises (or returns a failure) when AWS refuses
# ----------------------------------------------------------------------------------------------
def run_revision_fetch(scene, settings):
    access = aws_access.AwsAccess(settings)
    cache = scene["state"] / ("cache-%d" % time.monotonic_ns())
    by_version = {"s3": {"bucket": BUCKET, "key": PREFIX + "app.tgz", "version": scene["version"]}}
    for revision in ("s3://%s/%sapp.tgz" % (BUCKET, PREFIX), by_version):
        fetched, spec, _warnings = service.fetch_revision(revision, access, cache=str(cache))
        assert fetched["downloaded"] and spec["hooks"], fetched
        cache = scene["state"] / ("cache-%d" % time.monotonic_ns())


def run_revision_upload(scene, settings):
    scene["uploads"] += 1
    args = {"path": os.path.join(paths.REPO, "examples", "sample-app"), "dest": str(scene["state"] / "bundles") + "/",
            "bucket": BUCKET, "key": "%supload-%d.tgz" % (PREFIX, scene["uploads"]), "region": REGION,
            "endpoint_url": settings["endpoint_url"]}
    proc = ansible(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
                    "-m", "rollout.codedeploy.revision", "-a", json.dumps(args)], settings)
    assert proc.returncode == 0 and '"uploaded": true' in proc.stdout, proc.stdout + proc.stderr


def run_inventory(scene, settings):
    source = scene["state"] / "iam.codedeploy.yml"
    source.write_text(yaml.safe_dump({
        "plugin": "rollout.codedeploy.codedeploy", "regions": [REGION], "endpoint_url": settings["endpoint_url"],
        "hostnames": ["instance-id"], "applications": {"web": {"deployment_groups": {"production": {
            "ec2_tag_filters": [{"key": "Role", "value": "web"}], "autoscaling_groups": ["web-asg"]}}}}}))
    proc = ansible(["ansible-inventory", "-i", str(source), "--list"], settings, {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hosts = set(json.loads(proc.stdout)["web_production"]["hosts"])
    assert hosts == set(scene["instances"]) | set(scene["asg_instances"]), hosts


def ansible(args, settings, extra=None):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_"))
    env.update({"AWS_ACCESS_KEY_ID": settings["access_key"], "AWS_SECRET_ACCESS_KEY": settings["secret_key"], "AWS_REGION": REGION,
                "ANSIBLE_COLLECTIONS_PATH": paths.collections_path(), "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_FORCE_COLOR": "0",
                "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")})
    env.update(extra or {})
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=paths.REPO)


def balancers(settings, target_groups=("web-tg",), classic=()):
    access = aws_access.AwsAccess(settings)
    return tr.LoadBalancers(elbv2=access.client("elbv2") if target_groups else None, elb=access.client("elb") if classic else None,
                            target_groups=target_groups, classic_elbs=classic, sleep=lambda seconds: None, poll=0.01)


def run_traffic(lbs, instance):
    allowed = lbs.allow(instance, timeout=30)
    assert allowed["changed"], allowed
    blocked = lbs.block(instance, timeout=30)
    assert blocked["changed"], blocked
    assert tr.out_of_service(lbs.members([instance])[instance])


def run_target_groups(scene, settings):
    instance = scene["instances"][0]
    elbv2 = scene["moto"].client("elbv2", scene["moto"].admin)  # out first, whatever an earlier run left
    health = elbv2.describe_target_health(TargetGroupArn=scene["target_group"])["TargetHealthDescriptions"]
    if any(d["Target"]["Id"] == instance for d in health):
        elbv2.deregister_targets(TargetGroupArn=scene["target_group"], Targets=[{"Id": instance, "Port": 8080}])
    run_traffic(balancers(settings), instance)


def run_classic_elb(scene, settings):
    instance = scene["instances"][1]
    scene["moto"].client("elb", scene["moto"].admin).deregister_instances_from_load_balancer(
        LoadBalancerName="web-clb", Instances=[{"InstanceId": instance}])
    run_traffic(balancers(settings, target_groups=(), classic=("web-clb",)), instance)


def drain_hint(settings):
    """The BlockTraffic timeout hint, which reads the target group's deregistration delay when it may."""
    lbs = balancers(settings)
    return lbs._drain_hint(lbs.resolve()[0])  # pylint: disable=protected-access


def run_alarms(scene, settings):
    assert scene
    check = check_alarms(aws_access.AwsAccess(settings).client("cloudwatch"), ["web-5xx"])
    assert check.ok and check.error is None, check.message


def run_triggers(scene, settings):
    access = aws_access.AwsAccess(settings)
    notifier = Notifier(sns=access.client("sns"), events=access.client("events"), region=REGION, account_id=access.account_id(),
                        triggers=[{"name": "ops", "target": scene["topic"], "events": ["DeploymentStart"]},
                                  {"name": "bus", "target": scene["bus"], "events": ["DeploymentStart"]}])
    deployment = {"deployment_id": "d-IAMTEST01", "application": "web", "deployment_group": "production", "status": "InProgress",
                  "deployment_group_id": "dg-1", "create_time": "2024-01-01T00:00:00Z"}
    warnings = notifier.deployment_event("DeploymentStart", deployment)
    assert not warnings, warnings
    assert [d["ok"] for d in notifier.deliveries] == [True, True], notifier.deliveries


def new_table(scene):
    scene["tables"] += 1
    return "rollout-ledger-%d" % scene["tables"]


def ledger_aws(settings):
    return dict((k, settings[k]) for k in ("region", "endpoint_url", "access_key", "secret_key"))


def run_ledger_dynamodb(scene, settings, table=None):
    """A deployment's whole life in a new table: created on first use, lock, instances, events, history, listing, settling."""
    table = table or new_table(scene)
    ledger = open_ledger("dynamodb://" + table, aws=ledger_aws(settings))
    try:
        created = ledger.create_deployment("web", "production", "dg-1", REVISION_DEPLOYMENT, "CodeDeployDefault.OneAtATime",
                                           [{"instance_id": "i-1", "host": "web-1", "zone": "us-east-1a"}], owner="iam-test")
        deployment_id = created["deployment_id"]
        ledger.update_status(deployment_id, "InProgress")
        assert ledger.try_start_instance(deployment_id, "i-1", 1)
        ledger.record_events(deployment_id, "i-1", [{"event": "Install", "status": "Succeeded"}])
        ledger.finish_instance(deployment_id, "i-1", "Succeeded")
        assert ledger.instance_history("web", "production", ["i-1"])["i-1"]["deployment_id"] == deployment_id
        ledger.update_status(deployment_id, "Succeeded")
        assert [d["deployment_id"] for d in ledger.list_deployments("web", "production")] == [deployment_id]
        assert ledger.get_deployment(deployment_id)["status"] == "Succeeded"
    finally:
        ledger.close()
    return table, deployment_id


def run_ledger_readonly(scene, settings, table, deployment_id):
    """What deployment_info does: open the table read-only, list and read a deployment with its instances."""
    assert scene
    ledger = open_ledger("dynamodb://" + table, aws=ledger_aws(settings), readonly=True)
    try:
        assert [d["deployment_id"] for d in ledger.list_deployments("web")] == [deployment_id]
        assert [i["instance_id"] for i in ledger.get_deployment(deployment_id)["instances"]] == ["i-1"]
    finally:
        ledger.close()


def run_blue_green(scene, settings):
    """A blue/green deployment with TERMINATE retires the original fleet: one instance, launched by the administrator."""
    ec2 = scene["moto"].client("ec2", scene["moto"].admin)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    states = aws_access.terminate_instances(aws_access.AwsAccess(settings), [instance])
    assert states.get(instance) in ("shutting-down", "terminated"), states


def run_blue_green_copy(scene, settings):
    """COPY_AUTO_SCALING_GROUP: describe the source, create its copy, describe the copy's instances, delete the copy."""
    access = aws_access.AwsAccess(settings)
    source = green_fleet.describe_group(access, "web-asg")
    healthy = green_fleet.check_source(source, "web-asg")
    scene["copies"] = scene.get("copies", 0) + 1
    request = green_fleet.copy_request(source, green_fleet.copy_name("production", "d-IAM%06d" % scene["copies"]), len(healthy))
    green_fleet.create_group(access, request)
    try:
        members = green_fleet.in_service(green_fleet.describe_group(access, request["AutoScalingGroupName"]))
        assert len(green_fleet.describe_instances(access, sorted(members))) == len(healthy)
    finally:
        green_fleet.delete_group(access, request["AutoScalingGroupName"])


def run_traffic_shift(scene, settings):
    """Weighted forwarding between blue and green target groups: the listener's default action, then a rule."""
    elbv2 = aws_access.AwsAccess(settings).client("elbv2")
    for rules in (None, [scene["shift_rule"]]):
        target = shift.AlbTarget(elbv2, scene["shift_listener"], "shift-blue", "shift-green", rule_arns=rules)
        target.resolve()
        for percent in (10, 0):
            done = target.set_weights(percent)
            assert done["green_percent"] == percent, done
        assert set(target.read_weights().values()) == {100, 0}
    # A blue/green deployment with a target group pair first finds which group of the pair serves (plugin_utils/reroute.py).
    pair = {"target_groups": ["shift-blue", "shift-green"], "listener_arns": [scene["shift_listener"]], "rule_arns": [scene["shift_rule"]]}
    blue, _green = reroute.serving_side(elbv2, pair)
    assert shift._tg_name(blue) == "shift-blue"  # pylint: disable=protected-access


def run_scale_out(scene, settings):
    """The launch hook put and deleted (what the lifecycle_hook module does), a lifecycle heartbeat and a completion (scale_out)."""
    autoscaling = aws_access.AwsAccess(settings).client("autoscaling")
    scene["hooks"] = scene.get("hooks", 0) + 1  # a new group each run: a run refused before its delete leaves its hook behind
    group = "web_iam%d" % scene["hooks"]
    name = lifecycle_hooks.hook_name(group)
    assert lifecycle_hooks.ensure_hooks(autoscaling, ["web-asg"], lifecycle_hooks.desired_hook(group), name)["changed"]
    instance = scene["asg_instances"][0]
    autoscaling.record_lifecycle_action_heartbeat(AutoScalingGroupName="web-asg", LifecycleHookName=name, InstanceId=instance)
    lifecycle_hooks.complete_action(autoscaling, "web-asg", name, instance, "CONTINUE")
    assert lifecycle_hooks.ensure_hooks(autoscaling, ["web-asg"], None, name)["changed"]


SCENARIOS = {"revision-fetch": run_revision_fetch, "revision-upload": run_revision_upload, "inventory": run_inventory,
             "target-groups": run_target_groups, "classic-elb": run_classic_elb, "alarms": run_alarms, "triggers": run_triggers,
             "ledger-dynamodb": run_ledger_dynamodb, "blue-green": run_blue_green,
             "blue-green-copy": run_blue_green_copy, "traffic-shift": run_traffic_shift, "scale-out": run_scale_out}


# ----------------------------------------------------------------------------------------------
# The documentation and the files agree
# ----------------------------------------------------------------------------------------------
def embedded_policies():
    """``{file name: policy}`` for every JSON block of docs/security.md announced by ``<!-- iam: docs/iam/<name>.json -->``."""
    with open(SECURITY_DOC, encoding="utf-8") as handle:
        text = handle.read()
    found = {}
    for match in re.finditer(r"<!-- iam: docs/iam/([a-z-]+)\.json -->\s*```json\n(.*?)```", text, re.S):
        assert match.group(1) not in found, "docs/security.md embeds %s twice" % match.group(1)
        found[match.group(1)] = json.loads(match.group(2))
    return found


def test_docs_embed_exactly_the_policy_files():
    files = sorted(name[:-len(".json")] for name in os.listdir(IAM_DIR) if name.endswith(".json"))
    embedded = embedded_policies()
    assert sorted(embedded) == files
    for name in files:
        assert embedded[name] == policy_file(name), "docs/security.md and docs/iam/%s.json differ" % name


def test_the_controller_policy_is_the_features_together():
    combined = policy_file("controller-policy")
    assert combined["Statement"] == [s for name in FEATURES for s in policy_file(name)["Statement"]]
    sids = [s["Sid"] for s in combined["Statement"]]
    assert len(sids) == len(set(sids))
    assert all(s["Effect"] == "Allow" for s in combined["Statement"])
    readonly = policy_file("ledger-readonly")
    assert actions_of(readonly) < actions_of(policy_file("ledger-dynamodb"))


# ----------------------------------------------------------------------------------------------
# Enough: every feature works with exactly the documented policy
# ----------------------------------------------------------------------------------------------
def test_every_feature_works_with_the_documented_controller_policy(scene):
    settings = scene["moto"].user(policy_file("controller-policy"))
    for name in FEATURES:
        SCENARIOS[name](scene, settings)
    assert "deregistration_delay.timeout_seconds = 300" in drain_hint(settings)
    assert aws_access.AwsAccess(settings).account_id() == ACCOUNT  # sts:GetCallerIdentity needs no permission


def test_each_feature_works_with_its_own_statements_alone(scene):
    for name in ("revision-fetch", "target-groups", "classic-elb", "alarms", "triggers", "ledger-dynamodb"):
        SCENARIOS[name](scene, scene["moto"].user(policy_file(name)))


def test_the_read_only_ledger_policy_reads_but_cannot_write(scene):
    table, deployment_id = run_ledger_dynamodb(scene, scene["moto"].user(policy_file("ledger-dynamodb")))
    reader = scene["moto"].user(policy_file("ledger-readonly"))
    run_ledger_readonly(scene, reader, table, deployment_id)
    with pytest.raises(Exception) as refused:
        run_ledger_dynamodb(scene, reader, table=table)
    assert DENIED.search(str(refused.value)), str(refused.value)


def test_s3_statements_are_scoped_to_the_revision_prefix(scene):
    settings = scene["moto"].user(policy_file("revision-fetch"))
    with pytest.raises(service.ServiceError) as refused:
        service.fetch_revision("s3://%s/other/app.tgz" % BUCKET, aws_access.AwsAccess(settings), cache=str(scene["state"] / "cache-other"))
    assert DENIED.search(refused.value.message), refused.value.message


def run_metrics(scene, settings):
    """What deployment_info does with publish_metrics: a group's summary put to CloudWatch (an ansible-playbook run)."""
    ledger_path = scene["state"] / "metrics-ledger.sqlite3"
    if not ledger_path.exists():
        book = open_ledger(str(ledger_path))
        created = book.create_deployment("web", "production", "dg-1", REVISION_DEPLOYMENT, None, [{"instance_id": "i-1"}], owner="iam-test")
        book.update_status(created["deployment_id"], "Succeeded")
    playbook = scene["state"] / "metrics.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [{"rollout.codedeploy.deployment_info": {
        "application": "web", "deployment_group": "production", "summary": {"last": 5}, "publish_metrics": True,
        "ledger": str(ledger_path), "region": REGION, "endpoint_url": settings["endpoint_url"]}}]}]))
    proc = ansible(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
                    str(playbook)], settings)
    if proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)


def test_the_metrics_policy_publishes_and_is_needed(scene):
    run_metrics(scene, scene["moto"].user(policy_file("metrics")))
    with pytest.raises(AssertionError) as refused:
        run_metrics(scene, scene["moto"].user(policy_file("ledger-readonly")))  # a reader without the metrics statement
    assert DENIED.search(str(refused.value)) and "cloudwatch:PutMetricData" in str(refused.value), str(refused.value)


# ----------------------------------------------------------------------------------------------
# Needed: without any one required action, the feature that uses it fails with an access error
# ----------------------------------------------------------------------------------------------
REMOVALS = [(name, action) for name in FEATURES for action in sorted(actions_of(policy_file(name)))
            if action not in OPTIONAL | IMPLICIT | AWS_SIDE]


@pytest.mark.parametrize("feature,action", REMOVALS, ids=["%s-%s" % pair for pair in REMOVALS])
def test_each_required_action_is_needed(scene, feature, action):
    settings = scene["moto"].user(without(policy_file("controller-policy"), action))
    with pytest.raises(Exception) as failed:
        SCENARIOS[feature](scene, settings)
    assert DENIED.search(str(failed.value)), "without %s, %s failed otherwise: %s" % (action, feature, failed.value)


def test_optional_actions_only_add_detail(scene):
    settings = scene["moto"].user(without(policy_file("controller-policy"), "elasticloadbalancing:DescribeTargetGroupAttributes"))
    run_target_groups(scene, settings)
    hint = drain_hint(settings)
    assert "deregistration delay is longer" in hint and "timeout_seconds =" not in hint


# ----------------------------------------------------------------------------------------------
# Resources: every call the in-process code makes is allowed by a documented statement, ARN included
# ----------------------------------------------------------------------------------------------
def call_permissions(service_name, operation, params):
    """``[(IAM action, resource ARN)]`` that AWS authorizes for one API call; AssertionError for a call this test does not know."""
    arn = "arn:aws:%s:%s:%s:" % ("%s", REGION, ACCOUNT)
    if service_name == "s3" and operation in ("GetObject", "HeadObject"):
        action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
        return [(action, "arn:aws:s3:::%s/%s" % (params["Bucket"], params["Key"]))]
    if service_name == "elbv2" and operation in ("ModifyListener", "ModifyRule"):
        return [("elasticloadbalancing:" + operation, params["ListenerArn"] if operation == "ModifyListener" else params["RuleArn"])]
    if service_name == "elbv2":
        target = params["TargetGroupArn"] if operation in ("RegisterTargets", "DeregisterTargets") else "*"
        return [("elasticloadbalancing:" + operation, target)]
    if service_name == "elb":
        registering = operation in ("RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer")
        target = (arn % "elasticloadbalancing") + "loadbalancer/" + params["LoadBalancerName"] if registering else "*"
        return [("elasticloadbalancing:" + operation, target)]
    if service_name == "cloudwatch" and operation == "DescribeAlarms":
        return [("cloudwatch:DescribeAlarms", (arn % "cloudwatch") + "alarm:" + name) for name in params["AlarmNames"]]
    if service_name == "sns" and operation == "Publish":
        return [("sns:Publish", params["TopicArn"])]
    if service_name == "events" and operation == "PutEvents":
        buses = [e.get("EventBusName") or "default" for e in params["Entries"]]
        return [("events:PutEvents", bus if bus.startswith("arn:") else (arn % "events") + "event-bus/" + bus) for bus in buses]
    if service_name == "ec2" and operation == "TerminateInstances":
        return [("ec2:TerminateInstances", (arn % "ec2") + "instance/" + instance) for instance in params["InstanceIds"]]
    if service_name == "autoscaling" and operation in ("CreateAutoScalingGroup", "DeleteAutoScalingGroup"):
        return [("autoscaling:" + operation, (arn % "autoscaling") + "autoScalingGroup:*:autoScalingGroupName/" + params["AutoScalingGroupName"])]
    if service_name == "autoscaling" and operation in ("PutLifecycleHook", "DeleteLifecycleHook", "CompleteLifecycleAction",
                                                       "RecordLifecycleActionHeartbeat"):
        return [("autoscaling:" + operation, (arn % "autoscaling") + "autoScalingGroup:*:autoScalingGroupName/" + params["AutoScalingGroupName"])]
    if (service_name, operation) in (("autoscaling", "DescribeAutoScalingGroups"), ("autoscaling", "DescribeLifecycleHooks"),
                                     ("ec2", "DescribeInstances")):
        return [("%s:%s" % (service_name, operation), "*")]
    if service_name == "sts" and operation == "GetCallerIdentity":
        return []  # AWS never requires a permission for it
    if service_name == "dynamodb":
        table = (arn % "dynamodb") + "table/"
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [("dynamodb:" + operation, table + name) for name in params["RequestItems"]]
        if operation == "TransactWriteItems":  # AWS checks each item's own action
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
            return [("dynamodb:" + kinds[kind], table + body["TableName"]) for item in params["TransactItems"] for kind, body in item.items()]
        resource = table + params["TableName"] + ("/index/" + params["IndexName"] if params.get("IndexName") else "")
        return [("dynamodb:" + operation, resource)]
    raise AssertionError("the code called %s %s, which this test (and docs/security.md) does not know" % (service_name, operation))


def glob_match(pattern, value, case=True):
    regex = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return re.match(regex, value, 0 if case else re.I) is not None


def allowed(policy, action, resource):
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or "Condition" in statement:
            continue
        if any(glob_match(a, action, case=False) for a in as_list(statement["Action"])) \
                and any(glob_match(r, resource) for r in as_list(statement["Resource"])):
            return True
    return False


def test_every_call_is_allowed_by_a_documented_statement_resource_included(scene, monkeypatch):
    calls = []
    original = aws_access.AwsAccess.client

    def recording_client(self, service_name):
        client = original(self, service_name)
        inner = client._client  # pylint: disable=protected-access
        if not getattr(inner, "_iam_recorded", False):
            def record(params, model, **_event):
                calls.append((service_name, model.name, dict(params)))
            inner.meta.events.register("provide-client-params.*.*", record)
            inner._iam_recorded = True  # pylint: disable=protected-access
        return client

    monkeypatch.setattr(aws_access.AwsAccess, "client", recording_client)
    settings = scene["moto"].user(policy_file("controller-policy"))
    in_process = [name for name in FEATURES if name not in SUBPROCESS]
    table = None
    for name in in_process:
        if name == "ledger-dynamodb":
            table, deployment_id = run_ledger_dynamodb(scene, settings)
        else:
            SCENARIOS[name](scene, settings)
    drain_hint(settings)
    run_ledger_readonly(scene, settings, table, deployment_id)

    documented = substitute(policy_file("controller-policy"), dict(VALUES, LEDGER_TABLE=table))
    used = set()
    for service_name, operation, params in calls:
        for action, resource in call_permissions(service_name, operation, params):
            assert allowed(documented, action, resource), "%s %s needs %s on %s: no documented statement allows it" % (
                service_name, operation, action, resource)
            used.add(action)
    unused = actions_of(documented) - used - IMPLICIT - AWS_SIDE - set().union(*SUBPROCESS.values())
    assert not unused, "documented but never called by the code: %s" % sorted(unused)
    assert OPTIONAL <= used

    readonly = substitute(policy_file("ledger-readonly"), dict(VALUES, LEDGER_TABLE=table))
    reads = [c for c in calls if c[0] == "dynamodb" and c[1] in ("GetItem", "Query")]
    assert reads and all(allowed(readonly, a, r) for c in reads for a, r in call_permissions(*c))
