"""Zero downtime under real traffic: rollouts of the sample app behind the world's HAProxy while a bounded load
generator sends requests to its frontend. Every rollout must end with 0 failed requests, and every response must
be exactly one revision's answer.

Two groups of four fleet hosts, each taken through the same story (tests/world/rollouts.py):

1. v1 everywhere (AllAtOnce, no load: the servers start in maintenance and come UP through AllowTraffic);
2. v2, OneAtATime, under load;
3. v3, HalfAtATime, under load;
4. a manual rollback to v2 (rollout.codedeploy.rollback), under load;
5. v4 whose ValidateService fails on one host, with auto_rollback: the deployment fails, the automatic
   rollback restores v2, under load.

One group is driven by the collection through ``load_balancer.haproxy_backends`` (stats socket on the balancer
host, reached through its Ansible connection; the TCP admin socket for the HalfAtATime step's group settings is
covered in test_haproxy_traffic.py); the other names a moto target group that the harness mirrors into HAProxy
with ALB-like draining.
"""
import pytest

from world.rollouts import Stage

pytestmark = [pytest.mark.fleet, pytest.mark.aws]


def _zero_failures(run, *versions):
    load = run.load
    assert load.count > 50, "%s: the load generator sent only %d requests" % (run.name, load.count)
    assert load.failed == 0, "%s: %d of %d requests failed, first: %s\nplaybook:\n%s" % (
        run.name, load.failed, load.count, load.failures[:5], run.proc.stdout[-3000:])
    expected = ["sample-app %s" % v for v in versions]
    assert not load.unexpected(expected), "%s: responses that are no revision's answer: %s" % (run.name, load.unexpected(expected)[:5])


def _story(world, aws, tmp_path, via):
    with Stage(world, aws, tmp_path, hosts=4, via=via, config="CodeDeployDefault.OneAtATime") as stage:
        first = stage.deploy("1.0.0", load=False, name="v1", extra={"deployment_config": "CodeDeployDefault.AllAtOnce"})
        assert first.proc.returncode == 0 and first.deployment["status"] == "Succeeded", first.proc.stdout[-3000:]
        stage.all_serving()

        run = stage.deploy("2.0.0", name="v2 OneAtATime")
        assert run.proc.returncode == 0 and run.deployment["status"] == "Succeeded", run.proc.stdout[-3000:]
        _zero_failures(run, "1.0.0", "2.0.0")
        assert set(run.load.bodies) == {"sample-app 1.0.0", "sample-app 2.0.0"}  # traffic really crossed the rollout
        assert len(run.out_of_rotation()) == 4 and all(seconds > 0 for seconds in run.out_of_rotation().values())
        good = run.deployment
        stage.all_serving()

        run = stage.deploy("3.0.0", name="v3 HalfAtATime", extra={"deployment_config": "CodeDeployDefault.HalfAtATime"})
        assert run.proc.returncode == 0 and run.deployment["status"] == "Succeeded", run.proc.stdout[-3000:]
        _zero_failures(run, "2.0.0", "3.0.0")
        stage.all_serving()

        run = stage.rollback(good["deployment_id"], name="manual rollback to v2")
        assert run.proc.returncode == 0 and run.deployment["status"] == "Succeeded", run.proc.stdout[-3000:]
        assert run.deployment["revision"]["sha256"] == good["revision"]["sha256"]
        _zero_failures(run, "2.0.0", "3.0.0")
        stage.all_serving()

        # ValidateService fails wherever v4 lands: the first host fails the OneAtATime deployment.
        run = stage.deploy("4.0.0", failing_hosts=[], name="v4 failing, automatic rollback", extra={"auto_rollback": True})
        assert run.proc.returncode != 0, run.proc.stdout[-4000:]
        failed = stage.last_deployment(skip=1)
        assert failed["status"] == "Failed" and failed["rollback_info"]["rollback_deployment_id"] == run.deployment["deployment_id"]
        assert run.deployment["status"] == "Succeeded" and run.deployment["revision"]["sha256"] == good["revision"]["sha256"]
        _zero_failures(run, "2.0.0", "4.0.0")
        servers = stage.all_serving()
        assert sorted(servers) == sorted(stage.names.values())
        return stage


def test_rollouts_through_haproxy_driven_by_the_collection_lose_no_request(world, aws, fleet_hosts, tmp_path):
    _story(world, aws, tmp_path, "haproxy")


def test_rollouts_through_a_target_group_mirrored_into_haproxy_lose_no_request(world, aws, fleet_hosts, tmp_path):
    stage = _story(world, aws, tmp_path, "target_group")
    # The ALB path really drained: every host went draining -> released in the mirror at least once.
    assert all(stage.mirror_events and any(e["instance"] == i and e["action"] == "release" for e in stage.mirror_events)
               for i in stage.names)
