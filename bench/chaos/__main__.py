"""python -m bench.chaos: the product under SIGKILLed workers, a restarted Temporal and a faulty Salesforce.

Starts its own stack (file-backed Temporal dev server, both emulators, worker, starter) under
var/chaos on free ports. While a scenario runs, the worker is SIGKILLed (and restarted at once,
as a supervisor would) at random moments, the dev server is stopped and started again on the
same file and port, and the Salesforce emulator answers 5% of requests 503, 1% of writes
UNABLE_TO_LOCK_ROW and expires every session once. Then it checks the outcome against
Salesforce and Genesys directly (SOQL, REST), not against what Callbridge says it did.

    .venv/bin/python -m bench.chaos --scenario calls --calls 1000
    .venv/bin/python -m bench.chaos --scenario erasures --erasures 20
    .venv/bin/python -m bench.chaos --scenario sync --changes 10000
    .venv/bin/python -m bench.chaos --scenario all

Scenarios:
  calls     N calls through the relay webhook, delivered as the emulator's relay does (3 tries,
            1 s and 2 s apart; Genesys itself sends no such webhook), or with --via-genesys
            placed in the Genesys emulator, whose call-ended trigger hands each to the starter
            once (not retried) and the reconciliation logs those it couldn't: exactly N Tasks,
            each on the caller's contact, no duplicate, none lost.
  erasures  N GDPR erasures of people present in both systems: all complete, and nothing of
            them is left in Salesforce or Genesys.
  sync      N contact changes (Salesforce and Genesys sides) through ContactSyncWorkflow runs:
            every change lands once on the other side; a change made during a run is taken by
            the next one (the watermark never skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.chaos.faults import ChaosPlan, Recovery
from bench.chaos.scenarios import (
    CallsReport, ErasuresReport, SyncReport, calls_scenario, erasures_scenario, sync_scenario,
)
from bench.chaos.stack import ChaosStack
from bench.tables import measure_table, pct

console = Console(width=110) if not Console().is_terminal else Console()


def quiet_sdk_logs() -> None:
    """The SDK's core logs every retried RPC while the dev server is down on purpose: errors only."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))), error_if_already_set=False)


def recovery_table(title: str, recs: list[Recovery], per_item: bool = True) -> Table:
    table = Table(title=title)
    cols = ("fault", "at", "process back") + (("first done after", "in flight", "all of them done") if per_item else ())
    for col in cols:
        table.add_column(col, justify="left" if col == "fault" else "right", no_wrap=True)
    for r in sorted(recs, key=lambda r: r.at):
        row = [r.kind, f"{r.at:.1f} s", f"{r.down:.1f} s" if r.kind != "session-expiry" else "—"]
        if per_item:
            row += [f"{r.first_done:.1f} s", str(r.in_flight), f"{r.in_flight_done:.1f} s"]
        table.add_row(*row)
    return table


def print_calls(report: CallsReport, rate: float) -> None:
    table = measure_table(f"Chaos: {report.calls} calls at {rate:g}/s", [
        ("deliveries taken (of which needed a retry)", f"{report.delivered} ({report.redelivered})"),
        ("deliveries not taken (relay: refused 3 times; trigger: its one try)", str(report.undelivered)),
        ("Tasks for the calls made", str(report.tasks)),
        ("… each on the caller's contact", str(report.on_right_contact)),
        ("… on a wrong contact", str(report.wrong_contact)),
        ("duplicates", str(report.duplicates)),
        ("logged by the reconciliation run (delivery never taken)", str(report.reconciled)),
        ("lost (no Task)", str(report.lost)),
        ("Tasks nobody called for", str(report.unexpected)),
        ("delivery accepted (retries included) p50 / p99 / max",
         f"{pct(report.ack_latency, .5):.2f} s / {pct(report.ack_latency, .99):.2f} s / "
         f"{max(report.ack_latency, default=float('nan')):.2f} s"),
        ("call end → Task logged p50 / p99 / max",
         f"{pct(report.logged_latency, .5):.1f} s / {pct(report.logged_latency, .99):.1f} s / "
         f"{max(report.logged_latency, default=float('nan')):.1f} s"),
        ("run time (all calls done)", f"{report.elapsed:.0f} s"),
        ("Salesforce API requests per call (faults included)", f"{report.salesforce_requests / report.calls:.2f}"),
        ("verdict", "[green]OK[/]" if report.ok else "[red]FAILED[/]"),
    ])
    console.print(table)
    console.print(recovery_table("Recovery (seconds after the fault)", report.recoveries))


