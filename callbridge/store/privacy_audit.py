"""Privacy audit entries of the components that touch people's data, and breach scope.

An entry says which component did what to whom (a keyed hash, never the identifier) and which
kinds of data it handled: enough to answer "how many people, which data" within the 72 hours
of a breach notification, without the audit log becoming a copy of the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Engine, select

from callbridge.domain import privacy
from callbridge.store import privacy as store

# Salesforce/canonical field names → the kind of personal data they hold.
_FIELD_TYPES = (("email", "email"), ("phone", "phone_number"), ("firstname", "name"), ("lastname", "name"),
                ("name", "name"), ("mailing", "address"), ("address", "address"), ("title", "job_title"))


def data_types_of_fields(fields: Iterable[str | None]) -> set[str]:
    """The data types a write of these fields touches; a write with no field list (a create, a
    link, a delete) touched the contact record as a whole."""
    out: set[str] = set()
    for name in fields:
        if not name:
            out.add("contact")
            continue
        low = name.lower()
        out.add(next((kind for part, kind in _FIELD_TYPES if part in low), "contact_field"))
    return out


def call_logged(engine: Engine, key: str | bytes, *, conversation_id: str, contact_id: str | None,
                contact_created: bool) -> None:
    """Call logging wrote a Task (the caller's number, agent, times, recording link) and maybe
    created or updated a contact: one insert per call.

    An unknown caller (no contact) counts once per call: an upper bound of the people involved.
    """
    subject = (privacy.keyed_hash(key, "sf_id", contact_id) if contact_id
               else privacy.keyed_hash(key, "conversation", conversation_id))
    types = ["call_record", "phone_number", "name"]
    store.audit(engine, "call_logging", "contact_created" if contact_created else "task_logged", types,
                subject_hash=subject)


def _sync_audit_scope(engine: Engine, key: str | bytes, since: datetime) -> tuple[int, set[str], set[str]]:
    """What contact sync wrote since a date, from its own field audit (`sync_audit`): the ids are
    hashed here as the privacy audit log hashes them, so people are counted once across both."""
    from callbridge.store.sync_runs import sync_audit

    q = (select(sync_audit.c.salesforce_id, sync_audit.c.genesys_id, sync_audit.c.field)
         .where(sync_audit.c.at >= since).distinct())
    count, people, types = 0, set(), set()
    with engine.connect() as conn:
        for sf_id, gc_id, field in conn.execute(q):
            count += 1
            if sf_id:
                people.add(privacy.keyed_hash(key, "sf_id", sf_id))
            elif gc_id:
                people.add(privacy.keyed_hash(key, "genesys_id", gc_id))
            types |= data_types_of_fields([field])
    return count, people, types


def breach_scope(engine: Engine, key: str | bytes, since: datetime, component: str | None = None) -> dict[str, Any]:
    """How many people and which data types a component (or all) handled since a date."""
    count, people, type_lists = store.audit_summary(engine, since, component)
    types = {t for joined in type_lists for t in (joined or "").split(",") if t}
    if component in (None, "sync"):
        n, p, t = _sync_audit_scope(engine, key, since)
        count, people, types = count + n, people | p, types | t
    return {"people": len(people), "dataTypes": sorted(types), "entries": count}
