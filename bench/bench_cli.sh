#!/bin/bash
# CLI start-up, side by side: the working tree against a git ref (default HEAD~1), each run as
# `python -m tenant_middleware` with only that tree on PYTHONPATH (from /tmp, so the current
# directory does not shadow it). Needs hyperfine (Debian package `hyperfine`).
# Usage: bench/bench_cli.sh [REF]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REF=${1:-HEAD~1}
PY=$ROOT/.venv/bin/python
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/before" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
git -C "$ROOT" worktree add -q "$WORK/before" "$REF"
mkdir -p "$WORK/after"
cp -r "$ROOT/tenant_middleware" "$ROOT/integrations" "$WORK/after/"
rm -f "$WORK/after/tenant_middleware/integrations"
ln -s "$WORK/after/integrations" "$WORK/after/tenant_middleware/integrations"
export TENANCY_DATA_DIR=$WORK/data
cd /tmp
commands=()
for args in "--help" "generate-key" "list"; do
  for tree in before after; do
    commands+=("env PYTHONPATH=$WORK/$tree $PY -m tenant_middleware $args")
  done
done
hyperfine -N --warmup 2 --runs "${RUNS:-20}" "${commands[@]}"
