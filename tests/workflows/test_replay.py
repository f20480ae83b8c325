"""Determinism across code changes (issue #9, item 4): every recorded history in
tests/histories/ replays against today's workflow code with Temporal's Replayer. A change that
would break workflows already running (an activity added, removed or reordered without
`workflow.patched`) fails here, before it reaches a worker. Re-record after an intended,
patched change: `make histories` (see docs/reliability.md).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from callbridge.core.metrics import MetricsInterceptor
from callbridge.core.temporal import data_converter
from tests.histories.record_histories import HISTORY_DIR, replay_settings
from workflows import WORKFLOWS

HISTORIES = sorted(HISTORY_DIR.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def replayer(workflows=WORKFLOWS) -> Replayer:
    # As the worker runs them: same workflows, data converter (the codec) and interceptors.
    return Replayer(workflows=workflows, data_converter=data_converter(replay_settings()),
                    interceptors=[MetricsInterceptor()])


def workflow_type(path: Path) -> str:
    started = json.loads(path.read_text())["events"][0]
    return started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]


def test_every_workflow_type_has_a_recorded_history():
    recorded = {workflow_type(p) for p in HISTORIES}
    assert {"CallLoggingWorkflow", "GdprErasureWorkflow", "SyncPairWorkflow", "ContactSyncWorkflow"} <= recorded


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path):
    result = await replayer().replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@workflow.defn(name="CallLoggingWorkflow", sandboxed=False)  # defined in a test module
class ReorderedCallLogging:
    """The call-logging workflow with its first step changed and no `workflow.patched`."""

    @workflow.run
    async def run(self, inp) -> None:
        await workflow.sleep(timedelta(seconds=1))


async def test_an_unpatched_change_fails_the_replay():
    """The guard itself: the replay test would catch a breaking change."""
    result = await replayer([ReorderedCallLogging]).replay_workflow(load(HISTORY_DIR / "call_logging.json"),
                                                                     raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
