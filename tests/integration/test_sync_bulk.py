"""Contact sync beyond one pair: the bulk path, matching, the audit and review list, the
caller-ID index fed by sync, and runs that survive a killed worker or an expired session."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from callbridge.store import caller_index
from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from tests.helpers import GENESYS_CONTACTS as CONTACTS
from tests.helpers import (
    tls,
    edit_gc_contact,
    genesys_contacts_linked_to,
    new_sf_contact,
    pause_schedule,
    refresh_index,
    SYNC_LOOKBACK_SECONDS,
    run_sync,
    salesforce_client,
    stack_settings,
    unique_us_number,
)

pytestmark = pytest.mark.integration


def engine_of(stack):
    return get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])


async def test_the_bulk_path_updates_deletes_and_audits_each_field_change(stack, sf, gc, temporal_client):
    edited, removed = new_sf_contact(sf), new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="one_way")
    sf.Contact.update(edited, {"Title": "Head of Support"})
    removed_gc = sf.Contact.get(removed)["Genesys_Contact_Id__c"]
    sf.Contact.delete(removed)

    result = await run_sync(temporal_client, stack, mode="one_way", force_path="bulk")

    assert result.path == "bulk" and result.errors == 0 and result.updated >= 1 and result.deleted >= 1
    # Requests are counted per system, and batched: far fewer than one per pair.
    assert 0 < result.salesforce_requests and 0 < result.genesys_requests
    gc_id = sf.Contact.get(edited)["Genesys_Contact_Id__c"]
    assert gc.get(f"{CONTACTS}/{gc_id}").json()["title"] == "Head of Support"
    assert gc.get(f"{CONTACTS}/{removed_gc}").status_code == 404
    audit = sync_runs.audit_for_pair(engine_of(stack), salesforce_id=edited)
    title = [a for a in audit if a["field"] == "Title" and a["new"] == "Head of Support"]
    assert title and title[0]["written_to"] == "genesys" and title[0]["workflow_id"] == "contact-sync"
    assert title[0]["reason"]
    gone = sync_runs.audit_for_pair(engine_of(stack), salesforce_id=removed)
    assert any(a["action"] == "delete_in_genesys" for a in gone)
    newest = sync_runs.list_runs(engine_of(stack), limit=1)[0]
    assert newest["path"] == "bulk" and newest["status"] == "completed"
    assert newest["stats"]["updated"] == result.updated and newest["health_score"] is not None


async def test_per_pair_and_bulk_write_the_same_audit_for_the_same_changes(stack, sf, temporal_client):
    """Both paths apply the same steps (callbridge/domain/sync/steps.py): a field written, a contact
    deleted, a lost link written again leave the same audit lines, one reason per kind of step."""
    engine = engine_of(stack)

    async def audit_after_changes(path: str) -> dict[str, list[tuple]]:
        contacts = {"edited": new_sf_contact(sf), "removed": new_sf_contact(sf), "relinked": new_sf_contact(sf)}
        await run_sync(temporal_client, stack, mode="one_way")
        seen = {a["id"] for c in contacts.values() for a in sync_runs.audit_for_pair(engine, salesforce_id=c)}
        sf.Contact.update(contacts["edited"], {"Title": "Head of Support"})
        sf.Contact.delete(contacts["removed"])
        sf.Contact.update(contacts["relinked"], {"Genesys_Contact_Id__c": None})  # an admin's edit
        result = await run_sync(temporal_client, stack, mode="one_way", force_path=path)
        assert result.path == path and result.errors == 0 and result.handed_off == 0
        return {name: sorted((a["action"], a["field"], a["written_to"], a["reason"])
                             for a in sync_runs.audit_for_pair(engine, salesforce_id=c) if a["id"] not in seen)
                for name, c in contacts.items()}

    per_pair, bulk = await audit_after_changes("per_pair"), await audit_after_changes("bulk")
    assert per_pair == bulk
    assert per_pair["edited"] == [("update", "Title", "genesys", "salesforce owns the field")]
    assert per_pair["removed"] == [("delete_in_genesys", None, "genesys", "deleted in Salesforce")]
    assert per_pair["relinked"] == [("noop", None, "salesforce", "link written")]


async def test_a_phone_edited_in_genesys_reaches_salesforce_and_the_caller_id_index(stack, sf, gc, temporal_client):
    from workflows.caller_index import SCHEDULE_ID

    sf_id = new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="bidirectional")
    gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
    # The index refresher would catch the change on its own: hold it, so only sync can.
    schedule = await pause_schedule(temporal_client, SCHEDULE_ID, "test: keep the index from learning the contact")
    try:
        e164, _ = unique_us_number()
        edit_gc_contact(gc, gc_id, cellPhone={"display": e164})
        result = await run_sync(temporal_client, stack, mode="bidirectional")
        assert result.errors == 0
        assert sf.Contact.get(sf_id)["MobilePhone"] == e164
        assert [r["contact_id"] for r in caller_index.lookup(engine_of(stack), e164)] == [sf_id]
    finally:
        await schedule.unpause()


async def test_matching_by_phone_and_by_name_and_account_and_an_ambiguous_email_is_reviewed(
        stack, sf, gc, temporal_client):
    tag = uuid.uuid4().hex[:8]
    # By phone: a Genesys contact with only the number of a Salesforce contact.
    e164, digits = unique_us_number()
    by_phone = new_sf_contact(sf, Phone=f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    await refresh_index(temporal_client, stack)
    phone_gc = gc.post(CONTACTS, json={"firstName": "Caller", "lastName": tag, "workPhone": {"display": e164}}).json()
    # By first + last name within the same account.
    account = sf.Account.create({"Name": f"Acme {tag}"})["id"]
    by_name = new_sf_contact(sf, FirstName="Nia", LastName=f"Okafor{tag}", AccountId=account, Phone=None)
    org = gc.post("/api/v2/externalcontacts/organizations", json={"name": f"Acme {tag}"}).json()
    name_gc = gc.post(CONTACTS, json={"firstName": "Nia", "lastName": f"Okafor{tag}",
                                      "externalOrganization": {"id": org["id"]}}).json()
    # Two Salesforce contacts share an address (different casing): never guessed.
    twins = [new_sf_contact(sf, Email=f"dup.{tag}@example.com"), new_sf_contact(sf, Email=f"DUP.{tag}@Example.COM")]
    dup_gc = gc.post(CONTACTS, json={"firstName": "Dup", "lastName": tag, "workEmail": f"Dup.{tag}@example.com"}).json()

    result = await run_sync(temporal_client, stack, mode="bidirectional")

    assert result.errors == 0 and result.matched_by_phone >= 1 and result.matched_by_name >= 1 and result.ambiguous >= 1
    assert sf.Contact.get(by_phone)["Genesys_Contact_Id__c"] == phone_gc["id"]
    assert genesys_contacts_linked_to(gc, by_phone) == [phone_gc["id"]]
    assert sf.Contact.get(by_name)["Genesys_Contact_Id__c"] == name_gc["id"]
    assert genesys_contacts_linked_to(gc, by_name) == [name_gc["id"]]
    # The ambiguous one: on the review list with both candidates, linked to nobody, nothing created.
    cases = [c for c in sync_runs.list_review(engine_of(stack)) if c["genesys_id"] == dup_gc["id"]]
    assert [c["reason"] for c in cases] == ["ambiguous_email"] and cases[0]["salesforce_ids"] == sorted(twins)
    assert not gc.get(f"{CONTACTS}/{dup_gc['id']}").json().get("externalIds")
    same_email = sf.query(f"SELECT Id FROM Contact WHERE Email = 'dup.{tag}@example.com'")["records"]
    assert sorted(r["Id"] for r in same_email) == sorted(twins)
    # The review list reads in the CLI.
    out = subprocess.run([sys.executable, "-m", "callbridge.cli", "sync", "review"], env={**os.environ, **stack.env, "COLUMNS": "250"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and dup_gc["id"] in out.stdout and "ambiguous email" in out.stdout


async def test_deleted_in_genesys_while_edited_in_salesforce_is_a_conflict_not_a_resurrection(
        stack, sf, gc, temporal_client):
    sf_id = new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="bidirectional")
    gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
    gc.delete(f"{CONTACTS}/{gc_id}").raise_for_status()
    sf.Contact.update(sf_id, {"Title": "VP Operations"})

    result = await run_sync(temporal_client, stack, mode="bidirectional")

    assert result.conflicts >= 1
    assert sf.Contact.get(sf_id)["Title"] == "VP Operations"  # the edit is not lost…
    assert gc.get(f"{CONTACTS}/{gc_id}").status_code == 404    # …and the delete not undone
    assert genesys_contacts_linked_to(gc, sf_id) == []          # nor silently re-created
    cases = [c for c in sync_runs.list_review(engine_of(stack)) if sf_id in c["salesforce_ids"]]
    assert [c["reason"] for c in cases] == ["delete_conflict"]


async def test_a_worker_killed_mid_run_loses_and_doubles_nothing(stack, sf, gc, genesys, temporal_client):
    # Half have neither email nor phone: a retried create must find what the dead attempt made
    # by the Salesforce id itself (identifier lookup, type ExternalId), not by a number.
    contacts = [new_sf_contact(sf) for _ in range(6)] + [new_sf_contact(sf, Email=None, Phone=None) for _ in range(6)]
    faults = f"{genesys.api_url}/_emulator/faults"
    # The first bulk add hangs in Genesys long enough to kill the worker while it waits: the
    # contacts get created, the worker never hears back (the worst moment to die).
    httpx.post(f"{genesys.api_url}/_emulator/stats/reset").raise_for_status()
    httpx.post(faults, json={"delay_next": [{"method": "POST", "path_regex": "/bulk/contacts/add$",
                                             "seconds": 3, "count": 1, "after": True}]}).raise_for_status()
    try:
        run = asyncio.ensure_future(run_sync(temporal_client, stack, mode="one_way", force_path="bulk",
                                             page_size=5, max_concurrent_pages=1, page_heartbeat_seconds=5))
        deadline = time.monotonic() + 60
        while not httpx.get(f"{genesys.api_url}/_emulator/stats").json()["requests"].get(
                "POST /api/v2/externalcontacts/bulk/contacts/add"):
            assert time.monotonic() < deadline, "the bulk add never came"
            await asyncio.sleep(0.05)
        stack.worker.kill()  # the add is in Genesys' hands, its answer will find nobody
        await asyncio.sleep(4)
    finally:
        httpx.delete(faults)
    stack.start_worker()
    first = await run
    second = await run_sync(temporal_client, stack, mode="one_way")

    assert first.errors == 0 and second.errors == 0
    for sf_id in contacts:
        linked = genesys_contacts_linked_to(gc, sf_id)
        assert len(linked) == 1, f"{sf_id}: {len(linked)} Genesys contacts"
        assert sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] == linked[0]


async def test_callbridge_sync_status_shows_the_runs_and_the_health_score(stack, sf, temporal_client):
    new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="one_way")
    out = subprocess.run([sys.executable, "-m", "callbridge.cli", "sync", "status"], env={**os.environ, **stack.env, "COLUMNS": "200"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Health score:" in out.stdout and "completed" in out.stdout


async def test_runs_leave_a_pair_waiting_for_a_decision_be_and_hand_a_manual_conflict_over(
        stack, sf, gc, temporal_client):
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ConflictDecision, ContactSyncInput, PairKey, Rule, SyncPairInput
    from workflows.contact_sync import ContactSyncWorkflow
    from workflows.sync_pair import SyncPairWorkflow

    waiting, handed = new_sf_contact(sf, Title="Analyst"), new_sf_contact(sf, Title="Analyst")
    await run_sync(temporal_client, stack, mode="bidirectional")
    manual = [Rule(name="Title", direction="both", policy="manual") if m.salesforce == "Title"
              else Rule(name=m.salesforce, direction=m.direction, policy=m.policy) for m in load().fields]
    for sf_id in (waiting, handed):
        sf.Contact.update(sf_id, {"Title": "Manager"})
        edit_gc_contact(gc, sf.Contact.get(sf_id)["Genesys_Contact_Id__c"], title="Team lead")
    # One pair already waits for a decision in its own workflow.
    key = PairKey(salesforce_id=waiting)
    pending = await temporal_client.start_workflow(
        SyncPairWorkflow.run, SyncPairInput(key=key, rules=manual, mode="bidirectional"),
        id=key.workflow_id, task_queue=stack.task_queue)
    deadline = time.monotonic() + 20
    while not await pending.query(SyncPairWorkflow.conflicts):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.3)

    inp = ContactSyncInput.from_config(load(), mode="bidirectional", force_path="bulk",
                                    lookback_seconds=SYNC_LOOKBACK_SECONDS)
    inp.rules = manual
    result = await asyncio.wait_for(temporal_client.execute_workflow(
        ContactSyncWorkflow.run, inp, id="contact-sync", task_queue=stack.task_queue), timeout=120)

    # The run finished (it didn't wait days for the open pair); the other conflict went from
    # the bulk page to its own SyncPairWorkflow, which now waits too.
    assert result.errors == 0 and result.handed_off >= 2
    other = temporal_client.get_workflow_handle_for(SyncPairWorkflow.run, PairKey(salesforce_id=handed).workflow_id)
    assert [c.field for c in await other.query(SyncPairWorkflow.conflicts)] == ["Title"]
    for handle in (pending, other):
        await handle.signal(SyncPairWorkflow.resolve, ConflictDecision(field="Title", winner="genesys"))
        assert (await handle.result()).resolved == ["Title"]
    assert sf.Contact.get(waiting)["Title"] == sf.Contact.get(handed)["Title"] == "Team lead"


@pytest.mark.parametrize("path", ["per_pair", "bulk"])
async def test_without_service_consent_or_after_its_withdrawal_a_contact_is_not_synced(
        stack, sf, gc, temporal_client, path):
    from activities.privacy import withdraw_consent
    from callbridge.clients.salesforce.connection import SalesforceConnection

    consenting, silent = new_sf_contact(sf), new_sf_contact(sf, consent=False)
    first = await run_sync(temporal_client, stack, mode="one_way", force_path=path)
    assert first.errors == 0 and first.skipped >= 1
    gc_id = sf.Contact.get(consenting)["Genesys_Contact_Id__c"]
    assert gc_id and genesys_contacts_linked_to(gc, consenting) == [gc_id]
    assert not sf.Contact.get(silent)["Genesys_Contact_Id__c"] and genesys_contacts_linked_to(gc, silent) == []

    settings = stack_settings(stack)
    assert withdraw_consent(SalesforceConnection(settings), settings, consenting) == 1
    sf.Contact.update(consenting, {"Title": "Changed after withdrawal", "LastName": "Withdrawn"})
    edit_gc_contact(gc, gc_id, firstName="Typed by an agent")
    second = await run_sync(temporal_client, stack, mode="bidirectional", force_path=path)
    assert second.errors == 0
    # Nothing of theirs goes to Genesys any more; what agents type in Genesys still reaches Salesforce.
    in_genesys = gc.get(f"{CONTACTS}/{gc_id}").json()
    assert in_genesys.get("title") != "Changed after withdrawal" and in_genesys["lastName"] != "Withdrawn"
    assert sf.Contact.get(consenting)["FirstName"] == "Typed by an agent"


async def test_a_salesforce_session_expiring_mid_run_loses_nothing(stack, sf, gc, salesforce, temporal_client):
    contacts = [new_sf_contact(sf) for _ in range(6)]
    admin = salesforce.instance_url + "/_emulator"
    verify = tls(salesforce)
    # Slow the link writes so the session can expire between two of the run's requests.
    httpx.post(f"{admin}/faults", verify=verify, json={"delay_next": [
        {"method": "PATCH", "path_regex": "/composite/sobjects$", "seconds": 1.5, "count": 1}]}).raise_for_status()
    try:
        run = asyncio.ensure_future(run_sync(temporal_client, stack, mode="one_way", force_path="bulk",
                                             page_size=3, max_concurrent_pages=1))
        await asyncio.sleep(1.0)
        httpx.post(f"{admin}/sessions/expire", verify=verify).raise_for_status()
        result = await run
    finally:
        httpx.delete(f"{admin}/faults", verify=verify)
    assert result.errors == 0
    sf = salesforce_client(salesforce)  # every session expired, this test's own too
    for sf_id in contacts:
        linked = genesys_contacts_linked_to(gc, sf_id)
        assert len(linked) == 1 and sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] == linked[0]


async def test_bulk_results_in_another_order_than_the_request_link_each_contact_to_its_own(
        stack, salesforce, gc, temporal_client):
    # Genesys' bulk answers "may be in a different order from the request" (the SDK's
    # BulkContactsResponse); the emulator always reorders them. Pairing by position would link
    # each Salesforce contact to someone else's Genesys contact.
    sf = salesforce_client(salesforce)  # a session of its own (an earlier test expires them all)
    tag = uuid.uuid4().hex[:6]
    contacts = {new_sf_contact(sf, LastName=f"Order{tag}{i}"): f"Order{tag}{i}" for i in range(5)}

    result = await run_sync(temporal_client, stack, mode="one_way", force_path="bulk")
    assert result.errors == 0
    for sf_id, last_name in contacts.items():
        gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
        assert genesys_contacts_linked_to(gc, sf_id) == [gc_id]
        assert gc.get(f"{CONTACTS}/{gc_id}").json()["lastName"] == last_name

    # Updates too: each Genesys contact gets its own contact's new title.
    for i, sf_id in enumerate(contacts):
        sf.Contact.update(sf_id, {"Title": f"Grade {tag}{i}"})
    again = await run_sync(temporal_client, stack, mode="one_way", force_path="bulk")
    assert again.errors == 0 and again.handed_off == 0
    for i, sf_id in enumerate(contacts):
        gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
        assert gc.get(f"{CONTACTS}/{gc_id}").json()["title"] == f"Grade {tag}{i}"


@pytest.mark.parametrize("status", [503, 400])
async def test_a_bulk_entity_error_is_retried_only_when_genesys_says_it_is_retryable(
        stack, salesforce, gc, genesys, temporal_client, status):
    # One entity of the bulk add fails on its own: 503 comes with retryable=true (sent again
    # in the page), 400 with retryable=false (handed to its own workflow, which reports it).
    sf = salesforce_client(salesforce)
    contacts = [new_sf_contact(sf) for _ in range(3)]
    faults = f"{genesys.api_url}/_emulator/faults"
    httpx.post(faults, json={"fail_entity_next": [{"method": "POST", "path_regex": "/bulk/contacts/add$",
                                                   "status": status, "count": 1}]}).raise_for_status()
    try:
        result = await run_sync(temporal_client, stack, mode="one_way", force_path="bulk")
    finally:
        httpx.delete(faults)
    assert result.errors == 0
    assert result.handed_off == (0 if status == 503 else 1)
    for sf_id in contacts:  # in the end every contact is linked once, to its own
        linked = genesys_contacts_linked_to(gc, sf_id)
        assert len(linked) == 1 and sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] == linked[0]
