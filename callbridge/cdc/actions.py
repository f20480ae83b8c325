"""What the listener does with a batch of changes: the caller-ID index first, then the pairs' syncs.

The index rows are rebuilt from the records as they are now (one query per batch), so replaying
a batch after a crash, or events arriving out of order, changes nothing. Call logging's own
contact update (a new Last_Call_Date__c) is taken from its event instead of read again: the
event carries all the rows need, and a row already showing a later change keeps it.

Each changed contact's SyncPairWorkflow is signalled, or started with the signal
(signal-with-start): edits arriving while a sync runs collapse into one more sync.
Callbridge's own writes (changeOrigin names our Sforce-Call-Options client) aren't synced
back; the stored base stays the last guard.
"""

from __future__ import annotations

import asyncio
from typing import Iterable

import structlog
from simple_salesforce.format import format_soql
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from callbridge.clients.salesforce.query import query_pages
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.domain.caller_id import INDEX_SOQL_FIELDS, index_update_in_change
from callbridge.clients.salesforce.pubsub import Change
from callbridge.core.settings import Settings
from callbridge.store import caller_index
from callbridge.store.db import get_engine

log = structlog.get_logger("callbridge.listen")
CHANGED_SIGNAL = "salesforce_changed"
IDS_PER_QUERY = 200
SIGNALS_AT_ONCE = 20  # a batch's signal-with-starts in flight together
# An account's fields on its contacts' index rows and accounts row, or deciding their numbers'
# region (an address's sub-field as the change event names it).
ACCOUNT_INDEX_FIELDS = frozenset({"Name", "AccountNumber", "BillingCountry", "BillingAddress.Country"})


def is_echo(change: Change, client_id: str) -> bool:
    return f"client={client_id}" in change.origin.split(";")


class ChangeActions:
    def __init__(self, settings: Settings, connection: SalesforceConnection, temporal: Client) -> None:
        self._settings = settings
        self._sf = connection
        self._temporal = temporal
        self._mapping = None
        self.syncs_signalled = 0

    async def apply(self, changes: list[Change]) -> None:
        contacts: set[str] = set()  # to read
        from_events: dict[str, dict] = {}  # index columns the events carry, by contact
        accounts: set[str] = set()
        to_sync: set[str] = set()
        overflow = False
        for change in changes:
            if change.change_type == "GAP_OVERFLOW":
                overflow = True
                continue
            if change.entity == "Contact":
                carried = index_update_in_change(change.changed_fields, change.nulled_fields, change.values) \
                    if change.change_type == "UPDATE" else None
                for contact_id in change.record_ids:
                    if carried is None or contact_id in contacts:
                        contacts.add(contact_id)  # the read shows this change and any before it
                        from_events.pop(contact_id, None)
                    else:
                        from_events[contact_id] = {**from_events.get(contact_id, {}), **carried}
                if not is_echo(change, self._settings.salesforce_call_options_client):
                    to_sync.update(change.record_ids)
            elif change.entity == "Account" and (change.change_type != "UPDATE" or not change.changed_fields
                                                 or ACCOUNT_INDEX_FIELDS & set(change.changed_fields)
                                                 or ACCOUNT_INDEX_FIELDS & set(change.nulled_fields)):
                accounts.update(change.record_ids)
        if contacts or from_events or accounts:
            await asyncio.to_thread(self._refresh_index, contacts, accounts, from_events)
        if to_sync and self._settings.listen_sync_enabled:
            await self._sync(sorted(to_sync))
        if overflow:
            await self.full_pass("GAP_OVERFLOW")

    def _refresh_index(self, contact_ids: set[str], account_ids: set[str],
                       from_events: dict[str, dict] | None = None) -> None:
        engine = get_engine(self._settings.database_url)
        region = self._settings.default_region
        if from_events:
            contact_ids = contact_ids | caller_index.update_contacts(engine, from_events)
        found: set[str] = set()
        for chunk in _chunks(sorted(contact_ids)):
            soql = format_soql(f"SELECT {INDEX_SOQL_FIELDS} FROM Contact WHERE Id IN {{}}", chunk)
            for records in query_pages(self._sf, soql):
                found.update(r["Id"][:15] for r in records)
                caller_index.apply_contacts(engine, records, region)
        gone = [cid for cid in contact_ids if cid[:15] not in found]
        if gone:  # deleted (or no longer visible): off the index
            caller_index.remove_contacts(engine, gone)
        for chunk in _chunks(sorted(account_ids)):
            soql = format_soql(f"SELECT {INDEX_SOQL_FIELDS} FROM Contact WHERE AccountId IN {{}}", chunk)
            for records in query_pages(self._sf, soql):
                caller_index.apply_contacts(engine, records, region)

    def _sync_input(self, contact_id: str):
        from callbridge.domain.sync import config as sync_config
        from callbridge.domain.sync.models import PairKey, SyncPairInput

        if self._mapping is None:
            path = self._settings.sync_config_path
            self._mapping = sync_config.load(__import__("pathlib").Path(path) if path else None)
        return SyncPairInput.from_config(PairKey(salesforce_id=contact_id), self._mapping)

    async def _sync(self, contact_ids: list[str]) -> None:
        from workflows.sync_pair import SyncPairWorkflow

        gate = asyncio.Semaphore(SIGNALS_AT_ONCE)

        async def one(contact_id: str) -> None:
            inp = self._sync_input(contact_id)
            async with gate:
                await self._temporal.start_workflow(
                    SyncPairWorkflow.run, inp, id=inp.key.workflow_id, task_queue=self._settings.temporal_task_queue,
                    start_signal=CHANGED_SIGNAL)
            self.syncs_signalled += 1
        # All of the batch's signals sent before its replay id is stored (gather raises on any failure).
        await asyncio.gather(*(one(cid) for cid in contact_ids))

    async def full_pass(self, why: str) -> None:
        """The polling path's incremental pass now: the index refresh, and the contact sync if on."""
        from workflows.caller_index import SCHEDULE_ID as INDEX_SCHEDULE
        from workflows.contact_sync import SCHEDULE_ID as SYNC_SCHEDULE

        log.warning("change events missed: running the incremental pass now", reason=why)
        schedules = [INDEX_SCHEDULE] + ([SYNC_SCHEDULE] if self._settings.sync_schedule_enabled else [])
        for schedule_id in schedules:
            try:
                await self._temporal.get_schedule_handle(schedule_id).trigger()
            except (RPCError, WorkflowAlreadyStartedError) as exc:
                log.warning("could not trigger the pass", schedule_id=schedule_id, error=str(exc)[:200])


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), IDS_PER_QUERY):
        yield ids[i:i + IDS_PER_QUERY]
