"""The `callbridge` command."""

from __future__ import annotations

import os
from pathlib import Path
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
genesys_app = typer.Typer(help="Provisioning of the Genesys Cloud org.", no_args_is_help=True)
app.add_typer(genesys_app, name="genesys")
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
def listen() -> None:
    """Act on Salesforce changes in seconds: Change Data Capture through the Pub/Sub API (until Ctrl-C)."""
    import asyncio

    from callbridge.cdc.listener import TOPICS, listen as run_listener
    from callbridge.logs import configure_logging
    from callbridge.secrets_policy import refuse_demo_secrets

    settings = get_settings()
    refuse_demo_secrets(settings)  # it holds the same Salesforce and Genesys secrets as the worker
    configure_logging(settings.log_level)
    console.print(f"listening to {', '.join(TOPICS)} at {settings.salesforce_pubsub_endpoint}")
    try:
        asyncio.run(run_listener(settings))
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    contacts: int = typer.Option(3000, help="Contacts in the demo org (first run only)."),
    interval: float = typer.Option(4.0, help="Seconds between simulated calls."),
    unknown_share: float = typer.Option(0.1, help="Share of calls from numbers Salesforce doesn't know."),
) -> None:
    """Start the whole stack on the embedded default and place simulated calls."""
    from callbridge.demo import run_demo
    from callbridge.secrets_policy import DEMO_ENV

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

    from callbridge.call_simulation import known_callers, place_call, unknown_caller

    settings = get_settings()
    callers = known_callers(settings)
    rng = random.Random()
    for _ in track(range(count), description="Placing calls"):
        caller = unknown_caller(rng) if rng.random() < unknown_share or not callers else rng.choice(callers)
        call = place_call(settings.genesys_api_url, caller)
        console.print(f"call-log-{call['conversationId']}")
        time.sleep(1.0 / rate)


