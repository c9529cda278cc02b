"""A local, per-writer outbox for label events that could not be saved yet.

Records are framed and fsync'd by :mod:`workbench.review._local_log`, so a torn
tail left by a killed process is skipped on read (reliability.md 1.4). Use one
outbox file per kernel (writer) on a local disk; the store drains it on its next
successful save.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from workbench.review import _local_log
from workbench.review.events import LabelEvent


def _encode(event: LabelEvent) -> bytes:
    row = event.to_row()
    row["created_at"] = event.created_at.isoformat()
    return _local_log.frame(row)


def _decode(row: dict) -> LabelEvent | None:
    try:
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        return LabelEvent.from_row(row)
    except (KeyError, TypeError, ValueError):
        return None  # a foreign record: skipped


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
            _local_log.append(self.path, _encode(event))

    def pending(self) -> list[LabelEvent]:
        """The waiting events in the order they were added (each event once)."""
        with self._lock:
            return self._read()

    def remove(self, event_ids: Iterable[str]) -> None:
        """Drop saved events: rewrite the file atomically (temp file, fsync, replace)."""
        done = set(event_ids)
        with self._lock:
            keep = [e for e in self._read() if e.event_id not in done]
            if self.path.exists():
                _local_log.rewrite(self.path, (_encode(e) for e in keep))

    def _read(self) -> list[LabelEvent]:
        seen: dict[str, LabelEvent] = {}
        for row in _local_log.records(self.path):
            event = _decode(row)
            if event is not None and event.event_id not in seen:
                seen[event.event_id] = event
        return list(seen.values())
