"""The org's records in SQLite: one table per sObject, one typed column per field.

Writes go through `Store.create/update/delete/upsert`, which apply Salesforce's checks
(unknown/read-only fields, required fields, restricted picklists, lookups, unique external
ids, validation rules) and maintain system fields, then commit at once unless the store is
inside an explicit all-or-none transaction (composite allOrNone=true).
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from . import ids, schema
from .errors import ApiError, json_parser_error, not_found
from .schema import Field, SObject

# Salesforce's Email field takes an ASCII address (no RFC 6532: accented letters are refused)
# whose domain has at least two dot-separated labels; anything else is INVALID_EMAIL_ADDRESS.
_EMAIL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@"
                       r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def q(name: str) -> str:
    """Quote an SQL identifier (Case is a keyword)."""
    return '"' + name + '"'


def format_datetime(dt: datetime) -> str:
    """Salesforce's dateTime wire format, always UTC: 2026-03-14T10:00:00.000+0000."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def now_iso() -> str:
    return format_datetime(datetime.now(timezone.utc))


def parse_datetime(value: str) -> datetime:
    """Parse the ISO 8601 forms Salesforce accepts (Z, +00:00, +0000, with or without millis)."""
    text = value.strip()
    m = re.match(r"^(.*[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-]\d{2})(\d{2})$", text)
    if m:  # +0000 -> +00:00 for fromisoformat
        text = f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        text += "T00:00:00"
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


@dataclass
class ValidationRule:
    """An emulated validation rule: fails writes whose field contains a text."""

    sobject: str
    field: str
    contains: str
    message: str


