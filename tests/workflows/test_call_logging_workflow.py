"""CallLoggingWorkflow over workflow time: a Salesforce outage is waited out with retries and
the call still gets exactly one Task; a rejection fails the call with Salesforce's message on
top; a recording still transcoding at call end is linked by its own follow-up hours later.
Salesforce and Genesys are test activities under the real activity names; the errors they
raise are the ones the real activities raise (callbridge.clients.salesforce.errors)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from callbridge.clients.salesforce.errors import to_application_error
from callbridge.domain.mapping import RECORDING_PENDING
from callbridge.domain.models import (
    CallEndedEvent,
    CallLoggingInput,
    ContactMatch,
    LogCallRequest,
    LogCallResult,
    PhoneLookup,
    PreparedCall,
    RecordingFollowUp,
    RecordingLinkLine,
    RecordingRequest,
)
from tests.workflows.conftest import result_skipping_time, worker
from workflows.call_logging import CallLoggingWorkflow, workflow_id
from workflows.recording_link import RecordingLinkWorkflow
from workflows.recording_link import workflow_id as follow_up_id

# Made-up caller and contact: a 555 number, ids shaped like Salesforce's.
CALLER = "+15125550134"
CONTACT = ContactMatch(id="003000000000001AAA", name="Test Caller", account_id="001000000000001AAA",
                       matched_field="Phone")
LINK = "https://callbridge.example.com/recordings/conv-log-3/rec-3"


def call(conversation: str, recording_id: str | None = None) -> CallLoggingInput:
    end = datetime(2026, 12, 1, 10, 30, tzinfo=timezone.utc)
    event = CallEndedEvent(
        conversation_id=conversation, conversation_type="phone", caller_id=CALLER, callee_id="+18005550100",
        direction="INBOUND", start_time=end - timedelta(minutes=5), end_time=end, duration_seconds=300,
        recording_id=recording_id, agent_name="Agent One", queue_name="Support")
    return CallLoggingInput.for_event(event, "US")


class Platforms:
    """Salesforce (one Task per conversation id, upserted, as the Task's external id makes it)
    and Genesys, scripted per test."""

    def __init__(self, *, outage: timedelta = timedelta(0), rejection: str | None = None,
                 follow_up: RecordingFollowUp | None = None, media_ready_after: timedelta = timedelta(0)) -> None:
        self.outage = outage
        self.rejection = rejection
        self.follow_up = follow_up
        self.media_ready_after = media_ready_after
        self.log_call_attempts: list[tuple[datetime, bool]] = []  # (when, succeeded)
        self.tasks: dict[str, dict] = {}
        self.first_attempt: datetime | None = None
        self.logged_at: datetime | None = None

    @activity.defn(name="prepare_call")
    async def prepare_call(self, inp: CallLoggingInput) -> PreparedCall:
        # The whole call arrived (the relay webhook); nobody knows the caller yet.
        return PreparedCall(event=inp.event, customer_e164=inp.customer_e164,
                            recording_link=RECORDING_PENDING if self.follow_up else None,
                            recording_follow_up=self.follow_up)

    @activity.defn(name="find_contacts_by_phone")
    async def find_contacts_by_phone(self, lookup: PhoneLookup) -> list[ContactMatch]:
        return [CONTACT] if lookup.e164 == CALLER else []

    @activity.defn(name="log_call")
    async def log_call(self, request: LogCallRequest) -> LogCallResult:
        now = activity.info().current_attempt_scheduled_time
        self.first_attempt = self.first_attempt or now
        if self.rejection:
            self.log_call_attempts.append((now, False))
            raise to_application_error(400, [{"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                              "message": self.rejection, "fields": []}], "task upsert")
        if now < self.first_attempt + self.outage:
            self.log_call_attempts.append((now, False))
            raise to_application_error(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "server unavailable"}],
                                       "composite request")
        self.log_call_attempts.append((now, True))
        created = request.conversation_id not in self.tasks
        self.tasks[request.conversation_id] = {**request.task, "Id": "00T000000000001AAA"}
        self.logged_at = now
        return LogCallResult(task_id="00T000000000001AAA", task_created=created, contact_id=request.contact_id,
                             contact_updated=True)

    @activity.defn(name="recording_state")
    async def recording_state(self, request: RecordingRequest) -> str:
        ready = activity.info().current_attempt_scheduled_time >= self.logged_at + self.media_ready_after
        return "ready" if ready else "transcoding"

    @activity.defn(name="set_recording_line")
    async def set_recording_line(self, request: RecordingLinkLine) -> bool:
        task = self.tasks[request.conversation_id]
        task["Description"] = "\n".join(f"Recording: {request.line}" if line.startswith("Recording: ") else line
                                        for line in task["Description"].split("\n"))
        return True

    def activities(self) -> list:
        return [self.prepare_call, self.find_contacts_by_phone, self.log_call, self.recording_state,
                self.set_recording_line]


def recording_line(task: dict) -> str:
    return next(line for line in task["Description"].split("\n") if line.startswith("Recording: "))


async def test_a_two_hour_salesforce_outage_is_waited_out_and_the_call_gets_one_task(env):
    sf = Platforms(outage=timedelta(hours=2))
    async with worker(env, [CallLoggingWorkflow], sf.activities()) as tq:
        result = await env.client.execute_workflow(CallLoggingWorkflow.run, call("conv-log-1"),
                                                   id=workflow_id("conv-log-1"), task_queue=tq)

    assert result.outcome == "logged" and result.task_id == "00T000000000001AAA"
    assert result.contact_id == CONTACT.id
    assert list(sf.tasks) == ["conv-log-1"] and sf.tasks["conv-log-1"]["WhoId"] == CONTACT.id
    assert [ok for _, ok in sf.log_call_attempts].count(True) == 1
    # Retried all through the outage (never given up), at most a minute apart: the Task is
    # written within a minute of Salesforce coming back.
    failed = [at for at, ok in sf.log_call_attempts if not ok]
    assert len(failed) > 100
    assert sf.logged_at - (sf.first_attempt + sf.outage) <= timedelta(seconds=61)
    times = [at for at, _ in sf.log_call_attempts]
    assert max(b - a for a, b in zip(times, times[1:])) <= timedelta(seconds=61)


async def test_a_salesforce_rejection_fails_the_call_at_once_with_salesforce_message_on_top(env):
    sf = Platforms(rejection="Calls from the blocked queue may not be logged")
    async with worker(env, [CallLoggingWorkflow], sf.activities()) as tq:
        with pytest.raises(WorkflowFailureError) as failure:
            await env.client.execute_workflow(CallLoggingWorkflow.run, call("conv-log-2"),
                                              id=workflow_id("conv-log-2"), task_queue=tq)

    # The workflow's own failure carries Salesforce's message (what the Temporal UI shows first),
    # not only an "activity failed" wrapping it.
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "SalesforceRejected"
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION: Calls from the blocked queue may not be logged" in cause.message
    assert len(sf.log_call_attempts) == 1  # not retried
    assert sf.tasks == {}


async def test_a_recording_still_transcoding_is_linked_on_the_task_three_hours_later(own_env):
    env = own_env
    follow_up = RecordingFollowUp(conversation_id="conv-log-3", recording_id="rec-3", link=LINK,
                                  bound_hours=6, first_check_seconds=10)
    sf = Platforms(follow_up=follow_up, media_ready_after=timedelta(hours=3))
    async with worker(env, [CallLoggingWorkflow, RecordingLinkWorkflow], sf.activities()) as tq:
        result = await env.client.execute_workflow(CallLoggingWorkflow.run, call("conv-log-3", "rec-3"),
                                                   id=workflow_id("conv-log-3"), task_queue=tq)
        # The call is logged at once with the note; the follow-up runs on after the call's
        # workflow. (The test server ignores parent close policies: that the follow-up is
        # abandoned, not terminated, with its parent is tests/integration/test_recording_links.py's.)
        assert result.outcome == "logged" and result.recording_link == RECORDING_PENDING
        assert recording_line(sf.tasks["conv-log-3"]) == f"Recording: {RECORDING_PENDING}"
        linked = env.client.get_workflow_handle_for(RecordingLinkWorkflow.run, follow_up_id("conv-log-3"))
        assert await result_skipping_time(env, linked) == "linked"

    assert recording_line(sf.tasks["conv-log-3"]) == f"Recording: {LINK}"
