"""Packing records into request bodies under a receiver's record and byte limits."""

from __future__ import annotations

import orjson

from eventyard.dialects.toolkit.outgoing import JsonArray, pack_json_array


def records(*sizes: int) -> list[bytes]:
    """JSON strings of exactly ``sizes`` bytes each."""
    return [orjson.dumps("x" * (size - 2)) for size in sizes]


def pack(items: list[bytes], **limits: int) -> list[list[int]]:
    packed = pack_json_array(items, JsonArray(prefix=b"[", suffix=b"]", **limits))
    for body in packed:
        assert orjson.loads(body.body) == [orjson.loads(items[i]) for i in body.positions]
    return [list(body.positions) for body in packed]


def test_records_are_split_by_count_in_order() -> None:
    assert pack(records(*[5] * 7), max_records=3, max_bytes=10_000) == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_body_is_filled_up_to_its_byte_limit_exactly() -> None:
    # "[" + 10 + "," + 10 + "]" = 23 bytes: two records fit in 23, not in 22.
    assert pack(records(10, 10, 10), max_records=100, max_bytes=23) == [[0, 1], [2]]
    assert pack(records(10, 10, 10), max_records=100, max_bytes=22) == [[0], [1], [2]]


def test_a_record_too_large_for_any_body_goes_alone() -> None:
    assert pack(records(5, 50, 5), max_records=100, max_bytes=20) == [[0], [1], [2]]


def test_a_record_over_the_per_record_limit_goes_alone_even_when_the_body_has_room() -> None:
    assert pack(records(5, 30, 5, 5), max_records=100, max_bytes=1000, max_record_bytes=20) == [
        [0],
        [1],
        [2, 3],
    ]


def test_no_records_make_no_body() -> None:
    assert pack([], max_records=10, max_bytes=100) == []
