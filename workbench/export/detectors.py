"""Offline PII and secret detectors: regular expressions plus validators.

A detector looks at a whole column of text at once and returns the exact
substrings to redact with their kind (:class:`Finding`). The built-in
:class:`PatternDetector` runs ONE combined regular expression over the whole
column in polars (Rust regex, vectorised, multi-threaded), then validates each
distinct candidate in Python: Luhn and issuer prefix for card numbers, ISO 13616
mod-97 and country length for IBANs, ``ipaddress`` for IPv4/IPv6, digit counts
for phone numbers, entropy for generic ``key=...`` secrets. Only distinct
candidates reach Python, so cost grows with the number of distinct hits, not with
the amount of text.

Kinds: ``PRIVATE_KEY, JWT, API_KEY, TOKEN, PASSWORD, SECRET, EMAIL, IBAN, CARD,
IP, PHONE`` (plus ``DENY`` for :class:`DenyListDetector`).

Any object with ``name``, ``version`` and ``find(texts) -> list[Finding]`` is a
detector (:class:`Detector`), so an NER model can plug in: :class:`PresidioDetector`
wraps Microsoft Presidio when it is installed with a local model. It is never
required and never downloads anything.

Examples
--------
>>> import polars as pl
>>> found = PatternDetector().find(pl.Series(["mail bob@example.com, card 4111 1111 1111 1111"]))
>>> sorted((f.kind, f.value) for f in found)
[('CARD', '4111 1111 1111 1111'), ('EMAIL', 'bob@example.com')]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import polars as pl

from workbench._optional import require
from workbench.export.validators import (
    _iban_prefix,
    _jwt_valid,
    card_valid,
    iban_valid,
    ip_valid,
    phone_valid,
    shannon_entropy,
)

_B = r"(?-u:\b)"  # ASCII word boundary: keeps the Rust regex on its fast DFA path

# (kind, Rust-regex pattern), in priority order: at one start position the first wins.
PATTERNS: tuple[tuple[str, str], ...] = (
    ("PRIVATE_KEY", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("JWT", r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),
    (
        "API_KEY",
        _B + r"(?:sk-(?:proj-|ant-|live-|test-|svcacct-)?[A-Za-z0-9_-]{20,}"
        r"|(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35}"
        r"|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"
        r"|glpat-[0-9A-Za-z_-]{20,}|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36})",
    ),
    ("TOKEN", r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/=-]{16,}"),
    ("PASSWORD", r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@"),
    (
        "SECRET",
        r"(?i:api[_-]?key|apikey|secret[_-]?key|client[_-]?secret|secret|access[_-]?token|auth[_-]?token"
        r"|token|access[_-]?key|passwd|password|pwd)[\"']?[ \t]*[:=][ \t]*[\"']?[A-Za-z0-9_\-./+=!@#$%^&*~]{6,}",
    ),
    ("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("IBAN", _B + r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + _B),
    ("CARD", _B + r"[0-9](?:[ -]?[0-9]){12,18}" + _B),
    ("IP", r"(?:[0-9A-Fa-f]{1,4})?(?::(?:[0-9A-Fa-f]{1,4})?){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3})?"),
    ("IP", _B + r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}" + _B),
    (
        "PHONE",
        r"(?:\+[1-9][0-9]{0,2}[ .-]?(?:\(?[0-9]{1,4}\)?[ .-]?){1,4}[0-9]{2,4}"
        r"|(?:\([2-9][0-9]{2}\)[ .-]?|" + _B + r"[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}"
        r"|" + _B + r"0[0-9]{2,4}[ .-][0-9]{3,4}[ .-]?[0-9]{3,4})" + _B,
    ),
)

COMBINED_PATTERN = "|".join(f"(?:{pattern})" for _kind, pattern in PATTERNS)

_SECRET_KEYWORD = re.compile(r"(?i)(passwd|password|pwd)")
_SECRET_VALUE = re.compile(r"[\"']?[ \t]*[:=][ \t]*[\"']?([A-Za-z0-9_\-./+=!@#$%^&*~]{6,})$")


@dataclass(frozen=True)
class Finding:
    """One distinct substring to redact: its kind, the exact text and how often it was seen."""

    kind: str
    value: str
    count: int = 1


@runtime_checkable
class Detector(Protocol):
    """What a detector provides. ``find`` returns exact substrings of ``texts`` to redact.

    Raise from ``find`` when the detector cannot run: the export then fails and
    writes nothing (never falls back to exporting raw text).
    """

    name: str
    version: str

    def find(self, texts: pl.Series) -> list[Finding]: ...


def _secret_value(text: str) -> tuple[str, str] | None:
    """For ``key=value`` text: (kind, value) when the value looks like a real secret."""
    keyword = re.match(r"(?i)[a-z_-]+", text)
    rest = _SECRET_VALUE.search(text[keyword.end() if keyword else 0 :])
    if rest is None:
        return None
    value = rest.group(1)
    specific = _classify_exact(value, skip=("SECRET",))
    if specific:
        return specific
    if keyword and _SECRET_KEYWORD.fullmatch(keyword.group(0)):
        has_digit = any(ch.isdigit() for ch in value)
        has_symbol = any(not ch.isalnum() for ch in value)
        return ("PASSWORD", value) if (has_digit or has_symbol) else None
    if len(value) >= 12 and shannon_entropy(value) >= 3.0 and any(ch.isdigit() for ch in value):
        return "SECRET", value
    return None


def _py(pattern: str) -> str:
    return pattern.replace(_B, r"(?a:\b)")


_PY_PATTERNS = tuple((kind, re.compile(_py(pattern))) for kind, pattern in PATTERNS)
_PY_COMBINED = re.compile("|".join(f"(?:{_py(p)})" for _k, p in PATTERNS))
# one alternative per pattern, named by its position: fullmatch tells which one fits first
_PY_NAMED = re.compile("|".join(f"(?P<p{i}>{_py(p)})" for i, (_k, p) in enumerate(PATTERNS)))


def _validate(kind: str, text: str) -> tuple[str, str] | None:
    if kind in ("PRIVATE_KEY", "API_KEY", "EMAIL"):
        return kind, text
    if kind == "JWT":
        return (kind, text) if _jwt_valid(text) else None
    if kind == "TOKEN":
        return kind, text.split(None, 1)[1]
    if kind == "PASSWORD":
        return kind, text[text.index("://") + 3 : -1].split(":", 1)[1]
    if kind == "SECRET":
        return _secret_value(text)
    valid = (
        (kind == "IBAN" and iban_valid(text))
        or (kind == "CARD" and card_valid(text))
        or (kind == "IP" and ip_valid(text))
        or (kind == "PHONE" and phone_valid(text))
    )
    return (kind, text) if valid else None


def _classify_exact(text: str, *, skip: Sequence[str] = ()) -> tuple[str, str] | None:
    """(kind, value) when the whole of ``text`` is one valid detection."""
    match = _PY_NAMED.fullmatch(text)
    if match is None:
        return None
    first = int(match.lastgroup[1:])
    for index in range(first, len(_PY_PATTERNS)):
        kind, pattern = _PY_PATTERNS[index]
        if kind in skip or (index != first and not pattern.fullmatch(text)):
            continue
        found = _validate(kind, text)
        if found:
            return found
    return None


def classify(candidate: str) -> list[tuple[str, str]]:
    """Validate one regex candidate: the (kind, exact substring) pairs to redact in it.

    When the whole candidate fails validation (a 20-digit run that is not a card,
    an IBAN followed by another word), valid detections inside it are searched for.
    """
    exact = _classify_exact(candidate)
    if exact:
        return [exact]
    found: list[tuple[str, str]] = []
    if candidate[:2].isalpha() and candidate[:2].isupper():
        prefix = _iban_prefix(candidate)
        if prefix:
            return [("IBAN", prefix)]
    digits_only = re.sub(r"[ -]", "", candidate)
    if digits_only.isdigit() and len(digits_only) > 13:
        found.extend(_cards_inside(candidate))
    position = 1
    while position < len(candidate):
        match = _PY_COMBINED.search(candidate, position)
        if match is None:
            break
        inner = _classify_exact(match.group(0)) if match.group(0) != candidate else None
        if inner:
            if inner not in found and not any(inner[1] in value for _k, value in found):
                found.append(inner)
            position = match.end()
        else:
            position = match.start() + 1
    return found


def _cards_inside(text: str) -> list[tuple[str, str]]:
    """Valid card numbers starting at a group boundary inside a longer digit run."""
    starts = [0] + [m.end() for m in re.finditer(r"[ -]", text)]
    for start in starts:
        for end in range(len(text), start, -1):
            piece = text[start:end]
            if piece[-1] in " -":
                continue
            if card_valid(piece) and (end == len(text) or text[end] in " -"):
                return [("CARD", piece)]
    return []


def scan_candidates(texts: pl.Series) -> tuple[pl.DataFrame, pl.Series]:
    """Regex candidates in ``texts`` (value, occurrences; first-seen order) and a row hit mask."""
    matches = texts.str.extract_all(COMBINED_PATTERN)
    mask = matches.list.len().fill_null(0) > 0
    hits = matches.explode().drop_nulls()
    if hits.is_empty():
        return pl.DataFrame(schema={"value": pl.String, "count": pl.UInt32}), mask
    counts = (
        hits.rename("value")
        .to_frame()
        .group_by("value", maintain_order=True)
        .agg(pl.len().cast(pl.UInt32).alias("count"))
    )
    return counts, mask


class PatternDetector:
    """The built-in detector: one vectorised regex pass, then validators per distinct candidate.

    Parameters
    ----------
    kinds
        The kinds to report (default: all). Others are still matched (so they do not
        hide overlapping hits) but not returned.
    """

    name = "workbench.patterns"
    version = "1"

    def __init__(self, *, kinds: Iterable[str] | None = None) -> None:
        self.kinds = frozenset(kinds) if kinds is not None else None

    def scan(self, texts: pl.Series) -> tuple[list[Finding], pl.Series]:
        """Findings plus a boolean mask of the rows that hold a candidate."""
        candidates, mask = scan_candidates(texts)
        findings: dict[str, Finding] = {}
        for value, count in candidates.iter_rows():
            for kind, exact in classify(value):
                if self.kinds is not None and kind not in self.kinds:
                    continue
                previous = findings.get(exact)
                findings[exact] = Finding(kind, exact, count + (previous.count if previous else 0))
        return list(findings.values()), mask

    def find(self, texts: pl.Series) -> list[Finding]:
        return self.scan(texts)[0]


class DenyListDetector:
    """Project deny-list: exact terms (customer names, internal host names) to always redact."""

    name = "workbench.deny_list"
    version = "1"

    def __init__(self, terms: Iterable[str], *, kind: str = "DENY") -> None:
        self.terms = tuple(dict.fromkeys(t for t in terms if t))
        self.kind = kind

    def find(self, texts: pl.Series) -> list[Finding]:
        if not self.terms:
            return []
        hits = texts.str.extract_many(list(self.terms)).explode().drop_nulls()
        counts = Counter(hits.to_list())
        return [Finding(self.kind, term, counts[term]) for term in self.terms if counts.get(term)]


class PresidioDetector:
    """Optional NER detector wrapping a Presidio ``AnalyzerEngine`` (never downloads models).

    Parameters
    ----------
    analyzer
        A ready ``presidio_analyzer.AnalyzerEngine`` (or any object with the same
        ``analyze(text=..., language=...)`` method). When omitted, one is built from
        the locally installed spaCy model ``spacy_model``; if that model is not
        installed an error says so instead of downloading it.
    entities, score_threshold, language
        Passed to ``analyze``.
    """

    name = "presidio"
    is_ner = True

    def __init__(
        self,
        analyzer: Any = None,
        *,
        spacy_model: str = "en_core_web_lg",
        entities: Sequence[str] | None = None,
        score_threshold: float = 0.5,
        language: str = "en",
    ) -> None:
        if analyzer is None:
            analyzer = _local_presidio(spacy_model)
        self.analyzer = analyzer
        self.entities = list(entities) if entities else None
        self.score_threshold = score_threshold
        self.language = language
        self.version = str(getattr(analyzer, "version", None) or _presidio_version())

    def find(self, texts: pl.Series) -> list[Finding]:
        counts: Counter[tuple[str, str]] = Counter()
        for text in texts.drop_nulls().unique().to_list():
            results = self.analyzer.analyze(
                text=text,
                language=self.language,
                entities=self.entities,
                score_threshold=self.score_threshold,
            )
            for result in results:
                value = text[result.start : result.end]
                if value.strip():
                    counts[(str(result.entity_type), value)] += 1
        return [Finding(kind, value, n) for (kind, value), n in counts.items()]


def _presidio_version() -> str:
    try:
        from importlib.metadata import version

        return version("presidio-analyzer")
    except Exception:  # pragma: no cover - only when presidio is absent
        return "unknown"


def _local_presidio(spacy_model: str) -> Any:  # pragma: no cover - needs presidio + a local model
    analyzer_mod = require("presidio_analyzer", purpose="NER redaction with Presidio")
    spacy = require("spacy", purpose="NER redaction with Presidio")
    if not spacy.util.is_package(spacy_model):
        raise RuntimeError(
            f"Presidio needs the spaCy model {spacy_model!r} installed locally; workbench never downloads "
            "models at run time. Install it yourself or pass a ready AnalyzerEngine as analyzer=."
        )
    nlp = require("presidio_analyzer.nlp_engine", purpose="NER redaction with Presidio")
    provider = nlp.NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": spacy_model}],
        }
    )
    return analyzer_mod.AnalyzerEngine(nlp_engine=provider.create_engine())


def default_detectors() -> list[Detector]:
    """The detectors an export runs by default: the offline pattern detector only."""
    return [PatternDetector()]
