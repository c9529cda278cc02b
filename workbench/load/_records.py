"""Byte-level record scanning shared by every JSON reader.

A file is either one JSON document (it starts with ``{`` or ``[`` and parses
whole) or JSON Lines / NDJSON (one record per line). Lines are found on the
raw bytes, each line is parsed on its own with orjson (which rejects NaN /
Infinity and invalid UTF-8), and every line that cannot become a record is a
:class:`~workbench.load._base.Problem` with file, 1-based line, byte offset and
one of the ``REASON_*`` strings below. Nothing raises unless ``strict``.

Rules
-----
* a UTF-8 BOM at the start of the file is stripped; CRLF line ends are fine;
* blank (whitespace-only) lines are skipped and counted;
* a last line without a trailing newline that parses is a normal record; one
  that does not parse is reported as ``"truncated last line"``;
* duplicate keys inside one object: the record **loads** with the last value
  (what orjson, ``json`` and JavaScript do) and a ``"duplicate key"`` problem
  names the key and the value that was overwritten, so nothing is lost silently.

Example
-------
>>> problems = []
>>> stats = RecordStats()
>>> for line, offset, record in iter_json_records("spans.jsonl", problems=problems, stats=stats):
...     ...                                                   # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from workbench.load._base import Problem, raise_or_collect

REASON_INVALID_JSON = "invalid JSON"
REASON_INVALID_UTF8 = "invalid UTF-8"
REASON_NAN = "NaN/Infinity token"
REASON_NOT_OBJECT = "not a JSON object"
REASON_TRUNCATED = "truncated last line"
REASON_DUPLICATE_KEY = "duplicate key"

_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
# a quote, optional whitespace, a colon: every object key ends so (string values
# may add more); compared with the same count on orjson's compact re-encoding
_WS_COLON = re.compile(rb'"[ \t\r\n]+:')
_NAN_TOKEN = re.compile(rb'(?:^|[\s,:\[])-?(?:NaN|Infinity)(?:$|[\s,\]}])')


@dataclass
class RecordStats:
    """Counts of one scan. In ``"jsonl"`` mode ``parsed + quarantined + blank == total_lines``."""

    mode: str = ""  # "document" or "jsonl"
    total_lines: int = 0
    parsed: int = 0
    quarantined: int = 0
    blank: int = 0
    duplicate_keys: int = 0


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic bytes (or is named ``.gz``)."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def read_bytes(path: str | Path) -> bytes:
    """The whole file as bytes, gunzipped when it is gzip-compressed."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return data


