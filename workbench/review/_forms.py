"""The small value types of a review session: the form, a save's outcome, one trace on screen, verdict keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench._html.trace import RenderedTrace
from workbench.review.conversation import Message, TreeRow
from workbench.review.events import LabelEvent, Vocabulary, trace_content_hash

__all__ = ["Form", "ReviewItem", "SaveResult", "verdict_keys"]

RESERVED_KEYS = frozenset("jksuh?0123456789")


def verdict_keys(vocabulary: Vocabulary) -> dict[str, str]:
    """Keyboard key -> verdict: the first free letter of each verdict (``p``/``f`` by default).

    Examples
    --------
    >>> verdict_keys(Vocabulary(("accepted", "corrected", "rejected", "escalated"), failing=("rejected",)))
    {'a': 'accepted', 'c': 'corrected', 'r': 'rejected', 'e': 'escalated'}
    """
    keys: dict[str, str] = {}
    for verdict in vocabulary.verdicts:
        for letter in verdict.lower():
            if letter.isalpha() and letter not in keys and letter not in RESERVED_KEYS:
                keys[letter] = verdict
                break
    return keys


@dataclass(frozen=True)
class Form:
    """What the reviewer has entered for the trace on screen."""

    verdict: str | None = None
    categories: tuple[str, ...] = ()
    note: str = ""
    corrected_output: str = ""
    escalate: bool = False


@dataclass(frozen=True)
class SaveResult:
    """The outcome of a save or undo: ``saved`` is True only after the store committed."""

    saved: bool
    message: str
    event: LabelEvent | None = None


@dataclass(frozen=True)
class ReviewItem:
    """Everything shown for one trace (computed once per trace and cached)."""

    position: int
    trace_id: str
    reason: str
    spans: pl.DataFrame = field(repr=False)
    trace: dict[str, Any] = field(repr=False)
    messages: tuple[Message, ...] = field(repr=False)
    tree: tuple[TreeRow, ...] = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    rendered: RenderedTrace = field(repr=False)
    original_output: str = field(default="", repr=False)

    @property
    def content_hash(self) -> str:
        """``trace_content_hash`` of the spans (computed when first needed: at save time)."""
        if "_hash" not in self.__dict__:
            object.__setattr__(self, "_hash", trace_content_hash(self.spans))
        return self.__dict__["_hash"]
