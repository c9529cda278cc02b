"""Direct-I/O writes give back exactly the bytes written, whatever the file system allows."""

from __future__ import annotations

import errno
import fcntl
import os
import random

import pytest

from workbench.load import _direct_io
from workbench.load._direct_io import DirectWriter, new_stage


def _chunks(seed: int) -> list[bytes]:
    """Pieces from empty to several stages long, so writes cross and fill the staging buffer."""
    rng = random.Random(seed)
    sizes = [0, 1, 7, 4096, 4095, 8192, 20000, 3, 50000, 8191, 1]
    return [rng.randbytes(size) for size in sizes]


def _write(path, chunks, stage_bytes=8192) -> DirectWriter:
    writer = DirectWriter.create(path, new_stage(stage_bytes))
    with writer:
        for chunk in chunks:
            before = writer.tell()
            assert writer.write(chunk) == len(chunk)
            assert writer.tell() == before + len(chunk)
    return writer


def test_a_named_file_holds_exactly_the_bytes_written(tmp_path):
    chunks = _chunks(1)
    writer = _write(tmp_path / "out.bin", chunks)
    assert (tmp_path / "out.bin").read_bytes() == b"".join(chunks)  # the padded tail is cut off
    assert writer.closed
    writer.close()  # twice is fine


def test_without_direct_io_the_file_is_written_through_the_page_cache(tmp_path, monkeypatch):
    real_open = os.open

    def refuse_direct(path, flags, mode=0o777):
        if flags & _direct_io.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # what tmpfs answers
        return real_open(path, flags, mode)

    monkeypatch.setattr(_direct_io.os, "open", refuse_direct)
    chunks = _chunks(2)
    writer = _write(tmp_path / "out.bin", chunks)
    assert writer.direct is False
    assert (tmp_path / "out.bin").read_bytes() == b"".join(chunks)


def test_a_write_the_file_system_refuses_goes_on_through_the_page_cache(tmp_path, monkeypatch):
    probe = DirectWriter.create(tmp_path / "probe")
    probe.close()
    if not probe.direct:
        pytest.skip("no direct I/O where the tests write")
    real, refused = os.pwrite, []

    def picky(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & _direct_io.O_DIRECT and offset >= 8192:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(_direct_io.os, "pwrite", picky)
    chunks = _chunks(3)
    writer = _write(tmp_path / "out.bin", chunks)
    assert refused and writer.direct is False
    assert (tmp_path / "out.bin").read_bytes() == b"".join(chunks)


def test_runs_of_writes_start_on_pages(tmp_path):
    fd = os.open(tmp_path / "regions.bin", os.O_RDWR | os.O_CREAT, 0o600)
    writer = DirectWriter(fd, False, new_stage(8192))
    writer.write(b"a" * 5000)
    assert writer.finish() == 5000
    with pytest.raises(ValueError, match="page-aligned"):
        writer.seek_to(5000)
    writer.seek_to(8192)
    writer.write(b"b" * 10)
    assert writer.finish() == 8202
    writer.close()
    data = (tmp_path / "regions.bin").read_bytes()
    assert data[:5000] == b"a" * 5000 and data[8192:] == b"b" * 10 and len(data) == 8202


def test_errors_other_than_a_refused_flag_are_raised(tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_direct_io.os, "pwrite", full)
    writer = DirectWriter.create(tmp_path / "out.bin", new_stage(8192))
    with pytest.raises(OSError, match="No space"):
        writer.write(b"x" * 9000)
    with pytest.raises(OSError, match="No space"):
        writer.close()  # the staged rest cannot be written either; the descriptor is closed all the same
    assert writer.closed
