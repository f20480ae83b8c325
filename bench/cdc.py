"""python -m bench.cdc: Salesforce edit → caller-ID index row and → Genesys contact updated, through
Change Data Capture (`callbridge listen`) and through the polling path, in the same run.

A fresh stack under var/bench-cdc (file-backed Temporal dev server, the Salesforce emulator with
its Pub/Sub API, the Genesys emulator, the worker), N seeded contacts loaded into Genesys by one
contact sync run. Then each measured phase edits distinct linked contacts (a new Phone each, one
REST PATCH) at a steady rate and watches the state store:

- index: when the contact's row with the new number appears (`caller_index`);
- Genesys: when the pair's sync audit records the Phone write (stored right after the Genesys
  write returned).

Phases: the listener at 10 and 100 edits/s (polling schedules paused), then the polling path at
10 edits/s (listener stopped; the index refresh schedule at its default minute, the contact sync
schedule at the mapping's smallest interval, 1 minute — the product default is 30). Genesys holds
each client to 300 requests a minute (the emulator too, unless `--no-budget`). Requests per
change: the emulators' API counters over the phase (the bench's own PATCHes taken out; the
Pub/Sub calls counted apart) ÷ edits.

    .venv/bin/python -m bench.cdc                  # ~6 minutes
    .venv/bin/python -m bench.cdc --seconds 5      # shorter phases
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bench.stack import NO_LIMIT, BenchStack, bench_settings, genesys_admin, salesforce_token, salesforce_verify
from bench.tables import pct
from callbridge.core.settings import Settings
from callbridge.core.temporal import connect

console = Console(width=160)


@dataclass
class Phase:
    path: str
    rate: int
    edits: int
    index_ms: list[float]
    genesys_ms: list[float]
    sf_requests: float
    pubsub_calls: float
    gc_requests: float
    missing_index: int
    missing_genesys: int


def in_seconds(ms: list[float], q: float) -> str:
    return f"{pct(ms, q) / 1000:.2f} s" if ms else "-"


class Counters:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sf = settings.salesforce_instance_url
        self.verify = salesforce_verify(settings)

    def read(self) -> tuple[int, int, int]:
        sf = httpx.get(f"{self.sf}/_emulator/stats", verify=self.verify).json()["apiRequests"]
        ps = httpx.get(f"{self.sf}/_emulator/pubsub", verify=self.verify).json()["rpcs"]
        gc = genesys_admin(self.settings, "GET", "stats")["requests"]
        # API calls only (the counts are per route; the token endpoint and /_emulator are not API)
        return sf, ps, sum(n for route, n in gc.items() if "/api/v2/" in route)


async def edit_and_watch(settings: Settings, token: str, targets: list[str], rate: int, seconds: float,
                         wait: float) -> tuple[dict, dict, dict]:
    """PATCH a new Phone on each target at `rate`/s; return edit, index and Genesys times."""
    from callbridge.domain.phone import to_e164
    from callbridge.store.db import get_engine
    from callbridge.store.tables import caller_index
    from callbridge.store.sync_runs import sync_audit

    engine = get_engine(settings.database_url)
    verify = salesforce_verify(settings)
    count = min(len(targets), int(rate * seconds))
    numbers = {cid: f"+1512{7000000 + (hash((cid, time.time_ns())) % 2999999):07d}" for cid in targets[:count]}
    edited: dict[str, float] = {}
    indexed: dict[str, float] = {}
    synced: dict[str, float] = {}
    started = datetime.now(timezone.utc)
    async with httpx.AsyncClient(base_url=f"{settings.salesforce_instance_url}/services/data/v62.0", verify=verify,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async def one(cid: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            resp = await http.patch(f"/sobjects/Contact/{cid}", json={"Phone": numbers[cid]})
            resp.raise_for_status()
            edited[cid] = time.time()
        t0 = time.monotonic() + 0.2
        edits = asyncio.gather(*(one(cid, t0 + i / rate) for i, cid in enumerate(numbers)))

        async def watch() -> None:
            deadline = time.monotonic() + seconds + wait
            by_number = {to_e164(n, "US") or n: cid for cid, n in numbers.items()}
            while time.monotonic() < deadline and (len(indexed) < len(numbers) or len(synced) < len(numbers)):
                now = time.time()
                with engine.connect() as conn:
                    for row in conn.execute(select(caller_index.c.contact_id, caller_index.c.e164).where(
                            caller_index.c.e164.in_(list(by_number)))):
                        cid = by_number.get(row.e164)
                        if cid == row.contact_id and cid not in indexed:
                            indexed[cid] = now
                    for row in conn.execute(select(sync_audit.c.salesforce_id, sync_audit.c.at).where(
                            sync_audit.c.at >= started, sync_audit.c.field == "Phone",
                            sync_audit.c.salesforce_id.in_(list(numbers)))):
                        if row.salesforce_id not in synced:
                            synced[row.salesforce_id] = now
                await asyncio.sleep(0.05)
        await asyncio.gather(edits, watch())
    return edited, indexed, synced


async def phase(path: str, rate: int, seconds: float, wait: float, settings, token, targets, counters) -> Phase:
    before = counters.read()
    edited, indexed, synced = await edit_and_watch(settings, token, targets, rate, seconds, wait)
    after = counters.read()
    n = len(edited)
    return Phase(path=path, rate=rate, edits=n,
                 index_ms=[(indexed[c] - edited[c]) * 1000 for c in edited if c in indexed],
                 genesys_ms=[(synced[c] - edited[c]) * 1000 for c in edited if c in synced],
                 sf_requests=(after[0] - before[0] - n) / n, pubsub_calls=(after[1] - before[1]) / n,
                 gc_requests=(after[2] - before[2]) / n,
                 missing_index=n - sum(c in indexed for c in edited), missing_genesys=n - sum(c in synced for c in edited))


async def drain(client) -> None:
    """Wait until no workflow runs: a phase must not measure the previous one's backlog."""
    while [w async for w in client.list_workflows('ExecutionStatus = "Running"')]:
        await asyncio.sleep(1.0)


