"""HTML for one trace in the review widget: conversation, span tree, metadata, header.

Every piece of trace text goes through :func:`workbench._html.text` (escape, show
control characters). Long fields are cut at a cap; the cut part stays in the kernel
and is registered in ``fields`` (field id -> full text) so the widget can page it
with "show more" (:func:`page_html`). Styling is by ``wbr-*`` classes defined in
``workbench/widgets/review.css`` (scoped under ``.wbr``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import orjson

from workbench._html import Safe, join, plain, text, truncate

FIELD_CAP = 3_000  # characters of one field shown before "show more"
PAGE_SIZE = 20_000  # characters sent per "show more"
TOTAL_BUDGET = 250_000  # characters of trace text in one render; later fields get SMALL_CAP
SMALL_CAP = 300
JSON_COLLAPSE_CHARS = 400
JSON_COLLAPSE_LINES = 8
MAX_TREE_ROWS = 400

_ROLE_TITLES = {
    "user": "User",
    "assistant": "Assistant",
    "system": "System prompt",
    "tool": "Tool result",
    "retrieval": "Retrieved",
    "reasoning": "Reasoning",
}


_TAGS = frozenset({"div", "span", "pre", "code", "details", "summary", "button", "section", "h4", "dl", "dt",
                   "dd"})
_ATTRS = {"title": "title", "type": "type", "style": "style", "data_field": "data-field",
          "data_offset": "data-offset", "open": "open"}


def _el(name: str, content: Any = "", *, cls: str | None = None, **attrs: Any) -> Safe:
    """A faster :func:`workbench._html.tag` for this module's fixed tags and attributes.

    Tag and attribute names come from fixed allow-lists (never from data); attribute
    values are escaped with :func:`workbench._html.plain`; content is escaped with
    :func:`workbench._html.text` unless it is already :class:`Safe`.
    """
    if name not in _TAGS:
        raise ValueError(f"not an allowed tag: {name!r}")
    parts = [name]
    if cls:
        parts.append(f'class="{plain(cls, cap=None)}"')
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = _ATTRS[key]
        parts.append(attr if value is True else f'{attr}="{plain(value, cap=500)}"')
    inner = content if isinstance(content, Safe) else text(content)
    return Safe(f"<{' '.join(parts)}>{inner}</{name}>")


@dataclass
class Fields:
    """Collects the full text of every field that was cut while rendering one trace."""

    cap: int = FIELD_CAP
    budget: int = TOTAL_BUDGET
    texts: dict[str, str] = field(default_factory=dict)
    shown: int = 0
    count: int = 0

    def block(self, value: str, *, cls: str = "wbr-text") -> Safe:
        """An escaped ``<pre>`` of ``value`` cut at the cap, with a "show more" button."""
        self.count += 1
        field_id = f"f{self.count}"
        cap = self.cap if self.shown < self.budget else SMALL_CAP
        head, cut = truncate(value, cap)
        self.shown += len(head)
        body = _el("pre", text(head, cap=None), cls=cls)
        if not cut:
            return _el("div", body, cls="wbr-field", data_field=field_id)
        self.texts[field_id] = value
        button = more_button(field_id, len(head), cut)
        return _el("div", join([body, button]), cls="wbr-field", data_field=field_id)


def more_button(field_id: str, offset: int, remaining: int) -> Safe:
    """The "show more" button of a cut field (the widget pages from ``offset``)."""
    label = f"show more · {remaining:,} more characters"
    return _el("button", label, cls="wbr-more", type="button", data_field=field_id, data_offset=str(offset))


def page_html(value: str, *, offset: int, size: int = PAGE_SIZE) -> tuple[Safe, int, int]:
    """The next page of a cut field: ``(escaped text, next offset, characters still left)``.

    Examples
    --------
    >>> page_html("abc<def", offset=2, size=3)
    ('c&lt;d', 5, 2)
    """
    offset = max(0, min(int(offset), len(value)))
    chunk = value[offset : offset + size]
    end = offset + len(chunk)
    return text(chunk, cap=None), end, len(value) - end


# -- conversation ----------------------------------------------------------------------------------


INLINE_JSON_CHARS = 100


def _parse_json(value: str) -> Any:
    """The parsed JSON object/array in ``value``, or ``None`` when it is not one."""
    stripped = value.strip()
    if stripped[:1] not in ("{", "["):
        return None
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None


def _compact(parsed: Any) -> str:
    return json.dumps(parsed, ensure_ascii=False, default=str)


def _json_or_text(value: str, fields: Fields, *, summary: str | None = None) -> Safe:
    """JSON inline when short, pretty-printed when medium, collapsed when long; text otherwise."""
    parsed = _parse_json(value) if len(value) < 5_000_000 else None
    if parsed is None:
        return fields.block(value)
    compact = _compact(parsed)
    if len(compact) <= INLINE_JSON_CHARS:
        return fields.block(compact, cls="wbr-text wbr-json")
    pretty = orjson.dumps(parsed, option=orjson.OPT_INDENT_2, default=str).decode()
    block = fields.block(pretty, cls="wbr-text wbr-json")
    if len(pretty) <= JSON_COLLAPSE_CHARS and pretty.count("\n") <= JSON_COLLAPSE_LINES:
        return block
    preview = compact[:90] + ("…" if len(compact) > 90 else "")
    label = summary or f"{preview}   ({pretty.count(chr(10)) + 1:,} lines)"
    return _details(label, block)


def _details(summary: str, body: Safe, *, open_: bool = False) -> Safe:
    return _el("details", join([_el("summary", summary), body]), cls="wbr-details", open=open_)


def _offset(time: datetime | None, origin: datetime | None) -> Safe:
    if time is None or origin is None:
        return Safe("")
    seconds = (time - origin).total_seconds()
    return _el("span", f"+{seconds:.1f}s", cls="wbr-time")


def _role_line(title: str, *extra: Safe) -> Safe:
    return _el("div", join([_el("span", title, cls="wbr-role-name"), *extra]), cls="wbr-role")


def _tool_call(call: Any, fields: Fields) -> Safe:
    args = call.arguments or ""
    head = [_el("span", "→ call", cls="wbr-call-label"), _el("code", call.name, cls="wbr-fn")]
    parsed = _parse_json(args) if len(args) < 5_000_000 else None
    if args.strip() in ("", "{}", "null"):
        head.append(_el("span", "no arguments", cls="wbr-muted"))
        return _el("div", _el("div", join(head), cls="wbr-call-head"), cls="wbr-call")
    if parsed is not None and len(_compact(parsed)) <= INLINE_JSON_CHARS:
        head.append(_el("code", _compact(parsed), cls="wbr-args"))
        return _el("div", _el("div", join(head), cls="wbr-call-head"), cls="wbr-call")
    return _el("div", join([_el("div", join(head), cls="wbr-call-head"), _json_or_text(args, fields)]),
               cls="wbr-call")


def _message(msg: Any, fields: Fields, origin: datetime | None) -> Safe:
    role = msg.role
    when = _offset(msg.time, origin)
    if role in ("system", "reasoning"):
        inner = fields.block(msg.content)
        label = f"{_ROLE_TITLES[role]} · {len(msg.content):,} characters"
        return _el("div", _details(label, inner), cls=f"wbr-msg wbr-{role}")
    if role == "tool":
        title = "Tool result" + (" · error" if msg.is_error else "")
        name = _el("code", msg.name, cls="wbr-fn") if msg.name else Safe("")
        body = _json_or_text(msg.content, fields) if msg.content else _el("span", "empty", cls="wbr-muted")
        cls = "wbr-msg wbr-tool" + (" wbr-error" if msg.is_error else "")
        return _el("div", join([_role_line(title, name, when), body]), cls=cls)
    if role == "retrieval":
        return _retrieval(msg, fields, when)
    parts: list[Safe] = [_role_line(_ROLE_TITLES.get(role, role.title()), when)]
    if msg.content:
        parts.append(fields.block(msg.content))
    parts.extend(_tool_call(call, fields) for call in msg.tool_calls)
    cls = f"wbr-msg wbr-{role if role in _ROLE_TITLES else 'other'}"
    if not msg.content and msg.tool_calls:
        cls += " wbr-calls-only"
    return _el("div", join(parts), cls=cls)


def _retrieval(msg: Any, fields: Fields, when: Safe) -> Safe:
    title = f"Retrieved · {len(msg.documents)} document{'s' if len(msg.documents) != 1 else ''}"
    parts = [_role_line(title, _el("code", msg.name, cls="wbr-fn") if msg.name else Safe(""), when)]
    if msg.content:
        parts.append(_el("div", join([_el("span", "query ", cls="wbr-muted"), fields.block(msg.content)]),
                         cls="wbr-query"))
    docs = []
    for i, doc in enumerate(msg.documents, 1):
        meta = [_el("span", f"#{i}", cls="wbr-doc-n")]
        if doc.doc_id:
            meta.append(_el("code", doc.doc_id, cls="wbr-fn"))
        if doc.score is not None:
            meta.append(_el("span", f"score {doc.score:.3g}", cls="wbr-muted"))
        docs.append(_el("div", join([_el("div", join(meta), cls="wbr-doc-meta"), fields.block(doc.content)]),
                        cls="wbr-doc"))
    if docs:
        parts.append(_details(f"{len(docs)} documents", join(docs), open_=len(docs) <= 3))
    cls = "wbr-msg wbr-retrieval" + (" wbr-error" if msg.is_error else "")
    return _el("div", join(parts), cls=cls)


def conversation_html(messages: Sequence[Any], fields: Fields) -> Safe:
    """The conversation: one block per message, roles styled, tool calls and long JSON collapsible."""
    if not messages:
        return _el("div", "No conversation found in this trace's spans.", cls="wbr-empty")
    origin = next((m.time for m in messages if m.time is not None), None)
    return _el("div", join(_message(m, fields, origin) for m in messages), cls="wbr-conversation")


# -- span tree -------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"


def span_tree_html(rows: Sequence[Any], *, max_rows: int = MAX_TREE_ROWS) -> Safe:
    """The span tree: indented rows with kind, duration, a timeline bar, status and errors."""
    if not rows:
        return _el("div", "No spans.", cls="wbr-empty")
    ends = [(r.start_offset_ms or 0) + (r.duration_ms or 0) for r in rows]
    total = max(max(ends), 1e-9)
    out = []
    for row in rows[:max_rows]:
        left = max(0.0, min(100.0, (row.start_offset_ms or 0) / total * 100))
        width = max(0.4, min(100.0 - left, (row.duration_ms or 0) / total * 100))
        flags = [_el("span", f, cls="wbr-flag") for f in row.flags]
        name = join([
            _el("span", row.kind, cls=f"wbr-kind wbr-kind-{_kind_class(row.kind)}"),
            _el("span", row.name, cls="wbr-span-name", title=row.name),
            *flags,
        ])
        status = row.status if row.status in ("ok", "error", "unset") else "unset"
        cells = [
            _el("div", name, cls="wbr-tree-name", style=f"--depth:{min(row.depth, 24)}"),
            _el("div", _ms(row.duration_ms), cls="wbr-tree-dur"),
            _el("div", _el("span", "", cls=f"wbr-bar wbr-bar-{status}",
                           style=f"left:{left:.2f}%;width:{width:.2f}%"), cls="wbr-tree-bar"),
        ]
        if row.error:
            cells.append(_el("div", text(row.error, cap=300), cls="wbr-tree-error",
                             style=f"--depth:{min(row.depth, 24)}"))
        out.append(_el("div", join(cells), cls=f"wbr-tree-row wbr-status-{status}"))
    if len(rows) > max_rows:
        out.append(_el("div", f"… {len(rows) - max_rows:,} more spans", cls="wbr-muted"))
    return _el("div", join(out), cls="wbr-tree")


def _kind_class(kind: str) -> str:
    known = ("llm", "tool", "agent", "chain", "retriever", "embedding", "reranker", "guardrail", "evaluator")
    return kind if kind in known else "other"


# -- metadata, header, page ------------------------------------------------------------------------


def metadata_html(summary: Mapping[str, Any]) -> Safe:
    """A dense two-column grid of the trace's facts (all values escaped, capped at 300 chars)."""
    items = []
    for key, value in summary.items():
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%d %H:%M:%S UTC")
        elif isinstance(value, float):
            value = f"{value:.4g}"
        items.append(join([_el("dt", key), _el("dd", text(value, cap=300), title=value)]))
    return _el("dl", join(items), cls="wbr-meta")


