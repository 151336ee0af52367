"""What erasure does to records that only mention the erased person (core.erasure)."""

from __future__ import annotations

from eventyard.core.erasure import ERASED, drop_queued_records, scrub


def test_scrub_blanks_the_values_wherever_they_sit_in_a_document() -> None:
    document = {
        "reason": "email 'jane@example.com' is taken",
        "jane@example.com": [1, {"nested": "write to jane@example.com"}],
        "count": 3,
    }
    cleaned, changed = scrub(document, ["jane@example.com"])
    assert cleaned == {
        "reason": f"email '{ERASED}' is taken",
        ERASED: [1, {"nested": f"write to {ERASED}"}],
        "count": 3,
    }
    assert changed == 3


def record(identifiers: list[list[str]], hint: str | None = None) -> dict[str, object]:
    return {
        "type": "activity",
        "identifiers": identifiers,
        "contact_hint": None if hint is None else {"contact_id": hint, "fallback": None},
    }


def test_queued_records_of_the_person_go_with_the_records_grouped_with_them() -> None:
    """An Ortto activity and the profile update it carries stand or fall together."""
    payload = {
        "records": [
            record([["email", "jane@example.com"]]),
            record([["email", "bob@example.com"]]),
            record([["email", "bob@example.com"]]),
            record([], hint="c-jane"),
            record([["identity", "ann"]]),
        ],
        "groups": [0, 0, 1, 2, 3],
        "labels": ["a[0]", "a[0]", "a[1]", "a[2]", "a[3]"],
    }
    cleaned, dropped = drop_queued_records(payload, {"c-jane"}, {("email", "jane@example.com")})
    assert dropped == 3
    assert cleaned["groups"] == [1, 3]
    assert cleaned["labels"] == ["a[1]", "a[3]"]
    assert [r["identifiers"] for r in cleaned["records"]] == [
        [["email", "bob@example.com"]],
        [["identity", "ann"]],
    ]


def test_a_batch_without_the_person_is_left_as_it_is() -> None:
    payload = {"records": [record([["identity", "ann"]])], "groups": None, "labels": None}
    assert drop_queued_records(payload, {"c-x"}, {("identity", "bob")}) == (payload, 0)
