"""Contact sync: run stats, the field-change audit, the review list.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
TABLES = ["sync_runs", "sync_audit", "sync_review", "sync_run_pairs"]


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.String(length=64), primary_key=True),
        sa.Column("workflow_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("path", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("health_score", sa.Integer()),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=False, server_default=""),
    )
    op.create_index("ix_sync_runs_started", "sync_runs", ["started_at"])
    op.create_table(
        "sync_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workflow_id", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=64)),
        sa.Column("salesforce_id", sa.String(length=18)),
        sa.Column("genesys_id", sa.String(length=64)),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=80)),
        sa.Column("old_value", sa.Text()),
        sa.Column("new_value", sa.Text()),
        sa.Column("written_to", sa.String(length=16)),
        sa.Column("reason", sa.String(length=120), nullable=False, server_default=""),
    )
    op.create_index("ix_sync_audit_sf", "sync_audit", ["salesforce_id"])
    op.create_index("ix_sync_audit_gc", "sync_audit", ["genesys_id"])
    op.create_index("ix_sync_audit_at", "sync_audit", ["at"])
    op.create_table(
        "sync_review",
        sa.Column("key", sa.String(length=160), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("genesys_id", sa.String(length=64)),
        sa.Column("salesforce_ids", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("detail", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("workflow_id", sa.String(length=128)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
    )


    op.create_table(
        "sync_run_pairs",
        sa.Column("run_id", sa.String(length=64), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("salesforce_id", sa.String(length=18)),
        sa.Column("genesys_id", sa.String(length=64)),
    )


def downgrade() -> None:
    op.drop_table("sync_run_pairs")
    op.drop_table("sync_review")
    op.drop_table("sync_audit")
    op.drop_index("ix_sync_runs_started", "sync_runs")
    op.drop_table("sync_runs")
