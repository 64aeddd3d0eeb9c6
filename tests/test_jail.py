"""The jail holds on its own: code that got past every rule still cannot reach files, network or secrets.

These run plain Python in a jailed worker through the test-only `probe` job
(no static rules, no restricted loader), so whatever they show is the jail's
and the limits' doing alone.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from autoreward.config import WorkerLimits
from autoreward.errors import AutorewardError, JailUnavailableError, JailWarning
from autoreward.records import CheckCategory
from autoreward.resources import PACKAGE_DIR
from autoreward.sandbox import jail as jail_module
from autoreward.sandbox.jail import USER_VARIABLE, Credentials, Jail, folder_usage, gpu_devices
from autoreward.sandbox.supervisor import resource_limits, run_worker

from .conftest import PROBE, REPO, attempts, human_reward, processes_mentioning, worker_pids

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


# --- the worker's user: not root, even for a root orchestrator -----------------------------------

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only a root orchestrator's workers change user")


def test_a_jailed_worker_is_not_root_and_owns_only_what_it_writes(active_jail, tmp_path):
    """Inside the jail and seen from the host: the worker user's uid and gid (a root orchestrator's: not root,
    no groups); the orchestrator reads and removes what it wrote."""
    expected = active_jail.credentials
    if os.geteuid() == 0:
        assert expected is not None and expected.uid != 0 and expected.gid != 0
    uid, gid = (expected.uid, expected.gid) if expected else (os.getuid(), os.getgid())
    code = (
        "import os, time\n"
        "os.makedirs('made/deeper')\n"
        "open('made/deeper/note.txt', 'w').write('written in the jail')\n"
        "deadline = time.monotonic() + 60\n"
        "while not os.path.exists('go') and time.monotonic() < deadline:  # the test looks at it from the host\n"
        "    time.sleep(0.05)\n"
        "result = {'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(), 'groups': os.getgroups()}\n"
    )
    finished = {}
    runner = threading.Thread(target=lambda: finished.update(outcome=probe(code, tmp_path, active_jail)))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not worker_pids(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        host_ids = {pid: _ids(pid) for pid in worker_pids(tmp_path)}
    finally:
        (tmp_path / "go").touch()
        runner.join()
    outcome = finished["outcome"]
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert (outcome.result["uid"], outcome.result["euid"], outcome.result["gid"]) == (uid, uid, gid)
    if expected is not None:
        assert outcome.result["groups"] == []  # root's supplementary groups are dropped too
    assert host_ids and all(ids == (uid, gid) for ids in host_ids.values()), host_ids  # real uid, not a mapping
    note = tmp_path / "made" / "deeper" / "note.txt"
    assert tmp_path.stat().st_uid == note.stat().st_uid == (tmp_path / "made").stat().st_uid == uid
    assert note.read_text() == "written in the jail"
    shutil.rmtree(tmp_path / "made")
    assert not (tmp_path / "made").exists()


def _ids(pid: int) -> tuple[int, int]:
    """The real uid and gid of process `pid`, as the host sees them."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["Uid"].split()[0]), int(status["Gid"].split()[0])


@as_root
def test_a_root_only_file_inside_a_shown_folder_stays_unreadable(active_jail, tmp_path):
    shown = tmp_path / "robot"
    shown.mkdir()
    (shown / "public.xml").write_text("<mujoco/>")
    secret = shown / "secret.key"
    secret.write_text(FAKE_KEY)
    secret.chmod(0o600)
    code = attempts(
        {"public": f"open({str(shown / 'public.xml')!r}).read()", "secret": f"open({str(secret)!r}).read()"}
    )
    code += f"import os\nresult['listing'] = sorted(os.listdir({str(shown)!r}))\n"
    outcome = probe(code, tmp_path / "output", active_jail.showing([shown]))
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert outcome.result == {"public": "ok", "secret": "PermissionError", "listing": ["public.xml", "secret.key"]}
    assert FAKE_KEY not in json.dumps(outcome.result)


@as_root
def test_a_shown_path_the_worker_user_cannot_read_is_refused_in_one_sentence(active_jail, tmp_path, monkeypatch):
    hidden = tmp_path / "my_robot"
    hidden.mkdir()
    hidden.chmod(0o700)
    who = str(active_jail.credentials)
    with pytest.raises(AutorewardError) as refused:
        active_jail.showing([hidden])
    sentence = str(refused.value)
    assert sentence.startswith(f"the jail's worker user {who} cannot read {hidden} (mode 0700, owner root): ")
    assert f"chmod -R o+rX {hidden}" in sentence and f"{USER_VARIABLE}=NAME or UID[:GID]" in sentence
    assert "\n" not in sentence
    # Where Jail.detect can see it (a path every worker needs, such as Python's prefix), the jail cannot start.
    needed = jail_module.python_paths()
    monkeypatch.setattr(jail_module, "python_paths", lambda: (*needed, str(hidden)))
    with pytest.raises(JailUnavailableError, match=re.escape(f"the jail cannot run: {sentence}")):
        with pytest.warns(JailWarning, match=re.escape(f"WITHOUT the bubblewrap jail, because {sentence}")):
            Jail.from_setting("require")
    hidden.chmod(0o755)
    assert str(hidden) in active_jail.showing([hidden]).read_only


