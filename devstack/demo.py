"""`callbridge-dev demo`: the whole product on the embedded default, in one terminal."""

from __future__ import annotations

import asyncio
import random
import signal

import httpx
from rich.console import Console

from devstack.call_simulation import known_callers, mask_number, place_call, unknown_caller
from callbridge.ops.genesys_install import InstallError
from callbridge.core.settings import Settings
from devstack.stack import LocalStack, write_env_file
from callbridge.core.temporal import connect
from workflows.call_logging import CallLoggingWorkflow, workflow_id

console = Console(highlight=False)


def demo_settings(settings: Settings) -> Settings:
    """The settings the demo runs with, written to demo.env: the URL the data actions call, the
    CA of the Salesforce emulator the demo starts under its var dir, and the default SQLite state
    store in that var dir too (the defaults' paths are var/'s, wrong for any other CALLBRIDGE_VAR_DIR)."""
    update = {"public_url": settings.public_base_url,
              "salesforce_ca_file": settings.var_dir / "salesforce" / "ca.pem"}
    if settings.database_url == Settings.model_fields["database_url"].default:
        update["database_url"] = f"sqlite:///{settings.var_dir / 'callbridge.db'}"
    return settings.model_copy(update=update)


def run_demo(settings: Settings, contacts: int, interval: float, unknown_share: float) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(settings)
    stack = LocalStack(settings)
    try:
        with console.status("Starting Temporal, the emulators, the worker and the starter…"):
            stack.start_all(contacts)
            stack.connect_flow_to_lookup()
        with console.status("Provisioning the Genesys emulator: `callbridge genesys install`, archy publish…"):
            steps = stack.provision_genesys()
            stack.stop_relay_webhook()
        trigger = next(s for s in steps if s.kind == "trigger")
        console.print(f"Genesys provisioned: {len(steps)} steps; trigger {trigger.name!r} {trigger.detail}; "
                      "calls end through trigger -> workflow -> data action.", soft_wrap=True)
        write_env_file(settings, settings.var_dir / "demo.env")
        agent = demo_agent(settings)
        _print_where_to_look(settings, agent)
        asyncio.run(_place_calls(settings, interval, unknown_share, agent))
    except KeyboardInterrupt:
        pass
    except InstallError as exc:
        console.print(f"[red]callbridge genesys install: {exc}[/red]", soft_wrap=True)
    finally:
        with console.status("Stopping…"):
            stack.stop()
        console.print(f"Stopped. Data kept under {settings.var_dir}/; `make demo` again reuses it.", soft_wrap=True)


