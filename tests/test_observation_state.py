"""The observation State: any gymnasium environment with a flat Box observation, named from its documentation.

Classic control needs no extra package, so these run on gymnasium's own Pendulum, MountainCarContinuous and
CartPole, and on small environments made here for what gymnasium does not ship (no docstring, a Dict space).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from autoreward.contract.checker import collect_transitions
from autoreward.errors import TaskError
from autoreward.loop.runner import Runner
from autoreward.sim.observation_state import ObservationLayout, field_name, state_layout
from autoreward.sim.vec_env import make_vec_env
from autoreward.task.describe import describe_task
from autoreward.task.files import find_task, task_from_sentence
from tests.conftest import ONE_ROUND_FLAGS, REPO, run_autoreward


def test_describe_names_pendulum_and_mountain_car_fields_with_their_ranges(tmp_path):
    pendulum = run_autoreward("describe", "Pendulum-v1", cwd=tmp_path)
    assert pendulum.returncode == 0, pendulum.stderr
    assert "cos_theta: np.ndarray  # (N,) obs[:, 0]: x = cos(theta); range [-1, 1]" in pendulum.stdout
    assert "sin_theta: np.ndarray  # (N,) obs[:, 1]: y = sin(theta); range [-1, 1]" in pendulum.stdout
    assert "angular_velocity: np.ndarray  # (N,) obs[:, 2]: Angular Velocity; range [-8, 8]" in pendulum.stdout
    assert "dt: float  # 0.05 s" in pendulum.stdout
    assert "#   0: Torque, range [-2, 2]" in pendulum.stdout
    # The environment's own reward is never shown: the designer writes a new one.
    assert "0.001 * torque" not in pendulum.stdout and "Reward" not in pendulum.stdout
    car = describe_task(task_from_sentence("MountainCarContinuous-v0", "reach the flag"))
    assert "position: np.ndarray  # (N,) obs[:, 0]: position of the car along the x-axis; range [-1.2, 0.6]" in car
    assert "velocity: np.ndarray  # (N,) obs[:, 1]: velocity of the car; range [-0.07, 0.07]" in car
    assert "time: np.ndarray  # (N,) steps since the episode began" in car  # it says no dt
    assert "greater than or equal to 0.45" in car  # its documented termination
    assert "+100" not in car


def test_discrete_actions_are_listed_and_arrive_as_integers_of_shape_n():
    text = describe_task(task_from_sentence("CartPole-v1", "balance"))
    assert "# action: np.ndarray of shape (N,), integers: which of the 2 actions was taken" in text
    assert "#   0: Push cart to the left" in text
    states, actions, next_states = collect_transitions(task_from_sentence("CartPole-v1", "balance"), 32, seed=0)
    assert actions.shape == (32,) and actions.dtype == np.int64 and set(actions) <= {0, 1}
    assert states.obs.pole_angle.shape == (32,)
    env = make_vec_env(task_from_sentence("CartPole-v1", "balance"), 3, seed=0, reward_source="native")
    seen = []
    env.observers.append(lambda state, action, next_state: seen.append(action))
    env.reset()
    env.step(np.array([0, 1, 1]))
    assert seen[0].shape == (3,) and seen[0].tolist() == [0, 1, 1]
    env.close()


def test_the_state_is_the_observation_as_the_policy_got_it_and_is_read_only():
    env = make_vec_env(task_from_sentence("Pendulum-v1", "swing up"), 2, seed=3, reward_source="native")
    first = env.reset()
    seen = []

    def observe(state, action, next_state):  # the States are views of buffers that the next step refills
        seen.append((np.array(state.obs), next_state.obs[:, :].copy(), next_state.obs.angular_velocity.copy()))
        seen.append((state.time.copy(), next_state.time.copy(), next_state.dt))

    env.observers.append(observe)
    second, *_ = env.step(np.zeros((2, 1)))
    (before, after, speed), (time, next_time, dt) = seen
    np.testing.assert_array_equal(before, first)
    np.testing.assert_array_equal(after, second)
    np.testing.assert_array_equal(speed, second[:, 2])
    assert time.tolist() == [0.0, 0.0] and next_time.tolist() == [0.05, 0.05] and dt == 0.05
    env.observers.append(lambda state, action, next_state: seen.append(next_state))
    third, *_ = env.step(np.zeros((2, 1)))
    next_state = seen[-1]
    # The observation computes like an array: arithmetic, numpy functions, indexing.
    np.testing.assert_allclose(np.sum(next_state.obs * 2, axis=1), 2 * third.sum(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        next_state.obs.cos_theta[:] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        np.add(next_state.obs, 1.0, out=next_state.obs)
    with pytest.raises(AttributeError, match="read-only"):
        next_state.obs = None
    with pytest.raises(AttributeError, match="its fields are cos_theta, sin_theta, angular_velocity"):
        next_state.obs.theta
    mine = next_state.obs.copy()  # as an array's copy(): the program's own, writable; the State is untouched
    mine[:] = 0.0
    np.testing.assert_allclose(np.asarray(next_state.obs), third, rtol=1e-6)
    env.close()


class Undocumented(gym.Env):
    observation_space = gym.spaces.Box(-2.0, 3.0, (2,))
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.ones(2, dtype=np.float32), 0.0, False, False, {}


class WithDict(Undocumented):
    """## Observation Space

    | Num | Observation | Min | Max |
    |-----|-------------|-----|-----|
    | 0   | Cart Position | -1 | 1 |
    """

    observation_space = gym.spaces.Dict({"position": gym.spaces.Box(-1.0, 1.0, (1,))})


class WithMultiDiscreteActions(Undocumented):
    action_space = gym.spaces.MultiDiscrete([3, 2])


def test_an_undocumented_observation_is_read_by_column_with_the_bounds_of_its_space():
    layout = ObservationLayout.from_env(Undocumented())
    assert not layout.documented and [f.path for f in layout.fields] == ["obs[:, 0]", "obs[:, 1]"]
    assert (layout.fields[1].low, layout.fields[1].high) == (-2.0, 3.0)
    state = layout.state(layout.allocate(4))
    assert state.obs[:, 1].shape == (4,)
    with pytest.raises(AttributeError, match="its columns have no names"):
        state.obs.x0
    with pytest.raises(AttributeError, match="does not say how long a step lasts"):
        state.dt


@pytest.mark.parametrize(
    "env, said",
    [
        (WithDict(), "has a Dict observation; autoreward supports MuJoCo environments, and any other environment "),
        (gym.make("FrozenLake-v1"), "FrozenLake-v1 has a Discrete observation; autoreward supports"),
        (WithMultiDiscreteActions(), "has a MultiDiscrete action space; autoreward supports MuJoCo environments"),
    ],
)
def test_an_observation_it_cannot_describe_is_refused_in_one_sentence_saying_what_is_supported(env, said):
    with pytest.raises(TaskError, match=said) as refused:
        state_layout(env)
    assert "flat Box (a vector of numbers)" in str(refused.value) and "\n" not in str(refused.value)


def test_the_cli_refuses_an_image_observation_without_a_traceback(tmp_path):
    pytest.importorskip("Box2D", reason="CarRacing needs the box2d extra (scripts/setup.sh installs it)")
    result = run_autoreward("describe", "CarRacing-v3", cwd=tmp_path)
    assert result.returncode != 0
    said = " ".join(result.stderr.split())
    assert "CarRacing-v3 has a Box observation of shape (96, 96, 3); autoreward supports MuJoCo environments" in said
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "meaning, name",
    [
        ("x = cos(theta)", "cos_theta"),
        ("Angular Velocity", "angular_velocity"),
        ("position of the car along the x-axis", "position"),
        ("Cosine of `theta1`", "cos_theta1"),
        ("Angular velocity of `theta2`", "angular_velocity_theta2"),
        ("Pole Angular Velocity", "pole_angular_velocity"),
    ],
)
def test_documented_quantities_get_short_python_names(meaning, name):
    assert field_name(meaning) == name


def test_sac_is_refused_for_discrete_actions_before_any_worker(tmp_path):
    from autoreward.config import TrainingConfig
    from autoreward.loop.training import train

    config = TrainingConfig(algo="sac", steps=100)
    with pytest.raises(TaskError, match=r"SAC trains only continuous \(Box\) actions, and CartPole-v1's are Discrete"):
        train(task_from_sentence("CartPole-v1", "balance"), config, tmp_path, code="x", runner=Runner.connect())


@pytest.mark.slow
def test_ppo_trains_a_discrete_environment_in_a_worker_on_a_reward_over_named_fields(tmp_path):
    reward = tmp_path / "upright.py"
    reward.write_text(
        "import numpy as np\n\n\n"
        "def compute_reward(state, action, next_state):\n"
        "    upright = 1.0 - np.abs(next_state.obs.pole_angle) / 0.21\n"
        "    still = -0.01 * (action == 1)\n"
        "    return upright + still, {'upright': upright, 'still': still}\n"
    )
    args = ("train", "CartPole-v1", "--reward", str(reward), "--steps", "512", "--eval-episodes", "1")
    result = run_autoreward(*args, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed: passed: 2 components" in result.stdout
    assert "1 held-out episodes" in " ".join(result.stdout.split())


@pytest.mark.parametrize("task_id", ["pendulum_swing_up", "mountain_car_reach_flag", "lunar_lander_land"])
def test_the_exported_module_builds_the_observation_state_and_rewards_as_autoreward_does(tmp_path, task_id):
    """In a fresh Python where autoreward cannot be imported, the export's rewards equal autoreward's own (the
    lander's too: its reward reads the environment's game_over and lander.awake, which the export reads as well)."""
    from autoreward.contract.reward_program import load
    from autoreward.review.export import write_reward_module
    from autoreward.task.files import find_task
    from tests.conftest import human_reward
    from tests.test_export import INFO, ROLLOUT

    task = find_task(task_id)
    code = human_reward(task)
    module = write_reward_module(tmp_path / "reward.py", task, code, INFO)
    width = 2 if task.env_id.startswith("LunarLander") else 1
    actions = np.random.default_rng(0).uniform(-1, 1, size=(250, width)).astype(np.float32)
    np.save(tmp_path / "actions.npy", actions)
    blocker = tmp_path / "blocker" / "autoreward"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('an exported reward module must not need autoreward')\n")
    script = [
        sys.executable,
        "-c",
        ROLLOUT,
        str(module),
        str(tmp_path / "actions.npy"),
        "0",
        str(tmp_path / "out.json"),
    ]
    done = subprocess.run(
        script, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(blocker.parent)}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    exported = json.loads((tmp_path / "out.json").read_text())
    env = make_vec_env(task, n_envs=1, seed=0, reward_source="program", reward_function=load(code))
    env.reset()
    for action in actions:
        env.step(action[None])
    rewards = np.concatenate(env.take_window().rewards)
    env.close()
    np.testing.assert_array_equal([step["reward"] for step in exported], rewards)
    assert "mujoco" not in module.read_text().split('"""', 2)[1]  # the header's requirements
    if task.extras:  # random thrust crashes the lander: its -100 came from the reading of game_over
        assert -100.0 in rewards


