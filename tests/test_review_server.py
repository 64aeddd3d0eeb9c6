"""The review page's server: pages from run folders, videos by byte range, the preference form, and what it refuses."""

from __future__ import annotations

import dataclasses
import http.client
import threading
import time
from urllib.parse import urlencode

import pytest

from autoreward.loop.preferences import HumanPreferences
from autoreward.loop.run_store import run_summaries
from autoreward.records import PreferenceRequest
from autoreward.review.server import ReviewServer, byte_range

from .review_fixtures import HOSTILE, make_run, trained

RUN = "cheetah__design__s0__20260101-000000"


@pytest.fixture
def site(tmp_path):
    store = make_run(tmp_path / "runs", RUN)
    (tmp_path / "secret.txt").write_text("root:x:0:0 not for the page")
    server = ReviewServer(tmp_path / "runs", "127.0.0.1", 0).start()
    yield server, store
    server.close()


def request(server, method, path, body=None, headers=None):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if body is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_the_list_of_runs_and_a_run_with_its_candidates(site):
    server, _ = site
    response, page = request(server, "GET", "/")
    assert response.status == 200 and RUN.encode() in page
    response, page = request(server, "GET", f"/runs/{RUN}/")
    text = page.decode()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/html")
    for candidate in ("r1c0", "r1c1", "r1c2"):
        assert f'id="candidate-{candidate}"' in text
    assert "<span style=" in text  # the code is highlighted
    assert "check non_finite: the total is NaN" in text and "task score <b>1.5</b>" in text
    assert "<svg" in text and "polyline" in text  # the training curve
    assert HOSTILE not in text and "&lt;script&gt;" in text  # untrusted text is escaped
    assert "script-src" not in response.getheader("Content-Security-Policy")  # default-src 'none': no scripts
    assert '<form class="preference"' not in text  # nobody is waiting


@pytest.mark.parametrize(
    "path",
    [
        "/runs/../../secret.txt",
        "/runs/%2e%2e/secret.txt",
        "/runs/..%2f..%2fsecret.txt",
        f"/runs/{RUN}/video/..%2f..%2fconfig.json",
        f"/runs/{RUN}/video/../../../secret.txt",
        "/../../../../etc/passwd",
        "/runs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/",
        f"/runs/{RUN}/video/r1c0%00",
        "/runs/..\\..\\secret.txt",
        f"/runs/{RUN}%2f..%2f..%2fsecret.txt/",
    ],
)
def test_no_path_leaves_the_runs(site, path):
    response, page = request(site[0], "GET", path)
    assert response.status == 404 and b"root:" not in page


def test_a_video_is_served_whole_and_by_byte_ranges(site):
    server, store = site
    video = store.candidate_dir("r1c0", 1) / "training" / "video.mp4"
    video.parent.mkdir(parents=True)
    data = bytes(range(256)) * 40
    video.write_bytes(data)
    response, body = request(server, "GET", f"/runs/{RUN}/video/r1c0")
    assert (response.status, response.getheader("Content-Type"), body) == (200, "video/mp4", data)
    assert response.getheader("Accept-Ranges") == "bytes"
    response, body = request(server, "GET", f"/runs/{RUN}/video/r1c0", headers={"Range": "bytes=100-199"})
    assert response.status == 206 and body == data[100:200]
    assert response.getheader("Content-Range") == f"bytes 100-199/{len(data)}"
    response, body = request(server, "GET", f"/runs/{RUN}/video/r1c0", headers={"Range": "bytes=10000-"})
    assert response.status == 206 and body == data[10000:]
    response, body = request(server, "GET", f"/runs/{RUN}/video/r1c0", headers={"Range": "bytes=-16"})
    assert response.status == 206 and body == data[-16:]
    response, _ = request(server, "GET", f"/runs/{RUN}/video/r1c0", headers={"Range": "bytes=99999-"})
    assert response.status == 416 and response.getheader("Content-Range") == f"bytes */{len(data)}"
    assert request(server, "GET", f"/runs/{RUN}/video/r1c1")[0].status == 404  # no video for that one
    assert 'src="/runs/' + RUN + '/video/r1c0"' in request(server, "GET", f"/runs/{RUN}/")[1].decode()


def test_a_candidate_stopped_by_halving_shows_the_video_of_its_last_slice(site):
    server, store = site
    stopped = dataclasses.replace(trained(1, 1, 1.5), stopped_at=128, message="stopped by successive halving at 128")
    store.save_candidate(stopped)
    video = store.candidate_dir("r1c1", 1) / "training_128" / "video.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"the slice's video")
    assert store.video_path(stopped) == video
    response, body = request(server, "GET", f"/runs/{RUN}/video/r1c1")
    assert (response.status, body) == (200, b"the slice's video")
    assert 'src="/runs/' + RUN + '/video/r1c1"' in request(server, "GET", f"/runs/{RUN}/")[1].decode()


def test_byte_ranges_are_read_as_browsers_send_them():
    assert byte_range(None, 100) is None and byte_range("bytes=0-", 100) == (0, 99)
    assert byte_range("bytes=5-500", 100) == (5, 99) and byte_range("bytes=-500", 100) == (0, 99)
    assert byte_range("bytes=100-", 100) == "unsatisfiable" and byte_range("items=1-2", 100) is None


