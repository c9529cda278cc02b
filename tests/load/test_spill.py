"""Long text moved to a memory-mapped file reads back as the same strings, in every path of a load."""

from __future__ import annotations

import errno
import fcntl
import os
import random
from concurrent.futures import ThreadPoolExecutor

import orjson
import polars as pl
import pyarrow as pa
import pytest

from workbench.load import _block_cuts, _direct_io, _otlp_fast, _spill, otlp
from workbench.load._records import read_bytes


def _texts(rng: random.Random, n: int) -> list[str | None]:
    """Nulls, inline (<= 12 bytes), short (13-255) and long strings, with multi-byte characters."""
    out = []
    for _ in range(n):
        size = rng.choice([0, 5, 12, 13, 40, 255, 256, 300, 3000])
        out.append(None if rng.random() < 0.1 else "".join(rng.choice("ab é東\n\"") for _ in range(size)))
    return out


def _views(values: list[str | None], pieces: int = 3) -> pa.Array:
    """A ``string_view`` array whose text sits in several data buffers, as pyarrow's parser leaves it."""
    size = -(-len(values) // pieces)
    array = pa.concat_arrays([pa.array(values[i:i + size], pa.string_view()) for i in range(0, len(values), size)])
    assert array.to_pylist() == values and len(array.buffers()) > 3
    return array


KEYS = ["input.value", "output.value", "llm.model_name", "metadata", None]


def _keys(values: list[str | None], seed: int = 0) -> pa.Array:
    """A key beside each value: text keys, others, and a null key."""
    rng = random.Random(seed)
    return pa.array([rng.choice(KEYS) for _ in values], pa.string_view())


def _is_text(key: str | None, value: str | None) -> bool:
    return key in ("input.value", "output.value") and value is not None and len(value.encode()) > 12


@pytest.fixture
def small_spill(monkeypatch):
    monkeypatch.setattr(_spill, "MIN_SPILL_BYTES", 1)


def _new(directory=None) -> _spill.TextSpill:
    return _spill.TextSpill(["input.value", "output.value"], None if directory is None else str(directory))


def test_moved_strings_are_the_same_and_only_text_lives_in_the_file(small_spill, tmp_path):
    values = _texts(random.Random(3), 500)
    array, keys = _views(values), _keys(values)
    spill = _new(tmp_path)
    moved, = spill.move([array], [keys])
    assert moved is not array and moved.to_pylist() == values
    moved.validate(full=True)
    pairs = list(zip(keys.to_pylist(), values, strict=True))
    text_bytes = sum(len(v.encode()) for k, v in pairs if _is_text(k, v))
    other_bytes = sum(len(v.encode()) for k, v in pairs if v is not None and len(v.encode()) > 12 and not _is_text(k, v))
    mapped, heap = moved.buffers()[2:]
    assert spill.bytes_written == mapped.size >= text_bytes > 0
    assert heap.size == other_bytes > 0  # the rest is copied, compactly, to memory
    assert pl.from_arrow(moved).to_list() == values
    spill.close()
    assert moved.to_pylist() == values  # the map outlives the spill's own handle


def test_arrays_with_little_text_or_of_other_types_stay(tmp_path):
    spill = _new(tmp_path)
    short = pa.array(["x" * 300] * 3, pa.string_view())  # under MIN_SPILL_BYTES
    text_keys = pa.array(["input.value"] * 10_000, pa.string_view())
    assert spill.move([short], [text_keys[:3]])[0] is short
    plain = pa.array(["x" * 300] * 10_000)  # not string_view
    sliced = pa.array(["x" * 300] * 10_001, pa.string_view()).slice(1)
    not_text = pa.array(["x" * 300] * 10_000, pa.string_view())
    other_keys = pa.array(["llm.model_name"] * 10_000, pa.string_view())
    assert spill.move([plain, sliced, not_text], [text_keys, text_keys, other_keys]) == [plain, sliced, not_text]
    assert spill.bytes_written == 0


def test_arrays_moved_together_share_one_region(small_spill, monkeypatch):
    monkeypatch.setattr(_spill, "MIN_SPILL_BYTES", 5000)  # more than any one array below has
    batches = [_texts(random.Random(seed), 40) for seed in range(6)]
    arrays = [_views(values, pieces=2) for values in batches]
    keys = [pa.array(["output.value"] * 40, pa.string_view()) for _ in batches]
    spill = _new()
    extra = pa.array(["x" * 300] * 3)
    moved = spill.move([*arrays, extra], [*keys, keys[0][:3]])
    assert [m.to_pylist() for m in moved[:-1]] == batches and moved[-1] is extra
    assert len({m.buffers()[2].address for m in moved[:-1]}) == 1  # one write, one map
    assert spill.bytes_written == sum(b.size for a in arrays for b in a.buffers()[2:])


def test_a_full_disk_turns_the_spill_off_and_keeps_the_text(small_spill, monkeypatch):
    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_spill.os, "pwrite", full)
    spill = _new()
    values = _texts(random.Random(5), 100)
    array = _views(values)
    assert spill.move([array], [_keys(values)])[0] is array and not spill.enabled
    other = _views(["y" * 400] * 5)
    assert spill.move([other], [_keys(["y"] * 5)])[0] is other and spill.bytes_written == 0


