"""Caller-ID index rows from Salesforce Contact records, and ranking of index hits. Pure."""

from __future__ import annotations

from typing import Any, Iterable

from callbridge.domain.matching import PERSONAL_FIELDS, PHONE_FIELDS, contact_region, parse_sf_datetime
from callbridge.domain.phone import all_e164

INDEX_SOQL_FIELDS = (
    "Id, FirstName, LastName, AccountId, Account.Name, Account.AccountNumber, Account.BillingCountry, "
    "Phone, MobilePhone, HomePhone, OtherPhone, MailingCountry, Custom_Tier__c, Last_Call_Date__c, "
    "LastActivityDate, SystemModstamp"
)


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
