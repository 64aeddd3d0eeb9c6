"""The trajectory summary: the key quantities, what the reward reads with the components it feeds, and contacts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from autoreward.config import TrainingConfig
from autoreward.contract.reads import reward_reads
from autoreward.loop.evaluation import EVALUATION_SEED_BASE, evaluate
from autoreward.records import ContactShare, Evaluation, QuantityStats, ReadQuantity, RewardRead, TrajectorySummary
from autoreward.serialize import checked, from_dict, to_dict
from autoreward.sim.state import StateLayout
from autoreward.sim.trajectory import MAX_READ_ROWS, TrajectoryRecorder, read_rows, summary_text
from autoreward.sim.vec_env import make_vec_env
from autoreward.task.files import find_task, make_env

WALKER = find_task("walker_forward")
EPISODES = TrainingConfig(steps=1024, n_envs=2, eval_episodes=2)

STAND_ON_ONE_LEG = """
import numpy as np

def compute_reward(state, action, next_state):
    lift = np.clip(next_state.bodies.foot_left.pos[:, 2], 0.0, 0.3)
    torso = next_state.bodies.torso
    tall = torso.pos[:, 2]
    drift = -np.abs(torso.pos[:, 0] - state.bodies.torso.pos[:, 0])
    ctrl = -1e-3 * np.sum(np.square(action), axis=1)
    if np.any(next_state.bodies.torso.quat[:, 0] < 0.0):
        tall = tall * 0.5
    return lift + tall + drift + ctrl, {"lift": lift, "tall": tall, "drift": drift, "ctrl": ctrl}
