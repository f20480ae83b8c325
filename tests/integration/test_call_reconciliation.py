"""Call reconciliation (issue #9, item 6): a call whose end never started its logging (the trigger's
data action met a starter without Temporal, and a trigger's invocation is not retried) is logged by CallReconciliationWorkflow,
once, however often it runs; and the emulator's analytics details query keeps to the SDK's models.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import PureCloudPlatformClientV2 as gcsdk
import pytest
from PureCloudPlatformClientV2 import models as sdk_models
from temporalio.service import RPCError, RPCStatusCode

from activities.call_reconciliation import ReconciliationRequest, details_query, event_from_details
from callbridge.domain.models import CallEndedEvent
from devstack.processes import ManagedProcess, free_port, python_module
from tests.conftest import REPO
from tests.helpers import provision_genesys, tasks_for_conversation, unique_us_number
from tests.emulators.test_genesys_emulator import assert_error_body, assert_model
from workflows.call_logging import CallLoggingWorkflow, workflow_id
from workflows.call_reconciliation import CallReconciliationWorkflow

QUERY = "/api/v2/analytics/conversations/details/query"


def simulate(genesys, **body: Any) -> dict[str, Any]:
    resp = httpx.post(f"{genesys.api_url}/_emulator/calls",
                      json={"wait": True, "alertSeconds": 0.1, "talkSeconds": 0.1, **body}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def configure_webhook(genesys, url: str | None, secret: str | None) -> None:
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"webhookUrl": url, "webhookSecret": secret}
               ).raise_for_status()


def details_of(gc_http: httpx.Client, conversation: str, lookback: int = 3600) -> dict[str, Any]:
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    body = details_query(now - timedelta(seconds=lookback), now + timedelta(seconds=1), 1)
    body["conversationFilters"].append({"type": "and", "predicates": [
        {"type": "dimension", "dimension": "conversationId", "operator": "matches", "value": conversation}]})
    resp = gc_http.post(QUERY, json=body)
    assert resp.status_code == 200, resp.text
    [record] = resp.json()["conversations"]
    return record


# --- the emulator's analytics query against the SDK ------------------------------------------


def test_details_query_contract_and_the_webhook_event_it_rebuilds(genesys, gc):
    """The query's answer deserializes into the SDK's models, key by key; the CallEndedEvent
    rebuilt from it is the webhook's, but for what analytics doesn't carry (the participant
    attributes and the recording id)."""
    configure_webhook(genesys, None, None)
    e164, _ = unique_us_number()
    call = simulate(genesys, ani=e164, durationSeconds=95, queueName="Toronto Support",
                    attributes={"customer_tier": "gold"})
    outbound = simulate(genesys, direction="outbound", dnis=unique_us_number()[0], durationSeconds=40)

    record = details_of(gc, call["conversationId"])
    resp = gc.post(QUERY, json=details_query(*_window(3600), 1))
    assert_model(resp.json(), "AnalyticsConversationQueryResponse")
    assert resp.json()["totalHits"] >= 2

    api_client = gc_api_client(genesys)
    body = sdk_models.ConversationQuery()
    body.interval = details_query(*_window(3600), 1)["interval"]
    body.paging = sdk_models.PagingSpec()
    body.paging.page_size, body.paging.page_number = 100, 1
    answer = gcsdk.ConversationsApi(api_client).post_analytics_conversations_details_query(body)
    assert isinstance(answer, sdk_models.AnalyticsConversationQueryResponse)
    assert call["conversationId"] in {c.conversation_id for c in answer.conversations}

    for payload, conv in ((call["payload"], record), (outbound["payload"], details_of(gc, outbound["conversationId"]))):
        webhook = CallEndedEvent.model_validate(payload)
        rebuilt = event_from_details(conv)
        assert rebuilt.model_dump(exclude={"recording_id", "attributes"}) == \
            webhook.model_dump(exclude={"recording_id", "attributes"})
    assert rebuilt.direction == "OUTBOUND" and rebuilt.customer_number == outbound["payload"]["calleeId"]


def _window(seconds: int):
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    return now - timedelta(seconds=seconds), now + timedelta(seconds=1)


def gc_api_client(genesys):
    gcsdk.configuration.host = genesys.api_url
    return gcsdk.api_client.ApiClient(genesys.api_url).get_client_credentials_token(genesys.client_id,
                                                                                    genesys.client_secret)


def test_details_query_filters_order_and_paging(genesys, gc):
    configure_webhook(genesys, None, None)
    first = simulate(genesys, ani=unique_us_number()[0], durationSeconds=30)["conversationId"]
    second = simulate(genesys, ani=unique_us_number()[0], durationSeconds=30)["conversationId"]
    base = details_query(*_window(300), 1)

    ended = gc.post(QUERY, json={**base, "paging": {"pageSize": 100, "pageNumber": 1}}).json()
    ids = [c["conversationId"] for c in ended["conversations"]]
    assert {first, second} <= set(ids)
    ends = [c["conversationEnd"] for c in ended["conversations"]]
    assert ends == sorted(ends)  # oldest end first (same-width UTC stamps sort as text)
    desc = gc.post(QUERY, json={**base, "order": "desc", "paging": {"pageSize": 100, "pageNumber": 1}}).json()
    assert [c["conversationEnd"] for c in desc["conversations"]] == ends[::-1]
    assert {c["conversationId"] for c in desc["conversations"]} == set(ids)

    one = gc.post(QUERY, json={**base, "paging": {"pageSize": 1, "pageNumber": 2}}).json()
    assert one["totalHits"] == ended["totalHits"] and [c["conversationId"] for c in one["conversations"]] == ids[1:2]
    past_the_end = gc.post(QUERY, json={**base, "paging": {"pageSize": 100, "pageNumber": 50}}).json()
    assert "conversations" not in past_the_end and past_the_end["totalHits"] == ended["totalHits"]

    live = {**base, "conversationFilters": [{"type": "and", "predicates": [
        {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}]}]}
    assert first not in {c["conversationId"] for c in gc.post(QUERY, json=live).json().get("conversations", [])}
    earlier = {**base, "interval": details_query(*_window(7200), 1)["interval"].split("/")[0] + "/"
               + details_query(*_window(3600), 1)["interval"].split("/")[0]}
    assert first not in {c["conversationId"] for c in gc.post(QUERY, json=earlier).json().get("conversations", [])}

    # What the emulator doesn't do, it refuses like Genesys refuses a bad query: 400 ErrorBody.
    for bad in ({**base, "aggregations": [{"type": "termFrequency", "dimension": "wrapUpCode"}]},
                {**base, "segmentFilters": [{"type": "and", "predicates": [
                    {"type": "metric", "metric": "tSegmentDuration", "range": {"gt": 1}}]}]},
                {**base, "conversationFilters": [{"type": "or", "clauses": [{"type": "and", "predicates": []}]}]},
                {**base, "paging": {"pageSize": 101, "pageNumber": 1}},
                {**base, "paging": {"pageSize": 100, "pageNumber": 1001}},
                {**base, "interval": "yesterday"},
                {key: value for key, value in base.items() if key != "interval"}):
        assert_error_body(gc.post(QUERY, json=bad), 400, "bad.request")


# --- the regression: a call whose webhook Temporal never saw --------------------------------


def broken_starter(stack, test_var_dir) -> tuple[ManagedProcess, str]:
    """A starter like the stack's whose Temporal is unreachable: it answers every delivery 503."""
    port = free_port()
    env = {**stack.env, "CALLBRIDGE_STARTER_PORT": str(port), "CALLBRIDGE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    proc = ManagedProcess(name="starter-reconcile", argv=python_module("starter.app"), env=env,
                          ready_url=f"http://127.0.0.1:{port}/healthz",
                          log_path=test_var_dir / "starter-reconcile.log", cwd=REPO).start()
    return proc, f"http://127.0.0.1:{port}"


