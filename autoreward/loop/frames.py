"""Frames of a policy's video for a judge that watches: the few small PNG stills the training worker left.

The worker renders each policy's first held-out episode to `video.mp4` and,
still inside its jail, decodes it into `frames/frame_<k>.png`
(`sim/video.write_frames`). Here they are only read: their bytes leave the run
folder inside a request to the configured LLM and nowhere else, and the
orchestrator never decodes a file that a process running a reward program
wrote (it reads a PNG's size from its header and checks its signature).
"""

from __future__ import annotations

from pathlib import Path

from autoreward.errors import VideoError
from autoreward.llm.backends import Image
from autoreward.sim.video import FRAME_COUNT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def video_frames(folder: Path, label: str, count: int = FRAME_COUNT) -> list[Image]:
    """The `count` frames the worker wrote into `folder`, as images to send. Raises VideoError when they are
    not all there (a training without a video, or a run folder from before frames were written)."""
    names = [Path(folder) / f"frame_{k}.png" for k in range(count)]
    missing = [path.name for path in names if not path.is_file()]
    if missing:
        raise VideoError(f"no frames of this policy's video in {folder} ({', '.join(missing)} missing)")
    return [Image.of_file(path, f"{label}, frame {k + 1} of {count}", *_size(path)) for k, path in enumerate(names)]


def _size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header (bytes 16-24, in the IHDR chunk)."""
    header = path.read_bytes()[:24]
    if not header.startswith(PNG_SIGNATURE) or header[12:16] != b"IHDR":
        raise VideoError(f"{path} is not a PNG image")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
