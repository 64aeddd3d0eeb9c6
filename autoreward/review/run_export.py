"""A finished design run's best reward, exported: the module (`export.py`) with the reward report beside it.

`export_run` is what `autoreward export`, the end of `autoreward run` and
`Run.export` do: it takes the final result's candidate, the training
settings of the final evaluation and its recorded scores (so the module's
`train()` and `evaluate()` reproduce them), what the training of the final
seed that scored best learned (a progress or latent program's `FormReport`:
the module carries the latent form's fitted weights), and, asked for the
policy, that seed's weights.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autoreward.config import RunConfig, Task
from autoreward.errors import AutorewardError
from autoreward.loop.run_store import RunStore
from autoreward.loop.training import finished_training
from autoreward.records import Candidate, ExportInfo, FinalResult, now_iso
from autoreward.resources import autoreward_version
from autoreward.review.export import write_reward_module
from autoreward.review.report import reward_report


def export_run(store: RunStore, module_path: Path | str | None = None, with_policy: bool = False) -> Path:
    """Write the run's best reward as a module (default `export/reward.py` in the run folder) with
    `<module>_report.md` beside it, and with `with_policy` the policy of the best final seed as arrays.

    Raises AutorewardError when the run has no final result yet."""
    final = store.load_final()
    if final is None:
        raise AutorewardError(
            f"{store.path} has no final result yet: finish it with autoreward run --resume {store.path}"
        )
    module_path = Path(module_path or store.path / "export" / "reward.py")
    module_path.parent.mkdir(parents=True, exist_ok=True)
    config = store.config()
    best = next(c for c in store.candidates() if c.id == final.candidate_id)
    info = export_info(config, final, best)
    seed = best_seed(config.task, final)
    trained = finished_training(store.final_training_dir(best, seed))
    if trained is not None and trained.form_report is not None:
        info = replace(info, form_report=trained.form_report, form_seed=seed)
    policy_dir = None
    if with_policy:
        policy_dir = store.final_training_dir(best, seed)
        info = replace(info, policy_seed=seed)
    write_reward_module(module_path, config.task, best.code, info, policy_dir)
    (module_path.parent / f"{module_path.stem}_report.md").write_text(reward_report(store))
    return module_path


def best_seed(task: Task, final: FinalResult) -> int:
    """The final seed whose policy scored best (the first seed where the task has no task score)."""
    scored = [(f, s) for s, f in zip(final.seeds, final.fitness) if f is not None]
    if task.fitness is None or not scored:
        return final.seeds[0]
    best = max(scored) if task.fitness.higher_is_better else min(scored)
    return best[1]


def export_info(config: RunConfig, final: FinalResult, best: Candidate) -> ExportInfo:
    """What the exported module says of where it came from, and the training that reproduces its scores."""
    return ExportInfo(
        run_id=config.run_id,
        model=config.llm.model if config.llm.backend == "openai" else config.llm.backend,
        created=now_iso(),
        autoreward_version=autoreward_version(),
        algo=config.loop.budget.algo,
        steps=config.loop.final_steps or config.loop.budget.steps,
        seeds=len(final.seeds),
        round=best.round,
        candidate_id=best.id,
        fitness_mean=final.fitness_mean,
        fitness_std=final.fitness_std,
        normalized_score_mean=final.score_mean,
        normalized_score_std=final.score_std,
        normalized_note=final.normalized_sentence()
        if final.score_mean is not None and (not final.baselines_apart or final.human_worse)
        else None,
        human_name=final.human_name,
        training=config.loop.training_config(final.seeds[0], config.loop.final_steps),
        recorded_scores={s: f for s, f in zip(final.seeds, final.fitness) if f is not None},
    )
