"""green_fleet: the copy's CreateAutoScalingGroup request from a DescribeAutoScalingGroups description, the source checks,
and the boto3 callers' errors (a stub client raising botocore's ClientError)."""
import pytest
from botocore.exceptions import ClientError

from ansible_collections.rollout.codedeploy.plugins.module_utils import green_fleet
from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import AwsError

SOURCE = {
    "AutoScalingGroupName": "web-asg", "AutoScalingGroupARN": "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:x:autoScalingGroupName/web-asg",
    "LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "web", "Version": "7"},
    "MinSize": 3, "MaxSize": 6, "DesiredCapacity": 3, "VPCZoneIdentifier": "subnet-a,subnet-b", "HealthCheckType": "ELB",
    "HealthCheckGracePeriod": 120, "TargetGroupARNs": ["arn:tg"], "LoadBalancerNames": ["clb"], "AvailabilityZones": ["us-east-1a"],
    "Tags": [{"Key": "Role", "Value": "web", "PropagateAtLaunch": True, "ResourceId": "web-asg"},
             {"Key": "aws:cloudformation:stack-name", "Value": "s", "PropagateAtLaunch": True}],
    "Instances": [{"InstanceId": "i-1", "LifecycleState": "InService", "HealthStatus": "Healthy", "AvailabilityZone": "us-east-1a"},
                  {"InstanceId": "i-2", "LifecycleState": "InService", "HealthStatus": "Unhealthy"},
                  {"InstanceId": "i-3", "LifecycleState": "Pending", "HealthStatus": "Healthy"}],
}


def test_the_copy_keeps_the_launch_template_subnets_tags_and_not_the_load_balancers():
    request = green_fleet.copy_request(SOURCE, "CodeDeploy_production_d-ABCDEFGHI", 1)
    assert request["LaunchTemplate"] == {"LaunchTemplateId": "lt-1", "Version": "7"}
    assert request["VPCZoneIdentifier"] == "subnet-a,subnet-b" and "AvailabilityZones" not in request
    assert (request["DesiredCapacity"], request["MinSize"], request["MaxSize"]) == (1, 1, 6)
    assert request["Tags"] == [{"ResourceId": "CodeDeploy_production_d-ABCDEFGHI", "ResourceType": "auto-scaling-group", "Key": "Role",
                                "Value": "web", "PropagateAtLaunch": True}]
    assert not set(green_fleet.NOT_COPIED) & set(request)
    assert request["HealthCheckType"] == "ELB" and request["HealthCheckGracePeriod"] == 120


def test_a_launch_configuration_and_zones_without_subnets_are_copied():
    source = dict(SOURCE, LaunchTemplate=None, LaunchConfigurationName="web-lc", VPCZoneIdentifier="", MaxSize=1)
    request = green_fleet.copy_request(source, "copy", 2)
    assert request["LaunchConfigurationName"] == "web-lc" and "LaunchTemplate" not in request
    assert request["AvailabilityZones"] == ["us-east-1a"] and request["MaxSize"] == 2
    assert "launch configuration web-lc, zones us-east-1a" == green_fleet.launch_summary(request)


def test_a_source_without_a_launch_source_is_refused():
    with pytest.raises(AwsError) as caught:
        green_fleet.copy_request(dict(SOURCE, LaunchTemplate=None), "copy", 1)
    assert caught.value.code == "AUTO_SCALING_CONFIGURATION" and "web-asg" in caught.value.message


def test_only_inservice_healthy_members_count_and_a_source_without_them_is_refused():
    assert green_fleet.healthy_members(SOURCE) == ["i-1"]
    assert green_fleet.check_source(SOURCE, "web-asg") == ["i-1"]
    with pytest.raises(AwsError) as caught:
        green_fleet.check_source(dict(SOURCE, Instances=SOURCE["Instances"][1:]), "web-asg")
    assert caught.value.code == "NO_INSTANCES" and "i-2 InService/Unhealthy" in caught.value.message and "Nothing was created" in caught.value.message
    with pytest.raises(AwsError) as caught:
        green_fleet.check_source(None, "web-asg", "eu-west-1")
    assert caught.value.code == "AUTO_SCALING_CONFIGURATION" and "web-asg was not found in eu-west-1" in caught.value.message


def test_names_and_settings():
    assert green_fleet.copy_name("production", "d-ABCDEFGHI") == "CodeDeploy_production_d-ABCDEFGHI"
    assert len(green_fleet.copy_name("x" * 400, "d-ABCDEFGHI")) == 255 and green_fleet.copy_name("x" * 400, "d-ABCDEFGHI").endswith("_d-ABCDEFGHI")
    copying = {"deployment_style": {"type": "BLUE_GREEN"}, "blue_green": {"green_fleet_provisioning_option": {"action": "COPY_AUTO_SCALING_GROUP"}},
               "selection": {"autoscaling_groups": ["web-asg"]}}
    assert green_fleet.copies_auto_scaling_group(copying) and green_fleet.source_name(copying) == "web-asg"
    assert not green_fleet.copies_auto_scaling_group(dict(copying, deployment_style={"type": "IN_PLACE"}))
    with pytest.raises(AwsError):
        green_fleet.source_name(dict(copying, selection={"autoscaling_groups": []}))
    assert green_fleet.in_service(SOURCE) == {"i-1": "us-east-1a", "i-2": None}


class StubAccess:
    """AwsAccess's client(); each call raises ``error`` (a ClientError) or answers."""

    def __init__(self, error=None):
        self.error = error

    def client(self, name):
        del name
        return self

    def _answer(self, **kwargs):
        del kwargs
        if self.error:
            raise ClientError({"Error": {"Code": self.error[0], "Message": self.error[1]}}, "op")
        return {}

    describe_auto_scaling_groups = create_auto_scaling_group = delete_auto_scaling_group = describe_instances = _answer


def test_the_callers_word_their_errors():
    with pytest.raises(AwsError) as caught:
        green_fleet.create_group(StubAccess(("AccessDenied", "not allowed")), {"AutoScalingGroupName": "copy"})
    assert "CreateAutoScalingGroup of copy failed: AccessDenied: not allowed" in caught.value.message
    assert "autoscaling:CreateAutoScalingGroup" in caught.value.message
    assert green_fleet.delete_group(StubAccess(("ValidationError", "AutoScalingGroup name not found")), "copy") is True
    with pytest.raises(AwsError) as caught:
        green_fleet.delete_group(StubAccess(("AccessDenied", "no")), "copy")
    assert "--force-delete --auto-scaling-group-name copy" in caught.value.message
    assert green_fleet.describe_group(StubAccess(), "web-asg") is None
    assert green_fleet.describe_instances(StubAccess(), []) == []
