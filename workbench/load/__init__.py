"""Load trace exports into polars tables: spans, traces, sessions, feedback, problems.

>>> from workbench.load import read_traces
>>> result = read_traces("data/support_agent.otlp.jsonl")   # doctest: +SKIP
"""

from __future__ import annotations

from workbench.load._base import LoadError, Problem, ReaderResult
from workbench.load.api import read_traces
from workbench.load.detect import READERS, detect_format
from workbench.load.result import LoadResult

__all__ = ["READERS", "LoadError", "LoadResult", "Problem", "ReaderResult", "detect_format", "read_traces"]
