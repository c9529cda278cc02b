"""Columnar fast path for OTLP JSON Lines (one span, or one Collector request, per line).

The file is read in blocks of whole lines (up to 64 MiB; views of the file
memory-mapped, see :mod:`workbench.load._blocks`). ``PARSE_WORKERS`` threads each take a block, parse it into
one fixed OTLP schema and map it (:mod:`workbench.load._otlp_columns`:
polars kernels, keys dictionary-encoded so per-key decisions are made once
per distinct key); the main thread reads the next blocks and collects the
results in order. Parsing is done by the C scanner
(:mod:`workbench.load._otlp_native`) where it is built, else by pyarrow
(:mod:`workbench.load._otlp_arrow`). Each block's rows become a polars frame
at once. Its text columns are views into the Arrow buffers the parser wrote
the strings to (never copied); the block's bytes and the rest of its Arrow
tables are dropped, so memory holds the output plus about three blocks. In a
file of ``SPILL_FROM_BYTES`` or more, the input and output text is written by
the worker threads to an unnamed file and read back memory-mapped
(:mod:`workbench.load._spill`): a million spans then peak at ~0.7x their
file instead of ~1.3x, and load faster, since the parse memory is reused
instead of faulted in fresh.

Anything this path cannot take exactly goes to the line-by-line reader
(:func:`workbench.load.otlp.read_python_pieces`), which is the reference:

* a line the C scanner cannot read (not JSON, an unknown or repeated key, a
  value of another type) is read line by line and the lines around it are
  scanned again; a block that pyarrow fails to parse, or that has blank or
  non-``{`` lines or invalid UTF-8, is cut in eight pieces, recursively, until
  the bad part is small, and that part is read line by line; the pieces that
  parse are mapped together in one call;
* a line holding a span with events, links, flattened OpenInference messages
  the columnar path does not build (:mod:`workbench.load._otlp_messages`),
  annotations, retrieval documents, tags, array / kvlist / bytes values, a
  mapped attribute of an unexpected type, or an odd id / timestamp is read
  line by line too.

Both paths give the same rows (``tests/load/test_otlp_fast.py``).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from workbench import schema
from workbench.load import _head_start as head_start
from workbench.load._base import PER_FILE_COLUMNS, Problem, ReaderResult
from workbench.load._blocks import Block, input_size, iter_blocks
from workbench.load._interop import concatenated, list_rows, list_values, numpy_series, stacked, unique
from workbench.load._memory import settle_glibc_malloc
from workbench.load._otlp_arrow import parse_block, release_parse_memory
from workbench.load._otlp_native import NOT_SCANNED
from workbench.load._scanner import record_shape
from workbench.load._spill import SPILL_AVAILABLE, TextSpill, drop_mapped_pages, spill_directory

MIN_SPLIT_BYTES = 256 << 10
# files this big keep their input/output text memory-mapped (:mod:`workbench.load._spill`): at a million spans
# (2.6 GB) that is faster and halves the peak; at 100k (257 MB) it costs 6% of the time for 0.3x less peak
SPILL_FROM_BYTES = 512 << 20
# blocks parsed and mapped at once, one per worker thread, while the main thread reads ahead; one more
# than two cores: while a worker holds the GIL (mapping), the others scan (C, GIL released)
PARSE_WORKERS = 3
SPLIT_PARTS = 8  # a block that fails to parse is cut in this many pieces, recursively
_BOM = b"\xef\xbb\xbf"


@dataclass
class FastStats:
    """How the rows of one file were read (for tests and benchmarks)."""

    rows_columnar: int = 0
    lines_line_by_line: int = 0
    blocks_failed: int = 0
    bytes_spilled: int = 0

    def add(self, other: FastStats) -> None:
        """Count ``other`` (a block's stats, kept by the thread that read it) in these."""
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def read_bytes_fast(source: str, data: bytes | None = None, *, strict: bool = False,
                    stats: FastStats | None = None) -> ReaderResult:
    """Read an OTLP file (or its bytes) with the columnar path and line-by-line fallback."""
    from workbench.load import otlp

    stats = stats if stats is not None else FastStats()
    settle_glibc_malloc()
    early = head_start.claim(source) if data is None else None  # blocks scanned while the loader imported
    scanned = early[1] if early is not None else None
    blocks = iter_blocks(source, data, in_flight=PARSE_WORKERS, scanned=scanned)
    first = next(blocks, None)
    if first is None:
        return otlp.read_python_pieces(source, [], strict=strict)
    head = _first_record_line(first)
    shape = None if head is None else record_shape(head)
    if early is not None and early[0] != shape:  # the head start guessed another shape: its scans do not count
        scanned.clear()
        first.scanned = NOT_SCANNED
    if head is None:
        # a (pretty-printed) single document or an array: the reference reader
        whole = bytes(first.data) + b"".join(bytes(block.data) for block in blocks)
        return otlp.read_python(source, whole, strict=strict)
    spill = _spill_for(input_size(source, data))
    frames: list[pl.DataFrame] = []
    feedback: list[pl.DataFrame] = []
    problems: list[Problem] = []
    try:
        with ThreadPoolExecutor(max_workers=PARSE_WORKERS, thread_name_prefix="workbench-parse") as pool:
            pending: deque = deque()

            def collect_oldest() -> None:
                part, block_stats = pending.popleft().result()
                stats.add(block_stats)
                _collect(part, frames, feedback, problems)

            for block in _chain(first, blocks):
                pending.append(pool.submit(_read_block, source, block, shape, strict, spill))
                if len(pending) > PARSE_WORKERS:
                    collect_oldest()
            while pending:
                collect_oldest()
    finally:  # also when strict mode stops at a problem: the files go when nothing maps them any more
        if spill is not None:
            stats.bytes_spilled += spill.bytes_written
            spill.close()
        if scanned:  # blocks the load did not reach (strict mode stopped it)
            scanned.clear()
        release_parse_memory()
    # a column some blocks lack (a null literal there, :mod:`._otlp_columns`) is cut like the others
    spans = stacked(frames, PER_FILE_COLUMNS) if frames else schema.empty(schema.SPANS).select(otlp.SPAN_COLUMNS)
    fb = [f for f in feedback if f.height]
    return ReaderResult("otlp", spans, pl.concat(fb, how="vertical") if fb else schema.empty(schema.FEEDBACK),
                        problems)


def _spill_for(size: int) -> TextSpill | None:
    """The spill of a load of ``size`` bytes: only for a big file, and only where a disk can take it."""
    from workbench.load._otlp_columns import TEXT_KEYS
    from workbench.load.cache import default_dir

    if not SPILL_AVAILABLE or size < SPILL_FROM_BYTES:
        return None
    directory = spill_directory([str(default_dir())])
    return TextSpill(TEXT_KEYS, directory) if directory is not None else None


def _collect(part: ReaderResult, frames: list, feedback: list, problems: list) -> None:
    if part.spans.height:
        frames.append(part.spans)
    feedback.append(part.feedback)
    problems.extend(part.problems)


def _chain(first, rest):
    yield first
    yield from rest


def _is_object_line(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line.strip()), dict)
    except orjson.JSONDecodeError:
        return False


