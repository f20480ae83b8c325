"""GdprErasureWorkflow: one per erasure request, id `gdpr-erasure-{request id}` (a random id).

Find the person everywhere, tombstone them, delete each find as a retried step, search
every system again and record a certificate. Steps that keep failing are retried (activity
retry policy) while a timer branch reminds at day 20 and escalates at day 28 of the 30-day
deadline. The history holds ids and counts only: the person's email and phones stay sealed
in the state store.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.gdpr_erasure import GdprErasureActivities
    from callbridge.domain.privacy import erasure_alerts
    from callbridge.domain.privacy_models import (
        AlertRequest,
        CertificateRequest,
        DeleteRecordings,
        DeleteRecords,
        DiscoverRequest,
        ErasureInput,
        ErasureResult,
        ErasureStatus,
        FailureRequest,
        Findings,
        SentAlert,
        VerifyRequest,
    )

# An erasure has 30 days: outages are waited out with a long cap between attempts, so a
# failing step is retried through the whole deadline without hammering the system.
ERASURE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(hours=2)
)
ALERT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10),
                          maximum_attempts=20)


from callbridge.domain.workflow_ids import gdpr_erasure_id as workflow_id  # noqa: E402,F401


def _merge(into: list[str], more: list[str]) -> list[str]:
    return sorted(set(into) | set(more))


@workflow.defn
class GdprErasureWorkflow:
    def __init__(self) -> None:
        self._status: ErasureStatus | None = None
        self._finished = False

    @workflow.query
    def status(self) -> ErasureStatus:
        return self._status

    @workflow.run
    async def run(self, inp: ErasureInput) -> ErasureResult:
        self._status = ErasureStatus(request_id=inp.request_id)
        watch = asyncio.ensure_future(self._deadline_watch(inp))
        try:
            result = await self._erase(inp)
        except (ActivityError, ApplicationError) as err:
            # A step refused for good (not an outage: those are retried): the stored request
            # must not stay "running".
            self._status.phase = "failed"
            cause = err.cause if isinstance(err, ActivityError) else err
            reason = getattr(cause, "type", None) or type(cause).__name__
            await self._record_failure(inp, reason)
            if workflow.patched("erasure-refusal-alert"):
                # e.g. no "Bulk API Hard Delete" permission: someone must act, not wait for day 28.
                await self._alert(inp, "failed", "critical",
                                  f"GDPR erasure {inp.request_id} stopped ({reason}): {getattr(cause, 'message', cause)}")
            raise
        finally:
            self._finished = True
            watch.cancel()
        if result.status == "failed":
            await self._record_failure(inp, "verification")
        return result

    async def _record_failure(self, inp: ErasureInput, reason: str) -> None:
        await workflow.execute_activity_method(
            GdprErasureActivities.erasure_record_failure,
            FailureRequest(request_id=inp.request_id, workflow_id=workflow.info().workflow_id, reason=reason,
                           remaining=self._status.remaining),
            start_to_close_timeout=timedelta(minutes=2), retry_policy=ERASURE_RETRY)

    async def _act(self, fn, arg, *, heartbeat: bool = False):
        return await workflow.execute_activity_method(
            fn, arg, retry_policy=ERASURE_RETRY,
            start_to_close_timeout=timedelta(minutes=10) if heartbeat else timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=30) if heartbeat else None,
        )

    async def _alert(self, inp: ErasureInput, kind: str, level: str, text: str) -> None:
        await workflow.execute_activity_method(
            GdprErasureActivities.privacy_alert, AlertRequest(level=level, text=text, request_id=inp.request_id),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=ALERT_RETRY,
        )
        self._status.alerts.append(SentAlert(kind=kind, at=workflow.now()))

    async def _deadline_watch(self, inp: ErasureInput) -> None:
        for kind, at in erasure_alerts(inp.requested_at, inp.reminder_days, inp.escalation_days):
            delay = at - workflow.now()
            if delay > timedelta(0):
                await workflow.sleep(delay)
            if self._finished:
                return
            due = inp.requested_at + timedelta(days=inp.deadline_days)
            level = "warning" if kind == "reminder" else "critical"
            await self._alert(inp, kind, level,
                              f"GDPR erasure {inp.request_id} {kind}: not complete, phase {self._status.phase}, "
                              f"due {due.date().isoformat()}")

    async def _erase(self, inp: ErasureInput) -> ErasureResult:
        status = self._status
        rid = inp.request_id
        acts = GdprErasureActivities
        found = Findings()
        deleted: dict[str, list[str]] = {}
        local: dict[str, int] = {}

        def done(label: str, ids: list[str]) -> None:
            deleted[label] = _merge(deleted.get(label, []), ids)
            if label not in status.steps_done:
                status.steps_done.append(label)

        for round_no in range(1, inp.max_rounds + 1):
            status.round = round_no
            status.phase = "discovering"
            sf = await self._act(acts.erasure_discover_salesforce, rid)
            # The tombstone goes in before anything is deleted: a sync or call logged meanwhile
            # can no longer bring the person back.
            await self._act(acts.erasure_write_tombstone, rid)
            found.salesforce.contact_ids = _merge(found.salesforce.contact_ids, sf.contact_ids)
            found.salesforce.conversation_ids = _merge(found.salesforce.conversation_ids, sf.conversation_ids)
            found.salesforce.consent_ids = _merge(found.salesforce.consent_ids, sf.consent_ids)
            scope = DiscoverRequest(request_id=rid, contact_ids=found.salesforce.contact_ids,
                                    conversation_ids=found.salesforce.conversation_ids)
            gz = await self._act(acts.erasure_discover_genesys, scope)
            found.genesys.external_contact_ids = _merge(found.genesys.external_contact_ids, gz.external_contact_ids)
            # Legal holds win (GDPR art. 17(3)(e)): those recordings are kept and certified as kept.
            held = {r.recording_id: r for r in found.genesys.held_recordings + gz.held_recordings}
            found.genesys.held_recordings = [held[k] for k in sorted(held)]
            workflows = await self._act(acts.erasure_discover_workflows, scope)
            found.workflow_ids = _merge(found.workflow_ids, workflows)

            status.phase = "deleting"
            # Children first: deleting a contact unlinks its consents (SetNull), and they'd be lost.
            for sobject, ids, label in (
                ("Contact_Consent__c", sf.consent_ids, "salesforce.consents"),
                ("Task", sf.task_ids, "salesforce.tasks"),
                ("Event", sf.event_ids, "salesforce.events"),
                ("Contact", sf.contact_ids, "salesforce.contacts"),
            ):
                if ids:
                    done(label, await self._act(acts.erasure_delete_salesforce,
                                                DeleteRecords(request_id=rid, sobject=sobject, ids=ids), heartbeat=True))
            if gz.external_contact_ids:
                done("genesys.external_contacts", await self._act(
                    acts.erasure_delete_genesys_contacts, DeleteRecords(request_id=rid, ids=gz.external_contact_ids)))
            if gz.recordings:
                done("genesys.recordings", await self._act(
                    acts.erasure_delete_recordings, DeleteRecordings(request_id=rid, recordings=gz.recordings)))
            removed = await self._act(acts.erasure_delete_local, rid)
            for store_name, count in removed.items():
                local[store_name] = local.get(store_name, 0) + count
            if "local.stores" not in status.steps_done:
                status.steps_done.append("local.stores")
            if workflows:
                done("temporal.histories", await self._act(
                    acts.erasure_delete_workflows, DeleteRecords(request_id=rid, ids=workflows)))

            status.phase = "verifying"
            check = VerifyRequest(request_id=rid, findings=found)
            remaining: dict[str, int] = {}
            remaining.update(await self._act(acts.erasure_verify_salesforce, check))
            remaining.update(await self._act(acts.erasure_verify_genesys, check))
            remaining.update(await self._act(acts.erasure_verify_local, rid))
            remaining.update(await self._act(acts.erasure_verify_workflows, check))
            status.remaining = remaining
            if not any(remaining.values()):
                status.phase = "certifying"
                kept = [r.recording_id for r in found.genesys.held_recordings]
                cert = await self._act(acts.erasure_record_certificate, CertificateRequest(
                    request_id=rid, workflow_id=workflow.info().workflow_id, requested_at=inp.requested_at,
                    deleted=deleted, verification=remaining, local=local,
                    kept={"genesys.recordings": kept} if kept else {},
                ))
                status.phase = "completed"
                return ErasureResult(request_id=rid, status="completed", certificate=cert)
            # Something reappeared or isn't gone yet (a sync mid-flight, a history being
            # deleted): go round again after a pause; after the last round, fail (and alert) now.
            if round_no < inp.max_rounds or not workflow.patched("erasure-no-pause-after-last-round"):
                await workflow.sleep(timedelta(seconds=10 * round_no))

        status.phase = "failed"
        await self._alert(inp, "failed", "critical",
                          f"GDPR erasure {rid} failed verification after {inp.max_rounds} rounds")
        return ErasureResult(request_id=rid, status="failed", remaining=status.remaining)
