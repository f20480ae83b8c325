"""Contract suite for the Genesys Cloud emulator, driven by the official SDK.

Every body the emulator answers with must deserialize into PureCloudPlatformClientV2's
models, and `assert_model` walks the raw JSON against each model's attribute_map and
swagger_types: a key the model doesn't define, a mistyped value or an enum value the SDK
doesn't know fails the test. Raw httpx covers what the SDK hides (error bodies, headers).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import PureCloudPlatformClientV2 as gc
import pytest
from PureCloudPlatformClientV2 import models as sdk_models
from PureCloudPlatformClientV2.rest import ApiException

from callbridge.domain.models import CallEndedEvent
from devstack.processes import ManagedProcess, free_port, python_module
from callbridge.domain.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from tests.http_receiver import HttpReceiver

# ---------------------------------------------------------------------------------------------
# The model walker


def assert_model(raw: Any, type_name: str, path: str = "$") -> None:
    """Fail on any key, type or enum value that the SDK model `type_name` doesn't define."""
    if raw is None:
        return
    if type_name.startswith("list["):
        assert isinstance(raw, list), f"{path}: expected a list for {type_name}, got {raw!r}"
        for i, item in enumerate(raw):
            assert_model(item, type_name[5:-1], f"{path}[{i}]")
        return
    if type_name.startswith("dict("):
        assert isinstance(raw, dict), f"{path}: expected an object for {type_name}"
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, value in raw.items():
            assert isinstance(key, str)
            assert_model(value, inner, f"{path}.{key}")
        return
    if type_name == "str":
        assert isinstance(raw, str), f"{path}: expected str, got {raw!r}"
    elif type_name == "int":
        assert isinstance(raw, int) and not isinstance(raw, bool), f"{path}: expected int, got {raw!r}"
    elif type_name == "float":
        assert isinstance(raw, (int, float)) and not isinstance(raw, bool), f"{path}: expected number"
    elif type_name == "bool":
        assert isinstance(raw, bool), f"{path}: expected bool, got {raw!r}"
    elif type_name == "datetime":
        assert isinstance(raw, str) and raw.endswith("Z"), f"{path}: expected an ISO-8601 UTC time, got {raw!r}"
        datetime.fromisoformat(raw.replace("Z", "+00:00"))
    elif type_name == "object":
        pass
    else:
        model = getattr(sdk_models, type_name)()
        assert isinstance(raw, dict), f"{path}: expected an object for {type_name}, got {raw!r}"
        by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
        for key, value in raw.items():
            assert key in by_json, f"{path}.{key}: not a field of {type_name}"
            attr = by_json[key]
            attr_type = model.swagger_types[attr]
            assert_model(value, attr_type, f"{path}.{key}")
            if attr_type == "str" and value is not None:
                setattr(model, attr, value)  # enum setters map unknown values to a marker
                assert getattr(model, attr) != "outdated_sdk_version", f"{path}.{key}: {value!r} not allowed"


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def api_client(genesys) -> gc.api_client.ApiClient:
    gc.configuration.host = genesys.api_url
    client = gc.api_client.ApiClient(genesys.api_url)
    return client.get_client_credentials_token(genesys.client_id, genesys.client_secret)


@pytest.fixture(scope="module")
def token(api_client) -> str:
    return api_client.access_token


@pytest.fixture(scope="module")
def http(genesys, token) -> httpx.Client:
    with httpx.Client(base_url=genesys.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as c:
        yield c


@pytest.fixture(autouse=True)
def no_faults(genesys):
    yield
    httpx.delete(f"{genesys.api_url}/_emulator/faults").raise_for_status()


def simulate(genesys, **body: Any) -> dict[str, Any]:
    resp = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": "+15125551234", **body}, timeout=30)
    assert resp.status_code in (200, 202), resp.text
    return resp.json()


@pytest.fixture(scope="module")
def call(genesys) -> dict[str, Any]:
    """One ended, recorded inbound call, without a webhook (none configured for this module yet).
    It runs the live timeline (wait: the answer comes once the call has ended)."""
    return simulate(genesys, durationSeconds=180, queueName="Toronto Support",
                    attributes={"contact_id": "003000000000001AAA"}, wait=True, alertSeconds=0.1, talkSeconds=0.1)


def assert_error_body(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert_model(body, "ErrorBody")
    assert body["status"] == status and body["code"] == code and body["message"]
    assert body["contextId"] == resp.headers["inin-correlation-id"]
    return body


# ---------------------------------------------------------------------------------------------
# OAuth and errors


def test_sdk_gets_a_client_credentials_token(api_client, genesys):
    assert api_client.access_token
    raw = httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
                     auth=(genesys.client_id, genesys.client_secret))
    assert raw.status_code == 200
    body = raw.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 86400
    assert raw.headers["inin-correlation-id"]


@pytest.mark.parametrize(("client_id", "secret", "status", "description"), [
    ("test-client", "wrong", 401, "authentication failed"),
    ("nobody", "test-secret", 400, "client not found"),
])
def test_wrong_client_credentials_get_the_login_services_error(genesys, client_id, secret, status, description):
    resp = httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(client_id, secret))
    assert resp.status_code == status
    assert resp.json() == {"error": "invalid_client", "description": description, "error_description": description}
    with pytest.raises(ApiException) as failure:
        gc.api_client.ApiClient(genesys.api_url).get_client_credentials_token(client_id, secret)
    assert failure.value.status == status