def _wait_for_request(store, number):
    store.save_preference_request(PreferenceRequest(number, ("r1c0", "r1c1"), "http://127.0.0.1:1/"))


def test_the_form_writes_the_preference_a_waiting_loop_reads(site):
    server, store = site
    chosen = []
    source = HumanPreferences(store, server.url, poll_seconds=0.05, timeout_seconds=30, announce=lambda text: None)
    waiter = threading.Thread(target=lambda: chosen.append(source.choose(1, [trained(1, 0, 0.5), trained(1, 1, 1.5)])))
    waiter.start()
    deadline = time.monotonic() + 10
    # the loop saves the request, then its status, then logs "preference wanted": wait for the last of the three
    while "preference wanted" not in [e["event"] for e in store.events()] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.load_preference_request(1).page_url == f"{server.url}/runs/{RUN}/#round-1"
    (row,) = run_summaries(store.path.parent)
    assert row.status == f"waiting for a preference on round 1 at {server.url}/runs/{RUN}/#round-1"
    page = request(server, "GET", f"/runs/{RUN}/")[1].decode()
    assert '<form class="preference"' in page and 'name="pair__r1c0__r1c1"' in page
    form = {"round": "1", "best": "r1c1", "worst": "r1c0", "pair__r1c0__r1c1": "r1c1", "comment": "c1 " + HOSTILE}
    response, _ = request(server, "POST", f"/runs/{RUN}/preference", urlencode(form), {"Origin": server.url})
    assert response.status == 303 and response.getheader("Location") == f"/runs/{RUN}/#round-1"
    waiter.join(10)
    (preference,) = chosen
    assert (preference.best_id, preference.worst_id, preference.pairs) == ("r1c1", "r1c0", (("r1c1", "r1c0"),))
    assert preference.comment == "c1 " + HOSTILE and preference.source == "human"
    events = [e["event"] for e in store.events()]
    assert events[-3:] == ["preference wanted", "preference given", "preference received"]
    again, page = request(server, "POST", f"/runs/{RUN}/preference", urlencode(form))
    assert again.status == 400 and b"already has its preference" in page


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Origin": "http://evil.example"}, b"may not answer here"),
        ({"Host": "evil.example:8765"}, b"answers only to"),
    ],
)
def test_a_form_from_another_site_is_refused(site, headers, reason):
    server, store = site
    _wait_for_request(store, 1)
    response, page = request(
        server, "POST", f"/runs/{RUN}/preference", urlencode({"round": "1", "best": "r1c1"}), headers
    )
    assert response.status == 403 and reason in page
    assert not (store.path / "round_1" / "preference.json").exists()


def test_a_preference_naming_a_candidate_not_shown_is_refused(site):
    server, store = site
    _wait_for_request(store, 1)
    response, page = request(server, "POST", f"/runs/{RUN}/preference", urlencode({"round": "1", "best": "r1c2"}))
    assert response.status == 400 and b"which the round did not show" in page
    response, page = request(server, "POST", f"/runs/{RUN}/preference", urlencode({"round": "2", "best": "r1c1"}))
    assert response.status == 400 and b"not waiting" in page


def test_a_bad_preference_file_is_moved_aside_and_the_wait_goes_on(tmp_path):
    store = make_run(tmp_path / "runs", RUN)
    said = []
    source = HumanPreferences(store, poll_seconds=0.05, timeout_seconds=0.5, announce=said.append)
    (store.path / "round_1").mkdir(exist_ok=True)
    (store.path / "round_1" / "preference.json").write_text('{"round": 1, "best_id": "r9c9"}')
    with pytest.raises(Exception, match="no preference for round 1 came within 0.5 s"):
        source.choose(1, [trained(1, 0, 0.5), trained(1, 1, 1.5)])
    assert (store.path / "round_1" / "preference.refused.json").exists()
    assert any("was refused: it names r9c9" in line for line in said)


def test_the_run_page_shows_the_final_scores_under_each_recipe_and_never_a_bare_noise_figure(site):
    from autoreward.config import Recipe
    from autoreward.records import FinalResult, RecipeResult

    server, store = site
    common = dict(candidate_id="r1c1", seeds=(0, 1), fitness=(3.0, 3.2), scores=(0.9, 1.1), fitness_mean=3.1)
    common |= dict(fitness_std=0.1, score_mean=1.05, score_std=0.1, sparse_fitness=1.0, sparse_spread=0.3)
    store.save_final(FinalResult(**common, human_fitness=1.1, human_spread=0.3))  # baselines within their spreads
    store.save_recipe_result(
        RecipeResult(Recipe(normalize=False, n_envs=2, seeds=2, steps=512), FinalResult(**common, human_fitness=3.0))
    )
    _, page = request(server, "GET", f"/runs/{RUN}/")
    text = " ".join(page.decode().split())
    assert "human-normalized not meaningful at this budget" in text and "1.050" not in text.split('id="recipes"')[0]
    assert 'id="recipes"' in text and "PPO, raw rewards, 2 environments, 512 steps, 2 seeds" in text
    assert "autoreward&#39;s: PPO, VecNormalize, 4 environments, 512 steps, 3 seeds" in text


