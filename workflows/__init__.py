"""Every workflow the worker runs; each feature module adds its own."""

from workflows.call_logging import CallLoggingWorkflow
from workflows.caller_index import CallerIndexRefreshWorkflow

WORKFLOWS = [CallLoggingWorkflow, CallerIndexRefreshWorkflow]
