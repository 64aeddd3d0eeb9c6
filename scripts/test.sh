#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then runs the tests. Fast suite by default; --all adds the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "--all" ]; then
    shift
    set -- -m "slow or not slow" "$@"
fi
exec .venv/bin/python -m pytest "$@"
