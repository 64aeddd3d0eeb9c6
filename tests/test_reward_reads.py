"""What a reward program reads, found in its text: paths, columns, aliases, the components each feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoreward.contract.reads import fields_of, reward_reads
from autoreward.records import RewardRead
from autoreward.sim.state import StateLayout
from autoreward.task.files import find_task, make_env


def program(body: str, header: str = "def compute_reward(state, action, next_state):") -> str:
    return "import numpy as np\n\n" + header + "\n" + "\n".join("    " + line for line in body.splitlines()) + "\n"


@pytest.fixture(scope="module")
def walker_state():
    env = make_env(find_task("walker_forward"))
    layout = StateLayout.from_env(env)
    env.close()
    return layout.state(layout.allocate(1))


def test_direct_paths_give_the_field_and_the_column_and_the_component_each_feeds():
    code = program(
        "lift = next_state.bodies.foot_left.com[:, 2] - state.bodies.foot_left.com[:, 2]\n"
        "upright = np.cos(next_state.joints.rooty.qpos)\n"
        "ctrl = -1e-3 * np.sum(np.square(action), axis=1)\n"
        "spin = -np.abs(next_state.qvel[..., -1])\n"
        'return lift + upright + ctrl + spin, {"lift": lift, "upright": upright, "ctrl": ctrl, "spin": spin}'
    )
    assert reward_reads(code) == (
        RewardRead("bodies.foot_left.com", 2, ("lift",)),  # read in state and next_state: one read
        RewardRead("joints.rooty.qpos", None, ("upright",)),
        RewardRead("action", None, ("ctrl",)),
        RewardRead("qvel", -1, ("spin",)),
    )


def test_reads_through_aliases_loops_resolve_and_the_programs_own_functions():
    code = (
        "import numpy as np\n\n"
        "def height(s):\n"
        "    return s.bodies.torso.pos[:, 2]\n\n"
        "def compute_reward(s, a, ns):\n"  # the parameters may have other names
        "    feet = ns.bodies\n"
        "    p = feet.foot.pos\n"
        "    lift = p[:, 2]\n"
        "    parts = [ns.bodies.thigh, ns.bodies.thigh_left]\n"
        "    swing = sum(np.abs(b.angvel[:, 1]) for b in parts)\n"
        '    run = ns.resolve("bodies.torso.linvel")[:, 0]\n'
        "    tall = height(ns)\n"
        '    return lift + swing + run + tall, {"lift": lift, "swing": swing, "run": run, "tall": tall}\n'
    )
    assert reward_reads(code) == (
        RewardRead("bodies.foot.pos", 2, ("lift",)),
        RewardRead("bodies.thigh.angvel", 1, ("swing",)),
        RewardRead("bodies.thigh_left.angvel", 1, ("swing",)),
        RewardRead("bodies.torso.linvel", 0, ("run",)),
        RewardRead("bodies.torso.pos", 2, ("tall",)),
    )


def test_components_are_traced_through_assignments_and_a_dict_filled_bit_by_bit():
    code = program(
        "z = next_state.bodies.foot.pos[:, 2]\n"
        "terms = []\n"
        "terms.append(np.clip(z, 0.0, 0.3))\n"
        "lift = sum(terms)\n"
        "speed = next_state.joints.rootx.qvel\n"
        "speed = speed * 0.5\n"
        "components = {}\n"
        'components["lift"] = lift\n'
        "components.update(speed=speed)\n"
        "total = lift + speed\n"
        "total += 0.1 * next_state.joints.rooty.qpos\n"  # the total only: no component
        "return total, components"
    )
    assert reward_reads(code) == (
        RewardRead("bodies.foot.pos", 2, ("lift",)),
        RewardRead("joints.rootx.qvel", None, ("speed",)),
        RewardRead("joints.rooty.qpos", None, ()),  # the total alone
    )


def test_what_cannot_be_traced_says_so():
    decided_by_an_if = program(
        "alive = np.ones(len(action))\n"  # len(action) reads a shape, not the action
        "if np.any(next_state.bodies.torso.pos[:, 2] < 0.8):\n"
        "    alive = alive * 0.0\n"
        'return alive, {"alive": alive}'
    )
    assert reward_reads(decided_by_an_if) == (RewardRead("bodies.torso.pos", 2, None),)
    by_a_comprehension = program(
        'terms = {name: next_state.bodies.torso.linvel[:, i] for i, name in enumerate(["x", "y"])}\n'
        "return sum(terms.values()), {k: v for k, v in terms.items()}"
    )
    assert reward_reads(by_a_comprehension) == (RewardRead("bodies.torso.linvel", None, None),)


def test_the_text_is_read_never_run():
    code = "import numpy as np\n\nraise SystemExit('ran')\n\n" + program(
        "r = next_state.qpos[:, 0]\nreturn r, {'r': r}"
    )
    assert reward_reads(code) == (RewardRead("qpos", 0, ("r",)),)
    assert reward_reads("def compute_reward(state, action, next_state) return") == ()  # does not parse
    assert reward_reads(program("return 0, {}", header="def reward(state, action, next_state):")) == ()


def test_only_fields_of_the_tasks_state_are_kept_each_cut_to_its_field(walker_state):
    code = program(
        "tall = next_state.bodies.torso.pos.mean(axis=1)\n"  # a method of the field: the field itself is read
        "nose = next_state.bodies.nose.pos[:, 2]\n"  # no such body in Walker2d
        "step = next_state.dt\n"  # a number, not an array field
        "foot = next_state.bodies.foot\n"
        "low = np.minimum(foot.pos[:, 2], 1.0)\n"
        "ctrl = -np.sum(action ** 2, axis=1)\n"
        "r = tall + nose * step + low + ctrl\n"
        'return r, {"tall": tall, "nose": nose, "low": low, "ctrl": ctrl}'
    )
    found = reward_reads(code)
    assert RewardRead("bodies.nose.pos", 2, ("nose",)) in found and RewardRead("dt", None, ()) in found
    assert fields_of(found, walker_state) == (
        RewardRead("bodies.torso.pos", None, ("tall",)),
        RewardRead("bodies.foot.pos", 2, ("low",)),
        RewardRead("action", None, ("ctrl",)),
    )


def test_every_shipped_human_reward_reads_fields_and_traces_each_to_a_component():
    rewards = Path(find_task("hopper_forward").human_reward).parent
    hopper = reward_reads((rewards / "hopper_v5.py").read_text())
    assert hopper == (
        RewardRead("joints.rootx.qpos", None, ("forward",)),
        RewardRead("dt", None, ("forward",)),
        RewardRead("joints.rootz.qpos", None, ("survive",)),  # `z = ...`: an alias, ranked where it is made
        RewardRead("joints.rooty.qpos", None, ("survive",)),
        RewardRead("qpos", None, ("survive",)),
        RewardRead("qvel", None, ("survive",)),
        RewardRead("action", None, ("ctrl",)),
    )
    for path in sorted(rewards.glob("*.py")):
        reads = reward_reads(path.read_text())
        assert reads and all(read.feeds for read in reads), path.name