def test_the_run_page_shows_the_proposed_score_and_the_frames_a_watching_judge_saw(site):
    from autoreward.config import Fitness
    from autoreward.records import Preference, ScoreProposal

    server, store = site
    text = '[fitness]\nstep = "next_state.obs.position"\nreduce = "last"\ndescription = "where the car ends"\n'
    fitness = Fitness(step="next_state.obs.position", reduce="last", description="where the car ends")
    store.save_score_proposal(
        ScoreProposal(text, fitness, None, -0.52, -0.48, "accepted", "a person at the terminal", at="2026-12-01")
    )
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (160).to_bytes(4, "big") + (120).to_bytes(4, "big")
    for candidate in ("r1c0", "r1c1"):
        folder = store.frames_dir(store.load_candidate(candidate))
        folder.mkdir(parents=True)
        for k in range(6):
            (folder / f"frame_{k}.png").write_bytes(png + bytes([k]))
    store.save_preference(
        Preference(1, "r1c1", "r1c0", comment="it moves", source="vlm", candidate_ids=("r1c0", "r1c1"))
    )
    _, page = request(server, "GET", f"/runs/{RUN}/")
    text_of_page = " ".join(page.decode().split())
    assert "Proposed task score</b>: accepted by a person at the terminal" in text_of_page
    assert "reduce = &#34;last&#34;" in text_of_page and "random actions it scored -0.52" in text_of_page
    assert text_of_page.count(f'src="/runs/{RUN}/frame/') == 12 and "What the judge saw" in text_of_page
    response, served = request(server, "GET", f"/runs/{RUN}/frame/r1c1/5")
    assert response.status == 200 and response.getheader("Content-Type") == "image/png" and served == png + b"\x05"
    assert request(server, "GET", f"/runs/{RUN}/frame/r1c1/6")[0].status == 404
    assert request(server, "GET", f"/runs/{RUN}/frame/r1c1/..%2f..%2fcandidate.json")[0].status == 404


# --- single trainings (`autoreward train`) on the page -------------------------------------------------------------

TRAINING_RUN = "half_cheetah_backward__train__s3__20260102-000000"


def make_training(runs_dir, name=TRAINING_RUN, component="r"):
    """A folder laid out as `autoreward train` lays it out (cli/task_commands.py), from the library's own records."""
    from autoreward.config import TrainingConfig
    from autoreward.records import CheckCategory, CheckResult, EpisodeResult
    from autoreward.serialize import write_json
    from autoreward.task.files import find_task

    from .review_fixtures import program, training

    folder = runs_dir / name
    folder.mkdir(parents=True)
    (folder / "reward.py").write_text(program(2.0) + f"# {HOSTILE}\n")
    config = TrainingConfig(algo="ppo", steps=512, n_envs=2, seed=3)
    command = f"autoreward train half_cheetah_backward --reward mine.py --steps 512 --seed 3 # {HOSTILE}"
    reward_file = f"/home/someone/{HOSTILE}.py"
    write_json(
        folder / "config.json",
        {
            "command": command,
            "task": find_task("half_cheetah_backward"),
            "training": config,
            "reward_file": reward_file,
        },
    )
    write_json(folder / "check.json", CheckResult(CheckCategory.OK, "passed: 1 component on 256 states"))
    episodes = tuple(
        EpisodeResult(1_000_000 + k, 40, 0.5 + k, -3.0, 2.0 + k, {component: 2.0 + k, "ctrl": -0.25}, k == 1)
        for k in range(2)
    )
    record = dataclasses.replace(training(1.0), seed=3, video="evaluation/video.mp4")
    record = dataclasses.replace(record, evaluation=dataclasses.replace(record.evaluation, episodes=episodes))
    record = dataclasses.replace(record, evaluation=dataclasses.replace(record.evaluation, success_rate=0.5))
    write_json(folder / "training" / "training.json", record)
    video = folder / "training" / "evaluation" / "video.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(bytes(range(256)) * 20)
    write_json(folder / "result.json", {"task": "half_cheetah_backward", "fitness": 1.0, "normalized": None})
    return folder


def _text(page: bytes) -> str:
    return " ".join(page.decode().split())


def test_the_list_shows_design_runs_and_single_trainings_and_a_line_for_any_other_folder(site, tmp_path):
    server, _ = site
    runs = tmp_path / "runs"
    make_training(runs)
    (runs / "baselines").mkdir()
    (runs / "notes").mkdir()
    (runs / "odd").mkdir()
    (runs / "odd" / "config.json").write_text('{"some": "thing else"}')
    response, page = request(server, "GET", "/")
    text = _text(page)
    assert response.status == 200 and f'href="/runs/{RUN}/"' in text  # the design run, as before
    row = text.split(f'<tr data-training="{TRAINING_RUN}">')[1].split("</tr>")[0]
    assert f'href="/runs/{TRAINING_RUN}/"' in row and "<td>half_cheetah_backward</td>" in row
    assert "<td>512</td> <td>3</td> <td>1</td>" in row and 'class="status">trained<' in row  # steps, seed, score
    assert "&lt;script&gt;" in row and HOSTILE not in text  # the reward file's name is escaped
    assert "<code>notes</code>: no config.json: not a design run, a single training or a preview" in text
    assert (
        "<code>odd</code>: odd/config.json is neither a design run&#39;s, a single training&#39;s nor a preview&#39;s"
        in text
    )
    assert "<code>baselines</code>: the cached human and sparse baselines" in text
    assert "No run here yet" not in text


