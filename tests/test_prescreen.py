"""Pre-screening scores stored held-out episodes with a new reward in a (jailed) worker, without training it,
and drops it only on clear evidence: clearly different pairs, a significant disagreement, a pool that is not
all failures, at most half of a round."""

from dataclasses import replace

import numpy as np
import pytest

from autoreward.config import LLMSettings, LoopConfig
from autoreward.llm.prompts import Prompts
from autoreward.loop.driver import DesignLoop
from autoreward.loop.prescreen import LabelledEpisode, binomial_tail, over_the_half, screen, verdict
from autoreward.loop.run_store import start_run
from autoreward.loop.runner import Runner
from autoreward.records import Attempt, Candidate
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
    """Sixteen held-out-like episodes of periodic gaits (same effort, different speeds), stored as training leaves
    them. Their mean speeds run from about -1.8 to 0.46 m/s: all below the task's success threshold (3 m/s)."""
    path = tmp_path_factory.mktemp("stored") / "transitions.npz"
    env = make_vec_env(cheetah, 1, 0, "native", copy_all_fields=True)
    sampler = TransitionSampler(stride=4)
    env.observers.append(sampler.observe)
    episodes = []
    gaits = [(direction, period) for direction in (1, -1) for period in (5, 6, 8, 10, 12, 16, 20, 30)]
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
    assert len({round(e.fitness, 3) for e in episodes}) == 16, "the gaits should move at different speeds"
    assert max(e.fitness for e in episodes) < cheetah.success_threshold
    return episodes


def _reversed(human: str) -> str:
    return human.replace("def compute_reward(", "def forward_reward(") + (
        "\n\ndef compute_reward(state, action, next_state):\n"
        "    total, parts = forward_reward(state, action, next_state)\n"
        "    return -total, {name: -value for name, value in parts.items()}\n"
    )


def test_the_task_reward_agrees_and_its_reverse_is_dropped_where_some_stored_episodes_succeed(
    cheetah, stored_episodes, tmp_path
):
    task = replace(cheetah, success_threshold=0.3)  # the two fastest gaits succeed
    human = open(cheetah.human_reward).read()
    agreeing = screen(task, human, stored_episodes, tmp_path / "human", runner=Runner.connect())
    reversed_ = screen(task, _reversed(human), stored_episodes, tmp_path / "reversed", runner=Runner.connect())
    assert agreeing.agreement >= 0.9 and agreeing.verdict == "not_significant" and not agreeing.rejects()
    assert reversed_.agreement <= 0.1 and reversed_.verdict == "dropped" and reversed_.rejects()
    assert reversed_.p_value < 0.01 and reversed_.effective_pairs == 15  # sixteen episodes, less one
    assert reversed_.margin == pytest.approx(0.03) and reversed_.margin_from == "the success threshold's magnitude"
    assert reversed_.wrong and "task score" in reversed_.wrong[0]
    assert "p = " in reversed_.summary() and "not trained" in reversed_.summary()


def test_on_stored_episodes_that_all_failed_even_a_reversed_reward_is_trained(cheetah, stored_episodes, tmp_path):
    screening = screen(
        cheetah,
        _reversed(open(cheetah.human_reward).read()),
        stored_episodes,
        tmp_path / "reversed",
        runner=Runner.connect(),
    )
    assert screening.agreement is not None and screening.agreement <= 0.1  # it is still measured and shown
    assert screening.verdict == "all_failures" and not screening.rejects()
    assert screening.margin == pytest.approx(0.3)  # a tenth of 3 m/s


def test_a_reward_that_fails_on_the_stored_episodes_is_not_screened_and_says_why(cheetah, stored_episodes, tmp_path):
    failing = (
        "import numpy as np\n\n"
        "def compute_reward(state, action, next_state):\n"
        "    raise ValueError('no reward for stored episodes')\n"
    )
    screening = screen(cheetah, failing, stored_episodes, tmp_path / "failing", runner=Runner.connect())
    assert screening.agreement is None and not screening.rejects()  # it goes on to be trained (and checked)
    assert screening.verdict == "not_scored"
    assert "could not score the stored episodes" in screening.wrong[0]
    assert "no reward for stored episodes" in screening.wrong[0]


def test_the_scoring_worker_cannot_change_the_stored_episodes(cheetah, stored_episodes, tmp_path):
    """It scores copies in its own folder (which an executor may move to another machine); the originals stay."""
    jail = Jail.detect()
    if not jail.active:
        pytest.skip("bubblewrap is not usable here: without the jail the worker can write what the user can")
    stored = stored_episodes[0].file
    before = open(stored, "rb").read()
    screening = screen(
        cheetah,
        open(cheetah.human_reward).read(),
        stored_episodes,
        tmp_path / "copies",
        runner=Runner.connect(jail=jail),
    )
    assert screening.agreement is not None
    assert open(stored, "rb").read() == before


# --- the rule, on constructed episodes and rewards (no worker) -----------------------------------------------