def test_a_classic_control_policy_gets_a_video_from_the_environments_own_rendering(tmp_path):
    pytest.importorskip("pygame", reason="classic control renders with pygame: the classic extra (scripts/setup.sh)")
    import av

    from autoreward.sim.video import HEIGHT, WIDTH, record_video
    from autoreward.task.files import find_task

    class StillPolicy:
        def predict(self, observation, deterministic=True):
            return np.zeros(1, dtype=np.float32), None

    path = record_video(StillPolicy(), find_task("pendulum_swing_up"), seed=0, path=tmp_path / "video.mp4")
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 201  # the reset, then each of the episode's 200 steps (20 steps/s is under MAX_FPS)
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    assert (frames[0] < 200).any()  # something drawn on gymnasium's white background: the pendulum


# --- readings: what the environment knows and its observation leaves out -----------------------------


def test_a_task_reads_what_the_lander_knows_and_its_observation_leaves_out_into_read_only_extras():
    from autoreward.task.files import find_task

    task = find_task("lunar_lander_land")  # extras game_over = "env.game_over", awake = "env.lander.awake"
    env = make_vec_env(task, 2, seed=0, reward_source="native")
    env.reset()
    env.action_space.seed(0)
    seen = []

    def observe(state, action, next_state):  # copies: the buffers are refilled (a reset row at once)
        seen.append({name: np.array(state.resolve(path)) for name, path in (("x", "obs"), *task.extras.items())})
        seen.append({name: np.array(next_state.resolve(path)) for name, path in (("x", "obs"), *task.extras.items())})
        with pytest.raises(ValueError, match="read-only"):
            next_state.extras.game_over[:] = 0.0

    env.observers.append(observe)
    ended = None
    for _ in range(1000):  # random thrust: the lander crashes within a few hundred steps
        _, rewards, dones, _ = env.step(np.stack([env.action_space.sample() for _ in range(2)]))
        before, after = seen[-2:]
        assert after["game_over"].shape == (2,) and after["awake"].shape == (2,)
        if dones.any():
            ended = int(np.flatnonzero(dones)[0])
            break
    assert ended is not None and rewards[ended] == -100.0
    crashed = after["game_over"][ended] == 1.0 or abs(after["x"][ended, 0]) >= 1.0
    assert crashed, "a -100 without a crash the readings show, nor the lander out of view"
    assert before["game_over"][ended] == 0.0 and before["awake"][ended] == 1.0  # the step before
    # The next step starts from the reset: a lander that has not crashed, awake.
    env.step(np.zeros((2, 2)))
    before = seen[-2]
    assert before["game_over"][ended] == 0.0 and before["awake"][ended] == 1.0
    env.close()
    described = describe_task(task)
    assert "    game_over: np.ndarray  # (N,) the environment's own `game_over` after each reset and step" in described
    assert "    awake: np.ndarray  # (N,) the environment's own `lander.awake` after each reset and step" in described


