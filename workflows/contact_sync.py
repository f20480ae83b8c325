"""ContactSyncWorkflow: one sync run, id `contact-sync` (a Temporal Schedule runs it; overlap SKIP).

Collect what changed on both sides since the watermarks (the pair ids wait in the state store:
no contact data, and no 100k-id lists, in this history), then settle every changed pair on one
of two paths:

- per pair (up to `bulk_threshold` changes): each pair in its own SyncPairWorkflow, the
  per-pair lock, `max_concurrent_pairs` at a time;
- bulk (above the threshold, and always for the initial load): pages of up to 200 pairs, each
  merged and written by one heartbeating activity with batched API calls; the pairs a page
  can't settle (a `manual` conflict, a record changed under it, a failed write) go to their
  own SyncPairWorkflow.

The watermarks move only when every pair of the run is done — a crash or a failed pair never
skips a change: the next run reads it again. A run stops cleanly (watermarks kept) when
Salesforce's daily allowance reaches its configured share. Long runs continue as new.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.contact_sync_bulk import ContactSyncBulkActivities
    from activities.contact_sync import ContactSyncActivities
    from callbridge.domain.sync.models import (
        TALLY,
        ChangeRequest,
        ContactSyncInput,
        ContactSyncResult,
        PairKey,
        PairRange,
        SyncPageInput,
        SyncPageResult,
        SyncPairInput,
        SyncPairResult,
        SyncRunFinish,
        SyncRunStart,
    )
    from workflows.sync_pair import SyncPairWorkflow

WORKFLOW_ID = "contact-sync"
SCHEDULE_ID = "contact-sync-every-interval"
CHUNK = 500          # per-pair path: pairs per continue-as-new
BULK_CHUNK = 200     # bulk path: pages per continue-as-new
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1))
SHORT = timedelta(seconds=30)



@workflow.defn
class ContactSyncWorkflow:
    def __init__(self) -> None:
        self._settled: set[str] = set()
        self._progress = {"done": 0, "total": 0}

    @workflow.signal
    def pair_settled(self, pair_workflow_id: str) -> None:
        """A pair synced all but its `manual` conflicts, and waits for a decision on its own."""
        self._settled.add(pair_workflow_id)

    @workflow.query
    def progress(self) -> dict:
        """Pairs settled so far and the run's total, for `callbridge sync run`'s progress bar."""
        return self._progress

    @workflow.run
    async def run(self, inp: ContactSyncInput) -> ContactSyncResult:
        started = workflow.now()
        run_id = inp.run_id or workflow.info().run_id
        result = inp.so_far or ContactSyncResult(dry_run=inp.dry_run)
        changes = inp.pending
        if changes is None:
            changes = await workflow.execute_activity_method(
                ContactSyncActivities.collect_sync_changes,
                ChangeRequest(mode=inp.mode, full=inp.full, lookback_seconds=inp.lookback_seconds,
                              matching=inp.matching, workflow_id=workflow.info().workflow_id, run_id=run_id,
                              rules=inp.rules),
                start_to_close_timeout=timedelta(hours=2), heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
            )
            for name in ("salesforce_changes", "genesys_changes", "matched_by_email", "matched_by_phone",
                         "matched_by_name", "ambiguous", "salesforce_requests", "genesys_requests"):
                setattr(result, name, getattr(result, name) + getattr(changes, name))
            result.pairs = changes.pair_count
            if inp.dry_run:
                return result
            result.path = inp.force_path or (
                "bulk" if changes.initial or changes.pair_count > inp.bulk_threshold else "per_pair")
            await workflow.execute_activity_method(
                ContactSyncActivities.start_sync_run,
                SyncRunStart(run_id=run_id, workflow_id=workflow.info().workflow_id, mode=inp.mode, path=result.path),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
        self._progress = {"done": inp.offset, "total": changes.pair_count}

        if result.path == "bulk":
            offset = await self._bulk(inp, changes.pair_count, run_id, result)
        else:
            offset = await self._per_pair(inp, changes.pair_count, run_id, result)
        result.duration_seconds += (workflow.now() - started).total_seconds()
        if offset < changes.pair_count and not result.stopped:
            workflow.continue_as_new(inp.model_copy(update={"pending": changes, "offset": offset,
                                                            "so_far": result, "run_id": run_id}))
        done = result.errors == 0 and not result.stopped
        result.health_score = await workflow.execute_activity_method(
            ContactSyncActivities.finish_sync_run,
            SyncRunFinish(run_id=run_id, result=result, changes=changes if done else None, alerts=inp.alerts),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        return result

    # -- the bulk path ------------------------------------------------------------------------------

    async def _bulk(self, inp: ContactSyncInput, total: int, run_id: str, result: ContactSyncResult) -> int:
        offsets = list(range(inp.offset, total, inp.page_size))[:BULK_CHUNK]
        sem = asyncio.Semaphore(inp.max_concurrent_pages)
        stop = asyncio.Event()  # the allowance: no new page once it's reached

        async def one(offset: int) -> None:
            async with sem:
                if stop.is_set():
                    return
                try:
                    page = await workflow.execute_activity_method(
                        ContactSyncBulkActivities.sync_contact_page,
                        SyncPageInput(pairs=PairRange(run_id=run_id, offset=offset, limit=inp.page_size),
                                      rules=inp.rules, mode=inp.mode, delete_handling=inp.delete_handling,
                                      workflow_id=workflow.info().workflow_id, run_id=run_id),
                        start_to_close_timeout=timedelta(minutes=30),
                        heartbeat_timeout=timedelta(seconds=inp.page_heartbeat_seconds),
                        retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2),
                                                 maximum_interval=timedelta(minutes=1), maximum_attempts=10))
                except ActivityError:
                    result.errors += min(inp.page_size, total - offset)
                    return
                result.add(page)
                self._progress["done"] += min(inp.page_size, total - offset) - len(page.handoff)
                if page.salesforce_share is not None and page.salesforce_share >= inp.allowance_share:
                    result.stopped = f"Salesforce daily allowance at {page.salesforce_share:.0%}"
                    stop.set()
                handed = await asyncio.gather(*(self._settle(k, inp, asyncio.Semaphore(4)) for k in page.handoff))
                self._tally_pairs(handed, result)

        await asyncio.gather(*(one(o) for o in offsets))
        return offsets[-1] + inp.page_size if offsets else total

    # -- the per-pair path --------------------------------------------------------------------------

    async def _per_pair(self, inp: ContactSyncInput, total: int, run_id: str, result: ContactSyncResult) -> int:
        if inp.offset < total:
            check = await workflow.execute_activity_method(
                ContactSyncActivities.check_salesforce_allowance, start_to_close_timeout=SHORT, retry_policy=RETRY)
            if check.share is not None and check.share >= inp.allowance_share:
                result.stopped = f"Salesforce daily allowance at {check.share:.0%}"
                return inp.offset
        keys = await workflow.execute_activity_method(
            ContactSyncActivities.load_run_pairs, PairRange(run_id=run_id, offset=inp.offset, limit=CHUNK),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        sem = asyncio.Semaphore(inp.max_concurrent_pairs)
        outcomes = await asyncio.gather(*(self._settle(key, inp, sem) for key in keys))
        self._tally_pairs(outcomes, result)
        return inp.offset + CHUNK

    def _tally_pairs(self, outcomes: list[SyncPairResult | None], result: ContactSyncResult) -> None:
        for outcome in outcomes:
            self._progress["done"] += 1
            if outcome is None:
                result.errors += 1
                continue
            name = TALLY.get(outcome.action)
            if name:
                setattr(result, name, getattr(result, name) + 1)
            result.conflicts += len(outcome.conflicts)
            result.salesforce_requests += outcome.salesforce_requests
            result.genesys_requests += outcome.genesys_requests

    async def _settle(self, key: PairKey, inp: ContactSyncInput, sem: asyncio.Semaphore) -> SyncPairResult | None:
        async with sem:
            while True:
                try:
                    handle = await workflow.start_child_workflow(
                        SyncPairWorkflow.run,
                        SyncPairInput(key=key, rules=inp.rules, mode=inp.mode, delete_handling=inp.delete_handling,
                                      manual_deadline_days=inp.manual_deadline_days),
                        id=key.workflow_id, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                        # A pair waiting days for a conflict decision outlives this run.
                        parent_close_policy=ParentClosePolicy.ABANDON,
                    )
                    await workflow.wait_condition(lambda: handle.done() or key.workflow_id in self._settled)
                    if not handle.done():
                        return SyncPairResult(action="update", conflicts=["(waiting for a decision)"])
                    return await handle
                except WorkflowAlreadyStartedError:
                    if await workflow.execute_activity_method(
                            ContactSyncActivities.pair_waits_for_decision, key.workflow_id,
                            start_to_close_timeout=SHORT, retry_policy=RETRY):
                        # It reads both sides afresh once decided: nothing is lost by moving on.
                        return SyncPairResult(action="noop", conflicts=["(waiting for a decision)"])
                    # Synced on demand right now: let it finish, then run again so this run's
                    # change is read after it.
                    await workflow.sleep(timedelta(seconds=2))
                except ChildWorkflowError:
                    return None  # counted as an error; the watermark stays, the next run retries
