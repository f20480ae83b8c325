"""python -m bench.soak: the product at a steady load for a long time — does anything drift?

Starts its own stack (file-backed Temporal dev server, both emulators, worker, starter) under
var/soak on free ports, seeds the org, builds the caller-ID index, then for --minutes offers
calls through the webhook (--call-rate per second) and screen-pop lookups (--lookup-rate per
second) on a fixed schedule, whatever the answers' pace (an open loop: a slowdown shows as
latency, not as less load). Prints per minute: calls accepted and logged, lookups, latency
percentiles (call end → Task from Temporal's close times, read once at the end), errors; and
the RSS of every process at the start, after the first minute (warmed up) and at the end.

    .venv/bin/python -m bench.soak                 # 30 minutes, 10 calls/s, 50 lookups/s
    .venv/bin/python -m bench.soak --minutes 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.calls import Caller, call_event, callers_with_one_owner
from bench.stack import bench_settings
from bench.tables import pct
from callbridge.domain import signature
from devstack.stack import LocalStack
from callbridge.core.temporal import connect

console = Console(width=120) if not Console().is_terminal else Console()
PAGE = os.sysconf("SC_PAGE_SIZE")
CALLBRIDGE_PROCESSES = ("worker", "starter")


def group_rss(pgid: int) -> int:
    """Bytes resident in every process of a process group (each stack process leads its own)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5, pgrp (after state and ppid)
                with open(f"/proc/{entry}/statm") as f:
                    total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


@dataclass
class Minute:
    calls_sent: int = 0
    calls_accepted: int = 0
    calls_logged: int = 0
    lookups: int = 0
    ack: list[float] = field(default_factory=list)
    logged: list[float] = field(default_factory=list)
    lookup: list[float] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)  # wall times the calls' workflows closed
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def rss_snapshot(stack: LocalStack) -> dict[str, int]:
    return {p.name: group_rss(p.proc.pid) for p in stack.processes if p.alive()}


