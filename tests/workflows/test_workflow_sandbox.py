"""What the workflow sandbox runs afresh for every workflow run (the worker's CPU per call)."""

from __future__ import annotations

import sys
from pathlib import Path

import temporalio.workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

_EXECUTED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _EXECUTED is not None and event == "exec":
        _EXECUTED.append(getattr(args[0], "co_filename", ""))


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
