# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: codedeploy
short_description: CodeDeploy deployment groups as inventory groups
version_added: 0.1.0
author:
  - rollout.codedeploy maintainers (@rollout)
description:
  - Reads an inventory source file that declares CodeDeploy applications and their deployment
    groups, and turns each deployment group into an inventory group whose hosts are the instances
    CodeDeploy would deploy to, selected with CodeDeploy's exact rules.
  - EC2 instances are selected by O(applications) C(ec2_tag_filters) (a flat list; an instance
    matches when ANY filter matches) or C(ec2_tag_set) (up to 3 tag groups; an instance must match
    EVERY group and ANY filter inside a group), and by C(autoscaling_groups) (up to 10). On-premises
    instances, declared in O(on_premises_instances), are selected by C(on_premises_tag_filters) or
    C(on_premises_tag_set). A group's hosts are the union of what each of these selects.
  - A tag filter is C({key, value, type}) with C(type) one of C(KEY_ONLY), C(VALUE_ONLY) and
    C(KEY_AND_VALUE). Keys and values compare exactly (case-sensitive, spaces kept, no wildcards).
    When C(type) is omitted it is C(KEY_AND_VALUE) if both C(key) and C(value) are given,
    C(KEY_ONLY) with only a key and C(VALUE_ONLY) with only a value.
  - Only running EC2 instances are selected. Members of the Auto Scaling groups named by
    C(autoscaling_groups) are selected only in the lifecycle states of
    O(autoscaling_lifecycle_states) (C(InService) by default); instances selected by tags are
    selected whatever Auto Scaling group they belong to.
  - Each deployment group becomes the inventory group C(<application>_<group>), where every
    character outside C([A-Za-z0-9_]) is replaced by C(_) (case is kept) and a name starting with a
    digit gets a leading C(_); a group's C(inventory_group) key overrides the name. Its validated
    and normalized settings are the group variable C(codedeploy_deployment_group); the variable
    C(codedeploy_deployment_groups) of the C(all) group maps every inventory group name to the same
    settings, so a play on C(localhost), or a host in several deployment groups, finds any group's
    settings unambiguously.
  - The settings are validated with CodeDeploy's limits before any AWS call; an error names the
    file, the application, the deployment group, the key, the value and the fix.
  - Every AWS list call is paginated and no call is made per instance. Per region, at most one
    C(DescribeAutoScalingGroups) listing and as few C(DescribeInstances) listings as the tag
    selections allow (tag filters are pushed down to EC2 and matched exactly afterwards; Auto
    Scaling members not already fetched are described by instance id).
  - The inventory source file name must end with C(.codedeploy.yml) or C(.codedeploy.yaml).
notes:
  - Host variables (the same for a host in several deployment groups) are
    C(codedeploy_instance_id) (the EC2 instance id, or the on-premises instance name),
    C(codedeploy_instance_kind) (C(ec2) or C(on_premises)), C(codedeploy_region),
    C(codedeploy_availability_zone), C(codedeploy_private_ip_address), C(codedeploy_public_ip_address),
    C(codedeploy_private_dns_name), C(codedeploy_public_dns_name), C(codedeploy_instance_type),
    C(codedeploy_vpc_id), C(codedeploy_subnet_id), C(codedeploy_image_id), C(codedeploy_launch_time),
    C(codedeploy_autoscaling_group), C(codedeploy_lifecycle_state) (known for members of the Auto
    Scaling groups a deployment group of the file names, else null), C(codedeploy_tags) (the tags
    as a mapping), and C(ansible_host). Values an on-premises instance lacks are null.
  - Each deployment group's inventory group also gets C(codedeploy_host_naming), this source's O(hostnames) and
    O(ansible_host_source), with which a blue/green deployment with C(COPY_AUTO_SCALING_GROUP) names and reaches the copied
    Auto Scaling group's instances.
  - Two instances that get the same host name are both kept; the second one is named
    C(<name>_<instance id>) with a warning.
  - In AWX or Automation Controller, use the file as an inventory source "Sourced from a Project";
    the AWS credential provides the keys, and the file must set O(regions) (the credential does
    not set a region).
