"""The scanner's whole-block UTF-8 check (``_utf8.h``) agrees with Python's decoder byte for byte.

The vector check reads 32 bytes at a time in two 16-byte lanes, so every case is tried at every
offset around the lane and chunk edges, in ASCII and in multi-byte text; the scalar fallback (CPUs
without AVX2) is held to the same cases. Where the check wrongly passed a block, the scanner would skip its
string-by-string check and take text that is not UTF-8 (``test_otlp_native.py`` covers that route).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.load import _otlp_native

pytestmark = pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C scanner is not built here")


@pytest.fixture(params=["vector", "scalar"], scope="module")
def utf8_valid(request):
    """The check as the scanner runs it (AVX2 where the CPU has it), and its scalar fallback."""
    check = _otlp_native._otlp_scan.utf8_valid
    return (lambda data: check(data, True)) if request.param == "scalar" else check

INVALID = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80",
           b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
           b"\xf8\x88\x80\x80\x80", b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x8e", b"\xc3(", b"\xe2(\xa1",
           b"\xe2\x82(", b"\xf0(\x8c\xbc", b"\xf0\x90(\xbc", b"\xf0\x90\x8c(", b"\xc3\xa9\xa9", b"\xe2\x82\xac\xac",
           b"\xf0\x9f\x8e\x89\x89"]
VALID = ["\u0080", "\u07ff", "\u0800", "\u0fff", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0003ffff",
         "\U00040000", "\U000fffff", "\U00100000", "\U0010ffff", "é", "東", "🎉"]
BACKGROUNDS = [b"x", "é".encode(), "東".encode()]


def _python_says(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize("raw", INVALID)
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_invalid_sequences_fail_at_every_offset(utf8_valid, raw, background):
    for before, after in itertools.product(range(0, 40), (0, 1, 5, 17)):
        data = background * before + raw + background * after
        assert utf8_valid(data) is False, (before, after)


@pytest.mark.parametrize("char", VALID)
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_valid_characters_pass_at_every_offset(utf8_valid, char, background):
    for before, after in itertools.product(range(0, 40), (0, 1, 5, 17)):
        assert utf8_valid(background * before + char.encode() + background * after) is True, (before, after)


@pytest.mark.parametrize("offset", [0, 13, 14, 15, 16, 29, 30, 31, 32])
def test_every_pair_of_bytes_agrees_with_python(utf8_valid, offset):
    pad = b"a" * offset
    for first in range(256):
        for second in range(256):
            data = pad + bytes((first, second)) + pad
            assert utf8_valid(data) is _python_says(data), (offset, first, second)


@pytest.mark.parametrize("lead", [0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5])
def test_three_and_four_byte_sequences_across_a_chunk_edge_agree_with_python(utf8_valid, lead):
    tails = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC3, 0xE0, 0xF0, 0xFF]
    for offset in (12, 13, 14, 15, 28, 29, 30, 31):
        pad = b"b" * offset
        for second in range(256):
            for third, fourth in itertools.product(tails, (0x41, 0x80, 0xBF)):
                data = pad + bytes((lead, second, third, fourth)) + b"c"
                assert utf8_valid(data) is _python_says(data), (offset, lead, second, third, fourth)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
                          st.binary(max_size=6), st.just(b"a" * 16)), max_size=12).map(b"".join))
def test_any_bytes_agree_with_python(utf8_valid, data):
    assert utf8_valid(data) is _python_says(data)


def test_empty_and_long_buffers(utf8_valid):
    text = ("plain words, résumé, 東京, 🎉 " * 5000).encode()
    assert utf8_valid(b"") is True
    assert utf8_valid(text) is True
    assert utf8_valid(text + b"\xc3") is False
    assert utf8_valid(text[:-1] + b"\x80" + text[-1:]) is False
