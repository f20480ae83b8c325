"""Contact-sync bookkeeping: one row per run (its stats), the audit of every field change,
and the review list of matches Callbridge would not guess.

The audit holds field values (it has to say old → new), so it is keyed by the pair's ids and
an erasure deletes a person's rows (`forget_pair_audit`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import Engine, delete, insert, or_, select, update
from callbridge.store.tables import sync_runs, sync_audit, sync_review, sync_run_pairs  # noqa: F401  (the schema lives in one module)


STAT_FIELDS = ("pairs", "created", "updated", "deleted", "unchanged", "skipped", "conflicts", "errors",
               "salesforce_changes", "genesys_changes", "salesforce_requests", "genesys_requests")


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- runs -----------------------------------------------------------------------------------

def start_run(engine: Engine, run_id: str, workflow_id: str, mode: str, path: str = "per_pair") -> None:
    """Idempotent: an activity retried, or a run continued as new, keeps the first start."""
    with engine.begin() as conn:
        if conn.execute(select(sync_runs.c.run_id).where(sync_runs.c.run_id == run_id)).first():
            conn.execute(update(sync_runs).where(sync_runs.c.run_id == run_id).values(path=path))
            return
        conn.execute(insert(sync_runs).values(run_id=run_id, workflow_id=workflow_id, started_at=_now(),
                                              status="running", path=path, mode=mode, stats="{}", note=""))


def finish_run(engine: Engine, run_id: str, status: str, stats: dict[str, Any], duration_seconds: float,
               health_score: int | None, note: str = "") -> None:
    with engine.begin() as conn:
        conn.execute(update(sync_runs).where(sync_runs.c.run_id == run_id).values(
            finished_at=_now(), status=status, stats=json.dumps(stats, sort_keys=True),
            duration_seconds=duration_seconds, health_score=health_score, note=note[:255]))


def list_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_runs).order_by(sync_runs.c.started_at.desc()).limit(limit)).mappings().all()
    return [{**r, "stats": json.loads(r["stats"] or "{}")} for r in rows]


def runs_since(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_runs).where(sync_runs.c.started_at >= since)
                            .order_by(sync_runs.c.started_at)).mappings().all()
    return [{**r, "stats": json.loads(r["stats"] or "{}")} for r in rows]


def store_run_pairs(engine: Engine, run_id: str, keys: list[tuple[str | None, str | None]]) -> int:
    """Idempotent: a retried collection replaces what an earlier attempt wrote."""
    with engine.begin() as conn:
        conn.execute(delete(sync_run_pairs).where(sync_run_pairs.c.run_id == run_id))
        for start in range(0, len(keys), 5000):
            conn.execute(insert(sync_run_pairs), [
                {"run_id": run_id, "seq": start + i, "salesforce_id": sf, "genesys_id": gc}
                for i, (sf, gc) in enumerate(keys[start:start + 5000])])
    return len(keys)


def run_pairs(engine: Engine, run_id: str, offset: int, limit: int) -> list[tuple[str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_run_pairs.c.salesforce_id, sync_run_pairs.c.genesys_id)
                            .where(sync_run_pairs.c.run_id == run_id, sync_run_pairs.c.seq >= offset,
                                   sync_run_pairs.c.seq < offset + limit)
                            .order_by(sync_run_pairs.c.seq)).all()
    return [(r[0], r[1]) for r in rows]


def forget_run_pairs(engine: Engine, run_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sync_run_pairs).where(sync_run_pairs.c.run_id == run_id))


# -- audit ----------------------------------------------------------------------------------

def add_audit(engine: Engine, entries: Iterable[dict[str, Any]]) -> int:
    """Entries: workflow_id, run_id, salesforce_id, genesys_id, action, field, old, new, written_to, reason."""
    with engine.begin() as conn:
        return add_audit_in(conn, entries)


def add_audit_in(conn, entries: Iterable[dict[str, Any]]) -> int:
    now = _now()
    rows = [{"at": now, "workflow_id": e["workflow_id"], "run_id": e.get("run_id"),
             "salesforce_id": e.get("salesforce_id"), "genesys_id": e.get("genesys_id"),
             "action": e["action"], "field": e.get("field"),
             "old_value": None if e.get("old") is None else json.dumps(e["old"]),
             "new_value": None if e.get("new") is None else json.dumps(e["new"]),
             "written_to": e.get("written_to"), "reason": (e.get("reason") or "")[:120]} for e in entries]
    if rows:
        conn.execute(insert(sync_audit), rows)
    return len(rows)


def audit_for_pair(engine: Engine, salesforce_id: str | None = None, genesys_id: str | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:
    conds = []
    if salesforce_id:
        conds.append(sync_audit.c.salesforce_id == salesforce_id)
    if genesys_id:
        conds.append(sync_audit.c.genesys_id == genesys_id)
    if not conds:
        return []
    with engine.connect() as conn:
        rows = conn.execute(select(sync_audit).where(or_(*conds)).order_by(sync_audit.c.id.desc())
                            .limit(limit)).mappings().all()
    return [{**r, "old": _loads(r["old_value"]), "new": _loads(r["new_value"])} for r in rows]


def audit_since(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_audit.c.at, sync_audit.c.salesforce_id, sync_audit.c.genesys_id,
                                   sync_audit.c.field, sync_audit.c.action)
                            .where(sync_audit.c.at >= since)).mappings().all()
    return [dict(r) for r in rows]


def forget_pair_audit(engine: Engine, salesforce_ids: Iterable[str], genesys_ids: Iterable[str]) -> int:
    """Erasure: the audit rows of a person's pairs hold their data; they go with the person."""
    sf, gc = [i for i in salesforce_ids if i], [i for i in genesys_ids if i]
    if not sf and not gc:
        return 0
    with engine.begin() as conn:
        return conn.execute(delete(sync_audit).where(or_(sync_audit.c.salesforce_id.in_(sf),
                                                         sync_audit.c.genesys_id.in_(gc)))).rowcount


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


