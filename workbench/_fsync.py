"""Make writes durable: fsync a file, or a directory so that a rename inside it survives a power cut.

Standard library only; shared by the label store (:mod:`workbench.review`) and the
exporter (:mod:`workbench.export.atomic`).

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("a")
>>> fsync_file(folder / "a.txt"); fsync_directory(folder)
"""

from __future__ import annotations

import os


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that renames inside it are durable (no-op where unsupported)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush one already-written file to disk."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
