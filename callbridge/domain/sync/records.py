"""Salesforce Contact and Genesys ExternalContact <-> the canonical record the merge compares.

Canonical keys are the Salesforce field names of the mapping; phones are E.164, emails
lower-case (case never makes two addresses different), blank strings are None.
"""

from __future__ import annotations

from typing import Any

from callbridge.domain.matching import contact_region
from callbridge.domain.phone import to_e164
from callbridge.domain.sync.config import GENESYS_CONTACT_FIELDS, SyncConfig


def _clean(value: Any, kind: str, region: tuple[str, bool] = ("US", True)) -> Any:
    if isinstance(value, dict):  # a Genesys PhoneNumber
        value = value.get("e164") or value.get("display")
    if isinstance(value, str):
        value = value.strip() or None
    if value is None:
        return None
    if kind == "phone":
        return to_e164(value, region[0], region[1]) or value
    if kind == "email":
        return value.lower()
    return value


def from_salesforce(record: dict[str, Any], config: SyncConfig, default_region: str) -> dict[str, Any]:
    region = contact_region(record, default_region)
    return {m.salesforce: _clean(record.get(m.salesforce), GENESYS_CONTACT_FIELDS[m.genesys], region)
            for m in config.fields}


def from_genesys(contact: dict[str, Any], config: SyncConfig, default_region: str) -> dict[str, Any]:
    return {m.salesforce: _clean(contact.get(m.genesys), GENESYS_CONTACT_FIELDS[m.genesys], (default_region, True))
            for m in config.fields}


def to_salesforce(values: dict[str, Any]) -> dict[str, Any]:
    return dict(values)


def to_genesys(values: dict[str, Any], config: SyncConfig) -> dict[str, Any]:
    by_sf = {m.salesforce: m.genesys for m in config.fields}
    out: dict[str, Any] = {}
    for name, value in values.items():
        field = by_sf[name]
        out[field] = {"display": value} if GENESYS_CONTACT_FIELDS[field] == "phone" and value else value
    return out
