"""`autoreward evaluate`: a finished run's best reward and both baselines re-trained under another recipe.

The run is a real one-round design run through the loopback chat server; the evaluation trains for real in
jailed workers, as the final evaluation does.
"""

from __future__ import annotations

import re

import pytest

from autoreward.config import Recipe
from autoreward.loop.run_store import RunStore
from autoreward.records import FinalResult, RecipeResult
from autoreward.review.report import recipe_rows

from .chat_server import ChatServer
from .conftest import ONE_ROUND_FLAGS, run_autoreward, run_cli_to_end, the_run
from .llm_persona import persona

RAW = "PPO, raw rewards, 2 environments, 512 steps, 2 seeds"


@pytest.mark.slow  # a one-round run, then its best and both baselines trained twice more: about a minute
def test_evaluate_adds_a_recipe_with_its_own_baselines_to_show_and_the_report(workspace):
    with ChatServer(responder=persona) as server:
        run_cli_to_end(
            ["run", "cheetah_back_short", "--tasks-dir", "tasks", *ONE_ROUND_FLAGS, "--no-videos"],
            server.url,
            workspace,
        )
    run = the_run(workspace)

    evaluated = run_autoreward("evaluate", str(run), "--no-normalize", "--seeds", "2", cwd=workspace)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert f"under {RAW}" in evaluated.stdout and "Traceback" not in evaluated.stderr
    table = [line for line in evaluated.stdout.splitlines() if "autoreward's:" in line or RAW in line]
    assert len(table) == 3  # the announcement, the run's own row, the new recipe's row

    store = RunStore.open(run)
    (result,) = store.recipe_results()
    assert result.recipe == Recipe(algo="ppo", normalize=False, n_envs=2, seeds=2, steps=512)
    assert result.final.seeds == (0, 1) and None not in result.final.fitness
    assert result.final.human_fitness is not None and result.final.sparse_fitness is not None
    assert sorted(p.name for p in store.recipe_dir(result.recipe).glob("seed_*")) == ["seed_0", "seed_1"]
    # Its baselines were trained under it: without normalization, so not the final evaluation's cached ones.
    baselines = sorted(p.parent.name for p in (workspace / "runs" / "baselines").rglob("baselines.json"))
    assert len(baselines) == 3, baselines  # the final evaluation's seed 0, and this recipe's seeds 0 and 1

    shown = run_autoreward("show", str(run), cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    assert "Under other training recipes" in shown.stdout and RAW in " ".join(shown.stdout.split())
    html = (run / "report.html").read_text()
    assert 'id="recipes"' in html and RAW in html

    # Again: every training is read back from its folder, none is trained twice.
    events = (run / "events.jsonl").read_text().count("training started")
    again = run_autoreward("evaluate", str(run), "--no-normalize", "--seeds", "2", cwd=workspace)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (run / "events.jsonl").read_text().count("training started") == events
    assert store.recipe_results()[0].final == result.final


def test_a_recipe_row_says_when_its_normalized_score_means_nothing():
    common = dict(candidate_id="r1c0", seeds=(0, 1), fitness=(3.0, 3.2), scores=(0.9, 1.1), fitness_mean=3.1)
    common |= dict(fitness_std=0.1, score_mean=1.05, score_std=0.1, sparse_fitness=1.0)
    apart = FinalResult(**common, human_fitness=3.0, human_spread=0.1, sparse_spread=0.1)
    tied = FinalResult(**common, human_fitness=1.1, human_spread=0.3, sparse_spread=0.3)
    own, other = Recipe(n_envs=4, seeds=2, steps=1000), Recipe(normalize=False, n_envs=1, seeds=3, steps=2000)
    rows = recipe_rows(own, apart, [RecipeResult(other, tied)])
    assert rows[0] == (
        "autoreward's: PPO, VecNormalize, 4 environments, 1,000 steps, 2 seeds",
        "3.1 ± 0.1",
        "3 ± 0.1",
        "1 ± 0.1",
        "1.050 ± 0.100",
    )
    assert rows[1][0] == "PPO, raw rewards, 1 environment, 2,000 steps, 3 seeds"
    assert rows[1][4] == "not meaningful: the baselines are closer than their spreads"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["--algo", "dqn"], "--algo must be 'ppo' or 'sac', got 'dqn'"),
        (["--steps", "0"], "--steps must be at least 1, got 0"),
    ],
)
def test_bad_evaluate_flags_get_one_sentence(workspace, flags, message):
    from autoreward.config import LLMSettings, LoopConfig
    from autoreward.loop.run_store import start_run
    from autoreward.task.files import find_task

    store = start_run(workspace / "runs", find_task("half_cheetah_backward"), LoopConfig(), LLMSettings())
    result = run_autoreward("evaluate", str(store.path), *flags, cwd=workspace)
    assert result.returncode != 0 and message in " ".join(result.stderr.split()), result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_on_an_unfinished_run_says_to_finish_it_first(workspace):
    from autoreward.config import LLMSettings, LoopConfig
    from autoreward.loop.run_store import start_run
    from autoreward.task.files import find_task

    store = start_run(workspace / "runs", find_task("half_cheetah_backward"), LoopConfig(), LLMSettings())
    result = run_autoreward("evaluate", str(store.path), "--no-normalize", cwd=workspace)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert re.search(r"has no best reward yet: finish the run first with autoreward run --resume \S+", said), said
    assert not (store.path / "recipes").exists()
