"""Create the notes table.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.String, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 2000", name="body_length"),
    )
    op.create_index("notes_by_created_at", "notes", ["created_at"])


def downgrade() -> None:
    op.drop_table("notes")
