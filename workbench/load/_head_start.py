"""A load's head start: the first blocks of a big OTLP file scanned while the loader is being imported.

A fresh process (the ``workbench`` command, a script, a notebook's first
load) spends ~0.2 s importing polars, numpy and pyarrow before a load can
begin, on one core, while the other waits. The C scanner needs none of them.
So :func:`workbench.load.api.read_traces` calls :func:`begin` before it
imports the loader: a thread maps the file and scans every other one of its
first blocks, cut where the loader will cut them
(:mod:`workbench.load._block_cuts`). When the loader's reader starts, it
takes what was scanned (:func:`claim`; the block in progress is finished
first) and its workers map those blocks without scanning them again.
Whatever nobody claims is let go (:func:`discard`).

It starts only where it can pay: one plain file of at least
``HEAD_START_FROM`` bytes whose first line looks like OTLP JSON Lines,
read as ``"otlp"`` or ``"auto"``, with the scanner built, no cache entry that
will answer the call, and the loader not imported yet (then there is no
import to overlap). The loader checks the file again (same path, size,
modification time and inode) and the shape it reads, so a guess that does
not hold only costs the scan.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from workbench.load import _scanner
from workbench.load._block_cuts import block_bytes, block_end
from workbench.load._cache_keys import cache_key, has_entry, resolve_dir, set_key
from workbench.load._memory import settle_glibc_malloc

HEAD_START_FROM = 64 << 20  # smaller files: the scan of a block or two is not worth a thread
# blocks scanned at most: about what one core scans while the loader imports (~0.2 s). Each holds its scratch
# memory until its block is mapped, which the loader's own first scans then cannot reuse (fresh memory is what a
# load pays most for here), so more is not better: 100k spans, 40 alternating fresh-process runs of import +
# load, median 0.514 s without a head start, 0.495 s with 2 or 4 blocks (mean 0.521, 0.507, 0.504 s)
MAX_BLOCKS = 4
# every other block: the loader's workers then alternate blocks to scan (C, without the GIL) with blocks only
# to map (mostly Python and polars, with it); the head start's blocks in a row were mapped one after another,
# each worker waiting for the GIL, while the other core idled
SCAN_EVERY = 2
_LOADER = "workbench.load._otlp_fast"  # imported: the loader is ready, no head start
_FIRST_LINE_BYTES = 1 << 16
_current: HeadStart | None = None
_lock = threading.Lock()


class HeadStart:
    """The scan of a file's first blocks on a thread: ``{offset: (end, the scanner's answer)}``."""

    def __init__(self, path: str, shape: str, identity: tuple, cached: Callable[[], bool]) -> None:
        self.path, self.shape, self.identity, self._cached = path, shape, identity, cached
        self.scanned: dict[int, tuple] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-head-start", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._cached():  # checked here, not on the thread that imports: a key reads ~6 MB of the file
                return
        except OSError:
            return
        settle_glibc_malloc()  # as the loader sets it, before the scanner's first allocations
        try:
            with open(self.path, "rb") as raw:
                region = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return
        try:
            size, spec = len(region), _scanner.SHAPES[self.shape]
            step, start, index = block_bytes(size), 0, 0
            while start < size and len(self.scanned) < MAX_BLOCKS and not self._stop.is_set():
                end = block_end(region, start, size, step)
                if index % SCAN_EVERY == 0:
                    with memoryview(region) as view:
                        self.scanned[start] = (end, _scanner.scan(view[start:end], spec))
                start, index = end, index + 1
        except MemoryError:
            pass  # the loader scans the rest itself
        finally:
            region.close()

    def stop(self) -> dict[int, tuple]:
        """Stop after the block in progress; the blocks scanned."""
        self._stop.set()
        self._thread.join()
        return self.scanned


def begin(paths, *, format: str, cache) -> None:  # noqa: A002 - read_traces' argument
    """Start a head start for a :func:`~workbench.load.api.read_traces` call, where it can pay (module
    docstring)."""
    global _current
    if not _scanner.ENABLED or _LOADER in sys.modules or format not in ("auto", "otlp"):
        return
    if not isinstance(paths, str | os.PathLike):
        return
    path = str(Path(paths))  # as the loader names it (expand_paths), for claim to match
    try:
        info = os.stat(path)
        if not os.path.isfile(path) or info.st_size < HEAD_START_FROM:
            return
        shape = _shape(path)
        if shape is None:
            return
    except OSError:
        return
    head = HeadStart(path, shape, _identity(info), lambda: _cached(path, format, cache))
    with _lock:
        _current, replaced = head, _current
    if replaced is not None:  # a call on another thread began one meanwhile
        replaced.stop().clear()


def claim(source: str) -> tuple[str, dict[int, tuple]] | None:
    """The shape the head start read ``source`` as and what it scanned (``None``: nothing, or not this file as
    it is now); the head start ends here either way. The caller checks the shape."""
    head = _take()
    if head is None:
        return None
    scanned = head.stop()
    try:
        same = head.path == source and head.identity == _identity(os.stat(source))
    except OSError:
        same = False
    return (head.shape, scanned) if same else None


def discard() -> None:
    """End a head start nobody claimed, and let its scans go."""
    head = _take()
    if head is not None:
        head.stop().clear()


def _take() -> HeadStart | None:
    global _current
    with _lock:
        head, _current = _current, None
    return head


def _identity(info: os.stat_result) -> tuple:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _shape(path: str) -> str | None:
    """``"span"`` or ``"request"`` where the file's first line looks like an OTLP span or Collector request:
    the loader's test (:func:`workbench.load._scanner.record_shape`), and a span must name its ids."""
    with open(path, "rb") as handle:
        head = handle.read(_FIRST_LINE_BYTES)
    first = head.split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return None
    shape = _scanner.record_shape(first)
    return shape if shape == "request" or (b'"traceId"' in first and b'"spanId"' in first) else None


def _cached(path: str, format: str, cache) -> bool:
    """Whether the cache holds this call's result (:func:`workbench.load.api.read_traces` reads it back)."""
    directory = resolve_dir(cache)
    if directory is None or not Path(directory).is_dir():
        return False
    key = cache_key(path, "otlp", _scanner.OTLP_READER_VERSION)
    return has_entry(Path(directory), set_key([key], format))
