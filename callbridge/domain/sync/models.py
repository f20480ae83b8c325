"""Messages of the contact-sync workflows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


# Which run counter a pair's outcome (its merge action) adds to: one table for both paths.
TALLY = {"create_in_genesys": "created", "create_in_salesforce": "created", "update": "updated",
         "delete_in_genesys": "deleted", "delete_in_salesforce": "deleted", "noop": "unchanged",
         "skip_erased": "skipped", "skip_no_consent": "skipped", "delete_conflict": "conflicts",
         "refused": "refused"}


class PairKey(BaseModel):
    salesforce_id: str | None = None
    genesys_id: str | None = None

    @property
    def workflow_id(self) -> str:
        return f"sync-pair-{self.salesforce_id or self.genesys_id}"


class PairSnapshot(BaseModel):
    """Both records (canonical) and the stored base, as read at one moment."""

    salesforce_id: str | None = None
    genesys_id: str | None = None
    salesforce: dict[str, Any] | None = None
    genesys: dict[str, Any] | None = None
    salesforce_deleted: bool = False
    genesys_deleted: bool = False
    salesforce_modified: str | None = None   # ISO; also sent back as If-Unmodified-Since
    genesys_modified: str | None = None
    genesys_raw: dict[str, Any] | None = None  # PUT replaces the whole contact
    base: dict[str, Any] | None = None
    version: int = 0
    erased: bool = False  # a privacy tombstone matches an identifier of either record
    no_consent: bool = False  # no service consent (or withdrawn): not synced, when the settings require it
    # Each side's pointer to the other (the link field of sync/steps.py; the externalIds entry) as it
    # should be: a link missing on one side (a crash between the two writes, an admin's
    # edit) is written again.
    salesforce_link_ok: bool = False
    genesys_link_ok: bool = False
    index_record: dict[str, Any] | None = None  # the Salesforce record, for the caller-ID index
    salesforce_requests: int = 0
    genesys_requests: int = 0


class WriteResult(BaseModel):
    id: str
    salesforce_requests: int = 0
    genesys_requests: int = 0


class SalesforceWrite(BaseModel):
    op: Literal["create", "update", "delete"]
    contact_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    if_unmodified_since: str | None = None


class GenesysWrite(BaseModel):
    op: Literal["create", "update", "delete"]
    contact_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)   # canonical names
    current: dict[str, Any] | None = None                   # the contact as read, for PUT
    link_salesforce_id: str | None = None


class AuditEntry(BaseModel):
    """One line of the sync audit: a field written on one side, and why (no values in history:
    the activity that stores the base fills old/new from the records it holds)."""

    action: str
    field: str | None = None
    old: Any = None
    new: Any = None
    written_to: str | None = None
    reason: str = ""


class ReviewRequest(BaseModel):
    """A case for the review list: ids and a reason, never a value."""

    reason: str
    salesforce_id: str | None = None
    genesys_id: str | None = None
    candidates: list[str] = Field(default_factory=list)
    detail: str = ""


class StoreBaseRequest(BaseModel):
    salesforce_id: str
    genesys_id: str
    base: dict[str, Any] | None  # None: forget the pair
    expected_version: int
    # Stored in the same transaction as the base: the audit of what this write changed, and
    # the Salesforce record as it now is, for the screen pop's caller-ID index.
    audit: list[AuditEntry] = Field(default_factory=list)
    action: str = "update"
    index_record: dict[str, Any] | None = None
    salesforce_deleted: bool = False


class Rule(BaseModel):
    name: str
    direction: Literal["sf_to_gc", "gc_to_sf", "both"] = "both"
    policy: Literal["salesforce", "genesys", "last_write", "manual"] = "salesforce"


class SyncPairInput(BaseModel):
    """Everything the merge needs, the mapping's rules included, so a replay reads no file."""

    key: PairKey
    rules: list[Rule]
    mode: Literal["one_way", "bidirectional"] = "one_way"
    delete_handling: Literal["propagate", "unlink"] = "propagate"
    manual_deadline_days: int = 7

    @classmethod
    def from_config(cls, key: PairKey, config, mode: str | None = None) -> "SyncPairInput":
        return cls(key=key, rules=[Rule(name=m.salesforce, direction=m.direction, policy=m.policy)
                                   for m in config.fields],
                   mode=mode or config.mode, delete_handling=config.delete_handling,
                   manual_deadline_days=config.manual_deadline_days)


class SyncPairResult(BaseModel):
    action: str
    salesforce_requests: int = 0
    genesys_requests: int = 0
    salesforce_id: str | None = None
    genesys_id: str | None = None
    written_to_salesforce: list[str] = Field(default_factory=list)
    written_to_genesys: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    attempts: int = 1


class ChangeRequest(BaseModel):
    mode: Literal["one_way", "bidirectional"] = "one_way"
    full: bool = False
    lookback_seconds: int = 120
    matching: list[str] = Field(default_factory=lambda: ["link", "email", "phone", "name_account"])
    workflow_id: str = "contact-sync"
    run_id: str = ""
    rules: list["Rule"] = Field(default_factory=list)  # checked against the org's describe first