async def reconcile(client, stack, **request: Any):
    return await client.execute_workflow(
        CallReconciliationWorkflow.run, ReconciliationRequest(**request),
        id=f"call-reconciliation-test-{uuid.uuid4().hex[:8]}", task_queue=stack.task_queue)


async def test_call_lost_to_a_temporal_outage_is_logged_once_by_reconciliation(stack, sf, genesys, temporal_client,
                                                                              test_var_dir):
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"LastName": "Reconciled", "Phone": digits, "MailingCountry": "United States"})["id"]
    proc, url = broken_starter(stack, test_var_dir)
    try:
        # The org's data actions reinstalled on a starter whose Temporal is down.
        provision_genesys(stack, genesys, public_url=url)
        call = simulate(genesys, ani=e164, durationSeconds=42)
    finally:
        provision_genesys(stack, genesys)
        proc.stop()
    conversation = call["conversationId"]
    # The trigger ran the data action once, met the 503, took the workflow's failure path, and
    # that was it: a trigger's invocation is not retried. No workflow was started for the call.
    [invocation] = call["delivery"]["triggers"]
    assert [(s["status"], s["output"]) for s in invocation["steps"]] == [(503, "failure")]
    with pytest.raises(RPCError) as err:
        await temporal_client.get_workflow_handle(workflow_id(conversation)).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND

    # Ended a moment ago: left alone for the settle time (an EventBridge delivery may still be on its way).
    waiting = await reconcile(temporal_client, stack, lookback_seconds=600, settle_seconds=3600)
    assert conversation not in waiting.started_conversation_ids and waiting.too_recent >= 1

    first = await reconcile(temporal_client, stack, lookback_seconds=600, settle_seconds=0)
    assert conversation in first.started_conversation_ids
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()
    assert (result.outcome, result.contact_id) == ("logged", contact)
    [task] = tasks_for_conversation(sf, conversation)
    assert task["WhoId"] == contact and task["CallDurationInSeconds"] == 42 and task["CallType"] == "Inbound"
    assert f"Agent: {call['agentName']}" in task["Description"] and "Queue: Support Queue" in task["Description"]
    desc = await temporal_client.get_workflow_handle(workflow_id(conversation)).describe()
    attrs = {p.key.name: p.value for p in desc.typed_search_attributes}
    assert attrs["CallbridgeConversationId"] == conversation  # the id only: no number, no name

    again = await reconcile(temporal_client, stack, lookback_seconds=600, settle_seconds=0)
    assert conversation not in again.started_conversation_ids and again.already_handled >= 1
    assert len(tasks_for_conversation(sf, conversation)) == 1
    # The call's end published again now, to a starter that reaches Temporal: a duplicate, still one Task.
    again = httpx.post(f"{genesys.api_url}/_emulator/calls/{conversation}/customer-end", timeout=60).json()
    [invocation] = again["triggers"]
    assert [(s["status"], s["output"]) for s in invocation["steps"]] == [(200, "success")]
    assert len(tasks_for_conversation(sf, conversation)) == 1


