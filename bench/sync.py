"""python -m bench.sync: contact sync at size, against the emulators with realistic latency.

Per pass (with Genesys's budget of 300 requests a minute, and — `--no-budget` — once without
it, to see the engine's own ceiling): a fresh stack under var/bench-sync-{pass} (file-backed
Temporal dev server, both emulators with 100 ms added to every API request, the worker), the
Salesforce emulator seeded with N contacts, an empty Genesys, the caller-ID index refresh paused
(sync feeds the index itself). First the yardsticks:

- the seed's per-record loop (search Genesys, then create or update, one request each) on a
  sample of the same contacts, against its own Genesys emulator with the same latency and
  budget, extrapolated to N;
- a bare one-activity workflow loop on the same dev server (bench.bare_workflow).

Then the sync runs:

1. the initial load: the first ContactSyncWorkflow run (always the bulk path);
2. the first run after it (nothing edited: it shows what the load's own writes cost next time);
3. incremental runs: K contacts edited in Salesforce (Title, 200 a Collections request), one
   run each — K below the bulk threshold (2,000) takes the per-pair path, above it the bulk path;
   with `--compare K` the same K once more on each path (`force_path`). Before each, one bulk
   run reads again what the previous run wrote, so a measured run sees only its own edits.

Printed per run: contacts/s, API requests per record on each side (the run's own count,
cross-checked with the emulators' request counters), and the time against the floor the
Genesys budget sets: the Genesys requests the run made ÷ 300 a minute.

    .venv/bin/python -m bench.sync --contacts 100000 --changes 200,1000,10000 --no-budget
    .venv/bin/python -m bench.sync --quick      # a few minutes: 5,000 contacts, 200 and 2,500 changes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench.bare_workflow import bare_rate
from bench.stack import (
    NO_LIMIT, BenchStack, bench_settings, empty_genesys, genesys_admin, genesys_api_requests, genesys_api_routes,
    genesys_token, salesforce_token, salesforce_verify,
)
from bench.tables import measure_table
from devstack.processes import free_port
from callbridge.core.settings import Settings
from devstack.stack import LocalStack
from callbridge.core.temporal import connect

console = Console(width=160)
API_VERSION = "v62.0"
GC_CONTACTS = "/api/v2/externalcontacts/contacts"
LOOKBACK_SECONDS = 1
TUNING: dict[str, Any] = {}  # --pages / --pairs: ContactSyncInput overrides for every run


# -- the emulators' side door: setup and counters -------------------------------------------------


class Salesforce:
    """Plain REST calls for setup and counting (not Callbridge's connector)."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.salesforce_instance_url
        self.verify = salesforce_verify(settings)
        token = salesforce_token(settings)
        self.http = httpx.AsyncClient(base_url=f"{self.base}/services/data/{API_VERSION}", verify=self.verify,
                                      headers={"Authorization": f"Bearer {token}"}, timeout=120)

    async def query_all(self, soql: str) -> list[dict[str, Any]]:
        resp = await self.http.get("/query", params={"q": soql})
        resp.raise_for_status()
        body = resp.json()
        rows = body["records"]
        while not body["done"]:
            resp = await self.http.get(body["nextRecordsUrl"].split(f"/{API_VERSION}", 1)[1])
            resp.raise_for_status()
            body = resp.json()
            rows += body["records"]
        return rows

    async def edit_titles(self, ids: list[str], tag: str) -> None:
        """One field changed on each contact, 200 a Collections request, 4 requests at a time."""
        sem = asyncio.Semaphore(4)

        async def chunk(part: list[str]) -> None:
            async with sem:
                body = {"allOrNone": True, "records": [
                    {"attributes": {"type": "Contact"}, "id": i, "Title": f"Bench {tag}"} for i in part]}
                resp = await self.http.patch("/composite/sobjects", json=body)
                resp.raise_for_status()

        await asyncio.gather(*(chunk(ids[i:i + 200]) for i in range(0, len(ids), 200)))

    def admin(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = httpx.request(method, f"{self.base}/_emulator/{path}", verify=self.verify, timeout=30, **kw)
        resp.raise_for_status()
        return resp.json()

    def requests(self) -> int:
        return self.admin("GET", "stats")["apiRequests"]

    def routes(self) -> dict[str, int]:
        return self.admin("GET", "stats").get("byRoute", {})


# -- one sync run ---------------------------------------------------------------------------------


@dataclass
class RunFigures:
    name: str
    path: str
    changes: int              # contacts edited in Salesforce before the run (N for the load)
    pairs: int                # pairs the run settled (changes + what it read besides)
    seconds: float            # wall time, start to result
    sf_requests: int          # the run's own count (ContactSyncResult)
    gc_requests: int
    sf_counted: int           # the emulators' counters over the same run
    gc_counted: int
    errors: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    handed_off: int = 0
    bare_before: float = 0.0  # the bare loop's rate just before a per-pair run (same load)
    sf_routes: dict[str, int] = field(default_factory=dict)   # the emulators' counters by route
    gc_routes: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return max(1, self.pairs)

    def floor_seconds(self, per_minute: int | None) -> float | None:
        """Genesys requests ÷ the budget: no run that makes them can finish sooner (steady state)."""
        return None if not per_minute else self.gc_counted / per_minute * 60


async def run_sync(client, settings: Settings, sf: Salesforce, name: str, changes: int, **overrides: Any) -> RunFigures:
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.contact_sync import ContactSyncWorkflow

    sf.admin("POST", "stats/reset")
    genesys_admin(settings, "POST", "stats/reset")
    # Runs here follow each other within seconds; a schedule runs them 30 minutes apart. The
    # default 2-minute lookback would make each run re-read the previous run's edits.
    inp = ContactSyncInput.from_config(load(), mode="one_way", lookback_seconds=LOOKBACK_SECONDS,
                                       **{**TUNING, **overrides})
    start = time.perf_counter()
    result = await client.execute_workflow(ContactSyncWorkflow.run, inp, id="contact-sync",
                                           task_queue=settings.temporal_task_queue)
    seconds = time.perf_counter() - start
    return RunFigures(name=name, path=result.path, changes=changes, pairs=result.pairs, seconds=seconds,
                      sf_requests=result.salesforce_requests, gc_requests=result.genesys_requests,
                      sf_counted=sf.requests(), gc_counted=genesys_api_requests(settings),
                      errors=result.errors, created=result.created, updated=result.updated,
                      unchanged=result.unchanged, handed_off=result.handed_off, sf_routes=sf.routes(),
                      gc_routes=genesys_api_routes(settings))


# -- the seed's loop ------------------------------------------------------------------------------


@dataclass
class SeedLoopFigures:
    sample: int
    seconds: float
    gc_requests: int
    sf_requests: int
    throttled: int


async def seed_loop(settings: Settings, sf: Salesforce, sample: int) -> SeedLoopFigures:
    """The seed's one-way sync (crm-integration-salesforce, "sync-one-way.js"): read the changed
    contacts from Salesforce, then per contact: is it in Genesys (a search), then update
    (PATCH) or create (POST) — one request each, one contact after the other. The seed doesn't
    handle 429; here a 429 is waited out (Retry-After) so the loop can finish at all."""
    token = genesys_token(settings)
    throttled = 0
    sf.admin("POST", "stats/reset")
    genesys_admin(settings, "POST", "stats/reset")
    start = time.perf_counter()
    rows = await sf.query_all(f"SELECT Id, FirstName, LastName, Email, Phone FROM Contact LIMIT {sample}")
    async with httpx.AsyncClient(base_url=settings.genesys_api_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=60) as gc:

        async def call(method: str, path: str, **kw: Any) -> httpx.Response:
            nonlocal throttled
            while True:
                resp = await gc.request(method, path, **kw)
                if resp.status_code != 429:
                    resp.raise_for_status()
                    return resp
                throttled += 1
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))

        for row in rows:
            body = {"firstName": row["FirstName"], "lastName": row["LastName"],
                    "workPhone": {"display": row["Phone"]} if row.get("Phone") else None}
            found = (await call("GET", GC_CONTACTS, params={"q": row["Email"] or row["LastName"]})).json()["entities"]
            if found:
                # Genesys's PATCH takes a list of field changes (PATCH /externalcontacts/contacts/{id}).
                changes = [{"action": "Update", "field": f"$.{k}", "value": v} for k, v in body.items() if v is not None]
                await call("PATCH", f"{GC_CONTACTS}/{found[0]['id']}", json={"changes": changes})
            else:
                await call("POST", GC_CONTACTS, json={**body, "workEmail": row["Email"], "externalIds": [
                    {"externalSource": {"id": settings.genesys_external_source_id}, "value": row["Id"]}]})
    seconds = time.perf_counter() - start
    return SeedLoopFigures(sample=len(rows), seconds=seconds, gc_requests=genesys_api_requests(settings),
                           sf_requests=sf.requests(), throttled=throttled)


