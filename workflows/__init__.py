"""Every workflow the worker runs; each feature module adds its own."""

from workflows.call_logging import CallLoggingWorkflow

WORKFLOWS = [CallLoggingWorkflow]
