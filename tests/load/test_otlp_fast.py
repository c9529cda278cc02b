"""The columnar OTLP path gives exactly the rows of the line-by-line reference reader."""

from __future__ import annotations

import random

import orjson
import pytest

from workbench.load import _block_cuts, _blocks, _otlp_fast, _otlp_native, otlp, read_traces
from workbench.load._records import read_bytes


@pytest.fixture(autouse=True, params=["C scanner", "pyarrow", "no C extension"])
def parser(request, monkeypatch):
    """Every test here runs with both block parsers (the C scanner where it is built, and pyarrow alone), and
    as an install without a C compiler runs: no scanner, and none of the extension's helpers either."""
    if request.param == "C scanner" and not _otlp_native.AVAILABLE:
        pytest.skip("the C scanner is not built here")
    monkeypatch.setattr(_otlp_native, "ENABLED", request.param == "C scanner")
    if request.param == "no C extension":
        monkeypatch.setattr(_otlp_native, "AVAILABLE", False)
    return request.param


def _value(rng: random.Random, key: str):
    choice = rng.random()
    if key.startswith("llm.token_count") or key.startswith("gen_ai.usage"):
        return {"intValue": str(rng.randint(0, 5000))} if choice < 0.8 else {"stringValue": str(rng.randint(0, 9))}
    if key == "metadata":
        return {"stringValue": rng.choice([
            '{"prompt_version": "v3", "app_version": 12}', '{"app_version": 1.5}', '{"prompt_version": true}',
            '{"other": "x"}', "not json", '{"prompt_version": {"nested": 1}}', '{"prompt_version": null}'])}
    if key == "llm.cost.total":
        return {"doubleValue": round(rng.random(), 6)} if choice < 0.5 else {"intValue": "2"}
    if choice < 0.6:
        text = "".join(rng.choice(['a', 'é', '"', '\\', '\n', '\t', '\x01', '東', ' ', '{', '}', ':', 'z']) for _ in
                       range(rng.randint(0, 30)))
        return {"stringValue": text}
    if choice < 0.75:
        return {"intValue": str(rng.randint(-10**12, 10**12))}
    if choice < 0.9:
        return {"doubleValue": rng.choice([0.5, -1e-7, 3.0, 1e21, 123456.789])}
    return {"boolValue": rng.random() < 0.5}


KEYS = ["openinference.span.kind", "gen_ai.operation.name", "input.value", "output.value", "llm.model_name",
        "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name", "gen_ai.system", "session.id",
        "gen_ai.conversation.id", "user.id", "llm.token_count.prompt", "llm.token_count.completion",
        "gen_ai.usage.input_tokens", "llm.token_count.total", "llm.cost.total", "llm.prompt_template.version",
        "metadata", "exception.type", "exception.message", "error.type", "service.version", "custom.key",
        "another.one", "gen_ai.prompt.name",
        # OpenInference's flattened messages: simple ones are columnar, the rest go to the reference reader
        "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
        "llm.input_messages.1.message.role", "llm.input_messages.1.message.content",
        "llm.input_messages.10.message.content", "llm.output_messages.0.message.role",
        "llm.output_messages.0.message.content", "llm.input_messages.2.message.tool_call_id"]
RARE_KEYS = ["llm.output_messages.0.message.tool_calls.0.tool_call.id", "llm.input_messages.01.message.role"]
STRING_ONLY = {"openinference.span.kind", "gen_ai.operation.name", "input.value", "output.value", "llm.model_name",
               "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name", "gen_ai.system",
               "session.id", "gen_ai.conversation.id", "user.id", "llm.prompt_template.version", "exception.type",
               "exception.message", "error.type", "service.version", "gen_ai.prompt.name",
               "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
               "llm.input_messages.1.message.role", "llm.output_messages.0.message.role",
               "llm.output_messages.0.message.content", "llm.input_messages.2.message.tool_call_id"}