class Store:
    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                    timeout=30.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # A million-contact org is ~450 MB: map it and keep hot index pages in a bigger cache.
        self.conn.execute("PRAGMA mmap_size=1073741824")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        # SOSL helpers: phone search ignores formatting; term matching is word-based.
        self.conn.create_function("sf_digits", 1, _digits, deterministic=True)
        self.conn.create_function("sf_match", 2, _regex_match, deterministic=True)
        # SOQL string comparison is case-insensitive beyond ASCII (soql.comparison_folded).
        self.conn.create_function("sf_lower", 1, lambda v: v.lower() if isinstance(v, str) else v,
                                  deterministic=True)
        self.in_transaction = False
        # Change Data Capture (pubsub/bus.py): called in each Contact/Account write's transaction;
        # call_origin is the writing request's changeOrigin.
        self.change_hook = None
        self.call_origin = ""
        if create:
            self._create_schema()
        self.validation_rules: list[ValidationRule] = self._load_rules()
        # Per-record fault rules (record_faults.py): (operation, sObject, id, row) -> error or None.
        self.record_faults: Callable[[str, str, str | None, dict], ApiError | None] | None = None

    def close(self) -> None:
        self.conn.close()

    # -- schema -----------------------------------------------------------------------------

    def _create_schema(self) -> None:
        c = self.conn
        c.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
        c.execute("CREATE TABLE IF NOT EXISTS _tokens (token TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
        c.execute("CREATE TABLE IF NOT EXISTS _validation_rules (seq INTEGER PRIMARY KEY, sobject TEXT NOT NULL, "
                  "field TEXT NOT NULL, contains TEXT NOT NULL, message TEXT NOT NULL)")
        c.execute("CREATE TABLE IF NOT EXISTS _counts (name TEXT PRIMARY KEY, live INTEGER NOT NULL, "
                  "all_rows INTEGER NOT NULL)")
        for obj in schema.SOBJECTS.values():
            cols = ", ".join(f"{q(f.name)} {f.sql_type}" for f in obj.fields)
            c.execute(f"CREATE TABLE IF NOT EXISTS {q(obj.name)} (rid INTEGER PRIMARY KEY, {cols})")
            have = {r[1].lower() for r in c.execute(f"PRAGMA table_info({q(obj.name)})")}
            for f in obj.fields:  # an org file from an older schema gets the fields added since
                if f.name.lower() not in have:
                    c.execute(f"ALTER TABLE {q(obj.name)} ADD COLUMN {q(f.name)} {f.sql_type}")
            c.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {q(obj.name + '_Id')} ON {q(obj.name)} (Id)")
            for f in obj.fields:
                if f.name == "Id":
                    continue
                if f.unique:
                    # Unique among live records; recycled records don't block reuse.
                    c.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {q(obj.name + '_' + f.name)} "
                              f"ON {q(obj.name)} ({q(f.name)}) WHERE IsDeleted = 0")
                elif f.indexed:
                    c.execute(f"CREATE INDEX IF NOT EXISTS {q(obj.name + '_' + f.name)} "
                              f"ON {q(obj.name)} ({q(f.name)})")
            self._create_counters(obj)

    # -- validation rules (kept in the org file, like the org's metadata) --------------------

    def _load_rules(self) -> list[ValidationRule]:
        try:
            rows = self.conn.execute("SELECT sobject, field, contains, message FROM _validation_rules "
                                     "ORDER BY seq").fetchall()
        except sqlite3.OperationalError:  # an org file from before rules were persisted
            return []
        return [ValidationRule(*r) for r in rows]

    def add_rule(self, rule: ValidationRule) -> None:
        with self.write():
            self.conn.execute("INSERT INTO _validation_rules (sobject, field, contains, message) VALUES (?, ?, ?, ?)",
                              (rule.sobject, rule.field, rule.contains, rule.message))
        self.validation_rules.append(rule)

    def clear_rules(self) -> None:
        with self.write():
            self.conn.execute("DELETE FROM _validation_rules")
        self.validation_rules.clear()

    def _create_counters(self, obj: SObject) -> None:
        """Row counters kept by triggers, so an unfiltered query's totalSize costs nothing.

        Triggers live in the file: every connection (the seed, composite transactions)
        keeps them right, and a rollback undoes them with the rows.
        """
        c, t = self.conn, q(obj.name)
        name = obj.name
        if c.execute(f"SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                     (name + "_count_upd",)).fetchone():
            return
        c.execute("BEGIN IMMEDIATE")  # count and triggers together: no write slips in between
        c.execute("DELETE FROM _counts WHERE name = ?", (name,))
        live, total = c.execute(f"SELECT COUNT(*) FILTER (WHERE IsDeleted = 0), COUNT(*) FROM {t}").fetchone()
        c.execute("INSERT INTO _counts VALUES (?, ?, ?)", (name, live, total))
        c.execute(f"CREATE TRIGGER IF NOT EXISTS {q(name + '_count_ins')} AFTER INSERT ON {t} BEGIN "
                  f"UPDATE _counts SET live = live + (NEW.IsDeleted = 0), all_rows = all_rows + 1 "
                  f"WHERE name = '{name}'; END")
        c.execute(f"CREATE TRIGGER IF NOT EXISTS {q(name + '_count_del')} AFTER DELETE ON {t} BEGIN "
                  f"UPDATE _counts SET live = live - (OLD.IsDeleted = 0), all_rows = all_rows - 1 "
                  f"WHERE name = '{name}'; END")
        c.execute(f"CREATE TRIGGER IF NOT EXISTS {q(name + '_count_upd')} AFTER UPDATE OF IsDeleted ON {t} "
                  f"WHEN OLD.IsDeleted != NEW.IsDeleted BEGIN UPDATE _counts SET live = live + "
                  f"(NEW.IsDeleted = 0) - (OLD.IsDeleted = 0) WHERE name = '{name}'; END")
        c.execute("COMMIT")

    def is_empty(self) -> bool:
        return all(self.conn.execute(f"SELECT 1 FROM {q(o)} LIMIT 1").fetchone() is None
                   for o in schema.SOBJECTS)

    def count(self, obj: str, include_deleted: bool = False) -> int:
        where = "" if include_deleted else " WHERE IsDeleted = 0"
        return self.conn.execute(f"SELECT COUNT(*) FROM {q(obj)}{where}").fetchone()[0]

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write: its own transaction, or part of the enclosing all-or-none one."""
        if self.in_transaction:
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.in_transaction = True

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.in_transaction = False

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")
        self.in_transaction = False

    # -- tokens -----------------------------------------------------------------------------

    def add_token(self, token: str, expires_at: float) -> None:
        with self.write():
            self.conn.execute("INSERT INTO _tokens VALUES (?, ?)", (token, expires_at))

    def token_expiry(self, token: str) -> float | None:
        row = self.conn.execute("SELECT expires_at FROM _tokens WHERE token = ?", (token,)).fetchone()
        return row[0] if row else None

    def expire_tokens(self) -> None:
        with self.write():
            self.conn.execute("DELETE FROM _tokens")

    # -- reads ------------------------------------------------------------------------------

    def fetch_row(self, obj: SObject, record_id: str) -> dict | None:
        cur = self.conn.execute(f"SELECT * FROM {q(obj.name)} WHERE Id = ?", (record_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row))

    def get_record(self, obj: SObject, record_id: str, fields: list[str] | None, version: str) -> dict:
        rid = normalize_id(record_id, obj, for_path=True)
        row = self.fetch_row(obj, rid)
        if row is None or row["IsDeleted"]:
            raise not_found()
        chosen = obj.fields
        if fields:
            chosen = []
            for name in fields:
                f = obj.field(name.strip())
                if f is None:
                    raise ApiError(400, "INVALID_FIELD", f"No such column '{name.strip()}' on entity "
                                   f"'{obj.name}'. If you are attempting to use a custom field, be sure to "
                                   "append the '__c' after the custom field name. Please reference your WSDL "
                                   "or the describe call for the appropriate names.")
                chosen.append(f)
        rec = {"attributes": attributes(obj, rid, version)}
        for f in chosen:
            rec[f.name] = to_json(f, row[f.name])
        return rec

    def find_by_field(self, obj: SObject, f: Field, value: str) -> list[str]:
        if f.type in schema.ID_TYPES:
            try:
                value = ids.to18(value)
            except ValueError:
                return []
        rows = self.conn.execute(
            f"SELECT Id FROM {q(obj.name)} WHERE {q(f.name)} = ? AND IsDeleted = 0 ORDER BY rid", (value,)
        ).fetchall()
        return [r[0] for r in rows]

    # -- writes -----------------------------------------------------------------------------

    def create(self, obj: SObject, body: object, *, forced: dict | None = None) -> str:
        values = self._coerce_body(obj, body, creating=True)
        if forced:
            values.update(forced)
        with self.write():
            seq = next_rid(self.conn, obj.name)
            record_id = ids.make_id(obj.key_prefix, seq)
            now = now_iso()
            row: dict = {f.name: (f.default if f.type != "boolean" else bool(f.default)) for f in obj.fields}
            row.update(values)
            row.update(Id=record_id, IsDeleted=False, CreatedDate=now, LastModifiedDate=now,
                       SystemModstamp=now)
            _compute(obj, row, seq)
            self._check_record_faults("insert", obj, record_id, row)
            self._check_required(obj, row, values, creating=True)
            self._check_references(obj, values)
            self._check_unique(obj, row, None)
            self._check_rules(obj, row)
            names = ["rid"] + [f.name for f in obj.fields]
            self.conn.execute(
                f"INSERT INTO {q(obj.name)} ({', '.join(q(n) for n in names)}) "
                f"VALUES ({', '.join('?' for _ in names)})",
                [seq] + [to_sql(f, row[f.name]) for f in obj.fields],
            )
            self._after_write(obj, None, row)
        return record_id

    def update(self, obj: SObject, record_id: str, body: object, *,
               unmodified_since: datetime | None = None) -> str:
        rid = normalize_id(record_id, obj)
        values = self._coerce_body(obj, body, creating=False)
        with self.write():
            old = self.fetch_row(obj, rid)
            if old is None or old["IsDeleted"]:
                raise not_found()
            if unmodified_since is not None:
                modified = parse_datetime(old["LastModifiedDate"]).replace(microsecond=0)
                if modified > unmodified_since:
                    raise ApiError(412, "PRECONDITION_FAILED",
                                   f"The requested resource has been modified since {old['LastModifiedDate']}")
            row = {f.name: from_sql(f, old[f.name]) for f in obj.fields}
            row.update(values)
            now = now_iso()
            row.update(LastModifiedDate=now, SystemModstamp=now)
            _compute(obj, row, old["rid"])
            self._check_record_faults("update", obj, rid, row)
            self._check_required(obj, row, values, creating=False)
            self._check_references(obj, values)
            self._check_unique(obj, row, rid)
            self._check_rules(obj, row)
            changed = list(values) + ["LastModifiedDate", "SystemModstamp"] + _COMPUTED.get(obj.name, [])
            changed = list(dict.fromkeys(changed))
            self.conn.execute(
                f"UPDATE {q(obj.name)} SET {', '.join(q(n) + ' = ?' for n in changed)} WHERE Id = ?",
                [to_sql(obj.field(n), row[n]) for n in changed] + [rid],
            )
            self._after_write(obj, {f.name: from_sql(f, old[f.name]) for f in obj.fields}, row)
        return rid

    def delete(self, obj: SObject, record_id: str) -> str:
        rid = normalize_id(record_id, obj)
        with self.write():
            old = self.fetch_row(obj, rid)
            if old is None:
                raise not_found()
            if old["IsDeleted"]:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            self._check_record_faults("delete", obj, rid, {f.name: from_sql(f, old[f.name]) for f in obj.fields})
            now = now_iso()
            # To the recycle bin: only queryAll sees it from now on.
            self.conn.execute(f"UPDATE {q(obj.name)} SET IsDeleted = 1, LastModifiedDate = ?, "
                              f"SystemModstamp = ? WHERE Id = ?", (now, now, rid))
            old_row = {f.name: from_sql(f, old[f.name]) for f in obj.fields}
            self._after_write(obj, old_row, None)
            self._cascade_delete(obj, rid, now)
        return rid

    def _cascade_delete(self, obj: SObject, record_id: str, now: str) -> None:
        """What Salesforce does to a deleted record's children (describe's cascadeDelete).

        A Contact takes its Tasks and Events (WhoId) to the recycle bin with it, where
        queryAll and getDeleted see them; an Account takes its Contacts (with their
        activities) and its Tasks (WhatId); a lookup with deleteConstraint SetNull
        (Contact_Consent__c.Contact__c) is cleared.
        """
        for child, fk in CASCADE_DELETE.get(obj.name, ()):
            # Children with children of their own (an Account's Contacts) take theirs along.
            grandchildren = [r[0] for r in self.conn.execute(
                f"SELECT Id FROM {q(child)} WHERE {q(fk)} = ? AND IsDeleted = 0", (record_id,))] \
                if child in CASCADE_DELETE or child in SET_NULL_ON_DELETE else []
            self.conn.execute(f"UPDATE {q(child)} SET IsDeleted = 1, LastModifiedDate = ?, SystemModstamp = ? "
                              f"WHERE {q(fk)} = ? AND IsDeleted = 0", (now, now, record_id))
            child_obj = schema.sobject(child)
            for child_id in grandchildren:
                self._cascade_delete(child_obj, child_id, now)
        for child, fk in SET_NULL_ON_DELETE.get(obj.name, ()):
            self.conn.execute(f"UPDATE {q(child)} SET {q(fk)} = NULL, SystemModstamp = ? WHERE {q(fk)} = ?",
                              (now, record_id))

    def upsert(self, obj: SObject, field_name: str, value: str, body: object, *,
               update_only: bool = False, version: str = "62.0") -> tuple[str, bool]:
        """Returns (id, created). Raises 300 when several records match."""
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.id_lookup):
            raise not_found()
        if f.name == "Id":
            return self.update(obj, value, body), False
        matches = self.find_by_field(obj, f, value)
        if len(matches) > 1:
            raise ApiError(300, "MULTIPLE_CHOICES", "multiple records match",
                           body=[f"/services/data/v{version}/sobjects/{obj.name}/{m}" for m in matches])
        if matches:
            return self.update(obj, matches[0], body), False
        if update_only:
            raise not_found()
        forced = {f.name: self._coerce_value(obj, f, value)} if f.createable else None
        return self.create(obj, body, forced=forced), True

    # -- checks -----------------------------------------------------------------------------

    def _coerce_body(self, obj: SObject, body: object, *, creating: bool) -> dict:
        if not isinstance(body, dict):
            raise json_parser_error("Cannot deserialize instance of " + obj.name
                                    + " from START_ARRAY value [line:1, column:1]"
                                    if isinstance(body, list) else "Unexpected parameter encountered during "
                                    "deserialization: request body must be a JSON object")
        values: dict = {}
        read_only: list[str] = []
        for key, value in body.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [])
            if not (f.createable if creating else f.updateable):
                read_only.append(f.name)
                continue
            values[f.name] = self._coerce_value(obj, f, value)
        if read_only:
            if creating and read_only == ["Id"]:
                raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call",
                               ["Id"])
            raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                           f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                           "security settings of this field and verify that it is read/write for your "
                           "profile or permission set.", read_only)
        return values

    def _coerce_value(self, obj: SObject, f: Field, value: object) -> object:
        if value is None:
            return None
        t = f.type
        if isinstance(value, (dict, list)):
            raise json_parser_error(f"Cannot deserialize instance of {_java_type(t)} from "
                                    f"{'START_OBJECT' if isinstance(value, dict) else 'START_ARRAY'} value "
                                    f"or request may be missing a required field")
        if t in schema.ID_TYPES:
            if value == "":
                return None
            if not ids.is_valid(value):
                raise ApiError(400, "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
            return ids.to18(str(value))
        if t in schema.TEXT_TYPES:
            text = value if isinstance(value, str) else (str(value).lower() if isinstance(value, bool)
                                                         else str(value))
            if text == "":
                return None  # Salesforce stores an empty text value as null
            if len(text) > f.length:
                raise ApiError(400, "STRING_TOO_LONG",
                               f"{f.label}: data value too large: {text} (max length={f.length})", [f.name])
            if f.restricted and text not in f.picklist:
                raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                               f"{f.label}: bad value for restricted picklist field: {text}", [f.name])
            if t == "email" and not _EMAIL_RE.match(text):
                raise ApiError(400, "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name])
            return text
        bad = json_parser_error(f"Cannot deserialize instance of {_java_type(t)} from VALUE_STRING value "
                                f"{value} or request may be missing a required field")
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad
        if t in ("double", "int"):
            if isinstance(value, bool):
                raise bad
            try:
                num = float(value) if not isinstance(value, (int, float)) else value
            except ValueError:
                raise bad from None
            if t == "int":
                if float(num) != int(num):
                    raise bad
                return int(num)
            return float(num)
        if t == "date":
            if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
                raise bad
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise bad from None
        if t == "datetime":
            if not isinstance(value, str):
                raise bad
            try:
                return format_datetime(parse_datetime(value))
            except ValueError:
                raise bad from None
        raise bad

    def _check_required(self, obj: SObject, row: dict, values: dict, *, creating: bool) -> None:
        missing = [f.name for f in obj.fields
                   if not f.nillable and f.createable and row.get(f.name) is None
                   and (creating or f.name in values)]
        if missing:
            raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                           missing)

    def _check_references(self, obj: SObject, values: dict) -> None:
        for name, value in values.items():
            f = obj.field(name)
            if f.type != "reference" or value is None:
                continue
            target = schema.sobject_for_id(value)
            if target is None or target.name not in f.reference_to:
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                               f"{f.label}: id value of incorrect type: {value}", [f.name])
            row = self.conn.execute(f"SELECT IsDeleted FROM {q(target.name)} WHERE Id = ?", (value,)).fetchone()
            if row is None:
                raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            if row[0]:
                raise ApiError(400, "ENTITY_IS_DELETED", "entity is deleted", [f.name])

    def _check_unique(self, obj: SObject, row: dict, self_id: str | None) -> None:
        for f in obj.fields:
            if not f.unique or row.get(f.name) is None:
                continue
            hit = self.conn.execute(
                f"SELECT Id FROM {q(obj.name)} WHERE {q(f.name)} = ? AND IsDeleted = 0 AND Id != ?",
                (row[f.name], self_id or ""),
            ).fetchone()
            if hit:
                raise ApiError(400, "DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on "
                               f"record with id: {hit[0]}", [])

    def _check_record_faults(self, operation: str, obj: SObject, record_id: str, row: dict) -> None:
        if self.record_faults is not None:
            error = self.record_faults(operation, obj.name, record_id, row)
            if error is not None:
                raise error

    def _check_rules(self, obj: SObject, row: dict) -> None:
        for rule in self.validation_rules:
            if rule.sobject.lower() != obj.name.lower():
                continue
            f = obj.field(rule.field)
            value = row.get(f.name) if f else None
            if isinstance(value, str) and rule.contains in value:
                raise ApiError(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [])

    def undelete(self, obj: SObject, record_id: str) -> str:
        """Restore a record from the recycle bin (the SOAP API's undelete(), the Recycle Bin page)."""
        rid = normalize_id(record_id, obj)
        with self.write():
            old = self.fetch_row(obj, rid)
            if old is None or not old["IsDeleted"]:
                raise ApiError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin", [])
            now = now_iso()
            self.conn.execute(f"UPDATE {q(obj.name)} SET IsDeleted = 0, LastModifiedDate = ?, SystemModstamp = ? "
                              f"WHERE Id = ?", (now, now, rid))
            row = {f.name: from_sql(f, old[f.name]) for f in obj.fields}
            self._after_write(obj, row, {**row, "IsDeleted": False, "LastModifiedDate": now, "SystemModstamp": now})
        return rid

    def _after_write(self, obj: SObject, old: dict | None, new: dict | None) -> None:
        """Keep LastActivityDate on Contacts/Accounts in step with their activities."""
        if self.change_hook is not None:
            self.change_hook(obj, old, new)
        if obj.name not in ("Task", "Event"):
            return
        touched = set()
        for row in (old, new):
            if row:
                for key in ("WhoId", "WhatId"):
                    if row.get(key):
                        touched.add(row[key])
        for target_id in touched:
            target = schema.sobject_for_id(target_id)
            if target is None or target.name not in ("Contact", "Account"):
                continue
            col = "WhoId" if target.name == "Contact" else "WhatId"
            # Most recent of closed tasks' due dates and events' dates (Salesforce's rule).
            latest = self.conn.execute(
                f"SELECT MAX(d) FROM (SELECT ActivityDate AS d FROM Task WHERE {col} = ? AND IsDeleted = 0 "
                f"AND IsClosed = 1 UNION ALL SELECT substr(StartDateTime, 1, 10) FROM Event "
                f"WHERE {col} = ? AND IsDeleted = 0)", (target_id, target_id)).fetchone()[0]
            self.conn.execute(f"UPDATE {q(target.name)} SET LastActivityDate = ? WHERE Id = ?",
                              (latest, target_id))


def _digits(value: object) -> str | None:
    return None if value is None else re.sub(r"\D", "", str(value))


_REGEX_CACHE: dict[str, re.Pattern] = {}


def _regex_match(pattern: str, value: object) -> int:
    if value is None:
        return 0
    rx = _REGEX_CACHE.get(pattern)
    if rx is None:
        rx = _REGEX_CACHE[pattern] = re.compile(pattern, re.IGNORECASE)
    return 1 if rx.search(str(value)) else 0


# Children deleted with their parent, and lookups cleared when their target is deleted.
# An Account takes its Contacts (and so their activities) and its own activities (WhatId).
CASCADE_DELETE: dict[str, tuple[tuple[str, str], ...]] = {
    "Contact": (("Task", "WhoId"), ("Event", "WhoId")),
    "Account": (("Contact", "AccountId"), ("Task", "WhatId")),
}
SET_NULL_ON_DELETE: dict[str, tuple[tuple[str, str], ...]] = {"Contact": (("Contact_Consent__c", "Contact__c"),)}

# Fields derived from others, recomputed on every write.
_COMPUTED = {"Contact": ["Name"], "Task": ["IsClosed"], "Case": ["IsClosed"]}


def _compute(obj: SObject, row: dict, seq: int) -> None:
    if obj.name == "Contact":
        row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p) or None
    elif obj.name == "Task":
        row["IsClosed"] = row.get("Status") == "Completed"
    elif obj.name == "Case":
        row["IsClosed"] = row.get("Status") == "Closed"
        row["CaseNumber"] = row.get("CaseNumber") or f"{seq:08d}"
    elif obj.name == "Contact_Consent__c":
        row["Name"] = row.get("Name") or f"CC-{seq:06d}"


