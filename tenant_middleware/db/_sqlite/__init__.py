"""The local backend: a SQLite/libSQL file, its statements run on a worker thread."""