def _span(rng: random.Random, i: int) -> dict:
    attrs = []
    keys = rng.sample(KEYS, rng.randint(0, 12)) + ([rng.choice(RARE_KEYS)] if rng.random() < 0.03 else [])
    for key in keys:
        if key == "openinference.span.kind":
            value = {"stringValue": rng.choice(["LLM", "tool", "CHAIN", "UNKNOWN", "DECISION"])}
        elif key == "gen_ai.operation.name":
            value = {"stringValue": rng.choice(["chat", "execute_tool", "plan", "made_up"])}
        elif key in STRING_ONLY:
            value = {"stringValue": f"{key}-{rng.randint(0, 3)}"}
        else:
            value = _value(rng, key)
        attrs.append({"key": key, "value": value})
    span = {
        "traceId": f"{rng.getrandbits(128):032X}" if rng.random() < 0.2 else f"{i // 5:032x}",
        "spanId": f"{i + 1:016x}", "parentSpanId": rng.choice(["", f"{i:016x}"]),
        "name": rng.choice(["chat gpt", "execute_tool lookup", "Retriever", "HTTP GET", "agent loop"]),
        "kind": rng.randint(0, 5), "startTimeUnixNano": str(1_767_261_600_000_000_000 + i * 1000),
        "endTimeUnixNano": str(1_767_261_600_000_000_000 + i * 1000 + rng.randint(-5, 10**9)),
        "attributes": attrs,
        "status": rng.choice([{}, {"code": 1}, {"code": 2, "message": "boom"}, {"code": 1, "message": "fine"},
                              {"code": 0}]),
    }
    if rng.random() < 0.1:
        span["traceState"] = "vendor=1"
        span["flags"] = 257
        span["droppedAttributesCount"] = 2
    return span


def _write(tmp_path, shape: str, n: int = 400):
    rng = random.Random(11)
    spans = [_span(rng, i) for i in range(n)]
    path = tmp_path / f"{shape}.jsonl"
    if shape == "span":
        lines = [orjson.dumps(s) for s in spans]
    else:
        lines = []
        for start in range(0, n, 7):
            resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}},
                                       {"key": "service.version", "value": {"stringValue": f"1.{start % 3}"}}]}
            first = {"scope": {"name": "inst", "version": "0.1"}, "spans": spans[start:start + 4]}
            rest = spans[start + 4:start + 7]
            if start % 3:
                request = [{"resource": resource, "scopeSpans": [first, {"scope": {"name": "other"}, "spans": rest}]}]
            else:  # a second resource without attributes, its scope without a name
                request = [{"resource": resource, "scopeSpans": [first]},
                           {"resource": {}, "scopeSpans": [{"scope": {}, "spans": rest}]}]
            lines.append(orjson.dumps({"resourceSpans": request}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _rows(frame):
    rows = frame.to_dicts()
    for row in rows:
        row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else None
        # polars may divide by multiplying with the reciprocal: equal to the last bit or one ulp off
        row["duration_ms"] = None if row["duration_ms"] is None else round(row["duration_ms"], 6)
    return rows


@pytest.mark.parametrize("shape", ["span", "request"])
def test_columnar_rows_equal_reference_rows(tmp_path, shape):
    path = _write(tmp_path, shape)
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert stats.rows_columnar > 150  # most rows really took the columnar path
    assert fast.spans.height == slow.spans.height == 400
    fast_rows, slow_rows = _rows(fast.spans), _rows(slow.spans)
    for got, want in zip(fast_rows, slow_rows, strict=True):
        assert got == want
    assert [(p.line, p.reason, p.field) for p in fast.problems] == [(p.line, p.reason, p.field) for p in slow.problems]


def test_bad_lines_cost_only_their_part(tmp_path, monkeypatch):
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(_otlp_fast, "MIN_SPLIT_BYTES", 8 << 10)
    path = _write(tmp_path, "span", n=2000)
    lines = path.read_bytes().split(b"\n")
    lines[1500] = lines[1500][:30]
    path.write_bytes(b"\n".join(lines))
    stats = _otlp_fast.FastStats()
    result = _otlp_fast.read_bytes_fast(str(path), None, stats=stats)
    assert result.spans.height == 1999
    assert [(p.line, p.reason) for p in result.problems] == [(1501, "invalid JSON")]
    assert result.spans["source_line"].to_list() == [i for i in range(1, 2001) if i != 1501]
    assert stats.lines_line_by_line < 400 and stats.blocks_failed >= 1


def _odd_spans(n: int) -> list[dict]:
    """Spans the mapping must handle exactly: many distinct keys, signed ints, no mapped keys, control chars."""
    spans = []
    for i in range(n):
        attrs = [{"key": f"custom.key.{i % 70}", "value": {"stringValue": f"v{i}\x01\x1f\"\\"}},
                 {"key": "llm.token_count.prompt", "value": {"intValue": ["+12", "007", "-3", "12"][i % 4]}},
                 {"key": "plain", "value": {"intValue": "+0042"}}]
        if i % 5 == 0:
            attrs = []  # no attribute at all, so no mapped column in some rows
        spans.append({"traceId": f"{i // 3:032x}", "spanId": f"{i + 1:016x}", "name": "HTTP GET",
                      "startTimeUnixNano": "1767261600000000000", "endTimeUnixNano": "1767261600000001000",
                      "attributes": attrs,
                      "status": {"code": 2, "message": "tab\tquote\"" + ("\x02" if i % 7 == 0 else "")}})
    return spans


def test_many_keys_signed_ints_and_control_characters(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in _odd_spans(300)) + b"\n")
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    # more distinct keys than MAX_KEY_COLUMNS: the per-row join path; control characters are escaped
    # in polars as orjson escapes them, so every row stays columnar
    assert stats.rows_columnar == 300
    assert _rows(fast.spans) == _rows(slow.spans)
    assert fast.spans["tokens_in"].to_list()[1:4] == [7, -3, 12]


def test_no_mapped_attributes_anywhere(tmp_path):
    path = tmp_path / "bare.jsonl"
    spans = [{**s, "attributes": []} for s in _odd_spans(20)]
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in spans) + b"\n")
    fast = _otlp_fast.read_bytes_fast(str(path), None).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert fast.spans.height == 20 and _rows(fast.spans) == _rows(slow.spans)


