"""Each vendor destination format delivers into a real eventyard receiver, on both databases.

The requests a format builds are sent with httpx to a running server in that
vendor's dialect (as the delivery machinery would send them), and the test
reads back, through the read API, what the receiver stored: the contact
found by the identifiers sent, the activity's name, time and properties. The
receiver's answers to records it refuses must name exactly those activities
when the format reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventyard.core.delivery import OutgoingActivity
from eventyard.core.model import NewAccount
from eventyard.dialects.amplitude.destination import DESTINATION as AMPLITUDE
from eventyard.dialects.clevertap.destination import DESTINATION as CLEVERTAP
from eventyard.dialects.cordial.destination import DESTINATION as CORDIAL
from eventyard.dialects.customerio.destination import DESTINATION as CUSTOMERIO
from eventyard.dialects.mixpanel.destination import DESTINATION as MIXPANEL
from eventyard.dialects.netcore.destination import DESTINATION as NETCORE
from eventyard.dialects.ortto.destination import DESTINATION as ORTTO
from eventyard.dialects.posthog.destination import DESTINATION as POSTHOG
from eventyard.dialects.segment.destination import DESTINATION as SEGMENT
from tests.api.test_ortto import define_fields
from tests.outgoing import base_url, deliver, outgoing, send
from tests.support import activities_of, find_contact


def stored_under(
    http: httpx.Client, account: NewAccount, activity: OutgoingActivity
) -> list[dict[str, Any]]:
    """The receiver's activities of the contact named by ``activity``'s first identifier."""
    first = activity.identifiers[0]
    return activities_of(http, account, f"{first.kind}:{first.value}")


class TestSegment:
    def test_track_calls_are_stored_under_the_user_and_anonymous_ids(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        known = outgoing(
            ("identity", "user-7"),
            ("anonid", "anon-7"),
            name="Order Completed",
            properties={"total": 42.5, "items": [{"sku": "a-1", "qty": 2}]},
            source="web",
        )
        anonymous = outgoing(("anonid", "anon-9"), name="Page Viewed", properties={"path": "/"})
        credentials = {"write_key": account.segment_write_key}

        refused = deliver(http, SEGMENT, credentials, [known, anonymous])

        assert refused == {}
        contact = find_contact(http, account, "identity:user-7")
        assert contact is not None
        assert {(i["kind"], i["value"]) for i in contact["identifiers"]} == {
            ("identity", "user-7"),
            ("anonid", "anon-7"),
        }
        (stored,) = activities_of(http, account, "identity:user-7")
        assert stored["name"] == "Order Completed"
        assert stored["occurred_at"] == "2026-03-14T09:26:53Z"
        assert stored["properties"] == {"total": 42.5, "items": [{"sku": "a-1", "qty": 2}]}
        assert stored["source"] == "web"
        assert stored["dialect"] == "segment"
        assert stored["context"]["messageId"] == f"eventyard-{known.id}"
        (page,) = activities_of(http, account, "anonid:anon-9")
        assert (page["name"], page["properties"]) == ("Page Viewed", {"path": "/"})

    def test_a_redelivery_is_stored_once(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Segment deduplicates events using the messageId field": each call's messageId
        comes from its activity id, so delivering the batch twice stores it once."""
        activity = outgoing(("identity", "user-twice"))
        credentials = {"write_key": account.segment_write_key}
        deliver(http, SEGMENT, credentials, [activity])
        deliver(http, SEGMENT, credentials, [activity])
        assert len(activities_of(http, account, "identity:user-twice")) == 1

    def test_a_call_over_32_kb_is_refused_alone_and_its_neighbours_are_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "a limit of 32KB per event in the batch": the format sends such a call alone; the
        receiver's 400 names it and only it."""
        before = outgoing(("identity", "u-before"))
        big = outgoing(("identity", "u-big"), properties={"blob": "x" * 33_000})
        after = outgoing(("identity", "u-after"))
        credentials = {"write_key": account.segment_write_key}

        refused = deliver(http, SEGMENT, credentials, [before, big, after])

        assert list(refused) == [big.id]
        assert "32KB" in refused[big.id]
        assert len(activities_of(http, account, "identity:u-before")) == 1
        assert len(activities_of(http, account, "identity:u-after")) == 1
        assert activities_of(http, account, "identity:u-big") == []