async def measure_seed_loop(settings: Settings, sf: Salesforce, var: Path, budget: bool, latency_ms: int,
                            sample: int) -> SeedLoopFigures:
    """On its own Genesys emulator (same latency and budget), so it never touches the sync's data."""
    url = f"http://127.0.0.1:{free_port()}"
    own = settings.model_copy(update={"var_dir": var / "seed-loop", "genesys_api_url": url, "genesys_login_url": url})
    stack = LocalStack(own, genesys_rate_limit=300 if budget else NO_LIMIT)
    try:
        stack.start_genesys()
        empty_genesys(own)
        genesys_admin(own, "POST", "faults", json={"latency_ms": latency_ms})
        return await seed_loop(own, sf, sample)
    finally:
        stack.stop()


# -- one pass -------------------------------------------------------------------------------------


@dataclass
class PassFigures:
    budget: bool
    contacts: int
    runs: list[RunFigures] = field(default_factory=list)
    bare_per_second: float = 0.0
    seed_loop: SeedLoopFigures | None = None
    setup_seconds: float = 0.0


async def one_pass(args: argparse.Namespace, budget: bool) -> PassFigures:
    var = Path(f"var/bench-sync-{'budget' if budget else 'nobudget'}").resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    # Without the budget the worker must not pace itself either.
    settings = bench_settings(var, "callbridge-bench-sync", genesys_requests_per_minute=300 if budget else 0)
    stack = BenchStack(settings, genesys_rate_limit=300 if budget else NO_LIMIT)
    figures = PassFigures(budget=budget, contacts=args.contacts)
    label = "with the 300/min budget" if budget else "without a budget"
    t0 = time.perf_counter()
    try:
        with console.status(f"[{label}] starting the stack, seeding {args.contacts:,} contacts…"):
            stack.start_seeded(args.contacts)
            client = await connect(settings)
            await pause_index_refresh(client)
            sf = Salesforce(settings)
            ids = [r["Id"] for r in await sf.query_all("SELECT Id FROM Contact")]
            sf.admin("POST", "faults", json={"latency_ms": args.latency_ms})
            genesys_admin(settings, "POST", "faults", json={"latency_ms": args.latency_ms})
        figures.setup_seconds = time.perf_counter() - t0

        async def measured(name: str, changes: int, **overrides: Any) -> None:
            with console.status(f"[{label}] {name}…"):
                # Every write before this run falls outside its lookback window, so the run
                # after it never reads them again: back-to-back runs behave like scheduled ones.
                await asyncio.sleep(LOOKBACK_SECONDS + 1.5)
                run = await run_sync(client, settings, sf, name, changes, **overrides)
            figures.runs.append(run)
            if args.json:  # as it goes: a long run cut short still leaves its figures
                args.json.with_suffix(f".{'budget' if budget else 'nobudget'}.partial.json").write_text(
                    json.dumps(asdict(figures), indent=2))
            console.print(f"[{label}] {name}: {run.pairs:,} pairs on the {run.path} path in {run.seconds:.1f} s "
                          f"(Salesforce {run.sf_counted}, Genesys {run.gc_counted} requests, {run.errors} errors)")

        # The yardsticks first: a mistake here shows in a minute, not after the long runs.
        if args.seed_sample:
            with console.status(f"[{label}] the seed's per-record loop on {args.seed_sample} contacts…"):
                figures.seed_loop = await measure_seed_loop(settings, sf, var, budget, args.latency_ms,
                                                            args.seed_sample)
            loop = figures.seed_loop
            console.print(f"[{label}] the seed's loop: {loop.sample} contacts in {loop.seconds:.1f} s "
                          f"(Genesys {loop.gc_requests} requests, {loop.throttled} × 429)")
        if args.bare:
            with console.status(f"[{label}] bare one-activity workflows ×{args.bare}…"):
                figures.bare_per_second = await bare_rate(client, args.bare, concurrency=100)
            console.print(f"[{label}] bare one-activity workflows: {figures.bare_per_second:.1f}/s")

        await measured("initial load", len(ids))
        # A run re-reads what the run before it wrote (its own writes moved SystemModstamp and
        # modifyDate past the watermark): shown once, then absorbed by a bulk run before each
        # measured run, so that one sees only its own edits.
        await measured("next run, nothing edited", 0)
        cursor = 0
        plans = [(k, None) for k in args.changes] + [(k, p) for k in args.compare for p in ("per_pair", "bulk")]
        for k, path in plans:
            if figures.runs[-1].name.startswith("incremental"):
                await measured("(re-reads the previous run's writes)", 0, force_path="bulk")
            chosen = ids[cursor:cursor + k] if cursor + k <= len(ids) else ids[:k]
            cursor = (cursor + k) % max(1, len(ids))
            with console.status(f"[{label}] editing {k:,} contacts in Salesforce…"):
                await sf.edit_titles(chosen, f"{len(figures.runs)}")
            name = f"incremental, {k:,} edited" + (f" (forced {path})" if path else "")
            bare_before = 0.0
            if args.bare and (path == "per_pair" or (path is None and k <= 2000)):
                # The machine's load moves during a pass: the per-pair run is compared with a
                # bare loop measured right before it, not only with the one at the start.
                with console.status(f"[{label}] bare one-activity workflows ×{min(args.bare, 300)}…"):
                    bare_before = await bare_rate(client, min(args.bare, 300), concurrency=100)
            await measured(name, k, **({"force_path": path} if path else {}))
            figures.runs[-1].bare_before = bare_before

        await sf.http.aclose()
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
    return figures


