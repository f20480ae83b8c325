"""Records one history per workflow type into tests/histories/<name>.json for the replay test.

    .venv/bin/python -m pytest tests/histories/record_histories.py          # every history
    .venv/bin/python -m pytest tests/histories/record_histories.py -k "record_sync or record_contact"  # only the sync ones

Not collected by `make test` (the file name doesn't match test_*.py); run it on purpose when a
workflow changed *intentionally* (guarded with `workflow.patched`, see the README's
"Reliability"). Each workflow runs for real: the session's Temporal dev server and emulators,
and a worker in this process built exactly like worker.py's but with a fixed, public replay
key (REPLAY_KEYS), so tests/workflows/test_replay.py can decode the payloads. Only made-up people
(555 numbers, example.com, "Replay" names) go in: the histories hold no real PII.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from callbridge.core.settings import Settings
from callbridge.core.temporal import data_converter

HISTORY_DIR = Path(__file__).resolve().parent
# A public test key (32 bytes): the recorded payloads are made-up data, encrypted only because
# production payloads always are, so replay goes through the same codec.
REPLAY_KEYS = "replay-1:Y2FsbGJyaWRnZS1yZXBsYXktaGlzdG9yaWVzLWtleSE="


def replay_settings(**overrides) -> Settings:
    return Settings(payload_keys=REPLAY_KEYS, **overrides)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def recorder(temporal_env, salesforce, genesys, test_var_dir):
    from activities import build_activities
    from callbridge.core.metrics import MetricsInterceptor
    from workflows import WORKFLOWS

    settings = replay_settings(
        var_dir=test_var_dir,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"record-{uuid.uuid4().hex[:8]}",
        salesforce_instance_url=salesforce.instance_url, salesforce_login_url=salesforce.instance_url,
        salesforce_ca_file=salesforce.ca_file, salesforce_client_id=salesforce.client_id,
        salesforce_client_secret=salesforce.client_secret,
        genesys_api_url=genesys.api_url, genesys_login_url=genesys.api_url,
        genesys_client_id=genesys.client_id, genesys_client_secret=genesys.client_secret,
        database_url=f"sqlite:///{test_var_dir / 'record.db'}",
    )
    client = await Client.connect(settings.temporal_address, data_converter=data_converter(settings))
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = Worker(client, task_queue=settings.temporal_task_queue, workflows=WORKFLOWS,
                        activities=build_activities(settings), activity_executor=executor,
                        max_concurrent_activities=16, interceptors=[MetricsInterceptor()])
        async with worker:
            yield SimpleNamespace(client=client, settings=settings, task_queue=settings.temporal_task_queue)


async def save(client: Client, workflow_id: str, name: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (HISTORY_DIR / f"{name}.json").write_text(history.to_json())


async def test_record_call_logging(recorder, sf, genesys):
    from callbridge.domain.models import CallEndedEvent, CallLoggingInput
    from tests.helpers import call_event, conversation_id, unique_us_number
    from workflows.call_logging import CallLoggingWorkflow, workflow_id

    account = sf.Account.create({"Name": "Replay Corp", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    sf.Contact.create({"FirstName": "Replay", "LastName": "Caller", "AccountId": account,
                       "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "MailingCountry": "United States"})
    # A simulated call, so the recording branch runs too (no webhook URL: we start it ourselves).
    call = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": e164, "durationSeconds": 61, "wait": True},
                      timeout=30).json()
    payload = call["delivery"]["payload"]
    assert payload["recordingId"]
    inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(payload), "US")
    result = await recorder.client.execute_workflow(CallLoggingWorkflow.run, inp, id=workflow_id(payload["conversationId"]),
                                                    task_queue=recorder.task_queue)
    assert result.outcome == "logged" and result.recording_link
    await save(recorder.client, workflow_id(payload["conversationId"]), "call_logging")

    # The unknown-caller path with the patched tombstone check.
    e164, _ = unique_us_number()
    conv = conversation_id()
    inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(call_event(conv, e164)), "US",
                                     unknown_caller_policy="create_contact")
    result = await recorder.client.execute_workflow(CallLoggingWorkflow.run, inp, id=workflow_id(conv),
                                                    task_queue=recorder.task_queue)
    assert result.outcome == "logged_new_contact"
    await save(recorder.client, workflow_id(conv), "call_logging_new_contact")


async def test_record_call_logging_from_event(recorder, sf, genesys):
    """Issue #14: a call-ended event's thin input; the workflow hydrates the call from Genesys, the
    IVR's contact_id names the contact, and the composite request is the one Salesforce request."""
    from callbridge.domain.models import CallLoggingInput
    from tests.helpers import unique_us_number
    from workflows.call_logging import CallLoggingWorkflow, workflow_id

    account = sf.Account.create({"Name": "Replay Events Corp", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"FirstName": "Replay", "LastName": "Event", "AccountId": account,
                                 "Phone": digits, "MailingCountry": "United States"})["id"]
    call = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30, json={
        "ani": e164, "durationSeconds": 62, "wait": True,
        "attributes": {"contact_id": contact, "contact_name": "Replay Event", "account_id": account}}).json()
    conversation = call["conversationId"]
    inp = CallLoggingInput.for_conversation(conversation, "US")
    result = await recorder.client.execute_workflow(CallLoggingWorkflow.run, inp, id=workflow_id(conversation),
                                                    task_queue=recorder.task_queue)
    assert (result.outcome, result.contact_id) == ("logged", contact) and result.recording_link
    await save(recorder.client, workflow_id(conversation), "call_logging_from_event")