def test_unsupported_grant_is_refused(genesys):
    resp = httpx.post(f"{genesys.api_url}/oauth/token", data={"grant_type": "password"},
                      auth=(genesys.client_id, genesys.client_secret))
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "authentication.required"),
    ({"Authorization": "Bearer not-a-token"}, "bad.credentials"),
    ({"Authorization": "Basic dGVzdDp0ZXN0"}, "authentication.required"),
])
def test_api_without_a_valid_token_is_401_error_body(genesys, call, headers, code):
    resp = httpx.get(f"{genesys.api_url}/api/v2/conversations/{call['conversationId']}", headers=headers)
    assert_error_body(resp, 401, code)


def test_unknown_conversation_is_404_error_body(http, api_client):
    assert_error_body(http.get("/api/v2/conversations/00000000-0000-4000-8000-000000000000"), 404, "not.found")
    assert_error_body(http.get("/api/v2/conversations/calls/nope"), 404, "not.found")
    assert_error_body(http.get("/api/v2/no/such/resource"), 404, "not.found")
    with pytest.raises(ApiException) as failure:
        gc.ConversationsApi(api_client).get_conversation("00000000-0000-4000-8000-000000000000")
    assert failure.value.status == 404


def test_every_response_has_a_correlation_id(genesys, http):
    for resp in (http.get("/api/v2/tokens/me"), httpx.get(f"{genesys.api_url}/_emulator/health"),
                 httpx.get(f"{genesys.api_url}/api/v2/users/x")):
        assert resp.headers.get("inin-correlation-id")


# ---------------------------------------------------------------------------------------------
# Users, queues, token


def test_seeded_users_through_the_sdk(api_client, http):
    listing = http.get("/api/v2/users", params={"pageSize": 100})
    assert listing.status_code == 200
    assert_model(listing.json(), "UserEntityListing")
    users = listing.json()["entities"]
    assert 45 <= len(users) <= 60 and listing.json()["total"] == len(users)
    assert all(u["email"].endswith("@techsupport.example") and u["name"] for u in users)
    user = gc.UsersApi(api_client).get_user(users[0]["id"])
    assert isinstance(user, sdk_models.User) and user.id == users[0]["id"] and user.state == "active"
    raw = http.get(f"/api/v2/users/{users[0]['id']}")
    assert_model(raw.json(), "User")
    assert_error_body(http.get("/api/v2/users/00000000-0000-4000-8000-000000000000"), 404, "not.found")


def test_users_me_needs_a_user_context_like_genesys(http, api_client):
    body = assert_error_body(http.get("/api/v2/users/me"), 400, "bad.request")
    assert "requires a user context" in body["message"]
    with pytest.raises(ApiException) as failure:
        gc.UsersApi(api_client).get_users_me()
    assert failure.value.status == 400


def test_token_info(api_client, http):
    raw = http.get("/api/v2/tokens/me")
    assert_model(raw.json(), "TokenInfo")
    info = gc.TokensApi(api_client).get_tokens_me()
    assert info.o_auth_client.id == "test-client" and info.o_auth_client.authorized_grant_type == "CLIENT-CREDENTIALS"


def test_seeded_queues(api_client, http):
    listing = gc.RoutingApi(api_client).get_routing_queues(page_size=25)
    assert {q.name for q in listing.entities} == {"Support Queue", "Toronto Support", "São Paulo Suporte"}
    raw = http.get("/api/v2/routing/queues", params={"name": "São Paulo Suporte"}).json()
    assert_model(raw, "QueueEntityListing")
    assert [q["name"] for q in raw["entities"]] == ["São Paulo Suporte"]
    assert_model(http.get(f"/api/v2/routing/queues/{raw['entities'][0]['id']}").json(), "Queue")


# ---------------------------------------------------------------------------------------------
# Conversations


def test_conversation_through_the_sdk(api_client, http, call):
    conv = gc.ConversationsApi(api_client).get_conversation(call["conversationId"])
    assert isinstance(conv, sdk_models.Conversation)
    purposes = [p.purpose for p in conv.participants]
    assert purposes == ["customer", "acd", "agent"]
    customer, acd, agent = conv.participants
    assert customer.id == call["participantId"]
    assert customer.ani == "tel:+15125551234" and customer.dnis == "tel:+18005550100"
    assert customer.attributes == {"contact_id": "003000000000001AAA"}
    assert acd.queue_name == "Toronto Support" and acd.queue_id == call["queueId"]
    assert agent.user_id == call["agentId"] and agent.name == call["agentName"]
    assert agent.calls[0].recording_id == call["recordingId"]
    assert (conv.end_time - conv.start_time).total_seconds() == 180
    raw = http.get(f"/api/v2/conversations/{call['conversationId']}").json()
    assert_model(raw, "Conversation")


