"""The embedded AWS: a moto server on the project's bridge, and the resources the world needs in it.

The server listens on the bridge address so that fleet hosts reach it too (presigned S3 URLs);
the controller reaches it at the same address. Every AWS call goes through boto3 with
``endpoint_url`` (or ``AWS_ENDPOINT_URL`` in the environment of ansible-playbook).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
from botocore.config import Config

from world import paths
from world.fleet import BRIDGE_ADDRESS, WORLDS, FleetError, ensure_bridge
from world.moto_launch import COMPLETIONS, DRAIN_DIR_ENV, lifecycle_token

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
# The tag that binds an EC2 instance in moto to the fleet host that plays it.
ADDRESS_TAG = "FleetAddress"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class Moto:
    """One moto server process for a world.

    The server runs through ``world.moto_launch``, which adds ALB-like draining for target groups
    that a real load balancer mirrors (``watch``/``release``; see that module).
    """

    def __init__(self, world, state_dir):
        self.world = world
        self.port = WORLDS[world][2]
        self.endpoint = "http://%s:%d" % (BRIDGE_ADDRESS, self.port)
        self.state_dir = state_dir
        self.pid_file = os.path.join(state_dir, "moto.pid")
        self.drain_dir = os.path.join(state_dir, "drain")

    def start(self, timeout=30.0):
        self.stop()
        ensure_bridge()
        os.makedirs(self.state_dir, exist_ok=True)
        shutil.rmtree(self.drain_dir, ignore_errors=True)
        os.makedirs(os.path.join(self.drain_dir, "watch"))
        os.makedirs(os.path.join(self.drain_dir, "released"))
        env = dict(os.environ)
        env[DRAIN_DIR_ENV] = self.drain_dir
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                                            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        log = open(os.path.join(self.state_dir, "moto.log"), "ab")  # pylint: disable=consider-using-with
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "world.moto_launch", "-H", BRIDGE_ADDRESS, "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=paths.REPO, env=env)
        log.close()
        with open(self.pid_file, "w", encoding="utf-8") as handle:
            handle.write(str(proc.pid))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=2):
                    return self
            except (urllib.error.URLError, OSError) as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise FleetError("moto server did not start on %s (%s); see %s/moto.log" % (self.endpoint, exc, self.state_dir)) from exc
                time.sleep(0.1)

    def stop(self):
        """Stop the server of this world, also one a killed run left behind."""
        try:
            with open(self.pid_file, encoding="utf-8") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        os.unlink(self.pid_file)

    def pause(self):
        """Freeze the server (SIGSTOP): connections are accepted but nothing answers, as with a hung AWS endpoint."""
        self._signal(signal.SIGSTOP)

    def resume(self):
        self._signal(signal.SIGCONT)

    def _signal(self, number):
        with open(self.pid_file, encoding="utf-8") as handle:
            os.killpg(int(handle.read().strip()), number)

    def reset(self):
        """Forget every resource: each test starts from an empty AWS (draining targets and release markers too)."""
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10):
            pass
        released = os.path.join(self.drain_dir, "released")
        shutil.rmtree(released, ignore_errors=True)
        os.makedirs(released, exist_ok=True)
        shutil.rmtree(os.path.dirname(os.path.join(self.drain_dir, COMPLETIONS)), ignore_errors=True)

    # ----------------------------------------------------------------- lifecycle hooks (world.moto_launch)
    @staticmethod
    def lifecycle_token(instance_id):
        """The LifecycleActionToken of an instance's launch lifecycle message, as the patched server knows it."""
        return lifecycle_token(instance_id)

    def lifecycle_completions(self):
        """Every CompleteLifecycleAction the server got since the last reset: [{hook, auto_scaling_group, instance_id, result, token}]."""
        try:
            with open(os.path.join(self.drain_dir, COMPLETIONS), encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:
            return []

    # ----------------------------------------------------------------- draining emulation (world.moto_launch)
    def watch(self, target_group_name):
        """Make deregistration in this target group drain as on an ALB (until ``release`` or the delay)."""
        with open(os.path.join(self.drain_dir, "watch", target_group_name), "w", encoding="utf-8"):
            pass

    def unwatch(self, target_group_name):
        """Back to moto's own behaviour for this group (deregistered targets are ``unused`` at once)."""
        try:
            os.unlink(os.path.join(self.drain_dir, "watch", target_group_name))
        except FileNotFoundError:
            pass

    def release(self, target_group_name, target_id):
        """Tell moto that the load balancer has no request in flight to a draining target any more."""
        folder = os.path.join(self.drain_dir, "released", target_group_name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, target_id), "w", encoding="utf-8"):
            pass

    def env(self):
        """Environment for boto3, the AWS CLI and Ansible's AWS content to use this server."""
        env = dict(CREDENTIALS)
        env.update({"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint})
        return env

    def client(self, service, region=REGION):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"mode": "standard"}))


