# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an EC2 instance becomes an inventory host: its host name (the ``hostnames`` preferences), its ``ansible_host``
(the ``ansible_host_source`` preferences) and its ``codedeploy_*`` variables.

One place for it: the inventory plugin (plugins/inventory/codedeploy.py) names the instances it selects with these
functions, and a blue/green deployment that copies an Auto Scaling group (plugin_utils/green_copy.py) names the copy's
instances with the same functions and the same settings, so a green host looks like any host of the inventory.

Pure Python on DescribeInstances data; a Jinja2 filter in a host name preference is rendered by the ``render`` callable
the caller passes (the inventory's or the action's templar)."""

from __future__ import annotations

import datetime

#: describe-instances filter names -> the path of the value in a DescribeInstances instance.
ATTRIBUTES = {
    "instance-id": ("InstanceId",),
    "private-ip-address": ("PrivateIpAddress",),
    "ip-address": ("PublicIpAddress",),
    "public-ip-address": ("PublicIpAddress",),
    "dns-name": ("PublicDnsName",),
    "public-dns-name": ("PublicDnsName",),
    "private-dns-name": ("PrivateDnsName",),
    "availability-zone": ("Placement", "AvailabilityZone"),
    "instance-type": ("InstanceType",),
    "image-id": ("ImageId",),
    "vpc-id": ("VpcId",),
    "subnet-id": ("SubnetId",),
    "key-name": ("KeyName",),
    "architecture": ("Architecture",),
    "platform": ("Platform",),
    "launch-index": ("AmiLaunchIndex",),
    "reservation-id": ("ReservationId",),
    "owner-id": ("OwnerId",),
}
HOST_SOURCES = ("private-ip-address", "ip-address", "public-ip-address", "dns-name", "public-dns-name",
                "private-dns-name", "instance-id")
#: The inventory plugin's defaults for the two options.
DEFAULT_HOSTNAMES = ("instance-id",)
DEFAULT_HOST_SOURCES = ("private-ip-address",)
#: The tag Auto Scaling puts on the instances it launches.
AUTOSCALING_GROUP_TAG = "aws:autoscaling:groupName"


def plain(value):
    """DescribeInstances data as JSON-safe plain data (datetimes as ISO 8601 text)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def attribute(instance, name):
    value = instance
    for part in ATTRIBUTES[name]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def tags(instance):
    return {tag["Key"]: tag.get("Value", "") for tag in instance.get("Tags") or []}


def host_source(text):
    """One ``ansible_host_source`` entry, normalized (``tag:Key`` or a describe-instances name); None when it is not one."""
    text = str(text).strip()
    if text.startswith("tag:"):
        return text if len(text) > 4 else None
    normalized = text.replace("_", "-")
    if normalized not in HOST_SOURCES:
        return None
    return {"public-ip-address": "ip-address", "public-dns-name": "dns-name"}.get(normalized, normalized)


def tag_hostname(spec, instance_tags):
    """``tag:A,B`` (the first tag with a value) or ``tag:A=B`` (``A_B`` when the tag has that value)."""
    for item in spec.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            if instance_tags.get(key) == value:
                return "%s_%s" % (key, value)
        elif instance_tags.get(item):
            return instance_tags[item]
    return None


def hostname_value(instance, preference, render=None):
    """The value one ``hostnames`` preference gives ``instance`` (None when it gives none). ``render(value, jinja_filter)``
    applies a ``| filter`` part; without ``render`` such a part is ignored."""
    preference = str(preference)
    jinja_filter = None
    if "|" in preference:
        preference, jinja_filter = [part.strip() for part in preference.split("|", 1)]
    if preference.startswith("tag:"):
        value = tag_hostname(preference[4:], tags(instance))
    elif preference in ATTRIBUTES:
        value = attribute(instance, preference)
    else:
        value = preference
    if jinja_filter and value and render is not None:
        value = render(value, jinja_filter)
    return str(value) if value not in (None, "") else None


def hostname(instance, hostnames, render=None, sanitize=None):
    """The host name of ``instance``: the first preference of ``hostnames`` that gives a value, else the instance id.
    ``sanitize`` makes a name with ``:`` safe (the inventory's group-name sanitizer)."""
    for preference in hostnames or DEFAULT_HOSTNAMES:
        if isinstance(preference, dict):
            name = hostname_value(instance, preference["name"], render)
            if name and preference.get("prefix"):
                prefix = hostname_value(instance, preference["prefix"], render)
                if prefix:
                    name = prefix + preference.get("separator", "_") + name
        else:
            name = hostname_value(instance, preference, render)
        if name:
            return sanitize(name) if ":" in name and sanitize is not None else name
    return instance["InstanceId"]


def ansible_host(instance, sources):
    """The address of ``instance`` from the normalized ``ansible_host_source`` preferences, or None."""
    for source in sources or DEFAULT_HOST_SOURCES:
        if source.startswith("tag:"):
            value = tags(instance).get(source[4:])
        else:
            value = attribute(instance, source)
        if value:
            return value
    return None


def ec2_vars(instance, region, member, address):
    """The ``codedeploy_*`` host variables of an EC2 instance (``member``: its Auto Scaling membership, if any) and its
    ``ansible_host``."""
    instance_tags = tags(instance)
    member = member or {}
    return {
        "codedeploy_instance_id": instance["InstanceId"],
        "codedeploy_instance_kind": "ec2",
        "codedeploy_region": region,
        "codedeploy_availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "codedeploy_private_ip_address": instance.get("PrivateIpAddress"),
        "codedeploy_public_ip_address": instance.get("PublicIpAddress"),
        "codedeploy_private_dns_name": instance.get("PrivateDnsName") or None,
        "codedeploy_public_dns_name": instance.get("PublicDnsName") or None,
        "codedeploy_instance_type": instance.get("InstanceType"),
        "codedeploy_vpc_id": instance.get("VpcId"),
        "codedeploy_subnet_id": instance.get("SubnetId"),
        "codedeploy_image_id": instance.get("ImageId"),
        "codedeploy_launch_time": instance.get("LaunchTime"),
        "codedeploy_autoscaling_group": member.get("autoscaling_group") or instance_tags.get(AUTOSCALING_GROUP_TAG),
        "codedeploy_lifecycle_state": member.get("lifecycle_state"),
        "codedeploy_tags": instance_tags,
        "ansible_host": address,
    }
