"""Contact sync: linked pairs and their bases.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
TABLES = ["sync_pairs"]


def upgrade() -> None:
    op.create_table(
        "sync_pairs",
        sa.Column("salesforce_id", sa.String(length=18), nullable=False),
        sa.Column("genesys_id", sa.String(length=64), nullable=False),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("salesforce_id"),
        sa.UniqueConstraint("genesys_id"),
    )


def downgrade() -> None:
    op.drop_table("sync_pairs")
