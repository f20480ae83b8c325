"""Privacy: tombstones, erasure requests, audit log, legal holds, retention reports.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
TABLES = ["privacy_audit_log", "privacy_erasure_requests", "privacy_legal_holds",
          "privacy_retention_reports", "privacy_tombstones"]


def upgrade() -> None:
    op.create_table(
        "privacy_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("component", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("data_types", sa.String(length=255), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_privacy_audit_component_at", "privacy_audit_log", ["component", "at"], unique=False)
    op.create_index("ix_privacy_audit_subject", "privacy_audit_log", ["subject_hash"], unique=False)
    op.create_table(
        "privacy_erasure_requests",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sealed_identifiers", sa.Text(), nullable=True),
        sa.Column("certificate", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_table(
        "privacy_legal_holds",
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_table(
        "privacy_retention_reports",
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "privacy_tombstones",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )


def downgrade() -> None:
    for table in ("privacy_tombstones", "privacy_retention_reports", "privacy_legal_holds",
                  "privacy_erasure_requests"):
        op.drop_table(table)
    op.drop_index("ix_privacy_audit_subject", table_name="privacy_audit_log")
    op.drop_index("ix_privacy_audit_component_at", table_name="privacy_audit_log")
    op.drop_table("privacy_audit_log")
