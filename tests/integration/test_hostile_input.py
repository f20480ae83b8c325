"""Hostile input against the real starter (issue #9, item 2): wrong content types, huge and
deeply nested JSON, invalid UTF-8, duplicate keys, numbers where strings or timestamps belong,
timestamps far in the future, replayed signatures, and SOQL/SOSL/SQL injection through every
field that reaches a query. Outcome asserted: no 5xx, nothing started by invalid input
(workflows counted in Temporal before and after), no effect of an injection.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Callable

import httpx
import pytest
from temporalio.service import RPCError

from callbridge.domain import signature
from tests.helpers import call_event, conversation_id, post_webhook, tasks_for_conversation, unique_us_number
from workflows.call_logging import CallLoggingWorkflow, workflow_id

pytestmark = pytest.mark.integration

WEBHOOK = "/webhooks/genesys/conversation-ended"
LOOKUP_AUTH = ("genesys-data-action", "callbridge-demo-lookup")
ADMIN = ("admin", "callbridge-demo-admin")


async def started(client, workflow_type: str) -> int:
    return (await client.count_workflows(f"WorkflowType = '{workflow_type}'")).count


async def assert_not_started(client, conversation: str) -> None:
    with pytest.raises(RPCError):
        await client.get_workflow_handle(workflow_id(conversation)).describe()


def send(stack, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{stack.starter_url}{WEBHOOK}", content=raw, headers=headers, timeout=30)


def signed(stack, raw: bytes, **extra: str) -> dict[str, str]:
    return {**signature.signed_headers(stack.webhook_secret, int(time.time()), raw), **extra}


def event_bytes(conversation: str, **overrides) -> bytes:
    e164, _ = unique_us_number()
    return json.dumps(call_event(conversation, e164, **overrides)).encode()


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# Each builds a signed request (unless the signature is the point) that must be refused.
# name -> (build(stack, conversation) -> (raw, headers), expected status)
Build = Callable[[object, str], tuple[bytes, dict[str, str]]]


def _content_type(value: str | None) -> Build:
    def build(stack, conv):
        raw = event_bytes(conv)
        headers = signed(stack, raw)
        if value is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = value
        return raw, headers
    return build


def _body(make: Callable[[str], bytes]) -> Build:
    def build(stack, conv):
        raw = make(conv)
        return raw, signed(stack, raw)
    return build


def _event_with(**overrides) -> Build:
    return _body(lambda conv: event_bytes(conv, **overrides))


def _replace(old: str, new: str) -> Build:
    return _body(lambda conv: event_bytes(conv).replace(old.encode(), new.encode(), 1))


def _timestamp_header(value: str) -> Build:
    def build(stack, conv):
        raw = event_bytes(conv)
        headers = signature.signed_headers(stack.webhook_secret, 0, raw)
        headers[signature.TIMESTAMP_HEADER] = value
        headers[signature.SIGNATURE_HEADER] = signature.sign(stack.webhook_secret, value, raw)
        return raw, headers
    return build


FAR_FUTURE = "2999-01-01T00:00:00Z"

REFUSED: dict[str, tuple[Build, int]] = {
    # wrong content types: the signature is right, the media type is not JSON
    "text/plain": (_content_type("text/plain"), 415),
    "form-urlencoded": (_content_type("application/x-www-form-urlencoded"), 415),
    "multipart": (_content_type("multipart/form-data; boundary=x"), 415),
    "no content type": (_content_type(None), 415),
    "json lookalike": (_content_type("application/jsonp"), 415),
    # size and shape
    "deep nesting, recursion limit": (_body(lambda c: event_bytes(c).replace(b'"attributes": {}', f'"attributes": {deep(20000)}'.encode())), 422),
    "deep nesting, 200 levels": (_body(lambda c: event_bytes(c).replace(b'"attributes": {}', ('"attributes": ' + '{"a": ' * 200 + '"x"' + "}" * 200).encode())), 422),
    "a JSON array": (_body(lambda c: f"[{event_bytes(c).decode()}]".encode()), 422),
    "empty body": (_body(lambda c: b""), 422),
    # encodings
    "raw invalid UTF-8 byte": (_body(lambda c: event_bytes(c).replace(b"Agent Smith", b"Agent \xff\xfe")), 422),
    "UTF-16": (_body(lambda c: event_bytes(c).decode().encode("utf-16")), 422),
    "lone surrogate escape": (_replace("Agent Smith", "\\ud800"), 422),
    "NUL in the conversation id": (_event_with(conversationId="abc\u0000def"), 422),
    # duplicate keys: which one would we believe?
    "duplicate top-level key": (_replace('"callerId":', '"callerId": "+15125550000", "callerId":'), 422),
    "duplicate nested key": (_event_with(attributes={}), 422),  # replaced below
    # numbers and strings swapped
    "duration as a string": (_event_with(durationSeconds="630"), 422),
    "duration as a float": (_event_with(durationSeconds=630.5), 422),
    "duration as a bool": (_event_with(durationSeconds=True), 422),
    "duration past int limits": (_replace('"durationSeconds": 630', '"durationSeconds": ' + "9" * 5000), 422),
    "duration NaN": (_replace('"durationSeconds": 630', '"durationSeconds": NaN'), 422),
    "duration Infinity": (_replace('"durationSeconds": 630', '"durationSeconds": 1e400'), 422),
    "conversation id as a number": (_event_with(conversationId=12345), 422),
    "startTime as epoch seconds": (_event_with(startTime=1700000000), 422),
    "endTime as an epoch string": (_event_with(endTime=str(int(time.time()))), 422),
    "attributes value as a number": (_event_with(attributes={"contact_id": 3}), 422),
    # timestamps far in the future (body and header)
    "endTime far in the future": (_event_with(endTime=FAR_FUTURE), 422),
    "both times far in the future": (_event_with(startTime=FAR_FUTURE, endTime=FAR_FUTURE), 422),
    "endTime an hour ahead": (_event_with(endTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))), 422),
    "year 10000": (_event_with(endTime="10000-01-01T00:00:00Z"), 422),
    "naive timestamp": (_event_with(endTime="2026-01-01T00:00:00"), 422),
    "timestamp header a year ahead": (_timestamp_header(str(int(time.time()) + 365 * 86400)), 401),
    "timestamp header absurd": (_timestamp_header("9" * 40), 401),
    "timestamp header negative": (_timestamp_header("-1"), 401),
    "timestamp header float": (_timestamp_header(f"{time.time():.3f}"), 401),
    # injection through the conversation id (it becomes a workflow id)
    "SOQL quote in the conversation id": (_event_with(conversationId="abc' OR Id != '"), 422),
    "path in the conversation id": (_event_with(conversationId="../../etc/passwd"), 422),
}


def _duplicate_nested(stack, conv):
    raw = event_bytes(conv).replace(b'"attributes": {}', b'"attributes": {"contact_id": "003000000000001AAA", "contact_id": "x"}')
    return raw, signed(stack, raw)


REFUSED["duplicate nested key"] = (_duplicate_nested, 422)


@pytest.mark.parametrize("case", list(REFUSED))
async def test_hostile_webhook_is_refused_and_starts_nothing(stack, temporal_client, case):
    build, status = REFUSED[case]
    conv = conversation_id()
    before = await started(temporal_client, "CallLoggingWorkflow")
    raw, headers = build(stack, conv)
    resp = send(stack, raw, headers)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    await assert_not_started(temporal_client, conv)
    assert await started(temporal_client, "CallLoggingWorkflow") == before


async def test_huge_bodies_are_refused_before_reading_them(stack, temporal_client):
    before = await started(temporal_client, "CallLoggingWorkflow")
    big = b'{"conversationId": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    declared = send(stack, big, signed(stack, big))
    # No Content-Length (chunked): the limit is enforced while streaming.
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    streamed = httpx.post(f"{stack.starter_url}{WEBHOOK}", content=chunks, headers=signed(stack, big), timeout=30)
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert await started(temporal_client, "CallLoggingWorkflow") == before


def test_non_ascii_signature_headers_are_401_not_500(stack):
    """Header bytes the client library won't send: written on the socket directly."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(stack.starter_url)
    raw = event_bytes(conversation_id())
    for sig, ts in ((b"\xff\xfe\x00", str(int(time.time())).encode()), (b"abc", "١٢٣".encode())):
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         + b"X-Genesys-Webhook-Signature: " + sig + b"\r\nX-Genesys-Webhook-Timestamp: " + ts
                         + f"\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n".encode() + raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 401), answer[:200]


