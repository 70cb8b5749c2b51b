"""green_copy: the copy's instances named like the inventory plugin's hosts, the blue hosts' shared connection variables, the
wait's timeout (fake clock), and what settling does with the copy and the swap record (fake AWS and ledger)."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils.aws import AwsError
from ansible_collections.rollout.codedeploy.plugins.plugin_utils import green_copy
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.plan import Plan

INSTANCE = {"InstanceId": "i-2", "PrivateIpAddress": "10.0.0.2", "Placement": {"AvailabilityZone": "us-east-1b"},
            "Tags": [{"Key": "Name", "Value": "web"}, {"Key": "Addr", "Value": "192.0.2.2"}]}


def test_green_hosts_are_named_and_addressed_like_inventory_hosts():
    published = {"hostnames": ["tag:Name"], "ansible_host_source": ["tag:Addr", "private_ip_address"]}
    naming = green_copy.host_naming(["blue-1"], {"blue-1": {"codedeploy_host_naming": published}})
    assert naming == (["tag:Name"], ["tag:Addr", "private-ip-address"])
    other = dict(INSTANCE, InstanceId="i-3", Tags=[{"Key": "Name", "Value": "api"}])
    hosts, entries = green_copy.green_hosts([other, INSTANCE], "CodeDeploy_p_d-1", "us-east-1", naming, taken={"web"},
                                            connection={"ansible_user": "ec2-user"})
    assert [(h["host"], h["instance_id"], h["zone"], h["role"]) for h in hosts] == [
        ("web_i-2", "i-2", "us-east-1b", "green"), ("api", "i-3", "us-east-1b", "green")]
    assert entries[0]["ansible_host"] == "192.0.2.2" and entries[1]["ansible_host"] == "10.0.0.2"
    assert entries[0]["codedeploy_autoscaling_group"] == "CodeDeploy_p_d-1" and entries[0]["ansible_user"] == "ec2-user"
    assert entries[0]["groups"] == [green_copy.GREEN_GROUP] and entries[0]["name"] == "web_i-2"
    assert green_copy.host_naming(["b"], {}) == (["instance-id"], ["private-ip-address"])


def test_only_connection_variables_every_blue_host_shares_are_copied():
    hostvars = {"a": {"ansible_user": "u", "ansible_port": 22, "other": 1}, "b": {"ansible_user": "u", "ansible_port": 2222}}
    assert green_copy.shared_connection_vars(["a", "b"], hostvars) == {"ansible_user": "u"}


class FakeAws:
    """green_fleet's boto3 surface: the copy's members are InService; ``addressed`` says whether they got an address."""

    def __init__(self, addressed=True, refuse_delete=False):
        self.addressed, self.refuse_delete, self.deleted = addressed, refuse_delete, []

    def client(self, name):
        del name
        return self

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):
        return {"AutoScalingGroups": [{"AutoScalingGroupName": AutoScalingGroupNames[0], "Instances": [
            {"InstanceId": "i-2", "LifecycleState": "InService", "HealthStatus": "Healthy"}]}]}

    def describe_instances(self, InstanceIds):
        return {"Reservations": [{"Instances": [INSTANCE if self.addressed else {"InstanceId": "i-2"}]}]}

    def delete_auto_scaling_group(self, AutoScalingGroupName, ForceDelete):
        assert ForceDelete
        if self.refuse_delete:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteAutoScalingGroup")
        self.deleted.append(AutoScalingGroupName)


def test_the_wait_ends_with_a_timeout_naming_the_copy_when_no_address_comes():
    now = [0.0]
    copier = green_copy.Copier(FakeAws(addressed=False), {}, timeout=5, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    copier.request = {"AutoScalingGroupName": "CodeDeploy_p_d-1", "DesiredCapacity": 1}
    with pytest.raises(AwsError) as caught:
        copier.wait()
    assert caught.value.code == "TIMEOUT" and "1 InService, 0 of them with an address" in caught.value.message
    copier.aws.addressed = True
    assert [h["host"] for h in copier.wait()] == ["i-2"]


class FakeLedger:
    def __init__(self):
        self.swap = {}

    def update_swap(self, deployment_id, fields=None, append=None):
        del deployment_id, append
        self.swap.update(fields or {})


RECORD = {"name": "CodeDeploy_p_d-1", "arn": "arn:copy", "source_name": "web-asg", "source_arn": "arn:src", "desired": 2}


@pytest.mark.parametrize("blue_green, status, kept, state", [
    ({"phase": "rerouted", "action": "KEEP_ALIVE", "msg": "ok"}, "Succeeded", True, "rerouted"),
    ({"phase": "before_reroute", "msg": "Traffic stays on the blue hosts"}, "Failed", False, "rolled_back"),
    ({"phase": "before_reroute", "msg": "stopped"}, "Stopped", False, "stopped"),
    ({"phase": "after_reroute", "deregistered_green": ["g"], "errors": [], "msg": "Rolled back"}, "Failed", False, "rolled_back"),
    ({"phase": "after_reroute", "deregistered_green": [], "errors": ["blue-1 gone"], "msg": "green keeps serving"}, "Failed", True, None),
])
def test_settling_keeps_the_copy_only_while_it_serves(blue_green, status, kept, state):
    aws, ledger = FakeAws(), FakeLedger()
    plan = Plan(deployment_id="d-1", green_asg=dict(RECORD))
    result = green_copy.after_settle(aws, ledger, plan, {"status": status}, blue_green)
    assert (aws.deleted == []) is kept
    assert result["green_asg"]["state"] == ("serving" if kept else "deleted")
    assert ledger.swap["green_asg"]["name"] == RECORD["name"] and ledger.swap.get("state") == state
    if blue_green.get("action") == "KEEP_ALIVE":
        assert ledger.swap["blue_asg"]["action"] == "kept" and "adopt it" in result["msg"]
    assert green_copy.after_settle(aws, ledger, Plan(deployment_id="d-2"), {}, blue_green) is blue_green


def test_terminate_deletes_the_original_group_first_and_a_refusal_names_it():
    aws, ledger = FakeAws(), FakeLedger()
    plan = Plan(deployment_id="d-1", green_asg=dict(RECORD))
    with pytest.raises(AwsError) as caught:
        green_copy.terminate_blue(FakeAws(refuse_delete=True), ledger, plan, ["i-b1"])
    assert caught.value.code == "TERMINATE_FAILED" and "web-asg was not deleted" in caught.value.message
    assert ledger.swap["blue_asg"]["action"] == "delete_failed"
    assert green_copy.terminate_blue(aws, ledger, plan, []) == {} and aws.deleted == ["web-asg"]
    assert ledger.swap["blue_asg"]["action"] == "deleted"
