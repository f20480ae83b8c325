"""Issue #19, tested as an attacker would: the real starter (and worker) over real sockets.

Most tests use a starter of their own run as in production: CALLBRIDGE_DEMO=0, strong secrets,
an internal listener holding /metrics, the admin UI, GDPR and the codec
(CALLBRIDGE_STARTER_INTERNAL_ROUTES), a small body cap and a quick failed-login backoff. Each
test asks something of one client address of its own (127.0.0.x) so backoffs don't cross.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import traceback
import uuid

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from devstack.processes import ManagedProcess, free_port, python_module
from callbridge.core.settings import Settings
from callbridge.core.temporal import data_converter
from tests.conftest import REPO, VENV_BIN
from tests.helpers import call_event, conversation_id, unique_us_number

pytestmark = pytest.mark.integration

STRONG = {name: secrets.token_urlsafe(24) for name in (
    "CODEC_TOKEN", "PRIVACY_HASH_KEY", "WEBHOOK_SECRET", "EVENTS_PASSWORD", "EVENTS_API_KEY",
    "SCREENPOP_PASSWORD", "ADMIN_PASSWORD", "SALESFORCE_CLIENT_SECRET",
    "GENESYS_CLIENT_SECRET")}
BODY_CAP = 4096
FREE_FAILURES = 3


def _production_env(stack) -> dict[str, str]:
    env = {**stack.env, "CALLBRIDGE_DEMO": "0"}
    env.update({f"CALLBRIDGE_{k}": v for k, v in STRONG.items()})
    return env


@pytest.fixture(scope="module")
def hardened(stack, genesys, test_var_dir):
    port, internal = free_port(), free_port()
    env = {**_production_env(stack), "CALLBRIDGE_STARTER_PORT": str(port),
           "CALLBRIDGE_STARTER_INTERNAL_PORT": str(internal), "CALLBRIDGE_STARTER_INTERNAL_ROUTES": "true",
           "CALLBRIDGE_STARTER_MAX_BODY_BYTES": str(BODY_CAP),
           "CALLBRIDGE_AUTH_FAILURES_BEFORE_BACKOFF": str(FREE_FAILURES),
           # A long first wait: the request after the free failures is refused however slow the machine.
           "CALLBRIDGE_AUTH_BACKOFF_FIRST_SECONDS": "600"}
    proc = ManagedProcess(name="hardened-starter", argv=python_module("starter.app"), env=env,
                          ready_url=f"http://127.0.0.1:{port}/healthz",
                          log_path=test_var_dir / "hardened-starter.log", cwd=REPO).start()
    yield {"public": f"http://127.0.0.1:{port}", "internal": f"http://127.0.0.1:{internal}",
           "port": port, "internal_port": internal}
    proc.stop()


def client_from(address: str) -> httpx.Client:
    """An HTTP client connecting from this loopback address (each test its own: backoff is per address)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=15)


