"""The chaos bench's faults: what each does to the stack, how it is undone, when they strike
(a plan of random moments) and how long the stack took to recover from each."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.chaos.stack import ChaosStack

# 5% of requests answered 503 and 1% of writes UNABLE_TO_LOCK_ROW, until cleared.
SALESFORCE_FAULTS = {"error_rate": 0.05, "error_status": 503, "unable_to_lock_row_rate": 0.01}


@dataclass
class Fault:
    kind: str  # worker-kill | temporal-restart | session-expiry
    at: float  # perf_counter when it struck
    back: float  # perf_counter when the process was ready again (= at for session expiry)


def _struck(cs: ChaosStack, kind: str, at: float, back: float) -> Fault:
    fault = Fault(kind, at, back)
    cs.faults.append(fault)
    return fault


# Blocking (they wait for readiness): the scenarios run them in a thread.
def kill_worker(cs: ChaosStack) -> Fault:
    """SIGKILL the worker mid-task; undone by starting it again at once, as systemd/Kubernetes would."""
    at = time.perf_counter()
    cs.worker.kill()
    cs.worker.start(60)
    return _struck(cs, "worker-kill", at, time.perf_counter())


def restart_temporal(cs: ChaosStack) -> Fault:
    """Stop the dev server; undone by starting it again, after `cs.temporal_outage` seconds, on
    the same --db-filename and ports (the histories survive, the connections don't)."""
    at = time.perf_counter()
    cs.temporal.stop()
    time.sleep(cs.temporal_outage)
    cs.temporal.start(60)
    return _struck(cs, "temporal-restart", at, time.perf_counter())


def expire_sessions(cs: ChaosStack) -> Fault:
    """Expire every Salesforce session at once; undone by the clients themselves (they log in again)."""
    at = time.perf_counter()
    cs.salesforce_admin.post("/sessions/expire").raise_for_status()
    return _struck(cs, "session-expiry", at, at)


FAULTS: dict[str, Callable[[ChaosStack], Fault]] = {
    "worker-kill": kill_worker, "temporal-restart": restart_temporal, "session-expiry": expire_sessions,
}


def salesforce_faults(cs: ChaosStack, seed: int, **extra: Any) -> None:
    """SALESFORCE_FAULTS for the whole scenario; undone by clear_salesforce_faults."""
    cs.salesforce_admin.post("/faults", json={**SALESFORCE_FAULTS, "seed": seed, **extra}).raise_for_status()


def clear_salesforce_faults(cs: ChaosStack) -> None:
    cs.salesforce_admin.delete("/faults").raise_for_status()


@dataclass
class ChaosPlan:
    kills: int
    restarts: int
    session_expiries: int = 1


def schedule(plan: ChaosPlan, span: float, rng: random.Random) -> list[tuple[float, str]]:
    """Random moments within (5%, 90%) of `span` seconds, one per equal slot (jittered within its
    middle half), so faults never bunch up and each one's recovery can be told apart."""
    kinds = ["worker-kill"] * plan.kills + ["temporal-restart"] * plan.restarts + \
        ["session-expiry"] * plan.session_expiries
    rng.shuffle(kinds)
    lo, slot = 0.05 * span, 0.85 * span / max(1, len(kinds))
    return [(lo + slot * (i + rng.uniform(0.25, 0.75)), kind) for i, kind in enumerate(kinds)]


async def run_faults(cs: ChaosStack, plan: list[tuple[float, str]], t0: float, stop: asyncio.Event) -> None:
    """Strike each fault at its moment (seconds after t0) unless the workload finished first."""
    for at, kind in plan:
        delay = t0 + at - time.perf_counter()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
        await asyncio.to_thread(FAULTS[kind], cs)


@dataclass
class Recovery:
    kind: str
    at: float  # seconds into the run
    down: float  # until the process was ready again
    first_done: float  # until the first item completed after it was back
    in_flight: int  # items accepted before the fault and not yet done
    in_flight_done: float  # until the last of those completed


def recoveries(faults: list[Fault], items: list[tuple[float, float | None]], t0: float) -> list[Recovery]:
    """items: (accepted_at, completed_at) per workflow, perf_counter times."""
    done = sorted(c for _, c in items if c is not None)
    out = []
    for f in faults:
        first = next((c for c in done if c > f.back), None)
        pending = [c for a, c in items if a < f.at and (c is None or c > f.at)]
        last = max((c for c in pending if c is not None), default=None)
        out.append(Recovery(
            f.kind, f.at - t0, f.back - f.at,
            (first - f.at) if first is not None else float("nan"), len(pending),
            (last - f.at) if last is not None and None not in pending else float("nan"),
        ))
    return out