def _first_record_line(first: Block, look_at: int = 100) -> bytes | None:
    """The first JSON-object line of a JSON Lines file, or ``None`` when the file may be one JSON document.

    A file whose first line is an object is JSON Lines. When it is not (a
    BOM, a bad first line), the file is JSON Lines only if it cannot be one
    document: orjson then fails before the end of the first block, whereas a
    document too big for the block runs into the block's end.
    """
    ends = [*(int(i) + 1 for i in first.newlines[:look_at]), len(first.data)]
    bom = 3 if bytes(first.data[:3]) == _BOM else 0
    head = bytes(first.data[bom:ends[0]])
    if _is_object_line(head):
        return head
    try:
        orjson.loads(first.data[bom:])
        return None  # one document (the reference reads it whole)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("unexpected end of data"):
            return None  # ran into the end of the block: maybe a document longer than a block
    lines = (bytes(first.data[a:b]) for a, b in zip(ends, ends[1:], strict=False))
    return next((line for line in lines if _is_object_line(line)), None)


def _parse_block(block: Block, shape: str) -> pa.Table | int | None:
    """The block as an Arrow table; the row of a line only the reference reader can read (the C scanner
    says which); or ``None`` when it needs a closer look."""
    # blank lines, leading spaces, a BOM or records spanning lines: the scanner names the line, pyarrow is not asked
    scanned, block.scanned = block.scanned, NOT_SCANNED  # the block's answer is read once
    table = parse_block(block.data, shape, block.lines_start_with_brace, scanned)
    if isinstance(table, int):
        return table
    if table is None or table.num_rows != block.n_lines:
        return None
    return table


