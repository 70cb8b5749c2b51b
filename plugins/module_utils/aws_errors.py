# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""botocore's exception classes, or stand-ins when botocore is missing, so that ``except ClientError``
works in code that ansible-test imports on a Python without boto3. One place for the guarded import."""

from __future__ import absolute_import, division, print_function

try:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: F401  pylint: disable=unused-import
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - the controller always has botocore with amazon.aws
    HAS_BOTO3 = False

    class ClientError(Exception):  # type: ignore[no-redef]
        """Stand-in so that ``except ClientError`` works without botocore."""

    class BotoCoreError(Exception):  # type: ignore[no-redef]
        """Stand-in so that ``except BotoCoreError`` works without botocore."""

__metaclass__ = type  # pylint: disable=invalid-name
