"""Admin API for manual sync conflicts: list them, resolve one through its SyncPairWorkflow."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from callbridge.ops import conflicts
from callbridge.core.settings import Settings
from starter.auth import require_admin_auth
from starter.temporal_link import TemporalLink, TemporalUnavailable


class Resolution(BaseModel):
    field: str
    winner: Literal["salesforce", "genesys"]


def _unavailable() -> HTTPException:
    return HTTPException(503, "Temporal unavailable", headers={"Retry-After": "5"})


def build_router(settings: Settings, temporal: TemporalLink) -> APIRouter:
    router = APIRouter(prefix="/admin/api/conflicts", tags=["admin"],
                       dependencies=[Depends(require_admin_auth(settings))])

    async def client():
        try:
            return await temporal.client()
        except TemporalUnavailable:
            raise _unavailable() from None

    @router.get("")
    async def list_conflicts() -> dict:
        try:
            # Bounded: the SDK would retry an unreachable server for ~10 s.
            pending = await asyncio.wait_for(conflicts.pending_conflicts(await client()), 5.0)
        except (RPCError, asyncio.TimeoutError) as exc:  # connected once, Temporal gone since
            raise _unavailable() from exc
        return {"pairs": [{"workflowId": wid, "conflicts": [c.model_dump() for c in items]}
                          for wid, items in sorted(pending.items())]}

    @router.post("/{workflow_id}/resolve", status_code=202)
    async def resolve(workflow_id: str, body: Resolution) -> dict:
        try:
            await conflicts.resolve(await client(), workflow_id, body.field, body.winner)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        except RPCError as exc:
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise _unavailable() from None
            raise HTTPException(404, "no such pair waiting for a decision") from None
        return {"workflowId": workflow_id, "field": body.field, "winner": body.winner}

    return router
