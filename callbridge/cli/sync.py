"""`callbridge sync` and `callbridge conflicts`: contact sync between Salesforce and Genesys."""

from __future__ import annotations

import typer

from callbridge.cli.output import console
from callbridge.core.settings import get_settings

from pathlib import Path

app = typer.Typer(help="Contact sync between Salesforce and Genesys external contacts.", no_args_is_help=True)


def _sync_mapping(settings, config: Path | None, mode: str | None):
    """The mapping to run with; a bad file or mode is a clear error naming the option."""
    from callbridge.domain.sync import config as sync_config

    if mode not in (None, "one_way", "bidirectional"):
        raise typer.BadParameter("one_way or bidirectional", param_hint="--mode")
    try:
        return sync_config.load(config or (Path(settings.sync_config_path) if settings.sync_config_path else None))
    except sync_config.ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None


@app.command("contact")
def sync_contact(
    contact_id: str = typer.Argument(help="A Salesforce Contact id, or a Genesys external contact id."),
    mode: str = typer.Option(None, help="one_way or bidirectional (default: the mapping's)."),
    config: Path = typer.Option(None, help="Mapping YAML (default: CALLBRIDGE_SYNC_CONFIG_PATH or the built-in)."),
    wait: bool = typer.Option(False, help="If this pair is already syncing, wait for that run and show it."),
) -> None:
    """Sync one contact pair now (SyncPairWorkflow, id sync-pair-{id}) and print what it did."""
    import asyncio
    import re

    from callbridge.cli.errors import start_or_join
    from callbridge.domain.sync.models import PairKey, SyncPairInput
    from callbridge.core.temporal import connect
    from workflows.sync_pair import SyncPairWorkflow

    settings = get_settings()
    mapping = _sync_mapping(settings, config, mode)
    is_salesforce = re.fullmatch(r"003[A-Za-z0-9]{12}([A-Za-z0-9]{3})?", contact_id) is not None
    key = PairKey(salesforce_id=contact_id) if is_salesforce else PairKey(genesys_id=contact_id)

    async def run():
        client = await connect(settings)
        handle = await start_or_join(
            client, SyncPairWorkflow.run, SyncPairInput.from_config(key, mapping, mode),
            id=key.workflow_id, task_queue=settings.temporal_task_queue, wait=wait, say=console.print)
        return await handle.result()

    result = asyncio.run(run())
    console.print(f"{key.workflow_id}: {result.action}; to Genesys: {', '.join(result.written_to_genesys) or '-'}; "
                  f"to Salesforce: {', '.join(result.written_to_salesforce) or '-'}; "
                  f"conflicts: {', '.join(result.conflicts) or '-'}")


