"""Consent, recording retention with legal hold, masked export and breach scope against the
real emulators, Temporal dev server and worker."""

from __future__ import annotations

import csv
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from activities.privacy import record_consent, syncable_contacts, withdraw_consent
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.domain.privacy_models import RetentionInput
from callbridge.store import privacy as privacy_store
from callbridge.store.db import get_engine
from tests.helpers import TEST_EMAIL_DOMAIN, genesys_token, place_call, run_cli, stack_settings, unique_us_number
from workflows.retention import RetentionWorkflow

pytestmark = pytest.mark.integration


def test_consent_withdrawal_stops_sync(stack, sf):
    settings = stack_settings(stack)
    conn = SalesforceConnection(settings)
    consenting = sf.Contact.create({"LastName": "Consent", "Email": f"c{uuid.uuid4().hex[:8]}@{TEST_EMAIL_DOMAIN}"})["id"]
    silent = sf.Contact.create({"LastName": "NoConsent"})["id"]
    consent_id = record_consent(conn, settings, consenting, "Data Processing", "Phone", "v2")
    stored = sf.Contact_Consent__c.get(consent_id)
    assert (stored["Contact__c"], stored["Channel__c"], stored["Version__c"], stored["Withdrawn__c"]) == (
        consenting, "Phone", "v2", False) and stored["Consent_Date__c"]
    assert syncable_contacts(conn, settings, [consenting, silent]) == {consenting}
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert withdraw_consent(conn, settings, consenting) == 1
    withdrawn = sf.Contact_Consent__c.get(consent_id)
    assert withdrawn["Withdrawn__c"] is True
    # When it was withdrawn (Withdrawn_Date__c, a DateTime as Salesforce returns it).
    assert before <= datetime.fromisoformat(withdrawn["Withdrawn_Date__c"].replace("Z", "+00:00")) <= (
        datetime.now(timezone.utc))
    assert withdrawn["Consent_Date__c"] and withdrawn["Withdrawn_Date__c"] >= withdrawn["Consent_Date__c"]
    assert syncable_contacts(conn, settings, [consenting, silent]) == set()
    relaxed = settings.model_copy(update={"sync_requires_service_consent": False})
    assert syncable_contacts(conn, relaxed, [consenting, silent]) == {consenting, silent}


async def test_retention_deletes_old_recordings_except_on_legal_hold(stack, sf, genesys, temporal_client):
    settings = stack_settings(stack)

    async def logged_call() -> str:
        e164, digits = unique_us_number()
        sf.Contact.create({"LastName": "Recorded", "Phone": digits})
        return await place_call(genesys, stack, temporal_client, e164)

    held = await logged_call()
    expired = await logged_call()
    time.sleep(6)
    recent = await logged_call()
    privacy_store.set_legal_hold(get_engine(settings.database_url), held, "case 42")
    # A policy of 3 seconds stands in for 7 years: the first two calls are past it, the last isn't.
    report = await temporal_client.execute_workflow(
        RetentionWorkflow.run, RetentionInput(max_age_days=3 / 86400), id=f"retention-test-{uuid.uuid4().hex[:6]}",
        task_queue=stack.task_queue)
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}

    def recordings(conv):
        return httpx.get(f"{genesys.api_url}/api/v2/conversations/{conv}/recordings", params={"maxWaitMs": 0},
                         headers=headers).json()

    assert recordings(held) and recordings(recent) and not recordings(expired)
    held_ids = {r["id"] for r in recordings(held)}
    assert held_ids <= set(report.kept_legal_hold)
    assert not held_ids & set(report.deleted_retention)
    stored = privacy_store.retention_report(get_engine(settings.database_url), report.run_id)
    assert stored["deleted_retention"] == report.deleted_retention and stored["checked"] == report.checked


def test_masked_export_and_breach_scope(stack, sf, tmp_path):
    email = f"x{uuid.uuid4().hex[:8]}@{TEST_EMAIL_DOMAIN}"
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"FirstName": "Maskme", "LastName": "Please", "Email": email, "Phone": digits})["id"]
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    out = tmp_path / "contacts.csv"
    run_cli(stack, "export", "contacts", "--masked", "--out", str(out))
    rows = {r["Id"]: r for r in csv.DictReader(out.open())}
    row = rows[contact]
    assert (row["FirstName"], row["LastName"], row["Email"], row["Phone"]) == (
        "MASKED", "MASKED", "MASKED@masked.com", f"XXX-XXX-{digits[-4:]}")
    text = out.read_text()
    assert email not in text and "Maskme" not in text and digits not in text
    from callbridge.domain import privacy

    assert row["EmailHash"] == privacy.keyed_hash(stack_settings(stack).privacy_hash_key.get_secret_value(), "email", email)

    settings = stack_settings(stack)
    conn = SalesforceConnection(settings)
    record_consent(conn, settings, contact, "Marketing", "Email", "v1")
    scope = json.loads(run_cli(stack, "breach", "scope", "--since", since.isoformat(), "--component", "consent"))
    assert scope["people"] >= 1 and scope["dataTypes"] == ["consent"]
    everything = json.loads(run_cli(stack, "breach", "scope", "--since", since.isoformat()))
    assert "masked_contact" in everything["dataTypes"]
