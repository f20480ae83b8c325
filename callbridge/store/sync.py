"""Contact-sync state: one row per linked pair, with the base both sides last agreed on.

Every write of a base is compare-and-swap on `version`, so the per-pair path and the bulk path
can never overwrite each other's work: a stale base means re-read and merge again.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update
from callbridge.store.tables import sync_pairs  # noqa: F401  (the schema lives in one module)



class StaleBase(RuntimeError):
    """Someone stored a newer base for this pair since it was read."""


def get_pair(engine: Engine, salesforce_id: str | None, genesys_id: str | None) -> dict[str, Any] | None:
    conds = []
    if salesforce_id:
        conds.append(sync_pairs.c.salesforce_id == salesforce_id)
    if genesys_id:
        conds.append(sync_pairs.c.genesys_id == genesys_id)
    if not conds:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(sync_pairs).where(or_(*conds))).mappings().first()
    if row is None:
        return None
    return {**row, "base": json.loads(row["base"])}


def pairs_by_genesys_ids(engine: Engine, genesys_ids: list[str]) -> dict[str, str]:
    """{genesys id: salesforce id} of the linked pairs among these Genesys contacts: one query a page."""
    if not genesys_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(sync_pairs.c.genesys_id, sync_pairs.c.salesforce_id)
                            .where(sync_pairs.c.genesys_id.in_(genesys_ids))).all()
    return dict(rows)


def store_base(engine: Engine, salesforce_id: str, genesys_id: str, base: dict[str, Any],
               expected_version: int) -> int:
    """Write the pair's new base if nobody else did since `expected_version` (0: a new pair)."""
    with engine.begin() as conn:
        return store_base_in(conn, salesforce_id, genesys_id, base, expected_version)


def store_base_in(conn, salesforce_id: str, genesys_id: str, base: dict[str, Any] | None,
                  expected_version: int) -> int:
    """`store_base` in the caller's transaction; base None forgets the pair (same CAS)."""
    now = datetime.now(timezone.utc)
    if base is None:
        query = delete(sync_pairs).where(sync_pairs.c.salesforce_id == salesforce_id)
        if expected_version:
            query = query.where(sync_pairs.c.version == expected_version)
        conn.execute(query)
        return 0
    if expected_version == 0:
        exists = conn.execute(select(sync_pairs.c.version).where(
            or_(sync_pairs.c.salesforce_id == salesforce_id, sync_pairs.c.genesys_id == genesys_id))).first()
        if exists is not None:
            raise StaleBase(salesforce_id)
        conn.execute(insert(sync_pairs).values(salesforce_id=salesforce_id, genesys_id=genesys_id,
                                               base=json.dumps(base, sort_keys=True), version=1,
                                               updated_at=now))
        return 1
    done = conn.execute(
        update(sync_pairs)
        .where(sync_pairs.c.salesforce_id == salesforce_id, sync_pairs.c.version == expected_version)
        .values(genesys_id=genesys_id, base=json.dumps(base, sort_keys=True), version=expected_version + 1,
                updated_at=now)
    ).rowcount
    if done != 1:
        raise StaleBase(salesforce_id)
    return expected_version + 1


def forget_pair(engine: Engine, salesforce_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sync_pairs).where(sync_pairs.c.salesforce_id == salesforce_id))


def pairs_for(engine: Engine, salesforce_ids: list[str], genesys_ids: list[str]) -> list[dict[str, Any]]:
    """The stored pairs touching any of these ids: one query for a bulk page."""
    conds = []
    if salesforce_ids:
        conds.append(sync_pairs.c.salesforce_id.in_(salesforce_ids))
    if genesys_ids:
        conds.append(sync_pairs.c.genesys_id.in_(genesys_ids))
    if not conds:
        return []
    with engine.connect() as conn:
        rows = conn.execute(select(sync_pairs).where(or_(*conds))).mappings().all()
    return [{**r, "base": json.loads(r["base"])} for r in rows]


