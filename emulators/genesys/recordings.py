"""Recordings: list/get (with transcoding 202s), retention via PUT, and the media files.

Genesys answers GET .../recordings/{id} with 202 and a Recording without mediaUris while
the media is still transcoding; the list endpoint first waits up to maxWaitMs. Deleting a
recording is done by setting its deleteDate with PUT (the API has no DELETE for it); the
emulator removes it as soon as that date has passed. Media URIs are pre-signed links (no
bearer token needed) to files this server serves under /_emulator/media; like Genesys's they
expire (60 minutes by default; POST /_emulator/config {"mediaUriTtlSeconds"}), after which
the link answers a bare 403 like an expired S3 pre-signed URL, so a stored media URI is
useless later: fetch the recording again for a fresh one. Transcoding takes the simulated
call's `transcodeSeconds`; until then GET answers 202 without mediaUris.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from .context import ctx
from .errors import bad_request, not_found
from .wire import iso, now, parse_iso

router = APIRouter()

KIND = "recording"

# formatId -> (file extension, content type)
FORMATS = {
    "WEBM": ("webm", "audio/webm"),
    "WAV": ("wav", "audio/wav"),
    "WAV_ULAW": ("wav", "audio/wav"),
    "OGG_VORBIS": ("ogg", "audio/ogg"),
    "OGG_OPUS": ("ogg", "audio/ogg"),
    "MP3": ("mp3", "audio/mpeg"),
}
CONTENT_TYPES = {ext: ctype for ext, ctype in FORMATS.values()}
MAX_WAIT_MS = 60_000


def is_deleted(rec: dict[str, Any]) -> bool:
    return bool(rec.get("deleteDate")) and parse_iso(rec["deleteDate"]) <= now()


def is_ready(rec: dict[str, Any]) -> bool:
    return time.time() >= rec.get("readyAt", 0)


def media_bytes(ext: str, duration_ms: int) -> bytes:
    """A few bytes that identify as the format (tests check type, not sound)."""
    if ext == "wav":
        samples = b"\x00\x00" * 800  # 0.1 s of 8 kHz silence
        header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt " + struct.pack(
            "<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", len(samples))
        return header + samples
    if ext == "ogg":
        return b"OggS\x00\x02" + b"\x00" * 58
    if ext == "mp3":
        return b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + b"\x00" * 64
    # WebM: EBML magic + DocType "webm".
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08" \
        b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + b"\x00" * 32


def render(rec: dict[str, Any], request: Request, format_id: str | None) -> dict[str, Any]:
    store = ctx(request).store
    users = []
    for user_id in rec.get("userIds", []):
        user = store.get("user", user_id)
        if user:
            users.append({"id": user["id"], "name": user["name"], "selfUri": user["selfUri"]})
    out: dict[str, Any] = {
        "id": rec["id"],
        "conversationId": rec["conversationId"],
        "startTime": rec["startTime"],
        "endTime": rec["endTime"],
        "media": "audio",
        "annotations": [],
        "fileState": "AVAILABLE",
        "maxAllowedRestorationsForOrg": 1,
        "remainingRestorationsAllowedForOrg": 1,
        "sessionId": rec["sessionId"],
        "users": users,
        "recordingFileRole": "CUSTOMER_EXPERIENCE",
        "creationTime": rec["creationTime"],
        "selfUri": f"/api/v2/conversations/{rec['conversationId']}/recordings/{rec['id']}",
    }
    for key in ("archiveDate", "deleteDate", "exportDate"):
        if rec.get(key):
            out[key] = rec[key]
    if not is_ready(rec):
        out["estimatedTranscodeTimeMs"] = max(0, int((rec["readyAt"] - time.time()) * 1000))
        return out
    out["actualTranscodeTimeMs"] = rec.get("transcodeMs", 0)
    out["outputDurationMs"] = rec["durationMs"]
    if format_id != "NONE":
        ext, _ = FORMATS[format_id or "WEBM"]
        data = media_bytes(ext, rec["durationMs"])
        out["outputSizeInBytes"] = len(data)
        base = ctx(request).settings.base_url
        expires = int(time.time() + ctx(request).runtime.media_uri_ttl_seconds)
        name = f"{rec['id']}.{ext}"
        out["mediaUris"] = {"S": {"mediaUri": f"{base}/_emulator/media/{name}?Expires={expires}"
                                              f"&Signature={_signature(request, name, expires)}"}}
    return out


def _signature(request: Request, name: str, expires: int) -> str:
    key = ctx(request).settings.client_secret.encode()
    return hmac.new(key, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _format(format_id: str | None, media_formats: list[str] | None) -> str:
    if media_formats:
        format_id = media_formats[0].split(",")[0]
    format_id = (format_id or "WEBM").upper()
    if format_id != "NONE" and format_id not in FORMATS:
        raise bad_request(f"Invalid formatId {format_id}", "invalid.value")
    return format_id


def _load(request: Request, conversation_id: str, recording_id: str) -> dict[str, Any]:
    store = ctx(request).store
    if store.get("conversation", conversation_id) is None:
        raise not_found(f"Conversation {conversation_id} not found")
    rec = store.get(KIND, recording_id)
    if rec is None or rec["conversationId"] != conversation_id or is_deleted(rec):
        raise not_found(f"Recording {recording_id} not found")
    return rec


def conversation_recordings(request: Request, conversation_id: str) -> list[dict[str, Any]]:
    store = ctx(request).store
    if store.get("conversation", conversation_id) is None:
        raise not_found(f"Conversation {conversation_id} not found")
    return [r for r in store.all(KIND) if r["conversationId"] == conversation_id and not is_deleted(r)]


@router.get("/api/v2/conversations/{conversationId}/recordings")
async def get_recordings(
    request: Request,
    conversationId: str,
    maxWaitMs: int = Query(5000),
    formatId: str | None = Query(None),
    mediaFormats: list[str] | None = Query(None),
) -> Response:
    if maxWaitMs < 0:
        raise bad_request("maxWaitMs must be a positive value", "invalid.value")
    format_id = _format(formatId, mediaFormats)
    deadline = time.monotonic() + min(maxWaitMs, MAX_WAIT_MS) / 1000
    recs = conversation_recordings(request, conversationId)
    # Wait (up to maxWaitMs) for transcoding, as the real list endpoint does.
    while not all(is_ready(r) for r in recs) and time.monotonic() < deadline:
        soonest = min(r["readyAt"] for r in recs if not is_ready(r))
        await asyncio.sleep(max(0.01, min(soonest - time.time(), deadline - time.monotonic())))
    status = 200 if all(is_ready(r) for r in recs) else 202
    return JSONResponse([render(r, request, format_id) for r in recs], status_code=status)


@router.get("/api/v2/conversations/{conversationId}/recordings/{recordingId}")
def get_recording(
    request: Request,
    conversationId: str,
    recordingId: str,
    formatId: str | None = Query(None),
    mediaFormats: list[str] | None = Query(None),
) -> Response:
    format_id = _format(formatId, mediaFormats)
    rec = _load(request, conversationId, recordingId)
    return JSONResponse(render(rec, request, format_id), status_code=200 if is_ready(rec) else 202)


@router.put("/api/v2/conversations/{conversationId}/recordings/{recordingId}")
async def put_recording(request: Request, conversationId: str, recordingId: str) -> dict[str, Any]:
    """Updates the retention dates (archiveDate, deleteDate, exportDate); nothing else changes."""
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    if not isinstance(body, dict):
        raise bad_request("body must be a Recording", "invalid.value")
    rec = _load(request, conversationId, recordingId)
    dates: dict[str, datetime | None] = {}
    for key in ("archiveDate", "deleteDate", "exportDate"):
        if key in body:
            value = body[key]
            if value is None:
                dates[key] = None
                continue
            try:
                dates[key] = parse_iso(str(value))
            except ValueError:
                raise bad_request(f"{key} is not an ISO-8601 date", "invalid.value")
    archive = dates.get("archiveDate", parse_iso(rec["archiveDate"]) if rec.get("archiveDate") else None)
    delete = dates.get("deleteDate", parse_iso(rec["deleteDate"]) if rec.get("deleteDate") else None)
    if archive and delete and delete < archive:
        raise bad_request("deleteDate must be after archiveDate", "recording.delete.date.before.archive.date")
    for key, value in dates.items():
        if value is None:
            rec.pop(key, None)
        else:
            rec[key] = iso(value)
    ctx(request).store.put(KIND, rec["id"], rec)
    return render(rec, request, "WEBM")


@router.get("/_emulator/media/{fileName}")
def get_media(request: Request, fileName: str, Expires: int = Query(0), Signature: str = Query("")) -> Response:
    if Expires < time.time() or not hmac.compare_digest(Signature, _signature(request, fileName, Expires)):
        return Response(status_code=403)  # an expired or forged pre-signed link
    recording_id, _, ext = fileName.rpartition(".")
    rec = ctx(request).store.get(KIND, recording_id)
    if rec is None or ext not in CONTENT_TYPES or is_deleted(rec) or not is_ready(rec):
        # Like an expired or unknown pre-signed S3 link: a bare 404, not an ErrorBody.
        return Response(status_code=404)
    return Response(media_bytes(ext, rec["durationMs"]), media_type=CONTENT_TYPES[ext])
