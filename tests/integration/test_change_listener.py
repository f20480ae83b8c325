"""`callbridge listen`: Salesforce changes reach the caller-ID index and Genesys through Change
Data Capture, with the polling schedules paused so only the listener can have done it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from devstack.processes import ManagedProcess
from callbridge.store import caller_index
from callbridge.store.db import get_engine
from callbridge.store.sync_runs import sync_audit
from tests.helpers import genesys_contacts_linked_to, new_sf_contact, pause_schedule, stack_settings, tls
from tests.helpers import unique_us_number

pytestmark = pytest.mark.integration

VENV_BIN = sys.executable.rsplit("/", 1)[0]


def start_listener(stack, name: str = "listener") -> ManagedProcess:
    return ManagedProcess(name=name, argv=[f"{VENV_BIN}/callbridge", "listen"], env=stack.env,
                          log_path=stack.log_dir / f"{name}.log").start()


async def ready(stack, sf, listener: ManagedProcess) -> None:
    """Wait until the listener's streams are live. A first-ever listener starts at LATEST: one
    change per topic, once its replay id is stored, proves it (a later listener resumes after the
    stored replay id and misses nothing anyway)."""
    from callbridge.cdc import replay

    db = stack.env["CALLBRIDGE_DATABASE_URL"]
    await until(lambda: listener.log_path.read_text().count("subscribed") >= 2, "the subscriptions")
    for sobject, name_field in (("Contact", "LastName"), ("Account", "Name")):
        topic = f"/data/{sobject}ChangeEvent"
        # "subscribed" is logged as the stream opens; a change published before the emulator
        # holds the fetch is, at LATEST, rightly never delivered: another change every few
        # seconds until one is stored (once stuck for the whole minute on a loaded machine).
        for _ in range(12):
            if replay.load(db, topic) is not None:
                break
            getattr(sf, sobject).create({name_field: "Warm-up"})
            try:
                await until(lambda: replay.load(db, topic), f"a stored {topic} replay id", timeout=5)
            except AssertionError:
                continue
        else:
            raise AssertionError(f"no {topic} change reached the listener in a minute")


@contextlib.asynccontextmanager
async def listening(stack, sf, name: str):
    """A listener, live, for the block (its log: .log_path)."""
    listener = start_listener(stack, name)
    try:
        await ready(stack, sf, listener)
        yield listener
    finally:
        listener.stop()


async def until(predicate, what: str, timeout: float = 60.0):
    """Poll until predicate() is truthy (a deadline only against hanging, not a speed check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def index_holds(stack, contact_id: str, e164: str) -> bool:
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    return any(r["contact_id"] == contact_id for r in caller_index.lookup(engine, e164))


def creations(stack, contact_id: str) -> int:
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    with engine.connect() as conn:
        # One audit row per field written: count the runs that created it.
        return conn.execute(select(func.count(sync_audit.c.run_id.distinct())).where(
            sync_audit.c.salesforce_id == contact_id, sync_audit.c.action == "create_in_genesys")).scalar()


@pytest.fixture(scope="module")
async def quiet_polling(temporal_client):
    """The index refresh schedule paused: index rows can only come from the listener."""
    from workflows.caller_index import SCHEDULE_ID

    schedule = await pause_schedule(temporal_client, SCHEDULE_ID, "test: only the listener indexes")
    yield
    await schedule.unpause()


def _phone(digits: str) -> str:
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


async def test_an_edit_reaches_the_index_and_genesys_and_our_own_writes_do_not_echo(
        stack, sf, gc, temporal_client, quiet_polling):
    listener = start_listener(stack)
    try:
        await ready(stack, sf, listener)
        contact_id = new_sf_contact(sf)
        e164, digits = unique_us_number()
        sf.Contact.update(contact_id, {"Phone": _phone(digits)})
        await until(lambda: index_holds(stack, contact_id, e164), "the index row")
        gc_ids = await until(lambda: genesys_contacts_linked_to(gc, contact_id), "the Genesys contact")
        assert len(gc_ids) == 1
        await until(lambda: gc.get(f"/api/v2/externalcontacts/contacts/{gc_ids[0]}").json()
                    .get("workPhone", {}).get("e164") == e164, "the new number in Genesys")

        # Callbridge's own write (its connection sends Sforce-Call-Options: client=callbridge):
        # the index follows, no sync starts.
        from callbridge.clients.salesforce.connection import SalesforceConnection

        runs_before = [w async for w in temporal_client.list_workflows(f'WorkflowId = "sync-pair-{contact_id}"')]
        own = SalesforceConnection(stack_settings(stack))
        echo_e164, echo_digits = unique_us_number()
        own.restful(f"sobjects/Contact/{contact_id}", method="PATCH", json={"MobilePhone": _phone(echo_digits)})
        marker = new_sf_contact(sf)  # a later change: once it is synced, the echo was seen and skipped
        await until(lambda: genesys_contacts_linked_to(gc, marker), "the marker's sync")
        assert index_holds(stack, contact_id, echo_e164)
        runs_after = [w async for w in temporal_client.list_workflows(f'WorkflowId = "sync-pair-{contact_id}"')]
        assert len(runs_after) == len(runs_before)
    finally:
        listener.stop()


async def test_killed_mid_stream_and_restarted_loses_nothing_and_applies_nothing_twice(
        stack, sf, gc, salesforce, quiet_polling):
    listener = start_listener(stack, "listener-kill")
    log = stack.log_dir / "listener-kill.log"
    await ready(stack, sf, listener)
    contacts: dict[str, str] = {}
    for _ in range(8):
        e164, digits = unique_us_number()
        contacts[new_sf_contact(sf, Phone=_phone(digits))] = e164
    first = next(iter(contacts))
    await until(lambda: index_holds(stack, first, contacts[first]), "the listener to be mid-stream")
    listener.proc.kill()  # SIGKILL: no goodbye, whatever batch it was in
    listener.proc.wait()
    for _ in range(8):  # changes while it is down
        e164, digits = unique_us_number()
        contacts[new_sf_contact(sf, Phone=_phone(digits))] = e164
    edited = list(contacts)[3]
    e164, digits = unique_us_number()
    sf.Contact.update(edited, {"Phone": _phone(digits)})
    contacts[edited] = e164
    listener = start_listener(stack, "listener-kill")
    try:
        for contact_id, number in contacts.items():
            await until(lambda: index_holds(stack, contact_id, number), "every change in the index")
            await until(lambda: genesys_contacts_linked_to(gc, contact_id), "every contact in Genesys")
        for contact_id in contacts:
            assert len(genesys_contacts_linked_to(gc, contact_id)) == 1
            # The audit is the pair's last step (after the link is written back): wait for it.
            await until(lambda: creations(stack, contact_id), "the creation in the sync audit")
            assert creations(stack, contact_id) == 1
    finally:
        listener.stop()


async def test_a_refused_replay_id_runs_the_incremental_pass_then_follows_latest(
        stack, sf, salesforce, quiet_polling):
    from callbridge.cdc import replay

    listener = start_listener(stack, "listener-retention")
    log = stack.log_dir / "listener-retention.log"
    await ready(stack, sf, listener)
    contact_id = new_sf_contact(sf, consent=False)
    db = stack.env["CALLBRIDGE_DATABASE_URL"]
    await until(lambda: replay.load(db, "/data/ContactChangeEvent"), "a stored replay id")
    listener.stop()
    httpx.post(f"{salesforce.instance_url}/_emulator/pubsub/age", json={"hours": 73},
               verify=tls(salesforce)).raise_for_status()
    listener = start_listener(stack, "listener-retention")
    try:
        await until(lambda: "running the incremental pass" in log.read_text(), "the incremental pass")
        e164, digits = unique_us_number()
        await until(lambda: log.read_text().count("subscribed") >= 4, "the subscription at LATEST")
        sf.Contact.update(contact_id, {"Phone": _phone(digits)})
        await until(lambda: index_holds(stack, contact_id, e164), "a change after resubscribing")
    finally:
        listener.stop()


async def test_a_burst_of_edits_on_one_contact_collapses_into_few_syncs_and_ends_on_the_last(
        stack, sf, gc, genesys, temporal_client, quiet_polling):
    listener = start_listener(stack, "listener-burst")
    try:
        await ready(stack, sf, listener)
        contact_id = new_sf_contact(sf)
        gc_ids = await until(lambda: genesys_contacts_linked_to(gc, contact_id), "the first sync")
        # The next Genesys write takes 3 s: the rest of the burst arrives while that sync runs,
        # after it read Salesforce.
        httpx.post(f"{genesys.api_url}/_emulator/faults", json={"delay_next": [
            {"method": "PUT", "path_regex": "/externalcontacts/contacts/", "seconds": 3, "count": 1}]}) \
            .raise_for_status()
        numbers = [unique_us_number() for _ in range(10)]
        sf.Contact.update(contact_id, {"Phone": _phone(numbers[0][1])})
        await asyncio.sleep(1.5)  # its sync is now writing Genesys
        for _, digits in numbers[1:]:
            sf.Contact.update(contact_id, {"Phone": _phone(digits)})
        last = numbers[-1][0]
        await until(lambda: gc.get(f"/api/v2/externalcontacts/contacts/{gc_ids[0]}").json()
                    .get("workPhone", {}).get("e164") == last, "the last number in Genesys", timeout=30)
        await asyncio.sleep(1.0)  # let any straggling run finish before counting
        runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "sync-pair-{contact_id}"')]
        assert len(runs) < 1 + len(numbers)  # the create's sync, then far fewer than one per edit
        assert len(genesys_contacts_linked_to(gc, contact_id)) == 1
    finally:
        listener.stop()


async def test_an_account_rename_and_a_gap_overflow_reach_the_index(stack, sf, salesforce, quiet_polling):
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    async with listening(stack, sf, "listener-account") as listener:
        log = listener.log_path
        account = sf.Account.create({"Name": "Initech", "AccountNumber": f"INI-{time.time_ns()}"})["id"]
        e164, digits = unique_us_number()
        contact_id = sf.Contact.create({"LastName": "Lumbergh", "AccountId": account, "Phone": _phone(digits)})["id"]
        await until(lambda: index_holds(stack, contact_id, e164), "the contact's row")
        sf.Account.update(account, {"Name": "Initrode"})  # only Name changed: the rows carry it
        await until(lambda: [r["account_name"] for r in caller_index.lookup(engine, e164)] == ["Initrode"],
                    "the new account name on the contact's row")

        # A gap event names its record but carries no fields: the record is read and indexed.
        httpx.post(f"{salesforce.instance_url}/_emulator/pubsub/faults", json={"gap": "gap"},
                   verify=tls(salesforce)).raise_for_status()
        try:
            e164, digits = unique_us_number()
            gapped = sf.Contact.create({"LastName": "Gap", "Phone": _phone(digits)})["id"]
        finally:
            httpx.delete(f"{salesforce.instance_url}/_emulator/pubsub/faults", verify=tls(salesforce))
        await until(lambda: index_holds(stack, gapped, e164), "the GAP_CREATE's record indexed")

        # GAP_OVERFLOW names no records: the polling path's incremental pass runs at once.
        httpx.post(f"{salesforce.instance_url}/_emulator/pubsub/faults", json={"gap": "overflow"},
                   verify=tls(salesforce)).raise_for_status()
        try:
            e164, digits = unique_us_number()
            hidden = sf.Contact.create({"LastName": "Overflow", "Phone": _phone(digits)})["id"]
        finally:
            httpx.delete(f"{salesforce.instance_url}/_emulator/pubsub/faults", verify=tls(salesforce))
        await until(lambda: "running the incremental pass" in log.read_text(), "the incremental pass")
        await until(lambda: index_holds(stack, hidden, e164), "the overflowed contact indexed by the pass")


async def test_salesforce_failing_mid_batch_is_retried_not_fatal(stack, sf, salesforce, quiet_polling):
    async with listening(stack, sf, "listener-failing") as listener:
        log = listener.log_path
        from callbridge.cdc import replay

        sf.Contact.create({"LastName": "Warmup"})  # a stored replay id to resume from
        await until(lambda: replay.load(stack.env["CALLBRIDGE_DATABASE_URL"], "/data/ContactChangeEvent"),
                    "a stored replay id")
        httpx.post(f"{salesforce.instance_url}/_emulator/faults", verify=tls(salesforce), json={"fail_next": [
            {"method": "GET", "path_regex": "/query", "status": 503, "errorCode": "SERVER_UNAVAILABLE",
             "count": 2}]}).raise_for_status()
        e164, digits = unique_us_number()
        contact_id = sf.Contact.create({"LastName": "Retry", "Phone": _phone(digits)})["id"]
        await until(lambda: "acting on changes failed" in log.read_text(), "the failed batch")
        await until(lambda: index_holds(stack, contact_id, e164), "the change applied on the retry")
        assert listener.proc.poll() is None


async def test_delete_undelete_and_a_dropped_stream(stack, sf, salesforce, quiet_polling):
    async with listening(stack, sf, "listener-drop") as listener:
        log = listener.log_path
        e164, digits = unique_us_number()
        contact_id = sf.Contact.create({"LastName": "Bin", "Phone": _phone(digits)})["id"]
        await until(lambda: index_holds(stack, contact_id, e164), "the new contact's row")
        # The stream drops after the next event; the listener resumes after its stored replay id.
        httpx.post(f"{salesforce.instance_url}/_emulator/pubsub/faults", json={"drop_after": 1},
                   verify=tls(salesforce)).raise_for_status()
        sf.Contact.delete(contact_id)
        await until(lambda: not index_holds(stack, contact_id, e164), "the deleted contact off the index")
        await until(lambda: "reconnecting" in log.read_text(), "the reconnect")
        httpx.post(f"{salesforce.instance_url}/_emulator/undelete/Contact/{contact_id}",
                   verify=tls(salesforce)).raise_for_status()
        await until(lambda: index_holds(stack, contact_id, e164), "the undeleted contact back on the index")


async def changes_after(settings, replay: int, contact_id: str, timeout: float = 60.0):
    """The Contact change events after `replay` that name contact_id, read and decoded as the
    listener does."""
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.clients.salesforce.pubsub import PubSubClient
    from emulators.salesforce.pubsub.bus import replay_bytes

    pubsub = PubSubClient(settings, SalesforceConnection(settings))
    try:
        meta = await pubsub.metadata()

        async def first():
            async for response in pubsub.subscribe("/data/ContactChangeEvent", replay_bytes(replay), meta):
                ours = [c for c in [await pubsub.decode(e, meta) for e in response.events]
                        if contact_id in c.record_ids]
                if ours:
                    return ours
        return await asyncio.wait_for(first(), timeout)
    finally:
        await pubsub.close()


def index_rows_of(stack, contact_id: str) -> list[dict]:
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(caller_index.caller_index).where(
            caller_index.caller_index.c.contact_id == contact_id).order_by(
            caller_index.caller_index.c.phone_field)).mappings()]


