"""Exported reward modules: self-contained, and rewarding exactly as autoreward does.

Every exported module runs in a fresh Python in which `import autoreward`
fails, as it would on a machine where only numpy, mujoco, gymnasium (and
SB3) are installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autoreward.contract.reward_program import load
from autoreward.errors import ExportError
from autoreward.loop.runner import Runner
from autoreward.records import ExportInfo
from autoreward.review.export import render_reward_module, write_reward_module
from autoreward.serialize import from_dict, to_dict
from autoreward.sim.state import StateLayout
from autoreward.sim.vec_env import make_vec_env
from autoreward.task.files import find_task, make_env

from .conftest import REPO, human_reward
from .test_forms import LATENT, PROGRESS

INFO = ExportInfo(
    run_id="hopper_forward__run__20261130-101500",
    model="gpt-4o-2024-08-06",
    created="2026-11-30",
    autoreward_version="0.1.0",
    algo="ppo",
    steps=500_000,
    seeds=5,
    round=3,
    candidate_id="r3c2",
    fitness_mean=4.25,
    fitness_std=0.61,
    normalized_score_mean=1.13,
    normalized_score_std=0.21,
)
STEPS = 200

# Runs an exported module in a fresh Python: random actions from a file, resets after every
# terminal or truncated step, and each step's reward, original reward and components to JSON.
ROLLOUT = """
import importlib.util, json, sys
import numpy as np

