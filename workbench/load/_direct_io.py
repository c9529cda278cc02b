"""Sequential writes of big files straight to the disk (``O_DIRECT``), past the page cache.

A load writes gigabytes twice: the spill's text (:mod:`workbench.load._spill`)
and the cache's tables (:mod:`workbench.load.cache`). Through the page cache,
every 4 KiB written first costs a fresh page-cache page, zeroed and then
copied into, and on a VM that is slow: writing the cache of a million spans
(2.1 GB) took 8.9 s, 5.7 s of it system time. With direct I/O the bytes are
copied once, into a reused page-aligned staging buffer, and go from there to
the disk: 3.6-3.8 s, 0.6 s of system time.

Direct I/O needs whole pages at page offsets: :class:`DirectWriter` fills
its staging buffer, writes it when full, and pads the tail; :meth:`close`
cuts a named file back to its true length. Where the file system refuses
``O_DIRECT`` (tmpfs) the file is opened without it; where it accepts the flag
but not a write (``EINVAL``), the flag is cleared and the writes go on
through the page cache.
"""

from __future__ import annotations

import errno
import mmap
import os

import numpy as np

PAGE_BYTES = max(mmap.ALLOCATIONGRANULARITY, 4096)
STAGE_BYTES = 8 << 20  # per writer: direct writes go through this page-aligned buffer
O_DIRECT = getattr(os, "O_DIRECT", 0)
AVAILABLE = hasattr(os, "pwrite")  # POSIX; elsewhere (Windows) callers write files the plain way


def new_stage(size: int | None = None) -> np.ndarray:
    """A page-aligned staging buffer (anonymous memory map) for :class:`DirectWriter`."""
    return np.frombuffer(mmap.mmap(-1, size or STAGE_BYTES), dtype=np.uint8)


class DirectWriter:
    """Sequential writes to a file descriptor, through a staging buffer; direct I/O when ``direct``.

    File-like enough for ``write_ipc`` and pyarrow (``write``, ``tell``,
    ``flush``, ``close``). :meth:`seek_to` and :meth:`finish` let one
    descriptor take several runs of writes, each starting on a page (the
    spill's regions).

    Parameters
    ----------
    fd
        An open descriptor, owned by the writer from now on.
    direct
        Whether ``fd`` was opened with ``O_DIRECT``.
    stage
        A staging buffer to reuse (:func:`new_stage`); a new one otherwise.
        Its size must be a multiple of the page size.
    """

    def __init__(self, fd: int, direct: bool, stage: np.ndarray | None = None) -> None:
        self.fd = fd
        self.direct = direct
        self._stage = stage if stage is not None else new_stage()
        self._filled = 0
        self._at = 0  # where the staging buffer's first byte goes in the file
        self.closed = False

    @classmethod
    def create(cls, path: str | os.PathLike, stage: np.ndarray | None = None) -> DirectWriter:
        """A new (or emptied) file at ``path``, with direct I/O where its file system allows it."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        if O_DIRECT:
            try:
                return cls(os.open(path, flags | O_DIRECT, 0o644), True, stage)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: no direct I/O here (tmpfs)
                    raise
        return cls(os.open(path, flags, 0o644), False, stage)

    def write(self, data) -> int:
        """Append ``data`` (any buffer); returns its length in bytes."""
        raw = np.frombuffer(data, dtype=np.uint8)
        stage, done = self._stage, 0
        if not self.direct and len(raw) >= len(stage):  # the page cache copies it anyway: no staging
            self.finish()
            self._at = self._pwrite(raw, self._at)
            return len(raw)
        while done < len(raw):
            n = min(len(raw) - done, len(stage) - self._filled)
            stage[self._filled: self._filled + n] = raw[done: done + n]
            self._filled, done = self._filled + n, done + n
            if self._filled == len(stage):
                self._at = self._pwrite(stage, self._at)
                self._filled = 0
        return len(raw)

    def tell(self) -> int:
        return self._at + self._filled

    def seek_to(self, offset: int) -> None:
        """Start the next writes at ``offset``, a multiple of the page size (after :meth:`finish`)."""
        if self._filled or offset % PAGE_BYTES:
            raise ValueError("seek_to needs a finished writer and a page-aligned offset")
        self._at = offset

    def finish(self) -> int:
        """Write what is staged (a direct write padded to whole pages); returns the true end of the data."""
        end = self._at + self._filled
        if self._filled:
            size = -(-self._filled // PAGE_BYTES) * PAGE_BYTES if self.direct else self._filled
            self._pwrite(self._stage[:size], self._at)
            self._at, self._filled = end, 0
        return end

    def flush(self) -> None:
        """Nothing to do: staged bytes are written when the stage is full and at :meth:`finish`."""

    def close(self) -> None:
        """Write what is staged, cut the file at the end of the data (no padding) and close the descriptor."""
        if self.closed:
            return
        self.closed = True
        try:
            os.ftruncate(self.fd, self.finish())
        finally:
            os.close(self.fd)

    def __enter__(self) -> DirectWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _pwrite(self, data: np.ndarray, at: int) -> int:
        try:
            return _pwrite_all(self.fd, memoryview(data), at)
        except OSError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
        # the file system took O_DIRECT but not this write: go on through the page cache
        import fcntl  # POSIX only, as O_DIRECT is

        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~O_DIRECT)
        self.direct = False
        return _pwrite_all(self.fd, memoryview(data), at)


def _pwrite_all(fd: int, view: memoryview, at: int) -> int:
    """Write all of ``view`` at ``at``; returns the offset after it."""
    while len(view):
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written
    return at
