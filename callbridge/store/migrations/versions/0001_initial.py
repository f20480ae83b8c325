"""The caller-ID index, the account index and the state table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
# Tables this revision creates (a store made before migrations is stamped by them).
TABLES = ["account_index", "caller_index", "state"]


def upgrade() -> None:
    op.create_table(
        "account_index",
        sa.Column("account_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("account_number", sa.String(length=40), nullable=True),
        sa.Column("tier", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_index("ix_account_index_number", "account_index", ["account_number"], unique=False)
    op.create_table(
        "caller_index",
        sa.Column("contact_id", sa.String(length=18), nullable=False),
        sa.Column("phone_field", sa.String(length=16), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=True),
        sa.Column("last_name", sa.String(length=80), nullable=True),
        sa.Column("account_id", sa.String(length=18), nullable=True),
        sa.Column("account_name", sa.String(length=255), nullable=True),
        sa.Column("tier", sa.String(length=40), nullable=True),
        sa.Column("last_activity", sa.DateTime(timezone=True), nullable=True),
        sa.Column("modstamp", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("contact_id", "phone_field", "e164"),
    )
    op.create_index("ix_caller_index_account", "caller_index", ["account_id"], unique=False)
    op.create_index("ix_caller_index_e164", "caller_index", ["e164"], unique=False)
    op.create_table(
        "state",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("text_value", sa.String(length=255), nullable=True),
        sa.Column("int_value", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("state")
    op.drop_index("ix_caller_index_e164", table_name="caller_index")
    op.drop_index("ix_caller_index_account", table_name="caller_index")
    op.drop_table("caller_index")
    op.drop_index("ix_account_index_number", table_name="account_index")
    op.drop_table("account_index")
