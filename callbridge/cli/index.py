"""`callbridge index`: the screen pop's caller-ID index."""

from __future__ import annotations

import typer

from callbridge.cli.output import console
from callbridge.core.settings import get_settings

import time

app = typer.Typer(help="The screen pop's caller-ID index.", no_args_is_help=True)


@app.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the caller-ID index from every Salesforce contact, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from activities.caller_index import rebuild_index
    from callbridge.clients.salesforce.connection import SalesforceConnection

    settings = get_settings()
    sf = SalesforceConnection(settings)
    total = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    started = time.perf_counter()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("Indexing contacts", total=total)
        done = rebuild_index(sf, settings, on_page=lambda n: progress.advance(task, n))
    console.print(f"Indexed {done} contacts in {time.perf_counter() - started:.1f} s.")


@app.command("lookup")
def index_lookup(number: str) -> None:
    """Look a number up in the index (prints contact ids only)."""
    from callbridge.domain.phone import to_e164
    from callbridge.store import caller_index
    from callbridge.store.db import get_engine

    settings = get_settings()
    e164 = to_e164(number, settings.default_region)
    if e164 is None:
        raise typer.BadParameter("not a phone number", param_hint="NUMBER")
    for hit in caller_index.lookup(get_engine(settings.database_url), e164):
        console.print(f"{hit['contact_id']}  {hit['phone_field']}  own line: {hit['own_line']}")
