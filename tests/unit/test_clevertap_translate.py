"""CleverTap Upload Events bodies -> canonical activities and profiles (no HTTP, no database).

Spec: ``shared/specs/clevertap-upload-events.txt``.
"""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.ids import new_id
from eventyard.core.model import ContactHint, NewActivity, ProfileUpdate, RecordRejection
from eventyard.core.payload import decode_json
from eventyard.dialects.clevertap.routes import dump_json
from eventyard.dialects.clevertap.translate import (
    EVENT_TYPE_LIMITS,
    MAX_RECORDS,
    MISSING_USER_ID,
    RESERVED_EVENT_NAMES,
    Code,
    RecordError,
    parse_date_value,
    records_of,
    translate_record,
    translate_records,
    upload_result,
)
from eventyard.http import gunzip_body

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SAMPLE = Path(__file__).parents[1] / "payloads" / "clevertap" / "sample_request.json"


def event(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "event",
        "identity": "u-1",
        "evtName": "Product viewed",
        "evtData": {"Price": 59.99},
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


def profile(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "profile", "identity": "u-1", "profileData": {"Name": "Ann"}}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


def ok(record: dict[str, Any]) -> Any:
    command, errors = translate_record(0, record, now=NOW)
    assert errors == []
    assert command is not None
    return command


def bad(record: Any, index: int = 0) -> list[RecordError]:
    command, errors = translate_record(index, record, now=NOW)
    assert command is None
    assert errors
    assert {e.index for e in errors} == {index}
    return errors


def codes(record: Any) -> list[int]:
    return [e.code for e in bad(record)]


class TestRequestBody:
    """ "The payload is an object keyed with "d" whose value is an array"; "1000 event
    records can be sent per API call"."""

    def test_the_records_of_d(self) -> None:
        assert records_of({"d": [event()]}) == ([event()], None)

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ([event()], 'body must be a JSON object {"d": [record, ...]}'),
            ("d", 'body must be a JSON object {"d": [record, ...]}'),
            ({}, 'body must have the key "d" holding the array of records'),
            ({"d": {"type": "event"}}, '"d" must be an array of records'),
            ({"d": None}, '"d" must be an array of records'),
            ({"d": []}, '"d" must hold at least one record'),
        ],
    )
    def test_request_level_errors(self, body: Any, reason: str) -> None:
        assert records_of(body) == ([], reason)

    def test_1000_records_are_accepted_1001_are_not(self) -> None:
        assert len(records_of({"d": [event()] * MAX_RECORDS})[0]) == 1000
        records, reason = records_of({"d": [event()] * 1001})
        assert records == []
        assert reason == '"d" may hold at most 1000 records, got 1001'


class TestSpecSample:
    """ "Here is an example JSON payload." (comment removed, e-mail de-obfuscated)."""

    def test_sample_translates_to_two_activities(self) -> None:
        records, reason = records_of(json.loads(SAMPLE.read_text()))
        assert reason is None
        translation = translate_records(records, now=NOW)
        assert translation.errors == []
        assert translation.positions == [0, 1]
        viewed, charged = translation.commands
        assert isinstance(viewed, NewActivity)
        assert viewed.name == "Product viewed"
        assert viewed.identifiers == (Identifier("FBID", "34322423"),)
        assert viewed.occurred_at == datetime(2016, 7, 12, 7, 25, 40, tzinfo=UTC)
        assert viewed.dialect == "clevertap"
        assert viewed.source == "api"
        assert viewed.properties == records[0]["evtData"]
        assert isinstance(charged, NewActivity)
        assert charged.name == "Charged"
        assert charged.identifiers == (Identifier("identity", "jane.doe@example.com"),)
        assert charged.properties["Delivery By"] == "2016-07-12T11:17:48Z"
        assert charged.properties["Items"] == records[1]["evtData"]["Items"]

    def test_the_sample_is_not_modified(self) -> None:
        records = json.loads(SAMPLE.read_text())["d"]
        before = copy.deepcopy(records)
        translate_records(records, now=NOW)
        assert records == before


