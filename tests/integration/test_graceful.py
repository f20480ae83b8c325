"""Graceful operations on real processes: the starter drains on SIGTERM (503 for new webhooks,
in-flight ones still start their workflows), the worker finishes in-flight activities."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid

import httpx
import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState

from callbridge.domain import signature
from callbridge.domain.models import CallEndedEvent, CallLoggingInput
from devstack.processes import ManagedProcess, free_port, python_module
from tests.conftest import REPO
from tests.helpers import call_event, conversation_id, post_webhook, salesforce_client, unique_us_number, tls
from tests.integration.test_metrics import scrape, value
from workflows.call_logging import CallLoggingWorkflow, workflow_id

pytestmark = pytest.mark.integration


async def _until(predicate, what: str, attempts: int = 600):
    for _ in range(attempts):
        if result := predicate():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def test_starter_refuses_new_webhooks_while_in_flight_ones_finish(stack, test_var_dir, temporal_client):
    port = free_port()
    env = {**stack.env, "CALLBRIDGE_STARTER_PORT": str(port)}
    starter = ManagedProcess(name="draining-starter", argv=python_module("starter.app"), env=env,
                             ready_url=f"http://127.0.0.1:{port}/healthz",
                             log_path=test_var_dir / "draining-starter.log", cwd=REPO).start()
    url = f"http://127.0.0.1:{port}"
    try:
        e164, _ = unique_us_number()
        conversation = conversation_id()
        raw = json.dumps(call_event(conversation, e164)).encode()
        headers = signature.signed_headers(stack.webhook_secret, int(__import__("time").time()), raw)
        # An in-flight webhook: headers and half the body sent, the rest held back.
        sock = socket.create_connection(("127.0.0.1", port))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall((f"POST /webhooks/genesys/conversation-ended HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                      f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n").encode()
                     + raw[: len(raw) // 2])
        await _until(lambda: value(scrape(f"{url}/metrics"), "callbridge_webhooks_in_flight") == 1,
                     "the webhook in flight")

        os.killpg(starter.proc.pid, signal.SIGTERM)
        other = conversation_id()
        refused = await _until(lambda: (r := post_webhook(url, stack.webhook_secret, call_event(other, e164)))
                               .status_code == 503 and r, "a 503 while draining")
        assert refused.headers["Retry-After"] == "5" and refused.json() == {"error": "shutting down"}
        assert httpx.get(f"{url}/healthz").status_code == 503
        assert starter.alive()  # still waiting for the in-flight webhook

        sock.sendall(raw[len(raw) // 2:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
        sock.close()
        assert response.startswith(b"HTTP/1.1 202")
        assert json.loads(response.split(b"\r\n\r\n", 1)[1]) == {"workflowId": workflow_id(conversation)}
        assert starter.proc.wait(timeout=60) == 0
        await temporal_client.get_workflow_handle(workflow_id(conversation)).describe()  # it was started
        with pytest.raises(Exception):
            await temporal_client.get_workflow_handle(workflow_id(other)).describe()  # it was not
    finally:
        starter.stop()


async def test_worker_drains_an_in_flight_activity_on_sigterm(stack, salesforce, test_var_dir, temporal_client):
    sf = salesforce_client(salesforce)
    account = sf.Account.create({"Name": "Drain Inc", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    sf.Contact.create({"LastName": "Drain", "AccountId": account, "MailingCountry": "United States", "Phone": digits})
    queue = f"callbridge-drain-{uuid.uuid4().hex[:8]}"
    env = {**stack.env, "CALLBRIDGE_TEMPORAL_TASK_QUEUE": queue, "CALLBRIDGE_WORKER_METRICS_PORT": "0",
           "CALLBRIDGE_WORKER_TEMPORAL_METRICS_PORT": "0"}

    def new_worker(name: str) -> ManagedProcess:
        return ManagedProcess(name=name, argv=[sys.executable, str(REPO / "worker.py")], env=env,
                              log_path=test_var_dir / f"{name}.log", cwd=REPO).start()

    faults = f"{salesforce.instance_url}/_emulator/faults"
    # The Task upsert (a composite request) takes 4 s: SIGTERM lands while it runs.
    httpx.post(faults, verify=tls(salesforce), json={"delay_next": [
        {"method": "POST", "path_regex": "/composite$", "seconds": 4, "count": 1}]}).raise_for_status()
    first = new_worker("drain-worker-1")
    second = None
    try:
        conversation = conversation_id()
        inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(call_event(conversation, e164)), "US")
        handle = await temporal_client.start_workflow(CallLoggingWorkflow.run, inp, id=workflow_id(conversation),
                                                      task_queue=queue)

        async def log_call_running() -> bool:
            desc = await handle.describe()
            return any(a.activity_type.name == "log_call" and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                       for a in desc.raw_description.pending_activities)

        for _ in range(600):
            if await log_call_running():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("log_call never started")
        os.killpg(first.proc.pid, signal.SIGTERM)
        assert await asyncio.to_thread(first.proc.wait, 60) == 0
        log = (test_var_dir / "drain-worker-1.log").read_text()
        assert "worker draining" in log and "worker stopped" in log

        second = new_worker("drain-worker-2")
        result = await handle.result()
        assert result.outcome == "logged"
        history = await handle.fetch_history()
        scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                     for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
        log_call_attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                             if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                             and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == "log_call"]
        assert log_call_attempts == [1]  # finished by the draining worker, never retried
    finally:
        httpx.delete(faults, verify=tls(salesforce))
        first.stop()
        if second:
            second.stop()