def test_call_conversation_through_the_sdk(api_client, http, call):
    conv = gc.ConversationsApi(api_client).get_conversations_call(call["conversationId"])
    assert isinstance(conv, sdk_models.CallConversation)
    agent = next(p for p in conv.participants if p.purpose == "agent")
    assert agent.user.id == call["agentId"] and agent.state == "terminated"
    raw = http.get(f"/api/v2/conversations/calls/{call['conversationId']}").json()
    assert_model(raw, "CallConversation")


def test_participant_attributes_patch_merges(api_client, http, genesys):
    c = simulate(genesys, attributes={"contact_id": "003A", "lang": "en"}, recording=False, realtime=False)
    assert c["recordingId"] is None
    api = gc.ConversationsApi(api_client)
    body = sdk_models.ParticipantAttributes()
    body.attributes = {"sf_task_id": "00T1", "lang": "fr"}
    result = api.patch_conversations_call_participant_attributes(c["conversationId"], c["participantId"], body)
    assert result.attributes == {"contact_id": "003A", "lang": "fr", "sf_task_id": "00T1"}
    conv = api.get_conversation(c["conversationId"])
    assert conv.participants[0].attributes == {"contact_id": "003A", "lang": "fr", "sf_task_id": "00T1"}
    url = f"/api/v2/conversations/calls/{c['conversationId']}/participants/{c['participantId']}/attributes"
    assert_error_body(http.patch(url, json={"attributes": {"n": 1}}), 400, "invalid.value")
    assert_error_body(http.patch(url.replace(c["participantId"], "nope"), json={"attributes": {}}), 404, "not.found")


def test_outbound_call_shape(api_client, genesys):
    c = simulate(genesys, ani="+18005550100", dnis="+14165550199", direction="outbound", durationSeconds=60)
    conv = gc.ConversationsApi(api_client).get_conversation(c["conversationId"])
    assert [p.purpose for p in conv.participants] == ["agent", "external"]
    assert c["payload"]["direction"] == "OUTBOUND" and c["payload"]["calleeId"] == "+14165550199"
    bad = httpx.post(f"{genesys.api_url}/_emulator/calls", json={"ani": "+15125551234", "direction": "outbound"})
    assert bad.status_code == 400 and "dnis" in bad.json()["error"]


# ---------------------------------------------------------------------------------------------
# Recordings


def test_recordings_through_the_sdk(api_client, http, call, genesys):
    api = gc.RecordingApi(api_client)
    [listed] = api.get_conversation_recordings(call["conversationId"])
    assert listed.id == call["recordingId"]
    rec = api.get_conversation_recording(call["conversationId"], call["recordingId"])
    assert isinstance(rec, sdk_models.Recording) and rec.conversation_id == call["conversationId"]
    media_uri = next(iter(rec.media_uris.values())).media_uri
    assert media_uri.startswith(genesys.api_url) and media_uri.split("?")[0].endswith(".webm")
    assert "Expires=" in media_uri  # pre-signed, and it expires (tests/integration/test_recording_links.py)
    media = httpx.get(media_uri)  # pre-signed style: no bearer token
    assert media.status_code == 200 and media.headers["content-type"] == "audio/webm"
    assert media.content.startswith(b"\x1a\x45\xdf\xa3")
    raw_list = http.get(f"/api/v2/conversations/{call['conversationId']}/recordings")
    assert_model(raw_list.json(), "list[Recording]")
    raw = http.get(f"/api/v2/conversations/{call['conversationId']}/recordings/{call['recordingId']}",
                   params={"formatId": "WAV"})
    assert_model(raw.json(), "Recording")
    assert httpx.get(raw.json()["mediaUris"]["S"]["mediaUri"]).content.startswith(b"RIFF")
    assert_error_body(http.get(f"/api/v2/conversations/{call['conversationId']}/recordings/nope"), 404, "not.found")
    assert_error_body(http.get(f"/api/v2/conversations/{call['conversationId']}/recordings/{call['recordingId']}",
                               params={"formatId": "FLAC"}), 400, "invalid.value")


def test_recording_is_202_while_transcoding(http, genesys):
    # Long enough that a loaded machine still asks while it transcodes (1.5 s once wasn't).
    c = simulate(genesys, transcodeSeconds=4, realtime=False)
    path = f"/api/v2/conversations/{c['conversationId']}/recordings"
    pending = http.get(f"{path}/{c['recordingId']}")
    assert pending.status_code == 202
    assert_model(pending.json(), "Recording")
    assert "mediaUris" not in pending.json() and pending.json()["estimatedTranscodeTimeMs"] > 0
    assert http.get(path, params={"maxWaitMs": 100}).status_code == 202
    ready = http.get(path, params={"maxWaitMs": 10000})  # the list waits for transcoding
    assert ready.status_code == 200 and ready.json()[0]["mediaUris"]["S"]["mediaUri"]


