"""The ONLY place in workbench where HTML is built from data (this package).

Trace text is untrusted: it may hold ``<script>``, ``<img onerror>``, ``<style>``,
bidi overrides or ANSI escapes. Every piece of data that reaches HTML passes
through :func:`text` (escape, cap, make control characters visible). The other
builders here compose escaped pieces; callers never concatenate data into
markup themselves (``tests/test_html_sinks.py`` enforces that).

Builders return :class:`Safe`, a ``str`` subclass that marks already-escaped
markup, so composing builders never escapes twice and never escapes too little.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

DEFAULT_CAP = 2_000

# C0/C1 controls (except \n and \t), DEL, bidi overrides and zero-width characters.
_CONTROL = re.compile(
    "[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


class Safe(str):
    """Markup that has already been built safely; never escaped again."""

    __slots__ = ()


def _show_control(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def visible(value: str) -> str:
    """Replace control, bidi and zero-width characters with visible ``\\uXXXX`` escapes."""
    return _CONTROL.sub(_show_control, value)


def truncate(value: str, cap: int = DEFAULT_CAP) -> tuple[str, int]:
    """Cut ``value`` to ``cap`` characters; return the text and how many were cut."""
    if cap is None or len(value) <= cap:
        return value, 0
    return value[:cap], len(value) - cap


def text(value: Any, *, cap: int | None = DEFAULT_CAP) -> Safe:
    """Escape any value for HTML: stringify, cap, show control characters, escape.

    Examples
    --------
    >>> text("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    """
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe('<span class="wb-null">∅</span>')
    raw = value if isinstance(value, str) else str(value)
    cut = 0
    if cap is not None:
        raw, cut = truncate(raw, cap)
    body = html.escape(visible(raw), quote=True)
    if cut:
        body += f'<span class="wb-more">… {cut:,} more characters</span>'
    return Safe(body)


def plain(value: Any, *, cap: int | None = DEFAULT_CAP) -> str:
    """Escape for contexts that render HTML-ish text without being HTML (plotly hover, titles)."""
    if value is None:
        return ""
    raw = value if isinstance(value, str) else str(value)
    if cap is not None:
        raw, cut = truncate(raw, cap)
        if cut:
            raw += f"… (+{cut:,})"
    return html.escape(visible(raw), quote=True)


def tag(name: str, content: Any = "", *, cls: str | None = None, title: Any = None, **attrs: Any) -> Safe:
    """Build one element. ``name`` and attribute names are code; values are escaped."""
    if not re.fullmatch(r"[a-z][a-z0-9]*", name):
        raise ValueError(f"not a tag name: {name!r}")
    parts = [name]
    if cls:
        parts.append(f'class="{html.escape(cls, quote=True)}"')
    if title is not None:
        parts.append(f'title="{plain(title, cap=500)}"')
    for key, val in attrs.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or key.startswith("on"):
            raise ValueError(f"attribute not allowed: {key!r}")
        if val is None or val is False:
            continue
        attr = key.replace("_", "-")
        parts.append(attr if val is True else f'{attr}="{plain(val, cap=500)}"')
    inner = content if isinstance(content, Safe) else text(content)
    return Safe(f"<{' '.join(parts)}>{inner}</{name}>")


def join(pieces: Iterable[Safe], sep: str = "") -> Safe:
    """Concatenate already-safe pieces."""
    items = list(pieces)
    for piece in items:
        if not isinstance(piece, Safe):
            raise TypeError("join() takes only Safe pieces; pass data through text() first")
    return Safe(sep.join(items))


def pre(value: Any, *, cap: int | None = DEFAULT_CAP, cls: str = "wb-pre") -> Safe:
    """Preformatted, escaped text (JSON, tracebacks, messages)."""
    return tag("pre", text(value, cap=cap), cls=cls)


def details(summary: Any, body: Safe, *, open: bool = False, cls: str = "wb-details") -> Safe:
    """A collapsible block: ``summary`` is data (escaped), ``body`` is safe markup."""
    return Safe(
        f'<details class="{cls}"{" open" if open else ""}>'
        f"<summary>{text(summary, cap=300)}</summary>{body}</details>"
    )


def badge(value: Any, *, tone: str = "neutral") -> Safe:
    """A small coloured label (tone: neutral, good, bad, warn)."""
    return tag("span", value, cls=f"wb-badge wb-{tone}")


def key_values(pairs: Mapping[str, Any] | Sequence[tuple[str, Any]], *, cap: int = 300) -> Safe:
    """A two-column table of labels and values."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    rows = join(tag("tr", join([tag("th", k), tag("td", text(v, cap=cap))])) for k, v in items)
    return tag("table", rows, cls="wb-kv")


def table(
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    columns: Sequence[str],
    *,
    cap: int = 200,
    max_rows: int = 50,
    cls: str = "wb-table",
) -> Safe:
    """An HTML table from rows (dicts or sequences); every cell is escaped.

    Cells that are already :class:`Safe` (e.g. a badge) are inserted as they are.
    """
    head = tag("thead", tag("tr", join(tag("th", c) for c in columns)))
    body_rows = []
    for row in list(rows)[:max_rows]:
        values = [row.get(c) for c in columns] if isinstance(row, Mapping) else list(row)
        body_rows.append(tag("tr", join(_cell(_fmt(v), cap) for v in values)))
    more = len(rows) - max_rows
    if more > 0:
        body_rows.append(
            tag("tr", tag("td", f"… {more:,} more rows", colspan=str(len(columns)), cls="wb-more"))
        )
    return tag("table", join([head, tag("tbody", join(body_rows))]), cls=cls)


def _cell(value: Any, cap: int) -> Safe:
    """One table cell; short values never wrap (numbers with intervals stay on one line)."""
    short = isinstance(value, Safe) or len(str(value)) <= 40
    return tag("td", text(value, cap=cap), cls="wb-nw" if short else None)


def frame_table(frame: Any, *, cap: int = 200, max_rows: int = 50) -> Safe:
    """An HTML table from a polars frame (first ``max_rows`` rows, then a count of the rest)."""
    shown = table(frame.head(max_rows).rows(), frame.columns, cap=cap, max_rows=max_rows)
    if len(frame) <= max_rows:
        return shown
    return join([shown, tag("div", f"… {len(frame) - max_rows:,} more rows", cls="wb-more")])


def _fmt(value: Any) -> Any:
    if isinstance(value, Safe):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, timedelta):
        hours = value.total_seconds() / 3600
        return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"
    if isinstance(value, float):
        if value != value:  # NaN
            return "NaN"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value


STYLE = Safe(
    "<style>"
    ".wb-report{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;"
    "color:var(--jp-ui-font-color1,#222)}"
    ".wb-report h3{font-size:15px;margin:6px 0}.wb-report h4{font-size:13px;margin:8px 0 4px}"
    ".wb-table,.wb-kv{border-collapse:collapse;margin:4px 0}"
    ".wb-report .wb-table th,.wb-report .wb-table td,.wb-report .wb-kv th,.wb-report .wb-kv td{"
    "border-bottom:1px solid #ddd;padding:2px 8px;text-align:left !important;vertical-align:top;"
    "white-space:normal}"
    ".wb-report td.wb-nw{white-space:nowrap}"
    ".wb-table th{background:#f4f5f7}.wb-kv th{color:#555;font-weight:600}"
    ".wb-badge{border-radius:8px;padding:0 6px;font-size:12px;background:#eee}"
    ".wb-good{background:#d9f2dd;color:#135e1f}.wb-bad{background:#fadcdc;color:#8a1c1c}"
    ".wb-warn{background:#fff0c2;color:#6b4e00}.wb-more,.wb-null{color:#888;font-style:italic}"
    ".wb-pre{white-space:pre-wrap;word-break:break-word;max-height:24em;overflow:auto;"
    "background:#f7f7f9;padding:6px;margin:2px 0;font-size:12px}"
    "</style>"
)


def report(title: Any, sections: Sequence[Safe]) -> Safe:
    """A complete report block (the ``_repr_html_`` of result objects)."""
    return Safe(
        STYLE + f'<div class="wb-report">{tag("h3", title)}' + join(sections) + "</div>"
    )


def section(title: Any, body: Safe) -> Safe:
    """A titled part of a report."""
    return join([tag("h4", title), body])