async def main(args: argparse.Namespace) -> None:
    from callbridge.store.sync import sync_pairs
    from callbridge.store.db import get_engine
    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.caller_index import SCHEDULE_ID as INDEX_SCHEDULE
    from workflows.contact_sync import SCHEDULE_ID as SYNC_SCHEDULE, WORKFLOW_ID, ContactSyncWorkflow

    var = Path("var/bench-cdc").resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    mapping = var / "mapping.yaml"
    default = Path(__file__).resolve().parent.parent / "callbridge" / "domain" / "sync" / "default_mapping.yaml"
    mapping.write_text(default.read_text().replace("interval_minutes: 30", "interval_minutes: 1"))
    settings = bench_settings(var, "callbridge-bench-cdc", sync_config_path=str(mapping),
                              genesys_requests_per_minute=0)
    stack = BenchStack(settings, genesys_rate_limit=NO_LIMIT if args.no_budget else 300)
    phases: list[Phase] = []
    try:
        with console.status(f"starting the stack, seeding {args.contacts} contacts, loading Genesys…"):
            stack.start_seeded(args.contacts)
            client = await connect(settings)
            for _ in range(300):
                try:
                    await client.get_schedule_handle(INDEX_SCHEDULE).pause(note="bench.cdc")
                    break
                except Exception:  # the worker creates its schedules as it starts
                    await asyncio.sleep(0.2)
            await client.execute_workflow(ContactSyncWorkflow.run, ContactSyncInput.from_config(load(mapping)),
                                          id=WORKFLOW_ID, task_queue=settings.temporal_task_queue)
            with get_engine(settings.database_url).connect() as conn:
                linked = [r.salesforce_id for r in conn.execute(select(sync_pairs.c.salesforce_id).where(
                    sync_pairs.c.genesys_id.is_not(None)))]
            token = salesforce_token(settings)
        console.print(f"{len(linked)} linked pairs to edit")
        counters = Counters(settings)
        listener = stack.start_listener()
        await asyncio.sleep(2.0)
        pool = list(linked)

        def take(rate: int) -> list[str]:
            nonlocal pool
            chosen, pool = pool[:int(rate * args.seconds)], pool[int(rate * args.seconds):]
            return chosen

        with console.status(f"listener: 10 edits/s for {args.seconds} s…"):
            phases.append(await phase("listener", 10, args.seconds, args.wait, settings, token, take(10), counters))
        listener.stop()
        # The polling path, the listener off: the index refresh every minute, the sync every minute.
        await client.get_schedule_handle(INDEX_SCHEDULE).unpause()
        await client.get_schedule_handle(SYNC_SCHEDULE).unpause()
        with console.status(f"polling: 10 edits/s for {args.seconds} s, waiting up to {args.poll_wait} s…"):
            phases.append(await phase("polling", 10, args.seconds, args.poll_wait, settings, token, take(10),
                                      counters))
        await client.get_schedule_handle(INDEX_SCHEDULE).pause(note="bench.cdc")
        await client.get_schedule_handle(SYNC_SCHEDULE).pause(note="bench.cdc")
        await drain(client)
        listener = stack.start_listener()
        await asyncio.sleep(2.0)
        with console.status(f"listener: 100 edits/s for {args.seconds} s…"):
            phases.append(await phase("listener", 100, args.seconds, args.wait, settings, token, take(100),
                                      counters))
        listener.stop()
    finally:
        stack.stop()

    budget = "no Genesys budget" if args.no_budget else "Genesys budget 300 requests/min"
    table = Table(title=f"Salesforce edit → index / Genesys, {budget} ({platform.node()}, {os.cpu_count()} cores, "
                        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)")
    for col in ("path", "edits/s", "edits", "index p50", "index p99", "Genesys p50", "Genesys p99",
                "SF REST/change", "Pub/Sub calls/change", "Genesys req/change", "missing (index/Genesys)"):
        table.add_column(col)
    for p in phases:
        table.add_row(p.path, str(p.rate), str(p.edits), in_seconds(p.index_ms, .5), in_seconds(p.index_ms, .99),
                      in_seconds(p.genesys_ms, .5), in_seconds(p.genesys_ms, .99), f"{p.sf_requests:.2f}",
                      f"{p.pubsub_calls:.2f}", f"{p.gc_requests:.2f}", f"{p.missing_index}/{p.missing_genesys}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase's edits")
    parser.add_argument("--wait", type=float, default=60.0, help="how long a listener phase waits for stragglers")
    parser.add_argument("--no-budget", action="store_true",
                        help="the Genesys emulator without its 300 requests/min budget (the engine's own figures)")
    parser.add_argument("--poll-wait", type=float, default=150.0, help="how long the polling phase waits")
    asyncio.run(main(parser.parse_args()))
