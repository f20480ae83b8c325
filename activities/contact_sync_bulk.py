"""The bulk path of contact sync: one activity merges and writes a page of up to 200 pairs.

Per page: 1 Salesforce query and 1 Genesys bulk read for both records; the merge (the same
pure table as the per-pair path); a re-check of the records about to be overwritten (1 + 1
request); then batched writes — sObject Collections (200 a request: upsert by the Genesys id
for creates, PATCH for updates, DELETE for deletes) and Genesys bulk add/update/remove. Each
pair's base, audit lines and caller-ID index rows are stored compare-and-swap, all or nothing,
as soon as its writes are done, so a retried page (the activity heartbeats; a killed worker
means a retry) re-reads and finds that work done instead of doing it twice.

Pairs the bulk path can't settle go back to the workflow, for their own SyncPairWorkflow: a
`manual` conflict, a record changed between the read and the write, a write that failed, a
base someone else stored. Pairs whose SyncPairWorkflow is open are left to it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.metering import metering
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.query import query_records
from callbridge.clients.salesforce.errors import from_exception
from activities.sync_pair import settle_with_patience
from activities.contact_sync_records import GENESYS_BULK, LINK_FIELD, SyncRecords, genesys_failure
from callbridge.domain.matching import parse_sf_datetime
from callbridge.core.settings import Settings
from callbridge.store import sync as sync_store
from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from callbridge.domain.sync.merge import Action, FieldRule, Pair, Plan, merge, withhold_from_genesys
from callbridge.domain.sync.models import TALLY, PairKey, PairSnapshot, SyncPageInput, SyncPageResult

COLLECTIONS = "composite/sobjects"


@dataclass
class Work:
    """One pair of the page on its way through."""

    key: PairKey
    snap: PairSnapshot
    plan: Plan
    sf_record: dict[str, Any] | None
    sf_id: str | None
    gc_id: str | None
    done: bool = False
    settled: bool = False  # its base is stored (a create stays counted if its link write fails)
    written_sf: dict[str, Any] = field(default_factory=dict)


def error_status(res: dict[str, Any]) -> int | None:
    """A failed bulk result's HTTP status: in its `error` (BulkEntityError*), the result's own
    `status` only if the error carries none."""
    return (res.get("error") or {}).get("status") or res.get("status")


def _result_id(res: dict[str, Any]) -> str | None:
    """The contact an update/remove result is about: its `id`, else its entity's or the echoed
    request entity's."""
    entity = res.get("entity") if res.get("success") else (res.get("error") or {}).get("entity")
    return res.get("id") or (entity.get("id") if isinstance(entity, dict) else None)


