"""Cutting an input in blocks of whole lines: a mapped file, bytes in memory, or a ring of buffers."""

from __future__ import annotations

import gzip
import mmap
import os
import sys
import threading

import numpy as np
import pytest

from workbench.load import _block_cuts, _blocks, _otlp_native

IN_FLIGHT = 2


def _lines(seed: int, n: int = 1000, low: int = 1000, high: int = 5000) -> bytes:
    rng = np.random.default_rng(seed)
    return b"".join(b'{"x":"' + b"y" * int(k) + b'"}\n' for k in rng.integers(low, high, n))


def _cut(source, data=None) -> list[tuple[bytes, int, int, int]]:
    """``(bytes, first_line, offset, n_lines)`` per block, each copied when it comes (before later blocks reuse
    or let go of its memory)."""
    return [(bytes(b.data), b.first_line, b.offset, b.n_lines)
            for b in _blocks.iter_blocks(str(source), data, in_flight=IN_FLIGHT)]


def _check(blocks: list[tuple[bytes, int, int, int]], data: bytes) -> None:
    assert b"".join(block for block, *_ in blocks) == data
    assert [line for _, line, _, _ in blocks] == [1, *(np.cumsum([n for *_, n in blocks[:-1]]) + 1).tolist()]
    assert [offset for _, _, offset, _ in blocks] == [0, *np.cumsum([len(b) for b, *_ in blocks[:-1]]).tolist()]
    assert all(block.endswith(b"\n") for block, *_ in blocks[:-1])


@pytest.fixture(params=["mapped", "bytes", "ring", "gzip"])
def source(request, tmp_path, monkeypatch):
    """A writer of ``data`` as the given kind of input, returning what :func:`_cut` takes."""
    def write(data: bytes):
        path = tmp_path / "spans.jsonl"
        if request.param == "bytes":
            return path, data
        if request.param == "gzip":
            path = tmp_path / "spans.jsonl.gz"
            path.write_bytes(gzip.compress(data))
            return path, None
        if request.param == "ring":
            monkeypatch.setenv(_blocks.NO_MMAP_VARIABLE, "1")
        path.write_bytes(data)
        return path, None
    return write


def test_a_file_is_cut_in_the_blocks_wanted_not_one_more(monkeypatch, source):
    """Blocks end at line ends, a part of a line short of their size: without a margin those parts add up to
    one more, nearly empty block (a whole mapping's fixed cost, alone at the end of the load)."""
    monkeypatch.setattr(_block_cuts, "MIN_BLOCK_BYTES", 64 << 10)
    data = _lines(3)
    path, in_memory = source(data)
    blocks = _cut(path, in_memory)
    if path.suffix != ".gz":  # a compressed file's blocks follow its compressed size
        assert len(blocks) == _block_cuts.BLOCKS_WANTED
    _check(blocks, data)


def test_a_line_longer_than_a_block_and_no_newline_at_the_end(monkeypatch, source):
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 16 << 10)
    data = _lines(4, n=40) + b'{"x":"' + b"z" * (50 << 10) + b'"}\n' + _lines(5, n=40) + b'{"last":1}'
    path, in_memory = source(data)
    blocks = _cut(path, in_memory)
    _check(blocks, data)
    assert any(b"z" * (50 << 10) in block for block, *_ in blocks)
    assert blocks[-1][0].endswith(b'{"last":1}') and blocks[-1][3] >= 1


def test_empty_input_has_no_blocks(source):
    path, in_memory = source(b"")
    assert _cut(path, in_memory) == []


def test_a_mapped_file_lets_go_of_the_pages_of_blocks_done_with(tmp_path, monkeypatch):
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    data = _lines(6, n=400)
    path = tmp_path / "spans.jsonl"
    path.write_bytes(data)
    let_go: list[tuple[int, int]] = []
    unmap = _blocks._unmap_pages
    monkeypatch.setattr(_blocks, "_unmap_pages", lambda region, start, end: (let_go.append((start, end)),
                                                                            unmap(region, start, end)))
    blocks, kept = [], []
    for block in _blocks.iter_blocks(str(path), None, in_flight=IN_FLIGHT):
        assert isinstance(block.data.obj, mmap.mmap)  # a view of the mapping, not a copy
        blocks.append((block.offset, block.offset + len(block.data)))
        kept.append(block)
    # every block but the last IN_FLIGHT, as soon as IN_FLIGHT more had come; read again after: the same bytes
    assert let_go == blocks[:-IN_FLIGHT] and len(blocks) > 2 * IN_FLIGHT
    assert b"".join(bytes(block.data) for block in kept) == data


