"""The best reward under other recipes: does a pick made under autoreward's way of training hold under yours?

`autoreward evaluate RUN --no-normalize` re-trains a finished run's best
reward and both baselines (the human reward and the task score alone) under
another recipe (algorithm, reward normalization, environments, seeds,
steps), jailed and through the run's executor as the final evaluation
trains, and scores them the same way: per seed against that seed's
baselines. Each seed's training is kept in `recipes/<recipe>/seed_<k>/` and
read back when it finished, and baselines are cached as the final
evaluation's are, so an interrupted evaluation picks up where it stopped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autoreward.config import Recipe, RunConfig, TrainingConfig
from autoreward.errors import AutorewardError
from autoreward.loop.final import FinalEvaluation
from autoreward.loop.run_store import RunStore
from autoreward.loop.runner import Runner
from autoreward.records import RecipeResult


def recipe_of(config: RunConfig, **changes) -> Recipe:
    """The recipe of the run's final evaluation, with `changes` (those that are None are left as the run's)."""
    loop = config.loop
    own = Recipe(
        algo=loop.budget.algo,
        normalize=True,
        n_envs=loop.budget.n_envs,
        seeds=loop.final_seeds,
        steps=loop.final_steps or loop.budget.steps,
    )
    return replace(own, **{name: value for name, value in changes.items() if value is not None})


def evaluate_recipe(
    store: RunStore,
    recipe: Recipe,
    runs_dir: Path,
    runner: Runner,
) -> RecipeResult:
    """Re-train the run's best reward and its baselines under `recipe`; the result is saved in the run folder."""
    config = store.config()
    final = store.load_final()
    if final is None:
        raise AutorewardError(
            f"{store.path} has no best reward yet: finish the run first with autoreward run --resume {store.path}"
        )
    best = store.load_candidate(final.candidate_id)
    budget = replace(config.loop.budget, algo=recipe.algo, n_envs=recipe.n_envs)
    loop = replace(config.loop, budget=budget, final_seeds=recipe.seeds, final_steps=recipe.steps)

    def training_config(seed: int | None = None, steps: int | None = None) -> TrainingConfig:
        # video off: nothing shows these trainings' videos
        return loop.training_config(seed, steps or recipe.steps, normalize=recipe.normalize, video=False)

    store.log_event("recipe evaluation started", recipe=recipe.name)
    evaluation = FinalEvaluation(
        config.task,
        loop,
        store,
        runs_dir,
        training_config,
        runner,
        seed_dir=lambda seed: store.recipe_dir(recipe) / f"seed_{seed}",
        label=recipe.name,
    )
    result = RecipeResult(recipe=recipe, final=evaluation.run(best))
    store.save_recipe_result(result)
    store.log_event("recipe evaluation finished", recipe=recipe.name)
    return result
