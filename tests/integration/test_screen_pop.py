"""Screen pop: the caller-ID index kept current by its workflow, and the lookup service."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from tests.helpers import refresh_index as refresh, tls
from tests.helpers import unique_us_number
from tests.helpers import pause_schedule

pytestmark = pytest.mark.integration

AUTH = ("genesys-data-action", "callbridge-demo-lookup")


@pytest.fixture(scope="module")
def account(sf):
    return sf.Account.create({"Name": "Globex", "AccountNumber": f"GLX-{time.time_ns()}",
                              "BillingCountry": "United States"})["id"]


def lookup(stack, number: str, auth=AUTH, path="lookup", key="phoneNumber") -> httpx.Response:
    return httpx.post(f"{stack.starter_url}/screenpop/{path}", json={key: number}, auth=auth, timeout=10)


async def test_lookup_finds_contacts_however_typed_and_follows_changes(stack, sf, account, temporal_client):
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"FirstName": "Maria", "LastName": "Silva", "AccountId": account,
                                 "MobilePhone": f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
                                 "Custom_Tier__c": "Premium", "MailingCountry": "USA"})["id"]
    await refresh(temporal_client, stack)

    body = lookup(stack, e164).json()
    assert body["success"] is True and body["contactId"] == contact
    assert (body["firstName"], body["lastName"], body["accountId"], body["accountName"], body["tier"]) == (
        "Maria", "Silva", account, "Globex", "Premium")
    assert body["matchCount"] == 1 and body["matches"][0]["phoneField"] == "MobilePhone"
    assert lookup(stack, f"({digits[:3]}) {digits[3:6]}-{digits[6:]}").json()["contactId"] == contact

    # The number changes in Salesforce: the index (and the lookup's cache) follow.
    new_e164, new_digits = unique_us_number()
    sf.Contact.update(contact, {"MobilePhone": new_digits})
    await refresh(temporal_client, stack)
    await asyncio.sleep(0.3)  # the cache checks the index version every 250 ms
    assert lookup(stack, new_e164).json()["contactId"] == contact
    assert lookup(stack, e164).json()["success"] is False

    # Deleted in Salesforce (getDeleted): gone from the index.
    sf.Contact.delete(contact)
    await refresh(temporal_client, stack)
    await asyncio.sleep(0.3)
    assert lookup(stack, new_e164).json()["success"] is False


async def test_numbers_typed_with_thin_spaces_and_full_width_digits_pop(stack, sf, account, temporal_client):
    e164, digits = unique_us_number()
    thin = sf.Contact.create({"LastName": "Tanaka", "AccountId": account,
                              "Phone": f"+1\u2009{digits[:3]}\u2009{digits[3:6]}\u2009{digits[6:]}"})["id"]
    wide_e164, wide_digits = unique_us_number()
    wide = "".join(chr(0xFF10 + int(d)) for d in wide_digits)
    full_width = sf.Contact.create({"LastName": "Sato", "AccountId": account,
                                    "MobilePhone": f"\uff0b\uff11 {wide[:3]} {wide[3:6]} {wide[6:]}"})["id"]
    await refresh(temporal_client, stack)

    assert lookup(stack, e164).json()["contactId"] == thin
    assert lookup(stack, wide_e164).json()["contactId"] == full_width
    # The agent's desktop may send the number as typed, too.
    assert lookup(stack, f"\uff0b\uff11{wide}").json()["contactId"] == full_width


async def test_the_schedule_brings_a_new_contact_within_two_minutes(stack, sf, account):
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"LastName": "Scheduled", "AccountId": account, "Phone": digits})["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if lookup(stack, e164).json().get("contactId") == contact:
            return
        await asyncio.sleep(1)
    pytest.fail("the scheduled refresh did not index the contact within 2 minutes")


async def test_lookup_by_account_number(stack, sf, temporal_client):
    number = f"ACC-{time.time_ns()}"
    acct = sf.Account.create({"Name": "Initech", "AccountNumber": number})["id"]
    _, digits = unique_us_number()
    contact = sf.Contact.create({"LastName": "Lumbergh", "AccountId": acct, "Phone": digits})["id"]
    await refresh(temporal_client, stack)
    body = lookup(stack, number, path="lookup-by-account", key="accountNumber").json()
    assert (body["success"], body["accountId"], body["accountName"], body["contactId"]) == (True, acct, "Initech", contact)
    assert lookup(stack, "NO-SUCH", path="lookup-by-account", key="accountNumber").json()["success"] is False


@pytest.mark.parametrize("number, reason", [("anonymous", "anonymous"), ("", "anonymous"), ("abc", "unparseable")])
def test_withheld_and_junk_numbers_are_answers_not_errors(stack, number, reason):
    resp = lookup(stack, number)
    assert resp.status_code == 200
    assert (resp.json()["success"], resp.json()["reason"]) == (False, reason)


def test_lookup_needs_the_data_action_credentials(stack):
    assert lookup(stack, "+15125550000", auth=None).status_code == 401
    assert lookup(stack, "+15125550000", auth=("genesys-data-action", "wrong")).status_code == 401
    resp = httpx.post(f"{stack.starter_url}/screenpop/lookup", json={"phoneNumber": "+1"},
                      headers={"Authorization": "Bearer guess"})
    assert resp.status_code == 401


def test_codec_endpoint_needs_a_token_and_round_trips(stack):
    import base64
    payloads = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                              "data": base64.b64encode(b'"+15125551234"').decode()}]}
    assert httpx.post(f"{stack.starter_url}/codec/encode", json=payloads).status_code == 401
    headers = {"Authorization": "Bearer callbridge-demo-codec"}
    sealed = httpx.post(f"{stack.starter_url}/codec/encode", json=payloads, headers=headers).json()
    assert b"5125551234" not in base64.b64decode(sealed["payloads"][0]["data"])
    opened = httpx.post(f"{stack.starter_url}/codec/decode", json=sealed, headers=headers).json()
    assert opened == payloads


async def test_a_contact_not_yet_indexed_is_found_live_in_salesforce(stack, sf, account, temporal_client):
    from workflows.caller_index import SCHEDULE_ID

    schedule = await pause_schedule(temporal_client, SCHEDULE_ID, "test: keep the index from learning the contact")
    try:
        e164, digits = unique_us_number()
        contact = sf.Contact.create({"LastName": "Fresh", "AccountId": account,
                                     "MobilePhone": f"+1 ({digits[:3]}) {digits[3:6]}-{digits[6:]}"})["id"]
        body = lookup(stack, e164).json()
        assert (body["success"], body["contactId"], body["source"]) == (True, contact, "salesforce")
    finally:
        await schedule.unpause()


def test_a_slow_salesforce_answers_timeout_within_the_budget(stack, salesforce):
    faults = f"{salesforce.instance_url}/_emulator/faults"
    verify = tls(salesforce)
    httpx.post(faults, verify=verify, json={"delay_next": [
        {"method": "GET", "path_regex": "/search", "seconds": 5, "count": 1}]}).raise_for_status()
    try:
        e164, _ = unique_us_number()
        started = time.monotonic()
        body = lookup(stack, e164).json()
        elapsed = time.monotonic() - started
    finally:
        httpx.delete(faults, verify=verify)
    assert (body["success"], body["reason"]) == (False, "timeout")
    assert elapsed < 3.0  # never past the data action's 3 s (budget 1.5 s; the delay was 5 s)
