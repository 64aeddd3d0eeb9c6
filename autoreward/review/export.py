"""Export: a reward program as one self-contained Python module a person can read and import anywhere.

The module, rendered from `templates/reward_module.py.j2`, holds a header
(task, environment, provenance and scores), the program verbatim, a State
builder for the task's environment, a gymnasium wrapper that applies the
reward, `make_env`, then `train` and `evaluate` as autoreward trained and
scored it; with a policy, `load_policy` and `watch` too. A progress or latent
program (`contract/forms.py`) comes with its form's training reward written
out (`ProgressCounts`, `LatentDecomposition`: `sim/reward_forms.py`'s, with
the run's settings), which its wrapper pays, and with what the scored
training learned: the count table's summary, or the fitted weights, which
`fitted_reward` and a fixed `LatentDecomposition` pay as a plain reward. It needs numpy and
gymnasium (with MuJoCo), never autoreward: the names, shapes and conventions
of the State are fixed here, at export time, from the same `StateLayout` that
training used.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import keyword
import math
import shutil
import textwrap
from pathlib import Path
from typing import Any

import jinja2

from autoreward.config import Task, TrainingConfig
from autoreward.contract import forms
from autoreward.contract.reward_program import ENTRY_POINTS, program_form, static_check
from autoreward.errors import ExportError, WorkerFileError
from autoreward.loop.evaluation import EVALUATION_FOLDER, EVALUATION_SEED_BASE
from autoreward.loop.policy_files import NORMALIZER_STATISTICS, POLICY_WEIGHTS
from autoreward.loop.training import algorithm_settings
from autoreward.records import ExportInfo, FormReport
from autoreward.resources import TEMPLATES_DIR
from autoreward.sandbox import worker_files
from autoreward.sim.observation_state import ObservationLayout, state_layout
from autoreward.sim.reward_forms import RIDGE
from autoreward.sim.state import JOINT_WIDTHS
from autoreward.task.files import environment_module, make_env, module_location

TEMPLATE = "reward_module.py.j2"
# The model sizes the exported wrapper checks an environment against before using the tables.
MODEL_SIZES = ("nbody", "njnt", "nq", "nv", "nsite", "nsensordata")
# What a training leaves that a policy is loaded from: SB3's zip, and VecNormalize's statistics where it normalized.
# What the export copies of a training: the evaluated policy's arrays (never SB3's pickles), from its evaluation.
POLICY_FILES = (POLICY_WEIGHTS, NORMALIZER_STATISTICS)
# What the exported module says of each setting `training.algorithm_settings` gives the algorithm.
SETTING_NOTES = {
    "n_steps": "PPO's rollout per environment, from the budget (autoreward's rule)",
    "batch_size": "PPO's minibatch (larger where the policy learned on a GPU); the rest: SB3's defaults",
    "learning_starts": "SAC's random steps before learning; the rest: SB3's defaults",
    "buffer_size": "SAC's replay buffer, in transitions",
    "gamma": "the discount, of the algorithm and of VecNormalize's return estimate",
}


def render_reward_module(
    task: Task,
    code: str,
    info: ExportInfo,
    *,
    module_name: str = "reward",
    assets: dict[str, str] | None = None,
    policy: dict[str, str] | None = None,
) -> str:
    """The text of a self-contained module that applies reward program `code` to `task`'s environment.

    `module_name` is the name the usage lines in the header import it by. `assets` maps `env_kwargs` keys
    to files copied beside the module (`write_reward_module` copies them): those are loaded from there.
    `policy` maps what a training left (`policy.zip`, `vecnormalize.pkl`) to the names of their copies beside
    the module, whose `load_policy()` then loads them; `info.policy_seed` says which seed trained it.
    `info.form_report` is what the scored training of a progress or latent program learned: the module shows
    it, and a latent module pays its weights as `FITTED_WEIGHTS`.
    Raises ExportError if the program fails the static rules, defines a
    top-level name the module itself needs (e.g. `make_env`), or is of a form the task cannot train.
    """
    checked = static_check(code)
    if not checked.ok:
        raise ExportError(f"the reward program cannot be exported: {checked.message}")
    form = program_form(code)
    if forms.task_problem(form, task) is not None:
        raise ExportError(f"the reward program cannot be exported: {forms.task_problem(form, task)}")
    report = info.form_report if info.form_report is not None and info.form_report.form == form else None
    env = make_env(task)
    try:
        layout = state_layout(env, extras=task.extras)
        observation = isinstance(layout, ObservationLayout)  # no MuJoCo model: the State is the observation
        model = None if observation else env.unwrapped.model
        model_sizes = {} if observation else {name: int(getattr(model, name)) for name in MODEL_SIZES}
    finally:
        env.close()

    assets = assets or {}
    recipe = info.training or TrainingConfig.from_budget(task.budget)
    env_kwargs = {key: value for key, value in task.env_kwargs.items() if key not in assets}
    if task.max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = task.max_episode_steps
    module = environment_module(task.env_id)
    distribution = _distribution_of(module) if module else None
    variables = {
        "task": task,
        "info": info,
        "module_name": module_name,
        "description": textwrap.fill(task.description, width=92, subsequent_indent="    "),
        "make_call": _make_call(task.env_id, env_kwargs),
        "where": _where(info),
        "fitness": _fitness_line(task, info),
        "fitness_description": task.fitness.description if task.fitness else "",
        "normalized": info.normalized_note or _mean_std(info.normalized_score_mean, info.normalized_score_std),
        "layout": layout,
        "observation": observation,
        "joints": [] if observation else [_joint_slots(joint) for joint in layout.joints],
        "model_sizes": model_sizes,
        "env_kwargs": env_kwargs,
        "assets": assets,
        "assets_folder": f"{module_name}_assets",
        "env_module": module,
        "recipe": recipe,
        "algorithm_settings": [
            (name, type(value).__name__, value, SETTING_NOTES.get(name, ""))
            for name, value in algorithm_settings(recipe).items()
        ],
        "eval_seed_base": EVALUATION_SEED_BASE,
        "recorded_scores": dict(sorted(info.recorded_scores.items())),
        "task_score": task.fitness,
        "env_distribution": distribution,
        "policy": policy or {},
        "form": form,
        "entry_point": ENTRY_POINTS[form],
        "form_report": report,
        "bins_in_all": report.bins ** len(report.terms) if report is not None and report.bins else None,
        "fitted_weights": _fitted_weights(report),
        "ridge": RIDGE,
        "progress_slack": forms.PROGRESS_SLACK,
    }
    template = _environment().get_template(TEMPLATE)
    text = template.render(code=code.strip("\n"), **variables)
    _check_names(code, template.render(code="", **variables))
    try:
        compile(text, f"<exported {task.id}>", "exec")
    except SyntaxError as error:  # a bug here, not in the program: say where in the module
        raise ExportError(f"the exported module is not valid Python at line {error.lineno}: {error.msg}") from None
    return text


def write_reward_module(
    path: Path | str, task: Task, code: str, info: ExportInfo, policy_dir: Path | None = None
) -> Path:
    """Render the module (see `render_reward_module`) and write it to `path`; its usage lines import it by its name.

    A model file the task names by path (`xml_file`) is copied, with the files it includes and the meshes and
    textures it loads, into `<module>_assets/` beside the module, which loads it from there: the export runs
    on another machine, with no absolute path of this one in it.
    `policy_dir`: a training folder whose evaluated policy's weights (and normalization statistics), arrays
    only, are copied beside the module as `<module>_policy.npz` (and `<module>_normalizer.npz`), for its
    `load_policy()`.
    """
    path = Path(path)
    module_name = path.stem if path.stem.isidentifier() and not keyword.iskeyword(path.stem) else "reward"
    folder = path.parent / f"{module_name}_assets"
    assets = {}
    for key, value in task.env_kwargs.items():
        if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_file():
            assets[key] = _copy_model(Path(value), folder)
    policy, arrays = {}, {}
    if policy_dir is not None:
        arrays = _policy_arrays(Path(policy_dir))
        policy = {left: f"{module_name}_{left}" for left in arrays}
    text = render_reward_module(task, code, info, module_name=module_name, assets=assets, policy=policy)
    path.parent.mkdir(parents=True, exist_ok=True)
    for left, name in policy.items():
        (path.parent / name).unlink(missing_ok=True)
        worker_files.write_new(path.parent / name, arrays[left])
    path.write_text(text, encoding="utf-8")
    return path


def _policy_arrays(training_dir: Path) -> dict[str, bytes]:
    """The bytes of a training's policy files as its evaluation worker loaded them, read through the reader of
    worker files and checked to be plain arrays (a pickle is refused)."""
    folder = training_dir / EVALUATION_FOLDER
    found = {}
    for name in POLICY_FILES:
        try:
            found[name] = worker_files.read_bytes(folder, name, worker_files.WEIGHTS_BYTES)
            worker_files.load_arrays(folder, name, worker_files.WEIGHTS_BYTES)
        except FileNotFoundError:
            continue
        except WorkerFileError as error:
            raise ExportError(f"the trained policy in {folder} cannot be exported: {error}") from None
    if POLICY_WEIGHTS not in found:
        raise ExportError(
            f"there is no trained policy to export in {training_dir} (no {EVALUATION_FOLDER}/{POLICY_WEIGHTS}; "
            "a run trained before policies were kept as arrays has only SB3's pickles, which are not exported)"
        )
    return found


def _distribution_of(module: str) -> str | None:
    """The installed distribution (what `pip install` takes) that provides `module`, where it can be told.

    A regular install lists its top-level modules; an editable one (pip install -e) only a .pth file naming
    the folder its module lives in, so that is looked for too.
    """
    top = module.split(".")[0]
    named = importlib.metadata.packages_distributions().get(top)
    if named:
        return named[0]
    located = module_location(module)
    if located is None:
        return None
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or ():
            if file.suffix == ".pth":
                try:
                    lines = Path(file.locate()).read_text().splitlines()
                except OSError:
                    continue
                if any(Path(line.strip()).resolve() == Path(located[1]) for line in lines if line.strip()):
                    return distribution.metadata["Name"]
    return None


def _copy_model(model: Path, folder: Path) -> str:
    """Copy `model` into `folder`, and every file it references by a relative path (MJCF's `include`, `mesh`,
    `texture`, `hfield`, `skin`), keeping their places relative to it. Returns the copy's name in `folder`."""
    import xml.etree.ElementTree as ElementTree

    folder.mkdir(parents=True, exist_ok=True)
    pending, copied = [model.resolve()], set()
    base = model.resolve().parent
    while pending:
        source = pending.pop()
        if source in copied or not source.is_file():
            continue
        copied.add(source)
        target = folder / source.relative_to(base) if source.is_relative_to(base) else folder / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if source.suffix.lower() != ".xml":
            continue
        try:
            root = ElementTree.parse(source).getroot()
        except ElementTree.ParseError:
            continue  # MuJoCo will say what is wrong with it
        compiler = root.find("compiler")
        setting = (lambda name: compiler.get(name)) if compiler is not None else (lambda name: None)
        dirs = {tag: setting(f"{tag}dir") or setting("assetdir") or "" for tag in ("mesh", "texture")}
        for element in root.iter():
            name = element.get("file")
            if not name or Path(name).is_absolute():
                continue
            under = dirs.get(element.tag, dirs["mesh"] if element.tag in ("hfield", "skin") else "")
            pending.append((base / under / name if element.tag != "include" else base / name).resolve())
    return model.name


