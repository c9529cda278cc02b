"""Every format: write then read gives the same items; Inspect AI's own loader reads our file."""

from __future__ import annotations

import os

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from workbench.export.atomic import atomic_writer
from workbench.export.dataset import build_eval_dataset
from workbench.export.readers import read_export
from workbench.export.writers import EXPORT_COLUMNS, FORMATS, write_format

FULL = ("jsonl", "parquet", "csv", "huggingface")


@pytest.fixture
def items(traces, labels) -> pl.DataFrame:
    dataset = build_eval_dataset(traces, labels, name="rt", split={"dev": 0.5, "test": 0.5}, redact=False)
    frame = dataset.items
    assert frame["expected"].null_count() > 0 and frame["expected"].null_count() < frame.height
    return frame


def _by_id(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("item_id")


@pytest.mark.parametrize("fmt", FULL)
def test_full_round_trip(items, tmp_path, fmt):
    path = write_format(items, tmp_path, format=fmt, name="rt")
    back = read_export(path, format=fmt)
    assert_frame_equal(_by_id(back), _by_id(items.select(EXPORT_COLUMNS)))


@pytest.mark.parametrize("fmt", ["inspect", "langfuse", "promptfoo", "phoenix"])
def test_platform_round_trip(items, tmp_path, fmt):
    path = write_format(items, tmp_path, format=fmt, name="rt")
    back = read_export(path, format=fmt)
    columns = [c for c in back.columns]
    expected = items.select(columns)
    assert_frame_equal(_by_id(back), _by_id(expected))


@pytest.mark.parametrize("fmt", ["openai_evals", "openai_chat"])
def test_openai_round_trip(items, tmp_path, fmt):
    path = write_format(items, tmp_path, format=fmt, name="rt", system_prompt="You are a support agent.")
    back = read_export(path, format=fmt)
    expected = items.filter(pl.col("expected").is_not_null()).select("messages", "expected")
    assert_frame_equal(back, expected)
    first = orjson.loads(path.read_bytes().splitlines()[0])
    messages = first["input"] if fmt == "openai_evals" else first["messages"]
    assert messages[0] == {"role": "system", "content": "You are a support agent."}
    if fmt == "openai_chat":
        assert messages[-1]["role"] == "assistant"


def test_platform_specific_fields(items, tmp_path):
    lf = orjson.loads(
        (write_format(items, tmp_path, format="langfuse", name="rt")).read_bytes().splitlines()[0]
    )
    assert lf["sourceTraceId"] == items["trace_id"][0] and lf["sourceObservationId"] == items["span_id"][0]
    assert lf["datasetName"] == "rt" and lf["id"] == f"rt-{items['item_id'][0]}"
    pf_lines = write_format(items, tmp_path, format="promptfoo", name="rt").read_bytes().splitlines()
    tests = [orjson.loads(line) for line in pf_lines]
    with_expected = [t for t in tests if "assert" in t]
    assert with_expected and with_expected[0]["assert"][0]["type"] == "factuality"
    assert all("vars" in t and "input" in t["vars"] for t in tests)
    body = orjson.loads(write_format(items, tmp_path, format="phoenix", name="rt").read_bytes())
    assert body["action"] == "create" and len(body["inputs"]) == len(body["outputs"]) == items.height
    card = (write_format(items, tmp_path / "hfcard", format="huggingface", card="---\nx: 1\n---\n")).joinpath(
        "README.md"
    )
    assert card.read_text().startswith("---\n")
    assert sorted(p.name for p in (tmp_path / "hfcard" / "hf" / "data").iterdir()) == [
        "dev-00000-of-00001.parquet",
        "test-00000-of-00001.parquet",
    ]


def test_inspect_ai_reads_our_file(items, tmp_path):
    dataset_module = pytest.importorskip("inspect_ai.dataset")
    path = write_format(items, tmp_path, format="inspect", name="rt")
    samples = dataset_module.json_dataset(str(path))
    assert len(samples) == items.height
    by_id = {s.id: s for s in samples}
    for row in items.iter_rows(named=True):
        sample = by_id[row["item_id"]]
        assert sample.target == (row["expected"] or "")
        assert sample.metadata["trace_id"] == row["trace_id"]
        if len(row["messages"]) > 1:
            assert [m.role for m in sample.input] == [m["role"] for m in row["messages"]]
            assert sample.input[-1].text == row["messages"][-1]["content"]
        else:
            assert sample.input == row["input"]


def test_every_format_is_registered_with_a_reader(items, tmp_path):
    for fmt in FORMATS:
        assert read_export(write_format(items, tmp_path / fmt, format=fmt, name="rt"), format=fmt).height > 0


def test_atomic_writer_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "items.jsonl"
    target.write_bytes(b"old complete\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"new partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old complete\n"
    assert os.listdir(tmp_path) == ["items.jsonl"]


def test_unknown_format(items, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        write_format(items, tmp_path, format="xml")
