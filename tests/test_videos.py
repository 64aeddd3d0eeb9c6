"""Videos of trained policies: rendered offscreen in the (jailed) training worker, playable mp4, never fatal."""

import json
from dataclasses import replace

import av
import pytest

from autoreward.config import TrainingConfig
from autoreward.errors import VideoError
from autoreward.loop.frames import video_frames
from autoreward.loop.runner import Runner
from autoreward.loop.training import train
from autoreward.records import TrainingResult
from autoreward.sandbox.rendering import gl_environment
from autoreward.serialize import read_json, to_dict
from autoreward.sim.video import FRAME_COUNT, FRAMES_FOLDER, HEIGHT, VIDEO_FILE, WIDTH

from .conftest import human_reward

# HalfCheetah never ends an episode early, so even an untrained policy gives a whole video: 100 steps, 5 s at 20/s.
QUICK = TrainingConfig(steps=256, n_envs=2, eval_episodes=1, curve_points=2)


@pytest.fixture(scope="module")
def short_cheetah(cheetah):
    return replace(cheetah, max_episode_steps=100)


def _decoded(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return stream.codec_context.name, stream.codec_context.pix_fmt, float(stream.average_rate), frames


def test_a_trained_policy_gets_a_video_a_browser_can_play(short_cheetah, tmp_path, jail):
    result = train(short_cheetah, QUICK, tmp_path, human_reward(short_cheetah), runner=Runner.connect(jail=jail))
    # Made by the evaluation worker, which runs no reward program, in its own folder.
    assert (result.video, result.video_error) == (f"evaluation/{VIDEO_FILE}", None)
    path = tmp_path / "evaluation" / "video.mp4"
    codec, pixels, rate, frames = _decoded(path)
    assert (codec, pixels) == ("h264", "yuv420p")  # what Chromium's <video> plays
    assert rate == pytest.approx(20.0)  # HalfCheetah's own rate: 1 / dt
    assert len(frames) == 101  # the reset state, then every step
    assert frames[0].shape == (HEIGHT, WIDTH, 3)
    assert frames[0].std() > 5  # a scene, not a blank frame
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable before it is all loaded
    assert read_json(tmp_path / "training.json", TrainingResult).video == f"evaluation/{VIDEO_FILE}"
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob(".cache"))
    # Its stills for a judge that watches, decoded in the jailed worker: the orchestrator only reads them.
    images = video_frames(tmp_path / "evaluation" / FRAMES_FOLDER, "r1c0")
    assert [(i.width, i.height, i.media_type) for i in images] == [(160, 120, "image/png")] * FRAME_COUNT
    assert images[0].caption == "r1c0, frame 1 of 6" and images[0].sha256 != images[-1].sha256


def test_frames_that_are_missing_or_not_png_are_refused_without_decoding_them(tmp_path):
    with pytest.raises(VideoError, match="no frames of this policy's video"):
        video_frames(tmp_path, "r1c0")
    for k in range(FRAME_COUNT):  # what a hostile worker could leave: anything, named as a frame
        (tmp_path / f"frame_{k}.png").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    with pytest.raises(VideoError, match="is not a PNG image"):
        video_frames(tmp_path, "r1c0")
    # ... or a link to a file of the orchestrator's: not a frame, whatever it holds.
    (tmp_path / "frame_0.png").unlink()
    (tmp_path / "frame_0.png").symlink_to("/proc/self/environ")
    with pytest.raises(VideoError, match="no frames of this policy's video"):
        video_frames(tmp_path, "r1c0")


def test_a_machine_without_opengl_trains_all_the_same_and_says_why_there_is_no_video(
    short_cheetah, tmp_path, jail, monkeypatch
):
    # A backend that cannot start: MuJoCo's EGL refuses a PyOpenGL set up for OSMesa.
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setenv("PYOPENGL_PLATFORM", "osmesa")
    progress = []
    result = train(
        short_cheetah, QUICK, tmp_path, human_reward(short_cheetah), progress.append, runner=Runner.connect(jail=jail)
    )
    assert result.evaluation.fitness_mean is not None
    assert result.video is None
    assert "no offscreen OpenGL (MUJOCO_GL=egl)" in result.video_error and "libegl-mesa0" in result.video_error
    assert not (tmp_path / "evaluation" / "video.mp4").exists() and not list(tmp_path.rglob("*.partial"))
    assert "no video: no offscreen OpenGL" in (tmp_path / "evaluation" / "worker.log").read_text()
    assert any(p.get("stage") == "video" and "error" in p for p in progress)


def test_videos_can_be_turned_off(short_cheetah, tmp_path, jail):
    result = train(
        short_cheetah,
        TrainingConfig(steps=64, n_envs=1, eval_episodes=1, curve_points=1, video=False),
        tmp_path,
        human_reward(short_cheetah),
        runner=Runner.connect(jail=jail),
    )
    assert (result.video, result.video_error) == (None, None)
    assert not list(tmp_path.rglob("video.mp4"))


def test_a_training_recorded_before_videos_still_loads(tmp_path):
    old = to_dict(TrainingResult("t", "program", "ppo", 1, 0, 1, (), _evaluation(), 1.0, 1.0))
    del old["video"], old["video_error"]
    (tmp_path / "training.json").write_text(json.dumps(old))
    assert read_json(tmp_path / "training.json", TrainingResult).video is None


def _evaluation():
    from autoreward.records import Evaluation

    return Evaluation(episodes=(), fitness_mean=None, fitness_std=None, length_mean=1.0, success_rate=None)


def test_the_workers_opengl_is_the_users_choice_or_a_software_backend_that_is_installed():
    assert gl_environment({"MUJOCO_GL": "osmesa"})["PYOPENGL_PLATFORM"] == "osmesa"
    assert gl_environment({"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "x"})["PYOPENGL_PLATFORM"] == "x"
    assert "PYOPENGL_PLATFORM" not in gl_environment({"MUJOCO_GL": "glfw"})
    chosen = gl_environment({})
    assert chosen.get("MUJOCO_GL") in ("egl", "osmesa", None)
    assert chosen["MESA_SHADER_CACHE_DISABLE"] == "true"
