"""Where a JSON Lines input is cut in blocks: their size and their ends (nothing heavy is imported here, so
that a load's head start, :mod:`workbench.load._head_start`, cuts the blocks the loader will cut)."""

from __future__ import annotations

BLOCK_BYTES = 64 << 20  # largest block: the mapping has a fixed cost per block (~5% of a 1M load at 32 MiB)
MIN_BLOCK_BYTES = 16 << 20
BLOCKS_WANTED = 10  # a smaller file is cut in about this many blocks: its memory stays in proportion


def block_bytes(size: int) -> int:
    """Block size for an input (or compressed file) of ``size`` bytes: ``BLOCK_BYTES`` for a big one.

    An input under ``BLOCKS_WANTED`` big blocks gets smaller ones (down to
    ``MIN_BLOCK_BYTES``), so the blocks in flight stay in proportion to it:
    100k spans (257 MB, 26 MiB blocks) peaked at ~2.4x the file instead of
    3.1x with 64 MiB blocks; 16 MiB blocks were slower (the mapping has a
    fixed cost per block). A block ends at the last line end before its
    size, so each is a part of a line short of it; the margin of ``size /
    512`` keeps those parts from adding up to one more, nearly empty block,
    which would cost a whole mapping's fixed part (~7 ms) at the end of the
    load, where no other block runs beside it.
    """
    return max(min(BLOCK_BYTES, MIN_BLOCK_BYTES), min(BLOCK_BYTES, size // BLOCKS_WANTED + (size >> 9)))


def block_end(buffer, start: int, size: int, step: int) -> int:
    """The end of the block of ``buffer[:size]`` that starts at ``start``: after the last line end within
    ``step`` bytes, or after the end of a line longer than that, or at ``size``."""
    if start + step >= size:
        return size
    cut = buffer.rfind(b"\n", start, start + step)
    if cut == -1:
        cut = buffer.find(b"\n", start + step, size)
    return cut + 1 if cut != -1 else size
