"""The jail holds on its own: code that got past every rule still cannot reach files, network or secrets.

These run plain Python in a jailed worker through the test-only `probe` job
(no static rules, no restricted loader), so whatever they show is the jail's
and the limits' doing alone.
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from autoreward.config import WorkerLimits
from autoreward.errors import AutorewardError, JailUnavailableError, JailWarning
from autoreward.records import CheckCategory
from autoreward.resources import PACKAGE_DIR
from autoreward.sandbox.jail import Jail, gpu_devices
from autoreward.sandbox.supervisor import resource_limits, run_worker

from .conftest import PROBE, REPO, attempts, human_reward, processes_mentioning

FAKE_KEY = "sk-autoreward-test-" + "7f3a" * 8
LIMITS = WorkerLimits(wall_seconds=60, idle_seconds=60)


def probe(code: str, output_dir: Path, jail: Jail, limits: WorkerLimits = LIMITS):
    return run_worker(PROBE, {"code": code}, output_dir, limits, jail=jail)


def test_the_jail_hides_your_home_your_project_and_secret_system_files(active_jail, tmp_path):
    canary = Path.home() / f".autoreward-canary-{uuid.uuid4().hex}"
    canary.write_text(FAKE_KEY)
    try:
        code = attempts(
            {
                "home file": f"open({str(canary)!r}).read()",
                "project tests": f"open({str(REPO / 'tests' / 'conftest.py')!r}).read()",
                "shadow": "open('/etc/shadow').read()",
                "work": f"import os; os.listdir({str(REPO.parent)!r})",
            }
        )
        code += f"import os\nresult['home listing'] = os.listdir({str(Path.home())!r})\n"
        outcome = probe(code, tmp_path, active_jail)
    finally:
        canary.unlink()
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    found = outcome.result
    assert found["home file"] == found["project tests"] == found["shadow"] == "FileNotFoundError"
    assert canary.name not in found["home listing"]
    assert FAKE_KEY not in json.dumps(found)


def test_a_device_passed_to_the_jail_can_be_opened_and_no_other(active_jail, tmp_path):
    # The stand-in for a GPU's /dev/nvidia* nodes: a character device of this machine that bwrap's /dev lacks.
    spare = [d for d in ("/dev/fuse", "/dev/kvm", "/dev/loop-control", "/dev/kmsg") if Path(d).is_char_device()]
    if not spare:
        pytest.skip("this machine has none of the spare character devices this test opens")
    passed, withheld = spare[0], spare[1:]
    code = attempts({path: f"import os; os.close(os.open({path!r}, os.O_RDONLY))" for path in spare})
    code += f"import os\nresult['is a device'] = os.path.exists({passed!r}) and not os.path.isdir({passed!r})\n"
    outcome = probe(code, tmp_path, active_jail.with_devices([passed, "/dev/no-such-device"]))
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert outcome.result["is a device"] is True
    assert outcome.result[passed] in ("ok", "PermissionError")  # there and a device; root may still be refused by it
    assert all(outcome.result[path] == "FileNotFoundError" for path in withheld)
    assert active_jail.with_devices(["/dev/no-such-device"]).devices == ()


def test_a_gpu_jail_also_shows_sys_read_only_which_a_plain_jail_hides(active_jail, tmp_path):
    # CUDA's driver reads /sys as it starts. Whatever GPUs this machine has are passed too (none here).
    code = attempts({"read": "import os; os.listdir('/sys/devices')", "write": "open('/sys/autoreward', 'w')"})
    plain = probe(code, tmp_path / "plain", active_jail)
    gpu = probe(code, tmp_path / "gpu", active_jail.with_gpus())
    assert plain.status == gpu.status == "ok", plain.message + gpu.message
    assert plain.result["read"] == "FileNotFoundError"
    assert gpu.result["read"] == "ok" and gpu.result["write"] != "ok"
    assert active_jail.with_gpus().devices == gpu_devices()


def test_the_jail_lets_a_worker_write_only_its_output_folder(active_jail, tmp_path):
    output, outside = tmp_path / "output", tmp_path / "outside"
    outside.mkdir()
    marker = f"autoreward-jail-{uuid.uuid4().hex}"
    targets = {
        "output": output / marker,
        "outside": outside / marker,
        "package": PACKAGE_DIR / marker,
        "home": Path.home() / marker,
        "etc": Path("/etc") / marker,
        "tmp": Path("/tmp") / marker,
    }
    outcome = probe(attempts({k: f"open({str(v)!r}, 'w').write('x')" for k, v in targets.items()}), output, active_jail)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert outcome.result["output"] == "ok" and (output / marker).exists()
    assert outcome.result["tmp"] == "ok"  # a private /tmp, gone with the worker
    for name in ("outside", "package", "home", "etc"):
        assert outcome.result[name] in ("FileNotFoundError", "OSError", "PermissionError"), name
    for name in ("outside", "package", "home", "etc", "tmp"):
        assert not targets[name].exists(), f"the worker wrote {targets[name]}"


def test_the_jail_has_no_network(active_jail, tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0)
    port = server.getsockname()[1]
    try:
        code = attempts(
            {
                "loopback": f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)",
                "internet": "import socket; socket.create_connection(('1.1.1.1', 443), timeout=3)",
                "dns": "import socket; socket.getaddrinfo('pypi.org', 443)",
            }
        )
        outcome = probe(code, tmp_path, active_jail)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked
    finally:
        server.close()
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert all(result != "ok" for result in outcome.result.values()), outcome.result


def test_the_orchestrators_secrets_and_processes_are_out_of_sight(active_jail, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    code = (
        "import os\n"
        "result = {'environ': dict(os.environ), 'pids': [int(p) for p in os.listdir('/proc') if p.isdigit()],\n"
        "          'first process': open('/proc/1/environ').read()}\n"
    )
    outcome = probe(code, tmp_path, active_jail)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert FAKE_KEY not in json.dumps(outcome.result)
    assert max(outcome.result["pids"]) < 100  # its own PID namespace: the orchestrator is not there
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), path


def test_the_jail_takes_every_capability_and_sets_the_limits(active_jail, tmp_path):
    code = (
        "import resource\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())\n"
        "result = {k: status[k].strip() for k in ('CapEff', 'CapBnd', 'NoNewPrivs')}\n"
        "result['limits'] = {n: resource.getrlimit(getattr(resource, n)) for n in\n"
        "                    ('RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CPU', 'RLIMIT_CORE')}\n"
    )
    outcome = probe(code, tmp_path, active_jail)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert int(outcome.result["CapEff"], 16) == 0 and int(outcome.result["CapBnd"], 16) == 0
    assert outcome.result["NoNewPrivs"] == "1"
    chosen = resource_limits(LIMITS)
    for name, value in outcome.result["limits"].items():
        assert tuple(value) == chosen[name], name


def test_processes_a_worker_leaves_behind_die_with_it(active_jail, tmp_path):
    marker = f"autoreward-orphan-{uuid.uuid4().hex}"
    code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {marker}'],\n"
        "                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
        "result = 'left a detached child behind'\n"
    )
    outcome = probe(code, tmp_path, active_jail)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    deadline = time.monotonic() + 10
    while processes_mentioning(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(marker) == []


# --- limits and crashes: hold with or without the jail --------------------------------------------


def test_a_segfault_is_named(jail, tmp_path):
    outcome = probe("import ctypes\nctypes.string_at(0)\n", tmp_path, jail)
    assert outcome.status == "killed"
    assert "SIGSEGV" in outcome.message and "segmentation fault" in outcome.message
    assert "Segmentation fault" in outcome.log_tail  # faulthandler's traceback


def test_the_cpu_time_limit_stops_a_busy_worker(jail, tmp_path):
    outcome = probe(
        "while True:\n    pass\n", tmp_path, jail, WorkerLimits(wall_seconds=60, idle_seconds=60, cpu_seconds=1)
    )
    assert outcome.status == "killed" and "CPU-time limit" in outcome.message and "SIGXCPU" in outcome.message


def test_the_file_size_limit_stops_a_large_write(jail, tmp_path):
    code = "open('big', 'wb').write(b'0' * (2 << 20))\n"
    outcome = probe(code, tmp_path, jail, WorkerLimits(wall_seconds=60, idle_seconds=60, file_bytes=1 << 20))
    assert outcome.status == "error" and "File too large" in outcome.message
    assert (tmp_path / "big").stat().st_size <= 1 << 20


def test_the_memory_limit_is_reported_as_running_out_of_memory(jail, tmp_path):
    limits = WorkerLimits(wall_seconds=60, idle_seconds=60, memory_bytes=1024**3)
    outcome = probe("hoard = bytearray(2 * 1024**3)\n", tmp_path, jail, limits)
    assert outcome.status == "error" and "ran out of memory (its limit is 1 GiB" in outcome.message


def test_the_process_limit_is_set_above_what_the_user_runs(tmp_path):
    soft, hard = resource_limits(WorkerLimits(processes=64))["RLIMIT_NPROC"]
    assert soft == hard and soft >= 64 + 1  # this test's own process counts too


# --- choosing the jail ----------------------------------------------------------------------------


def test_without_bubblewrap_the_jail_warns_and_workers_still_run(tmp_path):
    with pytest.warns(JailWarning, match="WITHOUT the bubblewrap jail.*not installed"):
        jail = Jail.detect(executable="no-such-bwrap-here")
    assert not jail.active and "apt-get install bubblewrap" in jail.reason
    outcome = probe("result = 6 * 7\n", tmp_path, jail)
    assert outcome.status == "ok" and outcome.result == 42


def test_a_refused_bubblewrap_is_reported_with_its_own_words(tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.warns(JailWarning):
        jail = Jail.detect(executable=str(fake))
    assert not jail.active and "No permissions to create new namespace" in jail.reason


def test_the_setting_turns_the_jail_off_or_requires_it():
    with pytest.warns(JailWarning, match="AUTOREWARD_JAIL=off"):
        assert not Jail.from_setting("off").active
    with pytest.raises(AutorewardError, match="on, off or require"):
        Jail.from_setting("maybe")
    with pytest.raises(JailUnavailableError, match="require.*not installed"), pytest.warns(JailWarning):
        Jail.from_setting("require", executable="no-such-bwrap-here")


def test_an_unjailed_worker_whose_parent_is_gone_exits_at_once(tmp_path):
    """Outside the jail the worker checks its parent itself (inside, bwrap's --die-with-parent does)."""
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(PACKAGE_DIR.parent), "AUTOREWARD_PARENT_PID": "1"}
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"kind": PROBE, "payload": {"code": "open('ran', 'w')"}, "rlimits": {}}))
    read_fd, write_fd = os.pipe()
    environment["AUTOREWARD_MESSAGE_FD"] = str(write_fd)
    code = subprocess.run(
        [sys.executable, "-m", "autoreward.sandbox.worker", str(job)],
        cwd=tmp_path,
        env=environment,
        pass_fds=(write_fd,),
    ).returncode
    os.close(read_fd), os.close(write_fd)
    assert code == 1 and not (tmp_path / "ran").exists()


