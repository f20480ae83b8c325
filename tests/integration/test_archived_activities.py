"""Archived activities (issue #16 item 2): Salesforce archives closed Tasks and Events older
than 365 days; `query` no longer returns them, only `queryAll` does. Erasure must still find,
delete and count them (and the call's recording), and retention must still see them."""

from __future__ import annotations

import httpx
import pytest
from simple_salesforce.format import format_soql

from tests.helpers import ADMIN, make_person, place_call, stack_settings, tls, unique_us_number
from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(sf):
    return sf.Account.create({"Name": "Archive Corp", "BillingCountry": "United States"})["id"]


def age_and_archive(sf, salesforce, task_ids: list[str], event_ids: list[str]) -> None:
    """Date the activities two years back, then run Salesforce's archival process (as of today)."""
    for task_id in task_ids:
        sf.Task.update(task_id, {"ActivityDate": "2020-01-10", "Status": "Completed"})
    for event_id in event_ids:
        sf.Event.update(event_id, {"StartDateTime": "2020-01-10T10:00:00Z", "EndDateTime": "2020-01-10T10:30:00Z"})
    httpx.post(f"{salesforce.instance_url}/_emulator/archive", json={}, verify=tls(salesforce)).raise_for_status()


def live_in_salesforce(sf, soql: str) -> int:
    """Records found by queryAll that are not in the recycle bin: archived ones included."""
    return sum(1 for r in sf.query_all(soql, include_deleted=True)["records"] if not r["IsDeleted"])


async def test_erasure_finds_deletes_and_counts_archived_calls_and_their_recording(
        stack, sf, account, genesys, salesforce, temporal_client):
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    conversation = await place_call(genesys, stack, temporal_client, e164)
    task_ids = [r["Id"] for r in sf.query(format_soql(
        "SELECT Id FROM Task WHERE Genesys_Conversation_Id__c = {}", conversation))["records"]]
    assert len(task_ids) == 1
    age_and_archive(sf, salesforce, task_ids, [person["event_id"]])
    tasks_of = format_soql("SELECT Id, IsDeleted FROM Task WHERE WhoId = {}", person["contact_id"])
    events_of = format_soql("SELECT Id, IsDeleted FROM Event WHERE WhoId = {}", person["contact_id"])
    assert sf.query(tasks_of)["totalSize"] == 0 and live_in_salesforce(sf, tasks_of) == 1  # archived

    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": person["email"]}, auth=ADMIN, timeout=30)
    assert resp.status_code == 202, resp.text
    request_id = resp.json()["requestId"]
    result = await temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id)).result()
    assert result.status == "completed", result
    cert = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN).json()["certificate"]
    counts = {k: v["count"] for k, v in cert["deleted"].items()}
    assert counts["salesforce.tasks"] == 1 and counts["salesforce.events"] == 1, counts
    assert counts["genesys.recordings"] == 1, counts
    assert live_in_salesforce(sf, tasks_of) == 0 and live_in_salesforce(sf, events_of) == 0
    headers = {"Authorization": "Bearer " + httpx.post(
        f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
        auth=(genesys.client_id, genesys.client_secret)).json()["access_token"]}
    assert httpx.get(f"{genesys.api_url}/api/v2/conversations/{conversation}/recordings",
                     params={"maxWaitMs": 0}, headers=headers).json() == []


async def test_retention_sees_archived_calls(stack, sf, account, genesys, salesforce, temporal_client):
    from activities.privacy import PrivacyActivities
    from callbridge.clients.genesys.connection import GenesysConnection
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.domain.privacy_models import RetentionScan
    from temporalio.testing import ActivityEnvironment

    e164, digits = unique_us_number()
    make_person(sf, account, genesys, e164, digits)
    conversation = await place_call(genesys, stack, temporal_client, e164)
    task_ids = [r["Id"] for r in sf.query(format_soql(
        "SELECT Id FROM Task WHERE Genesys_Conversation_Id__c = {}", conversation))["records"]]
    age_and_archive(sf, salesforce, task_ids, [])
    settings = stack_settings(stack)
    acts = PrivacyActivities(SalesforceConnection(settings), GenesysConnection(settings), settings)
    scanned = ActivityEnvironment().run(acts.retention_conversations, RetentionScan(run_id="archived-test", max_age_days=30))
    assert conversation in scanned
