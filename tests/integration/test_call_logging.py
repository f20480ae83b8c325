"""Call logging end to end: the real starter, worker, Temporal dev server and emulators."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from callbridge.domain.mapping import RECORDING_PENDING
from callbridge.domain.models import CallEndedEvent, CallLoggingInput
from tests.helpers import (
    call_event,
    conversation_id,
    post_webhook,
    refresh_index,
    simulate_call,
    tasks_for_conversation,
    tls,
    unique_us_number,
)
from workflows.call_logging import CallLoggingWorkflow, workflow_id

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(sf):
    return sf.Account.create({"Name": "Acme Corp", "BillingCountry": "United States"})["id"]


def new_contact(sf, account_id: str, **fields) -> str:
    body = {"FirstName": "John", "LastName": f"Doe{time.monotonic_ns() % 100000}", "AccountId": account_id,
            "MailingCountry": "United States", **fields}
    return sf.Contact.create(body)["id"]


async def result_of(client, conversation: str):
    return await client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()


async def run_direct(client, stack, event: dict, **policy):
    """Start the workflow the way the starter does, with a chosen unknown-caller policy."""
    inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(event), "US", **policy)
    return await client.execute_workflow(
        CallLoggingWorkflow.run, inp, id=workflow_id(event["conversationId"]), task_queue=stack.task_queue,
    )


async def test_simulated_call_is_logged_on_the_right_contact(stack, sf, account, genesys, temporal_client):
    e164, digits = unique_us_number()
    contact_id = new_contact(sf, account, Phone=f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    conversation = simulate_call(genesys, stack, e164, duration_seconds=245)

    result = await result_of(temporal_client, conversation)

    assert result.outcome == "logged"
    assert result.contact_id == contact_id
    assert result.recording_link  # the simulated call was recorded
    [task] = tasks_for_conversation(sf, conversation)
    contact = sf.Contact.get(contact_id)
    assert task["Id"] == result.task_id
    assert task["WhoId"] == contact_id and task["WhatId"] == account
    assert task["Subject"] == f"Call with {contact['Name']}"
    assert (task["CallType"], task["Status"], task["Type"], task["TaskSubtype"]) == ("Inbound", "Completed", "Call", "Call")
    assert task["CallDurationInSeconds"] == 245 and task["CallObject"] == conversation
    for line in ("Agent: ", "Queue: ", "Start: ", "End: ", f"Recording: {result.recording_link}"):
        assert line in task["Description"]
    assert contact["Last_Call_Duration__c"] == 245 and contact["Last_Call_Date__c"]
    desc = await temporal_client.get_workflow_handle(workflow_id(conversation)).describe()
    attrs = {k.name: v for k, v in ((p.key, p.value) for p in desc.typed_search_attributes)}
    assert attrs["CallbridgeConversationId"] == conversation
    assert attrs["CallbridgeContactId"] == contact_id
    assert attrs["CallbridgeOutcome"] == "logged"


@pytest.mark.parametrize("typed", ["({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a}-{b}-{c}", "{a}{b}{c}"])
async def test_each_typed_format_matches_the_caller(stack, sf, account, temporal_client, typed):
    e164, digits = unique_us_number()
    field = "MobilePhone" if "." in typed else "Phone"
    contact_id = new_contact(sf, account, **{field: typed.format(a=digits[:3], b=digits[3:6], c=digits[6:])})
    conversation = conversation_id()
    resp = post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation, e164))
    assert resp.status_code == 202, resp.text
    result = await result_of(temporal_client, conversation)
    assert (result.outcome, result.contact_id) == ("logged", contact_id)


@pytest.mark.parametrize("script, typed", [
    ("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19", "\uff08{a}\uff09{b}\uff0d{c}"),  # full-width IME
    ("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19", "\uff0b\uff11\u3000{a}\u3000{b}\u3000{c}"),
    ("\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "{a}-{b}-{c}"),  # Arabic-Indic
    ("0123456789", "+1\u2009{a}\u2009{b}\u2009{c}"),  # thin spaces
    ("0123456789", "{a}\u00a0{b}\u2013{c}"),  # no-break space, en dash
])
async def test_a_number_typed_with_non_ascii_characters_matches_the_caller(stack, sf, account, temporal_client,
                                                                           script, typed):
    e164, digits = unique_us_number()
    as_typed = "".join(script[int(d)] for d in digits)
    contact_id = new_contact(sf, account, Phone=typed.format(a=as_typed[:3], b=as_typed[3:6], c=as_typed[6:]))
    conversation = conversation_id()
    resp = post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation, e164))
    assert resp.status_code == 202, resp.text
    result = await result_of(temporal_client, conversation)
    assert (result.outcome, result.contact_id) == ("logged", contact_id)


async def test_contact_id_attribute_wins_over_phone(stack, sf, account, temporal_client):
    e164, digits = unique_us_number()
    by_phone = new_contact(sf, account, Phone=digits)
    by_flow = new_contact(sf, account)
    conversation = conversation_id()
    post_webhook(stack.starter_url, stack.webhook_secret,
                 call_event(conversation, e164, attributes={"contact_id": by_flow}))
    assert (await result_of(temporal_client, conversation)).contact_id == by_flow
    # A contact id that doesn't exist falls back to the phone number.
    conversation = conversation_id()
    post_webhook(stack.starter_url, stack.webhook_secret,
                 call_event(conversation, e164, attributes={"contact_id": "003000000000000AAA"}))
    assert (await result_of(temporal_client, conversation)).contact_id == by_phone


async def test_several_contacts_on_one_number_log_once_on_the_most_recent(stack, sf, account, temporal_client):
    e164, digits = unique_us_number()
    older = new_contact(sf, account, Phone=digits, Last_Call_Date__c="2025-01-01T10:00:00.000+0000")
    recent = new_contact(sf, account, Phone=f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
                         Last_Call_Date__c="2026-01-01T10:00:00.000+0000")
    # Both in the caller-ID index (which names the caller without a Salesforce lookup): else a
    # refresh landing between the two creates would leave the index knowing only the older one.
    await refresh_index(temporal_client, stack)
    conversation = conversation_id()
    post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation, e164))
    result = await result_of(temporal_client, conversation)
    assert result.contact_id == recent and result.other_contact_ids == [older]
    [task] = tasks_for_conversation(sf, conversation)
    assert older in task["Description"]


async def test_unknown_caller_skip(stack, sf, temporal_client):
    e164, _ = unique_us_number()
    event = call_event(conversation_id(), e164)
    result = await run_direct(temporal_client, stack, event, unknown_caller_policy="skip")
    assert result.outcome == "skipped_unknown_caller"
    assert tasks_for_conversation(sf, event["conversationId"]) == []


async def test_unknown_caller_create_contact(stack, sf, temporal_client):
    e164, _ = unique_us_number()
    event = call_event(conversation_id(), e164)
    result = await run_direct(temporal_client, stack, event, unknown_caller_policy="create_contact")
    assert result.outcome == "logged_new_contact"
    [task] = tasks_for_conversation(sf, event["conversationId"])
    contact = sf.Contact.get(task["WhoId"])
    assert contact["Phone"] == e164 and task["WhoId"] == result.contact_id
    # The next call from that number finds the new contact instead of creating another.
    event2 = call_event(conversation_id(), e164)
    again = await run_direct(temporal_client, stack, event2, unknown_caller_policy="create_contact")
    assert (again.outcome, again.contact_id) == ("logged", result.contact_id)


async def test_unknown_caller_unknown_account(stack, sf, temporal_client):
    e164, _ = unique_us_number()
    event = call_event(conversation_id(), e164)
    result = await run_direct(temporal_client, stack, event, unknown_caller_policy="unknown_account",
                              unknown_caller_account_name="Unknown callers (test)")
    assert result.outcome == "logged_unknown_account"
    [task] = tasks_for_conversation(sf, event["conversationId"])
    assert task["WhatId"] == result.account_id and task["WhoId"] is None
    assert sf.Account.get(result.account_id)["Name"] == "Unknown callers (test)"


async def test_anonymous_caller_is_an_unknown_caller(stack, temporal_client):
    event = call_event(conversation_id(), "anonymous")
    result = await run_direct(temporal_client, stack, event, unknown_caller_policy="create_contact",
                              unknown_caller_account_name="Unknown callers (test)")
    assert result.outcome == "logged_unknown_account"


async def test_three_deliveries_make_one_task(stack, sf, account, temporal_client):
    e164, digits = unique_us_number()
    new_contact(sf, account, Phone=digits)
    conversation = conversation_id()
    event = call_event(conversation, e164)
    first = post_webhook(stack.starter_url, stack.webhook_secret, event)
    second = post_webhook(stack.starter_url, stack.webhook_secret, event)
    await result_of(temporal_client, conversation)
    third = post_webhook(stack.starter_url, stack.webhook_secret, event)
    assert [r.status_code for r in (first, second, third)] == [202, 200, 200]
    assert {r.json()["workflowId"] for r in (first, second, third)} == {workflow_id(conversation)}
    assert len(tasks_for_conversation(sf, conversation)) == 1


async def test_worker_killed_between_task_upsert_and_contact_update(stack, sf, salesforce, account, temporal_client):
    e164, digits = unique_us_number()
    contact_id = new_contact(sf, account, Phone=digits)
    admin = f"{salesforce.instance_url}/_emulator/faults"
    verify = tls(salesforce)
    httpx.post(admin, verify=verify, json={"delay_next": [
        {"method": "PATCH", "path_regex": f"/sobjects/Contact/{contact_id}", "seconds": 6, "count": 1}]}
    ).raise_for_status()
    conversation = conversation_id()
    try:
        post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation, e164))
        deadline = time.monotonic() + 20
        while not tasks_for_conversation(sf, conversation):  # the Task is in, the contact update hangs
            assert time.monotonic() < deadline, "Task never appeared"
            await asyncio.sleep(0.1)
        assert sf.Contact.get(contact_id)["Last_Call_Date__c"] is None
        stack.worker.kill()
    finally:
        httpx.delete(admin, verify=verify)
    stack.start_worker()

    result = await result_of(temporal_client, conversation)

    assert len(tasks_for_conversation(sf, conversation)) == 1
    assert sf.Contact.get(contact_id)["Last_Call_Duration__c"] == 630
    history = await temporal_client.get_workflow_handle(workflow_id(conversation)).fetch_history()
    attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert max(attempts) >= 2 and result.outcome == "logged"


async def test_salesforce_503_twice_then_success(stack, sf, salesforce, account, temporal_client):
    e164, digits = unique_us_number()
    new_contact(sf, account, Phone=digits)
    conversation = conversation_id()
    admin = f"{salesforce.instance_url}/_emulator/faults"
    httpx.post(admin, verify=tls(salesforce), json={"fail_next": [
        {"method": "POST", "path_regex": "/composite$", "status": 503, "errorCode": "SERVER_UNAVAILABLE", "count": 2}]}
    ).raise_for_status()
    try:
        post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation, e164))
        result = await result_of(temporal_client, conversation)
    finally:
        httpx.delete(admin, verify=tls(salesforce))
    assert result.outcome == "logged"
    assert len(tasks_for_conversation(sf, conversation)) == 1
    history = await temporal_client.get_workflow_handle(workflow_id(conversation)).fetch_history()
    assert any(e.activity_task_started_event_attributes.attempt == 3 for e in history.events
               if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)


async def test_validation_error_fails_the_workflow_with_salesforce_message(stack, sf, salesforce, account, temporal_client):
    e164, digits = unique_us_number()
    new_contact(sf, account, Phone=digits)
    rules = f"{salesforce.instance_url}/_emulator/validation-rules"
    httpx.post(rules, verify=tls(salesforce), json={
        "sobject": "Task", "field": "Description", "contains": "Queue: Blocked queue",
        "message": "Calls from the blocked queue may not be logged"}).raise_for_status()
    conversation = conversation_id()
    try:
        post_webhook(stack.starter_url, stack.webhook_secret,
                     call_event(conversation, e164, queueName="Blocked queue"))
        with pytest.raises(WorkflowFailureError) as failure:
            await result_of(temporal_client, conversation)
    finally:
        httpx.delete(rules, verify=tls(salesforce))
    assert "Calls from the blocked queue may not be logged" in str(failure.value.cause)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in str(failure.value.cause)
    assert tasks_for_conversation(sf, conversation) == []


async def test_slow_recording_never_blocks_the_task(stack, sf, genesys, account, temporal_client):
    e164, digits = unique_us_number()
    new_contact(sf, account, Phone=digits)
    httpx.post(f"{genesys.api_url}/_emulator/faults", json={"delay_next": [
        {"method": "GET", "path_regex": "/recordings/", "seconds": 10, "count": 5}]}).raise_for_status()
    try:
        started = time.monotonic()
        call = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": e164, "wait": True}, timeout=30).json()
        result = await result_of(temporal_client, call["conversationId"])
        elapsed = time.monotonic() - started
    finally:
        httpx.delete(f"{genesys.api_url}/_emulator/faults")
    # Not known within the budget: the Task says so for now, and a follow-up links it later
    # (tests/integration/test_recording_links.py), never "not available" for good.
    assert result.outcome == "logged" and result.recording_link == RECORDING_PENDING
    assert elapsed < 9  # the 3-second budget, not the 10-second delay
    [task] = tasks_for_conversation(sf, call["conversationId"])
    assert f"Recording: {RECORDING_PENDING}" in task["Description"]


async def _assert_not_started(client, conversation: str) -> None:
    with pytest.raises(RPCError):
        await client.get_workflow_handle(workflow_id(conversation)).describe()


async def test_refused_webhooks_start_nothing(stack, temporal_client):
    url, secret = stack.starter_url, stack.webhook_secret
    e164, _ = unique_us_number()

    c1 = conversation_id()
    bad_sig = post_webhook(url, "not-the-secret", call_event(c1, e164))
    c2 = conversation_id()
    stale = post_webhook(url, secret, call_event(c2, e164), timestamp=int(time.time()) - 301)
    c3 = conversation_id()
    unsigned = httpx.post(f"{url}/webhooks/genesys/conversation-ended", json=call_event(c3, e164))
    c4 = conversation_id()
    raw = json.dumps(call_event(c4, e164)).encode()
    malformed = post_webhook(url, secret, raw[:-5])
    c5 = conversation_id()
    event = call_event(c5, e164)
    del event["durationSeconds"]
    missing = post_webhook(url, secret, event)
    c6 = conversation_id()
    wrong_type = post_webhook(url, secret, call_event(c6, e164, durationSeconds="630"))
    c7 = conversation_id()
    huge = post_webhook(url, secret, call_event(c7, e164, attributes={"notes": "x" * 1000} | {
        f"k{i}": "y" * 1000 for i in range(70)}))
    c8 = conversation_id()
    tampered = post_webhook(url, secret, call_event(c8, e164),
                            headers={"X-Genesys-Webhook-Signature": "AAAA" + "=" * 40})

    assert (bad_sig.status_code, stale.status_code, unsigned.status_code, tampered.status_code) == (401, 401, 401, 401)
    assert malformed.status_code == 422
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "durationSeconds"
    assert wrong_type.status_code == 422 and wrong_type.json()["fields"][0]["field"] == "durationSeconds"
    assert huge.status_code == 413
    for conversation in (c1, c2, c3, c4, c5, c6, c7, c8):
        await _assert_not_started(temporal_client, conversation)