def print_erasures(report: ErasuresReport) -> None:
    table = measure_table(f"Chaos: {report.erasures} GDPR erasures", [
        ("completed (certificate recorded)", str(report.completed)),
        ("failed / not finished", f"{report.failed} / {report.not_finished}"),
        ("verified clean in Salesforce and Genesys (searched directly)", str(report.verified_clean)),
        ("left over", ", ".join(f"{k}: {v}" for k, v in report.leftovers.items()) or "nothing"),
        ("call histories left in Temporal", str(report.histories_left)),
        ("admin API requests retried (Temporal down)", str(report.start_retries)),
        ("request → completed p50 / max",
         f"{pct(report.durations, .5):.1f} s / {max(report.durations, default=float('nan')):.1f} s"),
        ("run time", f"{report.elapsed:.0f} s"),
        ("verdict", "[green]OK[/]" if report.ok else "[red]FAILED[/]"),
    ])
    console.print(table)
    console.print(recovery_table("Recovery (seconds after the fault)", report.recoveries))


def print_sync(report: SyncReport) -> None:
    runs = Table(title=f"Chaos: contact sync, {report.changes} changes on {report.contacts} contacts (bidirectional)")
    for col in ("run", "path", "pairs", "created", "updated", "errors", "seconds", "pairs/s"):
        runs.add_column(col, justify="left" if col in ("run", "path") else "right")
    for label, r, took in report.runs:
        runs.add_row(label, str(r.get("path", "per_pair")), str(r.get("pairs")), str(r.get("created")), str(r.get("updated")), str(r.get("errors")),
                     f"{took:.0f}", f"{r.get('pairs', 0) / max(took, 1e-9):.1f}")
    console.print(runs)
    table = measure_table("Changes", [
        ("changes on the other side after the chaos run", f"{report.landed_after_chaos} / {report.changes}"),
        ("… after the next run", f"{report.landed_after_next} / {report.changes}"),
        ("changes made during the chaos run, landed after the next", f"{report.during_landed} / {report.during}"),
        ("doubled (two twins, or contacts appearing)", str(report.doubled)),
        ("Salesforce contacts without a Genesys twin", str(report.unlinked)),
        ("verdict", "[green]OK[/]" if report.ok else "[red]FAILED[/]"),
    ])
    console.print(table)
    marks = Table(title="Watermarks")
    for col in ("when", "Salesforce", "Genesys"):
        marks.add_column(col)
    for row in report.watermarks:
        marks.add_row(*(str(x) for x in row))
    console.print(marks)
    console.print(recovery_table("Faults during the chaos run (seconds)", report.recoveries, per_item=False))


# --- the command ------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["calls", "erasures", "sync", "all"], default="calls")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second offered")
    parser.add_argument("--erasures", type=int, default=20)
    parser.add_argument("--changes", type=int, default=10000, help="contact changes for the sync scenario")
    parser.add_argument("--kills", type=int, default=5, help="worker SIGKILLs per scenario")
    parser.add_argument("--restarts", type=int, default=1, help="dev-server restarts per scenario")
    parser.add_argument("--outage", type=float, default=0.0,
                        help="seconds the dev server stays down when restarted (default: started again at once)")
    parser.add_argument("--via-genesys", action="store_true",
                        help="calls: place them in the Genesys emulator (its trigger delivers them, once), then reconcile")
    parser.add_argument("--contacts", type=int, default=None,
                        help="contacts seeded (default 3000; sync: enough for changes + 40 with service consent, which the demo seed gives 95%%, each synced once first)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--var", type=Path, default=Path("var/chaos"))
    parser.add_argument("--keep", action="store_true", help="keep the var directory for inspection")
    args = parser.parse_args()
    quiet_sdk_logs()

    scenarios = ["calls", "erasures", "sync"] if args.scenario == "all" else [args.scenario]
    plan = ChaosPlan(kills=args.kills, restarts=args.restarts)
    failed = False
    for name in scenarios:
        var = args.var.resolve() / name
        shutil.rmtree(var, ignore_errors=True)
        var.mkdir(parents=True)
        contacts = args.contacts or (math.ceil((args.changes + 40) / 0.9) if name == "sync" else 3000)
        cs = ChaosStack(var, contacts=contacts, temporal_outage=args.outage)
        try:
            with console.status(f"[{name}] starting the stack…"):
                cs.start()
            with console.status(f"[{name}] running under chaos…"):
                if name == "calls":
                    report = await calls_scenario(cs, args.calls, args.rate, plan, seed=args.seed,
                                                  via_genesys=args.via_genesys)
                    print_calls(report, args.rate)
                    failed |= not report.ok
                elif name == "erasures":
                    report = await erasures_scenario(cs, args.erasures, plan, seed=args.seed)
                    print_erasures(report)
                    failed |= not report.ok
                else:
                    report = await sync_scenario(cs, args.changes, plan, seed=args.seed)
                    print_sync(report)
                    failed |= not report.ok
        finally:
            cs.stop()
            if not args.keep:
                shutil.rmtree(var, ignore_errors=True)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
