"""Tasks: TOML files in `envs/` (and any folder a user names), or an environment id and a sentence.

A task file looks like::

    id = "half_cheetah_backward"
    env = "HalfCheetah-v5"
    description = "Make the half cheetah run backwards (towards -x) as fast as it can."
    human_reward = "rewards/half_cheetah_backward.py"   # optional, relative to this file
    success_threshold = 2.0                              # optional, in fitness units
    max_episode_steps = 1000                             # optional

    [env_kwargs]                                         # optional, passed to gymnasium.make

    [fitness]                                            # optional; never shown to the designer
    step = "-(next_state.joints.rootx.qpos - state.joints.rootx.qpos) / state.dt"
    reduce = "mean"                                      # mean | sum | last
    description = "mean speed towards -x, m/s"
    higher_is_better = true

    [budget]                                             # optional
    algo = "ppo"
    steps = 300000
    n_envs = 4
    eval_episodes = 5

    [preview]                                            # optional: how `autoreward preview` plans
    horizon = 30                                         # control steps a rollout looks ahead
    samples = 32                                         # rollouts per control step
    noise = 0.3                                          # share of half the control range
    knots = 4                                            # spline control points over the horizon

    [extras]                                             # optional: named aliases of state fields
    target_pos = "bodies.target.pos"
    game_over = "env.game_over"                          # or, without a MuJoCo model, a reading of the environment

An extra whose path starts with `env.` is a reading: the attribute of `env.unwrapped` it names (`env.lander.awake`
is `env.unwrapped.lander.awake`), read after each reset and step, a number or true/false, as an (N,) float array
(true is 1.0). It gives a task what its environment knows and its observation leaves out (LunarLander's
`game_over`); `check_readings` reads each once, after a reset, so a wrong name is one sentence before any run.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any

from autoreward.config import Budget, Fitness, PlannerSettings, Task
from autoreward.errors import MissingDependencyError, TaskError, UnknownEnvironmentError
from autoreward.resources import data_dir

TOP_LEVEL_FIELDS = {
    "id": str,
    "env": str,
    "description": str,
    "human_reward": str,
    "success_threshold": (int, float),
    "max_episode_steps": int,
    "env_kwargs": dict,
    "fitness": dict,
    "budget": dict,
    "preview": dict,
    "extras": dict,
}
REQUIRED_FIELDS = ("id", "env", "description")
FITNESS_FIELDS = {"step": str, "reduce": str, "description": str, "higher_is_better": bool}
BUDGET_FIELDS = {
    "algo": str,
    "steps": int,
    "n_envs": int,
    "eval_episodes": int,
    "curve_points": int,
    "progress_beta": (int, float),
    "progress_bins": int,
    "latent_episodes": int,
}
PREVIEW_FIELDS = {"horizon": int, "samples": int, "noise": (int, float), "knots": int}
TASK_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
# An extra that reads the environment: `env.` and a dotted attribute path of `env.unwrapped`.
READING_PREFIX = "env."
ATTRIBUTE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _type_name(expected) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "a table"}
    return " or ".join(names[k] for k in kinds)


def _check_fields(where: str, table: dict, schema: dict, required: tuple[str, ...] = ()) -> None:
    for name in table:
        if name not in schema:
            close = difflib.get_close_matches(name, schema, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TaskError(f"{where}: unknown field {name!r}{hint}; known fields are {', '.join(schema)}")
    for name in required:
        if name not in table:
            raise TaskError(f"{where}: missing required field {name!r} ({_type_name(schema[name])})")
    for name, value in table.items():
        expected = schema[name]
        # bool is an int in Python; a number field must not accept true/false.
        if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
            raise TaskError(f"{where}: field {name!r} must be {_type_name(expected)}, got {value!r}")


# An environment id as gymnasium takes it: "Hopper-v5", or "module:Name-v0" for a user's package.
ENVIRONMENT_ID = re.compile(r"^(?:[A-Za-z_][\w.]*:)?[A-Za-z][\w./-]*-v\d+$")


def episode_limit(task: Task) -> int | None:
    """The longest an episode of the task lasts: its own `max_episode_steps`, else its environment's registration."""
    import gymnasium

    if task.max_episode_steps:
        return task.max_episode_steps
    spec = gymnasium.registry.get(task.env_id.split(":", 1)[1] if environment_module(task.env_id) else task.env_id)
    return spec.max_episode_steps if spec is not None else None


def environment_module(env_id: str) -> str | None:
    """The module of a `module:id` environment id (gymnasium imports it, and it registers the id), else None."""
    return env_id.split(":", 1)[0] if ":" in env_id else None


