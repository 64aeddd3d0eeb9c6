"""A hard task end to end: Walker2d standing on its right leg, which needs a lifted foot (issue 25).

Through a chat server, two rounds of two candidates on a budget far too small to learn it, so every stored
episode is a failure: the designer is told where each foot is and what it carries at rest, the analyzer and the
round-2 designer see the paths each reward reads with the feet's contact shares, and the pre-screen, on a pool
of failures, drops nobody.
"""

from __future__ import annotations

import pytest

from autoreward.loop.run_store import RunStore

from .chat_server import ChatServer, Reply, text_of
from .conftest import candidates_of, run_cli_to_end

FRAME_HEIGHT = """
import numpy as np

def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    lift = 3.0 * np.clip(next_state.bodies.foot_left.pos[:, 2], 0.0, 0.3)
    return alive + lift, {"alive": alive, "lift": lift}
"""

COM_LIFT = """
import numpy as np

def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    lift = 5.0 * np.clip(next_state.bodies.foot_left.com[:, 2] - 0.059, 0.0, 0.2)
    return alive + lift, {"alive": alive, "lift": lift}
"""

LOAD = """
import numpy as np

def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    free = 2.0 * (next_state.bodies.foot_left.cfrc_ext[:, 5] < 1.0)
    return alive + free, {"alive": alive, "free": free}
"""

LOWERED = """
import numpy as np

def compute_reward(state, action, next_state):
    alive = np.ones(state.batch_size)
    lowered = -5.0 * next_state.bodies.foot_left.com[:, 2]
    return alive + lowered, {"alive": alive, "lowered": lowered}
"""


def walker_designer(body: dict) -> Reply:
    messages = body["messages"]
    last = text_of(messages[-1]["content"])
    if last.startswith("A policy was trained on a reward"):
        return Reply("- the left foot never leaves the ground\n- pay for the foot's load, not its frame's height")
    second_round = "The best reward so far" in messages[1]["content"]
    code = [[FRAME_HEIGHT, COM_LIFT], [LOAD, LOWERED]][second_round][body.get("seed", 0) % 2]
    return Reply(f"Lift the left foot.\n\n```python{code}```\n", prompt_tokens=900)


@pytest.mark.slow  # two rounds of two Walker2d trainings of 2048 steps, the final and the baselines: about 2 min
def test_on_a_task_that_needs_a_lifted_foot_the_designer_and_analyzer_see_the_feet(workspace):
    flags = ["run", "walker_one_leg", "--rounds", "2", "--candidates", "2", "--no-critic", "--final-seeds", "1"]
    flags += ["--workers", "2", "--steps", "2048", "--envs", "2", "--eval-episodes", "5", "--prescreen"]
    with ChatServer(responder=walker_designer) as server:
        run_cli_to_end(flags, server.url, workspace)
    (run,) = (workspace / "runs").glob("walker_one_leg__design*")
    users = [text_of(r["messages"][-1]["content"]) for r in server.requests]
    designs = [text_of(r["messages"][1]["content"]) for r in server.requests if len(r["messages"]) > 1]
    # The State the designer reads says where each foot is, and what it carries, standing.
    system = text_of(server.requests[0]["messages"][0]["content"])
    assert "bodies.foot, bodies.foot_left: each on the ground, carries about 114 N" in system
    assert "com z 0.059 m (0.099 above pos)" in system and "weight 232 N" in system
    # The analyzer read what the round's best reward reads, and the feet's contact shares.
    (analysis,) = [u for u in users if u.startswith("A policy was trained on a reward")]
    assert "read by the reward (the components it feeds)" in analysis
    assert "feeds: lift" in analysis and "next_state.bodies.foot_left." in analysis
    assert "in contact (share of steps)" in analysis and "foot_left" in analysis.split("in contact")[1]
    # The round-2 designer got the same table beside the reflection.
    (round_two,) = {d for d in designs if "The best reward so far" in d}
    assert "read by the reward" in round_two and "in contact (share of steps)" in round_two
    # Every stored episode failed (no policy stood 500 steps on one leg in 2048 steps), so nothing was dropped.
    candidates = candidates_of(run)
    assert all(c.fitness is not None and c.fitness < 500 for c in candidates.values() if c.round == 1)
    screened = [e for e in RunStore.open(run).events() if e["event"] == "pre-screened"]
    assert {e["candidate"] for e in screened} == {"r2c0", "r2c1"}
    assert {e["verdict"] for e in screened} <= {"all_failures"}
    assert {candidates["r2c0"].status, candidates["r2c1"].status} == {"trained"}
