"""Genesys activities: thin adapters around one Platform API call each."""

from __future__ import annotations

from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.genesys_connection import GenesysConnection
from callbridge.models import RecordingRequest


class GenesysActivities:
    def __init__(self, connection: GenesysConnection) -> None:
        self._genesys = connection

    @activity.defn
    async def get_recording_link(self, request: RecordingRequest) -> str | None:
        """The recording's media URI, or None when Genesys has none for this call."""
        path = (
            f"/api/v2/conversations/{quote(request.conversation_id, safe='')}"
            f"/recordings/{quote(request.recording_id, safe='')}"
        )
        resp = await self._genesys.get(path, timeout=request.timeout_seconds)
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise ApplicationError(
                f"Genesys recording lookup failed ({resp.status_code})",
                type="GenesysError",
                non_retryable=resp.status_code < 500 and resp.status_code != 429,
            )
        if resp.status_code == 202:
            return None  # still transcoding: the call is logged without waiting for it
        media = resp.json().get("mediaUris") or {}
        for result in media.values():
            if isinstance(result, dict) and result.get("mediaUri"):
                return result["mediaUri"]
        return None