@pytest.mark.parametrize("file_kind", ["direct where possible", "page cache", "named temporary file"])
def test_every_kind_of_spill_file_reads_back_the_same(small_spill, monkeypatch, tmp_path, file_kind):
    monkeypatch.setattr(_direct_io, "STAGE_BYTES", 8192)  # several flushes of the staging buffer per region
    if file_kind != "direct where possible":
        monkeypatch.setattr(_spill, "O_DIRECT", 0)
    if file_kind == "named temporary file":
        monkeypatch.setattr(_spill, "O_TMPFILE", 0)
    spill = _new(tmp_path)
    batches = [_texts(random.Random(seed), 300) for seed in (8, 9, 10)]
    moved = [spill.move([_views(values)], [_keys(values, seed)])[0] for seed, values in enumerate(batches)]
    (file,) = spill._files.values()  # three regions, one after another
    assert [m.to_pylist() for m in moved] == batches
    assert file.direct is False or file_kind == "direct where possible"
    spill.close()
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    assert [m.to_pylist() for m in moved] == batches


def test_direct_writes_the_file_system_refuses_go_through_the_page_cache(small_spill, monkeypatch, tmp_path):
    probe = _spill._SpillFile.open(str(tmp_path))
    _spill.os.close(probe.fd)
    if not probe.direct:
        pytest.skip("no direct I/O where the tests write")
    real, refused = _spill.os.pwrite, []

    def picky(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & _spill.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(_spill.os, "pwrite", picky)
    spill = _new(tmp_path)
    values = _texts(random.Random(12), 300)
    moved = spill.move([_views(values)], [_keys(values)])[0]
    assert moved.to_pylist() == values and spill.enabled and spill.bytes_written > 0
    assert refused and not any(file.direct for file in spill._files.values())


def test_parallel_writers_get_separate_regions(small_spill):
    spill = _new()
    batches = [_texts(random.Random(seed), 300) for seed in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        moved = list(pool.map(lambda values: spill.move([_views(values)], [_keys(values)])[0], batches))
    assert [m.to_pylist() for m in moved] == batches
    assert spill.bytes_written > 0


def _long_spans(n: int, rng: random.Random, messages: bool = False) -> list[dict]:
    spans = []
    for i in range(n):
        text = "".join(rng.choice("word é東 \"\n\\") for _ in range(rng.randint(0, 1500)))
        attrs = [{"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
                 {"key": "input.value", "value": {"stringValue": text}},
                 {"key": "output.value", "value": {"stringValue": text[::-1]}},
                 {"key": "llm.model_name", "value": {"stringValue": "a-model-name-longer-than-twelve"}},
                 {"key": "metadata", "value": {"stringValue": '{"prompt_version": "v2"}'}},
                 {"key": "custom.long", "value": {"stringValue": "z" * (300 + i % 5)}}]
        if messages and i % 2 == 0:  # flattened messages: their content and the JSON built from them spill too
            attrs += [{"key": "llm.input_messages.0.message.role", "value": {"stringValue": "user"}},
                      {"key": "llm.input_messages.0.message.content", "value": {"stringValue": text}},
                      {"key": "llm.output_messages.0.message.content", "value": {"stringValue": text[::-1]}},
                      {"key": "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
                       "value": {"stringValue": "lookup_order"}}]
        spans.append({"traceId": f"{i // 4:032x}", "spanId": f"{i + 1:016x}", "name": "chat",
                      "startTimeUnixNano": str(1_767_261_600_000_000_000 + i), "endTimeUnixNano":
                      str(1_767_261_600_000_000_000 + i + 1000), "attributes": attrs, "status": {"code": 1}})
    return spans


@pytest.mark.parametrize("shape", ["span", "request"])
def test_a_load_with_the_spill_gives_the_reference_rows(tmp_path, monkeypatch, small_spill, shape):
    monkeypatch.setattr(_otlp_fast, "SPILL_FROM_BYTES", 0)
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(_block_cuts, "MIN_BLOCK_BYTES", 64 << 10)
    spans = _long_spans(600, random.Random(6))
    if shape == "span":
        lines = [orjson.dumps(s) for s in spans]
    else:
        lines = [orjson.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "s"},
                                                                                  "spans": spans[i:i + 3]}]}]})
                 for i in range(0, len(spans), 3)]
    lines[77] = lines[77][:40]  # a bad line: its block is cut in pieces, parsed and moved on the main thread
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert stats.bytes_spilled > 300 * 400 and stats.blocks_failed >= 1
    assert fast.spans.height == slow.spans.height == 600 - (1 if shape == "span" else 3)
    assert fast.spans.drop("duration_ms").equals(slow.spans.drop("duration_ms"))
    assert [(p.line, p.reason) for p in fast.problems] == [(78, "invalid JSON")]