async def pause_index_refresh(client) -> None:
    """The caller-ID index refresh (every minute) would read the load's 100k link writes back from
    Salesforce in the middle of the runs; sync feeds the index itself, so it waits here."""
    from temporalio.service import RPCError

    from workflows.caller_index import SCHEDULE_ID

    for _ in range(300):  # the worker creates its schedules once it has started
        try:
            await client.get_schedule_handle(SCHEDULE_ID).pause(note="bench.sync")
            return
        except RPCError:
            await asyncio.sleep(0.2)
    raise TimeoutError("the worker never created its schedules; see var/bench-sync-*/logs/worker.log")


# -- the tables -----------------------------------------------------------------------------------


def per_record(n: int, records: int) -> str:
    return f"{n / records:.3f}"


def runs_table(p: PassFigures) -> Table:
    per_minute = 300 if p.budget else None
    title = f"Contact sync, {p.contacts:,} contacts, 100 ms a request, " + (
        "Genesys budget 300/min" if p.budget else "no Genesys budget")
    table = Table(title=title)
    for col in ("run", "path", "pairs", "time", "contacts/s", "SF req/record", "GC req/record",
                "GC requests", "floor (GC req ÷ 300/min)", "time ÷ floor", "errors"):
        table.add_column(col, justify="left" if col in ("run", "path") else "right")
    for r in p.runs:
        floor = r.floor_seconds(per_minute)
        table.add_row(
            r.name, r.path, f"{r.pairs:,}", f"{r.seconds:.1f} s", f"{r.pairs / r.seconds:,.0f}",
            per_record(r.sf_requests, r.records) + ("" if r.sf_requests == r.sf_counted else f" ({r.sf_counted})"),
            per_record(r.gc_requests, r.records) + ("" if r.gc_requests == r.gc_counted else f" ({r.gc_counted})"),
            f"{r.gc_counted:,}", f"{floor:.0f} s" if floor is not None else "—",
            f"{r.seconds / floor:.2f}" if floor else "—", str(r.errors))
    return table


