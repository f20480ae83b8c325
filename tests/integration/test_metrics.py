"""/metrics on the starter and the worker, the Temporal SDK's metrics, and the call-logging
failure-rate alert computed from the worker's counters; all against the real processes."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import WorkflowFailureError

from callbridge.domain.models import CallEndedEvent, CallLoggingInput
from devstack.processes import ManagedProcess, free_port
from tests.conftest import REPO
from tests.helpers import call_event, conversation_id, post_webhook, salesforce_client, unique_us_number, tls
from tests.integration.test_alerts import AlertReceiver
from workflows.call_logging import CallLoggingWorkflow, workflow_id

pytestmark = pytest.mark.integration

AUTH = ("genesys-data-action", "callbridge-demo-lookup")


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    # The starter's public /metrics takes the admin credential (the worker's ignores it).
    text = httpx.get(url, timeout=10, auth=("admin", "callbridge-demo-admin")).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def receiver():
    r = AlertReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def ops_worker(stack, receiver, test_var_dir):
    """A worker of its own (own task queue and ports) whose counters only this module moves."""
    port, sdk_port = free_port(), free_port()
    queue = f"callbridge-metrics-{uuid.uuid4().hex[:8]}"
    env = {**stack.env, "CALLBRIDGE_TEMPORAL_TASK_QUEUE": queue, "CALLBRIDGE_METRICS_HOST": "127.0.0.1",
           "CALLBRIDGE_WORKER_METRICS_PORT": str(port), "CALLBRIDGE_WORKER_TEMPORAL_METRICS_PORT": str(sdk_port),
           "CALLBRIDGE_ALERT_WEBHOOK_URL": receiver.url, "CALLBRIDGE_ALERT_CHECK_SECONDS": "0.2",
           "CALLBRIDGE_ALERT_CALL_LOGGING_MIN_EXECUTIONS": "3"}
    proc = ManagedProcess(name="metrics-worker", argv=[sys.executable, str(REPO / "worker.py")], env=env,
                          ready_url=f"http://127.0.0.1:{port}/metrics",
                          log_path=test_var_dir / "metrics-worker.log", cwd=REPO).start()
    yield {"queue": queue, "metrics": f"http://127.0.0.1:{port}/metrics",
           "sdk_metrics": f"http://127.0.0.1:{sdk_port}/metrics", "log": test_var_dir / "metrics-worker.log"}
    proc.stop()


def test_starter_counts_webhooks_by_reason_and_workflow_starts(stack):
    url = f"{stack.starter_url}/metrics"
    before = scrape(url)
    e164, _ = unique_us_number()
    assert post_webhook(stack.starter_url, stack.webhook_secret, call_event(conversation_id(), e164)).status_code == 202
    assert post_webhook(stack.starter_url, "wrong-secret", call_event(conversation_id(), e164)).status_code == 401
    assert post_webhook(stack.starter_url, stack.webhook_secret, b"{not json").status_code == 422
    after = scrape(url)
    ep = {"endpoint": "conversation-ended"}
    assert value(after, "callbridge_webhooks_received_total", **ep) - value(before, "callbridge_webhooks_received_total", **ep) == 3
    for reason in ("bad_signature", "invalid_payload"):
        key = dict(ep, reason=reason)
        assert value(after, "callbridge_webhooks_rejected_total", **key) - value(before, "callbridge_webhooks_rejected_total", **key) == 1
    started = {"workflow_type": "CallLoggingWorkflow", "result": "started"}
    assert value(after, "callbridge_workflow_starts_total", **started) - value(before, "callbridge_workflow_starts_total", **started) == 1
    assert value(after, "callbridge_webhooks_in_flight") == 0


def test_screen_pop_lookups_by_outcome_with_latency(stack):
    url = f"{stack.starter_url}/metrics"
    before = scrape(url)
    assert httpx.post(f"{stack.starter_url}/screenpop/lookup", json={"phoneNumber": "anonymous"},
                      auth=AUTH).json()["reason"] == "anonymous"
    assert httpx.post(f"{stack.starter_url}/screenpop/lookup", json={"phoneNumber": "12"},
                      auth=AUTH).json()["reason"] == "unparseable"
    after = scrape(url)
    for outcome in ("anonymous", "unparseable"):
        assert value(after, "callbridge_screenpop_lookups_total", outcome=outcome) \
            - value(before, "callbridge_screenpop_lookups_total", outcome=outcome) == 1
        assert value(after, "callbridge_screenpop_lookup_seconds_count", outcome=outcome) \
            - value(before, "callbridge_screenpop_lookup_seconds_count", outcome=outcome) == 1
        # Every observation lands in the +Inf bucket, whatever it took.
        assert value(after, "callbridge_screenpop_lookup_seconds_bucket", outcome=outcome, le="+Inf") \
            == value(after, "callbridge_screenpop_lookup_seconds_count", outcome=outcome)


async def _run(temporal_client, queue: str, event: dict):
    inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(event), "US")
    return await temporal_client.execute_workflow(
        CallLoggingWorkflow.run, inp, id=workflow_id(event["conversationId"]), task_queue=queue)


async def _wait_for(predicate, what: str, attempts: int = 600):
    for _ in range(attempts):
        result = predicate()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def test_worker_counts_workflows_api_requests_and_alerts_once_on_failure_rate(
        ops_worker, salesforce, temporal_client, receiver):
    sf = salesforce_client(salesforce)
    account = sf.Account.create({"Name": "Metrics Ltd", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    sf.Contact.create({"FirstName": "Marta", "LastName": "Kowalska", "AccountId": account,
                       "MailingCountry": "United States", "Phone": digits})
    blocked = f"Blocked {uuid.uuid4().hex[:8]}"
    rules = f"{salesforce.instance_url}/_emulator/validation-rules"
    httpx.post(rules, verify=tls(salesforce), json={
        "sobject": "Task", "field": "Description", "contains": f"Queue: {blocked}",
        "message": "Calls from this queue may not be logged"}).raise_for_status()
    try:
        result = await _run(temporal_client, ops_worker["queue"],
                            call_event(conversation_id(), e164, recordingId=f"rec-{uuid.uuid4().hex[:8]}"))
        assert result.outcome == "logged"
        # Two rejected calls: 2 of 3 failed, far above 5%.
        for _ in range(2):
            with pytest.raises(WorkflowFailureError):
                await _run(temporal_client, ops_worker["queue"],
                           call_event(conversation_id(), e164, queueName=blocked))
        await _wait_for(lambda: receiver.messages, "the failure-rate alert")
        # More failures while the alert stands are held back, not sent.
        with pytest.raises(WorkflowFailureError):
            await _run(temporal_client, ops_worker["queue"], call_event(conversation_id(), e164, queueName=blocked))
        await _wait_for(lambda: value(scrape(ops_worker["metrics"]), "callbridge_alerts_suppressed_total",
                                      rule="call_logging_failure_rate") >= 1, "a held-back repeat")
    finally:
        httpx.delete(rules, verify=tls(salesforce))

    assert len(receiver.messages) == 1
    assert receiver.messages[0].startswith("[error] CallLoggingWorkflow: 66.7% of 3 executions failed")
    samples = scrape(ops_worker["metrics"])
    wf = {"workflow_type": "CallLoggingWorkflow"}
    assert value(samples, "callbridge_workflows_started_total", **wf) == 4
    assert value(samples, "callbridge_workflows_completed_total", **wf) == 1
    assert value(samples, "callbridge_workflows_failed_total", **wf) == 3
    assert value(samples, "callbridge_api_requests_total", system="salesforce", status="2xx") > 0
    # The recording lookup asks Genesys about a conversation it never saw: a 4xx, still counted.
    assert sum(value(samples, "callbridge_api_requests_total", system="genesys", status=c)
               for c in ("2xx", "4xx")) >= 1

    # No phone number, email or name in any label or value of either endpoint.
    sdk_text = httpx.get(ops_worker["sdk_metrics"], timeout=10).text
    own_text = httpx.get(ops_worker["metrics"], timeout=10).text
    for text in (own_text, sdk_text):
        assert digits not in text and digits[-7:] not in text and "Kowalska" not in text and "Marta" not in text
    # The Temporal SDK's own metrics, on their port, by task queue and workflow type.
    assert re.search(r'^temporal_workflow_completed\{[^}]*workflow_type="CallLoggingWorkflow"', sdk_text, re.M)
    assert re.search(r'^temporal_workflow_failed\{[^}]*workflow_type="CallLoggingWorkflow"', sdk_text, re.M)


async def test_sync_runs_are_counted(ops_worker, temporal_client):
    from callbridge.domain.models import IndexRefreshRequest
    from workflows.caller_index import CallerIndexRefreshWorkflow

    before = scrape(ops_worker["metrics"])
    result = await temporal_client.execute_workflow(
        CallerIndexRefreshWorkflow.run, IndexRefreshRequest(), id=f"metrics-refresh-{uuid.uuid4().hex[:8]}",
        task_queue=ops_worker["queue"])
    after = scrape(ops_worker["metrics"])
    key = {"kind": "caller_index", "status": "ok"}
    assert value(after, "callbridge_sync_runs_total", **key) - value(before, "callbridge_sync_runs_total", **key) == 1
    assert value(after, "callbridge_sync_run_seconds_count", kind="caller_index") \
        - value(before, "callbridge_sync_run_seconds_count", kind="caller_index") == 1
    applied = {"kind": "caller_index", "action": "applied"}
    assert value(after, "callbridge_sync_records_total", **applied) \
        - value(before, "callbridge_sync_records_total", **applied) == result.applied
    assert value(after, "callbridge_sync_last_success_timestamp_seconds", kind="caller_index") > 0