@as_root
def test_the_setting_chooses_the_worker_user(active_jail, tmp_path):
    jail = Jail.from_setting("require", user="4321:4322").showing([REPO / "tests" / "jobs"])
    assert jail.credentials is not None and (jail.credentials.uid, jail.credentials.gid) == (4321, 4322)
    outcome = probe("import os\nresult = [os.getuid(), os.getgid()]\nopen('mine', 'w')\n", tmp_path, jail)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert outcome.result == [4321, 4322] and (tmp_path / "mine").stat().st_uid == 4321
    assert Jail.from_setting("require", user="root").credentials is None  # asked for: root workers, as before


def test_a_jailed_worker_dies_with_its_orchestrator(active_jail, tmp_path):
    """Killed with SIGKILL, the orchestrator cleans nothing up: the jail's processes go with it all the same."""
    orchestrator = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from pathlib import Path\n"
            "from autoreward.config import WorkerLimits\n"
            "from autoreward.sandbox.jail import Jail\n"
            "from autoreward.sandbox.supervisor import run_worker\n"
            f"jail = Jail.from_setting('require').showing([{str(REPO / 'tests' / 'jobs')!r}])\n"
            f"run_worker({PROBE!r}, {{'code': 'import time; time.sleep(120)'}}, Path(sys.argv[1]),"
            " WorkerLimits(wall_seconds=200, idle_seconds=200), jail=jail)\n",
            str(tmp_path),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while not worker_pids(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker_pids(tmp_path), "the worker never started"
    finally:
        orchestrator.kill()
        orchestrator.wait()
    deadline = time.monotonic() + 10
    while processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(tmp_path)) == []


def test_the_worker_user_setting_is_a_name_or_numbers():
    nobody = Credentials.parse(None)
    assert nobody is not None and nobody.name == "nobody" and nobody.uid != 0
    assert Credentials.parse("nobody") == nobody
    assert (Credentials.parse("4321:4322").uid, Credentials.parse("4321:4322").gid) == (4321, 4322)
    assert Credentials.parse("0") is None and Credentials.parse("root") is None
    with pytest.raises(AutorewardError, match=f"{USER_VARIABLE}=no-such-user-here names no user of this machine"):
        Credentials.parse("no-such-user-here")
    with pytest.raises(AutorewardError, match="must be a number"):
        Credentials.parse("4321:staff")


def test_a_fork_loop_is_stopped_by_the_process_limit(active_jail, tmp_path):
    # RLIMIT_NPROC holds for the worker user (for root it never did). Children sleep until the jail ends them.
    limits = replace(LIMITS, processes=32)
    code = (
        "import os, resource, time\n"
        "children, stopped = 0, None\n"
        "try:\n"
        "    while children < 2000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as error:\n"
        "    stopped = type(error).__name__\n"
        "result = {'children': children, 'stopped': stopped, 'limit': resource.getrlimit(resource.RLIMIT_NPROC)[0]}\n"
    )
    outcome = probe(code, tmp_path, active_jail, limits)
    assert outcome.status == "ok", outcome.message + outcome.log_tail
    assert outcome.result["stopped"] == "BlockingIOError"  # EAGAIN: fork refused
    assert outcome.result["children"] < outcome.result["limit"] < 2000


def test_a_worker_that_writes_past_its_folder_bound_is_killed(jail, tmp_path):
    # 1 MB every 20 ms, 400 MB if nobody stopped it; the supervisor looks once a second.
    code = (
        "import time\n"
        "for i in range(400):\n"
        "    open(f'part-{i}', 'wb').write(b'x' * 2**20)\n"
        "    time.sleep(0.02)\n"
        "open('done', 'w')\n"
    )
    outcome = probe(code, tmp_path, jail, replace(LIMITS, folder_bytes=8 * 2**20))
    assert (outcome.status, outcome.message) == (
        "error",
        "the worker wrote more than 8 MB into its folder and was killed",
    )
    assert not (tmp_path / "done").exists() and folder_usage(tmp_path)[0] < 200 * 2**20


def test_a_worker_that_fills_its_folder_with_empty_files_is_killed(jail, tmp_path):
    # Empty files take no blocks, but each one is an inode, and its supervisor walks them all every second.
    code = "import os, time\nfor i in range(50_000):\n    open(f'{i}', 'w').close()\ntime.sleep(3)\nresult = 'done'\n"
    outcome = probe(code, tmp_path, jail)
    assert (outcome.status, outcome.message) == (
        "error",
        f"the worker made more than {jail_module.FOLDER_ENTRIES} files and folders in its folder and was killed",
    )


def test_what_was_in_the_folder_before_the_worker_does_not_count_against_its_bound(jail, tmp_path):
    (tmp_path / "checkpoint.bin").write_bytes(os.urandom(12 * 2**20))  # a slice's checkpoint, copied in by us
    code = "import time\nopen('policy.bin', 'wb').write(b'x' * 2**20)\ntime.sleep(2.5)\nresult = 'done'\n"
    outcome = probe(code, tmp_path, jail, replace(LIMITS, folder_bytes=8 * 2**20))
    assert outcome.status == "ok" and outcome.result == "done", outcome.message


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
    assert outcome.status == "worker_protocol" and "a line that is not JSON" in outcome.message


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
