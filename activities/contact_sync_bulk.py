"""The bulk path of contact sync: one activity merges and writes a page of up to 200 pairs.

Per page: 1 Salesforce query and 1 Genesys bulk read for both records; the merge (the same
pure table as the per-pair path) and the same steps (callbridge/domain/sync/steps.py); a re-check of
the records the steps would overwrite (their preconditions: 1 + 1 request); then the steps of
every pair grouped into batched calls in `BATCH_ORDER` — sObject Collections (200 a request:
upsert by the Genesys id for creates, PATCH for updates and links, DELETE for deletes) and
Genesys bulk add/update/remove. Each pair's base, audit lines and caller-ID index rows are
stored compare-and-swap, all or nothing, where its steps say, so a retried page (the activity
heartbeats; a killed worker means a retry) re-reads and finds that work done instead of doing
it twice.

Pairs the bulk path can't settle go back to the workflow, for their own SyncPairWorkflow: a
`manual` conflict, a record changed between the read and the write, a write that failed, a
base someone else stored. Pairs whose SyncPairWorkflow is open are left to it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.metering import metering
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.query import query_records
from callbridge.clients.salesforce.errors import from_exception
from activities.sync_pair import audit_rows, settle_with_patience
from activities.contact_sync_records import GENESYS_BULK, SyncRecords, genesys_failure
from callbridge.domain.matching import parse_sf_datetime
from callbridge.core.settings import Settings
from callbridge.store import sync as sync_store
from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from callbridge.domain.sync.merge import Action, FieldRule, Pair, Plan, Side, merge, withhold_from_genesys
from callbridge.domain.sync.models import TALLY, PairKey, PairSnapshot, SyncPageInput, SyncPageResult
from callbridge.domain.sync.steps import (
    BATCH_ORDER,
    LINK_FIELD,
    Step,
    UpdateGenesys,
    UpdateSalesforce,
    batch_of,
    link_fields,
    plan_steps,
)

COLLECTIONS = "composite/sobjects"


@dataclass
class Work:
    """One pair of the page on its way through."""

    key: PairKey
    snap: PairSnapshot
    plan: Plan
    steps: tuple[Step, ...]
    sf_record: dict[str, Any] | None
    sf_id: str | None
    gc_id: str | None
    at: int = 0            # its next step
    settled: bool = False  # its base is stored (a create stays counted if its link write fails)

    @property
    def next(self) -> Step | None:
        return self.steps[self.at] if self.at < len(self.steps) else None


def error_status(res: dict[str, Any]) -> int | None:
    """A failed bulk result's HTTP status: in its `error` (BulkEntityError*), the result's own
    `status` only if the error carries none."""
    return (res.get("error") or {}).get("status") or res.get("status")


def _result_id(res: dict[str, Any]) -> str | None:
    """The contact an update/remove result is about: its `id`, else its entity's or the echoed
    request entity's."""
    entity = res.get("entity") if res.get("success") else (res.get("error") or {}).get("entity")
    return res.get("id") or (entity.get("id") if isinstance(entity, dict) else None)


class ContactSyncBulkActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection, settings: Settings) -> None:
        self._sf = salesforce
        self._genesys = genesys
        self._settings = settings
        self.records = SyncRecords(salesforce, genesys, settings)

    @property
    def _engine(self):
        return get_engine(self._settings.database_url)

    async def _open_pair_workflows(self) -> set[str]:
        query = "WorkflowType = 'SyncPairWorkflow' AND ExecutionStatus = 'Running'"
        return {w.id async for w in activity.client().list_workflows(query)}  # the worker's own client

    @activity.defn
    async def sync_contact_page(self, page: SyncPageInput) -> SyncPageResult:
        result = SyncPageResult()

        async def keep_beating() -> None:
            # Also while a request waits for the Genesys budget: only a dead worker stops this.
            while True:
                activity.heartbeat()
                await asyncio.sleep(2)

        beat = asyncio.ensure_future(keep_beating())
        try:
            with metering() as meter:
                await self._sync_page(page, result)
        finally:
            beat.cancel()
        result.salesforce_requests, result.genesys_requests = meter.salesforce, meter.genesys
        result.salesforce_share = meter.salesforce_share
        return result

    async def _sync_page(self, page: SyncPageInput, result: SyncPageResult) -> None:
        engine = self._engine
        rules = [FieldRule(r.name, r.direction, r.policy) for r in page.rules]
        page_keys = [PairKey(salesforce_id=sf, genesys_id=gc) for sf, gc in await asyncio.to_thread(
            sync_runs.run_pairs, engine, page.pairs.run_id, page.pairs.offset, page.pairs.limit)]
        open_ids = await self._open_pair_workflows()
        keys = [k for k in page_keys if k.workflow_id not in open_ids]
        # An open pair workflow owns its pair: the run waits for it (or leaves a pair waiting
        # for a decision), never writes under it.
        result.handoff += [k for k in page_keys if k.workflow_id in open_ids]

        # Read: the stored pairs, then both sides, one request each.
        stored = await asyncio.to_thread(sync_store.pairs_for, engine,
                                         [k.salesforce_id for k in keys if k.salesforce_id],
                                         [k.genesys_id for k in keys if k.genesys_id])
        by_sf = {p["salesforce_id"]: p for p in stored}
        by_gc = {p["genesys_id"]: p for p in stored}
        sf_records = await asyncio.to_thread(
            self.records.read_salesforce,
            [k.salesforce_id or by_gc.get(k.genesys_id, {}).get("salesforce_id") for k in keys
             if k.salesforce_id or k.genesys_id in by_gc])
        resolved = []
        for k in keys:
            pair = by_sf.get(k.salesforce_id) or by_gc.get(k.genesys_id)
            sf_id = k.salesforce_id or (pair or {}).get("salesforce_id")
            rec = sf_records.get(sf_id) if sf_id else None
            gc_id = k.genesys_id or (pair or {}).get("genesys_id") or (
                rec.get(LINK_FIELD) if rec and not rec.get("IsDeleted") else None)
            resolved.append((k, pair, sf_id, gc_id, rec))
        gc_contacts = await self.records.read_genesys([g for *_, g, _ in resolved if g])
        activity.heartbeat("read")

        snaps = [self.records.snapshot(sf_id, gc_id, pair, rec, gc_contacts.get(gc_id) if gc_id else None)
                 for k, pair, sf_id, gc_id, rec in resolved]
        await asyncio.to_thread(self.records.mark_erased, engine, snaps)
        work: list[Work] = []
        for (k, pair, sf_id, gc_id, rec), snap in zip(resolved, snaps):
            plan = merge(Pair(base=snap.base, salesforce=snap.salesforce, genesys=snap.genesys,
                              salesforce_deleted=snap.salesforce_deleted, genesys_deleted=snap.genesys_deleted,
                              salesforce_modified=parse_sf_datetime(snap.salesforce_modified),
                              genesys_modified=parse_sf_datetime(snap.genesys_modified), erased=snap.erased),
                         rules, mode=page.mode, delete_handling=page.delete_handling)
            if snap.no_consent and not snap.erased:
                # No service consent, or withdrawn: nothing of theirs goes to Genesys.
                before, plan = plan.action, withhold_from_genesys(plan, snap.base)
                if plan.action is Action.NOOP and before is not Action.NOOP:
                    result.skipped += 1
                    continue
            if plan.conflicts:
                result.handoff.append(k)  # a `manual` conflict waits in its own workflow
            else:
                work.append(Work(k, snap, plan, plan_steps(plan, snap), rec, sf_id, gc_id))

        await self._recheck(work, result)
        activity.heartbeat("checked")
        # One pass: each call takes the pairs whose next step it is, so every pair's steps run in
        # their own order (the per-pair path's), grouped.
        for batch in BATCH_ORDER:
            todo = [w for w in self._live(work, result) if w.next is not None and batch_of(w.next) == batch]
            if todo:
                await getattr(self, f"_{batch}")(todo, result, page)
                activity.heartbeat(batch)
        for w in work:
            if (w.next is None and w.key not in result.handoff) or w.settled:
                name = TALLY.get(w.plan.action.value, "unchanged")
                setattr(result, name, getattr(result, name) + 1)

    # -- the steps, one batched call each ---------------------------------------------------------

    def _handoff(self, w: Work, result: SyncPageResult) -> None:
        if w.key not in result.handoff:
            result.handoff.append(w.key)

    def _live(self, work: list[Work], result: SyncPageResult) -> list[Work]:
        return [w for w in work if w.key not in result.handoff]

    def _advance(self, todo: list[Work], result: SyncPageResult) -> None:
        for w in todo:
            if w.key not in result.handoff:
                w.at += 1

    async def _recheck(self, work: list[Work], result: SyncPageResult) -> None:
        """Collections and bulk calls have no If-Unmodified-Since: re-read the modification
        times the steps' preconditions name, and give a changed record to its workflow."""
        checks = [(w, s.to, s.unmodified_since) for w in work for s in w.steps
                  if getattr(s, "unmodified_since", None)]
        sf_checks = [(w, since) for w, to, since in checks if to is Side.SALESFORCE and w.sf_id]
        gc_checks = [(w, since) for w, to, since in checks if to is Side.GENESYS and w.gc_id]
        if sf_checks:
            soql = format_soql("SELECT Id, LastModifiedDate FROM Contact WHERE Id IN {}",
                               sorted({w.sf_id for w, _ in sf_checks}))
            now = {r["Id"]: r["LastModifiedDate"] for r in
                   await asyncio.to_thread(query_records, self._sf, soql, "queryAll", "contact re-check")}
            for w, since in sf_checks:
                if w.sf_id in now and now[w.sf_id] != since:
                    self._handoff(w, result)
        if gc_checks:
            now_gc = await self.records.read_genesys([w.gc_id for w, _ in gc_checks])
            for w, since in gc_checks:
                if w.gc_id in now_gc and now_gc[w.gc_id].get("modifyDate") != since:
                    self._handoff(w, result)

    async def _create_in_genesys(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        if activity.info().attempt > 1:
            # A retried page: an attempt that died after Genesys answered may have created some.
            for w in todo:
                w.gc_id = await self.records.find_created(w.sf_id)
            new = [w for w in todo if not w.gc_id]
        else:
            new = todo
        if new:
            # Matched by the Salesforce id each new contact carries, never by position.
            outcomes = await self._genesys_bulk_outcomes(
                "add", {w.sf_id: self.records.genesys_body(dict(w.next.fields), None, w.sf_id) for w in new},
                self._added_for)
            for w in new:
                res = outcomes.get(w.sf_id)
                if res is not None and res.get("success") and res.get("id"):
                    w.gc_id = res["id"]
                else:
                    self._handoff(w, result)  # its own workflow finds or creates it, and reports
        self._advance(todo, result)

    async def _create_in_salesforce(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        # An upsert on the Genesys id (the fields hold the link): a retried page finds the
        # contacts it created.
        records = [{"attributes": {"type": "Contact"}, **w.next.fields} for w in todo]
        ids = await self._salesforce_collection("PATCH", f"{COLLECTIONS}/Contact/{LINK_FIELD}", records, todo,
                                                result)
        for w, sf_id in zip(todo, ids):
            if sf_id:
                w.sf_id = sf_id
        self._advance(todo, result)

    async def _store(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        """Bases, audit and caller-ID index rows of the pairs whose writes before are done."""
        run_id = page.run_id or activity.info().workflow_run_id
        items = []
        for w in todo:
            step = w.next
            gc_id = w.gc_id or ""
            index = None if step.salesforce_written is None or step.salesforce_deleted else \
                self.records.index_record(w.sf_record, dict(step.salesforce_written), w.sf_id)
            items.append({
                "salesforce_id": w.sf_id, "genesys_id": gc_id, "expected_version": w.snap.version,
                "base": None if step.base is None else dict(step.base),
                "audit": audit_rows(page.workflow_id, run_id, w.sf_id, gc_id, [a.model_dump() for a in step.audit]),
                "index_record": index, "salesforce_deleted": step.salesforce_deleted,
            })
        stale = set(await asyncio.to_thread(settle_with_patience, self._engine, items,
                                            self._settings.default_region))
        for w in todo:
            if w.sf_id in stale:
                self._handoff(w, result)  # someone stored a newer base: re-read in its own workflow
            else:
                w.settled = True
        self._advance(todo, result)

    async def _write_salesforce(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        """Field updates and links of existing contacts: one collection PATCH."""
        rows = [{"attributes": {"type": "Contact"}, "id": w.sf_id,
                 **(dict(w.next.fields) if isinstance(w.next, UpdateSalesforce) else link_fields(w.gc_id))}
                for w in todo]
        await self._salesforce_collection("PATCH", COLLECTIONS, rows, todo, result)
        self._advance(todo, result)

    async def _write_genesys(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        """Field updates and links of existing contacts: one bulk update (whole contacts, as read,
        each carrying the link)."""
        rows = [{"id": w.gc_id, **self.records.genesys_body(
                    dict(w.next.fields) if isinstance(w.next, UpdateGenesys) else {}, w.snap.genesys_raw, w.sf_id)}
                for w in todo]
        await self._genesys_bulk("update", {"entities": rows}, todo, result)
        self._advance(todo, result)

    async def _delete_in_salesforce(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        ids = ",".join(w.sf_id for w in todo)
        try:
            answer = await asyncio.to_thread(self._sf.restful, COLLECTIONS, method="DELETE",
                                             params={"ids": ids, "allOrNone": "false"})
        except SalesforceError as exc:
            raise from_exception(exc, "contact bulk delete") from None
        for w, res in zip(todo, answer):
            codes = {e.get("statusCode") for e in res.get("errors", [])}
            if not res.get("success") and not codes & {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"}:
                self._handoff(w, result)
        self._advance(todo, result)

    async def _delete_in_genesys(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        await self._genesys_bulk("remove", {"entities": [{"id": w.gc_id} for w in todo]}, todo, result,
                                 missing_ok=True)
        self._advance(todo, result)

    async def _review(self, todo: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        workflow_id = activity.info().workflow_id
        for w in todo:
            await asyncio.to_thread(sync_runs.add_review, self._engine, w.next.reason, w.gc_id, [w.sf_id or ""],
                                    w.next.detail, workflow_id)
        self._advance(todo, result)

    # -- batched calls --------------------------------------------------------------------------

    async def _salesforce_collection(self, method: str, path: str, records: list[dict[str, Any]],
                                     work: list[Work], result: SyncPageResult) -> list[str | None]:
        try:
            answer = await asyncio.to_thread(self._sf.restful, path, method=method,
                                             json={"allOrNone": False, "records": records})
        except SalesforceError as exc:
            raise from_exception(exc, "contact collection write") from None
        ids: list[str | None] = []
        for w, res in zip(work, answer):
            if res.get("success"):
                ids.append(res.get("id"))
            else:
                ids.append(None)
                self._handoff(w, result)  # its own workflow retries it and reports the error
        return ids

    async def _genesys_bulk(self, op: str, body: dict[str, Any], work: list[Work], result: SyncPageResult,
                            missing_ok: bool = False) -> None:
        """A bulk update or remove of these pairs' Genesys contacts; each result is read by the
        contact id it names, since Genesys may answer in any order."""
        outcomes = await self._genesys_bulk_outcomes(op, {e["id"]: e for e in body["entities"]}, _result_id)
        for w in work:
            res = outcomes.get(w.gc_id)
            if res is None or not res.get("success") and not (missing_ok and error_status(res) == 404):
                self._handoff(w, result)

    async def _genesys_bulk_outcomes(self, op: str, entities: dict[str, dict[str, Any]],
                                     key_of: Callable[[dict[str, Any]], str | None]) -> dict[str, dict[str, Any]]:
        """POST a bulk add/update/remove and return its results by key (the request's own key for
        each entity). Entities whose error says `retryable` are sent once more."""
        path = f"{GENESYS_BULK}/{op}"
        outcomes: dict[str, dict[str, Any]] = {}
        pending = dict(entities)
        for attempt in range(2):
            resp = await self._genesys.request("POST", path, json={"entities": list(pending.values())})
            if resp.status_code >= 400:
                raise genesys_failure(resp, f"bulk contact {op}")
            for res in resp.json().get("results") or []:
                key = key_of(res)
                if key in pending:
                    outcomes[key] = res
            pending = {k: e for k, e in pending.items()
                       if k in outcomes and not outcomes[k].get("success")
                       and (outcomes[k].get("error") or {}).get("retryable") is True}
            if not pending:
                break
            await asyncio.sleep(1 + attempt)  # a retryable error: the entity's own second chance
        return outcomes

    def _added_for(self, res: dict[str, Any]) -> str | None:
        """The Salesforce id an add result belongs to: the link on the created contact, or on the
        request entity a failure echoes back."""
        entity = res.get("entity") if res.get("success") else (res.get("error") or {}).get("entity")
        return self.records.linked_salesforce_id(entity) if isinstance(entity, dict) else None