def test_a_single_training_has_a_page_with_its_record_and_its_video_by_byte_ranges(tmp_path):
    folder = make_training(tmp_path / "runs")
    server = ReviewServer(tmp_path / "runs", "127.0.0.1", 0).start()
    try:
        response, page = request(server, "GET", f"/runs/{TRAINING_RUN}")
        assert response.status == 303 and response.getheader("Location") == f"/runs/{TRAINING_RUN}/"
        response, page = request(server, "GET", f"/runs/{TRAINING_RUN}/")
        text = _text(page)
        assert response.status == 200 and 'id="run-status">trained<' in text
        assert "Make the half cheetah run backwards" in text and "seed 3" in text
        assert "task score <b>1</b> ± 0.01 (mean velocity along -x, m/s)" in text
        assert "success 50% (threshold 2)" in text
        assert "<svg" in text and "polyline" in text  # the training curve
        assert "<td>r</td><td>2.5</td><td>2</td><td>3</td>" in text  # a component's return over held-out episodes
        assert "<td>ctrl</td><td>-0.25</td>" in text and "terminated" in text and "time limit" in text
        assert "<span style=" in text and "compute_reward" in text  # the reward program, highlighted
        assert "check ok: passed: 1 component on 256 states" in text
        assert HOSTILE not in text and "&lt;script&gt;" in text
        assert "script-src" not in response.getheader("Content-Security-Policy")
        assert f'src="/runs/{TRAINING_RUN}/video"' in text
        data = (folder / "training" / "evaluation" / "video.mp4").read_bytes()
        response, body = request(server, "GET", f"/runs/{TRAINING_RUN}/video")
        assert (response.status, response.getheader("Content-Type"), body) == (200, "video/mp4", data)
        response, body = request(server, "GET", f"/runs/{TRAINING_RUN}/video", headers={"Range": "bytes=100-199"})
        assert response.status == 206 and body == data[100:200]
        assert response.getheader("Content-Range") == f"bytes 100-199/{len(data)}"
        assert request(server, "GET", f"/runs/{TRAINING_RUN}/video", headers={"Range": "bytes=99999-"})[0].status == 416
        assert request(server, "GET", f"/runs/{TRAINING_RUN}/video/r1c0")[0].status == 404
        response, _ = request(
            server, "POST", f"/runs/{TRAINING_RUN}/preference", urlencode({"round": "1", "best": "x"})
        )
        assert response.status == 400  # no form on a training
    finally:
        server.close()


def test_a_link_in_place_of_a_trainings_video_record_or_folder_is_not_followed(tmp_path):
    from autoreward.serialize import write_json

    from .review_fixtures import training

    runs = tmp_path / "runs"
    folder = make_training(runs)
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"root:x:0:0 not for the page")
    video = folder / "training" / "evaluation" / "video.mp4"
    video.unlink()
    video.symlink_to(secret)
    elsewhere = tmp_path / "elsewhere.json"
    write_json(elsewhere, dataclasses.replace(training(42.0), video="evaluation/video.mp4"))
    other = make_training(runs, TRAINING_RUN + "-2")
    (other / "training" / "training.json").unlink()
    (other / "training" / "training.json").symlink_to(elsewhere)
    (runs / "linked").symlink_to(folder)
    make_run(runs, RUN)
    (runs / "alias").symlink_to(runs / RUN)  # a design run under a second name
    third = make_training(runs, TRAINING_RUN + "-3")
    (third / "config.json").unlink()
    (third / "config.json").symlink_to(folder / "config.json")
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        response, body = request(server, "GET", f"/runs/{TRAINING_RUN}/video")
        assert response.status == 404 and b"root:" not in body
        page = _text(request(server, "GET", f"/runs/{TRAINING_RUN}/")[1])
        assert "no video of this policy" in page and "/video" not in page.split('id="training"')[1].split("<p")[0]
        response, page = request(server, "GET", f"/runs/{TRAINING_RUN}-2/")
        text = _text(page)
        assert response.status == 200 and 'id="run-status">broken record<' in text and "42" not in text
        assert "training/training.json goes through a link or a non-folder, so it is not read" in text
        assert "Traceback" not in text and "compute_reward" in text  # the rest of the folder is still shown
        assert request(server, "GET", f"/runs/{TRAINING_RUN}-2/video")[0].status == 404
        response, page = request(server, "GET", f"/runs/{TRAINING_RUN}-3/")
        assert response.status == 404 and b"config.json goes through a link" in page
        for link in ("linked", "alias"):
            assert request(server, "GET", f"/runs/{link}/")[0].status == 404
        index = _text(request(server, "GET", "/")[1])
        assert "<code>linked</code>: a link, which this page does not follow" in index
        assert "<code>alias</code>: a link, which this page does not follow" in index
        assert f'href="/runs/{RUN}/"' in index and 'href="/runs/alias/"' not in index
        assert f"<code>{TRAINING_RUN}-3</code>: {TRAINING_RUN}-3/config.json goes through a link" in index
        row = index.split(f'<tr data-training="{TRAINING_RUN}-2">')[1].split("</tr>")[0]
        assert "broken record: " in row and "goes through a link" in row
    finally:
        server.close()


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda d: d["evaluation"].update(fitness_mean="1.5"), "evaluation.fitness_mean: expected a finite number"),
        (lambda d: d["curve"][0].update(reward_mean=None), "curve[0].reward_mean: expected a finite number"),
        (lambda d: d["evaluation"].update(success_rate=7.0), "a success rate of 7, outside 0 to 1"),
        (lambda d: d.update(steps=-5), "negative steps"),
        (lambda d: d.update(video="../../../secret.mp4"), None),  # a path out of the folder: no video, no error
    ],
)
def test_a_broken_training_record_is_one_line_never_a_traceback(tmp_path, change, why):
    import json

    runs = tmp_path / "runs"
    folder = make_training(runs)
    record = folder / "training" / "training.json"
    data = json.loads(record.read_text())
    change(data)
    record.write_text(json.dumps(data))
    (tmp_path / "secret.mp4").write_bytes(b"root:x:0:0")
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        response, page = request(server, "GET", f"/runs/{TRAINING_RUN}/")
        text = _text(page)
        assert response.status == 200 and "Traceback" not in text
        if why is None:
            assert 'id="run-status">trained<' in text and "no video of this policy" in text
        else:
            assert 'id="run-status">broken record<' in text and why in text
            assert why in _text(request(server, "GET", "/")[1])  # the list says it too, on the training's row
        response, body = request(server, "GET", f"/runs/{TRAINING_RUN}/video")
        assert response.status == 404 and b"root:" not in body
    finally:
        server.close()


