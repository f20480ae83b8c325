"""Privacy tables in the state store: tombstones, erasure requests and certificates, the audit
log (identifiers as keyed hashes only), legal holds and retention reports.

An erasure request keeps the person's identifiers sealed (AES-GCM with the payload keys) only
while it runs, so no workflow history needs them; they are wiped when the certificate is
recorded.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, func, insert, select, update

from callbridge.core.codec import parse_keys
from callbridge.store.tables import tombstones, erasure_requests, audit_log, legal_holds, retention_reports  # noqa: F401  (the schema lives in one module)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; they were stored in UTC.
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


# --- sealing ------------------------------------------------------------------------------------

def seal(payload_keys: str, data: dict[str, Any]) -> str:
    kid, key = parse_keys(payload_keys)[0]
    nonce = os.urandom(12)
    return f"{kid}:{(nonce + AESGCM(key).encrypt(nonce, json.dumps(data).encode(), kid.encode())).hex()}"


def unseal(payload_keys: str, sealed: str) -> dict[str, Any]:
    kid, _, blob = sealed.partition(":")
    key = dict(parse_keys(payload_keys))[kid]
    raw = bytes.fromhex(blob)
    return json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], kid.encode()))


# --- tombstones ---------------------------------------------------------------------------------

class Tombstones:
    """`hash in Tombstones(engine)` asks the store: what `callbridge.domain.privacy.is_erased` takes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __contains__(self, item: object) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(tombstones.c.hash).where(tombstones.c.hash == item)).first() is not None


