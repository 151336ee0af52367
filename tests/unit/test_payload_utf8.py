"""A body that is not UTF-8 is refused with one message whichever codec reads it.

``decode_json`` reads a body holding a run of twenty digits with the standard
codec (long integers kept exact) and every other body with orjson: the same
bad bytes must not be answered differently because of an id's digits
elsewhere in the body (tests/reliability/test_hostile_input.py compares the
answers of two servers to the same hostile bodies).
"""

from __future__ import annotations

import pytest

from eventyard.core.payload import NOT_UTF8, decode_json

BAD = b"\xff\xfe\xc3"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "' + BAD + b'"}',
        b'{"name": "' + BAD + b'", "id": 12345678901234567890123}',
        b'{"id": 12345678901234567890123, "name": "' + BAD + b'"}',
    ],
    ids=["orjson", "long digits after", "long digits before"],
)
def test_invalid_utf8_is_refused_alike(raw: bytes) -> None:
    with pytest.raises(ValueError, match=NOT_UTF8):
        decode_json(raw)


def test_long_integers_still_decode_exactly() -> None:
    assert decode_json(b'{"id": 12345678901234567890123}').value == {"id": 12345678901234567890123}
