"""The admin UI (`/admin/`, HTTP Basic with the admin credentials): the weekly figures, sync
runs and their review list, the conflicts queue with buttons that decide through the pair's
workflow, erasure requests with their deadlines and certificates, and links into the Temporal
UI for every workflow shown.

Server-rendered HTML with every value escaped; no JavaScript, no external assets. The starter
also flushes its screen-pop counts to the store here (see `callbridge.store.ops_counters`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, quote, urlencode, urlparse

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from temporalio.service import RPCError

from callbridge.ops import conflicts, report
from callbridge.core.settings import Settings
from callbridge.store import sync_runs
from callbridge.store.db import get_engine
from callbridge.store.ops_counters import CounterFlusher
from starter.auth import require_admin_auth
from starter.temporal_link import TemporalLink, TemporalUnavailable

log = structlog.get_logger("callbridge.admin")
CSS = Path(__file__).parent / "static" / "admin.css"
FLUSH_SECONDS = 10.0
NAV = (("/admin/", "Dashboard"), ("/admin/report", "Weekly report"), ("/admin/sync", "Sync runs"),
       ("/admin/conflicts", "Conflicts"), ("/admin/erasures", "Erasure requests"))
MARKS = {"ok": "✓ ok", "short": "✗ falls short", "no_data": "– no data"}


# --- small HTML helpers ---------------------------------------------------------------------------

def e(value: Any) -> str:
    return escape("" if value is None else str(value))


def when(dt: datetime | None) -> str:
    if dt is None:
        return "–"
    dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def value_cell(value: Any) -> str:
    if value is None or value == "":
        return '<span class="muted">(empty)</span>'
    return e(value if isinstance(value, str) else json.dumps(value))


def table(headers: Iterable[str], rows: list[str], empty: str, cls: str = "") -> str:
    if not rows:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


class Links:
    """Addresses in the Temporal UI."""

    def __init__(self, settings: Settings) -> None:
        self.base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{quote(settings.temporal_namespace)}"

    def workflow(self, workflow_id: str, run_id: str | None = None) -> str:
        url = f"{self.base}/workflows/{quote(workflow_id, safe='')}"
        return f"{url}/{quote(run_id, safe='')}/history" if run_id else url

    def query(self, visibility_query: str) -> str:
        return f"{self.base}/workflows?{urlencode({'query': visibility_query})}"

    def a(self, workflow_id: str, run_id: str | None = None, text: str | None = None) -> str:
        return (f'<a class="temporal" href="{e(self.workflow(workflow_id, run_id))}" target="_blank" '
                f'rel="noopener">{e(text or workflow_id)}</a>')


def page(title: str, body: str, path: str, links: Links) -> HTMLResponse:
    nav = "".join(f'<a href="{href}"{" class=current" if href == path else ""}>{e(name)}</a>' for href, name in NAV)
    nav += f'<a href="{e(links.base)}/workflows" target="_blank" rel="noopener">Temporal UI ↗</a>'
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · Callbridge admin</title><link rel="stylesheet" href="/admin/static/admin.css"></head>
<body><header><strong>Callbridge</strong><nav>{nav}</nav></header>
<main><h1>{e(title)}</h1>{body}</main></body></html>""", headers={"Cache-Control": "no-store"})


def checks_table(checks: list[report.Check], with_detail: bool = True) -> str:
    rows = [f'<tr class="{c.status}" data-check="{e(c.key)}"><td>{e(c.title)}</td><td>{e(c.target)}</td>'
            f'<td>{e(c.figure)}</td><td class="status">{e(MARKS[c.status])}</td>'
            + (f'<td class="muted">{e(c.detail)}</td>' if with_detail else "") + "</tr>" for c in checks]
    headers = ["Check", "Target", "This week", ""] + (["Detail"] if with_detail else [])
    return table(headers, rows, "", cls="checks")


# --- the router -----------------------------------------------------------------------------------

