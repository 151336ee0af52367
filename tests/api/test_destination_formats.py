"""Each vendor destination format delivers into a real eventyard receiver, on both databases.

The requests a format builds are sent with httpx to a running server in that
vendor's dialect (as the delivery machinery would send them), and the test
reads back, through the read API, what the receiver stored: the contact
found by the identifiers sent, the activity's name, time and properties. The
receiver's answers to records it refuses must name exactly those activities
when the format reads them.
"""

from __future__ import annotations

import httpx

from eventyard.core.model import NewAccount
from eventyard.dialects.clevertap.destination import DESTINATION as CLEVERTAP
from eventyard.dialects.segment.destination import DESTINATION as SEGMENT
from tests.outgoing import deliver, outgoing
from tests.support import activities_of, find_contact


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
