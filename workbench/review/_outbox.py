"""A local, per-writer outbox for label events that could not be saved yet.

One JSON record per line, each record written as ``"\\n" + json + "\\n"`` with one
``os.write`` on an ``O_APPEND`` descriptor, then ``fsync``: a torn tail left by a
killed process never glues onto the next record, and unparseable lines are
skipped on read (reliability.md 1.4). Use one outbox file per kernel (writer) on a
local disk; the store drains it on its next successful save.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import orjson

from workbench._fsync import fsync_directory
from workbench.review.events import LabelEvent


def _encode(event: LabelEvent) -> bytes:
    row = event.to_row()
    row["created_at"] = event.created_at.isoformat()
    return b"\n" + orjson.dumps(row) + b"\n"


def _decode(line: bytes) -> LabelEvent | None:
    try:
        row = orjson.loads(line)
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        return LabelEvent.from_row(row)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a torn or foreign line: skipped, never glued to the next record


class Outbox:
    """Events waiting to be saved, kept in a local append-only file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from workbench.review.events import new_label
    >>> box = Outbox(pathlib.Path(tempfile.mkdtemp()) / "outbox.jsonl")
    >>> box.add(new_label("t1", "ana", "pass"))
    >>> len(box.pending())
    1
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def add(self, event: LabelEvent) -> None:
        """Append ``event`` durably (fsync) unless it is already waiting."""
        with self._lock:
            if any(e.event_id == event.event_id for e in self._read()):
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, _encode(event))
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self) -> list[LabelEvent]:
        """The waiting events in the order they were added (each event once)."""
        with self._lock:
            return self._read()

    def remove(self, event_ids: Iterable[str]) -> None:
        """Drop saved events: rewrite the file atomically (temp file, fsync, replace)."""
        done = set(event_ids)
        with self._lock:
            keep = [e for e in self._read() if e.event_id not in done]
            if not self.path.exists():
                return
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"".join(_encode(e) for e in keep))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            fsync_directory(self.path.parent)

    def _read(self) -> list[LabelEvent]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        seen: dict[str, LabelEvent] = {}
        for line in data.split(b"\n"):
            if line.strip():
                event = _decode(line)
                if event is not None and event.event_id not in seen:
                    seen[event.event_id] = event
        return list(seen.values())
