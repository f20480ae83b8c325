"""The call-ended artifacts under deploy/genesys/ (issue #14) have the shape Genesys takes.

* triggers/call-ended.json is a CreateTriggerRequest (the SDK model) on the customer.end topic,
  voice only, target type Workflow with dataFormat TopLevelPrimitives, within the model's TTL/delay
  rules.
* data-actions/callbridge-call-ended.json, as `callbridge genesys install` sends it, is a
  PostActionInput (the lookups too); its inputs are the event's top-level attributes
  (CustomerEndDetailEventTopicCustomerEndEvent) with their types; its requestTemplate, rendered
  with a real Velocity engine, is JSON carrying exactly those attributes, escaped.
* flows/call-ended-workflow.yaml (Archy YAML): parses, starts at a defined state, declares an
  input variable Flow.<attribute> of the right type for every action input, passes each one
  through, and ends the workflow on success, failure and timeout.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from PureCloudPlatformClientV2 import models as sdk_models

from callbridge.ops.genesys_install import ACTIONS, EVENTS_INTEGRATION, action_body, trigger_body
from emulators.genesys.velocity import render
from tests.emulators.test_genesys_emulator import assert_model

ROOT = Path(__file__).resolve().parents[2]
GENESYS = ROOT / "deploy" / "genesys"
TRIGGER = json.loads((GENESYS / "triggers" / "call-ended.json").read_text(encoding="utf-8"))
ACTION = json.loads((GENESYS / "data-actions" / "callbridge-call-ended.json").read_text(encoding="utf-8"))
WORKFLOW = yaml.safe_load((GENESYS / "flows" / "call-ended-workflow.yaml").read_text(encoding="utf-8"))["workflow"]
EVENT_MODEL = sdk_models.CustomerEndDetailEventTopicCustomerEndEvent()
EVENT_FIELDS = {json_name: EVENT_MODEL.swagger_types[attr] for attr, json_name in EVENT_MODEL.attribute_map.items()}
JSON_TYPES = {"str": "string", "int": "integer"}


def test_trigger_is_a_create_trigger_request_for_voice_calls_ending():
    body = trigger_body(TRIGGER, "8bd25ab5-0e1c-4a39-9b3a-0e7f7f1f9d15")
    assert_model(body, "CreateTriggerRequest")
    assert_model(trigger_body(TRIGGER, "8bd25ab5-0e1c-4a39-9b3a-0e7f7f1f9d15", 3), "UpdateTriggerRequest")
    assert body["topicName"] == "v2.detail.events.conversation.{id}.customer.end"
    assert body["enabled"] is True
    assert body["target"]["type"] == "Workflow"
    assert body["target"]["workflowTargetSettings"] == {"dataFormat": "TopLevelPrimitives"}
    assert {"jsonPath": "mediaType", "operator": "Equal", "value": "VOICE"} in body["matchCriteria"]
    # The SDK's rules: TTL at least 10 s, delay 60-900 s, never both.
    ttl, delay = body.get("eventTTLSeconds"), body.get("delayBySeconds")
    assert not (ttl is not None and delay is not None)
    assert ttl is None or ttl >= 10
    assert delay is None or 60 <= delay <= 900


def test_every_action_install_sends_is_a_post_action_input():
    for filename, integration in ACTIONS.items():
        export = json.loads((GENESYS / "data-actions" / filename).read_text(encoding="utf-8"))
        body = action_body(export, integration, "2d8f2b34-7b58-4a1e-9b64-6a2f7d1bd3b0", "https://callbridge.example.com/")
        assert_model(body, "PostActionInput")
        url = body["config"]["request"]["requestUrlTemplate"]
        assert url.startswith("https://callbridge.example.com/") and "CALLBRIDGE_HOST" not in url
    assert ACTIONS["callbridge-call-ended.json"] == EVENTS_INTEGRATION


def test_call_ended_inputs_are_the_events_top_level_attributes():
    schema = ACTION["contract"]["input"]["inputSchema"]
    assert {"conversationId", "mediaType"} <= set(schema["required"])
    for name, prop in schema["properties"].items():
        assert name in EVENT_FIELDS, f"{name} is not an attribute of the customer.end event"
        assert prop["type"] == JSON_TYPES[EVENT_FIELDS[name]], name
    assert ACTION["config"]["request"]["requestUrlTemplate"].endswith("/webhooks/genesys/events")
    assert ACTION["config"]["request"]["headers"] == {"Content-Type": "application/json"}


def test_request_template_renders_the_event_as_json():
    template = ACTION["config"]["request"]["requestTemplate"]
    assert "$esc.jsonString(" in template and "jsonEncode" not in template
    tricky = {
        "conversationId": 'c-"quoted"\\back\nline\ttab\u0001', "mediaType": "VOICE", "eventTime": 1796676516123,
        "interactingDurationMs": 0, "ani": "tel:+15125551234", "divisionId": "São Paulo / división",
        "disconnectType": "ENDPOINT",
    }
    assert json.loads(render(template, tricky)) == tricky  # strings escaped, integers bare, absent ones left out
    everything = {name: (7 if kind == "int" else f"v-{name}") for name, kind in EVENT_FIELDS.items()
                  if name in ACTION["contract"]["input"]["inputSchema"]["properties"]}
    assert json.loads(render(template, everything)) == everything


def test_workflow_takes_every_input_and_calls_the_action():
    assert {"name", "division", "startUpRef", "defaultLanguage", "variables", "states"} <= set(WORKFLOW)
    ref = WORKFLOW["startUpRef"]
    assert ref.startswith("/workflow/states/state[")
    states = {s["state"]["refId"]: s["state"] for s in WORKFLOW["states"]}
    state = states[ref[len("/workflow/states/state["):-1]]
    variables = {}
    for entry in WORKFLOW["variables"]:
        (kind, var), = entry.items()
        assert var["isInput"] is True and var["isOutput"] is False
        variables[var["name"]] = kind
    properties = ACTION["contract"]["input"]["inputSchema"]["properties"]
    # TopLevelPrimitives: the input variable is named like the event's attribute, of its type.
    assert variables == {f"Flow.{name}": ("integerVariable" if p["type"] == "integer" else "stringVariable")
                         for name, p in properties.items()}
    [action] = state["actions"]
    call = action["callData"]
    [(integration, category)] = call["category"].items()
    assert integration == EVENTS_INTEGRATION
    assert list(category["dataAction"]) == [ACTION["name"]]
    inputs = category["dataAction"][ACTION["name"]]["inputs"]
    assert inputs == {name: {"exp": f"Flow.{name}"} for name in properties}
    assert set(call["outputs"]) == {"success", "failure", "timeout"}
    for branch in call["outputs"].values():
        assert [next(iter(a)) for a in branch["actions"]] == ["endWorkflow"]