def test_recording_is_deleted_by_setting_its_delete_date(api_client, http, genesys):
    c = simulate(genesys, realtime=False)
    api = gc.RecordingApi(api_client)
    rec = api.get_conversation_recording(c["conversationId"], c["recordingId"])
    body = sdk_models.Recording()
    body.delete_date = datetime.fromisoformat("2031-01-01T00:00:00+00:00")
    updated = api.put_conversation_recording(c["conversationId"], rec.id, body)
    assert updated.delete_date.year == 2031
    raw = http.put(f"/api/v2/conversations/{c['conversationId']}/recordings/{rec.id}",
                   json={"deleteDate": "2001-01-01T00:00:00.000Z"})
    assert raw.status_code == 200
    assert_model(raw.json(), "Recording")
    assert_error_body(http.get(f"/api/v2/conversations/{c['conversationId']}/recordings/{rec.id}"), 404, "not.found")
    assert http.get(f"/api/v2/conversations/{c['conversationId']}/recordings").json() == []


# ---------------------------------------------------------------------------------------------
# Faults and stats


def test_delay_and_fail_rules(http, genesys, call):
    # Rules only this test's requests match: the session's worker logs this call too (the stack's
    # webhook may be configured by then) and fetches /recordings/{id}, which would use a rule up.
    conversation = call["conversationId"]
    path = f"/api/v2/conversations/{conversation}/recordings"
    calls_path = f"/api/v2/conversations/calls/{conversation}"
    only_the_listing = f"/conversations/{conversation}/recordings$"
    httpx.post(f"{genesys.api_url}/_emulator/faults", json={
        "delay_next": [{"method": "GET", "path_regex": only_the_listing, "seconds": 0.6, "count": 1}],
        "fail_next": [{"method": "GET", "path_regex": f"{calls_path}$", "status": 503, "count": 2}],
    }).raise_for_status()
    shown = httpx.get(f"{genesys.api_url}/_emulator/faults").json()
    assert shown["delay_next"][0]["count"] == 1 and shown["fail_next"][0]["status"] == 503
    started = time.monotonic()
    assert http.get(path).status_code == 200
    assert time.monotonic() - started >= 0.6
    started = time.monotonic()
    assert http.get(path).status_code == 200 and time.monotonic() - started < 0.5  # used up
    assert_error_body(http.get(calls_path), 503, "service.unavailable")
    assert_error_body(http.get(calls_path), 503, "service.unavailable")
    assert http.get(calls_path).status_code == 200
    with pytest.raises(httpx.ReadTimeout):  # a client with a budget gives up on a slow endpoint
        httpx.post(f"{genesys.api_url}/_emulator/faults", json={"delay_next": [
            {"method": "GET", "path_regex": only_the_listing, "seconds": 1.0, "count": 1}]}).raise_for_status()
        http.get(path, timeout=0.3)


def test_latency_and_error_rate(http, genesys):
    httpx.post(f"{genesys.api_url}/_emulator/faults", json={"latency_ms": 200}).raise_for_status()
    started = time.monotonic()
    http.get("/api/v2/tokens/me").raise_for_status()
    assert time.monotonic() - started >= 0.2
    httpx.post(f"{genesys.api_url}/_emulator/faults", json={"latency_ms": 0, "error_rate": 1.0,
                                                             "error_status": 502}).raise_for_status()
    assert_error_body(http.get("/api/v2/tokens/me"), 502, "bad.gateway")
    assert httpx.get(f"{genesys.api_url}/_emulator/health").status_code == 200  # control API unaffected
    bad = httpx.post(f"{genesys.api_url}/_emulator/faults", json={"error_rate": 3})
    assert bad.status_code == 400


def test_stats_count_requests_by_route(http, genesys, call):
    httpx.post(f"{genesys.api_url}/_emulator/stats/reset").raise_for_status()
    http.get(f"/api/v2/conversations/{call['conversationId']}")
    http.get("/api/v2/conversations/another-id")
    http.get(f"/api/v2/users/{call['agentId']}")
    stats = httpx.get(f"{genesys.api_url}/_emulator/stats").json()["requests"]
    assert stats["GET /api/v2/conversations/{conversationId}"] == 2
    assert stats["GET /api/v2/users/{userId}"] == 1


# ---------------------------------------------------------------------------------------------
# The call simulator's webhook


WEBHOOK_SECRET = "receiver-secret"


@pytest.fixture
def receiver(genesys):
    before = httpx.get(f"{genesys.api_url}/_emulator/config").json()
    r = HttpReceiver("/webhooks/genesys/conversation-ended")
    httpx.post(f"{genesys.api_url}/_emulator/config",
               json={"webhookUrl": r.url, "webhookSecret": WEBHOOK_SECRET}).raise_for_status()
    yield r
    # Leave the shared emulator as found (another suite may have pointed it at its starter).
    if before["webhookUrl"] is None:
        httpx.post(f"{genesys.api_url}/_emulator/config", json={"webhookUrl": None, "webhookSecret": None})
    r.close()


