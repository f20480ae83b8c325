"""The last test of the session (conftest puts it last): nothing any process of the suite logged
holds a personal value the tests used.

Scanned: every log file under the session's temp tree — the worker, the starter (and any other
worker, starter or emulator a test ran, in the var dir or its tmp_path), both emulators — and
this process' own structlog/logging output (tests/log_capture.py). Searched for: every contact the session's Salesforce org and Genesys
org hold (queryAll: deleted ones too): emails, full names, phone numbers in every format; the
tests' own names and email domains (which also cover erased people, gone from both orgs); any
Austin number (tests/helpers.py `unique_us_number`) however it is written.

A canary call first goes through the real path with a failing Salesforce attempt (an activity
failure is logged with its error): so the worker, the starter and this process provably logged
during the scan window and the scan cannot pass on empty files.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

from urllib.parse import unquote

import httpx
import pytest
import structlog

from callbridge.core.alerts import send_alert
from callbridge.core.logs import mask_text
from tests.helpers import TEST_EMAIL_DOMAIN, place_call, stack_settings, unique_us_number, tls

pytestmark = pytest.mark.integration

PHONE_FIELDS = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
# Phone-shaped runs standing alone (not inside an id or a UUID): digits with the separators
# people type, also followed by an extension ("4165550199x12").
_PHONE_RUN = re.compile(r"(?<![\w-])\+?\(?\d[\d\s().-]{5,}\d(?:(?=\s*(?:;ext=|ext\.?|x)\s*\d)|(?![\w-]))", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_TOKEN = re.compile(r"\w+")
_AUSTIN = re.compile(r"^1?512[2-9]\d{6}$")  # unique_us_number: 512 + exchange 200-999 + line
# Names and domains tests/helpers.py and the privacy tests make people with.
TEST_WORDS = {"Ana", "Erika"}
TEST_PREFIXES = ("Mustermann", "Maskme", "Canary", "Silva", "Consent", "Audited")  # + a unique suffix
TEST_NAMES = {"Agent Smith", "Ana Silva"}
TEST_EMAIL_PATTERNS = [re.compile(r"@" + re.escape(TEST_EMAIL_DOMAIN) + r"\b", re.I),
                       re.compile(r"\bana\.\d+@example\.com", re.I)]


class Known:
    """Every personal value the session's orgs hold, normalised for matching."""

    def __init__(self) -> None:
        self.emails: set[str] = set()
        self.names: set[str] = set()
        self.tokens: set[str] = set(TEST_WORDS)  # single words unique enough to search alone
        self.phones: set[str] = set()            # digits only, and the last 10 of longer ones

    def person(self, first: str | None, last: str | None, emails: list[str | None], phones: list[str | None]) -> None:
        if first and last:
            self.names.add(f"{first} {last}")
        for name in (first, last):
            if name and any(ch.isdigit() for ch in name):
                self.tokens.add(name)  # "Silva123456", "Mustermann1a2b3c": made unique by a test
        self.emails |= {e.lower() for e in emails if e}
        for p in phones:
            digits = re.sub(r"\D", "", p or "")
            if len(digits) >= 7:
                self.phones |= {digits, digits[-10:]}


def salesforce_people(sf, known: Known) -> int:
    fields = ", ".join(("FirstName", "LastName", "Email", *PHONE_FIELDS))
    records = sf.query_all(f"SELECT {fields} FROM Contact", include_deleted=True)["records"]
    for r in records:
        known.person(r.get("FirstName"), r.get("LastName"), [r.get("Email")], [r.get(f) for f in PHONE_FIELDS])
    return len(records)


def genesys_people(gc, known: Known) -> int:
    count, params = 0, {"limit": 200}
    while True:
        body = gc.get("/api/v2/externalcontacts/scan/contacts", params=params).json()
        for c in body.get("entities", []):
            count += 1
            phones = [(c.get(k) or {}).get(f) for k in ("workPhone", "cellPhone", "homePhone", "otherPhone")
                      for f in ("display", "e164")]
            known.person(c.get("firstName"), c.get("lastName"),
                         [c.get(k) for k in ("workEmail", "personalEmail", "otherEmail")], phones)
        after = (body.get("cursors") or {}).get("after")
        if not after:
            return count
        params = {"limit": 200, "cursor": after}


def readable(line: str) -> str:
    """A JSON log line with its escapes undone (an accented name is \\u-escaped in JSON)."""
    try:
        return json.dumps(json.loads(line), ensure_ascii=False)
    except ValueError:
        return line


def leaks(line: str, known: Known) -> list[str]:
    """What in one line is a known personal value (described without repeating it whole)."""
    found = []
    if "%" in line:  # URL-encoded forms too: %2B14165550199, %7B4165550199%7D, %40
        line = f"{line} {unquote(line)}"
    for email in _EMAIL.findall(line):
        if email.lower() in known.emails or any(p.search(email) for p in TEST_EMAIL_PATTERNS):
            found.append(f"email …{email[-6:]}")
    for run in _PHONE_RUN.findall(line):
        digits = re.sub(r"\D", "", run)
        if len(digits) >= 7 and (digits in known.phones or digits[-10:] in known.phones or _AUSTIN.match(digits)):
            found.append(f"phone …{digits[-3:]}")
    words = _WORD.findall(line)
    found += [f"name {a[:1]}. {b[:1]}." for a, b in zip(words, words[1:]) if f"{a} {b}" in known.names]
    found += [f"word {t[:2]}…" for t in _TOKEN.findall(line) if t in known.tokens or t.startswith(TEST_PREFIXES)]
    return found


