"""Time-sortable ids and opaque page cursors.

DESIGN.md: "activity: ... Ids sortable by time." The read API pages newest
first with keyset cursors that a client hands back unchanged.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.cursor import decode_cursor, encode_cursor
from eventyard.core.ids import is_id, new_id

HEX24 = frozenset("0123456789abcdef")


def b64(raw: bytes) -> str:
    """Encode like a cursor does, whatever ``raw`` holds."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def now_ms() -> int:
    return int(time.time() * 1000)


class TestNewId:
    """ "24 lowercase hex characters" that "sort after every id this process made before"."""

    def test_is_24_lowercase_hex(self) -> None:
        for _ in range(200):
            value = new_id()
            assert len(value) == 24
            assert set(value) <= HEX24
            assert is_id(value)

    def test_strictly_increasing_in_a_tight_loop(self) -> None:
        ids = [new_id() for _ in range(20_000)]
        assert all(a < b for a, b in itertools.pairwise(ids))

    def test_strictly_increasing_within_the_same_millisecond(self) -> None:
        """ "ids created in the same millisecond still sort in creation order"."""
        ms = now_ms()
        ids = [new_id(ms) for _ in range(1000)]
        assert all(a < b for a, b in itertools.pairwise(ids))
        assert {value[:12] for value in ids} == {f"{ms:012x}"}

    def test_a_clock_stepping_back_does_not_break_the_order(self) -> None:
        ms = now_ms()
        first = new_id(ms)
        after_step_back = new_id(ms - 60_000)
        assert first < after_step_back

    def test_leading_digits_are_the_creation_time(self) -> None:
        before = now_ms()
        value = new_id()
        after = now_ms()
        assert before <= int(value[:12], 16) <= after

    def test_ids_sort_like_their_creation_times(self) -> None:
        earlier = new_id()
        time.sleep(0.005)
        later = new_id()
        assert earlier < later
        assert int(earlier[:12], 16) < int(later[:12], 16)

    def test_unique_across_threads(self) -> None:
        per_thread: list[list[str]] = [[] for _ in range(8)]

        def make(bucket: list[str]) -> None:
            bucket.extend(new_id() for _ in range(2000))

        threads = [threading.Thread(target=make, args=(bucket,)) for bucket in per_thread]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = [value for bucket in per_thread for value in bucket]
        assert len(set(everything)) == len(everything)
        for bucket in per_thread:
            assert bucket == sorted(bucket)

    @pytest.mark.parametrize(
        "value",
        ["", "0" * 23, "0" * 25, "0123456789ABCDEF01234567", "0123456789abcdef0123456g", " " * 24],
    )
    def test_is_id_rejects_other_shapes(self, value: str) -> None:
        assert not is_id(value)


class TestCursor:
    """A cursor continues after ``(occurred_at, activity_id)``; anything else is refused."""

    def test_round_trip(self) -> None:
        when = datetime(2025, 9, 30, 8, 40, 46, 123456, tzinfo=UTC)
        activity_id = new_id()
        assert decode_cursor(encode_cursor(when, activity_id)) == (when, activity_id)

    def test_round_trip_keeps_the_instant_of_a_non_utc_time(self) -> None:
        ist = timezone(timedelta(hours=5, minutes=30))
        when = datetime(2021, 12, 29, 6, 12, 28, tzinfo=ist)
        decoded, _ = decode_cursor(encode_cursor(when, "a" * 24))
        assert decoded == when
        assert decoded.utcoffset() is not None

    def test_is_url_safe_without_padding(self) -> None:
        cursor = encode_cursor(datetime(2025, 1, 1, tzinfo=UTC), new_id())
        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )

    @given(
        when=st.datetimes(
            min_value=datetime(1970, 1, 1),
            max_value=datetime(2200, 1, 1),
            timezones=st.builds(
                timezone, st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
            ),
        ),
        activity_id=st.text(max_size=40),
    )
    def test_round_trip_property(self, when: datetime, activity_id: str) -> None:
        assert decode_cursor(encode_cursor(when, activity_id)) == (when, activity_id)

    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "garbage",
            "!!!!",
            "a",
            "é",
            "eyJ",  # the start of base64 JSON, cut short
            b64(b"\xff\xfe\xfd"),
            b64(b"null"),
            b64(b"42"),
            b64(b'["2025-01-01T00:00:00+00:00"]'),
            b64(b'["2025-01-01T00:00:00+00:00","x","y"]'),
            b64(b'["yesterday","0123456789abcdef01234567"]'),
            b64(b'[1735689600,"0123456789abcdef01234567"]'),
            b64(b'["2025-01-01T00:00:00+00:00",7]'),
            b64(b'["2025-01-01T00:00:00+00:00",null]'),
        ],
    )
    def test_garbage_is_rejected_with_value_error(self, cursor: str) -> None:
        with pytest.raises(ValueError, match="cursor is not one this API returned"):
            decode_cursor(cursor)

    def test_a_cursor_without_a_time_zone_is_rejected(self) -> None:
        """Timestamps are "timezone-aware everywhere"; a naive one cannot be ours."""
        raw = orjson.dumps(["2025-01-01T00:00:00", "0123456789abcdef01234567"])
        with pytest.raises(ValueError, match="cursor is not one this API returned"):
            decode_cursor(b64(raw))

    @given(st.text(max_size=80))
    def test_any_text_is_decoded_or_refused_with_value_error(self, cursor: str) -> None:
        try:
            when, activity_id = decode_cursor(cursor)
        except ValueError:
            return
        assert when.tzinfo is not None
        assert isinstance(activity_id, str)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_cursor_outside_the_utc_range_is_refused(when: str) -> None:
    """A crafted cursor must be a 400 (ValueError here), never an overflow deeper down."""
    crafted = base64.urlsafe_b64encode(orjson.dumps([when, "a" * 24])).decode().rstrip("=")
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor(crafted)