def section_html(title: str, body: Safe, *, cls: str = "") -> Safe:
    """A titled section of the trace view."""
    return _el("section", join([_el("h4", title, cls="wbr-h"), body]), cls=f"wbr-section {cls}".strip())


@dataclass(frozen=True)
class RenderedTrace:
    """The escaped HTML of one trace and the full text of the fields that were cut."""

    html: Safe
    fields: dict[str, str]


def trace_html(messages: Sequence[Any], tree_rows: Sequence[Any], summary: Mapping[str, Any], *,
               cap: int = FIELD_CAP, budget: int = TOTAL_BUDGET) -> RenderedTrace:
    """The whole trace view: conversation first, then the span tree, then metadata."""
    fields = Fields(cap=cap, budget=budget)
    conv = conversation_html(messages, fields)
    n_errors = sum(1 for r in tree_rows if r.error)
    tree_title = f"Spans · {len(tree_rows)}" + (f" · {n_errors} error{'s' if n_errors != 1 else ''}"
                                                 if n_errors else "")
    body = join([
        section_html("Conversation", conv, cls="wbr-sec-conv"),
        section_html(tree_title, span_tree_html(tree_rows), cls="wbr-sec-tree"),
        section_html("Metadata", metadata_html(summary), cls="wbr-sec-meta"),
    ])
    return RenderedTrace(body, fields.texts)