async def test_replayed_signatures(stack, temporal_client):
    """A captured delivery replayed as is is a redelivery (one workflow, 200 with its id);
    its signature on another body, with another timestamp, or after the window is refused."""
    before = await started(temporal_client, "CallLoggingWorkflow")
    conv = conversation_id()
    raw = event_bytes(conv)
    headers = signed(stack, raw)
    first, replay = send(stack, raw, headers), send(stack, raw, headers)
    assert (first.status_code, replay.status_code) == (202, 200)
    assert first.json()["workflowId"] == replay.json()["workflowId"] == workflow_id(conv)

    other = conversation_id()
    other_body = event_bytes(other)
    on_other_body = send(stack, other_body, headers)
    moved = dict(headers, **{signature.TIMESTAMP_HEADER: str(int(headers[signature.TIMESTAMP_HEADER]) + 1)})
    other_ts = send(stack, other_body, moved)
    stale_ts = int(time.time()) - 301
    stale = send(stack, other_body, signature.signed_headers(stack.webhook_secret, stale_ts, other_body))
    assert [r.status_code for r in (on_other_body, other_ts, stale)] == [401, 401, 401]
    await assert_not_started(temporal_client, other)
    assert await started(temporal_client, "CallLoggingWorkflow") == before + 1


# --- injection: nothing an attacker types may widen a query ---------------------------------

