"""A person steers a run from the review page, in a real headless browser (Debian's chromium).

A run with `--feedback human` on a task given in words (no trusted fitness)
goes through the real command line, a loopback chat server and real
training; `autoreward serve` shows it. The test, as the person, opens the
run, sees round 1's candidates and a video playing, picks the best and the
worst with a comment, and the waiting loop takes it up: round 2's designer
is told, and the run goes on to the end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoreward.serialize import read_json

from .chat_server import ChatServer
from .conftest import SECRET, candidates_of, start_cli
from .llm_persona import persona

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
COMMENT = "r1c1 really runs backwards; r1c0 just twitches. Keep r1c1's idea and make it faster."

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)",
    ),
]


def _browser(monkeypatch):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download a browser or a driver
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def _wait(condition, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended while waiting for {what}:\n{process.stdout.read()}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _serve(workspace: Path) -> tuple[subprocess.Popen, str]:
    environment = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="250")
    server = subprocess.Popen(
        [sys.executable, "-m", "autoreward", "serve", "--runs-dir", "runs", "--port", "0"],
        cwd=workspace,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = server.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line
    return server, match.group(0)


def _waiting_round(workspace: Path, number: int):
    found = list((workspace / "runs").glob(f"*/round_{number}/preference_request.json"))
    return found[0] if found else None


def _video_plays(driver, candidate_id: str) -> None:
    video = driver.find_element("css selector", f'video[data-candidate="{candidate_id}"]')
    started = driver.execute_async_script(
        "const [v, done] = arguments; v.muted = true; v.play().then(() => done('ok'), e => done(String(e)));", video
    )
    assert started == "ok", started
    _wait(
        lambda: driver.execute_script(
            "const v = arguments[0]; return v.readyState >= 2 && !v.paused && v.currentTime > 0.2;", video
        ),
        20,
        f"{candidate_id}'s video to play",
    )


def _given(driver, number: int) -> str:
    return " ".join(e.text for e in driver.find_elements("css selector", f"#round-{number} p.preference"))


def _prefer(driver, best: str, worst: str | None, comment: str) -> None:
    driver.find_element("css selector", f'input[name="best"][value="{best}"]').click()
    if worst:
        driver.find_element("css selector", f'input[name="worst"][value="{worst}"]').click()
    driver.find_element("css selector", 'textarea[name="comment"]').send_keys(comment)
    driver.find_element("css selector", 'form.preference button[type="submit"]').click()


def test_a_person_steers_a_run_from_the_page(tmp_path, monkeypatch):
    workspace = tmp_path
    server, url = _serve(workspace)
    flags = [
        "run",
        "--env",
        "HalfCheetah-v5",
        "Run backwards, towards -x.",
        "--feedback",
        "human",
        "--page-url",
        url,
        "--rounds",
        "2",
        "--candidates",
        "2",
        "--repairs",
        "1",
        "--final-seeds",
        "1",
        "--steps",
        "512",
        "--envs",
        "2",
        "--eval-episodes",
        "1",
        "--workers",
        "2",
    ]
    driver = None
    with ChatServer(responder=persona) as chat:
        process = start_cli(flags, chat.url, workspace)
        try:
            request_file = _wait(lambda: _waiting_round(workspace, 1), 400, "round 1's preference request", process)
            run = request_file.parent.parent
            request = read_json(request_file)
            assert request["candidate_ids"] == ["r1c0", "r1c1"]
            assert request["page_url"] == f"{url}/runs/{run.name}/#round-1"
            for candidate_id in request["candidate_ids"]:  # each trained policy's own video, rendered by its worker
                assert (run / "round_1" / candidate_id / "training" / "evaluation" / "video.mp4").exists()

            driver = _browser(monkeypatch)
            driver.get(url + "/")
            driver.find_element("link text", run.name).click()
            status = driver.find_element("id", "run-status").text
            assert status == f"waiting for a preference on round 1 at {url}/runs/{run.name}/#round-1"
            cards = driver.find_elements("css selector", "#round-1 div.candidate")
            assert [c.get_attribute("data-candidate") for c in cards] == ["r1c0", "r1c1"]
            assert "compute_reward" in cards[0].text and "critic" in cards[1].text
            _video_plays(driver, "r1c0")
            # AUTOREWARD_SCREENSHOTS=folder keeps what the person saw, to look at.
            driver.save_screenshot(str(Path(os.environ.get("AUTOREWARD_SCREENSHOTS", tmp_path)) / "round1.png"))
            _prefer(driver, "r1c1", "r1c0", COMMENT)
            _wait(
                lambda: "Preference (human): best r1c1, worst r1c0" in _given(driver, 1),
                20,
                "the page to show the preference",
            )

            # Round 2: the loop took the preference up; the best so far stands beside the new candidate.
            _wait(lambda: _waiting_round(workspace, 2), 400, "round 2's preference request", process)
            assert read_json(run / "round_2" / "preference_request.json")["candidate_ids"] == ["r1c1", "r2c0"]
            assert (run / "round_2" / "r2c0" / "training" / "evaluation" / "video.mp4").exists()
            driver.get(f"{url}/runs/{run.name}/")
            labels = [
                c.get_attribute("data-candidate")
                for c in driver.find_elements("css selector", "#round-2 div.candidate")
            ]
            assert labels[:2] == ["r1c1", "r2c0"]
            _video_plays(driver, "r2c0")
            _prefer(driver, "r2c0", "r1c1", "Faster now.")
            output, _ = process.communicate(timeout=300)
        finally:
            if driver is not None:
                driver.quit()
            if process.poll() is None:
                process.kill()
            server.terminate()
            server.wait(10)
        assert process.returncode == 0, output
        designer_requests = [
            r["messages"][1]["content"]
            for r in chat.requests
            if len(r["messages"]) == 2 and r["messages"][0]["role"] == "system"
        ]

    candidates = candidates_of(run)
    round_two = [r for r in designer_requests if "The best reward so far (round 1)" in r]
    assert round_two and COMMENT in round_two[0] and candidates["r1c1"].code.strip() in round_two[0]
    assert "compared by a person watching them" in round_two[0] and candidates["r1c0"].code.strip() in round_two[0]
    assert read_json(run / "round_2" / "round.json")["best_so_far_id"] == "r2c0"
    final = read_json(run / "final" / "final.json")
    assert final["candidate_id"] == "r2c0" and final["fitness_mean"] is None
    assert "chosen by a person's preferences" in (run / "export" / "reward_report.md").read_text()
    assert SECRET not in output
