"""The `callbridge` command: one module per command group, put together here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from callbridge.cli import doctor, genesys, index, privacy, processes, report, sync
from callbridge.core.settings import get_settings

app = typer.Typer(help="Callbridge: Genesys Cloud <-> Salesforce on Temporal.", no_args_is_help=True)
app.command("worker")(processes.worker)
app.command("starter")(processes.starter)
app.command("listen")(processes.listen)
app.command("doctor")(doctor.doctor)
app.add_typer(genesys.app, name="genesys")
app.add_typer(index.app, name="index")
for _name, _group in privacy.GROUPS.items():
    app.add_typer(_group, name=_name)
app.add_typer(sync.app, name="sync")
app.add_typer(sync.conflicts_app, name="conflicts")
app.add_typer(report.app, name="report")


def main() -> None:
    """The `callbridge` command: expected conditions are one line on stderr, exit status 2."""
    from callbridge.cli.errors import explain

    try:
        app()
    except Exception as exc:  # noqa: BLE001 - sorted into expected (one line) and bugs (re-raised)
        message = explain(exc, lambda: get_settings().temporal_address)
        if message is None:
            raise
        Console(stderr=True, highlight=False).print(f"[red]callbridge: {message}[/red]", soft_wrap=True)
        sys.exit(2)
