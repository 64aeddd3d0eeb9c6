"""Pre-screening scores stored held-out episodes with a new reward in a (jailed) worker, without training it."""

from dataclasses import replace

import numpy as np
import pytest

from autoreward.loop.prescreen import LabelledEpisode, screen
from autoreward.sandbox.jail import Jail
from autoreward.sim.trajectory import TransitionSampler
from autoreward.sim.vec_env import EPISODE_INFO_KEY, make_vec_env
from autoreward.task.files import find_task

EPISODE_STEPS = 200


@pytest.fixture(scope="module")
def cheetah():
    return replace(find_task("half_cheetah_forward"), max_episode_steps=EPISODE_STEPS)


@pytest.fixture(scope="module")
def stored_episodes(cheetah, tmp_path_factory):
    """Six held-out-like episodes of periodic gaits (same effort, different speeds), stored as training leaves them."""
    path = tmp_path_factory.mktemp("stored") / "transitions.npz"
    env = make_vec_env(cheetah, 1, 0, "native", copy_all_fields=True)
    sampler = TransitionSampler(stride=4)
    env.observers.append(sampler.observe)
    episodes = []
    gaits = [(direction, period) for direction in (1, -1) for period in (8, 12, 20)]
    for index, (direction, period) in enumerate(gaits):
        env.reset()
        for step in range(EPISODE_STEPS):
            phases = 2 * np.pi * step / period + direction * np.arange(6) * np.pi / 3
            _, _, dones, infos = env.step(np.sin(phases)[None].astype(np.float32))
            if dones[0]:
                episodes.append(LabelledEpisode("r1c0", str(path), index, infos[0][EPISODE_INFO_KEY].fitness))
                sampler.end_episode()
                break
    env.close()
    sampler.save(path)
    assert len({round(e.fitness, 3) for e in episodes}) == 6, "the gaits should move at different speeds"
    return episodes


def test_the_task_reward_agrees_with_the_task_scores_and_its_reverse_does_not(cheetah, stored_episodes, tmp_path):
    human = open(cheetah.human_reward).read()
    reversed_code = human.replace("def compute_reward(", "def _forward(") + (
        "\n\ndef compute_reward(state, action, next_state):\n"
        "    total, parts = _forward(state, action, next_state)\n"
        "    return -total, {name: -value for name, value in parts.items()}\n"
    )
    agreeing = screen(cheetah, human, stored_episodes, tmp_path / "human")
    reversed_ = screen(
        cheetah, reversed_code.replace("_forward", "forward_reward"), stored_episodes, tmp_path / "reversed"
    )
    assert agreeing.agreement is not None and agreeing.agreement >= 0.9
    assert reversed_.agreement is not None and reversed_.agreement <= 0.1
    assert reversed_.rejects(0.5) and not agreeing.rejects(0.5)
    assert reversed_.wrong and "task score" in reversed_.wrong[0]


def test_a_reward_that_fails_on_the_stored_episodes_is_not_screened_and_says_why(cheetah, stored_episodes, tmp_path):
    failing = (
        "import numpy as np\n\n"
        "def compute_reward(state, action, next_state):\n"
        "    raise ValueError('no reward for stored episodes')\n"
    )
    screening = screen(cheetah, failing, stored_episodes, tmp_path / "failing")
    assert screening.agreement is None and not screening.rejects(0.5)  # it goes on to be trained (and checked)
    assert "could not score the stored episodes" in screening.wrong[0]
    assert "no reward for stored episodes" in screening.wrong[0]


def test_the_scoring_worker_cannot_change_the_stored_episodes(cheetah, stored_episodes, tmp_path):
    """It scores copies in its own folder (which an executor may move to another machine); the originals stay."""
    jail = Jail.detect()
    if not jail.active:
        pytest.skip("bubblewrap is not usable here: without the jail the worker can write what the user can")
    stored = stored_episodes[0].file
    before = open(stored, "rb").read()
    screening = screen(cheetah, open(cheetah.human_reward).read(), stored_episodes, tmp_path / "copies", jail)
    assert screening.agreement is not None
    assert open(stored, "rb").read() == before
