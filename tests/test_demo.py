"""`autoreward demo`, as the README runs it, at a tiny budget: its shipped transcript still drives the whole loop."""

from __future__ import annotations

import pytest

from .conftest import candidates_of, run_autoreward


@pytest.mark.slow  # two rounds of three candidates, three final seeds and their baselines: about two minutes
def test_the_demo_replays_its_transcript_through_every_part_of_the_loop(tmp_path):
    done = run_autoreward(
        "demo", "--steps", "1024", "--workers", "2", "--runs-dir", "runs", "-o", "reward.py", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (run,) = (tmp_path / "runs").glob("mountain_car_quick__design*")
    candidates = candidates_of(run)
    checks = {cid: [a.check.category.value for a in c.attempts if a.check] for cid, c in candidates.items()}
    verdicts = {cid: [a.critique.verdict for a in c.attempts if a.critique] for cid, c in candidates.items()}
    assert checks["r1c0"] == ["not_vectorized", "ok"] and candidates["r1c0"].status == "trained"  # repaired
    assert verdicts["r1c1"] == ["reject", "accept"]  # the wrong sign, caught by the critic
    assert checks["r2c2"] == ["non_finite", "wrong_shape"] and candidates["r2c2"].status == "failed_check"
    said = " ".join(done.stdout.split())
    assert "over seeds [0, 1, 2]" in said and "human (the hand-written reward) / sparse" in said
    assert (tmp_path / "reward.py").is_file() and (tmp_path / "reward_report.md").is_file()