class SyncBulkActivities:
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
        info = activity.info()
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
            elif plan.action is Action.SKIP_ERASED:
                result.skipped += 1
            elif plan.action is Action.DELETE_CONFLICT:
                result.conflicts += 1
                sync_runs.add_review(engine, "delete_conflict", gc_id, [sf_id or ""],
                                     "deleted in Salesforce, edited in Genesys" if snap.salesforce_deleted
                                     else "deleted in Genesys, edited in Salesforce", info.workflow_id)
            else:
                work.append(Work(k, snap, plan, rec, sf_id, gc_id))

        await self._recheck(work, result)
        activity.heartbeat("checked")
        await self._create_in_genesys(work, result, page)
        await self._create_in_salesforce(work, result, page)
        activity.heartbeat("created")
        await self._update(work, result)
        await self._delete(work, result)
        activity.heartbeat("written")
        await self._settle([w for w in work if not w.done and w.key not in result.handoff], result, page)
        for w in work:
            if w.done or w.settled:
                name = TALLY.get(w.plan.action.value, "unchanged")
                setattr(result, name, getattr(result, name) + 1)

    # -- the steps ------------------------------------------------------------------------------

    def _handoff(self, w: Work, result: SyncPageResult) -> None:
        if w.key not in result.handoff:
            result.handoff.append(w.key)

    def _live(self, work: list[Work], result: SyncPageResult) -> list[Work]:
        return [w for w in work if not w.done and w.key not in result.handoff]

    async def _recheck(self, work: list[Work], result: SyncPageResult) -> None:
        """Collections and bulk calls have no If-Unmodified-Since: re-read the modification
        times of the records about to be overwritten, and give a changed one to its workflow."""
        sf_ids = [w.sf_id for w in work if w.sf_id and (w.plan.write_salesforce or w.plan.action
                                                        is Action.DELETE_IN_SALESFORCE)]
        gc_ids = [w.gc_id for w in work if w.gc_id and (w.plan.write_genesys or w.plan.action
                                                        is Action.DELETE_IN_GENESYS)]
        if sf_ids:
            soql = format_soql("SELECT Id, LastModifiedDate FROM Contact WHERE Id IN {}", sorted(set(sf_ids)))
            now = {r["Id"]: r["LastModifiedDate"] for r in
                   await asyncio.to_thread(query_records, self._sf, soql, "queryAll", "contact re-check")}
            for w in work:
                if w.sf_id in now and w.sf_id in sf_ids and now[w.sf_id] != w.snap.salesforce_modified:
                    self._handoff(w, result)
        if gc_ids:
            now_gc = await self.records.read_genesys(gc_ids)
            for w in work:
                if w.gc_id in gc_ids and w.gc_id in now_gc and \
                        now_gc[w.gc_id].get("modifyDate") != w.snap.genesys_modified:
                    self._handoff(w, result)

    async def _create_in_genesys(self, work: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        todo = [w for w in self._live(work, result) if w.plan.action is Action.CREATE_IN_GENESYS]
        if not todo:
            return
        if activity.info().attempt > 1:
            # A retried page: an attempt that died after Genesys answered may have created some.
            for w in todo:
                w.gc_id = await self.records.find_created(w.sf_id)
            adopted = [w for w in todo if w.gc_id]
            todo = [w for w in todo if not w.gc_id]
        else:
            adopted = []
        if todo:
            # Matched by the Salesforce id each new contact carries, never by position.
            outcomes = await self._genesys_bulk_outcomes(
                "add", {w.sf_id: self.records.genesys_body(w.plan.write_genesys, None, w.sf_id) for w in todo},
                self._added_for)
            for w in todo:
                res = outcomes.get(w.sf_id)
                if res is not None and res.get("success") and res.get("id"):
                    w.gc_id = res["id"]
                else:
                    self._handoff(w, result)  # its own workflow finds or creates it, and reports
        created = adopted + [w for w in todo if w.key not in result.handoff]
        # Store the pairs at once: a crash before the Salesforce links are written then finds
        # the pairs linked (and writes the links), instead of creating the contacts again.
        await self._settle(created, result, page)
        for w in created:
            w.done = False
            w.written_sf = {LINK_FIELD: w.gc_id}
        if created:
            await self._salesforce_collection("PATCH", COLLECTIONS, [
                {"attributes": {"type": "Contact"}, "id": w.sf_id, LINK_FIELD: w.gc_id} for w in created],
                created, result)
            for w in created:
                if w.key not in result.handoff:
                    w.done = True

    async def _create_in_salesforce(self, work: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        todo = [w for w in self._live(work, result) if w.plan.action is Action.CREATE_IN_SALESFORCE]
        if not todo:
            return
        records = []
        for w in todo:
            fields = {**w.plan.write_salesforce}
            fields["LastName"] = fields.get("LastName") or "Unknown"  # required in Salesforce
            w.written_sf = {**fields, LINK_FIELD: w.gc_id}
            records.append({"attributes": {"type": "Contact"}, **fields, LINK_FIELD: w.gc_id})
        # An upsert on the Genesys id: a retried page finds the contacts it created.
        ids = await self._salesforce_collection("PATCH", f"{COLLECTIONS}/Contact/{LINK_FIELD}", records, todo,
                                                result)
        for w, sf_id in zip(todo, ids):
            if sf_id:
                w.sf_id = sf_id
        created = [w for w in todo if w.key not in result.handoff]
        await self._settle(created, result, page)
        live = [w for w in created if w.key not in result.handoff]
        if live:
            body = {"entities": [{"id": w.gc_id, **self.records.genesys_body({}, w.snap.genesys_raw, w.sf_id)}
                                 for w in live]}
            await self._genesys_bulk("update", body, live, result)
        for w in live:
            if w.key not in result.handoff:
                w.done = True

    async def _update(self, work: list[Work], result: SyncPageResult) -> None:
        todo = [w for w in self._live(work, result) if w.plan.action in (Action.UPDATE, Action.NOOP)
                and w.snap.salesforce is not None and w.snap.genesys is not None]
        sf_rows, sf_work, gc_rows, gc_work = [], [], [], []
        for w in todo:
            fields = dict(w.plan.write_salesforce)
            if not w.snap.salesforce_link_ok:
                fields[LINK_FIELD] = w.gc_id
            if fields:
                w.written_sf = fields
                sf_rows.append({"attributes": {"type": "Contact"}, "id": w.sf_id, **fields})
                sf_work.append(w)
            if w.plan.write_genesys or not w.snap.genesys_link_ok:
                gc_rows.append({"id": w.gc_id, **self.records.genesys_body(w.plan.write_genesys, w.snap.genesys_raw,
                                                                          w.sf_id)})
                gc_work.append(w)
        if sf_rows:
            await self._salesforce_collection("PATCH", COLLECTIONS, sf_rows, sf_work, result)
        if gc_rows:
            await self._genesys_bulk("update", {"entities": gc_rows}, gc_work, result)
        for w in todo:
            if w.key not in result.handoff and w.plan.new_base is not None \
                    and w.plan.new_base == w.snap.base and w.snap.version and not w.written_sf \
                    and w not in gc_work:
                w.done = True  # nothing to write, nothing to store

    async def _delete(self, work: list[Work], result: SyncPageResult) -> None:
        live = self._live(work, result)
        in_sf = [w for w in live if w.plan.action is Action.DELETE_IN_SALESFORCE]
        in_gc = [w for w in live if w.plan.action is Action.DELETE_IN_GENESYS]
        if in_sf:
            ids = ",".join(w.sf_id for w in in_sf)
            try:
                answer = await asyncio.to_thread(self._sf.restful, COLLECTIONS, method="DELETE",
                                                 params={"ids": ids, "allOrNone": "false"})
            except SalesforceError as exc:
                raise from_exception(exc, "contact bulk delete") from None
            for w, res in zip(in_sf, answer):
                codes = {e.get("statusCode") for e in res.get("errors", [])}
                if not res.get("success") and not codes & {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"}:
                    self._handoff(w, result)
        if in_gc:
            await self._genesys_bulk("remove", {"entities": [{"id": w.gc_id} for w in in_gc]}, in_gc, result,
                                     missing_ok=True)

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

    async def _settle(self, work: list[Work], result: SyncPageResult, page: SyncPageInput) -> None:
        """Bases, audit and caller-ID index rows of the pairs whose writes are done."""
        info = activity.info()
        items = []
        for w in work:
            if w.key in result.handoff or not w.sf_id or not w.gc_id:
                continue
            action = w.plan.action
            deleted = action in (Action.DELETE_IN_GENESYS, Action.DELETE_IN_SALESFORCE, Action.FORGET, Action.UNLINK)
            audit = [{"action": action.value, "field": c.field, "old": c.old, "new": c.new,
                      "written_to": c.to.value, "reason": c.reason} for c in w.plan.changes] or \
                [{"action": action.value, "reason": "link written" if action is Action.UPDATE else action.value}]
            sf_gone = action is Action.DELETE_IN_SALESFORCE or w.snap.salesforce_deleted
            items.append({
                "salesforce_id": w.sf_id, "genesys_id": w.gc_id, "expected_version": w.snap.version,
                "base": None if deleted else w.plan.new_base,
                "audit": [{**a, "workflow_id": page.workflow_id, "run_id": page.run_id or info.workflow_run_id,
                           "salesforce_id": w.sf_id, "genesys_id": w.gc_id} for a in audit],
                "index_record": None if sf_gone else self.records.index_record(w.sf_record, w.written_sf, w.sf_id),
                "salesforce_deleted": sf_gone,
            })
            w.done = True
        if not items:
            return
        stale = set(await asyncio.to_thread(settle_with_patience, self._engine, items,
                                            self._settings.default_region))
        for w in work:
            if w.sf_id in stale:
                w.done = False
                self._handoff(w, result)
            elif w.done:
                w.settled = True  # someone stored a newer base: re-read in its own workflow
