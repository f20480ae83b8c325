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
index = typer.Typer(help="The screen pop's caller-ID index.", no_args_is_help=True)
app.add_typer(calls, name="calls")
app.add_typer(index, name="index")
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


@index.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the caller-ID index from every Salesforce contact, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from activities.caller_index import rebuild_index
    from activities.salesforce_connection import SalesforceConnection

    settings = get_settings()
    sf = SalesforceConnection(settings)
    total = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    started = time.perf_counter()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("Indexing contacts", total=total)
        done = rebuild_index(sf, settings, on_page=lambda n: progress.advance(task, n))
    console.print(f"Indexed {done} contacts in {time.perf_counter() - started:.1f} s.")


@index.command("lookup")
def index_lookup(number: str) -> None:
    """Look a number up in the index (prints contact ids only)."""
    from callbridge.phone import to_e164
    from callbridge.store import caller_index
    from callbridge.store.db import get_engine

    settings = get_settings()
    e164 = to_e164(number, settings.default_region)
    if e164 is None:
        raise typer.BadParameter("not a phone number", param_hint="NUMBER")
    for hit in caller_index.lookup(get_engine(settings.database_url), e164):
        console.print(f"{hit['contact_id']}  {hit['phone_field']}  own line: {hit['own_line']}")


if __name__ == "__main__":
    app()
