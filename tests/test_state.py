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
    # A body's `pos` is its frame's origin, which a reward must not take for where its geometry is.
    assert "pos: np.ndarray  # (N, 3) the body's frame origin, world frame [m]; not necessarily its geometry's" in text


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


# A robot arm as robot models often name it: a body called `base` (an attribute every numpy array has, which
# the reward rules refuse), with a joint called `data` (refused too) and a body `link` on it.
ARM = """
<mujoco><worldbody>
  <body name="base" pos="0 0 0.1"><geom size="0.1"/>
    <body name="link" pos="0 0 0.2"><joint name="data" type="hinge" axis="0 1 0"/><geom size="0.05"/></body>
  </body>
</worldbody><actuator><motor joint="data"/></actuator></mujoco>"""


def _arm_states(steps: int = 12):
    model = mujoco.MjModel.from_xml_string(ARM)
    layout = StateLayout.from_model(model, env_id="Arm", frame_skip=1, action_low=-np.ones(1), action_high=np.ones(1))
    data = mujoco.MjData(model)
    states = []
    for step in range(steps):
        data.ctrl[:] = np.sin(step)
        mujoco.mj_step(model, data)
        states.append(layout.state(layout.snapshot(data)))
    return layout, concatenate(states)


def test_a_body_called_base_is_a_usable_field_under_its_renamed_name():
    from autoreward.config import CheckOptions
    from autoreward.contract.checker import check_loaded
    from autoreward.contract.reward_program import static_check

    layout, states = _arm_states()
    assert [b.name for b in layout.bodies] == ["world", "base_", "link"]
    assert [j.name for j in layout.joints] == ["data_"]
    text = describe_layout(layout)
    assert "    base_: Body  #" in text and "    data_: HingeJoint  #" in text and "child of base_" in text
    assert "    base: " not in text and "    data: " not in text
    np.testing.assert_allclose(states.bodies.base_.pos[:, 2], 0.1)
    assert states.joints.data_.qpos.shape == (12,) and states.resolve("bodies.base_.pos").shape == (12, 3)

    refused = static_check(
        "def compute_reward(state, action, next_state):\n    h = next_state.bodies.base.pos[:, 2]\n    return h, {'h': h}\n"
    )
    assert refused.category.value == "forbidden" and "the model's `base` is `base_` in the State" in refused.message
    code = (
        "import numpy as np\n\ndef compute_reward(state, action, next_state):\n"
        "    height = next_state.bodies.link.pos[:, 2] - next_state.bodies.base_.pos[:, 2]\n"
        "    swing = np.abs(next_state.joints.data_.qvel)\n"
        "    return height + swing, {'height': height, 'swing': swing}\n"
    )
    actions = np.zeros((states.batch_size, 1))
    result = check_loaded(code, states, actions, states, CheckOptions(batch_size=6, rows_compared=3))
    assert result.ok, result.message
    assert result.components == ("height", "swing")


def test_the_state_hands_out_no_class_and_its_classes_refuse_new_attributes():
    _, states = _arm_states(2)
    public = [getattr(states, name) for name in dir(states) if not name.startswith("_")]
    held = [*public, *(item for value in public if isinstance(value, (tuple, list)) for item in value)]
    assert not [value for value in held if isinstance(value, type)]  # `walkable` was a tuple of the classes
    body = states.bodies.base_
    with pytest.raises(AttributeError, match="the state's classes are read-only"):
        type(body).pos = type(body).com  # what a descriptor set on a class would do: every State reads `com`
    with pytest.raises(AttributeError, match="the state's classes are read-only"):
        del type(states).resolve
    np.testing.assert_array_equal(body.pos, states.arrays()["xpos"][:, 1])
