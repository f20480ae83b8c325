"""Admin API for manual sync conflicts: list them, resolve one through its SyncPairWorkflow."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from temporalio.service import RPCError

from callbridge import conflicts
from callbridge.settings import Settings
from starter.auth import require_admin_auth
from starter.temporal_link import TemporalLink, TemporalUnavailable


class Resolution(BaseModel):
    field: str
    winner: Literal["salesforce", "genesys"]


def build_router(settings: Settings, temporal: TemporalLink) -> APIRouter:
    router = APIRouter(prefix="/admin/api/conflicts", tags=["admin"],
                       dependencies=[Depends(require_admin_auth(settings))])

    async def client():
        try:
            return await temporal.client()
        except TemporalUnavailable:
            raise HTTPException(503, "Temporal unavailable", headers={"Retry-After": "5"}) from None

    @router.get("")
    async def list_conflicts() -> dict:
        pending = await conflicts.pending_conflicts(await client())
        return {"pairs": [{"workflowId": wid, "conflicts": [c.model_dump() for c in items]}
                          for wid, items in sorted(pending.items())]}

    @router.post("/{workflow_id}/resolve", status_code=202)
    async def resolve(workflow_id: str, body: Resolution) -> dict:
        try:
            await conflicts.resolve(await client(), workflow_id, body.field, body.winner)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except RPCError:
            raise HTTPException(404, "no such pair waiting for a decision") from None
        return {"workflowId": workflow_id, "field": body.field, "winner": body.winner}

    return router
