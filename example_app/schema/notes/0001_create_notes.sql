-- Each tenant's own notes; the table lives in the tenant's database, so no tenant_id column.
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    created_at REAL NOT NULL
);
CREATE INDEX notes_by_created_at ON notes (created_at);
