"""Executors: the local one, and Ray tasks on a real Ray instance this test starts as a cluster head.

The Ray tests start `ray start --head` in its own process group with a short
temporary folder (Ray's sockets live there), with a fake API key in its
environment (the worst case: a head started from a shell that exported one),
and connect to it by address as a cluster's orchestrator would. They show
that a training sent to Ray comes back as the same files and the same result
as a local one, and that the worker on the Ray side is jailed the same way.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autoreward.config import TrainingConfig, WorkerLimits
from autoreward.errors import AutorewardError, WorkerError
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.records import TrainingResult
from autoreward.sandbox.executor import LocalExecutor, connect_executor, visible_gpus
from autoreward.sandbox.transfer import pack_folder, unpack_folder
from autoreward.serialize import read_json
from autoreward.task.files import find_task

from .conftest import PROBE, REPO, attempts, human_reward, processes_mentioning

FAKE_KEY = "sk-autoreward-ray-" + "5eed" * 8
TINY = TrainingConfig(steps=256, n_envs=2, eval_episodes=2, curve_points=4)
LIMITS = WorkerLimits(wall_seconds=120, idle_seconds=120)
SCRIPT = "from autoreward.cli import app\napp()\n"


def _autoreward(*args: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="250", **environment),
    )


# --- without Ray ----------------------------------------------------------------------------------


def test_executor_ray_without_the_ray_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    with pytest.raises(AutorewardError, match=r"install autoreward\[ray\]"):
        connect_executor("ray", "127.0.0.1:6379")


def test_the_command_line_says_it_in_one_sentence_and_makes_no_run_folder(tmp_path):
    blocker = tmp_path / "no_ray"
    blocker.mkdir()
    (tmp_path / "r.py").write_text(human_reward(find_task("hopper_forward")))
    (blocker / "ray.py").write_text("raise ImportError('No module named ray')\n")  # shadows an installed ray
    path = os.pathsep.join([str(blocker), str(REPO)])
    for command in (
        ["run", "half_cheetah_backward", "--llm", "replay", "--transcript", "t.md"],
        ["train", "hopper_forward", "--reward", str(tmp_path / "r.py")],
    ):
        result = _autoreward(*command, "--executor", "ray", "--runs-dir", str(tmp_path / "runs"), PYTHONPATH=path)
        said = " ".join(result.stderr.split())
        assert result.returncode == 2 and "install autoreward[ray]" in said and "Traceback" not in said, said
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "name, address, message",
    [("dask", None, "--executor must be local or ray"), ("local", "10.0.0.1:6379", "give it with --executor ray")],
)
def test_bad_executor_flags_are_named(name, address, message):
    with pytest.raises(AutorewardError, match=message):
        connect_executor(name, address)


def test_a_ray_head_that_is_not_there_is_named_at_once():
    pytest.importorskip("ray", reason="the ray extra is not installed")
    started = time.monotonic()
    with pytest.raises(
        AutorewardError, match=f"cannot reach the Ray cluster's head at 127.0.0.1:{(port := _free_port())}"
    ):
        connect_executor("ray", f"127.0.0.1:{port}")
    assert time.monotonic() - started < 15


def test_a_folder_travels_as_its_files_and_folders_only(tmp_path):
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "training.json").write_text("{}")
    (source / "sub" / "curve.jsonl").write_text("1\n")
    (source / "passwd").symlink_to("/etc/passwd")  # a worker could leave a link to a file of its node
    target = tmp_path / "target"
    unpack_folder(pack_folder(source), target)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["sub", "sub/curve.jsonl", "training.json"]
    assert (target / "sub" / "curve.jsonl").read_text() == "1\n"


@pytest.mark.parametrize(
    "name, kind", [("../escaped", tarfile.REGTYPE), ("link", tarfile.SYMTYPE), ("/etc/escaped", tarfile.REGTYPE)]
)
def test_a_packed_folder_that_would_land_outside_or_hold_links_is_refused(tmp_path, name, kind):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo(name)
        member.type, member.linkname = kind, "/etc/passwd"
        archive.addfile(member, io.BytesIO(b""))
    with pytest.raises((AutorewardError, tarfile.TarError)):
        unpack_folder(buffer.getvalue(), tmp_path / "target")
    assert not (tmp_path / "escaped").exists() and not Path("/etc/escaped").exists()


class RecordingExecutor:
    """An executor that notes the kind of every job it is given and hands it on."""

    def __init__(self, inner):
        self.inner, self.kinds = inner, []

    def run(self, kind, payload, output_dir, limits, on_progress, jail):
        self.kinds.append(kind)
        return self.inner.run(kind, payload, output_dir, limits, on_progress, jail)

    def capacity(self):
        return self.inner.capacity()


def test_parallel_gpu_jobs_are_spread_over_the_machines_gpus(tmp_path, jail, monkeypatch):
    # GPUs named, not real: what is tested is which one each job's worker is told to use.
    executor = LocalExecutor(gpus=("0", "1"))
    code = "import os, time\ntime.sleep(1)\nresult = {'gpu': os.environ.get('CUDA_VISIBLE_DEVICES')}\n"
    on_gpu = dataclasses.replace(LIMITS, gpus=1)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(
            pool.map(lambda k: executor.run(PROBE, {"code": code}, tmp_path / f"job{k}", on_gpu, None, jail), range(2))
        )
    assert sorted(o.result["gpu"] for o in outcomes) == ["0", "1"]  # both ran at once, each on a GPU of its own
    assert executor.run(PROBE, {"code": code}, tmp_path / "cpu", LIMITS, None, jail).result["gpu"] is None
    assert executor._jobs_on == {"0": 0, "1": 0}  # every GPU given back
    # The machine's GPUs are those CUDA_VISIBLE_DEVICES names, where the user set it.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ("2", "5") and LocalExecutor().gpus == ("2", "5")


def test_training_goes_through_the_executor_it_is_given(hopper, tmp_path, jail):
    executor = RecordingExecutor(LocalExecutor())
    train(hopper, TINY, tmp_path, human_reward(hopper), runner=Runner.connect(executor, jail=jail))
    # The training, then its held-out evaluation and the scoring of its episodes, each a job of its own.
    assert executor.kinds == ["train", "evaluate", "returns"] and (tmp_path / "training.json").exists()


# --- a real Ray instance -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on this machine with two CPUs and one GPU, as `ray start --head` makes one; its address.

    The GPU is declared, not real (this machine has none): Ray schedules a task that asks for it and sets
    its CUDA_VISIBLE_DEVICES, which is what the orchestrator's side of a GPU training can be tested on.
    """
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    folder = tempfile.mkdtemp(prefix="ar-ray-", dir="/tmp")  # short: Ray's socket paths live under it
    port = _free_port()
    ray_command = Path(sys.executable).with_name("ray")
    command = [
        str(ray_command),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--num-gpus=1",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={folder}",
        f"--dashboard-agent-listen-port={_free_port()}",
        "--object-store-memory=100000000",
    ]
    # Ray's token authentication is off on both sides: a token left in ~/.ray/auth_token (Ray writes one when
    # any `ray.init()` starts a private instance) must not decide whether this test's head can be joined.
    environment = dict(os.environ, OPENAI_API_KEY=FAKE_KEY, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    auth_mode_before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    log = open(Path(folder) / "head.log", "wb")
    head = subprocess.Popen(
        command, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    said = (Path(folder) / "head.log").read_text()[-2000:]
                    raise AssertionError(f"the Ray head did not start (exit code {head.poll()}):\n{said}") from None
                time.sleep(0.5)
        yield address
    finally:
        ray.shutdown()
        head.terminate()  # `ray start --block` stops what it started
        try:
            head.wait(timeout=60)
        finally:
            try:
                os.killpg(head.pid, signal.SIGKILL)  # whatever of its process group is left
            except ProcessLookupError:
                pass
            head.wait()
        deadline = time.monotonic() + 30
        while processes_mentioning(folder) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert processes_mentioning(folder) == [], "Ray processes outlived the test's head"
        shutil.rmtree(folder, ignore_errors=True)
        if auth_mode_before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth_mode_before


@pytest.fixture(scope="module")
def on_ray(ray_head):
    return connect_executor("ray", ray_head)


@pytest.mark.slow
def test_a_training_sent_to_ray_comes_back_as_the_same_files_and_result_as_a_local_one(hopper, tmp_path, jail, on_ray):
    progress: list[dict] = []
    remote = train(
        hopper,
        TINY,
        tmp_path / "ray",
        human_reward(hopper),
        progress.append,
        runner=Runner.connect(on_ray, jail=jail),
    )
    local = train(hopper, TINY, tmp_path / "local", human_reward(hopper), None, runner=Runner.connect(jail=jail))

    names = lambda folder: sorted(p.name for p in folder.iterdir())  # noqa: E731
    assert names(tmp_path / "ray") == names(tmp_path / "local")
    assert {"learner", "evaluation", "scoring", "training.json"} <= set(names(tmp_path / "ray"))
    for folder in ("learner", "evaluation"):  # each worker's folder came back whole
        assert names(tmp_path / "ray" / folder) == names(tmp_path / "local" / folder)
    assert {"policy.zip", "vecnormalize.pkl", "curve.jsonl", "policy.npz"} <= set(names(tmp_path / "ray" / "learner"))
    assert {"transitions.npz", "policy.npz", "worker.log"} <= set(names(tmp_path / "ray" / "evaluation"))
    assert read_json(tmp_path / "ray" / "training.json", TrainingResult) == remote
    assert remote.evaluation == local.evaluation  # same seed, same policy, wherever it trained
    assert [p.step for p in remote.curve] == [p.step for p in local.curve]
    assert {d.get("stage") for d in progress} >= {"curve", "evaluating"}  # streamed back while it ran
    assert on_ray.capacity() == 2


@pytest.mark.slow
def test_the_worker_on_the_ray_side_is_jailed_like_a_local_one(tmp_path, jail, on_ray, ray_head, monkeypatch):
    if not jail.active:
        pytest.skip(f"no bubblewrap jail on this machine: {jail.reason}")
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    canary = Path.home() / f".autoreward-canary-{uuid.uuid4().hex}"
    canary.write_text(FAKE_KEY)
    outside = Path.home() / f".autoreward-pwned-{uuid.uuid4().hex}"
    host, port = ray_head.split(":")
    code = attempts(
        {
            "home file": f"open({str(canary)!r}).read()",
            "project": f"open({str(REPO / 'tests' / 'conftest.py')!r}).read()",
            "write outside": f"open({str(outside)!r}, 'w').write('x')",
            "ray head": f"import socket; socket.create_connection(({host!r}, {port}), timeout=3)",
        }
    )
    code += (
        "import os\nresult['key'] = os.environ.get('OPENAI_API_KEY')\n"
        "result['first process'] = 'OPENAI_API_KEY' in open('/proc/1/environ').read()\n"
        "result['processes below 100'] = max(int(p) for p in os.listdir('/proc') if p.isdigit()) < 100\n"
    )
    try:
        remote = on_ray.run(PROBE, {"code": code}, tmp_path / "ray", LIMITS, None, jail)
        local = LocalExecutor().run(PROBE, {"code": code}, tmp_path / "local", LIMITS, None, jail)
    finally:
        canary.unlink()
    assert remote.status == local.status == "ok", remote.message + remote.log_tail
    assert remote.result == local.result
    found = remote.result
    assert found["home file"] == found["project"] == "FileNotFoundError" and found["write outside"] != "ok"
    assert found["ray head"] != "ok"  # a jailed worker cannot reach Ray and run unjailed code through it
    assert found["key"] is None and found["first process"] is False and found["processes below 100"] is True
    assert not outside.exists()
    for path in (tmp_path / "ray").rglob("*"):
        assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_a_gpu_training_on_ray_asks_the_cluster_for_a_gpu_and_its_worker_is_told_which(hopper, tmp_path, jail, on_ray):
    # Ray gives the task the head's one (declared) GPU: the jailed worker sees CUDA_VISIBLE_DEVICES=0, and then
    # finds no CUDA there, as this machine has no GPU.
    on_gpu = dataclasses.replace(TINY, device="cuda")
    with pytest.raises(
        WorkerError, match=r"no CUDA device is visible to the training worker .*CUDA_VISIBLE_DEVICES=0\)"
    ):
        train(hopper, on_gpu, tmp_path / "gpu", human_reward(hopper), None, runner=Runner.connect(on_ray, jail=jail))
    # A job asking for more GPUs than the cluster has is refused at once, not left waiting for ever.
    outcome = on_ray.run(
        PROBE, {"code": "result = 'ran'"}, tmp_path / "two", dataclasses.replace(LIMITS, gpus=2), None, jail
    )
    assert outcome.status == "error" and "asks for 2 GPU(s) and the Ray cluster has 1" in outcome.message


@pytest.mark.slow
def test_a_hostile_reward_fails_on_ray_as_it_does_locally(cheetah, tmp_path, jail, on_ray):
    code = (REPO / "tests" / "hostile" / "aliased_numpy_ma.py").read_text()
    with pytest.raises(WorkerError, match="numpy.ma is not available to a reward program") as remote:
        train(cheetah, TINY, tmp_path / "ray", code, None, runner=Runner.connect(on_ray, jail=jail))
    with pytest.raises(WorkerError) as local:
        train(cheetah, TINY, tmp_path / "local", code, None, runner=Runner.connect(jail=jail))
    assert str(remote.value).splitlines()[0] == str(local.value).splitlines()[0]
    assert (tmp_path / "ray" / "learner" / "worker.log").exists()  # the log came back for the reader


@pytest.mark.slow
def test_a_training_killed_on_the_ray_side_is_a_worker_failure(hopper, tmp_path, jail, on_ray):
    with pytest.raises(WorkerError, match="wall-clock budget"):
        train(
            hopper,
            TrainingConfig(steps=10**7, n_envs=2, wall_seconds=3),
            tmp_path,
            human_reward(hopper),
            None,
            runner=Runner.connect(on_ray, jail=jail),
        )


def _jobs_running(executor, code: str, folder: Path, limits: WorkerLimits, jail):
    """Two probe jobs started on `executor` from threads; the pool and their futures."""
    pool = ThreadPoolExecutor(max_workers=2)
    return pool, [
        pool.submit(executor.run, PROBE, {"code": code}, folder / f"job{k}", limits, None, jail) for k in (0, 1)
    ]


def test_stopping_the_local_executor_kills_its_workers_and_refuses_new_jobs(tmp_path, jail):
    executor = LocalExecutor()
    pool, running = _jobs_running(executor, "import time\ntime.sleep(120)", tmp_path, LIMITS, jail)
    deadline = time.monotonic() + 60
    while len(processes_mentioning(str(tmp_path))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    executor.stop()
    outcomes = [future.result(timeout=10) for future in running]
    assert time.monotonic() - started < 5
    assert [o.status for o in outcomes] == ["interrupted", "interrupted"]
    assert processes_mentioning(str(tmp_path)) == []
    assert executor.run(PROBE, {"code": "result = 1"}, tmp_path / "later", LIMITS, None, jail).status == "interrupted"
    pool.shutdown()


@pytest.mark.slow
def test_stopping_the_ray_executor_cancels_its_tasks_and_their_workers_die(tmp_path, jail, on_ray):
    from autoreward.sandbox.ray_executor import RayExecutor

    executor = RayExecutor.connect("auto")  # the test's cluster, already joined; its own executor, to be stopped
    pool, running = _jobs_running(executor, "import time\ntime.sleep(120)", tmp_path, LIMITS, jail)
    on_node = lambda: [p for p in processes_mentioning("autoreward-ray-") if "job.json" in p]  # noqa: E731
    deadline = time.monotonic() + 120
    while len(on_node()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(on_node()) >= 2, "the two Ray tasks never started their workers"
    started = time.monotonic()
    executor.stop()
    outcomes = [future.result(timeout=20) for future in running]
    assert time.monotonic() - started < 10
    assert [o.status for o in outcomes] == ["interrupted", "interrupted"]
    deadline = time.monotonic() + 20
    while on_node() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert on_node() == []
    pool.shutdown()


@pytest.mark.slow
def test_a_design_run_on_ray_trains_and_prescreens_there_and_resumes_on_ray(tmp_path, monkeypatch, on_ray, ray_head):
    import autoreward
    from autoreward.config import LLMSettings, LoopConfig

    from .chat_server import ChatServer
    from .conftest import SHORT_TASK
    from .llm_persona import persona

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cheetah_back_short.toml").write_text(SHORT_TASK)
    task = find_task("cheetah_back_short", (tmp_path / "tasks",))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    loop = LoopConfig(
        rounds=2,
        candidates=2,
        repair_attempts=1,
        final_seeds=1,
        workers=2,
        budget=task.budget,
        executor="ray",
        ray_address=ray_head,
        prescreen=True,  # off by default
    )
    recording = RecordingExecutor(on_ray)
    with ChatServer(responder=persona) as server:
        settings = LLMSettings(model="test-model", base_url=server.url)
        store = autoreward.design(
            task, llm=settings, loop=loop, runs_dir=tmp_path / "runs", runner=autoreward.Runner.connect(recording)
        ).store

    # Every candidate's training, its pre-screen and the baselines went to Ray; checks stayed here.
    assert recording.kinds.count("train") == 5 and recording.kinds.count("score") == 1, recording.kinds
    assert "check" not in recording.kinds
    assert read_json(store.path / "final" / "final.json")["fitness_mean"] is not None
    for candidate in ("r1c0", "r1c1", "r2c0"):
        assert (
            (store.path / "round_1" if candidate.startswith("r1") else store.path / "round_2")
            .joinpath(candidate, "training", "evaluation", "policy.npz")
            .exists()
        ), candidate
    config = json.loads((store.path / "config.json").read_text())
    assert config["loop"]["executor"] == "ray" and config["loop"]["ray_address"] == ray_head
    for path in store.path.rglob("*"):
        assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), path

    # Resuming joins the run's executor again: here, without ray, it says so instead of training locally.
    blocker = tmp_path / "no_ray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('No module named ray')\n")
    result = _autoreward("run", "--resume", str(store.path), PYTHONPATH=os.pathsep.join([str(blocker), str(REPO)]))
    assert result.returncode == 2 and "install autoreward[ray]" in " ".join(result.stderr.split()), result.stderr


@pytest.mark.slow
def test_a_package_robot_trains_on_ray_its_package_shown_to_the_nodes_jail(tmp_path, jail, on_ray):
    import importlib.util

    from autoreward.task.files import load_task_file

    if importlib.util.find_spec("point_goal") is None:
        pytest.skip("examples/point_goal is not installed (scripts/setup.sh installs it)")
    task = load_task_file(REPO / "examples" / "point_goal" / "point_goal_reach.toml")
    reward = "import numpy as np\ndef compute_reward(state, action, next_state):\n    v = -np.abs(action[:, 0])\n    return v, {'v': v}\n"
    result = train(
        task,
        TrainingConfig(steps=256, n_envs=2, eval_episodes=1, video=False),
        tmp_path,
        reward,
        None,
        runner=Runner.connect(on_ray, jail=jail),
    )
    assert result.evaluation.fitness_mean is not None and result.task_id == "point_goal_reach"
