# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The AWS connection options of the collection's controller-side modules (plugin_utils/contract.py checks them)."""

    DOCUMENTATION = r"""
options:
  region:
    description: The AWS region; defaults to E(AWS_REGION).
    type: str
  endpoint_url:
    description: An alternative AWS endpoint (for example a test server); defaults to E(AWS_ENDPOINT_URL).
    type: str
  profile:
    description: The AWS profile; otherwise boto3's usual sources (E(AWS_PROFILE), keys in the environment, instance roles).
    type: str
  access_key:
    description: An AWS access key; prefer the environment or a profile.
    type: str
  secret_key:
    description: The AWS secret key that goes with O(access_key); never logged.
    type: str
  session_token:
    description: An AWS session token for temporary credentials; never logged.
    type: str
  validate_certs:
    description: Check the AWS endpoint's TLS certificate.
    type: bool
  connect_timeout:
    description:
      - Seconds to wait for a connection to an AWS endpoint before the call fails with a message naming the service
        (default 10), instead of hanging.
    type: int
  read_timeout:
    description: Seconds to wait for an AWS answer before the call fails (default 60).
    type: int
"""
