import ast

import mujoco
import numpy as np
import pytest

from autoreward.sim.state import StateLayout, concatenate, python_names
from autoreward.task.describe import describe_layout, describe_task
from autoreward.task.files import load_tasks, make_env, task_from_sentence


def rolled_out(env_id: str, steps: int = 8):
    env = make_env(task_from_sentence(env_id, "move"))
    env.reset(seed=1)
    env.action_space.seed(1)
    for _ in range(steps):
        env.step(env.action_space.sample())
    return env, StateLayout.from_env(env)


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "Reacher-v5"])
def test_body_velocities_match_mujoco(env_id):
    env, layout = rolled_out(env_id)
    model, data = env.unwrapped.model, env.unwrapped.data
    state = layout.state(layout.snapshot(data))
    for body in layout.bodies:
        expected = np.zeros(6)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, body.index, expected, 0)
        view = getattr(state.bodies, body.name)
        np.testing.assert_allclose(view.linvel[0], expected[3:], atol=1e-10)
        np.testing.assert_allclose(view.angvel[0], expected[:3], atol=1e-10)
        np.testing.assert_array_equal(view.pos[0], data.xpos[body.index])


def test_joints_read_their_own_slots_of_qpos_and_qvel():
    env, layout = rolled_out("Ant-v5")
    data = env.unwrapped.data
    state = layout.state(layout.snapshot(data))
    assert state.joints.root.qpos.shape == (1, 7) and state.joints.root.qvel.shape == (1, 6)
    np.testing.assert_array_equal(state.joints.root.qpos[0], data.qpos[:7])
    np.testing.assert_array_equal(state.joints.hip_1.qpos, data.qpos[7:8])
    assert state.joints.hip_1.qpos.shape == (1,)
    np.testing.assert_array_equal(state.com[0], data.subtree_com[0])


def test_batches_split_and_join_by_rows():
    env, layout = rolled_out("Hopper-v5")
    first = layout.state(layout.snapshot(env.unwrapped.data))
    env.step(env.action_space.sample())
    second = layout.state(layout.snapshot(env.unwrapped.data))
    both = concatenate([first, second])
    assert both.batch_size == 2
    np.testing.assert_array_equal(both.rows(1).qpos, second.qpos)
    np.testing.assert_array_equal(both.rows(np.array([1, 0])).joints.rootx.qpos, [second.qpos[0, 0], first.qpos[0, 0]])


def test_unknown_names_list_the_known_ones():
    _, layout = rolled_out("Hopper-v5", steps=0)
    state = layout.state(layout.allocate(2))
    with pytest.raises(AttributeError, match="the joints are: rootx, rootz, rooty"):
        state.joints.knee
    with pytest.raises(AttributeError, match="private"):
        state.resolve("_arrays")


def test_mujoco_names_become_distinct_identifiers():
    assert python_names(["torso", "", "my-leg", "2nd", "class", "torso"], "body") == [
        "torso",
        "body1",
        "my_leg",
        "body_2nd",
        "class_",
        "torso_5",
    ]


def test_the_half_cheetah_stub_names_its_bodies_joints_and_actions():
    text = describe_task(task_from_sentence("HalfCheetah-v5", "run"))
    for name in ("torso", "bthigh", "ffoot"):
        assert f"    {name}: Body" in text
    assert "    rootx: SlideJoint  # slides along world x" in text
    assert "    rooty: HingeJoint  # rotates about world y" in text
    assert "#   0: bthigh, on joint bthigh, gear 120, range [-1, 1]" in text
    assert "dt: float  # 0.05 s" in text


def test_every_shipped_environment_gets_a_stub_that_is_valid_python():
    for task in load_tasks().values():
        text = describe_task(task)
        ast.parse(text)  # a designer LLM is shown this as Python; it must be Python
        assert "def compute_reward(state: State, action: np.ndarray, next_state: State)" in text
        for extra in task.extras:
            assert f"    {extra}: np.ndarray" in text


def test_a_model_with_sites_and_sensors_describes_them():
    xml = """
    <mujoco><worldbody><body name="ball" pos="0 0 1"><freejoint/>
      <geom size="0.1"/><site name="centre"/></body></worldbody>
      <sensor><velocimeter name="speed" site="centre"/></sensor></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    layout = StateLayout.from_model(model, env_id="Ball", frame_skip=2, action_low=np.zeros(0), action_high=np.zeros(0))
    text = describe_layout(layout)
    assert "    centre: Site  # on body ball" in text
    assert "    speed: np.ndarray  # (N, 3) velocimeter sensor" in text
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data)
    state = layout.state(layout.snapshot(data))
    assert state.sensors.speed.shape == (1, 3) and state.sites.centre.pos.shape == (1, 3)


def test_names_the_reward_rules_refuse_get_an_underscore_and_resolve_stops_at_arrays(cheetah):
    assert python_names(["system", "load", "format"], "body") == ["system_", "load_", "format_"]
    from autoreward.contract.checker import collect_transitions

    states, _, _ = collect_transitions(cheetah, 2, 0)
    assert states.resolve("bodies.torso.pos").shape == (2, 3)
    with pytest.raises(AttributeError, match="goes past a field"):
        states.resolve("qpos.tofile")