class TestUserIdentity:
    """ "You have to set a value for one of these parameters to identify the user:
    identity, FBID, GPID, or objectId."."""

    @pytest.mark.parametrize("field", ["identity", "FBID", "GPID"])
    def test_each_field_is_an_identifier_of_its_own_kind(self, field: str) -> None:
        activity = ok(event(**{"identity": ..., field: "34322423"}))
        assert activity.identifiers == (Identifier(field, "34322423"),)
        assert activity.contact_hint is None

    def test_a_plain_object_id_is_an_identifier(self) -> None:
        """CleverTap's own objectIds ("-1a063854f83a…") are not eventyard ids."""
        activity = ok(event(identity=..., objectId="-1a063854f83a4c6484285039ecff87cb"))
        assert activity.identifiers == (
            Identifier("objectId", "-1a063854f83a4c6484285039ecff87cb"),
        )
        assert activity.contact_hint is None

    def test_an_object_id_shaped_like_a_contact_id_is_a_hint_with_a_fallback(self) -> None:
        contact_id = new_id()
        activity = ok(event(identity=..., objectId=contact_id))
        assert activity.identifiers == ()
        assert activity.contact_hint == ContactHint(contact_id, Identifier("objectId", contact_id))

    def test_several_fields_are_all_kept(self) -> None:
        activity = ok(event(identity="u-1", FBID="f", GPID="g"))
        assert activity.identifiers == (
            Identifier("identity", "u-1"),
            Identifier("FBID", "f"),
            Identifier("GPID", "g"),
        )

    def test_integers_are_accepted_as_decimal_strings(self) -> None:
        assert ok(event(identity=..., FBID=34322423)).identifiers == (
            Identifier("FBID", "34322423"),
        )

    @pytest.mark.parametrize("empty", [..., None, "", "   "])
    def test_no_identifier_is_an_error(self, empty: Any) -> None:
        errors = bad(event(identity=empty))
        assert [(e.code, e.field, e.message) for e in errors] == [
            (Code.MISSING_USER_ID, "identity", MISSING_USER_ID)
        ]

    def test_profiles_need_one_too(self) -> None:
        assert codes(profile(identity=...)) == [Code.MISSING_USER_ID]

    @pytest.mark.parametrize("value", [True, 1.5, ["a"], {"a": 1}, "x" * 513])
    def test_a_malformed_identifier_is_an_error(self, value: Any) -> None:
        assert codes(event(identity=value)) == [Code.BAD_USER_ID]


