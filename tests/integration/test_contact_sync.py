"""ContactSyncWorkflow: a run settles every changed pair and moves the watermarks after."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from callbridge.store import caller_index as state
from callbridge.store.db import get_engine
from callbridge.domain.sync.config import load
from callbridge.domain.sync.models import ContactSyncInput
from tests.helpers import GENESYS_CONTACTS as CONTACTS
from tests.helpers import new_sf_contact, run_sync
from workflows.contact_sync import ContactSyncWorkflow

pytestmark = pytest.mark.integration


async def test_a_run_settles_every_change_once_and_moves_the_watermarks(stack, sf, gc, temporal_client):
    edited, removed = new_sf_contact(sf), new_sf_contact(sf)
    first = await run_sync(temporal_client, stack, mode="one_way")  # catches up: the initial load
    assert first.errors == 0 and first.created >= 2
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    watermark = state.get_text(engine, "sync_salesforce_watermark")
    assert watermark

    added = new_sf_contact(sf)
    sf.Contact.update(edited, {"Title": "Director"})
    removed_gc = sf.Contact.get(removed)["Genesys_Contact_Id__c"]
    sf.Contact.delete(removed)

    before_second = datetime.now(timezone.utc).replace(microsecond=0)
    dry = await run_sync(temporal_client, stack, mode="one_way", dry_run=True)
    assert dry.dry_run and dry.salesforce_changes >= 3 and dry.created == 0
    second = await run_sync(temporal_client, stack, mode="one_way")
    assert second.errors == 0 and second.created >= 1 and second.updated >= 1 and second.deleted >= 1
    # The watermark moved on to the second run's start.
    assert datetime.fromisoformat(state.get_text(engine, "sync_salesforce_watermark")) >= before_second

    added_gc = sf.Contact.get(added)["Genesys_Contact_Id__c"]
    assert gc.get(f"{CONTACTS}/{added_gc}").status_code == 200
    assert gc.get(f"{CONTACTS}/{sf.Contact.get(edited)['Genesys_Contact_Id__c']}").json()["title"] == "Director"
    assert gc.get(f"{CONTACTS}/{removed_gc}").status_code == 404

    # Nothing changed since: a third run writes nothing (no echo of its own writes).
    third = await run_sync(temporal_client, stack, mode="one_way")
    assert (third.created, third.updated, third.deleted, third.errors) == (0, 0, 0, 0)


async def test_bidirectional_links_a_genesys_contact_to_its_salesforce_twin_by_email(stack, sf, gc, temporal_client):
    sf_id = new_sf_contact(sf)
    email = sf.Contact.get(sf_id)["Email"]
    created = gc.post(CONTACTS, json={"firstName": "Ana", "lastName": "Twin", "workEmail": email.upper()})
    created.raise_for_status()
    result = await run_sync(temporal_client, stack, mode="bidirectional")
    assert result.errors == 0 and result.matched_by_email >= 1
    linked = gc.get(f"{CONTACTS}/{created.json()['id']}").json()
    assert [e["value"] for e in linked["externalIds"]] == [sf_id]
    assert sf.Contact.get(sf_id)["Genesys_Contact_Id__c"] == created.json()["id"]


def test_callbridge_sync_run_dry_run_prints_the_table(stack):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "callbridge.cli", "sync", "run", "--dry-run"],
                         env={**os.environ, **stack.env, "COLUMNS": "120"}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Contact sync (dry run)" in out.stdout and "salesforce changes" in out.stdout


async def test_a_one_way_run_reads_only_the_genesys_contacts_of_its_changes(stack, sf, gc, genesys, temporal_client):
    import httpx

    scan = "GET /api/v2/externalcontacts/scan/contacts"
    edited = new_sf_contact(sf)
    await run_sync(temporal_client, stack, mode="one_way")
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    gc_watermark = state.get_text(engine, "sync_genesys_watermark")
    sf.Contact.update(edited, {"Title": "Scanless"})

    httpx.post(f"{genesys.api_url}/_emulator/stats/reset").raise_for_status()
    result = await run_sync(temporal_client, stack, mode="one_way")
    # Genesys is a copy: no scan of every contact, the watermark it would have moved stays.
    assert result.errors == 0 and result.updated >= 1 and result.genesys_changes == 0
    assert scan not in httpx.get(f"{genesys.api_url}/_emulator/stats").json()["requests"]
    assert state.get_text(engine, "sync_genesys_watermark") == gc_watermark
    assert gc.get(f"{CONTACTS}/{sf.Contact.get(edited)['Genesys_Contact_Id__c']}").json()["title"] == "Scanless"

    # Bidirectional runs and --full still scan.
    await run_sync(temporal_client, stack, mode="one_way", full=True)
    await run_sync(temporal_client, stack, mode="bidirectional")
    assert httpx.get(f"{genesys.api_url}/_emulator/stats").json()["requests"].get(scan, 0) >= 2