@pytest.mark.parametrize("mapped", [True, False], ids=["mapped", "ring"])
@pytest.mark.parametrize("shape", ["span", "request"])
def test_small_blocks_keep_line_numbers_mapped_or_through_the_ring(tmp_path, monkeypatch, shape, mapped):
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 16 << 10)  # ~30 blocks: pages let go, or ring buffers reused
    if not mapped:
        monkeypatch.setenv(_blocks.NO_MMAP_VARIABLE, "1")
    path = _write(tmp_path, shape)
    fast = _otlp_fast.read_bytes_fast(str(path), None).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert _rows(fast.spans) == _rows(slow.spans)


def test_pieces_around_bad_lines_are_mapped_together_and_strict_stops_at_the_first(tmp_path, monkeypatch, parser):
    from workbench.load._base import LoadError

    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(_otlp_fast, "MIN_SPLIT_BYTES", 4 << 10)
    path = _write(tmp_path, "span", n=600)
    lines = path.read_bytes().split(b"\n")
    odd = orjson.loads(lines[40])
    odd["status"] = {"code": 7}  # a complex row: the reference reader reports an unknown status code
    lines[40] = orjson.dumps(odd)
    lines[45] = lines[45][:25]  # a bad line in the same block, after it
    path.write_bytes(b"\n".join(lines))
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert _rows(fast.spans) == _rows(slow.spans)
    assert [(p.line, p.reason) for p in fast.problems] == [(p.line, p.reason) for p in slow.problems]
    assert [p.line for p in fast.problems] == [41, 46]
    # the C scanner names the bad line, so the block is cut once, around it; pyarrow's failures are cut in eighths
    assert stats.blocks_failed == 1 if parser == "C scanner" else stats.blocks_failed >= 2
    assert stats.lines_line_by_line < 100
    with pytest.raises(LoadError, match=":41"):
        _otlp_fast.read_bytes_fast(str(path), None, strict=True)


@pytest.mark.parametrize("first", [b"\xef\xbb\xbf", b'{"traceId": "cut', b"not json at all", b"[1, 2]",
                                   b"null"])  # pyarrow 26 crashes on a bare null: it must never see one
def test_bom_or_bad_first_line_keeps_the_columnar_path(tmp_path, monkeypatch, first):
    monkeypatch.setattr(_otlp_fast, "MIN_SPLIT_BYTES", 4 << 10)
    path = _write(tmp_path, "span", n=300)
    lines = path.read_bytes().split(b"\n")
    lines[0] = first + lines[0] if first == b"\xef\xbb\xbf" else first
    path.write_bytes(b"\n".join(lines))
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert stats.rows_columnar > 150  # not the whole file line by line
    assert _rows(fast.spans) == _rows(slow.spans)
    assert [(p.line, p.byte_offset, p.reason) for p in fast.problems] == [(p.line, p.byte_offset, p.reason) for p in slow.problems]


