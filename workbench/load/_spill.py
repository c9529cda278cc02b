"""The input and output text of a big load kept in a memory-mapped file instead of on the heap.

Inputs and outputs are most of an OTLP export (1.6 GB of a 2.6 GB file of a
million spans). Held in memory they make a load's peak about 1.3x its file.
:class:`TextSpill` writes the text parsed for a block to an unnamed
file in the temporary directory (``O_TMPFILE``: nothing to clean up, gone
when the last frame using it is, even after a crash) and hands back the same
strings as Arrow views into a read-only memory map of that file. The parse
memory is then reused by the next block, and the text is read from disk only
when something reads it. Where direct I/O works the writes bypass the page
cache, so the text is really on disk, not in memory under another name.

The file takes about 0.65x of the export's size on disk while the frames
live. It goes where :func:`spill_directory` finds a disk: a temporary
directory in RAM (tmpfs, the default ``/tmp`` of Debian 13 and Fedora) would
hold the text in memory under another name, so there the spill moves to
``/var/tmp`` or the cache directory, or does not happen at all. When a write fails (a full disk), the spill turns itself off and the
rest of the load keeps its text in memory, as a small file always does.

Only the values of the input and output keys move to the file: nothing in
a load reads them again. Other values that are not inline in their view
(13 bytes up) are copied to a compact buffer in memory, so that what the
mapping reads (model names, metadata, attributes kept as JSON) never waits
on the disk. Every value is the same string before and after
(``tests/load/test_spill.py``).
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import threading
import weakref
from collections.abc import Iterable

import numpy as np
import polars as pl
import pyarrow as pa

from workbench.load._direct_io import AVAILABLE as DIRECT_IO_AVAILABLE
from workbench.load._direct_io import O_DIRECT, PAGE_BYTES, DirectWriter
from workbench.load._interop import numpy_series, polars_series

INLINE_BYTES = 12  # Arrow keeps strings up to this long inside the 16-byte view
MIN_SPILL_BYTES = 1 << 20  # an array with less long text than this stays in memory
SPILL_AVAILABLE = DIRECT_IO_AVAILABLE  # POSIX; elsewhere text stays in memory
O_TMPFILE = getattr(os, "O_TMPFILE", 0)
MAX_REGION_BYTES = (1 << 31) - 1  # a view's offset into its buffer is an int32
_MAPPED: weakref.WeakSet = weakref.WeakSet()  # every region handed out and still in use
SPILL_DIR_VARIABLE = "WORKBENCH_SPILL_DIR"
IN_MEMORY_FILE_SYSTEMS = {"tmpfs", "ramfs"}


def spill_directory(extra: Iterable[str] = (), *, environ=os.environ, mounts: str | None = None) -> str | None:
    """Where a spill's file goes: a directory on a disk, or ``None`` when there is none (no spill).

    ``$WORKBENCH_SPILL_DIR`` when set (used as given); else the first of the
    system's temporary directory, ``/var/tmp`` and ``extra`` that exists, is
    writable and is not on a file system held in memory (tmpfs, ramfs).
    ``mounts`` is the text of ``/proc/self/mounts`` (read when not given;
    without it every directory counts as a disk).
    """
    if environ.get(SPILL_DIR_VARIABLE):
        return environ[SPILL_DIR_VARIABLE]
    if mounts is None:
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as handle:
                mounts = handle.read()
        except OSError:
            mounts = ""
    for directory in (tempfile.gettempdir(), "/var/tmp", *extra):
        if os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK) \
                and file_system_type(directory, mounts) not in IN_MEMORY_FILE_SYSTEMS:
            return directory
    return None


def file_system_type(path: str, mounts: str) -> str | None:
    """The type of the file system ``path`` is on, from the text of ``/proc/self/mounts`` (``None``: unknown)."""
    path = os.path.realpath(path)
    best, found = -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount(fields[1])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # the deepest mount point; a later mount over the same one wins
            best, found = len(point), fields[2]
    return found


def _unescape_mount(field: str) -> str:
    """``/proc/self/mounts`` writes space, tab, newline and backslash as octal escapes."""
    for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, char)
    return field


def drop_mapped_pages() -> None:
    """Take the text pages read so far out of this process's memory (they stay in the file).

    Reading mapped text pages it in, and it counts in the process's resident
    memory until the kernel needs the room. Whoever reads all of it (the
    cache writer) calls this now and then; a later read pages it in again.
    """
    for region in list(_MAPPED):
        try:
            region.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, ValueError, OSError):  # no madvise here, or the region is closed
            continue


class TextSpill:
    """An append-only, memory-mapped home for the text values of ``string_view`` arrays.

    A value moves to the file when its key is one of ``text_keys`` (inputs and
    outputs: the load never reads them again); every other value that is not
    inline in its view is copied to a compact buffer in memory, because the
    mapping reads those (model names, metadata, attributes kept as JSON).
    Any thread may move arrays; each writes to a file of its own.

    Parameters
    ----------
    text_keys
        The attribute keys whose values go to the file.
    directory
        Where the unnamed file lives (default: the system's temporary
        directory). If a write fails (a full disk), the spill turns itself
        off and arrays stay in memory as they were.
    """

    def __init__(self, text_keys: Iterable[str], directory: str | None = None) -> None:
        self._text_keys = list(text_keys)
        self._directory = directory
        self._files: dict[int, _SpillFile] = {}
        self._lock = threading.Lock()
        self.enabled = True
        self.bytes_written = 0

    def move(self, values: list[pa.Array], keys: list[pa.Array]) -> list[pa.Array]:
        """``values`` (``string_view``; ``keys`` beside them) with their text in the file, in one region.

        An array of another type or sliced comes back unchanged, as does
        everything when there is too little text to be worth a write or the
        spill is off.
        """
        return self._move(values, keys)

    def move_all(self, array: pa.Array) -> pa.Array:
        """``array`` (``string_view``) with all its text in the file: text built by the load, never read again."""
        return self._move([array], [None])[0]

    def _move(self, values: list[pa.Array], keys: list[pa.Array | None]) -> list[pa.Array]:
        """Move the text values (all values of an array whose keys are ``None``)."""
        all_views = [_views(array) for array in values]
        chosen = [i for i, array_views in enumerate(all_views) if array_views is not None]
        views = [all_views[i] for i in chosen]
        text = [_text_rows(v, keys[i], self._text_keys) if keys[i] is not None else v[:, 0] > INLINE_BYTES
                for i, v in zip(chosen, views, strict=True)]
        text_bytes = sum(int(v[rows, 0].sum()) for v, rows in zip(views, text, strict=True))
        data = [values[i].buffers()[2:] for i in chosen]
        total = sum(b.size for buffers in data for b in buffers)
        if not self.enabled or text_bytes < MIN_SPILL_BYTES or total > MAX_REGION_BYTES:
            return values
        try:
            mapped, starts = self._write([b for buffers in data for b in buffers])
        except OSError:
            self.enabled = False  # no room on disk: keep the text in memory from here on
            return values
        out, first = list(values), 0
        for i, array_views, rows, buffers in zip(chosen, views, text, data, strict=True):
            out[i] = _remapped(values[i], array_views, rows, mapped, starts[first: first + len(buffers)])
            first += len(buffers)
        return out

    def _write(self, data: list[pa.Buffer]) -> tuple[pa.Buffer, np.ndarray]:
        """Append the buffers to this thread's file; the mapped region and where each buffer starts in it.

        One file per writing thread: two threads appending to one file wait
        on its inode lock.
        """
        with self._lock:
            file = self._files.get(threading.get_ident())
            if file is None:
                file = self._files[threading.get_ident()] = _SpillFile.open(self._directory)
        sizes = np.array([b.size for b in data], dtype=np.int64)
        start = file.append(data)
        region = mmap.mmap(file.fd, int(sizes.sum()), access=mmap.ACCESS_READ, offset=start)
        _MAPPED.add(region)
        with self._lock:
            self.bytes_written += int(sizes.sum())
        return pa.py_buffer(region), np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def close(self) -> None:
        """Close the spill's own files (maps already handed out stay valid)."""
        with self._lock:
            for file in self._files.values():
                file.writer.close()
            self._files.clear()