def test_small_files_keep_their_text_in_memory(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in _long_spans(50, random.Random(7))) + b"\n")
    stats = _otlp_fast.FastStats()
    _otlp_fast.read_bytes_fast(str(path), None, stats=stats)
    assert stats.bytes_spilled == 0 and stats.rows_columnar == 50


def test_text_keys_are_matched_on_their_views_inline_or_not():
    keys = pa.array(["input.value", "output.value", "gen_ai.input.messages", "gen_ai.input.messagez", "x", None,
                     "gen_ai.prompt", "input.valuE"], pa.string_view())
    values = pa.array(["a" * 20] * 7 + ["short"], pa.string_view())
    rows = _spill._text_rows(_spill._views(values), keys, ["input.value", "gen_ai.input.messages", "gen_ai.prompt"])
    assert rows.tolist() == [True, False, True, False, False, False, True, False]
    inline_value = pa.array(["input.value"], pa.string_view())
    assert _spill._text_rows(_spill._views(pa.array(["tiny"], pa.string_view())), inline_value,
                             ["input.value"]).tolist() == [False]  # inline values stay in their view


def test_dropping_mapped_pages_keeps_the_text(small_spill):
    values = _texts(random.Random(13), 400)
    spill = _new()
    moved = spill.move([_views(values)], [_keys(values)])[0]
    assert moved.to_pylist() == values  # pages the text in
    assert len(_spill._MAPPED) >= 1
    _spill.drop_mapped_pages()
    assert moved.to_pylist() == values  # and reads it again from the file


def test_a_strict_load_that_stops_early_closes_its_spill_files(tmp_path, monkeypatch, small_spill):
    from workbench.load import LoadError

    monkeypatch.setattr(_otlp_fast, "SPILL_FROM_BYTES", 0)
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(_block_cuts, "MIN_BLOCK_BYTES", 64 << 10)
    lines = [orjson.dumps(s) for s in _long_spans(400, random.Random(14))]
    lines[300] = lines[300][:40]
    path = tmp_path / "strict.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert _otlp_fast.read_bytes_fast(str(path), None).problems  # first use opens what libraries keep open
    open_files = len(os.listdir("/proc/self/fd"))
    with pytest.raises(LoadError, match=r"strict\.jsonl:301"):
        _otlp_fast.read_bytes_fast(str(path), None, strict=True)
    assert len(os.listdir("/proc/self/fd")) == open_files


MOUNTS = "\n".join([
    "/dev/vda / ext4 rw,relatime 0 0",
    "tmpfs /tmp tmpfs rw,nosuid 0 0",
    "/dev/vdb /data/my\\040disk xfs rw 0 0",
    "tmpfs /data/my\\040disk/ram tmpfs rw 0 0",
    "/dev/vdc /mnt ext4 rw 0 0",
    "tmpfs /mnt tmpfs rw 0 0",  # mounted over the disk: this one is seen
])


