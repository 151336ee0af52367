"""Values JSON allows but no backend can keep as sent get a 400 naming them.

DESIGN.md: "Bad input gets the dialect's own error shape with a precise message
naming the record and field". PostgreSQL refuses U+0000 in text and JSONB,
and integers beyond 64 bits would silently become floats: both are refused
the same way on SQLite and PostgreSQL, and nothing of the request is stored.
"""

from __future__ import annotations

import httpx
import pytest

from eventyard.core.model import NewAccount
from tests.support import netcore_event

UPLOAD = "/v1/activity/upload"


def upload(http: httpx.Client, account: NewAccount, body: object) -> httpx.Response:
    return http.post(UPLOAD, json=body, headers={"api-key": account.netcore_api_key})


def stored_contact(http: httpx.Client, account: NewAccount, identity: str) -> list[object]:
    r = http.get(
        "/api/v1/contacts",
        params={"identifier": f"identity:{identity}"},
        headers={"Authorization": f"Bearer {account.admin_token}"},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["contacts"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"activity_params": {"note": "a\u0000b"}}, "activity_params.note"),
        ({"activity_params": {"k\u0000": 1}}, "activity_params.k\u0000"),
        ({"activity_params": {"items": [{"sku": "\u0000"}]}}, "activity_params.items.0.sku"),
        ({"identity": "x\u0000y"}, "identity"),
        ({"activity_name": "x\u0000y"}, "activity_name"),
        ({"asset_id": "x\u0000y"}, "asset_id"),
    ],
)
def test_nul_character_is_refused_with_its_path(
    http: httpx.Client, account: NewAccount, overrides: dict[str, object], field: str
) -> None:
    good = netcore_event(identity="nul-good")
    r = upload(http, account, [good, netcore_event(**overrides)])
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert {"index": 1, "field": field} == {k: errors[0][k] for k in ("index", "field")}
    assert "\\u0000" in errors[0]["reason"]
    assert stored_contact(http, account, "nul-good") == []


