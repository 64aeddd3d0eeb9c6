#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then runs the tests. Fast suite by default; --all adds the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Where bubblewrap works, the jail's tests must run, not skip: a jail that breaks is an error.
if bwrap --unshare-user --unshare-net --unshare-pid --ro-bind / / true 2>/dev/null; then
    export AUTOREWARD_JAIL="${AUTOREWARD_JAIL:-require}"
fi
# setup.sh installs MuJoCo Warp, so its tests must run, not skip for want of it.
export AUTOREWARD_WARP="${AUTOREWARD_WARP:-require}"
if [ "${1:-}" = "--all" ]; then
    shift
    set -- -m "slow or not slow" "$@"
fi
exec .venv/bin/python -m pytest "$@"
