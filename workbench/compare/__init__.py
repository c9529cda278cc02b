"""Compare cohorts of traces with honest statistics.

``compare_cohorts(traces, cohort="prompt_version", baseline="v1")`` picks a paired,
clustered or independent analysis from the data, reports every metric with n, both
values, the difference, its interval, p, Benjamini-Hochberg adjusted p, the minimum
detectable effect and a verdict, and warns about mix shift and version drift.
"""

from __future__ import annotations

from workbench.compare.api import compare_cohorts
from workbench.compare.cohorts import CohortSpec, by_column, by_filter, by_time
from workbench.compare.design import Design, detect_design
from workbench.compare.lifecycle import failure_lifecycle
from workbench.compare.metrics import Metric, trace_metrics
from workbench.compare.result import Comparison

__all__ = [
    "CohortSpec",
    "Comparison",
    "Design",
    "Metric",
    "by_column",
    "by_filter",
    "by_time",
    "compare_cohorts",
    "detect_design",
    "failure_lifecycle",
    "trace_metrics",
]
