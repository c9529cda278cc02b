"""Markdown tables from data, safe to paste into a pull request or render in a notebook.

Trace text, category names and segment values are untrusted: a ``|`` would break the
table, a newline would end it, and ``<script>`` would be live HTML where markdown is
rendered. :func:`cell` neutralises all three; :func:`table` builds a whole table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

_REPLACEMENTS = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("\n", " "), ("\r", " "))


def cell(value: Any) -> str:
    """Make any value safe inside a markdown table cell (pipes, newlines, HTML); None is empty.

    Examples
    --------
    >>> cell("a|b <b>")
    'a\\\\|b &lt;b&gt;'
    """
    if value is None:
        return ""
    text = str(value)
    for char, repl in _REPLACEMENTS:
        text = text.replace(char, repl)
    return text


def table(columns: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table; every header and cell goes through :func:`cell`."""
    head = "| " + " | ".join(cell(c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])
