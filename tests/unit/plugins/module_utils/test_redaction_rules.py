# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/redaction.py: URL credentials never stored or shown."""

import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils.redaction import (
    REDACTED, redact_revision, redact_url, sensitive_parameter)

SIGV4 = ("https://releases.s3.amazonaws.com/web/app-1.tgz?versionId=3HL4kqtJlcpXroDTDmJ%2B&X-Amz-Algorithm=AWS4-HMAC-SHA256"
         "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z"
         "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoGZXIvYXdzEJr%2F%2F"
         "&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
SIGV2 = "https://releases.s3.amazonaws.com/app.zip?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1767225600&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D"
SECRETS = ("AKIAIOSFODNN7EXAMPLE", "0123456789abcdef", "FQoGZXIvYXdzEJr", "vjbyPxybdZaNmGa", "hunter2", "ghp_abc123")


@pytest.mark.parametrize("text, expected", [
    (SIGV4, "https://releases.s3.amazonaws.com/web/app-1.tgz?versionId=3HL4kqtJlcpXroDTDmJ%2B&X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=REDACTED&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
            "&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"),
    (SIGV2, "https://releases.s3.amazonaws.com/app.zip?AWSAccessKeyId=REDACTED&Expires=1767225600&Signature=REDACTED"),
    ("https://user:hunter2@example.com/app.tgz", "https://REDACTED@example.com/app.tgz"),
    ("https://ghp_abc123@github.com/o/r.git", "https://REDACTED@github.com/o/r.git"),
    ("http://u:p@h:8080/x?a=1", "http://REDACTED@h:8080/x?a=1"),
    ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),  # a user name alone is no secret outside the web
    ("ssh://git:hunter2@github.com/o/r.git", "ssh://REDACTED@github.com/o/r.git"),
    ("https://h/x?x-amz-security-token=abc&X-AMZ-SIGNATURE=def", "https://h/x?x-amz-security-token=REDACTED&X-AMZ-SIGNATURE=REDACTED"),
    ("https://h/x?access_token=abc&id_token=def&mySignature=ghi&Credential=jkl", "https://h/x?access_token=REDACTED&id_token=REDACTED"
                                                                                 "&mySignature=REDACTED&Credential=REDACTED"),
    ("https://acct.blob.core.windows.net/c/app.zip?sv=2020&sig=abc%3D&se=2026", "https://acct.blob.core.windows.net/c/app.zip?sv=2020&sig=REDACTED&se=2026"),
    ("s3://bucket/web/app.tgz?versionId=abc", "s3://bucket/web/app.tgz?versionId=abc"),
    ("/srv/releases/app.tgz", "/srv/releases/app.tgz"),
    ("https://h/x?Signature=", "https://h/x?Signature="),
    ("https://h/x#frag?Signature=abc", "https://h/x#frag?Signature=REDACTED"),
    ("", ""),
    (None, None),
    (42, 42),
    # inside longer messages
    ("revision %s could not be downloaded: HTTP Error 403: Forbidden" % SIGV2,
     "revision https://releases.s3.amazonaws.com/app.zip?AWSAccessKeyId=REDACTED&Expires=1767225600&Signature=REDACTED could "
     "not be downloaded: HTTP Error 403: Forbidden"),
    ("fetch 'https://a:b@h/x?token=t' failed; retry \"https://h/y?Signature=s\"",
     "fetch 'https://REDACTED@h/x?token=REDACTED' failed; retry \"https://h/y?Signature=REDACTED\""),
    ("two: https://u:p@a/x and (https://v:q@b/y)", "two: https://REDACTED@a/x and (https://REDACTED@b/y)"),
    ("mail user@example.com about it", "mail user@example.com about it"),
    ("already https://REDACTED@h/x?Signature=REDACTED", "already https://REDACTED@h/x?Signature=REDACTED"),
])
def test_redact_url(text, expected):
    assert redact_url(text) == expected
    assert redact_url(expected) == expected  # idempotent
    for secret in SECRETS:
        assert secret not in str(redact_url(text))


@pytest.mark.parametrize("name, sensitive", [
    ("X-Amz-Signature", True), ("x-amz-credential", True), ("X-Amz-Security-Token", True), ("Signature", True),
    ("AWSAccessKeyId", True), ("awsaccesskeyid", True), ("sig", True), ("access_token", True), ("Password", True),
    ("versionId", False), ("X-Amz-Expires", False), ("X-Amz-Date", False), ("Expires", False), ("response-content-type", False),
])
def test_sensitive_parameter(name, sensitive):
    assert sensitive_parameter(name) is sensitive


@pytest.mark.parametrize("value, expected", [
    ({"url": SIGV2, "sha256": "ab" * 32}, {"url": redact_url(SIGV2), "sha256": "ab" * 32}),
    ({"type": "url", "url": "https://u:p@h/x.tgz", "sha256": "cd"}, {"type": "url", "url": "https://REDACTED@h/x.tgz", "sha256": "cd"}),
    ({"location": SIGV4, "source": {"type": "url", "url": SIGV4}, "env": None, "sizes": [1, 2]},
     {"location": redact_url(SIGV4), "source": {"type": "url", "url": redact_url(SIGV4)}, "env": None, "sizes": [1, 2]}),
    ({"git": {"repo": "https://ghp_abc123@github.com/o/r.git", "commit": "abc"}},
     {"git": {"repo": "https://REDACTED@github.com/o/r.git", "commit": "abc"}}),
    ({"s3": {"bucket": "b", "key": "k", "version": "v"}}, {"s3": {"bucket": "b", "key": "k", "version": "v"}}),
    ({"url": "https://h/x", "headers": {"Authorization": "Bearer hunter2"}, "password": "hunter2", "token": None},
     {"url": "https://h/x", "headers": REDACTED, "password": REDACTED, "token": None}),
    ([SIGV2, ("https://u:p@h/",)], [redact_url(SIGV2), ("https://REDACTED@h/",)]),
    (SIGV2, redact_url(SIGV2)),
    (None, None),
])
def test_redact_revision(value, expected):
    original = repr(value)
    assert redact_revision(value) == expected
    assert repr(value) == original, "the argument is not changed"
    for secret in SECRETS:
        assert secret not in repr(redact_revision(value))
