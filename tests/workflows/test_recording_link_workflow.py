"""RecordingLinkWorkflow over hours of workflow time: a recording still transcoding at call end
is checked with backoff and linked once it's ready, given up on after the follow-up window, and
left alone once Genesys has deleted it. Genesys and Salesforce are test activities."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity

from callbridge.domain.models import RecordingFollowUp, RecordingLinkLine, RecordingRequest
from tests.workflows.conftest import worker
from workflows.recording_link import MAX_INTERVAL, RecordingLinkWorkflow, workflow_id

LINK = "https://callbridge.example.com/recordings/conv-rec-1/rec-1"


RUNAWAY = 100  # checks: far more than 6 h of 15-minute checks


class RecordingPlatforms:
    """Genesys answering a scripted recording state per check (the last one repeats), and
    the call's Task in Salesforce with its "Recording:" line."""

    def __init__(self, states: list[str], task_exists: bool = True) -> None:
        self.states = states
        self.task_exists = task_exists
        self.checks: list[datetime] = []  # when each check ran, in workflow (server) time
        self.lines: list[tuple[datetime, str]] = []

    @activity.defn(name="recording_state")
    async def recording_state(self, request: RecordingRequest) -> str:
        self.checks.append(activity.info().current_attempt_scheduled_time)
        if len(self.checks) > RUNAWAY:
            return "gone"  # a follow-up that checks forever ends here, and its test fails
        return self.states[min(len(self.checks), len(self.states)) - 1]

    @activity.defn(name="set_recording_line")
    async def set_recording_line(self, request: RecordingLinkLine) -> bool:
        if not self.task_exists:
            return False
        self.lines.append((activity.info().current_attempt_scheduled_time, request.line))
        return True


async def follow_up(env, platforms: RecordingPlatforms, **inp) -> tuple[str, datetime]:
    """Run the follow-up to its end; its result and its start time."""
    async with worker(env, [RecordingLinkWorkflow], [platforms.recording_state, platforms.set_recording_line]) as tq:
        handle = await env.client.start_workflow(
            RecordingLinkWorkflow.run,
            RecordingFollowUp(conversation_id="conv-rec-1", recording_id="rec-1", link=LINK, **inp),
            id=workflow_id("conv-rec-1"), task_queue=tq,
            # A follow-up that never ends fails here (in workflow time), not by hanging the test.
            execution_timeout=timedelta(days=2))
        start = (await handle.describe()).start_time
        return await handle.result(), start


def seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())


async def test_checks_back_with_doubling_waits_capped_at_15_minutes_and_links_once_ready(env):
    platforms = RecordingPlatforms(["transcoding"] * 8 + ["ready"])
    outcome, start = await follow_up(env, platforms, bound_hours=6, first_check_seconds=10)

    assert outcome == "linked"
    assert platforms.lines and [line for _, line in platforms.lines] == [LINK]
    times = [start, *platforms.checks]
    waits = [seconds(b - a) for a, b in zip(times, times[1:])]
    assert waits == [10, 20, 40, 80, 160, 320, 640, 900, 900]
    assert seconds(MAX_INTERVAL) == 900
    # Linked right after the check that found the media, not a wait later.
    assert seconds(platforms.lines[0][0] - platforms.checks[-1]) <= 1


async def test_gives_up_after_the_follow_up_window_and_says_so_on_the_task(env):
    platforms = RecordingPlatforms(["transcoding"])
    outcome, start = await follow_up(env, platforms, bound_hours=6, first_check_seconds=10)

    assert outcome == "gave_up"
    [(written_at, line)] = platforms.lines
    assert line == "not available: Genesys had not finished processing it 6 h after the call"
    # The last check lands on the window's end (not up to 15 minutes past it), then the note.
    assert seconds(platforms.checks[-1] - start) == 6 * 3600
    assert seconds(written_at - start) - 6 * 3600 <= 1
    # Checked all along the window, never more than 15 minutes apart, and not hammered.
    times = [start, *platforms.checks]
    assert max(seconds(b - a) for a, b in zip(times, times[1:])) == seconds(MAX_INTERVAL)
    assert len(platforms.checks) < 35


async def test_a_recording_deleted_meanwhile_ends_it_with_nothing_written(env):
    platforms = RecordingPlatforms(["transcoding", "transcoding", "gone", "ready"])
    outcome, _ = await follow_up(env, platforms, bound_hours=6, first_check_seconds=10)

    assert outcome == "gone"
    assert len(platforms.checks) == 3
    assert platforms.lines == []


async def test_a_task_erased_meanwhile_ends_it_as_no_task(env):
    platforms = RecordingPlatforms(["transcoding", "ready"], task_exists=False)
    outcome, _ = await follow_up(env, platforms, bound_hours=6, first_check_seconds=10)

    assert outcome == "no_task"
    assert len(platforms.checks) == 2