def build_router(settings: Settings, temporal: TemporalLink, flusher: "StarterCounters") -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False,
                       dependencies=[Depends(require_admin_auth(settings))])
    links = Links(settings)

    async def engine():
        return await asyncio.to_thread(get_engine, settings.database_url)

    async def client():
        try:
            return await temporal.client()
        except TemporalUnavailable:
            return None

    async def weekly() -> tuple[report.WeeklyFigures, list[report.Check]]:
        await flusher.flush()  # this process's latest lookups count too
        figures = await report.gather_figures(await engine(), await client())
        return figures, report.weekly_checks(figures)

    async def pending() -> dict | None:
        """The pairs waiting for a decision; None while Temporal can't be asked."""
        c = await client()
        if c is None:
            return None
        try:
            return await conflicts.pending_conflicts(c)
        except RPCError:
            return None

    async def count_waiting() -> int | None:
        found = await pending()
        return None if found is None else sum(len(v) for v in found.values())

    @router.get("", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/admin/", status_code=307)

    @router.get("/static/admin.css")
    async def css() -> FileResponse:
        return FileResponse(CSS, media_type="text/css")

    @router.get("/")
    async def dashboard() -> HTMLResponse:
        figures, checks = await weekly()
        eng = await engine()
        runs, review = await asyncio.gather(asyncio.to_thread(sync_runs.list_runs, eng, 1),
                                            asyncio.to_thread(sync_runs.list_review, eng))
        waiting = await count_waiting()
        last = runs[0] if runs else None
        tiles = [
            ("/admin/conflicts", "Conflicts waiting for a decision", "?" if waiting is None else waiting),
            ("/admin/sync", "Sync cases to review", len(review)),
            ("/admin/erasures", "Erasure requests open",
             f"{figures.erasures_open} ({figures.erasures_overdue} overdue)"),
            ("/admin/sync", "Last sync run", f"{last['status']}, {when(last['started_at'])}" if last else "none yet"),
        ]
        body = ('<section class="tiles">' + "".join(
            f'<a class="tile" href="{href}"><span>{e(label)}</span><b>{e(value)}</b></a>' for href, label, value in tiles)
            + "</section>"
            f"<h2>Weekly checks <small class=muted>{when(figures.since)} → {when(figures.until)}</small></h2>"
            + checks_table(checks, with_detail=False) + '<p><a href="/admin/report">The full report →</a></p>')
        return page("Dashboard", body, "/admin/", links)

    @router.get("/report")
    async def weekly_report() -> HTMLResponse:
        figures, checks = await weekly()
        short = report.falls_short(checks)
        verdict = (f'<p class="verdict short">{len(short)} check(s) fall short: '
                   f'{e(", ".join(c.title for c in short))}.</p>' if short
                   else '<p class="verdict ok">Nothing falls short this week.</p>')
        failed_rows = [f"<tr><td>{e(w.workflow_type)}</td><td>{links.a(w.workflow_id, w.run_id)}</td>"
                       f"<td>{e(w.status)}</td><td>{when(w.closed_at)}</td></tr>" for w in figures.failed_workflows]
        since = figures.since
        body = (f"<p class=muted>{when(figures.since)} → {when(figures.until)}. Screen-pop counts are flushed "
                f"by each starter every {FLUSH_SECONDS:g} s; the rest is read live.</p>"
                + verdict + checks_table(checks)
                + "<h2>Failed workflows this week</h2>"
                + table(("Type", "Workflow", "Status", "Closed"), failed_rows, "None.")
                + f'<p><a href="{e(links.query(report.failures_query(since)))}" target="_blank" rel="noopener">'
                  "All of them in the Temporal UI ↗</a> · "
                  f'<a href="{e(links.query(report.call_logging_query(since)))}" target="_blank" rel="noopener">'
                  "This week's call logging ↗</a></p>")
        return page("Weekly report", body, "/admin/report", links)

    @router.get("/api/report")
    async def weekly_report_json() -> dict:
        figures, checks = await weekly()
        return {"figures": figures.to_json(), "checks": [asdict(c) for c in checks]}

    @router.get("/sync")
    async def sync_page() -> HTMLResponse:
        from callbridge.domain.sync.health import health_score

        eng = await engine()
        runs = await asyncio.to_thread(sync_runs.list_runs, eng, 50)
        review = await asyncio.to_thread(sync_runs.list_review, eng)
        stat_keys = ("pairs", "created", "updated", "deleted", "skipped", "conflicts", "errors",
                     "salesforce_requests", "genesys_requests")
        run_rows = [
            f'<tr class="run-{e(r["status"])}"><td>{when(r["started_at"])}</td><td>{e(r["status"])}</td>'
            f'<td>{e(r["path"])}</td><td>{e(r["mode"])}</td><td class=num>{r["duration_seconds"]:.1f}</td>'
            f'<td class=num>{e(r["health_score"] if r["health_score"] is not None else "–")}</td>'
            + "".join(f'<td class=num>{e(r["stats"].get(k, 0))}</td>' for k in stat_keys)
            + f'<td>{e(r["note"])}</td><td>{links.a(r["workflow_id"], r["run_id"], "history")}</td></tr>'
            for r in runs]
        done = [r for r in reversed(runs) if r["status"] != "running"]
        score = health_score([(r["stats"].get("errors", 0), r["duration_seconds"]) for r in done])
        review_rows = [
            f'<tr><td>{when(c["at"])}</td><td>{e(c["reason"].replace("_", " "))}</td><td>{e(c["genesys_id"] or "–")}'
            f'</td><td>{e(", ".join(c["salesforce_ids"]) or "–")}</td><td>{e(c["detail"])}</td>'
            f'<td>{links.a(c["workflow_id"]) if c["workflow_id"] else ""}</td></tr>' for c in review]
        body = (f'<p>Health score <b class="score">{score}</b> / 100 over the last {min(len(done), 10)} finished run(s) '
                '(the seed\'s formula: 100 − 5 per average error − 1 per average second).</p>' if done else "")
        body += ("<h2>Runs</h2>" + table(
            ("Started", "Status", "Path", "Mode", "Seconds", "Health", "Pairs", "Created", "Updated", "Deleted",
             "Skipped", "Conflicts", "Errors", "SF req.", "GC req.", "Note", "Temporal"),
            run_rows, "No sync run yet.", cls="runs")
            + "<h2>Cases to review</h2><p class=muted>Matches Callbridge would not guess, dangling links and "
              "delete conflicts (<code>callbridge sync review --resolve KEY</code> marks one dealt with).</p>"
            + table(("Since", "Reason", "Genesys contact", "Salesforce contact(s)", "Detail", "Workflow"),
                    review_rows, "Nothing to review."))
        return page("Sync runs", body, "/admin/sync", links)

    @router.get("/conflicts")
    async def conflicts_page(request: Request) -> HTMLResponse:
        waiting = await pending()
        if waiting is None:
            return page("Conflicts", '<p class="verdict short">Temporal is unreachable: the conflicts live in '
                        "their workflows. Try again shortly.</p>", "/admin/conflicts", links)
        q = request.query_params
        token = csrf_token(settings, request)
        flash = ""
        if q.get("resolved"):
            flash = (f'<p class="flash" role="status">Sent to {e(q["resolved"])}: {e(q.get("field"))} takes the '
                     f'{e(q.get("winner"))} value. The pair writes it to the other side and finishes.</p>')
        elif q.get("error"):
            flash = f'<p class="flash error" role="alert">{e(q["error"])}</p>'
        rows = []
        for wid, items in sorted(waiting.items()):
            for item in items:
                rows.append(
                    f'<tr data-pair="{e(wid)}" data-field="{e(item.field)}"><td>{links.a(wid)}</td>'
                    f"<td><b>{e(item.field)}</b></td><td>{value_cell(item.base)}</td>"
                    + "".join(
                        f'<td class="side"><div class="value">{value_cell(value)}</div>'
                        f'<form method="post" action="/admin/conflicts/resolve">'
                        f'<input type="hidden" name="csrf_token" value="{e(token)}">'
                        f'<input type="hidden" name="workflow_id" value="{e(wid)}">'
                        f'<input type="hidden" name="field" value="{e(item.field)}">'
                        f'<button name="winner" value="{side}">Keep {label}</button></form></td>'
                        for side, label, value in (("salesforce", "Salesforce", item.salesforce),
                                                   ("genesys", "Genesys", item.genesys)))
                    + "</tr>")
        body = (flash + "<p class=muted>Fields under the <code>manual</code> policy changed on both sides. Each "
                "pair waits in its workflow while its other fields sync; the button sends your decision to it.</p>"
                + table(("Pair", "Field", "Last agreed", "Salesforce", "Genesys"), rows,
                        "No conflict is waiting for a decision.", cls="conflicts"))
        return page("Conflicts", body, "/admin/conflicts", links)

    @router.post("/conflicts/resolve")
    async def resolve(request: Request) -> RedirectResponse:
        _same_origin(request)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), csrf_token(settings, request).encode()):
            raise HTTPException(403, "missing or wrong form token: reload the page")
        wid, field, winner = form.get("workflow_id", ""), form.get("field", ""), form.get("winner", "")
        if winner not in ("salesforce", "genesys") or not field:
            raise HTTPException(422, "a field and a winner (salesforce or genesys)")
        c = await client()
        if c is None:
            raise HTTPException(503, "Temporal unavailable", headers={"Retry-After": "5"})
        try:
            # The same decision the admin API and `callbridge conflicts resolve` send.
            await conflicts.resolve(c, wid, field, winner)
        except (ValueError, RPCError) as exc:
            error = str(exc) if isinstance(exc, ValueError) else f"{wid} is not waiting for a decision"
            return RedirectResponse("/admin/conflicts?" + urlencode({"error": error}), status_code=303)
        log.info("conflict resolved from the admin UI", workflow_id=wid, field=field, winner=winner)
        return RedirectResponse("/admin/conflicts?" + urlencode({"resolved": wid, "field": field, "winner": winner}),
                                status_code=303)

    @router.get("/erasures")
    async def erasures_page() -> HTMLResponse:
        rows_data = await asyncio.to_thread(report.list_erasures, await engine())
        now = datetime.now(timezone.utc)
        rows = []
        for r in rows_data:
            left = (r["deadline"] - now).days if r["deadline"] else None
            if r["status"] == "completed":
                due, cls = f"completed {when(r['completed_at'])}", "done"
            elif left is not None and left < 0:
                due, cls = f"overdue by {-left} day(s)", "overdue"
            else:
                due, cls = f"{left} day(s) left", "open"
            # A failed erasure stores its failure report where a certificate would be: say which.
            label = "failure report" if r["status"] == "failed" else "certificate"
            cert = (f'<details><summary>{label}</summary><pre>{e(json.dumps(r["certificate"], indent=2))}</pre>'
                    "</details>" if r["certificate"] else '<span class="muted">when completed</span>')
            rows.append(f'<tr class="{cls}" data-request="{e(r["request_id"])}"><td><code>{e(r["request_id"])}</code></td>'
                        f'<td>{e(r["status"])}</td><td>{when(r["requested_at"])}</td><td>{when(r["deadline"])}</td>'
                        f"<td>{e(due)}</td><td>{cert}</td><td>{links.a(r['workflow_id'], text='workflow')}</td></tr>")
        body = ("<p class=muted>Requests through <code>POST /gdpr/erasures</code> or <code>callbridge gdpr erase"
                "</code>; identifiers are never shown (they are sealed while the request runs, then wiped).</p>"
                + table(("Request", "Status", "Requested", "Deadline", "Due", "Certificate", "Temporal"), rows,
                        "No erasure request yet.", cls="erasures"))
        return page("Erasure requests", body, "/admin/erasures", links)

    return router