seealso:
  - name: Inventory plugin guide
    description: The inventory source format in full, with the group variable's shape.
    link: https://github.com/rollout/codedeploy/blob/main/docs/inventory.md
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description: The name of this plugin; it must be V(rollout.codedeploy.codedeploy) for the file to be read by it.
    required: true
    type: str
    choices: [rollout.codedeploy.codedeploy]
  regions:
    description:
      - The regions the deployment groups live in. A deployment group takes its region from its
        C(region) key, which must be one of these; without that key, the first of these.
      - When empty, the region of O(region) (or C(AWS_REGION), or the profile's region) is used.
      - Only the regions that deployment groups use are queried.
    type: list
    elements: str
    default: []
  applications:
    description:
      - CodeDeploy applications by name, each a mapping with C(deployment_groups), a mapping of
        deployment group name to its settings.
      - 'Settings of a deployment group (keys in snake_case, values in CodeDeploy''s words):
        C(ec2_tag_filters), C(ec2_tag_set), C(autoscaling_groups), C(on_premises_tag_filters),
        C(on_premises_tag_set), C(deployment_config) (a predefined name such as
        C(CodeDeployDefault.HalfAtATime) or a name from O(deployment_configs); default
        C(CodeDeployDefault.OneAtATime)), C(deployment_style) (C({type: IN_PLACE|BLUE_GREEN,
        traffic_control: true|false})), C(load_balancer) (C({target_groups: [...], classic_elbs: [...],
        haproxy_backends: [{backend, runtime_api, servers, drain_timeout, up_timeout}]}), see docs/haproxy.md),
        C(alarms) (C({enabled, names, ignore_poll_alarm_failure})), C(auto_rollback)
        (C({enabled, events})), C(triggers) (C([{name, target, events}])), C(blue_green),
        C(file_exists_behavior), C(outdated_instances_strategy), C(deployment_group_id) (adopt an
        existing group''s UUID), C(region) and C(inventory_group).'
      - See the collection's docs/inventory.md for every key, its default and its limits.
    type: dict
    required: true
  deployment_configs:
    description:
      - 'Custom deployment configurations by name, for example
        C(TwoAtATime: {minimum_healthy_hosts: {type: HOST_COUNT, value: 2}}), optionally with a
        C(zonal_config).'
      - Names starting with C(CodeDeployDefault.) are reserved for the predefined configurations.
    type: dict
    default: {}
  on_premises_instances:
    description:
      - On-premises instances, each C({name, address, tags, region}). C(name) is the host name and
        the instance name, C(address) becomes C(ansible_host) (default the name), C(tags) is a
        mapping, C(region) defaults to the first of O(regions).
      - An on-premises instance is selected only by deployment groups of its region.
    type: list
    elements: dict
    default: []
  hostnames:
    description:
      - The host name of an EC2 instance, as a list of preferences; the first one that gives a
        value wins, as in the inventory plugin P(amazon.aws.aws_ec2#inventory).
      - A preference is a C(describe-instances) filter name such as V(instance-id),
        V(private-ip-address), V(ip-address), V(dns-name) or V(private-dns-name); V(tag:Name) (the
        value of a tag), V(tag:Name=Value) (C(Name_Value) when the tag has that value) or
        V(tag:A,B); a string with a Jinja2 filter such as V(tag:Name | lower); a mapping
        C({name, prefix, separator}); any other string is used literally.
      - When no preference gives a value, the instance id is used.
    type: list
    elements: raw
    default: [instance-id]
  ansible_host_source:
    description:
      - Where C(ansible_host) of an EC2 instance comes from, as a list of preferences; the first
        one that gives a value wins.
      - V(private-ip-address), V(ip-address) (alias V(public-ip-address)), V(private-dns-name),
        V(dns-name) (alias V(public-dns-name)), V(instance-id), or V(tag:Key) for the value of a tag.
        Underscores may be written instead of dashes.
      - On-premises instances always use their C(address). O(compose) can still override C(ansible_host).
    type: list
    elements: str
    default: [private-ip-address]
  autoscaling_lifecycle_states:
    description:
      - The Auto Scaling lifecycle states in which a member of a deployment group's
        C(autoscaling_groups) belongs to the group, for example V([InService, Pending:Wait]) to
        include instances waiting on a launch lifecycle hook.
    type: list
    elements: str
    default: [InService]
"""

EXAMPLES = r"""
---
# web.codedeploy.yml: two deployment groups of one application.
plugin: rollout.codedeploy.codedeploy
regions: [us-east-1]
deployment_configs:
  TwoAtATime:
    minimum_healthy_hosts: {type: HOST_COUNT, value: 2}
on_premises_instances:
  - {name: rack1-web1, address: 192.0.2.11, tags: {Env: prod, Role: web}}
applications:
  web:
    deployment_groups:
      production:
        ec2_tag_set:
          - [{key: Env, value: prod}]
          - [{key: Role, value: web}, {key: Role, value: api}]
        autoscaling_groups: [web-asg]
        on_premises_tag_filters: [{key: Role, value: web}]
        deployment_config: CodeDeployDefault.HalfAtATime
        load_balancer: {target_groups: [web-tg]}
        alarms: {names: [web-5xx]}
        auto_rollback: {enabled: true, events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]}
      staging:
        ec2_tag_filters:
          - {key: Env, value: staging}
          - {key: Canary, type: KEY_ONLY}
        deployment_config: TwoAtATime

---
# Reach instances by a tag that holds their address, name them by their Name tag,
# and group them by Availability Zone.
plugin: rollout.codedeploy.codedeploy
regions: [us-east-1]
hostnames: [tag:Name, instance-id]
ansible_host_source: [tag:FleetAddress, private-ip-address]
keyed_groups:
  - key: codedeploy_availability_zone
    prefix: az
applications:
  shop:
    deployment_groups:
      blue-green:
        autoscaling_groups: [shop-asg]
        deployment_style: {type: BLUE_GREEN}
        load_balancer: {target_groups: [shop-tg]}
        blue_green:
          terminate_blue_instances_on_deployment_success: {action: TERMINATE, termination_wait_time_in_minutes: 30}

---
# Include instances that wait in Pending:Wait on a launch lifecycle hook, and cache the AWS answers.
plugin: rollout.codedeploy.codedeploy
regions: [eu-west-1]
autoscaling_lifecycle_states: [InService, Pending:Wait]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/codedeploy-inventory
cache_timeout: 300
applications:
  api:
    deployment_groups:
      main:
        autoscaling_groups: [api-a, api-b]
"""

import difflib
import hashlib
import json

import yaml

try:
    import botocore
except ImportError:
    pass  # the AWS inventory base reports a missing SDK

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.inventory import BaseInventoryPlugin

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19
    trust_as_template = None

from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase
from ansible_collections.rollout.codedeploy.plugins.module_utils import ec2_hosts
from ansible_collections.rollout.codedeploy.plugins.module_utils import selection as sel

EC2_PAGE_SIZE = 1000  # the most DescribeInstances returns per call
AUTOSCALING_PAGE_SIZE = 100  # the most DescribeAutoScalingGroups returns per call
INSTANCE_IDS_PER_CALL = 199  # EC2 takes 200 filter values per call; one is the state filter
CACHE_FORMAT = 1


class InventoryModule(AWSInventoryBase):
    """Deployment groups of an inventory source file -> inventory groups of selected instances."""

    NAME = "rollout.codedeploy.codedeploy"

    def __init__(self):
        super().__init__()
        self._source = None

    def verify_file(self, path):
        if not super().verify_file(path):
            return False
        name = to_text(path).rsplit("/", 1)[-1]
        return name.endswith((".codedeploy.yml", ".codedeploy.yaml")) or name in ("codedeploy.yml", "codedeploy.yaml")

    def _do_fail(self, message):
        """Failures of the AWS base (connection, credentials, region) name the source file too."""
        self._fail(message)

    def _fail(self, message):
        raise AnsibleParserError("%s: %s" % (self._source, message))

    # ------------------------------------------------------------------ configuration
    def get_option(self, option, hostvars=None):
        """Options as the AWS inventory base gives them (templates in connection options are rendered),
        rendering list entries one by one and only when they are templates."""
        value = BaseInventoryPlugin.get_option(self, option, hostvars)
        if option not in self.TemplatedOptions.TEMPLATABLE_OPTIONS or not self.templar or not value:
            return value
        if isinstance(value, str):
            return self.templar.template(value) if self.templar.is_template(value) else value
        if isinstance(value, list):
            return [self.templar.template(v) if isinstance(v, str) and self.templar.is_template(v) else v for v in value]
        return value

    def get_options(self, hostvars=None):
        return {option: self.get_option(option, hostvars) for option in self.option_definitions}

    def _check_top_level_keys(self, path):
        """Ansible ignores unknown options; a misspelt one here would silently drop hosts, so refuse it."""
        try:
            data = self.loader.load_from_file(path, cache="none")
        except Exception:  # pylint: disable=broad-except  # already read once by _read_config_data
            return
        self._check_duplicate_keys(path)
        known = set(self.option_definitions)
        for definition in self.option_definitions.values():
            known.update(definition.get("aliases") or [])
        for key in data:
            if key not in known:
                hint = sel.HINTS.get(key) or ""
                close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.7)
                if hint in known:
                    fix = "Use %s." % hint
                elif close:
                    fix = "Did you mean %s?" % close[0]
                else:
                    fix = "See ansible-doc -t inventory %s." % self.NAME
                raise sel.SelectionError(str(key), "unknown option of the inventory source. %s" % fix)

    @staticmethod
    def _check_duplicate_keys(path):
        """YAML keeps only the last of two equal keys (Ansible warns): two applications or groups of one name
        would silently lose the first one's hosts, so refuse them."""
        try:
            with open(path, "rb") as handle:
                root = yaml.compose(handle.read().decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):  # already read (and refused) by _read_config_data
            return
        seen = set()
        pending = [(root, "")]
        while pending:
            node, where = pending.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                lines = {}
                for key, value in node.value:
                    name = key.value if isinstance(key, yaml.ScalarNode) else None
                    if name is not None and name in lines:
                        raise sel.SelectionError(sel.join_path(where, name), "is given twice (lines %d and %d); YAML would "
                                                 "keep only the last one. Merge the two or rename one" % (
                                                     lines[name], key.start_mark.line + 1))
                    if name is not None:
                        lines[name] = key.start_mark.line + 1
                    pending.append((value, sel.join_path(where, name if name is not None else "?")))
            elif isinstance(node, yaml.SequenceNode):
                pending.extend((item, sel.join_path(where, index)) for index, item in enumerate(node.value))

    def _default_region(self, regions):
        if regions:
            return regions[0]
        return self.region

    def _read_settings(self):
        regions = sel.normalize_regions(self.get_option("regions"))
        default_region = self._default_region(regions)
        custom = self.get_option("deployment_configs") or {}
        groups = sel.normalize_applications(self.get_option("applications"), custom, regions, default_region)
        on_premises = sel.normalize_on_premises_instances(self.get_option("on_premises_instances"), default_region)
        states = sel.normalize_lifecycle_states(self.get_option("autoscaling_lifecycle_states"))
        host_sources = [self._host_source(s) for s in self.get_option("ansible_host_source") or []]
        hostnames = self.get_option("hostnames") or ["instance-id"]
        for preference in hostnames:
            if isinstance(preference, dict):
                if "name" not in preference:
                    raise sel.SelectionError("hostnames", "a mapping in hostnames needs a name", preference)
            elif not isinstance(preference, str):
                raise sel.SelectionError("hostnames", "entries must be strings or {name, prefix, separator}", preference)
        return {"groups": groups, "on_premises": on_premises, "states": states, "host_sources": host_sources,
                "hostnames": hostnames}

    @staticmethod
    def _host_source(source):
        text = to_text(source).strip()
        normalized = ec2_hosts.host_source(text)
        if normalized is None and text.startswith("tag:"):
            raise sel.SelectionError("ansible_host_source", "tag: needs a tag key, like tag:FleetAddress", text)
        if normalized is None:
            raise sel.SelectionError("ansible_host_source", "is not a known source. Use one of %s, or tag:<Key>" % (
                ", ".join(ec2_hosts.HOST_SOURCES)), text)
        return normalized

    @staticmethod
    def _fingerprint(settings):
        """What the AWS answers depend on: a cached answer for other selections is not reused."""
        data = {"format": CACHE_FORMAT, "states": settings["states"],
                "groups": sorted(json.dumps([g["region"], g["selection"]], sort_keys=True) for g in settings["groups"])}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ AWS
    def _describe_instances(self, client, region, filters):
        boto_filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        boto_filters.extend({"Name": name, "Values": list(values)} for name, values in sorted(filters.items()))
        found = []
        try:
            paginator = client.get_paginator("describe_instances")
            for page in paginator.paginate(Filters=boto_filters, PaginationConfig={"PageSize": EC2_PAGE_SIZE}):
                for reservation in page.get("Reservations", []):
                    for instance in reservation.get("Instances", []):
                        instance["ReservationId"] = reservation.get("ReservationId")
                        instance["OwnerId"] = reservation.get("OwnerId")
                        found.append(ec2_hosts.plain(instance))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self._fail("DescribeInstances failed in %s with filters %s: %s. Check the credentials, the region and "
                       "endpoint_url." % (region, json.dumps(boto_filters), to_native(exc)))
        return found

    def _describe_autoscaling(self, region, names):
        client = self.client("autoscaling", region=region)
        members = {}
        found = set()
        try:
            paginator = client.get_paginator("describe_auto_scaling_groups")
            for chunk_start in range(0, len(names), AUTOSCALING_PAGE_SIZE):
                chunk = names[chunk_start:chunk_start + AUTOSCALING_PAGE_SIZE]
                for page in paginator.paginate(AutoScalingGroupNames=chunk,
                                               PaginationConfig={"PageSize": AUTOSCALING_PAGE_SIZE}):
                    for group in page.get("AutoScalingGroups", []):
                        found.add(group["AutoScalingGroupName"])
                        for member in group.get("Instances", []):
                            members[member["InstanceId"]] = {
                                "autoscaling_group": group["AutoScalingGroupName"],
                                "lifecycle_state": member.get("LifecycleState"),
                                "health_status": member.get("HealthStatus"),
                            }
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self._fail("DescribeAutoScalingGroups failed in %s for %s: %s. Check the credentials, the region and "
                       "endpoint_url." % (region, ", ".join(names), to_native(exc)))
        return members, [name for name in names if name not in found]

    @staticmethod
    def _member_queries(members, fetched, states):
        """DescribeInstances filters for the Auto Scaling members the tag queries did not return:
        by instance id when one call holds them, else by the group-name tag Auto Scaling sets."""
        wanted = sorted(i for i, m in members.items() if i not in fetched and m["lifecycle_state"] in states)
        if not wanted:
            return []
        names = sorted({members[i]["autoscaling_group"] for i in wanted})
        if len(wanted) > INSTANCE_IDS_PER_CALL and len(names) <= INSTANCE_IDS_PER_CALL \
                and all(sel.pushable(name) for name in names):
            return [{"tag:%s" % sel.AUTOSCALING_GROUP_TAG: names}]
        return [{"instance-id": wanted[start:start + INSTANCE_IDS_PER_CALL]}
                for start in range(0, len(wanted), INSTANCE_IDS_PER_CALL)]

    def _query(self, settings):
        """The AWS answers the selections need, per region: running instances and Auto Scaling members."""
        regions = {}
        for group in settings["groups"]:
            regions.setdefault(group["region"], []).append(group)
        result = {}
        for region in sorted(regions):
            groups = regions[region]
            selections = [g["selection"] for g in groups]
            asg_names = sorted({name for s in selections for name in s["autoscaling_groups"]})
            plan = sel.ec2_query_plan(selections)
            members, missing = ({}, []) if not asg_names else self._describe_autoscaling(region, asg_names)
            instances = {}
            if plan or members:
                ec2 = self.client("ec2", region=region)
                for filters in plan:
                    for instance in self._describe_instances(ec2, region, filters):
                        instances[instance["InstanceId"]] = instance
                for filters in self._member_queries(members, instances, settings["states"]):
                    for instance in self._describe_instances(ec2, region, filters):
                        instances[instance["InstanceId"]] = instance
            result[region] = {
                "instances": [instances[i] for i in sorted(instances)],
                "autoscaling": members,
                "missing_autoscaling_groups": missing,
            }
        return {"fingerprint": self._fingerprint(settings), "regions": result}

    # ------------------------------------------------------------------ selection
    @staticmethod
    def _select(group, region_data, states):
        """Instance ids of the region's running instances that ``group`` selects."""
        selection = group["selection"]
        asgs = set(selection["autoscaling_groups"])
        members = region_data["autoscaling"]
        selected = []
        for instance in region_data["instances"]:
            instance_id = instance["InstanceId"]
            member = members.get(instance_id)
            if member and member["autoscaling_group"] in asgs and member["lifecycle_state"] in states:
                selected.append(instance_id)
            elif sel.tags_selected(selection, ec2_hosts.tags(instance)):
                selected.append(instance_id)
        return selected

    # ------------------------------------------------------------------ host names and variables
    def _render(self, value, jinja_filter):
        template = "{{ %s | %s }}" % (json.dumps(value), jinja_filter)
        if trust_as_template:
            template = trust_as_template(template)
        return self.templar.template(template)

    _tag_hostname = staticmethod(ec2_hosts.tag_hostname)

    def _hostname(self, instance, hostnames):
        return ec2_hosts.hostname(instance, hostnames, render=self._render, sanitize=self._sanitize_group_name)

    _ansible_host = staticmethod(ec2_hosts.ansible_host)
    _ec2_vars = staticmethod(ec2_hosts.ec2_vars)

    @staticmethod
    def _on_premises_vars(instance):
        return {
            "codedeploy_instance_id": instance["name"],
            "codedeploy_instance_kind": "on_premises",
            "codedeploy_region": instance["region"],
            "codedeploy_availability_zone": None,
            "codedeploy_private_ip_address": None,
            "codedeploy_public_ip_address": None,
            "codedeploy_private_dns_name": None,
            "codedeploy_public_dns_name": None,
            "codedeploy_instance_type": None,
            "codedeploy_vpc_id": None,
            "codedeploy_subnet_id": None,
            "codedeploy_image_id": None,
            "codedeploy_launch_time": None,
            "codedeploy_autoscaling_group": None,
            "codedeploy_lifecycle_state": None,
            "codedeploy_tags": dict(instance["tags"]),
            "ansible_host": instance["address"],
        }

    # ------------------------------------------------------------------ inventory
    def _populate(self, settings, results):
        groups = settings["groups"]
        states = settings["states"]
        for region, data in sorted(results["regions"].items()):
            for name in data.get("missing_autoscaling_groups", []):
                users = ["%s/%s" % (g["application"], g["name"]) for g in groups
                         if g["region"] == region and name in g["selection"]["autoscaling_groups"]]
                self.display.warning("%s: Auto Scaling group %s was not found in %s; deployment group %s gets no "
                                     "instances from it." % (self._source, name, region, ", ".join(users)))

        # Which group selects which host, decided before any name is given.
        members = []  # (inventory group, host key)
        hosts = {}  # host key -> (vars, instance or None)
        order = []
        for group in groups:
            data = results["regions"].get(group["region"], {"instances": [], "autoscaling": {}})
            by_id = {i["InstanceId"]: i for i in data["instances"]}
            for instance_id in self._select(group, data, states):
                key = ("ec2", group["region"], instance_id)
                if key not in hosts:
                    instance = by_id[instance_id]
                    source = self._ansible_host(instance, settings["host_sources"])
                    hosts[key] = (self._ec2_vars(instance, group["region"], data["autoscaling"].get(instance_id), source),
                                  instance)
                    order.append(key)
                members.append((group["inventory_group"], key))
            for instance in settings["on_premises"]:
                if instance["region"] == group["region"] and sel.tags_selected(group["selection"], instance["tags"],
                                                                               "on_premises"):
                    key = ("on_premises", instance["region"], instance["name"])
                    if key not in hosts:
                        hosts[key] = (self._on_premises_vars(instance), None)
                        order.append(key)
                    members.append((group["inventory_group"], key))

        names = self._host_names(order, hosts, settings["hostnames"])
        all_settings = {}
        for group in groups:
            name = self.inventory.add_group(group["inventory_group"])
            self.inventory.set_variable(name, "codedeploy_deployment_group", json.loads(json.dumps(group)))
            # How this source names and reaches instances: a blue/green deployment names a copied Auto Scaling group's
            # instances the same way (plugin_utils/green_copy.py).
            self.inventory.set_variable(name, "codedeploy_host_naming", {"hostnames": json.loads(json.dumps(settings["hostnames"])),
                                                                         "ansible_host_source": list(settings["host_sources"])})
            all_settings[name] = json.loads(json.dumps(group))
        existing = self.inventory.groups["all"].vars.get("codedeploy_deployment_groups") or {}
        merged = dict(existing)
        merged.update(all_settings)
        self.inventory.set_variable("all", "codedeploy_deployment_groups", merged)

        unreachable = 0
        for key in order:
            host_vars = hosts[key][0]
            name = names[key]
            self.inventory.add_host(name)
            for var, value in host_vars.items():
                if var == "ansible_host" and value is None:
                    continue
                self.inventory.set_variable(name, var, value)
            if host_vars["ansible_host"] is None:
                unreachable += 1
        for group_name, key in members:
            self.inventory.add_child(group_name, names[key])
        if unreachable:
            sources = ", ".join(settings["host_sources"])
            self.display.warning("%s: %d selected instance(s) have no value for ansible_host_source %s; they keep "
                                 "their host name as address." % (self._source, unreachable, sources))
        strict = self.get_option("strict")
        compose = self.get_option("compose")
        composed_groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        if compose or composed_groups or keyed_groups:
            for key in order:
                host_vars = hosts[key][0]
                name = names[key]
                self._set_composite_vars(compose, host_vars, name, strict=strict)
                self._add_host_to_composed_groups(composed_groups, host_vars, name, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, host_vars, name, strict=strict)

    def _host_names(self, order, hosts, hostnames):
        names = {}
        taken = {}
        for key in order:
            instance = hosts[key][1]
            name = key[2] if instance is None else self._hostname(instance, hostnames)
            if name in taken:
                unique = "%s_%s" % (name, key[2])
                self.display.warning("%s: %s and %s would both be named %s; the second one is named %s." % (
                    self._source, taken[name], key[2], name, unique))
                name = unique
            taken[name] = key[2]
            names[key] = name
        return names

    # ------------------------------------------------------------------ entry point
    def parse(self, inventory, loader, path, cache=True):
        self._source = path
        super().parse(inventory, loader, path, cache=cache)
        try:
            self._check_top_level_keys(path)
            settings = self._read_settings()
        except sel.SelectionError as exc:
            self._fail(exc.message)
        fingerprint = self._fingerprint(settings)
        use_cache = bool(self.get_option("cache")) and cache
        results = None
        if use_cache:
            try:
                results = self._cache[self.get_cache_key(path)]
            except KeyError:
                results = None
            if not isinstance(results, dict) or results.get("fingerprint") != fingerprint:
                results = None
        fresh = results is None
        if fresh:
            results = self._query(settings)
        try:
            self._populate(settings, results)
        except AnsibleError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            self._fail("could not build the inventory: %s" % to_native(exc))
        if self.get_option("cache") and fresh:
            self._cache[self.get_cache_key(path)] = results
