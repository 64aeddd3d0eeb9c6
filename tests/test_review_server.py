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
