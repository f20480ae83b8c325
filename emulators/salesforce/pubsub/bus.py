"""The org's change event bus: every Contact/Account create, update, delete and undelete becomes a
change event, stored in org.db in the writing transaction (rolled back with it) and kept 72 hours.

What an event holds follows the Change Data Capture Developer Guide: CREATE and UNDELETE carry
every field with a value; UPDATE only the changed fields (plus LastModifiedDate), with
changedFields/nulledFields as the Pub/Sub API encodes them (a hex bitmap of top-level field
positions, "0x..."; a compound field's sub-fields as "<position>-0x..."; see forcedotcom/pub-sub-api
python/util/ChangeEventHeaderUtility.py); DELETE no fields; gap events (GAP_*) the header only.
changeOrigin is "com/salesforce/api/rest/<version>;client=<id>", the client taken from the
writer's Sforce-Call-Options header.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from datetime import date

import fastavro

from emulators.salesforce import schema
from emulators.salesforce.pubsub import avro_schema
from emulators.salesforce.store import Store, parse_datetime

RETENTION_SECONDS = 72 * 3600  # "Salesforce stores ... change data capture events for 72 hours"
TOPICS = {f"/data/{name}ChangeEvent": name for name in ("Contact", "Account")}
_EPOCH = date(1970, 1, 1)


def replay_bytes(replay: int) -> bytes:
    return replay.to_bytes(8, "big")


def replay_int(raw: bytes) -> int | None:
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


def change_origin(version: str, headers: dict) -> str:
    """From `Sforce-Call-Options: client=<id>[, defaultNamespace=...]` (header names arrive lowercased)."""
    options = headers.get("sforce-call-options") or ""
    client = next((part.split("=", 1)[1].strip() for part in options.split(",")
                   if part.strip().startswith("client=")), "")
    return f"com/salesforce/api/rest/{version}" + (f";client={client}" if client else "")


def bitmap(positions: list[int]) -> str:
    value = sum(1 << p for p in positions)
    digits = f"{value:x}"
    return "0x" + digits.rjust(len(digits) + len(digits) % 2, "0").upper()


class ChangeBus:
    def __init__(self, store: Store, user_id: str) -> None:
        self.store = store
        self.user_id = user_id
        self.parsed = {name: fastavro.parse_schema(avro_schema.schema_json(name)) for name in TOPICS.values()}
        self.slots = {name: avro_schema.slots(name) for name in TOPICS.values()}
        self.schema_ids = {name: avro_schema.schema_id(name) for name in TOPICS.values()}
        self.faults: dict = {}
        self.rpcs = 0  # Pub/Sub calls and fetch responses served (bench: requests per change)
        self._waiters: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._txn: str | None = None
        self._seq = 0
        store.conn.execute("CREATE TABLE IF NOT EXISTS _change_events (replay INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "topic TEXT NOT NULL, event_id TEXT NOT NULL, schema_id TEXT NOT NULL, "
                           "payload BLOB NOT NULL, created REAL NOT NULL)")
        store.change_hook = self.record

    # -- publishing (inside the writer's transaction) ----------------------------------------

    def record(self, obj: schema.SObject, old: dict | None, new: dict | None) -> None:
        if obj.name not in self.parsed:
            return
        if new is None:
            change, record = "DELETE", old
        elif old is None:
            change, record = "CREATE", new
        elif old.get("IsDeleted") and not new.get("IsDeleted"):
            change, record = "UNDELETE", new
        else:
            change, record = "UPDATE", new
        assert record is not None
        if not self.store.in_transaction or self._txn is None:
            self._txn, self._seq = str(uuid.uuid4()), 0
        self._seq += 1
        body, changed, nulled = self._fields(obj.name, change, old, new)
        if change == "UPDATE" and not changed and not nulled:
            return
        gap = self.faults.get("gap")
        record_ids = [record["Id"]]
        if gap:
            body, changed, nulled = {}, [], []
            change = "GAP_OVERFLOW" if gap == "overflow" else f"GAP_{change}"
            record_ids = [] if gap == "overflow" else record_ids
        now_ms = int(time.time() * 1000)
        header = {"entityName": obj.name, "recordIds": record_ids, "changeType": change,
                  "changeOrigin": self.store.call_origin, "transactionKey": self._txn,
                  "sequenceNumber": self._seq, "commitTimestamp": now_ms, "commitNumber": 0,
                  "commitUser": self.user_id, "nulledFields": nulled, "diffFields": [], "changedFields": changed}
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.parsed[obj.name], {"ChangeEventHeader": header, **body})
        cur = self.store.conn.execute(
            "INSERT INTO _change_events (topic, event_id, schema_id, payload, created) VALUES (?, ?, ?, ?, ?)",
            (f"/data/{obj.name}ChangeEvent", str(uuid.uuid4()), self.schema_ids[obj.name], buf.getvalue(),
             time.time()))
        # commitNumber: a committed transaction's system change number, increasing; ours is the replay.
        header["commitNumber"] = cur.lastrowid
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.parsed[obj.name], {"ChangeEventHeader": header, **body})
        self.store.conn.execute("UPDATE _change_events SET payload = ? WHERE replay = ?",
                                (buf.getvalue(), cur.lastrowid))
        if cur.lastrowid % 1000 == 0:  # a long-lived org drops what is past retention as it goes
            self.purge()
        self._wake()

    def _fields(self, obj_name: str, change: str, old: dict | None, new: dict | None):
        """(field values, changedFields, nulledFields) of one event."""
        if change == "DELETE":
            return {}, [], []
        assert new is not None
        body: dict = {}
        changed_top: list[int] = []
        nulled_top: list[int] = []
        changed_nested: list[str] = []
        nulled_nested: list[str] = []
        for pos, slot in enumerate(self.slots[obj_name], start=1):
            if slot.parts:
                sub_changed, sub_nulled, value = [], [], {}
                for i, (sub, column) in enumerate(slot.parts):
                    now = new.get(column)
                    value[sub] = now
                    if change == "UPDATE" and column in new and now != old.get(column):
                        (sub_nulled if now is None else sub_changed).append(i)
                if change == "UPDATE":
                    if not sub_changed and not sub_nulled:
                        continue
                    value = {sub: (v if i in sub_changed else None) for i, (sub, v) in enumerate(value.items())}
                    if sub_changed:
                        changed_nested.append(f"{pos}-{bitmap(sub_changed)}")
                    if sub_nulled:
                        nulled_nested.append(f"{pos}-{bitmap(sub_nulled)}")
                if any(v is not None for v in value.values()):
                    body[slot.name] = value
                continue
            now = new.get(slot.column)
            if change == "UPDATE":
                if now == old.get(slot.column):
                    continue
                if now is None:
                    nulled_top.append(pos)
                    continue
                changed_top.append(pos)
            if now is not None:
                body[slot.name] = _avro_value(slot.avro_type, now)
        changed = ([bitmap(changed_top)] if changed_top or changed_nested else []) + changed_nested
        nulled = ([bitmap(nulled_top)] if nulled_top or nulled_nested else []) + nulled_nested
        if change == "UPDATE" and not changed_top and not changed_nested and not nulled:
            return body, [], []
        return body, changed, nulled

    # -- reading (under the emulator's write lock: no half-done transaction is seen) ----------

    def purge(self) -> None:
        self.store.conn.execute("DELETE FROM _change_events WHERE created < ?", (time.time() - RETENTION_SECONDS,))

    def bounds(self) -> tuple[int, int]:
        """(last replay ever assigned, first replay still retained - 1)."""
        last = self.store.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = '_change_events'").fetchone()
        last_replay = last[0] if last else 0
        oldest = self.store.conn.execute("SELECT MIN(replay) FROM _change_events").fetchone()[0]
        return last_replay, (oldest - 1 if oldest is not None else last_replay)

    def read_after(self, topic: str, after: int, limit: int) -> list[tuple[int, str, str, bytes]]:
        return self.store.conn.execute(
            "SELECT replay, event_id, schema_id, payload FROM _change_events WHERE topic = ? AND replay > ? "
            "ORDER BY replay LIMIT ?", (topic, after, limit)).fetchall()

    def age(self, hours: float) -> int:
        """Control: make every stored event `hours` older (retention tests)."""
        return self.store.conn.execute("UPDATE _change_events SET created = created - ?", (hours * 3600,)).rowcount

    # -- waking subscribers ---------------------------------------------------------------------

    def waiter(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def forget(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        for event in list(self._waiters):
            loop.call_soon_threadsafe(event.set)


def _avro_value(avro_type: object, value: object) -> object:
    if avro_type == "long" and isinstance(value, str):
        return int(parse_datetime(value).timestamp() * 1000)
    if avro_type == "int" and isinstance(value, str):
        return (date.fromisoformat(value[:10]) - _EPOCH).days
    if avro_type == "string" and not isinstance(value, str):
        return str(value)
    return value
