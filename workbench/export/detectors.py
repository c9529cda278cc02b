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

import base64
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import polars as pl

from workbench._optional import require

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

# IBAN lengths per country (ISO 13616 registry, SWIFT release 2024).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

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


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (True for valid card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    n = len(digits)
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= int(digits[:6]) <= 622925:
        return 16 <= n <= 19
    if p2 == 35:
        return 16 <= n <= 19
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if p2 in (50, 56, 57, 58, 62, 63, 67, 69):
        return 12 <= n <= 19
    return False


def card_valid(text: str) -> bool:
    """A plausible payment card number: 13-19 digits, known issuer prefix, Luhn valid."""
    digits = re.sub(r"[ -]", "", text)
    return digits.isdigit() and 13 <= len(digits) <= 19 and _card_prefix_ok(digits) and luhn_valid(digits)


def iban_valid(text: str) -> bool:
    """ISO 13616 check: known country, its length, and mod-97 == 1."""
    compact = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _iban_prefix(text: str) -> str | None:
    """The leading substring of ``text`` that is a valid IBAN of its country's length."""
    length = IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    seen = 0
    for end, ch in enumerate(text, start=1):
        if ch != " ":
            seen += 1
        if seen == length:
            piece = text[:end]
            return piece if iban_valid(piece) else None
    return None


def ip_valid(text: str) -> bool:
    """A valid IPv4 address, or an IPv6 address with 2+ groups and a digit."""
    if "." in text and ":" not in text:
        parts = text.split(".")
        return len(parts) == 4 and all(
            p.isdigit() and int(p) <= 255 and (p == "0" or p[0] != "0") for p in parts
        )
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.version == 6:
        groups = [g for g in text.split(":") if g]
        return len(groups) >= 2 and any(ch.isdigit() for ch in text)
    return True


def phone_valid(text: str) -> bool:
    """9 to 15 digits (E.164 allows at most 15)."""
    digits = sum(ch.isdigit() for ch in text)
    return 9 <= digits <= 15


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


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


def _jwt_valid(text: str) -> bool:
    head = text.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except ValueError:
        return False
    return decoded.lstrip().startswith(b"{")


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
