"""A JSON Lines input cut in blocks of whole lines, for the columnar OTLP path (:mod:`workbench.load._otlp_fast`).

Where the input comes from decides how its bytes get into memory:

* a plain file is memory-mapped (read-only) and each block is a view of the
  mapping: the parser reads the page cache itself, nothing is copied, and no
  fresh memory is touched. Fresh memory is what a load pays most for on a
  virtual machine: each page first written costs a fault, and where the host
  took the page back (free page reporting) a fault on the host too. Reading
  100k spans (257 MB) into a ring of buffers took 0.05 s in a quiet phase of
  the benchmark VM and 0.3-0.4 s in a slow one, almost all of it system time;
  mapping took 0.05-0.06 s in both. The pages of blocks the load is done with
  are unmapped as it goes (``MADV_DONTNEED``: they stay in the page cache), so
  what the process holds of the file stays at a few blocks.
* bytes already in memory are cut the same way, without a copy.
* a ``.gz`` file, a pipe, or any file when ``WORKBENCH_NO_MMAP=1`` is set is
  read into a ring of reused buffers (:func:`workbench.load._memory.reused_buffer`).

A mapped file must not shrink while it is read: like any memory-mapped reader
(polars' own among them), the process would get ``SIGBUS``. Appending is
harmless: the load reads the file as long as it was when it started.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import mmap
import os
import stat
from collections import deque
from dataclasses import dataclass

import numpy as np

from workbench.load._block_cuts import block_bytes, block_end
from workbench.load._interop import unique
from workbench.load._memory import ReusedBuffer, reused_buffer
from workbench.load._otlp_native import NOT_SCANNED, populate, unmap
from workbench.load._otlp_native import newlines as native_newlines

LONG_LINE_BYTES = 512  # lines at least this long on average: newlines found line by line
NO_MMAP_VARIABLE = "WORKBENCH_NO_MMAP"
_GZIP_MAGIC = b"\x1f\x8b"
_PAGE = mmap.PAGESIZE
_CAN_UNMAP_PAGES = hasattr(mmap, "MADV_DONTNEED") and hasattr(mmap.mmap, "madvise")
_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux's value; Python 3.11 lacks the name


@dataclass
class Block:
    """Whole lines of the input: where they start, their bytes, and the newline positions."""

    first_line: int
    offset: int
    data: memoryview
    newlines: np.ndarray
    scanned: object = NOT_SCANNED  # the scanner's answer for ``data`` where a load's head start scanned it

    @classmethod
    def of(cls, first_line: int, offset: int, buffer, start: int, end: int, scratch: np.ndarray) -> Block:
        """The block of ``buffer[start:end]``; ``scratch`` is a reused boolean buffer for :func:`newlines`."""
        return cls(first_line, offset, memoryview(buffer)[start:end], newlines(buffer, start, end, scratch))

    @property
    def n_lines(self) -> int:
        ends_open = len(self.data) and self.data[-1] != 10
        return len(self.newlines) + (1 if ends_open else 0)

    def lines_start_with_brace(self) -> bool:
        """No blank lines, no leading spaces: row ``i`` of a parse is line ``i``."""
        raw = np.frombuffer(self.data, dtype=np.uint8)
        starts = self.newlines[self.newlines < len(raw) - 1] + 1
        return bool(len(raw)) and raw[0] == 123 and bool(np.all(raw[starts] == 123))

    def around(self, row: int) -> tuple[Block | None, Block, Block | None]:
        """The lines before line ``row`` (0-based), that line, and the lines after it (``None`` when none)."""
        start = int(self.newlines[row - 1]) + 1 if row else 0
        end = int(self.newlines[row]) + 1 if row < len(self.newlines) else len(self.data)
        before = Block(self.first_line, self.offset, self.data[:start], self.newlines[:row]) if row else None
        line = Block(self.first_line + row, self.offset + start, self.data[start:end],
                     self.newlines[row:row + 1] - start)
        after = (Block(self.first_line + row + 1, self.offset + end, self.data[end:], self.newlines[row + 1:] - end)
                 if end < len(self.data) else None)
        return before, line, after

    def split(self, parts: int) -> list[Block]:
        """Up to ``parts`` pieces of about equal size, cut at line ends (one piece for a single line)."""
        inner = self.newlines[self.newlines < len(self.data) - 1]
        targets = np.arange(1, parts) * (len(self.data) // parts)
        cuts = unique(inner[np.minimum(np.searchsorted(inner, targets), len(inner) - 1)] + 1) if len(inner) else []
        pieces, start, line = [], 0, self.first_line
        for cut in [*(int(c) for c in cuts), len(self.data)]:
            newlines = self.newlines[(self.newlines >= start) & (self.newlines < cut)] - start
            pieces.append(Block(line, self.offset + start, self.data[start:cut], newlines))
            start, line = cut, line + len(newlines)
        return pieces

    def line_pieces(self, lines: np.ndarray) -> list[tuple[int, int, bytes]]:
        """``(line_no, byte_offset, bytes)`` of the given 0-based lines."""
        starts = np.concatenate([[0], self.newlines + 1])
        pieces = []
        for index in lines.tolist():
            start = int(starts[index])
            end = int(self.newlines[index]) + 1 if index < len(self.newlines) else len(self.data)
            pieces.append((self.first_line + index, self.offset + start, bytes(self.data[start:end])))
        return pieces


def iter_blocks(source: str, data: bytes | None, in_flight: int, scanned: dict[int, tuple] | None = None):
    """Blocks of whole lines (:func:`block_bytes` each) of a file, or of ``data`` when given.

    The caller holds at most ``in_flight`` blocks it has not finished with:
    the memory behind a block is reused (ring) or let go (mapping) that many
    blocks later. ``scanned`` maps the offsets of a mapped file's blocks that a
    load's head start scanned to ``(end, the scanner's answer)``; a block cut
    there gets its answer (:attr:`Block.scanned`), which leaves the dict.
    """
    if data is not None:
        yield from _cut(data, len(data), in_flight)
        return
    with open(source, "rb") as raw:
        region = _mapped(raw)
        if region is None:
            handle = gzip.GzipFile(fileobj=raw) if _is_gzip(raw) else raw
            yield from _read_in_ring(handle, block_bytes(os.fstat(raw.fileno()).st_size), in_flight)
            return
        try:
            yield from _cut(region, len(region), in_flight, scanned)
        finally:
            with contextlib.suppress(BufferError):  # a block still viewed: unmapped when the last view goes
                region.close()


def _mapped(raw) -> mmap.mmap | None:
    """The whole of an open plain file, mapped read-only; ``None`` for gzip, an empty or special file, or
    where mapping is off or fails."""
    if os.environ.get(NO_MMAP_VARIABLE):
        return None
    info = os.fstat(raw.fileno())
    if not stat.S_ISREG(info.st_mode) or not info.st_size or _is_gzip(raw):
        return None
    try:
        return mmap.mmap(raw.fileno(), info.st_size, access=mmap.ACCESS_READ)
    except (OSError, ValueError, OverflowError):  # a filesystem that cannot map, a file too big for the address space
        return None


def _is_gzip(raw: io.BufferedReader) -> bool:
    return raw.peek(2)[:2] == _GZIP_MAGIC  # peeked, not read: a pipe cannot seek back


def _cut(buffer, size: int, in_flight: int, scanned: dict[int, tuple] | None = None):
    """Blocks over one buffer holding the whole input (``bytes``, or a file's mapping); a mapping's pages
    are unmapped ``in_flight`` blocks after their block."""
    step = block_bytes(size)
    scratch = np.empty(step + (1 << 20), dtype=bool)
    release = _CAN_UNMAP_PAGES and isinstance(buffer, mmap.mmap)
    done: deque[tuple[int, int]] = deque()
    line, start = 1, 0
    while start < size:
        end = block_end(buffer, start, size, step)
        if release:
            _map_in(buffer, start, end)
        block = Block.of(line, start, buffer, start, end, scratch)
        done_early = scanned.pop(start, None) if scanned else None
        if done_early is not None and done_early[0] == end:
            block.scanned = done_early[1]
        yield block
        line, start = line + len(block.newlines), end
        if release:
            done.append((block.offset, end))
            if len(done) > in_flight:
                _unmap_pages(buffer, *done.popleft())


def _map_in(region: mmap.mmap, start: int, end: int) -> None:
    """Map the pages of ``[start, end)`` (in the page cache after the first read) in one call
    (``MADV_POPULATE_READ``, Linux 5.14): 257 MB in 30 ms, against 45-50 ms of page faults taken one
    64 KiB run at a time as the newlines are searched. Elsewhere the faults still do it. The C
    extension makes the call without the GIL, which the workers' Python would otherwise wait out."""
    first = start - start % _PAGE
    if populate(memoryview(region)[first:end]) is None:
        with contextlib.suppress(OSError, ValueError):
            region.madvise(_POPULATE_READ, first, end - first)


def _unmap_pages(region: mmap.mmap, start: int, end: int) -> None:
    """Drop the process's mapping of the whole pages in ``[start, end)`` (the page cache keeps them; a later
    read maps them again). The page that holds ``end`` may hold the next block's start: it stays."""
    first, last = start - start % _PAGE, end - end % _PAGE
    if last > first and unmap(memoryview(region)[first:last]) is None:
        with contextlib.suppress(OSError, ValueError):
            region.madvise(mmap.MADV_DONTNEED, first, last - first)


def _read_in_ring(handle, step: int, in_flight: int):
    """Blocks read straight into a ring of ``in_flight + 1`` reused buffers (on a VM a page fault on fresh
    memory can cost more than parsing the bytes in it)."""
    ring: list[ReusedBuffer] = [bytearray(0)] * (in_flight + 1)
    scratch = np.empty(step + (1 << 20), dtype=bool)
    line, offset, carry, turn = 1, 0, b"", 0
    while True:
        wanted = len(carry) + step
        if len(ring[turn]) < wanted:
            ring[turn] = reused_buffer(wanted + (1 << 20))  # slack: the carried part of a line varies
        buffer, view = ring[turn], memoryview(ring[turn])
        turn = (turn + 1) % len(ring)
        view[: len(carry)] = carry
        size = len(carry) + _read_into(handle, view[len(carry): wanted])
        if size == len(carry):  # end of file
            if carry:
                yield Block.of(line, offset, buffer, 0, size, scratch)
            return
        cut = buffer.rfind(b"\n", 0, size)
        if cut == -1:
            carry = bytes(view[:size])  # a line longer than a block: read on
            continue
        carry = bytes(view[cut + 1: size])
        block = Block.of(line, offset, buffer, 0, cut + 1, scratch)
        yield block
        line += len(block.newlines)
        offset += cut + 1


def newlines(buffer, start: int, end: int, scratch: np.ndarray) -> np.ndarray:
    """Positions of the newlines in ``buffer[start:end]``, counted from ``start``.

    Lines of spans are long (kilobytes): a ``memchr`` per line is 2-3x
    faster than comparing every byte. The C extension runs that loop without
    the GIL (100k spans: 19 ms of Python ``find`` calls -> 13 ms). Without it,
    long lines take a ``find`` per line; short lines (judged on the first 64
    KiB) the vectorised compare, into a reused buffer (fresh pages are slow
    to fault in on a VM).
    """
    found = native_newlines(memoryview(buffer)[start:end])
    if found is not None:
        return found
    size = end - start
    head = min(size, 1 << 16)
    if np.count_nonzero(np.frombuffer(buffer, dtype=np.uint8, count=head, offset=start) == 10) * LONG_LINE_BYTES <= head:
        found, find = [], buffer.find
        at = find(b"\n", start, end)
        while at != -1:
            found.append(at)
            at = find(b"\n", at + 1, end)
        return np.array(found, dtype=np.int64) - start
    raw = np.frombuffer(buffer, dtype=np.uint8, count=size, offset=start)
    if len(scratch) < size:  # a line longer than a block
        return np.flatnonzero(raw == 10)
    is_newline = scratch[:size]
    np.equal(raw, 10, out=is_newline)
    return np.flatnonzero(is_newline)


def _read_into(handle, view: memoryview) -> int:
    total = 0
    while total < len(view):
        got = handle.readinto(view[total:])
        if not got:
            break
        total += got
    return total


def input_size(source: str, data: bytes | None) -> int:
    """Bytes in ``data``, or in the file at ``source``."""
    return len(data) if data is not None else os.stat(source).st_size