def _java_type(t: str) -> str:
    return {"boolean": "boolean", "double": "double", "int": "int", "date": "date",
            "datetime": "datetime"}.get(t, "String")


def normalize_id(value: str, obj: SObject, *, for_path: bool = False) -> str:
    """Canonical 18-char id of a record of `obj`, or the error Salesforce gives otherwise.

    A GET of something that is not an id of this object is read as a missing record
    (404); a write to one is refused as MALFORMED_ID.
    """
    try:
        out = ids.to18(value)
    except ValueError:
        out = None
    if out is None or out[:3] != obj.key_prefix:
        if for_path:
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                           f"{value}")
        raise ApiError(400, "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {value}", ["Id"])
    return out


def attributes(obj: SObject, record_id: str | None, version: str) -> dict:
    out = {"type": obj.name}
    if record_id:
        out["url"] = f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"
    return out


def to_sql(f: Field, value: object) -> object:
    if f.type == "boolean":
        return 1 if value else 0
    return value


def from_sql(f: Field, value: object) -> object:
    if f.type == "boolean":
        return bool(value)
    return value


def to_json(f: Field, value: object) -> object:
    if value is None:
        return None
    if f.type == "boolean":
        return bool(value)
    if f.type == "double":
        return float(value)
    if f.type == "int":
        return int(value)
    return value


