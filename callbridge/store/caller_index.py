"""The caller-ID index in the state store: apply changes, remove contacts, look up a number."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from callbridge.domain.caller_id import account_row, index_rows, rank_index_hits
from callbridge.store.db import get_engine
from callbridge.store.tables import accounts, caller_index, state

VERSION = "caller_index_version"


def _upsert(engine: Engine, table, rows: list[dict[str, Any]], keys: list[str]):
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}
    )


def _bump_version(conn) -> None:
    updated = conn.execute(update(state).where(state.c.name == VERSION).values(int_value=state.c.int_value + 1))
    if updated.rowcount == 0:
        conn.execute(insert(state).values(name=VERSION, int_value=1))


def apply_contacts(engine: Engine, records: Iterable[dict[str, Any]], default_region: str) -> int:
    """Replace the index rows of these contacts (a changed or removed number disappears)."""
    with engine.begin() as conn:
        return apply_contacts_in(conn, records, default_region)


def apply_contacts_in(conn, records: Iterable[dict[str, Any]], default_region: str) -> int:
    """`apply_contacts` inside the caller's transaction (contact sync stores its base with it)."""
    records = list(records)
    if not records:
        return 0
    rows = [row for r in records for row in index_rows(r, default_region)]
    account_rows = {a["account_id"]: a for r in records if (a := account_row(r))}
    conn.execute(delete(caller_index).where(caller_index.c.contact_id.in_([r["Id"] for r in records])))
    if rows:
        conn.execute(insert(caller_index), rows)
    if account_rows:
        conn.execute(_upsert(conn.engine, accounts, list(account_rows.values()), ["account_id"]))
    _bump_version(conn)
    return len(records)


def update_contacts(engine: Engine, updates: dict[str, dict[str, Any]]) -> set[str]:
    """Set columns on every row of these contacts, from a change event (a dict per contact id,
    its `modstamp` the change's time); the ids left for a read of the record.

    A contact whose rows already show a later change (a read after this event) is left as it
    is, and so is one without rows (not indexed yet, or no number): both are read instead.
    """
    left: set[str] = set()
    with engine.begin() as conn:
        for contact_id, values in updates.items():
            updated = conn.execute(update(caller_index).where(
                caller_index.c.contact_id == contact_id,
                or_(caller_index.c.modstamp.is_(None), caller_index.c.modstamp <= values["modstamp"]),
            ).values(**values)).rowcount
            if not updated:
                left.add(contact_id)
        if len(left) < len(updates):
            _bump_version(conn)
    return left


def remove_contacts(engine: Engine, contact_ids: Iterable[str]) -> int:
    with engine.begin() as conn:
        return remove_contacts_in(conn, contact_ids)


def remove_contacts_in(conn, contact_ids: Iterable[str]) -> int:
    ids = list(contact_ids)
    if not ids:
        return 0
    removed = conn.execute(delete(caller_index).where(caller_index.c.contact_id.in_(ids))).rowcount
    _bump_version(conn)
    return removed


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(caller_index))
        conn.execute(delete(accounts))
        _bump_version(conn)


def lookup(engine: Engine, e164: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(caller_index).where(caller_index.c.e164 == e164)).mappings().all()
    return rank_index_hits(dict(r) for r in rows)


def lookup_contact(engine: Engine, contact_id: str) -> dict[str, Any] | None:
    """The index's row of one contact (its own line first), or None when the index doesn't hold it."""
    with engine.connect() as conn:
        rows = conn.execute(select(caller_index).where(caller_index.c.contact_id == contact_id)).mappings().all()
    ranked = rank_index_hits(dict(r) for r in rows)
    return ranked[0] if ranked else None


def lookup_account(engine: Engine, account_number: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    with engine.connect() as conn:
        account = conn.execute(
            select(accounts).where(accounts.c.account_number == account_number).limit(1)
        ).mappings().first()
        if account is None:
            return None, []
        rows = conn.execute(
            select(caller_index).where(caller_index.c.account_id == account["account_id"])
        ).mappings().all()
    contacts = {r["contact_id"]: dict(r) for r in rows}
    ranked = sorted(contacts.values(), key=lambda r: (-(r["last_activity"].timestamp()) if r["last_activity"] else 0))
    return dict(account), ranked


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(state.c.int_value).where(state.c.name == VERSION)).scalar() or 0


def get_text(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(state.c.text_value).where(state.c.name == name)).scalar()


def set_text(engine: Engine, name: str, value: str) -> None:
    with engine.begin() as conn:
        conn.execute(_upsert(engine, state, [{"name": name, "text_value": value}], ["name"]))


class SqliteIndexReader:
    """The lookup's hot path on SQLite: one read connection, a prepared query, no thread hop.

    An indexed read takes microseconds, less than handing it to a thread; readers never wait
    for the refresher (WAL).
    """

    _COLUMNS = [c.name for c in caller_index.columns]

    def __init__(self, url: str) -> None:
        import sqlite3

        path = url.removeprefix("sqlite:///")
        get_engine(url)  # the schema exists before the first read
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                                     detect_types=0)
        self._conn.execute("PRAGMA query_only=1")
        self._sql = f"SELECT {', '.join(self._COLUMNS)} FROM caller_index WHERE e164 = ?"

    def lookup(self, e164: str) -> list[dict[str, Any]]:
        rows = [dict(zip(self._COLUMNS, r)) for r in self._conn.execute(self._sql, (e164,))]
        for r in rows:
            for key in ("last_activity", "modstamp"):
                if isinstance(r[key], str):
                    r[key] = _parse_stored(r[key])
        return rank_index_hits(rows)

    def version(self) -> int:
        row = self._conn.execute("SELECT int_value FROM state WHERE name = ?", (VERSION,)).fetchone()
        return row[0] if row else 0


def _parse_stored(value: str):
    from datetime import datetime, timezone

    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def indexed_contact_ids(engine: Engine) -> set[str]:
    """Every contact the index holds a number of (for a full comparison with Salesforce)."""
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(select(caller_index.c.contact_id).distinct())}
