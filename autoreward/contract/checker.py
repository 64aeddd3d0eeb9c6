"""Checking a reward program: the static rules, then running it on real states in a worker.

`check_program` is the orchestrator's entry point: it applies the static
rules (which never run the code) and, if they pass, starts a worker that
collects states from random rollouts of the task's environment and runs the
program on them. Each failure comes back as a `CheckResult` whose message is
written for the program's author: what went wrong, where, what is expected.

The dynamic checks, in order: the call raises nothing; it returns
`(total, components)` with float arrays of shape (N,) and at least one
component (a progress or latent program, its dict of such arrays, with what its
form asks of them: `contract/forms.py`); every value is finite and of sane size; each row's result does
not depend on the other rows (the batch equals row-by-row calls); two calls
on the same input agree; and one call on a batch fits the time budget.
The program is called at the batch sizes it will meet: the check's batch,
one row (held-out evaluation calls it with one environment) and the
training's batch (`CheckOptions.training_batch_size`, its environments), so
a reward that behaves only at one size is caught before any training.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from autoreward.config import CheckOptions, Task, WorkerLimits
from autoreward.contract import forms, reward_program
from autoreward.errors import TaskError, WorkerFileError
from autoreward.records import CheckCategory, CheckResult, ComponentStats
from autoreward.sandbox.jail import Jail
from autoreward.sandbox.supervisor import run_worker
from autoreward.sandbox.worker_files import checked_result
from autoreward.serialize import from_dict, to_dict
from autoreward.task.files import make_env


def check_program(
    task: Task,
    code: str,
    output_dir: Path,
    options: CheckOptions = CheckOptions(),
    jail: Jail | None = None,
    form: str | None = None,
) -> CheckResult:
    """Check `code` against the reward contract for `task`. Runs the code only in a (jailed) worker process.

    `form`: the form the program must be of (None: any; its function says which). Without a
    `training_batch_size` in `options`, the program is also called at the task budget's environments.
    """
    static = reward_program.static_check(code, form)
    if not static.ok:
        return static
    problem = forms.task_problem(reward_program.program_form(code), task)
    if problem is not None:
        return CheckResult(CheckCategory.SIGNATURE, problem)
    if options.training_batch_size is None:
        options = replace(options, training_batch_size=task.budget.n_envs)
    payload = {"task": to_dict(task), "code": code, "options": to_dict(options)}
    limits = WorkerLimits(wall_seconds=300.0, idle_seconds=options.idle_seconds, memory_bytes=4 * 1024**3)
    jail = (jail if jail is not None else Jail.detect()).for_task(task)
    outcome = run_worker("check", payload, output_dir, limits, jail=jail)
    if outcome.status == "ok":
        try:  # from the worker that ran the program: checked field by field, never taken on its word
            return checked_result(outcome.result, CheckResult, "the check worker's result")
        except WorkerFileError as error:
            outcome = replace(outcome, status="worker_protocol", message=str(error))
    if outcome.status == "worker_protocol":
        return CheckResult(
            CheckCategory.FORBIDDEN,
            f"the worker running compute_reward sent what the check does not send ({outcome.message}): a reward "
            "program computes its reward and touches nothing of the process it runs in.",
        )
    if outcome.status in ("timeout", "idle_timeout"):
        return CheckResult(
            CheckCategory.TIMEOUT,
            f"compute_reward did not return within {options.idle_seconds:g} s and was stopped: look for a loop "
            "that never ends or grows with the data; a reward must be a few vectorized numpy operations.",
        )
    if outcome.status == "setup_failed":
        return CheckResult(
            CheckCategory.WORKER_SETUP,
            f"the check could not run, through no fault of the program: {outcome.message}",
        )
    if outcome.status == "killed":
        return CheckResult(
            CheckCategory.KILLED,
            f"the process running compute_reward died ({outcome.message}); it may have used too much memory "
            "or recursed too deeply. Keep arrays to the size of the batch.",
        )
    return CheckResult(CheckCategory.KILLED, f"the check could not run: {outcome.message}")


def check_task(task: Task, jail: Jail | None = None, transitions: int = 64) -> None:
    """Run a task's own parts, its fitness and extras, on real states of its environment, in a worker.

    A task file's mistake (a fitness naming a body the model does not have) raises TaskError naming the task
    file and the field, before any LLM call or training: otherwise every candidate's training would fail
    with it and the designer would be sent it as a lesson, round after round.
    """
    if task.fitness is None and not task.extras:
        return
    outcome = _task_job(task, {"transitions": transitions}, jail)
    if outcome.status != "ok":
        raise TaskError(f"{task.source or task.id}: its environment could not be checked: {outcome.message}")
    problem = _task_check(outcome).problem
    if problem is not None:
        raise TaskError(f"{task.source or task.id} {problem}")


@dataclass(frozen=True)
class TaskCheck:
    """What the task job reports: the first problem it found (None: none), and the score of a random and of
    a still episode when it was asked to play them."""

    problem: str | None
    random: float | None = None
    still: float | None = None


def _task_check(outcome) -> TaskCheck:
    try:
        return checked_result(outcome.result, TaskCheck, "the task check's result")
    except WorkerFileError as error:
        raise TaskError(f"the environment could not be checked: {error}") from None


def _task_job(task: Task, settings: dict, jail: Jail | None):
    """The worker's "task" job on `task` (its score and extras on real states; `settings` say how many), jailed
    as the task's trainings are, in a folder of its own that is gone after."""
    limits = WorkerLimits(wall_seconds=300.0, idle_seconds=120.0, memory_bytes=4 * 1024**3)
    jail = (jail if jail is not None else Jail.detect()).for_task(task)
    with tempfile.TemporaryDirectory(prefix="autoreward-task-check-") as folder:
        return run_worker("task", {"task": to_dict(task), **settings}, Path(folder), limits, jail=jail)


