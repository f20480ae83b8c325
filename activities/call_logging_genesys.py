"""Genesys activities: thin adapters around one Platform API call each."""

from __future__ import annotations

from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.domain.conversation import NotEnded, event_from_conversation
from callbridge.domain.models import HydratedCall, HydrationRequest, RecordingRequest


class CallLoggingGenesysActivities:
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

    async def hydrate_call(self, request: HydrationRequest) -> HydratedCall:
        """The call's details from its conversation: what a call-ended event doesn't carry.
        (Run inside the prepare_call local activity, activities/call_logging_preparation.py.)"""
        from callbridge.domain.phone import to_e164

        resp = await self._genesys.get(f"/api/v2/conversations/{quote(request.conversation_id, safe='')}")
        if resp.status_code == 404:
            # Not a conversation of this org: no retry will find it.
            raise ApplicationError("Genesys has no such conversation (404)", type="ConversationNotFound",
                                   non_retryable=True)
        if resp.status_code >= 400:
            raise ApplicationError(
                f"Genesys conversation lookup failed ({resp.status_code})", type="GenesysError",
                # 5xx, 429 and an expired token pass; a refusal (403: the client lacks a permission) doesn't.
                non_retryable=resp.status_code < 500 and resp.status_code not in (401, 429),
            )
        try:
            event = event_from_conversation(resp.json(), request.ended_at)
        except NotEnded:
            raise ApplicationError("the conversation has not ended yet", type="ConversationNotEnded") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ApplicationError(f"unreadable conversation: {type(exc).__name__}", type="ConversationUnreadable",
                                   non_retryable=True) from None
        return HydratedCall(event=event, customer_e164=to_e164(event.customer_number, request.default_region))
