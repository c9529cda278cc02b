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

from workbench.load import cache as _cache
from workbench.load._base import LoadError, Problem, ReaderResult, raise_or_collect
from workbench.load._records import read_head
from workbench.load.detect import FormatNotDetected, detect_format, reader_module
from workbench.load.result import LoadResult, assemble

SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".csv")
REASON_UNKNOWN_FORMAT = "unknown format"
REASON_UNREADABLE = "unreadable file"

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
        ``True`` keeps a Parquet copy of each file's parsed rows in the
        default cache directory (see :mod:`workbench.load.cache`), a path
        puts it there, ``False`` turns it off.

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
    files = expand_paths(paths)
    cache_dir = _cache.resolve_dir(cache)
    parts: list[tuple[ReaderResult, dict]] = []
    extra: list[Problem] = []
    for path in files:
        loaded = _read_one(path, format=format, strict=strict, cache_dir=cache_dir, extra=extra)
        if loaded is not None:
            parts.append(loaded)
    return assemble(parts, extra_problems=extra)


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


def _read_one(path: Path, *, format: str, strict: bool, cache_dir: Path | None,
              extra: list[Problem]) -> tuple[ReaderResult, dict] | None:
    started = time.perf_counter()
    source = str(path)
    try:
        size = path.stat().st_size
        fmt = format
        if format == "auto":
            fmt = detect_format(source, read_head(source))
        module = reader_module(fmt)
    except FormatNotDetected as exc:
        raise_or_collect(extra, Problem(source, None, None, REASON_UNKNOWN_FORMAT, detail=str(exc)), strict=strict)
        return None
    except OSError as exc:
        raise_or_collect(extra, Problem(source, None, None, REASON_UNREADABLE, detail=str(exc)), strict=strict)
        return None
    version = str(getattr(module, "READER_VERSION", "0"))
    key = _cache.cache_key(source, fmt, version) if cache_dir is not None else None
    result = _cache.load(cache_dir, key) if key else None
    cached = result is not None
    if result is not None:
        if strict and result.problems:
            raise LoadError(result.problems[0])
        result = _with_source(result, source)
    else:
        result = module.read(source, strict=strict)
        if key:
            _cache.store_in_background(cache_dir, key, result)
    info = {"path": source, "detected": format == "auto", "bytes": size,
            "seconds": time.perf_counter() - started, "cached": cached}
    return result, info


def _with_source(result: ReaderResult, source: str) -> ReaderResult:
    """A cached result read back for a file that was renamed or moved keeps the new name."""
    import polars as pl

    if result.spans.height and result.spans["source_file"][0] != source:
        result.spans = result.spans.with_columns(pl.lit(source).alias("source_file"))
        result.feedback = result.feedback.with_columns(pl.lit(source).alias("source_file"))
        result.problems = [Problem(**{**p.as_row(), "source_file": source}) for p in result.problems]
    return result
