"""PostHog capture events -> canonical records: the pure rules, without a server.

Docstrings quote the spec digest (``shared/specs/posthog.md``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.model import GroupMembership, NewActivity, ProfileUpdate
from eventyard.dialects.posthog.translate import (
    Clock,
    Translation,
    merge_refused,
    parse_request,
    request_clock,
    translate_events,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
UUID = "0190f3b2-7e4c-7a3e-9c1d-2b5e8f6a4d10"


def translate(*events: Any, sent_at: str | None = None) -> Translation:
    body: dict[str, Any] = {"api_key": "k", "batch": list(events)}
    if sent_at is not None:
        body["sent_at"] = sent_at
    parsed = parse_request(orjson.dumps(body), 1_000_000)
    return translate_events(parsed, request_clock(parsed, None, NOW))


def only(translation: Translation) -> Any:
    assert translation.errors == []
    [record] = translation.records
    return record


class TestRequest:
    def test_the_three_shapes_give_the_same_events(self) -> None:
        """ "Array / Batch / One", tried in order."""
        one = {"event": "e", "distinct_id": "u", "api_key": "k"}
        for body in (one, [one], {"api_key": "k", "batch": [one]}):
            parsed = parse_request(orjson.dumps(body), 10_000)
            assert (parsed.api_key, len(parsed.events)) == ("k", 1)

    def test_the_key_may_sit_in_properties_token(self) -> None:
        body = [{"event": "e", "distinct_id": "u", "properties": {"token": "k"}}]
        assert parse_request(orjson.dumps(body), 10_000).api_key == "k"

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"batch": [{"event": "e", "distinct_id": "u"}]}, 401, "missing_api_key"),
            (
                [{"event": "e", "api_key": "a"}, {"event": "e", "token": "b"}],
                401,
                "inconsistent_api_key",
            ),
            ({"api_key": "k", "batch": []}, 400, "invalid_payload"),
            ({"api_key": "k"}, 400, "invalid_payload"),
        ],
    )
    def test_request_level_refusals(self, body: Any, status: int, code: str) -> None:
        with pytest.raises(EventyardError) as raised:
            parse_request(orjson.dumps(body), 10_000)
        assert (raised.value.status, raised.value.code) == (status, code)


class TestEvents:
    def test_an_event_is_an_activity_of_the_distinct_ids_identity(self) -> None:
        record = only(
            translate(
                {
                    "event": "Paid",
                    "distinct_id": "u1",
                    "uuid": UUID.upper(),
                    "properties": {"$lib": "posthog-python", "token": "k", "n": 1},
                    "timestamp": "2026-06-01T11:00:00Z",
                }
            )
        )
        assert isinstance(record, NewActivity)
        assert record.identifiers == (Identifier("identity", "u1"),)
        assert (record.name, record.source, record.dialect) == ("Paid", "posthog-python", "posthog")
        assert record.properties == {"$lib": "posthog-python", "n": 1}  # never the token
        assert record.message_id == UUID
        assert record.occurred_at == datetime(2026, 6, 1, 11, tzinfo=UTC)

    def test_set_set_once_unset_ride_along_with_derived_dedup_keys(self) -> None:
        records = translate(
            {
                "event": "Upgraded",
                "distinct_id": "u1",
                "uuid": UUID,
                "$set": {"plan": "pro"},
                "properties": {"$set_once": {"first": "a"}, "$unset": ["tmp"]},
            }
        ).records
        activity, set_, set_once, unset = records
        assert isinstance(activity, NewActivity)
        assert activity.message_id == UUID
        assert isinstance(set_, ProfileUpdate)
        assert set_.attributes == {"plan": "pro"}
        assert isinstance(set_once, ProfileUpdate)
        assert set_once.strategy == "fill_empty"
        assert isinstance(unset, ProfileUpdate)
        assert unset.attributes == {"tmp": None}
        assert [r.message_id for r in records[1:]] == [
            f"{UUID}/set",
            f"{UUID}/set_once",
            f"{UUID}/unset",
        ]

    def test_personless_events_name_an_anonymous_id_and_change_no_person(self) -> None:
        """ "``$process_person_profile: false`` = personless event: no person created/updated"."""
        record = only(
            translate(
                {
                    "event": "viewed",
                    "distinct_id": "d",
                    "properties": {"$process_person_profile": False, "$set": {"x": 1}},
                }
            )
        )
        assert isinstance(record, NewActivity)
        assert record.identifiers == (Identifier("anonid", "d"),)

    def test_identify_names_the_anonymous_id_for_the_merge(self) -> None:
        translation = translate(
            {"event": "$identify", "distinct_id": "u1", "properties": {"$anon_distinct_id": "a1"}}
        )
        record = only(translation)
        assert isinstance(record, ProfileUpdate)
        assert record.identifiers == (Identifier("identity", "u1"), Identifier("anonid", "a1"))
        assert translation.aliases == [(0, "a1")]

    @pytest.mark.parametrize("illegal", ["null", "Guest", "undefined", "[object Object]", "0"])
    def test_illegal_distinct_ids_are_refused_for_merges(self, illegal: str) -> None:
        assert merge_refused(illegal)
        record = only(
            translate(
                {
                    "event": "$identify",
                    "distinct_id": "u1",
                    "properties": {"$anon_distinct_id": illegal},
                }
            )
        )
        assert record.identifiers == (Identifier("identity", "u1"),)

    def test_create_alias_joins_the_alias_as_a_user_id(self) -> None:
        record = only(
            translate(
                {"event": "$create_alias", "distinct_id": "123", "properties": {"alias": "456"}}
            )
        )
        assert isinstance(record, ProfileUpdate)
        assert record.identifiers == (Identifier("identity", "123"), Identifier("identity", "456"))

    def test_groupidentify_is_a_membership_of_a_stand_in(self) -> None:
        record = only(
            translate(
                {
                    "event": "$groupidentify",
                    "distinct_id": "$company_acme",
                    "properties": {
                        "$group_type": "company",
                        "$group_key": "acme",
                        "$group_set": {"name": "Acme"},
                    },
                }
            )
        )
        assert isinstance(record, GroupMembership)
        assert (record.group_id, record.traits) == ("company:acme", {"name": "Acme"})
        assert record.identifiers == (Identifier("anonid", "$company_acme"),)

    @pytest.mark.parametrize(
        ("event", "field"),
        [
            ({"distinct_id": "u"}, "event"),
            ({"event": " ", "distinct_id": "u"}, "event"),
            ({"event": "e"}, "distinct_id"),
            ({"event": "e", "distinct_id": ""}, "distinct_id"),
            ({"event": "e", "distinct_id": "u", "uuid": "nope"}, "uuid"),
            ({"event": "e", "distinct_id": "u", "properties": 3}, "properties"),
            ({"event": "e", "distinct_id": "u", "$unset": "x"}, "$unset"),
            ({"event": "$create_alias", "distinct_id": "u"}, "properties.alias"),
            ({"event": "$groupidentify", "distinct_id": "u"}, "properties.$group_type"),
        ],
    )
    def test_an_invalid_event_is_dropped_naming_its_field(self, event: Any, field: str) -> None:
        translation = translate({"event": "ok", "distinct_id": "u"}, event)
        assert len(translation.records) == 1
        assert translation.errors[0].index == 1
        assert translation.errors[0].field == field


class TestTimestamps:
    def test_sent_at_corrects_the_skew(self) -> None:
        """stored = ``timestamp`` + (server receive time - ``sent_at``)."""
        record = only(
            translate(
                {"event": "e", "distinct_id": "u", "timestamp": "2026-06-01T13:55:00Z"},
                sent_at="2026-06-01T14:00:00Z",
            )
        )
        assert record.occurred_at == NOW - timedelta(minutes=5)

    def test_ignore_sent_at_offset_and_nothing(self) -> None:
        ignore, offset, nothing = translate(
            {
                "event": "e",
                "distinct_id": "u",
                "timestamp": "2020-01-01T00:00:00",
                "properties": {"$ignore_sent_at": True},
            },
            {"event": "e", "distinct_id": "u", "offset": 60_000},
            {"event": "e", "distinct_id": "u", "timestamp": 1_700_000_000},
            sent_at="2026-06-01T14:00:00Z",
        ).records
        assert ignore.occurred_at == datetime(2020, 1, 1, tzinfo=UTC)
        assert offset.occurred_at == NOW - timedelta(minutes=1)
        assert nothing.occurred_at == NOW

    def test_the_query_sent_at_in_milliseconds(self) -> None:
        parsed = parse_request(orjson.dumps({"api_key": "k", "batch": [{"event": "e"}]}), 10_000)
        millis = str(int((NOW - timedelta(hours=1)).timestamp() * 1000))
        assert request_clock(parsed, millis, NOW) == Clock(NOW, NOW - timedelta(hours=1))
        # "values that look like seconds are ignored"
        assert request_clock(parsed, str(int(NOW.timestamp())), NOW).sent_at is None
