"""python -m bench.call_logging: N simulated calls through the call-ended trigger path at a chosen rate.

Starts its own stack (Temporal dev server file-backed, both emulators, worker, starter) under
var/bench on free ports, seeds the org and provisions the Genesys emulator as the demo does
(`callbridge genesys install`, the call-ended workflow published, the relay webhook off). Then
each call is placed in the Genesys emulator (`deliver`): its IVR runs the screen-pop data action
against the starter, the call ends, and the emulator's Process Automation trigger runs the
published workflow, whose call-ended data action posts the `customer.end` event to the starter.
The workflow hydrates each call from the Conversations API and logs it. Prints: the data
action's answer time p50/p99, call end -> Task logged p50/p99, calls/s sustained, the Salesforce
and Genesys API requests per call (goals: <= 1.1 and <= 3), and a bare one-activity workflow
loop on the same dev server for comparison (goal: calls/s / bare >= 0.6), and the CPU time each
process of the stack spent per call and per bare workflow.

    .venv/bin/python -m bench.call_logging --calls 1000 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import time
from pathlib import Path

import httpx
from rich.console import Console

from bench.bare_workflow import bare_rate
from bench.stack import bench_settings, genesys_api_requests, salesforce_verify
from bench.tables import measure_table, pct
from devstack.call_simulation import known_callers
from callbridge.core.settings import Settings
from devstack.stack import LocalStack
from callbridge.core.temporal import connect
from workflows.call_logging import CallLoggingWorkflow, workflow_id

console = Console()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far, from /proc (Linux);
    the Temporal CLI's dev server runs as a child of the process started."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += children.get(current, [])
    return total


def cpu_by_process(stack: LocalStack) -> dict[str, float]:
    """CPU seconds so far of each process of the stack, and of this one (the load generator and
    the bare loop's worker)."""
    out = {p.name: cpu_seconds(p.proc.pid) for p in stack.processes if p.proc is not None}
    own = os.times()
    out["bench (load generator, bare loop's worker)"] = own.user + own.system
    return out


def per_item_ms(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, int]:
    return {name: round((after[name] - before.get(name, 0.0)) * 1000 / max(1, items)) for name in after}


async def deliver(http: httpx.AsyncClient, settings: Settings, caller: str) -> dict:
    """One call placed in the Genesys emulator, stored already ended (its IVR, queue, agent and
    recording); the answer comes once its trigger ran the call-ended data action against the
    starter. The call's end is the moment this is sent."""
    resp = await http.post(f"{settings.genesys_api_url}/_emulator/calls",
                           json={"ani": caller, "durationSeconds": 300, "realtime": False, "wait": True})
    resp.raise_for_status()
    return resp.json()


def data_action_step(call: dict) -> dict | None:
    """The call-ended data action's step in the call's trigger invocation, when it succeeded."""
    for invocation in (call.get("delivery") or {}).get("triggers") or []:
        steps = invocation.get("steps") or []
        if invocation.get("state") == "completed" and steps and steps[-1].get("output") == "success":
            return steps[-1]
    return None


async def run_calls(settings: Settings, client, callers: list[str], count: int, rate: float, concurrency: int):
    """Place `count` calls at `rate` per second (0: as fast as `concurrency` calls in flight allow)
    and wait for each call's Task: the throughput is comparable with the bare loop at the same concurrency."""
    rng = random.Random(7)
    in_flight = asyncio.Semaphore(concurrency)
    acks: list[float] = []
    logged: list[float] = []
    failures: list[str] = []
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def one(caller: str, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            async with in_flight:
                await logged_call(caller)

        async def logged_call(caller: str) -> None:
            ended = time.perf_counter()
            call = await deliver(http, settings, caller)
            step = data_action_step(call)
            if step is None:
                failures.append(f"trigger: {(call.get('delivery') or {}).get('triggers')}"[:200])
                return
            acks.append(step["elapsedMs"] / 1000)
            try:
                result = await client.get_workflow_handle_for(
                    CallLoggingWorkflow.run, workflow_id(call["conversationId"])).result()
            except Exception as exc:
                failures.append(type(exc).__name__)
                return
            logged.append(time.perf_counter() - ended)
            if result.outcome != "logged":
                failures.append(result.outcome)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(rng.choice(callers), t0 + (i / rate if rate > 0 else 0)) for i in range(count)))
        elapsed = time.perf_counter() - t0
    return acks, logged, failures, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="calls per second placed (0: as fast as --concurrency allows)")
    parser.add_argument("--concurrency", type=int, default=100, help="calls in flight at most (the bare loop's too)")
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--genesys-per-minute", type=int, default=6000,
                        help="the Genesys token's request budget, emulator and client (a real org's default: 300; "
                             "at 2 requests per call that caps call logging at 150 calls a minute per token)")
    parser.add_argument("--keep", action="store_true", help="keep var/bench for inspection")
    args = parser.parse_args()

    var = Path("var/bench").resolve()
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    settings = bench_settings(var, "callbridge-bench", genesys_requests_per_minute=args.genesys_per_minute)
    stack = LocalStack(settings, genesys_rate_limit=args.genesys_per_minute)
    try:
        with console.status("Starting the stack and building the caller-ID index…"):
            stack.start_all(args.contacts)
            # Without it the IVR's lookups of the first minute's calls miss the index (the refresh
            # schedule hasn't run yet) and go to Salesforce live: the screen pop's cost, not ours.
            await asyncio.to_thread(stack.rebuild_caller_index)
        client = await connect(settings)
        callers = [c.e164 for c in known_callers(settings)]
        verify = salesforce_verify(settings)
        stats_url = f"{settings.salesforce_instance_url}/_emulator/stats"
        # The yardstick before and after the calls: the machine's load moves between the two.
        with console.status(f"Bare one-activity workflows ×{args.calls}…"):
            cpu_0 = cpu_by_process(stack)
            bare_before = await bare_rate(client, args.calls, concurrency=args.concurrency)
            cpu_bare = per_item_ms(cpu_0, cpu_by_process(stack), args.calls)
        with console.status("Provisioning the Genesys emulator: `callbridge genesys install`, archy publish…"):
            stack.provision_genesys()
            stack.stop_relay_webhook()  # every call reaches the starter through the trigger
        stack.connect_flow_to_lookup()  # the IVR's screen pop names the contact (participant data contact_id)
        httpx.post(f"{stats_url}/reset", verify=verify).raise_for_status()
        httpx.post(f"{settings.genesys_api_url}/_emulator/stats/reset").raise_for_status()
        with console.status(f"{args.calls} calls through the trigger…"):
            cpu_0 = cpu_by_process(stack)
            acks, logged, failures, elapsed = await run_calls(settings, client, callers, args.calls, args.rate,
                                                              args.concurrency)
            cpu_calls = per_item_ms(cpu_0, cpu_by_process(stack), args.calls)
        sf_stats = httpx.get(stats_url, verify=verify).json()
        sf_requests = sf_stats["apiRequests"]
        gc_requests = genesys_api_requests(settings)
        with console.status(f"Bare one-activity workflows ×{args.calls} again…"):
            bare_after = await bare_rate(client, args.calls, concurrency=args.concurrency)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(var, ignore_errors=True)

    rate = len(logged) / elapsed
    bare = (bare_before + bare_after) / 2
    offered = f"at {args.rate:g}/s" if args.rate > 0 else "as fast as they go"
    table = measure_table(f"Call logging through the call-ended trigger: {args.calls} calls offered {offered}, "
                          f"≤ {args.concurrency} in flight, Genesys budget {args.genesys_per_minute}/min")
    table.add_row("call-ended data action answered p50 / p99", f"{pct(acks, .5)*1000:.0f} ms / {pct(acks, .99)*1000:.0f} ms")
    table.add_row("call end → Task logged p50 / p99", f"{pct(logged, .5)*1000:.0f} ms / {pct(logged, .99)*1000:.0f} ms")
    table.add_row("calls/s sustained", f"{rate:.1f}")
    table.add_row("bare one-activity workflows/s (before / after)", f"{bare_before:.1f} / {bare_after:.1f}")
    table.add_row("ratio (calls/s ÷ mean bare, goal ≥ 0.6)", f"{rate / bare:.2f}")
    # The IVR's screen-pop lookups run during the calls too; their live searches on an index miss
    # are SOSL (GET …/search), which call logging never sends: counted apart.
    screen_pop = sum(n for route, n in sf_stats["byRoute"].items() if route.endswith("/search"))
    per_call = max(1, len(logged))
    table.add_row("Salesforce API requests per call, call logging (goal ≤ 1.1)",
                  f"{(sf_requests - screen_pop) / per_call:.2f}")
    table.add_row("… and the IVR's screen-pop live searches (index misses)", f"{screen_pop / per_call:.2f}")
    table.add_row("Genesys API requests per call (goal ≤ 3)", f"{gc_requests / max(1, len(logged)):.2f}")
    table.add_row("calls logged / failed or not logged", f"{len(logged)} / {len(failures)}")
    console.print(table)
    # Everything Salesforce served during the calls, the IVR's screen-pop lookups and the
    # caller-ID index refreshes included: what the per-call figure above is made of.
    console.print("Salesforce requests by route:", dict(sorted(sf_stats["byRoute"].items(), key=lambda kv: -kv[1])))
    # On a shared machine the rates move with everyone's load; CPU time per call much less. The
    # emulators' share is the bench's, not the product's (in production Genesys and Salesforce
    # run elsewhere), but here it is taken from the same cores.
    console.print("CPU ms per call by process:", cpu_calls)
    console.print("CPU ms per bare workflow by process:", {k: v for k, v in cpu_bare.items() if v})
    console.print(f"load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if failures:
        console.print("failures (first 5):", failures[:5])


if __name__ == "__main__":
    asyncio.run(main())
