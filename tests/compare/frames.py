"""Small trace tables with planted effects for the comparison tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from workbench.schema import TRACES, conform

START = datetime(2025, 3, 3, tzinfo=UTC)


def traces(
    *,
    n_per_cohort: int = 400,
    fail: tuple[float, float] = (0.2, 0.12),
    latency: tuple[float, float] = (7.0, 7.0),
    session_size: int = 1,
    seed: int = 0,
) -> pl.DataFrame:
    """Two prompt versions (v1 week 1, v2 week 2) with planted failure rates and latency."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_cohort
    cohort = np.repeat([0, 1], n_per_cohort)
    session_effect = rng.normal(0, 0.08, n // session_size + 1)[np.arange(n) // session_size] if session_size > 1 else 0
    p = np.clip(np.asarray(fail)[cohort] + session_effect, 0, 1)
    frame = pl.DataFrame({
        "trace_id": [f"t{i}" for i in range(n)],
        "session_id": [f"s{i // session_size}" for i in range(n)],
        "start_time": [START + timedelta(days=7 * int(c), minutes=i) for i, c in enumerate(cohort)],
        "prompt_version": np.where(cohort == 0, "v1", "v2"),
        "passed": rng.random(n) >= p,
        "duration_ms": rng.lognormal(np.asarray(latency)[cohort], 0.8),
        "tokens_total": rng.integers(200, 1500, n),
        "cost_usd": rng.lognormal(-7, 0.5, n),
        "n_tool_calls": rng.poisson(1.5, n),
        "status": np.where(rng.random(n) < 0.03, "error", "ok"),
        "output": ["an answer"] * n,
        "intent": rng.choice(["refund", "billing", "tech"], n),
    })
    return conform(frame, TRACES)


def replayed_tasks(*, n_tasks: int = 120, runs: int = 4, shift: float = 0.5, seed: int = 1) -> pl.DataFrame:
    """The same tasks run by two agents, several trials each; tasks differ a lot in difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 2.0, n_tasks)
    rows = []
    for agent, bonus in (("old", 0.0), ("new", shift)):
        for task in range(n_tasks):
            p_pass = 1 / (1 + np.exp(-(difficulty[task] + bonus)))
            for run in range(runs):
                rows.append({
                    "trace_id": f"{agent}-{task}-{run}", "task_id": f"task{task}", "agent": agent,
                    "session_id": f"{agent}-{task}-{run}", "passed": bool(rng.random() < p_pass),
                    "duration_ms": float(rng.lognormal(7 + 0.3 * (difficulty[task] < 0), 0.3)),
                })
    return pl.DataFrame(rows)