async def soak(stack: LocalStack, minutes: float, call_rate: float, lookup_rate: float, seed: int):
    s = stack.settings
    rng = random.Random(seed)
    sf = stack.salesforce_client()
    owned = callers_with_one_owner(sf, s.default_region)
    callers = [Caller(e164, cid, False) for e164, cid in owned]
    client = await connect(s)
    base = f"http://127.0.0.1:{s.starter_port}"
    secret = s.webhook_secret.get_secret_value()
    auth = (s.screenpop_username, s.screenpop_password.get_secret_value())
    per_minute: dict[int, Minute] = defaultdict(Minute)
    rss: dict[str, dict[str, int]] = {"start": rss_snapshot(stack)}
    duration = minutes * 60
    pending: set[asyncio.Task] = set()

    sent: dict[str, tuple[float, Minute]] = {}  # workflow id -> (wall time sent, its minute)
    # Two clients, as in reality (Genesys's webhook sender and its data action): a slow webhook
    # never holds a connection a lookup is waiting for.
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as hooks, \
            httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as lookups:

        async def call(minute: Minute) -> None:
            conversation = str(uuid.uuid4())
            body = json.dumps(call_event(conversation, rng.choice(callers))).encode()
            sent_at, wall = time.perf_counter(), time.time()
            minute.calls_sent += 1
            try:
                resp = await hooks.post("/webhooks/genesys/conversation-ended", content=body,
                                        headers=signature.signed_headers(secret, int(time.time()), body))
            except httpx.HTTPError as exc:
                minute.errors[f"webhook {type(exc).__name__}"] += 1
                return
            minute.ack.append(time.perf_counter() - sent_at)
            if resp.status_code != 202:
                minute.errors[f"webhook {resp.status_code}"] += 1
                return
            minute.calls_accepted += 1
            sent[resp.json()["workflowId"]] = (wall, minute)

        async def lookup(minute: Minute) -> None:
            caller = rng.choice(callers)
            sent_at = time.perf_counter()
            try:
                resp = await lookups.post("/screenpop/lookup", json={"phoneNumber": caller.e164}, auth=auth)
            except httpx.HTTPError as exc:
                minute.errors[f"lookup {type(exc).__name__}"] += 1
                return
            minute.lookup.append(time.perf_counter() - sent_at)
            minute.lookups += 1
            if resp.status_code != 200:
                minute.errors[f"lookup {resp.status_code}"] += 1
            elif resp.json().get("contactId") != caller.contact_id:
                minute.errors["lookup wrong contact"] += 1

        def spawn(coro) -> None:
            task = asyncio.create_task(coro)
            pending.add(task)
            task.add_done_callback(pending.discard)

        t0, started_wall = time.perf_counter(), time.time()
        # One schedule for both streams, each event at its due time (an open loop).
        events = sorted([(i / call_rate, "call") for i in range(int(duration * call_rate))] +
                        [(i / lookup_rate, "lookup") for i in range(int(duration * lookup_rate))])
        warm_taken = False
        for at, kind in events:
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            minute = per_minute[int(at // 60)]
            spawn(call(minute) if kind == "call" else lookup(minute))
            if not warm_taken and at >= 60:
                rss["after 1 min"] = rss_snapshot(stack)
                warm_taken = True
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - t0
    await settle(client, sent)
    rss["end"] = rss_snapshot(stack)
    return per_minute, rss, elapsed, started_wall


async def settle(client, sent: dict[str, tuple[float, "Minute"]], timeout: float = 900.0) -> None:
    """When every call's workflow has closed, read their close times and outcomes from Temporal's
    visibility in one listing — not one result long-poll per call, which would load the very
    server being measured."""
    query = "WorkflowType = 'CallLoggingWorkflow'"
    deadline = time.monotonic() + timeout
    while (await client.count_workflows(f"{query} AND ExecutionStatus = 'Running'")).count:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(5)
    async for wf in client.list_workflows(query):
        if wf.id not in sent:
            continue
        wall, minute = sent.pop(wf.id)
        attrs = {p.key.name: p.value for p in wf.typed_search_attributes}
        if wf.close_time is None:
            minute.errors["workflow still running"] += 1
        elif wf.status.name != "COMPLETED":
            minute.errors[f"workflow {wf.status.name.lower()}"] += 1
        elif attrs.get("CallbridgeOutcome") != "logged":
            minute.errors[f"outcome {attrs.get('CallbridgeOutcome')}"] += 1
        else:
            minute.calls_logged += 1
            minute.logged.append(wf.close_time.timestamp() - wall)
            minute.closed_at.append(wf.close_time.timestamp())
    for _, minute in sent.values():
        minute.errors["workflow not found"] += 1


def report(per_minute: dict[int, Minute], rss: dict[str, dict[str, int]], elapsed: float, started: float,
           args) -> bool:
    table = Table(title=f"Soak: {args.call_rate:g} calls/s + {args.lookup_rate:g} lookups/s for {args.minutes:g} min")
    for col in ("min", "calls sent", "logged", "ack p50/p99", "call end → Task p50/p99/max", "lookups/s",
                "lookup p50/p99", "errors"):
        table.add_column(col, justify="right")
    errors_total = 0
    for m in sorted(per_minute):
        x = per_minute[m]
        errors = sum(x.errors.values())
        errors_total += errors
        table.add_row(
            str(m + 1), str(x.calls_sent), str(x.calls_logged),
            f"{pct(x.ack, .5)*1000:.0f}/{pct(x.ack, .99)*1000:.0f} ms",
            f"{pct(x.logged, .5):.2f}/{pct(x.logged, .99):.2f}/{max(x.logged, default=float('nan')):.2f} s",
            f"{x.lookups / 60:.1f}", f"{pct(x.lookup, .5)*1000:.1f}/{pct(x.lookup, .99)*1000:.1f} ms",
            ", ".join(f"{k}: {v}" for k, v in x.errors.items()) or "0",
        )
    console.print(table)
    mem = Table(title="RSS per process (MB)")
    for col in ("process", *rss, "growth since start", "growth since 1 min"):
        mem.add_column(col, justify="right")
    growth_ok = True
    for name in rss["start"]:
        start, end = rss["start"][name], rss["end"].get(name, 0)
        warm = rss.get("after 1 min", {}).get(name, start)
        since_warm = (end - warm) / warm if warm else float("nan")
        if name in CALLBRIDGE_PROCESSES:  # the goal is ours; the dev server caches histories by design
            growth_ok &= since_warm < 0.10
        mem.add_row(name, *(f"{rss[k].get(name, 0) / 2**20:.0f}" for k in rss),
                    f"{(end - start) / start:+.1%}" if start else "—", f"{since_warm:+.1%}")
    console.print(mem)
    calls = sum(x.calls_logged for x in per_minute.values())
    lookups = sum(x.lookups for x in per_minute.values())
    last = max((t for x in per_minute.values() for t in x.closed_at), default=started)
    # Throughput is what was logged by the time the last Task was: a backlog shows as less than offered.
    console.print(f"{calls} calls logged in {last - started:.0f} s ({calls / max(last - started, 1e-9):.1f}/s; "
                  f"offered {args.call_rate:g}/s for {elapsed:.0f} s), {lookups} lookups ({lookups / elapsed:.1f}/s), "
                  f"{errors_total} errors")
    return errors_total == 0 and growth_ok


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--call-rate", type=float, default=10.0)
    parser.add_argument("--lookup-rate", type=float, default=50.0)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--var", type=Path, default=Path("var/soak"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    var = args.var.resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    stack = LocalStack(bench_settings(var, "callbridge-soak"))
    try:
        with console.status("Starting the stack and building the caller-ID index…"):
            stack.start_all(args.contacts)
            await asyncio.to_thread(stack.rebuild_caller_index)
        with console.status(f"Soaking for {args.minutes:g} min…"):
            per_minute, rss, elapsed, started = await soak(stack, args.minutes, args.call_rate, args.lookup_rate, args.seed)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)
    raise SystemExit(0 if report(per_minute, rss, elapsed, started, args) else 1)


if __name__ == "__main__":
    asyncio.run(main())
