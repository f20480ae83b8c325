"""Workflow and activity messages of the privacy features. Identifiers only: the person's
email and phones stay sealed in the erasure request row (callbridge.store.privacy), never in
a workflow history."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field


class ErasureInput(BaseModel):
    request_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    requested_at: AwareDatetime
    reminder_days: int = 20
    escalation_days: int = 28
    deadline_days: int = 30
    max_rounds: int = 5  # discover-delete-verify rounds before the request is marked failed


class SalesforceFindings(BaseModel):
    contact_ids: list[str] = Field(default_factory=list)
    task_ids: list[str] = Field(default_factory=list)
    event_ids: list[str] = Field(default_factory=list)
    consent_ids: list[str] = Field(default_factory=list)
    conversation_ids: list[str] = Field(default_factory=list)


class RecordingRef(BaseModel):
    conversation_id: str
    recording_id: str


class GenesysFindings(BaseModel):
    external_contact_ids: list[str] = Field(default_factory=list)
    recordings: list[RecordingRef] = Field(default_factory=list)  # to delete
    # Recordings of conversations on legal hold: kept (GDPR art. 17(3)(e)), named in the certificate.
    held_recordings: list[RecordingRef] = Field(default_factory=list)


class DiscoverRequest(BaseModel):
    request_id: str
    contact_ids: list[str] = Field(default_factory=list)
    conversation_ids: list[str] = Field(default_factory=list)


class DeleteRecords(BaseModel):
    request_id: str
    sobject: str = ""
    ids: list[str] = Field(default_factory=list)


class DeleteRecordings(BaseModel):
    request_id: str
    recordings: list[RecordingRef] = Field(default_factory=list)


class Findings(BaseModel):
    salesforce: SalesforceFindings = Field(default_factory=SalesforceFindings)
    genesys: GenesysFindings = Field(default_factory=GenesysFindings)
    workflow_ids: list[str] = Field(default_factory=list)


class VerifyRequest(BaseModel):
    request_id: str
    findings: Findings


class CertificateRequest(BaseModel):
    request_id: str
    workflow_id: str
    requested_at: datetime
    deleted: dict[str, list[str]]
    verification: dict[str, int]
    kept: dict[str, list[str]] = Field(default_factory=dict)  # legal holds: record ids kept, and why
    local: dict[str, int] = Field(default_factory=dict)       # rows deleted from Callbridge's own stores


class FailureRequest(BaseModel):
    request_id: str
    workflow_id: str
    reason: str  # no PII: "verification", or an error type
    remaining: dict[str, int] = Field(default_factory=dict)


class AlertRequest(BaseModel):
    level: str
    text: str
    request_id: str


class SentAlert(BaseModel):
    kind: str
    at: datetime


class ErasureStatus(BaseModel):
    request_id: str
    phase: str = "starting"
    round: int = 0
    steps_done: list[str] = Field(default_factory=list)
    alerts: list[SentAlert] = Field(default_factory=list)
    remaining: dict[str, int] = Field(default_factory=dict)


class ErasureResult(BaseModel):
    request_id: str
    status: str  # completed, failed
    certificate: dict | None = None
    remaining: dict[str, int] = Field(default_factory=dict)


class RetentionInput(BaseModel):
    max_age_days: float = 7 * 365 + 2
    dry_run: bool = False


class RetentionScan(BaseModel):
    run_id: str
    max_age_days: float
    dry_run: bool = False
    conversation_ids: list[str] = Field(default_factory=list)


class RetentionReport(BaseModel):
    run_id: str
    checked: int = 0
    deleted_retention: list[str] = Field(default_factory=list)  # recording ids
    deleted_gdpr: list[str] = Field(default_factory=list)
    kept_legal_hold: list[str] = Field(default_factory=list)
    kept: int = 0
