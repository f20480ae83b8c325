"""Per-pair contact-sync activities: read a pair, write one side, store the agreed base.

Each is one external call (or one transaction in the state store); SyncPairWorkflow strings
them together. Request counts come back with each result, for the run's stats.
"""

from __future__ import annotations

import asyncio
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.metering import metering
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import from_exception
from activities.contact_sync_records import GENESYS_CONTACTS, LINK_FIELD, SyncRecords, genesys_failure
from callbridge.domain.matching import parse_sf_datetime
from callbridge.core.settings import Settings
from callbridge.store import sync as sync_store
from callbridge.store.db import get_engine
from callbridge.domain.sync.models import (
    GenesysWrite,
    PairKey,
    PairSnapshot,
    ReviewRequest,
    SalesforceWrite,
    StoreBaseRequest,
    WriteResult,
)


class SyncPairActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings
        self.records = SyncRecords(salesforce, genesys, settings)

    @property
    def _engine(self):
        return get_engine(self._settings.database_url)

    @activity.defn
    async def load_sync_pair(self, key: PairKey) -> PairSnapshot:
        from callbridge.store.privacy import Tombstones

        with metering() as meter:
            stored = sync_store.get_pair(self._engine, key.salesforce_id, key.genesys_id)
            sf_id = key.salesforce_id or (stored or {}).get("salesforce_id")
            gc_id = key.genesys_id or (stored or {}).get("genesys_id")
            sf_record = gc_contact = None
            if sf_id and gc_id:
                # Both ids known (a stored pair, the usual case): both sides read at once.
                sf_records, gc_contacts = await asyncio.gather(
                    asyncio.to_thread(self.records.read_salesforce, [sf_id]), self.records.read_genesys([gc_id]))
                sf_record, gc_contact = sf_records.get(sf_id), gc_contacts.get(gc_id)
            else:
                if sf_id:
                    sf_record = (await asyncio.to_thread(self.records.read_salesforce, [sf_id])).get(sf_id)
                    if sf_record is not None and not sf_record.get("IsDeleted"):
                        gc_id = gc_id or sf_record.get(LINK_FIELD)
                gc_contact = (await self.records.read_genesys([gc_id])).get(gc_id) if gc_id else None
            snap = self.records.snapshot(sf_id, gc_id, stored, sf_record, gc_contact)
            snap.erased = self.records.erased(Tombstones(self._engine), snap)
            snap.index_record = self.records.index_record(sf_record, {}, sf_id) if sf_record else None
        snap.salesforce_requests, snap.genesys_requests = meter.salesforce, meter.genesys
        return snap

    @activity.defn
    async def write_salesforce_contact(self, write: SalesforceWrite) -> WriteResult:
        with metering() as meter:
            record_id = await asyncio.to_thread(self._write_salesforce, write)
        return WriteResult(id=record_id, salesforce_requests=meter.salesforce)

    def _write_salesforce(self, write: SalesforceWrite) -> str:
        try:
            if write.op == "create":
                # An upsert on the Genesys id (an External ID field): a retried create after a
                # crash finds the record it made instead of making a second one.
                fields = {k: v for k, v in write.fields.items() if k != LINK_FIELD}
                gc_id = write.fields[LINK_FIELD]
                return self._sf.restful(f"sobjects/Contact/{LINK_FIELD}/{quote(gc_id, safe='')}", method="PATCH",
                                        json=fields)["id"]
            path = f"sobjects/Contact/{write.contact_id}"
            if write.op == "delete":
                try:
                    self._sf.restful(path, method="DELETE")
                except SalesforceResourceNotFound:
                    pass  # already gone: a retry after success
                return write.contact_id
            headers = {}
            if write.if_unmodified_since:
                # Salesforce answers 412 if the record changed since we read it: merge again.
                headers["If-Unmodified-Since"] = format_datetime(
                    parse_sf_datetime(write.if_unmodified_since), usegmt=True)
            self._sf.restful(path, method="PATCH", json=write.fields, headers=headers)
            return write.contact_id
        except SalesforceError as exc:
            if exc.status == 412:
                raise ApplicationError("Salesforce contact changed since it was read", type="StaleRecord",
                                       non_retryable=True) from None
            raise from_exception(exc, f"contact {write.op}") from None

    @activity.defn
    async def write_genesys_contact(self, write: GenesysWrite) -> WriteResult:
        with metering() as meter:
            contact_id = await self._write_genesys(write)
        return WriteResult(id=contact_id, genesys_requests=meter.genesys)

    async def _write_genesys(self, write: GenesysWrite) -> str:
        if write.op == "create":
            if activity.info().attempt > 1:
                # A retry: the first attempt may have created the contact and died before
                # storing its id. Look for it (the Salesforce id in its externalIds) first.
                found = await self.records.find_created(write.link_salesforce_id)
                if found:
                    return found
            body = self.records.genesys_body(write.fields, None, write.link_salesforce_id)
            resp = await self._genesys.request("POST", GENESYS_CONTACTS, json=body)
        elif write.op == "delete":
            resp = await self._genesys.request("DELETE", f"{GENESYS_CONTACTS}/{quote(write.contact_id, safe='')}")
            if resp.status_code == 404:
                return write.contact_id  # already gone
        else:
            body = self.records.genesys_body(write.fields, write.current, write.link_salesforce_id)
            resp = await self._genesys.request("PUT", f"{GENESYS_CONTACTS}/{quote(write.contact_id, safe='')}",
                                               json=body)
        if resp.status_code >= 400:
            raise genesys_failure(resp, f"contact {write.op}")
        return write.contact_id if write.op != "create" else resp.json()["id"]

    @activity.defn
    def store_sync_base(self, request: StoreBaseRequest) -> int:
        """The new base, its audit lines and the caller-ID index rows: one transaction."""
        info = activity.info()
        audit = audit_rows(info.workflow_id, info.workflow_run_id, request.salesforce_id, request.genesys_id,
                           [entry.model_dump() for entry in request.audit])
        stale = settle_with_patience(self._engine, [{
            "salesforce_id": request.salesforce_id, "genesys_id": request.genesys_id, "base": request.base,
            "expected_version": request.expected_version, "audit": audit,
            "index_record": request.index_record, "salesforce_deleted": request.salesforce_deleted,
        }], self._settings.default_region)
        if stale:
            raise ApplicationError("the pair's base changed since it was read", type="StaleBase",
                                   non_retryable=True)
        return 0 if request.base is None else request.expected_version + 1


    @activity.defn
    def record_sync_review(self, request: ReviewRequest) -> bool:
        from callbridge.store.sync_runs import add_review

        return add_review(self._engine, request.reason, request.genesys_id,
                          [request.salesforce_id, *request.candidates], request.detail,
                          activity.info().workflow_id)


def settle_with_patience(engine, items: list[dict[str, Any]], default_region: str) -> list[str]:
    """`sync_store.settle`, retried here on a busy SQLite ("database is locked" can come at once,
    when a read transaction must become a write one after another writer committed)."""
    import time

    from sqlalchemy.exc import OperationalError

    for attempt in range(8):
        try:
            return sync_store.settle(engine, items, default_region)
        except OperationalError:
            if attempt == 7:
                raise
            time.sleep(min(0.2 * 2 ** attempt, 5.0))
    return []


def audit_rows(workflow_id: str, run_id: str | None, sf_id: str | None, gc_id: str | None,
               entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """sync_audit rows: the steps' audit lines with who wrote them and for which pair (both paths)."""
    return [{**e, "workflow_id": workflow_id, "run_id": run_id, "salesforce_id": sf_id, "genesys_id": gc_id}
            for e in entries]
