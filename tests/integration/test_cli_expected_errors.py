"""Expected conditions reach a `callbridge` user as one line, never a traceback (issue #17)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from callbridge.domain.sync.config import load
from callbridge.domain.sync.models import ContactSyncInput
from workflows.contact_sync import WORKFLOW_ID, ContactSyncWorkflow


def callbridge(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callbridge.cli", *args], env={**os.environ, "COLUMNS": "200", **env},
                          capture_output=True, text=True, timeout=120, **kwargs)


def one_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_bad_settings_name_the_setting() -> None:
    line = one_line(callbridge("sync", "status", env={"CALLBRIDGE_DEFAULT_REGION": "usa"}))
    assert "bad settings" in line and "CALLBRIDGE_DEFAULT_REGION" in line


def test_temporal_unreachable_says_where_and_what_to_set() -> None:
    # Eight at once: the SDK's threads used to abort the interpreter at exit about one run in six.
    env = {**os.environ, "COLUMNS": "200", "CALLBRIDGE_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    runs = [subprocess.Popen([sys.executable, "-m", "callbridge.cli", "sync", "run"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    for proc in runs:
        stdout, stderr = proc.communicate(timeout=120)
        line = one_line(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
        assert "Temporal is not reachable at 127.0.0.1:1" in line and "CALLBRIDGE_TEMPORAL_ADDRESS" in line


@pytest.mark.integration
async def test_sync_run_while_a_run_is_going_says_since_when_and_waits_with_wait(stack, temporal_client) -> None:
    # A run no worker will pick up: it stays "running" until the test ends it.
    handle = await temporal_client.start_workflow(
        ContactSyncWorkflow.run, ContactSyncInput.from_config(load(None), mode="one_way", dry_run=True),
        id=WORKFLOW_ID, task_queue=f"nobody-polls-{uuid.uuid4().hex[:6]}")
    try:
        line = one_line(callbridge("sync", "run", env=stack.env))
        assert f"{WORKFLOW_ID} is already running (since" in line and "--wait" in line

        waiting = subprocess.Popen([sys.executable, "-m", "callbridge.cli", "sync", "run", "--wait"],
                                   env={**os.environ, "COLUMNS": "200", **stack.env},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while waiting.poll() is None and time.monotonic() < deadline:
            if "waiting for it" in (await _peek(waiting)):
                break
        assert waiting.poll() is None, waiting.communicate()
        await handle.terminate("test: the run the CLI waits for ends")
        # It ends with the run: its progress query (no worker answers one on this queue) would
        # have held it for Temporal's 30 s query timeout.
        out, err = waiting.communicate(timeout=20)
        out = getattr(waiting, "_peeked", "") + (out or "")
        done = subprocess.CompletedProcess(waiting.args, waiting.returncode, out, err)
        assert "is already running (since" in out
        assert "ended without a result" in one_line(done)
    finally:
        try:
            await handle.terminate("test cleanup")
        except Exception:  # noqa: BLE001 - already ended
            pass


async def _peek(proc: subprocess.Popen) -> str:
    """What the process printed so far on stdout (non-blocking)."""
    import asyncio
    import fcntl

    fd = proc.stdout.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    await asyncio.sleep(0.2)
    try:
        chunk = proc.stdout.read() or ""
    except (BlockingIOError, TypeError):
        chunk = ""
    proc._peeked = getattr(proc, "_peeked", "") + chunk  # type: ignore[attr-defined]
    return proc._peeked  # type: ignore[attr-defined]
