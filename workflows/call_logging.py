"""CallLoggingWorkflow: one per call, id `call-log-{conversationId}`.

Deterministic orchestration only; every Salesforce/Genesys call is an activity retried by
Temporal. The Task is upserted by Genesys_Conversation_Id__c, so no retry, redelivery or
worker crash can create a second Task.

A call arrives whole (the signed relay webhook) or as its conversation id only (a call-ended
event from Genesys, the reconciliation). One local activity prepares it: hydrated from the
Conversations API, its recording's link, the contact already known (the IVR's contact_id, the
caller-ID index). Then one Salesforce activity logs it (docs/call-logging.md).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.call_logging_preparation import CallPreparationActivities
    from activities.call_logging_genesys import CallLoggingGenesysActivities
    from activities.call_logging import CONTACT_GONE, CallLoggingActivities
    from callbridge.domain import mapping
    from callbridge.domain.models import (
        CallLoggingInput,
        CallLoggingResult,
        ContactMatch,
        LogCallRequest,
        PhoneLookup,
        RecordingFollowUp,
        RecordingRequest,
    )
    from activities.recording_link import RecordingLinkActivities, recording_url
    # Not `from workflows import recording_link`: that loads the submodule past the sandbox's
    # importer, so it was compiled and run again for every call (tests/workflows/test_workflow_sandbox.py).
    import workflows.recording_link as recording_link

from callbridge.domain.workflow_ids import CONTACT_ID, CONVERSATION_ID, OUTCOME  # noqa: E402,F401

# Salesforce outages are waited out: retry forever with capped backoff. Non-transient
# rejections are raised as non-retryable ApplicationErrors by the activities.
SALESFORCE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=60)
)
SALESFORCE_TIMEOUT = timedelta(seconds=15)
# Genesys outages are waited out too, within a day (hydration): past that the workflow fails,
# and a redelivery may start the call again (the id admits a new run only after a failed one).
GENESYS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=60)
)
HYDRATION_BUDGET = timedelta(hours=24)
# Patch ids (workflow.patched): histories recorded before each change replay without it.
ONE_REQUEST_PER_CALL = "one-request-per-call"
LASTING_RECORDING_LINK = "lasting-recording-link"


from callbridge.domain.workflow_ids import call_log_id as workflow_id  # noqa: E402,F401


@workflow.defn
class CallLoggingWorkflow:
    _recording_follow_up: "RecordingFollowUp | None" = None  # a recording still transcoding

    @workflow.run
    async def run(self, inp: CallLoggingInput) -> CallLoggingResult:
        if not workflow.patched(ONE_REQUEST_PER_CALL):
            return await self._run_as_before_call_ended_events(inp)  # replays older histories
        prepared = await workflow.execute_local_activity_method(
            CallPreparationActivities.prepare_call, inp,
            start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=HYDRATION_BUDGET,
            retry_policy=GENESYS_RETRY,
        )
        inp = inp.model_copy(update={"event": prepared.event, "customer_e164": prepared.customer_e164})
        result = None
        if prepared.known:
            # What Callbridge already knows names the contact: the composite request is the
            # call's one Salesforce request. The SOQL lookup only when nothing does, or when
            # the contact known turns out to be gone.
            try:
                result = await self._log_on_contact(inp, prepared.known, prepared.recording_link)
            except ActivityError as err:
                if not (isinstance(err.cause, ApplicationError) and err.cause.type == CONTACT_GONE):
                    raise
        if result is None:
            contacts = await self._find_contacts(inp)
            if contacts:
                result = await self._log_on_contact(inp, contacts, prepared.recording_link)
            else:
                result = await self._unknown_caller(inp, prepared.recording_link)
        # A recording still transcoding gets its own follow-up once the Task exists (histories
        # recorded before lasting links have none to start).
        if prepared.recording_follow_up is not None and workflow.patched(LASTING_RECORDING_LINK):
            self._recording_follow_up = prepared.recording_follow_up
        await self._follow_recording(result.task_id)
        return self._finish(result)

    async def _run_as_before_call_ended_events(self, inp: CallLoggingInput) -> CallLoggingResult:
        # The recording link has its own budget and runs alongside the contact lookup.
        recording = asyncio.ensure_future(self._recording_link(inp))
        contacts = await self._find_contacts(inp)
        recording_link = await recording
        if contacts:
            result = await self._log_on_contact(inp, contacts, recording_link)
        else:
            result = await self._unknown_caller(inp, recording_link)
        await self._follow_recording(result.task_id)
        return self._finish(result)

    async def _log_on_contact(
        self, inp: CallLoggingInput, contacts: list[ContactMatch], recording_link: str | None
    ) -> CallLoggingResult:
        event = inp.event
        contact, others = contacts[0], contacts[1:]
        request = LogCallRequest(
            conversation_id=event.conversation_id,
            task=mapping.task_fields(
                event, contact, who_id=contact.id, what_id=contact.account_id,
                other_contacts=others, recording_link=recording_link,
            ),
            contact_id=contact.id,
            contact_update=mapping.contact_last_call_fields(event, contact),
        )
        logged = await self._log_call(request)
        return CallLoggingResult(
            outcome="logged", conversation_id=event.conversation_id, task_id=logged.task_id,
            contact_id=contact.id, account_id=contact.account_id,
            other_contact_ids=[c.id for c in others], recording_link=recording_link,
            contact_update_error=logged.contact_update_error,
        )

    async def _find_contacts(self, inp: CallLoggingInput) -> list[ContactMatch]:
        contact_id = inp.event.attributes.get("contact_id")
        if contact_id:
            contact = await workflow.execute_activity_method(
                CallLoggingActivities.find_contact_by_id, contact_id,
                start_to_close_timeout=SALESFORCE_TIMEOUT, retry_policy=SALESFORCE_RETRY,
            )
            if contact is not None:
                return [contact]
        if inp.customer_e164 is None:
            return []  # anonymous, withheld or unparseable: an unknown caller
        return await workflow.execute_activity_method(
            CallLoggingActivities.find_contacts_by_phone,
            PhoneLookup(e164=inp.customer_e164, default_region=inp.default_region),
            start_to_close_timeout=SALESFORCE_TIMEOUT, retry_policy=SALESFORCE_RETRY,
        )

    async def _recording_link(self, inp: CallLoggingInput) -> str | None:
        event = inp.event
        if not event.recording_id:
            return None
        # Histories from before lasting links replay the media URI they stored.
        if inp.recording_link_base and workflow.patched(LASTING_RECORDING_LINK):
            return await self._lasting_recording_link(inp)
        try:
            return await workflow.execute_activity_method(
                CallLoggingGenesysActivities.get_recording_link,
                RecordingRequest(
                    conversation_id=event.conversation_id, recording_id=event.recording_id,
                    timeout_seconds=inp.recording_budget_seconds,
                ),
                # The whole budget, retries included: a slow Genesys never holds up the Task.
                schedule_to_close_timeout=timedelta(seconds=inp.recording_budget_seconds),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3),
            )
        except ActivityError:
            return None

    async def _lasting_recording_link(self, inp: CallLoggingInput) -> str | None:
        """The Callbridge recording URL (never the expiring media URI) once Genesys has the
        media; while it transcodes (or Genesys is slow), a note, and a follow-up after the Task."""
        event = inp.event
        link = recording_url(inp.recording_link_base, event.conversation_id, event.recording_id)
        try:
            state = await workflow.execute_activity_method(
                RecordingLinkActivities.recording_state,
                RecordingRequest(conversation_id=event.conversation_id, recording_id=event.recording_id,
                                 timeout_seconds=inp.recording_budget_seconds),
                schedule_to_close_timeout=timedelta(seconds=inp.recording_budget_seconds),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3),
            )
        except ActivityError:
            state = "transcoding"  # not known within the budget: the follow-up asks again
        if state == "ready":
            return link
        if state == "gone":
            return None
        self._recording_follow_up = RecordingFollowUp(
            conversation_id=event.conversation_id, recording_id=event.recording_id, link=link,
            bound_hours=inp.recording_follow_up_hours, first_check_seconds=inp.recording_first_check_seconds)
        return mapping.RECORDING_PENDING

    async def _follow_recording(self, task_id: str | None) -> None:
        """Start the recording's own follow-up (it outlives this workflow) once its Task exists."""
        follow_up = self._recording_follow_up
        if follow_up is None or not task_id:
            return
        try:
            await workflow.start_child_workflow(
                recording_link.RecordingLinkWorkflow.run, follow_up,
                id=recording_link.workflow_id(follow_up.conversation_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            pass  # an earlier run of this call's logging started it

    async def _log_call(self, request: LogCallRequest):
        try:
            return await workflow.execute_activity_method(
                CallLoggingActivities.log_call, request,
                start_to_close_timeout=SALESFORCE_TIMEOUT, retry_policy=SALESFORCE_RETRY,
            )
        except ActivityError as err:
            # Salesforce refused the Task (a validation rule...): fail the workflow with its
            # message on top, where the Temporal UI shows it first.
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "SalesforceRejected":
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from err
            raise

    async def _unknown_caller(self, inp: CallLoggingInput, recording_link: str | None) -> CallLoggingResult:
        event = inp.event
        policy = inp.unknown_caller_policy
        e164 = inp.customer_e164
        if policy == "create_contact" and e164 is not None and await self._caller_erased(inp):
            policy = "unknown_account"  # an erased person is never re-created (docs/privacy.md)
        if policy == "create_contact" and e164 is not None:
            request = LogCallRequest(
                conversation_id=event.conversation_id,
                task=mapping.task_fields(event, None, who_id=None, what_id=None, recording_link=recording_link),
                new_contact=mapping.new_caller_contact(event, e164),
            )
            logged = await self._log_call(request)
            return CallLoggingResult(
                outcome="logged_new_contact", conversation_id=event.conversation_id,
                task_id=logged.task_id, contact_id=logged.contact_id, recording_link=recording_link,
            )
        if policy == "unknown_account" or policy == "create_contact":
            # create_contact without a usable number falls back to the unknown-callers account.
            account_id = await workflow.execute_activity_method(
                CallLoggingActivities.find_unknown_callers_account, inp.unknown_caller_account_name,
                start_to_close_timeout=SALESFORCE_TIMEOUT, retry_policy=SALESFORCE_RETRY,
            )
            request = LogCallRequest(
                conversation_id=event.conversation_id,
                task=mapping.task_fields(event, None, who_id=None, what_id=account_id, recording_link=recording_link),
            )
            logged = await self._log_call(request)
            return CallLoggingResult(
                outcome="logged_unknown_account", conversation_id=event.conversation_id,
                task_id=logged.task_id, account_id=account_id, recording_link=recording_link,
            )
        return CallLoggingResult(outcome="skipped_unknown_caller", conversation_id=event.conversation_id)

    async def _caller_erased(self, inp: CallLoggingInput) -> bool:
        # Histories from before the tombstone check replay without it.
        if not workflow.patched("tombstone-check"):
            return False
        return await workflow.execute_activity(
            "is_caller_erased", PhoneLookup(e164=inp.customer_e164, default_region=inp.default_region),
            result_type=bool, start_to_close_timeout=SALESFORCE_TIMEOUT, retry_policy=SALESFORCE_RETRY,
        )

    def _finish(self, result: CallLoggingResult) -> CallLoggingResult:
        updates = [OUTCOME.value_set(result.outcome)]
        if result.contact_id:
            updates.append(CONTACT_ID.value_set(result.contact_id))
        workflow.upsert_search_attributes(updates)
        return result