class Resources:
    """Builds what tests and the demo need in moto: network, instances bound to fleet hosts, ASGs, TGs, S3."""

    def __init__(self, moto):
        self.moto = moto
        self.ec2 = moto.client("ec2")
        self.autoscaling = moto.client("autoscaling")
        self.elbv2 = moto.client("elbv2")
        self.s3 = moto.client("s3")
        self._network = None
        self._image = None

    # ----------------------------------------------------------------- network
    def network(self):
        """A VPC with one subnet per zone: {"vpc": id, "subnets": {zone: id}}."""
        if self._network is None:
            vpc = self.ec2.create_vpc(CidrBlock="10.213.0.0/16")["Vpc"]["VpcId"]
            subnets = {}
            for number, zone in enumerate(ZONES):
                subnets[zone] = self.ec2.create_subnet(
                    VpcId=vpc, CidrBlock="10.213.%d.0/20" % (16 * (number + 1)), AvailabilityZone=zone)["Subnet"]["SubnetId"]
            self._network = {"vpc": vpc, "subnets": subnets}
        return self._network

    def image(self):
        if self._image is None:
            images = self.ec2.describe_images(Owners=["amazon"])["Images"]
            self._image = sorted(i["ImageId"] for i in images)[0]
        return self._image

    # ----------------------------------------------------------------- instances
    def launch(self, count, tags, zone=ZONES[0], state="running"):
        """Launch ``count`` instances with ``tags`` in ``zone``; stop or terminate them if asked. Returns ids."""
        subnet = self.network()["subnets"][zone]
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
        result = self.ec2.run_instances(ImageId=self.image(), MinCount=count, MaxCount=count, InstanceType="t3.micro",
                                        SubnetId=subnet, TagSpecifications=spec)
        ids = [i["InstanceId"] for i in result["Instances"]]
        if state == "stopped":
            self.ec2.stop_instances(InstanceIds=ids)
        elif state == "terminated":
            self.ec2.terminate_instances(InstanceIds=ids)
        return ids

    def bind(self, instance_ids, hosts):
        """Tag each instance with the address (and name) of the fleet host that plays it."""
        if len(instance_ids) > len(hosts):
            raise FleetError("%d instances to bind but only %d fleet hosts free" % (len(instance_ids), len(hosts)))
        for instance_id, host in zip(instance_ids, hosts):
            self.ec2.create_tags(Resources=[instance_id], Tags=[
                {"Key": ADDRESS_TAG, "Value": host.address}, {"Key": "Name", "Value": host.name}])
        return dict(zip(instance_ids, hosts))

    def bound_addresses(self):
        """Addresses already bound to a live instance, so spare hosts can be told apart."""
        taken = set()
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag-key", "Values": [ADDRESS_TAG]},
                     {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    for tag in instance.get("Tags", []):
                        if tag["Key"] == ADDRESS_TAG:
                            taken.add(tag["Value"])
        return taken

    # ----------------------------------------------------------------- auto scaling
    def autoscaling_group(self, name, desired, tags=None, target_group_arns=None, zones=ZONES):
        """An ASG from a launch template; moto launches its instances at once (InService)."""
        subnets = ",".join(self.network()["subnets"][z] for z in zones)
        template = "%s-template" % name
        self.ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData={
            "ImageId": self.image(), "InstanceType": "t3.micro"})
        kwargs = {}
        if target_group_arns:
            kwargs["TargetGroupARNs"] = list(target_group_arns)
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=0, MaxSize=max(desired, 1) * 4, DesiredCapacity=desired, VPCZoneIdentifier=subnets,
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
                  for k, v in (tags or {}).items()],
            **kwargs)
        return self.asg_instances(name)

    def asg_instances(self, name):
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return [i["InstanceId"] for i in groups[0]["Instances"]] if groups else []

    def unbound_asg_instances(self, name):
        """ASG members not yet played by a fleet host (for example launched by a scale-out)."""
        ids = self.asg_instances(name)
        if not ids:
            return []
        described = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        bound = {i["InstanceId"] for r in described for i in r["Instances"]
                 if any(t["Key"] == ADDRESS_TAG for t in i.get("Tags", []))}
        return [i for i in ids if i not in bound]

    # ----------------------------------------------------------------- load balancing and storage
    def target_group(self, name, port=8080, with_load_balancer=True):
        """An ALB target group (HTTP on ``port``, health check /health), with an ALB and listener in front."""
        net = self.network()
        arn = self.elbv2.create_target_group(
            Name=name, Protocol="HTTP", Port=port, VpcId=net["vpc"], TargetType="instance",
            HealthCheckPath="/health", HealthCheckPort=str(port))["TargetGroups"][0]["TargetGroupArn"]
        if with_load_balancer:
            lb = self.elbv2.create_load_balancer(Name="%s-alb" % name, Subnets=list(net["subnets"].values()),
                                                 Type="application", Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
            self.elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                       DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
        return arn

    def bucket(self, name, versioned=True):
        self.s3.create_bucket(Bucket=name)
        if versioned:
            self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name
