"""The codec endpoint the Temporal UI (and `temporal` CLI) call to read encrypted payloads.

`POST /codec/decode` and `/codec/encode` take and return `{"payloads": [...]}` in the proto3
JSON form of temporal.api.common.v1.Payloads. A bearer token (CALLBRIDGE_CODEC_TOKEN) is
required (checked first by starter/gate.py, again here); the one exception is a browser on the
Temporal UI's own origin in explicit demo mode (CALLBRIDGE_DEMO=1) on loopback — the local
demo, where the UI cannot send a token. An Origin header is not authentication: anywhere else
the Temporal UI sends the token (its codec "pass access token" setting, or a proxy adding it).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlparse

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from callbridge.core.codec import CodecKeyError, EncryptionCodec, parse_keys
from callbridge.core.secrets_policy import demo_mode
from callbridge.core.settings import Settings

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_PAYLOADS_SCHEMA = {
    "type": "object", "required": ["payloads"],
    "properties": {"payloads": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
            "data": {"type": "string", "format": "byte"},
        },
    }}},
}


def ui_origin(settings: Settings) -> str:
    u = urlparse(settings.temporal_ui_url)
    return f"{u.scheme}://{u.netloc}"


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/codec", tags=["codec"])
    codec = EncryptionCodec(parse_keys(settings.payload_keys.get_secret_value()))
    token = settings.codec_token.get_secret_value()
    origin = ui_origin(settings)
    local_only = demo_mode() and settings.starter_host in _LOOPBACK
    cors = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Namespace",
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
            return
        if local_only and request.headers.get("origin") == origin:
            return
        raise HTTPException(401, detail="unauthorized", headers=cors)

    async def transform(request: Request, fn) -> Response:
        authorize(request)
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
            out = Payloads(payloads=[fn(p) for p in payloads.payloads])
        except (json_format.ParseError, CodecKeyError, ValueError) as exc:
            return JSONResponse({"error": f"cannot transform payloads: {type(exc).__name__}"}, 400, headers=cors)
        except Exception:  # a tampered or foreign ciphertext (InvalidTag)
            return JSONResponse({"error": "cannot decrypt payloads"}, 400, headers=cors)
        return Response(json_format.MessageToJson(out), media_type="application/json", headers=cors)

    @router.options("/{action}", include_in_schema=False)
    async def preflight(action: str) -> Response:
        return Response(status_code=204, headers=cors)

    # Bodies are parsed as protobuf JSON, not by FastAPI: documented for clients and the fuzz test.
    body_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}}}

    @router.post("/encode", openapi_extra=body_doc)
    async def encode(request: Request) -> Response:
        return await transform(request, codec.encode_one)

    @router.post("/decode", openapi_extra=body_doc)
    async def decode(request: Request) -> Response:
        return await transform(request, codec.decode_one)

    return router
