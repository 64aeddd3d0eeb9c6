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
        "Reward hacking: the task score of r1c1's training episodes was best at 2 at step 100 and fell to 0.5 by "
        "step 300 (0.5 on held-out episodes), while its reward per step rose from 0.1 at that step to 0.5" in line
    )
    (hidden,) = lessons([best, other], best, higher_is_better=True, show_scores=False)  # preference feedback
    assert "task score" not in hidden and "its policy: episodes of 40 steps" in hidden


def test_no_alarm_when_reward_and_task_score_rise_together():
    assert hacking_alarm("r1c0", trained(1, 0, 1.0).training, higher_is_better=True) is None
    assert hacking_alarm("r1c1", gamed(trained(1, 1, 0.5)).training, higher_is_better=False) is None  # lower: better


def recorded(rewards, scores, held=None, partial=(), lengths=None):
    """A training whose curve has these rewards per step and task scores (None: no episode ended), held-out
    score `held` (the last score when not given), and episodes of `lengths` steps (40 when not given); the
    points at the indices in `partial` carry a score from episodes still running, as a window in which none
    ended does."""
    lengths = lengths or [40.0] * len(scores)
    curve = tuple(
        CurvePoint(
            step=1000 * k,
            wall_seconds=k,
            steps_per_second=1000.0,
            reward_mean=reward,
            components={"r": ComponentStats(reward, 0.0, 1.0)},
            episodes=0 if score is None or k - 1 in partial else 4,
            episode_length=None if score is None or k - 1 in partial else lengths[k - 1],
            fitness=score,
            fitness_partial=k - 1 in partial,
        )
        for k, (reward, score) in enumerate(zip(rewards, scores), 1)
    )
    training = trained(1, 1, 1.0).training
    final = held if held is not None else [s for s in scores if s is not None][-1]
    evaluation = dataclasses.replace(training.evaluation, fitness_mean=final)
    return dataclasses.replace(training, curve=curve, evaluation=evaluation)


RISING = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_the_alarm_sees_a_peak_the_task_score_fell_from_while_the_reward_kept_rising():
    # The run the alarm missed: the best climbed to 28 in mid training and ended at 7.5 as its reward rose.
    climb_and_fall = [2.0, 9.0, 17.0, 24.0, 28.0, 22.0, 15.0, 11.0, 9.0, 7.5]
    told = hacking_alarm("r2c1", recorded(RISING, climb_and_fall, held=6.1), higher_is_better=True)
    assert told == (
        "Reward hacking: the task score of r2c1's training episodes was best at 28 at step 5000 and fell to 7.5 "
        "by step 10000 (6.1 on held-out episodes), while its reward per step rose from 0.5 at that step to 1; "
        "the policy learned something the reward pays for and the task does not want."
    )


def test_no_alarm_for_a_rise_or_for_a_fall_the_reward_fell_with():
    rise = [2.0, 6.0, 11.0, 15.0, 18.0, 21.0, 23.0, 25.0, 26.0, 27.0]
    assert hacking_alarm("r1c0", recorded(RISING, rise), higher_is_better=True) is None
    # The policy fell apart after its peak, and its reward with it: a collapse, not a reward gamed.
    falling_reward = [0.1, 0.3, 0.5, 0.7, 0.9, 0.8, 0.6, 0.4, 0.3, 0.2]
    collapse = [2.0, 9.0, 17.0, 24.0, 28.0, 22.0, 15.0, 11.0, 9.0, 7.5]
    assert hacking_alarm("r1c0", recorded(falling_reward, collapse), higher_is_better=True) is None


