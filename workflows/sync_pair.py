"""SyncPairWorkflow: one contact pair made to agree, id `sync-pair-{salesforce id | genesys id}`.

The workflow id is the pair's lock: one run at a time per pair (the seed's Strategy 3). Read
both sides and the stored base, merge by the pure decision table, then apply the plan's steps
(callbridge/domain/sync/steps.py: the writes, the new base stored compare-and-swap) one activity each. A Salesforce record changed since it was read (412 on
If-Unmodified-Since) or a base stored by someone else means: read again, merge again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.sync_pair import SyncPairActivities
    from callbridge.domain.matching import parse_sf_datetime
    from callbridge.domain.sync.merge import Action, FieldRule, Pair, Plan, Side, merge, withhold_from_genesys
    from callbridge.domain.sync.steps import (
        CreateInGenesys,
        CreateInSalesforce,
        DeleteInGenesys,
        DeleteInSalesforce,
        SendToReview,
        StoreBase,
        UpdateGenesys,
        UpdateSalesforce,
        WriteLink,
        link_fields,
        plan_steps,
    )
    from callbridge.domain.sync.models import (
        ConflictDecision,
        ReviewRequest,
        GenesysWrite,
        PendingConflict,
        PairSnapshot,
        SalesforceWrite,
        StoreBaseRequest,
        SyncPairInput,
        SyncPairResult,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=60))
TIMEOUT = timedelta(seconds=30)
STALE = {"StaleRecord", "StaleBase"}
MAX_ROUNDS = 5
# The pair's read and its store write run as local activities (in the worker, recorded as
# markers): no activity task and no extra workflow task on the server each, which is what the
# per-pair path's speed is made of. The API writes stay ordinary activities (their own retries,
# timeouts and a place among the pending activities). Runs recorded before it replay as they ran.
LOCAL_STEPS = "sync-pair-local-read-and-store"
# A Salesforce write refused for good goes to the review list instead of failing the pair
# (runs recorded before it failed there, and replay as they ran).
REFUSED_TO_REVIEW = "sync-pair-refused-write-to-review"


def _refused_by_salesforce(err: ActivityError) -> bool:
    return err.activity_type == "write_salesforce_contact" and isinstance(err.cause, ApplicationError) \
        and err.cause.type == "SalesforceRejected"


# The base is stored (with the audit of what was written) after every write, also where it stays
# as it was: a link written again, a Genesys edit overwritten in one-way mode. Runs started
# before it skipped that store, and replay as they ran.
STORE_AFTER_EVERY_WRITE = "sync-pair-store-after-every-write"


# A change event (`callbridge listen`) that arrives after the pair was read means one more sync:
# a burst of edits collapses into at most two runs. Recorded runs never got the signal.
RESYNC_AFTER_CHANGE = "sync-pair-resync-after-change-signal"


@workflow.defn
class SyncPairWorkflow:
    def __init__(self) -> None:
        self._pending: list[PendingConflict] = []
        self._decisions: dict[str, str] = {}
        self._changes = 0  # salesforce_changed signals received
        self._changes_read = 0  # of those, how many the last read already saw

    @workflow.signal
    def salesforce_changed(self) -> None:
        self._changes += 1

    @workflow.signal
    def resolve(self, decision: ConflictDecision) -> None:
        self._decisions[decision.field] = decision.winner

    @workflow.query
    def conflicts(self) -> list[PendingConflict]:
        return self._pending

    @workflow.run
    async def run(self, inp: SyncPairInput) -> SyncPairResult:
        first_rules = [FieldRule(r.name, r.direction, r.policy) for r in inp.rules]
        result = await self._sync(inp, first_rules)
        for _ in range(MAX_ROUNDS):
            if not (self._changes > self._changes_read and workflow.patched(RESYNC_AFTER_CHANGE)):
                break
            result = await self._sync(inp, first_rules)  # edited again while we synced
        if not result.conflicts:
            return result
        # `manual` conflicts: the other fields are synced already; tell the run it may move on,
        # then wait durably for an operator's decision (`callbridge conflicts resolve`).
        await self._tell_parent_settled()
        fields = set(result.conflicts)
        try:
            await workflow.wait_condition(lambda: fields <= set(self._decisions),
                                          timeout=timedelta(days=inp.manual_deadline_days))
        except asyncio.TimeoutError:
            # Deadline passed: the fields stay as they are, the case goes to the review list.
            await workflow.execute_activity_method(
                SyncPairActivities.record_sync_review,
                ReviewRequest(reason="manual_deadline", salesforce_id=result.salesforce_id,
                              genesys_id=result.genesys_id,
                              detail=f"no decision within {inp.manual_deadline_days} days: {', '.join(sorted(fields))}"),
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            return result
        rules = [FieldRule(r.name, r.direction, self._decisions.get(r.name, r.policy)) for r in inp.rules]
        self._pending = []
        final = await self._sync(inp, rules)
        final.resolved = sorted(fields)
        return final

    async def _tell_parent_settled(self) -> None:
        parent = workflow.info().parent
        if parent is not None:
            await workflow.get_external_workflow_handle(parent.workflow_id, run_id=parent.run_id).signal(
                "pair_settled", workflow.info().workflow_id)

    def _step(self):
        """How the read and the store run: locally for runs started since LOCAL_STEPS."""
        if workflow.patched(LOCAL_STEPS):
            return workflow.execute_local_activity_method
        return workflow.execute_activity_method

    async def _sync(self, inp: SyncPairInput, rules: list[FieldRule]) -> SyncPairResult:
        for round_ in range(1, MAX_ROUNDS + 1):
            self._changes_read = self._changes
            snap = await self._step()(
                SyncPairActivities.load_sync_pair, inp.key, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
            plan = merge(
                Pair(base=snap.base, salesforce=snap.salesforce, genesys=snap.genesys,
                     salesforce_deleted=snap.salesforce_deleted, genesys_deleted=snap.genesys_deleted,
                     salesforce_modified=parse_sf_datetime(snap.salesforce_modified),
                     genesys_modified=parse_sf_datetime(snap.genesys_modified), erased=snap.erased),
                rules, mode=inp.mode, delete_handling=inp.delete_handling,
            )
            withheld = snap.no_consent and not snap.erased and plan.action is not Action.NOOP
            if snap.no_consent and not snap.erased:
                # No service consent, or withdrawn: nothing of theirs goes to Genesys (docs/privacy.md).
                plan = withhold_from_genesys(plan, snap.base)
            try:
                result = await self._apply(snap, plan)
                if withheld and plan.action is Action.NOOP:
                    result.action = "skip_no_consent"
            except ActivityError as err:
                if isinstance(err.cause, ApplicationError) and err.cause.type in STALE:
                    continue  # someone wrote in between: read again, merge again
                if _refused_by_salesforce(err) and workflow.patched(REFUSED_TO_REVIEW):
                    return await self._review_refusal(snap, err)
                raise
            result.attempts = round_
            self._pending = [PendingConflict(field=c.field, base=c.base, salesforce=c.salesforce, genesys=c.genesys)
                             for c in plan.conflicts]
            return result
        raise ApplicationError(f"the pair kept changing during {MAX_ROUNDS} rounds", non_retryable=True)

    async def _review_refusal(self, snap: PairSnapshot, err: ActivityError) -> SyncPairResult:
        """Salesforce refused the record for good (a permanent per-record error such as
        INVALID_EMAIL_ADDRESS): retrying can't help and failing would stall the whole run, so
        the pair goes to the review list. Its base stays as it was: the next run tries again."""
        message = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
        await workflow.execute_activity_method(
            SyncPairActivities.record_sync_review,
            ReviewRequest(reason="salesforce_refused", salesforce_id=snap.salesforce_id, genesys_id=snap.genesys_id,
                          detail=message),
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        return SyncPairResult(action="refused", salesforce_id=snap.salesforce_id, genesys_id=snap.genesys_id,
                              salesforce_requests=snap.salesforce_requests, genesys_requests=snap.genesys_requests)

    async def _sf(self, write: SalesforceWrite, result: SyncPairResult) -> str:
        done = await workflow.execute_activity_method(
            SyncPairActivities.write_salesforce_contact, write, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        result.salesforce_requests += done.salesforce_requests
        return done.id

    async def _gc(self, write: GenesysWrite, result: SyncPairResult) -> str:
        done = await workflow.execute_activity_method(
            SyncPairActivities.write_genesys_contact, write, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        result.genesys_requests += done.genesys_requests
        return done.id

    async def _store(self, step: StoreBase, sf_id: str, gc_id: str | None, snap: PairSnapshot, plan: Plan) -> None:
        index_record = None
        if step.salesforce_written is not None and not step.salesforce_deleted:
            index_record = {**(snap.index_record or {}), **step.salesforce_written, "Id": sf_id}
        await self._step()(
            SyncPairActivities.store_sync_base,
            StoreBaseRequest(salesforce_id=sf_id, genesys_id=gc_id or "", base=step.base, expected_version=snap.version,
                             audit=list(step.audit), action=plan.action.value, index_record=index_record,
                             salesforce_deleted=step.salesforce_deleted),
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY)

    async def _apply(self, snap: PairSnapshot, plan: Plan) -> SyncPairResult:
        """The plan's steps (callbridge/domain/sync/steps.py), one activity each, in their order."""
        sf_id, gc_id = snap.salesforce_id, snap.genesys_id
        result = SyncPairResult(action=plan.action.value, salesforce_id=sf_id, genesys_id=gc_id,
                                written_to_salesforce=sorted(plan.write_salesforce),
                                written_to_genesys=sorted(plan.write_genesys),
                                conflicts=[c.field for c in plan.conflicts],
                                salesforce_requests=snap.salesforce_requests, genesys_requests=snap.genesys_requests)
        for step in plan_steps(plan, snap):
            if isinstance(step, CreateInGenesys):
                gc_id = await self._gc(GenesysWrite(op="create", fields=dict(step.fields), link_salesforce_id=sf_id),
                                       result)
            elif isinstance(step, CreateInSalesforce):
                sf_id = await self._sf(SalesforceWrite(op="create", fields=dict(step.fields)), result)
            elif isinstance(step, (UpdateSalesforce, WriteLink)) and step.to is Side.SALESFORCE:
                fields = dict(step.fields) if isinstance(step, UpdateSalesforce) else link_fields(gc_id)
                await self._sf(SalesforceWrite(op="update", contact_id=sf_id, fields=fields,
                                               if_unmodified_since=step.unmodified_since), result)
            elif isinstance(step, (UpdateGenesys, WriteLink)):
                # The step's precondition (modifyDate as read) is checked by the bulk path's re-read
                # only: this write sends none, as before.
                fields = dict(step.fields) if isinstance(step, UpdateGenesys) else {}
                await self._gc(GenesysWrite(op="update", contact_id=gc_id, fields=fields, current=snap.genesys_raw,
                                            link_salesforce_id=sf_id), result)
            elif isinstance(step, DeleteInGenesys):
                await self._gc(GenesysWrite(op="delete", contact_id=gc_id), result)
            elif isinstance(step, DeleteInSalesforce):
                await self._sf(SalesforceWrite(op="delete", contact_id=sf_id), result)
            elif isinstance(step, StoreBase):
                if step.base_unchanged and not workflow.patched(STORE_AFTER_EVERY_WRITE):
                    continue  # a run started before it: no store where the base stayed as it was
                await self._store(step, sf_id, gc_id, snap, plan)
            elif isinstance(step, SendToReview):
                await workflow.execute_activity_method(
                    SyncPairActivities.record_sync_review,
                    ReviewRequest(reason=step.reason, salesforce_id=sf_id, genesys_id=gc_id, detail=step.detail),
                    start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        result.salesforce_id, result.genesys_id = sf_id, gc_id
        return result
