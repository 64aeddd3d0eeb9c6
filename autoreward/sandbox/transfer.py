"""A worker's folder as bytes, for executors whose workers run on another machine (Ray).

Only regular files and folders travel; unpacking refuses links, devices and
any path that would land outside the target folder.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from autoreward.errors import AutorewardError


def pack_folder(folder: Path) -> bytes:
    """The regular files and folders under `folder` as an uncompressed tar; links and devices are left out."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue  # a worker could leave a link to a file of the node; only what it wrote travels
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack_folder(packed: bytes, folder: Path) -> None:
    """Unpack `pack_folder`'s bytes into `folder`, refusing anything that would land outside it or is not a file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r") as archive:
        members = archive.getmembers()
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise AutorewardError(f"a worker's folder held {member.name!r}, which is not a file or a folder")
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise AutorewardError(f"a worker's folder held {member.name!r}, a path outside the folder")
        # The 'data' filter refuses absolute paths, '..' and special files, and drops odd permissions.
        archive.extractall(folder, members=members, filter="data")