def test_no_alarm_for_noise_around_a_plateau_however_near_zero_it_sits():
    wobble = [0.31, -0.62, 0.14, 0.93, -0.48, 0.22, -0.15, 0.57, -0.41, -0.36]  # a peak, then two low points
    for level in (25.0, 0.0, -300.0):  # at 0 the range is all noise; at -300 a fraction of the peak is huge
        scores = [0.0, 12.0] + [level + w for w in wobble] if level == 25.0 else [level + w for w in wobble]
        rewards = [0.1 * k for k in range(1, len(scores) + 1)]
        assert hacking_alarm("r1c0", recorded(rewards, scores, held=level - 0.4), True) is None, level


def test_a_policy_paid_to_make_its_episodes_last_fires_on_its_reward_per_episode():
    # The demo's rocking candidate (mountain_car_quick, task score minus the steps taken, 60 000 steps): it
    # learned to reach the flag, then to rock forever, paid per step of speed. Its reward per step stayed flat.
    rewards = [0.0772, 0.1232, 0.1919, 0.2623, 0.3009, 0.326, 0.3309, 0.3185, 0.3071, 0.3139]
    lengths = [300.0, 296.6, 284.85, 235.88, 194.41, 174.79, 182.76, 235.96, 300.0, 300.0]
    told = hacking_alarm("r1c1", recorded(rewards, [-n for n in lengths], lengths=lengths), higher_is_better=True)
    assert told is not None
    assert "was best at -175 at step 6000 and fell to -300 by step 10000 (-300 on held-out episodes)" in told
    assert "its reward per episode rose from about 57 at that step to 94.2, its episodes from 175 to 300 steps" in told
    # The same flat reward per step over episodes that kept their length is no alarm.
    assert hacking_alarm("r1c1", recorded(rewards, [-n for n in lengths]), higher_is_better=True) is None


def test_a_lower_is_better_score_that_rose_from_its_best_fires():
    steps_taken = [290.0, 240.0, 180.0, 120.0, 95.0, 130.0, 170.0, 210.0, 240.0, 260.0]
    told = hacking_alarm("r1c2", recorded(RISING, steps_taken), higher_is_better=False)
    assert told is not None
    assert "r1c2's training episodes (lower is better) was best at 95 at step 5000 and rose to 260 by step " in told
    assert "rose to 260 by step 10000 (260 on held-out episodes), while its reward per step rose from 0.5" in told
    assert hacking_alarm("r1c2", recorded(RISING, steps_taken), higher_is_better=True) is None  # as a score: a rise


def test_a_held_out_score_far_below_the_curves_peak_fires_where_one_low_point_would_not():
    late_peak = [2.0, 8.0, 13.0, 17.0, 20.0, 23.0, 25.0, 26.0, 28.0, 15.0]  # one low point: maybe noise
    assert hacking_alarm("r1c0", recorded(RISING, late_peak, held=26.0), higher_is_better=True) is None
    told = hacking_alarm("r1c0", recorded(RISING, late_peak, held=7.5), higher_is_better=True)
    assert told is not None
    assert (
        "was best at 28 at step 9000 and ended at 15, but its final policy scored 7.5 on held-out episodes, "
        "while its reward per step rose from 0.9 at that step to 1" in told
    )


def test_points_without_a_score_or_with_a_partial_one_are_left_out():
    # No episode ended in three windows; in the last one the running episodes' score is low only for being
    # cut short. The peak and the end are read from the points with a real score.
    scores = [2.0, None, 17.0, 28.0, None, 15.0, 11.0, 7.5, 3.0]
    told = hacking_alarm("r1c0", recorded(RISING[:9], scores, held=7.5, partial=(8,)), higher_is_better=True)
    assert told is not None
    assert "was best at 28 at step 4000 and fell to 7.5 by step 8000" in told
    assert "its reward per step rose from 0.4 at that step to 0.8" in told
    rise_then_cut = [2.0, 9.0, 17.0, 24.0, 28.0, 1.0, 0.5]  # the last two only partial
    assert hacking_alarm("r1c0", recorded(RISING[:7], rise_then_cut, 28.0, (5, 6)), True) is None
    # Fewer than three points with a score: nothing to read a peak from.
    assert hacking_alarm("r1c0", recorded(RISING[:4], [28.0, None, 2.0, 1.0], partial=(3,)), True) is None


