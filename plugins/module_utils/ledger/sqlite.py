# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQLite ledger: one file on the controller, shared by Ansible's forks.

Concurrency: WAL journal (readers never block the writer), a 30 s busy timeout, and every
read-modify-write in one short ``BEGIN IMMEDIATE`` transaction (the group lock, admission,
instance transitions), so forks writing at once serialize on SQLite's write lock instead of
losing updates.  Each write method is one transaction, and so one attempt of the ledger's
``RetryPolicy``: when the busy timeout runs out ("database is locked") the transaction was rolled
back whole, and the policy runs it again until its bound (``WRITE_RETRY_SECONDS``).  A connection opened before a fork is
never reused in the child: the ledger reconnects when the process id changes.
``synchronous=NORMAL``: a committed write survives a killed process (not a power cut).

Schema (version ``SCHEMA_VERSION`` in table ``meta``; later versions add ``MIGRATIONS``):

* ``deployments``: one row per deployment; ``seq`` (autoincrement) orders them; the lock
  lease is ``lease_expires`` on the row; ``unhealthy`` is the admission counter.
* ``instances``: (deployment_id, instance_id) -> status, times, error, ``position`` (input order).
* ``events``: (deployment_id, instance_id, event) -> status, times, duration, error, log tail.

The overview is counted from ``instances`` when read, so it is always exact.
"""

from __future__ import absolute_import, division, print_function

import contextlib
import os
import sqlite3

from ansible_collections.rollout.codedeploy.plugins.module_utils import ledger as model

__metaclass__ = type  # pylint: disable=invalid-name

SCHEMA_VERSION = 3
BUSY_TIMEOUT = 30.0
CHUNK = 500

DEPLOYMENT_COLUMNS = (
    "deployment_id", "application", "deployment_group", "deployment_group_id", "status", "creator", "description",
    "create_time", "start_time", "complete_time", "error_code", "error_message", "revision", "deployment_config", "options",
    "rollback_deployment_id", "rollback_triggering_deployment_id", "rollback_message", "owner", "lease_expires",
    "unhealthy", "stop_requested_at", "stop_rollback", "stop_requested_by", "continue_requested_at", "continue_requested_by",
    "swap",
)
# Public instance field -> column.
INSTANCE_COLUMNS = {"status": "status", "host": "host", "zone": "zone", "start": "start_time", "end": "end_time",
                    "error_code": "error_code", "message": "message", "out_of_service": "out_of_service"}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS deployments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id TEXT NOT NULL UNIQUE,
        application TEXT NOT NULL,
        deployment_group TEXT NOT NULL,
        deployment_group_id TEXT,
        status TEXT NOT NULL,
        creator TEXT NOT NULL,
        description TEXT,
        create_time TEXT NOT NULL,
        start_time TEXT,
        complete_time TEXT,
        error_code TEXT,
        error_message TEXT,
        revision TEXT,
        deployment_config TEXT,
        options TEXT,
        rollback_deployment_id TEXT,
        rollback_triggering_deployment_id TEXT,
        rollback_message TEXT,
        owner TEXT,
        lease_expires TEXT,
        unhealthy INTEGER NOT NULL DEFAULT 0,
        stop_requested_at TEXT,
        stop_rollback INTEGER,
        stop_requested_by TEXT,
        continue_requested_at TEXT,
        continue_requested_by TEXT,
        swap TEXT)""",
    "CREATE INDEX IF NOT EXISTS deployments_by_group ON deployments (application, deployment_group, status)",
    "CREATE INDEX IF NOT EXISTS deployments_by_status ON deployments (status)",
    """CREATE TABLE IF NOT EXISTS instances (
        deployment_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        host TEXT,
        zone TEXT,
        status TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        error_code TEXT,
        message TEXT,
        out_of_service INTEGER NOT NULL DEFAULT 0,
        extra TEXT,
        PRIMARY KEY (deployment_id, instance_id))""",
    "CREATE INDEX IF NOT EXISTS instances_by_instance ON instances (instance_id)",
    """CREATE TABLE IF NOT EXISTS events (
        deployment_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        event TEXT NOT NULL,
        status TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        duration REAL,
        error_code TEXT,
        message TEXT,
        log_tail TEXT,
        PRIMARY KEY (deployment_id, instance_id, event))""",
)

#: schema version -> statements that bring the previous version to it.
MIGRATIONS = {
    # 2: continue requests for blue/green deployments that wait in status Ready.
    2: ("ALTER TABLE deployments ADD COLUMN continue_requested_at TEXT",
        "ALTER TABLE deployments ADD COLUMN continue_requested_by TEXT"),
    # 3: the swap record of blue/green deployments (JSON).
    3: ("ALTER TABLE deployments ADD COLUMN swap TEXT",),
}