@contextmanager
def _one_transaction(engine: Engine):
    """A write transaction that really is one. SQLite through pysqlite (SQLAlchemy's default
    driver) sends no BEGIN before a SAVEPOINT: the first savepoint then opens the transaction
    and its RELEASE commits it, so each pair of a page was committed on its own, and a failure
    later in the page (its audit or index rows; a busy database) left bases stored without them.
    An explicit BEGIN IMMEDIATE makes the savepoints nested for real, and takes the write lock
    up front (waiting out busy_timeout), so a read turning into a write can't fail half-way."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def settle(engine: Engine, settlements: list[dict[str, Any]], default_region: str) -> list[str]:
    """Store what sync agreed for these pairs, each all-or-nothing in one transaction: the new
    base (compare-and-swap), its audit lines, and the Salesforce record in the caller-ID index.

    A settlement: salesforce_id, genesys_id, base (None: forget), expected_version, audit
    (sync_audit rows), index_record (the Salesforce record as written, or None),
    salesforce_deleted. Returns the Salesforce ids whose base was stale (someone stored a
    newer one): their caller re-reads and merges again.
    """
    from callbridge.store import caller_index as index
    from callbridge.store.sync_runs import add_audit_in

    stale: list[str] = []
    audit: list[dict[str, Any]] = []
    removed: list[str] = []
    records: list[dict[str, Any]] = []
    with _one_transaction(engine) as conn:
        batched = _store_bases_batched(conn, settlements) if engine.dialect.name == "sqlite" else None
        for item in settlements if batched is None else []:
            savepoint = conn.begin_nested()
            try:
                store_base_in(conn, item["salesforce_id"], item["genesys_id"], item["base"],
                              item["expected_version"])
            except StaleBase:
                savepoint.rollback()
                stale.append(item["salesforce_id"])
                continue
            savepoint.commit()
            audit += item.get("audit") or []
            if item.get("salesforce_deleted"):
                removed.append(item["salesforce_id"])
            elif item.get("index_record"):
                records.append(item["index_record"])
        if batched is not None:
            stale = batched
            for item in settlements:
                if item["salesforce_id"] in stale:
                    continue
                audit += item.get("audit") or []
                if item.get("salesforce_deleted"):
                    removed.append(item["salesforce_id"])
                elif item.get("index_record"):
                    records.append(item["index_record"])
        # One statement each for the whole page, still in the same transaction.
        add_audit_in(conn, audit)
        if removed:
            index.remove_contacts_in(conn, removed)
        if records:
            index.apply_contacts_in(conn, records, default_region)
    return stale


def _store_bases_batched(conn, settlements: list[dict[str, Any]]) -> list[str] | None:
    """`store_base_in` for a whole page in a few statements, with the same compare-and-swap
    outcome: inside BEGIN IMMEDIATE (SQLite's one writer) nobody can store a base between the
    read of the versions and the writes, so the read decides what is stale. None: a page that
    names one pair twice, left to the row-by-row way."""
    sf_ids = [i["salesforce_id"] for i in settlements]
    gc_ids = [i["genesys_id"] for i in settlements if i["base"] is not None]
    if len(set(sf_ids)) != len(sf_ids) or len(set(gc_ids)) != len(gc_ids):
        return None
    rows = []
    for start in range(0, len(sf_ids), 400):  # SQLite's bound-parameter limit
        part_sf, part_gc = sf_ids[start:start + 400], gc_ids[start:start + 400]
        conds = [sync_pairs.c.salesforce_id.in_(part_sf)] + ([sync_pairs.c.genesys_id.in_(part_gc)] if part_gc else [])
        rows += conn.execute(select(sync_pairs.c.salesforce_id, sync_pairs.c.genesys_id, sync_pairs.c.version)
                             .where(or_(*conds))).all()
    version_of = {r[0]: r[2] for r in rows}
    gc_owner = {r[1]: r[0] for r in rows}
    now = datetime.now(timezone.utc)
    stale: list[str] = []
    inserts, updates, deletes, deletes_cas = [], [], [], []
    for item in settlements:
        sf_id, gc_id, base, expected = item["salesforce_id"], item["genesys_id"], item["base"], item["expected_version"]
        if base is None:
            (deletes_cas if expected else deletes).append({"sf": sf_id, "v": expected})
        elif expected == 0:
            if sf_id in version_of or gc_id in gc_owner:
                stale.append(sf_id)
            else:
                inserts.append({"salesforce_id": sf_id, "genesys_id": gc_id, "base": json.dumps(base, sort_keys=True),
                                "version": 1, "updated_at": now})
        elif version_of.get(sf_id) != expected:
            stale.append(sf_id)
        else:
            updates.append({"sf": sf_id, "v": expected, "gc": gc_id, "base": json.dumps(base, sort_keys=True),
                            "nv": expected + 1, "at": now})
    from sqlalchemy import bindparam

    if deletes:
        conn.execute(delete(sync_pairs).where(sync_pairs.c.salesforce_id == bindparam("sf")), deletes)
    if deletes_cas:
        conn.execute(delete(sync_pairs).where(sync_pairs.c.salesforce_id == bindparam("sf"),
                                              sync_pairs.c.version == bindparam("v")), deletes_cas)
    if updates:
        conn.execute(update(sync_pairs).where(sync_pairs.c.salesforce_id == bindparam("sf"),
                                              sync_pairs.c.version == bindparam("v"))
                     .values(genesys_id=bindparam("gc"), base=bindparam("base"), version=bindparam("nv"),
                             updated_at=bindparam("at")), updates)
    if inserts:
        conn.execute(insert(sync_pairs), inserts)
    return stale


def paired_salesforce_ids(engine: Engine) -> set[str]:
    """The Salesforce side of every linked pair (a full comparison with Salesforce's ids)."""
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(select(sync_pairs.c.salesforce_id))}
