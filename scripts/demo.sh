#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then runs the whole design loop offline on the mountain car getting to
# its flag as quickly as it can: LLM replies replayed from a shipped transcript (envs/demo/mountain_car_quick.md),
# real checks, real training, a final multi-seed evaluation, and the best reward exported as a
# self-contained module. Then that module is imported in a fresh Python and trains SB3 PPO.
# Needs no network and no LLM; about ten minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
steps="${AUTOREWARD_DEMO_STEPS:-60000}"
echo "== autoreward demo --steps $steps --output reward.py"
autoreward demo --steps "$steps" --output reward.py
echo "== the exported reward.py, imported in a fresh Python, wraps MountainCarContinuous-v0 and trains with SB3 PPO"
python - <<'PY'
import importlib.util
import sys

spec = importlib.util.spec_from_file_location("reward", "reward.py")
reward = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reward)
from stable_baselines3 import PPO

env = reward.make_env()
model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, verbose=0).learn(2048)
obs, _ = env.reset(seed=0)
obs, r, terminated, truncated, info = env.step(model.predict(obs, deterministic=True)[0])
print(f"trained 2048 steps; one step's reward {r:.3f} with components {info['reward_components']}")
assert "autoreward" not in sys.modules, "the exported module must not need autoreward"
PY
