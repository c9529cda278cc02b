"""``workbench demo``: the whole loop on the bundled sample.

With a browser available it opens JupyterLab at the quickstart notebook. Where
there is none (CI, a server, ``--headless``) it executes the quickstart with
nbclient and writes an HTML copy, then says where.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

QUICKSTART = "notebooks/00_quickstart.ipynb"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the whole loop on the bundled sample")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--lab", action="store_true", help="open JupyterLab at the quickstart")
    mode.add_argument("--headless", action="store_true", help="execute the quickstart and write HTML")
    parser.add_argument("--root", default=".", help="project checkout (holds notebooks/ and data/)")
    parser.add_argument("--out", default="artifacts", help="where the headless run writes its HTML copy")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per notebook cell")
    parser.set_defaults(run=run_demo)


def has_browser() -> bool:
    """True where a person can see a browser window (desktop session, macOS, Windows)."""
    if os.environ.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_demo(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    notebook = root / QUICKSTART
    if not notebook.exists():
        print(f"workbench demo: {notebook} not found; run it from the project checkout or pass --root", file=sys.stderr)
        return 2
    if args.lab or (has_browser() and not args.headless):
        jupyter = shutil.which("jupyter") or str(Path(sys.executable).with_name("jupyter"))
        print(f"Opening JupyterLab at {QUICKSTART} (Ctrl-C to stop)")
        command = [jupyter, "lab", str(notebook)]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        return subprocess.call(command, cwd=root)
    return execute_headless(notebook, root / args.out, timeout=args.timeout)  # an absolute --out wins


def execute_headless(notebook: Path, out_dir: Path, *, timeout: int) -> int:
    """Execute ``notebook`` in a fresh kernel and write an executed ``.ipynb`` and ``.html`` copy."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    print(f"No browser here: executing {notebook.name} headlessly (the first clustering compiles numba code)")
    nb = nbformat.read(notebook, as_version=4)
    # the kernel's own log warns that loopback TCP is unencrypted: true, and noise in a demo's output
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(notebook.parent)}})
    started = time.perf_counter()
    status = 0
    try:
        client.execute()
    except CellExecutionError as exc:
        print(f"workbench demo: a cell failed:\n{exc}", file=sys.stderr)
        status = 1
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    nbformat.write(nb, executed)
    html_path = out_dir / (notebook.stem + ".html")
    with warnings.catch_warnings():  # plotly FigureWidgets have no static HTML form: said below instead
        warnings.filterwarnings("ignore", message="Your element with mimetype", category=UserWarning)
        body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    verdict = "ran" if status == 0 else "FAILED"
    print(f"Quickstart {verdict} in {seconds:.1f} s.")
    print(f"  executed notebook: {executed}")
    print(f"  HTML copy:         {html_path}")
    print("The HTML copy is static (no review widget, no cluster map). Open the notebook in JupyterLab to use them:")
    print("  .venv/bin/jupyter lab notebooks/00_quickstart.ipynb")
    return status
