"""Erasure at its edges, against the real stack: a request that fails is stored as failed; a
legal hold keeps a recording (and the certificate says so); an erasure racing a contact sync
run leaves nothing behind; call logging and sync feed the breach scope."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from simple_salesforce.format import format_soql
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from callbridge.domain import privacy
from callbridge.domain.privacy_models import ErasureInput, RetentionInput
from callbridge.store import privacy as privacy_store
from callbridge.store import sync as sync_store
from callbridge.store.db import get_engine
from callbridge.store.sync_runs import audit_for_pair, list_review
from tests.helpers import (
    tls,
    ADMIN, GENESYS_CONTACTS, TEST_EMAIL_DOMAIN, genesys_contacts_linked_to, genesys_token, make_person, new_sf_contact,
    place_call, run_cli, run_sync, stack_settings, unique_us_number, SYNC_LOOKBACK_SECONDS,
)
from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id
from workflows.retention import RetentionWorkflow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(sf):
    return sf.Account.create({"Name": "Erasure Edges Ltd", "BillingCountry": "United States"})["id"]


async def start_request(temporal_client, stack, settings, contact_id: str, **inp) -> str:
    """What `start_erasure` does, with workflow input the settings don't expose (max_rounds)."""
    request_id = privacy_store.new_request_id()
    now = datetime.now(timezone.utc)
    privacy_store.create_request(
        get_engine(settings.database_url), request_id, privacy.keyed_hash(settings.privacy_hash_key.get_secret_value(), "sf_id", contact_id), now,
        now + timedelta(days=30), privacy_store.seal(settings.payload_keys.get_secret_value(),
                                                     {"emails": [], "phones": [], "contact_ids": [contact_id]}))
    await temporal_client.start_workflow(GdprErasureWorkflow.run, ErasureInput(
        request_id=request_id, requested_at=now, **inp), id=workflow_id(request_id), task_queue=stack.task_queue)
    return request_id


def sf_faults(salesforce, body: dict | None) -> None:
    url = f"{salesforce.instance_url}/_emulator/faults"
    resp = (httpx.post(url, verify=tls(salesforce), json=body) if body is not None
            else httpx.delete(url, verify=tls(salesforce)))
    resp.raise_for_status()


async def test_an_erasure_that_fails_is_stored_as_failed(stack, sf, account, genesys, salesforce, temporal_client):
    settings = stack_settings(stack)
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    # Salesforce answers the contact's DELETE with 404 (taken as "already gone") but keeps it:
    # verification finds it again, and one round is all this request gets.
    sf_faults(salesforce, {"fail_next": [{"method": "DELETE", "path_regex": f"sobjects/Contact/{person['contact_id']}",
                                          "status": 404, "count": 1000}]})
    try:
        request_id = await start_request(temporal_client, stack, settings, person["contact_id"], max_rounds=1)
        handle = temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))
        result = await handle.result()
    finally:
        sf_faults(salesforce, None)
    assert result.status == "failed" and result.remaining["salesforce.contacts"] == 1
    # Failed at once after its last round: no pause before a round that won't come (the only
    # timer is the deadline watch's, days long).
    timers = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
              async for e in handle.fetch_history_events() if e.HasField("timer_started_event_attributes")]
    assert timers and all(t > timedelta(days=1) for t in timers)

    api = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN).json()
    assert api["status"] == "failed" and api["certificate"] is None and api["completedAt"]
    assert api["failure"]["reason"] == "verification" and api["failure"]["remaining"]["salesforce.contacts"] == 1
    cli = json.loads(run_cli(stack, "gdpr", "status", request_id))
    assert cli["status"] == "failed" and cli["failure"]["remaining"] == api["failure"]["remaining"]
    text = json.dumps(api)
    for pii in (person["email"], e164, digits, person["contact_id"]):
        assert pii not in text
    # The person isn't erased yet: their identifiers stay sealed for the next request.
    assert privacy_store.get_request(get_engine(settings.database_url), request_id)["sealed_identifiers"]


