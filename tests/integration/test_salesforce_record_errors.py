"""Per-record Salesforce errors, end to end (issue #16 item 4): the real worker and Temporal, the
emulator's record rules. Transient errors (UNABLE_TO_LOCK_ROW) are retried; permanent ones
(INVALID_EMAIL_ADDRESS, …) go to the sync review list instead of failing the run; in an
all-or-none composite the real error, not PROCESSING_HALTED, is what decides.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from callbridge.clients.salesforce.bulk import bulk_query
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from tests.helpers import (
    call_event,
    conversation_id,
    edit_gc_contact,
    new_sf_contact,
    run_sync,
    stack_settings,
    tasks_for_conversation,
    tls,
    unique_us_number,
)
from tests.integration.test_call_logging import run_direct

pytestmark = pytest.mark.integration


@pytest.fixture
def faults(salesforce):
    """POST rules to the emulator's fault admin; cleared after the test."""
    admin = f"{salesforce.instance_url}/_emulator/faults"

    def add(**rules) -> None:
        httpx.post(admin, verify=tls(salesforce), json=rules).raise_for_status()

    yield add
    httpx.delete(admin, verify=tls(salesforce)).raise_for_status()


async def test_a_locked_task_row_in_the_create_contact_composite_is_retried(stack, sf, faults, temporal_client):
    # All or none: the Task fails with a lock error, the contact's step reads PROCESSING_HALTED.
    faults(fail_records=[{"sobject": "Task", "operation": "insert", "errorCode": "UNABLE_TO_LOCK_ROW", "count": 1}])
    e164, _ = unique_us_number()
    event = call_event(conversation_id(), e164)

    result = await run_direct(temporal_client, stack, event, unknown_caller_policy="create_contact")

    assert result.outcome == "logged_new_contact"
    [task] = tasks_for_conversation(sf, event["conversationId"])
    assert task["WhoId"] == result.contact_id and sf.Contact.get(result.contact_id)["Phone"] == e164


def test_a_401_while_reading_bulk_query_results_logs_in_again(stack, salesforce, faults):
    sf_conn = SalesforceConnection(stack_settings(stack))
    faults(fail_next=[{"method": "GET", "path_regex": r"/jobs/query/[^/]+/results", "status": 401,
                       "errorCode": "INVALID_SESSION_ID", "count": 1}])

    rows = [r for page in bulk_query(sf_conn, "SELECT Id FROM Contact", operation="query", poll_seconds=0.2)
            for r in page]

    assert rows and all(r["Id"] for r in rows)


def engine_of(stack):
    return get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])


def refused_cases(stack, sf_id: str) -> list[dict]:
    return [c for c in sync_runs.list_review(engine_of(stack)) if sf_id in c["salesforce_ids"]
            and c["reason"] == "salesforce_refused"]


@pytest.mark.parametrize("path", ["per_pair", "bulk"])
async def test_an_email_from_genesys_that_salesforce_refuses_goes_to_the_review_list(
        stack, sf, gc, faults, temporal_client, path):
    sf_id = new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="bidirectional")
    gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
    before = sf.Contact.get(sf_id)["Email"]
    # Genesys takes an address without a top-level domain; Salesforce's Email field doesn't.
    refused = f"ana.{uuid.uuid4().hex[:8]}@example"
    edit_gc_contact(gc, gc_id, workEmail=refused)

    result = await run_sync(temporal_client, stack, mode="bidirectional", force_path=path)

    assert result.errors == 0
    assert sf.Contact.get(sf_id)["Email"] == before
    [case] = refused_cases(stack, sf_id)
    assert case["genesys_id"] == gc_id and "INVALID_EMAIL_ADDRESS" in case["detail"] and "Email" in case["detail"]
    assert refused not in case["detail"]  # ids and codes on the list, never the value
    newest = sync_runs.list_runs(engine_of(stack), limit=1)[0]
    assert newest["status"] == "completed"


async def test_a_locked_contact_row_in_a_bulk_page_is_retried(stack, sf, gc, faults, temporal_client):
    sf_id = new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="bidirectional")
    gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
    e164, _ = unique_us_number()
    edit_gc_contact(gc, gc_id, cellPhone={"display": e164})
    faults(fail_records=[{"sobject": "Contact", "operation": "update", "id": sf_id,
                          "errorCode": "UNABLE_TO_LOCK_ROW", "count": 2}])

    result = await run_sync(temporal_client, stack, mode="bidirectional", force_path="bulk")

    assert result.errors == 0
    assert sf.Contact.get(sf_id)["MobilePhone"] == e164
    assert refused_cases(stack, sf_id) == []