def check_environment(env_id: str) -> None:
    """Raise UnknownEnvironmentError unless `env_id` is a registered gymnasium environment.

    For gymnasium's `module:id`, the module is imported first (as gymnasium.make does), so that it registers
    its environments; an import that fails is one sentence naming the module and its error.
    """
    import gymnasium

    module = environment_module(env_id)
    name = env_id.split(":", 1)[1] if module else env_id
    if module is not None:
        try:
            importlib.import_module(module)
        except Exception as error:  # the user's package: any error at its import is theirs to see, in one line
            raise UnknownEnvironmentError(
                f"environment {env_id!r}: importing its module {module!r} failed ({type(error).__name__}: {error}); "
                "install the package (pip install -e for one you develop) or put it on PYTHONPATH"
            ) from None
    if name in gymnasium.registry:
        return
    if module is not None:
        ours = [i for i, spec in gymnasium.registry.items() if str(spec.entry_point).startswith(module)]
        registered = f"it registers {', '.join(sorted(ours))}" if ours else "it registers no environment"
        raise UnknownEnvironmentError(f"environment {env_id!r}: module {module!r} was imported, but {registered}")
    close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `autoreward tasks` lists the shipped tasks"
    raise UnknownEnvironmentError(f"unknown environment {env_id!r}: it is not registered with gymnasium{hint}")


