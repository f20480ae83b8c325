"""GDPR erasure end to end: the real starter (admin API), worker, Temporal dev server and both
emulators; then every system is searched again. Plus the deadline alerts on the time-skipping
test server, and an erasure that survives the worker being killed."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from simple_salesforce.format import format_soql
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from callbridge.domain.models import CallEndedEvent, CallLoggingInput
from callbridge.ops.privacy_requests import start_erasure
from callbridge.core.settings import Settings
from callbridge.store import caller_index
from callbridge.store import privacy as privacy_store
from callbridge.store.db import get_engine
from callbridge.core.temporal import data_converter
from tests.conftest import PAYLOAD_KEYS, VENV_BIN
from tests.helpers import (
    tls,
    ADMIN, call_event, conversation_id, genesys_token, make_person, place_call, refresh_index,
    stack_settings, unique_us_number,
)
from workflows.call_logging import CallLoggingWorkflow
from workflows.call_logging import workflow_id as call_log_id
from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def account(sf):
    return sf.Account.create({"Name": "Erasure Corp", "BillingCountry": "United States"})["id"]


def search_everywhere(sf, genesys, settings: Settings, person: dict, conversation: str) -> dict[str, int]:
    """An exhaustive search, independent of the workflow's own verification."""
    found = {}
    found["contact by email"] = sf.query(format_soql("SELECT Id FROM Contact WHERE Email = {}", person["email"]))["totalSize"]
    digits = person["e164"][2:]
    found["contact by phone"] = sf.query(format_soql(
        "SELECT Id FROM Contact WHERE Phone LIKE {p} OR MobilePhone LIKE {p}", p=f"%{digits[-4:]}%"))["records"]
    found["contact by phone"] = sum(1 for r in found["contact by phone"] if r["Id"] == person["contact_id"])
    found["contact by id"] = sf.query(format_soql("SELECT Id FROM Contact WHERE Id = {}", person["contact_id"]))["totalSize"]
    found["tasks"] = sf.query(format_soql("SELECT Id FROM Task WHERE Genesys_Conversation_Id__c = {}", conversation))["totalSize"]
    found["tasks by who"] = sf.query(format_soql("SELECT Id FROM Task WHERE WhoId = {}", person["contact_id"]))["totalSize"]
    found["events"] = sf.query(format_soql("SELECT Id FROM Event WHERE Id = {}", person["event_id"]))["totalSize"]
    found["consents"] = sf.query(format_soql("SELECT Id FROM Contact_Consent__c WHERE Id = {}", person["consent_id"]))["totalSize"]
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    for value in (person["email"], person["e164"]):
        found[f"genesys lookup {value[-4:]}"] = len(httpx.get(
            f"{genesys.api_url}/api/v2/externalcontacts/reversewhitepageslookup",
            params={"lookupVal": value}, headers=headers).json()["contacts"])
    found["genesys contact"] = int(httpx.get(f"{genesys.api_url}/api/v2/externalcontacts/contacts/{person['external_id']}",
                                             headers=headers).status_code != 404)
    found["recordings"] = len(httpx.get(f"{genesys.api_url}/api/v2/conversations/{conversation}/recordings",
                                        params={"maxWaitMs": 0}, headers=headers).json())
    engine = get_engine(settings.database_url)
    found["caller index"] = sum(1 for h in caller_index.lookup(engine, person["e164"])
                                if h["contact_id"] == person["contact_id"])
    return found


async def test_erasure_end_to_end_leaves_nothing_and_sticks(stack, sf, account, genesys, temporal_client):
    settings = stack_settings(stack)
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    conversation = await place_call(genesys, stack, temporal_client, e164)
    await refresh_index(temporal_client, stack)
    before = search_everywhere(sf, genesys, settings, person, conversation)
    assert all(before.values()), before  # the person really is in every system first

    unauthorized = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": person["email"]})
    assert unauthorized.status_code == 401
    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": person["email"]}, auth=ADMIN, timeout=30)
    assert resp.status_code == 202, resp.text
    request_id = resp.json()["requestId"]
    assert person["email"] not in request_id

    result = await temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id)).result()
    assert result.status == "completed", result
    status = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN).json()
    assert status["status"] == "completed"
    cert = status["certificate"]
    assert cert["workflowId"] == workflow_id(request_id) and cert["verification"]["remaining"] == 0
    assert {k: v["count"] for k, v in cert["deleted"].items()} == {
        "salesforce.contacts": 1, "salesforce.tasks": 1, "salesforce.events": 1, "salesforce.consents": 1,
        "genesys.external_contacts": 1, "genesys.recordings": 1, "temporal.histories": 1,
    }
    text = json.dumps(status)
    for pii in (person["email"], e164, digits, person["contact_id"], person["contact_id"][:15], "Erika"):
        assert pii not in text
    assert privacy_store.get_request(get_engine(settings.database_url), request_id)["sealed_identifiers"] is None

    after = search_everywhere(sf, genesys, settings, person, conversation)
    assert not any(after.values()), after
    with pytest.raises(RPCError) as err:
        await temporal_client.get_workflow_handle(call_log_id(conversation)).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND

    # A later call from the erased number: an unknown caller, no contact created for them.
    later = conversation_id()
    inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(call_event(later, e164)), "US",
                                     unknown_caller_policy="create_contact")
    logged = await temporal_client.execute_workflow(CallLoggingWorkflow.run, inp, id=call_log_id(later),
                                                    task_queue=stack.task_queue)
    assert logged.outcome == "logged_unknown_account" and logged.contact_id is None
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Phone = {}", e164))["totalSize"] == 0