def _read_block(source, block, shape, strict, spill) -> tuple[ReaderResult, FastStats]:
    """Parse and map one block, on a worker thread; a block that does not parse is cut in pieces there.

    Parsing with the C scanner takes a fraction of the mapping's time, so both
    run on the workers: the main thread only reads blocks and collects.
    """
    stats = FastStats()
    parsed = _parse_block(block, shape)
    good, bad = ([(block, parsed)], []) if isinstance(parsed, pa.Table) else _pieces_around_failures(
        block, parsed, shape, stats)
    part = _map_pieces(source, good, bad, shape, strict, stats, spill)
    if spill is not None:  # text the mapping read back (messages, attributes kept as JSON) leaves memory again
        drop_mapped_pages()
    return part, stats


def _pieces_around_failures(block: Block, bad_row: int | None, shape: str,
                            stats: FastStats) -> tuple[list, list[Block]]:
    """A block whose parse failed, cut into parsed pieces and small bad pieces (both in line order).

    Where the C scanner named the line it could not read (``bad_row``), that
    line goes to the reference reader and the lines before and after it are
    parsed again. Otherwise the block is cut in eighths, recursively, until
    the bad part is small. The pieces are parsed one after another on the
    thread that read the block; the other worker goes on with the next block.
    """
    good: list[tuple[Block, pa.Table]] = []
    bad: list[Block] = []
    todo = [(block, bad_row)]
    while todo:  # a worklist, not recursion: a block of a thousand bad lines is cut a thousand times
        failed, row = todo.pop()
        stats.blocks_failed += 1
        if row is not None:
            before, line, after = failed.around(row)
            bad.append(line)
            parts = [part for part in (before, after) if part is not None]
        else:
            parts = failed.split(SPLIT_PARTS) if len(failed.data) > MIN_SPLIT_BYTES else [failed]
            if len(parts) == 1:
                bad.append(failed)
                continue
        for part in parts:
            parsed = _parse_block(part, shape)
            if isinstance(parsed, pa.Table):
                good.append((part, parsed))
            else:
                todo.append((part, parsed))
    good.sort(key=lambda piece: piece[0].first_line)
    bad.sort(key=lambda piece: piece.first_line)
    return good, bad


def _map_pieces(source, good, bad, shape, strict, stats, spill) -> ReaderResult:
    """Map all parsed pieces of a block in one go; read bad pieces and complex lines by reference, in line order.

    Mapping has a fixed cost per call, so the parsed pieces around a bad line
    are mapped together rather than run by run.
    """
    from workbench.load import otlp
    from workbench.load._otlp_columns import span_columns

    reference = [(piece.first_line, piece.offset, bytes(piece.data)) for piece in bad]
    stats.lines_line_by_line += sum(piece.n_lines for piece in bad)
    fast = None
    if good:
        table = good[0][1] if len(good) == 1 else pa.concat_tables(t for _, t in good)
        spans, row_idx, resource = _span_rows(table, shape)
        del table
        frame, complex_rows = span_columns(spans, resource, spill)
        del spans, resource
        line_of_row = np.concatenate([piece.first_line + np.arange(piece.n_lines) for piece, _ in good])
        complex_lines = unique(row_idx[complex_rows]) if complex_rows.any() else np.empty(0, dtype=np.int64)
        keep = ~np.isin(row_idx, complex_lines) if len(complex_lines) else None
        fast = frame if keep is None else frame.filter(numpy_series(keep))
        fast = fast.with_columns(
            numpy_series(line_of_row[row_idx if keep is None else row_idx[keep]], "source_line"),
            pl.lit(source).alias("source_file"),
        ).select(otlp.SPAN_COLUMNS)
        stats.rows_columnar += fast.height
        stats.lines_line_by_line += len(complex_lines)
        reference += _line_pieces([piece for piece, _ in good], complex_lines)
    if not reference:
        return ReaderResult("otlp", fast)
    slow = otlp.read_python_pieces(source, sorted(reference), strict=strict)
    spans = slow.spans if fast is None else pl.concat([fast, slow.spans], how="vertical").sort(
        "source_line", maintain_order=True)
    return ReaderResult("otlp", spans, slow.feedback, slow.problems)