def check_proposed_score(task: Task, jail: Jail | None = None, episode_steps: int = 200) -> tuple[float, float]:
    """Check a proposed task score as a task file's fitness is checked, and that it tells policies apart.

    Returns its value on one episode of random actions and on one of zero actions (a policy that does
    nothing), at most `episode_steps` steps each. A score that fails on real states, is not finite, or gives
    both policies the same value raises TaskError in one sentence, written for the score's author.
    """
    outcome = _task_job(task, {"transitions": 64, "episode_steps": episode_steps}, jail)
    if outcome.status != "ok":
        raise TaskError(f"the environment could not be checked: {outcome.message}")
    found = _task_check(outcome)
    if found.problem is not None:
        raise TaskError(f"the proposed score's {found.problem}")
    if found.random is None or found.still is None:
        raise TaskError("the environment could not be checked: its worker reported no score of an episode")
    random_score, still_score = found.random, found.still
    if abs(random_score - still_score) <= 1e-9 * max(1.0, abs(random_score), abs(still_score)):
        raise TaskError(
            f"the proposed score gives {random_score:.6g} both to random actions and to standing still, so it "
            "cannot tell a policy that does the task from one that does nothing"
        )
    return random_score, still_score


# --- inside the worker -------------------------------------------------------


def run_task_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    """Evaluate the task's fitness and extras on states from random rollouts; say what fails, or None."""
    from autoreward.task.fitness import FitnessMeter

    task = from_dict(Task, payload["task"])
    try:
        states, actions, next_states = collect_transitions(task, payload["transitions"], seed=0)
    except TaskError as error:  # the layout refuses an extra that names no field of the model
        if not task.extras:
            raise
        return {"problem": f"[extras]: {error}"}
    channel.progress(stage="collected", transitions=payload["transitions"])
    for name, path in task.extras.items():
        try:
            next_states.resolve(path)
        except Exception as error:
            return {"problem": f"[extras]: {name!r} names {path!r}, which fails on real states: {_said(error)}"}
    if task.fitness is not None:
        try:
            values = FitnessMeter(task.fitness, states.batch_size).step_values(states, actions, next_states)
        except Exception as error:
            return {"problem": f"[fitness]: field 'step' fails on real states of {task.env_id}: {_said(error)}"}
        if not np.all(np.isfinite(values)):
            return {
                "problem": f"[fitness]: field 'step' gives values that are not finite on real states of {task.env_id}"
            }
    if task.fitness is not None and payload.get("episode_steps"):  # a proposed score: does it tell policies apart?
        scores = {}
        for policy in ("random", "still"):
            scores[policy] = _episode_score(task, policy, payload["episode_steps"], seed=0)
            if not np.isfinite(scores[policy]):
                return {"problem": f"[fitness]: the score of an episode of {policy} actions is not finite"}
        return {"problem": None, **scores}
    return {"problem": None}


