"""The admin API's privacy endpoints (HTTP Basic, `admin_username`/`admin_password`):
`POST /gdpr/erasures` and `GET /gdpr/erasures/{id}`."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.service import RPCError

from callbridge.ops.privacy_requests import ErasureRequestError, erasure_status, start_erasure
from callbridge.core.settings import Settings
from starter.auth import require_admin_auth
from starter.temporal_link import TemporalLink, TemporalUnavailable
from starter.call_start import START_BUDGET_SECONDS


class ErasureBody(BaseModel):
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=64)
    contact_id: str | None = Field(None, alias="contactId", max_length=18)

    model_config = {"populate_by_name": True}


def _is_request_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def build_router(settings: Settings, temporal: TemporalLink) -> APIRouter:
    router = APIRouter(prefix="/gdpr", dependencies=[Depends(require_admin_auth(settings))])

    @router.post("/erasures", status_code=202)
    async def create_erasure(body: ErasureBody) -> JSONResponse:
        try:
            client = await asyncio.wait_for(temporal.client(), START_BUDGET_SECONDS)
            request_id = await asyncio.wait_for(
                start_erasure(client, settings, email=body.email, phone=body.phone, contact_id=body.contact_id),
                START_BUDGET_SECONDS)
        except ErasureRequestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except (TemporalUnavailable, RPCError, asyncio.TimeoutError):
            # Refused, not accepted and lost: the caller retries after Retry-After.
            return JSONResponse({"error": "temporal unavailable"}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"requestId": request_id, "status": f"/gdpr/erasures/{request_id}"}, status_code=202)

    @router.get("/erasures/{request_id}")
    async def get_erasure(request_id: str) -> dict:
        if not _is_request_id(request_id):
            # Ids are UUIDs; anything else (NUL bytes included, which PostgreSQL refuses) is unknown.
            raise HTTPException(404, detail="no such erasure request")
        try:
            client = await temporal.client()
        except TemporalUnavailable:
            client = None
        status = await erasure_status(client, settings, request_id)
        if status is None:
            raise HTTPException(404, detail="no such erasure request")
        return status

    return router