def comparison_table(p: PassFigures) -> Table:
    table = measure_table("Yardsticks, same pass" + (" (budget)" if p.budget else " (no budget)"))
    table.add_row("bare one-activity workflows/s (same dev server)", f"{p.bare_per_second:.1f}")
    per_pair = [r for r in p.runs if r.path == "per_pair" and r.pairs]
    for r in per_pair:
        rate = r.pairs / r.seconds
        table.add_row(f"per-pair path, {r.name}: pairs/s ÷ bare", f"{rate:.1f} / {p.bare_per_second:.1f} = "
                      f"{rate / p.bare_per_second:.2f}" if p.bare_per_second else f"{rate:.1f}")
        if r.bare_before:
            table.add_row(f"per-pair path, {r.name}: ÷ bare measured just before",
                          f"{rate:.1f} / {r.bare_before:.1f} = {rate / r.bare_before:.2f}")
    if p.seed_loop:
        s = p.seed_loop
        rate = s.sample / s.seconds
        table.add_row(f"seed's loop: {s.sample} contacts measured", f"{s.seconds:.1f} s, {rate:.2f} contacts/s")
        table.add_row("seed's loop: Genesys / Salesforce requests per record",
                      f"{s.gc_requests / s.sample:.2f} / {s.sf_requests / s.sample:.3f} ({s.throttled} × 429)")
        # A short sample spends the budget's first minute in a burst: at length the loop runs at
        # the budget's pace (its Genesys requests per record ÷ 300 a minute) if that is slower.
        per_record = s.seconds / s.sample
        if p.budget:
            per_record = max(per_record, s.gc_requests / s.sample * 60 / 300)
        table.add_row(f"seed's loop: {p.contacts:,} contacts, extrapolated", f"{p.contacts * per_record / 3600:.1f} h")
    return table


