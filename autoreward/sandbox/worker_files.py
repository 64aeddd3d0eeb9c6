"""The one reader of files a worker wrote: what the orchestrator takes from a worker's folder, it takes here.

Everything in a worker's folder is hostile: a process that ran a reward
program wrote it, and may have left a link to `/proc/self/environ` (which,
read by the orchestrator, is the orchestrator's environment and its API
key), a FIFO that blocks a reader for ever, a file of many gigabytes, or a
pickle that runs code when loaded. So a file is read only:

- beneath a folder the orchestrator made, walking each component with
  `O_NOFOLLOW` (a link anywhere on the way, not only at the end, is refused);
- when it is a regular file with a single link (no FIFO, device or hard
  link to something the worker could see), opened without blocking;
- up to a size limit of its kind; past it, refused, never read in part;
- as data: JSON through `serialize.checked` (types and finite numbers), arrays
  through numpy's `.npz` reader with pickles refused and only numeric dtypes
  kept. Nothing is ever unpickled.

A refusal is a `WorkerFileError`: one sentence naming the file and why.
Copies between folders (a slice's checkpoint for the next slice, a policy
for the evaluation worker, stored episodes for a scoring worker) go through
`copy_file`, so a link in one worker's folder never turns into another
worker's data. `clear_folder` empties a folder without following a link a
worker left where the folder should be.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from autoreward.errors import Interrupted, RewardFailure, WorkerError, WorkerFileError
from autoreward.serialize import checked

KB, MB = 1024, 1024**2
# The most the orchestrator reads of each kind of file a worker writes.
JSON_BYTES = 16 * MB  # a training's record is a few kilobytes; its curve a few hundred
ARRAYS_BYTES = 1024 * MB  # a held-out evaluation's transitions (Ant, 10 episodes of 1 000 steps, float64)
WEIGHTS_BYTES = 256 * MB  # a policy's weights (SB3's default networks are well under 1 MB)
CHECKPOINT_BYTES = 2048 * MB  # what a slice continues from: SAC's replay buffer is the large one
VIDEO_BYTES = 512 * MB
IMAGE_BYTES = 4 * MB
LOG_TAIL_BYTES = 4000
# What arrays from a worker may hold: numbers and booleans, never objects, strings or records.
NUMERIC_KINDS = frozenset("biuf")

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


def read_bytes(root: Path, relative: str | Path, limit: int) -> bytes:
    """The bytes of the regular file `relative` beneath `root`, at most `limit` of them (else refused)."""
    fd = _open_file(root, relative)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise WorkerFileError(f"{_name(root, relative)} is {size:,} bytes, more than the {limit:,} allowed")
        with os.fdopen(os.dup(fd), "rb") as stream:
            data = stream.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        raise WorkerFileError(f"{_name(root, relative)} grew past the {limit:,} bytes allowed while it was read")
    return data


def read_tail(root: Path, relative: str | Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The last `limit` bytes of a worker's regular file (its log) as text; a sentence instead of it if refused."""
    try:
        fd = _open_file(root, relative)
    except WorkerFileError as error:
        return f"({error})"
    except FileNotFoundError:
        return ""
    try:
        size = os.fstat(fd).st_size
        os.lseek(fd, max(0, size - limit), os.SEEK_SET)
        return os.read(fd, limit).decode(errors="replace")
    finally:
        os.close(fd)


def read_record(root: Path, relative: str | Path, cls, limit: int = JSON_BYTES):
    """A record of type `cls` from a worker's JSON file, its types and numbers checked (`serialize.checked`)."""
    return parse_record(read_bytes(root, relative, limit), cls, _name(root, relative))


def parse_record(data: bytes | str, cls, where: str):
    """A record of type `cls` from JSON text a worker produced; `WorkerFileError` naming `where` if it is not one."""
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise WorkerFileError(f"{where} is not JSON: {str(error)[:200]}") from None
    return checked_result(value, cls, where)


def checked_result(value: Any, cls, where: str):
    """A record of type `cls` from data a worker sent (a job's result), checked; `WorkerFileError` if it is not one."""
    try:
        return checked(cls, value)
    except (ValueError, TypeError, RecursionError) as error:
        raise WorkerFileError(f"{where} is not a valid {getattr(cls, '__name__', cls)}: {error}") from None


