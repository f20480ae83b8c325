"""Manual sync conflicts: the pairs waiting for a decision, and giving it (CLI and admin API)."""

from __future__ import annotations

from temporalio.client import Client

from callbridge.domain.sync.models import ConflictDecision, PendingConflict
from workflows.sync_pair import SyncPairWorkflow

WAITING = "WorkflowType = 'SyncPairWorkflow' AND ExecutionStatus = 'Running'"


async def pending_conflicts(client: Client) -> dict[str, list[PendingConflict]]:
    """{pair workflow id: its open conflicts}, for every pair waiting on a decision."""
    out: dict[str, list[PendingConflict]] = {}
    async for wf in client.list_workflows(WAITING):
        conflicts = await client.get_workflow_handle_for(SyncPairWorkflow.run, wf.id).query(SyncPairWorkflow.conflicts)
        if conflicts:
            out[wf.id] = conflicts
    return out


async def resolve(client: Client, workflow_id: str, field: str, winner: str) -> None:
    if not workflow_id.startswith("sync-pair-"):
        raise ValueError("a pair's workflow id starts with sync-pair-")
    await client.get_workflow_handle_for(SyncPairWorkflow.run, workflow_id).signal(
        SyncPairWorkflow.resolve, ConflictDecision(field=field, winner=winner))
