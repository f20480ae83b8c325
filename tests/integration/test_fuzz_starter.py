"""Schema-driven fuzzing of the real starter (issue #9, item 2): schemathesis reads the
starter's own OpenAPI document over its socket and generates requests for every operation —
valid ones (positive) and ones that break the schema (negative) — sent with the credentials
the stack configures (the webhook's bodies signed, since an unsigned one stops at 401).

Asserted: no 5xx, and Temporal holds exactly the workflows the accepted (202) requests
started: invalid input starts none. Bounded for CI: a fixed budget per operation and mode,
derandomized, so the same requests run every time.

The session's Genesys emulator ends other tests' simulated calls through its trigger, which
starts their call logging in the same namespace: a call logging workflow started during the
fuzz counts as the fuzz's unless its conversation is one Genesys knows and no fuzzed
delivery named (counting every start in the namespace made the test flaky).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from callbridge.domain import signature
from tests.helpers import genesys_token

pytestmark = pytest.mark.integration

EXAMPLES = 15  # per operation and mode: ~30 operations-modes, the whole run in well under a minute
WEBHOOK = "/webhooks/genesys/conversation-ended"
EVENTS = "/webhooks/genesys/events"  # the call-ended event from Genesys (data action, EventBridge)
# Workflow types a request could start, and which endpoints may start each.
STARTS = {"CallLoggingWorkflow": (WEBHOOK, EVENTS), "GdprErasureWorkflow": ("/gdpr/erasures",)}
OTHER_TYPES = ("SyncPairWorkflow", "ContactSyncWorkflow", "RetentionWorkflow")


AGENT: dict[str, str] = {}  # an agent's bearer header, signed in once per run


def credentials(path: str) -> tuple[str, str] | dict[str, str] | None:
    """What the stack configures for each route family (the settings' defaults)."""
    if path.startswith("/screenpop/"):
        return ("genesys-data-action", "callbridge-demo-lookup")
    if path.startswith(("/desktop/", "/recordings/")):
        return AGENT
    if path.startswith(("/admin/", "/gdpr/")):
        return ("admin", "callbridge-demo-admin")
    if path.startswith("/codec/"):
        return {"Authorization": "Bearer callbridge-demo-codec"}
    if path == EVENTS:
        return ("genesys-call-ended", "callbridge-demo-events")
    return None


async def counts(client) -> Counter:
    out = Counter()
    for wtype in (*STARTS, *OTHER_TYPES):
        if wtype != "CallLoggingWorkflow":  # see call_logging_started_by_the_fuzz
            out[wtype] = (await client.count_workflows(f"WorkflowType = '{wtype}'")).count
    return out


def strings_in(raw: bytes) -> set[str]:
    """Every string a delivery's body holds, as sent and JSON-decoded: where a conversation id
    the starter took from it must appear."""
    text = raw.decode("utf-8", "replace")
    found = {text}
    try:
        todo = [json.loads(text)]
    except ValueError:
        return found
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            todo += item
        elif isinstance(item, str):
            found.add(item)
    return found


async def call_logging_started_by_the_fuzz(client, genesys, since: datetime, accepted_ids: set[str],
                                           delivered: list[set[str]]) -> tuple[set[str], list[str]]:
    """(the accepted deliveries' workflows found, the call logging workflows started since
    `since` that no 202 accounts for and that aren't another test's simulated call)."""
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    found: set[str] = set()
    unexplained: list[str] = []
    query = f"WorkflowType = 'CallLoggingWorkflow' AND StartTime >= '{since.isoformat()}'"
    async for wf in client.list_workflows(query):
        if wf.id in accepted_ids:
            found.add(wf.id)
            continue
        conversation_id = wf.id.removeprefix("call-log-")
        named = any(conversation_id in text for strings in delivered for text in strings)
        known = requests.get(f"{genesys.api_url}/api/v2/conversations/{conversation_id}", headers=headers,
                             timeout=30).status_code == 200
        if named or not known:
            unexplained.append(wf.id)
    return found, unexplained


def send(stack, session: requests.Session, case) -> requests.Response:
    kwargs = case.as_transport_kwargs(base_url=stack.starter_url)
    auth = credentials(case.operation.path)
    if isinstance(auth, dict):
        kwargs["headers"].update(auth)
    elif auth:
        kwargs["auth"] = auth
    if case.operation.path == WEBHOOK:
        raw = json.dumps(kwargs.pop("json")).encode() if "json" in kwargs else kwargs.pop("data", b"") or b""
        raw = raw.encode() if isinstance(raw, str) else raw
        kwargs["data"] = raw
        kwargs["headers"].update(signature.signed_headers(stack.webhook_secret, int(time.time()), raw))
    # stream: /desktop/events answers with an endless event stream once it accepts.
    resp = session.request(**kwargs, timeout=30, stream=True)
    if "text/event-stream" not in resp.headers.get("content-type", ""):
        resp.content  # noqa: B018 - read the whole answer
    resp.close()
    return resp


async def test_no_5xx_and_invalid_input_starts_nothing(stack, genesys, temporal_client):
    from tests.agent_signin import agents, register_redirect_uri, sign_in

    register_redirect_uri(genesys, stack)
    AGENT["Authorization"] = f"Bearer {sign_in(genesys, stack, agents(genesys)[1]['username'])}"
    schema = schemathesis.openapi.from_url(f"{stack.starter_url}/openapi.json")
    before = await counts(temporal_client)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    accepted: Counter = Counter()  # 202s per starting workflow type
    accepted_call_logging: set[str] = set()  # the workflowIds the 202s named
    delivered: list[set[str]] = []  # the strings of every call-ended delivery sent, whatever its answer
    statuses: Counter = Counter()
    failures: list[str] = []
    unbreakable: list[str] = []
    session = requests.Session()
    session.trust_env = False

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {WEBHOOK, EVENTS, "/screenpop/lookup", "/screenpop/lookup-by-account",
                                               "/gdpr/erasures", "/admin/api/conflicts", "/codec/decode"}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case) -> None:
                resp = send(stack, session, case)
                statuses[(op.method.upper(), op.path, resp.status_code)] += 1
                if resp.status_code >= 500:
                    failures.append(f"{resp.status_code} {case.as_curl_command()}")
                for wtype, paths in STARTS.items():
                    if resp.status_code == 202 and op.path in paths:
                        accepted[wtype] += 1
                if op.path in STARTS["CallLoggingWorkflow"]:
                    body = resp.request.body or b""
                    delivered.append(strings_in(body if isinstance(body, bytes) else body.encode()))
                    if resp.status_code == 202:
                        accepted_call_logging.add(resp.json()["workflowId"])

            try:
                run()
            except Unsatisfiable:
                # Nothing to break in an operation without parameters or body (GET /healthz).
                assert mode == GenerationMode.NEGATIVE, op.path
                unbreakable.append(op.path)

    assert not failures, "\n".join(failures[:20])
    after = await counts(temporal_client)
    for wtype in STARTS:
        if wtype != "CallLoggingWorkflow":
            assert after[wtype] - before[wtype] == accepted[wtype], (wtype, dict(statuses))
    assert len(accepted_call_logging) == accepted["CallLoggingWorkflow"]  # each 202 a new workflow
    found, unexplained = await call_logging_started_by_the_fuzz(
        temporal_client, genesys, since, accepted_call_logging, delivered)
    assert found == accepted_call_logging, dict(statuses)
    assert unexplained == [], dict(statuses)
    for wtype in OTHER_TYPES:
        assert after[wtype] == before[wtype], wtype
    # The fuzzer really got past authentication and validation somewhere.
    assert WEBHOOK not in unbreakable and EVENTS not in unbreakable and "/screenpop/lookup" not in unbreakable
    assert any(status == 200 for (_, _, status) in statuses), dict(statuses)
    assert any(status == 422 for (_, path, status) in statuses if path == WEBHOOK), dict(statuses)
    assert any(status == 422 for (_, path, status) in statuses if path == EVENTS), dict(statuses)
