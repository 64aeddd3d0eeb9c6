"""The final numbers a person reads: a normalized score only where the baselines are apart, named honestly."""

from __future__ import annotations

import dataclasses

from autoreward.loop.final import final_result
from autoreward.records import Baselines, ExportInfo
from autoreward.review.export import render_reward_module
from autoreward.review.report import _final_lines
from autoreward.task.files import find_task

from .review_fixtures import training

TASK = find_task("half_cheetah_backward")


def _seed(designed: float, human: float, sparse: float, source: str = "environment", episode_std: float = 0.01):
    def scored(value: float):
        trained = training(value)
        return dataclasses.replace(trained, evaluation=dataclasses.replace(trained.evaluation, fitness_std=episode_std))

    baselines = Baselines(TASK.id, "ppo", 512, 0, source, scored(human), scored(sparse))
    return training(designed), baselines


def test_baselines_within_their_spread_make_the_normalized_score_not_meaningful():
    # The earlier offline demo's case (HalfCheetah at 60 000 steps): the environment's own reward 0.92, the task score alone 1.22, spreads larger.
    final = final_result(TASK, "r2c0", [0, 1], [_seed(1.0, 0.52, 1.62), _seed(1.1, 1.32, 0.82)])
    assert final.human_fitness == 0.92 and final.sparse_fitness == 1.22 and final.score_mean is not None
    assert not final.baselines_apart
    lines = " ".join(_final_lines(final, "fitness"))
    assert "Human-normalized score: not meaningful at this budget: the environment's own reward scored 0.92" in lines
    assert f"{final.score_mean:.3f}" not in lines  # never the bare figure
    assert "Human baseline (the environment's own reward): 0.92" in lines and "hand-written" not in lines


def test_baselines_far_apart_give_the_figure_against_the_hand_written_reward():
    final = final_result(TASK, "r2c0", [0, 1], [_seed(3.0, 2.0, 0.1, "rewards/x.py"), _seed(3.2, 2.1, 0.2, "x.py")])
    assert final.baselines_apart and final.human_name == "the hand-written reward"
    lines = " ".join(_final_lines(final, "fitness"))
    assert f"Human-normalized score: **{final.score_mean:.3f} ± {final.score_std:.3f}**" in lines
    assert "1 matches the hand-written reward" in lines


def test_the_module_header_says_not_meaningful_too():
    final = final_result(TASK, "r2c0", [0], [_seed(1.0, 0.92, 1.22, episode_std=0.4)])
    assert not final.baselines_apart  # one seed: the spread is that of the held-out episodes
    info = ExportInfo(
        "run",
        "m",
        "2026-12-01",
        "0",
        "ppo",
        512,
        1,
        normalized_score_mean=final.score_mean,
        normalized_score_std=final.score_std,
        normalized_note=final.normalized_sentence(),
        human_name=final.human_name,
    )
    header = render_reward_module(TASK, open(TASK.human_reward).read(), info).split('"""')[1]
    said = " ".join(header.split())
    assert "human-normalized score: not meaningful at this budget: the environment's own reward scored" in said
    assert "1: on" not in said  # a scale is not explained where its figure is not given


def test_where_the_human_baseline_is_the_worse_one_the_score_says_above_0_beats_both():
    # The demo's case: the environment's own MountainCar reward never reaches the flag in 300 steps.
    task = dataclasses.replace(TASK, human_reward=None)
    final = final_result(task, "r1c0", [0, 1], [_seed(-79.0, -300.0, -90.0), _seed(-77.0, -300.0, -87.0)])
    assert final.baselines_apart and final.human_worse and final.score_mean > 0
    assert final.normalized_sentence().endswith(
        "(here the environment's own reward scored -300, worse than the task score alone, -88.5: above 0 is "
        "better than both)"
    )
    assert not final_result(task, "r1c0", [0], [_seed(2.0, 1.5, 0.5)]).human_worse


def test_spreads_are_recorded_over_seeds():
    final = final_result(TASK, "r1c0", [0, 1], [_seed(1.0, 2.0, 0.0), _seed(1.0, 4.0, 0.0)])
    assert final.human_spread == 1.0 and final.sparse_spread == 0.0
    assert dataclasses.replace(final, human_spread=5.0).baselines_apart is False
