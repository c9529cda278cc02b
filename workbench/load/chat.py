"""Reader for chat-transcript records: OpenAI-style message lists inside JSON / JSONL records.

Benchmark and eval harnesses (tau-bench, SWE-agent style runners, custom
loops) dump one record per task attempt: a list of messages (``role``,
``content``, ``tool_calls``, ``tool_call_id``) somewhere inside, plus outcome
fields (reward, pass flag, status) and keys (task id, trial), usually without
ids, times or token counts. This reader is told where those are.

Each record becomes one trace:

* a root ``agent`` span (input: first user message, output: last assistant
  text; the record's other fields kept in ``attributes``; keys as tags
  ``key=value``);
* one ``llm`` span per assistant message (input: the messages that arrived
  since the previous assistant turn, as JSON; output: the text, or the tool
  calls as JSON when there is no text);
* one ``tool`` span per tool call (input: the arguments, output: the matching
  ``tool`` message found by ``tool_call_id``, or by function name for legacy
  ``function_call`` / ``role: function``). A result that starts with
  ``Error`` or carries ``is_error: true`` marks the span ``error``.

Trace ids hash the key values (the file name and record position when no
keys are given), span ids hash the trace id and message position, so loading
the same data again gives the same ids. Times are only set when messages
carry a ``timestamp`` / ``created_at``; span order is the message order.

Outcomes become trace-level feedback (annotator ``code``): a number is
``reward`` (and ``passed`` = reward >= ``pass_threshold``), a bool or a
pass/fail word is ``passed``, other text is kept as a label.

Example
-------
>>> from workbench.load.chat import read_chat_transcripts
>>> result = read_chat_transcripts("tau_bench_results.json", messages="traj",
...                                outcome="reward", keys=("task_id", "trial"))  # doctest: +SKIP
>>> result.traces.select("trace_id", "reward", "passed", "n_tool_calls")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.load._base import Problem, ReaderResult, raise_or_collect
from workbench.load._custom import MISSING, field_path, load_files, lookup, stable_id
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    ProblemLog,
    decode_json,
    duration_ms,
    feedback_frame,
    json_text,
    parse_time,
    spans_frame,
    str_or_none,
)
from workbench.load.result import LoadResult

FORMAT = "chat"
REASON_BAD_MESSAGE = "malformed message"
REASON_UNMATCHED_TOOL_RESULT = "tool result without a matching call"
REASON_OUTCOME_NOT_FOUND = "outcome field not found"
ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "human": "user",
                "assistant": "assistant", "ai": "assistant", "model": "assistant", "tool": "tool",
                "function": "tool", "ipython": "tool"}
PASS_WORDS = ("pass", "passed", "true", "yes", "success", "succeeded", "resolved", "correct", "ok", "completed", "solved")
FAIL_WORDS = ("fail", "failed", "false", "no", "failure", "error", "incorrect", "unresolved", "timeout", "crashed")


def read_chat_transcripts(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    records: str | None = None,
    messages: str = "messages",
    outcome: str | Sequence[str] | None = None,
    keys: Sequence[str] = (),
    session: str | None = None,
    format: str | None = None,
    pass_threshold: float | None = 1.0,
    strict: bool = False,
) -> LoadResult:
    """Load chat-transcript records into spans, traces, sessions, feedback and problems.

    Parameters
    ----------
    paths
        Files, directories or globs of JSON / JSONL (``.gz`` too).
    records
        Dotted path to the list of records inside each JSON document or line
        (``"data.items"``); ``None``: each line (or each item of a top-level
        array, or the whole document) is a record.
    messages
        Dotted path to the message list inside a record (``"trajectory.messages"``).
    outcome
        Dotted path(s) to outcome fields (``"reward"``, ``"result.passed"``).
    keys
        Dotted paths whose values identify a record (``("task_id", "trial")``);
        they make the trace id and become ``key=value`` tags.
    session
        Dotted path to a conversation / session id, if the records have one.
    format
        ``"json"``, ``"jsonl"`` or ``None`` (decided per file from its bytes).
    pass_threshold
        A numeric outcome >= this also counts as passed; ``None`` turns that off.
    strict
        Raise :class:`~workbench.load.LoadError` at the first problem.

    Examples
    --------
    >>> read_chat_transcripts("runs.jsonl", records="data.items", messages="trajectory.messages",
    ...                       outcome="result.passed", keys=("task_id", "trial"))  # doctest: +SKIP
    """
    if format not in (None, "json", "jsonl"):
        raise ValueError(f"format must be 'json', 'jsonl' or None, not {format!r}")
    outcomes = (outcome,) if isinstance(outcome, str) else tuple(outcome or ())
    options = _Options(records, messages, outcomes, tuple(keys), session, format, pass_threshold)
    return load_files(paths, lambda path: read_chat_file(path, options=options, strict=strict))


@dataclass(frozen=True)
class _Options:
    records: str | None
    messages: str
    outcomes: tuple[str, ...]
    keys: tuple[str, ...]
    session: str | None
    format: str | None
    pass_threshold: float | None


def read_chat_file(path: str, *, options: _Options, strict: bool = False) -> ReaderResult:
    """One file of chat-transcript records as a :class:`ReaderResult` (see :func:`read_chat_transcripts`)."""
    problems: list[Problem] = []
    builder = _TranscriptBuilder(str(path), options, problems, strict)
    data = read_bytes(path)
    for line, offset, parsed in iter_json_records(path, strict=strict, problems=problems, objects_only=False,
                                                  data=data, allow_document=options.format != "jsonl"):
        for index, where, record in _records_of(parsed, options.records, builder, line, offset):
            builder.add(record, line=line, offset=offset, index=index, where=where)
    if builder.n_records and options.outcomes:
        for path_ in options.outcomes:
            if path_ not in builder.outcomes_seen:
                raise_or_collect(problems, Problem(str(path), None, None, REASON_OUTCOME_NOT_FOUND, field=path_,
                                                   detail=f"no record of {builder.n_records} has it"), strict=strict)
    return ReaderResult(FORMAT, spans_frame(builder.rows), feedback_frame(builder.feedback), problems)


def _records_of(parsed: Any, records_path: str | None, builder: _TranscriptBuilder, line: int, offset: int):
    """Yield ``(index, field prefix, record)`` for the records inside one parsed document or line."""
    if records_path:
        found = lookup(parsed, records_path)
        if found is MISSING:
            builder.problem(line, offset, REASON_MISSING_FIELD, records_path, "no records list here", parsed)
            return
        if not isinstance(found, list):
            builder.problem(line, offset, REASON_BAD_VALUE, records_path,
                            f"expected a list of records, got {type(found).__name__}", parsed)
            return
        for i, record in enumerate(found):
            yield i, field_path(records_path, i), record
    elif isinstance(parsed, list):
        for i, record in enumerate(parsed):
            yield i, field_path(f"[{i}]"), record
    else:
        yield 0, "", parsed


class _TranscriptBuilder(ProblemLog):
    def __init__(self, source: str, options: _Options, problems: list[Problem], strict: bool):
        super().__init__(source, problems, strict)
        self.options = options
        self.rows: list[dict] = []
        self.feedback: list[dict] = []
        self.outcomes_seen: set[str] = set()
        self.n_records = 0

    def problem(self, line: int | None, offset: int | None, reason: str, field: str | None, detail: str,
                record: Any = None) -> None:
        super().problem(line, offset, reason, field or None, detail, record)

    def add(self, record: Any, *, line: int, offset: int, index: int, where: str) -> None:
        opts = self.options
        if not isinstance(record, dict):
            self.problem(line, offset, REASON_BAD_VALUE, where or None, f"a record must be an object, got {type(record).__name__}")
            return
        raw_messages = decode_json(lookup(record, opts.messages))
        messages_field = field_path(where, opts.messages)
        if raw_messages is MISSING:
            self.problem(line, offset, REASON_MISSING_FIELD, messages_field, "no message list here", record)
            return
        if not isinstance(raw_messages, list):
            self.problem(line, offset, REASON_BAD_VALUE, messages_field,
                         f"expected a list of messages, got {type(raw_messages).__name__}", record)
            return
        self.n_records += 1
        key_values = []
        for key in opts.keys:
            value = lookup(record, key)
            if value is MISSING:
                self.problem(line, offset, REASON_MISSING_FIELD, field_path(where, key),
                             "key field missing; the trace id falls back to the file position", record)
            key_values.append(None if value is MISSING else value)
        if opts.keys and all(v is not None for v in key_values):
            trace_id = stable_id(key_values)
        else:
            trace_id = stable_id([Path(self.source).name, line, index, *key_values])
        session = lookup(record, opts.session) if opts.session else None
        base = {"trace_id": trace_id, "session_id": None if session is MISSING else str_or_none(session),
                "source_format": FORMAT, "source_file": self.source, "source_line": line}
        tags = [f"{k}={v}" for k, v in zip(opts.keys, key_values, strict=True) if v is not None]
        spans = _Spans(self, base, line, offset, messages_field)
        spans.build(raw_messages, record, tags)
        self._add_outcomes(record, trace_id, line, offset, where)

    def _add_outcomes(self, record: dict, trace_id: str, line: int, offset: int, where: str) -> None:
        common = {"target_level": "trace", "target_id": trace_id, "trace_id": trace_id, "annotator_kind": "code",
                  "source_format": FORMAT, "source_file": self.source}
        has_flag = False
        pending_reward = None
        for path in self.options.outcomes:
            value = decode_json(lookup(record, path))
            if value is MISSING or value is None:
                continue
            self.outcomes_seen.add(path)
            row = dict(common, annotator_id=path)
            if isinstance(value, bool):
                row |= {"name": "passed", "value_num": float(value), "value_label": "pass" if value else "fail"}
                has_flag = True
            elif isinstance(value, int | float):
                row |= {"name": "reward", "value_num": float(value)}
                pending_reward = float(value)
            elif isinstance(value, str) and value.strip().lower() in PASS_WORDS + FAIL_WORDS:
                passed = value.strip().lower() in PASS_WORDS
                row |= {"name": "passed", "value_num": float(passed), "value_label": "pass" if passed else "fail",
                        "value_text": value}
                has_flag = True
            elif isinstance(value, str):
                row |= {"name": path.rsplit(".", 1)[-1], "value_label": value}
            else:
                self.problem(line, offset, REASON_BAD_VALUE, field_path(where, path),
                             f"an outcome must be a number, bool or text, got {type(value).__name__}")
                continue
            self.feedback.append(row)
        if pending_reward is not None and not has_flag and self.options.pass_threshold is not None:
            passed = pending_reward >= self.options.pass_threshold
            self.feedback.append(dict(common, name="passed", value_num=float(passed),
                                      value_label="pass" if passed else "fail",
                                      annotator_id=f"reward >= {self.options.pass_threshold:g}"))


def _without(record: dict, path: str) -> dict:
    """A copy of ``record`` without the value at dotted ``path`` (the rest of the record is kept)."""
    if path in record or "." not in path:
        return {k: v for k, v in record.items() if k != path}
    head, _, rest = path.partition(".")
    if isinstance(record.get(head), dict):
        return {**record, head: _without(record[head], rest)}
    return dict(record)


def _text(content: Any) -> str | None:
    """Message content as text: strings as they are, content-part lists joined, other JSON as text."""
    if content is None or content == "":
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict) and isinstance(part.get("content"), str):
                parts.append(part["content"])
            else:
                parts.append(json_text(part))
        return "\n".join(parts) or None
    return json_text(content)


class _Spans:
    """Turns one record's messages into root, llm and tool span rows."""

    def __init__(self, builder: _TranscriptBuilder, base: dict, line: int, offset: int, field: str):
        self.b, self.base, self.line, self.offset, self.field = builder, base, line, offset, field
        self.trace_id = base["trace_id"]
        self.rows: list[dict] = []

    def span_id(self, *parts: Any) -> str:
        return stable_id([self.trace_id, *parts], length=16)

    def build(self, raw_messages: list, record: dict, tags: list[str]) -> None:
        root_id = self.span_id("root")
        root = dict(self.base, span_id=root_id, parent_span_id=None, name="transcript", kind="agent",
                    status="unset", tags=tags)
        self.rows.append(root)
        pending: list[dict] = []  # messages since the last assistant turn
        calls: dict[str, dict] = {}  # tool_call_id -> tool span row
        legacy: dict[str, list[dict]] = {}  # function name -> unanswered legacy calls
        first_user = last_answer = None
        times: list[Any] = []
        for i, message in enumerate(raw_messages):
            where = f"{self.field}[{i}]"
            if not isinstance(message, dict):
                self.b.problem(self.line, self.offset, REASON_BAD_MESSAGE, where,
                               f"a message must be an object, got {type(message).__name__}")
                continue
            role = ROLE_ALIASES.get(str(message.get("role", "")).lower())
            if role is None:
                self.b.problem(self.line, self.offset, REASON_BAD_MESSAGE, where + ".role",
                               f"unknown or missing role {message.get('role')!r}", message)
                continue
            when = self._time(message, where)
            times.append(when)
            text = _text(message.get("content"))
            if role == "user" and first_user is None:
                first_user = text
            if role == "assistant":
                self.rows.append(self._llm(i, message, text, pending, root_id, when))
                if text:
                    last_answer = text
                self._tool_calls(i, message, root_id, calls, legacy, where, when)
                pending = []
                continue
            if role == "tool":
                self._tool_result(message, text, calls, legacy, where, i, root_id, when)
            pending.append(message)
        known = [t for t in times if t is not None]
        rest = _without(record, self.b.options.messages)
        start, end = (min(known), max(known)) if known else (None, None)
        root.update(input=first_user, output=last_answer, attributes=json_text(rest) if rest else None,
                    start_time=start, end_time=end, duration_ms=duration_ms(start, end))
        self.b.rows.extend(self.rows)

    def _time(self, message: dict, where: str) -> Any:
        for key in ("timestamp", "created_at", "time"):
            if message.get(key) is not None:
                try:
                    return parse_time(message[key])
                except ValueError as exc:
                    self.b.problem(self.line, self.offset, REASON_BAD_VALUE, f"{where}.{key}", str(exc))
        return None

    def _llm(self, i: int, message: dict, text: str | None, pending: list[dict], root_id: str, when: Any) -> dict:
        tool_calls = message.get("tool_calls") or ([message["function_call"]] if message.get("function_call") else [])
        extra = {k: v for k, v in message.items() if k not in ("role", "content", "tool_calls", "function_call")}
        return dict(self.base, span_id=self.span_id("msg", i), parent_span_id=root_id,
                    name=str(message.get("name") or "assistant"), kind="llm", status="ok",
                    input=json_text(pending) if pending else None,
                    output=text if text else json_text(tool_calls) if tool_calls else None,
                    model=str_or_none(message.get("model")), start_time=when, end_time=when,
                    attributes=json_text(extra) if extra else None)

    def _tool_calls(self, i: int, message: dict, root_id: str, calls: dict, legacy: dict, where: str, when: Any) -> None:
        items = message.get("tool_calls")
        legacy_call = message.get("function_call")
        if items is None and legacy_call is None:
            return
        if items is not None and not isinstance(items, list):
            self.b.problem(self.line, self.offset, REASON_BAD_MESSAGE, where + ".tool_calls",
                           f"expected a list, got {type(items).__name__}")
            return
        entries = [(j, call, f"{where}.tool_calls[{j}]") for j, call in enumerate(items or [])]
        if legacy_call is not None:
            entries.append((0, {"function": legacy_call}, f"{where}.function_call"))
        for j, call, call_where in entries:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) and isinstance(call, dict) and "name" in call:
                function = call  # flat {"id", "name", "arguments"} shape
            name = str_or_none(function.get("name")) if isinstance(function, dict) else None
            if name is None:
                self.b.problem(self.line, self.offset, REASON_BAD_MESSAGE, call_where + ".function.name",
                               "a tool call needs a function name", call)
                continue
            arguments = function.get("arguments", function.get("input"))
            row = dict(self.base, span_id=self.span_id("call", i, j), parent_span_id=root_id, name=name, kind="tool",
                       status="unset", input=arguments if isinstance(arguments, str) else json_text(arguments),
                       start_time=when, end_time=when,
                       attributes=json_text({"tool_call_id": call.get("id")}) if call.get("id") else None)
            self.rows.append(row)
            if call.get("id"):
                calls[str(call["id"])] = row
            else:
                legacy.setdefault(name, []).append(row)

    def _tool_result(self, message: dict, text: str | None, calls: dict, legacy: dict, where: str, i: int,
                     root_id: str, when: Any) -> None:
        call_id = message.get("tool_call_id")
        row = calls.pop(str(call_id), None) if call_id is not None else None
        if row is None and call_id is None and legacy.get(str(message.get("name"))):
            row = legacy[str(message.get("name"))].pop(0)
        if row is None:
            self.b.problem(self.line, self.offset, REASON_UNMATCHED_TOOL_RESULT, where + ".tool_call_id",
                           f"no earlier tool call has id {call_id!r}; kept as its own tool span", message)
            row = dict(self.base, span_id=self.span_id("result", i), parent_span_id=root_id,
                       name=str(message.get("name") or "tool"), kind="tool", status="unset")
            self.rows.append(row)
        row["output"] = text
        if when is not None:
            row["end_time"] = when
            row["duration_ms"] = duration_ms(row.get("start_time"), when)
        is_error = message.get("is_error") is True or (text or "").lstrip().lower().startswith("error")
        row["status"] = "error" if is_error else "ok"
        if is_error:
            row["error_message"] = (text or "")[:500] or None