class _SpillFile:
    """One unnamed file, appended to in page-aligned regions, with direct I/O where the system has it.

    Direct I/O (:mod:`workbench.load._direct_io`) skips the page cache: no
    pages to allocate and copy into (that cost 2.5 s of system time for the
    1.6 GB of a million spans, against ~0.2 s), and the text then really is
    on disk, not in memory. Where the file system refuses it, writes go
    through the page cache.
    """

    def __init__(self, writer: DirectWriter) -> None:
        self.writer = writer
        self.fd = writer.fd
        self.end = 0

    @property
    def direct(self) -> bool:
        return self.writer.direct

    @classmethod
    def open(cls, directory: str | None) -> _SpillFile:
        where = directory or tempfile.gettempdir()
        if O_TMPFILE:  # unnamed from the start (Linux): nothing to clean up, even after a crash
            for extra, direct in ([(O_DIRECT, True)] if O_DIRECT else []) + [(0, False)]:
                try:
                    return cls(DirectWriter(os.open(where, os.O_RDWR | O_TMPFILE | extra, 0o600), direct))
                except OSError:  # no direct I/O (tmpfs), or no unnamed files on this file system
                    continue
        handle = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - its descriptor is duplicated, then closed
        with handle:
            return cls(DirectWriter(os.dup(handle.fileno()), False))

    def append(self, data: list[pa.Buffer]) -> int:
        """Write the buffers one after another at the next page boundary; where they start."""
        start = -(-self.end // PAGE_BYTES) * PAGE_BYTES
        self.writer.seek_to(start)
        for buffer in data:
            self.writer.write(buffer)
        self.end = self.writer.finish()
        return start


def _views(array: pa.Array) -> np.ndarray | None:
    """The views of a ``string_view`` array whose text can move (``(n, 4)`` int32), else ``None``."""
    if array.offset or not pa.types.is_string_view(array.type) or len(array) == 0:
        return None
    buffers = array.buffers()
    if len(buffers) < 3 or any(b is None for b in buffers[2:]):
        return None
    return np.frombuffer(buffers[1], dtype=np.int32, count=4 * len(array)).reshape(-1, 4)


def _text_rows(views: np.ndarray, keys: pa.Array, text_keys: list[str]) -> np.ndarray:
    """Which values are text to move: a text key and not inline in the view.

    Keys are matched on their 16-byte views: a key of up to 12 bytes is
    entirely in its view (zero-padded), a longer one by length and prefix
    first, then by its bytes (a tenth of the time of a string ``is_in``). A
    text key ``"prefix*suffix"`` matches every key with that prefix and suffix
    (at least 4 bytes of prefix).
    """
    key_views = _views(keys)
    if key_views is None or len(key_views) != len(views):
        return np.zeros(len(views), dtype=bool)
    pairs = key_views.view(np.int64)  # (n, 2): length + prefix, then the rest of the view
    is_text = np.zeros(len(views), dtype=bool)
    for key in text_keys:
        if "*" in key:  # a pattern, "prefix*suffix": keys with the prefix's first 4 bytes, then by their text
            prefix, suffix = key.split("*", 1)
            maybe = np.flatnonzero((pairs[:, 0] >> 32) == int.from_bytes(prefix.encode()[:4], "little", signed=True))
            if len(maybe):
                found = polars_series(keys).gather(numpy_series(maybe))
                same = found.str.starts_with(prefix) & found.str.ends_with(suffix)
                is_text[maybe[same.fill_null(False).to_numpy()]] = True
            continue
        raw = key.encode()
        head = np.frombuffer(struct.pack("<i", len(raw)) + raw[:12].ljust(12, b"\0"), dtype=np.int64)
        if len(raw) <= INLINE_BYTES:
            is_text |= (pairs[:, 0] == head[0]) & (pairs[:, 1] == head[1])
            continue
        maybe = np.flatnonzero(pairs[:, 0] == head[0])
        if len(maybe):
            same = polars_series(keys).gather(numpy_series(maybe)) == key
            is_text[maybe[same.fill_null(False).to_numpy()]] = True
    return is_text & (views[:, 0] > INLINE_BYTES)


def _remapped(array: pa.Array, views: np.ndarray, text: np.ndarray, mapped: pa.Buffer, starts: np.ndarray) -> pa.Array:
    """``array`` with its ``text`` rows read from ``mapped`` (its buffers written at ``starts``), other rows copied."""
    lengths = views[:, 0]
    other = (lengths > INLINE_BYTES) & ~text
    moved = views.copy()
    moved[text, 2] = 0
    moved[text, 3] = starts[views[text, 2]] + views[text, 3]
    compact = polars_series(array).filter(numpy_series(other)).to_arrow(compat_level=pl.CompatLevel.oldest())
    heap = compact.buffers()[2] or pa.py_buffer(b"")
    moved[other, 2] = 1
    offsets = np.int64 if pa.types.is_large_string(compact.type) else np.int32
    moved[other, 3] = np.frombuffer(compact.buffers()[1], dtype=offsets, count=len(compact) + compact.offset
                                    )[compact.offset: compact.offset + len(compact)]
    return pa.Array.from_buffers(pa.string_view(), len(array),
                                 [array.buffers()[0], pa.py_buffer(moved), mapped, heap],
                                 null_count=array.null_count)