class TestEvents:
    def test_ts_defaults_to_now(self) -> None:
        assert ok(event()).occurred_at == NOW

    @pytest.mark.parametrize("ts", [1468308340, "1468308340", " 1468308340 "])
    def test_ts_is_epoch_seconds(self, ts: Any) -> None:
        assert ok(event(ts=ts)).occurred_at == datetime(2016, 7, 12, 7, 25, 40, tzinfo=UTC)

    @pytest.mark.parametrize(
        "ts", [1468308340.5, "2016-07-12", True, -1, 1468308340000, "", {"t": 1}]
    )
    def test_other_ts_are_errors(self, ts: Any) -> None:
        errors = bad(event(ts=ts))
        assert [(e.code, e.field) for e in errors] == [(Code.BAD_TS, "ts")]

    def test_milliseconds_are_pointed_out(self) -> None:
        [error] = bad(event(ts=1468308340000))
        assert "milliseconds" in error.message

    @pytest.mark.parametrize("name", [..., None, "", "  ", 7, ["a"]])
    def test_evt_name_is_required_string(self, name: Any) -> None:
        assert codes(event(evtName=name)) == [Code.BAD_EVENT_NAME]

    def test_evt_name_is_trimmed(self) -> None:
        assert ok(event(evtName="  Added  ")).name == "Added"

    def test_evt_name_up_to_120_characters(self) -> None:
        """ "Event keys are limited to 120 characters"."""
        assert ok(event(evtName="é" * 120)).name == "é" * 120
        [error] = bad(event(evtName="e" * 121))
        assert error.code == Code.EVENT_NAME_TOO_LONG
        assert "limited to 120 characters" in error.message

    @pytest.mark.parametrize("name", [*RESERVED_EVENT_NAMES, "app launched", " UTM VISITED "])
    def test_reserved_system_events_are_refused(self, name: str) -> None:
        assert codes(event(evtName=name)) == [Code.RESERVED_EVENT_NAME]

    def test_charged_is_not_reserved(self) -> None:
        """The spec's own sample sends "Charged"."""
        assert "Charged" not in RESERVED_EVENT_NAMES
        assert ok(event(evtName="Charged")).name == "Charged"

    @pytest.mark.parametrize("data", [..., None, [], "x", 1])
    def test_evt_data_is_a_required_object(self, data: Any) -> None:
        assert codes(event(evtData=data)) == [Code.BAD_EVENT_DATA]

    def test_empty_evt_data_is_fine(self) -> None:
        assert ok(event(evtData={})).properties == {}

    def test_limits_are_passed_to_the_service(self) -> None:
        """ "the maximum number of event types per account is 512 ... For each event type,
        the maximum number of properties is 256"."""
        assert EVENT_TYPE_LIMITS.max_types == 512
        assert EVENT_TYPE_LIMITS.max_properties_per_type == 256
        assert EVENT_TYPE_LIMITS.reserved_names == frozenset(RESERVED_EVENT_NAMES)


class TestPropertyLimits:
    """ "Event keys are limited to 120 characters and property values are limited to 512 bytes"."""

    def test_keys_up_to_120_characters(self) -> None:
        assert ok(event(evtData={"k" * 120: 1})).properties == {"k" * 120: 1}
        [error] = bad(event(evtData={"k" * 121: 1}))
        assert error.code == Code.KEY_TOO_LONG

    def test_nested_keys_count_too(self) -> None:
        [error] = bad(event(evtData={"Items": [{"k" * 121: 1}]}))
        assert error.code == Code.KEY_TOO_LONG
        assert error.field == "evtData.Items.0." + "k" * 121

    def test_values_up_to_512_utf8_bytes(self) -> None:
        assert ok(event(evtData={"v": "é" * 256})).properties == {"v": "é" * 256}
        [error] = bad(event(evtData={"v": "é" * 256 + "x"}))
        assert error.code == Code.VALUE_TOO_LONG
        assert error.field == "evtData.v"
        assert error.message == (
            "evtData.v is 513 bytes long; property values are limited to 512 bytes"
        )

    def test_each_string_inside_an_array_is_measured_alone(self) -> None:
        """The spec's "Items" arrays would otherwise hit 512 bytes quickly."""
        items = [{"Book name": "b" * 500} for _ in range(5)]
        assert ok(event(evtData={"Items": items})).properties == {"Items": items}
        [error] = bad(event(evtData={"Items": [*items, {"Book name": "b" * 513}]}))
        assert error.field == "evtData.Items.5.Book name"

    def test_profile_data_has_the_same_limits(self) -> None:
        assert codes(profile(profileData={"v": "x" * 513})) == [Code.VALUE_TOO_LONG]

    def test_every_problem_is_reported(self) -> None:
        errors = bad(event(evtName="", evtData={"k" * 121: "v" * 600}, ts="soon"))
        assert sorted(e.code for e in errors) == [
            Code.BAD_TS,
            Code.BAD_EVENT_NAME,
            Code.KEY_TOO_LONG,
            Code.VALUE_TOO_LONG,
        ]