def assert_signed(headers: dict[str, str], body: bytes) -> None:
    verify(WEBHOOK_SECRET, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), body,
           now=time.time(), max_skew_seconds=60)
    with pytest.raises(SignatureError):
        verify("another-secret", headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), body,
               now=time.time(), max_skew_seconds=60)


def test_config_masks_the_secret(genesys, receiver):
    shown = httpx.get(f"{genesys.api_url}/_emulator/config").json()
    assert shown["webhookUrl"] == receiver.url
    assert WEBHOOK_SECRET not in json.dumps(shown) and shown["webhookSecretSet"] is True
    assert httpx.post(f"{genesys.api_url}/_emulator/config", json={"nope": 1}).status_code == 400


def test_simulated_call_sends_a_signed_conversation_ended_webhook(genesys, receiver, api_client):
    c = simulate(genesys, durationSeconds=245, attributes={"contact_id": "003B"}, wait=True)
    assert c["delivery"]["delivered"] is True and c["delivery"]["attempts"] == 1
    [(headers, body, _)] = receiver.requests
    assert_signed(headers, body)
    payload = json.loads(body)
    assert list(payload) == ["conversationId", "participantId", "conversationType", "callerId", "calleeId",
                             "direction", "startTime", "endTime", "durationSeconds", "recordingId", "agentId",
                             "agentName", "queueId", "queueName", "interactionId", "attributes"]
    event = CallEndedEvent.model_validate_json(body)
    assert event.conversation_id == c["conversationId"] and event.duration_seconds == 245
    assert event.direction == "INBOUND" and event.caller_id == "+15125551234"
    assert event.attributes == {"contact_id": "003B"} and event.recording_id == c["recordingId"]
    assert payload["endTime"].endswith("Z") and (event.end_time - event.start_time).total_seconds() == 245
    # What the webhook says is what the API says.
    conv = gc.ConversationsApi(api_client).get_conversation(event.conversation_id)
    agent = next(p for p in conv.participants if p.purpose == "agent")
    assert (agent.user_id, agent.name, agent.queue_id) == (event.agent_id, event.agent_name, event.queue_id)


def test_webhook_retries_three_times_on_500(genesys, receiver):
    receiver.statuses = [500, 500, 500]
    c = simulate(genesys, wait=True)
    assert c["delivery"] | {} and c["delivery"]["attempts"] == 3 and c["delivery"]["delivered"] is False
    assert c["delivery"]["lastStatus"] == 500
    times = [t for _, _, t in receiver.requests]
    assert len(times) == 3
    assert 0.9 <= times[1] - times[0] < 1.8 and 1.9 <= times[2] - times[1] < 2.8
    assert len({body for _, body, _ in receiver.requests}) == 1  # the same body every try
    for headers, body, _ in receiver.requests:
        assert_signed(headers, body)


def test_background_delivery_and_redelivery(genesys, receiver):
    receiver.statuses = [503]
    c = simulate(genesys)  # wait=False: answered at once, delivered in the background
    assert "delivery" not in c
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = httpx.get(f"{genesys.api_url}/_emulator/calls/{c['conversationId']}").json()
        if status["delivered"]:
            break
        time.sleep(0.1)
    assert status["delivered"] and status["attempts"] == 2 and status["lastStatus"] == 200
    resp = httpx.post(f"{genesys.api_url}/_emulator/calls/{c['conversationId']}/redeliver?wait=true", timeout=30)
    assert resp.json()["delivered"] is True
    assert len(receiver.requests) == 3
    assert receiver.requests[0][1] == receiver.requests[2][1]
    assert_signed(receiver.requests[2][0], receiver.requests[2][1])
    assert httpx.get(f"{genesys.api_url}/_emulator/calls/nope").status_code == 404


def test_simulator_rejects_bad_requests(genesys):
    for body in ({"ani": "5125551234"}, {"ani": "+15125551234", "queueName": "Nowhere"},
                 {"ani": "+15125551234", "attributes": {"n": 1}}, {"ani": "+15125551234", "bogus": 1}):
        resp = httpx.post(f"{genesys.api_url}/_emulator/calls", json=body)
        assert resp.status_code == 400, body


# ---------------------------------------------------------------------------------------------
# A second emulator: command-line options, rate limit, token expiry, persistence


@pytest.fixture(scope="module")
def small(test_var_dir):
    data_dir = test_var_dir / "genesys-small"
    port = free_port()

    def start() -> ManagedProcess:
        return ManagedProcess(
            name="genesys-small",
            argv=python_module("emulators.genesys", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--data-dir", str(data_dir), "--client-id", "small", "--client-secret", "s3",
                               "--webhook-url", "http://127.0.0.1:9/none", "--webhook-secret", "cli-secret",
                               "--token-ttl", "2", "--rate-limit", "5"),
            ready_url=f"http://127.0.0.1:{port}/_emulator/health",
            log_path=test_var_dir / "genesys-small.log",
        ).start()

    proc = start()
    holder = {"proc": proc, "url": f"http://127.0.0.1:{port}", "restart": None}

    def restart() -> None:
        holder["proc"].stop()
        holder["proc"] = start()

    holder["restart"] = restart
    yield holder
    holder["proc"].stop()


