"""SyncPairWorkflow: one contact pair made to agree, id `sync-pair-{salesforce id | genesys id}`.

The workflow id is the pair's lock: one run at a time per pair (the seed's Strategy 3). Read
both sides and the stored base, merge by the pure decision table, write what the plan says,
then store the new base compare-and-swap. A Salesforce record changed since it was read (412 on
If-Unmodified-Since) or a base stored by someone else means: read again, merge again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.sync_pair import SyncActivities
    from callbridge.domain.matching import parse_sf_datetime
    from callbridge.domain.sync.merge import Action, FieldRule, Pair, Plan, merge, withhold_from_genesys
    from activities.contact_sync_records import LINK_FIELD
    from callbridge.domain.sync.models import (
        AuditEntry,
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
                SyncActivities.record_sync_review,
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
                SyncActivities.load_sync_pair, inp.key, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
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
            SyncActivities.record_sync_review,
            ReviewRequest(reason="salesforce_refused", salesforce_id=snap.salesforce_id, genesys_id=snap.genesys_id,
                          detail=message),
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        return SyncPairResult(action="refused", salesforce_id=snap.salesforce_id, genesys_id=snap.genesys_id,
                              salesforce_requests=snap.salesforce_requests, genesys_requests=snap.genesys_requests)

    async def _sf(self, write: SalesforceWrite, result: SyncPairResult) -> str:
        done = await workflow.execute_activity_method(
            SyncActivities.write_salesforce_contact, write, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        result.salesforce_requests += done.salesforce_requests
        return done.id

    async def _gc(self, write: GenesysWrite, result: SyncPairResult) -> str:
        done = await workflow.execute_activity_method(
            SyncActivities.write_genesys_contact, write, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        result.genesys_requests += done.genesys_requests
        return done.id

    async def _store(self, sf_id: str, gc_id: str, base: dict | None, snap: PairSnapshot, plan: Plan,
                     written_to_salesforce: dict | None = None) -> None:
        audit = [AuditEntry(action=plan.action.value, field=c.field, old=c.old, new=c.new, written_to=c.to.value,
                            reason=c.reason) for c in plan.changes]
        if not audit and plan.action is not Action.NOOP:
            audit = [AuditEntry(action=plan.action.value, reason=REASONS.get(plan.action, ""))]
        index_record = None
        if written_to_salesforce is not None and plan.action not in (Action.DELETE_IN_SALESFORCE,):
            index_record = {**(snap.index_record or {}), **written_to_salesforce, "Id": sf_id}
        await self._step()(
            SyncActivities.store_sync_base,
            StoreBaseRequest(salesforce_id=sf_id, genesys_id=gc_id, base=base, expected_version=snap.version,
                             audit=audit, action=plan.action.value, index_record=index_record,
                             salesforce_deleted=plan.action is Action.DELETE_IN_SALESFORCE or snap.salesforce_deleted),
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY)

    async def _apply(self, snap: PairSnapshot, plan: Plan) -> SyncPairResult:
        sf_id, gc_id = snap.salesforce_id, snap.genesys_id
        result = SyncPairResult(action=plan.action.value, salesforce_id=sf_id, genesys_id=gc_id,
                                written_to_salesforce=sorted(plan.write_salesforce),
                                written_to_genesys=sorted(plan.write_genesys),
                                conflicts=[c.field for c in plan.conflicts],
                                salesforce_requests=snap.salesforce_requests, genesys_requests=snap.genesys_requests)
        action = plan.action
        if action is Action.CREATE_IN_GENESYS:
            gc_id = await self._gc(GenesysWrite(op="create", fields=plan.write_genesys, link_salesforce_id=sf_id),
                                   result)
            # The base first: a crash before the Salesforce link is written then finds the pair
            # linked and writes the link again, instead of creating a second Genesys contact.
            await self._store(sf_id, gc_id, plan.new_base, snap, plan, written_to_salesforce={})
            await self._sf(SalesforceWrite(op="update", contact_id=sf_id, fields={LINK_FIELD: gc_id}), result)
        elif action is Action.CREATE_IN_SALESFORCE:
            fields = {**plan.write_salesforce, LINK_FIELD: gc_id}
            fields["LastName"] = fields.get("LastName") or "Unknown"  # required in Salesforce
            sf_id = await self._sf(SalesforceWrite(op="create", fields=fields), result)
            await self._store(sf_id, gc_id, plan.new_base, snap, plan, written_to_salesforce=fields)
            await self._gc(GenesysWrite(op="update", contact_id=gc_id, current=snap.genesys_raw,
                                        link_salesforce_id=sf_id), result)
        elif action in (Action.UPDATE, Action.NOOP) and snap.salesforce is not None and snap.genesys is not None:
            sf_fields = dict(plan.write_salesforce)
            if gc_id and not snap.salesforce_link_ok:
                sf_fields[LINK_FIELD] = gc_id  # matched this run, or a link lost: write it
            if sf_fields:
                await self._sf(SalesforceWrite(op="update", contact_id=sf_id, fields=sf_fields,
                                               if_unmodified_since=snap.salesforce_modified), result)
            if plan.write_genesys or (sf_id and not snap.genesys_link_ok):
                await self._gc(GenesysWrite(op="update", contact_id=gc_id, fields=plan.write_genesys,
                                            current=snap.genesys_raw, link_salesforce_id=sf_id), result)
            if sf_id and gc_id and plan.new_base is not None and (plan.new_base != snap.base or snap.version == 0):
                await self._store(sf_id, gc_id, plan.new_base, snap, plan,
                                  written_to_salesforce=plan.write_salesforce)
        elif action is Action.DELETE_IN_GENESYS:
            await self._gc(GenesysWrite(op="delete", contact_id=gc_id), result)
            await self._store(sf_id, gc_id, None, snap, plan)
        elif action is Action.DELETE_IN_SALESFORCE:
            await self._sf(SalesforceWrite(op="delete", contact_id=sf_id), result)
            await self._store(sf_id, gc_id, None, snap, plan)
        elif action in (Action.FORGET, Action.UNLINK):
            if sf_id and snap.version:
                await self._store(sf_id, gc_id or "", None, snap, plan)
        elif action is Action.DELETE_CONFLICT:
            await workflow.execute_activity_method(
                SyncActivities.record_sync_review,
                ReviewRequest(reason="delete_conflict", salesforce_id=sf_id, genesys_id=gc_id,
                              detail=("deleted in Salesforce, edited in Genesys" if snap.salesforce_deleted
                                      else "deleted in Genesys, edited in Salesforce")),
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
        result.salesforce_id, result.genesys_id = sf_id, gc_id
        return result


REASONS = {
    Action.DELETE_IN_GENESYS: "deleted in Salesforce",
    Action.DELETE_IN_SALESFORCE: "deleted in Genesys",
    Action.FORGET: "deleted on both sides",
    Action.UNLINK: "deleted on one side; delete handling is unlink",
    Action.UPDATE: "link written",
}
