"""`callbridge-dev`: the development stack's commands (the demo, the emulators, simulated calls).

Kept out of the `callbridge` command: production images run the product, and the product never
imports the development stack (an import-linter contract, pyproject.toml).
"""

from __future__ import annotations

import os
import sys
import time

import typer
from rich.console import Console

from callbridge.cli.errors import run
from callbridge.core.settings import get_settings

app = typer.Typer(help="Callbridge's development stack: the demo, the emulators, simulated calls.",
                  no_args_is_help=True)
emulate = typer.Typer(help="Run an embedded emulator (the demo's and the tests' default).", no_args_is_help=True)
calls = typer.Typer(help="Simulated calls through the Genesys emulator.", no_args_is_help=True)
app.add_typer(emulate, name="emulate")
app.add_typer(calls, name="calls")
console = Console(highlight=False)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command()
def demo(
    contacts: int = typer.Option(3000, help="Contacts in the demo org (first run only)."),
    interval: float = typer.Option(4.0, help="Seconds between simulated calls."),
    unknown_share: float = typer.Option(0.1, help="Share of calls from numbers Salesforce doesn't know."),
) -> None:
    """Start the whole stack on the embedded default and place simulated calls."""
    from devstack.demo import run_demo
    from callbridge.core.secrets_policy import DEMO_ENV

    os.environ[DEMO_ENV] = "1"  # the public demo secrets are allowed here, and only here (and tests)
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

    from devstack.call_simulation import known_callers, place_call, unknown_caller

    settings = get_settings()
    callers = known_callers(settings)
    rng = random.Random()
    for _ in track(range(count), description="Placing calls"):
        caller = unknown_caller(rng) if rng.random() < unknown_share or not callers else rng.choice(callers)
        call = place_call(settings.genesys_api_url, caller)
        console.print(f"call-log-{call['conversationId']}")
        time.sleep(1.0 / rate)


def main() -> None:
    """Expected conditions are one line on stderr (exit status 2), as with `callbridge`."""
    run(app, "callbridge-dev")


if __name__ == "__main__":
    main()
