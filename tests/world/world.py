"""A world: one moto server plus one fleet of SSH hosts, with helpers to run Ansible against them."""
import json
import os
import shlex
import subprocess
import sys

import yaml

from world import paths
from world.aws import ADDRESS_TAG, REGION, Moto, Resources
from world.balancer import Balancer
from world.fleet import Fleet
from world.load import Load


class World:
    """Start, stop and use a named world (see ``fleet.WORLDS``)."""

    def __init__(self, name="test"):
        self.name = name
        self.fleet = Fleet(name)
        self.moto = Moto(name, self.fleet.state)
        self._balancer = None

    # ----------------------------------------------------------------- lifecycle
    def start(self, hosts):
        """Remove what an earlier run left, then start moto and ``hosts`` fleet hosts."""
        self.moto.stop()
        self.fleet.prepare()
        self.moto.start()
        self.fleet.start(hosts)
        self.write_env_file()
        return self

    def stop(self):
        if self._balancer is not None:
            self._balancer.stop()
            self._balancer = None
        self.moto.stop()
        self.fleet.stop()

    # ----------------------------------------------------------------- real traffic
    @property
    def balancer(self):
        """The world's HAProxy (``world.balancer.Balancer``), its host started on first use (about 0.2 s)."""
        if self._balancer is None or self.fleet.balancer_host is None:
            self._balancer = Balancer(self.fleet)
        return self._balancer

    @staticmethod
    def load(url, **options):
        """A bounded load generator on ``url`` (``world.load.Load``; not started)."""
        return Load(url, **options)

    @classmethod
    def attach(cls, name):
        """The world a ``tools/world start`` left running."""
        world = cls(name)
        world.fleet = Fleet.load(name)
        return world

    # ----------------------------------------------------------------- AWS side
    def resources(self):
        return Resources(self.moto)

    def free_hosts(self, resources, count=None):
        """Fleet hosts not bound to any live instance; start more when ``count`` asks for more."""
        taken = resources.bound_addresses()
        free = [h for h in sorted(self.fleet.hosts.values(), key=lambda h: h.index) if h.address not in taken]
        if count is not None and len(free) < count:
            free += self.fleet.start(count - len(free))
        return free if count is None else free[:count]

    def launch_bound(self, resources, count, tags, zone=None):
        """Launch ``count`` running instances with ``tags`` and bind each to a free fleet host."""
        hosts = self.free_hosts(resources, count)
        kwargs = {"zone": zone} if zone else {}
        ids = resources.launch(count, tags, **kwargs)
        return resources.bind(ids, hosts)

    def bind_autoscaling_group(self, resources, name):
        """Bind every ASG member that no fleet host plays yet (for example after a scale-out) to a spare host."""
        unbound = resources.unbound_asg_instances(name)
        if not unbound:
            return {}
        return resources.bind(unbound, self.free_hosts(resources, len(unbound)))

    # ----------------------------------------------------------------- Ansible side
    def env(self, extra=None):
        """The environment for ansible-playbook, boto3 and the AWS CLI to use this world."""
        env = dict(os.environ)
        env.update(self.moto.env())
        env.update(self.fleet.ansible_env())
        env["ANSIBLE_COLLECTIONS_PATH"] = paths.collections_path()
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env.setdefault("ANSIBLE_FORCE_COLOR", "0")
        env["ANSIBLE_LOCALHOST_WARNING"] = "False"
        env["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "False"
        if extra:
            env.update(extra)
        return env

    def write_env_file(self):
        """``source <state>/env.sh`` gives a shell the same environment (documented in docs/development.md)."""
        keys = dict(self.moto.env())
        keys.update(self.fleet.ansible_env())
        keys["ANSIBLE_COLLECTIONS_PATH"] = paths.collections_path()
        path = os.path.join(self.fleet.state, "env.sh")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("# environment of the %s world; source this file\n" % self.name)
            for key, value in sorted(keys.items()):
                handle.write("export %s=%s\n" % (key, shlex.quote(value)))
            handle.write("export PATH=%s:$PATH\n" % shlex.quote(os.path.dirname(sys.executable)))
        return path

    def aws_ec2_inventory(self, path, filters=None, groups=None):
        """Write an ``amazon.aws.aws_ec2`` inventory that selects bound instances by tag and reaches them by address.

        ``filters`` are EC2 filters (``{"tag:Role": "web"}``); only running instances bound to a fleet host count.
        """
        all_filters = {"instance-state-name": "running", "tag-key": ADDRESS_TAG}
        all_filters.update(filters or {})
        data = {
            "plugin": "amazon.aws.aws_ec2",
            "regions": [REGION],
            "endpoint_url": self.moto.endpoint,
            "filters": all_filters,
            "hostnames": ["tag:Name", "instance-id"],
            "compose": {"ansible_host": "tags['%s']" % ADDRESS_TAG, "ec2_instance_id": "instance_id"},
            "keyed_groups": [{"key": "tags.Role | default('none')", "prefix": "role"}],
            "use_contrib_script_compatible_ec2_tag_keys": False,
        }
        if groups:
            data["groups"] = groups
        if not path.endswith((".aws_ec2.yml", ".aws_ec2.yaml")):
            raise ValueError("aws_ec2 inventory files must end in .aws_ec2.yml: %s" % path)
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, sort_keys=False)
        return path

    def codedeploy_inventory(self, path, groups, deployment_configs=None):
        """Write a ``rollout.codedeploy.codedeploy`` inventory whose hosts are reached at their fleet address.

        ``groups`` maps application -> deployment group -> settings (the inventory file's keys).
        """
        data = {"plugin": "rollout.codedeploy.codedeploy", "regions": [REGION], "endpoint_url": self.moto.endpoint,
                "hostnames": ["tag:Name"], "ansible_host_source": ["tag:%s" % ADDRESS_TAG]}
        if deployment_configs:
            data["deployment_configs"] = deployment_configs
        data["applications"] = {app: {"deployment_groups": dgs} for app, dgs in groups.items()}
        if not path.endswith((".codedeploy.yml", ".codedeploy.yaml")):
            raise ValueError("codedeploy inventory files must end in .codedeploy.yml: %s" % path)
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, sort_keys=False)
        return path

    def ansible(self, args, env=None, check=True, timeout=900):
        """Run an Ansible command line (``ansible-playbook ...``) in this world; return the CompletedProcess."""
        proc = subprocess.run(args, env=self.env(env), capture_output=True, text=True, timeout=timeout, check=False, cwd=paths.REPO)
        if check and proc.returncode != 0:
            raise AssertionError("%s exited %d\n--- stdout\n%s\n--- stderr\n%s" % (
                " ".join(args), proc.returncode, proc.stdout[-8000:], proc.stderr[-4000:]))
        return proc

    def ansible_playbook(self, playbook, inventory, extra_vars=None, options=(), env=None, check=True):
        args = ["ansible-playbook", "-i", inventory, playbook]
        if extra_vars:
            args += ["-e", json.dumps(extra_vars)]
        args += list(options)
        return self.ansible(args, env=env, check=check)
