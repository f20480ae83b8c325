"""Recording links that last (issue #15): the Task links a Callbridge URL, never Genesys's
expiring media URI; it signs the agent in and hands out a fresh media URI; a recording still
transcoding at call end is linked when ready; a deleted recording's link says so."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import httpx
import pytest

from callbridge.domain.mapping import RECORDING_PENDING
from tests.agent_signin import agents, register_redirect_uri, sign_in
from tests.helpers import genesys_token, tasks_for_conversation, unique_us_number
from workflows.call_logging import CallLoggingWorkflow, workflow_id
from workflows.recording_link import RecordingLinkWorkflow
from workflows.recording_link import workflow_id as follow_up_id

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def webhooks(genesys, stack):
    httpx.post(f"{genesys.api_url}/_emulator/config", json={
        "webhookUrl": f"{stack.starter_url}/webhooks/genesys/conversation-ended",
        "webhookSecret": stack.webhook_secret}).raise_for_status()
    register_redirect_uri(genesys, stack)
    yield
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"mediaUriTtlSeconds": 3600}).raise_for_status()


def call(sf, genesys, **extra) -> dict:
    """A recorded call from a known contact, ended and logged."""
    e164, digits = unique_us_number()
    sf.Contact.create({"FirstName": "Rec", "LastName": f"Caller{time.monotonic_ns() % 10**6}",
                       "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "MailingCountry": "United States"})
    placed = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30,
                        json={"ani": e164, "wait": True, **extra}).json()
    return {**placed, "digits": digits}


def recording_line(sf, conversation: str) -> str:
    [task] = tasks_for_conversation(sf, conversation)
    return next(line for line in task["Description"].split("\n") if line.startswith("Recording: "))


async def test_the_task_links_a_lasting_url_that_issues_a_fresh_media_uri_to_a_signed_in_agent(
        stack, sf, genesys, temporal_client, webhooks):
    # Genesys's media URIs die (60 minutes by default): here after 2 seconds.
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"mediaUriTtlSeconds": 2}).raise_for_status()
    placed = call(sf, genesys)
    conversation, recording = placed["conversationId"], placed["recordingId"]
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()

    link = f"{stack.starter_url}/recordings/{conversation}/{recording}"
    assert result.recording_link == link
    assert recording_line(sf, conversation) == f"Recording: {link}"
    # A media URI as Genesys hands it out stops working: the Task must never hold one.
    api = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    old = httpx.get(f"{genesys.api_url}/api/v2/conversations/{conversation}/recordings/{recording}",
                    headers=api).json()["mediaUris"]["S"]["mediaUri"]
    assert httpx.get(old).status_code == 200
    await asyncio.sleep(3)
    assert httpx.get(old).status_code == 403

    # The lasting link: nobody gets media without signing in as an agent, nor with the
    # integration's own (client credentials) token.
    assert httpx.get(f"{link}/media").status_code == 401
    assert httpx.get(f"{link}/media", headers=api).status_code == 401
    page = httpx.get(link)
    assert page.status_code == 200 and "agentFetch" in page.text
    agent = agents(genesys)[0]
    token = sign_in(genesys, stack, agent["username"])
    fresh = httpx.get(f"{link}/media", headers={"Authorization": f"Bearer {token}"})
    assert fresh.status_code == 200
    assert httpx.get(fresh.json()["mediaUri"]).content[:4] in (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"ID3\x03")
    # Ids only in the URL: no number, no name.
    assert placed["digits"] not in link and "Caller" not in link

    # Deleted by retention or an erasure: the link says so instead of failing obscurely.
    httpx.put(f"{genesys.api_url}/api/v2/conversations/{conversation}/recordings/{recording}", headers=api,
              json={"deleteDate": datetime.now(timezone.utc).isoformat()}).raise_for_status()
    await asyncio.sleep(0.1)
    gone = httpx.get(f"{link}/media", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 404 and "no longer available" in gone.json()["detail"]


async def test_a_recording_still_transcoding_at_call_end_is_linked_when_ready(
        stack, sf, genesys, temporal_client, webhooks):
    placed = call(sf, genesys, transcodeSeconds=6)
    conversation, recording = placed["conversationId"], placed["recordingId"]
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation)).result()
    assert result.recording_link == RECORDING_PENDING
    assert recording_line(sf, conversation) == f"Recording: {RECORDING_PENDING}"

    follow_up = temporal_client.get_workflow_handle_for(RecordingLinkWorkflow.run, follow_up_id(conversation))
    assert await asyncio.wait_for(follow_up.result(), timeout=120) == "linked"
    assert recording_line(sf, conversation) == f"Recording: {stack.starter_url}/recordings/{conversation}/{recording}"