INJECTIONS = [
    "' OR Id != '",
    "\\' OR Name LIKE '%",
    "%",
    "_",
    "*",
    "} RETURNING Contact(Id) FIND {*",
    "\" OR \"1\"=\"1",
    "1; DROP TABLE caller_index; --",
    "' OR '1'='1' --",
    "\u0000",
    "+1 512' OR Phone != '",
]


@pytest.fixture(scope="module")
def bystander(sf):
    """A contact and account that a widened query would find."""
    account_number = f"INJ-{uuid.uuid4().hex[:8]}"
    account = sf.Account.create({"Name": "Bystander Ltd", "AccountNumber": account_number,
                                 "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    email = f"bystander.{uuid.uuid4().hex[:8]}@injection-test.example"
    contact = sf.Contact.create({"FirstName": "Bea", "LastName": "Stander", "AccountId": account, "Email": email,
                                 "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "MailingCountry": "USA"})["id"]
    return {"account": account, "account_number": account_number, "contact": contact, "e164": e164, "email": email}


async def test_injection_through_lookups_finds_nothing(stack, genesys, temporal_client, bystander):
    from tests.agent_signin import agents, register_redirect_uri, sign_in
    from tests.helpers import refresh_index

    register_redirect_uri(genesys, stack)
    agent = {"Authorization": f"Bearer {sign_in(genesys, stack, agents(genesys)[2]['username'])}"}
    await refresh_index(temporal_client, stack)  # the bystander is in the caller-ID index
    sane = httpx.post(f"{stack.starter_url}/screenpop/lookup", json={"phoneNumber": bystander["e164"]},
                      auth=LOOKUP_AUTH, timeout=10).json()
    assert sane["contactId"] == bystander["contact"]  # the control: a real lookup finds them
    for text in INJECTIONS + [bystander["e164"] + "' OR '1'='1"]:
        phone = httpx.post(f"{stack.starter_url}/screenpop/lookup", json={"phoneNumber": text},
                           auth=LOOKUP_AUTH, timeout=10)
        account = httpx.post(f"{stack.starter_url}/screenpop/lookup-by-account", json={"accountNumber": text},
                             auth=LOOKUP_AUTH, timeout=10)
        desktop = httpx.get(f"{stack.starter_url}/desktop/lookup", params={"phone": text}, headers=agent, timeout=10)
        for resp in (phone, account, desktop):
            assert resp.status_code < 500, (text, resp.text)
        if phone.status_code == 200:
            assert phone.json()["contactId"] in ("", bystander["contact"] if text.startswith(bystander["e164"]) else "")
        if account.status_code == 200:
            assert account.json()["success"] is False, text
        if desktop.status_code == 200:
            found = [m["contactId"] for m in desktop.json()["matches"]]
            assert bystander["contact"] not in found or text.startswith(bystander["e164"]), text


async def test_injection_through_the_webhook_logs_only_on_the_callers_contact(stack, sf, temporal_client, bystander):
    """attributes.contact_id and callerId reach SOQL: neither can point the Task elsewhere."""
    e164, digits = unique_us_number()
    caller = sf.Contact.create({"LastName": "Caller", "Phone": digits, "MailingCountry": "USA"})["id"]
    conv = conversation_id()
    resp = post_webhook(stack.starter_url, stack.webhook_secret,
                        call_event(conv, e164, attributes={"contact_id": "003' OR Id != '"}))
    assert resp.status_code == 202
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conv)).result()
    assert (result.outcome, result.contact_id) == ("logged", caller)

    conv2 = conversation_id()
    resp = post_webhook(stack.starter_url, stack.webhook_secret, call_event(conv2, "' OR Phone != '"))
    assert resp.status_code == 202  # a valid delivery from an unparseable number: an unknown caller
    result = await temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conv2)).result()
    assert result.outcome == "skipped_unknown_caller"
    assert tasks_for_conversation(sf, conv2) == []
    bystander_tasks = sf.query(f"SELECT Id FROM Task WHERE WhoId = '{bystander['contact']}'")["totalSize"]
    assert bystander_tasks == 0