"""


class Swaying:
    """A policy of fixed sines: the same episodes every run, feet on and off the ground."""

    def __init__(self):
        self.step = 0

    def predict(self, observations, deterministic=True):
        self.step += 1
        return np.sin(0.3 * self.step + np.arange(6))[None, :] * 0.8, None


def test_a_held_out_summary_shows_what_the_reward_reads_labelled_with_its_components_and_the_feet_on_the_ground():
    env = make_vec_env(WALKER, 1, EVALUATION_SEED_BASE, "native", copy_all_fields=True)
    evaluation = evaluate(Swaying(), WALKER, EPISODES, env, reads=reward_reads(STAND_ON_ONE_LEG))
    summary = evaluation.summary
    rows = {read.stats.name: read for read in summary.reads}
    assert list(rows) == [
        "bodies.foot_left.pos[:, 2]",
        "bodies.torso.pos[:, 2]",
        "bodies.torso.pos[:, 0]",
        "|action|",
        "bodies.torso.quat[:, 0]",
    ]
    assert (
        rows["bodies.foot_left.pos[:, 2]"].feeds == ("lift",) and rows["bodies.foot_left.pos[:, 2]"].stats.unit == "m"
    )
    assert rows["bodies.torso.pos[:, 0]"].feeds == ("drift",) and rows["|action|"].feeds == ("ctrl",)
    assert rows["bodies.torso.quat[:, 0]"].feeds is None  # it only decides an `if`
    foot = rows["bodies.foot_left.pos[:, 2]"].stats
    assert foot.min < foot.mean < foot.max and foot.min > -0.2 and foot.max < 1.0
    bodies = [c.body for c in summary.contacts]
    assert "foot" in bodies and "foot_left" in bodies and "torso" not in bodies  # it never fell on its back
    assert all(0.0 < c.share <= 1.0 and 0.0 <= c.start <= 1.0 and 0.0 <= c.end <= 1.0 for c in summary.contacts)
    text = summary_text(summary)
    assert "bodies.foot_left.pos[:, 2] (m)" in text and "feeds: lift" in text and "feeds: (not traced)" in text
    assert "in contact (share of steps)" in text
    assert checked(Evaluation, to_dict(evaluation)) == evaluation  # as the orchestrator takes it from the worker


def walker_layout() -> StateLayout:
    env = make_env(WALKER)
    layout = StateLayout.from_env(env)
    env.close()
    return layout


def test_a_contact_is_a_force_on_the_body_and_its_share_is_counted_early_and_late():
    layout = walker_layout()
    foot = next(b.index for b in layout.bodies if b.name == "foot")
    recorder = TrajectoryRecorder(layout)
    arrays = layout.allocate(1)
    state = layout.state(arrays)
    for step in range(20):  # on the ground for the first 15 steps, then in the air
        arrays["cfrc_ext"][0, foot] = [0.3, 0.0, 0.0, 0.0, 0.0, 40.0] if step < 15 else [0.3, 0.0, 0.0, 0, 0, 0]
        recorder.observe(state, np.zeros((1, 6)), state)
    recorder.end_episode(terminated=False)
    (contact,) = recorder.summary().contacts  # a torque alone is no contact force; no other body touched
    assert contact == ContactShare("foot", 0.75, 1.0, 0.0)


def test_read_rows_are_few_and_a_field_read_whole_shows_only_the_columns_that_move():
    body = "\n".join(
        f"    r{i} = next_state.bodies.{b}.linvel" for i, b in enumerate(("torso", "thigh", "leg", "foot"))
    )
    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n" + body + "\n"
        "    r = np.sum(r0 + r1 + r2 + r3, axis=1)\n    return r, {'r': r}\n"
    )
    env = make_vec_env(WALKER, 1, EVALUATION_SEED_BASE, "native", copy_all_fields=True)
    summary = evaluate(Swaying(), WALKER, EPISODES, env, reads=reward_reads(code)).summary
    names = [read.stats.name for read in summary.reads]
    assert len(names) == MAX_READ_ROWS and all(name.endswith(("[:, 0]", "[:, 2]")) for name in names)  # no y
    assert names[:2] == ["bodies.torso.linvel[:, 0]", "bodies.torso.linvel[:, 2]"]


def test_an_observation_state_summarises_the_columns_the_reward_reads():
    task = find_task("pendulum_swing_up")
    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        "    up = next_state.obs.cos_theta\n    effort = -0.001 * action[:, 0] ** 2\n"
        "    return up + effort, {'up': up, 'effort': effort}\n"
    )

    class Push:
        def predict(self, observations, deterministic=True):
            return np.array([[1.0]]), None

    env = make_vec_env(task, 1, EVALUATION_SEED_BASE, "native", copy_all_fields=True)
    summary = evaluate(
        Push(), task, dataclasses.replace(EPISODES, eval_episodes=1), env, reads=reward_reads(code)
    ).summary
    assert [(r.stats.name, r.feeds) for r in summary.reads] == [
        ("obs.cos_theta", ("up",)),
        ("action[:, 0]", ("effort",)),
    ]
    assert summary.contacts == ()  # no MuJoCo model, no contact forces


def test_a_summary_of_an_older_run_loads_and_reads_as_before():
    older = {
        "episodes": 2,
        "terminated": 1,
        "length_mean": 40.0,
        "quantities": [to_dict(QuantityStats("torso position x", "m", 0.5, -0.1, 1.5, 0.0, 1.4))],
    }
    summary = from_dict(TrajectorySummary, older)
    assert summary.reads == () and summary.contacts == ()
    assert summary_text(summary) == (
        "2 held-out episodes, mean length 40.0 steps; 1 ended early (the environment terminated them), 1 ran to the "
        "time limit.\n\n"
        "quantity                                          mean       min       max     early      late\n"
        "torso position x (m)                               0.5      -0.1       1.5         0       1.4\n\n"
        "early / late: mean over the first / last tenth of each episode."
    )


def test_the_summary_text_labels_each_read_with_its_components_and_lists_the_contacts():
    summary = TrajectorySummary(
        episodes=2,
        terminated=0,
        length_mean=1000.0,
        quantities=(),
        reads=(
            ReadQuantity(QuantityStats("bodies.foot_left.pos[:, 2]", "m", 0.12, 0.0, 0.31, 0.02, 0.2), ("lift",)),
            ReadQuantity(QuantityStats("bodies.torso.quat[:, 0]", "", 0.98, 0.9, 1.0, 1.0, 0.97), None),
            ReadQuantity(QuantityStats("joints.rooty.qpos", "rad", 0.1, 0.0, 0.2, 0.0, 0.2), ()),
        ),
        contacts=(ContactShare("foot", 1.0, 1.0, 1.0), ContactShare("foot_left", 0.25, 1.0, 0.0)),
    )
    lines = summary_text(summary).splitlines()
    assert lines[4:14] == [
        "read by the reward (the components it feeds)      mean       min       max     early      late",
        "bodies.foot_left.pos[:, 2] (m)                    0.12         0      0.31      0.02       0.2  feeds: lift",
        "bodies.torso.quat[:, 0]                           0.98       0.9         1         1      0.97  "
        "feeds: (not traced)",
        "joints.rooty.qpos (rad)                            0.1         0       0.2         0       0.2  "
        "feeds: the total, no component",
        "",
        "in contact (share of steps)                        all     early      late",
        "foot                                              1.00      1.00      1.00",
        "foot_left                                         0.25      1.00      0.00",
        "",
        "early / late: mean over the first / last tenth of each episode.",
    ]


def test_reads_that_are_not_fields_of_the_task_give_no_row():
    layout = walker_layout()
    reads = (
        RewardRead("bodies.nose.pos", 2, ("x",)),  # no such body
        RewardRead("qpos", 99, ("x",)),  # no such column
        RewardRead("bodies.foot", None, ("x",)),  # a body, not an array
        RewardRead("qpos", 1, ("x",)),
    )
    recorder = TrajectoryRecorder(layout, reads)
    arrays = layout.allocate(1)
    state = layout.state(arrays)
    for height in (1.2, 1.1):
        arrays["qpos"][0, 1] = height
        recorder.observe(state, np.zeros((1, 6)), state)
    recorder.end_episode(terminated=True)
    (read,) = recorder.summary().reads
    assert read.stats.name == "qpos[:, 1]" and read.stats.max == pytest.approx(1.2) and read.feeds == ("x",)


def test_a_contact_wrench_read_by_column_has_its_unit():
    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        "    load = next_state.bodies.foot.cfrc_ext[:, 5]\n"
        "    twist = next_state.bodies.foot.cfrc_ext[:, 1]\n"
        "    return load + twist, {'load': load, 'twist': twist}\n"
    )
    units = {row.name: row.unit for row in read_rows(walker_layout(), reward_reads(code))}
    assert units == {"bodies.foot.cfrc_ext[:, 5]": "N", "bodies.foot.cfrc_ext[:, 1]": "N m"}
