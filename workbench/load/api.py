"""``read_traces``: the one entry point from files to the five tables.

Example
-------
>>> from workbench.load import read_traces
>>> result = read_traces("data/support_agent.otlp.jsonl")   # doctest: +SKIP
>>> result.traces.select("trace_id", "prompt_version", "passed")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.load import _head_start

if TYPE_CHECKING:
    from workbench.load.result import LoadResult

SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".csv")

PathLike = str | os.PathLike


def read_traces(
    paths: PathLike | Iterable[PathLike],
    *,
    format: str = "auto",
    strict: bool = False,
    cache: bool | PathLike = True,
) -> LoadResult:
    """Load trace exports into spans, traces, sessions, feedback and problems.

    Parameters
    ----------
    paths
        A file, a directory (searched recursively for ``.json``, ``.jsonl``,
        ``.ndjson``, ``.parquet``, ``.csv`` and their ``.gz``), a glob, or a
        list of these.
    format
        ``"auto"`` detects each file's format (reported in ``result.files``);
        or a reader name from :data:`workbench.load.detect.READERS`.
    strict
        Raise :class:`LoadError` at the first bad record, naming file:line.
        Otherwise bad records go to ``result.problems`` and the rest loads.
    cache
        ``True`` keeps a copy of the loaded tables in the default cache
        directory (see :mod:`workbench.load.cache`), so loading the same
        unchanged files again takes well under a second; a path puts it
        there, ``False`` turns it off.

    Returns
    -------
    LoadResult
        ``.spans``, ``.traces``, ``.sessions``, ``.feedback``, ``.problems``,
        ``.files`` (one row per file: format, whether detected, rows, seconds).

    Examples
    --------
    >>> result = read_traces(["exports/", "more/*.jsonl.gz"], cache=False)  # doctest: +SKIP
    >>> result.problems_by_reason()                                         # doctest: +SKIP
    {'invalid JSON': 2}
    """
    started = time.perf_counter()
    # the loader's imports take ~0.2 s in a fresh process: meanwhile a thread scans the file's first blocks
    _head_start.begin(paths, format=format, cache=cache)
    try:
        from workbench.load._load_files import load

        return load(paths, format=format, strict=strict, cache=cache, started=started)
    finally:
        _head_start.discard()  # what the reader did not claim


def expand_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files named by paths, directories and globs, in a stable order, without repeats.

    Raises
    ------
    FileNotFoundError
        For a path or glob that matches nothing.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    found: dict[Path, None] = {}
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            matches = sorted(p for p in Path(text).rglob("*") if p.is_file() and _is_trace_file(p))
        elif os.path.exists(text):
            matches = [Path(text)]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        else:
            matches = []
        if not matches:
            raise FileNotFoundError(f"no trace files at {text!r}")
        for match in matches:
            found.setdefault(match, None)
    return list(found)


def _is_trace_file(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(SUFFIXES) and not path.name.startswith(".")
