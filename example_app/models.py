"""The example's tables as SQLAlchemy models; Alembic revisions in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Index
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    """A tenant's note. The table lives in the tenant's own database: no tenant_id column."""

    __tablename__ = "notes"
    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 2000", name="body_length"),
        Index("notes_by_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]
    created_at: Mapped[float]

    def as_dict(self) -> dict[str, object]:
        """The note as the JSON API returns it."""
        return {"id": self.id, "body": self.body, "created_at": self.created_at}
