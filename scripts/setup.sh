#!/usr/bin/env bash
# Installs what autoreward needs into ./.venv on a fresh Debian machine with Python 3.11:
# the Debian packages it is missing, then the Python packages. Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
python3 -c "import ensurepip" 2>/dev/null || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${apt_packages[*]}"
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.autoreward-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first, pinned: an unpinned torch pulls the newest CUDA build (several GB).
    .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "${AUTOREWARD_TORCH:-torch==2.13.0}"
    .venv/bin/python -m pip install -q -e ".[dev]"
    touch "$stamp"
fi