async def test_reconciliation_leaves_calls_the_trigger_logged_alone(stack, sf, genesys, temporal_client):
    e164, digits = unique_us_number()
    sf.Contact.create({"LastName": "Triggered", "Phone": digits, "MailingCountry": "United States"})
    call = simulate(genesys, ani=e164, durationSeconds=33)
    [invocation] = call["delivery"]["triggers"]
    assert [s["output"] for s in invocation["steps"]] == ["success"]
    conversation = call["conversationId"]
    logged = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()
    run = await reconcile(temporal_client, stack, lookback_seconds=600, settle_seconds=0)
    assert conversation not in run.started_conversation_ids and run.already_handled >= 1
    [task] = tasks_for_conversation(sf, conversation)
    assert task["Id"] == logged.task_id and f"Recording: {logged.recording_link}" in task["Description"]


async def test_the_worker_creates_the_reconciliation_schedule(stack, temporal_client):
    from datetime import timedelta

    from temporalio.client import ScheduleOverlapPolicy

    desc = await temporal_client.get_schedule_handle("call-reconciliation").describe()
    schedule = desc.schedule
    [interval] = schedule.spec.intervals
    assert interval.every == timedelta(minutes=5)
    assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert schedule.action.workflow == CallReconciliationWorkflow.__name__
    assert schedule.action.id == "call-reconciliation" and schedule.action.task_queue == stack.task_queue
    [request] = await temporal_client.data_converter.decode(schedule.action.args, [ReconciliationRequest])
    assert request == ReconciliationRequest(lookback_seconds=7200, settle_seconds=120)
    assert schedule.state.paused  # the test stack's (CALLBRIDGE_RECONCILIATION_SCHEDULE_PAUSED)