# -- review list ----------------------------------------------------------------------------

def add_review(engine: Engine, reason: str, genesys_id: str | None, salesforce_ids: Iterable[str],
               detail: str, workflow_id: str | None = None) -> bool:
    """One open row per case; a case seen again by a later run is not added twice."""
    candidates = sorted(i for i in salesforce_ids if i)
    key = f"{reason}:{genesys_id or ''}:{','.join(candidates)}"[:160]
    with engine.begin() as conn:
        if conn.execute(select(sync_review.c.key).where(sync_review.c.key == key)).first():
            return False
        conn.execute(insert(sync_review).values(key=key, at=_now(), reason=reason, genesys_id=genesys_id,
                                                salesforce_ids=",".join(candidates)[:255], detail=detail[:255],
                                                workflow_id=workflow_id))
    return True


def list_review(engine: Engine, include_resolved: bool = False) -> list[dict[str, Any]]:
    query = select(sync_review).order_by(sync_review.c.at)
    if not include_resolved:
        query = query.where(sync_review.c.resolved_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{**r, "salesforce_ids": [i for i in r["salesforce_ids"].split(",") if i]} for r in rows]


def resolve_review(engine: Engine, key: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(update(sync_review).where(sync_review.c.key == key, sync_review.c.resolved_at.is_(None))
                            .values(resolved_at=_now())).rowcount == 1


def forget_review(engine: Engine, salesforce_ids: Iterable[str], genesys_ids: Iterable[str]) -> int:
    sf, gc = [i for i in salesforce_ids if i], [i for i in genesys_ids if i]
    with engine.begin() as conn:
        n = conn.execute(delete(sync_review).where(sync_review.c.genesys_id.in_(gc))).rowcount if gc else 0
        for sf_id in sf:
            n += conn.execute(delete(sync_review).where(sync_review.c.salesforce_ids.contains(sf_id))).rowcount
    return n