def known_tombstones(engine: Engine, hashes: Iterable[str]) -> set[str]:
    """Which of these hashes are tombstones: one query for a whole page of contacts."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            found |= set(conn.execute(select(tombstones.c.hash)
                                      .where(tombstones.c.hash.in_(wanted[start:start + 500]))).scalars())
    return found


def add_tombstones(engine: Engine, request_id: str, hashes: dict[str, str]) -> int:
    if not hashes:
        return 0
    with engine.begin() as conn:
        known = set(conn.execute(select(tombstones.c.hash).where(tombstones.c.hash.in_(list(hashes)))).scalars())
        rows = [{"hash": h, "kind": k, "request_id": request_id, "created_at": _now()}
                for h, k in hashes.items() if h not in known]
        if rows:
            conn.execute(insert(tombstones), rows)
    return len(rows)


def tombstone_count(engine: Engine, request_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tombstones)
                            .where(tombstones.c.request_id == request_id)).scalar_one()


# --- erasure requests ---------------------------------------------------------------------------

def new_request_id() -> str:
    return str(uuid.uuid4())  # random: never derived from the person


def create_request(engine: Engine, request_id: str, subject_hash: str, requested_at: datetime,
                   deadline: datetime, sealed_identifiers: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(erasure_requests).values(
            request_id=request_id, subject_hash=subject_hash, status="running", requested_at=requested_at,
            deadline=deadline, sealed_identifiers=sealed_identifiers,
        ))


def get_request(engine: Engine, request_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(erasure_requests).where(erasure_requests.c.request_id == request_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for k in ("requested_at", "deadline", "completed_at"):
        out[k] = _aware(out[k])
    out["certificate"] = json.loads(out["certificate"]) if out["certificate"] else None
    return out


def update_identifiers(engine: Engine, request_id: str, sealed_identifiers: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(erasure_requests).where(erasure_requests.c.request_id == request_id)
                     .values(sealed_identifiers=sealed_identifiers))


def complete_request(engine: Engine, request_id: str, certificate: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(update(erasure_requests).where(erasure_requests.c.request_id == request_id).values(
            status="completed", completed_at=_now(), certificate=json.dumps(certificate), sealed_identifiers=None,
        ))


def fail_request(engine: Engine, request_id: str, report: dict[str, Any]) -> bool:
    """Mark a running request failed, with a PII-free report in place of a certificate.

    The sealed identifiers stay: the person is not erased yet, and a new request needs them.
    A completed request is never turned into a failed one.
    """
    with engine.begin() as conn:
        return conn.execute(update(erasure_requests).where(
            erasure_requests.c.request_id == request_id, erasure_requests.c.status == "running",
        ).values(status="failed", completed_at=_now(), certificate=json.dumps(report))).rowcount == 1


def tombstoned_at(engine: Engine, request_id: str) -> datetime | None:
    """When this request first wrote its tombstone (sync runs loaded before then may not have seen it)."""
    with engine.connect() as conn:
        return _aware(conn.execute(select(func.min(tombstones.c.created_at))
                                   .where(tombstones.c.request_id == request_id)).scalar())


# --- audit log ----------------------------------------------------------------------------------

def audit(engine: Engine, component: str, action: str, data_types: Iterable[str] = (),
          subject_hash: str | None = None, request_id: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(insert(audit_log).values(
            at=_now(), component=component, action=action, data_types=",".join(sorted(set(data_types))),
            subject_hash=subject_hash, request_id=request_id,
        ))


def audit_summary(engine: Engine, since: datetime, component: str | None = None
                  ) -> tuple[int, set[str], set[str]]:
    """(entries, distinct subject hashes, distinct data-type lists) since a date, aggregated in
    the database: call logging alone writes about 1.6 million entries a day."""
    where = [audit_log.c.at >= since]
    if component:
        where.append(audit_log.c.component == component)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(audit_log).where(*where)).scalar_one()
        people = set(conn.execute(select(audit_log.c.subject_hash).where(
            *where, audit_log.c.subject_hash.is_not(None)).distinct()).scalars())
        types = set(conn.execute(select(audit_log.c.data_types).where(*where).distinct()).scalars())
    return count, people, types


def audit_entries(engine: Engine, since: datetime, component: str | None = None) -> list[dict[str, Any]]:
    q = select(audit_log).where(audit_log.c.at >= since)
    if component:
        q = q.where(audit_log.c.component == component)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def count_audit_for(engine: Engine, hashes: Iterable[str], keep_request_id: str | None = None) -> int:
    q = select(func.count()).select_from(audit_log).where(audit_log.c.subject_hash.in_(list(hashes)))
    if keep_request_id:
        q = q.where((audit_log.c.request_id.is_(None)) | (audit_log.c.request_id != keep_request_id))
    with engine.connect() as conn:
        return conn.execute(q).scalar_one()


def delete_audit_for(engine: Engine, hashes: Iterable[str], keep_request_id: str | None = None) -> int:
    """Audit entries about the person go with them, except the erasure's own (proof it happened)."""
    q = delete(audit_log).where(audit_log.c.subject_hash.in_(list(hashes)))
    if keep_request_id:
        q = q.where((audit_log.c.request_id.is_(None)) | (audit_log.c.request_id != keep_request_id))
    with engine.begin() as conn:
        return conn.execute(q).rowcount


# --- legal holds and retention reports ----------------------------------------------------------

def set_legal_hold(engine: Engine, conversation_id: str, reason: str = "", active: bool = True) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(legal_holds).where(legal_holds.c.conversation_id == conversation_id)
                            .values(active=active, reason=reason)).rowcount
        if not done:
            conn.execute(insert(legal_holds).values(conversation_id=conversation_id, reason=reason,
                                                    created_at=_now(), active=active))


def hold_conversations(engine: Engine) -> set[str]:
    """Every conversation ever put on hold, released ones too: once a hold is lifted, the
    retention run deletes what an erasure had to keep (their Tasks are gone by then)."""
    with engine.connect() as conn:
        return set(conn.execute(select(legal_holds.c.conversation_id)).scalars())


def held_conversations(engine: Engine, conversation_ids: Iterable[str]) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(legal_holds.c.conversation_id).where(
            legal_holds.c.conversation_id.in_(list(conversation_ids)), legal_holds.c.active.is_(True))).scalars())


def save_retention_report(engine: Engine, run_id: str, report: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(retention_reports).where(retention_reports.c.run_id == run_id))
        conn.execute(insert(retention_reports).values(run_id=run_id, at=_now(), report=json.dumps(report)))


def retention_report(engine: Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        raw = conn.execute(select(retention_reports.c.report).where(retention_reports.c.run_id == run_id)).scalar()
    return json.loads(raw) if raw else None
