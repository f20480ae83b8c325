"""Every workflow the worker runs; each feature module adds its own."""

from workflows.call_logging import CallLoggingWorkflow
from workflows.caller_index import CallerIndexRefreshWorkflow
from workflows.gdpr_erasure import GdprErasureWorkflow
from workflows.retention import RetentionWorkflow

WORKFLOWS = [CallLoggingWorkflow, CallerIndexRefreshWorkflow, GdprErasureWorkflow, RetentionWorkflow]
