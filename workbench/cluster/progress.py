"""Plain-text progress for long clustering steps (no ipywidgets, no tqdm).

A :class:`Progress` reports each named step when it starts and when it ends, with
its duration, to a callback or to ``stderr``. The pipeline adds a note when a step
will pay numba's one-off compilation, so the first run in a fresh kernel is not a
silent wait.

Examples
--------
>>> seen = []
>>> progress = Progress(lambda event: seen.append(event.step))
>>> with progress.step("embed", detail="2,000 texts"):
...     pass
>>> seen
['embed', 'embed']
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One report: a step started (``seconds is None``) or finished (``seconds`` set)."""

    step: str
    detail: str = ""
    seconds: float | None = None

    @property
    def message(self) -> str:
        """The line shown to the user."""
        detail = f" ({self.detail})" if self.detail else ""
        if self.seconds is None:
            return f"[cluster] {self.step}{detail} …"
        return f"[cluster] {self.step}{detail}: {self.seconds:.1f} s"


ProgressCallback = Callable[[ProgressEvent], None]


def _print_event(event: ProgressEvent) -> None:
    print(event.message, file=sys.stderr, flush=True)


class Progress:
    """Reports steps to ``callback`` (``True``: print to stderr; ``False``/``None``: silent).

    Also keeps every finished step's duration in :attr:`timings` (seconds by step).
    """

    def __init__(self, callback: bool | ProgressCallback | None = True) -> None:
        if callback is True:
            self._callback: ProgressCallback | None = _print_event
        elif callback is False or callback is None:
            self._callback = None
        elif callable(callback):
            self._callback = callback
        else:
            raise TypeError(f"progress must be True, False or a callable, not {type(callback).__name__}")
        self.timings: dict[str, float] = {}

    def note(self, step: str, detail: str = "") -> None:
        """Report a one-off message (e.g. "compiling numerical code, first run only")."""
        if self._callback is not None:
            self._callback(ProgressEvent(step, detail))

    @contextmanager
    def step(self, name: str, *, detail: str = "") -> Iterator[None]:
        """Time the enclosed block and report its start and end."""
        if self._callback is not None:
            self._callback(ProgressEvent(name, detail))
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        if self._callback is not None:
            self._callback(ProgressEvent(name, detail, seconds))
