"""The `callbridge` command: one module per command group, put together here."""

from __future__ import annotations

import typer

from callbridge.cli import doctor, genesys, index, privacy, processes, report, sync
from callbridge.cli.errors import run

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
    run(app, "callbridge")
