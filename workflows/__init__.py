"""Every workflow the worker runs; each feature module adds its own.

`WORKFLOWS` is built on first use, not at import: the workflow sandbox imports this package
afresh for every workflow run, and importing every workflow module each time cost a third of
the worker's CPU on the per-pair sync path.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name != "WORKFLOWS":
        raise AttributeError(name)
    from workflows.call_logging import CallLoggingWorkflow
    from workflows.call_reconciliation import CallReconciliationWorkflow
    from workflows.caller_index import CallerIndexRefreshWorkflow
    from workflows.contact_sync import ContactSyncWorkflow
    from workflows.gdpr_erasure import GdprErasureWorkflow
    from workflows.recording_link import RecordingLinkWorkflow
    from workflows.retention import RetentionWorkflow
    from workflows.sync_pair import SyncPairWorkflow

    return [CallLoggingWorkflow, CallerIndexRefreshWorkflow, GdprErasureWorkflow, RetentionWorkflow,
            SyncPairWorkflow, ContactSyncWorkflow, CallReconciliationWorkflow, RecordingLinkWorkflow]
