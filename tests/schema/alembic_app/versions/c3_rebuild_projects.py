"""Rebuild projects (copy, drop, rename): a rank column, a longer name.

Revision ID: c3
Revises: b2
"""

import sqlalchemy as sa
from alembic import op

revision = "c3"
down_revision = "b2"


def upgrade() -> None:
    with op.batch_alter_table("projects", recreate="always") as batch:
        batch.add_column(sa.Column("rank", sa.Integer, nullable=False, server_default="0"))
        batch.alter_column("name", existing_type=sa.String(50), type_=sa.String(200))


def downgrade() -> None:
    with op.batch_alter_table("projects", recreate="always") as batch:
        batch.drop_column("rank")
