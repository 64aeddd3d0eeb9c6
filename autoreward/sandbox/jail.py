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

What it does not do: it keeps the same user id (a root orchestrator's
worker is root without capabilities: it can read any file that the jail
shows, and RLIMIT_NPROC is not enforced for root), and it installs no
seccomp filter, so the kernel's whole system-call surface remains. Where
`bwrap` is missing or refused, `Jail.detect` warns once, loudly, and the
worker runs unjailed with every other layer (static rules, restricted
loader, clean environment, resource limits, supervisor) still in force.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from autoreward.errors import AutorewardError, JailUnavailableError, JailWarning
from autoreward.resources import PACKAGE_DIR, data_dir

# Read at the command-line edge only: on (default: jail where bwrap works), off, or require.
SETTING_VARIABLE = "AUTOREWARD_JAIL"
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
class Jail:
    """How worker processes are confined: build once (`detect`, `disabled`, `from_setting`), pass to `run_worker`.

    `bwrap` is the path of a bubblewrap that works here, or None when workers
    run unjailed; `reason` then says why.
    """

    bwrap: str | None
    reason: str = ""
    read_only: tuple[str, ...] = ()
    memory_folder_bytes: int = MEMORY_FOLDER_BYTES
    devices: tuple[str, ...] = ()  # device nodes of this machine a worker may use (a GPU's), beside /dev's basics
    # Import roots a worker gets on its PYTHONPATH beside autoreward's: a user's package (`module:id` environments).
    python_paths: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.bwrap is not None

    @classmethod
    def detect(cls, executable: str = "bwrap") -> "Jail":
        """Probe bubblewrap by running Python through the worker's own flags; warn once if it fails."""
        found = shutil.which(executable)
        if found is None:
            return cls.disabled(f"`{executable}` is not installed (Debian: apt-get install bubblewrap)")
        jail = cls(bwrap=found, read_only=python_paths())
        with tempfile.TemporaryDirectory(prefix="autoreward-jail-probe-") as folder:
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
    def from_setting(cls, value: str | None, executable: str = "bwrap") -> "Jail":
        """The jail asked for by AUTOREWARD_JAIL's value: on (or unset), off, or require."""
        setting = (value or "on").strip().lower()
        if setting in ("off", "0", "no", "false"):
            return cls.disabled(f"{SETTING_VARIABLE}={value} turned it off")
        if setting not in ("on", "1", "yes", "true", "require"):
            raise AutorewardError(f"{SETTING_VARIABLE} must be on, off or require, got {value!r}")
        jail = cls.detect(executable)
        if setting == "require" and not jail.active:
            raise JailUnavailableError(f"{SETTING_VARIABLE}=require, but the jail cannot run: {jail.reason}")
        return jail

    def showing(self, paths) -> "Jail":
        """This jail, also showing `paths` (files or folders that exist) read-only, e.g. a task's model files."""
        extra = [os.path.abspath(p) for p in paths if os.path.exists(p)]
        if self.bwrap is None or not extra:
            return self
        return replace(self, read_only=_outermost([*self.read_only, *extra]))

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

    def wrap(self, argv: list[str], output_dir: Path) -> list[str]:
        """The command line that runs `argv` jailed, able to write only `output_dir` (unchanged if no jail)."""
        if self.bwrap is None:
            return list(argv)
        output = str(Path(output_dir).resolve())
        size = str(self.memory_folder_bytes)
        command = [self.bwrap, *NAMESPACES, "--cap-drop", "ALL", "--new-session", "--die-with-parent"]
        command += ["--size", size, "--tmpfs", "/tmp"]  # first: the output folder may live under /tmp
        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                command += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                command += ["--ro-bind", path, path]
        for path in ETC_FILES:
            command += ["--ro-bind-try", path, path]
        for path in self.read_only:
            command += ["--ro-bind", path, path]
        command += ["--bind", output, output]
        command += ["--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm"]
        for path in self.devices:
            command += ["--dev-bind", path, path]
        command += ["--remount-ro", "/dev"]
        command += ["--proc", "/proc", "--remount-ro", "/", "--chdir", output, "--"]
        return command + list(argv)
