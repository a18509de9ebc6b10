"""Text from outside becomes text every database stores: no NUL, valid UTF-8, bounded."""

from __future__ import annotations

import doctest

import pytest

import shared.storable_text
from shared.storable_text import TRUNCATION_MARK, storable_text


def test_the_examples_in_the_docstring_hold() -> None:
    assert doctest.testmod(shared.storable_text).failed == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"plain answer", "plain answer"),
        (b"\x00\x00nul\x00 inside\x00", "nul inside"),
        (b"bad \xff\xfe bytes \xc3(", "bad \ufffd\ufffd bytes \ufffd("),
        ("lone \udcff surrogate", "lone \ufffd surrogate"),
        ("bell\x07 and delete\x7f", "bell and delete"),
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        (b"  \x00  ", ""),
        ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),
    ],
)
def test_text_is_cleaned(raw: str | bytes, expected: str) -> None:
    assert storable_text(raw, max_chars=100) == expected


@pytest.mark.parametrize("max_chars", [0, 1, 2, 10, 300])
def test_text_is_bounded_and_marked_when_cut(max_chars: int) -> None:
    cleaned = storable_text("y" * 1000, max_chars=max_chars)
    assert len(cleaned) == max_chars
    if max_chars:
        assert cleaned.endswith(TRUNCATION_MARK)


def test_the_result_always_encodes_as_utf8_without_nul() -> None:
    hostile = bytes(range(256)) * 4
    for raw in (hostile, hostile.decode("latin-1"), hostile.decode("utf-8", "surrogateescape")):
        cleaned = storable_text(raw, max_chars=10_000)
        assert "\x00" not in cleaned
        assert cleaned.encode("utf-8").decode("utf-8") == cleaned
