"""Messages of the contact-sync workflows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


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


class StoreBaseRequest(BaseModel):
    salesforce_id: str
    genesys_id: str
    base: dict[str, Any] | None  # None: forget the pair
    expected_version: int


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


class ChangeSet(BaseModel):
    """The pairs one run must settle (ids only), and where the watermarks move once it has."""

    pairs: list[PairKey] = Field(default_factory=list)
    salesforce_changes: int = 0
    genesys_changes: int = 0
    matched_by_email: int = 0
    ambiguous: int = 0
    salesforce_watermark: str = ""
    genesys_watermark: str = ""


class ContactSyncInput(BaseModel):
    rules: list[Rule]
    mode: Literal["one_way", "bidirectional"] = "one_way"
    delete_handling: Literal["propagate", "unlink"] = "propagate"
    full: bool = False
    dry_run: bool = False
    lookback_seconds: int = 120
    max_concurrent_pairs: int = 20
    # Set when a run continues as new: the changes still to settle, and the tally so far.
    pending: ChangeSet | None = None
    so_far: "ContactSyncResult | None" = None

    @classmethod
    def from_config(cls, config, **overrides) -> "ContactSyncInput":
        values = {"rules": [Rule(name=m.salesforce, direction=m.direction, policy=m.policy) for m in config.fields],
                  "mode": config.mode, "delete_handling": config.delete_handling}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class ContactSyncResult(BaseModel):
    pairs: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    errors: int = 0
    salesforce_changes: int = 0
    genesys_changes: int = 0
    matched_by_email: int = 0
    ambiguous: int = 0
    dry_run: bool = False
    duration_seconds: float = 0.0


ContactSyncInput.model_rebuild()


class ConflictDecision(BaseModel):
    """An operator's answer to a `manual` conflict: which side's value wins for the field."""

    field: str
    winner: Literal["salesforce", "genesys"]


class PendingConflict(BaseModel):
    field: str
    base: Any = None
    salesforce: Any = None
    genesys: Any = None
