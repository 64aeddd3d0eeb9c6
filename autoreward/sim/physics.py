"""Physics backends: N simulations of one MuJoCo model, stepped together with a batch of controls.

A backend knows nothing of tasks or rewards. It steps every simulation
`nstep` substeps, resets chosen ones to given joint positions and
velocities, and after either leaves the MjData arrays the caller asked for
in `arrays`, each with the batch as its first axis. Two backends:

- `MujocoPhysics`: N `MjData` on the CPU, each advanced by one
  `mj_step(nstep=...)` call, exactly what a gymnasium MuJoCo environment
  does, so its trajectories are gymnasium's to the last bit.
- `WarpPhysics`: one MuJoCo Warp `Data` holding N worlds, on a CUDA GPU or
  Warp's CPU device, in float32.

Both follow gymnasium's `do_simulation`: after the substeps they run
`mj_rnePostConstraint`, so `cfrc_ext` holds the contact forces, and Cartesian
arrays are those computed at the start of the last substep (see `state.py`).
A reset follows gymnasium's `reset`: `mj_resetData`, then the new `qpos` and
`qvel`, then `mj_forward` (no `mj_rnePostConstraint`: `cfrc_ext` is zero).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

import mujoco
import numpy as np

from autoreward.errors import TaskError


class Physics(Protocol):
    """N simulations of one model. `arrays` holds the fields asked for, (N, ...) each, after every call."""

    arrays: dict[str, np.ndarray]

    def step(self, ctrl: np.ndarray, nstep: int) -> None:
        """Set every simulation's controls (N, nu) and advance all of them `nstep` substeps."""

    def reset(self, rows: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset simulations `rows` to joint positions `qpos` (len(rows), nq) and velocities `qvel`."""


def field_shape(model: mujoco.MjModel, name: str) -> tuple[int, ...]:
    """The per-simulation shape of MjData field `name` (time is a scalar)."""
    if name == "time":
        return ()
    return tuple(getattr(mujoco.MjData(model), name).shape)


class MujocoPhysics:
    """N `MjData` of one model on the CPU, stepped one after another (one C call each).

    Why not `mujoco.rollout`, MuJoCo's batch API: it returns the physics
    state and sensors only, not the Cartesian arrays a `State` holds (body
    positions, `cvel`, `cfrc_ext`), so they would have to be recomputed per
    simulation from Python afterwards, and it does not carry the solver's
    warm start from one call to the next, so trajectories would drift from
    gymnasium's. bench/README.md has the measurements.
    """

    def __init__(self, model: mujoco.MjModel, n: int, fields: tuple[str, ...]):
        self.model = model
        self.datas = [mujoco.MjData(model) for _ in range(n)]
        self.arrays = {name: np.zeros((n, *field_shape(model, name))) for name in fields}
        # MjData arrays are views into fixed memory: bind them once.
        self._sources = [
            (self.arrays[name], [getattr(d, name) for d in self.datas])
            for name in fields
            if name != "time" and self.arrays[name][0].size
        ]

    def step(self, ctrl: np.ndarray, nstep: int) -> None:
        model = self.model
        for data, row in zip(self.datas, ctrl):
            data.ctrl[:] = row
            mujoco.mj_step(model, data, nstep=nstep)
            mujoco.mj_rnePostConstraint(model, data)
        for target, views in self._sources:
            np.stack(views, out=target)
        if "time" in self.arrays:
            self.arrays["time"][:] = [d.time for d in self.datas]

    def reset(self, rows: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        model = self.model
        for row, position, velocity in zip(rows, qpos, qvel):
            data = self.datas[row]
            mujoco.mj_resetData(model, data)
            data.qpos[:] = position
            data.qvel[:] = velocity
            mujoco.mj_forward(model, data)
            for target, views in self._sources:
                target[row] = views[row]
            if "time" in self.arrays:
                self.arrays["time"][row] = data.time


def warp_cache_dir() -> str:
    """A writable folder for Warp's compiled kernels, kept between runs where possible.

    WARP_CACHE_PATH if set, else ~/.cache/autoreward/warp; where neither can be
    written (a jailed worker's read-only home), a fresh temporary folder, at the
    price of compiling the kernels again (about a minute on Warp's CPU device).
    """
    for folder in (os.environ.get("WARP_CACHE_PATH"), Path.home() / ".cache" / "autoreward" / "warp"):
        if folder:
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
                if os.access(folder, os.W_OK):
                    return str(folder)
            except OSError:
                pass
    return tempfile.mkdtemp(prefix="autoreward-warp-")


def warp_support(model: mujoco.MjModel) -> str | None:
    """None if MuJoCo Warp can simulate `model`, else why not (its own message)."""
    try:
        import warp as wp

        wp.config.quiet = True
        import mujoco_warp as mjw
    except ImportError as error:
        return f"MuJoCo Warp is not installed ({error.name}): pip install 'autoreward[gpu]'"
    try:
        with wp.ScopedDevice("cpu"):
            mjw.put_model(model)
    except NotImplementedError as error:
        return f"MuJoCo Warp cannot simulate this model: {error}"
    return None


class WarpPhysics:
    """N worlds of one model in MuJoCo Warp, on `device` ("cuda", "cuda:1", or "cpu").

    Warp computes in float32 (MuJoCo's CPU path in float64), so trajectories
    agree with `MujocoPhysics` closely but not exactly. `arrays` are float64
    copies read back after each call: on a GPU that is one device-to-host copy
    per field per step, which keeps the reward program (numpy) on the host.

    On a CUDA device the substeps are captured once as a CUDA graph and
    replayed, which removes the per-kernel launch cost.
    """

    def __init__(self, model: mujoco.MjModel, n: int, fields: tuple[str, ...], device: str = "cpu"):
        import warp as wp

        wp.config.quiet = True  # before mujoco_warp's import initialises Warp
        import mujoco_warp as mjw

        self._wp, self._mjw = wp, mjw
        wp.config.kernel_cache_dir = warp_cache_dir()
        wp.init()
        problem = warp_support(model)
        if problem:
            raise TaskError(problem)
        self.device = wp.get_device(device)
        self.n = n
        with wp.ScopedDevice(self.device):
            self._model = mjw.put_model(model)
            self._data = mjw.make_data(model, nworld=n)
        self.arrays = {name: np.zeros((n, *field_shape(model, name))) for name in fields}
        self._graphs: dict[int, object] = {}

    def _substeps(self, nstep: int) -> None:
        for _ in range(nstep):
            self._mjw.step(self._model, self._data)
        self._mjw.rne_postconstraint(self._model, self._data)

    def _run(self, nstep: int) -> None:
        wp = self._wp
        if not self.device.is_cuda:
            self._substeps(nstep)
            return
        graph = self._graphs.get(nstep)
        if graph is None:
            self._substeps(nstep)  # compiles every kernel before capture, which must not compile
            with wp.ScopedCapture(device=self.device) as capture:
                self._substeps(nstep)
            graph = self._graphs[nstep] = capture.graph
            return
        wp.capture_launch(graph)

    def step(self, ctrl: np.ndarray, nstep: int) -> None:
        with self._wp.ScopedDevice(self.device):
            self._data.ctrl.assign(np.ascontiguousarray(ctrl, dtype=np.float32))
            self._run(nstep)
            self._read(None)

    def reset(self, rows: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        wp = self._wp
        with wp.ScopedDevice(self.device):
            mask = np.zeros(self.n, dtype=bool)
            mask[rows] = True
            self._mjw.reset_data(self._model, self._data, reset=wp.array(mask, dtype=bool))
            for name, values in (("qpos", qpos), ("qvel", qvel)):
                array = getattr(self._data, name)
                host = array.numpy().copy()
                host[rows] = values
                array.assign(host.astype(np.float32))
            # Forward runs on every world; for those not reset it recomputes what the next step
            # recomputes first anyway (kinematics, forces), and leaves their state and warm start alone.
            self._mjw.forward(self._model, self._data)
            self._read(rows)

    def _read(self, rows: np.ndarray | None) -> None:
        for name, target in self.arrays.items():
            source = getattr(self._data, name).numpy().reshape(target.shape)
            if rows is None:
                np.copyto(target, source)
            else:
                target[rows] = source[rows]
