"""Training in a worker with tiny budgets: curves, held-out evaluation, baselines, and failures."""

import json
from dataclasses import replace

import numpy as np
import pytest

from autoreward.config import Fitness, TrainingConfig
from autoreward.errors import WorkerError
from autoreward.loop.baselines import load_or_train_baselines
from autoreward.loop.evaluation import EVALUATION_SEED_BASE
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.records import NormalizedScore, TrainingResult
from autoreward.serialize import read_json
from autoreward.sim.trajectory import summary_text
from autoreward.task.fitness import FitnessMeter

from .conftest import human_reward

TINY = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2, curve_points=10)


def test_training_records_a_curve_and_scores_on_held_out_episodes(hopper, tmp_path):
    result = train(hopper, TINY, tmp_path, human_reward(hopper), runner=Runner.connect())
    assert len(result.curve) >= 10
    assert [p.step for p in result.curve] == sorted(p.step for p in result.curve)
    for point in result.curve:
        assert set(point.components) == {"forward", "survive", "ctrl"}
        assert point.fitness is not None
    assert [e.seed for e in result.evaluation.episodes] == [EVALUATION_SEED_BASE, EVALUATION_SEED_BASE + 1]
    assert result.evaluation.fitness_mean is not None and result.evaluation.success_rate is not None
    assert result.steps >= 1024
    saved = read_json(tmp_path / "training.json", TrainingResult)
    assert saved == result
    lines = (tmp_path / "learner" / "curve.jsonl").read_text().splitlines()
    assert len(lines) == len(result.curve) and json.loads(lines[0])["step"] == result.curve[0].step
    # The training worker leaves SB3's files (for a later slice) and the arrays the evaluation worker loaded.
    assert (tmp_path / "learner" / "policy.zip").exists() and (tmp_path / "learner" / "vecnormalize.pkl").exists()
    assert (tmp_path / "evaluation" / "policy.npz").exists() and (tmp_path / "evaluation" / "normalizer.npz").exists()
    for episode in result.evaluation.episodes:  # the reward's own returns, scored in a worker of their own
        assert set(episode.component_returns) == {"forward", "survive", "ctrl"}
        assert episode.reward_return == pytest.approx(sum(episode.component_returns.values()))
    assert (
        not (tmp_path / "evaluation" / "episodes.npz").exists() and not (tmp_path / "scoring" / "episodes.npz").exists()
    )


