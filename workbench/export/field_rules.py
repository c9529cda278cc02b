"""Field-path rules: values at known PII paths are replaced whatever they look like.

A rule maps a path pattern to a kind. ``"user_id"`` names a whole column;
``"*.email"`` matches a key at any depth of a JSON column; ``"metadata.customer.*"``
everything under one key (``*`` wildcards, case-insensitive). Values are replaced
by consistent placeholders (``<EMAIL_1>``) shared with the detectors through one
:class:`PlaceholderMap` per export.

Examples
--------
>>> mapping = PlaceholderMap()
>>> mapping.add("EMAIL", "a@b.io"), mapping.add("EMAIL", "c@d.io"), mapping.add("EMAIL", "a@b.io")
('<EMAIL_1>', '<EMAIL_2>', '<EMAIL_1>')
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl


class RedactionError(RuntimeError):
    """Redaction could not complete; nothing may be exported."""


# Keys whose values are redacted at any depth of a JSON column, whatever they hold.
DEFAULT_FIELD_RULES: dict[str, str] = {
    "*.email": "EMAIL",
    "*.e_mail": "EMAIL",
    "*.email_address": "EMAIL",
    "*.phone": "PHONE",
    "*.phone_number": "PHONE",
    "*.mobile": "PHONE",
    "*.ip": "IP",
    "*.ip_address": "IP",
    "*.client_ip": "IP",
    "*.password": "PASSWORD",
    "*.api_key": "API_KEY",
    "*.apikey": "API_KEY",
    "*.access_token": "TOKEN",
    "*.refresh_token": "TOKEN",
    "*.authorization": "TOKEN",
    "*.secret": "SECRET",
    "*.client_secret": "SECRET",
    "*.ssn": "SSN",
    "*.card_number": "CARD",
    "*.iban": "IBAN",
}
_MIN_PROPAGATED_LENGTH = 6  # field-rule values this long are also replaced in free text


@dataclass
class PlaceholderMap:
    """value -> placeholder, numbered per kind in order of first appearance."""

    placeholders: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    _next: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, value: str, count: int = 1) -> str:
        if value not in self.placeholders:
            self._next[kind] += 1
            self.placeholders[value] = f"<{kind}_{self._next[kind]}>"
            self.kinds[value] = kind
        self.counts[self.kinds[value]] += count
        return self.placeholders[value]


class _RuleMatcher:
    """All path patterns compiled into one case-insensitive regex; ``kind(path)`` is the first match."""

    def __init__(self, rules: Mapping[str, str]) -> None:
        self.kinds = list(rules.values())
        alternatives = [f"(?P<r{i}>{fnmatch.translate(p.lower())})" for i, p in enumerate(rules)]
        self.regex = re.compile("|".join(alternatives)) if alternatives else None

    def kind(self, path: str) -> str | None:
        if self.regex is None:
            return None
        match = self.regex.match(path.lower())
        return self.kinds[int(match.lastgroup[1:])] if match else None


def _apply_rules_to_json(
    value: Any, path: str, rules: _RuleMatcher, mapping: PlaceholderMap
) -> tuple[Any, int]:
    kind = rules.kind(path)
    if kind is not None and value is not None:
        raw = value if isinstance(value, str) else orjson.dumps(value).decode()
        return mapping.add(kind, raw), 1
    if isinstance(value, dict):
        hits = 0
        out = {}
        for key, item in value.items():
            out[key], n = _apply_rules_to_json(item, f"{path}.{key}", rules, mapping)
            hits += n
        return out, hits
    if isinstance(value, list):
        hits = 0
        items = []
        for index, item in enumerate(value):
            new, n = _apply_rules_to_json(item, f"{path}.{index}", rules, mapping)
            items.append(new)
            hits += n
        return items, hits
    return value, 0


def _json_prefilter(rules: Mapping[str, str]) -> str | None:
    """A regex that every JSON text touched by ``rules`` must match (None: no shortcut)."""
    keys = []
    for pattern in rules:
        last = pattern.rsplit(".", 1)[-1]
        if any(ch in last for ch in "*?["):
            return None
        keys.append(last)
    if not keys:
        return None
    return r'(?i)"(?:' + "|".join(_escape_regex(k) for k in keys) + r')"\s*:'


def _escape_regex(text: str) -> str:
    return "".join("\\" + ch if not ch.isalnum() and ch != "_" else ch for ch in text)


def _field_rules_on_json(
    frame: pl.DataFrame, column: str, rules: Mapping[str, str], mapping: PlaceholderMap
) -> tuple[pl.DataFrame, int]:
    relevant = {p[len(column) + 1 :] if p.startswith(column + ".") else p: k for p, k in rules.items()}
    relevant = {
        ("*." + p if not p.startswith("*") else p): k
        for p, k in relevant.items()
        if "." in p or p.startswith("*")
    }
    if not relevant:
        return frame, 0
    prefilter = _json_prefilter(relevant)
    series = frame.get_column(column)
    mask = series.is_not_null() if prefilter is None else series.str.contains(prefilter).fill_null(False)
    indices = mask.arg_true().to_list()
    if not indices:
        return frame, 0
    values = series.gather(indices).to_list()
    matcher = _RuleMatcher(relevant)
    hits = 0
    for position, (index, text) in enumerate(zip(indices, values, strict=True)):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise RedactionError(f"column {column!r} row {index}: not valid JSON ({exc})") from exc
        new, n = _apply_rules_to_json(parsed, "$", matcher, mapping)
        if n:
            values[position] = orjson.dumps(new, option=orjson.OPT_SORT_KEYS).decode()
            hits += n
    updated = series.clone().scatter(indices, pl.Series(values, dtype=pl.String))  # scatter works in place
    return frame.with_columns(updated.rename(column)), hits


def _field_rules_on_columns(
    frame: pl.DataFrame, columns: Sequence[str], rules: Mapping[str, str], mapping: PlaceholderMap
) -> tuple[pl.DataFrame, int]:
    hits = 0
    for column in columns:
        kind = rules.get(column)
        if kind is None:
            continue
        series = frame.get_column(column)
        values = series.drop_nulls().unique(maintain_order=True).to_list()
        lookup = {v: mapping.add(kind, v, 0) for v in values}
        hits += int(series.is_not_null().sum())
        frame = frame.with_columns(
            pl.col(column).replace_strict(lookup, default=None, return_dtype=pl.String)
        )
    return frame, hits
