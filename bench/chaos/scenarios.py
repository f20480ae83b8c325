"""The chaos bench's scenarios: a workload (calls, erasures, contact changes), the faults struck
while it runs, and the outcome checked against Salesforce and Genesys directly (SOQL, REST),
not against what Callbridge says it did."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
from simple_salesforce import Salesforce
from temporalio.client import Client
from temporalio.service import RPCError

from bench.calls import Caller, call_event, callers_with_one_owner
from bench.chaos.faults import (
    ChaosPlan, Recovery, clear_salesforce_faults, recoveries, run_faults, salesforce_faults, schedule,
)
from bench.chaos.stack import ChaosStack
from callbridge.domain import signature
from callbridge.core.settings import Settings
from callbridge.core.temporal import connect

# Genesys's delivery of the conversation-ended webhook (emulators/genesys/simulator.py).
GENESYS_RETRY_DELAYS = (1.0, 2.0)
GENESYS_ATTEMPT_TIMEOUT = 5.0


async def wait_result(client: Client, workflow_id: str, deadline: float) -> Any:
    """A workflow's result, riding out a Temporal restart (the long poll fails while it's down)."""
    while True:
        try:
            return await client.get_workflow_handle(workflow_id).result()
        except RPCError:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.5)


# --- scenario: calls --------------------------------------------------------------------------------


async def deliver(http: httpx.AsyncClient, url: str, secret: str, body: bytes) -> tuple[int | None, int]:
    """Deliver like the emulator's relay webhook: 3 tries on a non-2xx answer or a connection error."""
    status: int | None = None
    for attempt in range(len(GENESYS_RETRY_DELAYS) + 1):
        if attempt:
            await asyncio.sleep(GENESYS_RETRY_DELAYS[attempt - 1])
        try:
            resp = await http.post(url, content=body, timeout=GENESYS_ATTEMPT_TIMEOUT,
                                   headers=signature.signed_headers(secret, int(time.time()), body))
            status = resp.status_code
            if 200 <= status < 300:
                return status, attempt + 1
        except httpx.HTTPError:
            status = None
    return status, len(GENESYS_RETRY_DELAYS) + 1


@dataclass
class CallsReport:
    calls: int
    delivered: int
    redelivered: int  # needed a second or third try
    undelivered: int  # refused 3 times: the relay gives up
    tasks: int
    on_right_contact: int
    wrong_contact: int
    duplicates: int  # conversations with more than one Task
    lost: int  # delivered but no Task
    unexpected: int  # Tasks for conversations nobody called
    not_finished: int  # workflows still not done at the deadline
    elapsed: float
    logged_latency: list[float]
    ack_latency: list[float]
    recoveries: list[Recovery]
    salesforce_requests: int
    reconciled: int = 0  # logged by the reconciliation run, not by a webhook
    @property
    def ok(self) -> bool:
        return (self.tasks == self.calls == self.on_right_contact and not self.duplicates and not self.lost
                and not self.wrong_contact and not self.unexpected)


