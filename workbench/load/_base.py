"""What every reader hands back, and the problem records of bad input.

A reader is a module in ``workbench.load`` with two functions:

``sniff(path: str, head: bytes) -> bool``
    True when the first bytes of a file (up to 64 KiB, already decompressed)
    look like this format. Used by ``format="auto"``.

``read(path: str, *, strict: bool = False) -> ReaderResult``
    Parse one file. Never raises on bad records unless ``strict``: each bad
    record becomes a :class:`Problem` and every good record still loads.

Readers produce spans and feedback frames in the shapes of
``workbench.schema.SPANS`` / ``FEEDBACK`` (missing columns may be omitted;
:func:`ReaderResult.conformed` fills them). Traces and sessions are never built
by a reader: they are a pure rollup of spans (``workbench.load.rollup``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from workbench import schema

# spans columns a reader sets to one value for a whole file (``pl.lit``)
PER_FILE_COLUMNS = ("source_file", "source_format")


class LoadError(ValueError):
    """Raised with ``strict=True`` at the first bad record, naming file:line."""

    def __init__(self, problem: Problem):
        self.problem = problem
        where = f"{problem.source_file}:{problem.line}" if problem.line else problem.source_file
        field_part = f" (field {problem.field!r})" if problem.field else ""
        super().__init__(f"{where}{field_part}: {problem.reason}" + (f": {problem.detail}" if problem.detail else ""))


@dataclass(frozen=True)
class Problem:
    """One bad record met while loading. ``line`` is 1-based; ``byte_offset`` 0-based."""

    source_file: str
    line: int | None
    byte_offset: int | None
    reason: str
    field: str | None = None
    detail: str | None = None
    excerpt: str | None = None

    def as_row(self) -> dict:
        return {
            "source_file": self.source_file,
            "line": self.line,
            "byte_offset": self.byte_offset,
            "reason": self.reason,
            "field": self.field,
            "detail": self.detail,
            "excerpt": self.excerpt[:200] if self.excerpt else None,
        }


def problems_frame(problems: list[Problem]) -> pl.DataFrame:
    """The ``problems`` table from a list of :class:`Problem`."""
    if not problems:
        return schema.empty(schema.PROBLEMS)
    return pl.DataFrame([p.as_row() for p in problems], schema=schema.PROBLEMS)


@dataclass
class ReaderResult:
    """What one reader returns for one file."""

    format: str
    spans: pl.DataFrame
    feedback: pl.DataFrame = field(default_factory=lambda: schema.empty(schema.FEEDBACK))
    problems: list[Problem] = field(default_factory=list)

    def conformed(self) -> ReaderResult:
        """The same result with spans and feedback cast to the table schemas."""
        spans = schema.conform(self.spans, schema.SPANS).select(list(schema.SPANS))
        feedback = schema.conform(self.feedback, schema.FEEDBACK).select(list(schema.FEEDBACK))
        return ReaderResult(self.format, spans, feedback, list(self.problems))


def raise_or_collect(problems: list[Problem], problem: Problem, *, strict: bool) -> None:
    """Append ``problem``, or raise :class:`LoadError` for it when ``strict``."""
    if strict:
        raise LoadError(problem)
    problems.append(problem)