def test_unmapping_keeps_the_page_the_next_block_starts_in(tmp_path, monkeypatch):
    page = mmap.PAGESIZE
    path = tmp_path / "pages.bin"
    path.write_bytes(b"".join(bytes([k]) * page for k in range(4)))  # page k holds byte k

    class Region(mmap.mmap):  # the fallback's madvise recorded
        def madvise(self, option, start, length):
            calls.append((option, start, length))

    with open(path, "rb") as handle:
        region = Region(handle.fileno(), 0, access=mmap.ACCESS_READ)
    calls, real_unmap = [], _blocks.unmap
    monkeypatch.setattr(_blocks, "unmap", lambda view: calls.append(("C", view[0], len(view))) or True)
    _blocks._unmap_pages(region, 10, 2 * page + 5)  # whole pages 0 and 1; page 2 holds the next block's start
    _blocks._unmap_pages(region, page + 3, page + 9)  # no whole page: nothing
    _blocks._unmap_pages(region, page + 3, 3 * page)  # the next block: from its first page, kept until now
    assert calls == [("C", 0, 2 * page), ("C", 1, 2 * page)]
    monkeypatch.setattr(_blocks, "unmap", lambda view: None)  # without the C extension: mmap's madvise
    calls.clear()
    _blocks._unmap_pages(region, 10, 2 * page + 5)
    assert calls == [(mmap.MADV_DONTNEED, 0, 2 * page)]
    if real_unmap(memoryview(region)[:page]) is not None:  # the real call: the bytes read back unchanged
        assert real_unmap(memoryview(region)[: 3 * page]) is True
    assert region[: 4 * page] == path.read_bytes()
    region.close()


@pytest.mark.parametrize("c_extension", [True, False], ids=["C", "python"])
@pytest.mark.parametrize("line_bytes", [3, 400, 5000])
def test_newlines_found_by_memchr_or_vector_compare_agree(line_bytes, c_extension, monkeypatch):
    if not c_extension:
        monkeypatch.setattr(_otlp_native, "AVAILABLE", False)
    elif not _otlp_native.AVAILABLE:
        pytest.skip("built without the C extension")
    rng = np.random.default_rng(line_bytes)
    lines = [b"x" * int(n) for n in rng.integers(0, 2 * line_bytes, 9000)]  # C: its list grows past 4,096
    buffer = bytearray(b"\n".join(lines) + b"\ntail")
    want = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8) == 10)
    for scratch in (np.empty(len(buffer), dtype=bool), np.empty(10, dtype=bool)):  # too small: a long line
        assert _blocks.newlines(buffer, 0, len(buffer), scratch).tolist() == want.tolist()
        assert _blocks.newlines(buffer, 0, 100, scratch).tolist() == want[want < 100].tolist()
        start = int(want[5]) + 1  # counted from the start asked for
        assert _blocks.newlines(buffer, start, len(buffer), scratch).tolist() == (want[6:] - start).tolist()
    for edge in (b"", b"no newline", b"\n", b"\n\n\n", b"a\nb\n"):
        found = _blocks.newlines(edge, 0, len(edge), np.empty(16, dtype=bool))
        assert found.dtype == np.int64 and found.tolist() == [i for i, byte in enumerate(edge) if byte == 10]


class _SpyMapping(mmap.mmap):
    """A mapping that records ``madvise`` calls instead of making them."""

    calls: list

    def madvise(self, option, start=0, length=None):
        self.calls.append((option, start, length))


@pytest.mark.parametrize("extension", [True, False])
def test_a_block_is_mapped_in_from_its_first_whole_page(tmp_path, monkeypatch, extension):
    page = mmap.PAGESIZE
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * (4 * page // 256))
    populated = []
    monkeypatch.setattr(_blocks, "populate", lambda view: populated.append(bytes(view)) or True if extension else None)
    spy = _SpyMapping(-1, 4 * page)
    spy.calls = []
    spy[:] = path.read_bytes()
    _blocks._map_in(spy, page + 10, 3 * page + 5)  # from the page the block starts in
    if extension:  # the C extension's call, made without the GIL
        assert populated == [path.read_bytes()[page:3 * page + 5]] and spy.calls == []
    else:  # Python's, which holds the GIL
        assert spy.calls == [(_blocks._POPULATE_READ, page, 2 * page + 5)]
    monkeypatch.undo()
    with open(path, "rb") as raw:
        region = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
        _blocks._map_in(region, 10, 3 * page)  # the real call (or a kernel without it: nothing) reads nothing wrong
        assert region[:] == path.read_bytes()
        region.close()


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built")
def test_populate_maps_in_pages_from_a_page_start_only(tmp_path):
    page = mmap.PAGESIZE
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (3 * page))
    with open(path, "rb") as raw:
        region = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(region)
        assert _otlp_native.populate(view[1:page]) is False  # not a page start: the kernel refuses
        kernel = tuple(int(part) for part in os.uname().release.split(".")[:2] if part.isdigit())
        if sys.platform == "linux" and kernel >= (5, 14):  # MADV_POPULATE_READ
            assert _otlp_native.populate(view[page:]) is True
        del view
        region.close()


def test_a_pipe_is_read_through_the_ring(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "spans.fifo"
    os.mkfifo(fifo)
    data = _lines(7, n=50)

    def write() -> None:
        with open(fifo, "wb") as out:  # waits for the reader
            out.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        blocks = _cut(fifo)
    finally:
        writer.join()
    _check(blocks, data)
