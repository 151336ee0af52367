"""Mixpanel bodies -> canonical records, and the profile operations /engage maps onto.

Pure: no server, no database. The rules are stated in
``eventyard.dialects.mixpanel.translate`` and ``docs/dialects/mixpanel.md``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.model import NewActivity, ProfileUpdate
from eventyard.core.profiles import apply_update
from eventyard.dialects.mixpanel.translate import (
    Context,
    Endpoint,
    Translation,
    parse_body,
    translate_records,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOKEN = "eymp_token"


def translate(endpoint: Endpoint, *objects: Any, strict: bool = True) -> Translation:
    token = None if endpoint == "import" else TOKEN
    return translate_records(list(objects), Context(endpoint, NOW, token, strict=strict))


def event(name: str = "Viewed", **properties: Any) -> dict[str, Any]:
    return {"event": name, "properties": {"token": TOKEN, **properties}}


class TestParseBody:
    RECORD: dict[str, Any] = {"event": "e", "properties": {"distinct_id": "u"}}

    def test_a_form_with_json_text_or_base64_and_its_flags(self) -> None:
        text = json.dumps([self.RECORD])
        encoded = base64.b64encode(text.encode()).decode()
        for data in (text, encoded, encoded.rstrip("=")):
            body = f"data={data.replace('+', '%2B')}&verbose=1&ip=0".encode()
            parsed = parse_body(body)
            assert parsed.objects == [self.RECORD]
            assert parsed.fields == {"verbose": "1", "ip": "0"}
            assert parsed.form

    def test_json_arrays_objects_and_ndjson(self) -> None:
        assert parse_body(json.dumps(self.RECORD).encode()).objects == [self.RECORD]
        assert parse_body(json.dumps([self.RECORD] * 2).encode()).objects == [self.RECORD] * 2
        ndjson = "\n".join([json.dumps(self.RECORD)] * 3).encode()
        parsed = parse_body(ndjson)
        assert parsed.objects == [self.RECORD] * 3
        assert not parsed.form

    def test_empty_bodies_hold_no_record_and_bad_ones_are_400(self) -> None:
        assert parse_body(b"").objects == []
        assert parse_body(b"verbose=1").objects == []
        for bad in (b"[1,", b"data=%7B", b"data=!!!", b"{}\n{"):
            with pytest.raises(EventyardError) as caught:
                parse_body(bad)
            assert caught.value.status == 400

    def test_more_than_2000_records_is_400(self) -> None:
        with pytest.raises(EventyardError, match="2001"):
            parse_body(json.dumps([self.RECORD] * 2001).encode())


class TestEvents:
    def test_distinct_ids_user_ids_and_device_ids(self) -> None:
        translation = translate(
            "track",
            event(distinct_id="u1"),
            event(distinct_id="$device:d1"),
            event(distinct_id="d2", **{"$device_id": "d2"}),
            event(distinct_id="u3", **{"$user_id": "u3", "$device_id": "d3"}),
        )
        assert not translation.errors
        assert [r.identifiers for r in translation.records] == [
            (Identifier("identity", "u1"),),
            (Identifier("anonid", "d1"),),
            (Identifier("anonid", "d2"),),
            (Identifier("identity", "u3"), Identifier("anonid", "d3")),
        ]

    def test_time_in_seconds_or_milliseconds(self) -> None:
        seconds = int(NOW.timestamp()) - 60
        translation = translate(
            "track", event(time=seconds), event(time=seconds * 1000), event(time=f"{seconds}")
        )
        for record in translation.records:
            assert isinstance(record, NewActivity)
            assert record.occurred_at == datetime.fromtimestamp(seconds, UTC)

    def test_identical_events_share_a_dedup_key_and_others_do_not(self) -> None:
        same = event(distinct_id="u", **{"$insert_id": "abc-1"})
        translation = translate(
            "track",
            same,
            same,
            event(distinct_id="v", **{"$insert_id": "abc-1"}),
            event(distinct_id="u"),
        )
        keys = [r.dedup_key for r in translation.records if isinstance(r, NewActivity)]
        assert keys[0] == keys[1]
        assert keys[2] != keys[0]
        assert keys[3] is None

    def test_import_requires_time_distinct_id_and_insert_id_when_strict(self) -> None:
        translation = translate("import", {"event": "e", "properties": {}})
        fields = {e.field for e in translation.errors}
        assert fields == {"properties.time", "properties.$insert_id", "properties.distinct_id"}
        lenient = translate(
            "import", {"event": "e", "properties": {"time": 1, "distinct_id": "u"}}, strict=False
        )
        assert {e.field for e in lenient.errors} == {"properties.time"}  # before 1971

    def test_identity_events_are_profile_updates_linking_ids(self) -> None:
        translation = translate(
            "track",
            event("$identify", **{"$identified_id": "user", "$anon_id": "a1"}),
            event("$create_alias", distinct_id="user", alias="alias"),
        )
        identify, alias = translation.records
        assert isinstance(identify, ProfileUpdate)
        assert identify.identifiers == (
            Identifier("identity", "user"),
            Identifier("anonid", "a1"),
        )
        assert identify.alias_of == "a1"
        assert isinstance(alias, ProfileUpdate)
        assert alias.identifiers == (
            Identifier("identity", "alias"),
            Identifier("identity", "user"),
        )
        refused = translate("track", event("$merge", **{"$distinct_ids": ["a", "b"]}))
        assert refused.errors[0].field == "event"


class TestEngage:
    def test_each_operation_is_a_profile_update_with_its_strategy(self) -> None:
        update = {
            "$token": TOKEN,
            "$distinct_id": "u",
            "$set": {"$email": "A@B.io"},
            "$add": {"n": 1},
            "$unset": ["x"],
            "$delete": "",
        }
        translation = translate("engage", update)
        strategies = [r.strategy for r in translation.records if isinstance(r, ProfileUpdate)]
        assert strategies == ["overwrite", "increment", "unset", "clear"]
        assert Identifier("email", "a@b.io") in translation.records[0].identifiers
        assert translation.positions == [0, 0, 0, 0]


class TestProfileOperations:
    """``core.profiles.apply_update`` for the operations of product-analytics profiles."""

    def test_increment(self) -> None:
        current = {"n": 2, "s": "x"}
        after = apply_update(current, {"n": 3, "s": 1, "new": 1.5}, "increment", created=False)
        assert after == {"n": 5, "s": 1, "new": 1.5}

    def test_append_union_and_remove(self) -> None:
        current = {"l": ["a"], "one": "v"}
        assert apply_update(current, {"l": "b", "one": "w", "new": 1}, "append", created=False) == {
            "l": ["a", "b"],
            "one": ["v", "w"],
            "new": [1],
        }
        assert apply_update(current, {"l": ["a", "c", "c"]}, "append_missing", created=False) == {
            "l": ["a", "c"],
            "one": "v",
        }
        assert apply_update(
            {"l": ["a", "b", "a"]}, {"l": "a", "x": 1}, "remove", created=False
        ) == {"l": ["b"]}

    def test_unset_and_clear(self) -> None:
        current = {"a": 1, "b": 2}
        assert apply_update(current, {"a": None, "z": None}, "unset", created=False) == {"b": 2}
        assert apply_update(current, {}, "clear", created=False) == {}