async def test_erasure_resumes_after_the_worker_is_killed(stack, sf, account, genesys, salesforce, temporal_client):
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    # Contact deletes fail for a while: the worker dies with the erasure mid-way.
    httpx.post(f"{salesforce.instance_url}/_emulator/faults", verify=tls(salesforce), json={
        "fail_next": [{"method": "DELETE", "path_regex": f"sobjects/Contact/{person['contact_id']}", "status": 503,
                       "count": 1000}]}).raise_for_status()
    try:
        resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"contactId": person["contact_id"]},
                          auth=ADMIN, timeout=30)
        request_id = resp.json()["requestId"]
        handle = temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))
        for _ in range(300):
            progress = await handle.query(GdprErasureWorkflow.status)
            if "salesforce.events" in progress.steps_done:
                break
            await asyncio.sleep(0.1)
        assert "salesforce.events" in progress.steps_done and "salesforce.contacts" not in progress.steps_done
        stack.worker.kill()
    finally:
        httpx.delete(f"{salesforce.instance_url}/_emulator/faults", verify=tls(salesforce)).raise_for_status()
    stack.start_worker()
    result = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.status == "completed"
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Id = {}", person["contact_id"]))["totalSize"] == 0
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Email = {}", person["email"]))["totalSize"] == 0


# --- the 30-day deadline on the time-skipping test server -----------------------------------------

class _AlertSink(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _AlertSink.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


async def test_reminder_at_day_20_and_escalation_at_day_28_while_a_step_fails(
        stack, sf, account, genesys, salesforce, temporal_client, tmp_path):
    from callbridge.clients.salesforce.connection import SalesforceConnection

    server = HTTPServer(("127.0.0.1", 0), _AlertSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    settings = stack_settings(stack, database_url=f"sqlite:///{tmp_path / 'erasure.db'}",
                              alert_webhook_url=f"http://127.0.0.1:{server.server_port}/hook")
    faults = f"{salesforce.instance_url}/_emulator/faults"
    # Salesforce refuses the hard-delete jobs (Bulk API 2.0 ingest) until it recovers.
    httpx.post(faults, verify=tls(salesforce), json={"fail_next": [
        {"method": "POST", "path_regex": "/jobs/ingest$", "status": 503, "count": 100000}]},
    ).raise_for_status()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(VENV_BIN / "temporal-test-server"),
        data_converter=data_converter(Settings(payload_keys=PAYLOAD_KEYS)),
    )
    try:
        settings = settings.model_copy(update={"temporal_task_queue": "erasure-timers"})
        from activities.gdpr_erasure import GdprErasureActivities
        from callbridge.clients.genesys.connection import GenesysConnection

        # The histories to delete live on the session's dev server (the test server has no
        # visibility API); only the erasure workflow itself runs on the time-skipping server.
        erasure = GdprErasureActivities(SalesforceConnection(settings), GenesysConnection(settings), settings,
                                    client=temporal_client)
        activities = [getattr(erasure, name) for name in dir(erasure)
                      if name.startswith(("erasure_", "privacy_alert"))]
        with ThreadPoolExecutor(8) as pool:
            async with Worker(env.client, task_queue="erasure-timers", workflows=[GdprErasureWorkflow],
                              activities=activities, activity_executor=pool):
                request_id = await start_erasure(env.client, settings, email=person["email"], task_queue="erasure-timers")
                handle = env.client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))
                # The deadline runs from the request, not from when the workflow started.
                started = privacy_store.get_request(get_engine(settings.database_url), request_id)["requested_at"]
                await env.sleep(timedelta(days=29))
                progress = await handle.query(GdprErasureWorkflow.status)
                assert progress.phase == "deleting"
                assert [a.kind for a in progress.alerts] == ["reminder", "escalation"]
                reminder, escalation = (a.at - started for a in progress.alerts)
                assert timedelta(days=20) <= reminder < timedelta(days=20, minutes=1)
                assert timedelta(days=28) <= escalation < timedelta(days=28, minutes=1)
                texts = [m["text"] for m in _AlertSink.received if request_id in m["text"]]
                assert len(texts) == 2 and texts[0].startswith("[warning]") and texts[1].startswith("[critical]")
                assert person["email"] not in " ".join(texts)
                # Salesforce recovers: the same workflow finishes and certifies.
                httpx.delete(faults, verify=tls(salesforce)).raise_for_status()
                for _ in range(20):  # the next attempt is at most the retry cap (2 h) away
                    await env.sleep(timedelta(hours=1))
                    if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                        break
                result = await handle.result()
                assert result.status == "completed"
                assert result.certificate["deleted"]["salesforce.contacts"]["count"] == 1
    finally:
        httpx.delete(faults, verify=tls(salesforce))
        await env.shutdown()
        server.shutdown()