async def calls_scenario(cs: ChaosStack, calls: int, rate: float, plan: ChaosPlan, seed: int = 7,
                         settle_timeout: float = 600.0, via_genesys: bool = False) -> CallsReport:
    """via_genesys: the Genesys emulator is provisioned as the demo does it (`callbridge genesys
    install`, the call-ended workflow published, the relay webhook off) and the calls are placed
    in it (already ended, `realtime: false`): its trigger runs the call-ended data action against
    the starter once, not retried, as a real org's does; then one call-reconciliation run (what
    the schedule does every 5 minutes) logs the calls whose data action failed."""
    s = cs.settings
    rng = random.Random(seed)
    sf = cs.salesforce_client()
    owned = callers_with_one_owner(sf, s.default_region)
    # One call in five arrives with the contact the IVR identified; the rest by caller number.
    callers = [Caller(e164, cid, not via_genesys and rng.random() < 0.2) for e164, cid in rng.sample(owned, min(len(owned), calls))]
    callers = [callers[i % len(callers)] for i in range(calls)]
    conversations = [str(uuid.uuid4()) for _ in range(calls)]
    expected = dict(zip(conversations, (c.contact_id for c in callers)))

    if via_genesys:
        cs.stack.provision_genesys()
        cs.stack.stop_relay_webhook()
    client = await connect(s)
    url = f"http://127.0.0.1:{s.starter_port}/webhooks/genesys/conversation-ended"
    secret = s.webhook_secret.get_secret_value()
    span = calls / rate
    faults_plan = schedule(plan, span, rng)
    cs.faults.clear()
    salesforce_faults(cs, seed)
    stats_before = cs.salesforce_stats()["apiRequests"]
    items: list[tuple[float, float | None]] = []
    attempts: list[int] = []
    acks: list[float] = []
    undelivered: list[str] = []
    unfinished: list[str] = []
    latency: list[float] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=300)) as http:

        async def through_genesys(i: int) -> tuple[int | None, int]:
            # wait: answered once the call's trigger ran its workflow (the data action's one try).
            placed = await http.post(f"{s.genesys_api_url}/_emulator/calls", timeout=60,
                                     json={"ani": callers[i].e164, "realtime": False, "wait": True})
            placed.raise_for_status()
            call = placed.json()
            conversation = conversations[i] = call["conversationId"]
            expected[conversation] = callers[i].contact_id
            steps = [step for invocation in call["delivery"]["triggers"] for step in invocation["steps"]]
            return (steps[-1].get("status") if steps else None), len(steps)

        async def one(i: int, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            sent = time.perf_counter()
            if via_genesys:
                status, tries = await through_genesys(i)
            else:
                body = json.dumps(call_event(conversations[i], callers[i])).encode()
                status, tries = await deliver(http, url, secret, body)
            conversation = conversations[i]
            acks.append(time.perf_counter() - sent)
            attempts.append(tries)
            if status is None or not 200 <= status < 300:
                undelivered.append(conversation)
                return
            accepted = time.perf_counter()
            try:
                await wait_result(client, f"call-log-{conversation}", accepted + settle_timeout)
            except Exception:  # noqa: BLE001 - failed or never finished: the Task count tells
                items.append((accepted, None))
                unfinished.append(conversation)
                return
            done = time.perf_counter()
            items.append((accepted, done))
            latency.append(done - sent)

        t0 = time.perf_counter()
        chaos = asyncio.create_task(run_faults(cs, faults_plan, t0, stop))
        await asyncio.gather(*(one(i, t0 + i / rate) for i in range(calls)))
        stop.set()
        await chaos
        elapsed = time.perf_counter() - t0
    clear_salesforce_faults(cs)
    reconciled = await reconcile(client, s, settle_timeout) if via_genesys else 0
    sf_requests = cs.salesforce_stats()["apiRequests"] - stats_before

    # The verdict from Salesforce itself: every Task carrying a conversation id.
    sf = cs.salesforce_client()  # a fresh session: the old one was expired on purpose
    per_conversation: dict[str, list[str | None]] = defaultdict(list)
    for r in sf.query_all_iter("SELECT Genesys_Conversation_Id__c, WhoId FROM Task "
                               "WHERE Genesys_Conversation_Id__c != null"):
        per_conversation[r["Genesys_Conversation_Id__c"]].append(r["WhoId"])
    tasks = sum(len(v) for k, v in per_conversation.items() if k in expected)
    right = sum(1 for k, v in per_conversation.items() if k in expected and v == [expected[k]])
    wrong = sum(1 for k, v in per_conversation.items() if k in expected and any(w != expected[k] for w in v))
    dupes = sum(1 for k, v in per_conversation.items() if k in expected and len(v) > 1)
    delivered_ok = set(conversations) - set(undelivered)
    lost = sum(1 for k in conversations if k not in per_conversation)
    return CallsReport(
        calls=calls, delivered=len(delivered_ok), redelivered=sum(1 for a in attempts if a > 1),
        undelivered=len(undelivered), tasks=tasks, on_right_contact=right, wrong_contact=wrong, duplicates=dupes,
        lost=lost, unexpected=sum(1 for k in per_conversation if k not in expected), not_finished=len(unfinished),
        elapsed=elapsed, logged_latency=latency, ack_latency=acks, recoveries=recoveries(cs.faults, items, t0),
        salesforce_requests=sf_requests, reconciled=reconciled,
    )


async def reconcile(client: Client, settings: Settings, timeout: float) -> int:
    """One CallReconciliationWorkflow run now, as the schedule's next one would (its 2-minute
    settle time already passed for these calls); then wait for the workflows it started."""
    from callbridge.domain.models import ReconciliationRequest
    from workflows.call_reconciliation import CallReconciliationWorkflow

    handle = await client.start_workflow(
        CallReconciliationWorkflow.run, ReconciliationRequest(settle_seconds=0),
        id=f"call-reconciliation-chaos-{uuid.uuid4().hex[:8]}", task_queue=settings.temporal_task_queue)
    result = await handle.result()
    deadline = time.perf_counter() + timeout
    for conversation in result.started_conversation_ids:
        await wait_result(client, f"call-log-{conversation}", deadline)
    return result.started


# --- scenario: erasures -----------------------------------------------------------------------------

ADMIN_PATH = "/gdpr/erasures"


@dataclass
class Person:
    email: str
    e164: str
    contact_id: str
    consent_id: str
    event_id: str
    external_id: str
    conversation: str


def make_people(cs: ChaosStack, count: int, rng: random.Random) -> list[Person]:
    """People present everywhere: contact, consent, event, a logged call (Task and its workflow
    history) and a Genesys external contact with the same email and number."""
    sf = cs.salesforce_client()
    account = sf.Account.create({"Name": "Erasure chaos", "BillingCountry": "United States"})["id"]
    people = []
    with cs.genesys_client() as gc:
        for i in range(count):
            digits = f"737{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
            email = f"chaos{uuid.uuid4().hex[:10]}@erasure-chaos.example"
            contact = sf.Contact.create({
                "FirstName": "Erika", "LastName": f"Chaos{i}", "Email": email, "AccountId": account,
                "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "MailingCountry": "United States",
            })["id"]
            consent = sf.Contact_Consent__c.create({"Contact__c": contact, "Consent_Type__c": "Data Processing",
                                                    "Channel__c": "Phone", "Version__c": "v1"})["id"]
            event = sf.Event.create({"WhoId": contact, "Subject": "Callback", "StartDateTime": "2026-01-05T10:00:00Z",
                                     "EndDateTime": "2026-01-05T10:30:00Z"})["id"]
            ext = gc.post("/api/v2/externalcontacts/contacts", json={
                "firstName": "Erika", "lastName": f"Chaos{i}", "workEmail": email,
                "cellPhone": {"display": "+1" + digits}})
            ext.raise_for_status()
            people.append(Person(email, "+1" + digits, contact, consent, event, ext.json()["id"], str(uuid.uuid4())))
    return people


async def log_calls_for(cs: ChaosStack, client: Client, people: list[Person]) -> None:
    """One call per person through the webhook, before the chaos: a Task and a history to erase."""
    s = cs.settings
    url = f"http://127.0.0.1:{s.starter_port}/webhooks/genesys/conversation-ended"
    async with httpx.AsyncClient() as http:
        for p in people:
            body = json.dumps(call_event(p.conversation, Caller(p.e164, p.contact_id, by_id=True))).encode()
            status, _ = await deliver(http, url, s.webhook_secret.get_secret_value(), body)
            assert status is not None and status < 300, status
        for p in people:
            await wait_result(client, f"call-log-{p.conversation}", time.perf_counter() + 120)


def leftovers(sf: Salesforce, gc: httpx.Client, p: Person) -> dict[str, int]:
    """What is still findable of one person, searched directly in each system."""
    from simple_salesforce.format import format_soql

    def count(soql: str, *args: Any) -> int:
        return sf.query(format_soql(soql, *args))["totalSize"]

    return {
        "contact": count("SELECT Id FROM Contact WHERE Id = {} OR Email = {}", p.contact_id, p.email),
        "task": count("SELECT Id FROM Task WHERE Genesys_Conversation_Id__c = {} OR WhoId = {}",
                      p.conversation, p.contact_id),
        "event": count("SELECT Id FROM Event WHERE Id = {}", p.event_id),
        "consent": count("SELECT Id FROM Contact_Consent__c WHERE Id = {}", p.consent_id),
        "genesys contact": int(gc.get(f"/api/v2/externalcontacts/contacts/{p.external_id}").status_code != 404),
        "genesys lookup": sum(len(gc.get("/api/v2/externalcontacts/reversewhitepageslookup",
                                         params={"lookupVal": v}).json().get("contacts", []))
                              for v in (p.email, p.e164)),
    }


@dataclass
class ErasuresReport:
    erasures: int
    completed: int
    failed: int  # finished, but not "completed"
    not_finished: int
    verified_clean: int  # nothing of the person left anywhere, searched independently
    leftovers: dict[str, int]
    histories_left: int  # the person's call-logging history still in Temporal
    start_retries: int  # admin API answers that had to be retried (Temporal down)
    elapsed: float
    durations: list[float]
    recoveries: list[Recovery]

    @property
    def ok(self) -> bool:
        return self.completed == self.verified_clean == self.erasures and not self.histories_left


async def erasures_scenario(cs: ChaosStack, count: int, plan: ChaosPlan, seed: int = 7, spacing: float = 1.0,
                            settle_timeout: float = 900.0, fault_window: float | None = None) -> ErasuresReport:
    """`count` erasures requested through the admin API, `spacing` seconds apart, under chaos."""
    s = cs.settings
    rng = random.Random(seed)
    client = await connect(s)
    people = await asyncio.to_thread(make_people, cs, count, rng)
    await log_calls_for(cs, client, people)

    base = f"http://127.0.0.1:{s.starter_port}"
    auth = (s.admin_username, s.admin_password.get_secret_value())
    # An erasure runs a dozen steps: give the faults a window wider than the requests.
    # A short run (the test's) narrows it, so every fault strikes before the erasures are done.
    faults_plan = schedule(plan, fault_window or max(30.0, count * spacing * 2), rng)
    cs.faults.clear()
    salesforce_faults(cs, seed)
    items: list[tuple[float, float | None]] = []
    results: list[Any] = []
    durations: list[float] = []
    retries = 0
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30) as http:

        async def one(i: int, at: float) -> None:
            nonlocal retries
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            sent = time.perf_counter()
            while True:  # an operator (or their script) retries a refused request
                try:
                    resp = await http.post(ADMIN_PATH, json={"email": people[i].email})
                    if resp.status_code == 202:
                        break
                except httpx.HTTPError:
                    pass
                retries += 1
                await asyncio.sleep(1.0)
            accepted = time.perf_counter()
            try:
                result = await wait_result(client, f"gdpr-erasure-{resp.json()['requestId']}",
                                           accepted + settle_timeout)
            except Exception:  # noqa: BLE001
                items.append((accepted, None))
                results.append(None)
                return
            items.append((accepted, time.perf_counter()))
            durations.append(time.perf_counter() - sent)
            results.append(result)

        t0 = time.perf_counter()
        chaos = asyncio.create_task(run_faults(cs, faults_plan, t0, stop))
        await asyncio.gather(*(one(i, t0 + i * spacing) for i in range(count)))
        elapsed = time.perf_counter() - t0
        stop.set()
        await chaos
    clear_salesforce_faults(cs)

    sf = cs.salesforce_client()
    left: Counter[str] = Counter()
    clean = 0
    histories = 0
    with cs.genesys_client() as gc:
        for p in people:
            found = leftovers(sf, gc, p)
            left.update({k: v for k, v in found.items() if v})
            clean += not any(found.values())
            try:
                await client.get_workflow_handle(f"call-log-{p.conversation}").describe()
                histories += 1
            except RPCError:
                pass  # NOT_FOUND: deleted
    # Untyped results come back as dicts.
    statuses = Counter(None if r is None else r["status"] if isinstance(r, dict) else r.status for r in results)
    return ErasuresReport(
        erasures=count, completed=statuses["completed"], failed=sum(v for k, v in statuses.items()
                                                                    if k not in ("completed", None)),
        not_finished=statuses[None], verified_clean=clean, leftovers=dict(left), histories_left=histories,
        start_retries=retries, elapsed=elapsed, durations=durations, recoveries=recoveries(cs.faults, items, t0),
    )