def raw_exchange(port: int, request: bytes, source: str, timeout: float = 15.0) -> bytes:
    """Send these bytes (headers, maybe part of a body) and read what the starter answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- 1. no demo secrets outside the demo ----------------------------------------------------------

@pytest.mark.parametrize("argv", [python_module("starter.app"), [sys.executable, str(REPO / "worker.py")],
                                  [str(VENV_BIN / "callbridge"), "listen"]],
                         ids=["starter", "worker", "listener"])
def test_demo_secrets_refused_outside_demo_mode(stack, argv):
    env = {**os.environ, **stack.env, "CALLBRIDGE_DEMO": "0"}  # the stack sets no secret but the webhook's
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    for variable in ("CALLBRIDGE_ADMIN_PASSWORD", "CALLBRIDGE_CODEC_TOKEN", "CALLBRIDGE_PRIVACY_HASH_KEY",
                     "CALLBRIDGE_EVENTS_PASSWORD", "CALLBRIDGE_EVENTS_API_KEY",
                     "CALLBRIDGE_SCREENPOP_PASSWORD"):
        assert f"{variable} is the public demo value" in done.stderr, variable
    assert "secrets.token_urlsafe" in done.stderr  # how to generate one
    # The emulators' "test-secret" is neither a demo value nor long enough.
    assert "CALLBRIDGE_SALESFORCE_CLIENT_SECRET is shorter than 16 characters" in done.stderr


def test_short_secrets_refused_and_doctor_says_the_same(stack):
    env = {**os.environ, **_production_env(stack), "CALLBRIDGE_ADMIN_PASSWORD": "hunter2",
           "CALLBRIDGE_PAYLOAD_KEYS": "k1:" + base64.b64encode(b"sixteen byte key").decode()}
    done = subprocess.run(python_module("starter.app"), env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "CALLBRIDGE_ADMIN_PASSWORD is shorter than 16 characters" in done.stderr
    assert "CALLBRIDGE_PAYLOAD_KEYS key 'k1' is shorter than 32 bytes" in done.stderr
    assert "CALLBRIDGE_CODEC_TOKEN" not in done.stderr  # strong ones are not named
    doctor = subprocess.run([str(VENV_BIN / "callbridge"), "doctor"], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert doctor.returncode == 1
    lines = [line for line in doctor.stdout.splitlines() if "CALLBRIDGE_" in line and "FAIL" in line]
    assert any("CALLBRIDGE_ADMIN_PASSWORD" in line for line in lines), doctor.stdout
    assert any("CALLBRIDGE_PAYLOAD_KEYS" in line for line in lines), doctor.stdout


def test_a_production_starter_starts_with_real_secrets(hardened):
    assert httpx.get(f"{hardened['public']}/healthz").status_code == 200


# --- 2. the codec authenticates every call ----------------------------------------------------------

def test_codec_wants_its_token_even_from_the_temporal_ui_origin(hardened):
    ui = Settings().temporal_ui_url.rstrip("/")
    payloads = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                              "data": base64.b64encode(b'"hello"').decode()}]}
    with client_from("127.0.0.4") as http:
        refused = http.post(f"{hardened['internal']}/codec/encode", json=payloads, headers={"Origin": ui})
        assert refused.status_code == 401, refused.text
        sealed = http.post(f"{hardened['internal']}/codec/encode", json=payloads,
                           headers={"Authorization": f"Bearer {STRONG['CODEC_TOKEN']}"})
        assert sealed.status_code == 200
        assert http.post(f"{hardened['internal']}/codec/decode", json=sealed.json(), headers={"Origin": ui}).status_code == 401
        # Not on the internet-facing listener at all once the internal routes are moved.
        assert http.post(f"{hardened['public']}/codec/decode", json=sealed.json(),
                         headers={"Authorization": f"Bearer {STRONG['CODEC_TOKEN']}"}).status_code == 404


async def test_a_workflow_started_with_plaintext_input_never_runs(stack, temporal_env):
    """Someone reaching Temporal without the payload key starts a call-logging workflow: the
    worker refuses its input (workflow task failed, clearly) and no activity runs."""
    from callbridge.domain.models import CallLoggingInput
    from starter.webhooks import parse_event
    from workflows.call_logging import CallLoggingWorkflow
    from datetime import datetime, timedelta, timezone
    import asyncio
    import json

    e164, _ = unique_us_number()
    event = parse_event(json.dumps(call_event(conversation_id(), e164)).encode(), datetime.now(timezone.utc),
                        timedelta(minutes=5))
    inp = CallLoggingInput.for_event(event, "US")
    plain = await Client.connect(temporal_env.client.service_client.config.target_host,
                                 data_converter=pydantic_data_converter)
    handle = await plain.start_workflow(CallLoggingWorkflow.run, inp, id=f"plaintext-{uuid.uuid4().hex[:8]}",
                                        task_queue=stack.task_queue)
    try:
        failed = None
        for _ in range(150):
            events = [e async for e in handle.fetch_history_events()]
            failed = next((e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED), None)
            if failed:
                break
            await asyncio.sleep(0.2)
        assert failed is not None, [EventType.Name(e.event_type) for e in events]
        assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events)
        error = await data_converter(Settings(payload_keys=stack.env["CALLBRIDGE_PAYLOAD_KEYS"])).decode_failure(
            failed.workflow_task_failed_event_attributes.failure)
        assert "not encrypted" in str(error), str(error)
    finally:
        await handle.terminate("test done")


# --- 4. auth and limits before work -----------------------------------------------------------------

def test_unauthenticated_200_mib_body_answered_401_having_read_nothing(hardened):
    head = (b"POST /screenpop/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n")  # 200 MiB announced, not one byte sent
    answer = raw_exchange(hardened["port"], head, "127.0.0.5")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_authenticated_oversized_body_refused_by_length_and_while_streaming(hardened):
    auth = basic("genesys-data-action", STRONG["SCREENPOP_PASSWORD"]).encode()
    head = (b"POST /screenpop/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: " + auth + b"\r\nContent-Length: 209715200\r\n\r\n")
    assert raw_exchange(hardened["port"], head, "127.0.0.6").startswith(b"HTTP/1.1 413")
    # No length announced (chunked): cut off once the body passes the cap.
    body = b'{"phoneNumber": "' + b"1" * (BODY_CAP + 500) + b'"}'
    chunked = (b"POST /screenpop/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Authorization: " + auth + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
               + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    answer = raw_exchange(hardened["port"], chunked, "127.0.0.6")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_failed_logins_back_off_per_address_and_are_counted(hardened):
    url = f"{hardened['public']}/screenpop/lookup"
    right = ("genesys-data-action", STRONG["SCREENPOP_PASSWORD"])
    with client_from("127.0.0.7") as attacker, client_from("127.0.0.8") as other:
        for _ in range(FREE_FAILURES):
            assert attacker.post(url, json={"phoneNumber": "anonymous"}, auth=("genesys-data-action", "guess")).status_code == 401
        # Backing off: even the right password waits (else guessing would go on at full speed).
        blocked = attacker.post(url, json={"phoneNumber": "anonymous"}, auth=right)
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 60
        # Another address is not affected.
        assert other.post(url, json={"phoneNumber": "anonymous"}, auth=right).status_code == 200
    metrics = httpx.get(f"{hardened['internal']}/metrics").text  # internal listener: no credential
    failures = [line for line in metrics.splitlines()
                if line.startswith('callbridge_starter_auth_failures_total{scheme="data_action"}')]
    throttled = [line for line in metrics.splitlines()
                 if line.startswith('callbridge_starter_auth_throttled_total{scheme="data_action"}')]
    assert failures and float(failures[0].split()[-1]) >= FREE_FAILURES, metrics[-2000:]
    assert throttled and float(throttled[0].split()[-1]) >= 1


def test_docs_metrics_and_internal_routes_are_not_on_the_public_listener(hardened):
    admin = ("admin", STRONG["ADMIN_PASSWORD"])
    with client_from("127.0.0.9") as http:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics", "/admin/", "/gdpr/erasures/x"):
            assert http.get(f"{hardened['public']}{path}", auth=admin).status_code == 404, path
        for path in ("/docs", "/openapi.json"):
            assert http.get(f"{hardened['internal']}{path}", auth=admin).status_code == 404, path
        assert http.get(f"{hardened['internal']}/admin/", auth=admin).status_code == 200
        assert http.get(f"{hardened['internal']}/admin/").status_code == 401


def test_metrics_on_a_single_listener_need_the_admin_credential(stack):
    assert httpx.get(f"{stack.starter_url}/metrics").status_code == 401
    assert httpx.get(f"{stack.starter_url}/metrics", auth=("admin", "callbridge-demo-admin")).status_code == 200


# --- 5. browser protections -------------------------------------------------------------------------

def test_admin_posts_need_our_origin_and_the_form_token(hardened):
    admin = ("admin", STRONG["ADMIN_PASSWORD"])
    url = f"{hardened['internal']}/admin/conflicts/resolve"
    own = hardened["internal"]
    form = {"workflow_id": "sync-pair-x", "field": "Title", "winner": "salesforce"}
    with client_from("127.0.0.10") as http:
        for origin in (None, "null", "https://elsewhere.example"):
            headers = {"Origin": origin} if origin else {}
            assert http.post(url, data=form, auth=admin, headers=headers).status_code == 403, origin
        no_token = http.post(url, data=form, auth=admin, headers={"Origin": own})
        assert no_token.status_code == 403 and "token" in no_token.text
        wrong = http.post(url, data={**form, "csrf_token": "0" * 64}, auth=admin, headers={"Origin": own})
        assert wrong.status_code == 403


def test_pages_carry_frame_and_sniffing_protection_and_hosts_are_checked(hardened, genesys):
    with client_from("127.0.0.11") as http:
        page = http.get(f"{hardened['internal']}/admin/", auth=("admin", STRONG["ADMIN_PASSWORD"]))
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        desktop = http.get(f"{hardened['public']}/desktop/")  # a shell that signs the agent in first
        assert desktop.status_code == 200
        assert http.get(f"{hardened['public']}/desktop/config").status_code == 401  # no agent token
        assert desktop.headers["content-security-policy"] == f"frame-ancestors {genesys.api_url}"
        assert desktop.headers["x-content-type-options"] == "nosniff"
        assert http.get(f"{hardened['public']}/healthz", headers={"Host": "evil.example"}).status_code == 400


# --- 6. no PII from a library's error -----------------------------------------------------------

class FlakyProxy:
    """A TCP relay to Salesforce that can drop every connection and stop listening."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def break_down(self) -> None:
        # shutdown() first: a close() alone leaves the socket listening while accept() blocks on it.
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_connection_failure_during_a_phone_query_leaves_no_number_in_the_error_or_the_log(
        stack, salesforce, test_var_dir):
    import logging
    import time

    from activities.call_logging import CallLoggingActivities
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.domain.models import PhoneLookup

    proxy = FlakyProxy(int(salesforce.instance_url.rsplit(":", 1)[1]))
    via = f"https://127.0.0.1:{proxy.port}"
    settings = Settings(salesforce_instance_url=via, salesforce_login_url=via, salesforce_ca_file=salesforce.ca_file,
                        salesforce_client_id=salesforce.client_id, salesforce_client_secret=salesforce.client_secret,
                        database_url=stack.env["CALLBRIDGE_DATABASE_URL"])
    connection = SalesforceConnection(settings)
    connection.client()  # logged in through the relay
    proxy.break_down()
    time.sleep(0.2)  # the pooled connection sees the close
    e164, digits = unique_us_number()
    with pytest.raises(Exception) as caught:
        CallLoggingActivities(connection, settings).find_contacts_by_phone(PhoneLookup(e164=e164, default_region="US"))
    text = "".join(traceback.format_exception(caught.value))
    assert "ConnectionError" in text
    for leak in ("q=", "query?", "SELECT", "LIKE", digits[-4:]):
        assert leak not in text, (leak, text)
    # Logged as the SDK logs an activity failure: through the production pipeline to pytest.log.
    marker = uuid.uuid4().hex
    logging.getLogger("temporalio.activity").warning("activity failed %s", marker, exc_info=caught.value)
    logged = [line for line in (test_var_dir / "pytest.log").read_text().splitlines() if marker in line]
    assert logged and not any(digits[-4:] in line or "q=" in line or "LIKE" in line for line in logged), logged


async def test_genesys_connection_failure_leaves_no_number_in_the_error(genesys):
    """httpx names the URL it could not reach; a search's URL holds the number searched for."""
    from callbridge.clients.genesys.connection import GenesysConnection

    closed = free_port()  # nothing listens here
    settings = Settings(genesys_login_url=genesys.api_url, genesys_api_url=f"http://127.0.0.1:{closed}",
                        genesys_client_id=genesys.client_id, genesys_client_secret=genesys.client_secret)
    connection = GenesysConnection(settings)
    e164, digits = unique_us_number()
    try:
        with pytest.raises(Exception) as caught:
            await connection.get("/api/v2/externalcontacts/contacts", q=e164)
    finally:
        await connection.aclose()
    text = "".join(traceback.format_exception(caught.value))
    assert "ConnectError" in str(caught.value) and "externalcontacts" not in str(caught.value), str(caught.value)
    assert digits[-7:] not in text and "127.0.0.1" not in text, text  # nor the URL in a chained cause
