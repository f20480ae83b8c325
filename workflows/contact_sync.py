"""ContactSyncWorkflow: one sync run, id `contact-sync` (a Temporal Schedule runs it; overlap SKIP).

Collect what changed on both sides since the watermarks (ids only: no contact data in this
history), settle each changed pair in its own SyncPairWorkflow (the per-pair lock), and move
the watermarks only when every pair of the run is done — a crash or a failed pair never skips
a change: the next run reads it again. Long runs continue as new every CHUNK pairs.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.workflow import ParentClosePolicy
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.sync import SyncRunActivities
    from callbridge.sync.models import (
        ChangeRequest,
        ContactSyncInput,
        ContactSyncResult,
        PairKey,
        SyncPairInput,
        SyncPairResult,
    )
    from workflows.sync_pair import SyncPairWorkflow

WORKFLOW_ID = "contact-sync"
SCHEDULE_ID = "contact-sync-every-interval"
CHUNK = 500
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1))

TALLY = {"create_in_genesys": "created", "create_in_salesforce": "created", "update": "updated",
         "delete_in_genesys": "deleted", "delete_in_salesforce": "deleted", "noop": "unchanged",
         "delete_conflict": "conflicts"}


@workflow.defn
class ContactSyncWorkflow:
    def __init__(self) -> None:
        self._settled: set[str] = set()

    @workflow.signal
    def pair_settled(self, pair_workflow_id: str) -> None:
        """A pair synced all but its `manual` conflicts, and waits for a decision on its own."""
        self._settled.add(pair_workflow_id)

    @workflow.run
    async def run(self, inp: ContactSyncInput) -> ContactSyncResult:
        started = workflow.now()
        changes = inp.pending
        result = inp.so_far or ContactSyncResult(dry_run=inp.dry_run)
        if changes is None:
            changes = await workflow.execute_activity_method(
                SyncRunActivities.collect_sync_changes,
                ChangeRequest(mode=inp.mode, full=inp.full, lookback_seconds=inp.lookback_seconds),
                start_to_close_timeout=timedelta(hours=1), heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RETRY,
            )
            result.salesforce_changes, result.genesys_changes = changes.salesforce_changes, changes.genesys_changes
            result.matched_by_email, result.ambiguous = changes.matched_by_email, changes.ambiguous
            result.pairs = len(changes.pairs)
            if inp.dry_run:
                return result

        now, later = changes.pairs[:CHUNK], changes.pairs[CHUNK:]
        sem = asyncio.Semaphore(inp.max_concurrent_pairs)
        outcomes = await asyncio.gather(*(self._settle(key, inp, sem) for key in now))
        for outcome in outcomes:
            if outcome is None:
                result.errors += 1
            else:
                name = TALLY.get(outcome.action)
                if name:
                    setattr(result, name, getattr(result, name) + 1)
                result.conflicts += len(outcome.conflicts)
        result.duration_seconds += (workflow.now() - started).total_seconds()
        if later:
            workflow.continue_as_new(ContactSyncInput(
                **{**inp.model_dump(), "pending": {**changes.model_dump(), "pairs": [k.model_dump() for k in later]},
                   "so_far": result.model_dump()}))
        if result.errors == 0:
            await workflow.execute_activity_method(
                SyncRunActivities.advance_sync_watermarks, changes,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY)
        return result

    async def _settle(self, key: PairKey, inp: ContactSyncInput, sem: asyncio.Semaphore) -> SyncPairResult | None:
        async with sem:
            while True:
                try:
                    handle = await workflow.start_child_workflow(
                        SyncPairWorkflow.run,
                        SyncPairInput(key=key, rules=inp.rules, mode=inp.mode, delete_handling=inp.delete_handling),
                        id=key.workflow_id, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                        # A pair waiting days for a conflict decision outlives this run.
                        parent_close_policy=ParentClosePolicy.ABANDON,
                    )
                    await workflow.wait_condition(lambda: handle.done() or key.workflow_id in self._settled)
                    if not handle.done():
                        return SyncPairResult(action="update", conflicts=["(waiting for a decision)"])
                    return await handle
                except WorkflowAlreadyStartedError:
                    # That pair is being synced on demand right now: let it finish, then run
                    # again so this run's change is read after it.
                    await workflow.sleep(timedelta(seconds=2))
                except ChildWorkflowError:
                    return None  # counted as an error; the watermark stays, the next run retries
