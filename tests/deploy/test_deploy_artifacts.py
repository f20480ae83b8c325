"""The deployable artifacts under deploy/ have the structure their importing tools require.

* Genesys data actions (deploy/genesys/data-actions/*.json): the keys of a data action export
  (name, integrationType, actionType, config.request/response, contract.input.inputSchema,
  contract.output.successSchema, secure), contracts that are valid JSON Schema and obey the
  data-action rules (input: flat object of primitives; output: an object whose arrays are named
  and hold flat objects, so Architect can flatten them), and every output property exists in
  Callbridge's /screenpop lookup response with the same type.
* Archy flow (deploy/genesys/flows/inbound-screen-pop.yaml): parses, has the inboundCall keys
  Archy needs, the start-up task exists, every data action / queue it uses is defined, every
  decision has both outputs, and every flattened output it reads is in the action's contract.
* Salesforce DX project (deploy/salesforce): sfdx-project.json with packageDirectories; each
  metadata XML parses, is in the Metadata API namespace, and the fields have the types/lengths
  Callbridge relies on; the Apex REST class and its test class.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ACTIONS = DEPLOY / "genesys" / "data-actions"
FLOW = DEPLOY / "genesys" / "flows" / "inbound-screen-pop.yaml"
SFDX = DEPLOY / "salesforce"
DEFAULT = SFDX / "force-app" / "main" / "default"
MD_NS = "http://soap.sforce.com/2006/04/metadata"

try:
    import jsonschema
except ImportError:  # structural checks below still run
    jsonschema = None

# Callbridge's lookup response (starter/screenpop.py LookupResponse / Match), JSON types.
MATCH_SHAPE = {
    "contactId": "string", "firstName": "string", "lastName": "string", "accountId": "string",
    "accountName": "string", "tier": "string", "phoneField": "string", "ownLine": "boolean",
    "lastActivity": "string",
}
RESPONSE_SHAPE = {
    "success": "boolean", "contactId": "string", "firstName": "string", "lastName": "string",
    "accountId": "string", "accountName": "string", "tier": "string", "matchCount": "integer",
    "matches": ("array", MATCH_SHAPE), "reason": "string", "source": "string",
}
SAMPLE_RESPONSE = {
    "success": True, "contactId": "003000000000001AAA", "firstName": "John", "lastName": "Doe",
    "accountId": "001000000000001AAA", "accountName": "Acme Corp", "tier": "Premium", "matchCount": 2,
    "matches": [
        {"contactId": "003000000000001AAA", "firstName": "John", "lastName": "Doe",
         "accountId": "001000000000001AAA", "accountName": "Acme Corp", "tier": "Premium",
         "phoneField": "MobilePhone", "ownLine": True, "lastActivity": "2026-03-10T14:30:00+00:00"},
        {"contactId": "003000000000002AAA", "firstName": "Jane", "lastName": "Roe",
         "accountId": "001000000000001AAA", "accountName": "Acme Corp", "tier": "Standard",
         "phoneField": "Phone", "ownLine": False, "lastActivity": "2026-03-01T09:00:00+00:00"},
    ],
    "reason": None, "source": "index",
}
EXPECTED_ACTIONS = {
    "lookup-contact-by-phone.json": ("lookup-contact-by-phone", "/screenpop/lookup", "phoneNumber"),
    "lookup-contact-by-account.json": ("lookup-contact-by-account", "/screenpop/lookup-by-account", "accountNumber"),
}
PRIMITIVES = {"string", "integer", "number", "boolean", "null"}


def _load_action(name: str) -> dict:
    return json.loads((ACTIONS / name).read_text(encoding="utf-8"))


# --- Genesys data actions ----------------------------------------------------------------------


def test_response_shape_matches_the_lookup_service():
    """The shape these tests check against is the service's, not a copy that drifted."""
    screenpop = pytest.importorskip("starter.screenpop")
    assert set(screenpop.LookupResponse.model_fields) == set(RESPONSE_SHAPE)
    assert set(screenpop.Match.model_fields) == set(MATCH_SHAPE)