LANDER_TASK = """
id = "lander_{name}"
env = "LunarLanderContinuous-v3"
description = "Land."
[extras]
{name} = "{path}"
"""


@pytest.mark.parametrize("command", ["describe", "check", "run"])
def test_a_reading_the_environment_lacks_is_one_sentence_naming_the_file_and_leaves_no_run_folder(tmp_path, command):
    path = tmp_path / "lander.toml"
    path.write_text(LANDER_TASK.format(name="awake", path="env.lander.awak"))
    (tmp_path / "reward.py").write_text("def compute_reward(state, action, next_state):\n    return 0, {}\n")
    extra = {
        "describe": [],
        "check": ["--reward", "reward.py"],
        "run": ["--llm", "replay", "--transcript", "reward.py"],
    }
    result = run_autoreward(command, str(path), *extra[command], cwd=tmp_path)
    said = " ".join(result.stderr.split())
    assert result.returncode == 2 and "Traceback" not in result.stderr, said
    assert f"{path} [extras]: 'awake' reads env.lander.awak, which LunarLander (LunarLanderContinuous-v3)" in said
    assert "no attribute 'awak'; did you mean 'awake'?" in said
    assert not (tmp_path / "runs").exists()


def test_a_reading_must_name_a_number_of_the_environment_and_only_an_environment_without_a_model_has_them():
    from autoreward.sim.state import StateLayout
    from autoreward.task.files import check_readings, make_env, parse_task

    for bad in ("env.lander..awake", "env.__class__", "env.lander.awake()"):
        with pytest.raises(TaskError, match=r"lander.toml \[extras\]: 'awake' = .* must name an attribute"):
            parse_task(LANDER_TASK.format(name="awake", path=bad), "lander.toml")
    task = parse_task(LANDER_TASK.format(name="lander", path="env.lander"), "lander.toml")
    env = make_env(task)
    with pytest.raises(TaskError, match=r"'lander' reads env.lander, .* it is a b2Body, not a number or true/false"):
        check_readings(task, env)
    env.close()
    hopper = gym.make("Hopper-v5")
    with pytest.raises(TaskError, match="reads the environment, which only a task without a MuJoCo model does"):
        StateLayout.from_env(hopper, extras={"skip": "env.frame_skip"})
    hopper.close()