def demo_agent(settings: Settings) -> dict:
    """The agent every demo call rings, so one desktop page shows every screen pop."""
    login = httpx.post(f"{settings.genesys_login_url}/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(settings.genesys_client_id, settings.genesys_client_secret.get_secret_value()))
    login.raise_for_status()
    users = httpx.get(f"{settings.genesys_api_url}/api/v2/users", params={"pageSize": 1},
                      headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    users.raise_for_status()
    return users.json()["entities"][0]


def where_to_look(s: Settings, agent: dict) -> list[tuple[str, str]]:
    """The banner's entries: what it is, then the link or path alone on its line."""
    starter = f"http://{s.starter_host}:{s.starter_port}"
    return [
        ("Temporal UI (each call's workflow)", f"{s.temporal_ui_url}/namespaces/{s.temporal_namespace}/workflows"),
        (f"Salesforce emulator, newest Tasks (TLS from the local CA {s.salesforce_ca_file})",
         f"{s.salesforce_instance_url}/_emulator/"),
        ("Starter API", f"{starter}/docs"),
        (f"Agent desktop (screen pop; sign in as {agent.get('username', agent['id'])}, password callbridge-agent "
         "in the Genesys emulator; every call rings this agent)", f"{starter}/desktop/"),
        (f"Admin UI (sync runs, conflicts, erasures, weekly checks; user {s.admin_username}, password in demo.env)",
         f"{starter}/admin/"),
        (f"Change listener (`callbridge listen`: Salesforce edits reach the screen pop and Genesys in seconds "
         f"through Change Data Capture at {s.salesforce_pubsub_endpoint}), its log",
         str(s.var_dir / "logs" / "listener.log")),
        ("Settings for driving it by hand", str(s.var_dir / "demo.env")),
        ("Logs", f"{s.var_dir / 'logs'}/"),
    ]


def _print_where_to_look(s: Settings, agent: dict) -> None:
    console.print("[bold]Callbridge demo is running.[/bold] Where to look:")
    for label, link in where_to_look(s, agent):
        console.print(f"  {label}:")
        # soft_wrap: a terminal narrower than the link wraps it itself, so it stays one clickable link.
        console.print(f"    {link}", soft_wrap=True, markup=False)
    console.print("Placing a simulated call every few seconds. Ctrl-C stops everything.\n")


async def _place_calls(settings: Settings, interval: float, unknown_share: float, agent: dict) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    client = await connect(settings)
    sync = asyncio.create_task(_contact_sync(settings, client))
    callers = await asyncio.to_thread(known_callers, settings)
    rng = random.Random()
    pending: set[asyncio.Task] = set()
    while not stop.is_set():
        caller = unknown_caller(rng) if rng.random() < unknown_share or not callers else rng.choice(callers)
        try:
            # wait=True: the simulator answers once the call's customer.end ran the trigger's
            # workflow (the call-ended data action reached the starter, or failed).
            call = await asyncio.to_thread(place_call, settings.genesys_api_url, caller, wait=True,
                                           agentId=agent["id"])
        except httpx.HTTPError as exc:
            console.print(f"[red]call simulator unavailable: {exc}[/red]")
        else:
            task = asyncio.create_task(_report(settings, client, call["conversationId"], caller.e164,
                                               _trigger_failure(call)))
            pending.add(task)
            task.add_done_callback(pending.discard)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
    for task in pending:
        task.cancel()
    sync.cancel()


async def _contact_sync(settings: Settings, client) -> None:
    """One contact-sync run next to the calls: the first is the initial load (bulk path)."""
    from pathlib import Path

    from temporalio.common import WorkflowIDConflictPolicy

    from callbridge.domain.sync.config import load
    from callbridge.domain.sync.models import ContactSyncInput
    from workflows.contact_sync import WORKFLOW_ID, ContactSyncWorkflow

    mapping = load(Path(settings.sync_config_path) if settings.sync_config_path else None)
    try:
        handle = await client.start_workflow(
            ContactSyncWorkflow.run, ContactSyncInput.from_config(mapping), id=WORKFLOW_ID,
            task_queue=settings.temporal_task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        result = await handle.result()
    except Exception as exc:  # shown, never fatal for the demo
        console.print(f"[red]contact sync: {type(exc).__name__}: {exc}[/red]")
        return
    console.print(f"⇄  contact sync ({result.path.replace('_', '-')} path): {result.created} created, "
                  f"{result.updated} updated, {result.deleted} deleted in Genesys in {result.duration_seconds:.1f} s "
                  f"— `callbridge sync status`", soft_wrap=True)


def _trigger_failure(call: dict) -> str | None:
    """Why the call's trigger didn't hand it to the starter, or None when it did."""
    invocations = (call.get("delivery") or {}).get("triggers") or []
    if not invocations:
        return "no trigger ran (is the trigger installed and enabled?)"
    for invocation in invocations:
        steps = invocation.get("steps") or []
        if invocation.get("state") == "completed" and steps and steps[-1].get("output") == "success":
            return None
    step = (invocations[0].get("steps") or [{}])[-1]
    return (f"the trigger's data action got {step.get('status') or step.get('error') or invocations[0].get('error')}"
            " (not retried; the reconciliation will log the call)")


async def _report(settings: Settings, client, conversation: str, e164: str, trigger_failure: str | None = None) -> None:
    wid = workflow_id(conversation)
    ui = f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{wid}"
    console.print(f"☎  call from {mask_number(e164)} ended → {ui}", soft_wrap=True)
    if trigger_failure:
        console.print(f"   [red]✗ {trigger_failure}[/red]", soft_wrap=True)
        return
    try:
        result = await asyncio.wait_for(client.get_workflow_handle_for(CallLoggingWorkflow.run, wid).result(), timeout=120)
    except Exception as exc:  # shown, never fatal for the demo
        console.print(f"   [red]✗ {wid}: {type(exc).__name__}: {exc}[/red]", soft_wrap=True)
        return
    if result.contact_id:
        where = f"{settings.salesforce_instance_url}/lightning/r/Contact/{result.contact_id}/view"
    elif result.account_id:
        where = f"{settings.salesforce_instance_url}/lightning/r/Account/{result.account_id}/view"
    else:
        where = "(unknown caller, not logged: policy skip)"
    console.print(f"   [green]✓ {result.outcome}[/green] Task {result.task_id or '-'} → {where}", soft_wrap=True)