def _pool(*scores: float) -> list[LabelledEpisode]:
    return [LabelledEpisode(f"r1c{i % 4}", "transitions.npz", i, score) for i, score in enumerate(scores)]


def _task(threshold: float | None, higher_is_better: bool = True):
    task = find_task("half_cheetah_forward")
    return replace(task, success_threshold=threshold, fitness=replace(task.fitness, higher_is_better=higher_is_better))


def test_a_pool_of_failures_drops_nothing_even_a_perfectly_reversed_reward():
    # As measured on Walker2d standing on one leg: every episode 1 to 8 steps of 1000, far from success.
    steps = _pool(1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 5, 8)
    walker = verdict(_task(500.0), steps, [-e.fitness for e in steps])
    assert walker.pairs == 0 and walker.agreement is None  # no gap reaches a tenth of the threshold (50 steps)
    assert walker.verdict == "all_failures" and not walker.rejects()
    # Failures far apart do make pairs, and the reward ranks them all wrong: still nothing is dropped.
    apart = _pool(*range(0, 240, 20))
    screening = verdict(_task(1000.0), apart, [-e.fitness for e in apart])
    assert screening.agreement == 0.0 and screening.p_value < 0.01
    assert screening.verdict == "all_failures" and not screening.rejects()


def test_a_gap_below_the_margin_is_not_a_pair():
    episodes = _pool(0.0, 0.9, 5.0, 12.0)
    screening = verdict(_task(10.0), episodes, [4.0, 3.0, 2.0, 1.0])  # the margin is a tenth of 10
    assert screening.margin == pytest.approx(1.0)
    assert screening.pairs == 5  # all but (0, 0.9)
    assert screening.agreement == 0.0
    # Without a threshold: a tenth of the larger of the spread and the best score's magnitude...
    far_from_zero = verdict(_task(None), _pool(100.0, 104.0, 110.0), [3.0, 2.0, 1.0])
    assert far_from_zero.margin == pytest.approx(11.0) and far_from_zero.pairs == 0
    # ...or, where a run keeps them, of the spread of the stored, random and still episodes together.
    with_references = verdict(_task(None), _pool(100.0, 104.0, 110.0), [3.0, 2.0, 1.0], references=[0.0, -10.0])
    assert with_references.margin == pytest.approx(12.0) and with_references.pairs == 0
    close = verdict(_task(None), _pool(1.0, 2.0, 8.0), [3.0, 2.0, 1.0])
    assert close.margin == pytest.approx(0.8) and close.pairs == 3


def test_a_reversed_reward_on_a_clear_pool_with_enough_pairs_is_dropped_at_p_below_one_percent():
    episodes = _pool(*range(0, 120, 10))  # twelve episodes; those from 50 up succeed
    screening = verdict(_task(50.0), episodes, [-e.fitness for e in episodes])
    assert screening.pairs == 66 and screening.effective_pairs == 11 and screening.agreement == 0.0
    assert screening.p_value == pytest.approx(0.5**11)
    assert screening.verdict == "dropped" and screening.rejects()
    assert "task score 0" in screening.wrong[0] and "task score 110" in screening.wrong[0]  # the worst first
    # A task where lower is better: the same scores, read the other way, make the same reward right.
    lower = verdict(_task(50.0, higher_is_better=False), episodes, [-e.fitness for e in episodes])
    assert lower.agreement == 1.0 and not lower.rejects()


def test_forty_percent_agreement_on_few_pairs_is_not_significant_and_not_dropped():
    episodes = _pool(0.0, 10.0, 20.0, 30.0, 40.0)  # all ten pairs count; 30 and 40 succeed
    screening = verdict(_task(25.0), episodes, [3.0, 4.0, 0.0, 1.0, 2.0])  # ranks 4 of the 10 the right way
    assert screening.pairs == 10 and screening.agreement == pytest.approx(0.4)
    assert screening.effective_pairs == 4  # five episodes, less one: the pairs share them
    assert screening.p_value == pytest.approx(11 / 16)  # at most 2 right of 4 (1.6 rounded up)
    assert screening.verdict == "not_significant" and not screening.rejects()
    assert binomial_tail(2, 6, 0.5) == pytest.approx(22 / 64)  # 40% of 6 pairs counted as independent: p ~ 0.34


def test_a_reward_that_cannot_tell_episodes_apart_is_at_chance_not_reversed():
    """Ties are half right. As measured on the demo's pool: "-1 a step, +100 at the flag" gave most stored
    episodes the same mean (the flag's step was kept only where the stride landed on it), and counting each
    tie as a wrong ranking dropped the pool's third-best reward at p 0.0004 on two seeds of three."""
    episodes = _pool(*range(0, 120, 10))
    flat = verdict(_task(50.0), episodes, [-1.0] * len(episodes))
    assert flat.pairs == 66 and flat.agreement == pytest.approx(0.5)
    assert flat.verdict == "not_significant" and flat.wrong == ()
    # Half ties, half reversed: a quarter right, which eleven effective pairs do not make significant.
    half = verdict(_task(50.0), episodes, [-e.fitness if e.episode % 2 else -1.0 for e in episodes])
    assert (
        0.0 < half.agreement < 0.5
        and half.p_value > verdict(_task(50.0), episodes, [-e.fitness for e in episodes]).p_value
    )


