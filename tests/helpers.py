"""Small helpers the integration tests share: a Salesforce client, signed webhooks, events."""

from __future__ import annotations

import itertools
import json
import random
import ssl
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import requests
from simple_salesforce import Salesforce

from callbridge.domain import signature
from callbridge.core.settings import Settings
from tests.conftest import REPO
from workflows.call_logging import CallLoggingWorkflow
from workflows.call_logging import workflow_id as call_log_id

_unique = itertools.count(1)


def salesforce_client(sf_emulator) -> Salesforce:
    """A plain simple-salesforce client (not Callbridge's connector) for setup and checks."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    session.verify = str(sf_emulator.ca_file)
    token = session.post(
        f"{sf_emulator.instance_url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": sf_emulator.client_id,
              "client_secret": sf_emulator.client_secret},
    ).json()["access_token"]
    return Salesforce(instance_url=sf_emulator.instance_url, session_id=token, session=session, version="62.0")


def tls(sf_emulator) -> ssl.SSLContext:
    """What httpx verifies the Salesforce emulator's certificate with (its own CA)."""
    return ssl.create_default_context(cafile=str(sf_emulator.ca_file))


def unique_us_number() -> tuple[str, str]:
    """(E.164, 10 national digits) of a fresh Austin number no other test uses."""
    rnd = random.Random(uuid.uuid4().int)
    exchange = rnd.randint(200, 999)
    line = rnd.randint(0, 9999)
    digits = f"512{exchange:03d}{line:04d}"
    return "+1" + digits, digits


def conversation_id() -> str:
    return str(uuid.uuid4())


def call_event(conversation: str, caller: str, **overrides: Any) -> dict[str, Any]:
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
    start = end - timedelta(seconds=630)
    event = {
        "conversationId": conversation,
        "participantId": "user-agent-1",
        "conversationType": "phone",
        "callerId": caller,
        "calleeId": "+18005550100",
        "direction": "INBOUND",
        "startTime": start.isoformat().replace("+00:00", "Z"),
        "endTime": end.isoformat().replace("+00:00", "Z"),
        "durationSeconds": 630,
        "recordingId": None,
        "agentId": "user-agent-1",
        "agentName": "Agent Smith",
        "queueId": "queue-456",
        "queueName": "Support Queue",
        "interactionId": f"interaction-{next(_unique)}",
        "attributes": {},
    }
    event.update(overrides)
    return event


