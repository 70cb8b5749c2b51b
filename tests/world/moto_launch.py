"""Start moto's server with ALB-like target draining for the target groups the harness mirrors.

Usage (what ``world.aws.Moto.start`` runs): ``python -m world.moto_launch -H <address> -p <port>``,
with ``ROLLOUT_MOTO_DRAIN_DIR`` naming a folder that holds marker files:

- ``<dir>/watch/<target group name>``: the group is mirrored by a real load balancer (see
  ``world.balancer.Balancer.mirror_target_group``). Only such groups change behaviour.
- ``<dir>/released/<target group name>/<target id>``: the load balancer has no request in
  flight to that target any more.

Plain moto takes a deregistered target out of service at once (``unused``) and ignores
``deregistration_delay.timeout_seconds``. A real ALB keeps it ``draining``
(``Target.DeregistrationInProgress``) until it has no in-flight requests or the delay has
passed. For a watched group this launcher does the same: deregistering puts the target in a
draining set; it stays ``draining`` until its release marker appears or the group's delay
(default 300 s) has passed, then it is ``unused`` (``Target.NotRegistered``) as moto reports it.
Registering a draining target again cancels the drain. DescribeTargetHealth without a target
list includes draining targets, as AWS does. The draining set lives on moto's target group
objects, so ``/moto-api/reset`` forgets it with them.

Auto Scaling lifecycle hooks (``install_lifecycle``): plain moto stores a hook's name, transition, heartbeat and
default result but answers a fixed NotificationTargetARN and RoleARN, drops NotificationMetadata, and fails
CompleteLifecycleAction and RecordLifecycleActionHeartbeat with HTTP 500. The launcher keeps the three fields as
given and implements both calls the way AWS answers them for an instance of the group: ABANDON terminates the
instance (as AWS does for an instance that waits on a launch hook), CONTINUE leaves it running. Every completion is
appended as a JSON line to ``<dir>/lifecycle/completions.jsonl`` so tests can see which result was sent. moto still
launches instances InService at once (no Pending:Wait).

The patch checks the moto internals it relies on before the server starts and exits with a
message naming what changed, rather than serving a silently unpatched moto.
"""
import json
import inspect
import os
import sys
import time

DRAIN_DIR_ENV = "ROLLOUT_MOTO_DRAIN_DIR"
DRAINING_ATTR = "rollout_draining"


class PatchError(Exception):
    """moto's internals are not what the draining patch was written for."""


def _check_internals(models):
    expected = {
        "FakeTargetGroup.register": (models.FakeTargetGroup.register, ["self", "targets"]),
        "FakeTargetGroup.deregister": (models.FakeTargetGroup.deregister, ["self", "targets"]),
        "FakeTargetGroup.health_for": (models.FakeTargetGroup.health_for, ["self", "target", "ec2_backend"]),
        "ELBv2Backend.describe_target_health": (models.ELBv2Backend.describe_target_health,
                                                ["self", "target_group_arn", "targets"]),
    }
    for name, (func, params) in expected.items():
        found = list(inspect.signature(func).parameters)
        if found != params:
            raise PatchError("moto's %s takes %s, the draining patch expects %s" % (name, found, params))
    init = inspect.getsource(models.FakeTargetGroup.__init__)
    for needle in ("self.targets", "self.deregistered_targets", '"deregistration_delay.timeout_seconds"', "self.name"):
        if needle not in init:
            raise PatchError("moto's FakeTargetGroup.__init__ no longer sets %s" % needle)
    if not hasattr(models, "FakeHealthStatus"):
        raise PatchError("moto.elbv2.models has no FakeHealthStatus")


def install(drain_dir):
    """Patch moto's ELBv2 models in this process; ``drain_dir`` holds the watch and release markers."""
    from moto.elbv2 import exceptions, models  # pylint: disable=import-outside-toplevel

    _check_internals(models)
    group_class = models.FakeTargetGroup
    original_register = group_class.register
    original_deregister = group_class.deregister
    original_health_for = group_class.health_for
    original_describe = models.ELBv2Backend.describe_target_health

    def watched(group):
        return os.path.exists(os.path.join(drain_dir, "watch", group.name))

    def release_marker(group, target_id):
        return os.path.join(drain_dir, "released", group.name, target_id)

    def forget_release(group, target_id):
        try:
            os.unlink(release_marker(group, target_id))
        except FileNotFoundError:
            pass

    def draining(group):
        return group.__dict__.setdefault(DRAINING_ATTR, {})

    def register(self, targets):
        original_register(self, targets)
        for target in targets:
            if draining(self).pop(target["Id"], None) is not None:
                forget_release(self, target["Id"])

    def deregister(self, targets):
        if not watched(self):
            original_deregister(self, targets)
            return
        for target in targets:
            if target["Id"] in draining(self):
                continue  # already draining: AWS accepts the repeat
            registered = self.targets.pop(target["Id"], None)
            if registered is None:
                raise exceptions.InvalidTargetError()
            forget_release(self, target["Id"])
            draining(self)[target["Id"]] = (registered, time.monotonic())

    def drain_finished(self, target_id, since):
        delay = float(self.attributes.get("deregistration_delay.timeout_seconds", 300))
        return os.path.exists(release_marker(self, target_id)) or time.monotonic() - since >= delay

    def health_for(self, target, ec2_backend):
        entry = draining(self).get(target["Id"])
        if entry is not None:
            registered, since = entry
            if not drain_finished(self, target["Id"], since):
                return models.FakeHealthStatus(target["Id"], registered["Port"], self.health_check_port, "draining",
                                               "Target.DeregistrationInProgress", "Target deregistration is in progress")
            del draining(self)[target["Id"]]
            forget_release(self, target["Id"])
            self.deregistered_targets[target["Id"]] = registered
        return original_health_for(self, target, ec2_backend)

    def describe_target_health(self, target_group_arn, targets):
        group = self.target_groups.get(target_group_arn)
        if not targets and group is not None and draining(group):
            targets = list(group.targets.values()) + [entry[0] for entry in draining(group).values()]
            statuses = original_describe(self, target_group_arn, targets)
            # A drain that finished during this call is not a target of the group any more.
            return [s for s in statuses if s.instance_id in group.targets or s.status == "draining"]
        return original_describe(self, target_group_arn, targets)

    group_class.register = register
    group_class.deregister = deregister
    group_class.health_for = health_for
    models.ELBv2Backend.describe_target_health = describe_target_health


