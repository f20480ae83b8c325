"""Which Salesforce contact is the caller? Pure ranking of candidate records."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from callbridge.domain.models import ContactMatch
from callbridge.domain.phone import all_e164, known_region

PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
# A contact's own lines; Phone is often the company's shared switchboard number.
PERSONAL_FIELDS = ("MobilePhone", "HomePhone", "OtherPhone")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_sf_datetime(value: str | None) -> datetime | None:
    """Salesforce dateTime ("2026-03-14T10:00:00.000+0000") -> aware datetime."""
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)


def contact_from_record(record: dict[str, Any], matched_field: str | None = None) -> ContactMatch:
    account = record.get("Account") or {}
    return ContactMatch(
        id=record["Id"],
        name=record.get("Name") or " ".join(
            p for p in (record.get("FirstName"), record.get("LastName")) if p
        ),
        account_id=record.get("AccountId"),
        account_name=account.get("Name"),
        last_call_date=parse_sf_datetime(record.get("Last_Call_Date__c")),
        last_modified_date=parse_sf_datetime(record.get("LastModifiedDate")),
        matched_field=matched_field,
    )


def contact_region(record: dict[str, Any], default_region: str) -> tuple[str, bool]:
    """(region, guessed): from MailingCountry, else the Account's BillingCountry, else the default."""
    account = record.get("Account") or {}
    region = known_region(record.get("MailingCountry")) or known_region(account.get("BillingCountry"))
    return (region, False) if region else (default_region, True)


def matched_field(record: dict[str, Any], caller_e164: str, default_region: str) -> str | None:
    """The phone field of the record holding the caller's number, own lines first."""
    region, guessed = contact_region(record, default_region)
    for field in (*PERSONAL_FIELDS, "Phone"):
        if caller_e164 in all_e164(record.get(field), region, guessed):
            return field
    return None


def rank_contacts(
    records: Iterable[dict[str, Any]], caller_e164: str, default_region: str
) -> list[ContactMatch]:
    """Every record that really holds the number, best first.

    Own line above a shared company line, then the most recently active
    (last call, then last modification), then id for a stable order.
    """
    matches = []
    for record in records:
        field = matched_field(record, caller_e164, default_region)
        if field is not None:
            matches.append(contact_from_record(record, field))

    def key(m: ContactMatch) -> tuple:
        return (
            0 if m.matched_field in PERSONAL_FIELDS else 1,
            -(m.last_call_date or _EPOCH).timestamp(),
            -(m.last_modified_date or _EPOCH).timestamp(),
            m.id,
        )

    return sorted(matches, key=key)
