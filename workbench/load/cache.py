"""A cache of loads, so a second load of unchanged files costs a few hundred milliseconds.

Two kinds of entries, both directories of Arrow IPC files plus a ``meta.json``:

* a **set entry** holds the assembled tables of one ``read_traces`` call
  (spans with anomaly flags, traces, sessions, feedback, problems, files),
  keyed by the keys of its files in order plus the format argument;
* a **file entry** holds one file's reader result (spans, feedback,
  problems); written only by calls over several files, so that adding a
  file to a set re-parses only that file.

A file's key is a SHA-256 over the format, the reader's version, the file
size and modification time, and a content sample (the first and last MiB plus
64 blocks of 64 KiB spread over the file). Hashing all of a multi-GB file
would cost more than reading the cache back, so the sample plus mtime stands
in for a full content hash: an edited file gets a new mtime and a new key, a
renamed or moved file keeps its key (its new name is written into the tables
on the way out).

Tables are stored as *uncompressed* Arrow IPC and read back memory-mapped:
opening a million-span entry takes milliseconds and pages are read when used.
The price is disk space: about 0.95x the size of the JSON export. A table
longer than ``PART_ROWS`` is written in parts, and after each part the text
the writer paged in from a load's spill file is let go again, so that writing
the cache does not raise the process's peak memory. Entries are
written on a background thread to a temporary directory and renamed into
place, so a crash never leaves a half entry; an entry is never modified in
place (so a mapped table never changes under a reader).

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

import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from workbench import schema
from workbench.load._base import Problem, ReaderResult
from workbench.load._cache_keys import CACHE_LAYOUT, cache_key, default_dir, has_entry, resolve_dir, set_key  # noqa: F401 - API
from workbench.load._direct_io import AVAILABLE as DIRECT_IO_AVAILABLE
from workbench.load._direct_io import DirectWriter, new_stage

PART_ROWS = 1 << 13  # a table longer than this is written in parts of this many rows...
# ...except spans, stored in file order: their text is read front to back, so bigger parts page in no more of it
SPANS_PART_ROWS = 1 << 16
_PENDING: dict[Path, threading.Thread] = {}
_PENDING_LOCK = threading.Lock()


def load_tables(directory: Path, key: str, schemas: dict[str, dict]) -> tuple[dict[str, pl.DataFrame], dict] | None:
    """The tables (memory-mapped) and meta of entry ``key``, or ``None`` (also when unreadable).

    ``schemas`` names the tables to read and the schema each must have.
    """
    import pyarrow as pa
    import pyarrow.ipc

    entry = directory / key
    wait_for(entry)
    if not has_entry(directory, key):
        return None
    try:
        meta = orjson.loads((entry / "meta.json").read_bytes())
        tables = {}
        for name, table_schema in schemas.items():
            parts = sorted(entry.glob(f"{name}.*.arrow")) or [entry / f"{name}.arrow"]
            frames = []
            for part in parts:
                with pa.memory_map(str(part)) as source:
                    frames.append(pl.from_arrow(pa.ipc.open_file(source).read_all(), rechunk=False))
            frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical", rechunk=False)
            tables[name] = schema.validate(frame, table_schema, table=f"cached {name}")
    except (OSError, orjson.JSONDecodeError, pa.ArrowException, pl.exceptions.PolarsError, schema.SchemaError):
        return None
    return tables, meta


def store_tables(directory: Path, key: str, tables: dict[str, pl.DataFrame], meta: dict) -> Path:
    """Write ``tables`` and ``meta`` as entry ``key`` (atomically); returns the entry directory."""
    directory.mkdir(parents=True, exist_ok=True)
    entry = directory / key
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=directory))
    stage = new_stage() if DIRECT_IO_AVAILABLE else None
    try:
        for name, frame in tables.items():
            _write_table(staging, name, frame, stage)
        (staging / "meta.json").write_bytes(orjson.dumps({**meta, "layout": CACHE_LAYOUT}))
        try:
            staging.rename(entry)
        except OSError:  # another process stored it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return entry


def _write_table(staging: Path, name: str, frame: pl.DataFrame, stage: np.ndarray | None) -> None:
    """One IPC file, or parts (``name.0000.arrow``, ...) for a long table.

    Files are written with direct I/O where the file system allows it
    (:mod:`workbench.load._direct_io`, through the reused ``stage``): at a
    million spans that is 3.6-3.8 s instead of 8.9 s, most of which was the
    kernel allocating and filling page-cache pages.

    After each part, text read from a load's spill file is dropped from this
    process's memory again (:func:`workbench.load._spill.drop_mapped_pages`):
    writing a million spans would otherwise page in all 1.6 GB of it. A
    trace's text sits wherever its root span was in the file, so a part of
    traces pages in ~128 KiB of read-around per row: their parts are small
    (64k-row parts took the peak from 0.6x to 0.9x the file at 1M spans).
    """
    from workbench.load._spill import drop_mapped_pages

    rows = SPANS_PART_ROWS if name == "spans" else PART_ROWS
    if frame.height <= rows:
        _write_ipc(frame, staging / f"{name}.arrow", stage)
        return
    for number, start in enumerate(range(0, frame.height, rows)):
        _write_ipc(frame.slice(start, rows), staging / f"{name}.{number:04d}.arrow", stage)
        drop_mapped_pages()


def _write_ipc(frame: pl.DataFrame, path: Path, stage: np.ndarray | None) -> None:
    if stage is None:  # no positioned writes here (Windows): polars writes the file itself
        frame.write_ipc(path, compression="uncompressed")
        return
    with DirectWriter.create(path, stage) as sink:
        frame.write_ipc(sink, compression="uncompressed")


def store_in_background(directory: Path, key: str, tables: dict[str, pl.DataFrame], meta: dict) -> None:
    """Write the entry on a thread, so the load returns while the tables are written.

    The thread is not a daemon: the interpreter waits for it at exit. A
    load of the same key in this process waits for it first.
    """
    entry = directory / key

    def write() -> None:
        try:
            store_tables(directory, key, tables, meta)
        except OSError:  # a cache that cannot be written is only a missed speed-up
            pass
        finally:
            with _PENDING_LOCK:
                _PENDING.pop(entry, None)

    thread = threading.Thread(target=write, name=f"workbench-cache-{key[:8]}")
    with _PENDING_LOCK:
        _PENDING[entry] = thread
    thread.start()


_FILE_TABLES = {"spans": schema.SPANS, "feedback": schema.FEEDBACK, "problems": schema.PROBLEMS}


def load(directory: Path, key: str) -> ReaderResult | None:
    """The cached reader result of one file (a file entry), or ``None``."""
    found = load_tables(directory, key, _FILE_TABLES)
    if found is None:
        return None
    tables, meta = found
    problems = [Problem(**row) for row in tables["problems"].iter_rows(named=True)]
    return ReaderResult(meta["format"], tables["spans"], tables["feedback"], problems)


def store(directory: Path, key: str, result: ReaderResult, *, background: bool = False) -> None:
    """Write one file's reader result (conformed) as a file entry."""
    conformed = result.conformed()
    tables = {"spans": conformed.spans, "feedback": conformed.feedback,
              "problems": pl.DataFrame([p.as_row() for p in conformed.problems], schema=schema.PROBLEMS)}
    (store_in_background if background else store_tables)(directory, key, tables, {"format": conformed.format})


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