class TestDates:
    """Values "$D_<epoch seconds>" are dates: ISO 8601 in UTC."""

    def test_the_specs_date(self) -> None:
        assert parse_date_value("$D_1468322268") == "2016-07-12T11:17:48Z"

    def test_dates_anywhere_are_converted(self) -> None:
        data = {"a": "$D_0", "b": [{"c": "$D_1468322268"}], "d": {"e": ["$D_86400"]}}
        assert ok(event(evtData=data)).properties == {
            "a": "1970-01-01T00:00:00Z",
            "b": [{"c": "2016-07-12T11:17:48Z"}],
            "d": {"e": ["1970-01-02T00:00:00Z"]},
        }

    def test_profile_dates_are_converted(self) -> None:
        update = ok(profile(profileData={"DOB": "$D_631152000"}))
        assert update.attributes == {"DOB": "1990-01-01T00:00:00Z"}

    @pytest.mark.parametrize("value", ["$D_", "$D_abc", "$D_12.5", "$D_ 12", "$D_-5", "$D_1e9"])
    def test_malformed_dates_are_record_errors(self, value: str) -> None:
        [error] = bad(event(evtData={"when": value}))
        assert error.code == Code.BAD_DATE
        assert error.field == "evtData.when"

    def test_milliseconds_are_not_a_date(self) -> None:
        [error] = bad(event(evtData={"when": "$D_1468322268000"}))
        assert error.code == Code.BAD_DATE

    def test_keys_are_never_dates_and_other_strings_stay(self) -> None:
        data = {"$D_1": "D_1", "x": "$d_1", "y": "a $D_1"}
        assert ok(event(evtData=data)).properties == data

    @given(st.integers(min_value=0, max_value=253_402_300_799))
    def test_every_representable_second_round_trips(self, seconds: int) -> None:
        text = parse_date_value(f"$D_{seconds}")
        moment = datetime.fromisoformat(text)
        assert text.endswith("Z")
        assert moment.tzinfo is not None
        assert int(moment.timestamp()) == seconds


class TestProfiles:
    def test_profile_data_becomes_attributes(self) -> None:
        data = {"Name": "Ann", "Gender": "F", "MSG-email": False, "MSG_sms": True, "Tier": 2}
        update = ok(profile(profileData=data))
        assert isinstance(update, ProfileUpdate)
        assert update.attributes == data
        assert update.identifiers == (Identifier("identity", "u-1"),)
        assert update.dialect == "clevertap"

    def test_email_phone_and_identity_are_identifiers_and_attributes(self) -> None:
        data = {"Email": " Ann@Example.COM ", "Phone": "+1 (415) 555-1234", "Identity": "u-1"}
        update = ok(profile(identity=..., FBID="f", profileData=data))
        assert update.identifiers == (
            Identifier("FBID", "f"),
            Identifier("email", "ann@example.com"),
            Identifier("mobile", "+14155551234"),
            Identifier("identity", "u-1"),
        )
        assert update.attributes == data

    def test_the_same_identity_twice_is_one_identifier(self) -> None:
        update = ok(profile(profileData={"Identity": "u-1"}))
        assert update.identifiers == (Identifier("identity", "u-1"),)

    def test_a_different_identity_is_an_error(self) -> None:
        [error] = bad(profile(profileData={"Identity": "u-2"}))
        assert error.code == Code.BAD_PROFILE_IDENTIFIER
        assert error.field == "profileData.Identity"

    @pytest.mark.parametrize(
        "data", [{"Email": "not-an-address"}, {"Phone": "call me"}, {"Email": 5}]
    )
    def test_malformed_identifiers_are_errors(self, data: dict[str, Any]) -> None:
        assert codes(profile(profileData=data)) == [Code.BAD_PROFILE_IDENTIFIER]

    def test_empty_identifier_attributes_are_just_attributes(self) -> None:
        update = ok(profile(profileData={"Email": "", "Phone": None}))
        assert update.identifiers == (Identifier("identity", "u-1"),)
        assert update.attributes == {"Email": "", "Phone": None}

    @pytest.mark.parametrize("data", [..., None, [], "x"])
    def test_profile_data_is_a_required_object(self, data: Any) -> None:
        assert codes(profile(profileData=data)) == [Code.BAD_PROFILE_DATA]


