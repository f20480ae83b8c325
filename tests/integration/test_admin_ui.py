"""The admin UI in a real browser (Debian's chromium, driven by Playwright) against the real
starter, worker, Temporal dev server and emulators: a manual conflict decided by clicking,
the sync runs and review list, an erasure request with its certificate. Screenshots land in
test-artifacts/."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from callbridge.domain.sync.config import load
from callbridge.domain.sync.models import PairKey, Rule, SyncPairInput
from tests.helpers import GENESYS_CONTACTS, new_sf_contact
from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id as erasure_workflow_id
from workflows.sync_pair import SyncPairWorkflow

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN = ("admin", "callbridge-demo-admin")
GENESYS_TITLE = "Team lead <i>R&D</i>"  # markup in a value is shown as typed, never rendered


async def admin_browser(p, stack):
    browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = await browser.new_context(
        http_credentials={"username": ADMIN[0], "password": ADMIN[1], "origin": stack.starter_url},
        viewport={"width": 1400, "height": 900})
    return browser, await context.new_page()


async def manual_conflict(stack, sf, gc, client):
    """A pair whose Title changed on both sides under the `manual` policy: its workflow waits."""
    sf_id = new_sf_contact(sf, Title="Analyst")
    key = PairKey(salesforce_id=sf_id)
    linked = await client.execute_workflow(
        SyncPairWorkflow.run, SyncPairInput.from_config(key, load(), mode="bidirectional"),
        id=key.workflow_id, task_queue=stack.task_queue)
    sf.Contact.update(sf_id, {"Title": "Manager"})
    current = gc.get(f"{GENESYS_CONTACTS}/{linked.genesys_id}").json()
    gc.put(f"{GENESYS_CONTACTS}/{linked.genesys_id}", json={
        **{k: v for k, v in current.items() if k not in ("id", "selfUri", "createDate", "modifyDate")},
        "title": GENESYS_TITLE}).raise_for_status()
    rules = [Rule(name="Title", direction="both", policy="manual") if m.salesforce == "Title"
             else Rule(name=m.salesforce, direction=m.direction, policy=m.policy) for m in load().fields]
    handle = await client.start_workflow(
        SyncPairWorkflow.run, SyncPairInput(key=key, rules=rules, mode="bidirectional"),
        id=key.workflow_id, task_queue=stack.task_queue)
    return sf_id, handle


def test_the_admin_ui_needs_the_admin_credentials(stack, genesys):
    from tests.agent_signin import agents, register_redirect_uri, sign_in

    register_redirect_uri(genesys, stack)
    agent = {"Authorization": f"Bearer {sign_in(genesys, stack, agents(genesys)[0]['username'])}"}
    for path in ("/admin/", "/admin/report", "/admin/sync", "/admin/conflicts", "/admin/erasures", "/admin/api/report"):
        assert httpx.get(f"{stack.starter_url}{path}").status_code == 401, path
        assert httpx.get(f"{stack.starter_url}{path}", headers=agent).status_code == 401  # an agent is no admin
    form = {"workflow_id": "sync-pair-x", "field": "Title", "winner": "genesys"}
    assert httpx.post(f"{stack.starter_url}/admin/conflicts/resolve", data=form).status_code == 401
    # Basic credentials ride along on any site's form post: a post from elsewhere is refused.
    assert httpx.post(f"{stack.starter_url}/admin/conflicts/resolve", data=form, auth=ADMIN,
                      headers={"Origin": "https://elsewhere.example"}).status_code == 403


async def test_a_conflict_is_decided_by_clicking(stack, sf, gc, temporal_client):
    sf_id, handle = await manual_conflict(stack, sf, gc, temporal_client)
    wid = handle.id
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser, page = await admin_browser(p, stack)
        await page.goto(f"{stack.starter_url}/admin/")
        await page.get_by_role("heading", name="Weekly checks").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)

        # The pair shows up once it has met the conflict and Temporal's visibility lists it.
        row = page.locator(f"tr[data-pair='{wid}'][data-field='Title']")
        deadline = time.monotonic() + 30
        while True:
            await page.goto(f"{stack.starter_url}/admin/conflicts")
            if await row.count():
                break
            assert time.monotonic() < deadline, f"the conflict never showed up: {await page.inner_text('main')}"
            await asyncio.sleep(0.5)
        cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
        assert cells[1:3] == ["Title", "Analyst"]  # the field and the last agreed value
        assert cells[3].startswith("Manager") and cells[4].startswith(GENESYS_TITLE)  # side by side
        assert await row.locator("i").count() == 0
        assert (await row.locator("a.temporal").get_attribute("href")).endswith(
            f"/namespaces/default/workflows/{wid}")
        await page.screenshot(path=str(ARTIFACTS / "admin-conflicts.png"), full_page=True)

        await row.get_by_role("button", name="Keep Genesys").click()
        await page.get_by_role("status").wait_for()
        assert f"Sent to {wid}: Title takes the genesys value" in await page.get_by_role("status").inner_text()
        await page.screenshot(path=str(ARTIFACTS / "admin-conflict-resolved.png"), full_page=True)

        result = await handle.result()
        assert result.resolved == ["Title"]
        assert sf.Contact.get(sf_id)["Title"] == GENESYS_TITLE
        await page.goto(f"{stack.starter_url}/admin/conflicts")
        assert await row.count() == 0  # the pair finished: nothing waits any more
        await browser.close()


async def test_sync_runs_review_cases_and_erasures_are_listed(stack, sf, temporal_client):
    engine = get_engine(stack.env["CALLBRIDGE_DATABASE_URL"])
    # A finished run and a review case, written the way the sync activities write them.
    run_id = str(uuid.uuid4())
    sync_runs.start_run(engine, run_id, "contact-sync", "bidirectional", path="bulk")
    sync_runs.finish_run(engine, run_id, "completed", {"pairs": 7, "created": 3, "updated": 2, "conflicts": 1,
                                                       "errors": 0, "salesforce_requests": 9}, 4.2, 96)
    genesys_id = str(uuid.uuid4())
    sync_runs.add_review(engine, "ambiguous_email", genesys_id, ["003AAAAAAAAAAAAAAA", "003BBBBBBBBBBBBBBB"],
                         "2 contacts share the email")
    # A real erasure request, run to its certificate.
    email = f"erase.me.{uuid.uuid4().hex[:8]}@example.com"
    sf.Contact.create({"FirstName": "Milton", "LastName": "Waddams", "Email": email})
    resp = httpx.post(f"{stack.starter_url}/gdpr/erasures", json={"email": email}, auth=ADMIN, timeout=30)
    assert resp.status_code == 202, resp.text
    request_id = resp.json()["requestId"]
    done = await temporal_client.get_workflow_handle_for(GdprErasureWorkflow.run,
                                                         erasure_workflow_id(request_id)).result()
    assert done.status == "completed"

    async with async_playwright() as p:
        browser, page = await admin_browser(p, stack)
        await page.goto(f"{stack.starter_url}/admin/sync")
        run = page.locator("table.runs tbody tr", has=page.locator(f"a[href$='/{run_id}/history']"))
        cells = [c.strip() for c in await run.locator("td").all_inner_texts()]
        assert cells[1:7] == ["completed", "bulk", "bidirectional", "4.2", "96", "7"]
        case = page.locator("tr", has_text=genesys_id)
        assert "ambiguous email" in await case.inner_text()
        assert "003AAAAAAAAAAAAAAA, 003BBBBBBBBBBBBBBB" in await case.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "admin-sync-runs.png"), full_page=True)

        await page.goto(f"{stack.starter_url}/admin/erasures")
        row = page.locator(f"tr[data-request='{request_id}']")
        text = await row.inner_text()
        assert "completed" in text and email not in await page.content()  # identifiers are never shown
        await row.get_by_text("certificate").click()
        assert request_id in await row.locator("pre").inner_text()
        assert (await row.locator("a.temporal").get_attribute("href")).endswith(
            f"/namespaces/default/workflows/{erasure_workflow_id(request_id)}")
        await page.screenshot(path=str(ARTIFACTS / "admin-erasures.png"), full_page=True)

        await page.goto(f"{stack.starter_url}/admin/report")
        await page.locator("tr[data-check='erasures']").wait_for()
        assert "completed" in await page.locator("tr[data-check='erasures']").inner_text()
        await page.screenshot(path=str(ARTIFACTS / "admin-weekly-report.png"), full_page=True)
        await browser.close()
