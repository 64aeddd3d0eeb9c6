"""Frames of a policy's video for a judge that watches: the few small PNG stills the evaluation worker left.

The evaluation worker renders each policy's first held-out episode to `video.mp4` and,
still inside its jail, decodes it into `frames/frame_<k>.png`
(`sim/video.write_frames`). Here they are only read: their bytes leave the run
folder inside a request to the configured LLM and nowhere else, and the
orchestrator never decodes a file that a process running a reward program
wrote (it reads a PNG's size from its header and checks its signature).
"""

from __future__ import annotations

from pathlib import Path

from autoreward.errors import VideoError, WorkerFileError
from autoreward.llm.backends import Image
from autoreward.sandbox import worker_files
from autoreward.sandbox.worker_files import IMAGE_BYTES
from autoreward.sim.video import FRAME_COUNT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def video_frames(folder: Path, label: str, count: int = FRAME_COUNT) -> list[Image]:
    """The `count` frames the worker wrote into `folder`, as images to send. Raises VideoError when they are
    not all there (a training without a video, or a run folder from before frames were written), or one is
    not a plain PNG file (a link, a FIFO, something else)."""
    folder = Path(folder)
    present = frame_paths(folder)
    if len(present) < count:
        missing = [f"frame_{k}.png" for k in range(len(present), count)]
        raise VideoError(f"no frames of this policy's video in {folder} ({', '.join(missing)} missing)")
    return [Image.of_file(path, f"{label}, frame {k + 1} of {count}", *_size(path)) for k, path in enumerate(present[:count])]


def frame_paths(folder: Path) -> list[Path]:
    """The frames in `folder` (`frame_0.png`, `frame_1.png`, ...) up to the first one missing, each a regular
    file reached through no link (the reader of worker files walks from the folder's parent)."""
    folder = Path(folder)
    found: list[Path] = []
    while worker_files.is_present(folder.parent, f"{folder.name}/frame_{len(found)}.png"):
        found.append(folder / f"frame_{len(found)}.png")
    return found


def _size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header (bytes 16-24, in the IHDR chunk)."""
    try:
        header = worker_files.read_bytes(path.parent.parent, f"{path.parent.name}/{path.name}", IMAGE_BYTES)[:24]
    except WorkerFileError as error:
        raise VideoError(str(error)) from None
    if not header.startswith(PNG_SIGNATURE) or header[12:16] != b"IHDR":
        raise VideoError(f"{path} is not a PNG image")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