class TestRecordShape:
    @pytest.mark.parametrize("record", [None, "event", 1, ["a"]])
    def test_a_record_must_be_an_object(self, record: Any) -> None:
        assert codes(record) == [Code.RECORD_NOT_OBJECT]

    @pytest.mark.parametrize("kind", [..., None, "token", "Event", 1])
    def test_type_must_be_event_or_profile(self, kind: Any) -> None:
        assert codes(event(type=kind))[0] == Code.BAD_TYPE

    def test_unstorable_values_are_refused_with_their_path(self) -> None:
        body = decode_json(
            b'{"d": [{"type": "event", "identity": "a", "evtName": "E", '
            b'"evtData": {"n": 123456789012345678901234567890}}]}'
        )
        assert body.suspicious
        translation = translate_records(body.value["d"], now=NOW, check_unstorable=True)
        assert [(e.code, e.field) for e in translation.errors] == [
            (Code.UNSTORABLE_VALUE, "evtData.n")
        ]
        assert translation.commands == []


class TestResult:
    """{"status":<success, partial, fail>, "processed":<count>, "unprocessed": [...]}."""

    def test_success(self) -> None:
        records = [event(), profile()]
        assert upload_result(records, translate_records(records, now=NOW)) == {
            "status": "success",
            "processed": 2,
            "unprocessed": [],
        }

    def test_partial_echoes_each_failed_record_once_in_order(self) -> None:
        records = [event(evtName=""), event(), event(evtData=None, ts="x")]
        translation = translate_records(records, now=NOW)
        assert translation.positions == [1]
        result = upload_result(records, translation)
        assert result["status"] == "partial"
        assert result["processed"] == 1
        assert [u["record"] for u in result["unprocessed"]] == [records[0], records[2]]
        assert all(u["status"] == "fail" for u in result["unprocessed"])
        assert result["unprocessed"][1]["code"] == Code.BAD_TS
        assert "; " in result["unprocessed"][1]["error"]

    def test_service_rejections_map_back_to_indexes_in_d(self) -> None:
        records = [event(evtName=""), event(evtName="A"), event(evtName="B")]
        translation = translate_records(records, now=NOW)
        rejected = [RecordRejection(1, "event_type_limit", "512 event types")]
        result = upload_result(records, translation, rejected)
        assert result["status"] == "partial"
        assert result["processed"] == 1
        assert [(u["code"], u["record"]) for u in result["unprocessed"]] == [
            (Code.BAD_EVENT_NAME, records[0]),
            (Code.EVENT_TYPE_LIMIT, records[2]),
        ]

    def test_all_failed_is_fail(self) -> None:
        records = [event(evtName="")]
        assert upload_result(records, translate_records(records, now=NOW))["status"] == "fail"

    @given(st.lists(st.booleans(), min_size=1, max_size=30), st.data())
    def test_every_record_is_processed_or_unprocessed(
        self, valid: list[bool], data: st.DataObject
    ) -> None:
        records = [event(identity=f"u{i}") if v else event(evtName="") for i, v in enumerate(valid)]
        translation = translate_records(records, now=NOW)
        assert translation.positions == [i for i, v in enumerate(valid) if v]
        rejected_slots = data.draw(
            st.sets(st.integers(0, max(len(translation.commands) - 1, 0)))
            if translation.commands
            else st.just(set())
        )
        rejected = [
            RecordRejection(s, "event_property_limit", "256") for s in sorted(rejected_slots)
        ]
        result = upload_result(records, translation, rejected)
        failed = [u["record"] for u in result["unprocessed"]]
        assert result["processed"] + len(failed) == len(records)
        expected_failed = [
            r
            for i, r in enumerate(records)
            if not valid[i] or translation.positions.index(i) in rejected_slots
        ]
        assert failed == expected_failed
        if not failed:
            assert result["status"] == "success"
        elif result["processed"] == 0:
            assert result["status"] == "fail"
        else:
            assert result["status"] == "partial"

    def test_echoed_big_integers_are_serialised_exactly(self) -> None:
        body = decode_json(b'{"n": 123456789012345678901234567890}')
        assert dump_json(body.value) == b'{"n":123456789012345678901234567890}'