@pytest.mark.parametrize("filename", sorted(EXPECTED_ACTIONS))
def test_data_action_export_keys(filename):
    action = _load_action(filename)
    name, path, field = EXPECTED_ACTIONS[filename]
    assert {"name", "integrationType", "actionType", "config", "contract", "secure"} <= set(action)
    assert action["name"] == name
    assert action["integrationType"] == "custom-rest-actions"  # Web Services Data Actions
    assert action["actionType"] == "custom"
    assert action["secure"] is False
    request = action["config"]["request"]
    assert set(request) >= {"requestUrlTemplate", "requestType", "headers", "requestTemplate"}
    assert request["requestType"] == "POST"
    assert request["requestUrlTemplate"].startswith("https://") and request["requestUrlTemplate"].endswith(path)
    assert request["headers"].get("Content-Type") == "application/json"
    # the body is the JSON the service expects, with the input escaped for JSON
    body = request["requestTemplate"]
    assert f"${{input.{field}}}" in body and "$esc.jsonString(" in body  # Genesys's JSON-string escaping
    from emulators.genesys.velocity import render  # a real Velocity engine

    tricky = 'tel:+1 "512" \\ 555\n1234'
    assert json.loads(render(body, {field: tricky})) == {field: tricky}
    response = action["config"]["response"]
    assert set(response) == {"translationMap", "translationMapDefaults", "successTemplate"}
    assert set(response["translationMapDefaults"]) <= set(response["translationMap"])


def _resolve_jsonpath(doc, path: str) -> bool:
    """Resolve the simple JSONPath forms used in translation maps ($.a.b, $.a[*].b, $.a[0].b)."""
    assert path.startswith("$"), path
    nodes = [doc]
    for part in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\*|\d+)\]", path[1:]):
        key, index = part
        nxt = []
        for node in nodes:
            if key:
                if isinstance(node, dict) and key in node:
                    nxt.append(node[key])
            elif isinstance(node, list):
                nxt.extend(node if index == "*" else node[int(index):int(index) + 1])
        nodes = nxt
    return bool(nodes)


@pytest.mark.parametrize("filename", sorted(EXPECTED_ACTIONS))
def test_translation_map_paths_exist_and_template_uses_them(filename):
    response = _load_action(filename)["config"]["response"]
    for key, path in response["translationMap"].items():
        assert _resolve_jsonpath(SAMPLE_RESPONSE, path), f"{key}: {path} is not in the lookup response"
    template = response["successTemplate"]
    refs = set(re.findall(r"\$!?\{([A-Za-z_][A-Za-z0-9_]*)\}", template))
    assert refs <= set(response["translationMap"]) | {"rawResult"}, refs
    if refs == {"rawResult"}:
        assert template.strip() == "${rawResult}"


def _check_schema(schema: dict) -> None:
    if jsonschema is not None:
        jsonschema.Draft4Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert "$ref" not in json.dumps(schema), "contracts do not support $ref"


@pytest.mark.parametrize("filename", sorted(EXPECTED_ACTIONS))
def test_input_contract_is_a_flat_object_of_primitives(filename):
    _, _, field = EXPECTED_ACTIONS[filename]
    schema = _load_action(filename)["contract"]["input"]["inputSchema"]
    _check_schema(schema)
    assert schema["required"] == [field]
    for name, prop in schema["properties"].items():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name), name
        assert name not in {"orgId", "integrationId", "rawRequest"}, f"{name} is reserved"
        assert prop["type"] in PRIMITIVES, f"input {name}: nested values are not allowed"
    if jsonschema is not None:
        jsonschema.validate({field: "+15125551234"}, schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({}, schema)


def _check_flattenable(schema: dict, where: str, inside_array: bool = False) -> None:
    """Architect flattens named arrays of flat objects to one collection per property; an
    anonymous top level array or an array inside an array cannot be flattened."""
    for name, prop in schema.get("properties", {}).items():
        kind = prop["type"]
        if kind == "array":
            assert not inside_array, f"{where}.{name}: nested arrays cannot be flattened"
            items = prop["items"]
            if items["type"] == "object":
                _check_flattenable(items, f"{where}.{name}", inside_array=True)
            else:
                assert items["type"] in PRIMITIVES
        elif kind == "object":
            _check_flattenable(prop, f"{where}.{name}", inside_array)
        else:
            assert kind in PRIMITIVES, f"{where}.{name}: {kind}"


@pytest.mark.parametrize("filename", sorted(EXPECTED_ACTIONS))
def test_output_contract_is_the_lookup_response(filename):
    schema = _load_action(filename)["contract"]["output"]["successSchema"]
    _check_schema(schema)
    _check_flattenable(schema, "output")
    props = schema["properties"]
    assert set(props) == set(RESPONSE_SHAPE), set(props) ^ set(RESPONSE_SHAPE)
    for name, kind in RESPONSE_SHAPE.items():
        if isinstance(kind, tuple):
            assert props[name]["type"] == "array"
            items = props[name]["items"]
            assert items["type"] == "object"
            assert {k: v["type"] for k, v in items["properties"].items()} == kind[1]
        else:
            assert props[name]["type"] == kind, name
    assert props["matchCount"]["type"] == "integer"
    if jsonschema is not None:
        jsonschema.validate({k: v for k, v in SAMPLE_RESPONSE.items() if v is not None}, schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**SAMPLE_RESPONSE, "reason": None, "matchCount": "two"}, schema)


