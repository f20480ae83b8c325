"""The agent desktop at scale (issue #15): agents sign in as themselves, the starter keeps one
Genesys notification channel for every page (Genesys allows 20 per user and application),
and renews it on `v2.system.socket_closing`, at expiry and after a dropped socket without
losing an alerting call."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
from playwright.async_api import async_playwright

from tests.agent_signin import agents, register_redirect_uri, sign_in
from tests.conftest import REPO
from tests.helpers import genesys_token, refresh_index, salesforce_client, unique_us_number
from tests.integration.test_browser_screen_pop import CHROMIUM, CHROMIUM_ARGS, signed_in_desktop

pytestmark = pytest.mark.integration
PAGES = 30


def starter_channels(genesys) -> list[dict]:
    """The notification channels of the integration's OAuth client (the starter's, and any other
    test of the session's that opened one with the same client)."""
    token = genesys_token(genesys)
    return httpx.get(f"{genesys.api_url}/api/v2/notifications/channels",
                     headers={"Authorization": f"Bearer {token}"}).json()["entities"]


def channels_holding(genesys, topics: set[str]) -> list[dict]:
    """The client's channels subscribed to every one of these topics: the channel that carries these
    agents (a channel abandoned earlier in the session may still list some of them)."""
    headers = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    return [c for c in starter_channels(genesys) if topics <= {t["id"] for t in httpx.get(
        f"{genesys.api_url}/api/v2/notifications/channels/{c['id']}/subscriptions", headers=headers).json()["entities"]}]


def agent_topic(agent: dict) -> str:
    return f"v2.users.{agent['id']}.conversations"


async def test_thirty_agents_pages_each_pop_their_own_caller_and_no_other(stack, salesforce, genesys, temporal_client):
    sf = salesforce_client(salesforce)
    crew = agents(genesys, PAGES)
    callers = []
    for i, agent in enumerate(crew):
        e164, digits = unique_us_number()
        contact = sf.Contact.create({"FirstName": "Fan", "LastName": f"Out{i:02d}",
                                     "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"})["id"]
        callers.append({"agent": agent, "e164": e164, "contact": contact})
    await refresh_index(temporal_client, stack)
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"dataActionUrl": None}).raise_for_status()
    register_redirect_uri(genesys, stack)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        for caller in callers:
            # A context per agent, as 30 agents have 30 browsers (one browser keeps at most 6
            # HTTP/1.1 connections to a host, and each page holds its event stream open).
            context = await browser.new_context()
            await context.add_init_script("window.open = () => null;")  # record pops are not under test here
            pages.append(await signed_in_desktop(context, stack, genesys, caller["agent"]))
        for page in pages:
            await page.get_by_text("Waiting for calls.").wait_for(timeout=30_000)
        # 30 pages, one channel: past 20 a channel per page would have lost the first pages.
        topics = {agent_topic(c["agent"]) for c in callers}
        assert len(channels_holding(genesys, topics)) == 1

        placed = await asyncio.gather(*(asyncio.to_thread(
            httpx.post, f"{genesys.api_url}/_emulator/calls", timeout=30,
            json={"ani": c["e164"], "agentId": c["agent"]["id"], "alertSeconds": 4.0, "talkSeconds": 1.0})
            for c in callers))
        for caller, answer in zip(callers, placed):
            answer.raise_for_status()
            caller["conversation"] = answer.json()["conversationId"]

        for caller, page in zip(callers, pages):
            card = page.locator(f"[data-contact-id='{caller['contact']}']")
            await card.wait_for(timeout=30_000)
            assert await card.get_attribute("data-conversation-id") == caller["conversation"]
        await asyncio.sleep(1)  # any stray event would have arrived by now
        for caller, page in zip(callers, pages):
            assert await page.evaluate("document.body.dataset.conversations") == caller["conversation"]
        [channel] = channels_holding(genesys, topics)
        await browser.close()

    # The pages are gone: so are their agents' topics.
    token = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    gone = {agent_topic(c["agent"]) for c in callers}
    deadline = time.monotonic() + 20
    while gone & {t["id"] for t in httpx.get(
            f"{genesys.api_url}/api/v2/notifications/channels/{channel['id']}/subscriptions",
            headers=token).json()["entities"]}:
        assert time.monotonic() < deadline, "the closed pages' topics are still subscribed"
        await asyncio.sleep(0.3)


