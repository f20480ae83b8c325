"""The call made ready to log, in one local activity: hydrated from the Conversations API when
only its id is known, its recording's link, and the contact Callbridge already knows for it.

One local activity instead of three activity tasks: the worker runs it inside the workflow task,
so a call costs Temporal little more than the one Salesforce activity that logs it (the bench's
ratio to a bare one-activity workflow). Each part is the adapter that does it alone
(CallLoggingGenesysActivities, CallerIndexActivities); a failure of the recording or of the local store
only costs the link or the shortcut, never the call.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity

from activities.caller_index import CallerIndexActivities
from activities.call_logging_genesys import CallLoggingGenesysActivities
from activities.recording_link import RecordingLinkActivities, recording_url
from callbridge.domain import mapping
from callbridge.domain.models import (
    CallLoggingInput,
    ContactMatch,
    HydrationRequest,
    KnownCallerRequest,
    PreparedCall,
    RecordingFollowUp,
    RecordingRequest,
)

log = structlog.get_logger("callbridge.call_preparation")


class CallPreparationActivities:
    def __init__(self, genesys: CallLoggingGenesysActivities, caller_index: CallerIndexActivities,
                 recordings: RecordingLinkActivities) -> None:
        self._genesys = genesys
        self._index = caller_index
        self._recordings = recordings

    @activity.defn
    async def prepare_call(self, inp: CallLoggingInput) -> PreparedCall:
        event, e164 = inp.event, inp.customer_e164
        if event is None:  # a call-ended event from Genesys: only the id is known
            hydrated = await self._genesys.hydrate_call(HydrationRequest(
                conversation_id=inp.conversation_id, default_region=inp.default_region, ended_at=inp.ended_at))
            event, e164 = hydrated.event, hydrated.customer_e164
        # The recording has its own budget and runs alongside the contact lookup.
        (recording, follow_up), known = await asyncio.gather(
            self._recording_link(inp, event.conversation_id, event.recording_id),
            asyncio.to_thread(self._known_caller, event.attributes, e164),
        )
        return PreparedCall(event=event, customer_e164=e164, recording_link=recording, known=known,
                            recording_follow_up=follow_up)

    async def _recording_link(self, inp: CallLoggingInput, conversation_id: str,
                              recording_id: str | None) -> tuple[str | None, RecordingFollowUp | None]:
        if not recording_id:
            return None, None
        if inp.recording_link_base:
            return await self._lasting_link(inp, conversation_id, recording_id)
        return await self._media_uri(inp, conversation_id, recording_id), None

    async def _lasting_link(self, inp: CallLoggingInput, conversation_id: str,
                            recording_id: str) -> tuple[str | None, RecordingFollowUp | None]:
        """The Callbridge recording URL (never the expiring media URI) once Genesys has the media;
        while it transcodes, or Genesys is slow, a note and a follow-up (workflows/recording_link.py)."""
        budget = inp.recording_budget_seconds
        link = recording_url(inp.recording_link_base, conversation_id, recording_id)
        try:
            state = await asyncio.wait_for(self._recordings.recording_state(RecordingRequest(
                conversation_id=conversation_id, recording_id=recording_id, timeout_seconds=budget)), budget)
        except Exception as exc:  # noqa: BLE001 - not known within the budget: the follow-up asks again
            log.info("recording state unknown", conversation_id=conversation_id, reason=type(exc).__name__)
            state = "transcoding"
        if state == "ready":
            return link, None
        if state == "gone":
            return None, None
        return mapping.RECORDING_PENDING, RecordingFollowUp(
            conversation_id=conversation_id, recording_id=recording_id, link=link,
            bound_hours=inp.recording_follow_up_hours, first_check_seconds=inp.recording_first_check_seconds)

    async def _media_uri(self, inp: CallLoggingInput, conversation_id: str, recording_id: str) -> str | None:
        # Inputs started before lasting links (no recording_link_base) keep the media URI.
        budget = inp.recording_budget_seconds
        try:
            # A slow Genesys never holds up the Task: the link is left out past the budget.
            return await asyncio.wait_for(self._genesys.get_recording_link(RecordingRequest(
                conversation_id=conversation_id, recording_id=recording_id, timeout_seconds=budget)), budget)
        except Exception as exc:  # noqa: BLE001 - any failure only costs the link
            log.info("recording link left out", conversation_id=conversation_id, reason=type(exc).__name__)
            return None

    def _known_caller(self, attributes: dict[str, str], e164: str | None) -> list[ContactMatch]:
        request = KnownCallerRequest(
            contact_id=attributes.get("contact_id"), contact_name=attributes.get("contact_name"),
            account_id=attributes.get("account_id"), account_name=attributes.get("account_name"), e164=e164)
        try:
            return self._index.find_known_caller(request)
        except Exception as exc:  # noqa: BLE001 - the store unreadable: Salesforce is asked instead
            log.warning("caller-ID index unreadable", reason=type(exc).__name__)
            return []