class TestGzip:
    def test_round_trip_and_several_members(self) -> None:
        assert gunzip_body(gzip.compress(b"abc"), 10) == b"abc"
        assert gunzip_body(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"

    def test_the_cap_is_on_the_decompressed_size(self) -> None:
        bomb = gzip.compress(b" " * 1_000_000)
        assert len(bomb) < 2000
        assert gunzip_body(gzip.compress(b" " * 100), 100) == b" " * 100
        with pytest.raises(EventyardError) as caught:
            gunzip_body(bomb, 100)
        assert caught.value.status == 413

    @pytest.mark.parametrize(
        "body", [b"", b"not gzip", gzip.compress(b"abcdef" * 100)[:-12], zlib.compress(b"x")]
    )
    def test_corrupt_or_truncated_gzip_is_400(self, body: bytes) -> None:
        with pytest.raises(EventyardError) as caught:
            gunzip_body(body, 10_000)
        assert caught.value.status == 400


def _alone(record: dict[str, Any]) -> tuple[Any, list[RecordError]]:
    """``record`` translated as one record of a batch."""
    translation = translate_records([record], now=NOW)
    return (translation.commands[0] if translation.commands else None), translation.errors


class TestBatchAgreesWithOneRecord:
    """A batch takes the values of most records as they are; what it keeps and
    every problem it finds are those of the record translated on its own."""

    @pytest.mark.parametrize(
        "data",
        [
            {"Price": 59.99, "Items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}]},
            {"k" * 120: "at the key limit", "v": "x" * 512, "é": "é" * 256},
            {"k" * 121: "one over the key limit"},
            {"é" * 61: "122 bytes but 61 characters", "Url": "https://example.com/" + "p" * 300},
            {"Text": "k" * 121 + '":' + "v"},
            {"v": "x" * 513},
            {"v": "é" * 257},
            {"Nested": {"Deeper": ["$D_1468322268", {"When": "$D_1468322268"}]}},
            {"Bad date": "$D_soon"},
            {"Quote": 'a "quoted" ' + "x" * 200 + " word"},
            {'k"' + "y" * 119: "a long key with a quote"},
            {"Controls": "\n\t\u0001" * 100},
            {"Mixed": [1, -0.0, 1e300, None, True, "s", [], {}], "Big": 2**63 - 1},
        ],
    )
    def test_event_data(self, data: dict[str, Any]) -> None:
        record = event(evtData=data)
        assert _alone(record) == translate_record(0, record, now=NOW)

    def test_profile_data(self) -> None:
        record = profile(profileData={"Name": "Ann", "Born": "$D_1468322268", "k" * 121: 1})
        assert _alone(record) == translate_record(0, record, now=NOW)
        plain = profile(profileData={"Name": "Ann", "Tags": ["a", "b"]})
        assert _alone(plain) == translate_record(0, plain, now=NOW)

    def test_dates_are_converted_in_a_copy_leaving_the_request_as_sent(self) -> None:
        """The ``unprocessed`` entries echo each record "as sent"."""
        record = event(evtData={"Items": [{"sku": "a-1", "When": "$D_1468322268"}]})
        command, _ = _alone(record)
        assert command.properties == {"Items": [{"sku": "a-1", "When": "2016-07-12T11:17:48Z"}]}
        assert record["evtData"]["Items"][0]["When"] == "$D_1468322268"

    @given(
        st.dictionaries(
            st.text(max_size=130),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=600)
                | st.just("$D_1468322268"),
                lambda children: (
                    st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=130), children, max_size=3)
                ),
                max_leaves=8,
            ),
            max_size=4,
        )
    )
    def test_any_event_data(self, data: dict[str, Any]) -> None:
        record = event(evtData=data)
        assert _alone(record) == translate_record(0, record, now=NOW)
