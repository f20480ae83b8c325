"""RecordingLinkWorkflow: id `recording-link-{conversationId}`, started by call logging when
a call's recording is still transcoding (Genesys answers 202) at call end.

It checks with backoff on its own timer and, once Genesys has the media, writes the lasting
Callbridge link into the Task's "Recording:" line; after `bound_hours` it says so there
instead. A recording deleted meanwhile (retention, erasure) ends it with nothing written.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.recording_link import RecordingLinkActivities
    from callbridge.domain.models import RecordingFollowUp, RecordingLinkLine, RecordingRequest

MAX_INTERVAL = timedelta(minutes=15)
CHECK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))


from callbridge.domain.workflow_ids import recording_link_id as workflow_id  # noqa: E402,F401


@workflow.defn
class RecordingLinkWorkflow:
    @workflow.run
    async def run(self, inp: RecordingFollowUp) -> str:
        deadline = workflow.now() + timedelta(hours=inp.bound_hours)
        wait = timedelta(seconds=inp.first_check_seconds)
        while True:
            await workflow.sleep(min(wait, max(deadline - workflow.now(), timedelta(seconds=1))))
            state = await workflow.execute_activity_method(
                RecordingLinkActivities.recording_state,
                RecordingRequest(conversation_id=inp.conversation_id, recording_id=inp.recording_id,
                                 timeout_seconds=10),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=CHECK_RETRY)
            if state == "gone":
                return "gone"
            if state == "ready":
                return await self._write(inp, inp.link, "linked")
            if workflow.now() >= deadline:
                return await self._write(
                    inp, f"not available: Genesys had not finished processing it {inp.bound_hours:g} h after "
                         f"the call", "gave_up")
            wait = min(wait * 2, MAX_INTERVAL)

    async def _write(self, inp: RecordingFollowUp, line: str, outcome: str) -> str:
        written = await workflow.execute_activity_method(
            RecordingLinkActivities.set_recording_line,
            RecordingLinkLine(conversation_id=inp.conversation_id, line=line),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)))
        return outcome if written else "no_task"
