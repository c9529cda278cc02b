"""A Parquet cache of reader results, so a second load of an unchanged file is instant.

The key is a SHA-256 over the format, the reader's version, the file size and
modification time, and a content sample (the first and last MiB plus 64
blocks of 64 KiB spread over the file). Hashing all of a multi-GB file would
cost more than reading the cache back, so the sample plus mtime stands in for
a full content hash: an edited file gets a new mtime and a new key, a renamed
or moved file keeps its key. Entries are written to a temporary directory and
renamed into place, so a crash never leaves a half entry.

Location: ``cache=`` given a path, else ``$WORKBENCH_CACHE_DIR``, else
``$XDG_CACHE_HOME/workbench``, else ``~/.cache/workbench``. ``cache=False``
disables it.

Example
-------
>>> from workbench.load import cache
>>> key = cache.cache_key("spans.jsonl", "otlp", "1")       # doctest: +SKIP
>>> cache.load(cache.default_dir(), key) is None             # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import orjson
import polars as pl

from workbench import schema
from workbench.load._base import Problem, ReaderResult

SAMPLE_EDGE = 1 << 20
SAMPLE_BLOCK = 1 << 16
SAMPLE_BLOCKS = 64
CACHE_LAYOUT = "1"
_PENDING: dict[Path, threading.Thread] = {}
_PENDING_LOCK = threading.Lock()


def default_dir() -> Path:
    """Where the cache lives unless told otherwise."""
    if os.environ.get("WORKBENCH_CACHE_DIR"):
        return Path(os.environ["WORKBENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "workbench"


def resolve_dir(cache: bool | str | os.PathLike) -> Path | None:
    """``True`` -> the default directory, a path -> that path, ``False`` -> no cache."""
    if cache is False or cache is None:
        return None
    if cache is True:
        return default_dir()
    return Path(cache)


def cache_key(path: str | os.PathLike, fmt: str, reader_version: str) -> str:
    """The key of a file's entry (see the module docstring for what it covers)."""
    stat = os.stat(path)
    digest = hashlib.sha256(f"{CACHE_LAYOUT}|{fmt}|{reader_version}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE_EDGE))
        if stat.st_size > 2 * SAMPLE_EDGE:
            step = (stat.st_size - 2 * SAMPLE_EDGE) // SAMPLE_BLOCKS
            for i in range(SAMPLE_BLOCKS):
                handle.seek(SAMPLE_EDGE + i * step)
                digest.update(handle.read(SAMPLE_BLOCK))
            handle.seek(stat.st_size - SAMPLE_EDGE)
            digest.update(handle.read(SAMPLE_EDGE))
    return digest.hexdigest()


def load(directory: Path, key: str) -> ReaderResult | None:
    """The cached result for ``key``, or ``None`` (also when the entry is unreadable)."""
    entry = directory / key
    wait_for(entry)
    meta_path = entry / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = orjson.loads(meta_path.read_bytes())
        spans = pl.read_parquet(entry / "spans.parquet")
        feedback = pl.read_parquet(entry / "feedback.parquet")
        problems = pl.read_parquet(entry / "problems.parquet")
        schema.validate(spans, schema.SPANS, table="cached spans")
        schema.validate(feedback, schema.FEEDBACK, table="cached feedback")
    except (OSError, orjson.JSONDecodeError, pl.exceptions.PolarsError, schema.SchemaError):
        return None
    return ReaderResult(meta["format"], spans, feedback, [Problem(**row) for row in problems.iter_rows(named=True)])


def store(directory: Path, key: str, result: ReaderResult) -> Path:
    """Write ``result`` (conformed) under ``key``; returns the entry directory."""
    conformed = result.conformed()
    directory.mkdir(parents=True, exist_ok=True)
    entry = directory / key
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=directory))
    try:
        conformed.spans.write_parquet(staging / "spans.parquet", compression="lz4", statistics=False)
        conformed.feedback.write_parquet(staging / "feedback.parquet")
        problems = pl.DataFrame([p.as_row() for p in conformed.problems], schema=schema.PROBLEMS)
        problems.write_parquet(staging / "problems.parquet")
        (staging / "meta.json").write_bytes(orjson.dumps({"format": conformed.format, "layout": CACHE_LAYOUT}))
        try:
            staging.rename(entry)
        except OSError:  # another process stored it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return entry


def store_in_background(directory: Path, key: str, result: ReaderResult) -> None:
    """Write the entry on a thread, so the load returns while Parquet is written.

    The thread is not a daemon: the interpreter waits for it at exit. A
    ``load`` of the same key in this process waits for it first.
    """
    entry = directory / key

    def write() -> None:
        try:
            store(directory, key, result)
        except OSError:  # a cache that cannot be written is only a missed speed-up
            pass
        finally:
            with _PENDING_LOCK:
                _PENDING.pop(entry, None)

    thread = threading.Thread(target=write, name=f"workbench-cache-{key[:8]}")
    with _PENDING_LOCK:
        _PENDING[entry] = thread
    thread.start()


def wait_for(entry: Path | None = None) -> None:
    """Block until pending background writes (of ``entry``, or all) are done."""
    with _PENDING_LOCK:
        threads = [t for e, t in _PENDING.items() if entry is None or e == entry]
    for thread in threads:
        thread.join()


def clear(directory: Path | None = None) -> None:
    """Delete every cache entry."""
    wait_for()
    shutil.rmtree(directory or default_dir(), ignore_errors=True)
