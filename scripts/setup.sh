#!/usr/bin/env bash
# Installs what autoreward needs into ./.venv on a fresh Debian machine with Python 3.11:
# the Debian packages it is missing (bubblewrap for the worker jail, Mesa's software EGL for policy videos,
# chromium for the review page's browser test), then the Python packages.
# Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
python3 -c "import ensurepip" 2>/dev/null || apt_packages+=(python3-venv)
command -v bwrap >/dev/null || apt_packages+=(bubblewrap)
# grep without -q: its early exit would kill ldconfig with SIGPIPE, and pipefail would read that as missing.
has_mesa_egl() { { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep 'libEGL_mesa\.so' >/dev/null; }
# Offscreen rendering without a GPU or a display: Mesa's EGL with its software (llvmpipe) driver.
has_mesa_egl || apt_packages+=(libegl1 libegl-mesa0 libgl1-mesa-dri)
# The review page's browser test drives Debian's chromium through its own driver (nothing downloaded).
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_packages+=(chromium-driver)
if [ ${#apt_packages[@]} -gt 0 ]; then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    if command -v apt-get >/dev/null && { [ -z "$sudo_cmd" ] || command -v sudo >/dev/null; }; then
        echo "setup: installing Debian packages: ${apt_packages[*]}"
        $sudo_cmd apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}" >/dev/null \
            || echo "setup: apt-get could not install ${apt_packages[*]}"
    else
        echo "setup: cannot install Debian packages (no apt-get, or neither root nor sudo): ${apt_packages[*]}"
    fi
fi
# The jail is optional: without it autoreward warns and runs reward programs in unjailed workers.
if ! command -v bwrap >/dev/null; then
    echo "setup: WARNING: bubblewrap (bwrap) is missing, so reward programs will run without the jail" \
         "(no network, read-only system, writes only to their folder). Install Debian's bubblewrap to close that gap."
elif ! refusal=$(bwrap --unshare-user --unshare-net --unshare-pid --ro-bind / / true 2>&1); then
    echo "setup: WARNING: bubblewrap is installed but refuses to run here ($refusal);" \
         "reward programs will run without the jail."
fi
# Videos are optional too: without EGL each training says why it has none, and trains all the same.
has_mesa_egl || echo "setup: WARNING: Mesa's EGL (libegl-mesa0) is missing, so trained policies get no video" \
    "(or set MUJOCO_GL=osmesa with Debian's libosmesa6)."

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.autoreward-$(cat pyproject.toml examples/point_goal/pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first, pinned: an unpinned torch pulls the newest CUDA build (several GB).
    .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "${AUTOREWARD_TORCH:-torch==2.13.0}"
    # gpu: MuJoCo Warp, whose tests run on Warp's CPU device where there is no GPU (about 20 s to install);
    # ray: so the tests of --executor ray run against a real local Ray instance;
    # classic, box2d: pygame for classic-control videos and Box2D's environments, so their tests run.
    .venv/bin/python -m pip install -q -e ".[dev,gpu,ray,classic,box2d]"
    # The tests' robot of our own (examples/point_goal), installed as a user develops one: editable.
    .venv/bin/python -m pip install -q --no-build-isolation -e examples/point_goal
    touch "$stamp"
fi
