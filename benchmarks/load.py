"""Load benchmark: workbench vs the orjson parse bound vs pandas.json_normalize.

Generates OTLP NDJSON exports (OpenInference attributes, 200-2,000-char
inputs/outputs) into a temporary directory, in two shapes (one span per line;
the Collector's one request per line) plus a copy with bad lines (and, with
``--shapes messages``, a copy whose LLM spans carry OpenInference's flattened
messages, as real instrumentations write them), then runs
each method in a fresh subprocess and reports load seconds, MB/s, CPU and peak
RSS as a markdown table with ratios against the parse bound measured in the
same run. Methods run in turn within each repeat (orjson, workbench, cached,
...) and ratios are the median of the per-repeat ratios, so drift on a shared
machine cancels out; every file is read once into the page cache before each
run.

    .venv/bin/python benchmarks/load.py --sizes 100000 1000000 --repeat 3
    .venv/bin/python benchmarks/load.py --root /tmp/old-checkout   # another copy of the package

Methods
-------
orjson_parse       ``orjson.loads`` on every line, result discarded (the bound)
parse_only         the floor of workbench's own parser: its imports and the parse of the same
                   blocks on two threads (the C scanner where built, else pyarrow), nothing
                   mapped (rows: lines that parsed)
workbench          ``read_traces(..., cache=<fresh dir>)``: parse + flatten +
                   anomaly flags + trace/session rollup (the cache is written
                   on a background thread: in *wall*, *CPU* and the peak
                   RSS, not in *load s*)
workbench_cached   a second ``read_traces`` of the same file from that cache
pandas_normalize   ``json.loads`` per line, ``pd.json_normalize`` of spans and
                   of their attributes, pivot + join (100k only; OOM at 1M); run in
                   every repeat, like the others, so that the line under the table
                   (pandas / workbench, paired per repeat) compares runs made
                   within seconds of each other: this VM's speed drifts by
                   30-50% over minutes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.environ.get("WORKBENCH_BENCH_ROOT") or Path(__file__).resolve().parents[1])
WORDS = ["refund", "order", "shipping", "policy", "customer", "account", "password", "reset", "invoice", "tool", "timeout", "error", "retry", "the", "a", "to", "of", "and", "is", "was", "for", "with", "on", '"quoted"', "naïve", "café", "東京", "résumé", "agent", "search", "knowledge", "base"]
BASE_NS = 1_767_261_600_000_000_000


# -- generation ---------------------------------------------------------------------------------
def _text(rng: random.Random) -> str:
    length = int(math.exp(rng.uniform(math.log(200), math.log(2000))))
    out, size = [], 0
    while size < length:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    text = " ".join(out)[:length]
    return text.replace(" retry ", " retry\n", 1)


def _kv(key: str, value) -> dict:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _trace(rng: random.Random, t: int) -> list[dict]:
    trace_id = f"{rng.getrandbits(128):032x}"
    root_id = f"{rng.getrandbits(64):016x}"
    start = BASE_NS + t * 1_000_000_000
    spans = []
    n_steps = rng.randint(1, 8)
    session = f"sess-{t // 5}"
    for step in range(n_steps):
        for kind in ("LLM", "TOOL") if rng.random() < 0.8 else ("LLM",):
            s0 = start + (len(spans) + 1) * 10_000_000
            attrs = [_kv("openinference.span.kind", kind), _kv("input.value", _text(rng)),
                     _kv("input.mime_type", "text/plain"), _kv("output.value", _text(rng)),
                     _kv("output.mime_type", "text/plain"), _kv("session.id", session), _kv("user.id", f"u{t % 97}")]
            if kind == "LLM":
                p, c = rng.randint(50, 4000), rng.randint(5, 800)
                attrs += [_kv("llm.model_name", "gpt-4o-mini"), _kv("llm.provider", "openai"),
                          _kv("llm.invocation_parameters", '{"temperature": 0.2}'),
                          _kv("llm.token_count.prompt", p), _kv("llm.token_count.completion", c),
                          _kv("llm.token_count.total", p + c), _kv("llm.prompt_template.version", "v1" if t % 2 else "v2")]
            else:
                attrs += [_kv("tool.name", rng.choice(["search", "lookup_order", "refund"])),
                          _kv("metadata", f'{{"step": {step}}}')]
            error = rng.random() < 0.03
            spans.append({
                "traceId": trace_id, "spanId": f"{rng.getrandbits(64):016x}", "parentSpanId": root_id,
                "name": "ChatCompletion" if kind == "LLM" else "tool_call", "kind": 3 if kind == "LLM" else 1,
                "startTimeUnixNano": str(s0), "endTimeUnixNano": str(s0 + rng.randint(1, 9) * 1_000_000),
                "attributes": attrs, "status": {"code": 2, "message": "tool timeout"} if error else {"code": 1},
            })
    end = start + (len(spans) + 2) * 10_000_000
    spans.append({
        "traceId": trace_id, "spanId": root_id, "parentSpanId": "", "name": "AgentExecutor", "kind": 1,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
        "attributes": [_kv("openinference.span.kind", "CHAIN"), _kv("input.value", _text(rng)),
                       _kv("output.value", _text(rng)), _kv("session.id", session), _kv("user.id", f"u{t % 97}"),
                       _kv("metadata", '{"app_version": "1.2.0"}')],
        "status": {"code": 1},
    })
    return spans


def generate(directory: Path, n_spans: int, seed: int = 7) -> dict[str, Path]:
    """Write spans-per-line, request-per-line and bad-lines files with about ``n_spans`` spans."""
    import orjson

    rng = random.Random(seed)
    paths = {"spans": directory / f"spans_{n_spans}.ndjson", "requests": directory / f"requests_{n_spans}.ndjson",
             "bad": directory / f"spans_{n_spans}_bad.ndjson"}
    resource = {"attributes": [_kv("service.name", "bench-agent"), _kv("service.version", "1.2.0")]}
    written, t = 0, 0
    with open(paths["spans"], "wb") as per_span, open(paths["requests"], "wb") as per_request, \
            open(paths["bad"], "wb") as bad:
        line_no = 0
        while written < n_spans:
            spans = _trace(rng, t)
            t += 1
            request = {"resourceSpans": [{"resource": resource, "scopeSpans": [
                {"scope": {"name": "openinference.instrumentation.langchain", "version": "0.1.0"}, "spans": spans}]}]}
            per_request.write(orjson.dumps(request) + b"\n")
            for span in spans:
                line = orjson.dumps(span)
                per_span.write(line + b"\n")
                line_no += 1
                if line_no % 10_000 == 5_000:  # 0.01% bad lines spread over the file
                    line = line[: len(line) // 2]
                bad.write(line + b"\n")
            written += len(spans)
    return paths


# -- methods (each runs in a fresh subprocess) ----------------------------------------------------
def run_orjson_parse(path: str, _cache: str) -> int:
    import orjson

    n = 0
    with open(path, "rb") as handle:
        for line in handle:
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            n += 1
    return n


def run_parse_only(path: str, _cache: str) -> int:
    """The floor of workbench's own parser: the imports a load needs, then the parse on the loader's workers.

    Blocks as the loader cuts them, parsed with the same schema; nothing is
    mapped. ``workbench / parse_only`` is what mapping, flags and rollup add.
    """
    sys.path.insert(0, str(ROOT))
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import polars  # noqa: F401 - every load imports it
    import pyarrow as pa

    from workbench.load._blocks import iter_blocks
    from workbench.load._otlp_arrow import parse_block
    from workbench.load._otlp_fast import PARSE_WORKERS

    with open(path, "rb") as handle:
        shape = "request" if b'"resourceSpans"' in handle.readline()[:4096] else "span"
    def rows_of(future) -> int:
        table = future.result()
        return table.num_rows if isinstance(table, pa.Table) else 0

    rows, pending = 0, deque()
    with ThreadPoolExecutor(PARSE_WORKERS) as pool:
        for block in iter_blocks(path, None, in_flight=PARSE_WORKERS):
            pending.append(pool.submit(parse_block, block.data, shape))
            if len(pending) > PARSE_WORKERS:
                rows += rows_of(pending.popleft())
        return rows + sum(rows_of(future) for future in pending)


def run_workbench(path: str, cache: str) -> int:
    sys.path.insert(0, str(ROOT))
    from workbench.load import read_traces

    return read_traces(path, format="otlp", cache=cache or False).spans.height


def run_pandas_normalize(path: str, _cache: str) -> int:
    import pandas as pd

    with open(path, "rb") as handle:
        records = [json.loads(line) for line in handle]
    top = pd.json_normalize(records).drop(columns=["attributes"])
    attrs = pd.json_normalize(records, record_path="attributes", meta=["spanId"])
    attrs["v"] = attrs["value.stringValue"].fillna(attrs["value.intValue"])
    wide = attrs.pivot_table(index="spanId", columns="key", values="v", aggfunc="first")
    frame = top.join(wide, on="spanId")
    frame["start_time"] = pd.to_datetime(frame["startTimeUnixNano"].astype("int64"), unit="ns", utc=True)
    frame["end_time"] = pd.to_datetime(frame["endTimeUnixNano"].astype("int64"), unit="ns", utc=True)
    frame["duration_ms"] = (frame["end_time"] - frame["start_time"]).dt.total_seconds() * 1000
    for column in ("llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total"):
        frame[column] = pd.to_numeric(frame[column])
    frame["kind"] = frame["openinference.span.kind"].str.lower()
    frame["is_duplicate"] = frame.duplicated(["traceId", "spanId"])
    frame["is_orphan"] = ~frame["parentSpanId"].isin(set(frame["spanId"])) & (frame["parentSpanId"] != "")
    frame["ends_before_start"] = frame["end_time"] < frame["start_time"]
    return len(frame)


METHODS = {"orjson_parse": run_orjson_parse, "parse_only": run_parse_only, "workbench": run_workbench,
           "workbench_cached": run_workbench, "pandas_normalize": run_pandas_normalize}


def child(method: str, path: str, cache: str) -> None:
    started = time.perf_counter()
    rows = METHODS[method](path, cache)
    seconds = time.perf_counter() - started
    if method.startswith("workbench"):  # the peak counts the cache written in the background too
        from workbench.load import cache as wb_cache

        wb_cache.wait_for()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mib": usage.ru_maxrss / 1024,
                      "cpu": usage.ru_utime + usage.ru_stime, "sys": usage.ru_stime}))


def _warm(path: Path) -> None:
    """Read the file once so that every method starts from the page cache."""
    with open(path, "rb") as handle:
        while handle.read(64 << 20):
            pass


def measure(method: str, path: Path, cache: str = "", root: str = "") -> dict:
    _warm(path)
    env = {**os.environ, "WORKBENCH_BENCH_ROOT": root} if root else None
    started = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", method, str(path), cache],
                         capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def generate_messages(path: Path, spans: Path) -> Path:
    """``spans`` with OpenInference's flattened messages on every LLM span, as Phoenix's instrumentations write them.

    Each LLM span gets a system and a user message (its input text) and an
    assistant message (its output text), and every third one a tool call.
    """
    import orjson

    with open(spans, "rb") as source, open(path, "wb") as out:
        for i, line in enumerate(source):
            span = orjson.loads(line)
            values = {kv["key"]: kv["value"].get("stringValue") for kv in span["attributes"]}
            if values.get("openinference.span.kind") == "LLM":
                prefix, extra = "llm.input_messages", []
                for j, (role, content) in enumerate([("system", "You are a support agent."),
                                                     ("user", values["input.value"])]):
                    extra += [_kv(f"{prefix}.{j}.message.role", role), _kv(f"{prefix}.{j}.message.content", content)]
                extra += [_kv("llm.output_messages.0.message.role", "assistant"),
                          _kv("llm.output_messages.0.message.content", values["output.value"])]
                if i % 3 == 0:
                    call = "llm.output_messages.0.message.tool_calls.0.tool_call"
                    extra += [_kv(f"{call}.function.name", "lookup_order"),
                              _kv(f"{call}.function.arguments", '{"order_id": "A-1"}'), _kv(f"{call}.id", f"call_{i}")]
                span["attributes"] += extra
            out.write(orjson.dumps(span) + b"\n")
    return path


def bench(sizes: list[int], repeat: int, workdir: Path, *, root: str = "", keep: bool = False,
          shapes: tuple[str, ...] = ("spans", "requests", "bad")) -> str:
    rows, notes = [], []
    for n in sizes:
        paths = {"spans": workdir / f"spans_{n}.ndjson", "requests": workdir / f"requests_{n}.ndjson",
                 "bad": workdir / f"spans_{n}_bad.ndjson"}
        if not all(p.exists() for p in paths.values()):
            paths = generate(workdir, n)
        if "messages" in shapes:
            messages = workdir / f"spans_{n}_messages.ndjson"
            paths["messages"] = messages if messages.exists() else generate_messages(messages, paths["spans"])
        for shape in shapes:
            path = paths[shape]
            mb = path.stat().st_size / 1e6
            methods = ["orjson_parse", "workbench", "workbench_cached"]
            if shape != "bad":  # the floor of a clean parse
                methods.insert(1, "parse_only")
            if n <= 200_000 and shape == "spans":
                methods.append("pandas_normalize")
            results: dict[str, list[dict]] = {m: [] for m in methods}
            for _ in range(repeat):
                cache = tempfile.mkdtemp(prefix="wb-cache-", dir=workdir)
                for method in methods:
                    results[method].append(measure(method, path, cache if method.startswith("workbench") else "",
                                                   root))
                shutil.rmtree(cache, ignore_errors=True)
            bounds = [r.get("seconds") for r in results["orjson_parse"]]
            for method in methods:
                ok = [r for r in results[method] if "error" not in r]
                if not ok:
                    rows.append((n, shape, mb, method, None, results[method][0]["error"]))
                    continue
                pairs = [r["seconds"] / b for r, b in zip(results[method], bounds, strict=False)
                         if "error" not in r and b]
                rows.append((n, shape, mb, method, {
                    "secs": statistics.median(r["seconds"] for r in ok),
                    "wall": statistics.median(r["wall"] for r in ok),
                    "cpu": statistics.median(r["cpu"] for r in ok),
                    "sys": statistics.median(r["sys"] for r in ok),
                    "ratio": statistics.median(pairs) if pairs else float("nan"),
                    "rss": max(r["peak_mib"] for r in ok), "rows": ok[0]["rows"], "runs": len(ok)}, None))
            if "pandas_normalize" in results:
                notes.append(_paired_against_pandas(n, shape, results))
            if not keep:
                path.unlink()
    lines = ["| spans | shape | MB | method | load s (median) | x orjson (paired) | MB/s | wall s | CPU s (sys) "
             "| peak RSS MiB | RSS / file | rows | runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, shape, mb, method, r, error in rows:
        if r is None:
            lines.append(f"| {n:,} | {shape} | {mb:,.0f} | {method} | failed: {error} | | | | | | | | |")
            continue
        lines.append(f"| {n:,} | {shape} | {mb:,.0f} | {method} | {r['secs']:.2f} | {r['ratio']:.2f} | "
                     f"{mb / r['secs']:,.0f} | {r['wall']:.2f} | {r['cpu']:.1f} ({r['sys']:.1f}) | {r['rss']:,.0f} | "
                     f"{r['rss'] * 2**20 / (mb * 1e6):.2f} | {r['rows']:,} | {r['runs']} |")
    return "\n".join(lines + ["", *notes])


def _paired_against_pandas(n: int, shape: str, results: dict[str, list[dict]]) -> str:
    """How many times faster than pandas workbench loaded, repeat by repeat (each pair seconds apart)."""
    pairs = [p["seconds"] / w["seconds"] for p, w in zip(results["pandas_normalize"], results["workbench"], strict=False)
             if "error" not in p and "error" not in w]
    if not pairs:
        return f"{n:,} {shape}: no paired pandas / workbench runs"
    runs = ", ".join(f"{ratio:.1f}x" for ratio in pairs)
    return f"{n:,} {shape}: workbench is **{statistics.median(pairs):.1f}x** faster than pandas_normalize " \
           f"(median of the repeats, paired: {runs})"


def compile_bytecode(root: Path) -> None:
    """Write workbench's bytecode first, as ``pip install`` does for an installed package.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (CI machines, containers) an
    editable checkout has none, and every fresh process compiled its ~35
    modules from source: ~35 ms of a 100k-span load that no installed copy
    pays (pandas and orjson come with theirs).
    """
    import compileall

    compileall.compile_dir(str(root / "workbench"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=["spans", "requests", "bad"],
                        help="spans, requests, bad; and messages (OpenInference flattened messages, not by default)")
    parser.add_argument("--workdir", default=None, help="where to write (and keep, and reuse) the generated files")
    parser.add_argument("--root", default="", help="import workbench from this directory instead of this checkout")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "FILE", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="wb-load-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    compile_bytecode(Path(args.root) if args.root else ROOT)
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; files in {workdir}\n")
        print(bench(args.sizes, args.repeat, workdir, root=args.root, keep=bool(args.workdir),
                    shapes=tuple(args.shapes)))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