def test_garbage_on_the_message_pipe_is_an_error_not_a_crash_of_the_orchestrator(jail, tmp_path):
    code = (
        "import os\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        if os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n"
        "            os.write(fd, b'{not json\\n')\n"
        "    except OSError:\n"
        "        pass\n"
    )
    outcome = probe(code, tmp_path, jail)
    assert outcome.status == "error" and "malformed message" in outcome.message


@pytest.mark.parametrize("raised", ["SystemExit(0)", "KeyboardInterrupt()"])
def test_a_job_that_raises_system_exit_is_an_error_not_a_success(raised, jail, tmp_path):
    outcome = probe(f"raise {raised}\n", tmp_path, jail)
    assert outcome.status == "error" and raised.split("(")[0] in outcome.message


def test_a_task_whose_model_file_lives_elsewhere_is_shown_to_its_jailed_worker(active_jail, cheetah, tmp_path):
    import dataclasses
    import shutil

    import gymnasium

    from autoreward.config import CheckOptions
    from autoreward.contract.checker import check_program

    from .conftest import human_reward

    model = tmp_path / "models" / "my_cheetah.xml"
    model.parent.mkdir()
    shutil.copy(Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / "half_cheetah.xml", model)
    task = dataclasses.replace(cheetah, env_kwargs={**cheetah.env_kwargs, "xml_file": str(model)})
    options = CheckOptions(transitions=16, batch_size=16, rows_compared=2)
    result = check_program(task, human_reward(cheetah), tmp_path / "check", options, jail=active_jail)
    assert result.ok, result.message


def test_a_worker_that_cannot_start_says_why_in_its_own_category(active_jail, tmp_path, cheetah):
    # A jail that does not show the package folder (as an editable install's was): `python -m
    # autoreward.sandbox.worker` cannot even be imported there.
    hidden = replace(active_jail, read_only=tuple(p for p in active_jail.read_only if Path(p) != PACKAGE_DIR))
    if not any(Path(p) == PACKAGE_DIR for p in active_jail.read_only):
        pytest.skip("the package folder is shown inside a larger folder here; it cannot be hidden alone")
    outcome = run_worker(PROBE, {"code": "result = 1"}, tmp_path / "probe", LIMITS, jail=hidden)
    assert outcome.status == "setup_failed"
    assert outcome.message.startswith("the worker could not start: ")
    assert "ModuleNotFoundError: No module named 'autoreward" in outcome.message
    from autoreward.contract.checker import check_program

    result = check_program(cheetah, human_reward(cheetah), tmp_path / "check", jail=hidden)
    assert result.category is CheckCategory.WORKER_SETUP
    assert "through no fault of the program" in result.message and "No module named 'autoreward" in result.message
