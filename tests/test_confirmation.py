"""--confirm-seeds: the candidates near a round's best trained on more seeds, and the pick by their mean."""

from __future__ import annotations

import dataclasses
import html

import pytest

from autoreward.config import Budget, LLMSettings, LoopConfig, TrainingConfig
from autoreward.loop.confirmation import SeedConfirmation, confirmed_pick, near_the_best
from autoreward.loop.run_store import start_run
from autoreward.loop.runner import Runner
from autoreward.loop.selection import ByFitness
from autoreward.loop.training import train
from autoreward.records import Attempt, Candidate, Evaluation, TrainingResult
from autoreward.task.files import find_task

from .conftest import human_reward


def test_near_the_best_is_within_a_share_of_the_best_either_way_of_better():
    scores = {"a": 4.0, "b": 3.1, "c": 2.9, "d": 4.0}
    assert near_the_best(scores, True, 0.25) == ["a", "d", "b"]  # 3.1 >= 4.0 - 1.0; 2.9 is not
    assert near_the_best({"a": -0.9, "b": -1.2, "c": -1.3}, False, 0.25) == ["c", "b"]  # lower is better: to -0.975
    assert near_the_best({"a": -1.0, "b": -1.2, "c": -1.3}, True, 0.25) == ["a", "b"]  # |best| = 1: down to -1.25
    assert near_the_best({}, True) == []


def test_the_confirmed_pick_is_by_the_mean_and_a_tie_goes_to_the_first_named():
    assert confirmed_pick({"a": [4.6, 2.5], "b": [3.7, 3.6]}, True) == "b"
    assert confirmed_pick({"a": [1.0, 3.0], "b": [2.0, 2.0]}, True) == "a"
    assert confirmed_pick({"a": [1.0, 3.0], "b": [1.5, 1.5]}, False) == "b"


def _scored(index: int, fitness: float, confirmation: tuple[float, ...] = ()) -> Candidate:
    evaluation = Evaluation(episodes=(), fitness_mean=fitness, fitness_std=0.0, length_mean=10.0, success_rate=None)
    training = TrainingResult("t", "program", "ppo", 512, 0, 2, (), evaluation, 1.0, 1.0)
    return Candidate(f"r1c{index}", 1, index, "trained", (), training=training, confirmation=confirmation)


def test_a_round_with_confirmed_candidates_picks_among_them_by_their_mean():
    selector = ByFitness(find_task("half_cheetah_backward"))
    lucky, steady, far = _scored(0, 4.6, (2.5,)), _scored(1, 3.7, (3.6,)), _scored(2, 1.0)
    selection = selector.select(1, None, [lucky, steady, far])
    assert selection.round_best.id == "r1c1" and lucky.confirmed_fitness == pytest.approx(3.55)
    # Against an earlier round's best, the confirmed mean is what counts.
    earlier = dataclasses.replace(_scored(0, 3.6), id="r0c0", round=0)
    assert selector.select(1, earlier, [lucky, steady, far]).best.id == "r1c1"
    assert selector.select(1, dataclasses.replace(earlier, confirmation=(3.9,)), [steady]).best.id == "r0c0"


@pytest.mark.slow  # four tiny trainings in workers
def test_confirmation_trains_the_near_candidates_on_the_next_seeds_and_reads_them_back(tmp_path, jail):
    task = find_task("half_cheetah_backward")
    loop = LoopConfig(confirm_seeds=1, workers=2, budget=Budget(steps=512, n_envs=2, eval_episodes=1, curve_points=2))
    store = start_run(tmp_path, task, loop, LLMSettings(backend="replay"))
    config = TrainingConfig.from_budget(loop.budget, video=False)
    code = human_reward(task)
    same = []
    for index in range(2):  # the same program twice: equal scores, so both are near the best
        candidate = Candidate(f"r1c{index}", 1, index, "ready", (Attempt(0, code),))
        trained = train(
            task, config, store.candidate_dir(candidate.id) / "training", code, runner=Runner.connect(jail=jail)
        )
        same.append(dataclasses.replace(candidate, status="trained", training=trained))
    confirmation = SeedConfirmation(
        task,
        loop,
        store,
        lambda seed=0, steps=None: dataclasses.replace(config, seed=seed),
        Runner.connect(jail=jail),
    )
    confirmed = confirmation.confirm(1, same)
    assert [c.confirmation for c in confirmed] == [confirmed[0].confirmation] * 2 and len(
        confirmed[0].confirmation
    ) == 1
    folder = store.candidate_dir("r1c0") / "confirm_seed_1"
    assert (folder / "training.json").is_file() and store.load_candidate("r1c0").confirmation == confirmed[
        0
    ].confirmation
    stamp = (folder / "training.json").stat().st_mtime_ns
    assert confirmation.confirm(1, same) == confirmed and (folder / "training.json").stat().st_mtime_ns == stamp

    alone = [same[0], dataclasses.replace(same[1], training=None, status="training_failed")]
    assert confirmation.confirm(1, alone) == alone  # nothing near the best: nothing trained, nothing changed


def test_confirm_seeds_with_a_preference_is_refused_in_one_sentence():
    problem = LoopConfig(confirm_seeds=2, feedback="human").problem()
    assert problem.startswith("--confirm-seeds picks a round's best by its task score over more seeds")


def test_both_reports_say_which_candidates_were_confirmed_and_what_it_cost(tmp_path):
    from autoreward.records import RoundResult
    from autoreward.review.html_report import html_report
    from autoreward.review.report import gather_run, markdown_report

    from .review_fixtures import make_run, trained

    store = make_run(tmp_path / "runs", feedback="fitness")
    store.save_candidate(dataclasses.replace(trained(1, 0, 0.5), confirmation=(0.7,)))
    store.save_candidate(dataclasses.replace(trained(1, 1, 0.55), confirmation=(0.45,)))
    store.save_round(RoundResult(1, ("r1c0", "r1c1", "r1c2"), "r1c0", "r1c0", None, (), confirmation_steps=1024))
    facts = gather_run(store)
    said = "Near the best on the round's seed, r1c0, r1c1 were each trained on 1 more seed (1024 training steps)"
    markdown = markdown_report(facts)
    assert said in markdown and "| 0.5 (mean over 2 seeds: 0.6) |" in markdown
    page = html.unescape(html_report(facts, store.path))
    assert said in page and "(mean over 2 seeds: 0.6)" in page
