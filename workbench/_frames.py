"""The one conversion point: pandas, polars or Arrow in, polars inside."""

from __future__ import annotations

from typing import Any

import polars as pl


def as_polars(frame: Any, *, name: str = "frame") -> pl.DataFrame:
    """Return ``frame`` as a polars DataFrame.

    Accepts a polars DataFrame or LazyFrame, a pandas DataFrame, a pyarrow Table,
    or a list of dicts. Every public function that takes a table calls this first,
    so users may pass whichever library they work in.

    Raises
    ------
    TypeError
        Naming the argument and the type that was given.
    """
    if isinstance(frame, pl.DataFrame):
        return frame
    if isinstance(frame, pl.LazyFrame):
        return frame.collect()
    module = type(frame).__module__.split(".")[0]
    if module == "pandas":
        return pl.from_pandas(frame)
    if module == "pyarrow":
        result = pl.from_arrow(frame)
        if isinstance(result, pl.DataFrame):
            return result
    if isinstance(frame, list) and all(isinstance(row, dict) for row in frame):
        return pl.DataFrame(frame, infer_schema_length=None)
    raise TypeError(
        f"{name} must be a polars or pandas DataFrame, a pyarrow Table or a list of dicts, "
        f"not {type(frame).__name__}"
    )
