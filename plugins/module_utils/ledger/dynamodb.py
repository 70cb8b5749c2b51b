# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DynamoDB ledger: one table shared by every controller of a team (or AWX), on the controller only.

The table (created on first use, PAY_PER_REQUEST) has a composite primary key ``pk`` (S,
partition) + ``sk`` (S, sort) and three sparse global secondary indexes (projection ALL) that
only deployment items populate:

=====================================  ==============================  ====================================
item                                   pk / sk                         attributes
=====================================  ==============================  ====================================
schema marker                          ``META`` / ``SCHEMA``           version
deployment                             ``DEPLOYMENT#<id>`` /           every deployment field; revision,
                                       ``DEPLOYMENT``                  deployment_config, options as JSON;
                                                                       ``ov_<Status>`` overview counters;
                                                                       ``unhealthy``; ``gpk``, ``apk``,
                                                                       ``kind``, ``created`` (index keys)
instance of a deployment               ``DEPLOYMENT#<id>`` /           status, host, zone, start, end,
                                       ``INSTANCE#<instance id>``      error_code, message, out_of_service,
                                                                       position, extra (JSON), rev (version),
                                                                       events (map: event name -> JSON)
group lock (a lease)                   ``GROUP#<app>/<group>`` /       deployment_id, owner, lease_expires
                                       ``LOCK``
latest touched record of an instance   ``GROUP#<app>/<group>`` /       deployment_id, status,
in a group                             ``HISTORY#<instance id>``       revision_sha256, created
=====================================  ==============================  ====================================