COMPLETIONS = os.path.join("lifecycle", "completions.jsonl")


def install_lifecycle(state_dir):
    """Patch moto's Auto Scaling responses in this process (see the module docstring)."""
    from moto.autoscaling import exceptions, models, responses  # pylint: disable=import-outside-toplevel

    response_class = responses.AutoScalingResponse
    for name in ("put_lifecycle_hook", "_get_param", "autoscaling_backend"):
        if not hasattr(response_class, name):
            raise PatchError("moto's AutoScalingResponse has no %s" % name)
    for name in ("describe_lifecycle_hooks", "terminate_instance", "lifecycle_hooks", "autoscaling_groups"):
        if not hasattr(models.AutoScalingBackend, name) and name not in inspect.getsource(models.AutoScalingBackend.__init__):
            raise PatchError("moto's AutoScalingBackend has no %s" % name)
    original_put = response_class.put_lifecycle_hook
    log_path = os.path.join(state_dir, COMPLETIONS)

    def put_lifecycle_hook(self):
        answer = original_put(self)
        backend = self.autoscaling_backend
        hook = backend.lifecycle_hooks["%s_%s" % (self._get_param("AutoScalingGroupName"), self._get_param("LifecycleHookName"))]
        hook.notification_target_arn = self._get_param("NotificationTargetARN")
        hook.role_arn = self._get_param("RoleARN")
        hook.notification_metadata = self._get_param("NotificationMetadata")
        return answer

    def _waiting(self):
        """(hook, instance id) named by the call, or a ValidationError answer as AWS gives it."""
        backend = self.autoscaling_backend
        group_name = self._get_param("AutoScalingGroupName")
        hook_name = self._get_param("LifecycleHookName")
        hook = backend.lifecycle_hooks.get("%s_%s" % (group_name, hook_name))
        group = backend.autoscaling_groups.get(group_name)
        instance_id = self._get_param("InstanceId")
        members = [state.instance.id for state in group.instance_states] if group is not None else []
        if hook is None or group is None:
            return None, "No Lifecycle Hook found: %s on %s" % (hook_name, group_name)
        if instance_id is None:  # by token: the harness's tokens are derived from the instance id (lifecycle_token)
            token = self._get_param("LifecycleActionToken") or ""
            instance_id = next((member for member in members if lifecycle_token(member) == token), None)
        if instance_id not in members:
            return None, "No active Lifecycle Action found with instance ID %s" % instance_id
        return (hook, instance_id), None

    def complete_lifecycle_action(self):
        found, error = _waiting(self)
        if error:
            raise exceptions.ValidationError(error)
        hook, instance_id = found
        result = self._get_param("LifecycleActionResult")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"hook": hook.name, "auto_scaling_group": hook.auto_scaling_group_name, "instance_id": instance_id,
                                     "result": result, "token": self._get_param("LifecycleActionToken")}) + "\n")
        if result == "ABANDON":
            self.autoscaling_backend.terminate_instance(instance_id, should_decrement=False)
        return 200, {}, _empty_answer("CompleteLifecycleAction")

    def record_lifecycle_action_heartbeat(self):
        _found, error = _waiting(self)
        if error:
            raise exceptions.ValidationError(error)
        return 200, {}, _empty_answer("RecordLifecycleActionHeartbeat")

    response_class.put_lifecycle_hook = put_lifecycle_hook
    response_class.complete_lifecycle_action = complete_lifecycle_action
    response_class.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat


def lifecycle_token(instance_id):
    """A stable 36-character token for an instance (what AWS puts in the lifecycle message), known to the patched server."""
    import uuid  # pylint: disable=import-outside-toplevel
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "rollout-lifecycle:%s" % instance_id))


def _empty_answer(action):
    return ('<{0}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><{0}Result/><ResponseMetadata><RequestId>0'
            '</RequestId></ResponseMetadata></{0}Response>').format(action)


def main():
    drain_dir = os.environ.get(DRAIN_DIR_ENV)
    if not drain_dir:
        sys.stderr.write("moto_launch: %s must name the folder of the drain markers\n" % DRAIN_DIR_ENV)
        return 2
    try:
        install(drain_dir)
        install_lifecycle(drain_dir)
    except (PatchError, ImportError, AttributeError, TypeError, OSError) as exc:
        sys.stderr.write("moto_launch: cannot emulate ALB draining on this moto (%s); the test world needs the "
                         "moto version pinned in requirements-dev.txt\n" % exc)
        return 3
    from moto.server import main as moto_main  # pylint: disable=import-outside-toplevel
    sys.argv[0] = "moto_server"
    return moto_main()


if __name__ == "__main__":
    sys.exit(main())