def test_scanner_finds_what_it_is_meant_to():
    """The matcher itself, on lines written the ways a leak would look."""
    known = Known()
    known.person("Chloé", "Côté", ["Chloe.Cote@Northwind.ca"], ["+1 (416) 555-0199"])
    for line in ('{"event": "call from +14165550199"}', "caller 416.555.0199 rang", "to (416) 555 0199",
                 "mail chloe.cote@northwind.ca", readable('{"name": "Chlo\\u00e9 C\\u00f4t\\u00e9"}'),
                 "number 15125550123", "ana.12345@example.com", f"x@{TEST_EMAIL_DOMAIN}", "Mustermannab12cd here",
                 "q=Phone%3D%27%2B14165550199%27", "id %7B4165550199%7D", "call 4165550199x12",
                 "mail chloe.cote%40northwind.ca"):
        assert leaks(line, known), line
    for line in ('{"event": "call from [phone …99]", "caller": "[masked]"}', "took 1234 ms",
                 "2026-11-24T06:37:45.875411Z", "call-log-e1629cbc-ed76-4a9f-90a4-d96c12345616d",
                 "Contact 0038d00000000RMAAY", "Analytics"):
        assert not leaks(line, known), line


async def test_nothing_the_suite_logged_holds_test_pii(stack, sf, gc, salesforce, genesys, temporal_client,
                                                        tmp_path_factory):
    # The canary: a contact with a name, email and number; its call's first Task write fails
    # (the worker logs the activity failure), and an alert names them in free text (this
    # process logs it through Callbridge's pipeline).
    e164, digits = unique_us_number()
    canary_last = f"Canary{uuid.uuid4().hex[:6]}"
    canary_email = f"canary.{uuid.uuid4().hex[:8]}@{TEST_EMAIL_DOMAIN}"
    sf.Contact.create({"FirstName": "Canary", "LastName": canary_last, "Email": canary_email,
                       "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", "MailingCountry": "United States"})
    started = datetime.now(timezone.utc)
    httpx.post(f"{salesforce.instance_url}/_emulator/faults", verify=tls(salesforce), json={
        "fail_next": [{"method": "POST", "path_regex": "composite", "status": 503, "count": 1}]}).raise_for_status()
    conversation = await place_call(genesys, stack, temporal_client, e164)
    await send_alert(stack_settings(stack, alert_webhook_url=None), "warning",
                     f"canary: <{canary_email}> called from {e164}", request_id=conversation)
    structlog.get_logger("tests.canary").info("canary", caller=e164, name=f"Canary {canary_last}")

    known = Known()
    assert salesforce_people(sf, known) >= 1  # every test's contacts (the session's org starts empty)
    assert genesys_people(gc, known) >= 1
    assert canary_email in known.emails and f"Canary {canary_last}" in known.names

    # The whole session's temp tree: the var dir, and processes a test started under its tmp_path.
    root = Path(tmp_path_factory.getbasetemp())
    logs = sorted(root.rglob("*.log"))
    names = {p.name for p in logs}
    assert {"worker.log", "starter.log", "salesforce.log", "genesys.log", "pytest.log"} <= names
    scanned: dict[str, int] = {}
    after_canary: dict[str, int] = {}
    problems: list[str] = []
    for path in logs:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        scanned[path.name] = scanned.get(path.name, 0) + len(lines)
        for n, raw in enumerate(lines, 1):
            line = readable(raw)
            if conversation in line:
                after_canary[path.name] = after_canary.get(path.name, 0) + 1
            problems += [f"{path.relative_to(root)}:{n}: {what}" for what in leaks(line, known)]
    # Real output was read: the processes logged, and logged the canary's call.
    assert scanned["worker.log"] >= 10 and scanned["starter.log"] >= 10 and scanned["pytest.log"] >= 2, scanned
    # The emulators log at warning level (uvicorn's, no access log): their files are scanned
    # whatever they hold, usually a line or none mid-session.
    assert after_canary.get("starter.log") and after_canary.get("worker.log") and after_canary.get("pytest.log"), (
        after_canary, started)
    assert not problems, "\n".join(problems[:50])


def test_our_processes_log_nothing_but_json_lines(tmp_path_factory):
    """Every line any worker or starter of the session wrote is a JSON object: the Temporal SDK
    core's own warnings (poll errors while the dev server restarts, slow workflow tasks) too,
    which used to reach stderr as coloured text, past the JSON formatter and its PII masking."""
    root = Path(tmp_path_factory.getbasetemp())
    ours = [p for p in sorted(root.rglob("*.log")) if "worker" in p.name or "starter" in p.name]
    assert {"worker.log", "starter.log"} <= {p.name for p in ours}
    not_json = []
    for path in ours:
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
            if line.strip() and not ok:
                not_json.append(f"{path.relative_to(root)}:{n}: {mask_text(line)[:160]}")
    assert not not_json, "\n".join(not_json[:30])