Indexes (all sorted by ``created`` = ``<create time with microseconds>#<id>``, newest last):
``by_group`` (``gpk`` = ``<app>/<group>``), ``by_application`` (``apk`` = ``<app>``) and
``by_time`` (``kind`` = ``deployment``).  Application and group names are percent-encoded in
keys, so ``/`` and ``#`` in names cannot collide.

Concurrency: the group lock is a conditional put (``attribute_not_exists(pk) OR lease_expires
<= :now``); instance transitions are transactions of the instance (conditional on its version
``rev``) and the deployment's counters (``unhealthy`` and ``ov_<Status>`` with ADD), and
admission adds the condition ``unhealthy < :max``; lifecycle events are one UpdateItem that
sets map entries, so forks recording different hosts or events never overwrite each other.
"""

from __future__ import absolute_import, division, print_function

import datetime
import decimal
import json
import os
import re

try:
    import botocore.exceptions
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

from urllib.parse import quote

from ansible_collections.rollout.codedeploy.plugins.module_utils import aws as aws_access
from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as model

__metaclass__ = type  # pylint: disable=invalid-name

SCHEMA_VERSION = 1
INDEXES = {"by_group": "gpk", "by_application": "apk", "by_time": "kind"}
ATTEMPTS = 25
# Deployment fields stored as is (None: attribute absent).
DEPLOYMENT_FIELDS = (
    "deployment_id", "application", "deployment_group", "deployment_group_id", "status", "creator", "description",
    "create_time", "start_time", "complete_time", "error_code", "error_message", "revision", "deployment_config", "options",
    "rollback_deployment_id", "rollback_triggering_deployment_id", "rollback_message", "owner", "lease_expires",
    "unhealthy", "stop_requested_at", "stop_rollback", "stop_requested_by", "continue_requested_at", "continue_requested_by",
    "swap",
)
TERMINAL_CONDITION = "NOT #status IN (:t0, :t1, :t2)"
#: Error codes of a request that did nothing and may simply be sent again (throttling, a conflicting
#: transaction, a passing service fault); ConditionalCheckFailed is logic and is never among them.
TRANSIENT_CODES = frozenset((
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "TransactionConflictException",
    "TransactionInProgressException", "InternalServerError", "ServiceUnavailable"))
BUSY_HINT = ("The table %s is throttled or busy: raise its capacity (or use on-demand capacity) and look for other "
             "writers, then run the deployment again; the hosts themselves record the revision they run")
_TOKEN = re.compile(r"[#:][A-Za-z0-9_]+")


class _ConditionFailed(Exception):
    def __init__(self, item):
        super(_ConditionFailed, self).__init__("conditional check failed")
        self.item = item


class _Cancelled(Exception):
    def __init__(self, reasons):
        super(_Cancelled, self).__init__("transaction cancelled: %s" % reasons)
        self.reasons = reasons

    def failed(self, index):
        return len(self.reasons) > index and self.reasons[index] == "ConditionalCheckFailed"

    @property
    def conflict(self):
        return any(r in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded") for r in self.reasons)


def _key(pk, sk):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _deployment_key(deployment_id):
    return _key("DEPLOYMENT#" + deployment_id, "DEPLOYMENT")


def _instance_key(deployment_id, instance_id):
    return _key("DEPLOYMENT#" + deployment_id, "INSTANCE#" + instance_id)


def group_key(application, deployment_group):
    return "%s/%s" % (quote(application, safe=""), quote(deployment_group, safe=""))


def _created_stamp(deployment_id):
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "#" + deployment_id


def _to_dynamo(value):
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    if isinstance(value, dict):
        return dict((k, _to_dynamo(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value):
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return dict((k, _from_dynamo(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return [_from_dynamo(v) for v in value]
    return value


class _Expr:
    """Names (#n..) and values (:v..) of one DynamoDB expression set."""

    def __init__(self):
        self.names = {"#status": "status"}
        self.values = {}
        self._by_name = {"status": "#status"}

    def name(self, attribute):
        if attribute not in self._by_name:
            key = "#n%d" % len(self._by_name)
            self._by_name[attribute] = key
            self.names[key] = attribute
        return self._by_name[attribute]

    def value(self, value, key=None):
        key = key or ":v%d" % len(self.values)
        self.values[key] = TypeSerializer().serialize(_to_dynamo(value))
        return key

    def terminal(self):
        for index, status in enumerate(model.TERMINAL_STATUSES):
            self.value(status, ":t%d" % index)
        return TERMINAL_CONDITION

    def update(self, sets=None, adds=None, raw_sets=()):
        set_parts, remove_parts, add_parts = list(raw_sets), [], []
        for attribute, value in (sets or {}).items():
            if value is None:
                remove_parts.append(self.name(attribute))
            else:
                set_parts.append("%s = %s" % (self.name(attribute), self.value(value)))
        for attribute, amount in (adds or {}).items():
            if amount:
                add_parts.append("%s %s" % (self.name(attribute), self.value(amount)))
        clauses = []
        for word, parts in (("SET", set_parts), ("REMOVE", remove_parts), ("ADD", add_parts)):
            if parts:
                clauses.append("%s %s" % (word, ", ".join(parts)))
        return " ".join(clauses)

    def args(self, **kwargs):
        """``kwargs`` plus the names and values that its expressions use (DynamoDB refuses unused ones)."""
        used = set(_TOKEN.findall(" ".join(v for v in kwargs.values() if isinstance(v, str))))
        names = dict((k, v) for k, v in self.names.items() if k in used)
        values = dict((k, v) for k, v in self.values.items() if k in used)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = values
        return kwargs


def _plain(item):
    if not item:
        return None
    deserializer = TypeDeserializer()
    return dict((k, _from_dynamo(deserializer.deserialize(v))) for k, v in item.items())


def _item(values):
    serializer = TypeSerializer()
    return dict((k, serializer.serialize(_to_dynamo(v))) for k, v in values.items() if v is not None)


def _overview(item):
    return model.overview_from_counts(dict((s, item.get("ov_" + s, 0)) for s in model.OVERVIEW_KEYS))


class DynamoDBLedger(model.Ledger):
    """The ledger in a DynamoDB table (see the module docstring for the key schema)."""

    def __init__(self, table, aws, readonly=False, retry=None):
        if not HAS_BOTO3:
            raise model.LedgerError("a DynamoDB ledger (dynamodb://%s) needs boto3 and botocore on the controller: "
                                    "pip install boto3" % table)
        if retry is not None:
            self.retry = retry
        self.table = table
        self.location = model.DYNAMODB_SCHEME + table
        self.readonly = readonly
        self._static = {}
        self._aws = dict(aws or {})
        self._client = None
        self._pid = None
        try:
            self._prepare()
        except model.LedgerUnavailable as exc:
            raise exc.about("its schema marker", self.location) from None

    @property
    def client(self):
        """The boto3 client, made again in a forked child (a client's connections must not cross a fork)."""
        if self._client is None or self._pid != os.getpid():
            settings = dict(self._aws)
            if settings.get("verify") is not None and "validate_certs" not in settings:
                settings["validate_certs"] = bool(settings.pop("verify"))
            # Ledger writes are conditional and idempotent per attempt, so more botocore attempts are safe here.
            access = aws_access.AwsAccess(aws_access.settings_from(settings), attempts=10)
            try:
                self._client = access.client("dynamodb")
            except aws_access.AwsError as exc:
                raise model.LedgerError("cannot reach the DynamoDB ledger %s: %s" % (self.location, exc.message)) from None
            self._pid = os.getpid()
        return self._client

    def close(self):
        self._client = None

    # ------------------------------------------------------------------ plumbing
    def _call(self, operation, **kwargs):
        """One DynamoDB request; a throttled or conflicting one is repeated under the ledger's retry policy."""
        return self.retry.run(self._call_once, operation, kwargs)

    def _call_once(self, operation, kwargs):
        try:
            return getattr(self.client, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code in TRANSIENT_CODES:
                # DynamoDB's own sentence, not its error code (which reads like an exception class name).
                words = error.get("Message") or "throttled or busy"
                raise model.LedgerBusy("DynamoDB refused %s: %s" % (operation, words), BUSY_HINT % self.table) from None
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(exc.response.get("Item")) from None
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") or "None" for r in exc.response.get("CancellationReasons") or []]
                raise _Cancelled(reasons) from None
            if code == "ResourceNotFoundException" and operation != "create_table":
                raise model.LedgerMissingError("there is no DynamoDB table %s (ledger %s) in this account and region%s"
                                               % (self.table, self.location, "" if self.readonly else
                                                  "; it is created on first use: was it deleted meanwhile?")) from None
            raise model.LedgerError("DynamoDB ledger %s: %s failed: %s: %s" % (
                self.location, operation, code or "error", error.get("Message", exc))) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise model.LedgerError("DynamoDB ledger %s: %s failed: %s" % (self.location, operation, exc)) from None

    def _get(self, key, projection=None):
        kwargs = {"TableName": self.table, "Key": key, "ConsistentRead": True}
        if projection:
            expr = _Expr()
            kwargs["ProjectionExpression"] = ", ".join(expr.name(a) for a in projection)
            kwargs = expr.args(**kwargs)
        return _plain(self._call("get_item", **kwargs).get("Item"))

    def _prepare(self):
        try:
            meta = self._get(_key("META", "SCHEMA"))
        except model.LedgerMissingError:
            if self.readonly:
                raise
            self._create_table()
            meta = None
        if meta is None:
            if self.readonly:
                raise model.LedgerMissingError("the DynamoDB table %s holds no ledger (no META item)" % self.table)
            try:
                self._call("put_item", TableName=self.table, Item=_item({"pk": "META", "sk": "SCHEMA", "version": SCHEMA_VERSION}),
                           ConditionExpression="attribute_not_exists(pk)")
            except _ConditionFailed:
                pass
            meta = {"version": SCHEMA_VERSION}
        if int(meta.get("version", 0)) > SCHEMA_VERSION:
            raise model.LedgerError("the ledger %s has schema version %s, newer than this rollout.codedeploy knows (%d): "
                                    "upgrade the collection" % (self.location, meta.get("version"), SCHEMA_VERSION))

    def _create_table(self):
        attributes = [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "created") + tuple(INDEXES.values())]
        indexes = [{"IndexName": name, "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}, {"AttributeName": "created", "KeyType": "RANGE"}]}
                   for name, attribute in sorted(INDEXES.items())]
        try:
            self._call("create_table", TableName=self.table, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=attributes,
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                       GlobalSecondaryIndexes=indexes)
        except model.LedgerError as exc:
            if "ResourceInUseException" not in exc.message:  # created by another process meanwhile
                raise
        try:
            self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        except botocore.exceptions.WaiterError as exc:
            raise model.LedgerError("the DynamoDB table %s did not become ACTIVE: %s" % (self.table, exc)) from None

    def _query(self, **kwargs):
        """Every item of a query, page after page (a generator: stop early to read fewer pages)."""
        kwargs["TableName"] = self.table
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                yield _plain(item)
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transact(self, items):
        self._call("transact_write_items", TransactItems=items)

    def _update_item(self, key, expr, update, condition=None, returns=None):
        kwargs = {"TableName": self.table, "Key": key, "UpdateExpression": update}
        if condition:
            kwargs["ConditionExpression"] = condition
        if returns:
            kwargs["ReturnValues"] = returns
        return self._call("update_item", **expr.args(**kwargs))

    def _batch_write(self, requests):
        for start in range(0, len(requests), 25):
            self.retry.run(self._drain, "batch_write_item", [{self.table: requests[start:start + 25]}], "UnprocessedItems")

    def _drain(self, operation, pending, unprocessed, collect=None):
        """One batch request for ``pending[0]``; what DynamoDB left unprocessed (throttled) stays in ``pending[0]`` for the next attempt."""
        answer = self._call(operation, RequestItems=pending[0])
        if collect is not None:
            collect(answer)
        pending[0] = answer.get(unprocessed) or {}
        if pending[0]:
            left = sum(len(v.get("Keys", ())) if isinstance(v, dict) else len(v) for v in pending[0].values())
            raise model.LedgerBusy("%s left %d request(s) unprocessed (throttled)" % (operation, left), BUSY_HINT % self.table)

    def _pause(self, attempt):
        """The pause before attempt ``attempt`` + 1 of an optimistic write whose condition another writer broke (short: 10 ms doubling to 1 s)."""
        self.retry.sleep(self.retry.delay(attempt + 1, first_delay=0.01, max_delay=1.0))

    # ------------------------------------------------------------------ deployments
    def _deployment(self, deployment_id):
        item = self._get(_deployment_key(deployment_id))
        if item is None:
            raise model.LedgerError(model.missing_message(deployment_id, self.location))
        return item

    def _shape(self, item, instances=None, now=None):
        return model.shape_deployment(item, _overview(item), instances, now)

    def _summary_or_none(self, deployment_id):
        item = self._get(_deployment_key(deployment_id))
        return self._shape(item) if item else None

    def _static_info(self, deployment_id):
        """Fields of a deployment that never change (cached): group key, created, revision sha256."""
        if deployment_id not in self._static:
            item = self._get(_deployment_key(deployment_id), ("application", "deployment_group", "created", "revision"))
            if item is None:
                raise model.LedgerError(model.missing_message(deployment_id, self.location))
            self._static[deployment_id] = {
                "group": group_key(item["application"], item["deployment_group"]), "created": item["created"],
                "sha256": model.revision_sha256(model.load_json(item.get("revision")))}
        return self._static[deployment_id]

    def _lock_key(self, application, deployment_group):
        return _key("GROUP#" + group_key(application, deployment_group), "LOCK")

    def _take_lock(self, record, now):
        """Take the group lock for ``record``; return the previous lock item (or None). Raises ActiveDeploymentError."""
        lock_key = self._lock_key(record["application"], record["deployment_group"])
        lock = _item({"pk": lock_key["pk"]["S"], "sk": "LOCK", "deployment_id": record["deployment_id"],
                      "owner": record["owner"], "lease_expires": record["lease_expires"]})
        expr = _Expr()
        condition = "attribute_not_exists(pk) OR %s <= %s" % (expr.name("lease_expires"), expr.value(now))
        for _attempt in range(ATTEMPTS):
            try:
                answer = self._call("put_item", **expr.args(TableName=self.table, Item=lock, ConditionExpression=condition,
                                                            ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD"))
                return _plain(answer.get("Attributes"))
            except _ConditionFailed as failed:
                holder = _plain(failed.item) or {}
            if not holder:
                continue  # released meanwhile
            summary = self._summary_or_none(holder["deployment_id"])
            if summary is not None and not model.is_terminal(summary["status"]):
                raise model.ActiveDeploymentError(model.active_message(summary, now), summary)
            if summary is None:
                # Its controller took the lock and has not written the deployment yet (or died doing it): the lease decides.
                summary = model.shape_deployment(dict(record, deployment_id=holder["deployment_id"], owner=holder.get("owner"),
                                                      lease_expires=holder.get("lease_expires"), create_time=None),
                                                 model.empty_overview())
                raise model.ActiveDeploymentError(model.active_message(summary, now), summary)
            # The holder finished but its lock item remained (its controller died in between): take it over.
            stale = _Expr()
            try:
                self._call("put_item", **stale.args(
                    TableName=self.table, Item=lock, ReturnValues="ALL_OLD",
                    ConditionExpression="%s = %s" % (stale.name("deployment_id"), stale.value(holder["deployment_id"]))))
                return holder
            except _ConditionFailed:
                continue
        raise model.LedgerError("could not take the lock of deployment group %s in %s: too much contention"
                                % (model.group_name(record["application"], record["deployment_group"]), self.location))

    def _release_lock(self, application, deployment_group, deployment_id):
        expr = _Expr()
        try:
            self._call("delete_item", **expr.args(TableName=self.table, Key=self._lock_key(application, deployment_group),
                                                  ConditionExpression="%s = %s" % (expr.name("deployment_id"), expr.value(deployment_id))))
        except _ConditionFailed:
            pass

    def _create(self, record, instances, explicit_id, now):
        if explicit_id:
            if self._get(_deployment_key(record["deployment_id"]), ("deployment_id",)):
                raise model.LedgerError("deployment %s already exists in the ledger %s; let the ledger choose the id"
                                        % (record["deployment_id"], self.location))
        else:
            record["deployment_id"] = model.new_deployment_id()
        deployment_id = record["deployment_id"]
        previous = self._take_lock(record, now)
        orphaned = []
        if previous and previous.get("deployment_id") and previous["deployment_id"] != deployment_id:
            summary = self._summary_or_none(previous["deployment_id"])
            if summary is not None and not model.is_terminal(summary["status"]) and self._orphan(summary, deployment_id, now):
                orphaned.append(summary["deployment_id"])
        item = dict(record)
        item.update({"pk": "DEPLOYMENT#" + deployment_id, "sk": "DEPLOYMENT", "kind": "deployment",
                     "gpk": group_key(record["application"], record["deployment_group"]),
                     "apk": quote(record["application"], safe=""), "created": _created_stamp(deployment_id),
                     "ov_Pending": len(instances), "instance_count": len(instances)})
        try:
            self._call("put_item", TableName=self.table, Item=_item(item), ConditionExpression="attribute_not_exists(pk)")
        except _ConditionFailed:
            self._release_lock(record["application"], record["deployment_group"], deployment_id)
            raise model.LedgerError("deployment %s already exists in the ledger %s; try again" % (deployment_id, self.location)) from None
        self._batch_write([{"PutRequest": {"Item": _item({
            "pk": "DEPLOYMENT#" + deployment_id, "sk": "INSTANCE#" + i["instance_id"], "instance_id": i["instance_id"],
            "position": n, "host": i["host"], "zone": i["zone"], "status": "Pending", "out_of_service": False, "rev": 0,
            "extra": model.dump_json(i["extra"] or None), "events": {}})}} for n, i in enumerate(instances)])
        return self._shape(item, now=now), orphaned

    def _instances(self, deployment_id):
        expr = _Expr()
        condition = "pk = %s AND begins_with(sk, %s)" % (expr.value("DEPLOYMENT#" + deployment_id), expr.value("INSTANCE#"))
        items = list(self._query(**expr.args(KeyConditionExpression=condition, ConsistentRead=True)))
        items.sort(key=lambda i: i.get("position", 0))
        return items

    def _orphan(self, summary, new_id, now):
        """Mark an orphaned deployment Failed (and its unfinished instances); False when it finished meanwhile."""
        return self._settle_without_controller(summary, "Failed", "TIMEOUT", model.orphan_message(summary, new_id, now), now)

    def _status(self, deployment_id):
        item = self._get(_deployment_key(deployment_id), projection=("status", "error_code"))
        if item is None:
            raise model.LedgerError(model.missing_message(deployment_id, self.location))
        return item["status"], item.get("error_code")

    def _abandon(self, deployment_id, status, error_code, message, now):
        summary = self._deployment(deployment_id)
        if model.is_terminal(summary["status"]):
            return False
        if not self._settle_without_controller(summary, status, error_code, message, now):
            return False
        self._release_lock(summary["application"], summary["deployment_group"], deployment_id)
        return True

    def _settle_without_controller(self, summary, status, error_code, message, now):
        """The status and error, unfinished instances Unknown / Skipped; False when the deployment finished meanwhile."""
        deployment_id = summary["deployment_id"]
        expr = _Expr()
        start = "%s = if_not_exists(%s, %s)" % (expr.name("start_time"), expr.name("start_time"), expr.value(summary.get("create_time") or now))
        update = expr.update(sets={"status": status, "error_code": error_code, "complete_time": now, "lease_expires": None,
                                   "error_message": message}, raw_sets=[start])
        try:
            self._update_item(_deployment_key(deployment_id), expr, update, condition=expr.terminal())
        except _ConditionFailed:
            return False
        counts = {}
        for instance in self._instances(deployment_id):
            status, changes = instance["status"], None
            if status == "InProgress":
                changes = {"status": "Unknown", "end": now, "message": instance.get("message") or model.ORPHAN_INSTANCE_MESSAGE}
            elif status == "Pending":
                changes = {"status": "Skipped", "message": instance.get("message") or model.ORPHAN_SKIPPED_MESSAGE}
            if changes:
                change = _Expr()
                self._update_item(_instance_key(deployment_id, instance["instance_id"]), change,
                                  change.update(sets=changes, adds={"rev": 1}))
                status = changes["status"]
                if status == "Unknown":
                    self._put_history(deployment_id, instance["instance_id"], status)
            counts[status] = counts.get(status, 0) + 1
        expr = _Expr()
        sets = dict(("ov_" + s, counts.get(s, 0)) for s in model.OVERVIEW_KEYS)
        sets["unhealthy"] = counts.get("Failed", 0)
        self._update_item(_deployment_key(deployment_id), expr, expr.update(sets=sets))
        return True

    def _terminal_refusal(self, deployment_id, what):
        item = self._deployment(deployment_id)
        return model.LedgerError("deployment %s is already %s (%s); %s" % (
            deployment_id, item["status"], item.get("error_message") or item.get("error_code") or "no error", what))

    def _renew(self, deployment_id, owner, lease_expires, now):
        expr = _Expr()
        sets = {"lease_expires": lease_expires}
        if owner:
            sets["owner"] = owner
        try:
            item = _plain(self._update_item(_deployment_key(deployment_id), expr, expr.update(sets=sets),
                                            condition="attribute_exists(pk) AND " + expr.terminal(), returns="ALL_NEW")["Attributes"])
        except _ConditionFailed:
            raise self._terminal_refusal(deployment_id, "its lease cannot be renewed") from None
        lock = self._lock_key(item["application"], item["deployment_group"])
        expr = _Expr()
        try:
            self._call("put_item", **expr.args(
                TableName=self.table, ReturnValuesOnConditionCheckFailure="ALL_OLD",
                Item=_item({"pk": lock["pk"]["S"], "sk": "LOCK", "deployment_id": deployment_id, "owner": item.get("owner"),
                            "lease_expires": lease_expires}),
                ConditionExpression="attribute_not_exists(pk) OR %s = %s" % (expr.name("deployment_id"), expr.value(deployment_id))))
        except _ConditionFailed as failed:
            holder = (_plain(failed.item) or {}).get("deployment_id")
            raise model.LedgerError("deployment %s lost the lock of deployment group %s to %s (its lease had expired); "
                                    "stop working on it" % (deployment_id, model.group_name(item["application"], item["deployment_group"]),
                                                            holder)) from None
        return lease_expires

    def _update_status(self, deployment_id, status, error_code, error_message, now):
        for attempt in range(ATTEMPTS):
            current = self._deployment(deployment_id)
            changes = model.status_changes(current, status, error_code, error_message, now)
            if changes is None:
                return self._shape(current, now=now)
            expr = _Expr()
            update = expr.update(sets=changes)
            try:
                item = _plain(self._update_item(_deployment_key(deployment_id), expr, update, returns="ALL_NEW",
                                                condition="#status = %s" % expr.value(current["status"]))["Attributes"])
            except _ConditionFailed:
                self._pause(attempt)
                continue
            if model.is_terminal(status):
                self._release_lock(item["application"], item["deployment_group"], deployment_id)
            return self._shape(item, now=now)
        raise model.LedgerError("could not update deployment %s in %s: its status kept changing" % (deployment_id, self.location))

    def _request_stop(self, deployment_id, fields):
        expr = _Expr()
        try:
            self._update_item(_deployment_key(deployment_id), expr, expr.update(sets=fields),
                              condition="attribute_exists(pk) AND " + expr.terminal())
        except _ConditionFailed:
            raise self._terminal_refusal(deployment_id, "there is nothing to stop") from None

    def _request_continue(self, deployment_id, fields):
        expr = _Expr()
        try:
            self._update_item(_deployment_key(deployment_id), expr, expr.update(sets=fields),
                              condition="attribute_exists(pk) AND %s = %s" % (expr.name("status"), expr.value("Ready", ":ready")))
        except _ConditionFailed:
            raise model.LedgerError(model.continue_refusal(deployment_id, self._deployment(deployment_id)["status"])) from None

    def _update_swap(self, deployment_id, fields, append):
        for attempt in range(ATTEMPTS):
            current = self._deployment(deployment_id)
            old = current.get("swap")
            swap = model.merge_swap(model.load_json(old), fields, append)
            expr = _Expr()
            # Optimistic: written only when nobody changed the record since it was read.
            unchanged = ("attribute_not_exists(%s)" % expr.name("swap") if old is None
                         else "%s = %s" % (expr.name("swap"), expr.value(old, ":oldswap")))
            try:
                self._update_item(_deployment_key(deployment_id), expr, expr.update(sets={"swap": model.dump_json(swap)}),
                                  condition="attribute_exists(pk) AND " + unchanged)
            except _ConditionFailed:
                self._pause(attempt)
                continue
            return swap
        raise model.LedgerError("could not update the swap record of deployment %s in %s: too much contention" % (
            deployment_id, self.location))

    def _link(self, triggering_id, rollback_id, message):
        for deployment_id, sets in ((triggering_id, {"rollback_deployment_id": rollback_id, "rollback_message": message}),
                                    (rollback_id, {"rollback_triggering_deployment_id": triggering_id, "rollback_message": message})):
            expr = _Expr()
            self._update_item(_deployment_key(deployment_id), expr, expr.update(sets=sets))

    def get_deployment(self, deployment_id, include_instances=True):
        now = model.utc_now()
        item = self._deployment(deployment_id)
        instances = None
        if include_instances:
            instances = []
            for row in self._instances(deployment_id):
                events = [dict(json.loads(value), event=name) for name, value in (row.get("events") or {}).items()]
                events.sort(key=lambda e: (e.get("recorded") or "", e["event"]))
                for event in events:
                    event.pop("recorded", None)
                instances.append(model.shape_instance(row, events))
        return self._shape(item, instances, now)

    def _list(self, application, deployment_group, statuses, limit, now):
        expr = _Expr()
        if application and deployment_group:
            index, condition = "by_group", "gpk = %s" % expr.value(group_key(application, deployment_group))
        elif application:
            index, condition = "by_application", "apk = %s" % expr.value(quote(application, safe=""))
        else:
            index, condition = "by_time", "kind = %s" % expr.value("deployment")
        kwargs = {"IndexName": index, "KeyConditionExpression": condition, "ScanIndexForward": False}
        if statuses:
            kwargs["FilterExpression"] = "#status IN (%s)" % ", ".join(expr.value(s) for s in statuses)
        result = []
        for item in self._query(**expr.args(**kwargs)):
            result.append(self._shape(item, now=now))
            if limit and len(result) >= limit:
                break
        return result

    # ------------------------------------------------------------------ instances
    def _instance(self, deployment_id, instance_id):
        item = self._get(_instance_key(deployment_id, instance_id))
        if item is None:
            self._deployment(deployment_id)
            raise model.LedgerError("instance %s is not part of deployment %s in the ledger %s"
                                    % (instance_id, deployment_id, self.location))
        return item

    def _put_history(self, deployment_id, instance_id, status):
        static = self._static_info(deployment_id)
        expr = _Expr()
        item = {"pk": "GROUP#" + static["group"], "sk": "HISTORY#" + instance_id, "deployment_id": deployment_id,
                "status": status, "revision_sha256": static["sha256"], "created": static["created"]}
        try:
            self._call("put_item", **expr.args(TableName=self.table, Item=_item(item), ConditionExpression=(
                "attribute_not_exists(pk) OR %s <= %s" % (expr.name("created"), expr.value(static["created"])))))
        except _ConditionFailed:
            pass  # a newer deployment already touched this instance

    def _transition(self, deployment_id, instance, changes, extra, counter_condition=None, max_unhealthy=None):
        """Move one instance to ``changes["status"]`` with the deployment's counters, in one transaction."""
        old, new = instance["status"], changes["status"]
        delta = model.unhealthy_delta(old, new)
        sets = dict(changes)
        if extra:
            merged = model.load_json(instance.get("extra"), {}) or {}
            merged.update(extra)
            sets["extra"] = model.dump_json(merged)
        expr = _Expr()
        rev = expr.value(instance.get("rev", 0))
        instance_update = {"TableName": self.table, "Key": _instance_key(deployment_id, instance["instance_id"]),
                           "UpdateExpression": expr.update(sets=sets, adds={"rev": 1}),
                           "ConditionExpression": "%s = %s" % (expr.name("rev"), rev)}
        if old == new and not delta:
            self._call("update_item", **expr.args(**instance_update))
            return
        dexpr = _Expr()
        adds = {"unhealthy": delta}
        if old != new:
            adds["ov_" + old] = -1
            adds["ov_" + new] = 1
        condition = "attribute_exists(pk)"
        if counter_condition:
            condition += " AND %s < %s AND %s" % (dexpr.name("unhealthy"), dexpr.value(max_unhealthy), dexpr.terminal())
        deployment_update = {"TableName": self.table, "Key": _deployment_key(deployment_id),
                             "UpdateExpression": dexpr.update(adds=adds), "ConditionExpression": condition}
        self._transact([{"Update": dexpr.args(**deployment_update)}, {"Update": expr.args(**instance_update)}])

    def _try_start(self, deployment_id, instance_id, max_unhealthy, now):
        for attempt in range(ATTEMPTS):
            instance = self._instance(deployment_id, instance_id)
            if instance["status"] == "InProgress":
                refusal = model.start_refusal(deployment_id, instance_id, "InProgress", self._deployment(deployment_id)["status"])
                if refusal:
                    raise model.LedgerError(refusal)
                return True
            refusal = model.start_refusal(deployment_id, instance_id, instance["status"], "InProgress")
            if refusal:
                raise model.LedgerError(refusal)
            try:
                self._transition(deployment_id, instance, {"status": "InProgress", "start": now, "end": None}, None,
                                 counter_condition=True, max_unhealthy=max_unhealthy)
            except _Cancelled as cancelled:
                if cancelled.failed(0):
                    deployment = self._deployment(deployment_id)
                    refusal = model.start_refusal(deployment_id, instance_id, instance["status"], deployment["status"])
                    if refusal:
                        raise model.LedgerError(refusal) from None
                    if int(deployment.get("unhealthy", 0)) >= max_unhealthy:
                        return False
                self._pause(attempt)
                continue
            self._put_history(deployment_id, instance_id, "InProgress")
            return True
        raise model.LedgerError("could not start instance %s of deployment %s: too much contention" % (instance_id, deployment_id))

    def _change_instance(self, deployment_id, instance_id, changes, extra):
        for attempt in range(ATTEMPTS):
            instance = self._instance(deployment_id, instance_id)
            try:
                self._transition(deployment_id, instance, changes, extra)
            except (_Cancelled, _ConditionFailed):
                self._pause(attempt)
                continue
            if changes["status"] not in model.UNTOUCHED_STATUSES:
                self._put_history(deployment_id, instance_id, changes["status"])
            return
        raise model.LedgerError("could not update instance %s of deployment %s: too much contention" % (instance_id, deployment_id))

    def _record_events(self, deployment_id, instance_id, records):
        expr = _Expr()
        events = expr.name("events")
        recorded = model.utc_now()
        parts = []
        for record in records:
            value = dict((k, v) for k, v in record.items() if k != "event")
            value["recorded"] = recorded
            parts.append("%s.%s = %s" % (events, expr.name(record["event"]), expr.value(json.dumps(value, sort_keys=True))))
        try:
            self._update_item(_instance_key(deployment_id, instance_id), expr, "SET " + ", ".join(parts), condition="attribute_exists(pk)")
        except _ConditionFailed:
            self._instance(deployment_id, instance_id)
            raise

    def _instance_history(self, application, deployment_group, instance_ids):
        prefix = "GROUP#" + group_key(application, deployment_group)
        result = {}

        def collect(answer):
            for item in answer.get("Responses", {}).get(self.table, []):
                item = _plain(item)
                result[item["sk"][len("HISTORY#"):]] = {"deployment_id": item["deployment_id"], "status": item["status"],
                                                        "revision_sha256": item.get("revision_sha256")}
        for start in range(0, len(instance_ids), 100):
            pending = {self.table: {"Keys": [_key(prefix, "HISTORY#" + i) for i in instance_ids[start:start + 100]], "ConsistentRead": True}}
            self.retry.run(self._drain, "batch_get_item", [pending], "UnprocessedKeys", collect)
        return result
