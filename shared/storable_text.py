"""Text from outside (a receiver's answer, an error message) made safe to store and show.

PostgreSQL refuses a NUL in a text value and any driver refuses text that is not valid
UTF-8: one such excerpt would fail the whole transaction it is written in.
"""

from __future__ import annotations

import re

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""C0 controls and DEL, NUL among them; tab and line breaks are kept."""
_SURROGATES = re.compile("[\ud800-\udfff]")
"""In a Python string every surrogate is a lone one (a pair is one code point): not UTF-8."""
TRUNCATION_MARK = "…"


def storable_text(raw: str | bytes, *, max_chars: int) -> str:
    """`raw` as valid UTF-8 without control characters, at most `max_chars` long.

    Undecodable bytes and lone surrogates become U+FFFD; text cut short ends with `…`.

    >>> storable_text(b"oops\\x00\\xff!", max_chars=100)
    'oops\\ufffd!'
    >>> storable_text("x" * 10, max_chars=4)
    'xxx…'
    """
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
    else:
        text = _SURROGATES.sub("\ufffd", raw)
    text = _CONTROL_CHARACTERS.sub("", text).strip()
    if len(text) > max_chars:
        return text[: max(max_chars - len(TRUNCATION_MARK), 0)] + TRUNCATION_MARK[:max_chars]
    return text