async def read_events(lines, conversation: str, timeout: float = 30) -> dict:
    """The first event of this conversation on a desktop event stream's lines."""
    deadline = time.monotonic() + timeout
    async for line in lines:
        assert time.monotonic() < deadline, f"no event for {conversation}"
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event.get("conversationId") == conversation:
                return event
    raise AssertionError("the event stream ended")


@pytest.mark.parametrize("how", ["socket_closing", "dropped", "expiry"])
async def test_a_renewed_channel_loses_no_alerting_call(stack, genesys, how):
    register_redirect_uri(genesys, stack)
    agent = agents(genesys, 45)[40 + ["socket_closing", "dropped", "expiry"].index(how)]
    token = sign_in(genesys, stack, agent["username"])
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            async with http.stream("GET", f"{stack.starter_url}/desktop/events", headers=headers) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                first = await anext(lines)
                assert json.loads(first[6:])["type"] == "ready"
                [channel] = channels_holding(genesys, {agent_topic(agent)})
                if how == "expiry":
                    # The channel's 24 hours, shortened: it ends on its own, with socket_closing.
                    httpx.post(f"{genesys.api_url}/_emulator/config", json={"channelTtlSeconds": 2}).raise_for_status()
                    httpx.post(f"{genesys.api_url}/_emulator/notifications/channels/{channel['id']}/close",
                               json={"warn": True}).raise_for_status()  # the current one was made for 24 h
                    await asyncio.sleep(3)
                else:
                    httpx.post(f"{genesys.api_url}/_emulator/notifications/channels/{channel['id']}/close",
                               json={"warn": how == "socket_closing"}).raise_for_status()
                # The call alerts at once, maybe before the new channel is subscribed.
                e164, _ = unique_us_number()
                call = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30, json={
                    "ani": e164, "agentId": agent["id"], "alertSeconds": 6.0, "talkSeconds": 1.0})
                call.raise_for_status()
                event = await read_events(lines, call.json()["conversationId"])
                assert event["state"] == "alerting" and event["ani"] == e164  # caught up, not first seen connected
                renewed = channels_holding(genesys, {agent_topic(agent)})  # while the page is open
    finally:
        httpx.post(f"{genesys.api_url}/_emulator/config", json={"channelTtlSeconds": 86400}).raise_for_status()
    assert len(renewed) == 1 and renewed[0]["id"] != channel["id"]


