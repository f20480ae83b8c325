"""Lasting recording links: whether Genesys has a recording's media yet, and writing the
link into its call's Task when it has.

A media URI from Genesys is pre-signed and expires (60 minutes by default), so the Task never
stores one: it stores the Callbridge recording URL (starter/recordings.py), which signs the
agent in and redirects to a media URI issued at that moment.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callbridge.clients.genesys.connection import GenesysConnection
from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.errors import from_exception
from callbridge.domain.mapping import TASK_EXTERNAL_ID
from callbridge.domain.models import RecordingLinkLine, RecordingRequest

RecordingState = Literal["ready", "transcoding", "gone"]
RECORDING_LINE = "Recording: "


def recording_url(base: str, conversation_id: str, recording_id: str) -> str:
    """The Callbridge URL of a recording: ids only (never a name or number), no media URI."""
    return f"{base.rstrip('/')}/recordings/{quote(conversation_id, safe='')}/{quote(recording_id, safe='')}"


class RecordingLinkActivities:
    def __init__(self, salesforce: SalesforceConnection, genesys: GenesysConnection) -> None:
        self._sf = salesforce
        self._genesys = genesys

    @activity.defn
    async def recording_state(self, request: RecordingRequest) -> RecordingState:
        """ready (media available), transcoding (Genesys answers 202), or gone (404: never made,
        deleted by retention or an erasure)."""
        path = (f"/api/v2/conversations/{quote(request.conversation_id, safe='')}"
                f"/recordings/{quote(request.recording_id, safe='')}")
        resp = await self._genesys.get(path, timeout=request.timeout_seconds)
        if resp.status_code == 404:
            return "gone"
        if resp.status_code >= 400:
            raise ApplicationError(f"Genesys recording lookup failed ({resp.status_code})", type="GenesysError",
                                   non_retryable=resp.status_code < 500 and resp.status_code != 429)
        return "transcoding" if resp.status_code == 202 else "ready"

    @activity.defn
    def set_recording_line(self, request: RecordingLinkLine) -> bool:
        """Replace the Task's "Recording: …" line. False when there is no Task or no such line
        (erased or anonymised since): nothing is re-created."""
        soql = format_soql(f"SELECT Id, Description FROM Task WHERE {TASK_EXTERNAL_ID} = {{}} LIMIT 1",
                           request.conversation_id)
        try:
            records = self._sf.query(soql)["records"]
            if not records:
                return False
            lines = (records[0].get("Description") or "").split("\n")
            at = next((i for i, line in enumerate(lines) if line.startswith(RECORDING_LINE)), None)
            if at is None:
                return False
            lines[at] = f"{RECORDING_LINE}{request.line}"
            self._sf.restful(f"sobjects/Task/{records[0]['Id']}", method="PATCH",
                             json={"Description": "\n".join(lines)})
        except SalesforceError as exc:
            raise from_exception(exc, "recording link on the Task") from None
        return True
