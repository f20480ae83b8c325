"""The `callbridge` command."""

from __future__ import annotations

import os
import sys
import time

import typer
from rich.console import Console

from callbridge.settings import get_settings

app = typer.Typer(help="Callbridge: Genesys Cloud <-> Salesforce on Temporal.", no_args_is_help=True)
emulate = typer.Typer(help="Run an embedded emulator (the demo's and the tests' default).", no_args_is_help=True)
calls = typer.Typer(help="Simulated calls through the Genesys emulator.", no_args_is_help=True)
app.add_typer(emulate, name="emulate")
app.add_typer(calls, name="calls")
console = Console(highlight=False)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command()
def worker() -> None:
    """Run the worker: every workflow and activity on the task queue."""
    import worker as worker_module

    worker_module.main()


@app.command()
def starter() -> None:
    """Run the webhook starter (FastAPI) on CALLBRIDGE_STARTER_HOST:PORT."""
    from starter.app import main

    main()


@app.command()
def demo(
    contacts: int = typer.Option(3000, help="Contacts in the demo org (first run only)."),
    interval: float = typer.Option(4.0, help="Seconds between simulated calls."),
    unknown_share: float = typer.Option(0.1, help="Share of calls from numbers Salesforce doesn't know."),
) -> None:
    """Start the whole stack on the embedded default and place simulated calls."""
    from callbridge.demo import run_demo

    run_demo(get_settings(), contacts, interval, unknown_share)


@emulate.command("salesforce", context_settings=_PASS_THROUGH)
def emulate_salesforce(ctx: typer.Context) -> None:
    """The Salesforce emulator: `serve` or `seed` (see --help)."""
    os.execv(sys.executable, [sys.executable, "-m", "emulators.salesforce", *ctx.args])


@emulate.command("genesys", context_settings=_PASS_THROUGH)
def emulate_genesys(ctx: typer.Context) -> None:
    """The Genesys Cloud emulator: `serve` (see --help)."""
    os.execv(sys.executable, [sys.executable, "-m", "emulators.genesys", *ctx.args])


@calls.command("simulate")
def simulate(
    count: int = typer.Option(10, help="How many calls."),
    rate: float = typer.Option(1.0, help="Calls per second."),
    unknown_share: float = typer.Option(0.0, help="Share of calls from unknown numbers."),
) -> None:
    """Place simulated calls from known (and optionally unknown) callers."""
    import random

    from rich.progress import track

    from callbridge.call_simulation import known_callers, place_call, unknown_caller

    settings = get_settings()
    callers = known_callers(settings)
    rng = random.Random()
    for _ in track(range(count), description="Placing calls"):
        caller = unknown_caller(rng) if rng.random() < unknown_share or not callers else rng.choice(callers)
        call = place_call(settings.genesys_api_url, caller)
        console.print(f"call-log-{call['conversationId']}")
        time.sleep(1.0 / rate)


if __name__ == "__main__":
    app()