# Trains the exported reward's policy again and scores it, then scores the run's own policy, in a Python where
# autoreward cannot be imported (PYTHONPATH puts a package of that name first that refuses to load).
REPRODUCE = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import pendulum
model, normalizer = pendulum.train(seed=0)
scores = pendulum.evaluate(model, normalizer)
loaded = pendulum.evaluate(*pendulum.load_policy())
assert "autoreward" not in sys.modules, "the exported module imported autoreward"
print(json.dumps({"scores": scores, "recorded": pendulum.RECORDED_SCORES[0], "loaded": loaded}))
"""


@pytest.mark.slow  # a one-round design run (four trainings), then a training again in a fresh Python
def test_a_replayed_design_run_on_pendulum_ends_with_an_export_that_reproduces_its_score_without_autoreward(tmp_path):
    transcript = REPO / "tests" / "transcripts" / "pendulum_swing_up.md"
    flags = ["--llm", "replay", "--transcript", str(transcript), *ONE_ROUND_FLAGS]
    flags += ["--steps", "1024", "--envs", "2", "--eval-episodes", "2", "--no-videos"]
    result = run_autoreward("run", "pendulum_swing_up", *flags, cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout[-3000:] + result.stderr[-3000:]
    # The final table: the best reward's task score, beside both baselines' (the human reward's and the sparse one's).
    table = " ".join(result.stdout.split())
    assert re.search(r"task score │ [-\d.e]+ ± [\d.e]+ over seeds \[0\]", table), table
    number = r"-?[\d.]+(?:e[-+]?\d+)?"
    assert re.search(
        rf"human \(the hand-written reward\) / sparse │ {number} ± {number} / {number} ± {number}", table
    ), table
    (run,) = (tmp_path / "runs").glob("pendulum_swing_up__design*")
    exported = run_autoreward(
        "export", str(run), "-o", str(tmp_path / "mine" / "pendulum.py"), "--policy", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "state.obs" in (tmp_path / "mine" / "pendulum.py").read_text()
    blocker = tmp_path / "blocker" / "autoreward"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('an exported reward module must not need autoreward')\n")
    done = subprocess.run(
        [sys.executable, "-c", REPRODUCE, str(tmp_path / "mine")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(blocker.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reproduced = json.loads(done.stdout.strip().splitlines()[-1])
    # Bit for bit: the same environments, seeds, learner and held-out episodes, and rewards built from the same
    # float64 copy of the float32 observation; the run's own policy scores the same episodes again.
    assert len(reproduced["scores"]) == 2
    assert float(np.mean(reproduced["scores"])) == reproduced["recorded"]
    assert reproduced["loaded"] == reproduced["scores"]


def test_a_box2d_policy_gets_a_video_from_the_environments_own_rendering(tmp_path):
    import av

    from autoreward.sim.video import HEIGHT, WIDTH, record_video
    from autoreward.task.files import find_task

    class EnginesOff:
        def predict(self, observation, deterministic=True):
            return np.zeros(2, dtype=np.float32), None

    path = record_video(EnginesOff(), find_task("lunar_lander_land"), seed=0, path=tmp_path / "video.mp4")
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) > 10 and frames[0].shape == (HEIGHT, WIDTH, 3)
    # Box2D draws the moon light on a black sky: both are in the frame, and the falling lander moves between frames.
    assert (frames[0] > 200).any() and (frames[0] < 30).any()
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).max() > 100


def test_a_continuous_variant_is_described_by_its_continuous_actions_not_the_discrete_list():
    described = describe_task(find_task("lunar_lander_land"))
    assert "the first coordinate of an action determines the throttle of the main engine" in " ".join(
        line.lstrip("# ") for line in described.splitlines()
    )
    assert "fire left orientation engine" not in described  # LunarLander's discrete actions, not this one's
