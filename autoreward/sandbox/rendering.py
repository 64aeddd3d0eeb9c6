"""Which OpenGL backend a worker that renders gets, chosen on the machine it runs on.

MuJoCo and PyOpenGL fix their backend when first imported, so a worker cannot
fall back from EGL to OSMesa by itself: the supervisor passes the choice down
in the worker's environment. Video rendering itself is `autoreward.sim.video`.
"""

from __future__ import annotations

import ctypes.util
import functools
import os
from typing import Mapping

# Offscreen backends tried in this order when MUJOCO_GL is not set, with the library each needs.
GL_BACKENDS = (("egl", "EGL"), ("osmesa", "OSMesa"))


@functools.cache
def _installed_gl_backend() -> str | None:
    """The first of EGL and OSMesa whose library is installed. Looked up once per process: every worker
    start asks, and `find_library` runs `ldconfig` each time."""
    return next((backend for backend, library in GL_BACKENDS if ctypes.util.find_library(library)), None)


def gl_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables a rendering worker gets: MUJOCO_GL, PYOPENGL_PLATFORM, and Mesa kept quiet.

    The user's MUJOCO_GL wins; otherwise the first of EGL and OSMesa whose
    library is installed. Nothing found: no MUJOCO_GL, and the worker's
    video fails with a reason, not its training.
    """
    backend = environ.get("MUJOCO_GL") or _installed_gl_backend()
    chosen = {
        # Mesa would otherwise try to write a shader cache under HOME (the worker's output folder).
        "MESA_SHADER_CACHE_DISABLE": "true",
        # Mesa's software rasterizer renders in the worker's own thread: one core per worker.
        "LP_NUM_THREADS": environ.get("LP_NUM_THREADS", "0"),
    }
    if backend:
        chosen["MUJOCO_GL"] = backend
        platform = environ.get("PYOPENGL_PLATFORM") or (backend if backend in ("egl", "osmesa") else None)
        if platform:
            chosen["PYOPENGL_PLATFORM"] = platform
    return chosen
