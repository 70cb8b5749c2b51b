# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic control (plugins/module_utils/traffic.py) against the moto server: ALB target groups and classic ELBs.

moto registers and deregisters at once (healthy / gone, never initial or draining), so these
tests prove the calls, ports, idempotence and error mapping against real API answers; the wait
state machines are covered by tests/unit/plugins/module_utils/test_traffic.py.  Every check of
the outcome reads the load balancers back with its own client, not through the code under test.
"""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import traffic as tr

pytestmark = [pytest.mark.aws]


def classic_elb(aws, world, name):
    subnets = list(aws.network()["subnets"].values())
    world.moto.client("elb").create_load_balancer(
        LoadBalancerName=name, Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}], Subnets=subnets)
    return name


def tg_targets(aws, tg_arn):
    """{(instance, port): state} of every registered target, read with the test's own client."""
    answer = aws.elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return dict(((d["Target"]["Id"], d["Target"]["Port"]), d["TargetHealth"]["State"]) for d in answer)


def classic_members(world, name):
    states = world.moto.client("elb").describe_instance_health(LoadBalancerName=name)["InstanceStates"]
    return dict((s["InstanceId"], s["State"]) for s in states)


def balancers(world, target_groups=(), classic=()):
    return tr.LoadBalancers(elbv2=world.moto.client("elbv2"), elb=world.moto.client("elb"), target_groups=target_groups,
                            classic_elbs=classic, poll=0.05)


def test_allow_then_block_on_target_groups_and_a_classic_elb(aws, world):
    web = aws.target_group("web-tg", port=8080)
    api = aws.target_group("api-tg", port=8081)
    clb = classic_elb(aws, world, "web-clb")
    first, second = aws.launch(2, {"Role": "web"})
    lbs = balancers(world, ["web-tg", {"arn": api, "port": 9090}], [clb])

    allowed = lbs.allow(first, timeout=30)
    assert allowed["changed"] is True
    assert tg_targets(aws, web) == {(first, 8080): "healthy"}
    assert tg_targets(aws, api) == {(first, 9090): "healthy"}
    assert classic_members(world, clb) == {first: "InService"}
    assert allowed["target_groups"]["web-tg"]["state"] == "healthy"
    assert allowed["target_groups"]["api-tg"]["port"] == 9090
    assert allowed["classic_elbs"]["web-clb"]["state"] == "InService"
    assert lbs.allow(first)["changed"] is False          # a second AllowTraffic changes nothing

    lbs.allow(second)
    blocked = lbs.block(first, timeout=30)
    assert blocked["changed"] is True
    assert tg_targets(aws, web) == {(second, 8080): "healthy"}
    assert tg_targets(aws, api) == {(second, 9090): "healthy"}
    assert classic_members(world, clb) == {second: "InService"}
    assert all(e["state"] in ("unused", "OutOfService") for e in list(blocked["target_groups"].values())
               + list(blocked["classic_elbs"].values()))
    assert lbs.block(first)["changed"] is False          # already out: nothing to do

    members = lbs.members([first, second])
    assert members[first] == {"target_groups": {"web-tg": "unused", "api-tg": "unused"}, "classic_elbs": {"web-clb": "OutOfService"}}
    assert members[second] == {"target_groups": {"web-tg": "healthy", "api-tg": "healthy"}, "classic_elbs": {"web-clb": "InService"}}
    assert tr.out_of_service(members[first]) and not tr.out_of_service(members[second])


def test_block_deregisters_the_port_the_instance_is_really_registered_on(aws, world):
    # moto keeps one registration per instance, so the multi-port case is a unit test; here the
    # instance sits on a port other than the target group's, as a hand or an ASG may have put it.
    web = aws.target_group("web-tg", port=8080)
    (instance,) = aws.launch(1, {"Role": "web"})
    aws.elbv2.register_targets(TargetGroupArn=web, Targets=[{"Id": instance, "Port": 8443}])
    assert tg_targets(aws, web) == {(instance, 8443): "healthy"}
    result = balancers(world, ["web-tg"]).block(instance)
    assert result["changed"] is True
    assert tg_targets(aws, web) == {}


def test_a_missing_target_group_fails_before_any_instance_is_touched(aws, world):
    web = aws.target_group("web-tg", port=8080)
    (instance,) = aws.launch(1, {"Role": "web"})
    aws.elbv2.register_targets(TargetGroupArn=web, Targets=[{"Id": instance, "Port": 8080}])
    with pytest.raises(tr.TrafficError) as caught:
        balancers(world, ["web-tg", "gone-tg"]).block(instance)
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "Target group gone-tg does not exist" in caught.value.message
    assert tg_targets(aws, web) == {(instance, 8080): "healthy"}


def test_a_missing_classic_elb_and_a_wrong_target_type_are_refused(aws, world):
    aws.target_group("web-tg", port=8080)
    (instance,) = aws.launch(1, {"Role": "web"})
    with pytest.raises(tr.TrafficError) as caught:
        balancers(world, ["web-tg"], ["gone-clb"]).allow(instance)
    assert caught.value.code == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "Classic load balancer gone-clb does not exist" in caught.value.message
    assert tg_targets(aws, aws.elbv2.describe_target_groups(Names=["web-tg"])["TargetGroups"][0]["TargetGroupArn"]) == {}

    aws.elbv2.create_target_group(Name="ip-tg", Protocol="HTTP", Port=80, VpcId=aws.network()["vpc"], TargetType="ip")
    with pytest.raises(tr.TrafficError) as caught:
        balancers(world, ["ip-tg"]).allow(instance)
    assert "target type ip" in caught.value.message


def test_many_target_groups_resolve_in_one_call_each_kind(aws, world):
    arns = [aws.target_group("tg-%d" % n, port=8000 + n, with_load_balancer=False) for n in range(4)]
    (instance,) = aws.launch(1, {"Role": "web"})
    lbs = balancers(world, ["tg-0", "tg-1", arns[2], arns[3]])
    groups = lbs.resolve()
    assert [(g["name"], g["port"]) for g in groups] == [("tg-%d" % n, 8000 + n) for n in range(4)]
    result = lbs.allow(instance)
    for n, tg_arn in enumerate(arns):
        assert tg_targets(aws, tg_arn) == {(instance, 8000 + n): "healthy"}
    assert result["waited"] == 1