def test_a_pretty_printed_document_still_goes_to_the_reference_reader(tmp_path):
    spans = [_span(random.Random(3), i) for i in range(5)]
    document = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "x"}, "spans": spans}]}]}
    path = tmp_path / "doc.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats)
    assert stats.rows_columnar == 0 and fast.spans.height == 5 and not fast.problems


def test_scope_attributes_are_kept(tmp_path):
    spans = [_span(random.Random(5), i) for i in range(6)]
    scope = {"name": "inst", "version": "1.0", "attributes": [{"key": "lib.flag", "value": {"boolValue": True}}]}
    requests = [{"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": scope, "spans": spans[:3]}]}]},
                {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "plain"}, "spans": spans[3:]}]}]}]
    path = tmp_path / "scoped.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in requests) + b"\n")
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert _rows(fast.spans) == _rows(slow.spans)
    scopes = [orjson.loads(a)["otel.scope"] for a in fast.spans["attributes"]]
    assert scopes[0] == {"name": "inst", "version": "1.0", "attributes": {"lib.flag": True}}
    assert scopes[5] == {"name": "plain"}
    assert stats.rows_columnar == 3  # the plain scope's spans stay columnar


def test_upper_case_ids_are_lowercased_and_lower_case_ones_kept(tmp_path):
    spans = _odd_spans(12)
    for span in spans[:4]:  # one block holds both kinds
        span["traceId"], span["spanId"] = span["traceId"].upper().replace("0", "A"), span["spanId"].upper()
        span["parentSpanId"] = "00F1"
    path = tmp_path / "ids.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in spans) + b"\n")
    fast = _otlp_fast.read_bytes_fast(str(path), None).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert _rows(fast.spans) == _rows(slow.spans)
    assert fast.spans["trace_id"][0] == "a" * 32 and fast.spans["parent_span_id"][:5].to_list() == ["00f1"] * 4 + [None]


def test_an_id_beyond_ascii_is_lowered_as_str_lower_does(tmp_path):
    spans = _odd_spans(12)
    spans[5]["spanId"] = "ǅÄ00"  # no ASCII capital anywhere in the block
    path = tmp_path / "ids.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in spans) + b"\n")
    fast = _otlp_fast.read_bytes_fast(str(path), None).conformed()
    assert fast.spans["span_id"][5] == "ǅÄ00".lower() == "ǆä00"
    assert _rows(fast.spans) == _rows(otlp.read_python(str(path), read_bytes(path)).conformed().spans)


