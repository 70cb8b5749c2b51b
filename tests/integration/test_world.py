"""The test world itself: moto-selected fleet hosts are real, separate SSH machines reached by Ansible."""
import os
import subprocess
import textwrap

import pytest

from world.aws import ADDRESS_TAG
from world.fleet import Fleet

pytestmark = [pytest.mark.fleet, pytest.mark.aws]

PLAYBOOK = textwrap.dedent("""\
    - name: Leave a mark on each selected host
      hosts: all
      gather_facts: false
      tasks:
        - name: Create the mark folder in the host's private /opt
          ansible.builtin.file:
            path: /opt/world-check
            state: directory
            mode: "0755"
        - name: Write the host's own instance id into its private /opt
          ansible.builtin.copy:
            dest: /opt/world-check/instance
            content: "{{ ec2_instance_id }} {{ inventory_hostname }}\\n"
            mode: "0644"
          register: written
        - name: Report the connection
          ansible.builtin.command: hostname
          register: remote_hostname
          changed_when: false
        - name: The host answers under its own name
          ansible.builtin.assert:
            that:
              - remote_hostname.stdout == inventory_hostname
    """)


def test_playbook_reaches_hosts_selected_by_tag(world, aws, fleet_hosts, tmp_path):
    web = world.launch_bound(aws, 3, {"Role": "web", "Env": "test"}, zone="us-east-1b")
    other = world.launch_bound(aws, 2, {"Role": "db", "Env": "test"})
    stopped = aws.launch(1, {"Role": "web"}, state="stopped")
    assert stopped

    inventory = world.aws_ec2_inventory(str(tmp_path / "hosts.aws_ec2.yml"), filters={"tag:Role": "web"})
    playbook = tmp_path / "mark.yml"
    playbook.write_text(PLAYBOOK)
    result = world.ansible_playbook(str(playbook), inventory)
    assert "failed=0" in result.stdout

    for instance_id, host in web.items():
        assert world.fleet.ssh(host, "cat /opt/world-check/instance").split() == [instance_id, host.name]
    for host in other.values():
        # Not selected, and /opt is private per host: nothing leaked from the web hosts.
        assert world.fleet.ssh(host, "test -e /opt/world-check && echo leaked || echo clean").strip() == "clean"
    assert not os.path.exists("/opt/world-check"), "a fleet host wrote into the controller's /opt"


def test_hosts_are_private_machines(world, fleet_hosts):
    first, second = fleet_hosts[0], fleet_hosts[1]
    world.fleet.ssh(first, "useradd -m deployer && echo one > /etc/marker && echo tmp > /tmp/marker")
    assert world.fleet.ssh(first, "id -u deployer").strip().isdigit()
    assert world.fleet.ssh(second, "id deployer", check=False) == ""
    assert world.fleet.ssh(second, "cat /etc/marker /tmp/marker 2>/dev/null; true") == ""
    assert not os.path.exists("/etc/marker")
    # A restarted host comes back clean under the same address.
    world.fleet.restart([first])
    assert world.fleet.ssh(first, "test -e /etc/marker && echo dirty || echo clean").strip() == "clean"


def test_autoscaling_members_are_bound_to_spare_hosts(world, aws, fleet_hosts):
    arn = aws.target_group("world-tg")
    members = aws.autoscaling_group("world-asg", 2, tags={"Role": "web"}, target_group_arns=[arn])
    bound = world.bind_autoscaling_group(aws, "world-asg")
    assert sorted(bound) == sorted(members)
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName="world-asg", DesiredCapacity=3)
    later = world.bind_autoscaling_group(aws, "world-asg")
    assert len(later) == 1
    addresses = {h.address for h in list(bound.values()) + list(later.values())}
    assert len(addresses) == 3
    described = aws.ec2.describe_instances(Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": ["world-asg"]}])
    tagged = {t["Value"] for r in described["Reservations"] for i in r["Instances"] for t in i["Tags"] if t["Key"] == ADDRESS_TAG}
    assert tagged == addresses
    for host in list(bound.values()) + list(later.values()):
        assert world.fleet.ssh(host, "hostname").strip() == host.name
    health = aws.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert {d["Target"]["Id"] for d in health} == set(members) | set(later)


def test_a_killed_run_leaves_nothing_that_blocks_the_next(tmp_path):
    """Start a bench world in a child process, kill -9 it, then start and stop again cleanly."""
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from world.fleet import Fleet\n"
            "f = Fleet('bench').prepare(); f.start(2); print('up', flush=True); time.sleep(60)\n") % os.path.dirname(os.path.dirname(__file__))
    with subprocess.Popen(["python3", "-c", code], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout.readline().strip() == "up"
        child.kill()
        child.wait()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert any(line.startswith("rcd-bench-") for line in namespaces)
    again = Fleet("bench").prepare()
    try:
        hosts = again.start(2)
        assert again.ssh(hosts[0], "hostname").strip() == "bench-1"
    finally:
        again.stop()
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "rcd-bench-" not in leftovers
    assert "rcdb1" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert not os.path.exists(again.state)
