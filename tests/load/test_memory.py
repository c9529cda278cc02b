"""glibc malloc settings applied before big loads."""

import platform

import pytest

from workbench.load import _memory


def test_settles_once_on_glibc_linux(monkeypatch):
    monkeypatch.setattr(_memory, "_settled", None)
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert _memory.settle_glibc_malloc() is True
    monkeypatch.setattr(_memory.ctypes, "CDLL", lambda name: pytest.fail("mallopt called twice"))
    assert _memory.settle_glibc_malloc() is True


def test_leaves_other_systems_alone(monkeypatch):
    monkeypatch.setattr(_memory, "_settled", None)
    monkeypatch.setattr(_memory.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(_memory.ctypes, "CDLL", lambda name: pytest.fail("no mallopt off glibc"))
    assert _memory.settle_glibc_malloc() is False


def test_a_missing_library_is_not_an_error(monkeypatch):
    monkeypatch.setattr(_memory, "_settled", None)
    monkeypatch.setattr(_memory.platform, "system", lambda: "Linux")
    monkeypatch.setattr(_memory.platform, "libc_ver", lambda: ("glibc", "2.36"))

    def missing(name):
        raise OSError(name)

    monkeypatch.setattr(_memory.ctypes, "CDLL", missing)
    assert _memory.settle_glibc_malloc() is False
