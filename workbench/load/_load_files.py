"""The body of :func:`workbench.load.api.read_traces`: plan the files, read them (or their cache entries),
assemble the tables. Imported on a load's first call, while its head start scans
(:mod:`workbench.load._head_start`)."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterable
from pathlib import Path

from workbench.load import cache as _cache
from workbench.load._base import LoadError, Problem, ReaderResult, raise_or_collect
from workbench.load._records import read_head
from workbench.load.api import PathLike, expand_paths
from workbench.load.detect import FormatNotDetected, detect_format, reader_module
from workbench.load.result import LoadResult, assemble

REASON_UNKNOWN_FORMAT = "unknown format"
REASON_UNREADABLE = "unreadable file"


def load(paths: PathLike | Iterable[PathLike], *, format: str, strict: bool, cache, started: float) -> LoadResult:  # noqa: A002
    """:func:`workbench.load.api.read_traces` (its arguments; ``started``: when the call began)."""
    files = expand_paths(paths)
    cache_dir = _cache.resolve_dir(cache)
    extra: list[Problem] = []
    plans = [_plan(path, format=format, strict=strict, with_key=cache_dir is not None, extra=extra) for path in files]
    set_key = None
    if cache_dir is not None and not extra:
        set_key = _cache.set_key([plan["key"] for plan in plans], format)
        cached = _load_set(cache_dir, set_key, files, strict=strict, started=started)
        if cached is not None:
            return cached
    per_file_cache = cache_dir if len(files) > 1 else None
    with _collector_paused():
        parts = [_read_one(plan, strict=strict, cache_dir=per_file_cache) for plan in plans if plan["module"]]
        result = assemble(parts, extra_problems=extra)
    if set_key is not None:
        _cache.store_in_background(cache_dir, set_key, _tables_of(result), {"paths": [str(p) for p in files]})
    return result


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector off while a load runs, back on (if it was) after.

    A load allocates few objects that could form cycles, but enough that the
    collector runs several times, and each run walks every object the imports
    made, holding the GIL the parse workers share: ~20 ms of a 0.8 s load of
    100k spans. Left on its own schedule afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_SET_TABLES = ("spans", "traces", "sessions", "feedback", "problems", "files")


def _tables_of(result: LoadResult) -> dict:
    return {name: getattr(result, name) for name in _SET_TABLES}


def _load_set(cache_dir: Path, key: str, files: list[Path], *, strict: bool, started: float) -> LoadResult | None:
    """The assembled result of an earlier identical call, with current paths and timings."""
    from workbench import schema
    from workbench.load.result import FILES

    schemas = {"spans": schema.SPANS, "traces": schema.TRACES, "sessions": schema.SESSIONS,
               "feedback": schema.FEEDBACK, "problems": schema.PROBLEMS, "files": FILES}
    found = _cache.load_tables(cache_dir, key, schemas)
    if found is None:
        return None
    tables, meta = found
    if strict and tables["problems"].height:
        raise LoadError(Problem(**tables["problems"].row(0, named=True)))
    import polars as pl

    moved = {old: str(new) for old, new in zip(meta.get("paths", []), files, strict=False) if old != str(new)}
    if moved:  # files renamed or moved since: same content, new names
        for name, column in (("spans", "source_file"), ("traces", "source_file"), ("feedback", "source_file"),
                             ("problems", "source_file"), ("files", "path")):
            tables[name] = tables[name].with_columns(pl.col(column).replace(moved))
    seconds = (time.perf_counter() - started) / max(len(files), 1)
    tables["files"] = tables["files"].with_columns(pl.lit(True).alias("cached"), pl.lit(seconds).alias("seconds"))
    return LoadResult(**tables)


def _plan(path: Path, *, format: str, strict: bool, with_key: bool, extra: list[Problem]) -> dict:
    """Which reader a file needs and its cache key (``module`` is ``None`` when it cannot be read)."""
    source = str(path)
    plan = {"path": path, "module": None, "format": None, "key": None, "detected": format == "auto", "bytes": None}
    try:
        plan["bytes"] = path.stat().st_size
        fmt = detect_format(source, read_head(source)) if format == "auto" else format
        plan["module"], plan["format"] = reader_module(fmt), fmt
        if with_key:
            version = str(getattr(plan["module"], "READER_VERSION", "0"))
            plan["key"] = _cache.cache_key(source, fmt, version)
    except FormatNotDetected as exc:
        raise_or_collect(extra, Problem(source, None, None, REASON_UNKNOWN_FORMAT, detail=str(exc)), strict=strict)
    except OSError as exc:
        raise_or_collect(extra, Problem(source, None, None, REASON_UNREADABLE, detail=str(exc)), strict=strict)
    return plan


def _read_one(plan: dict, *, strict: bool, cache_dir: Path | None) -> tuple[ReaderResult, dict]:
    started = time.perf_counter()
    source = str(plan["path"])
    result = _cache.load(cache_dir, plan["key"]) if cache_dir is not None and plan["key"] else None
    cached = result is not None
    if result is not None:
        if strict and result.problems:
            raise LoadError(result.problems[0])
        result = _with_source(result, source)
    else:
        result = plan["module"].read(source, strict=strict)
        if cache_dir is not None and plan["key"]:
            _cache.store(cache_dir, plan["key"], result, background=True)
    info = {"path": source, "detected": plan["detected"], "bytes": plan["bytes"],
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