def job_result(outcome, cls, failed: str, where: str):
    """The result of a job as a record of type `cls`, from how its worker ended (`WorkerOutcome`).

    Raises `Interrupted` when the job was stopped (no record: a resumed run does it again), `RewardFailure`
    when the reward program broke its contract (its sentence alone), and `WorkerError` for any other end or
    for a result that is not a `cls`. `failed` begins each message ("training failed"); `where` names the
    result in a refusal ("the training worker's result").
    """
    if outcome.status == "interrupted":
        raise Interrupted(message=outcome.message)
    if outcome.status != "ok" and outcome.category is not None:
        raise RewardFailure(outcome.category, f"{failed}: {outcome.message}")
    if outcome.status != "ok":
        raise WorkerError(f"{failed}: {outcome.message}\n{outcome.log_tail[-1500:]}".rstrip())
    try:
        return checked_result(outcome.result, cls, where)
    except WorkerFileError as error:
        raise WorkerError(f"{failed}: {error}") from None


def read_lines(root: Path, relative: str | Path, cls, limit: int = JSON_BYTES) -> list:
    """Records of type `cls`, one JSON object a line (a training's `curve.jsonl`), each checked."""
    text = read_bytes(root, relative, limit).decode(errors="replace")
    where = _name(root, relative)
    return [parse_record(line, cls, f"{where}, line {n}") for n, line in enumerate(text.splitlines(), 1) if line]


def load_arrays(root: Path, relative: str | Path, limit: int = ARRAYS_BYTES) -> dict[str, np.ndarray]:
    """The arrays of a worker's `.npz` file: pickles refused, only numeric and boolean dtypes kept."""
    data = read_bytes(root, relative, limit)
    where = _name(root, relative)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (ValueError, OSError, EOFError, KeyError) as error:  # numpy says "Object arrays cannot be loaded..."
        raise WorkerFileError(f"{where} is not a plain array file: {str(error)[:200]}") from None
    except Exception as error:  # zipfile's BadZipFile and the like: still only a refusal, never a crash
        raise WorkerFileError(f"{where} is not a plain array file: {type(error).__name__}") from None
    for name, array in arrays.items():
        if array.dtype.kind not in NUMERIC_KINDS or array.dtype.fields is not None:
            raise WorkerFileError(f"{where} holds {name!r} of dtype {array.dtype}, not numbers")
    return arrays


def copy_file(root: Path, relative: str | Path, target: Path, limit: int) -> None:
    """Copy a worker's regular file into `target` (which must not exist yet), through `read_bytes`."""
    data = read_bytes(root, relative, limit)
    write_new(Path(target), data)


def copy_if_present(root: Path, relative: str | Path, target: Path, limit: int) -> bool:
    """`copy_file` when the worker left `relative` at all; False when it did not."""
    try:
        copy_file(root, relative, target, limit)
    except FileNotFoundError:
        return False
    return True


def open_file(root: Path, relative: str | Path):
    """The regular file `relative` beneath `root`, opened for reading in binary (no link followed on the way),
    for a reader that streams it (the review page's video); the caller closes it."""
    return os.fdopen(_open_file(root, relative), "rb")


def is_present(root: Path, relative: str | Path) -> bool:
    """Whether `relative` beneath `root` is a regular file the reader would take (no link, no FIFO, one link)."""
    try:
        os.close(_open_file(root, relative))
    except (WorkerFileError, OSError):
        return False
    return True


def write_new(path: Path, data: bytes) -> None:
    """Write `data` to a new file at `path`: never through a link or into a file someone left there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def clear_folder(path: Path) -> Path:
    """Make `path` an empty folder: whatever is there (a folder, a file, a link a worker left) is removed first,
    and a link is removed, never followed."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)  # on Linux rmtree walks by file descriptor and removes links inside, never follows
        else:
            path.unlink()
    path.mkdir(parents=True)
    return path


def _open_file(root: Path, relative: str | Path) -> int:
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise WorkerFileError(f"{relative!s} is not a path inside a worker's folder")
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = _open_beneath(folder, part, _FOLDER_FLAGS, root, relative)
            os.close(folder)
            folder = inner
        fd = _open_beneath(folder, parts[-1], _READ_FLAGS, root, relative)
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "a regular file with other names (a hard link)" if stat.S_ISREG(info.st_mode) else "not a regular file"
        raise WorkerFileError(f"{_name(root, relative)} is {what}, so it is not read")
    return fd


def _open_beneath(folder: int, name: str, flags: int, root: Path, relative) -> int:
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise WorkerFileError(f"{_name(root, relative)} goes through a link or a non-folder, so it is not read") from None
        raise


def _name(root: Path, relative) -> str:
    return f"{Path(root).name}/{relative}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a worker may send")
