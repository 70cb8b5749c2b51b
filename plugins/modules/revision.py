#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to rollout.codedeploy
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: revision
short_description: Build a CodeDeploy revision bundle and upload it to S3
version_added: 0.1.0
description:
  - Bundles a revision directory (with C(appspec.yml) at its root) into a zip, tar or tgz archive,
    deterministically, so the same files (content, executable bit, modification time) always give the
    same sha256, whatever their owners, the umask or the directories' timestamps.
  - Refuses a directory whose AppSpec is missing or invalid, with the CodeDeploy agent's message and the
    file, line and key of the problem; by default also refuses hook scripts missing from the revision.
  - Optionally uploads the bundle to S3 with its sha256 in the object metadata (C(x-amz-meta-sha256)).
    When the object at O(bucket)/O(key) already carries the same sha256, nothing is uploaded and the
    existing version and ETag are returned, so a second identical run reports no change.
  - "Runs on the controller (C(delegate_to: localhost))."
author:
  - rollout.codedeploy maintainers (@rollout)
requirements:
  - boto3 and botocore (for the upload)
  - PyYAML
attributes:
  check_mode:
    support: full
    details:
      - The bundle is built in a temporary directory to compute its sha256; nothing is written to O(dest) or S3.
  diff_mode:
    support: full
    details:
      - The diff shows the sha256 of the local bundle and of the S3 object before and after.
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - The revision directory to bundle. It must hold C(appspec.yml) (or C(appspec.yaml)) at its root.
    type: path
    required: true
  dest:
    description:
      - Where to write the bundle on the controller.
      - A directory (an existing one, or a path ending in C(/)) gets the bundle as C(<sha256>.<bundle_type>),
        so the default is a content-addressed cache.
      - An existing file with the same sha256 is left alone.
    type: path
    default: ~/.ansible/codedeploy/bundles/
  bundle_type:
    description:
      - The archive format. C(tgz) is a gzip-compressed tar.
      - Defaults to the type the name of O(dest) or O(key) suggests (C(.zip), C(.tar), C(.tgz) or C(.tar.gz)),
        else C(tgz).
    type: str
    choices: [zip, tar, tgz]
  bucket:
    description:
      - The S3 bucket to upload the bundle to. Requires O(key).
      - Use a versioned bucket, so each upload gets a version that deployments can pin.
    type: str
  key:
    description:
      - The S3 object key of the bundle. Requires O(bucket).
    type: str
  exclude:
    description:
      - Glob patterns of paths to leave out of the bundle, matched against each path relative to O(path)
        (for example C(logs/*.log)) and against each file or directory name (for example C(.git)).
        An excluded directory takes its contents with it.
    type: list
    elements: str
    default: []
  validate_scripts:
    description:
      - Fail when a hook script of the AppSpec is missing from the revision or resolves outside it.
    type: bool
    default: true
notes:
  - Entries are sorted by path, with owner C(root:root) (uid and gid 0), mode C(0755) for directories and
    executable files and C(0644) for other files; symlinks are kept when they stay inside the revision, and
    refused otherwise (as unpacking would refuse them). Special files are refused.
  - Regular files keep their modification time (whole seconds), which the hosts get back when they unpack the
    bundle, as with the CodeDeploy agent; directories and symlinks get the fixed time 1980-01-01T00:00:00Z. The
    sha256 therefore changes when a file's content, executable bit or modification time changes, not with the
    owners, the umask or the directories' times.
  - The bundle written to O(dest) is not part of the bundle when O(dest) lies inside O(path).
  - The upload needs C(s3:GetObject) (to compare the sha256; with C(s3:ListBucket) too, S3 answers 404 rather than
    403 for a key that does not exist yet) and C(s3:PutObject).
seealso:
  - module: rollout.codedeploy.appspec_info
  - module: amazon.aws.s3_object
extends_documentation_fragment:
  - rollout.codedeploy.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Build the revision and upload it to a versioned bucket
  rollout.codedeploy.revision:
    path: "{{ playbook_dir }}/app"
    bucket: my-releases
    key: web/web-{{ app_version }}.tgz
    exclude:
      - .git
      - "*.pyc"
  delegate_to: localhost
  run_once: true
  register: built

- name: Deploy exactly that version
  ansible.builtin.debug:
    msg: "deploy with -e revision={{ built.location }}"

- name: Only build a zip bundle on the controller
  rollout.codedeploy.revision:
    path: "{{ playbook_dir }}/app"
    dest: "{{ playbook_dir }}/build/app.zip"
  delegate_to: localhost

- name: Upload to a local S3-compatible endpoint
  rollout.codedeploy.revision:
    path: "{{ playbook_dir }}/app"
    bucket: releases
    key: app.tgz
    endpoint_url: http://127.0.0.1:5000
    region: us-east-1
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The local bundle (in check mode, where it would be written).
  returned: always
  type: str
  sample: /home/deploy/.ansible/codedeploy/bundles/9bc3e5908d083e96d393fbc61f11f74c190093ddf61e3a005b618ce143a657ce.tgz
sha256:
  description: The sha256 of the bundle.
  returned: always
  type: str
  sample: 9bc3e5908d083e96d393fbc61f11f74c190093ddf61e3a005b618ce143a657ce
bundle_type:
  description: The bundle's type.
  returned: always
  type: str
  sample: tgz
size:
  description: The bundle's size in bytes.
  returned: always
  type: int
  sample: 5653
bucket:
  description: The S3 bucket; null without O(bucket).
  returned: always
  type: str
  sample: my-releases
key:
  description: The S3 key; null without O(bucket).
  returned: always
  type: str
  sample: web/web-1.4.2.tgz
version:
  description:
    - The S3 object version holding this bundle (null for an unversioned bucket, without O(bucket), or in
      check mode when an upload is needed).
  returned: always
  type: str
  sample: 3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo
etag:
  description: The S3 object's ETag, without quotes (null when there is no object yet).
  returned: always
  type: str
  sample: 5d41402abc4b2a76b9719d911017c592
location:
  description:
    - Where the revision is, in the form the deploy playbook's C(revision) extra var takes
      (C(s3://bucket/key?versionId=...), or the local bundle path without O(bucket)).
  returned: always
  type: str
  sample: s3://my-releases/web/web-1.4.2.tgz?versionId=3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo
uploaded:
  description: Whether the bundle was (or, in check mode, would be) uploaded.
  returned: always
  type: bool
entries:
  description: The number of files, directories and symlinks in the bundle.
  returned: always
  type: int
  sample: 16
"""

import os
import shutil
import tempfile

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from urllib.parse import quote

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.rollout.codedeploy.plugins.module_utils import appspec as spec
from ansible_collections.rollout.codedeploy.plugins.module_utils import bundle
from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import redact_url

CONTENT_TYPES = {"zip": "application/zip", "tar": "application/x-tar", "tgz": "application/gzip"}
METADATA_KEY = "sha256"
DEFAULT_CACHE = "~/.ansible/codedeploy/bundles/"


def validate_revision(module, path, validate_scripts):
    """Fail the module unless ``path`` is a revision directory with a valid AppSpec."""
    if not os.path.isdir(path):
        module.fail_json(msg="%s is not a directory: give the revision directory that holds appspec.yml." % path)
    try:
        parsed, warnings = spec.load_appspec_file(path)
    except spec.AppSpecError as exc:
        module.fail_json(msg=exc.message, key=exc.key, line=exc.line)
    for warning in warnings:
        module.warn(warning)
    if validate_scripts:
        problems = spec.script_path_problems(parsed, path)
        if problems:
            module.fail_json(msg="The revision %s has %d hook script problem(s): %s" % (
                path, len(problems), " ".join(p["message"] for p in problems)), script_problems=problems)


def s3_state(module, client, bucket, key):
    """``(sha256, version, etag)`` of the current object at bucket/key, or Nones when there is none."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, aws_retry=True)
    except is_boto3_error_code(["404", "NoSuchKey", "NotFound"]):
        return None, None, None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="Cannot read s3://%s/%s to compare its sha256" % (bucket, key))
    return (head.get("Metadata") or {}).get(METADATA_KEY), _version(head.get("VersionId")), _etag(head.get("ETag"))


def upload(module, client, source, bucket, key, digest, bundle_type):
    try:
        with open(source, "rb") as body:
            response = client.put_object(Bucket=bucket, Key=key, Body=body, Metadata={METADATA_KEY: digest},
                                         ContentType=CONTENT_TYPES[bundle_type], aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to upload the bundle %s to s3://%s/%s" % (source, bucket, key))
    return _version(response.get("VersionId")), _etag(response.get("ETag"))


def _version(value):
    return None if value in (None, "", "null") else value


def _etag(value):
    return value.strip('"') if value else None


def location(bucket, key, version):
    url = "s3://%s/%s" % (bucket, key)
    if version:
        url += "?versionId=" + quote(version, safe="")
    return redact_url(url)


def main():
    argument_spec = dict(
        path=dict(type="path", required=True),
        dest=dict(type="path", default=DEFAULT_CACHE),
        bundle_type=dict(type="str", choices=list(bundle.BUNDLE_TYPES)),
        bucket=dict(type="str"),
        key=dict(type="str", no_log=False),
        exclude=dict(type="list", elements="str", default=[]),
        validate_scripts=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True, required_together=[["bucket", "key"]])
    params = module.params
    source_dir = os.path.abspath(params["path"])
    bucket, key = params["bucket"], params["key"]
    if not spec.HAS_YAML:
        module.fail_json(msg="The Python library PyYAML is required on the controller to read the AppSpec.")
    validate_revision(module, source_dir, params["validate_scripts"])

    bundle_type = (params["bundle_type"] or bundle.type_from_name(params["dest"]) or bundle.type_from_name(key) or "tgz")
    work = tempfile.mkdtemp(prefix="revision.", dir=getattr(module, "tmpdir", None))
    try:
        built = os.path.join(work, "bundle." + bundle_type)
        try:
            info = bundle.create(source_dir, built, bundle_type, exclude=params["exclude"])
            bundle.read_appspec(built)  # the AppSpec (and the bundle) survived the excludes
        except bundle.BundleError as exc:
            module.fail_json(msg=exc.message, entry=exc.entry)
        digest = info["sha256"]
        dest = params["dest"]
        if dest.endswith("/") or os.path.isdir(dest):
            dest = os.path.join(dest, "%s.%s" % (digest, bundle_type))
        dest = os.path.abspath(dest)
        before_local = bundle.sha256_file(dest) if os.path.isfile(dest) else None
        local_changed = before_local != digest
        if local_changed and not module.check_mode:
            parent = os.path.dirname(dest)
            if not os.path.isdir(parent):
                os.makedirs(parent)
            module.atomic_move(built, dest)

        result = dict(path=dest, sha256=digest, bundle_type=bundle_type, size=info["size"], entries=info["entries"],
                      bucket=bucket, key=key, version=None, etag=None, location=redact_url(dest), uploaded=False)
        before_s3 = None
        if bucket:
            client = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
            before_s3, version, etag = s3_state(module, client, bucket, key)
            if before_s3 != digest:
                result["uploaded"] = True
                version = etag = None
                if not module.check_mode:
                    source = built if os.path.exists(built) else dest  # built was moved to dest when dest changed
                    version, etag = upload(module, client, source, bucket, key, digest, bundle_type)
            result.update(version=version, etag=etag, location=location(bucket, key, version))
        result["changed"] = local_changed or result["uploaded"]
        if module._diff:
            result["diff"] = dict(before=dict(path=dest, sha256=before_local), after=dict(path=dest, sha256=digest))
            if bucket:
                result["diff"]["before"]["s3_sha256"] = before_s3
                result["diff"]["after"]["s3_sha256"] = digest
    finally:
        shutil.rmtree(work, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