def test_the_file_system_of_a_path_is_its_deepest_mount():
    assert _spill.file_system_type("/home/me/x", MOUNTS) == "ext4"
    assert _spill.file_system_type("/tmp", MOUNTS) == "tmpfs"
    assert _spill.file_system_type("/tmpfoo/x", MOUNTS) == "ext4"  # a prefix of the name is not a mount
    assert _spill.file_system_type("/data/my disk/a", MOUNTS) == "xfs"  # octal escapes read
    assert _spill.file_system_type("/data/my disk/ram/a", MOUNTS) == "tmpfs"
    assert _spill.file_system_type("/mnt/a", MOUNTS) == "tmpfs"
    assert _spill.file_system_type("/x", "") is None


def test_the_spill_goes_to_a_disk_not_to_a_temporary_directory_in_memory(tmp_path, monkeypatch):
    in_memory, on_disk = tmp_path / "tmp", tmp_path / "cache"
    in_memory.mkdir()
    on_disk.mkdir()
    monkeypatch.setattr(_spill.tempfile, "gettempdir", lambda: str(in_memory))
    mounts = f"/dev/vda / ext4 rw 0 0\ntmpfs {in_memory} tmpfs rw 0 0\ntmpfs /var/tmp tmpfs rw 0 0"
    assert _spill.spill_directory([str(on_disk)], environ={}, mounts=mounts) == str(on_disk)
    assert _spill.spill_directory([str(tmp_path / "missing")], environ={}, mounts=mounts) is None
    assert _spill.spill_directory([], environ={}, mounts="/dev/vda / ext4 rw 0 0") == str(in_memory)
    chosen = {"WORKBENCH_SPILL_DIR": str(tmp_path)}
    assert _spill.spill_directory([str(on_disk)], environ=chosen, mounts=mounts) == str(tmp_path)


def test_a_load_spills_where_it_is_told_and_keeps_the_text_when_there_is_no_disk(tmp_path, monkeypatch,
                                                                                  small_spill):
    monkeypatch.setattr(_otlp_fast, "SPILL_FROM_BYTES", 0)
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in _long_spans(50, random.Random(8))) + b"\n")
    opened = []
    real_open = _spill._SpillFile.open.__func__
    monkeypatch.setattr(_spill._SpillFile, "open",
                        classmethod(lambda cls, directory: opened.append(directory) or real_open(cls, directory)))
    monkeypatch.setenv("WORKBENCH_SPILL_DIR", str(tmp_path))
    stats = _otlp_fast.FastStats()
    told = _otlp_fast.read_bytes_fast(str(path), None, stats=stats)
    assert stats.bytes_spilled > 0 and set(opened) == {str(tmp_path)}
    monkeypatch.setattr(_otlp_fast, "spill_directory", lambda extra: None)
    stats = _otlp_fast.FastStats()
    kept = _otlp_fast.read_bytes_fast(str(path), None, stats=stats)
    assert stats.bytes_spilled == 0 and kept.spans.equals(told.spans)


def test_text_key_patterns_match_any_message_index():
    keys = pa.array(["llm.input_messages.0.message.content", "llm.input_messages.12.message.content",
                     "llm.input_messages.0.message.role", "llm.output_messages.3.message.content",
                     "llm.input_messages.content", "input.value", None], pa.string_view())
    values = pa.array(["x" * 20] * 7, pa.string_view())
    rows = _spill._text_rows(_spill._views(values), keys, ["llm.input_messages.*.message.content", "input.value"])
    assert rows.tolist() == [True, True, False, False, False, True, False]


def test_move_all_sends_every_long_value_to_the_file(small_spill):
    values = _texts(random.Random(21), 300)
    spill = _new()
    moved = spill.move_all(_views(values))
    long_bytes = sum(len(v.encode()) for v in values if v is not None and len(v.encode()) > 12)
    assert moved.to_pylist() == values and spill.bytes_written == long_bytes


def test_flattened_messages_spill_and_read_as_the_reference(tmp_path, monkeypatch, small_spill):
    from tests.load.test_otlp_fast import _rows

    monkeypatch.setattr(_otlp_fast, "SPILL_FROM_BYTES", 0)
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(_block_cuts, "MIN_BLOCK_BYTES", 64 << 10)
    path = tmp_path / "messages.jsonl"
    spans = _long_spans(400, random.Random(9), messages=True)
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in spans) + b"\n")
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert stats.rows_columnar == 400
    text = sum(len(kv["value"]["stringValue"].encode()) for s in spans for kv in s["attributes"]
               if kv["key"].endswith(("input.value", "output.value", "message.content")))
    assert stats.bytes_spilled > text  # the values, and the messages JSON built from them
    assert _rows(fast.spans) == _rows(slow.spans)  # attributes compared as objects: key order is per block
