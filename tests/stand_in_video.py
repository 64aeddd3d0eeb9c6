"""A short valid H.264 video, standing in for a candidate's training video.

STAND-IN: the video branch makes every trained candidate's video at
`round_<n>/<candidate>/training/video.mp4`. Until it is merged, the browser
test writes this one where that video would be. Remove this helper (and its
use in test_review_browser.py) when the video branch lands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_stand_in_video(path: Path, seconds: float = 2.0, fps: int = 15, size: tuple[int, int] = (160, 120)) -> Path:
    """H.264 in mp4, yuv420p, moov atom first (+faststart), as the real videos will be."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(int(seconds * fps)):
            frame = np.zeros((height, width, 3), dtype=np.uint8)
            frame[:, : (k * width) // int(seconds * fps) + 1] = (40, 160, 90)  # a bar that grows: it visibly plays
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
