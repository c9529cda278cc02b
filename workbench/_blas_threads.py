"""How long numpy's OpenBLAS threads spin when idle: a default workbench sets before numpy loads.

OpenBLAS starts a thread per core when numpy is imported, and each idle
thread busy-waits for ``2**OPENBLAS_THREAD_TIMEOUT`` CPU cycles before it
sleeps: by default ``2**28``, about 0.1 s, at start-up and again after every
BLAS call. workbench's loaders use no BLAS at all, yet on the 2-core
benchmark machine that start-up spin was ~0.12 CPU-s of a 1.2 CPU-s load of
100k spans, and it slowed the single-core imports beside it by ~25 ms (two
busy vCPUs each run slower there).

``2**24`` cycles (a few milliseconds) keeps back-to-back BLAS calls on
spinning threads; a call after a longer pause waits ~0.1 ms for a thread to
wake. A 1500 x 1500 matrix product takes as long either way. The default is
set only when neither ``OPENBLAS_THREAD_TIMEOUT`` nor its old name
``GOTO_THREAD_TIMEOUT`` is set, and only before numpy is imported (OpenBLAS
reads it once, when it loads); set either variable to choose your own.
"""

from __future__ import annotations

import os
import sys

VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")
SPIN_EXPONENT = "24"


def shorten_idle_spin() -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT`` to :data:`SPIN_EXPONENT` unless numpy is loaded or it is chosen already;
    whether it was set."""
    if "numpy" in sys.modules or any(name in os.environ for name in VARIABLES):
        return False
    os.environ[VARIABLES[0]] = SPIN_EXPONENT
    return True
