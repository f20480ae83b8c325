"""How a real org tells Callbridge a call ended, on the Genesys emulator (issue #14):
`callbridge genesys install` provisions it through the Platform API, the shipped workflow is
published (the emulator's stand-in for archy), and a simulated call's customer.end runs the
trigger -> workflow -> data action against a receiver, or goes out through EventBridge.

Its own emulator process: triggers fire for every call, so they stay out of the session's one.
Every answer is walked against the official SDK's models; the receiver checks what arrives.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import httpx
import PureCloudPlatformClientV2 as gc
import pytest

from callbridge.ops.genesys_install import InstallError, config_body, credential_body, install, integration_body
from devstack.processes import ManagedProcess, free_port, python_module
from callbridge.core.settings import Settings
from tests.http_receiver import HttpReceiver
from tests.emulators.test_genesys_emulator import assert_model

WORKFLOW_FILE = "deploy/genesys/flows/call-ended-workflow.yaml"
EVENTS_PATH = "/webhooks/genesys/events"


@pytest.fixture(scope="module")
def emulator(test_var_dir):
    port = free_port()
    proc = ManagedProcess(
        name="genesys-events",
        argv=python_module("emulators.genesys", "serve", "--host", "127.0.0.1", "--port", str(port),
                           "--data-dir", str(test_var_dir / "genesys-events"), "--client-id", "admin",
                           "--client-secret", "admin-secret"),
        ready_url=f"http://127.0.0.1:{port}/_emulator/health",
        log_path=test_var_dir / "genesys-events.log",
    ).start()
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="module")
def starter():
    """Stands in for the starter's intake: answers 202 like it does for a started workflow."""
    r = HttpReceiver(EVENTS_PATH, status=202, answer={"workflowId": "call-log-x"})
    yield r
    r.close()


def settings_for(emulator: str, starter: HttpReceiver, **changes: Any) -> Settings:
    public = starter.url[: -len(EVENTS_PATH)]
    values = dict(genesys_api_url=emulator, genesys_login_url=emulator, genesys_client_id="product",
                  genesys_client_secret="x", genesys_admin_client_id="admin",
                  genesys_admin_client_secret="admin-secret", public_url=public,
                  events_username="genesys-call-ended", events_password="events-pw")
    return Settings(**{**values, **changes})


