"""``import workbench`` shortens the idle spin of numpy's OpenBLAS threads, unless told otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench import _blas_threads

_VARIABLES = _blas_threads.VARIABLES


def _environment_after_import(env: dict[str, str], *, numpy_first: bool = False) -> dict[str, str | None]:
    """The OpenBLAS variables as a fresh interpreter sees them after ``import workbench`` (and its numpy)."""
    code = ("import json, os\n" + ("import numpy\n" if numpy_first else "") +
            "import workbench, numpy\n"
            f"print(json.dumps({{name: os.environ.get(name) for name in {list(_VARIABLES)!r}}}))")
    clean = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


def test_import_sets_the_short_spin_when_nothing_is_chosen():
    seen = _environment_after_import({})
    assert seen == {"OPENBLAS_THREAD_TIMEOUT": _blas_threads.SPIN_EXPONENT, "GOTO_THREAD_TIMEOUT": None}


@pytest.mark.parametrize("name", _VARIABLES)
def test_a_value_the_user_chose_is_kept(name):
    seen = _environment_after_import({name: "28"})
    assert seen[name] == "28"
    assert all(seen[other] is None for other in _VARIABLES if other != name)


def test_nothing_is_set_once_numpy_is_loaded():
    assert _environment_after_import({}, numpy_first=True) == dict.fromkeys(_VARIABLES)


def test_shorten_idle_spin_reports_what_it_did(monkeypatch):
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    assert _blas_threads.shorten_idle_spin() is True
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == _blas_threads.SPIN_EXPONENT
    assert _blas_threads.shorten_idle_spin() is False  # chosen now: left alone