def _flattened_outputs(schema: dict) -> dict[str, str]:
    """The output names Architect offers: 'matchCount', 'matches.contactId', ..."""
    out = {}
    for name, prop in schema["properties"].items():
        if prop["type"] == "array" and prop["items"]["type"] == "object":
            for sub, sp in prop["items"]["properties"].items():
                out[f"{name}.{sub}"] = sp["type"] + " collection"
        else:
            out[name] = prop["type"]
    return out


# --- Archy flow --------------------------------------------------------------------------------


def _flow() -> dict:
    return yaml.safe_load(FLOW.read_text(encoding="utf-8"))


def _walk(node, path="flow"):
    """Every (path, action name, action body) in the flow, nested outputs included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, dict) and len(item) == 1:
                (kind, body), = item.items()
                yield f"{path}[{i}]", kind, body
            yield from _walk(item, f"{path}[{i}]")


def test_flow_top_level_keys():
    doc = _flow()
    assert list(doc) == ["inboundCall"]
    flow = doc["inboundCall"]
    for key in ("name", "division", "startUpRef", "defaultLanguage", "supportedLanguages", "initialGreeting",
                "settingsErrorHandling", "tasks"):
        assert key in flow, key
    assert flow["defaultLanguage"] in flow["supportedLanguages"]
    assert "startUpTaskActions" not in flow, "startUpTaskActions is for in-queue flows; inbound flows use startUpRef"


def test_start_up_ref_points_at_a_defined_task():
    flow = _flow()["inboundCall"]
    m = re.fullmatch(r"/inboundCall/(tasks/task|menus/menu)\[(.+)\]", flow["startUpRef"])
    assert m, flow["startUpRef"]
    kind, ref = m.groups()
    entries = flow["tasks" if kind == "tasks/task" else "menus"]
    ref_ids = [list(e.values())[0]["refId"] for e in entries]
    assert len(ref_ids) == len(set(ref_ids))
    assert ref in ref_ids


def test_every_reference_is_defined():
    flow = _flow()["inboundCall"]
    refs = [b for _, kind, b in _walk(flow) if kind in ("jumpToTask", "jumpToMenu")]
    task_ids = {t["task"]["refId"] for t in flow["tasks"]}
    menu_ids = {m["menu"]["refId"] for m in flow.get("menus", [])}
    for body in refs:
        target = body.get("targetTaskRef") or body.get("targetMenuRef")
        assert target and re.search(r"\[(.+)\]", target).group(1) in task_ids | menu_ids, target


def test_every_decision_has_both_paths():
    decisions = [(p, b) for p, kind, b in _walk(_flow()) if kind == "decision"]
    assert len(decisions) >= 5
    for path, body in decisions:
        assert "condition" in body and ("exp" in body["condition"] or "lit" in body["condition"]), path
        outputs = body.get("outputs", {})
        # quoted in the YAML: unquoted yes/no would load as booleans
        assert set(outputs) == {"yes", "no"}, f"{path}: {sorted(map(str, outputs))}"
        for branch in ("yes", "no"):
            assert outputs[branch].get("actions"), f"{path}: empty '{branch}' path"


def test_data_actions_used_by_the_flow_are_the_exported_ones():
    flow = _flow()["inboundCall"]
    calls = [(p, b) for p, kind, b in _walk(flow) if kind == "callData"]
    used = set()
    actions = {a["name"]: a for a in (_load_action(f) for f in EXPECTED_ACTIONS)}
    for path, body in calls:
        (integration, cat), = body["category"].items()
        (name, spec), = cat["dataAction"].items()
        used.add(name)
        assert name in actions, f"{path}: {name} is not an exported data action"
        contract = actions[name]["contract"]
        assert set(spec["inputs"]) == set(contract["input"]["inputSchema"]["properties"]), path
        offered = _flattened_outputs(contract["output"]["successSchema"])
        for output, target in spec.get("successOutputs", {}).items():
            assert output in offered, f"{path}: {output} is not an output of {name}"
            assert target["var"].startswith(("Task.", "Flow.", "State.")), target
        seconds = body["timeout"]["lit"]["seconds"]
        assert 0 < seconds <= 3, "the seed's data action budget is 3 s"
        assert set(body.get("outputs", {})) <= {"success", "failure", "timeout"}, path
    assert used == {"lookup-contact-by-phone", "lookup-contact-by-account"}
    # the phone lookup handles all three outcomes and reads the candidates list
    phone = next(b for _, b in calls if "lookup-contact-by-phone" in list(b["category"].values())[0]["dataAction"])
    assert set(phone["outputs"]) == {"success", "failure", "timeout"}
    spec = list(phone["category"].values())[0]["dataAction"]["lookup-contact-by-phone"]
    assert spec["inputs"]["phoneNumber"] == {"exp": "Call.Ani"}
    assert {"matchCount", "matches.contactId", "success", "reason"} <= set(spec["successOutputs"])


def test_variables_used_are_declared():
    task = _flow()["inboundCall"]["tasks"][0]["task"]
    declared = {list(v.values())[0]["name"] for v in task["variables"]}
    text = FLOW.read_text(encoding="utf-8")
    used = set(re.findall(r"\bTask\.[A-Za-z0-9_]+", text))
    assert used <= declared, used - declared


def test_participant_attributes_and_queue():
    flow = _flow()["inboundCall"]
    sets = [b for _, kind, b in _walk(flow) if kind == "setParticipantData"]
    assert len(sets) == 1
    names = [a["attribute"]["name"]["lit"] for a in sets[0]["attributes"]]
    assert names == ["contact_id", "contact_name", "account_id", "account_name", "customer_tier"]
    transfers = [b for _, kind, b in _walk(flow) if kind == "transferToAcd"]
    assert transfers and all(t["targetQueue"]["lit"]["name"] == "Support Queue" for t in transfers)
    collects = [b for _, kind, b in _walk(flow) if kind == "collectInput"]
    assert {c["inputData"]["var"] for c in collects} == {"Task.selection", "Task.accountNumber"}


# --- Salesforce DX project ---------------------------------------------------------------------


def test_sfdx_project():
    project = json.loads((SFDX / "sfdx-project.json").read_text(encoding="utf-8"))
    dirs = project["packageDirectories"]
    assert [d for d in dirs if d.get("default")] and all((SFDX / d["path"]).is_dir() for d in dirs)
    assert re.fullmatch(r"\d{2}\.0", project["sourceApiVersion"])


XML_FILES = sorted(DEFAULT.rglob("*-meta.xml"))


def test_metadata_files_present():
    names = {p.relative_to(DEFAULT).as_posix() for p in XML_FILES}
    for field in ("Custom_Tier__c", "Genesys_Contact_Id__c", "Last_Call_Date__c", "Last_Call_Duration__c"):
        assert f"objects/Contact/fields/{field}.field-meta.xml" in names
    # Task custom fields are Activity fields in the Metadata API (deploying objects/Task/fields fails)
    assert "objects/Activity/fields/Genesys_Conversation_Id__c.field-meta.xml" in names
    assert "objects/Contact_Consent__c/Contact_Consent__c.object-meta.xml" in names
    for field in ("Contact__c", "Consent_Type__c", "Channel__c", "Version__c", "Consent_Date__c", "Withdrawn__c",
                  "Withdrawn_Date__c"):
        assert f"objects/Contact_Consent__c/fields/{field}.field-meta.xml" in names
    assert "classes/ContactLookupService.cls-meta.xml" in names
    assert "classes/ContactLookupServiceTest.cls-meta.xml" in names
    for obj in ("Contact", "Account"):  # Change Data Capture (`callbridge listen`)
        member = DEFAULT / f"platformEventChannelMembers/ChangeEvents_{obj}ChangeEvent.platformEventChannelMember-meta.xml"
        root = ET.parse(member).getroot()
        assert (_text(root, "eventChannel"), _text(root, "selectedEntity")) == ("ChangeEvents", f"{obj}ChangeEvent")


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.name)
def test_metadata_xml_parses_in_the_metadata_namespace(path):
    root = ET.parse(path).getroot()
    assert root.tag.startswith("{" + MD_NS + "}"), root.tag
    expected_root = {"field-meta.xml": "CustomField", "object-meta.xml": "CustomObject",
                     "cls-meta.xml": "ApexClass", "permissionset-meta.xml": "PermissionSet",
                     "platformEventChannelMember-meta.xml": "PlatformEventChannelMember"}[path.name.split(".", 1)[1]]
    assert root.tag == f"{{{MD_NS}}}{expected_root}"
    if expected_root == "CustomField":
        assert _text(root, "fullName") == path.name.split(".")[0]


def _text(root, tag):
    el = root.find(f"{{{MD_NS}}}{tag}")
    return None if el is None else el.text


def _field(obj: str, name: str):
    return ET.parse(DEFAULT / "objects" / obj / "fields" / f"{name}.field-meta.xml").getroot()


@pytest.mark.parametrize("obj,name,kind,extra", [
    ("Contact", "Genesys_Contact_Id__c", "Text", {"length": "64", "externalId": "true", "unique": "true"}),
    ("Contact", "Last_Call_Date__c", "DateTime", {}),
    ("Contact", "Last_Call_Duration__c", "Number", {"precision": "18", "scale": "0"}),
    ("Activity", "Genesys_Conversation_Id__c", "Text", {"length": "255", "externalId": "true", "unique": "true"}),
    ("Contact_Consent__c", "Contact__c", "Lookup", {"referenceTo": "Contact"}),
    ("Contact_Consent__c", "Version__c", "Text", {"length": "20"}),
    ("Contact_Consent__c", "Consent_Date__c", "DateTime", {}),
    ("Contact_Consent__c", "Withdrawn__c", "Checkbox", {"defaultValue": "false"}),
    ("Contact_Consent__c", "Withdrawn_Date__c", "DateTime", {}),
    ("Contact", "Custom_Tier__c", "Picklist", {}),
    ("Contact_Consent__c", "Consent_Type__c", "Picklist", {}),
    ("Contact_Consent__c", "Channel__c", "Picklist", {}),
])
def test_field_types_and_lengths(obj, name, kind, extra):
    root = _field(obj, name)
    assert _text(root, "type") == kind
    for tag, value in extra.items():
        assert _text(root, tag) == value, tag
    if kind == "Text":
        assert _text(root, "length") is not None
    if kind == "Lookup":
        assert _text(root, "relationshipName") and _text(root, "deleteConstraint") in {"SetNull", "Restrict", "Cascade"}


@pytest.mark.parametrize("obj,name,values", [
    ("Contact", "Custom_Tier__c", ["Standard", "Premium", "Enterprise"]),
    ("Contact_Consent__c", "Consent_Type__c", ["Call Recording", "Marketing", "Data Processing"]),
    ("Contact_Consent__c", "Channel__c", ["Phone", "Email", "SMS", "Web"]),
])
def test_picklist_values(obj, name, values):
    root = _field(obj, name)
    got = [v.text for v in root.iterfind(f"{{{MD_NS}}}valueSet/{{{MD_NS}}}valueSetDefinition/"
                                         f"{{{MD_NS}}}value/{{{MD_NS}}}fullName")]
    assert got == values


def test_custom_object():
    root = ET.parse(DEFAULT / "objects/Contact_Consent__c/Contact_Consent__c.object-meta.xml").getroot()
    for tag in ("label", "pluralLabel", "nameField", "deploymentStatus", "sharingModel"):
        assert root.find(f"{{{MD_NS}}}{tag}") is not None, tag


def _apex(name: str) -> str:
    text = (DEFAULT / "classes" / name).read_text(encoding="utf-8")
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)  # comments can't satisfy the checks


def test_apex_rest_class():
    code = _apex("ContactLookupService.cls")
    assert re.search(r"@RestResource\(\s*urlMapping\s*=\s*'/contact-lookup'\s*\)\s*global\b", code)
    assert re.search(r"@HttpPost\s+global\s+static\s+LookupResponse\s+lookup\(\s*String\s+phoneNumber\s*\)", code)
    assert "IN PHONE FIELDS" in code, "candidates come from SOSL over every phone field"
    for field in ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "Last_Call_Date__c", "Custom_Tier__c"):
        assert field in code
    for key in RESPONSE_SHAPE:
        assert re.search(rf"public\s+\S+\s+{key}\b", code), f"response key {key} missing"
    for key in MATCH_SHAPE:
        assert re.search(rf"public\s+\S+\s+{key}\b", code), f"match key {key} missing"
    for reason in ("anonymous", "unparseable", "not_found"):
        assert f"'{reason}'" in code
    assert code.count("{") == code.count("}")


def test_apex_test_class_asserts_the_cases():
    code = _apex("ContactLookupServiceTest.cls")
    assert re.search(r"@isTest\s+private\s+class\s+ContactLookupServiceTest", code)
    tests = re.findall(r"@isTest\s+static\s+void\s+(\w+)", code)
    assert len(tests) >= 5
    assert "Test.setFixedSearchResults" in code, "SOSL returns nothing in tests without it"
    assert len(re.findall(r"System\.assert(?:Equals)?\(", code)) >= 25
    for case in ("'not_found'", "'anonymous'", "'unparseable'", "matchCount", "ownLine"):
        assert case in code, case
    assert code.count("{") == code.count("}")
