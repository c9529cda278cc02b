"""The C scanner's raw call, and what it needs, without pyarrow, numpy or polars.

:mod:`workbench.load._otlp_native` turns what :func:`scan` returns into Arrow
tables. This part imports nothing heavy, so that a load's head start
(:mod:`workbench.load._head_start`) can scan the first blocks of a file while
the rest of the loader is still being imported.

The OTLP shapes are written here in the scanner's own description (nested
tuples: ``(STRUCT, ((name, node), ...))``, ``(LIST, node)``, or a leaf
``(kind,)``); :mod:`workbench.load._otlp_arrow` builds its Arrow schemas from
them.
"""

from __future__ import annotations

import os

try:
    from workbench.load import _otlp_scan
except ImportError:  # installed without a C compiler
    _otlp_scan = None

AVAILABLE = _otlp_scan is not None
ENABLED = AVAILABLE and not os.environ.get("WORKBENCH_NO_SCANNER")
STRUCT, LIST, STRING, INT64, FLOAT64, BOOL = range(6)  # the scanner's node kinds (_otlp_scan.c)
# the OTLP reader's version, in its cache keys (2: scope attributes kept; bump when the mapping changes): here,
# so that a load's head start can tell a cached load without importing the reader
OTLP_READER_VERSION = "2"


def struct(*fields: tuple[str, tuple]) -> tuple:
    """A struct node of ``(name, node)`` fields."""
    return (STRUCT, tuple((name.encode(), node) for name, node in fields))


def list_of(item: tuple) -> tuple:
    """A list node of ``item`` nodes."""
    return (LIST, item)


STR, INT, FLOAT = (STRING,), (INT64,), (FLOAT64,)
SCALAR_FIELDS = (("stringValue", STR), ("intValue", STR), ("doubleValue", FLOAT), ("boolValue", (BOOL,)),
                 ("bytesValue", STR))
_ANY1 = struct(*SCALAR_FIELDS)
_ANY = struct(*SCALAR_FIELDS, ("arrayValue", struct(("values", list_of(_ANY1)))),
              ("kvlistValue", struct(("values", list_of(struct(("key", STR), ("value", _ANY1)))))))
_KV = list_of(struct(("key", STR), ("value", _ANY)))
_EVENT = struct(("timeUnixNano", STR), ("name", STR), ("attributes", _KV), ("droppedAttributesCount", INT))
_LINK = struct(("traceId", STR), ("spanId", STR), ("traceState", STR), ("attributes", _KV),
               ("droppedAttributesCount", INT), ("flags", INT))
SPAN_FIELDS = (
    ("traceId", STR), ("spanId", STR), ("parentSpanId", STR), ("traceState", STR), ("flags", INT), ("name", STR),
    ("kind", INT), ("startTimeUnixNano", STR), ("endTimeUnixNano", STR), ("attributes", _KV),
    ("droppedAttributesCount", INT), ("events", list_of(_EVENT)), ("droppedEventsCount", INT),
    ("links", list_of(_LINK)), ("droppedLinksCount", INT), ("status", struct(("code", INT), ("message", STR))),
)


def request_fields(span_fields: tuple, resource: tuple, scope: tuple, extra: tuple) -> tuple:
    """The fields of a Collector request (one per line) around spans of ``span_fields``."""
    return (("resourceSpans", list_of(struct(
        ("resource", resource), *extra,
        ("scopeSpans", list_of(struct(("scope", scope), *extra, ("spans", list_of(struct(*span_fields)))))),
    ))),)


# every OTLP field with its type, per shape: one span per line; one Collector request per line
SHAPES = {
    "span": struct(*SPAN_FIELDS),
    "request": struct(*request_fields(
        SPAN_FIELDS, struct(("attributes", _KV), ("droppedAttributesCount", INT)),
        struct(("name", STR), ("version", STR), ("attributes", _KV), ("droppedAttributesCount", INT)),
        (("schemaUrl", STR),))),
}

def record_shape(line: bytes) -> str:
    """The shape (a key of :data:`SHAPES`) of an OTLP JSON Lines file whose first record is ``line``: a
    Collector request names ``resourceSpans`` near its start, anything else is read as one span per line."""
    return "request" if b'"resourceSpans"' in line[:4096] else "span"


# the first blocks a process scans (per shape) take their buffer sizes from a scan of their first SAMPLE_BYTES
# (to a line's end, found within SAMPLE_WINDOW more bytes); later blocks from the block before
SAMPLE_BYTES = 256 << 10
SAMPLE_WINDOW = 1 << 20
HINT_SLACK = 1.1
# per node description: the bytes scanned last and the size of each buffer it filled; the next block's buffers
# start at these sizes scaled to its length (plus HINT_SLACK), so they are taken once instead of grown
_LAST_SIZES: dict[tuple, tuple[int, tuple[int, ...]]] = {}


def scan(data: memoryview, spec: tuple):
    """``_otlp_scan.scan`` of ``data`` against ``spec``, its buffers started at the sizes of the last scan of
    that spec (or of a sample of ``data``): ``(rows, buffers)``, the 0-based row of a line it cannot read, or
    ``None`` where pyarrow must parse the block."""
    if spec not in _LAST_SIZES and len(data) >= 4 * SAMPLE_BYTES:
        _sample(data, spec)
    scanned = _otlp_scan.scan(data, spec, hints(spec, len(data)))
    if isinstance(scanned, tuple):
        _remember_sizes(spec, len(data), scanned[1])
    return scanned


def _sample(data: memoryview, spec: tuple) -> None:
    """Buffer sizes for the first blocks a process scans, from a scan of their first ``SAMPLE_BYTES`` (whole
    lines).

    Without them, those blocks' buffers start small and double as they fill,
    each step copied into fresh memory (the three blocks scanned at once at
    the start of a fresh process's first load grew ~240 buffers each).
    """
    window = bytes(data[SAMPLE_BYTES:SAMPLE_BYTES + SAMPLE_WINDOW])
    line_end = window.find(b"\n")
    if line_end < 0:  # lines longer than the window: the buffers grow as before
        return
    end = SAMPLE_BYTES + line_end + 1
    scanned = _otlp_scan.scan(data[:end], spec)
    if isinstance(scanned, tuple) and spec not in _LAST_SIZES:
        _remember_sizes(spec, end, scanned[1])


def _remember_sizes(spec: tuple, n_bytes: int, buffers: list) -> None:
    """Keep the sizes of the buffers a scan of ``n_bytes`` filled, for the next scan's :func:`hints`."""
    _LAST_SIZES[spec] = (n_bytes, tuple(0 if b is None else memoryview(b).nbytes for b in buffers))


def hints(spec: tuple, n_bytes: int) -> tuple[int, ...] | None:
    """Starting sizes for the buffers of a scan of ``n_bytes``: the last scan's, in proportion."""
    last = _LAST_SIZES.get(spec)
    if last is None or not last[0]:
        return None
    scale = HINT_SLACK * n_bytes / last[0]
    return tuple(int(size * scale) for size in last[1])