@app.command("run")
def sync_run(
    full: bool = typer.Option(False, help="Ignore the watermarks: consider every contact."),
    dry_run: bool = typer.Option(False, help="Only count what would be synced."),
    mode: str = typer.Option(None, help="one_way or bidirectional (default: the mapping's)."),
    config: Path = typer.Option(None, help="Mapping YAML (default: CALLBRIDGE_SYNC_CONFIG_PATH or the built-in)."),
    wait: bool = typer.Option(False, help="If a run is already going (the schedule's), wait for it and show its result."),
) -> None:
    """One contact-sync run now (ContactSyncWorkflow, id contact-sync): a progress bar, then its result table."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from temporalio.service import RPCError

    from callbridge.cli.errors import start_or_join
    from callbridge.domain.sync.models import ContactSyncInput
    from callbridge.core.temporal import connect
    from workflows.contact_sync import WORKFLOW_ID, ContactSyncWorkflow

    settings = get_settings()
    mapping = _sync_mapping(settings, config, mode)

    async def run(progress: Progress):
        client = await connect(settings)
        handle = await start_or_join(
            client, ContactSyncWorkflow.run, ContactSyncInput.from_config(mapping, mode=mode, full=full, dry_run=dry_run),
            id=WORKFLOW_ID, task_queue=settings.temporal_task_queue, wait=wait, say=progress.console.print)
        task = progress.add_task("collecting changes", total=None)
        result_task = asyncio.ensure_future(handle.result())
        while not result_task.done():
            # The run's own query: pairs settled so far (it follows continue-as-new). Raced with
            # the result: a query no worker answers is held for Temporal's 30 s query timeout,
            # even after the run has ended.
            query = asyncio.ensure_future(client.get_workflow_handle(WORKFLOW_ID).query(ContactSyncWorkflow.progress))
            await asyncio.wait([result_task, query], return_when=asyncio.FIRST_COMPLETED)
            if not query.done():
                query.cancel()
                break
            try:
                state = query.result()
                if state["total"]:
                    progress.update(task, description="settling pairs", total=state["total"], completed=state["done"])
            except RPCError:
                pass  # between runs of a continue-as-new, or not started yet
            await asyncio.wait([result_task], timeout=0.5)
        return result_task.result()

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        result = asyncio.run(run(progress))
    console.print(_sync_result_table(result, "Contact sync" + (" (dry run)" if dry_run else "")))
    if result.stopped:
        console.print(f"[yellow]Stopped early: {result.stopped}. The watermarks stay; the next run resumes.[/]")
    raise typer.Exit(1 if result.errors else 0)


def _sync_result_table(result, title: str):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    table.add_column("", justify="right")
    for name, value in result.model_dump().items():
        table.add_row(name.replace("_", " "), f"{value:.1f}" if isinstance(value, float) else str(value))
    return table


@app.command("status")
def sync_status(limit: int = typer.Option(10, help="How many recent runs.")) -> None:
    """The recent sync runs with their stats, and the health score (the seed's formula)."""
    from rich.table import Table

    from callbridge.store import sync_runs
    from callbridge.store.db import get_engine
    from callbridge.domain.sync.health import health_score

    runs = sync_runs.list_runs(get_engine(get_settings().database_url), limit=limit)
    table = Table(title="Contact sync runs")
    columns = ("started", "status", "path", "mode", "created", "updated", "deleted", "skipped", "conflicts",
               "errors", "seconds", "SF req", "GC req")
    for col in columns:
        table.add_column(col, justify="left" if col in ("started", "status", "path", "mode") else "right")
    for r in runs:
        st = r["stats"]
        table.add_row(r["started_at"].strftime("%Y-%m-%d %H:%M:%S"), r["status"], r["path"], r["mode"],
                      *(str(st.get(k, 0)) for k in ("created", "updated", "deleted", "skipped", "conflicts", "errors")),
                      f"{r['duration_seconds']:.1f}", str(st.get("salesforce_requests", 0)),
                      str(st.get("genesys_requests", 0)))
    console.print(table)
    done = [r for r in reversed(runs) if r["status"] != "running"]
    score = health_score([(r["stats"].get("errors", 0), r["duration_seconds"]) for r in done])
    console.print(f"Health score: {score} / 100 (over the last {min(len(done), 10)} runs)" if done
                  else "No sync run yet.")


@app.command("review")
def sync_review(resolve: str = typer.Option(None, help="Mark this case (its key) as dealt with.")) -> None:
    """Matches Callbridge would not guess, dangling links and delete conflicts, for a person to decide."""
    from rich.table import Table

    from callbridge.store import sync_runs
    from callbridge.store.db import get_engine

    engine = get_engine(get_settings().database_url)
    if resolve:
        if not sync_runs.resolve_review(engine, resolve):
            raise typer.BadParameter("no open case with that key", param_hint="--resolve")
        console.print(f"resolved: {resolve}")
        return
    table = Table(title="Contact sync: cases to review")
    for col in ("since", "reason", "Genesys contact", "Salesforce contact(s)", "detail", "key"):
        table.add_column(col)
    for case in sync_runs.list_review(engine):
        table.add_row(case["at"].strftime("%Y-%m-%d %H:%M"), case["reason"].replace("_", " "),
                      case["genesys_id"] or "-", ", ".join(case["salesforce_ids"]) or "-", case["detail"], case["key"])
    console.print(table)


conflicts_app = typer.Typer(help="Manual contact-sync conflicts waiting for a decision.", no_args_is_help=True)


@conflicts_app.command("list")
def conflicts_list() -> None:
    """Every pair waiting for a decision, with both values side by side."""
    import asyncio

    from rich.table import Table

    from callbridge.ops import conflicts
    from callbridge.core.temporal import connect

    async def run():
        return await conflicts.pending_conflicts(await connect(get_settings()))

    table = Table(title="Sync conflicts waiting for a decision")
    for col in ("pair", "field", "last agreed", "Salesforce", "Genesys"):
        table.add_column(col)
    for wid, items in sorted(asyncio.run(run()).items()):
        for c in items:
            table.add_row(wid, c.field, str(c.base), str(c.salesforce), str(c.genesys))
    console.print(table)


@conflicts_app.command("resolve")
def conflicts_resolve(
    workflow_id: str = typer.Argument(help="The pair's workflow id (sync-pair-…)."),
    field: str = typer.Argument(help="The Salesforce field name, as in the mapping."),
    winner: str = typer.Option(..., help="salesforce or genesys"),
) -> None:
    """Decide a conflict: the pair's workflow writes the winning value to the other side."""
    import asyncio

    from callbridge.ops import conflicts
    from callbridge.core.temporal import connect

    if winner not in ("salesforce", "genesys"):
        raise typer.BadParameter("salesforce or genesys", param_hint="--winner")

    async def run():
        await conflicts.resolve(await connect(get_settings()), workflow_id, field, winner)

    try:
        asyncio.run(run())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WORKFLOW_ID") from None
    console.print(f"{workflow_id}: {field} → {winner}")
