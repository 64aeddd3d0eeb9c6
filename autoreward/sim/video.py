"""Short videos of a trained policy, rendered offscreen by MuJoCo and encoded as H.264 mp4.

The orchestrator chooses the OpenGL backend (`gl_environment`: the user's
MUJOCO_GL, else EGL or OSMesa where their library is installed; both render
in software on a machine without a GPU) and hands it to the evaluation worker
in its environment, because MuJoCo and PyOpenGL fix their backend when first
imported. The worker, after its held-out evaluation, replays the first
evaluation episode (same seed, deterministic policy, so the same episode
that was scored) in a plain environment of the task, renders every few
steps and encodes the frames in-process with PyAV: no ffmpeg process, which
suits a jailed worker with a process limit.

A video that cannot be made never fails a training: `record_video` raises
`VideoError`, and the training result says why in `video_error`.

`write_frames` then decodes the video, still in the jailed worker, into a
few small PNG stills beside it (`frames/`) for a judge that watches
(loop/frames.py): the orchestrator only reads their bytes and sends them,
and never decodes a file that a process running a reward program wrote.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from autoreward.config import Task
from autoreward.errors import VideoError

VIDEO_FILE = "video.mp4"  # in the training's output folder, beside training.json
FRAMES_FOLDER = "frames"  # beside it: frame_0.png ... evenly spaced stills of the video, for a watching judge
FRAME_COUNT = 6
FRAME_WIDTH = 160  # pixels; the height keeps the video's aspect (320x240 videos give 160x120 frames)
WIDTH, HEIGHT = 320, 240
MAX_SECONDS = 10.0  # of simulated time: the start of the episode, enough to see a gait
MAX_FPS = 30  # faster environments (Hopper: 125 steps/s) are shown every few steps
GL_HELP = (
    "offscreen rendering needs EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri; software rendering, "
    "no GPU needed) or OSMesa (libosmesa6, with MUJOCO_GL=osmesa)"
)


def record_video(policy, task: Task, seed: int, path: Path, normalizer=None) -> Path:
    """Replay one deterministic episode of `policy` from `seed` and write it to `path` as mp4.

    At most `MAX_SECONDS` of simulated time, at most `MAX_FPS` frames a
    second, `WIDTH`x`HEIGHT`, from a camera that follows the body when the
    model can move about (locomotion) and looks at the whole scene otherwise.
    Raises VideoError when it cannot render or encode; `path` is then absent.
    """
    import mujoco

    from autoreward.task.files import make_env

    env = make_env(task)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    if not isinstance(getattr(env.unwrapped, "model", None), mujoco.MjModel):
        env.close()
        return _record_rendered(policy, task, seed, path, normalizer)
    try:
        observation, _ = env.reset(seed=seed)
        simulation = env.unwrapped
        model, data = simulation.model, simulation.data
        steps_per_second = 1.0 / simulation.dt
        stride = max(1, math.ceil(steps_per_second / MAX_FPS))
        rate = Fraction(steps_per_second / stride).limit_denominator(1000)
        max_frames = max(2, int(MAX_SECONDS * steps_per_second / stride))
        # Software rendering: shadows, reflections and multisampling cost 10-40x the rest of a frame.
        model.vis.quality.offsamples = 0
        try:
            renderer = mujoco.Renderer(model, HEIGHT, WIDTH)
        except Exception as error:  # ImportError, mujoco.FatalError, RuntimeError: all mean no GL here
            raise VideoError(
                f"no offscreen OpenGL (MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}): "
                f"{_first_line(error)}; {GL_HELP}"
            ) from None
        camera = follow_camera(model, _camera_config(simulation))
        try:
            with _Encoder(partial, rate) as encoder:
                frame = lambda: _frame(renderer, data, camera)  # noqa: E731
                _replay(policy, env, observation, normalizer, encoder, frame, stride, max_frames)
        finally:
            renderer.close()
        partial.replace(path)
        return path
    except VideoError:
        raise
    except Exception as error:
        raise VideoError(f"the video could not be made: {type(error).__name__}: {_first_line(error)}") from error
    finally:
        partial.unlink(missing_ok=True)
        env.close()


def _record_rendered(policy, task: Task, seed: int, path: Path, normalizer=None) -> Path:
    """The same replay for an environment without a MuJoCo model, from its own `rgb_array` rendering (classic
    control and Box2D draw with pygame: the `classic` extra), each frame scaled to WIDTH x HEIGHT."""
    from autoreward.task.files import make_env

    partial = path.with_name(path.name + ".partial")
    env = None
    try:
        env = make_env(task, render_mode="rgb_array")
        steps_per_second = float(env.metadata.get("render_fps") or MAX_FPS)
        stride = max(1, math.ceil(steps_per_second / MAX_FPS))
        rate = Fraction(steps_per_second / stride).limit_denominator(1000)
        max_frames = max(2, int(MAX_SECONDS * steps_per_second / stride))
        observation, _ = env.reset(seed=seed)
        with _Encoder(partial, rate) as encoder:
            _replay(policy, env, observation, normalizer, encoder, lambda: _scaled(env.render()), stride, max_frames)
        partial.replace(path)
        return path
    except Exception as error:  # pygame missing (DependencyNotInstalled), a renderer that fails: no video
        raise VideoError(f"the video could not be made: {type(error).__name__}: {_first_line(error)}") from error
    finally:
        partial.unlink(missing_ok=True)
        if env is not None:
            env.close()


def _replay(policy, env, observation, normalizer, encoder, frame, stride: int, max_frames: int) -> None:
    """Play the deterministic policy from `observation` (just reset) until the episode ends or `max_frames`
    frames are encoded: `frame()` is encoded first, then every `stride` steps and at the episode's last step."""
    encoder.add(frame())
    step = 0
    while encoder.frames < max_frames:
        shown = normalizer.normalize_obs(observation) if normalizer is not None else observation
        action, _ = policy.predict(shown, deterministic=True)
        observation, _, terminated, truncated, _ = env.step(action)
        step += 1
        if step % stride == 0 or terminated or truncated:
            encoder.add(frame())
        if terminated or truncated:
            break


