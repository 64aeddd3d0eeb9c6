"""A scripted LLM for end-to-end runs: it answers each request by what it is asked.

Served by `tests/chat_server.ChatServer(responder=persona)`, it plays a designer
whose first program in round 1 fails its check (an `if` on an array) and is
repaired, whose second writes the wrong sign and is rejected by the critic
and then repaired, and whose round-2 candidates are a better reward and a
reply with no Python at all (dropped after its repair, also not Python).
"""

from __future__ import annotations

from .chat_server import Reply, text_of

BACKWARD = """
import numpy as np

def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    backward = {scale} * -x_velocity
    effort = -{effort} * np.sum(np.square(action), axis=1)
    return backward + effort, {{"backward": backward, "effort": effort}}
"""

NOT_VECTORIZED = """
import numpy as np

def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    if x_velocity < 0:
        backward = -x_velocity
    else:
        backward = 0.0 * x_velocity
    return backward, {"backward": backward}
"""

FORWARD = """
import numpy as np

def compute_reward(state, action, next_state):
    forward = next_state.bodies.torso.linvel[:, 0]  # FORWARD
    return forward, {"forward": forward}
"""


def block(code: str, prose: str) -> Reply:
    return Reply(f"{prose}\n\n```python{code}```\n", prompt_tokens=900, completion_tokens=120)


def persona(body: dict) -> Reply:
    messages = body["messages"]
    last = text_of(messages[-1]["content"])
    repairs = sum(1 for m in messages if m["role"] == "assistant")
    sample = body.get("seed", 0)
    if last.startswith("You review reward functions"):
        if "# FORWARD" in last:
            return Reply(
                "VERDICT: REJECT\n- the reward is the velocity along +x, but the task asks for -x: flip its sign"
            )
        return Reply("VERDICT: ACCEPT\n- the main term rewards motion towards -x")
    if last.startswith("Several reward functions were written"):
        return Reply("BEST: r1c1\n- its torso moved furthest towards -x")
    if last.startswith("A policy was trained on a reward"):
        return Reply("- the policy moves backwards but slowly\n- raise the weight of the velocity term")
    second_round = "The best reward so far" in messages[1]["content"]
    if not second_round and sample == 0:
        if repairs == 0:
            return block(NOT_VECTORIZED, "Reward backward speed only.")
        return block(BACKWARD.format(scale=1.0, effort=0.1), "Vectorized with arithmetic instead of an if.")
    if not second_round and sample == 1:
        if repairs == 0:
            return block(FORWARD, "Reward the torso's speed.")
        return block(BACKWARD.format(scale=0.5, effort=0.1), "Flipped the sign as the reviewer said.")
    if second_round and sample == 0:
        return block(BACKWARD.format(scale=2.0, effort=0.05), "Weight the speed more, as the analysis suggests.")
    return Reply("Here it is in JavaScript:\n\n```javascript\nfunction computeReward() { return 0; }\n```\n")


REVERSED = """
import numpy as np

def compute_reward(state, action, next_state):
    x_velocity = (next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt
    speed = 1.5 * x_velocity
    return speed, {"speed": speed}
"""


def persona_with_a_reversed_candidate(body: dict) -> Reply:
    """As `persona`, but round 2's second candidate rewards running the wrong way, and the critic misses it."""
    messages = body["messages"]
    if len(messages) == 2 and "The best reward so far" in messages[1]["content"] and body.get("seed") == 1:
        return block(REVERSED, "Reward the speed of the root joint.")
    return persona(body)


# --- a fixed pool for preference-driven runs -----------------------------------------

THIGH = """
import numpy as np

def compute_reward(state, action, next_state):
    thigh = {scale} * action[:, 0]  # {marker}
    return thigh, {{"thigh": thigh}}
"""

STEADY = """
import numpy as np

def compute_reward(state, action, next_state):
    steady = 0.0 * np.abs(action[:, 0]) + 0.1  # STEADY
    return steady, {"steady": steady}
"""


def preference_persona(body: dict) -> Reply:
    """Designs from a small fixed pool whose round 2 follows the preference it was told.

    Round 1: a reward that pulls the back thigh back (PULL, the wrong way) and
    one that rewards nothing in particular (STEADY). Round 2 builds on the
    program the feedback says was preferred: from STEADY it pushes the thigh
    forward (PUSH, the task); from PULL it pulls harder. So a right
    preference improves the task score from round 1 to 2, and a wrong one
    makes it worse. The judge (for LLM preferences) prefers STEADY to PULL.
    """
    messages = body["messages"]
    last = text_of(messages[-1]["content"])
    sample = body.get("seed", 0)
    if last.startswith("You review reward functions"):
        return Reply("VERDICT: ACCEPT\n- it is a reward")
    if last.startswith("Several reward functions were written"):
        return Reply(
            "BEST: r1c1\nWORST: r1c0\n- r1c0 holds the thigh back the whole episode\n"
            "- r1c1 at least does not fight the task"
        )
    if last.startswith("A policy was trained on a reward"):
        return Reply("- the thigh command barely moves; reward pushing it forward")
    request = messages[1]["content"]
    if "The best reward so far" not in request:
        if sample == 0:
            return block(THIGH.format(scale=-1.0, marker="PULL"), "Reward the thigh's command.")
        return block(STEADY, "A steady reward first, to see what the policy does.")
    if "# STEADY" in request.split("What training on it showed")[0]:
        return block(THIGH.format(scale=1.0 + sample, marker="PUSH"), "Push the thigh forward, as preferred.")
    return block(THIGH.format(scale=-2.0 - sample, marker="PULL"), "More of the preferred reward.")


def preference_persona_one_round(body: dict) -> Reply:
    """As `preference_persona`, but round 2's designs are not Python, so only round 1 trains."""
    messages = body["messages"]
    if len(messages) == 2 and "The best reward so far" in messages[1]["content"]:
        return Reply("Here it is in JavaScript:\n\n```javascript\nfunction computeReward() { return 0; }\n```\n")
    return preference_persona(body)


CHEETAH_PROGRESS = """
import numpy as np

def compute_progress(state, action, next_state):
    backward = np.clip(-next_state.joints.rootx.qpos / 2.0, 0.0, 1.0)
    upright = np.clip(np.cos(next_state.joints.rooty.qpos), 0.0, 1.0)
    return {"backward": backward, "upright": upright}
"""

CHEETAH_LATENT = """
import numpy as np

def compute_latent(state, action, next_state):
    moved = (state.joints.rootx.qpos - next_state.joints.rootx.qpos) / state.dt
    effort = np.sum(np.square(action), axis=1)
    return {"moved_back": moved, "effort": effort}
"""


def forms_persona(body: dict) -> Reply:
    """A designer that writes each form it is asked for (the system prompt says which), in every round."""
    messages = body["messages"]
    last = text_of(messages[-1]["content"])
    if last.startswith("You review reward functions"):
        return Reply("VERDICT: ACCEPT\n- it measures motion towards -x")
    if last.startswith("A policy was trained on a reward"):
        return Reply("- the policy moves backwards but slowly")
    system = text_of(messages[0]["content"])
    if "You write progress functions" in system:
        return block(CHEETAH_PROGRESS, "Progress as distance travelled backwards, and staying upright.")
    if "You write latent reward terms" in system:
        return block(CHEETAH_LATENT, "What a step did: its motion backwards and its effort.")
    return block(BACKWARD.format(scale=1.0, effort=0.1), "Backward speed, light effort.")
