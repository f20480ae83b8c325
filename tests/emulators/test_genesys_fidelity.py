"""The Genesys emulator serves nothing the real platform lacks (issue #15): every route it
serves is an endpoint of the official SDK (PureCloudPlatformClientV2, read as a test-only
dependency) with that method, every query parameter it reads is one that endpoint takes, and
the notification topics it accepts are the ones it lists as available."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path

import httpx
import PureCloudPlatformClientV2
import pytest

from emulators.genesys.app import create_app
from emulators.genesys.settings import EmulatorSettings
from tests.helpers import genesys_token

# Each *Api method builds its request as: resource_path = '/api/v2/…'; query_params['name'] = …;
# call_api(resource_path, 'METHOD', …).
_METHOD = re.compile(r"resource_path = '([^']+)'\.replace\('\{format\}', 'json'\)(.*?)"
                     r"call_api\(resource_path, '([A-Z]+)'", re.S)
_QUERY = re.compile(r"query_params\['([^']+)'\]")
_PARAM = re.compile(r"\{[^}]+\}")
CONTROL = ("/_emulator", "/oauth")  # the emulator's own test hooks, and the login host


def sdk_endpoints() -> dict[tuple[str, str], set[str]]:
    """(method, path template) -> its query parameters, from every API class of the SDK."""
    apis = Path(PureCloudPlatformClientV2.__file__).parent / "apis"
    out: dict[tuple[str, str], set[str]] = {}
    for source in glob.glob(str(apis / "*.py")):
        for path, body, method in _METHOD.findall(Path(source).read_text()):
            out.setdefault((method, _PARAM.sub("{}", path)), set()).update(_QUERY.findall(body))
    return out


def emulator_routes():
    app = create_app(EmulatorSettings(data_dir=Path(tempfile.mkdtemp()), client_id="c", client_secret="s"))

    def walk(routes):
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            elif getattr(route, "methods", None) and not route.path.startswith(CONTROL):
                yield route

    return list(walk(app.routes))


def test_every_route_and_query_parameter_the_emulator_serves_is_in_the_sdk():
    sdk = sdk_endpoints()
    assert len(sdk) > 1000  # the regex read the SDK (a few thousand endpoints)
    routes = emulator_routes()
    assert len(routes) > 30
    unknown, extra_params = [], []
    for route in routes:
        for method in route.methods - {"HEAD"}:
            key = (method, _PARAM.sub("{}", route.path))
            if key not in sdk:
                unknown.append(f"{method} {route.path}")
                continue
            served = {p.alias or p.name for p in route.dependant.query_params}
            if served - sdk[key]:
                extra_params.append(f"{method} {route.path}: {sorted(served - sdk[key])}")
    assert unknown == [], "routes the SDK has no endpoint for"
    assert extra_params == [], "query parameters the SDK's endpoint does not take"


@pytest.mark.integration
def test_an_unknown_route_is_answered_as_genesys_answers_one(genesys):
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    resp = httpx.delete(f"{genesys.api_url}/api/v2/externalcontacts/scan/contacts", headers=headers)
    assert resp.status_code in (404, 405)
    body = resp.json()
    assert body["status"] == resp.status_code and body["code"] and "contextId" in body


def own_channels_token(genesys, index: int) -> dict[str, str]:
    """An agent's token: channels are counted per user and application, so these tests' channels
    never crowd a running starter's (client credentials) channel."""
    from tests.agent_signin import agents, user_token

    return {"Authorization": f"Bearer {user_token(genesys, agents(genesys, 50)[index]['username'])}"}


@pytest.mark.integration
def test_the_topics_accepted_are_the_available_topics(genesys):
    headers = own_channels_token(genesys, 48)
    api = genesys.api_url
    listing = httpx.get(f"{api}/api/v2/notifications/availabletopics", headers=headers)
    assert listing.status_code == 200
    from tests.emulators.test_genesys_emulator import assert_model

    assert_model(listing.json(), "AvailableTopicEntityListing")
    available = [t["id"] for t in listing.json()["entities"]]
    channel = httpx.post(f"{api}/api/v2/notifications/channels", headers=headers).json()
    some_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    for topic in available:
        concrete = topic.replace("{id}", some_id)
        ok = httpx.post(f"{api}/api/v2/notifications/channels/{channel['id']}/subscriptions", headers=headers,
                        json=[{"id": concrete}])
        assert ok.status_code == 200, topic
    for made_up in ("v2.users.{id}.presence.everything", "v2.system.socket_closing", "channel.metadata"):
        refused = httpx.post(f"{api}/api/v2/notifications/channels/{channel['id']}/subscriptions",
                             headers=headers, json=[{"id": made_up.replace("{id}", some_id)}])
        assert refused.status_code == 400, made_up


@pytest.mark.integration
def test_twenty_channels_per_user_and_application_a_thousand_topics_each(genesys):
    headers = own_channels_token(genesys, 49)
    api = genesys.api_url
    before = {c["id"] for c in httpx.get(f"{api}/api/v2/notifications/channels", headers=headers).json()["entities"]}
    made = [httpx.post(f"{api}/api/v2/notifications/channels", headers=headers).json()["id"] for _ in range(21)]
    listed = {c["id"] for c in httpx.get(f"{api}/api/v2/notifications/channels", headers=headers).json()["entities"]}
    assert len(listed) == 20 and made[-1] in listed
    # The new channel replaced the oldest one without a connection.
    replaced = (set(made) | before) - listed
    assert len(replaced) == len(before) + 1
    oldest_gone = min(replaced, key=lambda c: made.index(c) if c in made else -1)
    assert before or oldest_gone == made[0]
    assert httpx.get(f"{api}/api/v2/notifications/channels/{oldest_gone}/subscriptions",
                     headers=headers).status_code == 404
    topics = [{"id": f"v2.users.{i:08d}-0000-4000-8000-000000000000.conversations"} for i in range(1001)]
    too_many = httpx.put(f"{api}/api/v2/notifications/channels/{made[-1]}/subscriptions", headers=headers,
                         json=topics)
    assert too_many.status_code == 400
    assert httpx.put(f"{api}/api/v2/notifications/channels/{made[-1]}/subscriptions", headers=headers,
                     json=topics[:1000]).status_code == 200