def test_a_training_that_failed_its_check_or_is_still_running_says_so(tmp_path):
    from autoreward.records import CheckCategory, CheckResult
    from autoreward.serialize import write_json

    runs = tmp_path / "runs"
    failed = make_training(runs)
    write_json(failed / "check.json", CheckResult(CheckCategory.NON_FINITE, f"the total is NaN {HOSTILE}\nat line 3"))
    for path in (failed / "training" / "training.json", failed / "result.json"):
        path.unlink()
    running = make_training(runs, TRAINING_RUN + "-2")
    (running / "training" / "training.json").unlink()
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        text = _text(request(server, "GET", f"/runs/{TRAINING_RUN}/")[1])
        assert "check failed (non_finite): the total is NaN &lt;script&gt;" in text and HOSTILE not in text
        assert "<video" not in text and 'http-equiv="refresh"' not in text
        text = _text(request(server, "GET", f"/runs/{TRAINING_RUN}-2/")[1])
        assert "checked, no training record yet" in text and 'http-equiv="refresh"' in text
        index = _text(request(server, "GET", "/")[1])
        assert "check failed (non_finite): the total is NaN &lt;script&gt;" in index and "at line 3" not in index
    finally:
        server.close()


def test_a_training_made_by_the_python_api_names_no_file_and_no_command(tmp_path):
    import json

    folder = make_training(tmp_path / "runs")
    config = json.loads((folder / "config.json").read_text()) | {"command": None, "reward_file": None}
    (folder / "config.json").write_text(json.dumps(config))  # what autoreward.train writes when told neither
    server = ReviewServer(tmp_path / "runs", "127.0.0.1", 0).start()
    try:
        text = _text(request(server, "GET", f"/runs/{TRAINING_RUN}/")[1])
        assert 'id="run-status">trained<' in text
        assert "reward given as text (its copy is <code>reward.py</code>)" in text
        assert "Made by" not in text
        row = _text(request(server, "GET", "/")[1]).split(f'<tr data-training="{TRAINING_RUN}">')[1]
        assert "<td>half_cheetah_backward</td> <td>-</td> <td>512</td>" in row
    finally:
        server.close()


def test_an_empty_runs_folder_says_how_to_make_either_kind(tmp_path):
    (tmp_path / "runs").mkdir()
    server = ReviewServer(tmp_path / "runs", "127.0.0.1", 0).start()
    try:
        text = _text(request(server, "GET", "/")[1])
        assert "No run here yet" in text and "autoreward train TASK --reward FILE" in text
    finally:
        server.close()


# --- previews (`autoreward preview`) on the page ----------------------------------------------------------------

PREVIEW_RUN = "half_cheetah_backward__preview__s4__20260103-000000"