async def test_call_loggings_own_contact_update_reaches_the_index_from_its_event_without_a_query(
        stack, sf, salesforce, temporal_client, quiet_polling):
    """Call logging's contact update (Last_Call_Date__c, from Callbridge's client) carries all the
    index needs: the listener asks Salesforce nothing, and the rows are the ones a read makes."""
    from datetime import datetime, timezone

    from callbridge.clients.metering import metering
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.cdc.actions import ChangeActions

    settings = stack_settings(stack)
    own = SalesforceConnection(settings)
    actions = ChangeActions(settings, own, temporal_client)
    e164, digits = unique_us_number()
    contact_id = new_sf_contact(sf, Phone=_phone(digits), MobilePhone=_phone(unique_us_number()[1]))
    await asyncio.to_thread(actions._refresh_index, {contact_id}, set())  # indexed, as its create was
    assert index_holds(stack, contact_id, e164)
    last = httpx.get(f"{salesforce.instance_url}/_emulator/pubsub", verify=tls(salesforce)).json()["last_replay"]
    own.restful(f"sobjects/Contact/{contact_id}", method="PATCH",
                json={"Last_Call_Date__c": "2026-03-14T10:00:00.000+0000", "Last_Call_Duration__c": 42})
    changes = await changes_after(settings, last, contact_id)

    with metering() as meter:
        await actions.apply(changes)
    assert meter.salesforce == 0
    from_event = index_rows_of(stack, contact_id)
    assert len(from_event) == 2
    assert {r["last_activity"].replace(tzinfo=timezone.utc) for r in from_event} == {
        datetime(2026, 3, 14, 10, 0, tzinfo=timezone.utc)}
    await asyncio.to_thread(actions._refresh_index, {contact_id}, set())  # what a read makes of it
    assert index_rows_of(stack, contact_id) == from_event


async def test_an_account_number_change_reaches_the_index(stack, sf, quiet_polling):
    """The account's number is on the index's accounts row (screen pop by account number): an
    update of AccountNumber alone is acted on, not only a rename."""
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    async with listening(stack, sf, "listener-account-number"):
        number = f"INI-{time.time_ns()}"
        account = sf.Account.create({"Name": "Initech", "AccountNumber": number})["id"]
        e164, digits = unique_us_number()
        contact_id = sf.Contact.create({"LastName": "Bolton", "AccountId": account, "Phone": _phone(digits)})["id"]
        await until(lambda: index_holds(stack, contact_id, e164), "the contact's row")
        assert caller_index.lookup_account(engine, number)[0] is not None
        sf.Account.update(account, {"AccountNumber": number + "-2"})
        await until(lambda: caller_index.lookup_account(engine, number + "-2")[0], "the new account number")
