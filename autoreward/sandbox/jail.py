"""The bubblewrap jail around worker processes.

`Jail.detect()` finds `bwrap` and runs it once on a trivial command with the
flags a worker gets; the answer is a `Jail` value that the caller builds once
and passes to `run_worker`. `Jail.wrap` turns a worker's command line into a
jailed one:

- a root made of nothing but what the worker needs, read-only: the system
  libraries (`/usr` and its links), a few files of `/etc` (the loader's cache,
  users and groups, time zone), Python's prefix, the `autoreward` package and its shipped `envs/`.
  Your home, other projects, `/etc`'s other files (credentials such as
  `/etc/shadow` or a `pip.conf` with a token) are absent, not just read-only;
- the worker's own output folder bound read-write at its own path: the only
  place it can write that outlives it. `/tmp` and `/dev/shm` are private
  size-limited memory folders that vanish with it;
- new network (only a loopback of its own), PID, IPC, UTS, user and
  cgroup namespaces; no capabilities, no nested user namespaces; a new
  session (no terminal to inject keystrokes into); killed when its parent
  dies.

Workers do not run as root. An orchestrator that is not root runs its
workers as itself, in one bubblewrap. A root orchestrator's workers run
as an unprivileged user (`Credentials`: `nobody`, or whom
AUTOREWARD_WORKER_USER names), for real: a bubblewrap run by root builds
the jail's view, `setpriv` (util-linux) drops to that user's uid and gid
on the host with no supplementary groups and no capabilities, and an
unprivileged bubblewrap inside it makes the jail above from that view.
Root builds the view so that a shown folder needs no way to it that the
worker user could walk on the host (pyenv's Python under a 0700 `/root`,
pytest's 0700 temporary folders). The worker user owns its output folder
(`Jail.prepare` chowns it, only it), reads what the jail shows only as
the files' modes allow (a root-only file stays unreadable), and is held
by RLIMIT_NPROC, which the kernel never applies to root. A shown path it
cannot read is refused in one sentence naming the path and the fix
(`Jail.detect` for the paths every worker needs, `Jail.showing` for the
rest). An unjailed worker keeps the orchestrator's user, root included:
outside the jail, every folder on the way to Python, the package and its
output folder would have to be open to the worker user, and pyenv's
`/root` is not.

What it does not do: every worker runs as the same user, and so does
whatever else of the machine runs as it (for `nobody`, a daemon or two:
from outside the jail such a process can read a worker's /proc files and
signal it; name a user of its own with AUTOREWARD_WORKER_USER). Its output
folder is bounded in all (`WorkerLimits.folder_bytes`) only by its
supervisor, which measures it once a second (`FolderWatch`): a worker can
write a second's worth past the bound before it is killed, and a file it
deleted but holds open is not counted. It installs no seccomp filter, so
the kernel's whole system-call surface remains. Where `bwrap` is missing
or refused, `Jail.detect` warns once, loudly, and the worker runs
unjailed with every other layer (static rules, restricted loader, clean
environment, resource limits, supervisor) still in force.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from autoreward.errors import AutorewardError, JailUnavailableError, JailWarning
from autoreward.resources import PACKAGE_DIR, data_dir

# Read at the command-line edge only: on (default: jail where bwrap works), off, or require.
SETTING_VARIABLE = "AUTOREWARD_JAIL"
# Read at the command-line edge only: whom a root orchestrator's jailed workers run as, a user name or UID[:GID].
USER_VARIABLE = "AUTOREWARD_WORKER_USER"
DEFAULT_USER = "nobody"
NOBODY_ID = 65534  # nobody's uid and gid where /etc/passwd has no nobody
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The files of /etc that Python, numpy, torch and MuJoCo read; the rest of /etc stays out.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/alternatives",
    "/etc/mime.types",
)
NAMESPACES = (
    "--unshare-user",
    "--disable-userns",
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--hostname",
    "autoreward-worker",
    "--unshare-cgroup-try",
)
MEMORY_FOLDER_BYTES = 256 * 1024**2
# What the root bubblewrap that builds the view leaves its command: only what `setpriv` needs to drop them all.
VIEW_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
# A worker's folder holding more entries than this is killed too: walking it each second would stall its supervisor.
FOLDER_ENTRIES = 10_000  # a training's folder holds about twenty


def gpu_devices() -> tuple[str, ...]:
    """The NVIDIA device nodes of this machine (/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm, ...): what CUDA opens.

    /dev/nvidia-caps/* are the capabilities a MIG slice of a GPU is opened with.
    """
    found = [*Path("/dev").glob("nvidia*"), *Path("/dev/nvidia-caps").glob("*")]
    return tuple(sorted(str(p) for p in found if not p.is_dir()))


def python_paths() -> tuple[str, ...]:
    """What a worker's Python needs to see: its prefixes, the autoreward package and its shipped tasks.

    The shipped `envs/` (inside the package when installed, beside it in a checkout) holds the reward
    programs the batched simulators use as each environment's own reward.
    """
    paths = [
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        str(PACKAGE_DIR),
        str(data_dir("envs")),
    ]
    return _outermost(p for p in paths if os.path.exists(p))


def _outermost(paths) -> tuple[str, ...]:
    """The paths, without duplicates or any path inside another one of them."""
    kept: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths}, key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return tuple(kept)


@dataclass(frozen=True)
class Credentials:
    """The unprivileged user a root orchestrator's jailed workers run as: its uid and gid, no other group."""

    uid: int
    gid: int
    name: str
    setpriv: str = "setpriv"  # util-linux's tool that becomes them; `Jail.detect` finds its path

    @classmethod
    def parse(cls, value: str | None) -> "Credentials | None":
        """The user AUTOREWARD_WORKER_USER's value names: a name or UID[:GID] (nobody when unset); None for root.

        A GID left out is the user's own group in /etc/passwd, or the UID's number where it has none. Root
        (0) is allowed and means workers stay root, as before there were credentials: not advised.
        """
        text = (value or DEFAULT_USER).strip()
        uid_text, _, gid_text = text.partition(":")
        try:
            if uid_text.isdigit():
                uid = int(uid_text)
                try:
                    known = pwd.getpwuid(uid)
                    name, gid = known.pw_name, known.pw_gid
                except KeyError:
                    name, gid = uid_text, uid
            else:
                known = pwd.getpwnam(uid_text)
                uid, gid, name = known.pw_uid, known.pw_gid, known.pw_name
        except KeyError:
            if text != DEFAULT_USER:
                raise AutorewardError(
                    f"{USER_VARIABLE}={value} names no user of this machine: give a user name, or UID[:GID]"
                ) from None
            uid, gid, name = NOBODY_ID, NOBODY_ID, DEFAULT_USER
        if gid_text:
            if not gid_text.isdigit():
                raise AutorewardError(f"{USER_VARIABLE}={value}: the group after ':' must be a number (UID:GID)")
            gid = int(gid_text)
        return None if uid == 0 else cls(uid=uid, gid=gid, name=name)

    def __str__(self) -> str:
        return f"{self.name} (uid {self.uid}, gid {self.gid})"

    def drop(self) -> list[str]:
        """The command prefix that runs the rest of a command line as this user, with nothing of root left."""
        return [
            self.setpriv,
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def cannot_read(self, path: str) -> str | None:
        """Why this user cannot read `path` itself (a folder: list and enter it), by its modes; None if it can.

        Only `path`, not the folders above it: the root bubblewrap shows it at its place. ACLs are not read.
        """
        info = os.stat(path)
        folder = stat.S_ISDIR(info.st_mode)
        shift = 6 if info.st_uid == self.uid else 3 if info.st_gid == self.gid else 0
        needed = 0o5 if folder else 0o4
        if (info.st_mode >> shift) & needed == needed:
            return None
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        return (
            f"the jail's worker user {self} cannot read {path} (mode {stat.S_IMODE(info.st_mode):04o}, owner "
            f"{owner}): make it readable ({'chmod -R o+rX' if folder else 'chmod o+r'} {path}), or run workers "
            f"as a user who can read it ({USER_VARIABLE}=NAME or UID[:GID])"
        )


@dataclass(frozen=True)
class Jail:
    """How worker processes are confined: build once (`detect`, `disabled`, `from_setting`), pass to `run_worker`.

    `bwrap` is the path of a bubblewrap that works here, or None when workers
    run unjailed; `reason` then says why. `credentials` is the user a root
    orchestrator's jailed workers become; None: they run as the orchestrator.
    """

    bwrap: str | None
    reason: str = ""
    read_only: tuple[str, ...] = ()
    memory_folder_bytes: int = MEMORY_FOLDER_BYTES
    devices: tuple[str, ...] = ()  # device nodes of this machine a worker may use (a GPU's), beside /dev's basics
    # Import roots a worker gets on its PYTHONPATH beside autoreward's: a user's package (`module:id` environments).
    python_paths: tuple[str, ...] = ()
    credentials: Credentials | None = None

    @property
    def active(self) -> bool:
        return self.bwrap is not None

    @property
    def worker_uid(self) -> int:
        """The host uid a worker runs as (whose threads its RLIMIT_NPROC counts)."""
        return self.credentials.uid if self.credentials is not None else os.getuid()

    @classmethod
    def detect(cls, executable: str = "bwrap", user: str | None = None) -> "Jail":
        """Probe bubblewrap by running Python through the worker's own flags, as the worker's own user; warn
        once if it fails. `user`: AUTOREWARD_WORKER_USER's value, used only when this process is root."""
        found = shutil.which(executable)
        if found is None:
            return cls.disabled(f"`{executable}` is not installed (Debian: apt-get install bubblewrap)")
        credentials = Credentials.parse(user) if os.geteuid() == 0 else None
        if credentials is not None:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                return cls.disabled(
                    f"`setpriv` is not installed, and a root orchestrator's workers need it to run as {credentials} "
                    "(Debian: apt-get install util-linux)"
                )
            credentials = replace(credentials, setpriv=setpriv)
        jail = cls(bwrap=found, read_only=python_paths(), credentials=credentials)
        unreadable = jail._unreadable(jail.read_only)
        if unreadable is not None:
            return cls.disabled(unreadable)
        with tempfile.TemporaryDirectory(prefix="autoreward-jail-probe-") as folder:
            jail.prepare(Path(folder))
            try:
                probe = subprocess.run(
                    jail.wrap([sys.executable, "-c", "import autoreward"], Path(folder)),
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PACKAGE_DIR.parent)},
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=60,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                return cls.disabled(f"`{found}` could not run: {error}")
        if probe.returncode != 0:
            said = probe.stderr.decode(errors="replace").strip().splitlines()
            return cls.disabled(
                f"`{found}` refused to start a jail: {said[-1] if said else f'exit code {probe.returncode}'}"
            )
        return jail

    @classmethod
    def disabled(cls, reason: str) -> "Jail":
        """No jail, with a loud warning that says why and what still holds."""
        warnings.warn(
            f"autoreward: reward programs will run WITHOUT the bubblewrap jail, because {reason}. "
            "They still pass the static rules and run in separate worker processes with a clean environment, "
            "resource limits and a supervisor, but a program that got past those could read your files and "
            "reach the network. Install bubblewrap (scripts/setup.sh does) to close that gap.",
            JailWarning,
            stacklevel=3,
        )
        return cls(bwrap=None, reason=reason)

    @classmethod
    def from_setting(cls, value: str | None, executable: str = "bwrap", user: str | None = None) -> "Jail":
        """The jail asked for by AUTOREWARD_JAIL's value: on (or unset), off, or require; `user` is
        AUTOREWARD_WORKER_USER's value (whom a root orchestrator's workers run as; nobody when unset)."""
        setting = (value or "on").strip().lower()
        if setting in ("off", "0", "no", "false"):
            return cls.disabled(f"{SETTING_VARIABLE}={value} turned it off")
        if setting not in ("on", "1", "yes", "true", "require"):
            raise AutorewardError(f"{SETTING_VARIABLE} must be on, off or require, got {value!r}")
        jail = cls.detect(executable, user)
        if setting == "require" and not jail.active:
            raise JailUnavailableError(f"{SETTING_VARIABLE}=require, but the jail cannot run: {jail.reason}")
        return jail

    @classmethod
    def from_environment(cls) -> "Jail":
        """The jail this process's environment asks for: AUTOREWARD_JAIL on (default), off or require, and
        AUTOREWARD_WORKER_USER whom a root orchestrator's workers run as (nobody when unset)."""
        return cls.from_setting(os.environ.get(SETTING_VARIABLE), user=os.environ.get(USER_VARIABLE))

    def showing(self, paths) -> "Jail":
        """This jail, also showing `paths` (files or folders that exist) read-only, e.g. a task's model files.

        Raises AutorewardError, one sentence naming the path and the fix, for one its worker user cannot read.
        """
        extra = [os.path.abspath(p) for p in paths if os.path.exists(p)]
        if self.bwrap is None or not extra:
            return self
        unreadable = self._unreadable(extra)
        if unreadable is not None:
            raise AutorewardError(unreadable)
        return replace(self, read_only=_outermost([*self.read_only, *extra]))

    def for_task(self, task) -> "Jail":
        """This jail as a worker of `task` needs it: the task's own files shown read-only (its model, its
        package) and its Python paths importable. The one place a worker's jail is set up for its task."""
        from autoreward.task.files import task_folders, task_python_paths

        return self.showing(task_folders(task)).importing(task_python_paths(task))

    def importing(self, paths) -> "Jail":
        """This jail, with `paths` on its workers' PYTHONPATH (jailed or not); show their packages with `showing`."""
        extra = tuple(os.path.abspath(p) for p in paths if os.path.abspath(p) not in self.python_paths)
        return replace(self, python_paths=self.python_paths + extra) if extra else self

    def with_gpus(self) -> "Jail":
        """This jail, letting a worker use this machine's NVIDIA GPUs: their device nodes, and /sys read-only.

        CUDA's driver reads /sys as it initialises; without it cuInit fails with CUDA_ERROR_OPERATING_SYSTEM
        even where the device nodes are there (reported for bwrap; not yet tried on a GPU here). /sys tells a
        reward program about the machine's hardware, and lets it change nothing.
        """
        return self.with_devices(gpu_devices()).showing(["/sys"])

    def with_devices(self, paths) -> "Jail":
        """This jail, also letting a worker open the device nodes `paths` (those that exist), e.g. a GPU's."""
        found = tuple(sorted({os.path.abspath(p) for p in paths if os.path.exists(p)} | set(self.devices)))
        return replace(self, devices=found)

    def prepare(self, output_dir: Path, limit_bytes: int | None = None) -> "FolderWatch | None":
        """Make `output_dir` the worker's to write; with `limit_bytes`, start measuring what it adds there.

        A jailed worker of a root orchestrator gets the folder itself (chown; what is already in it stays the
        orchestrator's, and readable); any other worker already is the folder's user.
        """
        if self.active and self.credentials is not None:
            os.chown(output_dir, self.credentials.uid, self.credentials.gid)
        return FolderWatch(Path(output_dir), limit_bytes) if limit_bytes is not None else None

    def wrap(self, argv: list[str], output_dir: Path) -> list[str]:
        """The command line that runs `argv` jailed, able to write only `output_dir` (unchanged if no jail).

        With `credentials`, a root bubblewrap builds the view, `setpriv` becomes the worker user, and the
        jail proper is an unprivileged bubblewrap inside it.
        """
        if self.bwrap is None:
            return list(argv)
        output = str(Path(output_dir).resolve())
        jail = self._jail(output) + list(argv)
        return jail if self.credentials is None else self._view(output) + self.credentials.drop() + jail

    def _jail(self, output: str) -> list[str]:
        size = str(self.memory_folder_bytes)
        command = [self.bwrap, *NAMESPACES, "--cap-drop", "ALL", "--new-session", "--die-with-parent"]
        command += ["--size", size, "--tmpfs", "/tmp"]  # first: the output folder may live under /tmp
        command += self._shown(output, "--bind", "--ro-bind", "--ro-bind-try")
        command += ["--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm"]
        for path in self.devices:
            command += ["--dev-bind", path, path]
        command += ["--remount-ro", "/dev"]
        command += ["--proc", "/proc", "--remount-ro", "/", "--chdir", output, "--"]
        return command

    def _view(self, output: str) -> list[str]:
        """The root bubblewrap that shows the jail's paths, at their places, to the unprivileged one inside.

        A mount namespace, and a PID namespace whose first process dies with the orchestrator and takes every
        process of the jail with it (the credentials' change clears the kill-with-parent of the process that
        becomes the jail's bubblewrap); the jail inside makes the other namespaces. The folders it makes on
        the way to a path are 0755 (bubblewrap's own are 0700), so the worker user walks to what is shown and
        sees nothing else of them. The host's /proc is there for the jail's bubblewrap alone: a user namespace
        may mount its own /proc only where a whole one is visible. The jail's own /proc and /dev hide these.
        """
        command = [self.bwrap, "--unshare-pid", "--die-with-parent", "--cap-drop", "ALL"]
        for capability in VIEW_CAPABILITIES:
            command += ["--cap-add", capability]
        command += ["--tmpfs", "/tmp"]
        made = {"/", "/tmp"}
        for path in [*(p for p in ETC_FILES if os.path.exists(p)), *self.read_only, output]:
            command += _folders_to(path, made)
        command += self._shown(output, "--bind", "--ro-bind", "--ro-bind-try")
        command += ["--dev", "/dev"]
        made.add("/dev")
        for path in self.devices:
            command += [*_folders_to(path, made), "--dev-bind", path, path]
        command += ["--bind", "/proc", "/proc", "--chdir", "/", "--"]
        return command

    def _shown(self, output: str, bind: str, ro_bind: str, ro_bind_try: str) -> list[str]:
        command: list[str] = []
        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                command += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                command += [ro_bind, path, path]
        for path in ETC_FILES:
            command += [ro_bind_try, path, path]
        for path in self.read_only:
            command += [ro_bind, path, path]
        return command + [bind, output, output]

    def _unreadable(self, paths) -> str | None:
        """The sentence for the first of `paths` this jail's worker user cannot read; None if it reads them all."""
        if self.credentials is None:
            return None
        return next((why for why in map(self.credentials.cannot_read, paths) if why is not None), None)


def _folders_to(path: str, made: set[str]) -> list[str]:
    """bwrap arguments making the folders above `path` not yet in `made`, each 0755 (and noting them there)."""
    if any(path == system or path.startswith(system + "/") for system in SYSTEM_PATHS):
        return []  # shown whole, or a link into /usr
    above = []
    folder = os.path.dirname(path)
    while folder not in made and folder != "/":
        above.append(folder)
        folder = os.path.dirname(folder)
    made.update(above)
    return [arg for folder in reversed(above) for arg in ("--perms", "0755", "--dir", folder)]


class FolderWatch:
    """What a worker has added to its output folder, measured by its supervisor at most once a second.

    The bound is on the folder's growth since the worker started (what the orchestrator put there before is
    not the worker's), counted in allocated blocks, each file once however many links it has. A worker can
    write a second's worth past it before it is seen; files it deleted but holds open are not seen at all.
    """

    def __init__(self, folder: Path, limit_bytes: int, every_seconds: float = 1.0):
        self.folder = folder
        self.limit_bytes = limit_bytes
        self.every_seconds = every_seconds
        self.start_bytes, _ = folder_usage(folder)
        self._next = time.monotonic() + every_seconds

    def overflow(self) -> str | None:
        """Once a second at most: the sentence for a worker past its bound (to be killed), else None."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every_seconds
        used, entries = folder_usage(self.folder, self.start_bytes + self.limit_bytes)
        if entries > FOLDER_ENTRIES:
            return f"the worker made more than {FOLDER_ENTRIES} files and folders in its folder and was killed"
        if used - self.start_bytes > self.limit_bytes:
            return f"the worker wrote more than {_megabytes(self.limit_bytes)} into its folder and was killed"
        return None


def folder_usage(folder: Path, stop_bytes: float = float("inf")) -> tuple[int, int]:
    """The bytes allocated to everything beneath `folder` and how many entries it holds, links not followed;
    the walk stops early past `stop_bytes` or FOLDER_ENTRIES entries."""
    used, entries, seen = 0, 0, set()
    pending = [os.fspath(folder)]
    while pending and used <= stop_bytes and entries <= FOLDER_ENTRIES:
        try:
            listing = os.scandir(pending.pop())
        except OSError:  # removed meanwhile
            continue
        with listing:
            for entry in listing:
                entries += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                    if (info.st_dev, info.st_ino) in seen:
                        continue
                    seen.add((info.st_dev, info.st_ino))
                used += info.st_blocks * 512
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
    return used, entries


def _megabytes(count: int) -> str:
    return f"{count / 1024**2:g} MB"
