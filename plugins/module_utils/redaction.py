# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials out of everything a revision location is written into: the ledger, messages, events, outputs.

A revision given as a URL may carry what grants access to it: the query of a presigned S3 URL
(``X-Amz-Signature``, ``X-Amz-Credential`` with the access key id, ``X-Amz-Security-Token``, or the
older ``AWSAccessKeyId`` and ``Signature``), a SAS or token parameter, or ``user:password@`` in
front of the host.  These functions replace such values with ``REDACTED``, in a bare URL or in any
text that holds URLs (an error message, a log line), and leave everything else as it was, so that
the location still says which object or host was meant.

Pure functions, standard library only: used on the controller and on the hosts.
"""

from __future__ import absolute_import, division, print_function

import re

__metaclass__ = type  # pylint: disable=invalid-name

REDACTED = "REDACTED"

#: Query parameter names whose values are always credentials (compared lower-cased).
SENSITIVE_PARAMETERS = frozenset((
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "awsaccesskeyid",
    "x-goog-signature", "x-goog-credential", "sig", "password", "passwd", "pwd", "secret",
    "access_key", "secret_key", "api_key", "apikey", "client_secret", "code",
))
#: A query parameter whose lower-cased name contains one of these words is a credential too.
SENSITIVE_WORDS = ("token", "signature", "credential", "secret", "password", "accesskey", "access_key", "apikey", "api_key")

#: Mapping keys whose values are credentials wherever they appear in a revision's source mapping.
SENSITIVE_KEYS = frozenset(("password", "secret", "secret_key", "access_key", "session_token", "token", "aws_secret_access_key",
                            "aws_access_key_id", "aws_session_token", "headers", "url_password", "client_secret"))

# name=value in a query string: after ?, & or ; up to the next separator, quote, backslash (an escaped quote in
# JSON text), space or fragment.
_PARAMETER = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#?\s'\"<>\\]+)=(?P<value>[^&;#\s'\"<>\\]*)")
# scheme://userinfo@ : the userinfo holds no '/', '@' or white space.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"<>?#]+)@")
_WEB_SCHEMES = ("http://", "https://", "ftp://", "ftps://", "s3://")


def sensitive_parameter(name):
    """True when a URL query parameter called ``name`` carries a credential (case does not matter)."""
    lowered = str(name).strip().lower()
    if lowered in SENSITIVE_PARAMETERS:
        return True
    return any(word in lowered for word in SENSITIVE_WORDS)


def _parameter(match):
    if not sensitive_parameter(match.group("name")) or not match.group("value"):
        return match.group(0)
    return "%s%s=%s" % (match.group("lead"), match.group("name"), REDACTED)


def _userinfo(match):
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    if userinfo == REDACTED:
        return match.group(0)
    # In web URLs any user part may be a token (https://<token>@host); elsewhere (ssh://git@host) only a password is secret.
    if scheme.lower() in _WEB_SCHEMES or ":" in userinfo:
        return "%s%s@" % (scheme, REDACTED)
    return match.group(0)


def redact_url(text):
    """``text`` (a URL, or any message holding URLs) with query credentials and userinfo replaced by REDACTED.

    ``https://b.s3.amazonaws.com/k?X-Amz-Signature=ab12&versionId=3`` becomes
    ``https://b.s3.amazonaws.com/k?X-Amz-Signature=REDACTED&versionId=3`` and
    ``https://user:pass@host/x`` becomes ``https://REDACTED@host/x``.  None stays None; other
    values that are not strings are returned unchanged.
    """
    if not isinstance(text, str) or not text:
        return text
    if "=" in text:
        text = _PARAMETER.sub(_parameter, text)
    if "@" in text:
        text = _USERINFO.sub(_userinfo, text)
    return text


def redact_value(value):
    """A copy of ``value`` (strings, mappings, lists, nested) with every string passed through ``redact_url``
    and the values of credential keys (``password``, ``session_token``, ...) replaced by REDACTED."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SENSITIVE_KEYS and item not in (None, ""):
                result[key] = REDACTED
            else:
                result[key] = redact_value(item)
        return result
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


def redact_revision(revision):
    """A revision as it may be stored or shown: a location string, or a source/record mapping
    (``{"url": ..., "sha256": ...}``, ``{"location": ..., "source": {...}}``), redacted throughout."""
    return redact_value(revision)
