"""GdprErasureWorkflow over its 30 days of workflow time: reminder at day 20 and escalation at
day 28 of the request while a step keeps failing, then done once Salesforce recovers; a refusal
stops it with an alert at once; verification that keeps finding the person fails it after its
rounds. The fast twin of tests/integration/test_gdpr_erasure.py's deadline test: Salesforce,
Genesys and the state store are test activities under the real activity names."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from callbridge.clients.salesforce.errors import to_application_error
from callbridge.domain.privacy_models import (
    AlertRequest,
    CertificateRequest,
    DeleteRecordings,
    DeleteRecords,
    DiscoverRequest,
    ErasureInput,
    ErasureResult,
    FailureRequest,
    GenesysFindings,
    RecordingRef,
    SalesforceFindings,
    VerifyRequest,
)
from tests.workflows.conftest import worker
from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

CONTACT, TASK, CONSENT = "003000000000002AAA", "00T000000000002AAA", "a01000000000002AAA"
EXTERNAL_CONTACT, CONVERSATION, RECORDING = "ext-contact-2", "conv-erase-2", "rec-erase-2"


class ErasurePlatforms:
    """One person in Salesforce (a contact, a call's Task, a consent) and Genesys (an external
    contact, a recording), erased as the workflow asks; the alerts and the request's record."""

    def __init__(self, *, contact_deletes: str = "work", salesforce_back_at: datetime | None = None,
                 reappears: bool = False) -> None:
        self.contact_deletes = contact_deletes  # work | fail (an outage until salesforce_back_at) | refused
        self.salesforce_back_at = salesforce_back_at
        self.reappears = reappears  # a sync brings the contact back after each delete
        self.present = {"salesforce.contacts": {CONTACT}, "salesforce.tasks": {TASK},
                        "salesforce.consents": {CONSENT}, "genesys.external_contacts": {EXTERNAL_CONTACT},
                        "genesys.recordings": {RECORDING}}
        self.discoveries = 0
        self.contact_delete_attempts: list[datetime] = []
        self.alerts: list[tuple[datetime, str, str]] = []  # (when, level, text)
        self.certificate: CertificateRequest | None = None
        self.failure: FailureRequest | None = None

    def _now(self) -> datetime:
        return activity.info().current_attempt_scheduled_time

    @activity.defn(name="erasure_discover_salesforce")
    async def discover_salesforce(self, request_id: str) -> SalesforceFindings:
        self.discoveries += 1
        p = self.present
        return SalesforceFindings(contact_ids=sorted(p["salesforce.contacts"]), task_ids=sorted(p["salesforce.tasks"]),
                                  consent_ids=sorted(p["salesforce.consents"]),
                                  conversation_ids=[CONVERSATION] if p["salesforce.tasks"] else [])

    @activity.defn(name="erasure_write_tombstone")
    async def write_tombstone(self, request_id: str) -> int:
        return 1

    @activity.defn(name="erasure_discover_genesys")
    async def discover_genesys(self, request: DiscoverRequest) -> GenesysFindings:
        p = self.present
        return GenesysFindings(external_contact_ids=sorted(p["genesys.external_contacts"]),
                               recordings=[RecordingRef(conversation_id=CONVERSATION, recording_id=r)
                                           for r in sorted(p["genesys.recordings"])])

    @activity.defn(name="erasure_discover_workflows")
    async def discover_workflows(self, request: DiscoverRequest) -> list[str]:
        return []

    def _delete(self, label: str, ids: list[str]) -> list[str]:
        self.present[label] -= set(ids)
        return ids

    @activity.defn(name="erasure_delete_salesforce")
    async def delete_salesforce(self, request: DeleteRecords) -> list[str]:
        if request.sobject == "Contact":
            self.contact_delete_attempts.append(self._now())
            if self.contact_deletes == "refused":
                # What hard_delete raises when the integration user lacks "Bulk API Hard Delete".
                raise ApplicationError("Salesforce refused to hard-delete Contact records (FEATURENOTENABLED)",
                                       type="HardDeleteNotPermitted", non_retryable=True)
            if self.contact_deletes == "fail" and self._now() < self.salesforce_back_at:
                raise to_application_error(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "server unavailable"}],
                                           "Contact hard delete")
        label = {"Contact": "salesforce.contacts", "Task": "salesforce.tasks",
                 "Contact_Consent__c": "salesforce.consents"}[request.sobject]
        return self._delete(label, request.ids)

    @activity.defn(name="erasure_delete_genesys_contacts")
    async def delete_genesys_contacts(self, request: DeleteRecords) -> list[str]:
        return self._delete("genesys.external_contacts", request.ids)

    @activity.defn(name="erasure_delete_recordings")
    async def delete_recordings(self, request: DeleteRecordings) -> list[str]:
        return self._delete("genesys.recordings", [r.recording_id for r in request.recordings])

    @activity.defn(name="erasure_delete_local")
    async def delete_local(self, request_id: str) -> dict[str, int]:
        return {"caller_index": 1}

    @activity.defn(name="erasure_delete_workflows")
    async def delete_workflows(self, request: DeleteRecords) -> list[str]:
        return request.ids

    @activity.defn(name="erasure_verify_salesforce")
    async def verify_salesforce(self, request: VerifyRequest) -> dict[str, int]:
        if self.reappears:
            self.present["salesforce.contacts"].add(CONTACT)  # a sync brought it back meanwhile
        return {k: len(v) for k, v in self.present.items() if k.startswith("salesforce.")}

    @activity.defn(name="erasure_verify_genesys")
    async def verify_genesys(self, request: VerifyRequest) -> dict[str, int]:
        return {k: len(v) for k, v in self.present.items() if k.startswith("genesys.")}

    @activity.defn(name="erasure_verify_local")
    async def verify_local(self, request_id: str) -> dict[str, int]:
        return {"caller_index": 0}

    @activity.defn(name="erasure_verify_workflows")
    async def verify_workflows(self, request: VerifyRequest) -> dict[str, int]:
        return {"temporal.histories": 0}

    @activity.defn(name="privacy_alert")
    async def privacy_alert(self, request: AlertRequest) -> bool:
        self.alerts.append((self._now(), request.level, request.text))
        return True

    @activity.defn(name="erasure_record_certificate")
    async def record_certificate(self, request: CertificateRequest) -> dict:
        self.certificate = request
        return {"deleted": {k: {"count": len(v)} for k, v in request.deleted.items()}}

    @activity.defn(name="erasure_record_failure")
    async def record_failure(self, request: FailureRequest) -> dict:
        self.failure = request
        return {"failed": True, "reason": request.reason}

    def activities(self) -> list:
        return [self.discover_salesforce, self.write_tombstone, self.discover_genesys, self.discover_workflows,
                self.delete_salesforce, self.delete_genesys_contacts, self.delete_recordings, self.delete_local,
                self.delete_workflows, self.verify_salesforce, self.verify_genesys, self.verify_local,
                self.verify_workflows, self.privacy_alert, self.record_certificate, self.record_failure]