def _episode_score(task: Task, policy: str, max_steps: int, seed: int) -> float:
    """The task's fitness of one episode of random actions ("random") or of zero actions ("still")."""
    from autoreward.task.fitness import FitnessMeter

    env, layout, data = _laid_out_env(task, seed)
    meter = FitnessMeter(task.fitness, 1)
    space = env.action_space
    still = np.clip(np.zeros(space.shape), space.low, space.high) if hasattr(space, "low") else space.start
    discrete = getattr(layout, "discrete_actions", 0)
    before = layout.state(layout.snapshot(data))
    for _ in range(max_steps):
        action = space.sample() if policy == "random" else still
        _, _, terminated, truncated, _ = env.step(action)
        after = layout.state(layout.snapshot(data))
        shown = np.array([action], dtype=np.int64) if discrete else np.asarray(action, dtype=np.float64)[None]
        meter.add(meter.step_values(before, shown, after))
        if terminated or truncated:
            break
        before = after
    env.close()
    return float(meter.finish(np.array([0]))[0])


def _said(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def run_check_job(payload: dict[str, Any], output_dir: Path, channel) -> dict:
    task = from_dict(Task, payload["task"])
    options = from_dict(CheckOptions, payload["options"])
    states, actions, next_states = collect_transitions(task, options.transitions, options.seed)
    channel.progress(stage="collected", transitions=options.transitions)
    result = check_loaded(payload["code"], states, actions, next_states, options, channel)
    return to_dict(result)


def collect_transitions(task: Task, count: int, seed: int):
    """`count` transitions (state, action, next_state) from random actions, resetting when episodes end."""
    from autoreward.sim.state import concatenate

    env, layout, data = _laid_out_env(task, seed)
    before = layout.state(layout.snapshot(data))
    states, actions, next_states = [], [], []
    for _ in range(count):
        action = env.action_space.sample()
        _, _, terminated, truncated, _ = env.step(action)
        after = layout.state(layout.snapshot(data))
        states.append(before)
        actions.append(action)
        next_states.append(after)
        if terminated or truncated:
            env.reset()
            after = layout.state(layout.snapshot(data))
        before = after
    env.close()
    # A Discrete action reaches the reward as integers of shape (N,), as in training; a Box one as (N, k) floats.
    discrete = getattr(layout, "discrete_actions", 0)
    stacked = np.array(actions, dtype=np.int64) if discrete else np.stack(actions).astype(np.float64)
    return concatenate(states), stacked, concatenate(next_states)


def _laid_out_env(task: Task, seed: int):
    """The task's environment reset with `seed` (its action space seeded too), wrapped by its State's layout:
    (env, layout, what the layout's `snapshot` copies from)."""
    from autoreward.sim.observation_state import state_layout

    env = make_env(task)
    env.action_space.seed(seed)
    layout = state_layout(env, extras=task.extras)
    env = layout.wrap(env)
    data = layout.source(env)
    env.reset(seed=seed)
    return env, layout, data


def _exception_result(error: BaseException, code: str, when: str) -> CheckResult:
    line, text = reward_program.program_line(error, code)
    where = f" at line {line}: `{text}`" if line else ""
    detail = f"{type(error).__name__}: {error}"
    written = reward_program.input_written(error, code, line)
    if written is not None:
        return CheckResult(CheckCategory.WRITES_INPUT, written, line)
    if isinstance(error, ValueError) and "truth value of an array" in str(error):
        return CheckResult(
            CheckCategory.NOT_VECTORIZED,
            f"{detail}{where}. An `if`, `and`, `or` or `not` was applied to an array of the whole batch; "
            "use np.where(condition, a, b), `&`, `|` and `~` so each environment is handled separately.",
            line,
        )
    if isinstance(error, RecursionError):
        detail += " (recursion too deep)"
    return CheckResult(CheckCategory.EXCEPTION, f"{when} raised {detail}{where}.", line)


def check_loaded(code: str, states, actions, next_states, options: CheckOptions, channel=None) -> CheckResult:
    """The dynamic checks, on states already collected. Runs the program: worker only."""
    from autoreward.sim.state import read_only

    static = reward_program.static_check(code)  # refused with its own category (a field set is `writes_input`)
    if not static.ok:
        return static
    form = reward_program.program_form(code)
    try:
        compute_reward = forms.as_reward(form, reward_program.load(code))
    except BaseException as error:  # the program's top level ran and failed
        return _exception_result(error, code, "running the program's top level")

    batches = [
        np.arange(start, min(start + options.batch_size, states.batch_size))
        for start in range(0, states.batch_size, options.batch_size)
    ]
    outputs = []
    component_names: tuple[str, ...] = ()
    for rows in batches:
        if channel is not None:
            channel.progress(stage="calling", rows=len(rows))
        result = _call(compute_reward, code, states.rows(rows), read_only(actions[rows]), next_states.rows(rows))
        if isinstance(result, CheckResult):
            return result
        problem = forms.not_terms(form, result, len(rows)) or _output_problem(result, len(rows), component_names)
        if problem is not None:
            return problem
        component_names = tuple(result[1])
        outputs.append(result)

    for rows, (total, components) in zip(batches, outputs):
        problem = _value_problem(total, components, options.largest_value)
        if problem is not None:
            return problem
    parts = {
        name: np.concatenate([np.asarray(c[name], dtype=np.float64) for _, c in outputs]) for name in component_names
    }
    problem = forms.values_problem(form, parts)
    if problem is not None:
        return problem

    rows = batches[0]
    total, components = outputs[0]
    _beat(channel, "repeating")
    again = _call(compute_reward, code, states.rows(rows), read_only(actions[rows]), next_states.rows(rows))
    if isinstance(again, CheckResult):
        return again
    if not np.array_equal(np.asarray(again[0], dtype=np.float64), np.asarray(total, dtype=np.float64)):
        return CheckResult(
            CheckCategory.NON_DETERMINISTIC,
            "two calls on the same states gave different totals: the reward must be a function of "
            "(state, action, next_state) alone. Remove random numbers and any state kept between calls.",
        )

    compared = rows[: options.rows_compared]
    for position, row in enumerate(compared):
        _beat(channel, "row by row")
        single = _call(
            compute_reward, code, states.rows(int(row)), read_only(actions[row : row + 1]), next_states.rows(int(row))
        )
        if isinstance(single, CheckResult):
            return single
        problem = forms.not_terms(form, single, 1) or _output_problem(single, 1, component_names)
        if problem is not None:
            return problem
        if not _close(single[0][0], total[position]):
            return CheckResult(
                CheckCategory.NOT_VECTORIZED,
                f"row {position} of a batch of {len(rows)} gives total {float(total[position]):.6g}, but the same "
                f"state alone gives {float(single[0][0]):.6g}: each environment's reward must depend only on its own "
                "row. Do not normalise by batch statistics (mean, max, sum over axis 0) or index fixed rows.",
            )

    problem = _training_size_problem(compute_reward, code, (states, actions, next_states), outputs, options, channel)
    if problem is not None:
        return problem

    _beat(channel, "timing")
    seconds = _time_per_call(compute_reward, states.rows(rows), read_only(actions[rows]), next_states.rows(rows))
    if seconds > options.call_budget_seconds:
        return CheckResult(
            CheckCategory.TOO_SLOW,
            f"one call on a batch of {len(rows)} took {seconds * 1000:.1f} ms; the budget is "
            f"{options.call_budget_seconds * 1000:.0f} ms. Replace Python loops over rows or time with numpy "
            "operations on whole arrays.",
            seconds_per_call=seconds,
        )
    totals = np.concatenate([np.asarray(total, dtype=np.float64) for total, _ in outputs])
    stats = {name: ComponentStats(float(v.mean()), float(v.min()), float(v.max())) for name, v in parts.items()}
    summed = np.sum(list(parts.values()), axis=0) if parts else np.zeros_like(totals)
    return CheckResult(
        CheckCategory.OK,
        f"passed: {len(component_names)} {forms.TERMS[form]}{'s' * (len(component_names) != 1)} on "
        f"{states.batch_size} states, "
        f"{seconds * 1e6:.0f} µs per call on {len(rows)} rows",
        components=component_names,
        seconds_per_call=seconds,
        component_stats=stats,
        total_is_sum=bool(np.allclose(summed, totals, rtol=1e-6, atol=1e-9)),
    )


def _training_size_problem(compute_reward, code: str, inputs, outputs, options: CheckOptions, channel):
    """The program called once on as many rows as training calls it with, against the same rows of the check's
    batches: a reward that looks at the batch size (or breaks at it) gets a CheckResult; None where it agrees."""
    from autoreward.sim.state import read_only

    states, actions, next_states = inputs
    size = min(options.training_batch_size or 1, states.batch_size)
    if size in (1, min(options.batch_size, states.batch_size)):  # the row-by-row calls and the batches were these
        return None
    _beat(channel, "training batch")
    rows = np.arange(size)
    when = f"compute_reward on a batch of {size} (the training's batch)"
    result = _call(compute_reward, code, states.rows(rows), read_only(actions[rows]), next_states.rows(rows), when)
    if isinstance(result, CheckResult):
        return result
    names = tuple(outputs[0][1])
    problem = (
        forms.not_terms(reward_program.program_form(code), result, size)
        or _output_problem(result, size, names)
        or _value_problem(*result, options.largest_value)
    )
    if problem is not None:
        return replace(problem, message=f"on a batch of {size} (the training's batch): {problem.message}")
    expected = np.concatenate([np.asarray(total, dtype=np.float64) for total, _ in outputs])[:size]
    for row in range(size):
        if not _close(result[0][row], expected[row]):
            return CheckResult(
                CheckCategory.NOT_VECTORIZED,
                f"row {row} gives total {float(expected[row]):.6g} in a batch of {len(outputs[0][0])} but "
                f"{float(result[0][row]):.6g} in a batch of {size}, the size training calls it with ({size} "
                "environments): each environment's reward must depend only on its own row, at any batch size. Do not "
                "test the batch size or the number of rows, and do not normalise by batch statistics.",
            )
    return None


def _beat(channel, stage: str) -> None:
    """A progress message before each call, so the supervisor's silence budget times one call, not the whole check."""
    if channel is not None:
        channel.progress(stage=stage)


def _call(function, code: str, state, action, next_state, when: str = "compute_reward"):
    try:
        return function(state, action, next_state)
    except BaseException as error:  # SystemExit, KeyboardInterrupt and MemoryError included
        return _exception_result(error, code, when)


EXPECTED = "a tuple (total, components): total an array of shape ({n},), components a dict of such arrays by name"


def _as_float_array(value: Any, what: str, n: int) -> np.ndarray | CheckResult:
    if not isinstance(value, (np.ndarray, np.generic, float, int)) or isinstance(value, bool):
        return CheckResult(
            CheckCategory.WRONG_OUTPUT,
            f"{what} is a {type(value).__name__}; it must be a numpy array of shape ({n},) with one value per environment.",
        )
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        return CheckResult(
            CheckCategory.WRONG_OUTPUT, f"{what} has dtype {array.dtype}; it must hold real numbers (float)."
        )
    if array.shape != (n,):
        hint = " Use np.full(N, value) or ones_like for a constant term." if array.ndim == 0 else ""
        hint = hint or (" Reduce the extra axes (e.g. np.sum(..., axis=1))." if array.ndim > 1 else "")
        return CheckResult(
            CheckCategory.WRONG_SHAPE, f"{what} has shape {array.shape} for a batch of {n}; expected ({n},).{hint}"
        )
    return array


def _output_problem(result: Any, n: int, expected_names: tuple[str, ...]) -> CheckResult | None:
    if not isinstance(result, tuple) or len(result) != 2:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else f"{type(result).__name__}"
        return CheckResult(
            CheckCategory.WRONG_OUTPUT, f"compute_reward returned {got}; expected {EXPECTED.format(n=n)}."
        )
    total, components = result
    checked = _as_float_array(total, "the total", n)
    if isinstance(checked, CheckResult):
        return checked
    if not isinstance(components, dict):
        return CheckResult(
            CheckCategory.WRONG_OUTPUT,
            f"the components are a {type(components).__name__}; they must be a dict mapping each term's name to "
            f"an array of shape ({n},).",
        )
    if not components:
        return CheckResult(
            CheckCategory.WRONG_OUTPUT,
            "the components dict is empty: name at least one term of the reward, e.g. {'forward': forward}.",
        )
    for name, value in components.items():
        if not isinstance(name, str):
            return CheckResult(CheckCategory.WRONG_OUTPUT, f"component key {name!r} is not a string; name each term.")
        checked = _as_float_array(value, f"component {name!r}", n)
        if isinstance(checked, CheckResult):
            return checked
    if expected_names and tuple(components) != expected_names:
        return CheckResult(
            CheckCategory.WRONG_OUTPUT,
            f"the components changed between calls ({', '.join(expected_names)} then {', '.join(components)}); "
            "always return the same named terms.",
        )
    return None


def _value_problem(total, components: dict, largest: float) -> CheckResult | None:
    # Components first: a NaN in one makes the total NaN too, and the component says where it came from.
    for what, values in (*((f"component {k!r}", v) for k, v in components.items()), ("the total", total)):
        values = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            kind = "NaN" if np.isnan(values).any() else "infinite"
            return CheckResult(
                CheckCategory.NON_FINITE,
                f"{what} is {kind} for {int(bad.sum())} of {values.size} states. Guard divisions, logs and "
                "square roots (np.maximum(x, 1e-8), np.clip) so every value is finite.",
            )
        peak = float(np.abs(values).max())
        if peak > largest:
            return CheckResult(
                CheckCategory.OUT_OF_RANGE,
                f"{what} reaches {peak:.3g} in magnitude; keep each term within about ±{largest:g} "
                "(scale it down or squash it with np.tanh or np.exp(-x / temperature)).",
            )
    return None


def _close(a, b) -> bool:
    a, b = float(a), float(b)
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _time_per_call(function, state, action, next_state, repeats: int = 5) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(state, action, next_state)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings))
