"""Benchmark the cluster stage: speed (JIT-warm and fresh process), JIT options, quality.

Texts are planted topics (``tests/cluster/planted.py``: 20 topics, ~690 characters per
text), so every run also reports the adjusted Rand index against the planted topics.

Sections (all by default; ``--only`` picks some):

``warm``     in one process after a warm-up: ``cluster_traces`` end to end (embed, k-NN,
             UMAP 5-D, 2-D map, HDBSCAN, keywords, stability, then ``summary()`` and the map
             figure) at each size, with each step's time; also a full fit (no sampling)
``fresh``    a new Python process per run: the first clustering in a fresh kernel, timed
             from ``import workbench.cluster`` (numba's disk cache as it is)
``assign``   fit on 20k traces, then assign 100k new traces (first call and warm)
``jit``      fresh processes at 5k comparing the options of ``workbench/cluster/warmup.py``

Usage::

    python benchmarks/cluster.py                       # everything (slow on 2 cores)
    python benchmarks/cluster.py --only warm --sizes 5000 20000 --runs 3
    python benchmarks/cluster.py --only jit --out /tmp/jit.json

The machine is shared: compare ratios within one run rather than absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(tempfile.gettempdir()) / "workbench-bench"
TOPICS = 20


def planted(n: int, seed: int = 1):
    """Planted texts, cached as Parquet so that child processes load them in well under a second."""
    import polars as pl

    from tests.cluster.planted import planted_texts

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"planted-{n}-{seed}.parquet"
    if path.exists():
        return pl.read_parquet(path)
    frame = planted_texts(n, n_topics=TOPICS, topic_words=10, shared_words=100, seed=seed)
    frame.write_parquet(path)
    return frame


def ari(frame, clusters) -> float:
    from sklearn.metrics import adjusted_rand_score

    joined = clusters.assignments.join(frame.select("trace_id", "topic"), on="trace_id")
    return float(adjusted_rand_score(joined["topic"].to_list(), joined["cluster"].to_list()))


def end_to_end(frame, *, fit_size, seed: int = 0) -> dict:
    """One clustering with summary and map; seconds per step, total, quality."""
    from workbench.cluster import cluster_traces

    start = time.perf_counter()
    clusters = cluster_traces(frame, text="input", seed=seed, fit_size=fit_size, progress=False)
    fitted = time.perf_counter()
    clusters.summary()
    clusters.map().figure()
    done = time.perf_counter()
    noise = float((clusters.assignments["cluster"] < 0).mean())
    return {"total": done - start, "cluster_traces": fitted - start, "summary+map": done - fitted,
            "steps": clusters.timings, "ari": ari(frame, clusters), "clusters": clusters.n_clusters, "noise": noise}


def run_warm(sizes: list[int], runs: int, full_fit_max: int) -> dict:
    from workbench.cluster import warm_up

    warm_up(background=False).wait()
    out: dict = {}
    for n in sizes:
        frame = planted(n)
        variants = [("default", 20_000)] + ([("full fit", None)] if n <= full_fit_max and n > 20_000 else [])
        for name, fit_size in variants:
            results = [end_to_end(frame, fit_size=fit_size) for _ in range(runs if name == "default" else 1)]
            key = f"{n}/{name}"
            out[key] = {
                "total_median": statistics.median(r["total"] for r in results),
                "totals": [r["total"] for r in results],
                "steps_median": {s: statistics.median(r["steps"].get(s, 0.0) for r in results)
                                 for s in results[0]["steps"]},
                "summary+map": statistics.median(r["summary+map"] for r in results),
                "ari": results[0]["ari"], "clusters": results[0]["clusters"], "noise": results[0]["noise"],
            }
            print(f"warm {key}: {out[key]['total_median']:.1f} s, ARI {out[key]['ari']:.3f}, "
                  f"{out[key]['clusters']} clusters, steps "
                  + ", ".join(f"{k} {v:.2f}" for k, v in out[key]["steps_median"].items()), flush=True)
    return out


# --- fresh-process runs ---------------------------------------------------------------------------

def child(args: argparse.Namespace) -> None:
    """Runs in a fresh interpreter; prints one JSON line."""
    spec = json.loads(args.child)
    frame = planted(spec["n"])  # loaded before the clock starts (a notebook has its data)
    result: dict = {"option": spec["option"], "n": spec["n"]}
    start = time.perf_counter()
    option = spec["option"]
    if option in ("pipeline", "pipeline+warm_up"):
        import workbench.cluster as wc

        result["import"] = time.perf_counter() - start
        if option == "pipeline+warm_up":
            wc.warm_up()
            time.sleep(spec.get("idle", 10))  # the user reading / loading data meanwhile
            start = time.perf_counter()
        clusters = wc.cluster_traces(frame, text="input", seed=0, progress=False)
        clusters.summary()
        clusters.map().figure()
        result["steps"] = clusters.timings
        result["ari"] = ari(frame, clusters)
    elif option == "pca-reducer":
        import workbench.cluster as wc
        from workbench.cluster.reduce import PcaReducer

        clusters = wc.cluster_traces(frame, text="input", seed=0, progress=False,
                                     reducer=PcaReducer(n_components=64))
        clusters.summary()
        result["ari"] = ari(frame, clusters)
    else:  # UMAP 5-D alone, by k-NN / caching / init option
        import numpy as np

        from workbench.cluster.embed import TfidfSvdEmbedder

        vectors = TfidfSvdEmbedder(seed=0).fit_transform(frame["input"].to_list())
        t_import = time.perf_counter()
        if option == "umap-default":
            import umap

            result["import umap"] = time.perf_counter() - t_import
            t = time.perf_counter()
            umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, random_state=0, n_jobs=1).fit_transform(vectors)
        else:
            if option == "sklearn-knn-unpatched":
                import umap
                from sklearn.neighbors import NearestNeighbors

                result["import umap"] = time.perf_counter() - t_import
                t = time.perf_counter()
                dists, idx = NearestNeighbors(n_neighbors=15, algorithm="brute").fit(vectors).kneighbors(vectors)
                umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, random_state=0, n_jobs=1,
                          precomputed_knn=(idx.astype(np.int32), dists.astype(np.float32))).fit_transform(vectors)
            else:
                from workbench.cluster.reduce import NeighborIndex, UmapReducer
                from workbench.cluster.warmup import load_umap

                load_umap()
                result["import umap"] = time.perf_counter() - t_import
                t = time.perf_counter()
                init = "pca" if option == "sklearn-knn+cache+pca-init" else "spectral"
                UmapReducer(seed=0, init=init).fit_transform(vectors, neighbors=NeighborIndex(vectors))
        result["first UMAP 5-D"] = time.perf_counter() - t
    result["total"] = time.perf_counter() - start
    print("RESULT " + json.dumps(result), flush=True)


def spawn(option: str, n: int, *, empty_cache: bool = False, idle: float = 10) -> dict:
    env = dict(os.environ)
    if empty_cache:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-empty-")
    spec = json.dumps({"option": option, "n": n, "idle": idle})
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=1800)
    wall = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"child {option} {n} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process wall"] = wall
    result["empty numba cache"] = empty_cache
    return result


def run_fresh(sizes: list[int], runs: int) -> list[dict]:
    out = []
    for n in sizes:
        planted(n)
        for option in ("pipeline", "pipeline+warm_up"):
            for _ in range(runs):
                result = spawn(option, n)
                out.append(result)
                print(f"fresh {option} {n}: first clustering {result['total']:.1f} s "
                      f"(import {result.get('import', 0):.1f} s), ARI {result['ari']:.3f}", flush=True)
    return out


def run_jit(n: int, runs: int) -> list[dict]:
    planted(n)
    out = []
    options = ["umap-default", "sklearn-knn-unpatched", "sklearn-knn+cache", "sklearn-knn+cache+pca-init",
               "pca-reducer", "pipeline"]
    for _ in range(runs):
        for option in options:
            result = spawn(option, n)
            out.append(result)
            print(f"jit {option}: total {result['total']:.1f} s, first UMAP "
                  f"{result.get('first UMAP 5-D', float('nan')):.1f} s", flush=True)
    for option in ("sklearn-knn+cache", "umap-default"):  # first ever: an empty numba cache
        result = spawn(option, n, empty_cache=True)
        out.append(result)
        print(f"jit {option} (empty numba cache): import umap {result['import umap']:.1f} s, "
              f"first UMAP {result['first UMAP 5-D']:.1f} s", flush=True)
    return out


def run_assign(fit_n: int, new_n: int, runs: int) -> dict:
    from workbench.cluster import cluster_traces, warm_up

    warm_up(background=False).wait()
    base = planted(fit_n, seed=1)
    new = planted(new_n, seed=2)
    clusters = cluster_traces(base, text="input", seed=0, fit_size=None, progress=False)
    times, steps = [], []
    for _ in range(runs + 1):
        start = time.perf_counter()
        assigned = clusters.assign(new, progress=False)
        times.append(time.perf_counter() - start)
        steps.append(assigned.timings)
    warm = times[1:]
    result = {"first": times[0], "warm_median": statistics.median(warm), "warm": warm,
              "steps_warm": {k: statistics.median(s[k] for s in steps[1:]) for k in steps[1]},
              "ari_assigned": ari(new, assigned), "ari_fit": ari(base, clusters),
              "noise_assigned": float((assigned.assignments["cluster"] < 0).mean())}
    print(f"assign {new_n:,} to a {fit_n:,} fit: first {times[0]:.1f} s, warm {result['warm_median']:.1f} s; "
          + ", ".join(f"{k} {v:.2f}" for k, v in result["steps_warm"].items())
          + f"; ARI assigned {result['ari_assigned']:.3f} (fit {result['ari_fit']:.3f})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=["warm", "fresh", "assign", "jit"])
    parser.add_argument("--sizes", nargs="*", type=int, default=[5_000, 20_000, 50_000, 100_000])
    parser.add_argument("--fresh-sizes", nargs="*", type=int, default=[5_000, 20_000])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--full-fit-max", type=int, default=50_000, help="largest N also fitted without sampling")
    parser.add_argument("--assign", nargs=2, type=int, default=[20_000, 100_000], metavar=("FIT", "NEW"))
    parser.add_argument("--out", type=Path, help="write every result as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sections = args.only or ["jit", "fresh", "warm", "assign"]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict = {"load_average_start": os.getloadavg()}
    if "jit" in sections:
        results["jit"] = run_jit(5_000, args.runs)
    if "fresh" in sections:
        results["fresh"] = run_fresh(args.fresh_sizes, args.runs)
    if "warm" in sections:
        results["warm"] = run_warm(args.sizes, args.runs, args.full_fit_max)
    if "assign" in sections:
        results["assign"] = run_assign(args.assign[0], args.assign[1], args.runs)
    results["load_average_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