def parse_task(text: str, source: str, base_dir: Path | None = None) -> Task:
    """Build a Task from the text of a task file. Errors name `source`, the field and what is expected."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TaskError(f"{source}: not valid TOML: {error}") from None
    _check_fields(source, table, TOP_LEVEL_FIELDS, REQUIRED_FIELDS)
    if not TASK_ID.match(table["id"]):
        raise TaskError(f"{source}: field 'id' must be lowercase letters, digits, '_' or '-', got {table['id']!r}")

    fitness = None
    if "fitness" in table:
        where = f"{source} [fitness]"
        _check_fields(where, table["fitness"], FITNESS_FIELDS, ("step", "reduce", "description"))
        fitness = Fitness(**table["fitness"])
        if fitness.reduce not in ("mean", "sum", "last"):
            raise TaskError(f"{where}: field 'reduce' must be 'mean', 'sum' or 'last', got {fitness.reduce!r}")
        try:
            compile(fitness.step, f"{source} [fitness] step", "eval")
        except SyntaxError as error:
            raise TaskError(f"{where}: field 'step' is not a valid Python expression: {error.msg}") from None

    budget = Budget()
    if "budget" in table:
        where = f"{source} [budget]"
        _check_fields(where, table["budget"], BUDGET_FIELDS)
        budget = dataclasses.replace(budget, **table["budget"])
        if budget.algo not in ("ppo", "sac"):
            raise TaskError(f"{where}: field 'algo' must be 'ppo' or 'sac', got {budget.algo!r}")
        for name in ("steps", "n_envs", "eval_episodes", "curve_points", "latent_episodes"):
            if getattr(budget, name) < 1:
                raise TaskError(f"{where}: field {name!r} must be at least 1, got {getattr(budget, name)}")
        if not 2 <= budget.progress_bins <= 1000:
            raise TaskError(f"{where}: field 'progress_bins' must be from 2 to 1000, got {budget.progress_bins}")
        if not 0.0 <= budget.progress_beta <= 100.0:
            raise TaskError(f"{where}: field 'progress_beta' must be from 0 to 100, got {budget.progress_beta}")

    planner = PlannerSettings()
    if "preview" in table:
        where = f"{source} [preview]"
        _check_fields(where, table["preview"], PREVIEW_FIELDS)
        planner = dataclasses.replace(planner, **table["preview"])
        if planner.problem() is not None:
            raise TaskError(f"{where}: {planner.problem()}")

    for name, path in table.get("extras", {}).items():
        if not isinstance(path, str):
            raise TaskError(f"{source} [extras]: {name!r} must be a dotted state path such as 'bodies.target.pos'")
        attribute = path.removeprefix(READING_PREFIX)
        if path.startswith(READING_PREFIX) and (not ATTRIBUTE_PATH.match(attribute) or "__" in attribute):
            raise TaskError(
                f"{source} [extras]: {name!r} = {path!r} must name an attribute of the environment such as "
                "'env.game_over' or 'env.lander.awake' (names joined by dots, none with a double underscore)"
            )

    human_reward = None
    if "human_reward" in table:
        path = Path(table["human_reward"])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise TaskError(f"{source}: field 'human_reward' names {str(path)!r}, which is not a file")
        human_reward = str(path)

    env_kwargs = _resolved_paths(source, table.get("env_kwargs", {}), base_dir)
    check_environment(table["env"])
    return Task(
        id=table["id"],
        env_id=table["env"],
        description=" ".join(table["description"].split()),
        env_kwargs=env_kwargs,
        fitness=fitness,
        success_threshold=table.get("success_threshold"),
        max_episode_steps=table.get("max_episode_steps"),
        budget=budget,
        extras=table.get("extras", {}),
        human_reward=human_reward,
        source=source,
        planner=planner,
    )


def _resolved_paths(source: str, env_kwargs: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """`[env_kwargs]` with file paths resolved against the task file, as `human_reward` is.

    A relative `xml_file` (and any other value that names a file beside the task file) becomes that file's
    absolute path; an `xml_file` that is neither beside the task file nor one of gymnasium's own models (a bare
    name such as "hopper.xml") is an error naming the task file and the field.
    """
    resolved = dict(env_kwargs)
    for key, value in env_kwargs.items():
        if not isinstance(value, str) or not value.strip():
            continue
        path = Path(value).expanduser()
        beside = path if path.is_absolute() or base_dir is None else Path(base_dir) / path
        if beside.is_file():
            resolved[key] = str(beside.resolve())
        elif key == "xml_file" and not (path.name == value and _gymnasium_model(value)):
            raise TaskError(f"{source} [env_kwargs]: field 'xml_file' names {value!r}, which is not a file ({beside})")
    return resolved


def _gymnasium_model(name: str) -> bool:
    """Whether `name` is one of the models gymnasium ships (what a bare xml_file such as "hopper.xml" means)."""
    import gymnasium.envs.mujoco

    return (Path(gymnasium.envs.mujoco.__file__).parent / "assets" / name).is_file()


def load_task_file(path: Path) -> Task:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise TaskError(f"cannot read task file {path}: {error.strerror}") from None
    return parse_task(text, str(path), path.parent)


def load_tasks(folders: list[Path] | tuple[Path, ...] = (), broken: dict[str, str] | None = None) -> dict[str, Task]:
    """All tasks: the shipped ones, then those in `folders`. Two files with one id are an error.

    A task file that cannot be read does not make the others unusable: its error goes into `broken`
    (file path -> the one sentence that says why), or is raised when no `broken` is given.
    """
    tasks: dict[str, Task] = {}
    for folder in (data_dir("envs"), *map(Path, folders)):
        if not folder.is_dir():
            raise TaskError(f"task folder {folder} does not exist")
        for path in sorted(folder.glob("*.toml")):
            try:
                task = load_task_file(path)
            except TaskError as error:
                if broken is None:
                    raise
                broken[str(path)] = str(error)
                continue
            if task.id in tasks:
                raise TaskError(f"task id {task.id!r} is defined twice: in {tasks[task.id].source} and in {path}")
            tasks[task.id] = task
    return tasks


def find_task(name: str, folders: list[Path] | tuple[Path, ...] = ()) -> Task:
    """A task by id, or by the path of a task file. A broken file in `folders` spoils only its own task."""
    if name.endswith(".toml"):
        return load_task_file(Path(name))
    broken: dict[str, str] = {}
    tasks = load_tasks(folders, broken)
    if name in tasks:
        return tasks[name]
    for path, error in broken.items():
        if Path(path).stem == name:  # most likely the file of the task asked for
            raise TaskError(error)
    close = difflib.get_close_matches(name, list(tasks), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `autoreward tasks` lists them"
    unread = f" ({len(broken)} task file(s) could not be read: {'; '.join(broken.values())})" if broken else ""
    raise TaskError(f"unknown task {name!r}{hint}{unread}")


def task_from_sentence(env_id: str, sentence: str) -> Task:
    """A task given only as an environment and a sentence: no trusted fitness."""
    check_environment(env_id)
    if not sentence.strip():
        raise TaskError("the task sentence is empty: say in words what the agent should do")
    slug = re.sub(r"[^a-z0-9]+", "_", sentence.lower()).strip("_")[:40] or "task"
    env_slug = re.sub(r"[^a-z0-9]+", "_", env_id.lower()).strip("_")
    return Task(id=f"{env_slug}__{slug}", env_id=env_id, description=" ".join(sentence.split()))


def _log_mujoco_warning(message: str) -> None:
    # warnings.warn shows each distinct message once per process, not once per environment.
    warnings.warn(f"MuJoCo: {message.strip()}", RuntimeWarning, stacklevel=2)


def make_env(task: Task, render_mode: str | None = None):
    """A fresh gymnasium environment for `task`."""
    import gymnasium
    import mujoco

    # MuJoCo's default handler writes MUJOCO_LOG.TXT into the current folder (HalfCheetah's
    # model triggers a deprecation warning in MuJoCo 4); route its warnings to logging instead.
    mujoco.set_mju_user_warning(_log_mujoco_warning)

    kwargs = dict(task.env_kwargs)
    if task.max_episode_steps is not None:
        kwargs["max_episode_steps"] = task.max_episode_steps
    try:
        return gymnasium.make(task.env_id, render_mode=render_mode, **kwargs)
    except TypeError as error:
        raise TaskError(f"{task.source or task.id}: [env_kwargs] were refused by {task.env_id}: {error}") from None
    except gymnasium.error.DependencyNotInstalled as error:  # gymnasium's message says what to install
        raise MissingDependencyError(f"{task.env_id} needs a package that is not installed: {error}") from None
    except ImportError as error:
        raise MissingDependencyError(
            f"{task.env_id} cannot be made: importing it failed ({type(error).__name__}: {error}); "
            "install the package it needs"
        ) from None


def probe_environment(task: Task) -> None:
    """Make and close `task`'s environment once: a missing package, a refused argument or a reading of the
    environment that it does not have is one sentence now, before a run folder is made or a worker started."""
    env = make_env(task)
    try:
        check_readings(task, env)
    finally:
        env.close()


def environment_readings(extras: dict[str, str]) -> dict[str, str]:
    """The extras that read the environment, by name: the attribute path of `env.unwrapped` each reads."""
    return {name: path.removeprefix(READING_PREFIX) for name, path in extras.items() if path.startswith(READING_PREFIX)}


def read_environment(unwrapped, path: str) -> float:
    """The attribute `path` ("lander.awake") of an environment's `unwrapped`, as a float (true is 1.0).

    AttributeError where the environment has no such attribute, TypeError where it is not a number.
    """
    value = unwrapped
    for part in path.split("."):
        value = getattr(value, part)
    if isinstance(value, (bool, int, float)) or (hasattr(value, "dtype") and getattr(value, "shape", None) == ()):
        return float(value)
    raise TypeError(f"it is a {type(value).__name__}, not a number or true/false")


def check_readings(task: Task, env) -> None:
    """Reset `env` (seed 0) and read each of `task`'s readings once; one sentence naming the task file and the
    extra where one is missing or not a number. Nothing is reset where the task has no readings."""
    readings = environment_readings(task.extras)
    if not readings:
        return
    env.reset(seed=0)  # some attributes exist only once an episode has begun (LunarLander's lander)
    unwrapped = env.unwrapped
    for name, path in readings.items():
        try:
            read_environment(unwrapped, path)
        except (AttributeError, TypeError) as error:
            raise TaskError(
                f"{task.source or task.id} [extras]: {name!r} reads env.{path}, which {type(unwrapped).__name__} "
                f"({task.env_id}) cannot give after a reset: {error}{_attribute_hint(unwrapped, path)}"
            ) from None


def _attribute_hint(unwrapped, path: str) -> str:
    """A "did you mean" for the first part of `path` the environment lacks, where a name is close to it."""
    value = unwrapped
    for part in path.split("."):
        if not hasattr(value, part):
            close = difflib.get_close_matches(part, [n for n in dir(value) if not n.startswith("__")], n=1)
            return f"; did you mean {close[0]!r}?" if close else ""
        value = getattr(value, part)
    return ""


def task_folders(task: Task) -> tuple[str, ...]:
    """What a worker must see of the files a task's environment loads, read-only: a custom `xml_file` (and the
    files beside it), and for a `module:id` environment the module's own package folder (an editable install's
    source folder, a PYTHONPATH entry's package), nothing more of the folders around them."""
    paths = [Path(v) for v in task.env_kwargs.values() if isinstance(v, str) and Path(v).is_absolute()]
    folders = [str(p.parent) for p in paths if p.is_file()]
    located = module_location(environment_module(task.env_id))
    return tuple(folders + ([located[0]] if located else []))


def task_python_paths(task: Task) -> tuple[str, ...]:
    """The import roots a worker needs for a `module:id` environment (the folder holding its package), so that
    it imports the user's package however it was installed (site-packages, a .pth entry, PYTHONPATH)."""
    located = module_location(environment_module(task.env_id))
    return (located[1],) if located else ()


def module_location(module: str | None) -> tuple[str, str] | None:
    """Where `module` (a `module:id` environment's) is: (what to show: its package's folder or its file, the import
    root holding it); None for no module, or one that cannot be found."""
    if module is None:
        return None
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        return None
    if spec.submodule_search_locations:  # a package (a namespace package may span folders: the first holds it)
        shown = Path(list(spec.submodule_search_locations)[0]).resolve()
    else:
        shown = Path(spec.origin).resolve()
    return str(shown), str(shown.parent)