def _small_token(small) -> str:
    return httpx.post(f"{small['url']}/oauth/token", data={"grant_type": "client_credentials"},
                      auth=("small", "s3")).json()["access_token"]


def test_rate_limit_is_429_with_retry_after(small):
    headers = {"Authorization": f"Bearer {_small_token(small)}"}
    for _ in range(5):
        assert httpx.get(f"{small['url']}/api/v2/tokens/me", headers=headers).status_code == 200
    resp = httpx.get(f"{small['url']}/api/v2/tokens/me", headers=headers)
    body = assert_error_body(resp, 429, "too.many.requests")
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and f"[{retry_after}]" in body["message"]
    # The budget is per token: a fresh token is not limited.
    fresh = {"Authorization": f"Bearer {_small_token(small)}"}
    assert httpx.get(f"{small['url']}/api/v2/tokens/me", headers=fresh).status_code == 200


def test_command_line_webhook_settings_and_token_expiry(small):
    config = httpx.get(f"{small['url']}/_emulator/config").json()
    assert config["webhookUrl"] == "http://127.0.0.1:9/none" and config["webhookSecretSet"]
    headers = {"Authorization": f"Bearer {_small_token(small)}"}
    assert httpx.get(f"{small['url']}/api/v2/tokens/me", headers=headers).status_code == 200
    time.sleep(2.1)
    assert_error_body(httpx.get(f"{small['url']}/api/v2/tokens/me", headers=headers), 401, "bad.credentials")


def test_state_survives_a_restart(small):
    c = httpx.post(f"{small['url']}/_emulator/calls", json={"ani": "+15125550000", "recording": True}).json()
    users_before = httpx.get(f"{small['url']}/api/v2/users", params={"pageSize": 100},
                             headers={"Authorization": f"Bearer {_small_token(small)}"}).json()["entities"]
    small["restart"]()
    headers = {"Authorization": f"Bearer {_small_token(small)}"}
    conv = httpx.get(f"{small['url']}/api/v2/conversations/{c['conversationId']}", headers=headers)
    assert conv.status_code == 200 and conv.json()["participants"][0]["ani"] == "tel:+15125550000"
    users_after = httpx.get(f"{small['url']}/api/v2/users", params={"pageSize": 100}, headers=headers).json()
    assert [u["id"] for u in users_after["entities"]] == [u["id"] for u in users_before]


def test_seed_is_deterministic(small, http):
    """Two data dirs, same seed: the same agents and demo external contacts (ids included)."""
    headers = {"Authorization": f"Bearer {_small_token(small)}"}
    theirs = httpx.get(f"{small['url']}/api/v2/users", params={"pageSize": 100}, headers=headers).json()
    ours = http.get("/api/v2/users", params={"pageSize": 100}).json()
    assert [u["id"] for u in theirs["entities"]] == [u["id"] for u in ours["entities"]]
    for path in ("/api/v2/externalcontacts/scan/contacts", "/api/v2/externalcontacts/scan/organizations"):
        theirs = httpx.get(f"{small['url']}{path}", params={"limit": 50}, headers=headers).json()["entities"]
        ours = http.get(path, params={"limit": 50}).json()["entities"]
        assert [c["id"] for c in theirs] == [c["id"] for c in ours[:len(theirs)]] and theirs


def test_seeded_demo_external_contacts(api_client, http):
    api = gc.ExternalContactsApi(api_client)
    orgs = http.get("/api/v2/externalcontacts/scan/organizations", params={"limit": 10}).json()
    assert_model(orgs, "CursorOrganizationListing")
    assert {"Lone Star Logistics", "Great Lakes Retail", "Paulista Engenharia"} <= {o["name"] for o in orgs["entities"]}
    page = api.get_externalcontacts_contacts(q="lonestarlogistics.example", page_size=100)
    assert page.total >= 6 and all(c.external_organization.name == "Lone Star Logistics" for c in page.entities)
    contact = page.entities[0]
    assert contact.work_phone.e164.startswith("+1512555") and contact.external_ids[0].value.startswith("003DEMO")
    assert contact.create_date and contact.modify_date
    assert_model(http.get(f"/api/v2/externalcontacts/contacts/{contact.id}").json(), "ExternalContact")
    # Brazilian numbers are stored as typed, with the E.164 the server computed.
    found = api.get_externalcontacts_reversewhitepageslookup("+5511955550114")
    assert [(c.work_phone.display, c.address.country_code) for c in found.contacts] == [("(11) 95555-0114", "BR")]


# ---------------------------------------------------------------------------------------------
# External contacts and organizations