class TestCleverTap:
    def credentials(self, account: NewAccount) -> dict[str, str]:
        return {"account_id": account.clevertap_account_id, "passcode": account.clevertap_passcode}

    def test_event_records_are_stored_under_their_identity(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        charged = outgoing(
            ("identity", "ct-user"),
            ("FBID", "34322423"),
            name="Charged",
            properties={"Amount": 300, "Items": [{"Category": "books", "Quantity": 4}]},
        )
        by_email = outgoing(("email", "jane@example.com"), name="Product viewed", properties={})

        refused = deliver(http, CLEVERTAP, self.credentials(account), [charged, by_email])

        assert refused == {}
        contact = find_contact(http, account, "identity:ct-user")
        assert contact is not None
        assert {(i["kind"], i["value"]) for i in contact["identifiers"]} == {
            ("identity", "ct-user"),
            ("FBID", "34322423"),
        }
        (stored,) = activities_of(http, account, "identity:ct-user")
        assert stored["name"] == "Charged"
        assert stored["occurred_at"] == "2026-03-14T09:26:53Z"
        assert stored["properties"] == {
            "Amount": 300,
            "Items": [{"Category": "books", "Quantity": 4}],
        }
        assert stored["dialect"] == "clevertap"
        (viewed,) = activities_of(http, account, "identity:jane@example.com")
        assert viewed["name"] == "Product viewed"

    def test_the_records_the_receiver_refuses_are_named_and_the_others_stored(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A reserved system event (1012) and a value over 512 bytes (1031) are unprocessed;
        the answer names exactly those two activities."""
        good = [outgoing(("identity", f"ct-ok-{i}")) for i in range(3)]
        reserved = outgoing(("identity", "ct-bad-1"), name="App Launched")
        too_long = outgoing(("identity", "ct-bad-2"), properties={"v": "x" * 513})

        refused = deliver(
            http,
            CLEVERTAP,
            self.credentials(account),
            [good[0], reserved, good[1], too_long, good[2]],
        )

        assert set(refused) == {reserved.id, too_long.id}
        assert refused[reserved.id].startswith("1012: ")
        assert refused[too_long.id].startswith("1031: ")
        for activity in good:
            assert (
                len(activities_of(http, account, f"identity:{activity.identifiers[0].value}")) == 1
            )


class TestNetcore:
    def test_events_are_stored_with_their_identifiers_asset_and_source(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        activity = outgoing(
            ("identity", "nc-user"),
            ("email", "nc@example.com"),
            ("mobile", "+919800000001"),
            name="Add To Cart",
            properties={"currency": "INR", "product": [{"price": 250.3, "quantity": 1}]},
            source="app",
            asset_id="55a6d1d3ac4d5253ca4afd9636442434",
        )

        refused = deliver(http, NETCORE, {"api_key": account.netcore_api_key}, [activity])

        assert refused == {}
        contact = find_contact(http, account, "email:nc@example.com")
        assert contact is not None
        assert {(i["kind"], i["value"]) for i in contact["identifiers"]} == {
            ("identity", "nc-user"),
            ("email", "nc@example.com"),
            ("mobile", "+919800000001"),
        }
        (stored,) = activities_of(http, account, "identity:nc-user")
        assert stored["name"] == "Add To Cart"
        assert stored["occurred_at"] == "2026-03-14T09:26:53Z"
        assert stored["properties"] == {
            "currency": "INR",
            "product": [{"price": 250.3, "quantity": 1}],
        }
        assert (stored["source"], stored["asset_id"]) == ("app", "55a6d1d3ac4d5253ca4afd9636442434")

    def test_an_invalid_event_is_named_and_the_others_are_stored_when_resent(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Netcore takes a batch whole or not at all: the 400 names the invalid event (an
        e-mail no receiver takes as an address); resent without it, the others are stored."""
        good = [outgoing(("identity", f"nc-ok-{i}")) for i in range(3)]
        bad = outgoing(("email", "not-an-address"))
        credentials = {"api_key": account.netcore_api_key}
        batch = [good[0], bad, good[1], good[2]]
        (request,) = NETCORE.build_requests(base_url(http), credentials, batch, "d")

        _, answer = send(http, request)
        reading = NETCORE.read_answer(request, answer)

        assert answer.status == 400
        assert list(reading.refused) == [bad.id]
        assert "email" in reading.refused[bad.id]
        assert reading.resend_others is True
        assert activities_of(http, account, "identity:nc-ok-0") == []
        assert deliver(http, NETCORE, credentials, [a for a in batch if a is not bad]) == {}
        for activity in good:
            assert (
                len(activities_of(http, account, f"identity:{activity.identifiers[0].value}")) == 1
            )


class TestOrtto:
    def test_activities_are_stored_typed_and_undefined_ones_are_refused_with_the_reason(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """ "Before creating activities, ensure the activity definition exists": an activity
        the receiver has no definition for comes back with its error and is named; the
        others are stored under the contact their e-mail and identity name."""
        define_fields(
            http,
            account,
            "act:cm:order-completed",
            {"str:cm:product-name": "str", "int:cm:qty": "int", "int::v": "int"},
        )
        # Within the 90 days the receiver stores at once ("Activities up to 90 days old").
        when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        order = outgoing(
            ("email", "or@example.com"),
            ("identity", "or-user"),
            name="Order Completed",
            properties={"Product Name": "Plan", "qty": 2},
            value_milli=5000,
            occurred_at=when,
        )
        undefined = outgoing(("email", "or2@example.com"), name="Never Defined", occurred_at=when)
        credentials = {"api_key": account.ortto_api_key}

        refused = deliver(http, ORTTO, credentials, [order, undefined])

        assert list(refused) == [undefined.id]
        assert "act:cm:never-defined" in refused[undefined.id]
        assert "no activity definition" in refused[undefined.id]
        contact = find_contact(http, account, "email:or@example.com")
        assert contact is not None
        assert {(i["kind"], i["value"]) for i in contact["identifiers"]} == {
            ("email", "or@example.com"),
            ("identity", "or-user"),
        }
        (stored,) = activities_of(http, account, "identity:or-user")
        assert stored["name"] == "act:cm:order-completed"
        assert stored["occurred_at"] == when.isoformat().replace("+00:00", "Z")
        assert stored["properties"] == {
            "str:cm:product-name": "Plan",
            "int:cm:qty": 2,
            "int::v": 5000,
        }
        assert stored["conversion_value"] == {"raw": 5000, "decimal": "5.00"}
        assert activities_of(http, account, "email:or2@example.com") == []

    def test_a_redelivery_is_stored_once(self, http: httpx.Client, account: NewAccount) -> None:
        """ "If same key + created pair sent multiple times, Ortto merges requests": the key
        is the activity id."""
        define_fields(http, account, "act:cm:signup", {})
        activity = outgoing(
            ("email", "twice@example.com"),
            name="act:cm:signup",
            properties={},
            occurred_at=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5),
        )
        credentials = {"api_key": account.ortto_api_key}
        assert deliver(http, ORTTO, credentials, [activity]) == {}
        assert deliver(http, ORTTO, credentials, [activity]) == {}
        assert len(activities_of(http, account, "email:twice@example.com")) == 1


class TestCordial:
    def test_contact_activities_are_stored_under_the_email_and_custid(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        activity = outgoing(
            ("email", "msmith@example.com"),
            ("custID", "ID1234"),
            name="browse",
            properties={"category": "Shirts", "price": 9.99, "shoes.color": "khaki"},
        )

        refused = deliver(http, CORDIAL, {"api_key": account.cordial_api_key}, [activity])

        assert refused == {}
        contact = find_contact(http, account, "custID:ID1234")
        assert contact is not None
        assert {(i["kind"], i["value"]) for i in contact["identifiers"]} == {
            ("email", "msmith@example.com"),
            ("custID", "ID1234"),
        }
        (stored,) = activities_of(http, account, "email:msmith@example.com")
        assert (stored["name"], stored["dialect"]) == ("browse", "cordial")
        assert stored["occurred_at"] == "2026-03-14T09:26:53Z"
        assert stored["properties"] == {"category": "Shirts", "price": 9.99, "shoes_color": "khaki"}

    def test_refused_activities_are_named_with_the_error_key(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A reserved action ("Reserved actions cannot be added via the POST method") and an
        action over 40 characters are refused; their neighbours are stored."""
        good = outgoing(("email", "ok@example.com"), name="cart")
        reserved = outgoing(("email", "r@example.com"), name="open")
        too_long = outgoing(("email", "l@example.com"), name="x" * 41)

        refused = deliver(
            http, CORDIAL, {"api_key": account.cordial_api_key}, [reserved, good, too_long]
        )

        assert set(refused) == {reserved.id, too_long.id}
        assert refused[reserved.id].startswith("CONTACT_ACTIVITIES_INCORRECT_ACTION_NAME: ")
        assert refused[too_long.id].startswith("CONTACT_ACTIVITIES_VALIDATION_ERROR: ")
        assert len(activities_of(http, account, "email:ok@example.com")) == 1


def identifier_set(contact: dict[str, Any] | None) -> set[tuple[str, str]]:
    assert contact is not None
    return {(i["kind"], i["value"]) for i in contact["identifiers"]}


class TestMixpanel:
    def test_imported_events_are_stored_and_a_refused_one_is_named(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """Strict ``/import``: "some data points in the request failed validation" names the
        event by index ("a time before 1971-01-01" is refused); the others are imported."""
        known = outgoing(
            ("identity", "mp-user"), ("anonid", "mp-device"), properties={"plan": "pro"}
        )
        device = outgoing(("anonid", "mp-device-2"), name="Page Viewed", properties={})
        too_old = outgoing(("identity", "mp-old"), occurred_at=datetime(1970, 6, 1, tzinfo=UTC))
        credentials = {"api_secret": account.mixpanel_api_secret}

        refused = deliver(http, MIXPANEL, credentials, [known, too_old, device])

        assert list(refused) == [too_old.id]
        assert "time" in refused[too_old.id]
        assert identifier_set(find_contact(http, account, "identity:mp-user")) == {
            ("identity", "mp-user"),
            ("anonid", "mp-device"),
        }
        (stored,) = activities_of(http, account, "identity:mp-user")
        assert (stored["name"], stored["occurred_at"]) == (
            "Order Completed",
            "2026-03-14T09:26:53Z",
        )
        assert stored["properties"]["plan"] == "pro"
        assert stored["source"] == "api"
        assert len(activities_of(http, account, "anonid:mp-device-2")) == 1
        assert activities_of(http, account, "identity:mp-old") == []

    def test_a_redelivery_is_one_event(self, http: httpx.Client, account: NewAccount) -> None:
        """ "Dedup key: (event, distinct_id, time, $insert_id)": $insert_id is the activity id."""
        activity = outgoing(("identity", "mp-twice"))
        credentials = {"api_secret": account.mixpanel_api_secret}
        assert deliver(http, MIXPANEL, credentials, [activity]) == {}
        assert deliver(http, MIXPANEL, credentials, [activity]) == {}
        assert len(activities_of(http, account, "identity:mp-twice")) == 1


class TestAmplitude:
    def test_events_are_stored_and_an_invalid_one_is_named_and_the_rest_resent(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """A 400 "Invalid field values on some events" stores none of the request: the event
        it lists is refused, the others are stored when sent again without it."""
        short = outgoing(
            ("identity", "u1"), ("anonid", "d1"), value_milli=5000, properties={"a": 1}
        )
        bad = outgoing(("identity", "amp-bad"), name="x" * 1025)
        other = outgoing(("anonid", "amp-device"), properties={})
        credentials = {"api_key": account.amplitude_api_key}
        (request,) = AMPLITUDE.build_requests(base_url(http), credentials, [short, bad, other], "d")

        _, answer = send(http, request)
        reading = AMPLITUDE.read_answer(request, answer)

        assert answer.status == 400
        assert list(reading.refused) == [bad.id]
        assert "event_type" in reading.refused[bad.id]
        assert reading.resend_others is True
        assert deliver(http, AMPLITUDE, credentials, [short, other]) == {}
        assert identifier_set(find_contact(http, account, "identity:u1")) == {
            ("identity", "u1"),
            ("anonid", "d1"),
        }
        (stored,) = activities_of(http, account, "identity:u1")
        assert (stored["name"], stored["occurred_at"]) == (
            "Order Completed",
            "2026-03-14T09:26:53Z",
        )
        assert stored["properties"] == {"a": 1}
        assert stored["conversion_value"] == {"raw": 5000, "decimal": "5.00"}
        assert len(activities_of(http, account, "anonid:amp-device")) == 1


class TestPostHog:
    def test_events_are_stored_once_and_a_dropped_event_alone_is_refused(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        user = outgoing(("identity", "ph-user"), properties={"plan": "pro"}, source="web")
        visitor = outgoing(("anonid", "ph-visitor"), name="$pageview", properties={})
        credentials = {"api_key": account.posthog_api_key}

        assert deliver(http, POSTHOG, credentials, [user, visitor]) == {}
        assert deliver(http, POSTHOG, credentials, [user, visitor]) == {}

        (stored,) = activities_of(http, account, "identity:ph-user")
        assert (stored["name"], stored["occurred_at"]) == (
            "Order Completed",
            "2026-03-14T09:26:53Z",
        )
        assert stored["properties"]["plan"] == "pro"
        assert stored["source"] == "web"
        assert identifier_set(find_contact(http, account, "anonid:ph-visitor")) == {
            ("anonid", "ph-visitor")
        }
        # "events with no name ... are dropped but still get 200": one over 255 characters too.
        bad = outgoing(("identity", "ph-bad"), name="x" * 256)
        assert list(deliver(http, POSTHOG, credentials, [bad])) == [bad.id]


class TestCustomerIo:
    def test_event_operations_are_stored_and_refused_ones_named_by_batch_index(
        self, http: httpx.Client, account: NewAccount
    ) -> None:
        """207 names the refused operations by ``batch_index`` (an event name over 100 bytes);
        the others are stored."""
        by_id = outgoing(
            ("identity", "cio-user"), ("email", "cio@example.com"), properties={"a": 1}
        )
        by_email = outgoing(("email", "cio2@example.com"), properties={})
        anonymous = outgoing(("anonid", "cio-anon"), properties={})
        bad = outgoing(("identity", "cio-bad"), name="x" * 101)
        credentials = {
            "site_id": account.customerio_site_id,
            "api_key": account.customerio_api_key,
        }

        refused = deliver(http, CUSTOMERIO, credentials, [by_id, bad, by_email, anonymous])

        assert list(refused) == [bad.id]
        assert "name" in refused[bad.id]
        (stored,) = activities_of(http, account, "identity:cio-user")
        assert (stored["name"], stored["occurred_at"]) == (
            "Order Completed",
            "2026-03-14T09:26:53Z",
        )
        assert stored["properties"] == {"a": 1}
        assert len(activities_of(http, account, "email:cio2@example.com")) == 1
        assert len(activities_of(http, account, "anonid:cio-anon")) == 1
        assert activities_of(http, account, "identity:cio-bad") == []
        assert deliver(http, CUSTOMERIO, credentials, [by_id]) == {}
        assert len(activities_of(http, account, "identity:cio-user")) == 1