async def test_a_terminated_erasure_reads_as_failed(stack, sf, account, genesys, salesforce, temporal_client):
    settings = stack_settings(stack)
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    sf_faults(salesforce, {"fail_next": [{"method": "DELETE", "path_regex": f"sobjects/Contact/{person['contact_id']}",
                                          "status": 503, "count": 1000}]})
    try:
        request_id = await start_request(temporal_client, stack, settings, person["contact_id"])
        handle = temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))
        while "salesforce.events" not in (await handle.query(GdprErasureWorkflow.status)).steps_done:
            await asyncio.sleep(0.2)
        await handle.terminate("operator stopped it")
    finally:
        sf_faults(salesforce, None)
    api = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN).json()
    assert api["status"] == "failed" and api["failure"]["reason"] == "workflow terminated"
    assert privacy_store.get_request(get_engine(settings.database_url), request_id)["status"] == "failed"


async def test_a_recording_on_legal_hold_is_kept_and_certified_as_kept(stack, sf, account, genesys, temporal_client):
    settings = stack_settings(stack)
    engine = get_engine(settings.database_url)
    e164, digits = unique_us_number()
    person = make_person(sf, account, genesys, e164, digits)
    held = await place_call(genesys, stack, temporal_client, e164)
    other = await place_call(genesys, stack, temporal_client, e164)
    privacy_store.set_legal_hold(engine, held, "case 7")
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}

    def recordings(conv):
        return httpx.get(f"{genesys.api_url}/api/v2/conversations/{conv}/recordings", params={"maxWaitMs": 0},
                         headers=headers).json()

    held_ids = [r["id"] for r in recordings(held)]
    assert held_ids and recordings(other)

    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": person["email"]}, auth=ADMIN, timeout=30)
    request_id = resp.json()["requestId"]
    result = await temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id)).result()
    assert result.status == "completed"
    cert = result.certificate
    assert cert["deleted"]["genesys.recordings"]["count"] == 1
    kept = cert["kept"]["genesys.recordings"]
    assert kept["count"] == 1 and "17(3)(e)" in kept["reason"]
    assert kept["idHashes"] == [privacy.keyed_hash(settings.privacy_hash_key.get_secret_value(), "record", held_ids[0])]
    assert cert["verification"]["remaining"] == 0
    assert [r["id"] for r in recordings(held)] == held_ids and recordings(other) == []
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Id = {}", person["contact_id"]))["totalSize"] == 0

    # The hold is lifted: the next retention run deletes what the erasure had to keep.
    privacy_store.set_legal_hold(engine, held, "case 7 closed", active=False)
    report = await temporal_client.execute_workflow(
        RetentionWorkflow.run, RetentionInput(), id=f"retention-test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.task_queue)
    assert set(held_ids) <= set(report.deleted_gdpr)
    assert recordings(held) == []


async def test_call_logging_writes_privacy_audit_entries_for_breach_scope(stack, sf, account, genesys,
                                                                           temporal_client):
    settings = stack_settings(stack)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"LastName": f"Audited{uuid.uuid4().hex[:6]}", "Phone": digits,
                                 "AccountId": account, "MailingCountry": "United States"})["id"]
    await place_call(genesys, stack, temporal_client, e164)
    entries = privacy_store.audit_entries(get_engine(settings.database_url), since, "call_logging")
    subject = privacy.keyed_hash(settings.privacy_hash_key.get_secret_value(), "sf_id", contact)
    mine = [e for e in entries if e["subject_hash"] == subject]
    assert [(e["action"], e["data_types"]) for e in mine] == [("task_logged", "call_record,name,phone_number")]
    assert digits not in json.dumps(entries, default=str) and e164 not in json.dumps(entries, default=str)
    scope = json.loads(run_cli(stack, "breach", "scope", "--since", since.isoformat(), "--component", "call_logging"))
    assert scope["people"] >= 1 and scope["dataTypes"] == ["call_record", "name", "phone_number"]