# --- scenario: contact sync --------------------------------------------------------------------------


def genesys_contacts(gc: httpx.Client) -> list[dict[str, Any]]:
    """Every Genesys external contact, by the scan API (200 a page)."""
    out, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = gc.get("/api/v2/externalcontacts/scan/contacts", params=params)
        if page.status_code == 429:  # our own token's budget: wait as told
            time.sleep(float(page.headers.get("Retry-After", "1")))
            continue
        page.raise_for_status()
        body = page.json()
        out += body.get("entities", [])
        cursor = (body.get("cursors") or {}).get("after")
        if not cursor:
            return out


def linked(contacts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Genesys contacts by the Salesforce id in their externalIds."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in contacts:
        for ext in c.get("externalIds") or []:
            out[ext.get("value")].append(c)
    return out


def change_salesforce(sf: Salesforce, titles: dict[str, str]) -> None:
    """Title per contact id, 200 a request (sObject collections)."""
    items = list(titles.items())
    for i in range(0, len(items), 200):
        records = [{"attributes": {"type": "Contact"}, "id": cid, "Title": t} for cid, t in items[i:i + 200]]
        for r in sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records}):
            assert r.get("success"), str(r)[:500]


def change_genesys(gc: httpx.Client, first_names: dict[str, str]) -> None:
    """firstName per Genesys contact id, 200 a request (bulk fetch, then bulk update)."""
    ids = list(first_names)
    for i in range(0, len(ids), 200):
        fetched = gc.post("/api/v2/externalcontacts/bulk/contacts", json={"entities": [{"id": x} for x in ids[i:i + 200]]})
        fetched.raise_for_status()
        entities = [{**r["entity"], "firstName": first_names[r["id"]]} for r in fetched.json()["results"]]
        done = gc.post("/api/v2/externalcontacts/bulk/contacts/update", json={"entities": entities})
        done.raise_for_status()
        assert done.json()["errorCount"] == 0, str(done.json())[:500]