async def test_the_desktop_needs_an_agent_and_shows_only_their_own_conversations(stack, genesys):
    register_redirect_uri(genesys, stack)
    one, other = agents(genesys, 47)[45:47]
    # No token, or the integration's own token (no user behind it): refused.
    assert httpx.get(f"{stack.starter_url}/desktop/config").status_code == 401
    client = {"Authorization": f"Bearer {genesys_token(genesys)}"}
    assert httpx.get(f"{stack.starter_url}/desktop/config", headers=client).status_code == 401
    assert httpx.get(f"{stack.starter_url}/desktop/lookup", params={"phone": "+15125550100"},
                     auth=("agent", "callbridge-demo-desktop")).status_code == 401  # the old shared password
    token = sign_in(genesys, stack, one["username"])
    mine = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{stack.starter_url}/desktop/config", headers=mine).json()["agentId"] == one["id"]
    # Interaction-widget mode: a conversation of another agent is not shown.
    e164, _ = unique_us_number()
    theirs = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30, json={
        "ani": e164, "agentId": other["id"], "alertSeconds": 1.0, "talkSeconds": 1.0}).json()["conversationId"]
    shown = httpx.get(f"{stack.starter_url}/desktop/conversation", params={"conversationId": theirs}, headers=mine)
    assert shown.status_code == 403
    # PKCE is checked: a code redeemed with the wrong verifier gets no token.
    config = httpx.get(f"{stack.starter_url}/agent/config").json()
    form = httpx.post(f"{config['loginUrl']}/oauth/authorize", data={
        "response_type": "code", "client_id": config["clientId"], "redirect_uri": config["redirectUri"],
        "code_challenge": "x" * 43, "code_challenge_method": "S256", "username": one["username"],
        "password": "callbridge-agent"})
    code = httpx.URL(form.headers["location"]).params["code"]
    refused = httpx.post(f"{config['loginUrl']}/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": config["redirectUri"],
        "client_id": config["clientId"], "code_verifier": "y" * 43})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # An unregistered redirect URI is never redirected to.
    evil = httpx.get(f"{config['loginUrl']}/oauth/authorize", params={
        "response_type": "code", "client_id": config["clientId"], "redirect_uri": "https://evil.example/cb",
        "code_challenge": "x" * 43, "code_challenge_method": "S256"})
    assert evil.status_code == 400 and "location" not in evil.headers


async def test_the_interaction_widget_uses_genesys_url_template_parameters(stack, salesforce, genesys, temporal_client):
    """The widget URL as deploy/genesys/desktop/interaction-widget.json configures it, with the
    values Genesys substitutes for {{gcConversationId}}, {{gcHostOrigin}}, {{gcTargetEnv}}."""
    template = json.loads((REPO / "deploy/genesys/desktop/interaction-widget.json").read_text())["properties"]["url"]
    assert {"{{gcConversationId}}", "{{gcHostOrigin}}", "{{gcTargetEnv}}"} <= set(re.findall(r"\{\{\w+\}\}", template))
    sf = salesforce_client(salesforce)
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"FirstName": "Wid", "LastName": "Get", "Phone": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"})["id"]
    await refresh_index(temporal_client, stack)
    agent = agents(genesys, 48)[47]
    call = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30, json={
        "ani": e164, "agentId": agent["id"], "alertSeconds": 1.0, "talkSeconds": 30.0}).json()
    environment = httpx.URL(genesys.api_url).netloc.decode()  # the emulator's "environment"

    def widget_path(env: str) -> str:
        url = (template.replace("https://callbridge.example.com", "")
               .replace("{{gcConversationId}}", call["conversationId"])
               .replace("{{gcHostOrigin}}", "https%3A%2F%2Fapps.example.com").replace("{{gcTargetEnv}}", env))
        return url

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        await context.add_init_script("window.open = () => null;")
        page = await signed_in_desktop(context, stack, genesys, agent, widget_path(environment))
        card = page.locator(f"[data-contact-id='{contact}']")
        await card.wait_for(timeout=20_000)
        assert await card.get_attribute("data-conversation-id") == call["conversationId"]
        # Opened from another environment than the one this Callbridge serves: it says so.
        await page.goto(f"{stack.starter_url}{widget_path('mypurecloud.de')}")
        await page.get_by_text("This Callbridge serves").wait_for(timeout=10_000)
        await browser.close()


def test_the_genesys_environment_and_apps_origin_come_from_the_api_url():
    from starter.desktop import apps_origin, genesys_environment

    assert genesys_environment("https://api.mypurecloud.de") == "mypurecloud.de"
    assert apps_origin("https://api.mypurecloud.de") == "https://apps.mypurecloud.de"  # {{gcHostOrigin}}
    assert apps_origin("https://api.usw2.pure.cloud/") == "https://apps.usw2.pure.cloud"
    assert apps_origin("http://127.0.0.1:8081") is None  # the emulator has no agent UI to frame the page