def test_external_contact_crud_through_the_sdk(api_client, http):
    api = gc.ExternalContactsApi(api_client)
    org = sdk_models.ExternalOrganization()
    org.name = "Acme Brasil Ltda"
    org.industry = "Manufacturing"
    org = api.post_externalcontacts_organizations(org)
    assert org.id and org.create_date
    body = sdk_models.ExternalContact()
    body.first_name, body.last_name = "Joana", "Araújo"
    body.work_email = "joana.araujo@acme.example"
    phone = sdk_models.PhoneNumber()
    phone.display, phone.country_code = "(11) 98765-4321", "BR"
    body.cell_phone = phone
    ref = sdk_models.ExternalOrganization()
    ref.id = org.id
    body.external_organization = ref
    created = api.post_externalcontacts_contacts(body)
    assert created.id and created.create_date and created.modify_date
    assert created.cell_phone.e164 == "+5511987654321" and created.cell_phone.display == "(11) 98765-4321"
    assert created.external_organization.id == org.id
    raw = http.get(f"/api/v2/externalcontacts/contacts/{created.id}").json()
    assert_model(raw, "ExternalContact")
    assert_model(http.get(f"/api/v2/externalcontacts/organizations/{org.id}").json(), "ExternalOrganization")

    created.title = "Buyer"
    updated = api.put_externalcontacts_contact(created.id, created)
    assert updated.title == "Buyer" and updated.create_date == created.create_date
    assert updated.modify_date >= created.modify_date

    change = sdk_models.ContactsPatchChange()
    # The field is a JSONPath from the entity's root (ContactsPatchChange's docs): "$.middleName".
    change.field, change.value, change.action = "$.middleName", "Maria", "UpdateIfEmpty"
    patch = sdk_models.ExternalContactsPatchRequest()
    patch.changes = [change]
    patched = api.patch_externalcontacts_contact(created.id, patch)
    assert patched.middle_name == "Maria" and patched.title == "Buyer"
    bare = http.patch(f"/api/v2/externalcontacts/contacts/{created.id}",
                      json={"changes": [{"action": "Update", "field": "title", "value": "x"}]})
    assert_error_body(bare, 400, "invalid.value")  # not a JSONPath

    found = api.get_externalcontacts_reversewhitepageslookup("+5511987654321")
    assert [c.id for c in found.contacts] == [created.id]
    by_mail = http.get("/api/v2/externalcontacts/reversewhitepageslookup",
                       params={"lookupVal": "JOANA.araujo@acme.example"}).json()
    assert_model(by_mail, "ReverseWhitepagesLookupResult")
    assert [c["id"] for c in by_mail["contacts"]] == [created.id]

    api.delete_externalcontacts_contact(created.id)
    assert_error_body(http.get(f"/api/v2/externalcontacts/contacts/{created.id}"), 404, "not.found")
    refused = http.post("/api/v2/externalcontacts/contacts", json={"firstName": "X", "favouriteColour": "red"})
    assert_error_body(refused, 400, "invalid.property")


def test_identifier_lookup_finds_a_contact_by_its_external_id(api_client, http):
    api = gc.ExternalContactsApi(api_client)
    made = http.post("/api/v2/externalcontacts/contacts", json={
        "firstName": "Rui", "lastName": "Sá", "cellPhone": {"display": "+351 912 345 678"},
        "externalIds": [{"externalSource": {"id": "salesforce"}, "value": "0038d00000AbCdEAAZ"}]}).json()
    ident = sdk_models.ContactIdentifier()
    ident.type, ident.value = "ExternalId", "0038d00000AbCdEAAZ"
    source = sdk_models.ExternalSource()
    source.id = "salesforce"
    ident.external_source = source
    assert api.post_externalcontacts_identifierlookup_contacts(ident).id == made["id"]
    found = http.post("/api/v2/externalcontacts/identifierlookup/contacts",
                      json={"type": "Phone", "value": "+351912345678"})
    assert_model(found.json(), "ExternalContact")
    assert found.json()["id"] == made["id"]
    other_source = http.post("/api/v2/externalcontacts/identifierlookup/contacts", json={
        "type": "ExternalId", "value": "0038d00000AbCdEAAZ", "externalSource": {"id": "zendesk"}})
    assert_error_body(other_source, 404, "not.found")
    assert_error_body(http.post("/api/v2/externalcontacts/identifierlookup/contacts",
                                json={"type": "Cookie", "value": "x"}), 400, "invalid.value")
    http.delete(f"/api/v2/externalcontacts/contacts/{made['id']}")


