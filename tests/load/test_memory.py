"""glibc malloc settings applied before big loads, and the buffers a load reuses."""

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


@pytest.mark.parametrize("size", [10, 3 << 20])
def test_a_reused_buffer_is_zeroed_writable_and_searchable(size):
    buffer = _memory.reused_buffer(size)
    assert len(buffer) == size and bytes(buffer[:10]) == bytes(10) and buffer[-1] == 0
    view = memoryview(buffer)
    view[2:5] = b"a\nb"
    assert buffer.find(b"\n", 0, size) == 3 and buffer.rfind(b"\n", 0, size) == 3 and buffer.rfind(b"\n", 0, 3) == -1


def test_a_big_reused_buffer_asks_for_huge_pages_where_linux_has_them():
    import mmap

    buffer = _memory.reused_buffer(4 << 20)
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        assert isinstance(buffer, bytearray)
        return
    assert isinstance(buffer, mmap.mmap)  # private and anonymous: a shared one would be shmem, never huge


def test_huge_pages_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(_memory.NO_HUGE_PAGES_VARIABLE, "1")
    assert isinstance(_memory.reused_buffer(4 << 20), bytearray)
