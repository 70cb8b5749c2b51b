# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way controller code reaches AWS (load balancers, alarms, notifications, S3, the DynamoDB
ledger): a session built from the usual amazon.aws settings, clients with connect/read timeouts and
amazon.aws's jittered backoff on throttling, and one function that words a botocore error.

Controller-only: never imported by host-side code. See docs/design.md ("Rooms")."""

from __future__ import annotations

import os

from ansible_collections.rollout.codedeploy.plugins.module_utils.aws_errors import BotoCoreError, ClientError

try:
    import botocore.config
    import botocore.exceptions
    from ansible_collections.amazon.aws.plugins.module_utils.botocore import boto3_inventory_conn
    from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - amazon.aws and boto3 are requirements on the controller
    HAS_BOTO3 = False

DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_TIMEOUT = 60
# botocore's own attempts per call (network errors, 5xx); throttling gets amazon.aws's backoff on top.
DEFAULT_ATTEMPTS = 2
SETTINGS = ("region", "endpoint_url", "profile", "access_key", "secret_key", "session_token", "validate_certs",
            "connect_timeout", "read_timeout")
SECRET_SETTINGS = ("access_key", "secret_key", "session_token")
_NEVER_RETRIED = ("get_paginator", "can_paginate", "get_waiter", "generate_presigned_url", "close")


class AwsError(Exception):
    """An AWS call or connection that failed; ``message`` says which, why and what to check."""

    def __init__(self, message, code="AWS_ERROR"):
        super(AwsError, self).__init__(message)
        self.message = message
        self.code = code


def error_text(exc):
    """A botocore error as ``Code: message`` (or the error's own words), never a class name alone."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    if error.get("Code") or error.get("Message"):
        return "%s: %s" % (error.get("Code") or "Error", error.get("Message") or "")
    text = str(exc).strip()
    if HAS_BOTO3 and isinstance(exc, (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)):
        return "no answer in time (%s)" % text
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return "cannot connect (%s)" % text
    if HAS_BOTO3 and isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)"
    return text or "an AWS error with no message"


def is_aws_error(exc):
    return isinstance(exc, (ClientError, BotoCoreError))


def settings_from(values, environ=None):
    """The AWS settings from a mapping (task arguments or variables), falling back to amazon.aws's environment names."""
    environ = os.environ if environ is None else environ
    values = values or {}
    result = {key: values.get(key) for key in SETTINGS if values.get(key) not in (None, "")}
    if "region" not in result:
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if region:
            result["region"] = region
    if "endpoint_url" not in result and environ.get("AWS_ENDPOINT_URL"):
        result["endpoint_url"] = environ["AWS_ENDPOINT_URL"]
    return result


def public_settings(settings):
    """The settings without secrets: what may travel in a plan or a ledger record."""
    return {key: value for key, value in (settings or {}).items() if key not in SECRET_SETTINGS}


class _RetryingClient(object):
    """A boto3 client whose calls all get amazon.aws's jittered backoff on throttling errors."""

    def __init__(self, client, retry):
        self._client = client
        self._retry = retry

    def __getattr__(self, name):
        value = getattr(self._client, name)
        if callable(value) and name not in _NEVER_RETRIED and not name.startswith("_"):
            value = self._retry(value)
            setattr(self, name, value)
        return value


class AwsAccess(object):
    """Clients for one deployment's AWS settings, made once per process (a client must not cross a fork)."""

    def __init__(self, settings=None, attempts=DEFAULT_ATTEMPTS):
        self.settings = dict(settings or {})
        self.attempts = attempts
        self._clients = {}
        self._pid = os.getpid()

    @property
    def region(self):
        return self.settings.get("region") or "us-east-1"

    def _config(self):
        return botocore.config.Config(
            connect_timeout=int(self.settings.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            read_timeout=int(self.settings.get("read_timeout") or DEFAULT_READ_TIMEOUT),
            retries={"mode": "standard", "max_attempts": self.attempts})

    def client(self, service):
        """A client for ``service`` (retrying on throttling); AwsError when it cannot be made."""
        if not HAS_BOTO3:
            raise AwsError("boto3 and botocore are needed on the controller for AWS features: pip install boto3", "MISSING_LIBRARY")
        if self._pid != os.getpid():
            self._clients, self._pid = {}, os.getpid()
        if service not in self._clients:
            settings = self.settings
            params = {"config": self._config()}
            if settings.get("profile"):
                params["profile_name"] = settings["profile"]
            else:
                for ours, theirs in (("access_key", "aws_access_key_id"), ("secret_key", "aws_secret_access_key"),
                                     ("session_token", "aws_session_token")):
                    if settings.get(ours):
                        params[theirs] = settings[ours]
            if settings.get("validate_certs") is False:
                params["verify"] = False
            try:
                client = boto3_inventory_conn("client", service, region=self.region, endpoint=settings.get("endpoint_url"), **params)
            except (ValueError, BotoCoreError) as exc:
                raise AwsError("cannot make an AWS %s client for region %s%s: %s. Check the region, the profile and the credentials."
                               % (service, self.region, " at %s" % settings["endpoint_url"] if settings.get("endpoint_url") else "",
                                  error_text(exc)), "AWS_CONNECTION")
            self._clients[service] = _RetryingClient(client, AWSRetry.jittered_backoff(retries=5, delay=1, max_delay=15))
        return self._clients[service]

    def account_id(self):
        """The account of the credentials (trigger messages name it); 000000000000 when STS cannot tell."""
        try:
            return self.client("sts").get_caller_identity()["Account"]
        except Exception:  # pylint: disable=broad-except  # the account id only decorates messages
            return "000000000000"


def terminate_instances(access, instance_ids):
    """Terminate EC2 instances (a blue/green deployment's original fleet with TERMINATE); returns ``{instance id: state}``.
    AwsError names the instances and the EC2 error."""
    ids = list(instance_ids or ())
    if not ids:
        return {}
    try:
        answer = access.client("ec2").terminate_instances(InstanceIds=ids)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError("EC2 could not terminate %s: %s. Check that the instances exist and that the controller's credentials allow "
                       "ec2:TerminateInstances; terminate them by hand once fixed." % (", ".join(ids), error_text(exc)), "TERMINATE_FAILED")
    return {change["InstanceId"]: (change.get("CurrentState") or {}).get("Name") for change in answer.get("TerminatingInstances") or []}