# --- the template and the values it shows ----------------------------------------


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["py"] = python_literal
    environment.filters["doc"] = _docstring_text
    return environment


def python_literal(value: Any) -> str:
    """Python source for a value read from a task file (TOML: strings, numbers, booleans, lists, tables)."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a Python string literal
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = (k if isinstance(k, int) and not isinstance(k, bool) else str(k) for k in value)  # seeds stay ints
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in zip(keys, value.values())) + "}"
    raise ExportError(f"cannot write {value!r} ({type(value).__name__}) into the exported module")


def _docstring_text(text: str) -> str:
    # Inside the module's docstring a backslash escapes and three quotes would end it.
    return str(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _make_call(env_id: str, kwargs: dict[str, Any]) -> str:
    arguments = [python_literal(env_id)] + [f"{name}={python_literal(value)}" for name, value in kwargs.items()]
    return f"gymnasium.make({', '.join(arguments)})"


def _where(info: ExportInfo) -> str:
    parts = []
    if info.round is not None:
        parts.append(f"round {info.round}")
    if info.candidate_id is not None:
        parts.append(f"candidate {info.candidate_id}")
    return "".join(f", {part}" for part in parts)


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "not measured"
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def _fitness_line(task: Task, info: ExportInfo) -> str:
    line = _mean_std(info.fitness_mean, info.fitness_std)
    if task.fitness is None:
        return line + " (the task has no fitness)"
    notes = ["higher is better" if task.fitness.higher_is_better else "lower is better"]
    if task.success_threshold is not None:
        notes.append(f"success at {task.success_threshold:g}")
    return f"{line} ({'; '.join(notes)})"


def _fitted_weights(report: FormReport | None) -> dict[str, float] | None:
    """The latent form's fitted weight of each term, by name; None where the training recorded none."""
    if report is None or report.form != "latent" or any(term.weight is None for term in report.terms):
        return None
    return {term.name: term.weight for term in report.terms}


