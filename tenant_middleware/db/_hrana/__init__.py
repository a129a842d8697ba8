"""The remote backend: libSQL's Hrana protocol over HTTP (sqld, Turso)."""