def bulk_insert(store: Store, obj: SObject, rows: list[dict]) -> list[str]:
    """Insert trusted rows in one statement batch (seeding): system fields and ids assigned here.

    The caller owns the transaction; no per-record validation runs.
    """
    conn = store.conn
    start = next_rid(conn, obj.name)
    now = now_iso()
    defaults = {f.name: (f.default if f.type != "boolean" else bool(f.default)) for f in obj.fields}
    names = ["rid"] + [f.name for f in obj.fields]
    out_ids: list[str] = []
    values = []
    for offset, data in enumerate(rows):
        seq = start + offset
        row = dict(defaults)
        row.update(data)
        record_id = ids.make_id(obj.key_prefix, seq)
        row.update(Id=record_id, IsDeleted=False, CreatedDate=data.get("CreatedDate", now),
                   LastModifiedDate=data.get("LastModifiedDate", now), SystemModstamp=now)
        _compute(obj, row, seq)
        out_ids.append(record_id)
        values.append([seq] + [to_sql(f, row[f.name]) for f in obj.fields])
    conn.executemany(f"INSERT INTO {q(obj.name)} ({', '.join(q(n) for n in names)}) "
                     f"VALUES ({', '.join('?' for _ in names)})", values)
    return out_ids


def next_rid(conn, name: str) -> int:
    """The next row id: past every row ever held, so an id is never handed out twice even after
    rows were physically deleted (a purge, a hard delete); see keep_rid_floor."""
    top = conn.execute(f"SELECT COALESCE(MAX(rid), 0) FROM {q(name)}").fetchone()[0]
    floor = conn.execute("SELECT value FROM _meta WHERE key = ?", (f"rid_floor:{name}",)).fetchone()
    return max(top, int(floor[0]) if floor else 0) + 1


def keep_rid_floor(conn, name: str) -> None:
    """Before physically deleting rows: remember the highest row id, which next_rid stays above."""
    top = conn.execute(f"SELECT COALESCE(MAX(rid), 0) FROM {q(name)}").fetchone()[0]
    conn.execute("INSERT INTO _meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                 "value = MAX(CAST(value AS INTEGER), excluded.value)", (f"rid_floor:{name}", top))