_TERMINAL = "(%s)" % ", ".join("'%s'" % s for s in model.TERMINAL_STATUSES)


def is_busy(exc):
    """True for SQLite's transient errors: the file (or a table) locked by another connection, or busy."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _placeholders(count):
    return ", ".join("?" * count)


class SQLiteLedger(model.Ledger):
    """The ledger in a SQLite file (see the module docstring)."""

    def __init__(self, path, readonly=False, timeout=BUSY_TIMEOUT, retry=None):
        if retry is not None:
            self.retry = retry
        self.path = path
        self.location = path
        self.readonly = readonly
        self.timeout = timeout
        self._conn = None
        self._pid = None
        if readonly:
            if not os.path.isfile(path):
                raise model.LedgerMissingError("there is no ledger at %s: no deployment was recorded there yet "
                                               "(is codedeploy_ledger the location the deployments used?)" % path)
        else:
            self._create_file()
        try:
            self.retry.run(self._prepare)
        except model.LedgerUnavailable as exc:
            raise exc.about("its schema", self.location) from None

    # ------------------------------------------------------------------ connection
    def _create_file(self):
        directory = os.path.dirname(self.path)
        try:
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700, exist_ok=True)
            if not os.path.exists(self.path):
                # Log tails may hold secrets: the file is the user's only.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise model.LedgerError("cannot create the ledger %s: %s; choose another location with "
                                    "codedeploy_ledger" % (self.path, exc.strerror or exc)) from None

    def _db(self):
        if self._conn is None or self._pid != os.getpid():
            # After a fork the parent's connection must not be used (nor closed) by the child.
            try:
                conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                # connect(timeout=...) already sets SQLite's busy timeout; synchronous is per connection.
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise model.LedgerError("cannot open the ledger %s: %s" % (self.path, exc)) from None
            self._conn = conn
            self._pid = os.getpid()
        return self._conn

    def close(self):
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def _fail(self, exc):
        """The LedgerError for a sqlite3 error: LedgerBusy (retried by the policy) when the file was locked or busy."""
        if is_busy(exc):
            return model.LedgerBusy(
                "%s (another process held the ledger's write lock for more than %g s)" % (exc, self.timeout),
                "Another process keeps the file %s locked: find it (fuser %s) and let it finish or end it, then run the "
                "deployment again; the hosts themselves record the revision they run" % (self.path, self.path), self.path)
        return model.LedgerError("ledger %s: %s" % (self.path, exc))

    @contextlib.contextmanager
    def _write(self):
        """One short write transaction, taking SQLite's write lock at once (BEGIN IMMEDIATE)."""
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        try:
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(db)
            raise self._fail(exc) from None
        except BaseException:
            self._rollback(db)
            raise

    @contextlib.contextmanager
    def _read(self):
        """A consistent snapshot for several SELECTs."""
        db = self._db()
        try:
            db.execute("BEGIN")
            try:
                yield db
            finally:
                self._rollback(db)
        except sqlite3.Error as exc:
            raise self._fail(exc) from None

    @staticmethod
    def _rollback(db):
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _prepare(self):
        """Check the schema version, creating or migrating the schema when needed.

        Every fork opens the ledger again, so the common case costs one query: a ledger whose schema
        is current was switched to WAL when its schema was written (the journal mode is stored in
        the file), so neither the journal mode nor the schema is touched again.
        """
        db = self._db()
        try:
            version = self._schema_version(db)
            if version != SCHEMA_VERSION and not self.readonly:
                mode = db.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise self._fail(exc) from None
        if version == SCHEMA_VERSION:
            return
        if version is not None and version > SCHEMA_VERSION:
            raise model.LedgerError("the ledger %s has schema version %d, newer than this rollout.codedeploy knows (%d): "
                                    "upgrade the collection" % (self.path, version, SCHEMA_VERSION))
        if self.readonly:
            if version is None:
                raise model.LedgerMissingError("there is no ledger at %s: the file holds no ledger tables" % self.path)
            return
        with self._write() as db:
            version = self._schema_version(db)
            if version is None:
                for statement in SCHEMA:
                    db.execute(statement)
                db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS.get(target, ()):
                    db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    @staticmethod
    def _schema_version(db):
        """The schema version recorded in ``meta``, or None for a file without ledger tables (one query)."""
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return int(row[0]) if row else None

    # ------------------------------------------------------------------ helpers
    def _row(self, db, deployment_id):
        row = db.execute("SELECT * FROM deployments WHERE deployment_id = ?", (deployment_id,)).fetchone()
        if row is None:
            raise model.LedgerError(model.missing_message(deployment_id, self.location))
        return dict(row)

    @staticmethod
    def _overviews(db, deployment_ids):
        result = dict((i, model.empty_overview()) for i in deployment_ids)
        ids = list(deployment_ids)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            query = ("SELECT deployment_id, status, COUNT(*) FROM instances WHERE deployment_id IN (%s) "
                     "GROUP BY deployment_id, status" % _placeholders(len(chunk)))
            for deployment_id, status, count in db.execute(query, chunk):
                if status in result[deployment_id]:
                    result[deployment_id][status] = count
        return result

    def _summary(self, db, deployment_id):
        row = self._row(db, deployment_id)
        return model.shape_deployment(row, self._overviews(db, [deployment_id])[deployment_id])

    @staticmethod
    def _update(db, table, where, changes):
        columns = list(changes)
        sql = "UPDATE %s SET %s WHERE %s" % (table, ", ".join("%s = ?" % c for c in columns), where[0])
        return db.execute(sql, [changes[c] for c in columns] + list(where[1])).rowcount

    def _instance(self, db, deployment_id, instance_id):
        row = db.execute("SELECT status, extra FROM instances WHERE deployment_id = ? AND instance_id = ?",
                         (deployment_id, instance_id)).fetchone()
        if row is None:
            self._row(db, deployment_id)
            raise model.LedgerError("instance %s is not part of deployment %s in the ledger %s"
                                    % (instance_id, deployment_id, self.location))
        return row

    # ------------------------------------------------------------------ deployments
    def _create(self, record, instances, explicit_id, now):
        orphaned = []
        with self._write() as db:
            active = db.execute("SELECT deployment_id FROM deployments WHERE application = ? AND deployment_group = ? "
                                "AND status NOT IN %s ORDER BY seq" % _TERMINAL,
                                (record["application"], record["deployment_group"])).fetchall()
            stale = []
            for (other,) in active:
                summary = self._summary(db, other)
                if not model.lease_expired(summary["lease_expires"], now):
                    raise model.ActiveDeploymentError(model.active_message(summary, now), summary)
                stale.append(summary)
            if record["deployment_id"] is None:
                record["deployment_id"] = self._free_id(db)
            elif db.execute("SELECT 1 FROM deployments WHERE deployment_id = ?", (record["deployment_id"],)).fetchone():
                raise model.LedgerError("deployment %s already exists in the ledger %s; let the ledger choose the id"
                                        % (record["deployment_id"], self.location))
            for summary in stale:
                self._orphan(db, summary, record["deployment_id"], now)
                orphaned.append(summary["deployment_id"])
            columns = list(DEPLOYMENT_COLUMNS)
            db.execute("INSERT INTO deployments (%s) VALUES (%s)" % (", ".join(columns), _placeholders(len(columns))),
                       [record[c] for c in columns])
            db.executemany(
                "INSERT INTO instances (deployment_id, instance_id, position, host, zone, status, extra) VALUES (?, ?, ?, ?, ?, 'Pending', ?)",
                [(record["deployment_id"], i["instance_id"], n, i["host"], i["zone"], model.dump_json(i["extra"] or None))
                 for n, i in enumerate(instances)])
            summary = self._summary(db, record["deployment_id"])
        return summary, orphaned

    @staticmethod
    def _free_id(db):
        while True:
            candidate = model.new_deployment_id()
            if not db.execute("SELECT 1 FROM deployments WHERE deployment_id = ?", (candidate,)).fetchone():
                return candidate

    @staticmethod
    def _orphan(db, summary, new_id, now):
        SQLiteLedger._settle_rows(db, summary["deployment_id"], "Failed", "TIMEOUT", model.orphan_message(summary, new_id, now), now)

    @staticmethod
    def _settle_rows(db, deployment_id, status, error_code, message, now):
        """Settle a deployment without its controller: unfinished instances Unknown / Skipped, the status and error."""
        db.execute("UPDATE instances SET status = 'Unknown', end_time = ?, message = COALESCE(message, ?) "
                   "WHERE deployment_id = ? AND status = 'InProgress'", (now, model.ORPHAN_INSTANCE_MESSAGE, deployment_id))
        db.execute("UPDATE instances SET status = 'Skipped', message = COALESCE(message, ?) "
                   "WHERE deployment_id = ? AND status = 'Pending'", (model.ORPHAN_SKIPPED_MESSAGE, deployment_id))
        failed = db.execute("SELECT COUNT(*) FROM instances WHERE deployment_id = ? AND status = 'Failed'",
                            (deployment_id,)).fetchone()[0]
        db.execute("UPDATE deployments SET status = ?, error_code = ?, error_message = ?, complete_time = ?, "
                   "start_time = COALESCE(start_time, create_time), lease_expires = NULL, unhealthy = ? "
                   "WHERE deployment_id = ?", (status, error_code, message, now, failed, deployment_id))

    def _status(self, deployment_id):
        with self._read() as db:
            row = db.execute("SELECT status, error_code FROM deployments WHERE deployment_id = ?", (deployment_id,)).fetchone()
        if row is None:
            raise model.LedgerError(model.missing_message(deployment_id, self.location))
        return row["status"], row["error_code"]

    def _abandon(self, deployment_id, status, error_code, message, now):
        with self._write() as db:
            if model.is_terminal(self._row(db, deployment_id)["status"]):
                return False
            self._settle_rows(db, deployment_id, status, error_code, message, now)
            return True

    def _renew(self, deployment_id, owner, lease_expires, now):
        with self._write() as db:
            row = self._row(db, deployment_id)
            if model.is_terminal(row["status"]):
                raise model.LedgerError("deployment %s is already %s (%s); its lease cannot be renewed"
                                        % (deployment_id, row["status"], row.get("error_message") or row.get("error_code")))
            changes = {"lease_expires": lease_expires}
            if owner:
                changes["owner"] = owner
            self._update(db, "deployments", ("deployment_id = ?", [deployment_id]), changes)
        return lease_expires

    def _update_status(self, deployment_id, status, error_code, error_message, now):
        with self._write() as db:
            changes = model.status_changes(self._row(db, deployment_id), status, error_code, error_message, now)
            if changes:
                self._update(db, "deployments", ("deployment_id = ?", [deployment_id]), changes)
            return self._summary(db, deployment_id)

    def _request_stop(self, deployment_id, fields):
        with self._write() as db:
            row = self._row(db, deployment_id)
            if model.is_terminal(row["status"]):
                raise model.LedgerError("deployment %s is already %s; there is nothing to stop" % (deployment_id, row["status"]))
            self._update(db, "deployments", ("deployment_id = ?", [deployment_id]), fields)

    def _request_continue(self, deployment_id, fields):
        with self._write() as db:
            row = self._row(db, deployment_id)
            if row["status"] != "Ready":
                raise model.LedgerError(model.continue_refusal(deployment_id, row["status"]))
            self._update(db, "deployments", ("deployment_id = ?", [deployment_id]), fields)

    def _update_swap(self, deployment_id, fields, append):
        with self._write() as db:
            row = self._row(db, deployment_id)
            swap = model.merge_swap(model.load_json(row.get("swap")), fields, append)
            self._update(db, "deployments", ("deployment_id = ?", [deployment_id]), {"swap": model.dump_json(swap)})
            return swap

    def _link(self, triggering_id, rollback_id, message):
        with self._write() as db:
            self._update(db, "deployments", ("deployment_id = ?", [triggering_id]),
                         {"rollback_deployment_id": rollback_id, "rollback_message": message})
            self._update(db, "deployments", ("deployment_id = ?", [rollback_id]),
                         {"rollback_triggering_deployment_id": triggering_id, "rollback_message": message})

    def get_deployment(self, deployment_id, include_instances=True):
        now = model.utc_now()
        with self._read() as db:
            row = self._row(db, deployment_id)
            overview = self._overviews(db, [deployment_id])[deployment_id]
            instances = None
            if include_instances:
                events = {}
                for event in db.execute("SELECT instance_id, event, status, start_time, end_time, duration, error_code, message, "
                                        "log_tail FROM events WHERE deployment_id = ? ORDER BY rowid", (deployment_id,)):
                    events.setdefault(event[0], []).append({
                        "event": event[1], "status": event[2], "start": event[3], "end": event[4], "duration": event[5],
                        "error_code": event[6], "message": event[7], "log_tail": event[8]})
                instances = []
                for item in db.execute("SELECT * FROM instances WHERE deployment_id = ? ORDER BY position", (deployment_id,)):
                    item = dict(item)
                    item["start"], item["end"] = item.pop("start_time"), item.pop("end_time")
                    instances.append(model.shape_instance(item, events.get(item["instance_id"])))
        return model.shape_deployment(row, overview, instances, now)

    def _list(self, application, deployment_group, statuses, limit, now):
        where, args = [], []
        if application:
            where.append("application = ?")
            args.append(application)
        if deployment_group:
            where.append("deployment_group = ?")
            args.append(deployment_group)
        if statuses:
            where.append("status IN (%s)" % _placeholders(len(statuses)))
            args.extend(statuses)
        sql = "SELECT * FROM deployments%s ORDER BY seq DESC" % ((" WHERE " + " AND ".join(where)) if where else "")
        if limit:
            sql += " LIMIT %d" % limit
        with self._read() as db:
            rows = [dict(r) for r in db.execute(sql, args)]
            overviews = self._overviews(db, [r["deployment_id"] for r in rows])
        return [model.shape_deployment(r, overviews[r["deployment_id"]], None, now) for r in rows]

    # ------------------------------------------------------------------ instances
    def _try_start(self, deployment_id, instance_id, max_unhealthy, now):
        with self._write() as db:
            row = db.execute("SELECT status, unhealthy FROM deployments WHERE deployment_id = ?", (deployment_id,)).fetchone()
            if row is None:
                raise model.LedgerError(model.missing_message(deployment_id, self.location))
            instance = self._instance(db, deployment_id, instance_id)
            refusal = model.start_refusal(deployment_id, instance_id, instance["status"], row["status"])
            if refusal:
                raise model.LedgerError(refusal)
            if instance["status"] == "InProgress":
                return True
            if row["unhealthy"] >= max_unhealthy:
                return False
            db.execute("UPDATE deployments SET unhealthy = unhealthy + 1 WHERE deployment_id = ?", (deployment_id,))
            db.execute("UPDATE instances SET status = 'InProgress', start_time = ?, end_time = NULL "
                       "WHERE deployment_id = ? AND instance_id = ?", (now, deployment_id, instance_id))
            return True

    def _change_instance(self, deployment_id, instance_id, changes, extra):
        with self._write() as db:
            instance = self._instance(db, deployment_id, instance_id)
            delta = model.unhealthy_delta(instance["status"], changes["status"])
            columns = dict((INSTANCE_COLUMNS[k], v) for k, v in changes.items())
            if extra:
                merged = model.load_json(instance["extra"], {}) or {}
                merged.update(extra)
                columns["extra"] = model.dump_json(merged)
            self._update(db, "instances", ("deployment_id = ? AND instance_id = ?", [deployment_id, instance_id]), columns)
            if delta:
                db.execute("UPDATE deployments SET unhealthy = unhealthy + ? WHERE deployment_id = ?", (delta, deployment_id))

    def _record_events(self, deployment_id, instance_id, records):
        with self._write() as db:
            self._instance(db, deployment_id, instance_id)
            db.executemany(
                "INSERT INTO events (deployment_id, instance_id, event, status, start_time, end_time, duration, error_code, message, "
                "log_tail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (deployment_id, instance_id, event) DO UPDATE SET "
                "status = excluded.status, start_time = excluded.start_time, end_time = excluded.end_time, "
                "duration = excluded.duration, error_code = excluded.error_code, message = excluded.message, "
                "log_tail = excluded.log_tail",
                [(deployment_id, instance_id, r["event"], r["status"], r["start"], r["end"], r["duration"], r["error_code"],
                  r["message"], r["log_tail"]) for r in records])

    def _instance_history(self, application, deployment_group, instance_ids):
        found = {}
        with self._read() as db:
            for start in range(0, len(instance_ids), CHUNK):
                chunk = instance_ids[start:start + CHUNK]
                query = ("SELECT i.instance_id, i.status, i.extra, d.deployment_id, d.revision, d.seq FROM instances i "
                         "JOIN deployments d ON d.deployment_id = i.deployment_id WHERE d.application = ? AND d.deployment_group = ? "
                         "AND i.status NOT IN ('Pending', 'Skipped') AND i.instance_id IN (%s)" % _placeholders(len(chunk)))
                for row in db.execute(query, [application, deployment_group] + chunk):
                    best = found.get(row["instance_id"])
                    if best is None or row["seq"] > best["seq"]:
                        found[row["instance_id"]] = dict(row)
        result = {}
        for instance_id, row in found.items():
            extra = model.load_json(row["extra"], {}) or {}
            result[instance_id] = {"deployment_id": row["deployment_id"], "status": row["status"],
                                   "revision_sha256": extra.get("revision_sha256") or model.revision_sha256(model.load_json(row["revision"]))}
        return result