def header_html(*, position: int, total: int, trace_id: str | None, reviewer: str,
                throughput: float | None, saturation: str | None, strategy: str | None,
                labelled: int, existing: str | None = None) -> Safe:
    """The always-visible header: progress "37 of 200", throughput, saturation, trace id."""
    pct = 0.0 if total <= 0 else min(100.0, labelled / total * 100)
    progress = join([
        _el("span", f"{position} of {total}" if total else "queue empty", cls="wbr-progress-text"),
        _el("span", _el("span", "", cls="wbr-progress-fill", style=f"width:{pct:.1f}%"), cls="wbr-progress",
            title=f"{labelled} of {total} labelled"),
    ])
    stats = [
        _el("span", f"{labelled} labelled", cls="wbr-stat"),
        _el("span", "— / h" if throughput is None else f"{throughput:.0f} / h", cls="wbr-stat",
            title="labels per hour, from time spent per decision"),
    ]
    if saturation:
        stats.append(_el("span", saturation, cls="wbr-stat wbr-saturation"))
    ident = [_el("code", trace_id or "—", cls="wbr-trace-id", title=trace_id)]
    if existing:
        ident.append(_el("span", existing, cls="wbr-existing"))
    ident.append(_el("span", reviewer, cls="wbr-reviewer", title="reviewer"))
    if strategy:
        ident.append(_el("span", strategy, cls="wbr-strategy", title="queue strategy"))
    return join([
        _el("div", progress, cls="wbr-head-progress"),
        _el("div", join(stats), cls="wbr-head-stats"),
        _el("div", join(ident), cls="wbr-head-ident"),
    ])


def review_css() -> str:
    """The review widget's stylesheet (the same file the widget loads)."""
    return resources.files("workbench.widgets").joinpath("review.css").read_text(encoding="utf-8")


def standalone_page(body: Safe, *, title: str = "workbench review") -> Safe:
    """A complete HTML document around safe markup, with the review stylesheet inlined."""
    css = review_css().replace("</", "<\\/")
    return Safe(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{text(title, cap=200)}</title><style>{css}</style></head>"
        f"<body class='wbr-page'>{body}</body></html>"
    )
