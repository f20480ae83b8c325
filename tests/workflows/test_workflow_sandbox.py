"""What the workflow sandbox runs afresh for every workflow run (the worker's CPU per call)."""

from __future__ import annotations

import sys
from pathlib import Path

import importlib.util

import temporalio.workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

_EXECUTED: list[str] | None = None
_COMPILED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _EXECUTED is not None and event == "exec":
        _EXECUTED.append(getattr(args[0], "co_filename", ""))
    if _COMPILED is not None and event == "compile":
        _COMPILED.append(str(args[1]))


sys.addaudithook(_audit)  # audit hooks stay for the process: this one records only inside the test


async def test_a_call_logging_run_reimports_only_its_own_module():
    """The sandbox imports a workflow's module afresh for each run; what that module imports
    under imports_passed_through must come from outside. `from workflows import recording_link`
    didn't (the submodule of the freshly imported package is loaded by importlib directly):
    recording_link.py was compiled and run again for every call."""
    global _EXECUTED
    from workflows.call_logging import CallLoggingWorkflow

    runner = SandboxedWorkflowRunner()
    defn = temporalio.workflow._Definition.must_from_class(CallLoggingWorkflow)
    runner.prepare_workflow(defn)  # a sandboxed instance, as each run gets (needs a running loop)
    _EXECUTED = []
    try:
        runner.prepare_workflow(defn)
    finally:
        executed, _EXECUTED = _EXECUTED, None
    modules = sorted({Path(f).relative_to(Path(__file__).resolve().parents[2]).as_posix()
                      for f in executed if f.endswith(".py") and "/workflows/" in f})
    assert modules == ["workflows/__init__.py", "workflows/call_logging.py"]


async def test_the_dev_stack_worker_compiles_no_workflow_source_per_run():
    """An installed image has every module's .pyc (pip writes them); a checkout run with
    PYTHONDONTWRITEBYTECODE has none, and the sandbox's fresh import of the workflow module
    compiled workflows/call_logging.py again for every call. The dev stack writes them first."""
    global _COMPILED
    from devstack.stack import REPO, precompile_workflows
    from workflows.call_logging import CallLoggingWorkflow

    for module in ("__init__", "call_logging"):
        Path(importlib.util.cache_from_source(str(REPO / "workflows" / f"{module}.py"))).unlink(missing_ok=True)
    precompile_workflows()  # what LocalStack.start_worker does before the worker starts
    runner = SandboxedWorkflowRunner()
    defn = temporalio.workflow._Definition.must_from_class(CallLoggingWorkflow)
    _COMPILED = []
    try:
        runner.prepare_workflow(defn)  # a call's run: the module imported afresh in its sandbox
    finally:
        compiled, _COMPILED = _COMPILED, None
    assert [f for f in compiled if "/workflows/" in f] == []
