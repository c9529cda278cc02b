"""Small statistics shared by several stages (review, compare, cluster).

Only light imports at module level (``math``); keep this module small and pure.

Examples
--------
>>> from workbench.stats import wilson_interval
>>> low, high = wilson_interval(8, 10)
>>> round(low, 4), round(high, 4)
(0.4902, 0.9433)
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n``.

    Parameters
    ----------
    successes
        Number of successes, ``0 <= successes <= n``.
    n
        Number of trials. With ``n == 0`` the interval is ``(nan, nan)``: there is no information.
    confidence
        Two-sided coverage, e.g. ``0.95``.

    Returns
    -------
    (low, high)
        Bounds in ``[0, 1]``; the same as statsmodels
        ``proportion_confint(successes, n, alpha=1 - confidence, method="wilson")``.

    Examples
    --------
    >>> wilson_interval(0, 20)[0]
    0.0
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))
