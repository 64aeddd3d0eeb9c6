"""What the next round is told about every candidate: its behaviour, its reward's components, reward hacking."""

from __future__ import annotations

import dataclasses

from autoreward.config import LoopConfig
from autoreward.llm.backends import OpenAIChat, ReplayLLM
from autoreward.llm.prompts import Prompts
from autoreward.loop.feedback import build_feedback, hacking_alarm, lessons, reflection_text
from autoreward.records import ComponentStats, CurvePoint, EpisodeResult, Evaluation, QuantityStats, TrajectorySummary
from autoreward.review.report import markdown_report
from autoreward.task.files import find_task

from .chat_server import ChatServer, Reply
from .review_fixtures import make_run, trained

TASK = find_task("half_cheetah_backward")


def gamed(candidate):
    """The candidate's training, as one whose reward rose while the task score fell, with what its policy did."""
    curve = tuple(
        CurvePoint(
            step=100 * k,
            wall_seconds=k,
            steps_per_second=100.0,
            reward_mean=reward,
            components={"r": ComponentStats(reward, 0.0, 1.0)},
            episodes=2,
            episode_length=40.0,
            fitness=score,
        )
        for k, (reward, score) in enumerate([(0.1, 2.0), (0.3, 1.2), (0.5, 0.5)], 1)
    )
    episodes = tuple(
        EpisodeResult(
            seed=s,
            length=40,
            fitness=0.5,
            native_return=0.0,
            reward_return=10.0,
            component_returns={"r": 8.0, "effort": -2.0},
            terminated=s == 0,
        )
        for s in (1, 2)
    )
    summary = TrajectorySummary(
        episodes=2,
        terminated=1,
        length_mean=40.0,
        quantities=(
            QuantityStats("bodies.torso.pos[:, 0]", "m", 0.0, -0.1, 1.5, 0.0, 1.4),
            QuantityStats("joints.rooty.qpos", "rad", 0.0, -0.1, 0.1, 0.0, 0.01),
        ),
    )
    evaluation = Evaluation(episodes, 0.5, 0.0, 40.0, success_rate=0.5, summary=summary)
    training = dataclasses.replace(candidate.training, curve=curve, evaluation=evaluation)
    return dataclasses.replace(candidate, training=training)


def test_a_lesson_says_what_each_other_policy_did_and_flags_reward_hacking():
    best, other = trained(1, 0, 3.0), gamed(trained(1, 1, 0.5))
    (line,) = lessons([best, other], best, higher_is_better=True)
    assert "r1c1 (terms: r) reached a task score of 0.5, lower than the best's 3" in line
    assert "its policy: episodes of 40 steps, 1 of 2 ended early" in line
    assert "bodies.torso.pos[:, 0] went from 0 to 1.4 m over an episode" in line  # the quantity that moved most
    assert (
        "Reward hacking: over r1c1's training its reward per step rose from 0.1 to 0.5 while the task score of its "
        "training episodes fell from 2 to 0.5" in line
    )
    (hidden,) = lessons([best, other], best, higher_is_better=True, show_scores=False)  # preference feedback
    assert "task score" not in hidden and "its policy: episodes of 40 steps" in hidden


def test_no_alarm_when_reward_and_task_score_rise_together():
    assert hacking_alarm("r1c0", trained(1, 0, 1.0).training, higher_is_better=True) is None
    assert hacking_alarm("r1c1", gamed(trained(1, 1, 0.5)).training, higher_is_better=False) is None  # lower: better


def test_the_reflection_shows_success_component_shares_a_flat_score_and_the_alarm():
    text = reflection_text(Prompts(), TASK, gamed(trained(1, 1, 0.5)).training, candidate_id="r1c1")
    assert "Success rate on held-out episodes: 50%." in text
    assert "- r: 8 (80%)" in text and "- effort: -2 (20%)" in text
    assert "(the task score did not improve during training)" in text and "rewrite the reward entirely" in text
    assert "Reward hacking: over r1c1's training" in text
    assert "go through the components one by one" in text


def test_the_last_rounds_best_is_not_analysed_nobody_would_read_it(tmp_path):
    (tmp_path / "none.jsonl").write_text("")  # an analyzer call would find no reply and raise
    config = LoopConfig(rounds=2)
    feedback = build_feedback(ReplayLLM(tmp_path / "none.jsonl"), Prompts(), TASK, config, gamed(trained(2, 0, 0.5)))
    assert feedback.analysis is None and "Reward hacking" in feedback.reflection


def test_the_report_flags_the_candidate_whose_reward_was_gamed(tmp_path):
    from autoreward.records import RoundResult
    from autoreward.review.report import gather_run

    store = make_run(tmp_path / "runs", feedback="fitness")
    store.save_candidate(gamed(trained(1, 1, 1.5)))
    store.save_round(RoundResult(1, ("r1c0", "r1c1", "r1c2"), "r1c1", "r1c1", None, ()))
    text = markdown_report(gather_run(store))
    assert "- **Reward hacking: over r1c1's training its reward per step rose from 0.1 to 0.5" in text


def test_the_critic_is_shown_the_checks_measurements_on_real_states(tmp_path, jail, quick_check):
    from autoreward.contract.checker import check_program
    from autoreward.loop.critic import Critic

    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        "    speed = -next_state.joints.rootx.qvel\n    effort = -0.1 * np.sum(action ** 2, axis=1)\n"
        "    return speed, {'speed': speed, 'effort': effort}\n"  # the total leaves the effort out
    )
    check = check_program(TASK, code, tmp_path, quick_check, jail)
    assert check.ok and set(check.component_stats) == {"speed", "effort"} and check.total_is_sum is False
    assert check.component_stats["effort"].max <= 0.0 <= check.component_stats["speed"].max
    with ChatServer(default=Reply("VERDICT: ACCEPT\n- fine")) as server:
        llm = OpenAIChat("test-model", base_url=server.url, api_key="sk-test")
        Critic(llm, Prompts(), LoopConfig()).review(TASK.description, "class State: ...", code, "r1/c0/critic0", check)
    asked = [request["messages"][-1]["content"] for request in server.requests]
    prompt = asked[0]
    effort = check.component_stats["effort"]
    assert f"- effort: {effort.mean:.3g} [{effort.min:.3g}, {effort.max:.3g}]" in prompt
    assert "The total is not the sum of the components" in prompt