def parse_sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--changes", type=parse_sizes, default=[200, 1000, 10_000], help="comma-separated")
    parser.add_argument("--compare", type=parse_sizes, default=[],
                        help="sizes to run once more on each path (force_path), e.g. 1000")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--no-budget", action="store_true", help="also a pass without the Genesys budget")
    parser.add_argument("--only-no-budget", action="store_true", help="only the pass without the budget")
    parser.add_argument("--seed-sample", type=int, default=400, help="contacts for the seed's loop (0: skip)")
    parser.add_argument("--bare", type=int, default=1000, help="bare workflows for the yardstick (0: skip)")
    parser.add_argument("--quick", action="store_true", help="5,000 contacts, 200 and 2,500 changes, small samples")
    parser.add_argument("--pages", type=int, help="max_concurrent_pages for every run (default: the engine's)")
    parser.add_argument("--pairs", type=int, help="max_concurrent_pairs for every run (default: the engine's)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep var/bench-sync-* for inspection")
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.changes, args.seed_sample, args.bare = 5000, [200, 2500], 100, 300
        args.compare = args.compare or []

    if args.pages:
        TUNING["max_concurrent_pages"] = args.pages
    if args.pairs:
        TUNING["max_concurrent_pairs"] = args.pairs
    passes = [] if args.only_no_budget else [True]
    if args.no_budget or args.only_no_budget:
        passes.append(False)
    results = []
    for budget in passes:
        figures = await one_pass(args, budget)
        results.append(figures)
        console.print(runs_table(figures))
        console.print(comparison_table(figures))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