async def test_injection_through_erasure_requests_erases_nobody(stack, sf, temporal_client, bystander):
    """The email reaches SOQL (Contact.Email) and Genesys's reverse lookup; the id paths reach
    the state store and Temporal. None of them may find, let alone delete, the bystander."""
    from workflows.gdpr_erasure import GdprErasureWorkflow
    from workflows.gdpr_erasure import workflow_id as erasure_id

    domain = bystander["email"].split("@")[1]
    before = await started(temporal_client, "GdprErasureWorkflow")
    email = f"x' OR Email LIKE '%@{domain}"
    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": email}, auth=ADMIN, timeout=30)
    assert resp.status_code == 202, resp.text  # a syntactically possible address: the request is valid
    request_id = resp.json()["requestId"]
    result = await temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run, erasure_id(request_id)).result()
    assert result.status == "completed"
    status = httpx.get(f"{stack.starter_url}/gdpr/erasures/{request_id}", auth=ADMIN, timeout=10).json()
    assert all(v["count"] == 0 for v in status["certificate"]["deleted"].values()), status["certificate"]
    assert sf.Contact.get(bystander["contact"])["Email"] == bystander["email"]

    refused = [
        httpx.post(f"{stack.starter_url}/gdpr/erasures", json=body, auth=ADMIN, timeout=30)
        for body in ({"phone": "' OR Phone != '"}, {"contactId": "003' OR Id != '"}, {"contactId": "%"},
                     {"email": "no-at-sign' OR '1'='1"}, {})
    ]
    assert [r.status_code for r in refused] == [422] * len(refused), [r.text for r in refused]
    for text in ("' OR '1'='1", "%25", "%00", "..%2Fx"):  # as they appear in the path
        got = httpx.get(f"{stack.starter_url}/gdpr/erasures/{text}", auth=ADMIN, timeout=10)
        assert got.status_code == 404, (text, got.text)
        resolve = httpx.post(f"{stack.starter_url}/admin/api/conflicts/{text}/resolve", auth=ADMIN, timeout=10,
                             json={"field": "Email", "winner": "genesys"})
        assert resolve.status_code in (404, 422), (text, resolve.text)
    assert await started(temporal_client, "GdprErasureWorkflow") == before + 1


# --- the admin UI: HTML pages and a form post, outside the OpenAPI schema (so not fuzzed) -----

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


