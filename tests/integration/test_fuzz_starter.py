"""Schema-driven fuzzing of the real starter (issue #9, item 2): schemathesis reads the
starter's own OpenAPI document over its socket and generates requests for every operation —
valid ones (positive) and ones that break the schema (negative) — sent with the credentials
the stack configures (the webhook's bodies signed, since an unsigned one stops at 401).

Asserted: no 5xx, and Temporal holds exactly the workflows the accepted (202) requests
started: invalid input starts none. Bounded for CI: a fixed budget per operation and mode,
derandomized, so the same requests run every time.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from callbridge.domain import signature

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
        out[wtype] = (await client.count_workflows(f"WorkflowType = '{wtype}'")).count
    return out


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
    accepted: Counter = Counter()  # 202s per starting workflow type
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

            try:
                run()
            except Unsatisfiable:
                # Nothing to break in an operation without parameters or body (GET /healthz).
                assert mode == GenerationMode.NEGATIVE, op.path
                unbreakable.append(op.path)

    assert not failures, "\n".join(failures[:20])
    after = await counts(temporal_client)
    for wtype in STARTS:
        assert after[wtype] - before[wtype] == accepted[wtype], (wtype, dict(statuses))
    for wtype in OTHER_TYPES:
        assert after[wtype] == before[wtype], wtype
    # The fuzzer really got past authentication and validation somewhere.
    assert WEBHOOK not in unbreakable and EVENTS not in unbreakable and "/screenpop/lookup" not in unbreakable
    assert any(status == 200 for (_, _, status) in statuses), dict(statuses)
    assert any(status == 422 for (_, path, status) in statuses if path == WEBHOOK), dict(statuses)
    assert any(status == 422 for (_, path, status) in statuses if path == EVENTS), dict(statuses)