async def sync_once(client: Client, settings: Settings) -> tuple[dict[str, Any], float]:
    """One ContactSyncWorkflow run (what `callbridge sync run --mode bidirectional` starts)."""
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.contact_sync import WORKFLOW_ID, ContactSyncWorkflow

    inp = ContactSyncInput.from_config(load(), mode="bidirectional")
    started = time.perf_counter()
    while True:
        try:
            await client.start_workflow(ContactSyncWorkflow.run, inp, id=WORKFLOW_ID,
                                        task_queue=settings.temporal_task_queue)
            break
        except RPCError:
            await asyncio.sleep(1.0)  # Temporal restarting
    result = await wait_result(client, WORKFLOW_ID, started + 3 * 3600)
    return result, time.perf_counter() - started


@dataclass
class SyncReport:
    contacts: int
    changes: int
    initial_load_seconds: float
    runs: list[tuple[str, dict[str, Any], float]]  # (label, result, seconds)
    landed_after_chaos: int  # of `changes`, on the other side once the chaos run finished
    landed_after_next: int  # … after one more run without chaos
    during: int  # changes made while the chaos run was going
    during_landed: int  # … on the other side after the next run (the watermark didn't skip them)
    doubled: int  # Salesforce contacts with more than one Genesys twin, or extra contacts on either side
    unlinked: int  # Salesforce contacts without a Genesys twin
    watermarks: list[tuple[str, str | None, str | None]]
    recoveries: list[Recovery]

    @property
    def ok(self) -> bool:
        return (self.landed_after_next == self.changes and self.during_landed == self.during
                and not self.doubled and not self.unlinked)


