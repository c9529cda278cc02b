"""Reader for plain tables (CSV, Parquet, JSON / JSONL) with a column mapping.

For exports that follow no trace format: a spreadsheet of agent runs, a
warehouse dump, a homegrown log. One row is one span (map ``span_id``, and
``parent_span_id`` for trees) or one whole trace (leave ``span_id`` unmapped:
each row becomes a root ``agent`` span whose id is the trace id). The
mapping is ``{our column: their column}``; our columns are those of
``workbench.schema.SPANS`` plus the outcomes ``reward``, ``passed`` and
``user_feedback`` (these become trace-level feedback, so the traces table gets
them). Their columns may be dotted paths into nested JSON records. Every
column that is not mapped is kept in ``attributes`` (JSON), so nothing is lost.

Values are converted per cell: times (ISO text, epoch s/ms/us/ns), numbers,
tags (list or JSON list text), status words (``success`` -> ok, ``failed`` ->
error), kinds (``GENERATION`` -> llm, ``TOOL`` -> tool; a kind of their own
becomes ``other`` and is kept in ``attributes``). A cell that cannot be
converted is a problem naming file, line and column (the row still loads with
a null there); a row without a trace id is a problem and is skipped. A mapped
column that the file does not have raises, naming the file and the column.

Example
-------
>>> from workbench.load.table import read_table
>>> result = read_table("runs.csv", columns={"trace_id": "run_id", "input": "question",
...                     "output": "answer", "passed": "is_correct", "model": "model"})  # doctest: +SKIP
>>> result.traces.select("trace_id", "passed", "model")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from workbench import schema
from workbench.load._attrs import OPENINFERENCE_KINDS
from workbench.load._base import LoadError, Problem, ReaderResult, raise_or_collect
from workbench.load._custom import MISSING, load_files, lookup
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    decode_json,
    duration_ms,
    feedback_frame,
    float_or_none,
    int_or_none,
    json_text,
    normalize_id,
    parse_time,
    spans_frame,
    str_or_none,
    tag_list,
    text_of,
)
from workbench.load.chat import FAIL_WORDS, PASS_WORDS
from workbench.load.result import LoadResult

FORMAT = "table"
FORMATS = ("csv", "parquet", "jsonl", "json")
OUTCOME_COLUMNS = {"reward": "code", "passed": "code", "user_feedback": "human"}
SPAN_TARGETS = tuple(c for c in schema.SPANS if c not in schema.SPAN_ANOMALY_FLAGS
                     and c not in ("source_format", "source_file", "source_line"))
TIME_COLUMNS = ("start_time", "end_time")
INT_COLUMNS = ("tokens_in", "tokens_out", "tokens_total")
FLOAT_COLUMNS = ("duration_ms", "cost_usd")
ID_COLUMNS = ("trace_id", "span_id", "parent_span_id")
STATUS_WORDS = {"ok": "ok", "success": "ok", "succeeded": "ok", "completed": "ok", "error": "error", "failed": "error",
                "failure": "error", "exception": "error", "unset": "unset", "unknown": "unset", "running": "unset",
                "default": "ok", "warning": "ok", "debug": "ok"}
KIND_ALIASES = {"generation": "llm", "chat": "llm", "completion": "llm", "function": "tool", "retrieval": "retriever",
                "span": "chain", "workflow": "chain", "task": "chain", "score": "evaluator", "eval": "evaluator"}


def read_table(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    columns: Mapping[str, str],
    format: str | None = None,
    strict: bool = False,
) -> LoadResult:
    """Load plain tables into spans, traces, sessions, feedback and problems.

    Parameters
    ----------
    paths
        Files, directories or globs (``.gz`` works for CSV / JSON).
    columns
        ``{our column: their column}``; ``trace_id`` is required. Our columns:
        ``workbench.schema.SPANS`` (minus provenance and anomaly flags) and
        ``reward``, ``passed``, ``user_feedback``.
    format
        ``"csv"``, ``"parquet"``, ``"jsonl"``, ``"json"`` or ``None`` (from the
        file name).
    strict
        Raise :class:`~workbench.load.LoadError` at the first bad cell or row.

    Raises
    ------
    ValueError
        For an unknown target column or a mapping without ``trace_id``.
    LoadError
        When a file lacks a mapped column (names the file and the column).

    Examples
    --------
    >>> read_table("spans.parquet", columns={"trace_id": "tid", "span_id": "sid",
    ...            "parent_span_id": "parent", "name": "op", "kind": "type"})  # doctest: +SKIP
    """
    mapping = dict(columns)
    unknown = sorted(set(mapping) - set(SPAN_TARGETS) - set(OUTCOME_COLUMNS))
    if unknown:
        raise ValueError(f"unknown target column(s) {unknown}; choose from {', '.join(SPAN_TARGETS + tuple(OUTCOME_COLUMNS))}")
    if "trace_id" not in mapping:
        raise ValueError("columns must map 'trace_id' to the column that holds the trace id, "
                         "e.g. columns={'trace_id': 'run_id', ...}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)} or None, not {format!r}")
    return load_files(paths, lambda path: read_table_file(path, mapping=mapping, format=format, strict=strict))


def file_format(path: str) -> str:
    """The table format from a file name (``runs.csv.gz`` -> ``"csv"``)."""
    name = Path(path).name.lower().removesuffix(".gz")
    for suffix, fmt in ((".csv", "csv"), (".tsv", "csv"), (".parquet", "parquet"), (".pq", "parquet"),
                        (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json")):
        if name.endswith(suffix):
            return fmt
    raise ValueError(f"{path}: cannot tell the table format from the name; pass format='csv'|'parquet'|'jsonl'|'json'")


def read_table_file(path: str, *, mapping: Mapping[str, str], format: str | None = None,
                    strict: bool = False) -> ReaderResult:
    """One table file as a :class:`ReaderResult` (see :func:`read_table`)."""
    fmt = format or file_format(path)
    problems: list[Problem] = []
    builder = _RowBuilder(str(path), mapping, problems, strict)
    if fmt == "csv":
        rows = _csv_rows(str(path), problems, strict, mapping)
    elif fmt == "parquet":
        rows = _parquet_rows(str(path), mapping)
    else:
        rows = _json_rows(str(path), problems, strict, fmt)
    seen: set[str] = set()
    n_rows = 0
    for line, offset, row in rows:
        n_rows += 1
        seen.update(their for their in mapping.values() if lookup(row, their) is not MISSING)
        builder.add(row, line, offset)
    missing = [their for their in mapping.values() if their not in seen]
    if n_rows and missing and fmt in ("jsonl", "json"):
        _raise_missing(str(path), missing, mapping, available=None)
    return ReaderResult(FORMAT, spans_frame(builder.spans), feedback_frame(builder.feedback), problems)


def _raise_missing(source: str, missing: list[str], mapping: Mapping[str, str], available: list[str] | None) -> None:
    ours = {their: our for our, their in mapping.items()}
    names = ", ".join(f"{their!r} (for {ours[their]})" for their in missing)
    detail = f"the file has no column {names}" + (f"; it has: {', '.join(available)}" if available is not None else "")
    raise LoadError(Problem(source, None, None, "mapped column not in file", field=missing[0], detail=detail))


def _csv_rows(path: str, problems: list[Problem], strict: bool, mapping: Mapping[str, str]) -> Iterator[tuple[int, int, dict]]:
    from workbench.load.langfuse import iter_csv_rows

    first = True
    for line, offset, row in iter_csv_rows(path, read_bytes(path), problems=problems, strict=strict):
        if first:
            missing = [their for their in mapping.values() if their not in row]
            if missing:
                _raise_missing(path, missing, mapping, available=list(row))
            first = False
        yield line, offset, row


def _parquet_rows(path: str, mapping: Mapping[str, str]) -> Iterator[tuple[int, int | None, dict]]:
    frame = pl.read_parquet(path)
    missing = [their for their in mapping.values() if their not in frame.columns]
    if missing:
        _raise_missing(path, missing, mapping, available=frame.columns)
    for index, row in enumerate(frame.iter_rows(named=True)):
        yield index + 1, None, row


def _json_rows(path: str, problems: list[Problem], strict: bool, fmt: str) -> Iterator[tuple[int, int, dict]]:
    for line, offset, record in iter_json_records(path, strict=strict, problems=problems, objects_only=False,
                                                  allow_document=fmt == "json"):
        items = record if isinstance(record, list) else [record]
        for item in items:
            if isinstance(item, dict):
                yield line, offset, item
            else:
                raise_or_collect(problems, Problem(path, line, offset, REASON_BAD_VALUE,
                                                   detail=f"a row must be an object, got {type(item).__name__}"),
                                 strict=strict)


class _RowBuilder:
    def __init__(self, source: str, mapping: Mapping[str, str], problems: list[Problem], strict: bool):
        self.source, self.mapping, self.problems, self.strict = source, mapping, problems, strict
        self.spans: list[dict] = []
        self.feedback: list[dict] = []
        self.outcomes_done: set[tuple[str, str]] = set()
        self.per_trace = "span_id" not in mapping
        self.mapped_top = {their.split(".")[0] for their in mapping.values()}

    def problem(self, line: int, offset: int | None, reason: str, field: str, detail: str) -> None:
        raise_or_collect(self.problems, Problem(self.source, line, offset, reason, field=field, detail=detail),
                         strict=self.strict)

    def add(self, row: dict, line: int, offset: int | None) -> None:
        values = {our: lookup(row, their) for our, their in self.mapping.items()}
        values = {our: (None if v is MISSING or v == "" else v) for our, v in values.items()}
        trace_id = normalize_id(values["trace_id"])
        if trace_id is None:
            self.problem(line, offset, REASON_MISSING_FIELD, self.mapping["trace_id"], "no trace id in this row")
            return
        span = {"trace_id": trace_id, "source_format": FORMAT, "source_file": self.source, "source_line": line}
        for our, value in values.items():
            if our in OUTCOME_COLUMNS or our == "trace_id" or value is None:
                continue
            converted = self._convert(our, value, line, offset)
            if converted is not None:
                span[our] = converted
        if self.per_trace:
            span["span_id"] = trace_id
            span.setdefault("kind", "agent")
        elif span.get("span_id") is None:
            self.problem(line, offset, REASON_MISSING_FIELD, self.mapping["span_id"], "no span id in this row")
            return
        span.setdefault("kind", "other")
        if span.get("duration_ms") is None:
            span["duration_ms"] = duration_ms(span.get("start_time"), span.get("end_time"))
        rest = {k: v for k, v in row.items() if k not in self.mapped_top and v is not None}
        if span["kind"] == "other" and values.get("kind") is not None and str(values["kind"]).lower() != "other":
            rest["kind"] = values["kind"]  # a kind of their own: kept, shown as "other"
        if rest:
            theirs = span.get("attributes")
            decoded = decode_json(theirs) if theirs is not None else {}
            merged = decoded if isinstance(decoded, dict) else {"attributes": theirs}
            span["attributes"] = json_text({**rest, **merged})
        self.spans.append(span)
        self._outcomes(values, trace_id, line, offset)

    def _convert(self, our: str, value: Any, line: int, offset: int | None) -> Any:
        field = self.mapping[our]
        try:
            return _converted(our, value)
        except ValueError as exc:
            self.problem(line, offset, REASON_BAD_VALUE, field, f"{our}: {exc}")
            return None

    def _outcomes(self, values: dict, trace_id: str, line: int, offset: int | None) -> None:
        for our, annotator in OUTCOME_COLUMNS.items():
            value = values.get(our)
            if value is None or (trace_id, our) in self.outcomes_done:
                continue
            number = _passed(value) if our == "passed" else float_or_none(value)
            if number is None:
                self.problem(line, offset, REASON_BAD_VALUE, self.mapping[our], f"{our}: not understood: {value!r}")
                continue
            self.outcomes_done.add((trace_id, our))
            label = ("pass" if number else "fail") if our == "passed" else None
            self.feedback.append({"target_level": "trace", "target_id": trace_id, "trace_id": trace_id, "name": our,
                                  "value_num": number, "value_label": label, "annotator_kind": annotator,
                                  "annotator_id": self.mapping[our], "source_format": FORMAT,
                                  "source_file": self.source})


def _passed(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value >= 0.5)
    word = str(value).strip().lower()
    if word in PASS_WORDS or word == "1":
        return 1.0
    if word in FAIL_WORDS or word == "0":
        return 0.0
    return None


def _converted(our: str, value: Any) -> Any:
    """One cell as the spans column ``our`` wants it; ``ValueError`` when it cannot be."""
    if our in TIME_COLUMNS:
        return parse_time(value)
    if our in INT_COLUMNS:
        number = int_or_none(value)
        if number is None:
            raise ValueError(f"not a whole number: {value!r}")
        return number
    if our in FLOAT_COLUMNS:
        number = float_or_none(value)
        if number is None:
            raise ValueError(f"not a number: {value!r}")
        return number
    if our in ID_COLUMNS:
        return normalize_id(value)
    if our == "tags":
        return tag_list(value)
    if our in ("input", "output", "attributes"):
        return text_of(value)
    if our == "status":
        word = str(value).strip().lower()
        if word not in STATUS_WORDS:
            raise ValueError(f"unknown status {value!r} (expected ok / error / unset or a synonym)")
        return STATUS_WORDS[word]
    if our == "kind":
        word = str(value).strip()
        kind = OPENINFERENCE_KINDS.get(word.upper()) or KIND_ALIASES.get(word.lower()) or word.lower()
        return kind if kind in schema.SPAN_KINDS else "other"
    return json_text(value) if isinstance(value, dict | list) else str_or_none(value)
