#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then shows autoreward on the half cheetah running backwards:
# the generated state description, a check of a reward program, and its training and scores
# against the human and sparse baselines. Needs no network and no LLM; a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
steps="${AUTOREWARD_DEMO_STEPS:-30000}"
echo "== autoreward describe half_cheetah_backward (first lines)"
autoreward describe half_cheetah_backward | head -40
echo "== autoreward train half_cheetah_backward --reward examples/half_cheetah_backward.py --steps $steps --baselines"
autoreward train half_cheetah_backward --reward examples/half_cheetah_backward.py --steps "$steps" --baselines
