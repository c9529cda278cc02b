"""``workbench demo`` without a browser: the notebook runs in a fresh kernel and an HTML copy is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run(notebook: Path, out: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from pathlib import Path; from workbench._demo import execute_headless; "
            f"sys.exit(execute_headless(Path({str(notebook)!r}), Path({str(out)!r}), timeout=120))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          check=False)


def test_headless_run_writes_the_executed_notebook_and_html_quietly(tmp_path):
    notebook = _notebook(tmp_path / "quick.ipynb", "print('loop closed <b>')",
                         "import plotly.graph_objects as go\ngo.FigureWidget(go.Scatter(x=[1], y=[2]))")
    run = _run(notebook, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert "loop closed &lt;b&gt;" in (tmp_path / "out" / "quick.html").read_text()
    executed = nbformat.read(tmp_path / "out" / "quick.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "loop closed <b>\n"
    assert "ran in" in run.stdout and "static" in run.stdout
    assert run.stderr == ""  # no kernel TCP warning, no exporter warning about the plotly widget


def test_a_failing_cell_is_reported_and_the_status_is_1(tmp_path):
    run = _run(_notebook(tmp_path / "bad.ipynb", "1 / 0"), tmp_path / "out")
    assert run.returncode == 1
    assert "ZeroDivisionError" in run.stderr and "FAILED" in run.stdout
