"""The screen pop end to end in a real browser (Debian's chromium, driven by Playwright).

A simulated call in the Genesys emulator runs the inbound flow, whose data action is
Callbridge's lookup; the flow sets the participant attributes; the agent's desktop page pops
the Salesforce emulator's record page for the right contact; after hang-up the call is
logged on that same contact.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from tests.agent_signin import AGENT_PASSWORD, agents, register_redirect_uri
from tests.helpers import refresh_index, salesforce_client, unique_us_number
from workflows.call_logging import CallLoggingWorkflow, workflow_id

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def first_agent(genesys) -> dict:
    return agents(genesys)[-1]


async def signed_in_desktop(context, stack, genesys, agent: dict, path: str = "/desktop/"):
    """A desktop page, its agent signed in through Genesys's login (authorization code + PKCE)."""
    register_redirect_uri(genesys, stack)
    page = await context.new_page()
    await page.goto(f"{stack.starter_url}{path}")
    await page.wait_for_url(f"{genesys.api_url}/oauth/authorize*", timeout=15_000)
    await page.fill("#username", agent["username"])
    await page.fill("#password", AGENT_PASSWORD)
    await page.click("#login")
    await page.wait_for_url(f"{stack.starter_url}{path}*", timeout=15_000)
    return page


async def test_call_pops_the_right_record_and_is_logged_on_it(stack, salesforce, genesys, temporal_client):
    sf = salesforce_client(salesforce)
    account = sf.Account.create({"Name": "Wayne Enterprises", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    contact = sf.Contact.create({"FirstName": "Bruce", "LastName": "Wayne", "AccountId": account,
                                 "Phone": f"{digits[:3]}-{digits[3:6]}-{digits[6:]}", "Custom_Tier__c": "Enterprise"})["id"]
    await refresh_index(temporal_client, stack)
    httpx.post(f"{genesys.api_url}/_emulator/config", json={
        "dataActionUrl": f"{stack.starter_url}/screenpop/lookup",
        "dataActionAuth": {"username": "genesys-data-action", "password": "callbridge-demo-lookup"},
    }).raise_for_status()
    agent = first_agent(genesys)
    ARTIFACTS.mkdir(exist_ok=True)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            ignore_https_errors=True,  # the Salesforce emulator's local CA is not in chromium's store
        )
        desktop = await signed_in_desktop(context, stack, genesys, agent)
        await desktop.get_by_text("Waiting for calls.").wait_for(timeout=10_000)

        async with context.expect_page(timeout=20_000) as popped_info:
            call = httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30, json={
                "ani": e164, "agentId": agent["id"], "alertSeconds": 1.0, "talkSeconds": 1.0})
            call.raise_for_status()
        record = await popped_info.value
        await record.wait_for_load_state()
        assert f"/lightning/r/Contact/{contact}/view" in record.url
        text = await record.locator("body").inner_text()
        assert "Bruce Wayne" in text and "Wayne Enterprises" in text
        card = desktop.locator(f"[data-contact-id='{contact}']")
        await card.wait_for()
        assert "Enterprise" in await card.inner_text()
        await record.screenshot(path=str(ARTIFACTS / "screen-pop-record.png"), full_page=True)
        await desktop.screenshot(path=str(ARTIFACTS / "screen-pop-desktop.png"))

        # After hang-up the call is logged on the same contact: its timeline shows the Task.
        conversation = call.json()["conversationId"]
        deadline = time.monotonic() + 30
        # The call's end reaches the starter through the org's trigger (its call-ended data action).
        while not httpx.get(f"{genesys.api_url}/_emulator/calls/{conversation}").json().get("triggers"):
            assert time.monotonic() < deadline, "the call-ended trigger never ran"
            await asyncio.sleep(0.2)
        handle = temporal_client.get_workflow_handle_for(CallLoggingWorkflow.run, workflow_id(conversation))
        result = await handle.result()
        assert (result.outcome, result.contact_id) == ("logged", contact)
        await record.reload()
        assert "Call with Bruce Wayne" in await record.locator("body").inner_text()
        await record.screenshot(path=str(ARTIFACTS / "screen-pop-record-after-call.png"), full_page=True)
        await browser.close()


async def test_several_matches_without_flow_attributes_show_a_chooser(stack, salesforce, genesys, temporal_client):
    """The flow's data action failed (no attributes) and two contacts share the number."""
    sf = salesforce_client(salesforce)
    account = sf.Account.create({"Name": "Stark Industries", "BillingCountry": "United States"})["id"]
    e164, digits = unique_us_number()
    switchboard = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    tony = sf.Contact.create({"FirstName": "Tony", "LastName": "Stark", "AccountId": account, "Phone": switchboard})["id"]
    pepper = sf.Contact.create({"FirstName": "Pepper", "LastName": "Potts", "AccountId": account,
                                "Phone": switchboard})["id"]
    await refresh_index(temporal_client, stack)
    httpx.post(f"{genesys.api_url}/_emulator/config", json={"dataActionUrl": None}).raise_for_status()
    agent = first_agent(genesys)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(ignore_https_errors=True)
        desktop = await signed_in_desktop(context, stack, genesys, agent)
        await desktop.get_by_text("Waiting for calls.").wait_for(timeout=10_000)
        httpx.post(f"{genesys.api_url}/_emulator/calls", timeout=30, json={
            "ani": e164, "agentId": agent["id"], "alertSeconds": 1.0, "talkSeconds": 1.0}).raise_for_status()
        chooser = desktop.locator("#chooser")
        await chooser.wait_for(timeout=20_000)
        assert {await b.get_attribute("data-contact-id") for b in await chooser.locator("button").all()} == {tony, pepper}
        await desktop.screenshot(path=str(ARTIFACTS / "screen-pop-chooser.png"))
        async with context.expect_page() as popped_info:
            await chooser.locator(f"button[data-contact-id='{pepper}']").click()
        record = await popped_info.value
        await record.wait_for_load_state()
        assert "Pepper Potts" in await record.locator("body").inner_text()
        await browser.close()
