#!/bin/sh
# Run every bench script in order; extra arguments (--quick, --no-write) go to each.
set -eu
cd "$(dirname "$0")/.."
[ -x bench/.venv/bin/python ] || sh bench/setup.sh
for name in overhead cache db dbpath scale migrate load orm; do
    echo "== bench_$name.py $*"
    bench/.venv/bin/python "bench/bench_$name.py" "$@"
done