def _line_pieces(pieces: list[Block], rows: np.ndarray) -> list[tuple[int, int, bytes]]:
    """``(line_no, byte_offset, bytes)`` of rows numbered across ``pieces`` (row ``i`` is the i-th line)."""
    bounds = np.cumsum([0] + [piece.n_lines for piece in pieces])
    out = []
    for i, piece in enumerate(pieces):
        local = rows[(rows >= bounds[i]) & (rows < bounds[i + 1])] - bounds[i]
        if len(local):
            out.extend(piece.line_pieces(local))
    return out


def _flat(list_array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Elements of a list array and the index of the row each came from."""
    return list_values(list_array), list_rows(list_array)


def _span_chunks(table: pa.Table, shape: str) -> list[pa.StructArray]:
    """The spans of a parsed block, one struct array per chunk (and, for requests, per request chunk)."""
    if shape == "span":
        return [batch.to_struct_array() for batch in table.to_batches()]
    return [list_values(list_values(list_values(requests).field("scopeSpans")).field("spans"))
            for requests in table.column("resourceSpans").chunks]


def _span_rows(table: pa.Table, shape: str) -> tuple[list[pa.StructArray], np.ndarray, dict]:
    """All spans of a parsed block as struct-array chunks, their line index, and per-span resource info."""
    from workbench.load._otlp_json import resource_info, scope_json

    if shape == "span":
        return _span_chunks(table, shape), np.arange(table.num_rows), {}
    chunks, lines, resource_parts, scope_parts, span_res, span_scope, scope_owner = [], [], [], [], [], [], []
    row0 = n_res = n_scopes = 0
    for requests in table.column("resourceSpans").chunks:  # flatten per chunk; describe resources once per block
        resources, res_line = _flat(requests)
        scopes, scope_res = _flat(resources.field("scopeSpans"))
        spans, scope_of_span = _flat(scopes.field("spans"))
        chunks.append(spans)
        lines.append(res_line[scope_res[scope_of_span]] + row0)
        span_res.append(scope_res[scope_of_span] + n_res)
        span_scope.append(scope_of_span + n_scopes)
        scope_owner.append(scope_res + n_res)
        resource_parts.append(resources.field("resource"))
        scope_parts.append(scopes.field("scope"))
        row0, n_res, n_scopes = row0 + len(requests), n_res + len(resources), n_scopes + len(scopes)
    span_res, span_scope = np.concatenate(span_res), np.concatenate(span_scope)
    text, version, odd = resource_info(concatenated(resource_parts))
    scope_text, scope_odd = scope_json(concatenated(scope_parts))
    # '"otel.resource":{..},"otel.scope":{..}' built once per scope, then shared by its spans (views, no copy)
    owner = numpy_series(np.concatenate(scope_owner))
    otel = pl.DataFrame({"r": text.gather(owner), "s": scope_text}).select(
        pl.concat_str([pl.lit('"otel.resource":') + pl.col("r"), pl.lit('"otel.scope":') + pl.col("s")],
                      separator=",", ignore_nulls=True)).to_series()
    otel = pl.select(pl.when(otel != "").then(otel)).to_series()
    resource = {
        "otel_json": otel.gather(numpy_series(span_scope)), "service_version": version.gather(numpy_series(span_res)),
        "complex": odd[span_res] | scope_odd[span_scope],
    }
    return chunks, np.concatenate(lines), resource
