"""Every workflow the worker runs; each feature module adds its own."""

from workflows.call_logging import CallLoggingWorkflow
from workflows.call_reconciliation import CallReconciliationWorkflow
from workflows.caller_index import CallerIndexRefreshWorkflow
from workflows.gdpr_erasure import GdprErasureWorkflow
from workflows.retention import RetentionWorkflow
from workflows.contact_sync import ContactSyncWorkflow
from workflows.sync_pair import SyncPairWorkflow

WORKFLOWS = [CallLoggingWorkflow, CallerIndexRefreshWorkflow, GdprErasureWorkflow, RetentionWorkflow,
             SyncPairWorkflow, ContactSyncWorkflow, CallReconciliationWorkflow]
