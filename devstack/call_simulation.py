"""Simulated calls through the Genesys emulator's call simulator (demo, CLI, benchmarks)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from callbridge.domain.matching import contact_region
from callbridge.domain.phone import to_e164
from callbridge.core.settings import Settings


@dataclass(frozen=True)
class Caller:
    contact_id: str | None  # None: a number Salesforce doesn't know
    e164: str


def known_callers(settings: Settings, limit: int = 2000) -> list[Caller]:
    """Contacts with a phone, as Genesys would present their ANI (E.164)."""
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.clients.salesforce.query import query_records

    conn = SalesforceConnection(settings)
    records = query_records(conn,
        "SELECT Id, Phone, MobilePhone, MailingCountry, Account.BillingCountry FROM Contact "
        f"WHERE Phone != null OR MobilePhone != null ORDER BY Id LIMIT {int(limit)}"
    )
    callers = []
    for r in records:
        region, guessed = contact_region(r, settings.default_region)
        for field in ("MobilePhone", "Phone"):
            e164 = to_e164(r.get(field), region, guessed)
            if e164:
                callers.append(Caller(r["Id"], e164))
                break
    return callers


def unknown_caller(rng: random.Random) -> Caller:
    return Caller(None, f"+1737{rng.randint(2000000, 9999999)}")


def place_call(genesys_url: str, caller: Caller, http: httpx.Client | None = None, **extra) -> dict:
    client = http or httpx
    resp = client.post(f"{genesys_url.rstrip('/')}/_emulator/calls", json={"ani": caller.e164, **extra}, timeout=30)
    resp.raise_for_status()
    return resp.json()


def mask_number(e164: str) -> str:
    return "…" + e164[-4:]
