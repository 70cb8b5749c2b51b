"""A background binder: the cloud's part of giving a newly launched Auto Scaling instance an address.

moto launches an Auto Scaling group's instances InService at once, but nothing makes them reachable. ``AsgBinder`` watches
the groups whose name starts with ``prefix`` (by default ``CodeDeploy_``, the groups a blue/green deployment with
COPY_AUTO_SCALING_GROUP creates) and binds each of their unbound instances to a spare fleet host (one no live instance
is bound to; ``World.bind_autoscaling_group``), as if the instance had just booted with that address.

    with AsgBinder(world) as binder:
        ... run the deployment ...
    binder.bound  # {instance id: fleet host}
"""
import threading


class AsgBinder:
    """Binds the instances of Auto Scaling groups named ``prefix*`` to spare fleet hosts every ``interval`` seconds."""

    def __init__(self, world, prefix="CodeDeploy_", interval=0.2):
        self.world = world
        self.prefix = prefix
        self.interval = interval
        self.bound = {}
        self.groups = set()
        self.errors = []
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="asg-binder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, traceback):
        self._stop.set()
        self._thread.join(timeout=10)
        return False

    def bind_once(self, resources):
        """One pass: bind what is unbound now; returns {instance id: fleet host} of this pass."""
        done = {}
        pages = resources.autoscaling.get_paginator("describe_auto_scaling_groups").paginate()
        for page in pages:
            for group in page["AutoScalingGroups"]:
                name = group["AutoScalingGroupName"]
                if not name.startswith(self.prefix) or not group["Instances"]:
                    continue
                self.groups.add(name)
                done.update(self.world.bind_autoscaling_group(resources, name))
        self.bound.update(done)
        return done

    def _run(self):
        resources = self.world.resources()  # clients of this thread's own
        while not self._stop.is_set():
            try:
                self.bind_once(resources)
            except Exception as exc:  # pylint: disable=broad-except  # reported to the test, never kills the loop
                self.errors.append(str(exc))
            self._stop.wait(self.interval)
