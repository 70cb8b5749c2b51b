# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Constants shared by the host-side engine, the controller and the ledger, each defined once.
Pure and standard-library only (shipped to hosts). See docs/design.md ("Rooms")."""

from __future__ import annotations

#: EC2/on-premises lifecycle events, in the order they run (BlockTraffic and AllowTraffic are the controller's).
LIFECYCLE_ORDER = (
    "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall",
    "Install", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AllowTraffic",
    "AfterAllowTraffic",
)
TRAFFIC_EVENTS = ("BlockTraffic", "AllowTraffic")
#: The events an in-place deployment runs on a host between leaving and rejoining its load balancers.
HOST_INSTALL_EVENTS = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
                       "ValidateService")
#: Deployment statuses after which nothing changes.
TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")
#: How long a deployment holds its group without a sign of life from its controller.
DEFAULT_LEASE_SECONDS = 300
#: The CodeDeploy agent's deployment root.
DEFAULT_DEPLOYMENT_ROOT = "/opt/codedeploy-agent/deployment-root"
DEFAULT_MAX_REVISIONS = 5
