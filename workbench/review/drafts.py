"""Drafts: what a reviewer typed but has not saved, kept on local disk (reliability.md 1.4, S9).

A killed kernel, a closed tab or a crash loses at most the last couple of
seconds of typing: the review session writes the form of the trace on screen
to a :class:`DraftBox` about every :data:`DRAFT_INTERVAL_S` seconds while it
changes, and a new session on the same store shows the draft again. Drafts
never go into the shared label store; saving the label clears the draft.

The box is a local append-only file (:mod:`workbench.review._local_log`): one
record per change, the last record of a (reviewer, trace) pair wins, and a
cleared draft is a record without a form. The file is compacted when it
grows past :data:`COMPACT_BYTES`.

Example
-------
>>> import tempfile, pathlib
>>> box = DraftBox(pathlib.Path(tempfile.mkdtemp()) / "labels.drafts.jsonl")
>>> box.put("ana", "t1", {"note": "refund policy missing"})
>>> box.drafts("ana")["t1"]["form"]
{'note': 'refund policy missing'}
>>> box.clear("ana", "t1"); box.drafts("ana")
{}
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from workbench.review import _local_log

DRAFT_INTERVAL_S = 2.0
COMPACT_BYTES = 1 << 20


def default_path(store: object) -> Path:
    """Where a store's drafts live: beside a SQLite file, else in the user data dir, one file per database."""
    path = getattr(store, "path", None)
    if path is not None:
        return Path(path).with_name(Path(path).name + ".drafts.jsonl")
    name = getattr(store, "url_hash", None) or hashlib.sha256(str(getattr(store, "url", "store")).encode()).hexdigest()[:16]
    return _local_log.data_dir("drafts") / f"{name}.jsonl"


class DraftBox:
    """Unsaved forms per (reviewer, trace), in a local append-only file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._known: set[tuple[str, str]] | None = None  # live drafts, read once: clear() is on the save path

    def put(self, reviewer: str, trace_id: str, form: dict) -> None:
        """Record the latest form of a trace (durably: fsync)."""
        self._append({"reviewer": reviewer, "trace_id": trace_id, "form": form,
                      "at": datetime.now(UTC).isoformat()})
        with self._lock:
            self._live_keys().add((reviewer, trace_id))

    def clear(self, reviewer: str, trace_id: str) -> None:
        """Forget the draft of a trace (after its label is saved); writes nothing when there is none."""
        with self._lock:
            if (reviewer, trace_id) not in self._live_keys():
                return
            self._known.discard((reviewer, trace_id))
        self._append({"reviewer": reviewer, "trace_id": trace_id, "form": None, "at": datetime.now(UTC).isoformat()})

    def drafts(self, reviewer: str) -> dict[str, dict]:
        """``trace_id -> {"form": ..., "at": datetime}`` of the reviewer's live drafts."""
        with self._lock:
            return {trace_id: record for (who, trace_id), record in self._live().items() if who == reviewer}

    def _live_keys(self) -> set[tuple[str, str]]:
        if self._known is None:
            self._known = set(self._live())
        return self._known

    def _append(self, record: dict) -> None:
        with self._lock:
            _local_log.append(self.path, _local_log.frame(record))
            if self.path.stat().st_size > COMPACT_BYTES:
                live = self._live()
                _local_log.rewrite(self.path, (_local_log.frame({**r, "at": r["at"].isoformat()})
                                               for r in live.values()))

    def _live(self) -> dict[tuple[str, str], dict]:
        latest: dict[tuple[str, str], dict] = {}
        for record in _local_log.records(self.path):
            key = (record.get("reviewer"), record.get("trace_id"))
            try:
                at = datetime.fromisoformat(record["at"])
            except (KeyError, TypeError, ValueError):
                continue
            if isinstance(key[0], str) and isinstance(key[1], str):
                latest[key] = {**record, "at": at}
        return {key: record for key, record in latest.items() if isinstance(record.get("form"), dict)}


class DraftWriter:
    """Writes the latest form at most every ``interval`` seconds, the last change always (a trailing timer).

    Parameters
    ----------
    write
        Called with ``(trace_id, form)`` on a background timer or at once.
    interval
        Seconds between writes while the form keeps changing.
    clock
        Monotonic seconds (tests inject one).
    """

    def __init__(self, write: Callable[[str, dict], None], *, interval: float = DRAFT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write, self.interval, self._clock = write, interval, clock
        self._lock = threading.Lock()
        self._waiting: dict[str, dict] = {}
        self._last = float("-inf")
        self._timer: threading.Timer | None = None

    def changed(self, trace_id: str, form: dict) -> None:
        """The form of ``trace_id`` changed: write it now, or when the interval has passed."""
        with self._lock:
            self._waiting[trace_id] = form
            wait = self._last + self.interval - self._clock()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def forget(self, trace_id: str) -> None:
        """Drop a change not yet written (its label was just saved); waits for a write in progress."""
        with self._lock:
            self._waiting.pop(trace_id, None)

    def flush(self) -> None:
        """Write every waiting form now (under the lock, so a later ``forget`` sees no write in flight)."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._last = self._clock()
            for trace_id, form in waiting.items():
                self._write(trace_id, form)


def form_fields(form: object) -> dict | None:
    """The fields of a stored form, type-checked (``None`` when the record is not a usable form)."""
    if not isinstance(form, dict):
        return None
    categories = form.get("categories") or []
    fields = {"verdict": form.get("verdict"), "categories": tuple(categories) if isinstance(categories, list) else (),
              "note": form.get("note") or "", "corrected_output": form.get("corrected_output") or "",
              "escalate": bool(form.get("escalate"))}
    texts_ok = all(isinstance(fields[k], str) for k in ("note", "corrected_output"))
    if not texts_ok or not all(isinstance(c, str) for c in fields["categories"]):
        return None
    if fields["verdict"] is not None and not isinstance(fields["verdict"], str):
        return None
    return fields