@genesys_app.command("install")
def genesys_install(dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing.")) -> None:
    """Create or update the data actions integrations, credentials, data actions and trigger."""
    from callbridge.genesys_install import InstallError, install, print_steps

    try:
        steps = install(get_settings(), dry_run=dry_run)
    except InstallError as exc:
        console.print(f"[red]callbridge genesys install: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    print_steps(console, steps, dry_run)


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



# --- Privacy (docs/privacy.md) ------------------------------------------------------------------

gdpr = typer.Typer(help="GDPR erasure requests.", no_args_is_help=True)
consent = typer.Typer(help="Consent records (Contact_Consent__c).", no_args_is_help=True)
export = typer.Typer(help="Exports with PII masked.", no_args_is_help=True)
breach = typer.Typer(help="Breach response: what a compromised component held.", no_args_is_help=True)
retention = typer.Typer(help="Recording retention and legal holds.", no_args_is_help=True)
for _sub, _name in ((gdpr, "gdpr"), (consent, "consent"), (export, "export"), (breach, "breach"),
                    (retention, "retention")):
    app.add_typer(_sub, name=_name)


def _print_json(data) -> None:
    import json

    console.print_json(json.dumps(data, default=str))


@gdpr.command("erase")
def gdpr_erase(
    email: str = typer.Option(None, help="The person's email."),
    phone: str = typer.Option(None, help="The person's phone number."),
    contact_id: str = typer.Option(None, "--contact-id", help="Their Salesforce contact id."),
    wait: bool = typer.Option(False, help="Wait for the certificate."),
) -> None:
    """Start an erasure; prints the request id (random, never derived from the person)."""
    import asyncio

    from callbridge.privacy_requests import ErasureRequestError, start_erasure
    from callbridge.temporal import connect
    from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

    settings = get_settings()

    async def run():
        client = await connect(settings)
        try:
            rid = await start_erasure(client, settings, email=email, phone=phone, contact_id=contact_id)
        except ErasureRequestError as exc:
            raise typer.BadParameter(str(exc)) from None
        console.print(rid)
        if wait:
            result = await client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(rid)).result()
            _print_json(result.model_dump(mode="json"))
            if result.status != "completed":
                raise typer.Exit(1)

    asyncio.run(run())


@gdpr.command("status")
def gdpr_status(request_id: str) -> None:
    """An erasure's status, progress and (once done) its certificate."""
    import asyncio

    from callbridge.privacy_requests import erasure_status
    from callbridge.temporal import connect

    settings = get_settings()

    async def run():
        status = await erasure_status(await connect(settings), settings, request_id)
        if status is None:
            console.print("no such erasure request")
            raise typer.Exit(1)
        _print_json(status)

    asyncio.run(run())


@consent.command("record")
def consent_record(
    contact_id: str = typer.Option(..., "--contact-id"),
    consent_type: str = typer.Option(..., "--type", help="Call Recording, Marketing or Data Processing."),
    channel: str = typer.Option(..., help="Phone, Email, SMS or Web."),
    version: str = typer.Option(..., help="The consent text's version."),
) -> None:
    """Record a consent on Contact_Consent__c; prints its id."""
    from activities.privacy import record_consent
    from activities.salesforce_connection import SalesforceConnection

    settings = get_settings()
    console.print(record_consent(SalesforceConnection(settings), settings, contact_id, consent_type, channel, version))


@consent.command("withdraw")
def consent_withdraw(
    contact_id: str = typer.Option(..., "--contact-id"),
    consent_type: str = typer.Option(None, "--type", help="Only this type (default: all)."),
) -> None:
    """Mark the contact's consents withdrawn."""
    from activities.privacy import withdraw_consent
    from activities.salesforce_connection import SalesforceConnection

    settings = get_settings()
    console.print(f"{withdraw_consent(SalesforceConnection(settings), settings, contact_id, consent_type)} withdrawn")


@export.command("contacts")
def export_contacts(
    out: str = typer.Option(..., help="CSV file to write."),
    masked: bool = typer.Option(False, "--masked", help="Mask PII (required: unmasked exports aren't offered)."),
) -> None:
    """Every contact as CSV, names/email masked, phones to their last 4 digits, a keyed email hash."""
    import csv

    from activities.salesforce_query import query_pages
    from activities.salesforce_connection import SalesforceConnection
    from callbridge.privacy import EXPORT_COLUMNS, masked_contact
    from callbridge.store import privacy as privacy_store
    from callbridge.store.db import get_engine

    if not masked:
        raise typer.BadParameter("only --masked exports are offered", param_hint="--masked")
    settings = get_settings()
    key = settings.privacy_hash_key.get_secret_value()
    soql = ("SELECT Id, AccountId, FirstName, LastName, Email, Phone, MobilePhone, HomePhone, OtherPhone, "
            "MailingCountry, CreatedDate FROM Contact ORDER BY Id")
    rows = 0
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for page in query_pages(SalesforceConnection(settings), soql):
            writer.writerows(masked_contact(r, key) for r in page)
            rows += len(page)
    privacy_store.audit(get_engine(settings.database_url), "export", "masked_contacts", ["masked_contact"])
    console.print(f"{rows} contacts written to {out}")


@breach.command("scope")
def breach_scope(
    since: str = typer.Option(..., help="ISO date or datetime the compromise began."),
    component: str = typer.Option(None, help="The compromised component (audit log component)."),
) -> None:
    """How many people and which data types a component handled since a date (72-hour notification).

    Components: call_logging, sync, consent, erasure, export, retention."""
    from datetime import datetime, timezone

    from callbridge.privacy_audit import breach_scope as scope
    from callbridge.store.db import get_engine

    settings = get_settings()
    start = datetime.fromisoformat(since)
    start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    found = scope(get_engine(settings.database_url), settings.privacy_hash_key.get_secret_value(), start, component)
    _print_json({"since": start.isoformat(), "component": component, **found})


@retention.command("hold")
def retention_hold(conversation_id: str, reason: str = typer.Option("", help="Why (a case number)."),
                   release: bool = typer.Option(False, help="Lift the hold.")) -> None:
    """Put a conversation's recordings on legal hold (or release it)."""
    from callbridge.store import privacy as privacy_store
    from callbridge.store.db import get_engine

    privacy_store.set_legal_hold(get_engine(get_settings().database_url), conversation_id, reason, active=not release)
    console.print("released" if release else "on hold")



@app.command()
def doctor() -> None:
    """Check connectivity, credentials, custom fields and permissions; say what to fix."""
    from callbridge.doctor import run_checks

    checks = run_checks(get_settings())
    for c in checks:
        mark = "[green]OK  [/green]" if c.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {c.system:<10} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            console.print(f"     fix: {c.fix}")
    failed = sum(not c.ok for c in checks)
    console.print(f"{len(checks) - failed} passed, {failed} failed.")
    raise typer.Exit(1 if failed else 0)


sync_app = typer.Typer(help="Contact sync between Salesforce and Genesys external contacts.", no_args_is_help=True)
app.add_typer(sync_app, name="sync")


def _sync_mapping(settings, config: Path | None, mode: str | None):
    """The mapping to run with; a bad file or mode is a clear error naming the option."""
    from callbridge.sync import config as sync_config

    if mode not in (None, "one_way", "bidirectional"):
        raise typer.BadParameter("one_way or bidirectional", param_hint="--mode")
    try:
        return sync_config.load(config or (Path(settings.sync_config_path) if settings.sync_config_path else None))
    except sync_config.ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None


@sync_app.command("contact")
def sync_contact(
    contact_id: str = typer.Argument(help="A Salesforce Contact id, or a Genesys external contact id."),
    mode: str = typer.Option(None, help="one_way or bidirectional (default: the mapping's)."),
    config: Path = typer.Option(None, help="Mapping YAML (default: CALLBRIDGE_SYNC_CONFIG_PATH or the built-in)."),
    wait: bool = typer.Option(False, help="If this pair is already syncing, wait for that run and show it."),
) -> None:
    """Sync one contact pair now (SyncPairWorkflow, id sync-pair-{id}) and print what it did."""
    import asyncio
    import re

    from callbridge.cli_errors import start_or_join
    from callbridge.sync.models import PairKey, SyncPairInput
    from callbridge.temporal import connect
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


@sync_app.command("run")
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

    from callbridge.cli_errors import start_or_join
    from callbridge.sync.models import ContactSyncInput
    from callbridge.temporal import connect
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
            try:
                # The run's own query: pairs settled so far (it follows continue-as-new).
                state = await client.get_workflow_handle(WORKFLOW_ID).query(ContactSyncWorkflow.progress)
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


@sync_app.command("status")
def sync_status(limit: int = typer.Option(10, help="How many recent runs.")) -> None:
    """The recent sync runs with their stats, and the health score (the seed's formula)."""
    from rich.table import Table

    from callbridge.store import sync_runs
    from callbridge.store.db import get_engine
    from callbridge.sync.health import health_score

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


@sync_app.command("review")
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
app.add_typer(conflicts_app, name="conflicts")


@conflicts_app.command("list")
def conflicts_list() -> None:
    """Every pair waiting for a decision, with both values side by side."""
    import asyncio

    from rich.table import Table

    from callbridge import conflicts
    from callbridge.temporal import connect

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

    from callbridge import conflicts
    from callbridge.temporal import connect

    if winner not in ("salesforce", "genesys"):
        raise typer.BadParameter("salesforce or genesys", param_hint="--winner")

    async def run():
        await conflicts.resolve(await connect(get_settings()), workflow_id, field, winner)

    try:
        asyncio.run(run())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="WORKFLOW_ID") from None
    console.print(f"{workflow_id}: {field} → {winner}")


report_app = typer.Typer(help="Reports from the stores and Temporal.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("weekly")
def report_weekly(as_json: bool = typer.Option(False, "--json", help="The figures and checks as JSON.")) -> None:
    """The seed's weekly checks with this week's figures; exit status 1 if any falls short."""
    import asyncio
    import json
    from dataclasses import asdict

    from rich.table import Table

    from callbridge import report
    from callbridge.store.db import get_engine
    from callbridge.temporal import connect

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


def main() -> None:
    """The `callbridge` command: expected conditions are one line on stderr, exit status 2."""
    from callbridge.cli_errors import explain

    try:
        app()
    except Exception as exc:  # noqa: BLE001 - sorted into expected (one line) and bugs (re-raised)
        message = explain(exc, lambda: get_settings().temporal_address)
        if message is None:
            raise
        Console(stderr=True, highlight=False).print(f"[red]callbridge: {message}[/red]", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
