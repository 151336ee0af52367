"""Month arithmetic of the monthly activity partitions (``storage.partitions``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from eventyard.storage.partitions import Month


def test_a_month_is_that_of_the_utc_moment() -> None:
    """Partitions are calendar months in UTC: 00:30 on 1 March at +05:30 is still February."""
    india = timezone(timedelta(hours=5, minutes=30))
    assert Month.of(datetime(2026, 3, 1, 0, 30, tzinfo=india)) == Month(2026, 2)
    assert Month.of(datetime(2026, 3, 1, tzinfo=UTC)) == Month(2026, 3)


@pytest.mark.parametrize(
    ("month", "months", "expected"),
    [
        (Month(2026, 11), 3, Month(2027, 2)),
        (Month(2026, 1), -1, Month(2025, 12)),
        (Month(2026, 11), -25, Month(2024, 10)),
        (Month(2026, 12), 0, Month(2026, 12)),
        (Month(2026, 6), -18, Month(2024, 12)),
    ],
)
def test_plus_counts_months_across_years(month: Month, months: int, expected: Month) -> None:
    assert month.plus(months) == expected


def test_a_month_runs_from_its_first_day_to_the_next_months() -> None:
    december = Month(2026, 12)
    assert december.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert december.next() == Month(2027, 1)
    assert Month(2024, 2).end - Month(2024, 2).start == timedelta(days=29)


def test_table_names_round_trip() -> None:
    assert Month(2025, 4).table == "activities_p202504"
    assert Month.of_table("activities_p202504") == Month(2025, 4)


@pytest.mark.parametrize(
    "name", ["activities_default", "activities_p202513", "activities_p20250", "contacts"]
)
def test_other_names_are_not_months(name: str) -> None:
    with pytest.raises(ValueError, match="not a monthly activities partition"):
        Month.of_table(name)