def make_preview(runs_dir, name=PREVIEW_RUN):
    """A folder laid out as `autoreward preview` lays it out (api.preview), from the library's own records."""
    from autoreward.config import PlannerSettings
    from autoreward.loop.preview import PreviewResult
    from autoreward.records import CheckCategory, CheckResult, EpisodeResult, Evaluation
    from autoreward.serialize import write_json
    from autoreward.task.files import find_task

    from .review_fixtures import program

    folder = runs_dir / name
    folder.mkdir(parents=True)
    (folder / "reward.py").write_text(program(2.0) + f"# {HOSTILE}\n")
    planner = PlannerSettings(horizon=12, samples=16, noise=0.25, knots=3)
    command = f"autoreward preview half_cheetah_backward --reward mine.py --horizon 12 --samples 16 # {HOSTILE}"
    task = find_task("half_cheetah_backward")
    reward_file = f"/home/someone/{HOSTILE}.py"
    write_json(
        folder / "config.json",
        {"command": command, "task": task, "planner": planner, "seed": 4, "reward_file": reward_file},
    )
    write_json(folder / "check.json", CheckResult(CheckCategory.OK, "passed: 2 components on 256 states"))
    episode = EpisodeResult(1_000_000, 40, 2.5, -3.0, 1.75, {"backward": 2.0, "ctrl": -0.25}, False)
    evaluation = Evaluation((episode,), fitness_mean=2.5, fitness_std=0.0, length_mean=40.0, success_rate=1.0)
    record = PreviewResult(task.id, planner, 40, evaluation, 12.5, 3.5, video="evaluation/video.mp4")
    write_json(folder / "preview" / "preview.json", record)
    video = folder / "preview" / "evaluation" / "video.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(bytes(range(256)) * 30)
    write_json(folder / "result.json", {"task": task.id, "fitness": 2.5, "video": "preview/evaluation/video.mp4"})
    return folder


def _row(index: str, kind: str, name: str) -> str:
    return index.split(f'<tr data-{kind}="{name}">')[1].split("</tr>")[0]


def test_previews_are_listed_newest_first_apart_from_trainings(tmp_path):
    import os

    runs = tmp_path / "runs"
    make_training(runs)
    older = make_preview(runs)
    newer = make_preview(runs, PREVIEW_RUN + "-2")
    os.utime(older / "config.json", (1_000_000, 1_000_000))
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        index = _text(request(server, "GET", "/")[1])
        previews = index.split('id="previews"')[1]
        assert previews.index(newer.name) < previews.index(f'data-preview="{older.name}"')
        row = _row(index, "preview", PREVIEW_RUN)
        assert f'href="/runs/{PREVIEW_RUN}/"' in row and "<td>half_cheetah_backward</td>" in row
        assert "<td>12 × 16, noise 0.25</td> <td>4</td> <td>2.5</td>" in row  # planner, seed, task score
        assert 'class="status">previewed<' in row and "&lt;script&gt;" in row and HOSTILE not in index
        assert f'data-training="{PREVIEW_RUN}"' not in index and f'data-preview="{TRAINING_RUN}"' not in index
        assert "Other folders" not in index
    finally:
        server.close()


def test_a_preview_has_a_page_with_its_episode_and_its_video_by_byte_ranges(tmp_path):
    folder = make_preview(tmp_path / "runs")
    server = ReviewServer(tmp_path / "runs", "127.0.0.1", 0).start()
    try:
        response, _ = request(server, "GET", f"/runs/{PREVIEW_RUN}")
        assert response.status == 303 and response.getheader("Location") == f"/runs/{PREVIEW_RUN}/"
        response, page = request(server, "GET", f"/runs/{PREVIEW_RUN}/")
        text = _text(page)
        assert response.status == 200 and 'id="run-status">previewed<' in text
        assert "Make the half cheetah run backwards" in text and "Made by <code>autoreward preview" in text
        assert "16 samples over a horizon of 12 control steps, noise 0.25, 3 knots, seed 4" in text
        assert "task score <b>2.5</b> (mean velocity along -x, m/s)" in text
        assert "40 steps, to the time limit; succeeded (threshold 2)" in text
        assert "the reward's return 1.75 (the environment's own -3)" in text
        assert "planned in 12.5 s, replayed and scored in 3.5 s" in text
        assert "<td>backward</td><td>2</td>" in text and "<td>ctrl</td><td>-0.25</td>" in text
        assert "<span style=" in text and "compute_reward" in text  # the reward program, highlighted
        assert "check ok: passed: 2 components on 256 states" in text
        assert HOSTILE not in text and "&lt;script&gt;" in text and 'http-equiv="refresh"' not in text
        assert "script-src" not in response.getheader("Content-Security-Policy")
        assert f'src="/runs/{PREVIEW_RUN}/video"' in text
        data = (folder / "preview" / "evaluation" / "video.mp4").read_bytes()
        response, body = request(server, "GET", f"/runs/{PREVIEW_RUN}/video")
        assert (response.status, response.getheader("Content-Type"), body) == (200, "video/mp4", data)
        assert response.getheader("Accept-Ranges") == "bytes"
        response, body = request(server, "GET", f"/runs/{PREVIEW_RUN}/video", headers={"Range": "bytes=100-199"})
        assert response.status == 206 and body == data[100:200]
        assert response.getheader("Content-Range") == f"bytes 100-199/{len(data)}"
        assert request(server, "GET", f"/runs/{PREVIEW_RUN}/video", headers={"Range": "bytes=99999-"})[0].status == 416
        assert request(server, "HEAD", f"/runs/{PREVIEW_RUN}/video")[0].status == 200
        assert request(server, "GET", f"/runs/{PREVIEW_RUN}/video/r1c0")[0].status == 404
        response, _ = request(server, "POST", f"/runs/{PREVIEW_RUN}/preference", urlencode({"round": "1", "best": "x"}))
        assert response.status == 400  # no form on a preview
    finally:
        server.close()