def post_webhook(
    starter_url: str, secret: str, body: bytes | dict, *, timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    all_headers = signature.signed_headers(secret, ts, raw)
    all_headers.update(headers or {})
    return httpx.post(f"{starter_url}/webhooks/genesys/conversation-ended", content=raw,
                      headers=all_headers, timeout=30)


def tasks_for_conversation(sf: Salesforce, conversation: str) -> list[dict[str, Any]]:
    from simple_salesforce.format import format_soql

    return sf.query(format_soql(
        "SELECT Id, WhoId, WhatId, Subject, Description, CallType, CallDurationInSeconds, CallObject, "
        "Status, Type, TaskSubtype, ActivityDate FROM Task WHERE Genesys_Conversation_Id__c = {}",
        conversation,
    ))["records"]


async def refresh_index(client, stack) -> None:
    """Run one caller-ID index refresh that starts after this call (the schedule may have one running)."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.common import WorkflowIDConflictPolicy

    from callbridge.domain.models import IndexRefreshRequest
    from workflows.caller_index import WORKFLOW_ID, CallerIndexRefreshWorkflow

    mark = time.time()
    while True:
        handle = await client.start_workflow(
            CallerIndexRefreshWorkflow.run, IndexRefreshRequest(), id=WORKFLOW_ID, task_queue=stack.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await handle.result()
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.COMPLETED and desc.start_time.timestamp() >= mark:
            return


async def pause_schedule(client, schedule_id: str, note: str = "test") -> Any:
    """Pause a schedule and wait out the run it may already have going (pausing doesn't stop one)."""
    import asyncio

    from temporalio.service import RPCError, RPCStatusCode

    schedule = client.get_schedule_handle(schedule_id)
    for _ in range(300):  # the worker creates its schedules as it starts: the first test may be early
        try:
            await schedule.pause(note=note)
            break
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.1)
    else:
        await schedule.pause(note=note)  # still missing after 30 s: let the error say so
    while running := (await schedule.describe()).info.running_actions:
        for action in running:
            await client.get_workflow_handle(action.workflow_id, run_id=action.first_execution_run_id).result()
    return schedule


GENESYS_CONTACTS = "/api/v2/externalcontacts/contacts"


def new_sf_contact(sf: Salesforce, consent: bool = True, **fields: Any) -> str:
    """A Salesforce contact with a fresh Austin number and a unique email (for sync tests), and
    the service consent contact sync needs (unless consent=False)."""
    _, digits = unique_us_number()
    body = {"FirstName": "Ana", "LastName": f"Silva{time.monotonic_ns() % 10**6}",
            "Email": f"ana.{time.monotonic_ns()}@example.com", "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
            "MailingCountry": "USA", **fields}
    contact_id = sf.Contact.create(body)["id"]
    if consent:
        sf.Contact_Consent__c.create({"Contact__c": contact_id, "Consent_Type__c": "Data Processing",
                                      "Channel__c": "Phone", "Version__c": "2024-01",
                                      "Consent_Date__c": "2024-01-15T09:00:00.000+0000"})
    return contact_id


# The lookback of the tests' sync runs (the schedule's is 120 s, against clock skew and late
# commits; the suite runs on one machine, one clock, and writes before it syncs). At 120 s every
# run re-read two minutes of the whole session's changes: 60-100 pairs of other tests' contacts
# (mostly call logging's) per run instead of the test's own few.
SYNC_LOOKBACK_SECONDS = 5


async def run_sync(client, stack, **overrides):
    """One ContactSyncWorkflow run (id contact-sync) with the built-in mapping and these
    overrides (the lookback SYNC_LOOKBACK_SECONDS unless given)."""
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.contact_sync import ContactSyncWorkflow

    overrides.setdefault("lookback_seconds", SYNC_LOOKBACK_SECONDS)
    return await client.execute_workflow(
        ContactSyncWorkflow.run, ContactSyncInput.from_config(load(), **overrides),
        id="contact-sync", task_queue=stack.task_queue)


def edit_gc_contact(gc, gc_id: str, **fields: Any) -> dict[str, Any]:
    """PUT a Genesys external contact back with these fields changed (PUT replaces the whole contact)."""
    current = gc.get(f"{GENESYS_CONTACTS}/{gc_id}").json()
    body = {k: v for k, v in current.items() if k not in ("id", "selfUri", "createDate", "modifyDate")}
    resp = gc.put(f"{GENESYS_CONTACTS}/{gc_id}", json={**body, **fields})
    resp.raise_for_status()
    return resp.json()


def genesys_contacts_linked_to(gc, salesforce_id: str) -> list[str]:
    """Every Genesys contact whose externalIds hold this Salesforce id (a scan of them all)."""
    found, params = [], {"limit": 200}
    while True:
        body = gc.get("/api/v2/externalcontacts/scan/contacts", params=params).json()
        found += [c["id"] for c in body.get("entities", [])
                  if any(e.get("value") == salesforce_id for e in c.get("externalIds") or [])]
        after = (body.get("cursors") or {}).get("after")
        if not after:
            return found
        params = {"limit": 200, "cursor": after}


# People and calls for the privacy tests (the erasure, privacy-feature and log-scan modules).
ADMIN = ("admin", "callbridge-demo-admin")
# Every email the privacy tests make up ends with this: the log scan looks for it.
TEST_EMAIL_DOMAIN = "erasure-test.example"


def stack_settings(stack, **overrides) -> Settings:
    env = {k.removeprefix("CALLBRIDGE_").lower(): v for k, v in stack.env.items()}
    return Settings(**{**env, **overrides})


def genesys_token(genesys) -> str:
    return httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(genesys.client_id, genesys.client_secret)).json()["access_token"]


