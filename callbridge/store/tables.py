"""The state store's schema: one MetaData, every table (the migrations under migrations/ build it)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# --- the caller-ID index ----------------------------------------------------------------------------------------
# One row per (contact, phone field): the caller-ID index of the screen pop.
caller_index = Table(
    "caller_index",
    metadata,
    Column("contact_id", String(18), primary_key=True),
    Column("phone_field", String(16), primary_key=True),
    Column("e164", String(20), primary_key=True),  # a field may hold two numbers
    Column("first_name", String(80)),
    Column("last_name", String(80)),
    Column("account_id", String(18)),
    Column("account_name", String(255)),
    Column("tier", String(40)),
    Column("last_activity", DateTime(timezone=True)),
    Column("modstamp", DateTime(timezone=True)),
    Index("ix_caller_index_e164", "e164"),
    Index("ix_caller_index_account", "account_id"),
)

accounts = Table(
    "account_index",
    metadata,
    Column("account_id", String(18), primary_key=True),
    Column("name", String(255)),
    Column("account_number", String(40)),
    Column("tier", String(40)),
    Index("ix_account_index_number", "account_number"),
)

# Named cursors and counters: index watermarks, the index version (for caches).
state = Table(
    "state",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("text_value", String(255)),
    Column("int_value", BigInteger),
)

# --- operations counters ----------------------------------------------------------------------
ops_daily_counters = Table(
    "ops_daily_counters", metadata,
    Column("day", Date, primary_key=True),          # UTC day the counts were flushed on
    Column("name", String(80), primary_key=True),   # e.g. screenpop_lookups:index (closed sets: no ids)
    Column("value", BigInteger, nullable=False, default=0),
)

# --- privacy ----------------------------------------------------------------------------------
tombstones = Table(
    "privacy_tombstones", metadata,
    Column("hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

erasure_requests = Table(
    "privacy_erasure_requests", metadata,
    Column("request_id", String(36), primary_key=True),
    Column("subject_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # running, completed, failed
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("sealed_identifiers", Text),  # wiped on completion
    Column("certificate", Text),
)

audit_log = Table(
    "privacy_audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("component", String(40), nullable=False),
    Column("action", String(40), nullable=False),
    Column("data_types", String(255), nullable=False, default=""),  # comma-separated
    Column("subject_hash", String(64)),
    Column("request_id", String(36)),
    Index("ix_privacy_audit_component_at", "component", "at"),
    Index("ix_privacy_audit_subject", "subject_hash"),
)

legal_holds = Table(
    "privacy_legal_holds", metadata,
    Column("conversation_id", String(128), primary_key=True),
    Column("reason", String(255), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
)

retention_reports = Table(
    "privacy_retention_reports", metadata,
    Column("run_id", String(128), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("report", Text, nullable=False),
)

# --- contact-sync pairs --------------------------------------------------------------------------------------
sync_pairs = Table(
    "sync_pairs", metadata,
    Column("salesforce_id", String(18), primary_key=True),
    Column("genesys_id", String(64), nullable=False, unique=True),
    Column("base", Text, nullable=False),  # JSON of the canonical fields
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- contact-sync runs, audit, review ---------------------------------------------------------------------------------
sync_runs = Table(
    "sync_runs", metadata,
    Column("run_id", String(64), primary_key=True),        # the Temporal run id of the first run
    Column("workflow_id", String(128), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(24), nullable=False),           # running | completed | failed | stopped
    Column("path", String(16), nullable=False, default="per_pair"),  # per_pair | bulk
    Column("mode", String(16), nullable=False),
    Column("duration_seconds", Float, nullable=False, default=0.0),
    Column("health_score", Integer),
    Column("stats", Text, nullable=False, default="{}"),    # JSON: STAT_FIELDS and more
    Column("note", String(255), nullable=False, default=""),
    Index("ix_sync_runs_started", "started_at"),
)

sync_audit = Table(
    "sync_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("workflow_id", String(128), nullable=False),
    Column("run_id", String(64)),
    Column("salesforce_id", String(18)),
    Column("genesys_id", String(64)),
    Column("action", String(32), nullable=False),           # update | create_in_genesys | delete_in_… | …
    Column("field", String(80)),
    Column("old_value", Text),                              # JSON
    Column("new_value", Text),                              # JSON
    Column("written_to", String(16)),                       # the side that was written: the other won
    Column("reason", String(120), nullable=False, default=""),
    Index("ix_sync_audit_sf", "salesforce_id"),
    Index("ix_sync_audit_gc", "genesys_id"),
    Index("ix_sync_audit_at", "at"),
)

sync_review = Table(
    "sync_review", metadata,
    Column("key", String(160), primary_key=True),           # reason + ids: one row per case
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reason", String(32), nullable=False),           # ambiguous_email | ambiguous_phone | ambiguous_name
                                                            # | dangling_link | delete_conflict
    Column("genesys_id", String(64)),
    Column("salesforce_ids", String(255), nullable=False, default=""),  # candidates, comma-separated
    Column("detail", String(255), nullable=False, default=""),          # no PII: ids and counts only
    Column("workflow_id", String(128)),
    Column("resolved_at", DateTime(timezone=True)),
)

# The pairs one run must settle, written by the run's change collection and read back a page
# at a time: a 100k-contact initial load would not fit in a workflow's history or payloads.
sync_run_pairs = Table(
    "sync_run_pairs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("salesforce_id", String(18)),
    Column("genesys_id", String(64)),
)
