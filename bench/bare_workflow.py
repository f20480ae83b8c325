"""The yardstick: a workflow with one trivial activity, on the same dev server."""

from __future__ import annotations

import asyncio
import compileall
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker


@activity.defn
async def bare_activity(n: int) -> int:
    return n


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(bare_activity, n, start_to_close_timeout=timedelta(seconds=30))


async def bare_rate(client, count: int, concurrency: int) -> float:
    """Bare workflows completed per second, `concurrency` in flight, on a worker in this process."""
    # Its .pyc written first, as the dev stack does for the worker's workflows (devstack/stack.py):
    # the sandbox imports this module afresh for every run, and neither side should pay a compile.
    compileall.compile_file(__file__, quiet=1)
    async with Worker(client, task_queue="bench-bare", workflows=[BareWorkflow], activities=[bare_activity]):
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await client.execute_workflow(BareWorkflow.run, i, id=f"bare-{uuid.uuid4()}", task_queue="bench-bare")

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - start)