def test_the_stored_sample_keeps_each_episodes_last_step_and_what_each_kept_step_stands_for(tmp_path):
    """A goal bonus paid on the last step is seen, and the weighted mean is the episode's mean per step."""

    class Step:
        def __init__(self, value):
            self.value = value

        def arrays(self):
            return {"obs": np.array([[self.value]], dtype=np.float64)}

    sampler = TransitionSampler(stride=4)
    lengths = (10, 8, 1)  # 10: steps 0, 4, 8 kept by the stride and 9 as the last; 8: 0, 4 and 7
    for length in lengths:
        for step in range(length):
            sampler.observe(Step(step), np.zeros((1, 1)), Step(step + 1))
        sampler.end_episode()
    sampler.save(tmp_path / "transitions.npz")
    with np.load(tmp_path / "transitions.npz") as stored:
        episode, weight, after = stored["episode"], stored["weight"], stored["after.obs"][:, 0]
    assert list(after[episode == 0]) == [1, 5, 9, 10] and list(weight[episode == 0]) == [4, 4, 1, 1]
    assert list(after[episode == 1]) == [1, 5, 8] and list(weight[episode == 1]) == [4, 3, 1]
    assert list(after[episode == 2]) == [1] and list(weight[episode == 2]) == [1]
    for number, length in enumerate(lengths):
        assert weight[episode == number].sum() == length
    # A reward of -1 a step and +100 on reaching the end: its weighted mean over the sample is the true mean.
    reward = -1.0 + 100.0 * (after == 10)
    assert np.average(reward[episode == 0], weights=weight[episode == 0]) == pytest.approx((-10 + 100) / 10)


def test_the_binomial_tail():
    assert binomial_tail(0, 7, 0.5) == pytest.approx(1 / 128)
    assert binomial_tail(3, 3, 0.5) == 1.0 and binomial_tail(0, 0, 0.5) == 1.0
    assert binomial_tail(1, 4, 0.25) == pytest.approx(0.75**4 + 4 * 0.25 * 0.75**3)
    assert 0.0 <= binomial_tail(500, 2000, 0.5) < 1e-100  # no overflow where math.comb exceeds a float


def _screened(index: int, status: str, agreement: float | None, p_value: float | None = None) -> Candidate:
    message = "not trained: ..." if status == "prescreened_out" else ""
    attempts = (Attempt(0, "def compute_reward(state, action, next_state): ..."),)
    return Candidate(
        f"r2c{index}", 2, index, status, attempts, message, screening_agreement=agreement, screening_p_value=p_value
    )


def test_the_half_rule_trains_the_dropped_with_the_best_agreement_beyond_half_a_round():
    round_ = [
        _screened(0, "prescreened_out", 0.10, 0.001),
        _screened(1, "prescreened_out", 0.30, 0.004),
        _screened(2, "prescreened_out", 0.20, 0.002),
        _screened(3, "ready", 0.90, 0.99),
        _screened(4, "failed_check", None),  # never reached the pre-screen: not part of the half
    ]
    assert [c.id for c in over_the_half(round_)] == ["r2c1"]  # 4 reached it, so 2 stay dropped
    assert [c.id for c in over_the_half(round_[:3])] == ["r2c1", "r2c2"]  # 3 reached it: 1 stays dropped
    assert over_the_half(round_[2:4]) == []  # 1 of 2 is half: allowed
    assert [c.id for c in over_the_half(round_[:1])] == ["r2c0"]  # a lone candidate is never dropped alone


def test_the_loop_saves_a_candidate_the_half_rule_keeps_as_ready_and_decides_the_same_on_resume(tmp_path):
    store = start_run(tmp_path, find_task("half_cheetah_backward"), LoopConfig(prescreen=True), LLMSettings())
    loop = DesignLoop(store, None, Prompts(), tmp_path, Runner.connect())
    round_ = [_screened(0, "prescreened_out", 0.10, 0.001), _screened(1, "prescreened_out", 0.30, 0.004)]
    for candidate in round_:
        store.save_candidate(candidate)
    after = loop._at_most_half_prescreened_out(round_)
    assert [(c.id, c.status) for c in after] == [("r2c0", "prescreened_out"), ("r2c1", "ready")]
    assert after[1].message == "" and after[1].screening_agreement == 0.30  # its screening stays on record
    saved = store.load_candidate("r2c1", 2)
    assert saved.status == "ready" and saved.screening_p_value == 0.004
    resumed = [store.load_candidate("r2c0", 2), saved]
    assert loop._at_most_half_prescreened_out(resumed) == resumed  # nothing more to keep
    assert [e["candidate"] for e in store.events() if e.get("verdict") == "half_rule"] == ["r2c1"]