async def test_admin_pages_take_hostile_input_without_5xx_or_effect(stack, temporal_client):
    url = stack.starter_url
    before = {t: await started(temporal_client, t) for t in ("SyncPairWorkflow", "ContactSyncWorkflow")}
    for path in ("/admin", "/admin/", "/admin/report", "/admin/api/report", "/admin/sync", "/admin/erasures",
                 "/admin/conflicts"):
        resp = httpx.get(f"{url}{path}", auth=ADMIN, timeout=30, params={"q": XSS, "x": "\u0000"})
        assert resp.status_code < 500, (path, resp.text[:200])
    # What the page echoes back from its query string is escaped, never markup.
    for params in ({"resolved": XSS, "field": XSS, "winner": XSS}, {"error": XSS}):
        page = httpx.get(f"{url}/admin/conflicts", auth=ADMIN, timeout=30, params=params)
        assert page.status_code == 200 and "<script>alert(1)" not in page.text and "<img src=x" not in page.text

    form = "application/x-www-form-urlencoded"
    bodies = [
        (b"workflow_id=%27+OR+1%3D1&field=Email&winner=genesys", form),
        (b"workflow_id=sync-pair-%00&field=Email&winner=genesys", form),
        (b"workflow_id=\xff\xfe&field=\xff&winner=genesys", form),
        (b"workflow_id=a&workflow_id=b&field=Email&field=Phone&winner=genesys", form),
        (b"workflow_id=" + b"a" * 1_000_000 + b"&field=Email&winner=genesys", form),
        (json.dumps({"workflow_id": "x", "field": "Email", "winner": "genesys"}).encode(), "application/json"),
        (b"field=Email&winner=" + XSS.encode(), form),
        (b"", "text/plain"),
    ]
    for raw, ctype in bodies:
        resp = httpx.post(f"{url}/admin/conflicts/resolve", content=raw, auth=ADMIN, timeout=30,
                          headers={"Content-Type": ctype}, follow_redirects=False)
        assert resp.status_code < 500, (raw[:60], resp.status_code, resp.text[:200])
    cross = httpx.post(f"{url}/admin/conflicts/resolve", content=bodies[0][0], auth=ADMIN, timeout=30,
                       headers={"Content-Type": form, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert {t: await started(temporal_client, t) for t in before} == before


# --- the call-ended event intake (issue #14): authenticated by Basic, so hostile bodies get past
# authentication and must stop at validation.

EVENTS = "/webhooks/genesys/events"


def _event_raw(conv: str, **overrides) -> bytes:
    from tests.call_ended import customer_end_event

    return json.dumps({**customer_end_event(conv), **overrides}).encode()


def _envelope_raw(conv: str) -> bytes:
    from tests.call_ended import customer_end_event, eventbridge_envelope

    return json.dumps(eventbridge_envelope(customer_end_event(conv))).encode()


# name -> (raw body from the conversation id, content type, expected status)
EVENTS_REFUSED: dict[str, tuple[Callable[[str], bytes], str | None, int]] = {
    "text/plain": (_event_raw, "text/plain", 415),
    "no content type": (_event_raw, None, 415),
    "json lookalike": (_event_raw, "application/jsonp", 415),
    "empty body": (lambda c: b"", "application/json", 422),
    "a JSON array": (lambda c: b"[" + _event_raw(c) + b"]", "application/json", 422),
    "deep nesting, recursion limit": (lambda c: _event_raw(c)[:-1] + f', "x": {deep(20000)}}}'.encode(), "application/json", 422),
    "raw invalid UTF-8 byte": (lambda c: _event_raw(c).replace(b'"VOICE"', b'"VO\xff\xfeICE"'), "application/json", 422),
    "UTF-16": (lambda c: _event_raw(c).decode().encode("utf-16"), "application/json", 422),
    "duplicate conversationId": (lambda c: _event_raw(c).replace(b'"conversationId":', b'"conversationId": "other", "conversationId":', 1), "application/json", 422),
    "duplicate key in the envelope": (lambda c: _envelope_raw(c).replace(b'"source":', b'"source": "aws.partner/genesys.com/x", "source":', 1), "application/json", 422),
    "eventTime NaN": (lambda c: _event_raw(c).replace(b'"eventTime": ', b'"eventTime": NaN, "x": ', 1), "application/json", 422),
    "eventTime past int limits": (lambda c: _event_raw(c).replace(b'"eventTime": ', b'"eventTime": ' + b"9" * 5000 + b', "x": ', 1), "application/json", 422),
    "eventTime a bool": (lambda c: _event_raw(c, eventTime=True), "application/json", 422),
    "NUL in the conversation id": (lambda c: _event_raw(c, conversationId=c + "\u0000x"), "application/json", 422),
    "SOQL quote in the conversation id": (lambda c: _event_raw(c, conversationId=c + "' OR Id != '"), "application/json", 422),
    "lone surrogate escape": (lambda c: _event_raw(c, mediaType="X").replace(b'"X"', b'"\\ud800"'), "application/json", 422),
}


@pytest.mark.parametrize("case", list(EVENTS_REFUSED))
async def test_hostile_call_ended_event_is_refused_and_starts_nothing(stack, temporal_client, case):
    from tests.call_ended import basic_header

    make, content_type, status = EVENTS_REFUSED[case]
    conv = conversation_id()
    before = await started(temporal_client, "CallLoggingWorkflow")
    headers = basic_header()
    if content_type:
        headers["Content-Type"] = content_type
    resp = httpx.post(f"{stack.starter_url}{EVENTS}", content=make(conv), headers=headers, timeout=30)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    await assert_not_started(temporal_client, conv)
    assert await started(temporal_client, "CallLoggingWorkflow") == before


async def test_huge_call_ended_events_are_refused_before_reading_them(stack, temporal_client):
    from tests.call_ended import basic_header

    before = await started(temporal_client, "CallLoggingWorkflow")
    big = b'{"conversationId": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    headers = {**basic_header(), "Content-Type": "application/json"}
    declared = httpx.post(f"{stack.starter_url}{EVENTS}", content=big, headers=headers, timeout=30)
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    streamed = httpx.post(f"{stack.starter_url}{EVENTS}", content=chunks, headers=headers, timeout=30)
    # And without credentials: 401 before a byte of the body is read.
    anonymous = httpx.post(f"{stack.starter_url}{EVENTS}", content=big, headers={"Content-Type": "application/json"},
                           timeout=30)
    assert (declared.status_code, streamed.status_code, anonymous.status_code) == (413, 413, 401)
    assert await started(temporal_client, "CallLoggingWorkflow") == before
