"""Caller-ID index rows from Salesforce Contact records, and ranking of index hits. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from callbridge.domain.matching import PERSONAL_FIELDS, PHONE_FIELDS, contact_region, parse_sf_datetime
from callbridge.domain.phone import all_e164

INDEX_SOQL_FIELDS = (
    "Id, FirstName, LastName, AccountId, Account.Name, Account.AccountNumber, Account.BillingCountry, "
    "Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, Custom_Tier__c, Last_Call_Date__c, "
    "LastActivityDate, SystemModstamp"
)
# The contact's own fields its rows are built from (the account's come with Account changes).
INDEX_CONTACT_FIELDS = frozenset(f.strip() for f in INDEX_SOQL_FIELDS.split(",") if "." not in f)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def index_rows(record: dict[str, Any], default_region: str) -> list[dict[str, Any]]:
    """One row per phone field holding a usable number, normalised in the contact's country."""
    account = record.get("Account") or {}
    region, guessed = contact_region(record, default_region)
    last_activity = parse_sf_datetime(record.get("Last_Call_Date__c"))
    if last_activity is None and record.get("LastActivityDate"):
        last_activity = parse_sf_datetime(record["LastActivityDate"] + "T00:00:00+00:00")
    rows = []
    for field in PHONE_FIELDS:
        for e164 in all_e164(record.get(field), region, guessed):
            rows.append({
                "contact_id": record["Id"], "phone_field": field, "e164": e164,
                "first_name": record.get("FirstName"), "last_name": record.get("LastName"),
                "account_id": record.get("AccountId"), "account_name": account.get("Name"),
                "tier": record.get("Custom_Tier__c"), "last_activity": last_activity,
                "modstamp": parse_sf_datetime(record.get("SystemModstamp")),
            })
    return rows


def _contact_field(event_field: str) -> str | None:
    """A change event's field name as the Contact field it is: a compound's sub-field
    (Name.FirstName, MailingAddress.Country) flattened the way the REST API names it; None
    for a compound we don't know."""
    if "." not in event_field:
        return event_field
    parent, sub = event_field.split(".", 1)
    if parent == "Name":
        return sub
    if parent.endswith("Address"):
        return parent[: -len("Address")] + sub
    return None


def index_update_in_change(changed_fields: list[str], nulled_fields: list[str],
                           values: dict[str, Any]) -> dict[str, Any] | None:
    """The index columns a Contact UPDATE change event sets on every row of its contact, when the
    event carries all the index needs; None when the record must be read instead.

    That is call logging's own update: a new Last_Call_Date__c and no other field of the rows.
    An update's event body holds the new values of the changed fields plus LastModifiedDate;
    nulled fields are listed, not valued (Change Data Capture Developer Guide, "Change Event
    Body Fields"). The rows' modstamp becomes that LastModifiedDate: change events don't carry
    SystemModstamp, and a user's or API client's save sets both ("System Fields", SOAP API
    Developer Guide). Anything else is read: a phone is normalised in the contact's or
    account's country; a nulled Last_Call_Date__c falls back to LastActivityDate, not in the event.
    """
    modified, last_call = values.get("LastModifiedDate"), values.get("Last_Call_Date__c")
    if "Last_Call_Date__c" not in changed_fields or not isinstance(last_call, int) or not isinstance(modified, int):
        return None
    touched = {_contact_field(f) for f in (*changed_fields, *nulled_fields)}
    if touched & (INDEX_CONTACT_FIELDS | {None, "Name", "MailingAddress"}) != {"Last_Call_Date__c"}:
        return None
    return {"last_activity": _from_epoch_ms(last_call), "modstamp": _from_epoch_ms(modified)}


def _from_epoch_ms(ms: int) -> datetime:
    """A change event's dateTime (Avro long, milliseconds since the epoch, UTC)."""
    return _EPOCH + timedelta(milliseconds=ms)


def account_row(record: dict[str, Any]) -> dict[str, Any] | None:
    account = record.get("Account")
    if not record.get("AccountId") or not account:
        return None
    return {"account_id": record["AccountId"], "name": account.get("Name"),
            "account_number": account.get("AccountNumber"), "tier": None}


def rank_index_hits(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per contact, best first: own line above a shared company line, then most recent.

    A Phone-field number that several contacts share is the company's switchboard; personal
    fields and an unshared Phone are the contact's own line.
    """
    rows = list(rows)
    phone_holders = {r["contact_id"] for r in rows if r["phone_field"] == "Phone"}
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        own = r["phone_field"] in PERSONAL_FIELDS or len(phone_holders) < 2
        current = best.get(r["contact_id"])
        if current is None or (own and not current["own_line"]):
            best[r["contact_id"]] = {**r, "own_line": own}

    def key(r: dict[str, Any]) -> tuple:
        activity = r["last_activity"]
        ts = activity.timestamp() if activity else float("-inf")
        return (0 if r["own_line"] else 1, -ts, r["contact_id"])

    return sorted(best.values(), key=key)
