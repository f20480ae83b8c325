"""Issue #14's "Done when", on the test stack as `make demo` runs it: a simulated call ends in the
Genesys emulator, the org's Process Automation trigger (provisioned by `callbridge genesys
install`, the shipped workflow published) runs the call-ended data action against the starter,
and one Task lands on the right contact with the IVR's contact, the agent, the queue and the
recording. The same call's end delivered again through EventBridge, the signed relay webhook and
the reconciliation adds nothing: one workflow, one Task.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from activities.call_reconciliation import ReconciliationRequest
from devstack.stack import LocalStack
from tests.call_ended import API_KEY, API_KEY_HEADER, EVENTS
from tests.helpers import relay_webhook, stack_settings, tasks_for_conversation, unique_us_number
from workflows.call_logging import CallLoggingWorkflow, workflow_id
from workflows.call_reconciliation import CallReconciliationWorkflow

pytestmark = pytest.mark.integration


@pytest.fixture
def ivr_lookup(stack, genesys):
    """The inbound flow's contact lookup pointed at the starter, as the demo does; off afterwards."""
    LocalStack(stack_settings(stack)).connect_flow_to_lookup()
    yield
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"dataActionUrl": None}).raise_for_status()


@pytest.fixture
def eventbridge_to_starter(stack, genesys):
    """The emulator's EventBridge delivery: an API destination on the starter with the API key."""
    config = {"url": f"{stack.starter_url}{EVENTS}", "auth": {"apiKey": {"name": API_KEY_HEADER, "value": API_KEY}}}
    yield lambda: httpx.post(f"{genesys.api_url}/_emulator/config", json={"eventBridge": config}).raise_for_status()
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"eventBridge": None}).raise_for_status()


def call_status(genesys, conversation: str) -> dict[str, Any]:
    return httpx.get(f"{genesys.api_url}/_emulator/calls/{conversation}").json()


def eventbridge_delivered(genesys, conversation: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = call_status(genesys, conversation)["eventBridge"]
        if found and found[-1]["state"] in ("delivered", "failed"):
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"the EventBridge delivery never finished: {found}")


async def test_a_call_ended_in_genesys_is_one_task_with_everything_whatever_else_delivers_it(
        stack, sf, gc, genesys, temporal_client, ivr_lookup, eventbridge_to_starter):
    e164, digits = unique_us_number()
    account = sf.Account.create({"Name": "Done When Ltd", "BillingCountry": "United States"})["id"]
    contact = sf.Contact.create({"FirstName": "Dana", "LastName": f"Whenever{uuid.uuid4().hex[:6]}",
                                 "AccountId": account, "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
                                 "MailingCountry": "United States"})["id"]

    call = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=60, json={
        "ani": e164, "durationSeconds": 185, "alertSeconds": 0.1, "talkSeconds": 0.1, "wait": True}).json()
    conversation = call["conversationId"]

    # The IVR's lookup named the contact (the customer's participant data contact_id) ...
    participants = gc.get(f"/api/v2/conversations/{conversation}").json()["participants"]
    [customer] = [p for p in participants if p["purpose"] == "customer"]
    assert customer["attributes"]["contact_id"] == contact
    # ... and the call's end went trigger -> published workflow -> the shipped data action -> starter.
    [invocation] = call["delivery"]["triggers"]
    [step] = invocation["steps"]
    assert (invocation["state"], step["url"], step["status"], step["output"]) == (
        "completed", f"{stack.starter_url}{EVENTS}", 202, "success")
    assert call["delivery"]["state"] == "not_configured" and call["delivery"]["attempts"] == 0  # no relay webhook
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()
    assert (result.outcome, result.contact_id, result.account_id) == ("logged", contact, account)
    assert result.recording_link
    [task] = tasks_for_conversation(sf, conversation)
    assert (task["WhoId"], task["WhatId"], task["CallDurationInSeconds"]) == (contact, account, 185)
    for line in (f"Agent: {call['agentName']}", "Queue: Support Queue", f"Recording: {result.recording_link}"):
        assert line in task["Description"], task["Description"]

    # The same call again: through EventBridge (and the trigger once more) ...
    eventbridge_to_starter()
    again = httpx.post(f"{genesys.api_url}/_emulator/calls/{conversation}/customer-end", timeout=60).json()
    assert [s["status"] for i in again["triggers"] for s in i["steps"]] == [200]  # a duplicate
    bridged = eventbridge_delivered(genesys, conversation)
    assert (bridged["state"], bridged["log"][-1]["status"]) == ("delivered", 200)
    # ... the signed relay webhook ...
    with relay_webhook(genesys, f"{stack.starter_url}/webhooks/genesys/conversation-ended", stack.webhook_secret):
        relayed = httpx.post(f"{genesys.api_url}/_emulator/calls/{conversation}/redeliver?wait=true", timeout=60).json()
    assert (relayed["state"], relayed["lastStatus"]) == ("delivered", 200)
    # ... and the reconciliation.
    run = await temporal_client.execute_workflow(
        CallReconciliationWorkflow.run, ReconciliationRequest(lookback_seconds=600, settle_seconds=0),
        id=f"call-reconciliation-test-{uuid.uuid4().hex[:8]}", task_queue=stack.task_queue)
    assert conversation not in run.started_conversation_ids and run.already_handled >= 1

    assert [t["Id"] for t in tasks_for_conversation(sf, conversation)] == [task["Id"]]
    executions = await temporal_client.count_workflows(f"WorkflowId = '{workflow_id(conversation)}'")
    assert executions.count == 1
