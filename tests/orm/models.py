"""The ORM models the tests use, and a schema package that creates their tables."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, Numeric, String
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.schema import CreateTable
from sqlmodel import Field, SQLModel

from tenant_middleware import Migration, SchemaPackage


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    tasks: Mapped[list[Task]] = relationship(back_populates="project", cascade="all")


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    title: Mapped[str]
    done: Mapped[bool] = mapped_column(default=False)
    project: Mapped[Project] = relationship(back_populates="tasks")


class Counter(Base):
    __tablename__ = "counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int]


class Sample(Base):
    __tablename__ = "samples"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    day: Mapped[dt.date]
    at: Mapped[dt.datetime]
    flag: Mapped[bool]
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


_DDL = "".join(
    f"{CreateTable(table).compile(dialect=SQLiteDialect())};\n"
    for table in Base.metadata.sorted_tables
)
ORM_PACKAGE = SchemaPackage(
    "orm",
    (
        Migration(1, "create_tables", sql=_DDL),
        Migration(2, "seed_counter", sql="INSERT INTO counter (id, value) VALUES (1, 0);"),
    ),
)


class SQLNote(SQLModel, table=True):
    """A SQLModel table (SQLModel's own metadata), created by the SQLModel test itself."""

    __tablename__ = "sqlmodel_notes"
    id: int | None = Field(default=None, primary_key=True)
    title: str