def test_a_link_in_place_of_a_previews_video_record_or_folder_is_not_followed(tmp_path):
    from autoreward.serialize import write_json

    runs = tmp_path / "runs"
    folder = make_preview(runs)
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"root:x:0:0 not for the page")
    video = folder / "preview" / "evaluation" / "video.mp4"
    video.unlink()
    video.symlink_to(secret)
    elsewhere = tmp_path / "elsewhere.json"
    record = __import__("json").loads((folder / "preview" / "preview.json").read_text())
    write_json(elsewhere, record | {"steps": 42424})
    other = make_preview(runs, PREVIEW_RUN + "-2")
    (other / "preview" / "preview.json").unlink()
    (other / "preview" / "preview.json").symlink_to(elsewhere)
    third = make_preview(runs, PREVIEW_RUN + "-3")
    (tmp_path / "hidden").mkdir()
    (third / "preview").rename(tmp_path / "hidden" / "preview")
    (third / "preview").symlink_to(tmp_path / "hidden" / "preview")  # the whole subfolder, a link
    (runs / "linked").symlink_to(folder)
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        response, body = request(server, "GET", f"/runs/{PREVIEW_RUN}/video")
        assert response.status == 404 and b"root:" not in body
        page = _text(request(server, "GET", f"/runs/{PREVIEW_RUN}/")[1])
        assert 'id="run-status">previewed<' in page and "no video of this episode" in page and "<video" not in page
        for name in (PREVIEW_RUN + "-2", PREVIEW_RUN + "-3"):
            response, page = request(server, "GET", f"/runs/{name}/")
            text = _text(page)
            assert response.status == 200 and 'id="run-status">broken record<' in text and "42424" not in text
            assert "goes through a link or a non-folder, so it is not read" in text and "Traceback" not in text
            assert "compute_reward" in text  # the rest of the folder is still shown
            response, body = request(server, "GET", f"/runs/{name}/video")
            assert response.status == 404 and b"\x00\x01\x02" not in body
        assert request(server, "GET", "/runs/linked/")[0].status == 404
        index = _text(request(server, "GET", "/")[1])
        assert "<code>linked</code>: a link, which this page does not follow" in index
        row = _row(index, "preview", PREVIEW_RUN + "-2")
        assert "broken record: " in row and "preview/preview.json goes through a link" in row
    finally:
        server.close()


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda d: d["evaluation"].update(fitness_mean="1.5"), "evaluation.fitness_mean: expected a finite number"),
        (lambda d: d.update(planning_seconds=float("nan")), "NaN is not a number a worker may send"),
        (lambda d: d["evaluation"].update(success_rate=7.0), "a success rate of 7, outside 0 to 1"),
        (lambda d: d.update(steps=-5), "negative steps"),
        (lambda d: d["evaluation"]["episodes"][0].update(length=-1), "negative steps or episode length"),
        (lambda d: d.update(replay_seconds=-1.0), "a negative time to plan or to replay"),
        (lambda d: d["evaluation"].update(episodes=d["evaluation"]["episodes"] * 2), "2 episodes, where a preview"),
        (lambda d: d.update(task_id=["x"] * 3), "task_id: expected"),
        (lambda d: d.update(video="../../../secret.mp4"), None),  # a path out of the folder: no video, no error
        (lambda d: d.update(video="/etc/secret.mp4"), None),  # absolute
        (lambda d: d.update(video="evaluation/video.txt"), None),  # not a video
    ],
)
def test_a_broken_preview_record_is_one_line_never_a_traceback(tmp_path, change, why):
    import json

    runs = tmp_path / "runs"
    folder = make_preview(runs)
    record = folder / "preview" / "preview.json"
    data = json.loads(record.read_text())
    change(data)
    record.write_text(json.dumps(data))
    (tmp_path / "secret.mp4").write_bytes(b"root:x:0:0")
    (folder / "preview" / "evaluation" / "video.txt").write_bytes(b"root:x:0:0")
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        response, page = request(server, "GET", f"/runs/{PREVIEW_RUN}/")
        text = _text(page)
        assert response.status == 200 and "Traceback" not in text
        if why is None:
            assert 'id="run-status">previewed<' in text and "no video of this episode" in text
        else:
            assert 'id="run-status">broken record<' in text and why in text and "task score <b>" not in text
            assert why in _row(_text(request(server, "GET", "/")[1]), "preview", PREVIEW_RUN)
        response, body = request(server, "GET", f"/runs/{PREVIEW_RUN}/video")
        assert response.status == 404 and b"root:" not in body
    finally:
        server.close()


