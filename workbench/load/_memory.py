"""Memory for big loads: glibc malloc settings, and buffers on huge pages (Linux only; plain memory elsewhere).

glibc serves an allocation above its *mmap threshold* with a fresh
``mmap`` and gives it back on free; below it, from the heap, whose top is
returned to the system past the *trim threshold*. Both thresholds start at
128 KiB and glibc raises them as the process frees large blocks, up to
32 MiB and 64 MiB. A load's numpy temporaries (a few MiB per block) are
freed and allocated again block after block; until glibc has raised the
thresholds, each one is a fresh mapping whose pages fault in again. On a VM
a page fault costs 3-15 microseconds, and in a million-span load these are
about 100k of the 1.04M faults (10%).

:func:`settle_glibc_malloc` sets the thresholds glibc would reach anyway,
once per process, when the first OTLP JSON Lines file is read (any size).

:func:`reused_buffer` is memory a load keeps and overwrites block after
block (the ring the blocks of a gzip file or a pipe are read into; a plain file is mapped,
see :mod:`workbench.load._blocks`). On Linux it is an anonymous
mapping advised to use transparent huge pages, so that its 26-64 MiB fault
in a 2 MiB page at a time (where the kernel allows them, which its usual
"madvise" setting does) instead of 4 KiB: 64 MiB took 27 ms to touch in 4
KiB pages and 4-7 ms in huge pages on the benchmark VM.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES  # what glibc sets with each raise of the mmap threshold
_settled: bool | None = None


def settle_glibc_malloc() -> bool:
    """Set glibc's mmap and trim thresholds to their dynamic maxima (once); whether they are set."""
    global _settled
    if _settled is None:
        _settled = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL("libc.so.6")
                _settled = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
                    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
            except (OSError, AttributeError):  # no such library or symbol: leave malloc alone
                _settled = False
    return _settled


ReusedBuffer = bytearray | mmap.mmap
NO_HUGE_PAGES_VARIABLE = "WORKBENCH_NO_HUGE_PAGES"
_HUGE_PAGES = all(hasattr(mmap, name) for name in ("MAP_PRIVATE", "MAP_ANONYMOUS", "MADV_HUGEPAGE"))


def reused_buffer(size: int) -> ReusedBuffer:
    """``size`` zero bytes, writable, with ``find``/``rfind`` and the buffer protocol: on huge pages
    where the system has them (see the module docstring), else a ``bytearray``."""
    if not _HUGE_PAGES or size < 2 << 20 or os.environ.get(NO_HUGE_PAGES_VARIABLE):
        return bytearray(size)
    try:
        buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError:
        return bytearray(size)
    with contextlib.suppress(OSError):  # advice the kernel does not take: 4 KiB pages it is
        buffer.madvise(mmap.MADV_HUGEPAGE)
    return buffer
