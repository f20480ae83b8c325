"""Erasure leaves nothing in Salesforce (issue #16 item 6): records are hard-deleted (Bulk API
2.0 hardDelete), so queryAll finds nothing, not even in the recycle bin; without the "Bulk
API Hard Delete" permission the erasure stops with the reason and an alert, no certificate."""

from __future__ import annotations

import json

import httpx
import pytest
from simple_salesforce.format import format_soql
from temporalio.client import WorkflowFailureError

from tests.helpers import ADMIN, make_person, place_call, tls, unique_us_number
from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(sf):
    return sf.Account.create({"Name": "Nothing Left Corp", "BillingCountry": "United States"})["id"]


def in_salesforce_at_all(sf, person: dict, conversation: str, binned_event: str) -> dict[str, int]:
    """queryAll: live, archived and recycle-bin records alike."""
    def count(soql: str) -> int:
        return sf.query_all(soql, include_deleted=True)["totalSize"]

    return {
        "contact": count(format_soql("SELECT Id FROM Contact WHERE Id = {}", person["contact_id"])),
        "contact by email": count(format_soql("SELECT Id FROM Contact WHERE Email = {}", person["email"])),
        "call": count(format_soql("SELECT Id FROM Task WHERE Genesys_Conversation_Id__c = {}", conversation)),
        "events": count(format_soql("SELECT Id FROM Event WHERE Id IN {}", [person["event_id"], binned_event])),
        "consent": count(format_soql("SELECT Id FROM Contact_Consent__c WHERE Id = {}", person["consent_id"])),
    }


async def erase(stack, temporal_client, email: str):
    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": email}, auth=ADMIN, timeout=30)
    assert resp.status_code == 202, resp.text
    request_id = resp.json()["requestId"]
    return request_id, temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))


async def test_erasure_leaves_nothing_in_salesforce_not_even_in_the_recycle_bin(
        stack, sf, account, genesys, temporal_client):
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    conversation = await place_call(genesys, stack, temporal_client, e164)
    # An agent deleted a meeting with the person a week ago: it sits in the recycle bin.
    binned_event = sf.Event.create({"WhoId": person["contact_id"], "Subject": "Cancelled visit",
                                    "StartDateTime": "2026-02-01T10:00:00Z", "EndDateTime": "2026-02-01T11:00:00Z"})["id"]
    sf.Event.delete(binned_event)
    assert all(in_salesforce_at_all(sf, person, conversation, binned_event).values())

    request_id, handle = await erase(stack, temporal_client, person["email"])
    result = await handle.result()
    assert result.status == "completed", result
    cert = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN).json()["certificate"]
    assert cert["deleted"]["salesforce.events"]["count"] == 2  # the binned one too
    left = in_salesforce_at_all(sf, person, conversation, binned_event)
    assert not any(left.values()), left


async def test_without_the_hard_delete_permission_the_erasure_stops_with_the_reason_and_an_alert(
        stack, sf, account, genesys, salesforce, temporal_client):
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    permissions = f"{salesforce.instance_url}/_emulator/permissions"
    httpx.post(permissions, json={"PermissionsBulkApiHardDelete": False}, verify=tls(salesforce)).raise_for_status()
    try:
        request_id, handle = await erase(stack, temporal_client, person["email"])
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    finally:
        httpx.post(permissions, json={"PermissionsBulkApiHardDelete": True}, verify=tls(salesforce)).raise_for_status()
    status = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN).json()
    assert status["status"] == "failed" and not status.get("certificate")
    assert "HardDeleteNotPermitted" in json.dumps(status)
    progress = await handle.query(GdprErasureWorkflow.status)
    assert [a.kind for a in progress.alerts] == ["failed"]
    # Nothing was half-erased in Salesforce: the person is still all there for the retry.
    assert sf.Contact.get(person["contact_id"])["Id"]