async def test_record_lasting_recording_link(recorder, sf, genesys):
    """Call logging with the lasting link (patched "lasting-recording-link") while the recording
    still transcodes, and the RecordingLinkWorkflow it starts."""
    from callbridge.domain.models import CallEndedEvent, CallLoggingInput
    from tests.helpers import unique_us_number
    from workflows.call_logging import CallLoggingWorkflow, workflow_id
    from workflows.recording_link import RecordingLinkWorkflow
    from workflows.recording_link import workflow_id as follow_up_id

    e164, digits = unique_us_number()
    sf.Contact.create({"FirstName": "Replay", "LastName": "Listener", "MailingCountry": "United States",
                       "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"})
    call = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30,
                      json={"ani": e164, "durationSeconds": 61, "wait": True, "transcodeSeconds": 3}).json()
    payload = call["delivery"]["payload"]
    inp = CallLoggingInput.for_event(CallEndedEvent.model_validate(payload), "US",
                                     recording_link_base="https://callbridge.example.com",
                                     recording_first_check_seconds=4)
    conversation = payload["conversationId"]
    result = await recorder.client.execute_workflow(CallLoggingWorkflow.run, inp, id=workflow_id(conversation),
                                                    task_queue=recorder.task_queue)
    assert result.outcome == "logged" and result.recording_link.startswith("pending")
    follow_up = recorder.client.get_workflow_handle_for(RecordingLinkWorkflow.run, follow_up_id(conversation))
    assert await follow_up.result() == "linked"
    await save(recorder.client, workflow_id(conversation), "call_logging_recording_pending")
    await save(recorder.client, follow_up_id(conversation), "recording_link")


async def test_record_caller_index_refresh(recorder):
    from callbridge.domain.models import IndexRefreshRequest
    from workflows.caller_index import CallerIndexRefreshWorkflow

    wid = f"record-caller-index-{uuid.uuid4().hex[:6]}"
    await recorder.client.execute_workflow(CallerIndexRefreshWorkflow.run, IndexRefreshRequest(), id=wid,
                                           task_queue=recorder.task_queue)
    await save(recorder.client, wid, "caller_index_refresh")


