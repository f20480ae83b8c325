"""Privacy logic without I/O: keyed hashes, tombstone matching, masking, certificates,
recording retention decisions and breach scope.

Identifiers of a person are only ever kept as HMAC-SHA256 keyed hashes: a bare SHA-256 of an
email is reversed by hashing a list of addresses; without the key nobody can do that.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Any, Container, Iterable, Literal

IdentifierKind = Literal["email", "phone", "sf_id", "genesys_id"]
_SF_ID15 = re.compile(r"^[A-Za-z0-9]{15}$")


def normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return "+" + re.sub(r"\D", "", value)  # callers pass E.164; this only drops formatting
    if kind == "sf_id" and len(value) == 18:
        return value[:15]  # the 15- and 18-character forms of one id hash alike
    return value


def keyed_hash(key: str | bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of `kind:normalised value`, hex: the kind keeps an id from matching a phone."""
    secret = key.encode() if isinstance(key, str) else key
    return hmac.new(secret, f"{kind}:{normalise(kind, value)}".encode(), hashlib.sha256).hexdigest()


def subject_hashes(key: str | bytes, *, emails: Iterable[str] = (), phones: Iterable[str] = (),
                   sf_ids: Iterable[str] = (), genesys_ids: Iterable[str] = ()) -> dict[str, str]:
    """{hash: kind} for every identifier of a person."""
    out: dict[str, str] = {}
    for kind, values in (("email", emails), ("phone", phones), ("sf_id", sf_ids), ("genesys_id", genesys_ids)):
        for v in values:
            if v and v.strip():
                out[keyed_hash(key, kind, v)] = kind
    return out


def is_erased(tombstones: Container[str], key: str | bytes, *, email: str | None = None,
              phones: Iterable[str | None] = (), sf_ids: Iterable[str | None] = (),
              genesys_ids: Iterable[str | None] = ()) -> bool:
    """Whether any identifier of a record matches a tombstone.

    Contact sync calls this before creating or linking a record (with the store's tombstones,
    `callbridge.store.privacy.Tombstones`): an erased person is never re-created.
    """
    hashes = subject_hashes(key, emails=[email] if email else [], phones=[p for p in phones if p],
                            sf_ids=[i for i in sf_ids if i], genesys_ids=[i for i in genesys_ids if i])
    return any(h in tombstones for h in hashes)


# --- masking (the seed's maskPIIForAnalytics) ------------------------------------------------

MASKED_NAME = "MASKED"
MASKED_EMAIL = "MASKED@masked.com"
PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    digits = re.sub(r"\D", "", value)
    return "XXX-XXX-" + digits[-4:] if len(digits) >= 4 else "XXX-XXX-XXXX"


def masked_contact(record: dict[str, Any], key: str | bytes) -> dict[str, Any]:
    """A contact for analytics: names and email masked, phones to their last 4 digits, and a
    keyed hash of the email to join on."""
    email = record.get("Email")
    return {
        "Id": record.get("Id"),
        "AccountId": record.get("AccountId"),
        "FirstName": MASKED_NAME if record.get("FirstName") else "",
        "LastName": MASKED_NAME,
        "Email": MASKED_EMAIL if email else "",
        "EmailHash": keyed_hash(key, "email", email) if email else "",
        **{f: mask_phone(record.get(f)) or "" for f in PHONE_FIELDS},
        "MailingCountry": record.get("MailingCountry") or "",
        "CreatedDate": record.get("CreatedDate") or "",
    }


EXPORT_COLUMNS = ["Id", "AccountId", "FirstName", "LastName", "Email", "EmailHash", *PHONE_FIELDS,
                  "MailingCountry", "CreatedDate"]


# --- consent ------------------------------------------------------------------------------------

def may_sync(consents: Iterable[dict[str, Any]], service_type: str, required: bool) -> bool:
    """A contact syncs to Genesys only with a service consent that isn't withdrawn (when required).

    The newest consent record of the type decides: a later grant after a withdrawal counts.
    """
    if not required:
        return True
    of_type = [c for c in consents if c.get("Consent_Type__c") == service_type]
    if not of_type:
        return False
    latest = max(of_type, key=lambda c: (c.get("Consent_Date__c") or "", c.get("CreatedDate") or ""))
    return not latest.get("Withdrawn__c")


# --- recording retention ------------------------------------------------------------------------

RetentionDecision = Literal["deleted_gdpr", "kept_legal_hold", "deleted_retention", "kept"]


def evaluate_recording(created: datetime, now: datetime, max_age: timedelta, *, on_legal_hold: bool,
                       subject_erased: bool) -> RetentionDecision:
    """A legal hold keeps a recording whatever else applies (GDPR art. 17(3)(e): data needed for
    legal claims is exempt from erasure), unlike the seed, which checks erasure first; then an
    erased person's recordings go, then those past the policy's age."""
    if on_legal_hold:
        return "kept_legal_hold"
    if subject_erased:
        return "deleted_gdpr"
    if now - created > max_age:
        return "deleted_retention"
    return "kept"


# --- certificates -------------------------------------------------------------------------------

LEGAL_HOLD_REASON = "legal hold: GDPR art. 17(3)(e) (establishment, exercise or defence of legal claims)"


def build_certificate(*, request_id: str, workflow_id: str, subject_hash: str, requested_at: datetime,
                      completed_at: datetime, deleted: dict[str, list[str]],
                      verification: dict[str, int], key: str | bytes,
                      kept: dict[str, list[str]] | None = None, local: dict[str, int] | None = None) -> dict[str, Any]:
    """What was deleted where, when, by which workflow: counts and keyed hashes, never PII.
    What was kept (recordings on legal hold) is named the same way, with the reason; rows of
    Callbridge's own stores are counted.

    Record ids are hashed too: a Salesforce id in a certificate would otherwise point back at
    whatever the recycle bin or a backup still holds.
    """
    return {
        "requestId": request_id,
        "workflowId": workflow_id,
        "subjectHash": subject_hash,
        "requestedAt": requested_at.isoformat(),
        "completedAt": completed_at.isoformat(),
        "deleted": {
            where: {"count": len(ids), "idHashes": sorted(keyed_hash(key, "record", i) for i in ids)}
            for where, ids in sorted(deleted.items())
        },
        "kept": {
            where: {"count": len(ids), "idHashes": sorted(keyed_hash(key, "record", i) for i in ids),
                    "reason": LEGAL_HOLD_REASON}
            for where, ids in sorted((kept or {}).items()) if ids
        },
        "localStores": dict(sorted((local or {}).items())),
        "verification": {"searched": sorted(verification), "remaining": sum(verification.values()),
                         "bySystem": dict(sorted(verification.items()))},
    }


# --- breach scope -------------------------------------------------------------------------------

def breach_scope(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """From audit entries (subject_hash, data_types): how many people, which data types."""
    people: set[str] = set()
    types: set[str] = set()
    count = 0
    for e in entries:
        count += 1
        if e.get("subject_hash"):
            people.add(e["subject_hash"])
        types.update(t for t in (e.get("data_types") or "").split(",") if t)
    return {"people": len(people), "dataTypes": sorted(types), "entries": count}


def erasure_alerts(requested_at: datetime, reminder_days: int, escalation_days: int) -> list[tuple[str, datetime]]:
    return [("reminder", requested_at + timedelta(days=reminder_days)),
            ("escalation", requested_at + timedelta(days=escalation_days))]