@pytest.fixture(scope="module")
def api(emulator) -> httpx.Client:
    token = httpx.post(f"{emulator}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=("admin", "admin-secret")).json()["access_token"]
    with httpx.Client(base_url=emulator, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def installed(emulator, starter, api):
    """The org provisioned as docs/deploy.md says: install, archy publish, install again."""
    settings = settings_for(emulator, starter)
    first = install(settings)
    published = httpx.post(f"{emulator}/_emulator/flows/publish", json={"file": WORKFLOW_FILE})
    assert published.status_code == 200, published.text
    second = install(settings)
    return {"settings": settings, "first": first, "second": second, "workflow": published.json()}


def place_call(emulator: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(f"{emulator}/_emulator/calls", timeout=60, json={
        "ani": "+15125551234", "wait": True, "alertSeconds": 0.05, "talkSeconds": 0.05, **body})
    assert r.status_code == 200, r.text
    return r.json()


def requests_for(receiver: HttpReceiver, conversation_id: str) -> list[tuple[Any, dict]]:
    out = []
    for headers, body, _ in receiver.requests:
        doc = json.loads(body)
        event = doc["detail"]["eventBody"] if "detail" in doc else doc
        if event["conversationId"] == conversation_id:
            out.append((headers, doc))
    return out


# --- provisioning ------------------------------------------------------------------------------


def test_dry_run_plans_everything_and_writes_nothing(emulator, starter, api):
    before = api.get("/api/v2/integrations").json()["total"]
    steps = install(settings_for(emulator, starter), dry_run=True)
    assert api.get("/api/v2/integrations").json()["total"] == before
    if before == 0:  # on a fresh emulator, the whole plan is creations
        assert [(s.kind, s.action) for s in steps if s.kind not in ("flow", "trigger")] == \
            [("credential", "create")] * 2 + [("integration", "create")] * 2 + [("action", "create")] * 3
        assert [s.action for s in steps if s.kind == "trigger"] == ["waiting"]


def test_install_creates_then_links_the_trigger_once_the_workflow_is_published(installed):
    first = {(s.kind, s.name): s.action for s in installed["first"]}
    assert first[("trigger", "Callbridge call ended")] == "waiting"
    assert first[("action", "callbridge-call-ended")] == "create"
    archy = [s.detail for s in installed["first"] if s.kind == "flow"]
    assert f"archy publish --file {WORKFLOW_FILE}" in archy
    second = {(s.kind, s.name): s.action for s in installed["second"]}
    assert second[("trigger", "Callbridge call ended")] == "create"
    # Found by name the second time: nothing created twice.
    assert {a for (kind, _), a in second.items() if kind in ("integration", "action")} == {"unchanged"}


def test_a_third_run_changes_nothing(installed, api):
    counts = lambda: {p: api.get(p).json().get("total", len(api.get(p).json()["entities"]))  # noqa: E731
                      for p in ("/api/v2/integrations", "/api/v2/integrations/actions",
                                "/api/v2/integrations/credentials", "/api/v2/processautomation/triggers")}
    before = counts()
    steps = install(installed["settings"])
    assert {s.action for s in steps if s.kind in ("integration", "action", "trigger")} == {"unchanged"}
    assert counts() == before


def test_install_puts_back_a_changed_config_and_contract_in_place(installed, api):
    """An action edited in the org (its URL, its contract) is updated in place, keeping its id: the
    config by PATCH, the contract through a draft and its publication (the only way Genesys allows)."""
    [action] = [a for a in api.get("/api/v2/integrations/actions", params={"includeConfig": "true"}).json()["entities"]
                if a["name"] == "lookup-contact-by-account"]
    path = f"/api/v2/integrations/actions/{action['id']}/draft"
    draft = api.post(path).json()
    assert_model(draft, "Action")
    contract = json.loads(json.dumps(action["contract"]))
    contract["input"]["inputSchema"]["properties"]["extra"] = {"type": "string"}
    config = json.loads(json.dumps(action["config"]))
    config["request"]["requestUrlTemplate"] = "https://elsewhere.example.com/x"
    patched = api.patch(path, json={"contract": contract, "config": config, "version": draft["version"]}).json()
    assert api.post(f"{path}/publish", json={"version": patched["version"]}).status_code == 200
    steps = {s.name: s for s in install(installed["settings"]) if s.kind == "action"}
    assert steps["lookup-contact-by-account"].action == "update"
    assert steps["lookup-contact-by-phone"].action == "unchanged"
    now = api.get(f"/api/v2/integrations/actions/{action['id']}", params={"includeConfig": "true"}).json()
    assert now["contract"] == action["contract"] and now["config"] == action["config"]
    assert now["version"] == action["version"] + 2 and api.get(path).status_code == 404


def test_what_install_made_walks_the_sdk_models(installed, api, emulator):
    integrations = api.get("/api/v2/integrations").json()
    assert_model(integrations, "IntegrationEntityListing")
    by_name = {i["name"]: i for i in integrations["entities"]}
    events = by_name["Callbridge Call Events"]
    assert events["intendedState"] == "ENABLED" and events["integrationType"]["id"] == "custom-rest-actions"
    config = api.get(f"/api/v2/integrations/{events['id']}/config/current").json()
    assert_model(config, "IntegrationConfiguration")
    credential = config["credentials"]["basicAuth"]
    assert credential["name"] == "Callbridge call-ended events"
    assert "events-pw" not in json.dumps(config)
    assert_model(api.get("/api/v2/integrations/credentials").json(), "CredentialInfoListing")
    actions = api.get("/api/v2/integrations/actions", params={"includeConfig": "true"}).json()
    assert_model(actions, "ActionEntityListing")
    ended = next(a for a in actions["entities"] if a["name"] == "callbridge-call-ended")
    assert ended["integrationId"] == events["id"] and ended["category"] == "Callbridge Call Events"
    assert ended["config"]["request"]["requestUrlTemplate"] == f"{installed['settings'].public_base_url}{EVENTS_PATH}"
    assert "config" not in api.get(f"/api/v2/integrations/actions/{ended['id']}").json()  # only with includeConfig
    triggers = api.get("/api/v2/processautomation/triggers").json()
    assert_model(triggers, "TriggerEntityListing")
    [trigger] = triggers["entities"]
    assert trigger["target"]["id"] == installed["workflow"]["id"]
    flows = api.get("/api/v2/flows", params={"type": "workflow", "name": "Callbridge Call Ended"}).json()
    assert_model(flows, "FlowEntityListing")
    assert [f["id"] for f in flows["entities"]] == [installed["workflow"]["id"]]
    # and the SDK itself reads them
    client = gc.api_client.ApiClient(emulator).get_client_credentials_token("admin", "admin-secret")
    assert gc.ProcessAutomationApi(client).get_processautomation_trigger(trigger["id"]).target.type == "Workflow"
    assert gc.IntegrationsApi(client).get_integrations_action(ended["id"]).name == "callbridge-call-ended"


def test_the_bodies_install_sends_are_the_sdks_models():
    assert_model(credential_body("Callbridge call-ended events", "u", "p"), "Credential")
    assert_model(integration_body("Callbridge Call Events"), "CreateIntegrationRequest")
    body = config_body("Callbridge Call Events", {"version": 2, "properties": {}, "advanced": {}, "notes": ""},
                       "5a1e0d3c-8f1e-4f7a-9d3c-1b2a3c4d5e6f")
    assert_model(body, "IntegrationConfiguration")


def test_trigger_rules_are_enforced(installed, api):
    trigger = api.get("/api/v2/processautomation/triggers").json()["entities"][0]
    base = {k: trigger[k] for k in ("name", "topicName", "target", "matchCriteria", "enabled")}
    for change, field in (({"delayBySeconds": 30}, "delayBySeconds"), ({"eventTTLSeconds": 5}, "eventTTLSeconds"),
                          ({"delayBySeconds": 60, "eventTTLSeconds": 60}, "Only one"),
                          ({"target": {"type": "Workflow", "id": "nope"}}, "target.id")):
        r = api.post("/api/v2/processautomation/triggers", json={**base, **change})
        assert r.status_code == 400 and field in r.json()["message"], r.text
    stale = api.put(f"/api/v2/processautomation/triggers/{trigger['id']}", json={**base, "version": 0})
    assert stale.status_code == 409


def test_install_says_in_one_line_when_genesys_is_unreachable_or_refuses(emulator, starter):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InstallError, match="unreachable"):
        install(settings_for(dead, starter))
    with pytest.raises(InstallError, match="refused the admin OAuth client"):
        install(settings_for(emulator, starter, genesys_admin_client_secret="wrong"))
    env = {**os.environ, "CALLBRIDGE_GENESYS_API_URL": dead, "CALLBRIDGE_GENESYS_LOGIN_URL": dead}
    cli = subprocess.run([sys.executable, "-m", "callbridge.cli", "genesys", "install", "--dry-run"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 1
    out = (cli.stdout + cli.stderr).strip()
    assert "Traceback" not in out and "unreachable" in out and len(out.splitlines()) <= 2


# --- a call ends ---------------------------------------------------------------------------------


def test_a_calls_end_runs_the_shipped_data_action_against_the_starter(installed, starter, api, emulator):
    call = place_call(emulator)
    [(headers, body)] = requests_for(starter, call["conversationId"])
    assert headers["Content-Type"] == "application/json"
    user, _, password = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode().partition(":")
    assert (user, password) == ("genesys-call-ended", "events-pw")  # the integration's credential
    assert_model(body, "CustomerEndDetailEventTopicCustomerEndEvent")
    conv = api.get(f"/api/v2/conversations/{call['conversationId']}").json()
    customer = next(p for p in conv["participants"] if p["purpose"] == "customer")
    end = datetime.fromisoformat(customer["endTime"].replace("Z", "+00:00"))
    assert body["eventTime"] == round(end.timestamp() * 1000)  # epoch ms of the customer leg's end
    assert body["conversationId"] == call["conversationId"] and body["participantId"] == customer["id"]
    assert (body["mediaType"], body["direction"], body["disconnectType"]) == ("VOICE", "INBOUND", "ENDPOINT")
    assert body["ani"] == "tel:+15125551234" and isinstance(body["interactingDurationMs"], int)
    [invocation] = call["delivery"]["triggers"]
    assert invocation["state"] == "completed" and invocation["exitReason"] is None
    assert [s["output"] for s in invocation["steps"]] == ["success"]


def test_customer_end_can_be_published_again_for_an_ended_call(installed, starter, emulator):
    call = place_call(emulator)
    again = httpx.post(f"{emulator}/_emulator/calls/{call['conversationId']}/customer-end", timeout=60)
    assert again.status_code == 200 and [i["state"] for i in again.json()["triggers"]] == ["completed"]
    first, second = [body for _, body in requests_for(starter, call["conversationId"])]
    assert first == second  # the same event, delivered twice
    assert httpx.post(f"{emulator}/_emulator/calls/nope/customer-end").status_code == 404


def test_a_failed_invocation_is_not_retried(installed, starter, emulator):
    starter.statuses = [500]
    call = place_call(emulator)
    assert len(requests_for(starter, call["conversationId"])) == 1
    [invocation] = call["delivery"]["triggers"]
    assert invocation["steps"][0]["status"] == 500 and invocation["steps"][0]["output"] == "failure"
    assert invocation["exitReason"] == "callbridge-call-ended failed"  # the workflow's failure path


def test_match_criteria_decide_which_triggers_fire(installed, starter, api, emulator):
    shipped = api.get("/api/v2/processautomation/triggers").json()["entities"][0]
    outbound_only = api.post("/api/v2/processautomation/triggers", json={
        **{k: shipped[k] for k in ("topicName", "target", "enabled")}, "name": "outbound only",
        "matchCriteria": [{"jsonPath": "direction", "operator": "Equal", "value": "OUTBOUND"}]}).json()
    try:
        call = place_call(emulator)  # inbound: only the shipped trigger fires
        assert len(requests_for(starter, call["conversationId"])) == 1
        assert [i["triggerName"] for i in call["delivery"]["triggers"]] == ["Callbridge call ended"]
    finally:
        api.delete(f"/api/v2/processautomation/triggers/{outbound_only['id']}")


def test_eventbridge_delivers_the_envelope_with_its_retry_policy(installed, emulator):
    bridge = HttpReceiver(EVENTS_PATH)
    bridge.statuses = [429, 503, 200]
    config = {"url": bridge.url, "auth": {"apiKey": {"name": "x-api-key", "value": "k-123"}},
              "retryPolicy": {"maximumRetryAttempts": 5, "maximumEventAgeInSeconds": 600}}
    try:
        assert httpx.post(f"{emulator}/_emulator/config", json={"eventBridge": config}).status_code == 200
        assert "k-123" not in httpx.get(f"{emulator}/_emulator/config").text
        call = place_call(emulator)
        status = _wait_for_bridge(emulator, call["conversationId"], "delivered")
        assert status["attempts"] == 3 and [e["status"] for e in status["log"]] == [429, 503, 200]
        deliveries = requests_for(bridge, call["conversationId"])
        assert len(deliveries) == 3 and len({d["id"] for _, d in deliveries}) == 1  # the same event each try
        headers, envelope = deliveries[0]
        assert headers["x-api-key"] == "k-123"
        assert headers["User-Agent"] == "Amazon/EventBridge/ApiDestinations"
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert set(envelope) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                                 "detail"}
        assert envelope["detail-type"] == "v2.detail.events.conversation.{id}.customer.end"
        assert envelope["source"].startswith("aws.partner/genesys.com/cloud/")
        detail = envelope["detail"]
        assert set(detail) == {"topicName", "version", "eventBody", "metadata"}
        assert detail["topicName"] == f"v2.detail.events.conversation.{call['conversationId']}.customer.end"
        assert_model(detail["eventBody"], "CustomerEndDetailEventTopicCustomerEndEvent")

        bridge.statuses = [400]  # other 4xx: not retried
        call = place_call(emulator)
        status = _wait_for_bridge(emulator, call["conversationId"], "failed")
        assert status["attempts"] == 1
    finally:
        httpx.post(f"{emulator}/_emulator/config", json={"eventBridge": None})
        bridge.close()


def _wait_for_bridge(emulator: str, conversation_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = httpx.get(f"{emulator}/_emulator/calls/{conversation_id}").json()["eventBridge"]
        if found and found[0]["state"] == state:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"EventBridge delivery for {conversation_id} never reached {state}: {found}")
