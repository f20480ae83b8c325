"""Operations: durable daily counters for the weekly checks (screen-pop lookups by outcome).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
TABLES = ["ops_daily_counters"]


def upgrade() -> None:
    op.create_table(
        "ops_daily_counters",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("name", sa.String(length=80), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ops_daily_counters")
