"""The Genesys emulator's call simulator: the seed's inbound flow as a live timeline.

A placed call runs the flow's data action against a local stand-in for Callbridge's
screen-pop lookup, is queued, alerts an agent (seen on that agent's notification topics),
connects, ends, is recorded and sends the signed conversation-ended webhook. Every event
body and REST answer is checked against the official SDK's models.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import PureCloudPlatformClientV2 as gc
import pytest
from websockets.sync.client import connect

from callbridge.domain.models import CallEndedEvent
from callbridge.domain.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.http_receiver import HttpReceiver
from tests.emulators.test_genesys_emulator import assert_model

FOUND = {
    "success": True, "contactId": "003000000000042AAA", "firstName": "Ana", "lastName": "Souza",
    "accountId": "001000000000007AAA", "accountName": "Acme Brasil", "tier": "Premium", "matchCount": 1,
    "matches": [], "reason": None, "source": "index",
}
SCREEN_POP = {"contact_id": "003000000000042AAA", "contact_name": "Ana Souza", "account_id": "001000000000007AAA",
              "account_name": "Acme Brasil", "customer_tier": "Premium"}
WEBHOOK_SECRET = "simulator-secret"
ANI = "+15125550142"


def configure(genesys, **config: Any) -> None:
    httpx.post(f"{genesys.api_url}/_emulator/config", json=config).raise_for_status()


@pytest.fixture
def data_action(genesys):
    action = HttpReceiver("/screenpop/lookup", answer=FOUND)  # stands in for Callbridge's lookup
    configure(genesys, dataActionUrl=action.url,
              dataActionAuth={"username": "genesys-data-action", "password": "lookup-pass"})
    yield action
    configure(genesys, dataActionUrl=None, dataActionAuth=None)
    action.close()


@pytest.fixture
def webhooks(genesys):
    before = httpx.get(f"{genesys.api_url}/_emulator/config").json()
    receiver = HttpReceiver("/webhooks/genesys/conversation-ended")
    configure(genesys, webhookUrl=receiver.url, webhookSecret=WEBHOOK_SECRET)
    yield receiver
    if before["webhookUrl"] is None:
        configure(genesys, webhookUrl=None, webhookSecret=None)
    receiver.close()


@pytest.fixture(scope="module")
def http(genesys):
    token = httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(genesys.client_id, genesys.client_secret)).json()["access_token"]
    with httpx.Client(base_url=genesys.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as c:
        yield c


@pytest.fixture(scope="module")
def sdk(genesys):
    gc.configuration.host = genesys.api_url
    client = gc.api_client.ApiClient(genesys.api_url)
    return client.get_client_credentials_token(genesys.client_id, genesys.client_secret)


def place(genesys, **body: Any) -> dict[str, Any]:
    resp = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": ANI, **body}, timeout=30)
    assert resp.status_code in (200, 202), resp.text
    return resp.json()


def call_state(genesys, conversation_id: str) -> dict[str, Any]:
    return httpx.get(f"{genesys.api_url}/_emulator/calls/{conversation_id}").json()


def wait_until(check, timeout: float = 10.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def customer_of(conv: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in conv["participants"] if p["purpose"] == "customer")


def legs(conv: dict[str, Any], purpose: str) -> list[dict[str, Any]]:
    return [p for p in conv["participants"] if p["purpose"] == purpose]


def available_agent(genesys, queue: str = "Support Queue") -> dict[str, Any]:
    listing = httpx.get(f"{genesys.api_url}/_emulator/agents",
                        params={"queueName": queue, "status": "available"}).json()["agents"]
    assert listing, "no available agent"
    return listing[0]


def open_channel(http, topics: list[str]) -> str:
    channel = http.post("/api/v2/notifications/channels").json()
    resp = http.put(f"/api/v2/notifications/channels/{channel['id']}/subscriptions", json=[{"id": t} for t in topics])
    assert resp.status_code == 200, resp.text
    return channel["connectUri"]


# ---------------------------------------------------------------------------------------------
# The flow's data action


def test_data_action_gets_the_ani_and_its_answer_becomes_participant_attributes(genesys, data_action, sdk, http):
    c = place(genesys, wait=True, alertSeconds=0.05, talkSeconds=0.05)
    [(headers, body, _)] = data_action.requests
    assert json.loads(body) == {"phoneNumber": f"tel:{ANI}"}  # Call.Ani, as the flow's input
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"genesys-data-action:lookup-pass").decode()
    assert c["dataAction"]["result"] == "success" and c["dataAction"]["found"] is True
    conv = gc.ConversationsApi(sdk).get_conversation(c["conversationId"])
    customer = next(p for p in conv.participants if p.purpose == "customer")
    assert customer.attributes == SCREEN_POP
    assert c["payload"]["attributes"] == SCREEN_POP  # and the webhook carries them
    assert_model(http.get(f"/api/v2/conversations/{c['conversationId']}").json(), "Conversation")


def test_data_action_with_a_bearer_token_and_partial_answers(genesys, data_action):
    configure(genesys, dataActionAuth={"token": "t0ken"})
    shown = httpx.get(f"{genesys.api_url}/_emulator/config").json()
    assert shown["dataActionAuth"] == {"token": "********"} and "t0ken" not in json.dumps(shown)
    data_action.answer = {"success": True, "contactId": "003X", "firstName": None, "lastName": "Lee",
                          "accountId": None, "accountName": None, "tier": None}
    c = place(genesys, wait=True, alertSeconds=0, talkSeconds=0)
    assert data_action.requests[0][0]["authorization"] == "Bearer t0ken"
    # The flow's expressions: If(IsSet(x), x, "") and first + " " + last.
    assert c["payload"]["attributes"] == {"contact_id": "003X", "contact_name": "Lee", "account_id": "",
                                          "account_name": "", "customer_tier": ""}


@pytest.mark.parametrize(("answer", "status", "result"), [
    ({"success": False, "reason": "not_found", "matchCount": 0}, 200, "success"),  # found = false
    ({"message": "boom"}, 500, "failure"),
    ({"success": True, "contactId": 42}, 200, "failure"),  # breaks the output contract
])
def test_no_attributes_when_the_lookup_finds_nothing_or_fails(genesys, data_action, answer, status, result):
    data_action.answer, data_action.status = answer, status
    c = place(genesys, wait=True, alertSeconds=0, talkSeconds=0, attributes={"sf_hint": "kept"})
    assert c["dataAction"]["result"] == result and c["dataAction"]["found"] is False
    assert c["payload"]["attributes"] == {"sf_hint": "kept"}  # the call went on, without screen-pop data
    assert c["delivery"] is not None and c["agentId"]


def test_a_slow_data_action_times_out_after_3_seconds_and_the_call_goes_on(genesys, data_action, http):
    data_action.delay = 4.0
    started = time.monotonic()
    c = place(genesys, alertSeconds=0.05, talkSeconds=0.05)  # answered at once; the flow is running
    conversation_id = c["conversationId"]
    assert c["callState"] == "flow" and c["agentId"] is None
    during = http.get(f"/api/v2/conversations/calls/{conversation_id}").json()
    assert_model(during, "CallConversation")
    assert [p["purpose"] for p in during["participants"]] == ["customer"]
    assert during["participants"][0]["state"] == "connected" and "endTime" not in during["participants"][0]
    status = wait_until(lambda: (s := call_state(genesys, conversation_id))["callState"] == "ended" and s)
    waited = time.monotonic() - started
    assert 2.9 <= waited < 4.0, waited  # the flow's 3 s budget, not the action's 4 s
    assert status["dataAction"]["result"] == "timeout" and 2900 <= status["dataAction"]["elapsedMs"] < 3500
    conv = http.get(f"/api/v2/conversations/{conversation_id}").json()
    assert customer_of(conv)["attributes"] == {}
    assert [p["purpose"] for p in conv["participants"]] == ["customer", "acd", "agent"]


# ---------------------------------------------------------------------------------------------
# The agent's desktop view: notifications, REST state at each step, webhook


def test_agent_sees_alerting_with_attributes_then_connected_then_disconnected(genesys, data_action, webhooks, http):
    agent = available_agent(genesys)
    topics = [f"v2.users.{agent['id']}.conversations.calls", f"v2.users.{agent['id']}.conversations"]
    events: list[tuple[str, dict[str, Any]]] = []
    rest: dict[str, dict[str, Any]] = {}
    with connect(open_channel(http, topics), open_timeout=5) as ws:
        c = place(genesys, agentId=agent["id"], alertSeconds=0.4, talkSeconds=0.4, durationSeconds=95)
        assert c["agentId"] == agent["id"]
        while True:
            envelope = json.loads(ws.recv(timeout=10))
            if envelope["topicName"] == "channel.metadata":
                continue
            assert set(envelope) == {"topicName", "version", "eventBody", "metadata"}
            assert envelope["eventBody"]["id"] == c["conversationId"]
            events.append((envelope["topicName"], envelope["eventBody"]))
            if envelope["topicName"] == topics[0]:
                leg = next(p for p in envelope["eventBody"]["participants"] if (p.get("user") or {}).get("id")
                           == agent["id"])
                if leg["state"] in ("alerting", "connected") and leg["state"] not in rest:
                    rest[leg["state"]] = http.get(f"/api/v2/conversations/calls/{c['conversationId']}").json()
            done = [b for t, b in events if t == topics[0] and any(
                p["purpose"] == "agent" and p["state"] == "terminated" for p in b["participants"])]
            if done and sum(t == topics[0] for t, _ in events) == sum(t == topics[1] for t, _ in events):
                break
        ended_at = time.time()

    calls_events = [body for topic, body in events if topic == topics[0]]
    conversation_events = [body for topic, body in events if topic == topics[1]]
    for body in calls_events:
        assert_model(body, "ConversationCallEventTopicCallConversation")
    for body in conversation_events:
        assert_model(body, "ConversationEventTopicConversation")
    assert len(calls_events) == len(conversation_events) == 4

    def agent_leg(body: dict[str, Any]) -> dict[str, Any]:
        return next(p for p in body["participants"] if p["purpose"] == "agent")

    assert [agent_leg(b)["state"] for b in calls_events] == ["alerting", "connected", "disconnected", "terminated"]
    alerting = calls_events[0]
    assert customer_of(alerting)["attributes"] == SCREEN_POP  # a desktop pops contact_id on alerting
    assert customer_of(alerting)["ani"] == f"tel:{ANI}"
    assert [p["purpose"] for p in alerting["participants"]] == ["customer", "acd", "agent"]
    assert agent_leg(alerting)["user"] == {"id": agent["id"]} and "connectedTime" not in agent_leg(alerting)
    connected = calls_events[1]
    assert legs(connected, "acd")[0]["state"] == "disconnected" and legs(connected, "acd")[0]["disconnectType"] == "transfer"
    assert agent_leg(connected)["connectedTime"] and agent_leg(connected)["recordingState"] == "active"
    assert agent_leg(calls_events[2])["endTime"] and customer_of(calls_events[2])["disconnectType"] == "endpoint"
    # The conversations topic carries the state on each participant's calls.
    assert [agent_leg(b)["calls"][0]["state"] for b in conversation_events] == \
        ["alerting", "connected", "disconnected", "terminated"]
    assert customer_of(conversation_events[0])["attributes"] == SCREEN_POP

    # What the API said while the call was alerting and connected.
    for state in ("alerting", "connected"):
        assert_model(rest[state], "CallConversation")
        assert agent_leg(rest[state])["state"] == state
        assert "endTime" not in agent_leg(rest[state])
    assert rest["connected"]["recordingState"] == "active"

    # After: ended, recorded, durationSeconds as recorded, webhook signed and sent after the end.
    final = http.get(f"/api/v2/conversations/{c['conversationId']}").json()
    assert_model(final, "Conversation")
    assert final["recordingState"] == "NONE"
    assert {p["calls"][0]["state"] for p in final["participants"]} == {"terminated"}
    headers, body, received_at = wait_until(lambda: webhooks.requests and webhooks.requests[0])
    assert received_at >= ended_at - 0.5
    verify(WEBHOOK_SECRET, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), body,
           now=time.time(), max_skew_seconds=60)
    event = CallEndedEvent.model_validate_json(body)
    assert event.conversation_id == c["conversationId"] and event.agent_id == agent["id"]
    assert event.duration_seconds == 95 and (event.end_time - event.start_time).total_seconds() == 95
    assert event.attributes == SCREEN_POP
    assert event.end_time.timestamp() <= time.time()
    recordings = http.get(f"/api/v2/conversations/{c['conversationId']}/recordings").json()
    assert_model(recordings, "list[Recording]")
    assert [r["id"] for r in recordings] == [event.recording_id] and recordings[0]["mediaUris"]


def test_queue_topics_see_the_call_from_the_queue_on(genesys, http):
    queue = next(q for q in http.get("/api/v2/routing/queues", params={"name": "Toronto Support"}).json()["entities"])
    topics = [f"v2.routing.queues.{queue['id']}.conversations.calls", f"v2.routing.queues.{queue['id']}.conversations"]
    with connect(open_channel(http, topics), open_timeout=5) as ws:
        c = place(genesys, queueName="Toronto Support", alertSeconds=0.05, talkSeconds=0.05)
        first = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
    assert {e["topicName"] for e in first} == set(topics)
    for envelope in first:
        body = envelope["eventBody"]
        assert body["id"] == c["conversationId"]
        assert [p["purpose"] for p in body["participants"]] == ["customer", "acd"]  # queued, no agent yet
        model = "QueueConversationCallEventTopicCallConversation" if envelope["topicName"].endswith(".calls") \
            else "QueueConversationEventTopicConversation"
        assert_model(body, model)


def test_heartbeats_on_the_socket(genesys, http):
    configure(genesys, heartbeatSeconds=0.2)
    try:
        with connect(open_channel(http, []), open_timeout=5) as ws:
            started = time.monotonic()
            beat = json.loads(ws.recv(timeout=5))
    finally:
        configure(genesys, heartbeatSeconds=30)
    assert beat == {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
    assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------------------------------------
# Routing


def test_an_agent_on_a_call_is_not_picked_twice(genesys, http):
    agent = available_agent(genesys)
    first = place(genesys, agentId=agent["id"], alertSeconds=0.05, talkSeconds=4)
    wait_until(lambda: call_state(genesys, first["conversationId"])["callState"] == "connected")
    busy = httpx.get(f"{genesys.api_url}/_emulator/agents", params={"queueName": "Support Queue"}).json()["agents"]
    me = next(a for a in busy if a["id"] == agent["id"])
    assert me["status"] == "connected" and me["conversationId"] == first["conversationId"]
    available = httpx.get(f"{genesys.api_url}/_emulator/agents",
                          params={"queueName": "Support Queue", "status": "available"}).json()["agents"]
    assert agent["id"] not in {a["id"] for a in available}

    # Routed by the queue: anyone but the busy agent.
    others = [place(genesys, alertSeconds=0.05, talkSeconds=0.8) for _ in range(3)]
    # Forced to the busy agent: it waits in queue until the first call ends.
    second = place(genesys, agentId=agent["id"], alertSeconds=0.05, talkSeconds=0.05)
    time.sleep(0.5)
    waiting = http.get(f"/api/v2/conversations/{second['conversationId']}").json()
    assert [p["purpose"] for p in waiting["participants"]] == ["customer", "acd"]
    assert call_state(genesys, second["conversationId"])["callState"] == "queued"
    while True:  # never alerted while the agent's first call is still on
        s2 = call_state(genesys, second["conversationId"])
        s1 = call_state(genesys, first["conversationId"])
        assert not (s2.get("agentId") and s1["callState"] != "ended"), (s1, s2)
        if s2["callState"] == "ended":
            break
        time.sleep(0.02)
    assert s2["agentId"] == agent["id"]

    picked = [wait_until(lambda c=c: call_state(genesys, c["conversationId"]).get("agentId")) for c in others]
    assert len(set(picked)) == 3 and agent["id"] not in picked
    for c in others:
        wait_until(lambda c=c: call_state(genesys, c["conversationId"])["callState"] == "ended")


def test_routing_goes_to_the_longest_idle_agent(genesys):
    order = [a["id"] for a in httpx.get(f"{genesys.api_url}/_emulator/agents",
                                        params={"queueName": "São Paulo Suporte", "status": "available"}).json()["agents"]]
    c = place(genesys, queueName="São Paulo Suporte", wait=True, alertSeconds=0, talkSeconds=0)
    assert c["agentId"] == order[0]
    after = [a["id"] for a in httpx.get(f"{genesys.api_url}/_emulator/agents",
                                        params={"queueName": "São Paulo Suporte", "status": "available"}).json()["agents"]]
    assert after[-1] == order[0]  # just finished a call: last in line


# ---------------------------------------------------------------------------------------------
# Request contract


def test_simulator_timeline_options_are_validated(genesys):
    for body in ({"alertSeconds": -1}, {"talkSeconds": "1"}, {"realtime": "yes"}, {"alertSeconds": 99999}):
        resp = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": ANI, **body})
        assert resp.status_code == 400, body
    for bad in ({"dataActionAuth": {"username": "u"}}, {"dataActionAuth": "x"}, {"heartbeatSeconds": 0}):
        assert httpx.post(f"{genesys.api_url}/_emulator/config", json=bad).status_code == 400, bad
    assert httpx.get(f"{genesys.api_url}/_emulator/agents", params={"queueName": "Nowhere"}).status_code == 404


def test_realtime_false_keeps_the_instant_call(genesys, http):
    c = place(genesys, realtime=False, durationSeconds=60)
    assert c["agentId"] and c["durationSeconds"] == 60
    conv = http.get(f"/api/v2/conversations/calls/{c['conversationId']}").json()
    assert {p["state"] for p in conv["participants"]} == {"terminated"}
