"""Starting an erasure and reading its status: shared by `callbridge gdpr` and the admin API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from callbridge.domain import privacy
from callbridge.domain.privacy_models import ErasureInput
from callbridge.core.settings import Settings
from callbridge.store import privacy as store
from callbridge.store.db import get_engine


class ErasureRequestError(ValueError):
    pass


def subject_identifiers(settings: Settings, *, email: str | None = None, phone: str | None = None,
                        contact_id: str | None = None) -> dict[str, list[str]]:
    from callbridge.domain.phone import to_e164

    if not (email or phone or contact_id):
        raise ErasureRequestError("give an email, a phone number or a contact id")
    ids: dict[str, list[str]] = {"emails": [], "phones": [], "contact_ids": []}
    if email:
        if "@" not in email:
            raise ErasureRequestError("not an email address")
        ids["emails"].append(email.strip().lower())
    if phone:
        e164 = to_e164(phone, settings.default_region)
        if e164 is None:
            raise ErasureRequestError("not a phone number")
        ids["phones"].append(e164)
    if contact_id:
        if not contact_id.isalnum() or len(contact_id) not in (15, 18):
            raise ErasureRequestError("not a Salesforce id")
        ids["contact_ids"].append(contact_id)
    return ids


async def start_erasure(client: Client, settings: Settings, *, email: str | None = None, phone: str | None = None,
                        contact_id: str | None = None, task_queue: str | None = None) -> str:
    from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

    ids = subject_identifiers(settings, email=email, phone=phone, contact_id=contact_id)
    key = settings.privacy_hash_key.get_secret_value()
    kind, value = next((k, v[0]) for k, v in (("email", ids["emails"]), ("phone", ids["phones"]),
                                              ("sf_id", ids["contact_ids"])) if v)
    subject_hash = privacy.keyed_hash(key, kind, value)
    request_id = store.new_request_id()
    requested_at = datetime.now(timezone.utc)
    engine = get_engine(settings.database_url)
    store.create_request(engine, request_id, subject_hash, requested_at,
                         requested_at + timedelta(days=settings.erasure_deadline_days),
                         store.seal(settings.payload_keys.get_secret_value(), ids))
    store.audit(engine, "erasure", "requested", (), subject_hash=subject_hash, request_id=request_id)
    # The row comes first (the workflow reads the sealed identifiers from it). A start that fails
    # or is cancelled (Temporal down, the caller's time budget) marks it failed, never leaves it
    # "running" with no workflow behind it; the caller asks again (a new request).
    try:
        await client.start_workflow(
            GdprErasureWorkflow.run,
            ErasureInput(request_id=request_id, requested_at=requested_at, reminder_days=settings.erasure_reminder_days,
                         escalation_days=settings.erasure_escalation_days, deadline_days=settings.erasure_deadline_days),
            id=workflow_id(request_id), task_queue=task_queue or settings.temporal_task_queue,
        )
    except BaseException as exc:  # CancelledError included: the start may never have been sent
        store.fail_request(engine, request_id, {
            "requestId": request_id, "workflowId": workflow_id(request_id), "failed": True,
            "reason": f"workflow not started ({type(exc).__name__}): ask again", "remaining": {}})
        store.audit(engine, "erasure", "not_started", (), subject_hash=subject_hash, request_id=request_id)
        raise
    return request_id


async def erasure_status(client: Client | None, settings: Settings, request_id: str) -> dict[str, Any] | None:
    """The stored request (and certificate once done), with the live progress while it runs."""
    from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

    engine = get_engine(settings.database_url)
    row = store.get_request(engine, request_id)
    if row is None:
        return None
    live: dict[str, Any] = {}
    if client is not None and row["status"] == "running":
        handle = client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(request_id))
        try:
            desc = await handle.describe()
            live["workflowStatus"] = desc.status.name if desc.status else None
            if desc.status == WorkflowExecutionStatus.RUNNING:
                progress = await handle.query(GdprErasureWorkflow.status)
                live["progress"] = progress.model_dump(mode="json")
            elif desc.status in _ENDED_UNFINISHED:
                # Terminated, timed out or failed before it could record that itself.
                store.fail_request(engine, request_id, {
                    "requestId": request_id, "workflowId": workflow_id(request_id), "failed": True,
                    "reason": f"workflow {desc.status.name.lower()}", "remaining": {}})
                row = store.get_request(engine, request_id)
        except RPCError:
            live["workflowStatus"] = "UNKNOWN"
    failed = row["status"] == "failed"
    return {
        "requestId": request_id, "workflowId": workflow_id(request_id), "status": row["status"],
        "requestedAt": row["requested_at"].isoformat(), "deadline": row["deadline"].isoformat(),
        "completedAt": row["completed_at"].isoformat() if row["completed_at"] else None,
        # A failed request has a failure report (what was left, counts only), never a certificate.
        "certificate": None if failed else row["certificate"],
        **({"failure": row["certificate"]} if failed else {}),
        **live,
    }


_ENDED_UNFINISHED = {WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED,
                     WorkflowExecutionStatus.TIMED_OUT, WorkflowExecutionStatus.CANCELED}
