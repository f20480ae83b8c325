"""`callbridge genesys`: provisioning of the Genesys Cloud org."""

from __future__ import annotations

import typer

from callbridge.cli.output import console
from callbridge.core.settings import get_settings

app = typer.Typer(help="Provisioning of the Genesys Cloud org.", no_args_is_help=True)


@app.command("install")
def genesys_install(dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing.")) -> None:
    """Create or update the data actions integrations, credentials, data actions and trigger."""
    from callbridge.ops.genesys_install import InstallError, install, print_steps

    try:
        steps = install(get_settings(), dry_run=dry_run)
    except InstallError as exc:
        console.print(f"[red]callbridge genesys install: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    print_steps(console, steps, dry_run)