def _same_origin(request: Request) -> None:
    """Browsers resend Basic credentials to any site's form post: refuse posts from elsewhere,
    and posts that don't say where they come from (a missing Origin, or `null`: sandboxed
    frames, data: URLs). starter/gate.py refuses them first; this keeps the page safe alone."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "cross-site request")
    origin = request.headers.get("origin")
    if not origin or origin == "null" or urlparse(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site request")


def csrf_token(settings: Settings, request: Request) -> str:
    """The admin forms' token, bound to the credentials this browser sent (OWASP ASVS 4.2.2):
    another site can make the browser send them, but cannot read a page to learn the token."""
    key = hashlib.sha256(b"callbridge-csrf\0" + settings.privacy_hash_key.get_secret_value().encode()).digest()
    return hmac.new(key, request.headers.get("authorization", "").encode(), hashlib.sha256).hexdigest()


# --- the starter's screen-pop counts, flushed to the store --------------------------------------

class StarterCounters:
    """Flushes this process's screen-pop counts every FLUSH_SECONDS and at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._flusher: CounterFlusher | None = None

    def _flush_now(self) -> dict[str, int]:
        if self._flusher is None:
            self._flusher = CounterFlusher(get_engine(self._settings.database_url))
        return self._flusher.flush()

    async def flush(self) -> None:
        try:
            await asyncio.to_thread(self._flush_now)
        except Exception as exc:  # the store may be down: the counts wait for the next flush
            log.warning("counter flush failed", error=type(exc).__name__)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()


def install(app: FastAPI, settings: Settings, temporal: TemporalLink) -> None:
    """Mount the admin UI and run the counter flush for the app's lifetime."""
    counters = StarterCounters(settings)
    app.include_router(build_router(settings, temporal, counters))
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI):
        async with previous(a) as state:
            task = asyncio.create_task(counters.run())
            try:
                yield state
            finally:
                task.cancel()
                await counters.flush()

    app.router.lifespan_context = lifespan