async def test_an_erasure_during_a_sync_run_leaves_the_person_nowhere(stack, sf, gc, genesys, temporal_client):
    settings = stack_settings(stack)
    engine = get_engine(settings.database_url)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    bystander = new_sf_contact(sf, Email=f"b{uuid.uuid4().hex[:10]}@{TEST_EMAIL_DOMAIN}")
    await run_sync(temporal_client, stack, mode="one_way")  # catch up: only this test's changes are left
    assert sf.Contact.get(bystander)["Genesys_Contact_Id__c"]

    email = f"v{uuid.uuid4().hex[:10]}@{TEST_EMAIL_DOMAIN}"
    victim = new_sf_contact(sf, Email=email)
    e164 = "+1" + "".join(ch for ch in sf.Contact.get(victim)["Phone"] if ch.isdigit())
    # The victim's Genesys create is held up: the sync has read them (before any tombstone)
    # and writes them while the erasure is under way.
    httpx.post(f"{genesys.api_url}/_emulator/faults", json={"delay_next": [
        {"method": "POST", "path_regex": r"/api/v2/externalcontacts/contacts$", "seconds": 8, "count": 1}]},
    ).raise_for_status()
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.contact_sync import ContactSyncWorkflow

    sync = await temporal_client.start_workflow(
        ContactSyncWorkflow.run, ContactSyncInput.from_config(load(), mode="one_way", force_path="per_pair",
                                                          lookback_seconds=SYNC_LOOKBACK_SECONDS),
        id="contact-sync", task_queue=stack.task_queue)
    pair = temporal_client.get_workflow_handle(f"sync-pair-{victim}")
    while True:  # until the pair's Genesys create is in flight
        try:
            desc = await pair.describe()
        except RPCError:
            await asyncio.sleep(0.1)
            continue
        pending = [a.activity_type.name for a in desc.raw_description.pending_activities]
        if "write_genesys_contact" in pending or desc.status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.1)

    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": email}, auth=ADMIN, timeout=30)
    request_id = resp.json()["requestId"]
    erasure = temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))
    result = await erasure.result()
    await sync.result()
    assert result.status == "completed", result
    cert = result.certificate
    assert cert["verification"]["remaining"] == 0
    # The sync did write the person during the erasure (the create it had in flight, its base
    # and audit), and the erasure took that away too.
    assert cert["deleted"]["genesys.external_contacts"]["count"] == 1
    assert cert["localStores"]["sync_pairs"] >= 1 and cert["localStores"]["sync_audit"] >= 1
    again = await run_sync(temporal_client, stack, mode="one_way")
    assert again.created == 0

    # Nowhere in Salesforce, Genesys or Callbridge's stores.
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Id = {}", victim))["totalSize"] == 0
    assert sf.query(format_soql("SELECT Id FROM Contact WHERE Email = {}", email))["totalSize"] == 0
    for value in (email, e164):
        assert gc.get("/api/v2/externalcontacts/reversewhitepageslookup",
                      params={"lookupVal": value}).json()["contacts"] == []
    assert genesys_contacts_linked_to(gc, victim) == []
    assert sync_store.get_pair(engine, victim, None) is None
    assert audit_for_pair(engine, salesforce_id=victim) == []
    assert not [r for r in list_review(engine, include_resolved=True) if victim in r["salesforce_ids"]]
    key = settings.privacy_hash_key.get_secret_value()
    hashes = privacy.subject_hashes(key, emails=[email], phones=[e164], sf_ids=[victim])
    assert privacy_store.count_audit_for(engine, hashes, keep_request_id=request_id) == 0
    # The bystander synced in the same runs is untouched, and sync shows in the breach scope.
    linked = sf.Contact.get(bystander)["Genesys_Contact_Id__c"]
    assert gc.get(f"{GENESYS_CONTACTS}/{linked}").status_code == 200
    scope = json.loads(run_cli(stack, "breach", "scope", "--since", since.isoformat(), "--component", "sync"))
    assert scope["people"] >= 1 and {"email", "name", "phone_number"} <= set(scope["dataTypes"])