def _scaled(pixels) -> np.ndarray:
    """An RGB frame of any size as WIDTH x HEIGHT, by nearest pixel (the encoder's size is fixed)."""
    pixels = np.asarray(pixels)[..., :3]
    rows = np.linspace(0, pixels.shape[0] - 1, HEIGHT).round().astype(int)
    columns = np.linspace(0, pixels.shape[1] - 1, WIDTH).round().astype(int)
    return pixels[rows][:, columns].astype(np.uint8)


def follow_camera(model, config: Mapping[str, Any] | None = None):
    """A camera for `model`: tracking its first body when that body can translate, else a fixed view of the scene.

    `config` is the environment's default camera (gymnasium's
    `default_camera_config`): its distance, elevation, azimuth and lookat are kept.
    """
    import mujoco

    config = config or {}
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, camera)
    root = next((b for b in range(1, model.nbody) if model.body_parentid[b] == 0), None)
    translating = (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_SLIDE)
    moves = root is not None and any(
        model.jnt_bodyid[j] == root and model.jnt_type[j] in translating for j in range(model.njnt)
    )
    if moves:
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = root
        camera.elevation = -20.0
        camera.azimuth = 90.0  # from the side: most locomotion tasks move along x
    if "distance" in config:
        camera.distance = float(config["distance"])
    for name in ("elevation", "azimuth"):
        if name in config:
            setattr(camera, name, float(config[name]))
    if not moves and "distance" not in config:
        camera.distance *= 0.6  # the free camera frames the floor too; a fixed-base model is small in it
    if not moves and "lookat" in config:
        camera.lookat[:] = np.asarray(config["lookat"], dtype=float)
    return camera


def _frame(renderer, data, camera) -> np.ndarray:
    import mujoco

    renderer.update_scene(data, camera)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    return renderer.render()


def _camera_config(simulation) -> Mapping[str, Any]:
    renderer = getattr(simulation, "mujoco_renderer", None)
    return getattr(renderer, "default_cam_config", None) or {}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Encoder:
    """Frames in, H.264 (yuv420p, moov atom first so a browser starts playing at once) mp4 out."""

    def __init__(self, path: Path, rate: Fraction):
        import av

        self.frames = 0
        self._av = av
        self._container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = WIDTH, HEIGHT
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "26", "preset": "veryfast", "threads": "1"}

    def add(self, pixels: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def __enter__(self) -> "_Encoder":
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self._container.mux(self._stream.encode(None))  # flush the frames the encoder holds
        finally:
            self._container.close()


def write_frames(video: Path, folder: Path, count: int = FRAME_COUNT, width: int = FRAME_WIDTH) -> list[Path]:
    """`count` frames evenly spaced from the start of `video` to its end, as PNG files `frame_<k>.png` in `folder`.

    PyAV, which wrote the video, decodes it and encodes each frame as PNG. Raises VideoError when the
    video cannot be read.
    """
    import av

    try:
        with av.open(str(video)) as container:
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.FFmpegError, OSError) as error:
        raise VideoError(f"the video {video} cannot be read: {error}") from None
    if not decoded:
        raise VideoError(f"the video {video} holds no frames")
    last = len(decoded) - 1
    names = [Path(folder) / f"frame_{k}.png" for k in range(count)]
    names[0].parent.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(names):
        pixels = decoded[round(k * last / max(count - 1, 1))]
        height = max(2, round(pixels.shape[0] * width / pixels.shape[1]) // 2 * 2)
        partial = path.with_suffix(".partial")
        partial.write_bytes(_png(pixels, width, height))
        partial.replace(path)
    return names


def _png(pixels, width: int, height: int) -> bytes:
    """One RGB frame, scaled to width x height, encoded as PNG by PyAV's own encoder."""
    import av

    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(width=width, height=height)
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "rgb24"
    return b"".join(bytes(packet) for packet in [*encoder.encode(frame), *encoder.encode(None)])
