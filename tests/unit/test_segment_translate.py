"""Segment messages -> canonical records: the pure rules, without a server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventyard.core.identifiers import Identifier
from eventyard.core.model import GroupMembership, NewActivity, ProfileUpdate
from eventyard.dialects.segment.auth import credential_from_authorization
from eventyard.dialects.segment.translate import (
    parse_request,
    parse_timestamp,
    translate_messages,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def translate(*messages: Any, sent_at: str | None = None) -> Any:
    body: dict[str, Any] = {"batch": list(messages)}
    if sent_at is not None:
        body["sentAt"] = sent_at
    return translate_messages(parse_request(body, None), None, now=NOW, write_key="k")


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


class TestAuthorization:
    @pytest.mark.parametrize("credential", ["key:", "key", "key:ignored"])
    def test_basic_user_name_is_the_write_key(self, credential: str) -> None:
        """ "taking a Segment source Write Key ... as the username, adding a colon"; without
        a colon "might work due to backward compatibility"."""
        found = credential_from_authorization(basic(credential))
        assert found is not None
        assert found.basic_key == "key"

    def test_bearer_is_kept_as_a_token(self) -> None:
        found = credential_from_authorization("Bearer abc")
        assert found is not None
        assert (found.basic_key, found.bearer) == (None, "abc")

    @pytest.mark.parametrize("header", ["Digest x", "Basic !!!", basic(":pw")])
    def test_unreadable_headers_are_refused(self, header: str) -> None:
        with pytest.raises(ValueError, match=r"\S"):
            credential_from_authorization(header)

    def test_no_header_is_none(self) -> None:
        assert credential_from_authorization(None) is None


class TestTimestamps:
    @pytest.mark.parametrize(
        ("text", "moment"),
        [
            ("2012-12-02T00:30:08.276Z", datetime(2012, 12, 2, 0, 30, 8, 276000, UTC)),
            ("2015-2-02T00:30:08.276Z", datetime(2015, 2, 2, 0, 30, 8, 276000, UTC)),
            ("2016-01-01T10:00:00+02:00", datetime(2016, 1, 1, 8, 0, tzinfo=UTC)),
            ("2016-01-01 10:00:00", datetime(2016, 1, 1, 10, 0, tzinfo=UTC)),
        ],
    )
    def test_iso_8601_in_utc(self, text: str, moment: datetime) -> None:
        assert parse_timestamp(text) == moment

    @pytest.mark.parametrize("value", ["soon", 1700000000, "2015-13-01T00:00:00Z"])
    def test_other_values_are_refused(self, value: Any) -> None:
        with pytest.raises(ValueError, match=r"\S"):
            parse_timestamp(value)

    def test_skew_correction_adds_received_minus_sent(self) -> None:
        """ "receivedAt - (sentAt - originalTimestamp)"."""
        sent = NOW + timedelta(hours=3)  # the client's clock is 3 h fast
        client = sent - timedelta(seconds=10)
        t = translate(
            {"type": "track", "userId": "u", "event": "E", "timestamp": client.isoformat()},
            sent_at=sent.isoformat(),
        )
        [activity] = t.records
        assert isinstance(activity, NewActivity)
        assert activity.occurred_at == NOW - timedelta(seconds=10)

    def test_a_correction_past_year_9999_drops_the_message(self) -> None:
        t = translate(
            {"type": "track", "userId": "u", "event": "E", "timestamp": "9999-12-31T23:00:00Z"},
            sent_at="2000-01-01T00:00:00Z",
        )
        assert t.records == []
        assert [(e.index, e.field) for e in t.errors] == [(0, "timestamp")]


class TestRecords:
    def test_each_call_type_becomes_its_record(self) -> None:
        t = translate(
            {"type": "identify", "userId": "u", "traits": {"email": "A@B.io", "phone": 5550100}},
            {"type": "group", "anonymousId": "a", "groupId": 7, "traits": {"n": 1}},
            {"type": "alias", "previousId": "a", "userId": "u"},
            {"type": "screen", "userId": "u", "name": "Home"},
        )
        identify, group, alias, screen = t.records
        assert isinstance(identify, ProfileUpdate)
        assert set(identify.identifiers) == {
            Identifier("identity", "u"),
            Identifier("email", "a@b.io"),
            Identifier("mobile", "5550100"),
        }
        assert isinstance(group, GroupMembership)
        assert (group.group_id, group.traits) == ("7", {"n": 1})
        assert isinstance(alias, ProfileUpdate)
        assert alias.identifiers == (Identifier("identity", "u"), Identifier("anonid", "a"))
        assert t.aliases == [(2, "a")]
        assert isinstance(screen, NewActivity)
        assert (screen.name, screen.properties) == ("Screen Viewed", {"name": "Home"})

    def test_batch_context_is_merged_under_the_message_context(self) -> None:
        """ "it will be merged with any context inside each of the items in the batch"."""
        body = {
            "batch": [{"type": "track", "userId": "u", "event": "E", "context": {"ip": "1"}}],
            "context": {"ip": "0", "locale": "fr"},
        }
        t = translate_messages(parse_request(body, None), None, now=NOW, write_key=None)
        [activity] = t.records
        assert isinstance(activity, NewActivity)
        assert activity.context is not None
        assert activity.context["context"] == {"ip": "1", "locale": "fr"}

    def test_another_sources_write_key_drops_the_message(self) -> None:
        t = translate({"type": "track", "userId": "u", "event": "E", "writeKey": "other"})
        assert t.records == []
        assert [e.field for e in t.errors] == ["writeKey"]