class ChangeSet(BaseModel):
    """How many pairs one run must settle (the ids wait in the state store, `sync_run_pairs`),
    and where the watermarks move once it has."""

    run_id: str = ""
    pair_count: int = 0
    salesforce_changes: int = 0
    genesys_changes: int = 0
    matched_by_email: int = 0
    matched_by_phone: int = 0
    matched_by_name: int = 0
    ambiguous: int = 0
    initial: bool = False  # no watermark yet: the initial load (always the bulk path)
    salesforce_requests: int = 0
    genesys_requests: int = 0
    salesforce_watermark: str = ""
    genesys_watermark: str = ""


class AlertThresholds(BaseModel):
    """The seed's sync alerts: per run."""

    errors: int = 10
    duration_seconds: float = 300.0
    conflicts: int = 10


class ContactSyncInput(BaseModel):
    rules: list[Rule]
    mode: Literal["one_way", "bidirectional"] = "one_way"
    delete_handling: Literal["propagate", "unlink"] = "propagate"
    full: bool = False
    dry_run: bool = False
    lookback_seconds: int = 120
    max_concurrent_pairs: int = 20
    matching: list[str] = Field(default_factory=lambda: ["link", "email", "phone", "name_account"])
    manual_deadline_days: int = 7
    # The bulk path: above this many changed pairs (and always for the initial load), pages of
    # up to `page_size` pairs are merged and written by one activity each, with batched calls.
    bulk_threshold: int = 2000
    page_size: int = 200
    max_concurrent_pages: int = 8  # a page waits on 4 requests in a row: 8 keep 2 cores busy
    page_heartbeat_seconds: int = 120  # a page whose worker died is retried after this long
    force_path: Literal["per_pair", "bulk"] | None = None
    # Stop cleanly (and resume next run) once this share of Salesforce's daily allowance is used.
    allowance_share: float = 0.8
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)
    run_id: str | None = None  # the first run's id: kept across continue-as-new
    # Set when a run continues as new: its changes, how far it got, and the tally so far.
    pending: ChangeSet | None = None
    offset: int = 0
    so_far: "ContactSyncResult | None" = None

    @classmethod
    def from_config(cls, config, **overrides) -> "ContactSyncInput":
        values = {"rules": [Rule(name=m.salesforce, direction=m.direction, policy=m.policy) for m in config.fields],
                  "mode": config.mode, "delete_handling": config.delete_handling,
                  "matching": list(config.matching), "bulk_threshold": config.bulk_threshold,
                  "manual_deadline_days": config.manual_deadline_days,
                  "allowance_share": config.salesforce_allowance_share,
                  "alerts": AlertThresholds(errors=config.alert_errors,
                                            duration_seconds=config.alert_duration_minutes * 60,
                                            conflicts=config.alert_conflicts)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class ContactSyncResult(BaseModel):
    pairs: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0       # erased people, open pair workflows left to themselves
    conflicts: int = 0
    errors: int = 0
    handed_off: int = 0    # pairs the bulk path gave to their SyncPairWorkflow
    salesforce_changes: int = 0
    genesys_changes: int = 0
    matched_by_email: int = 0
    matched_by_phone: int = 0
    matched_by_name: int = 0
    ambiguous: int = 0
    refused: int = 0       # Salesforce refused the record for good: on the review list
    salesforce_requests: int = 0
    genesys_requests: int = 0
    path: str = "per_pair"
    stopped: str = ""      # why the run stopped early (the allowance), if it did
    dry_run: bool = False
    duration_seconds: float = 0.0
    health_score: int | None = None

    def add(self, other: "SyncPageResult") -> None:
        for name in ("created", "updated", "deleted", "unchanged", "skipped", "conflicts", "errors",
                     "salesforce_requests", "genesys_requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.handed_off += len(other.handoff)


class PairRange(BaseModel):
    run_id: str
    offset: int
    limit: int


class SyncPageInput(BaseModel):
    """One page of the bulk path: up to 200 of the run's pairs, by position."""

    pairs: PairRange
    rules: list[Rule]
    mode: Literal["one_way", "bidirectional"] = "one_way"
    delete_handling: Literal["propagate", "unlink"] = "propagate"
    workflow_id: str = "contact-sync"
    run_id: str | None = None


class SyncPageResult(BaseModel):
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    conflicts: int = 0
    errors: int = 0
    handoff: list[PairKey] = Field(default_factory=list)  # for their SyncPairWorkflow
    salesforce_requests: int = 0
    genesys_requests: int = 0
    salesforce_share: float | None = None  # of the daily allowance, as of the last response


class SyncRunStart(BaseModel):
    run_id: str
    workflow_id: str
    mode: str
    path: str = "per_pair"


class SyncRunFinish(BaseModel):
    run_id: str
    result: "ContactSyncResult"
    changes: ChangeSet | None = None  # the watermarks to move to; None: leave them
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)


class AllowanceCheck(BaseModel):
    share: float | None = None


ChangeRequest.model_rebuild()
ContactSyncInput.model_rebuild()
SyncRunFinish.model_rebuild()


class ConflictDecision(BaseModel):
    """An operator's answer to a `manual` conflict: which side's value wins for the field."""

    field: str
    winner: Literal["salesforce", "genesys"]


class PendingConflict(BaseModel):
    field: str
    base: Any = None
    salesforce: Any = None
    genesys: Any = None
