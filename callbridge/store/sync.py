"""Contact-sync state: one row per linked pair, with the base both sides last agreed on.

Every write of a base is compare-and-swap on `version`, so the per-pair path and the bulk path
can never overwrite each other's work: a stale base means re-read and merge again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Integer, String, Table, Text, delete, insert, or_, select, update

from callbridge.store.db import metadata

sync_pairs = Table(
    "sync_pairs", metadata,
    Column("salesforce_id", String(18), primary_key=True),
    Column("genesys_id", String(64), nullable=False, unique=True),
    Column("base", Text, nullable=False),  # JSON of the canonical fields
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


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
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
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