def test_external_contact_search_scan_and_bulk(api_client, http):
    api = gc.ExternalContactsApi(api_client)
    tag = f"Zed{int(time.time() * 1000) % 10_000_000}"
    entities = [{"firstName": f"{tag}{i:02d}", "lastName": "Bulk",
                 "workPhone": {"display": f"512-555-{i:04d}"}} for i in range(25)]
    entities.append({"firstName": "", "lastName": ""})  # invalid: no name
    added = http.post("/api/v2/externalcontacts/bulk/contacts/add", json={"entities": entities})
    assert added.status_code == 200
    assert_model(added.json(), "BulkContactsResponse")
    # Results come in another order than the request (the SDK: "Ordering is NOT guaranteed");
    # errorIndexes index the results, and each result names its contact.
    assert added.json()["errorCount"] == 1 and added.json()["errorIndexes"] == [0]
    assert added.json()["results"][0]["error"]["entity"] == {"firstName": "", "lastName": ""}
    assert added.json()["results"][0]["error"]["status"] == 400
    ids = [r["id"] for r in added.json()["results"] if r["success"]]
    assert [r["entity"]["firstName"] for r in added.json()["results"][1:]] != [e["firstName"] for e in entities[:25]]
    assert sorted(r["entity"]["firstName"] for r in added.json()["results"][1:]) == [e["firstName"] for e in entities[:25]]
    assert len(ids) == 25

    page = api.get_externalcontacts_contacts(q=tag, page_size=10, page_number=3, sort_order="firstName:asc")
    assert page.total == 25 and page.page_count == 3 and [c.first_name for c in page.entities][0] == f"{tag}20"
    assert_model(http.get("/api/v2/externalcontacts/contacts", params={"q": tag}).json(), "ContactListing")
    over = http.get("/api/v2/externalcontacts/contacts", params={"q": tag, "pageSize": 100, "pageNumber": 11})
    assert_error_body(over, 400, "invalid.value")  # beyond the first 1,000 results

    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        listing = http.get("/api/v2/externalcontacts/scan/contacts", params=params).json()
        assert_model(listing, "CursorContactListing")
        seen += [c["id"] for c in listing["entities"]]
        cursor = (listing.get("cursors") or {}).get("after")
        if not cursor:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert_error_body(http.get("/api/v2/externalcontacts/scan/contacts", params={"limit": 5}), 400, "invalid.value")

    fetched = http.post("/api/v2/externalcontacts/bulk/contacts", json={"entities": [{"id": ids[0]}, {"id": "nope"}]})
    assert_model(fetched.json(), "BulkFetchContactsResponse")
    missing = fetched.json()["errorIndexes"]
    assert len(missing) == 1 and fetched.json()["results"][missing[0]]["error"]["status"] == 404
    assert fetched.json()["results"][missing[0]]["error"]["entity"] == {"id": "nope"}
    update = [{**http.get(f"/api/v2/externalcontacts/contacts/{ids[0]}").json(), "title": "Updated"}]
    updated = http.post("/api/v2/externalcontacts/bulk/contacts/update", json={"entities": update}).json()
    assert updated["errorCount"] == 0 and updated["results"][0]["entity"]["title"] == "Updated"
    removed = http.post("/api/v2/externalcontacts/bulk/contacts/remove",
                        json={"entities": [{"id": i} for i in ids]})
    assert_model(removed.json(), "BulkDeleteResponse")
    assert removed.json()["errorCount"] == 0
    assert api.get_externalcontacts_contacts(q=tag).total == 0


def test_external_organizations_search_and_scan(api_client, http):
    api = gc.ExternalContactsApi(api_client)
    added = http.post("/api/v2/externalcontacts/bulk/organizations/add",
                      json={"entities": [{"name": "Maple Widgets Toronto"}, {"industry": "no name"}]}).json()
    assert_model(added, "BulkOrganizationsResponse")
    assert added["errorIndexes"] == [0]  # the results in another order than the request
    listing = api.get_externalcontacts_organizations(q="maple widgets")
    assert [o.name for o in listing.entities] == ["Maple Widgets Toronto"]
    assert_model(http.get("/api/v2/externalcontacts/scan/organizations", params={"limit": 10}).json(),
                 "CursorOrganizationListing")


# ---------------------------------------------------------------------------------------------
# Notifications


def test_notification_channel_streams_call_events(api_client, http, genesys):
    from websockets.sync.client import connect

    api = gc.NotificationsApi(api_client)
    channel = api.post_notifications_channels()
    assert channel.connect_uri.startswith("ws://") and channel.id
    assert_model(http.get("/api/v2/notifications/channels").json(), "ChannelEntityListing")
    queue = next(q for q in gc.RoutingApi(api_client).get_routing_queues(page_size=25).entities
                 if q.name == "Support Queue")
    topic = sdk_models.ChannelTopic()
    topic.id = f"v2.routing.queues.{queue.id}.conversations.calls"
    listing = api.put_notifications_channel_subscriptions(channel.id, [topic])
    assert [t.id for t in listing.entities] == [topic.id]
    bad = http.post(f"/api/v2/notifications/channels/{channel.id}/subscriptions", json=[{"id": "v2.nonsense"}])
    assert_error_body(bad, 400, "invalid.value")

    with connect(channel.connect_uri, open_timeout=5) as ws:
        ws.send(json.dumps({"message": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}
        c = simulate(genesys, queueName="Support Queue")
        simulate(genesys, queueName="Toronto Support")  # another queue: not subscribed
        event = json.loads(ws.recv(timeout=5))
    assert event["topicName"] == topic.id and event["version"] == "2"
    assert event["eventBody"]["id"] == c["conversationId"]
    assert_model(event["eventBody"], "QueueConversationCallEventTopicCallConversation")
    assert_error_body(http.get("/api/v2/notifications/channels/nope/subscriptions"), 404, "not.found")
