"""Synthetic agent texts with planted topics, for clustering tests and benchmarks.

Each topic has its own vocabulary (a request phrase and a few dozen distinctive words);
every text mixes several topic words with words shared by all topics, so that the
topics are findable but not trivially separable. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

_SHARED = ["please", "help", "customer", "agent", "order", "account", "the", "my", "is", "was", "it", "with", "for", "about", "need", "today", "again", "thanks", "hello", "issue", "problem", "support", "request", "ticket", "question", "update", "status", "info", "system", "reply", "message", "yesterday", "week", "quickly", "soon", "still", "already", "also", "just", "really"]

_SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "vo", "ne", "bi", "da", "fu", "ge", "hi", "jo", "ku", "la", "me", "no", "pa", "qu", "ri", "sa", "to", "ve", "wi", "xa", "yo", "za", "bro", "cla", "dre", "fli", "gro", "plu", "sta", "tri", "vra", "zle"]

# Hand-named topics first (readable keywords in tests), then generated ones.
NAMED_TOPICS: dict[str, list[str]] = {
    "refund": ["refund", "money", "back", "charge", "reimburse", "returned", "purchase", "policy", "credit", "card"],
    "shipping": ["shipping", "delivery", "package", "courier", "tracking", "parcel", "late", "arrive", "address", "dispatch"],
    "password": ["password", "login", "reset", "locked", "credentials", "signin", "authentication", "code", "email", "verify"],
    "invoice": ["invoice", "billing", "vat", "receipt", "pdf", "tax", "company", "statement", "download", "accounting"],
    "cancel": ["cancel", "subscription", "plan", "renewal", "terminate", "membership", "downgrade", "stop", "monthly", "annual"],
    "warranty": ["warranty", "broken", "repair", "defect", "replacement", "screen", "damaged", "faulty", "guarantee", "device"],
}


def _made_up_words(rng: np.random.Generator, n: int) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        k = int(rng.integers(2, 4))
        words.add("".join(rng.choice(_SYLLABLES, size=k)))
    return sorted(words)


def topic_vocabularies(n_topics: int, *, words_per_topic: int = 12, seed: int = 0) -> dict[str, list[str]]:
    """Vocabularies for ``n_topics`` topics: the named ones, then made-up ones."""
    rng = np.random.default_rng(seed + 7919)
    names = list(NAMED_TOPICS)[:n_topics]
    vocab = {name: NAMED_TOPICS[name] for name in names}
    extra = n_topics - len(names)
    if extra > 0:
        pool = _made_up_words(rng, extra * words_per_topic)
        rng.shuffle(pool)
        for i in range(extra):
            vocab[f"topic{i:02d}"] = pool[i * words_per_topic : (i + 1) * words_per_topic]
    return vocab


def planted_texts(
    n: int,
    *,
    n_topics: int = 6,
    seed: int = 0,
    sizes: list[float] | None = None,
    topic_words: int = 6,
    shared_words: int = 8,
    vocabulary_seed: int = 0,
) -> pl.DataFrame:
    """A frame ``trace_id, topic, input`` with ``n`` texts drawn from ``n_topics`` topics.

    ``sizes`` gives relative topic sizes (default equal). ``seed`` draws the texts;
    ``vocabulary_seed`` fixes the made-up topic vocabularies, so two cohorts drawn with
    different seeds share their topics.
    """
    rng = np.random.default_rng(seed)
    vocab = topic_vocabularies(n_topics, seed=vocabulary_seed)
    names = list(vocab)
    weights = np.asarray(sizes if sizes is not None else [1.0] * n_topics, dtype=float)
    weights = weights / weights.sum()
    topics = rng.choice(n_topics, size=n, p=weights)
    texts = []
    for t in topics:
        words = list(rng.choice(vocab[names[t]], size=topic_words)) + list(
            rng.choice(_SHARED, size=shared_words)
        )
        rng.shuffle(words)
        texts.append(" ".join(words))
    return pl.DataFrame(
        {
            "trace_id": [f"t{seed}-{i:06d}" for i in range(n)],
            "topic": [names[t] for t in topics],
            "input": texts,
        }
    )