module_path, actions_path, seed, out_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("exported_reward", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
env = module.make_env()
env.reset(seed=int(seed))
steps = []
for action in np.load(actions_path):
    _, reward, terminated, truncated, info = env.step(action)
    assert type(reward) is float, type(reward)
    steps.append({"reward": reward, "original": info["original_reward"],
                  "components": info["reward_components"], "terminated": terminated, "truncated": truncated})
    if terminated or truncated:
        env.reset()
assert "autoreward" not in sys.modules, "the exported module imported autoreward"
json.dump(steps, open(out_path, "w"))
"""

TRAIN = """
import importlib.util, sys
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env

spec = importlib.util.spec_from_file_location("exported_reward", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
check_env(module.make_env())
model = PPO("MlpPolicy", module.make_env(), n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
model.learn(total_timesteps=256)
assert "autoreward" not in sys.modules, "the exported module imported autoreward"
print("trained", model.num_timesteps)
"""


@pytest.fixture
def fresh_python(tmp_path):
    """Run a script in a new interpreter where autoreward cannot be imported."""
    blocker = tmp_path / "blocker" / "autoreward"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('an exported reward module must not need autoreward')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}

    def run(script: str, *args) -> str:
        result = subprocess.run(
            [sys.executable, "-c", script, *map(str, args)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    return run


def random_actions(task, tmp_path: Path, steps: int) -> Path:
    env = make_env(task)
    shape = env.action_space.shape
    env.close()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, *shape)).astype(np.float32)
    path = tmp_path / "actions.npy"
    np.save(path, actions)
    return path


def exported_rollout(fresh_python, tmp_path: Path, task, code: str, seed: int = 0, steps: int = STEPS) -> list[dict]:
    module = write_reward_module(tmp_path / "reward.py", task, code, INFO)
    actions = random_actions(task, tmp_path, steps)
    out = tmp_path / "steps.json"
    fresh_python(ROLLOUT, module, actions, seed, out)
    return json.loads(out.read_text())


def autoreward_rollout(task, code: str, actions: np.ndarray, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Rewards and components from autoreward's own reward path (the one training uses), step by step."""
    env = make_vec_env(task, n_envs=1, seed=seed, reward_source="program", reward_function=load(code))
    env.reset()
    for action in actions:
        env.step(action[None])
    window = env.take_window()
    env.close()
    components = {name: np.concatenate(chunks) for name, chunks in window.components.items()}
    return np.concatenate(window.rewards), components


# --- the environment's own reward, reproduced through the export -------------------------


def test_exported_hopper_reward_equals_gymnasium_reward_across_terminations(fresh_python, tmp_path, hopper):
    steps = exported_rollout(fresh_python, tmp_path, hopper, human_reward(hopper))
    rewards = np.array([s["reward"] for s in steps])
    np.testing.assert_allclose(rewards, [s["original"] for s in steps], atol=1e-9, rtol=0)
    assert sum(s["terminated"] for s in steps) > 3  # the hopper fell: terminal states were rewarded
    parts = sum(np.array([s["components"][name] for s in steps]) for name in ("forward", "survive", "ctrl"))
    np.testing.assert_allclose(parts, rewards, atol=1e-12, rtol=0)


def test_exported_reward_reads_task_extras(fresh_python, tmp_path):
    task = find_task("reacher_reach")
    # Reacher-v5's own reward written against the task's extra `target_pos`, and without
    # importing numpy: autoreward gives a program np, and so must the exported module.
    code = human_reward(task).replace("import numpy as np\n", "")
    code = code.replace("next_state.bodies.target.pos", "next_state.extras.target_pos")
    assert "extras.target_pos" in code and "import numpy" not in code
    steps = exported_rollout(fresh_python, tmp_path, task, code)
    np.testing.assert_allclose([s["reward"] for s in steps], [s["original"] for s in steps], atol=1e-9, rtol=0)
    assert sum(s["truncated"] for s in steps) >= 3  # 50-step episodes: the rollout crossed resets


# --- any program, rewarded as autoreward rewards it ------------------------------------


def test_exported_example_program_rewards_as_autoreward_does(fresh_python, tmp_path):
    task = find_task("half_cheetah_backward")
    code = (REPO / "examples" / "half_cheetah_backward.py").read_text()
    steps = exported_rollout(fresh_python, tmp_path, task, code, seed=3)
    rewards, components = autoreward_rollout(task, code, np.load(tmp_path / "actions.npy"), seed=3)
    np.testing.assert_allclose([s["reward"] for s in steps], rewards, atol=1e-9, rtol=0)
    for name, values in components.items():
        np.testing.assert_allclose([s["components"][name] for s in steps], values, atol=1e-9, rtol=0, err_msg=name)


def every_field_program(layout: StateLayout) -> str:
    """A program with components for every State field: its values (weighted and summed per environment) and shape."""
    paths = ["time", "qpos", "qvel", "com"]
    paths += [
        f"bodies.{b.name}.{f}" for b in layout.bodies for f in ("pos", "quat", "com", "linvel", "angvel", "cfrc_ext")
    ]
    paths += [f"joints.{j.name}.{f}" for j in layout.joints for f in ("qpos", "qvel")]
    paths += [f"sites.{s.name}.pos" for s in layout.sites]
    paths += [f"sensors.{s.name}" for s in layout.sensors]
    paths += [f"extras.{name}" for name in layout.extras]
    lines = [
        "import numpy as np",
        "",
        "def weighted(x):",
        "    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)",
        "    return np.sum(x * np.arange(1.0, x.shape[1] + 1.0), axis=1)",
        "",
        "def shape(x):  # (N,) -> 1000, (N, 3) -> 2003",
        "    return np.full(len(x), 1000.0 * x.ndim + (x.shape[-1] if x.ndim > 1 else 0))",
        "",
        "def compute_reward(state, action, next_state):",
        "    parts = {'dt': np.full(state.batch_size, state.dt), 'action': weighted(action)}",
    ]
    for path in paths:
        lines.append(f"    parts['before.{path}'] = weighted(state.{path})")
        lines.append(f"    parts['after.{path}'] = weighted(next_state.{path})")
        lines.append(f"    parts['shape.{path}'] = shape(next_state.{path})")
    lines += ["    return sum(parts.values()), parts", ""]
    return "\n".join(lines)


SENSORS = """
    <sensor>
        <jointpos name="knee" joint="leg_joint"/>
        <framepos name="torso_position" objtype="body" objname="torso"/>
        <subtreelinvel name="momentum" body="torso"/>
    </sensor>
</mujoco>"""


def hopper_with_sensors(folder: Path):
    """hopper_forward on a copy of Hopper-v5's model with three sensors, passed as an env keyword."""
    import gymnasium.envs.mujoco

    model = Path(gymnasium.envs.mujoco.__file__).parent / "assets" / "hopper.xml"
    path = folder / "hopper_with_sensors.xml"
    path.write_text(model.read_text().replace("</mujoco>", SENSORS))
    return dataclasses.replace(find_task("hopper_forward"), env_kwargs={"xml_file": str(path)})


@pytest.mark.parametrize("task_id", ["ant_forward", "inverted_double_pendulum_balance", "reacher_reach", "sensors"])
def test_exported_state_holds_every_field_as_autoreward_builds_it(fresh_python, tmp_path, task_id):
    """Ant: a free joint and contacts; the pendulum: a site and terminations; Reacher: two
    kinematic trees; a hopper with sensors: sensors, terminations and an env keyword."""
    task = hopper_with_sensors(tmp_path) if task_id == "sensors" else find_task(task_id)
    task = dataclasses.replace(task, extras={"first_joint_qvel": "qvel", "root_com": "bodies.world.com"})
    env = make_env(task)
    layout = StateLayout.from_env(env, extras=task.extras)
    env.close()
    assert len(layout.sensors) == (3 if task_id == "sensors" else 0)
    code = every_field_program(layout)
    steps = exported_rollout(fresh_python, tmp_path, task, code, seed=7, steps=STEPS // 2)
    _, components = autoreward_rollout(task, code, np.load(tmp_path / "actions.npy"), seed=7)
    if task_id in ("inverted_double_pendulum_balance", "sensors"):
        assert any(s["terminated"] for s in steps)
    assert len(components) == len(steps[0]["components"])
    for name, values in components.items():
        np.testing.assert_allclose([s["components"][name] for s in steps], values, atol=1e-9, rtol=1e-12, err_msg=name)


# --- training, and what the file says ---------------------------------------------------


@pytest.mark.slow  # importing torch alone takes seconds on two busy cores
def test_exported_module_trains_with_ppo(fresh_python, tmp_path, hopper):
    module = write_reward_module(tmp_path / "hopper_reward.py", hopper, human_reward(hopper), INFO)
    assert "trained 256" in fresh_python(TRAIN, module)


def test_header_carries_task_provenance_and_scores(hopper):
    text = render_reward_module(hopper, human_reward(hopper), INFO, module_name="hopper_reward")
    header = text.split('"""')[1]
    for expected in (
        "hopper_forward",
        "Hopper-v5",
        hopper.description,
        "hopper_forward__run__20261130-101500",
        "round 3",
        "candidate r3c2",
        "gpt-4o-2024-08-06",
        "2026-11-30",
        "autoreward 0.1.0",
        "PPO, 500,000 steps, 5 seeds",
        "fitness: 4.25 ± 0.61",
        "distance travelled along +x",
        "human-normalized score: 1.13 ± 0.21",
        "from hopper_reward import make_env",
    ):
        assert expected in header, expected
    assert human_reward(hopper).strip() in text  # the program, verbatim


def test_unmeasured_scores_say_so(hopper):
    info = dataclasses.replace(INFO, model="human", fitness_mean=None, fitness_std=None, normalized_score_mean=None)
    header = render_reward_module(hopper, human_reward(hopper), info).split('"""')[1]
    assert "fitness: not measured" in header and "human-normalized score: not measured" in header


def test_export_info_round_trips_through_json():
    assert from_dict(ExportInfo, json.loads(json.dumps(to_dict(INFO)))) == INFO


def test_programs_that_cannot_be_exported_are_refused_with_the_reason(hopper):
    with pytest.raises(ExportError, match="`import os` is not allowed"):
        render_reward_module(hopper, "import os\ndef compute_reward(state, action, next_state):\n    pass\n", INFO)
    clash = human_reward(hopper) + "\ndef make_env():\n    return None\n"
    with pytest.raises(ExportError, match="defines make_env, which the exported module defines too"):
        render_reward_module(hopper, clash, INFO)


REPRODUCE = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reproduced
seed = int(sys.argv[2])
model, normalizer = reproduced.train(seed=seed)
scores = reproduced.evaluate(model, normalizer)
print(json.dumps({"scores": scores, "mean": float(np.mean(scores)), "recorded": reproduced.RECORDED_SCORES[seed]}))
loaded = reproduced.evaluate(*reproduced.load_policy())
print(json.dumps({"loaded": loaded, "policy_seed": reproduced.POLICY_SEED}))
"""


@pytest.mark.slow  # two trainings (autoreward's and the module's) and torch in a fresh Python
def test_the_exported_module_reproduces_its_recorded_score_without_autoreward(fresh_python, tmp_path, hopper, jail):
    from autoreward.config import TrainingConfig
    from autoreward.loop.training import train

    config = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2, seed=3, video=False)
    trained = train(hopper, config, tmp_path / "training", human_reward(hopper), runner=Runner.connect(jail=jail))
    info = dataclasses.replace(
        INFO, training=config, recorded_scores={3: trained.evaluation.fitness_mean}, policy_seed=3
    )
    module = write_reward_module(
        tmp_path / "export" / "reproduced.py", hopper, human_reward(hopper), info, policy_dir=tmp_path / "training"
    )
    # Arrays only: the weights and the normalizer's statistics, never SB3's pickles.
    assert {p.name for p in module.parent.iterdir()} >= {"reproduced_policy.npz", "reproduced_normalizer.npz"}
    assert not [p for p in module.parent.iterdir() if p.suffix in (".zip", ".pkl")]
    text = module.read_text()
    sections = [
        text.index(s)
        for s in (
            "# 0. How autoreward trained",
            "# 1. The reward program",
            "# 2. The State",
            "# 3. The wrapper",
            "# 4. The environment",
            "# 5. Training and scoring",
        )
    ]
    assert sections == sorted(sections)  # recipe, reward, State, wrapper, make_env, train and evaluate
    assert "n_envs: int = 2" in text and "total_steps: int = 1024" in text and "RECORDED_SCORES = {3: " in text
    reproduced, loaded = map(json.loads, fresh_python(REPRODUCE, module.parent, 3).strip().splitlines()[-2:])
    # Bit for bit: the same environments, seeds, learner, thread count and held-out episodes.
    assert reproduced["scores"] == [e.fitness for e in trained.evaluation.episodes]
    assert reproduced["mean"] == reproduced["recorded"] == trained.evaluation.fitness_mean
    # The run's own policy and normalization, loaded from beside the module, score the same episodes again.
    assert loaded == {"loaded": reproduced["scores"], "policy_seed": 3}


def test_a_policy_is_exported_only_from_a_folder_that_holds_one(tmp_path, hopper):
    with pytest.raises(ExportError, match="no trained policy to export"):
        write_reward_module(tmp_path / "reward.py", hopper, human_reward(hopper), INFO, policy_dir=tmp_path)


@pytest.mark.parametrize(
    "algo, device", [("ppo", "cpu"), ("ppo", "cuda"), ("sac", "cpu")], ids=["ppo", "ppo-gpu", "sac"]
)
def test_the_exported_module_gives_the_algorithm_the_settings_autoreward_trained_with(hopper, algo, device):
    # One rule (training.algorithm_settings) for the worker and the export: a policy trained on a GPU had larger
    # PPO minibatches, and the module that is to reproduce its score must use them too.
    from autoreward.config import TrainingConfig
    from autoreward.loop.training import algorithm_settings

    recipe = TrainingConfig.from_budget(hopper.budget, algo=algo, steps=65_536, n_envs=16, device=device)
    text = render_reward_module(hopper, human_reward(hopper), dataclasses.replace(INFO, algo=algo, training=recipe))
    namespace: dict = {}
    exec(compile(text, "<exported>", "exec"), namespace)  # our own template, rendered from our own program
    settings = algorithm_settings(recipe)
    assert {name: getattr(namespace["TRAINING"], name) for name in settings} == settings
    for name in settings:
        assert f"        {name}=training.{name},\n" in text  # and train() passes each one to SB3
    if algo == "ppo":
        cpu = algorithm_settings(dataclasses.replace(recipe, device="cpu"))
        assert (settings["batch_size"] > cpu["batch_size"]) == (device == "cuda")


# --- the progress and latent forms: their training reward, carried and reproduced -----------------

# Steps a progress or latent module's environments as SB3's DummyVecEnv does (each in turn, reset when
# done), all sharing one form reward, and writes each step's reward and parts and what the form learned.
FORM_ROLLOUT = """
import importlib.util, json, sys
import numpy as np

module_path, actions_path, seed, out_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("exported_reward", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
progress = hasattr(module, "ProgressCounts")
form_reward = module.ProgressCounts() if progress else module.LatentDecomposition()
actions = np.load(actions_path)
envs = [module.make_env(form_reward) for _ in range(actions.shape[1])]
for row, env in enumerate(envs):
    env.reset(seed=int(seed) + row)
steps = []
for batch in actions:
    for row, env in enumerate(envs):
        _, reward, terminated, truncated, info = env.step(batch[row])
        steps.append({"reward": reward, "components": info["reward_components"], "score": info.get("task_score")})
        if terminated or truncated:
            env.reset()
if progress:
    learned = {"counts": sorted([*level, n] for level, n in form_reward.counts.items())}
else:
    learned = {"weights": form_reward.weights.tolist(), "fitted": form_reward.fitted}
assert "autoreward" not in sys.modules, "the exported module imported autoreward"
json.dump({"steps": steps, "learned": learned}, open(out_path, "w"))
"""


def car_task(reduce: str = "sum", higher_is_better: bool = True):
    """mountain_car_quick, or the same car scored by another reduction and direction of its task score."""
    task = find_task("mountain_car_quick")
    if reduce == "sum" and higher_is_better:
        return task
    step = "next_state.obs.position" if reduce == "last" else "np.abs(next_state.obs.velocity)"
    fitness = dataclasses.replace(task.fitness, step=step, reduce=reduce, higher_is_better=higher_is_better)
    return dataclasses.replace(task, fitness=fitness)


@pytest.mark.parametrize(
    "program, reduce, higher_is_better",
    [(PROGRESS, "sum", True), (PROGRESS, "last", False), (LATENT, "sum", True), (LATENT, "mean", False)],
    ids=["progress", "progress-last-lower", "latent", "latent-mean-lower"],
)
def test_an_exported_progress_or_latent_module_pays_what_autoreward_trains_on(
    fresh_python, tmp_path, program, reduce, higher_is_better
):
    """Two environments sharing one form reward, over 650 steps each: episodes end together at 300 steps,
    so a latent fit is refitted on two episodes that ended at the same step, after both were paid."""
    from autoreward.config import TrainingConfig
    from autoreward.loop.training import training_reward

    task = car_task(reduce, higher_is_better)
    module = write_reward_module(tmp_path / "reward.py", task, program, INFO)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(650, 2, 1)).astype(np.float32)
    np.save(tmp_path / "actions.npy", actions)
    fresh_python(FORM_ROLLOUT, module, tmp_path / "actions.npy", 5, tmp_path / "out.json")
    exported = json.loads((tmp_path / "out.json").read_text())

    reward = training_reward(program, TrainingConfig.from_budget(task.budget, n_envs=2))
    env = make_vec_env(task, n_envs=2, seed=5, reward_source="program", reward_function=reward)
    env.reset()
    rewards = np.array([env.step(batch)[1] for batch in actions])  # float32, as the learner gets them
    window = env.take_window()
    env.close()

    steps = exported["steps"]
    # What the learner is paid: the float32 of the same float64 reward, step by step and environment by environment.
    np.testing.assert_array_equal(np.float32([s["reward"] for s in steps]), rewards.reshape(-1))
    for name, chunks in window.components.items():
        np.testing.assert_array_equal([s["components"][name] for s in steps], np.concatenate(chunks), err_msg=name)
    assert [s["score"] for s in steps if s["score"] is not None] == [e.fitness for e in window.episodes]
    assert len(window.episodes) == 4
    if program == PROGRESS:
        counts = sorted([*np.frombuffer(level, dtype=np.int16).tolist(), n] for level, n in reward.counts.items())
        assert exported["learned"]["counts"] == counts
    else:
        assert exported["learned"] == {"weights": reward.weights.tolist(), "fitted": 4}
        assert any(w != 0.0 for w in reward.weights)


FORM_REPRODUCE = """
import json, sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import reproduced
seed = int(sys.argv[2])
progress = hasattr(reproduced, "ProgressCounts")
form_reward = reproduced.ProgressCounts() if progress else reproduced.LatentDecomposition()
model, normalizer = reproduced.train(seed=seed, form_reward=form_reward)
scores = reproduced.evaluate(model, normalizer)
loaded, loaded_normalizer = reproduced.load_policy()
weights = loaded.policy.state_dict()
same_policy = all(torch.equal(value, weights[name]) for name, value in model.policy.state_dict().items())
same_policy = same_policy and np.array_equal(normalizer.obs_rms.mean, loaded_normalizer.obs_rms.mean)
if progress:
    learned = {"bins_visited": len(form_reward.counts)}
else:
    learned = {"weights": dict(zip(form_reward.names, form_reward.weights.tolist())), "fitted": form_reward.fitted}
print(json.dumps({"scores": scores, "recorded": reproduced.RECORDED_SCORES[seed], "same_policy": same_policy,
                  "learned": learned}))
"""


@pytest.mark.slow  # two trainings (autoreward's and the module's) and torch in a fresh Python
@pytest.mark.parametrize("program", [PROGRESS, LATENT], ids=["progress", "latent"])
def test_an_exported_progress_or_latent_module_reproduces_its_training_and_score(fresh_python, tmp_path, jail, program):
    from autoreward.config import TrainingConfig
    from autoreward.loop.training import train

    car = find_task("mountain_car_quick")
    config = TrainingConfig(steps=4000, n_envs=2, eval_episodes=2, seed=3, video=False)
    trained = train(car, config, tmp_path / "training", program, runner=Runner.connect(jail=jail))
    report = trained.form_report
    info = dataclasses.replace(
        INFO,
        training=config,
        recorded_scores={3: trained.evaluation.fitness_mean},
        policy_seed=3,
        form_report=report,
        form_seed=3,
    )
    module = write_reward_module(
        tmp_path / "export" / "reproduced.py", car, program, info, policy_dir=tmp_path / "training"
    )
    reproduced = json.loads(fresh_python(FORM_REPRODUCE, module.parent, 3).strip().splitlines()[-1])
    assert reproduced["scores"] == [e.fitness for e in trained.evaluation.episodes]
    assert np.mean(reproduced["scores"]) == reproduced["recorded"] == trained.evaluation.fitness_mean
    # Bit for bit the same learner: the module's training paid every step what autoreward's did.
    assert reproduced["same_policy"]
    if program == PROGRESS:
        assert reproduced["learned"] == {"bins_visited": report.bins_visited}
    else:
        fitted = {term.name: term.weight for term in report.terms}
        assert reproduced["learned"] == {"weights": fitted, "fitted": report.episodes_fitted}
        assert report.episodes_fitted >= 2 and any(fitted.values())


def test_an_export_names_its_form_and_carries_what_its_training_learned(tmp_path):
    from autoreward.records import FormReport, FormTerm

    car = find_task("mountain_car_quick")
    latent = FormReport(
        form="latent",
        terms=(
            FormTerm("climb", -0.8, 0.9, 0.1234567890123),
            FormTerm("speed", 0.0, 0.6, -2.5e-3),
            FormTerm("effort", 0.0, 1.0, 0.0),
        ),
        episodes_fitted=12,
    )
    text = render_reward_module(car, LATENT, dataclasses.replace(INFO, form_report=latent, form_seed=4))
    header = text.split('"""')[1]
    assert "Form: latent" in header and "on seed 4 fitted, on 12 episodes in all" in header
    assert "climb: 0.1235  (the term ranged over [-0.8, 0.9])" in header
    assert 'FITTED_WEIGHTS = {"climb": 0.1234567890123, "speed": -0.0025, "effort": 0.0}' in text
    assert "latent_episodes: int = 64" in text and "RIDGE = 0.001" in text

    # The weights, held fixed, are a plain reward: each term times its weight, in the wrapper and in fitted_reward.
    namespace: dict = {}
    exec(compile(text, "<exported>", "exec"), namespace)  # our own template, rendered from our own program
    weights = namespace["FITTED_WEIGHTS"]
    env = namespace["make_env"](namespace["LatentDecomposition"](weights=weights))
    env.reset(seed=0)
    for action in np.random.default_rng(0).uniform(-1, 1, size=(20, 1)):
        state = env._state
        _, reward, _, _, info = env.step(action.astype(np.float32))
        parts = {name: value * weights[name] for name, value in info["terms"].items()}
        assert info["reward_components"] == pytest.approx(parts, rel=1e-12, abs=0)
        assert reward == pytest.approx(sum(parts.values()), rel=1e-12)
        total, components = namespace["fitted_reward"](state, action.reshape(1, 1), env._state)
        assert float(total[0]) == pytest.approx(reward, rel=1e-12)
    env.close()

    progress = FormReport(
        form="progress",
        terms=(FormTerm("height", 0.2, 0.55), FormTerm("speed", 0.0, 0.4)),
        bins=10,
        bins_visited=23,
        beta=0.1,
    )
    text = render_reward_module(car, PROGRESS, dataclasses.replace(INFO, form_report=progress, form_seed=4))
    header = text.split('"""')[1]
    assert "Form: progress" in header and "0.1 / sqrt(n)" in header
    assert "on seed 4 learned: it visited 23 of the 100 bins" in header and "height: [0.2, 0.55]" in header
    assert "The count table itself is not carried" in header
    assert "progress_beta: float = 0.1" in text and "progress_bins: int = 5" in text

    # A dense reward says its form too; a form that trains on the task score needs one.
    assert "Form: reward" in render_reward_module(car, human_reward(car), INFO).split('"""')[1]
    words = dataclasses.replace(car, fitness=None)
    with pytest.raises(ExportError, match="has no task score"):
        render_reward_module(words, PROGRESS, INFO)