def test_a_preview_that_failed_its_check_is_planning_or_cannot_be_one_says_so(tmp_path):
    import json

    from autoreward.records import CheckCategory, CheckResult
    from autoreward.serialize import write_json

    runs = tmp_path / "runs"
    failed = make_preview(runs)
    write_json(failed / "check.json", CheckResult(CheckCategory.NON_FINITE, f"the total is NaN {HOSTILE}\nat line 3"))
    for path in (failed / "preview" / "preview.json", failed / "result.json"):
        path.unlink()
    planning = make_preview(runs, PREVIEW_RUN + "-2")
    (planning / "preview" / "preview.json").unlink()
    starting = make_preview(runs, PREVIEW_RUN + "-3")
    (starting / "preview" / "preview.json").unlink()
    (starting / "check.json").unlink()
    odd = make_preview(runs, PREVIEW_RUN + "-4")
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps(config | {"planner": config["planner"] | {"samples": 1}}))
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        text = _text(request(server, "GET", f"/runs/{PREVIEW_RUN}/")[1])
        assert "check failed (non_finite): the total is NaN &lt;script&gt;" in text and HOSTILE not in text
        assert "check non_finite: the total is NaN" in text  # the verdict in full, below
        assert "<video" not in text and 'http-equiv="refresh"' not in text
        text = _text(request(server, "GET", f"/runs/{PREVIEW_RUN}-2/")[1])
        assert "checked, no preview record yet (planning" in text and 'http-equiv="refresh"' in text
        text = _text(request(server, "GET", f"/runs/{PREVIEW_RUN}-3/")[1])
        assert "not checked yet" in text and 'http-equiv="refresh"' in text
        response, page = request(server, "GET", f"/runs/{PREVIEW_RUN}-4/")
        assert response.status == 404 and b"is not a preview&#39;s: the planner needs at least 2 samples" in page
        index = _text(request(server, "GET", "/")[1])
        row = _row(index, "preview", PREVIEW_RUN)
        assert "check failed (non_finite): the total is NaN &lt;script&gt;" in row and "at line 3" not in row
        assert "<td>-</td> <td" in row  # no task score
        assert f"<code>{PREVIEW_RUN}-4</code>: {PREVIEW_RUN}-4/config.json is not a preview&#39;s" in index
    finally:
        server.close()


@pytest.mark.slow
def test_the_folder_a_real_autoreward_train_makes_is_listed_and_its_video_served(tmp_path):
    from typer.testing import CliRunner

    from autoreward.cli import app

    from .conftest import REPO

    runs = tmp_path / "runs"
    args = ["train", "half_cheetah_backward", "--reward", str(REPO / "envs/rewards/half_cheetah_backward.py")]
    args += ["--steps", "512", "--envs", "2", "--eval-episodes", "1", "--runs-dir", str(runs)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (folder,) = runs.iterdir()
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        index = _text(request(server, "GET", "/")[1])
        row = index.split(f'<tr data-training="{folder.name}">')[1].split("</tr>")[0]
        assert "<td>half_cheetah_backward</td>" in row and "<td>512</td> <td>0</td>" in row and ">trained<" in row
        text = _text(request(server, "GET", f"/runs/{folder.name}/")[1])
        assert "task score <b>" in text and "<td>backward</td>" in text and "<td>ctrl</td>" in text
        assert "<svg" in text and f'src="/runs/{folder.name}/video"' in text
        video = (folder / "training" / "evaluation" / "video.mp4").read_bytes()
        response, body = request(server, "GET", f"/runs/{folder.name}/video", headers={"Range": "bytes=0-99"})
        assert response.status == 206 and body == video[:100]
        assert response.getheader("Content-Range") == f"bytes 0-99/{len(video)}"
    finally:
        server.close()


def test_the_folder_a_real_preview_makes_is_listed_and_its_video_served(tmp_path):
    import autoreward

    from .conftest import REPO, SHORT_TASK

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    task = autoreward.load_task("cheetah_back_short", [tmp_path / "tasks"])
    code = (REPO / "examples/half_cheetah_backward.py").read_text()
    runs = tmp_path / "runs"
    previewed = autoreward.preview(task, code, horizon=6, samples=4, knots=3, seed=2, runs_dir=runs)
    folder = previewed.folder
    server = ReviewServer(runs, "127.0.0.1", 0).start()
    try:
        row = _row(_text(request(server, "GET", "/")[1]), "preview", folder.name)
        assert "<td>cheetah_back_short</td>" in row and "<td>6 × 4, noise 0.3</td> <td>2</td>" in row
        assert f"<td>{previewed.score:.4g}</td>" in row and ">previewed<" in row
        text = _text(request(server, "GET", f"/runs/{folder.name}/")[1])
        assert f"task score <b>{previewed.score:.4g}</b>" in text and "40 steps" in text
        assert "<td>backward</td>" in text and "<td>effort</td>" in text and "check ok" in text
        assert f'src="/runs/{folder.name}/video"' in text
        video = (folder / "preview" / "evaluation" / "video.mp4").read_bytes()
        response, body = request(server, "GET", f"/runs/{folder.name}/video", headers={"Range": "bytes=0-99"})
        assert response.status == 206 and body == video[:100]
        assert response.getheader("Content-Range") == f"bytes 0-99/{len(video)}"
    finally:
        server.close()