def test_the_reflection_shows_success_component_shares_a_flat_score_and_the_alarm():
    text = reflection_text(Prompts(), TASK, gamed(trained(1, 1, 0.5)).training, candidate_id="r1c1")
    assert "Success rate on held-out episodes: 50%." in text
    assert "- r: 8 (80%)" in text and "- effort: -2 (20%)" in text
    assert "(the task score did not improve during training)" in text and "rewrite the reward entirely" in text
    assert "Reward hacking: the task score of r1c1's training episodes was best at 2" in text
    assert "go through the components one by one" in text


def test_the_last_rounds_best_is_not_analysed_nobody_would_read_it(tmp_path):
    (tmp_path / "none.jsonl").write_text("")  # an analyzer call would find no reply and raise
    config = LoopConfig(rounds=2)
    feedback = build_feedback(ReplayLLM(tmp_path / "none.jsonl"), Prompts(), TASK, config, gamed(trained(2, 0, 0.5)))
    assert feedback.analysis is None and "Reward hacking" in feedback.reflection


def test_what_the_reward_reads_and_the_contacts_reach_the_analyzer_the_designer_and_both_pages(tmp_path):
    import html

    from autoreward.records import ContactShare, ReadQuantity, RoundResult
    from autoreward.review.html_report import html_report
    from autoreward.review.report import gather_run
    from autoreward.review.views import candidate_view

    candidate = gamed(trained(1, 1, 0.5))
    lift = QuantityStats("bodies.foot.pos[:, 2]", "m", 0.12, 0.0, 0.31, 0.02, 0.2)
    summary = dataclasses.replace(
        candidate.training.evaluation.summary,
        reads=(ReadQuantity(lift, ("lift",)), ReadQuantity(dataclasses.replace(lift, name="qpos[:, 1]"), None)),
        contacts=(ContactShare("foot", 0.25, 1.0, 0.0),),
    )
    evaluation = dataclasses.replace(candidate.training.evaluation, summary=summary)
    candidate = dataclasses.replace(candidate, training=dataclasses.replace(candidate.training, evaluation=evaluation))
    with ChatServer(default=Reply("- the foot never leaves the ground late in an episode")) as server:
        llm = OpenAIChat("test-model", base_url=server.url, api_key="sk-test")
        feedback = build_feedback(llm, Prompts(), TASK, LoopConfig(rounds=2), candidate)
    analyzer_prompt = server.requests[0]["messages"][-1]["content"]
    store = make_run(tmp_path / "runs", feedback="fitness")
    store.save_candidate(candidate)
    store.save_round(RoundResult(1, ("r1c0", "r1c1", "r1c2"), "r1c1", "r1c1", feedback, ()))
    report = html.unescape(html_report(gather_run(store), store.path))
    page = candidate_view(store.path, candidate).trajectory
    for shown in (analyzer_prompt, feedback.text(), report, page):
        assert "bodies.foot.pos[:, 2] (m)" in shown and "feeds: lift" in shown
        assert "qpos[:, 1] (m)" in shown and "feeds: (not traced)" in shown
        assert f"{'foot':<44} {0.25:>9.2f} {1.0:>9.2f} {0.0:>9.2f}" in shown


def test_the_report_flags_the_candidate_whose_reward_was_gamed(tmp_path):
    from autoreward.records import RoundResult
    from autoreward.review.report import gather_run

    store = make_run(tmp_path / "runs", feedback="fitness")
    store.save_candidate(gamed(trained(1, 1, 1.5)))
    store.save_round(RoundResult(1, ("r1c0", "r1c1", "r1c2"), "r1c1", "r1c1", None, ()))
    text = markdown_report(gather_run(store))
    assert "- **Reward hacking: the task score of r1c1's training episodes was best at 2 at step 100" in text


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