def days(delta: timedelta) -> float:
    return delta / timedelta(days=1)


async def test_reminder_at_day_20_and_escalation_at_day_28_of_the_request_while_a_step_fails(env):
    request = str(uuid.uuid4())
    # The request was made two days before its workflow started: the deadline runs from the request.
    requested_at = await env.get_current_time() - timedelta(days=2)
    platforms = ErasurePlatforms(contact_deletes="fail", salesforce_back_at=requested_at + timedelta(days=29))
    async with worker(env, [GdprErasureWorkflow], platforms.activities()) as tq:
        handle = await env.client.start_workflow(
            GdprErasureWorkflow.run, ErasureInput(request_id=request, requested_at=requested_at),
            id=workflow_id(request), task_queue=tq)
        await env.sleep(timedelta(days=27))  # day 29 of the request: Salesforce not back yet
        progress = await handle.query(GdprErasureWorkflow.status)
        assert progress.phase == "deleting" and "salesforce.contacts" not in progress.steps_done
        assert [a.kind for a in progress.alerts] == ["reminder", "escalation"]
        result: ErasureResult = await handle.result()

    (reminder_at, reminder_level, reminder), (escalation_at, escalation_level, escalation) = platforms.alerts
    assert 20 <= days(reminder_at - requested_at) < 20 + 1 / 1440  # within a minute of day 20
    assert 28 <= days(escalation_at - requested_at) < 28 + 1 / 1440
    assert (reminder_level, escalation_level) == ("warning", "critical")
    due = (requested_at + timedelta(days=30)).date().isoformat()
    assert reminder == f"GDPR erasure {request} reminder: not complete, phase deleting, due {due}"
    assert escalation.startswith(f"GDPR erasure {request} escalation:")
    # Retried all along (capped at 2 hours apart), and done soon after Salesforce came back.
    gaps = [b - a for a, b in zip(platforms.contact_delete_attempts, platforms.contact_delete_attempts[1:])]
    assert max(gaps) <= timedelta(hours=2, minutes=1)
    assert platforms.contact_delete_attempts[-1] - platforms.salesforce_back_at <= timedelta(hours=2, minutes=1)
    assert result.status == "completed"
    assert platforms.certificate.deleted == {
        "salesforce.consents": [CONSENT], "salesforce.tasks": [TASK], "salesforce.contacts": [CONTACT],
        "genesys.external_contacts": [EXTERNAL_CONTACT], "genesys.recordings": [RECORDING]}
    assert platforms.failure is None and len(platforms.alerts) == 2


async def test_a_refused_step_stops_the_erasure_with_a_critical_alert_at_once(env):
    request = str(uuid.uuid4())
    platforms = ErasurePlatforms(contact_deletes="refused")
    requested_at = await env.get_current_time()
    async with worker(env, [GdprErasureWorkflow], platforms.activities()) as tq:
        with pytest.raises(WorkflowFailureError):
            await env.client.execute_workflow(
                GdprErasureWorkflow.run, ErasureInput(request_id=request, requested_at=requested_at),
                id=workflow_id(request), task_queue=tq)

    assert len(platforms.contact_delete_attempts) == 1
    assert platforms.failure.reason == "HardDeleteNotPermitted"
    [(alerted_at, level, text)] = platforms.alerts  # this one, not day 20's or day 28's
    assert level == "critical" and text.startswith(f"GDPR erasure {request} stopped (HardDeleteNotPermitted)")
    assert alerted_at - requested_at < timedelta(minutes=1)
    assert platforms.certificate is None


async def test_verification_that_keeps_finding_the_person_fails_after_its_rounds(env):
    request = str(uuid.uuid4())
    platforms = ErasurePlatforms(reappears=True)
    requested_at = await env.get_current_time()
    async with worker(env, [GdprErasureWorkflow], platforms.activities()) as tq:
        result = await env.client.execute_workflow(
            GdprErasureWorkflow.run, ErasureInput(request_id=request, requested_at=requested_at, max_rounds=3),
            id=workflow_id(request), task_queue=tq)

    assert result.status == "failed" and result.remaining["salesforce.contacts"] == 1
    assert platforms.discoveries == 3
    assert platforms.failure.reason == "verification" and platforms.failure.remaining["salesforce.contacts"] == 1
    [(_, level, text)] = platforms.alerts
    assert level == "critical" and text == f"GDPR erasure {request} failed verification after 3 rounds"
    assert platforms.certificate is None