def make_person(sf, account, genesys, e164: str, digits: str) -> dict:
    """A person in every system: contact, consent, event, Genesys external contact."""
    email = f"p{uuid.uuid4().hex[:10]}@{TEST_EMAIL_DOMAIN}"
    contact_id = sf.Contact.create({
        "FirstName": "Erika", "LastName": f"Mustermann{uuid.uuid4().hex[:6]}", "Email": email,
        "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "AccountId": account, "MailingCountry": "United States",
    })["id"]
    consent_id = sf.Contact_Consent__c.create({
        "Contact__c": contact_id, "Consent_Type__c": "Data Processing", "Channel__c": "Phone", "Version__c": "v1",
    })["id"]
    event_id = sf.Event.create({"WhoId": contact_id, "Subject": "Callback",
                                "StartDateTime": "2026-01-05T10:00:00Z", "EndDateTime": "2026-01-05T10:30:00Z"})["id"]
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    ext = httpx.post(f"{genesys.api_url}/api/v2/externalcontacts/contacts", headers=headers, json={
        "firstName": "Erika", "lastName": "Mustermann", "workEmail": email, "cellPhone": {"display": e164},
    })
    ext.raise_for_status()
    return {"email": email, "e164": e164, "contact_id": contact_id, "consent_id": consent_id,
            "event_id": event_id, "external_id": ext.json()["id"]}


def provision_genesys(stack, genesys, public_url: str | None = None) -> None:
    """The Genesys emulator provisioned as the demo does it (LocalStack.provision_genesys:
    `callbridge genesys install`, the workflow published, install again), its data actions on
    `public_url` (default: the test starter), the relay webhook off."""
    from devstack.stack import LocalStack

    local = LocalStack(stack_settings(stack, public_url=public_url or stack.starter_url))
    local.provision_genesys()
    local.stop_relay_webhook()


@contextmanager
def relay_webhook(genesys, url: str, secret: str | None):
    """The emulator's signed relay webhook (the seed's shape; not something Genesys sends) on,
    to `url`, for the tests that select it on purpose; off again afterwards."""
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"webhookUrl": url, "webhookSecret": secret},
               ).raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{genesys.api_url}/_emulator/config", json={"webhookUrl": None}).raise_for_status()


@contextmanager
def triggers_off(genesys):
    """The org's Process Automation triggers disabled (PUT enabled=false, the documented switch)
    for tests that deliver each call's end themselves; enabled again afterwards."""
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    url = f"{genesys.api_url}/api/v2/processautomation/triggers"

    def switch(ids: set[str] | None, enabled: bool) -> set[str]:
        """Set `enabled` on these triggers (None: every enabled one); the ids it switched."""
        switched = set()
        for trigger in httpx.get(url, headers=headers).json()["entities"]:
            if (trigger["id"] in ids) if ids is not None else trigger["enabled"]:
                body = {k: v for k, v in trigger.items() if k not in ("id", "selfUri")}
                httpx.put(f"{url}/{trigger['id']}", headers=headers,
                          json={**body, "enabled": enabled}).raise_for_status()
                switched.add(trigger["id"])
        return switched

    were_on = switch(None, False)
    try:
        yield
    finally:
        switch(were_on, True)


def simulate_call(genesys, stack, e164: str, duration_seconds: int = 120) -> str:
    """A call the Genesys emulator places and ends, its end delivered to the test starter the way
    a real org does (the trigger runs the call-ended data action); the conversation id."""
    return httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30,
                      json={"ani": e164, "durationSeconds": duration_seconds, "wait": True}).json()["conversationId"]


async def place_call(genesys, stack, temporal_client, e164: str) -> str:
    """A simulated call, waited for until it is logged."""
    conversation = simulate_call(genesys, stack, e164)
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, call_log_id(conversation)).result()
    assert result.outcome == "logged"
    return conversation


def run_cli(stack, *args: str) -> str:
    """`callbridge …` with the test stack's settings; its standard output (fails on a non-zero exit)."""
    out = subprocess.run([sys.executable, "-m", "callbridge.cli", *args], env={**stack.env, "PATH": "/usr/bin:/bin"},
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout
