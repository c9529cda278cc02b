"""Crash-safe file writes: temp file in the same directory, fsync, rename, directory fsync.

A reader of the target path sees either the old complete file or the new complete
file, never a partial one, even when the process is killed (``kill -9``) mid-write:
the bytes go to a hidden temp file beside the target, are flushed to disk, and
``os.replace`` swaps the name in one step. The directory is fsynced afterwards so
the rename itself survives a power cut.

A whole export version is published the same way one level up: every file is
written into a hidden staging directory, then the directory is renamed into place
(:func:`publish_directory`).

Examples
--------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "items.jsonl"
>>> with atomic_writer(target) as handle:
...     _ = handle.write(b'{"id": 1}\\n')
>>> target.read_bytes()
b'{"id": 1}\\n'
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from workbench._fsync import fsync_directory, fsync_file

__all__ = [
    "TEMP_PREFIX",
    "atomic_writer",
    "fsync_directory",
    "fsync_file",
    "publish_directory",
    "remove_stale_staging",
    "staging_directory",
    "write_bytes_atomic",
]

TEMP_PREFIX = ".wb-tmp-"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary handle whose content replaces ``path`` only when the block succeeds.

    On an exception inside the block the temp file is removed and ``path`` is left
    exactly as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_directory(target.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, directory fsync)."""
    with atomic_writer(path) as handle:
        handle.write(data)
    return Path(path)


def staging_directory(parent: str | os.PathLike[str], name: str) -> Path:
    """A fresh hidden directory inside ``parent`` to assemble a directory before publishing it."""
    base = Path(parent)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{name}.", dir=base))


def publish_directory(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """fsync every file of ``staging`` and rename it to ``target`` in one step.

    ``target`` must not exist (export versions are never overwritten). Raises
    ``FileExistsError`` otherwise and leaves ``staging`` for the caller to remove.
    """
    staging, target = Path(staging), Path(target)
    for root, _dirs, files in os.walk(staging):
        for name in files:
            fsync_file(Path(root) / name)
        fsync_directory(root)
    if target.exists():
        raise FileExistsError(f"{target} already exists; export versions are never overwritten")
    try:
        os.rename(staging, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(f"{target} already exists; export versions are never overwritten") from exc
        raise
    fsync_directory(target.parent)
    return target


def _writer_alive(entry_name: str) -> bool:
    pid_text = entry_name[len(TEMP_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def remove_stale_staging(parent: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files and staging directories left in ``parent`` by killed writers.

    Entries of writers that are still running (their process id is in the name) are kept.
    """
    base = Path(parent)
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for entry in base.iterdir():
        if not entry.name.startswith(TEMP_PREFIX) or _writer_alive(entry.name):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed
