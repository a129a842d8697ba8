#!/bin/sh
# Create bench/.venv: the library (editable) plus the peers it is compared with and the load
# tools. The peers never enter the project's own .venv.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x bench/.venv/bin/python ] || "$PYTHON" -m venv bench/.venv
bench/.venv/bin/pip install --quiet --upgrade pip
bench/.venv/bin/pip install --quiet -e ".[sqlalchemy]" \
    fastapi-tenancy==0.5.0 starlette-context==0.5.1 aiosqlite \
    "uvicorn>=0.30" uvloop httptools "httpx>=0.28" pyinstrument py-spy
if ! command -v wrk >/dev/null 2>&1; then
    echo "note: bench_load.py needs wrk: apt-get install -y wrk" >&2
fi