def test_integer_beyond_64_bits_is_refused_not_rounded(
    http: httpx.Client, account: NewAccount
) -> None:
    raw = (
        b'{"asset_id":"a","activity_name":"x","timestamp":"2021-12-29T12:06:28Z",'
        b'"identity":"big","activity_source":"web",'
        b'"activity_params":{"order_id":123456789012345678901234567890,"ok":18446744073709551615}}'
    )
    r = http.post(UPLOAD, content=raw, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 400, r.text
    # "a bare object counts as one": it is event 0.
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [
        (0, "activity_params.order_id")
    ]
    assert stored_contact(http, account, "big") == []


def test_largest_64_bit_integers_are_kept_exactly(http: httpx.Client, account: NewAccount) -> None:
    raw = (
        b'[{"asset_id":"a","activity_name":"x","timestamp":"2021-12-29T12:06:28Z",'
        b'"identity":"max64","activity_source":"web",'
        b'"activity_params":{"u":18446744073709551615,"s":-9223372036854775808,'
        b'"digits":"123456789012345678901234567890"}}]'
    )
    r = http.post(UPLOAD, content=raw, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 200, r.text
    (contact,) = stored_contact(http, account, "max64")
    assert isinstance(contact, dict)
    page = http.get(
        f"/api/v1/contacts/{contact['id']}/activities",
        headers={"Authorization": f"Bearer {account.admin_token}"},
    )
    props = page.json()["activities"][0]["properties"]
    assert props == {
        "u": 18446744073709551615,
        "s": -9223372036854775808,
        "digits": "123456789012345678901234567890",
    }


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+05:30", "9999-12-31T23:59:59-05:00"])
def test_timestamp_outside_the_representable_range_is_a_400(
    http: httpx.Client, account: NewAccount, ts: str
) -> None:
    r = upload(http, account, [netcore_event(timestamp=ts)])
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "timestamp"


def test_lower_case_z_means_utc(http: httpx.Client, account: NewAccount) -> None:
    """RFC 3339 allows "z"; the spec's "2021-12-29T12:06:28Z" form is UTC either way."""
    r = upload(http, account, [netcore_event(identity="lower-z", timestamp="2021-12-29T12:06:28z")])
    assert r.status_code == 200, r.text
    (contact,) = stored_contact(http, account, "lower-z")
    assert isinstance(contact, dict)
    page = http.get(
        f"/api/v1/contacts/{contact['id']}/activities",
        headers={"Authorization": f"Bearer {account.admin_token}"},
    )
    assert page.json()["activities"][0]["occurred_at"] == "2021-12-29T12:06:28Z"


def test_contact_id_with_nul_is_a_404_not_a_500(http: httpx.Client, account: NewAccount) -> None:
    r = http.get(
        "/api/v1/contacts/%00abc", headers={"Authorization": f"Bearer {account.admin_token}"}
    )
    assert r.status_code == 404, r.text
    r = http.get(
        "/api/v1/contacts",
        params={"identifier": "identity:a\u0000"},
        headers={"Authorization": f"Bearer {account.admin_token}"},
    )
    assert r.status_code == 400, r.text


def test_error_index_counts_events_after_flattening(
    http: httpx.Client, account: NewAccount
) -> None:
    """The spec's own ``[[{…}]]`` form: indexes count events, not the outer groups."""
    body = [[netcore_event(identity="flat-1")], [netcore_event(activity_params={"x": "\u0000"})]]
    r = upload(http, account, body)
    assert r.status_code == 400, r.text
    assert [(e["index"], e["field"]) for e in r.json()["errors"]] == [(1, "activity_params.x")]
    assert stored_contact(http, account, "flat-1") == []


def test_not_a_number_is_not_json(http: httpx.Client, account: NewAccount) -> None:
    """NaN is not JSON, also on the path that keeps long integers exact."""
    raw = b'[{"activity_params": {"a": NaN, "b": 123456789012345678901234567890}}]'
    r = http.post(UPLOAD, content=raw, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "body"


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [300, 1000])
def test_too_deep_nesting_is_a_400_naming_the_event(
    http: httpx.Client, account: NewAccount, depth: int
) -> None:
    """orjson reads 1024 levels but writes only 254: deeper is refused before storing."""
    raw = (
        '[{"asset_id":"a","activity_name":"x","timestamp":"2021-12-29T12:06:28Z",'
        '"identity":"deep","activity_source":"web","activity_params":{"n":' + nested(depth) + "}}]"
    ).encode()
    r = http.post(UPLOAD, content=raw, headers={"api-key": account.netcore_api_key})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["index"] == 0
    assert "nested" in r.json()["errors"][0]["reason"]


def test_deep_record_fails_alone_in_a_clevertap_batch(
    http: httpx.Client, account: NewAccount
) -> None:
    """CleverTap reports per record: the deep one is unprocessed, its sibling stored."""
    raw = (
        '{"d":[{"type":"event","identity":"deep-ct","evtName":"E","evtData":{"n":'
        + nested(1000)
        + '}},{"type":"event","identity":"ok-ct","evtName":"E","evtData":{}}]}'
    ).encode()
    r = http.post(
        "/1/upload",
        content=raw,
        headers={
            "X-CleverTap-Account-Id": account.clevertap_account_id,
            "X-CleverTap-Passcode": account.clevertap_passcode,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["processed"], len(body["unprocessed"])) == ("partial", 1, 1)
    assert "nested" in body["unprocessed"][0]["error"]
    assert stored_contact(http, account, "ok-ct")
    assert stored_contact(http, account, "deep-ct") == []


def test_slow_decoder_path_refuses_what_the_fast_one_refuses(
    http: httpx.Client, account: NewAccount
) -> None:
    """A 20-digit string switches decoding to the exact-integer path; its rules stay the same."""
    for extra in ('"amount": 1e400', '"note": "\\ud800"'):
        raw = (
            '[{"asset_id":"a","activity_name":"x","timestamp":"2021-12-29T12:06:28Z",'
            '"identity":"slow","activity_source":"web",'
            '"activity_params":{"order":"12345678901234567890",' + extra + "}}]"
        ).encode()
        r = http.post(UPLOAD, content=raw, headers={"api-key": account.netcore_api_key})
        assert r.status_code == 400, (extra, r.text)
    assert stored_contact(http, account, "slow") == []
