"""glibc malloc settings for big loads (Linux only; a no-op elsewhere).

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
"""

from __future__ import annotations

import ctypes
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