async def test_record_gdpr_erasure(recorder, sf):
    from callbridge.ops.privacy_requests import start_erasure
    from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id
    from tests.helpers import unique_us_number

    _, digits = unique_us_number()
    email = f"replay.{uuid.uuid4().hex[:8]}@example.com"
    sf.Contact.create({"FirstName": "Replay", "LastName": "Erased", "Email": email, "Phone": digits,
                       "MailingCountry": "United States"})
    request_id = await start_erasure(recorder.client, recorder.settings, email=email, task_queue=recorder.task_queue)
    result = await recorder.client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id)).result()
    assert result.status == "completed"
    await save(recorder.client, workflow_id(request_id), "gdpr_erasure")


async def test_record_sync_pair(recorder, sf):
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import PairKey, SyncPairInput
    from tests.helpers import new_sf_contact
    from workflows.sync_pair import SyncPairWorkflow

    key = PairKey(salesforce_id=new_sf_contact(sf, FirstName="Replay"))
    result = await recorder.client.execute_workflow(SyncPairWorkflow.run, SyncPairInput.from_config(key, load(), mode="one_way"),
                                                    id=key.workflow_id, task_queue=recorder.task_queue)
    assert result.action == "create_in_genesys"
    await save(recorder.client, key.workflow_id, "sync_pair")


async def test_record_sync_pair_link_repair(recorder, sf):
    """A pair whose Salesforce link was cleared (an admin's edit): the link is written again, and
    the base stored with its audit line (patched "sync-pair-store-after-link-write")."""
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import PairKey, SyncPairInput
    from tests.helpers import new_sf_contact
    from workflows.sync_pair import SyncPairWorkflow

    key = PairKey(salesforce_id=new_sf_contact(sf, FirstName="Replay"))
    inp = SyncPairInput.from_config(key, load(), mode="one_way")
    created = await recorder.client.execute_workflow(SyncPairWorkflow.run, inp, id=key.workflow_id,
                                                     task_queue=recorder.task_queue)
    assert created.action == "create_in_genesys"
    sf.Contact.update(key.salesforce_id, {"Genesys_Contact_Id__c": None})
    repaired = await recorder.client.execute_workflow(SyncPairWorkflow.run, inp, id=key.workflow_id,
                                                      task_queue=recorder.task_queue)
    assert repaired.action == "noop" and sf.Contact.get(key.salesforce_id)["Genesys_Contact_Id__c"]
    await save(recorder.client, key.workflow_id, "sync_pair_link_repair")


async def test_record_contact_sync(recorder, sf):
    from tests.helpers import new_sf_contact, run_sync

    stack = SimpleNamespace(task_queue=recorder.task_queue)
    edited = new_sf_contact(sf, FirstName="Replay")
    first = await run_sync(recorder.client, stack)  # the initial load: the bulk path
    assert first.path == "bulk"
    await save(recorder.client, "contact-sync", "contact_sync")
    sf.Contact.update(edited, {"Title": "Replayed"})
    second = await run_sync(recorder.client, stack)  # a few changes: the per-pair path
    assert second.path == "per_pair" and second.updated >= 1
    await save(recorder.client, "contact-sync", "contact_sync_per_pair")


async def test_record_call_reconciliation(recorder, genesys):
    from activities.call_reconciliation import ReconciliationRequest
    from tests.helpers import unique_us_number
    from workflows.call_reconciliation import CallReconciliationWorkflow

    # A call whose webhook goes nowhere: the run starts its logging.
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"webhookUrl": None}).raise_for_status()
    e164, _ = unique_us_number()
    call = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": e164, "durationSeconds": 31, "wait": True,
                                                                  "alertSeconds": 0.1, "talkSeconds": 0.1},
                      timeout=30).json()
    wid = f"record-call-reconciliation-{uuid.uuid4().hex[:6]}"
    result = await recorder.client.execute_workflow(
        CallReconciliationWorkflow.run, ReconciliationRequest(lookback_seconds=300, settle_seconds=0), id=wid,
        task_queue=recorder.task_queue)
    assert call["conversationId"] in result.started_conversation_ids
    await save(recorder.client, wid, "call_reconciliation")