def read_head(path: str | Path, n: int = 65536) -> bytes:
    """The first ``n`` bytes of the (decompressed) file, BOM stripped, for ``sniff``."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
        handle.seek(0)
        if magic == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=handle) as unzipped:
                try:
                    head = unzipped.read(n)
                except (OSError, EOFError):
                    head = b""
        else:
            head = handle.read(n)
    return head[3:] if head.startswith(_BOM) else head


def excerpt(raw: bytes | memoryview, limit: int = 200) -> str:
    """The first ``limit`` bytes of a record as printable text (bad bytes escaped)."""
    return bytes(raw[:limit]).decode("utf-8", errors="backslashreplace")


def iter_json_records(
    path: str | Path,
    *,
    strict: bool = False,
    problems: list[Problem],
    objects_only: bool = True,
    check_duplicate_keys: bool = True,
    stats: RecordStats | None = None,
    data: bytes | None = None,
    allow_document: bool = True,
    first_line: int = 1,
    base_offset: int = 0,
) -> Iterator[tuple[int, int, object]]:
    """Yield ``(line_no, byte_offset, parsed)`` for every good record of a JSON / JSONL file.

    Parameters
    ----------
    path
        The file (``.gz`` is decompressed); also the name used in problems.
    strict
        Raise :class:`~workbench.load._base.LoadError` at the first problem.
    problems
        Bad records are appended here (file, line, byte offset, reason).
    objects_only
        A JSONL line that is not an object is a problem (a single JSON document
        may be an array: it is yielded whole).
    check_duplicate_keys
        Report objects with a repeated key (costs a regex pass per line).
    stats
        Filled with the counts of this scan.
    data
        The file's bytes when the caller already has them (or a slice of them:
        then ``first_line`` / ``base_offset`` say where the slice starts).
    allow_document
        Try the whole bytes as one JSON document first (off for slices).

    Examples
    --------
    >>> problems: list = []
    >>> [rec for _, _, rec in iter_json_records("a.jsonl", problems=problems)]  # doctest: +SKIP
    [{'a': 1}, {'a': 2}]
    """
    stats = stats if stats is not None else RecordStats()
    source = str(path)
    if data is None:
        data = read_bytes(path)
    start = 3 if base_offset == 0 and data.startswith(_BOM) else 0
    document = _try_document(data, start) if allow_document else _NOT_A_DOCUMENT
    if document is not _NOT_A_DOCUMENT:
        stats.mode = "document"
        stats.total_lines = stats.parsed = 1
        if check_duplicate_keys:
            _check_duplicates(data[start:], document, source, first_line, base_offset + start,
                              problems, strict, stats)
        yield first_line, base_offset + start, document
        return
    stats.mode = "jsonl"
    view = memoryview(data)
    size = len(data)
    line_no = first_line - 1
    pos = start
    while pos < size:
        end = data.find(b"\n", pos)
        has_newline = end != -1
        if not has_newline:
            end = size
        line_no += 1
        raw = view[pos:end]
        offset = base_offset + pos
        pos = end + 1
        if not bytes(raw[:64]).strip() and not raw.tobytes().strip():
            stats.blank += 1
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            stats.quarantined += 1
            reason, offset, detail = _classify_failure(raw, offset, str(exc), last=not has_newline)
            raise_or_collect(
                problems,
                Problem(source, line_no, offset, reason, detail=detail, excerpt=excerpt(raw)),
                strict=strict,
            )
            continue
        if objects_only and not isinstance(record, dict):
            stats.quarantined += 1
            raise_or_collect(
                problems,
                Problem(source, line_no, offset, REASON_NOT_OBJECT,
                        detail=f"a JSON {type(record).__name__}", excerpt=excerpt(raw)),
                strict=strict,
            )
            continue
        stats.parsed += 1
        if check_duplicate_keys:
            _check_duplicates(raw, record, source, line_no, offset, problems, strict, stats)
        yield line_no, offset, record
    stats.total_lines = line_no - first_line + 1


_NOT_A_DOCUMENT = object()


def _try_document(data: bytes, start: int) -> object:
    """The parsed file when it is one JSON document, else ``_NOT_A_DOCUMENT``."""
    first = data[start : start + 4096].lstrip()[:1]
    if first not in (b"{", b"["):
        return _NOT_A_DOCUMENT
    try:
        return orjson.loads(memoryview(data)[start:])
    except orjson.JSONDecodeError:
        return _NOT_A_DOCUMENT


def _classify_failure(raw: memoryview, offset: int, message: str, *, last: bool) -> tuple[str, int, str]:
    """Reason, byte offset and detail for a line orjson rejected."""
    line = raw.tobytes()
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return REASON_INVALID_UTF8, offset + exc.start, f"byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
    if _NAN_TOKEN.search(line):
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return REASON_NAN, offset, message
    if last:
        return REASON_TRUNCATED, offset, message
    return REASON_INVALID_JSON, offset, message


def _check_duplicates(raw, record, source, line_no, offset, problems, strict, stats) -> None:
    """Report keys repeated inside one object (orjson silently keeps the last).

    Cheap screen first: a repeated key is dropped by orjson, so the parsed
    record re-encoded has fewer ``":`` than the line has key ends. Only lines
    failing the screen pay for an exact parse with a pairs hook.
    """
    line = raw if isinstance(raw, bytes) else raw.tobytes()
    key_ends = line.count(b'":') + len(_WS_COLON.findall(line))
    if key_ends <= orjson.dumps(record, option=orjson.OPT_PASSTHROUGH_DATACLASS).count(b'":'):
        return
    duplicates: list[tuple[str, object]] = []

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append((key, seen[key]))
            seen[key] = value
        return seen

    try:
        json.loads(line.decode("utf-8"), object_pairs_hook=pairs_hook)
    except ValueError:  # pragma: no cover - orjson already accepted the line
        return
    for key, first_value in duplicates:
        stats.duplicate_keys += 1
        shown = orjson.dumps(first_value, default=str).decode()[:120]
        raise_or_collect(
            problems,
            Problem(source, line_no, offset, REASON_DUPLICATE_KEY, field=key,
                    detail=f"key {key!r} repeated in one object; the last value was kept, "
                    f"the earlier value was {shown}", excerpt=excerpt(line)),
            strict=strict,
        )