def test_the_evaluation_worker_scores_the_policy_exactly_as_the_trained_model_would(hopper, tmp_path):
    """The split changes where the held-out episodes are played, not what they score: the policy SB3 saved,
    loaded here with its normalizer and played with the reward in this process (the single worker's way),
    gives the same task scores bit for bit, and the same reward returns."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from autoreward.contract import reward_program
    from autoreward.loop.evaluation import evaluate
    from autoreward.sim.vec_env import make_vec_env

    code = human_reward(hopper)
    result = train(hopper, TINY, tmp_path, code, runner=Runner.connect())
    env = make_vec_env(hopper, 1, EVALUATION_SEED_BASE, "program", reward_program.load(code), copy_all_fields=True)
    model = PPO.load(tmp_path / "learner" / "policy.zip", device="cpu")
    normalizer = VecNormalize.load(str(tmp_path / "learner" / "vecnormalize.pkl"), env)
    together = evaluate(model, hopper, TINY, env, normalizer)
    assert [e.fitness for e in together.episodes] == [e.fitness for e in result.evaluation.episodes]
    assert [e.length for e in together.episodes] == [e.length for e in result.evaluation.episodes]
    for mine, theirs in zip(together.episodes, result.evaluation.episodes):
        assert theirs.reward_return == pytest.approx(mine.reward_return, rel=1e-9, abs=1e-9)
        assert theirs.component_returns == pytest.approx(mine.component_returns, rel=1e-9, abs=1e-9)
        assert theirs.native_return == mine.native_return


def test_the_held_out_summary_shows_what_the_reward_reads_labelled_with_its_component_and_the_foot_contact(
    hopper, tmp_path
):
    """The orchestrator reads the program's text for the paths it reads; the evaluation worker, which never sees
    the program, summarises them with the component each feeds, and how often each body touched the ground."""
    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        "    lift = next_state.bodies.foot.pos[:, 2]\n"
        "    alive = np.ones(len(action))\n"  # the action's length: no read of it
        "    return lift + alive, {'lift': lift, 'alive': alive}\n"
    )
    result = train(hopper, replace(TINY, video=False), tmp_path, code, runner=Runner.connect())
    summary = result.evaluation.summary
    (lift,) = summary.reads
    assert lift.stats.name == "bodies.foot.pos[:, 2]" and lift.stats.unit == "m" and lift.feeds == ("lift",)
    assert lift.stats.min <= lift.stats.mean <= lift.stats.max
    (foot,) = [c for c in summary.contacts if c.body == "foot"]
    assert 0.0 < foot.share <= 1.0
    text = summary_text(summary)
    assert "bodies.foot.pos[:, 2] (m)" in text and "feeds: lift" in text
    assert f"{'foot':<44} {foot.share:>9.2f}" in text


@pytest.mark.slow
def test_the_same_seed_trains_the_same_policy(hopper, tmp_path):
    first = train(hopper, TINY, tmp_path / "a", human_reward(hopper), runner=Runner.connect())
    second = train(hopper, TINY, tmp_path / "b", human_reward(hopper), runner=Runner.connect())
    assert first.evaluation.fitness_mean == second.evaluation.fitness_mean


def test_a_reward_that_fails_during_training_is_reported(hopper, tmp_path):
    code = (
        "import numpy as np\n"
        "def compute_reward(state, action, next_state):\n"
        "    if np.any(next_state.time > 0.1):\n"
        "        raise ValueError('this reward breaks late')\n"
        "    v = next_state.qpos[:, 0]\n"
        "    return v, {'v': v}\n"
    )
    with pytest.raises(WorkerError, match="ValueError: this reward breaks late"):
        train(hopper, TINY, tmp_path, code, runner=Runner.connect())


class Heard:
    """A progress that keeps the labels of the trainings it heard of."""

    def __init__(self):
        self.labels = []

    def note(self, text: str) -> None:
        pass

    def training(self, label: str, data: dict) -> None:
        self.labels.append(label)


class Refusing(Heard):
    def training(self, label: str, data: dict) -> None:
        pytest.fail(f"{label} trained twice")


@pytest.mark.slow
def test_baselines_are_trained_once_and_give_a_normalized_score(hopper, tmp_path):
    progress = Heard()
    baselines = load_or_train_baselines(hopper, TINY, tmp_path, Runner.connect(progress=progress))
    assert {"human", "sparse"} <= set(progress.labels)
    assert baselines.human.reward_source == "program" and baselines.sparse.reward_source == "sparse"
    again = load_or_train_baselines(hopper, TINY, tmp_path, Runner.connect(progress=Refusing()))
    assert again == baselines
    human, sparse = baselines.human.evaluation.fitness_mean, baselines.sparse.evaluation.fitness_mean
    assert human != sparse  # two trainings on different rewards; a tie would leave every normalized score None
    gap = abs(human - sparse)
    # Eureka's scale: the sparse baseline is 0, one gap between the baselines above it is 1, whichever one won.
    assert baselines.normalize(sparse).score == pytest.approx(0.0)
    assert baselines.normalize(sparse + 0.5 * gap).score == pytest.approx(0.5)
    assert baselines.normalize(sparse - gap).score == pytest.approx(-1.0)
    assert (baselines.normalize(human).fitness_human, baselines.normalize(human).fitness_sparse) == (human, sparse)


def test_baselines_are_cached_per_task_definition_and_simulator(hopper, tmp_path):
    from dataclasses import replace
    from pathlib import Path

    from autoreward.loop.baselines import baseline_fingerprint as digest

    def baseline_fingerprint(task, config):  # the human reward's code read from its file, as the cache does
        return digest(task, config, Path(task.human_reward).read_text())

    edited = tmp_path / "human.py"
    edited.write_text(human_reward(hopper).replace("1.0", "2.0"))
    same = baseline_fingerprint(hopper, TINY)
    assert baseline_fingerprint(replace(hopper, source="elsewhere.toml"), replace(TINY, video=False)) == same
    assert same == baseline_fingerprint(hopper, replace(TINY, wall_seconds=5.0, memory_bytes=None))
    others = {
        baseline_fingerprint(replace(hopper, human_reward=str(edited)), TINY),  # the human reward's code
        baseline_fingerprint(replace(hopper, fitness=replace(hopper.fitness, reduce="last")), TINY),
        baseline_fingerprint(replace(hopper, max_episode_steps=500), TINY),
        baseline_fingerprint(hopper, replace(TINY, simulator="batched")),
        baseline_fingerprint(hopper, replace(TINY, eval_episodes=3)),
    }
    assert same not in others and len(others) == 5


@pytest.mark.slow
def test_sac_trains_too(hopper, tmp_path):
    config = TrainingConfig(algo="sac", steps=600, n_envs=1, eval_episodes=1, curve_points=10)
    result = train(hopper, config, tmp_path, human_reward(hopper), runner=Runner.connect())
    assert result.algo == "sac" and len(result.curve) >= 10


def test_the_normalized_score_follows_eureka():
    assert NormalizedScore.compute(3.0, human=2.0, sparse=1.0).score == pytest.approx(2.0)
    assert NormalizedScore.compute(1.0, human=2.0, sparse=1.0).score == pytest.approx(0.0)
    assert NormalizedScore.compute(1.5, human=0.0, sparse=2.0).score == pytest.approx(-0.25)
    # lower-is-better fitness: beating the sparse baseline by going lower scores positive
    assert NormalizedScore.compute(0.5, human=1.0, sparse=2.0, higher_is_better=False).score == pytest.approx(1.5)
    assert NormalizedScore.compute(1.0, human=2.0, sparse=2.0).score is None


@pytest.mark.parametrize("reduce, expected", [("mean", 2.0), ("sum", 6.0), ("last", 3.0)])
def test_fitness_reduces_each_episode(reduce, expected):
    meter = FitnessMeter(Fitness(step="0", reduce=reduce, description=""), batch_size=2)
    for value in (1.0, 2.0, 3.0):
        meter.add(np.array([value, 10 * value]))
    finished = meter.finish(np.array([0]))
    assert finished[0] == pytest.approx(expected)
    assert meter.running()[0] == 0.0 and meter.running()[1] == pytest.approx(10 * expected)


def test_a_training_leaves_no_log_folder_in_the_temporary_directory(hopper, tmp_path):
    from pathlib import Path

    from autoreward.sandbox.jail import Jail

    # Unjailed, the worker shares this machine's /tmp: SB3's default logger made an empty SB3-<date> folder there.
    before = set(Path("/tmp").glob("SB3-*"))
    train(
        hopper,
        TrainingConfig(steps=256, n_envs=1, eval_episodes=1, video=False),
        tmp_path,
        human_reward(hopper),
        runner=Runner.connect(jail=Jail(bwrap=None, reason="this test looks at the machine's own /tmp")),
    )
    assert set(Path("/tmp").glob("SB3-*")) == before


def test_training_on_a_gpu_where_there_is_none_says_so(hopper, tmp_path, jail):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    config = TrainingConfig(steps=256, n_envs=1, eval_episodes=1, video=False, device="cuda")
    with pytest.raises(WorkerError, match="--device cuda: no CUDA device is visible to the training worker"):
        train(hopper, config, tmp_path, human_reward(hopper), runner=Runner.connect(jail=jail))
