"""Frames of a policy's video for a judge that watches: a few evenly spaced stills, small PNGs beside the video.

The training worker already renders each policy's first held-out episode to
`video.mp4` (H.264, `sim/video.py`); PyAV, which wrote it, decodes it here and
encodes each chosen frame as PNG, so no other image library is needed. The
frames are written once, into the candidate's `training/frames/`, and read
again by every round that judges the candidate; they leave the run folder
only inside a request to the configured LLM.
"""

from __future__ import annotations

from pathlib import Path

from autoreward.errors import VideoError
from autoreward.llm.backends import Image

FRAME_COUNT = 6
FRAME_WIDTH = 160  # pixels; the height keeps the video's aspect (320x240 videos give 160x120 frames)


def video_frames(
    video: Path, folder: Path, label: str, count: int = FRAME_COUNT, width: int = FRAME_WIDTH
) -> list[Image]:
    """`count` frames evenly spaced from the start of `video` to its end, as PNG files in `folder`.

    Frames already in `folder` (an earlier round judged the same policy) are reused. Raises VideoError
    when the video cannot be read.
    """
    folder = Path(folder)
    names = [folder / f"frame_{k}.png" for k in range(count)]
    if not all(path.is_file() for path in names):
        _extract(Path(video), names, width)
    return [Image.of_file(path, f"{label}, frame {k + 1} of {count}", *_size(path)) for k, path in enumerate(names)]


def _extract(video: Path, names: list[Path], width: int) -> None:
    import av

    try:
        with av.open(str(video)) as container:
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.FFmpegError, OSError) as error:
        raise VideoError(f"the video {video} cannot be read: {error}") from None
    if not decoded:
        raise VideoError(f"the video {video} holds no frames")
    last = len(decoded) - 1
    chosen = [decoded[round(k * last / max(len(names) - 1, 1))] for k in range(len(names))]
    names[0].parent.mkdir(parents=True, exist_ok=True)
    for path, pixels in zip(names, chosen):
        height = max(2, round(pixels.shape[0] * width / pixels.shape[1]) // 2 * 2)
        partial = path.with_suffix(".partial")
        partial.write_bytes(_png(pixels, width, height))
        partial.replace(path)


def _png(pixels, width: int, height: int) -> bytes:
    """One RGB frame, scaled to width x height, encoded as PNG by PyAV's own encoder."""
    import av

    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(width=width, height=height)
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "rgb24"
    return b"".join(bytes(packet) for packet in [*encoder.encode(frame), *encoder.encode(None)])


def _size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header (bytes 16-24 of the IHDR chunk)."""
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
