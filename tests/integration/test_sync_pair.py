"""SyncPairWorkflow through Temporal, the real worker and both emulators."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from callbridge.domain.sync.config import load
from callbridge.domain.sync.models import PairKey, SyncPairInput
from tests.helpers import GENESYS_CONTACTS as CONTACTS
from tests.helpers import edit_gc_contact, new_sf_contact, unique_us_number
from workflows.sync_pair import SyncPairWorkflow

pytestmark = pytest.mark.integration


async def sync(client, stack, mode="one_way", **key):
    k = PairKey(**key)
    return await client.execute_workflow(
        SyncPairWorkflow.run, SyncPairInput.from_config(k, load(), mode=mode),
        id=k.workflow_id, task_queue=stack.task_queue)


async def test_one_way_creates_links_updates_and_deletes(stack, sf, gc, temporal_client):
    sf_id = new_sf_contact(sf)
    created = await sync(temporal_client, stack, salesforce_id=sf_id)
    assert created.action == "create_in_genesys"
    contact = gc.get(f"{CONTACTS}/{created.genesys_id}").json()
    sf_contact = sf.Contact.get(sf_id)
    assert (contact["firstName"], contact["lastName"]) == ("Ana", sf_contact["LastName"])
    assert contact["workPhone"]["e164"].startswith("+1512") and contact["workEmail"] == sf_contact["Email"]
    assert [e["value"] for e in contact["externalIds"]] == [sf_id]
    assert sf_contact["Genesys_Contact_Id__c"] == created.genesys_id
    assert (await sync(temporal_client, stack, salesforce_id=sf_id)).action == "noop"  # no echo

    sf.Contact.update(sf_id, {"Title": "CTO"})
    updated = await sync(temporal_client, stack, salesforce_id=sf_id)
    assert updated.written_to_genesys == ["Title"]
    assert gc.get(f"{CONTACTS}/{created.genesys_id}").json()["title"] == "CTO"

    # One-way: an agent's edit in Genesys is overwritten from Salesforce.
    current = gc.get(f"{CONTACTS}/{created.genesys_id}").json()
    gc.put(f"{CONTACTS}/{created.genesys_id}", json={**{k: v for k, v in current.items()
                                                        if k not in ("id", "selfUri", "createDate", "modifyDate")},
                                                     "title": "Intern"}).raise_for_status()
    assert (await sync(temporal_client, stack, salesforce_id=sf_id)).written_to_genesys == ["Title"]
    assert gc.get(f"{CONTACTS}/{created.genesys_id}").json()["title"] == "CTO"

    sf.Contact.delete(sf_id)
    deleted = await sync(temporal_client, stack, salesforce_id=sf_id)
    assert deleted.action == "delete_in_genesys"
    assert gc.get(f"{CONTACTS}/{created.genesys_id}").status_code == 404


async def test_bidirectional_edits_to_different_fields_both_survive(stack, sf, gc, temporal_client):
    sf_id = new_sf_contact(sf)
    gc_id = (await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)).genesys_id
    sf.Contact.update(sf_id, {"Title": "Head of Support"})
    current = gc.get(f"{CONTACTS}/{gc_id}").json()
    _, digits = unique_us_number()
    gc.put(f"{CONTACTS}/{gc_id}", json={**{k: v for k, v in current.items()
                                           if k not in ("id", "selfUri", "createDate", "modifyDate")},
                                        "cellPhone": {"display": f"+1{digits}"}}).raise_for_status()
    result = await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)
    assert (result.written_to_genesys, result.written_to_salesforce) == (["Title"], ["MobilePhone"])
    assert sf.Contact.get(sf_id)["MobilePhone"] == f"+1{digits}"
    assert gc.get(f"{CONTACTS}/{gc_id}").json()["title"] == "Head of Support"
    assert (await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)).action == "noop"


async def test_same_field_on_both_sides_last_write_wins(stack, sf, gc, temporal_client):
    sf_id = new_sf_contact(sf)
    gc_id = (await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)).genesys_id
    sf.Contact.update(sf_id, {"Email": "first@example.com"})
    time.sleep(1.1)  # the Genesys edit is the later write (timestamps have second precision)
    current = gc.get(f"{CONTACTS}/{gc_id}").json()
    gc.put(f"{CONTACTS}/{gc_id}", json={**{k: v for k, v in current.items()
                                           if k not in ("id", "selfUri", "createDate", "modifyDate")},
                                        "workEmail": "second@example.com"}).raise_for_status()
    result = await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)
    assert result.written_to_salesforce == ["Email"]
    assert sf.Contact.get(sf_id)["Email"] == "second@example.com"


@pytest.mark.parametrize(("policy", "winner"), [("salesforce", "sf"), ("genesys", "gc")])
async def test_same_field_on_both_sides_follows_the_fields_policy(stack, sf, gc, temporal_client, policy, winner):
    from callbridge.domain.sync.models import Rule

    sf_id = new_sf_contact(sf)
    gc_id = (await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)).genesys_id
    sf.Contact.update(sf_id, {"Title": "Edited in Salesforce"})
    edit_gc_contact(gc, gc_id, title="Edited in Genesys")
    key = PairKey(salesforce_id=sf_id)
    inp = SyncPairInput.from_config(key, load(), mode="bidirectional")
    # Title is Salesforce-owned in the built-in mapping: make it two-way with this policy.
    inp.rules = [Rule(name=r.name, direction="both" if r.name == "Title" else r.direction,
                      policy=policy if r.name == "Title" else r.policy) for r in inp.rules]
    result = await temporal_client.execute_workflow(SyncPairWorkflow.run, inp, id=key.workflow_id,
                                                    task_queue=stack.task_queue)
    expected = "Edited in Salesforce" if winner == "sf" else "Edited in Genesys"
    assert sf.Contact.get(sf_id)["Title"] == expected
    assert gc.get(f"{CONTACTS}/{gc_id}").json()["title"] == expected
    assert result.conflicts == []


def test_callbridge_sync_contact_runs_one_pair(stack, sf, gc):
    import os
    import subprocess
    import sys

    sf_id = new_sf_contact(sf)
    out = subprocess.run([sys.executable, "-m", "callbridge.cli", "sync", "contact", sf_id],
                         env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"sync-pair-{sf_id}: create_in_genesys" in out.stdout
    gc_id = sf.Contact.get(sf_id)["Genesys_Contact_Id__c"]
    assert gc.get(f"{CONTACTS}/{gc_id}").status_code == 200


async def test_an_erased_person_is_never_recreated_or_relinked(stack, sf, temporal_client):
    from callbridge.domain.privacy import subject_hashes
    from callbridge.core.settings import Settings
    from callbridge.store.db import get_engine
    from callbridge.store.privacy import add_tombstones

    sf_id = new_sf_contact(sf)
    email = sf.Contact.get(sf_id)["Email"]
    key = Settings().privacy_hash_key.get_secret_value()  # the stack runs with the default key
    add_tombstones(get_engine(stack.env["CALLBRIDGE_DATABASE_URL"]), "test-erasure",
                   subject_hashes(key, emails=[email.upper()]))
    result = await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)
    assert result.action == "skip_erased" and result.genesys_id is None
    assert sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] is None


async def test_a_manual_conflict_waits_for_a_decision_through_the_admin_api(stack, sf, gc, temporal_client):
    from callbridge.domain.sync.models import Rule

    sf_id = new_sf_contact(sf, Title="Analyst")
    gc_id = (await sync(temporal_client, stack, mode="bidirectional", salesforce_id=sf_id)).genesys_id
    sf.Contact.update(sf_id, {"Title": "Manager", "FirstName": "Anabela"})
    current = gc.get(f"{CONTACTS}/{gc_id}").json()
    gc.put(f"{CONTACTS}/{gc_id}", json={**{k: v for k, v in current.items()
                                           if k not in ("id", "selfUri", "createDate", "modifyDate")},
                                        "title": "Team lead"}).raise_for_status()
    key = PairKey(salesforce_id=sf_id)
    rules = [Rule(name="Title", direction="both", policy="manual") if m.salesforce == "Title"
             else Rule(name=m.salesforce, direction=m.direction, policy=m.policy) for m in load().fields]
    handle = await temporal_client.start_workflow(
        SyncPairWorkflow.run, SyncPairInput(key=key, rules=rules, mode="bidirectional"),
        id=key.workflow_id, task_queue=stack.task_queue)

    admin = ("admin", "callbridge-demo-admin")
    deadline = time.monotonic() + 20
    while True:
        listed = httpx.get(f"{stack.starter_url}/admin/api/conflicts", auth=admin)
        mine = [p for p in listed.json()["pairs"] if p["workflowId"] == key.workflow_id]
        if mine:
            break
        desc = await handle.describe()
        assert time.monotonic() < deadline, f"the conflict never showed up: {listed.text} {desc.status}"
        await asyncio.sleep(0.3)
    [conflict] = mine[0]["conflicts"]
    assert (conflict["field"], conflict["salesforce"], conflict["genesys"]) == ("Title", "Manager", "Team lead")
    # The record's other fields were synced while the conflict waits.
    assert gc.get(f"{CONTACTS}/{gc_id}").json()["firstName"] == "Anabela"
    assert httpx.post(f"{stack.starter_url}/admin/api/conflicts/{key.workflow_id}/resolve",
                      json={"field": "Title", "winner": "genesys"}).status_code == 401
    resolved = httpx.post(f"{stack.starter_url}/admin/api/conflicts/{key.workflow_id}/resolve", auth=admin,
                          json={"field": "Title", "winner": "genesys"})
    assert resolved.status_code == 202
    result = await handle.result()
    assert result.resolved == ["Title"] and sf.Contact.get(sf_id)["Title"] == "Team lead"
