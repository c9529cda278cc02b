"""Append-only local files of JSON records that survive a killed process (reliability.md 1.4).

Each record is written as ``"\\n" + json + "\\n"`` with one ``os.write`` on an
``O_APPEND`` descriptor, then ``fsync``: a torn tail left by a killed process
never glues onto the next record, and unparseable lines are skipped on read.
Rewrites go through a temp file, ``fsync``, ``os.replace`` and a directory fsync.
Used by the outbox (:mod:`workbench.review._outbox`) and the drafts
(:mod:`workbench.review.drafts`). :func:`data_dir` is where local files of a
store without a local file (PostgreSQL) live: user data, not a cache to clear.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from workbench._fsync import fsync_directory


def data_dir(kind: str) -> Path:
    """``$XDG_DATA_HOME/workbench/<kind>``, else ``~/.local/share/workbench/<kind>``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "workbench" / kind


def frame(record: object) -> bytes:
    """One record as it is written: a newline, the JSON, a newline."""
    return b"\n" + orjson.dumps(record) + b"\n"


def append(path: Path, payload: bytes) -> None:
    """Append framed records durably (one write, then fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite(path: Path, payloads: Iterable[bytes]) -> None:
    """Replace the file's content atomically with these framed records."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"".join(payloads))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)


def records(path: Path) -> Iterator[dict]:
    """The parseable JSON objects of the file, in order (a torn or foreign line is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record
