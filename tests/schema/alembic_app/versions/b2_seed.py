"""Seed two projects with three tasks between them.

Revision ID: b2
Revises: a1
"""

import sqlalchemy as sa
from alembic import op

revision = "b2"
down_revision = "a1"

projects = sa.table("projects", sa.column("id", sa.Integer), sa.column("name", sa.String))
tasks = sa.table(
    "tasks",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("title", sa.String),
)


def upgrade() -> None:
    op.bulk_insert(projects, [{"id": 1, "name": "apollo"}, {"id": 2, "name": "zeus"}])
    op.bulk_insert(
        tasks,
        [
            {"id": 1, "project_id": 1, "title": "launch"},
            {"id": 2, "project_id": 1, "title": "land"},
            {"id": 3, "project_id": 2, "title": "thunder"},
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM tasks")
    op.execute("DELETE FROM projects")