def _joint_slots(joint) -> dict[str, Any]:
    qpos_width, qvel_width = JOINT_WIDTHS[joint.kind]
    return {
        "name": joint.name,
        "kind": joint.kind,
        "qpos_start": joint.qpos_start,
        "qpos_width": qpos_width,
        "qvel_start": joint.qvel_start,
        "qvel_width": qvel_width,
    }


# --- names the program and the module would both define ---------------------------


def _check_names(code: str, frame: str) -> None:
    """Refuse a program that binds a top-level name the module around it also binds.

    The program is pasted verbatim into one namespace with the module's own
    definitions; a clash would silently replace one or the other.
    """
    shared = {"math", "numpy", "np"}  # the program may import these itself
    clashes = (_top_level_names(ast.parse(code)) & _top_level_names(ast.parse(frame))) - shared
    if clashes:
        names = ", ".join(sorted(clashes))
        raise ExportError(
            f"the reward program defines {names}, which the exported module defines too; "
            "rename it in the program and export again"
        )


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)  # its body has its own scope
        elif isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue  # their variables are their own
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            module = importlib.import_module(node.module)  # numpy or math: the static rules allow no other
            names.update(getattr(module, "__all__", [n for n in dir(module) if not n.startswith("_")]))
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        else:
            stack.extend(ast.iter_child_nodes(node))
    return names
