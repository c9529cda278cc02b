"""Load trace exports into polars tables: spans, traces, sessions, feedback, problems.

>>> from workbench.load import read_traces
>>> result = read_traces("data/support_agent.otlp.jsonl")   # doctest: +SKIP

Names are imported on first use: ``read_traces`` itself imports nothing heavy,
so that a fresh process's first load scans its file while polars, numpy and
pyarrow are being imported (:mod:`workbench.load._head_start`).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "READERS": "workbench.load.detect",
    "LoadError": "workbench.load._base",
    "LoadResult": "workbench.load.result",
    "Problem": "workbench.load._base",
    "ReaderResult": "workbench.load._base",
    "detect_format": "workbench.load.detect",
    "read_traces": "workbench.load.api",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'workbench.load' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
