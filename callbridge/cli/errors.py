"""Expected conditions a `callbridge` command meets, as one line for the user instead of a traceback.

An org or Temporal unreachable, bad settings, a workflow already running: each says what is
wrong and what to do. Messages name services and settings, never a URL's query or a payload
(they could hold a phone number or an email).
"""

from __future__ import annotations

from typing import Callable

from pydantic import ValidationError


def _settings_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        name = "_".join(str(part) for part in err["loc"]).upper()
        problems.append(f"CALLBRIDGE_{name}: {err['msg']}" if name else err["msg"])
    return "bad settings: " + "; ".join(problems) + " (environment or .env)"


def _temporal_unreachable(settings_address: str) -> str:
    return (f"Temporal is not reachable at {settings_address}: start it (`make demo` runs one) "
            "or set CALLBRIDGE_TEMPORAL_ADDRESS")


def explain(exc: BaseException, temporal_address: Callable[[], str]) -> str | None:
    """One line for an expected condition; None for a bug (its traceback is worth seeing)."""
    import httpx
    import requests
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, AlreadyRunning):
        from datetime import datetime, timezone

        minutes = int((datetime.now(timezone.utc) - exc.since).total_seconds() // 60)
        return (f"{exc.workflow_id} is already running (since {exc.since:%Y-%m-%d %H:%M:%S} UTC, {minutes} min ago): "
                "add --wait to wait for it and see its result")
    from temporalio.client import WorkflowFailureError

    if isinstance(exc, WorkflowFailureError):
        cause = exc.cause
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else "no result"
        return f"the workflow ended without a result ({detail}); its history is in the Temporal UI"
    from callbridge.core.temporal import TemporalSettingsError

    if isinstance(exc, TemporalSettingsError):
        return f"bad settings: {exc}"
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return _settings_error(exc)
    if isinstance(exc, WorkflowAlreadyStartedError):
        return (f"workflow {exc.workflow_id} is already running; wait for it to finish "
                "(see it in the Temporal UI) and try again")
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
        return _temporal_unreachable(temporal_address())
    if isinstance(exc, RPCError) and exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return _temporal_unreachable(temporal_address())
    if isinstance(exc, httpx.TransportError):
        host = exc.request.url.host if exc._request is not None else "a service"
        return f"cannot reach {host} ({type(exc).__name__}): check the service is up and its URL setting"
    if isinstance(exc, requests.ConnectionError):
        host = getattr(getattr(exc, "request", None), "url", None)
        where = requests.utils.urlparse(host).hostname if host else "Salesforce"
        return f"cannot reach {where} ({type(exc).__name__}): check the service is up and its URL setting"
    try:
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return None
    if isinstance(exc, OperationalError):
        return "the state store is unavailable (CALLBRIDGE_DATABASE_URL): " + type(exc.orig).__name__
    return None


class AlreadyRunning(Exception):
    """A command's workflow is already going and the user did not ask to wait for it."""

    def __init__(self, workflow_id: str, since) -> None:  # type: ignore[no-untyped-def]
        super().__init__(workflow_id)
        self.workflow_id = workflow_id
        self.since = since


async def start_or_join(client, workflow, arg, *, id: str, task_queue: str, wait: bool, say):  # type: ignore[no-untyped-def]
    """Start `workflow`, or with `wait` join the run already going under `id` (else AlreadyRunning)."""
    from temporalio.exceptions import WorkflowAlreadyStartedError

    try:
        return await client.start_workflow(workflow, arg, id=id, task_queue=task_queue)
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(id, result_type=None)
        since = (await handle.describe()).start_time
        if not wait:
            raise AlreadyRunning(id, since) from None
        say(f"{id} is already running (since {since:%Y-%m-%d %H:%M:%S} UTC): waiting for it")
        return client.get_workflow_handle_for(workflow, id)


def run(app, name: str) -> None:
    """Run a Typer app: an expected condition is one line on stderr and exit status 2; a bug keeps
    its traceback."""
    import os
    import sys

    from rich.console import Console

    from callbridge.core.settings import get_settings

    try:
        app()
    except Exception as exc:  # noqa: BLE001 - sorted into expected (one line) and bugs (re-raised)
        message = explain(exc, lambda: get_settings().temporal_address)
        if message is None:
            raise
        Console(stderr=True, highlight=False).print(f"[red]{name}: {message}[/red]", soft_wrap=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: after a failed connect the Temporal SDK's Rust threads may still call
        # back into Python while the interpreter finalizes, which aborts it ("PyGILState_Release
        # … finalizing", exit 134, a core dump) about one run in six. Nothing is left to clean up.
        os._exit(2)
