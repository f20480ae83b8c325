"""What time does to an org: archived activities and the purged recycle bin / delete log.

- Archiving (SOAP API "queryAll()", REST API "QueryAll"; Salesforce Help "Archived
  Activities"): a background process archives Events that ended more than 365 days ago and
  closed Tasks due more than 365 days ago (created more than 365 days ago when they have no
  due date). `query` leaves archived activities out; `queryAll` returns them (`IsArchived`).
  `POST /_emulator/archive {"today": "YYYY-MM-DD"}` runs that process as of a given day.
- Purging (REST API "QueryAll", "Get Deleted Records"; SOAP API "getDeleted()"): records stay
  in the recycle bin 15 days, then are physically deleted; an admin can empty it sooner.
  Purged records vanish from queryAll and getDeleted; getDeleted's `earliestDateAvailable`
  is the time of the last physically deleted record and a window starting before it fails
  with INVALID_REPLICATION_DATE. `POST /_emulator/recycle-bin/purge` purges on demand
  (`{"older_than_days": N}`, default: everything in the bin); the 15-day purge also runs by
  itself, at most hourly.
- Replication (REST API "Get Updated Records" / "Get Deleted Records"): `latestDateCovered`
  can be earlier than `end` (transactions still running); `POST /_emulator/replication
  {"covered_lag_seconds": N}` makes it lag `now` by N seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from . import schema
from .store import Store, format_datetime, keep_rid_floor, parse_datetime, q

ARCHIVE_AFTER_DAYS = 365
RECYCLE_BIN_DAYS = 15
_AUTO_PURGE_EVERY = 3600.0


def archive_activities(store: Store, today: date) -> dict[str, int]:
    """The archival background process as of `today`: how many Tasks and Events it archived."""
    cutoff = today - timedelta(days=ARCHIVE_AFTER_DAYS)
    cutoff_dt = format_datetime(datetime.combine(cutoff, datetime.min.time(), tzinfo=timezone.utc))
    with store.write():
        tasks = store.conn.execute(
            "UPDATE Task SET IsArchived = 1 WHERE IsArchived = 0 AND IsClosed = 1 AND "
            "((ActivityDate IS NOT NULL AND ActivityDate < ?) OR (ActivityDate IS NULL AND CreatedDate < ?))",
            (cutoff.isoformat(), cutoff_dt)).rowcount
        events = store.conn.execute(
            "UPDATE Event SET IsArchived = 1 WHERE IsArchived = 0 AND COALESCE(EndDateTime, StartDateTime) < ?",
            (cutoff_dt,)).rowcount
    return {"Task": tasks, "Event": events}


def _meta_key(name: str) -> str:
    return f"earliest_date_available:{name}"


def purge_recycle_bin(store: Store, older_than: datetime | None) -> dict[str, int]:
    """Physically delete recycled records (those recycled before `older_than`, or all)."""
    purged: dict[str, int] = {}
    with store.write():
        for obj in schema.SOBJECTS.values():
            t = q(obj.name)
            where, params = "IsDeleted = 1", []
            if older_than is not None:
                where += " AND SystemModstamp < ?"
                params.append(format_datetime(older_than))
            last = store.conn.execute(f"SELECT MAX(SystemModstamp) FROM {t} WHERE {where}", params).fetchone()[0]
            # Hard-deleted records (ingest.hard_delete) left only getDeleted's trace: it goes too.
            trace = "sobject = ?" + ("" if older_than is None else " AND deletedDate < ?")
            trace_params = [obj.name] + params
            hard = store.conn.execute(f"SELECT MAX(deletedDate) FROM _hard_deleted WHERE {trace}",
                                      trace_params).fetchone()[0]
            last = max(filter(None, (last, hard)), default=None)
            if last is None:
                continue
            keep_rid_floor(store.conn, obj.name)
            purged[obj.name] = store.conn.execute(f"DELETE FROM {t} WHERE {where}", params).rowcount
            purged[obj.name] += store.conn.execute(f"DELETE FROM _hard_deleted WHERE {trace}", trace_params).rowcount
            store.conn.execute("INSERT INTO _meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                               "value = MAX(value, excluded.value)", (_meta_key(obj.name), last))
    return purged


def earliest_date_available(store: Store, name: str) -> datetime | None:
    """When the last physically deleted record of this object was deleted (None: none yet)."""
    row = store.conn.execute("SELECT value FROM _meta WHERE key = ?", (_meta_key(name),)).fetchone()
    return parse_datetime(row[0]) if row else None


@dataclass
class Aging:
    covered_lag_seconds: int = 0
    last_auto_purge: float = 0.0

    def auto_purge(self, store: Store) -> None:
        """The recycle bin's own 15-day purge, run at most hourly (from API requests)."""
        if store.in_transaction:  # never inside another request's all-or-none transaction
            return
        now = time.monotonic()
        if self.last_auto_purge and now - self.last_auto_purge < _AUTO_PURGE_EVERY:
            return
        self.last_auto_purge = now
        purge_recycle_bin(store, datetime.now(timezone.utc) - timedelta(days=RECYCLE_BIN_DAYS))

    def covered_until(self, end: datetime, now: datetime) -> datetime:
        """latestDateCovered: no later than `end`, nor than now minus the configured lag."""
        return min(end, now - timedelta(seconds=self.covered_lag_seconds))

    def merge(self, body: dict) -> None:
        lag = body.get("covered_lag_seconds", self.covered_lag_seconds)
        if not isinstance(lag, int) or isinstance(lag, bool) or lag < 0:
            raise ValueError("covered_lag_seconds must be a non-negative integer")
        self.covered_lag_seconds = lag

    def snapshot(self) -> dict:
        return {"covered_lag_seconds": self.covered_lag_seconds}