def test_flattened_messages_are_columnar_and_equal_the_reference(tmp_path):
    def span(i, *pairs):
        return {"traceId": "a" * 32, "spanId": f"{i:016x}", "name": "chat", "kind": 3,
                "startTimeUnixNano": "1", "endTimeUnixNano": "2",
                "attributes": [{"key": k, "value": v} for k, v in pairs]}

    s = {"stringValue": "hi \"there\"\n"}
    inp, out = "llm.input_messages.", "llm.output_messages."
    call = out + "0.message.tool_calls."
    simple = [
        span(1, ("input.value", s), (inp + "0.message.role", {"stringValue": "user"}), (inp + "0.message.content", s),
             ("output.value", s), (out + "0.message.content", s), (out + "0.message.role", {"stringValue": "a"})),
        span(2, (inp + "10.message.content", s), (inp + "2.message.role", {"stringValue": "tool"}),
             (inp + "2.message.tool_call_id", {"intValue": "7"}), (inp + "1.message.flag", {"boolValue": True})),
        span(3, (out + "0.message.content", {"stringValue": "東京 🎉"})),
        span(4, (call + "1.tool_call.function.name", s), (out + "0.message.role", {"stringValue": "assistant"}),
             (call + "0.tool_call.id", s), (call + "1.tool_call.id", {"stringValue": "b"}),
             (call + "0.tool_call.function.arguments", {"stringValue": '{"x": 1}'}),
             (call + "0.tool_call.function.name", {"stringValue": "lookup"})),
    ]
    odd = [
        span(5, (inp + "0.message.role", s), (inp + "0.message.role", {"stringValue": "again"})),  # repeated key
        span(6, (inp + "01.message.role", s)),  # a leading zero
        span(7, (inp + "0.message.score", {"doubleValue": 1})),  # a double (the reference keeps JSON's 1)
        span(8, (inp + "0.message", s)),  # no field
        span(9, (out + "0.message.contents.0.message_content.text", s)),  # multimodal: deeper
        span(10, (out + "0.message.tool_calls", s), (call + "0.tool_call.id", s)),  # a value and a structure
        span(11, (call + "0.tool_call.function", s), (call + "0.tool_call.function.name", s)),
    ]
    path = tmp_path / "messages.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in simple + odd))
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert _rows(fast.spans) == _rows(slow.spans)
    assert stats.rows_columnar == len(simple) and stats.lines_line_by_line == len(odd)
    first = fast.spans.row(0, named=True)
    assert orjson.loads(first["input"]) == [{"role": "user", "content": "hi \"there\"\n"}]
    assert "input.value" in orjson.loads(first["attributes"])  # kept, as the reference keeps it
    assert orjson.loads(fast.spans["input"][1]) == [
        {"flag": True}, {"role": "tool", "tool_call_id": 7}, {"content": "hi \"there\"\n"}]
    assert fast.spans["output"][3] == ('[{"tool_calls":[{"id":"hi \\"there\\"\\n","function":{"arguments":"{\\"x\\": 1}",'
                                       '"name":"lookup"}},{"function":{"name":"hi \\"there\\"\\n"},"id":"b"}],'
                                       '"role":"assistant"}]')


def _costed(tmp_path, cost_parts: bool):
    """Sixty spans in five blocks (8 KiB); the last ten carry a cost, spans 20-24 only cost parts if asked."""
    spans = _odd_spans(60)
    for i, span in enumerate(spans):
        span["attributes"] = [{"key": "input.value", "value": {"stringValue": f"question {i} " * 20}}]
        if i >= 50:
            span["attributes"].append({"key": "llm.cost.total", "value": {"doubleValue": i / 100}})
        if cost_parts and 20 <= i < 25:  # the reference reader sums the parts, so it reads these lines
            span["attributes"] += [{"key": "llm.cost.prompt", "value": {"doubleValue": 0.5}},
                                   {"key": "llm.cost.completion", "value": {"doubleValue": 0.25}}]
    path = tmp_path / "costs.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(s) for s in spans) + b"\n")
    return path


def test_a_column_no_span_of_a_block_fills_is_one_null_value_and_equals_the_reference(tmp_path, monkeypatch):
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 8 << 10)
    path = _costed(tmp_path, cost_parts=False)
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats)
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert stats.rows_columnar == 60 and _rows(fast.conformed().spans) == _rows(slow.spans)
    # absent from every block: one null literal for the whole table, not a null per row in every block
    assert fast.spans["input"].n_chunks() == 5
    assert fast.spans["error_type"].n_chunks() == 1 and fast.spans["error_type"].null_count() == 60
    # a column some blocks fill and others not: cut like the others once assembled (no rechunk on every use)
    spans = read_traces(path, format="otlp", cache=False).spans
    assert spans["cost_usd"].to_list() == [None] * 50 + [i / 100 for i in range(50, 60)]
    assert spans["cost_usd"].chunk_lengths() == spans["input"].chunk_lengths() and spans["input"].n_chunks() == 5


def test_cost_parts_in_some_blocks_only_send_their_lines_to_the_reference(tmp_path, monkeypatch):
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 8 << 10)  # the other blocks leave the cost-part check out
    path = _costed(tmp_path, cost_parts=True)
    stats = _otlp_fast.FastStats()
    fast = _otlp_fast.read_bytes_fast(str(path), None, stats=stats).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert stats.rows_columnar == 55 and stats.lines_line_by_line == 5
    assert _rows(fast.spans) == _rows(slow.spans)
    assert fast.spans["cost_usd"].to_list() == [None] * 20 + [0.75] * 5 + [None] * 25 + [i / 100 for i in range(50, 60)]
