"""`callbridge report`: reports from the stores and Temporal."""

from __future__ import annotations

import typer

from callbridge.cli.output import console
from callbridge.core.settings import get_settings

app = typer.Typer(help="Reports from the stores and Temporal.", no_args_is_help=True)


@app.command("weekly")
def report_weekly(as_json: bool = typer.Option(False, "--json", help="The figures and checks as JSON.")) -> None:
    """The seed's weekly checks with this week's figures; exit status 1 if any falls short."""
    import asyncio
    import json
    from dataclasses import asdict

    from rich.table import Table

    from callbridge.ops import report
    from callbridge.store.db import get_engine
    from callbridge.core.temporal import connect

    settings = get_settings()

    async def run():
        try:
            client = await asyncio.wait_for(connect(settings), 5)
        except (asyncio.TimeoutError, RuntimeError, OSError):
            client = None  # the store's figures still stand; Temporal's show as unknown
        return await report.gather_figures(get_engine(settings.database_url), client)

    figures = asyncio.run(run())
    checks = report.weekly_checks(figures)
    if as_json:
        # Plain, unwrapped JSON: this output is for scripts.
        typer.echo(json.dumps({"figures": figures.to_json(), "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        marks = {"ok": "[green]✓ ok[/]", "short": "[red]✗ falls short[/]", "no_data": "[yellow]– no data[/]"}
        table = Table(title=f"Weekly checks, {figures.since:%Y-%m-%d %H:%M} → {figures.until:%Y-%m-%d %H:%M} UTC")
        for col in ("check", "target", "this week", "", "detail"):
            table.add_column(col)
        for c in checks:
            table.add_row(c.title, c.target, c.figure, marks[c.status], c.detail)
        console.print(table)
        for wf in figures.failed_workflows:
            console.print(f"  failed: {wf.workflow_type} {wf.workflow_id} ({wf.status})")
    raise typer.Exit(1 if report.falls_short(checks) else 0)
