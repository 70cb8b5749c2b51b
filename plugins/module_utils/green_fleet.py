# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The green fleet of a blue/green deployment with ``green_fleet_provisioning_option.action: COPY_AUTO_SCALING_GROUP``:
a copy of the deployment group's one Auto Scaling group, as CodeDeploy makes it.

- Pure functions build the copy's ``CreateAutoScalingGroup`` request from the source's ``DescribeAutoScalingGroups``
  description (launch template or launch configuration, subnets, tags, sizes; never its load balancers: the green
  instances join those at AllowTraffic, after they are installed) and read a description (healthy members, members
  in service).
- Thin boto3 callers (describe, create, delete, describe the members' instances) own their errors: each raises
  aws.AwsError naming the group, the AWS error and what to check, never a botocore traceback.

Controller-only; plugin_utils/green_copy.py drives it. See docs/blue-green.md."""

from __future__ import annotations

from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import AwsError, error_text
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError
from ansible_collections.rollout.codedeploy.plugins.module_utils.ec2_hosts import plain

ACTION = "COPY_AUTO_SCALING_GROUP"
#: CodeDeploy's own name for the copy, so tooling that knows CodeDeploy recognizes it.
NAME_FORMAT = "CodeDeploy_%s_%s"
MAX_NAME = 255
#: Settings of the source that the copy keeps as they are (when the description has them).
COPIED_SETTINGS = ("LaunchConfigurationName", "VPCZoneIdentifier", "HealthCheckType", "HealthCheckGracePeriod", "DefaultCooldown",
                   "TerminationPolicies", "NewInstancesProtectedFromScaleIn", "CapacityRebalance", "PlacementGroup",
                   "ServiceLinkedRoleARN", "MaxInstanceLifetime", "DefaultInstanceWarmup", "Context")
#: What the copy never takes from the source: registering with a load balancer is the deployment's AllowTraffic step.
NOT_COPIED = ("TargetGroupARNs", "LoadBalancerNames", "TrafficSources")


def copies_auto_scaling_group(settings):
    """True for a BLUE_GREEN deployment group whose green fleet is a copy of its Auto Scaling group."""
    settings = settings or {}
    if ((settings.get("deployment_style") or {}).get("type")) != "BLUE_GREEN":
        return False
    option = (settings.get("blue_green") or {}).get("green_fleet_provisioning_option") or {}
    return option.get("action") == ACTION


def source_name(settings):
    """The Auto Scaling group a copying deployment group copies (the inventory plugin makes sure there is exactly one)."""
    names = ((settings or {}).get("selection") or {}).get("autoscaling_groups") or []
    if len(names) != 1:
        raise AwsError("deployment group %s copies its Auto Scaling group (%s), but autoscaling_groups names %d group(s). Name exactly "
                       "one in the inventory source, or use DISCOVER_EXISTING" % ((settings or {}).get("name"), ACTION, len(names)),
                       "AUTO_SCALING_CONFIGURATION")
    return names[0]


def copy_name(deployment_group, deployment_id):
    """``CodeDeploy_<deployment group>_<deployment id>``, cut to Auto Scaling's 255 characters (the id is kept whole)."""
    room = MAX_NAME - len(NAME_FORMAT % ("", deployment_id))
    return NAME_FORMAT % (str(deployment_group)[:room], deployment_id)


def healthy_members(description):
    """The instance ids of the group's members that are InService and Healthy, in the description's order."""
    return [m["InstanceId"] for m in (description or {}).get("Instances") or []
            if m.get("LifecycleState") == "InService" and m.get("HealthStatus", "Healthy") == "Healthy"]


def in_service(description):
    """{instance id: Availability Zone} of the members that are InService (health is the deployment's question from here)."""
    return {m["InstanceId"]: m.get("AvailabilityZone") for m in (description or {}).get("Instances") or []
            if m.get("LifecycleState") == "InService"}


def check_source(description, name, region=None):
    """The source's healthy member ids; AwsError (nothing created) when the group is missing or has none."""
    where = " in %s" % region if region else ""
    if not description:
        raise AwsError("Auto Scaling group %s was not found%s, so there is nothing to copy for the green fleet (%s). Nothing was "
                       "created. Fix autoscaling_groups in the inventory source, or use DISCOVER_EXISTING with -e green_hosts=..."
                       % (name, where, ACTION), "AUTO_SCALING_CONFIGURATION")
    healthy = healthy_members(description)
    if not healthy:
        states = ", ".join("%s %s/%s" % (m["InstanceId"], m.get("LifecycleState"), m.get("HealthStatus"))
                           for m in description.get("Instances") or []) or "no instances"
        raise AwsError("Auto Scaling group %s has no healthy instance (InService and Healthy) to copy (%s): the copy would launch "
                       "none, so there is no green fleet. Nothing was created. Let the group recover or scale it out, then deploy "
                       "again" % (name, states), "NO_INSTANCES")
    return healthy


def _launch_template(spec):
    """A launch template specification with the id (or the name) and the version, as CreateAutoScalingGroup takes it."""
    spec = dict(spec or {})
    if spec.get("LaunchTemplateId"):
        spec.pop("LaunchTemplateName", None)
    return {k: v for k, v in spec.items() if k in ("LaunchTemplateId", "LaunchTemplateName", "Version") and v}


def copy_tags(description, name):
    """The source's tags for the copy (the same keys, values and PropagateAtLaunch); AWS's own ``aws:`` tags are left out."""
    tags = []
    for tag in (description or {}).get("Tags") or []:
        if str(tag.get("Key", "")).startswith("aws:"):
            continue
        tags.append({"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": tag["Key"], "Value": tag.get("Value", ""),
                     "PropagateAtLaunch": bool(tag.get("PropagateAtLaunch"))})
    return tags


def copy_request(description, name, desired):
    """The CreateAutoScalingGroup arguments of the copy of ``description`` named ``name`` with ``desired`` instances.

    Kept: the launch template (id and version) or launch configuration or mixed instances policy, the subnets (or zones),
    health check, cooldown, termination and placement settings, and the tags. Sizes: ``desired`` instances, the minimum and
    maximum of the source widened to hold it. Left out: the load balancers and target groups (NOT_COPIED)."""
    request = {"AutoScalingGroupName": name, "DesiredCapacity": int(desired),
               "MinSize": min(int(description.get("MinSize") or 0), int(desired)),
               "MaxSize": max(int(description.get("MaxSize") or 0), int(desired))}
    if description.get("LaunchTemplate"):
        request["LaunchTemplate"] = _launch_template(description["LaunchTemplate"])
    if description.get("MixedInstancesPolicy"):
        policy = plain(description["MixedInstancesPolicy"])
        template = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
        if template:
            policy["LaunchTemplate"]["LaunchTemplateSpecification"] = _launch_template(template)
        request["MixedInstancesPolicy"] = policy
    for key in COPIED_SETTINGS:
        if description.get(key) not in (None, "", []):
            request[key] = description[key]
    if not description.get("VPCZoneIdentifier") and description.get("AvailabilityZones"):
        request["AvailabilityZones"] = list(description["AvailabilityZones"])
    if not (request.get("LaunchTemplate") or request.get("MixedInstancesPolicy") or request.get("LaunchConfigurationName")):
        raise AwsError("Auto Scaling group %s has no launch template, mixed instances policy or launch configuration to copy; "
                       "nothing was created. Give the group a launch template, or use DISCOVER_EXISTING"
                       % description.get("AutoScalingGroupName"), "AUTO_SCALING_CONFIGURATION")
    tags = copy_tags(description, name)
    if tags:
        request["Tags"] = tags
    return request


def record(description, request, arn):
    """The ledger's ``green_asg`` record: {name, arn, source_name, source_arn, desired}."""
    return {"name": request["AutoScalingGroupName"], "arn": arn, "source_name": description.get("AutoScalingGroupName"),
            "source_arn": description.get("AutoScalingGroupARN"), "desired": request["DesiredCapacity"]}


def launch_summary(request):
    """The copy's launch source and subnets, for messages."""
    template = request.get("LaunchTemplate") or ((request.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
        "LaunchTemplateSpecification")
    if template:
        what = "launch template %s version %s" % (template.get("LaunchTemplateId") or template.get("LaunchTemplateName"),
                                                  template.get("Version") or "$Default")
    else:
        what = "launch configuration %s" % request.get("LaunchConfigurationName")
    where = "subnets %s" % request["VPCZoneIdentifier"] if request.get("VPCZoneIdentifier") else \
        "zones %s" % ", ".join(request.get("AvailabilityZones") or [])
    return "%s, %s" % (what, where)


# ------------------------------------------------------------------------------ boto3 callers
def _fail(what, name, exc, code, hint):
    return AwsError("Auto Scaling %s of %s failed: %s. %s" % (what, name, error_text(exc), hint), code)


def describe_group(access, name):
    """The group's description (plain data), or None when it does not exist."""
    try:
        found = access.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    except (ClientError, BotoCoreError) as exc:
        raise _fail("DescribeAutoScalingGroups", name, exc, "AUTO_SCALING_CONFIGURATION",
                    "Check the region and that the controller's credentials allow autoscaling:DescribeAutoScalingGroups")
    groups = found.get("AutoScalingGroups") or []
    return plain(groups[0]) if groups else None


def create_group(access, request):
    """Create the copy; returns its ARN (read back from AWS)."""
    name = request["AutoScalingGroupName"]
    try:
        access.client("autoscaling").create_auto_scaling_group(**request)
    except (ClientError, BotoCoreError) as exc:
        raise _fail("CreateAutoScalingGroup", name, exc, "AUTO_SCALING_CONFIGURATION",
                    "Nothing was deployed. Check that the controller's credentials allow autoscaling:CreateAutoScalingGroup, "
                    "ec2:RunInstances and ec2:CreateTags, ec2:DescribeLaunchTemplateVersions and iam:PassRole for an instance profile")
    created = describe_group(access, name) or {}
    return created.get("AutoScalingGroupARN")


def delete_group(access, name):
    """Delete a group with its instances (ForceDelete); True when it is gone (or was never there)."""
    try:
        access.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    except (ClientError, BotoCoreError) as exc:
        text = error_text(exc)
        if "not found" in text.lower():
            return True
        raise _fail("DeleteAutoScalingGroup", name, exc, "AUTO_SCALING_CONFIGURATION",
                    "Delete it by hand (aws autoscaling delete-auto-scaling-group --force-delete --auto-scaling-group-name %s) and "
                    "check that the credentials allow autoscaling:DeleteAutoScalingGroup" % name)
    return True


def describe_instances(access, instance_ids):
    """DescribeInstances of ``instance_ids`` as plain data, in no particular order."""
    ids = list(instance_ids or ())
    if not ids:
        return []
    try:
        found = access.client("ec2").describe_instances(InstanceIds=ids)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError("EC2 DescribeInstances of %s failed: %s. Check that the credentials allow ec2:DescribeInstances" % (
            ", ".join(ids), error_text(exc)), "AUTO_SCALING_CONFIGURATION")
    return [plain(i) for r in found.get("Reservations") or [] for i in r.get("Instances") or []]