async def sync_scenario(cs: ChaosStack, changes: int, plan: ChaosPlan, seed: int = 7) -> SyncReport:
    """Initial load (no chaos), then `changes` edits split between both sides, synced under chaos
    with a few more edits made mid-run, then one more run; every edit is checked on the other side."""
    from callbridge.store import caller_index as kv
    from callbridge.store.db import get_engine

    s = cs.settings
    rng = random.Random(seed)
    client = await connect(s)
    engine = get_engine(s.database_url)
    marks = lambda: (kv.get_text(engine, "sync_salesforce_watermark"), kv.get_text(engine, "sync_genesys_watermark"))  # noqa: E731
    runs: list[tuple[str, dict[str, Any], float]] = []
    watermarks = []

    first, took = await sync_once(client, s)
    runs.append(("initial load (no chaos)", first, took))
    watermarks.append(("after the initial load", *marks()))
    sf = cs.salesforce_client()
    sf_ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Contact")]
    with cs.genesys_client() as gc:
        twins = {k: v[0]["id"] for k, v in linked(genesys_contacts(gc)).items() if v}
    # Contacts with service consent: the others' Salesforce edits are held back from Genesys by
    # design (docs/privacy.md), e.g. the ones sync itself created in Salesforce from Genesys.
    consented_now = {r["Contact__c"] for r in sf.query_all_iter(
        "SELECT Contact__c FROM Contact_Consent__c WHERE Consent_Type__c = 'Data Processing' AND Withdrawn__c = false")}
    pool = [cid for cid in sf_ids if cid in twins and cid in consented_now]
    rng.shuffle(pool)
    if changes + 20 > len(pool):
        raise SystemExit(f"sync: {changes} changes need more than {len(pool)} linked contacts (--contacts)")
    main, extra = pool[:changes], pool[changes:changes + 20]
    tag = uuid.uuid4().hex[:6]
    # Even: a Salesforce Title (flows to Genesys); odd: a Genesys firstName (flows to Salesforce).
    sf_side = {cid: f"T{tag}{i}" for i, cid in enumerate(main) if i % 2 == 0}
    gc_side = {cid: f"G{tag}{i}" for i, cid in enumerate(main) if i % 2 == 1}
    during = {cid: f"D{tag}{i}" for i, cid in enumerate(extra)}
    with cs.genesys_client() as gc:
        await asyncio.to_thread(change_salesforce, sf, sf_side)
        await asyncio.to_thread(change_genesys, gc, {twins[c]: v for c, v in gc_side.items()})

    # The faults fall within the run's expected length, from the initial load's pace.
    pace = max(1.0, first.get("pairs", 0)) / max(took, 1.0)
    faults_plan = schedule(plan, max(30.0, changes / pace), rng)
    cs.faults.clear()
    salesforce_faults(cs, seed)
    stop = asyncio.Event()
    t0 = time.perf_counter()
    chaos = asyncio.create_task(run_faults(cs, faults_plan, t0, stop))

    async def edit_during() -> None:
        await asyncio.sleep(min(10.0, changes / pace / 3))
        await asyncio.to_thread(change_salesforce, cs.salesforce_client(), during)

    editing = asyncio.create_task(edit_during())
    result, took = await sync_once(client, s)
    await editing
    stop.set()
    await chaos
    clear_salesforce_faults(cs)
    runs.append((f"{changes} changes, under chaos", result, took))
    watermarks.append(("after the chaos run", *marks()))

    def landed() -> tuple[int, int, int, int]:
        sf_now = {r["Id"]: r for r in cs.salesforce_client().query_all_iter("SELECT Id, FirstName, Title FROM Contact")}
        with cs.genesys_client() as gc:
            by_sf = linked(genesys_contacts(gc))
        ok = sum(1 for c, v in sf_side.items() if by_sf.get(c) and by_sf[c][0].get("title") == v)
        ok += sum(1 for c, v in gc_side.items() if sf_now.get(c, {}).get("FirstName") == v)
        ok_during = sum(1 for c, v in during.items() if by_sf.get(c) and by_sf[c][0].get("title") == v)
        doubled = sum(1 for v in by_sf.values() if len(v) > 1) + abs(len(sf_now) - len(sf_ids))
        # Only contacts with service consent are synced (docs/privacy.md): the rest have no twin by design.
        unlinked = sum(1 for c in sf_now if c not in by_sf and c in consented)
        return ok, ok_during, doubled, unlinked

    consented = {r["Contact__c"] for r in cs.salesforce_client().query_all_iter(
        "SELECT Contact__c FROM Contact_Consent__c WHERE Consent_Type__c = 'Data Processing' AND Withdrawn__c = false")}
    after_chaos, _, _, _ = await asyncio.to_thread(landed)
    result, took = await sync_once(client, s)
    runs.append(("the next run (no chaos)", result, took))
    watermarks.append(("after the next run", *marks()))
    after_next, during_ok, doubled, unlinked = await asyncio.to_thread(landed)
    return SyncReport(
        contacts=len(sf_ids), changes=changes, initial_load_seconds=runs[0][2], runs=runs,
        landed_after_chaos=after_chaos, landed_after_next=after_next, during=len(during), during_landed=during_ok,
        doubled=doubled, unlinked=unlinked, watermarks=watermarks, recoveries=recoveries(cs.faults, [], t0),
    )
