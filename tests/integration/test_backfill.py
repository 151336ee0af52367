"""Activity backfills stored end to end from real files, on both databases.

``services/backfill.py``: a file of historical activities is read a chunk at
a time, each chunk's contacts resolved with ingest's rules (creating the
ones nobody has), and its activities stored with ``source`` "import", the
dialect the operator names and ``journey_eligible`` false; an activity with
an ``id`` is stored once however often the file is loaded, and
``rows_done`` says after which line a stopped backfill goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from eventyard.core.activity_import import BackfillTally
from eventyard.core.contact_import import ImportTally
from eventyard.core.identifiers import Identifier, normalize_identifier
from eventyard.core.model import Account, NewAccount, NewActivity
from eventyard.services.backfill import BackfillFormat, import_activities
from eventyard.services.contacts import find_contacts, list_activities
from eventyard.services.imports import import_rows
from eventyard.settings import Settings
from eventyard.storage.database import Database
from eventyard.storage.tables import activities, contact_identifiers, contacts, identity_events
from tests.integration import helpers

#: When the backfill runs (its activities' ``received_at``).
RUN_AT = datetime(2026, 3, 5, 9, 30, 15, tzinfo=UTC)


class Stop(Exception):
    """Stands for whatever ends a backfill part way (a kill, a lost connection)."""


def backfill(
    store: Database,
    account: Account,
    path: Path,
    *,
    dialect: str = "netcore",
    chunk_rows: int = 10_000,
    after_row: int = 0,
    file_format: BackfillFormat | None = None,
    on_chunk: Callable[[BackfillTally, Any], None] | None = None,
    tally: BackfillTally | None = None,
) -> BackfillTally:
    """Load ``path`` into ``account`` as ``eventyard activities import`` does."""
    tally = tally if tally is not None else BackfillTally(rows_done=after_row)
    import_activities(
        store,
        Settings(import_chunk_rows=chunk_rows),
        account,
        str(path),
        dialect,
        tally,
        file_format=file_format or ("csv" if path.suffix == ".csv" else "ndjson"),
        local_files=True,
        clock=lambda: RUN_AT,
        on_chunk=on_chunk,
    )
    return tally


def write_ndjson(path: Path, *records: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def line(name: str, occurred_at: Any, *, id: Any = None, **fields: Any) -> dict[str, Any]:
    """One NDJSON line: its name, time, id when given, then ``fields`` as written."""
    record: dict[str, Any] = {"name": name, "occurred_at": occurred_at}
    if id is not None:
        record["id"] = id
    record.update(fields)
    return record


def counts(tally: BackfillTally) -> dict[str, int]:
    return {
        key: value
        for key, value in tally.to_json().items()
        if key in ("total", "stored", "repeated", "failed", "contacts_created", "rows_done")
    }


def stored(store: Database, account: Account) -> list[dict[str, Any]]:
    """The account's activities as stored, oldest first."""
    c = activities.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(activities)
            .where(c.account_id == account.id)
            .order_by(c.occurred_at, c.name, c.id)
        ).mappings()
        return [dict(row) for row in rows]


def owner(store: Database, account: Account, identifier: str) -> str:
    """The live contact owning ``KIND:VALUE``."""
    kind, _, value = identifier.partition(":")
    (contact,) = find_contacts(store, account, normalize_identifier(kind, value))
    return contact.id


def identifiers_by_contact(store: Database, account: Account) -> dict[str, frozenset[str]]:
    c = contact_identifiers.c
    found: dict[str, set[str]] = {}
    with store.engine.connect() as conn:
        for kind, value, contact_id in conn.execute(
            select(c.kind, c.value, c.contact_id).where(c.account_id == account.id)
        ):
            found.setdefault(contact_id, set()).add(f"{kind}:{value}")
    return {cid: frozenset(idents) for cid, idents in found.items()}


def timeline(store: Database, account: Account, contact_id: str) -> list[str]:
    """The names of a contact's activities as the read API lists them, newest first."""
    page = list_activities(store, account, contact_id, limit=1000, cursor=None)
    return [a.name for a in page.activities]


def ingest(store: Database, account: Account, *batch: tuple[str, dict[str, str]]) -> None:
    """Ingest activities (name, {kind: raw value}) as the dialects' endpoints do."""
    helpers.ingest(
        store,
        account,
        [
            NewActivity(
                identifiers=tuple(normalize_identifier(k, v) for k, v in idents.items()),
                name=name,
                occurred_at=helpers.NOW - timedelta(minutes=1),
                source="web",
                dialect="netcore",
                properties={},
            )
            for name, idents in batch
        ],
    )


class TestContacts:
    def test_activities_land_on_the_contacts_ingest_and_a_contact_import_made(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """A backfill "for existing or new contacts": existing ones are found by any
        of their identifiers, whatever the spelling."""
        acct = account.account
        ingest(store, acct, ("Visit", {"email": "ann@example.com", "mobile": "+919845012345"}))
        people = tmp_path / "people.csv"
        people.write_text("email,mobile,plan\nbob@example.com,,gold\n,+14155550100,silver\n")
        import_rows(
            store,
            Settings(),
            acct,
            str(people),
            None,
            ImportTally(),
            local_files=True,
            clock=lambda: RUN_AT,
        )
        ann = owner(store, acct, "email:ann@example.com")
        bob = owner(store, acct, "email:bob@example.com")
        cat = owner(store, acct, "mobile:+14155550100")
        file = write_ndjson(
            tmp_path / "history.ndjson",
            line("Order Placed", "2024-01-01T10:00:00Z", email="ANN@example.com"),
            line("Order Placed", "2024-01-02T10:00:00Z", mobile="+91 98450-12345"),
            line("Refund", "2024-01-03T10:00:00Z", identifiers={"email": "bob@example.com"}),
            line("Login", "2024-01-04T10:00:00Z", MOBILE="(415) 555-0100"),
            line("Login", "2024-01-05T10:00:00Z", mobile="+1 415 555 0100"),
        )
        tally = backfill(store, acct, file)

        assert counts(tally) == {
            "total": 5,
            "stored": 5,
            "repeated": 0,
            "failed": 0,
            # "(415) 555-0100" is 4155550100, not +14155550100: someone new.
            "contacts_created": 1,
            "rows_done": 5,
        }
        assert timeline(store, acct, ann) == ["Visit", "Order Placed", "Order Placed"]
        assert timeline(store, acct, bob) == ["Refund"]
        assert timeline(store, acct, cat) == ["Login"]
        new = owner(store, acct, "mobile:4155550100")
        assert timeline(store, acct, new) == ["Login"]
        assert helpers.count(store, contacts, acct) == 4

    def test_new_contacts_follow_ingests_rules(self, store: Database, tmp_path: Path) -> None:
        """New identifiers create contacts "with ingest's rules": an anonymous contact
        named with a new known identifier is converted, not duplicated; an anonymous
        and a known contact named together become one; rows naming one new person
        share one new contact. The same activities through ingest, in an account of
        their own, must leave the same contacts, audit and owners."""
        before = [
            ("Visit", {"anonid": "a1"}),
            ("Visit", {"anonid": "a2"}),
            ("Visit", {"email": "kim@example.com"}),
        ]
        batch = [
            ("Signup", {"anonid": "a1", "email": "lee@example.com"}),
            ("Order", {"email": "lee@example.com"}),
            ("Login", {"anonid": "a2", "email": "kim@example.com"}),
            ("Visit", {"anonid": "a3"}),
            ("Visit", {"anonid": "a3"}),
            ("Order", {"email": "max@example.com", "mobile": "+4915112345678"}),
            ("Call", {"mobile": "+49 151 12345678"}),
            ("Order", {"identity": "u-9", "email": "kim@example.com"}),
        ]
        through_ingest = helpers.new_account(store, "ingest")
        ingest(store, through_ingest, *before)
        ingest(store, through_ingest, *batch)

        through_backfill = helpers.new_account(store, "backfill")
        ingest(store, through_backfill, *before)
        file = write_ndjson(
            tmp_path / "batch.ndjson",
            *(line(name, "2024-06-01T00:00:00Z", identifiers=ids) for name, ids in batch),
        )
        tally = backfill(store, through_backfill, file)

        # a3, and max@ with his mobile: the contacts nobody had.
        assert (tally.stored, tally.contacts_created) == (8, 2)
        assert outcome(store, through_backfill) == outcome(store, through_ingest)
        lee = owner(store, through_backfill, "email:lee@example.com")
        assert owner(store, through_backfill, "anonid:a1") == lee

    def test_one_person_spanning_chunks_is_one_contact(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """Chunks of EVENTYARD_IMPORT_CHUNK_ROWS rows, each its own transaction: a
        person first met in one chunk is found again in the next ones."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "spanning.ndjson",
            line("Visit", 1_700_000_000, identifiers={"anonid": "v-1"}),
            line("Visit", 1_700_000_001, identifiers={"anonid": "v-1"}),
            line("Visit", 1_700_000_002, identifiers={"anonid": "v-1"}),
            line("Signup", 1_700_000_003, identifiers={"anonid": "v-1"}, email="v@example.com"),
            line("Order", 1_700_000_004, email="V@example.com"),
            line("Order", 1_700_000_005, email="w@example.com"),
            line("Order", 1_700_000_006, mobile="+447700900123", email="v@example.com"),
        )
        chunks: list[int] = []
        tally = backfill(
            store, acct, file, chunk_rows=2, on_chunk=lambda t, _: chunks.append(t.rows_done)
        )
        assert chunks == [2, 4, 6, 7]
        assert counts(tally) == {
            "total": 7,
            "stored": 7,
            "repeated": 0,
            "failed": 0,
            "contacts_created": 2,
            "rows_done": 7,
        }
        person = owner(store, acct, "anonid:v-1")
        assert owner(store, acct, "email:v@example.com") == person
        assert owner(store, acct, "mobile:+447700900123") == person
        assert timeline(store, acct, person) == ["Order", "Order", "Signup"] + ["Visit"] * 3
        assert identifiers_by_contact(store, acct)[person] == {
            "anonid:v-1",
            "email:v@example.com",
            "mobile:+447700900123",
        }
        assert helpers.count(store, contacts, acct) == 2


def outcome(store: Database, account: Account) -> dict[str, Any]:
    """What an account holds, contacts named by their identifiers (ids differ)."""
    idents = identifiers_by_contact(store, account)
    with store.engine.connect() as conn:
        people = conn.execute(
            select(contacts.c.id, contacts.c.status).where(contacts.c.account_id == account.id)
        ).all()
        audit = conn.execute(
            select(identity_events.c.kind).where(identity_events.c.account_id == account.id)
        ).scalars()
        owners = conn.execute(
            select(activities.c.name, activities.c.contact_id).where(
                activities.c.account_id == account.id
            )
        ).all()
    return {
        "live": sorted(
            (status, sorted(idents.get(cid, ()))) for cid, status in people if status != "merged"
        ),
        "contacts": len(people),
        "audit": sorted(audit),
        "owners": sorted((name, sorted(idents.get(cid, ()))) for name, cid in owners),
    }


class TestStoredActivity:
    def test_the_activity_as_stored(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """Source "import", the dialect named by --dialect, journey_eligible false
        ("history starts no journey"), occurred_at to the microsecond, received_at the
        time of the run, and the properties as written: nesting and key order."""
        acct = account.account
        properties = {
            "total": 1299.5,
            "currency": "EUR",
            "items": [{"sku": "B-2", "qty": 2, "tags": ["x", "y"]}, {"sku": "A-1", "qty": 1}],
            "address": {"zip": "10115", "city": "Berlin", "geo": {"lon": 13.4, "lat": 52.5}},
            "gift": False,
            "coupon": None,
            "note": "ünïcode ✓",
        }
        file = write_ndjson(
            tmp_path / "one.ndjson",
            line(
                "Order Placed",
                "2023-11-14T22:13:20.123456+01:00",
                id="ord-1",
                email="ann@example.com",
                properties=properties,
            ),
            line("Page Viewed", 1_700_000_000_789, email="ann@example.com"),
        )
        backfill(store, acct, file, dialect="cordial")

        order, page = stored(store, acct)
        assert order["name"] == "Order Placed"
        assert order["occurred_at"] == datetime(2023, 11, 14, 21, 13, 20, 123456, tzinfo=UTC)
        assert order["received_at"] == RUN_AT
        assert (order["source"], order["dialect"]) == ("import", "cordial")
        assert order["journey_eligible"] is False
        assert order["dedup_key"] == "import:ord-1"
        assert order["properties"] == properties
        assert list(order["properties"]) == list(properties)
        assert list(order["properties"]["address"]) == ["zip", "city", "geo"]
        assert list(order["properties"]["address"]["geo"]) == ["lon", "lat"]
        assert list(order["properties"]["items"][0]) == ["sku", "qty", "tags"]
        assert page["occurred_at"] == datetime(2023, 11, 14, 22, 13, 20, 789000, tzinfo=UTC)
        assert (page["dedup_key"], page["properties"]) == (None, {})
        assert order["contact_id"] == page["contact_id"]

        # And as the read API gives them, newest first.
        (contact,) = find_contacts(store, acct, Identifier("email", "ann@example.com"))
        listed = list_activities(store, acct, contact.id, limit=10, cursor=None).activities
        assert [(a.name, a.source, a.dialect, a.journey_eligible) for a in listed] == [
            ("Page Viewed", "import", "cordial", False),
            ("Order Placed", "import", "cordial", False),
        ]
        assert list(listed[1].properties) == list(properties)

    def test_each_activity_records_the_identifier_that_resolved_it(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """Issue 23: "every stored activity records which identifier resolved it", a
        backfill's too: the best-ranked primary kind it names (identity, email, mobile)."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "two.ndjson",
            line("Visit", 1_700_000_000_000, email="bo@example.com", anonid="c-1"),
            line("Buy", 1_700_000_001_000, identity="bo-1", email="bo@example.com"),
            line("Scroll", 1_700_000_002_000, anonid="c-1"),
        )
        backfill(store, acct, file)
        assert [
            (a["name"], a["resolved_kind"], a["resolved_value"]) for a in stored(store, acct)
        ] == [
            ("Visit", "email", "bo@example.com"),
            ("Buy", "identity", "bo-1"),
            ("Scroll", "anonid", "c-1"),
        ]

    def test_csv_rows_are_stored_as_ndjson_lines_are(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """CSV: "every other column is a property (text, empty cells left out)"."""
        acct = account.account
        file = tmp_path / "history.csv"
        file.write_text(
            "id,name,occurred_at,email,plan,city\n"
            "c-1,Upgrade,2024-02-29T23:59:59.999999,Ann@Example.com,gold,\n"
            "c-2,Upgrade,2024-03-01 00:00:00-08:00,bob@example.com,silver,Pune\n"
        )
        tally = backfill(store, acct, file, dialect="ortto")
        assert counts(tally) == {
            "total": 2,
            "stored": 2,
            "repeated": 0,
            "failed": 0,
            "contacts_created": 2,
            "rows_done": 3,
        }
        ann, bob = stored(store, acct)
        assert ann["occurred_at"] == datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
        assert ann["properties"] == {"plan": "gold"}
        assert ann["contact_id"] == owner(store, acct, "email:ann@example.com")
        assert bob["occurred_at"] == datetime(2024, 3, 1, 8, tzinfo=UTC)
        assert list(bob["properties"].items()) == [("plan", "silver"), ("city", "Pune")]
        assert {a["dialect"] for a in (ann, bob)} == {"ortto"}
        assert [a["dedup_key"] for a in (ann, bob)] == ["import:c-1", "import:c-2"]

    def test_the_hourly_ingest_counts_take_the_stored_activities(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """ "hourly ingest counts updated": per hour of the run, dialect and name;
        repeats left out are not counted again."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "counted.ndjson",
            line("Order", 0, id=1, email="a@example.com"),
            line("Order", 0, id=1, email="a@example.com"),
            line("Order", 60, email="a@example.com"),
            line("Visit", 60, email="a@example.com"),
        )
        backfill(store, acct, file, dialect="segment")
        backfill(store, acct, file, dialect="segment")
        hour = RUN_AT.replace(minute=0, second=0)
        with store.unit_of_work(write=False) as uow:
            hourly = uow.ingest_stats.hourly_counts(acct.id, hour)
        # The first run: 3 stored, the second: 2 (the order with id 1 is there).
        assert hourly == {(hour, "segment", "Order"): 3, (hour, "segment", "Visit"): 2}


class TestLoadedAgain:
    def test_activities_with_an_id_are_stored_once_and_the_others_again(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """ "an id makes a line stored once however often it is loaded"; "a second
        activity with the same id and time is stored once": a line without an id is
        a new activity each time, and an id at another time is another activity."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "again.ndjson",
            line("Order", "2024-01-01T00:00:00Z", id="o-1", email="a@example.com"),
            line("Order", "2024-01-01T00:00:00Z", id="o-1", email="a@example.com"),
            line("Order", "2024-01-02T00:00:00Z", id="o-1", email="a@example.com"),
            line("Order", "2024-01-03T00:00:00Z", id=7, email="b@example.com"),
            line("Visit", "2024-01-04T00:00:00Z", email="a@example.com"),
            line("Broken", "not a time", email="a@example.com"),
        )
        first = backfill(store, acct, file)
        assert counts(first) == {
            "total": 6,
            "stored": 4,
            "repeated": 1,
            "failed": 1,
            "contacts_created": 2,
            "rows_done": 6,
        }
        second = backfill(store, acct, file)
        assert counts(second) == {
            "total": 6,
            "stored": 1,
            "repeated": 4,
            "failed": 1,
            "contacts_created": 0,
            "rows_done": 6,
        }
        assert second.errors == [
            {"row": 6, "reason": "occurred_at 'not a time' is not an ISO 8601 date-time"}
        ]
        assert [(a["name"], a["dedup_key"]) for a in stored(store, acct)] == [
            ("Order", "import:o-1"),
            ("Order", "import:o-1"),
            ("Order", "import:7"),
            ("Visit", None),
            ("Visit", None),
        ]

    def test_of_lines_with_one_id_and_time_the_first_is_stored(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """Rows "that an earlier row of the chunk names are left out": the first line
        of an id wins, in the file's order, whatever it says."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "first.ndjson",
            *(
                line("Order", 0, id="o-1", email=f"p{n}@e.com", properties={"n": n})
                for n in range(50)
            ),
        )
        tally = backfill(store, acct, file)
        assert (tally.stored, tally.repeated) == (1, 49)
        (order,) = stored(store, acct)
        assert order["properties"] == {"n": 0}
        assert order["contact_id"] == owner(store, acct, "email:p0@e.com")

    def test_an_id_across_chunks_and_in_another_account(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """The id's repeat is found in the stored activities, not only in its chunk;
        another account's activities are its own."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "ids.ndjson",
            *(line("Order", 1_000 + n % 3, id=f"o{n % 3}", email="a@e.com") for n in range(7)),
        )
        tally = backfill(store, acct, file, chunk_rows=2)
        assert (tally.stored, tally.repeated, tally.rows_done) == (3, 4, 7)
        other = helpers.new_account(store, "other")
        assert backfill(store, other, file).stored == 3
        assert len(stored(store, acct)) == len(stored(store, other)) == 3

    def test_an_id_loaded_before_through_the_csv_form(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """The dedup key is "import:<id>" with occurred_at, whichever format held it."""
        acct = account.account
        ndjson = write_ndjson(
            tmp_path / "a.ndjson", line("Order", "2024-01-01T00:00:00Z", id=5, email="a@e.com")
        )
        csv = tmp_path / "a.csv"
        csv.write_text("id,name,occurred_at,email\n5,Order,2024-01-01T00:00:00,a@e.com\n")
        backfill(store, acct, ndjson)
        assert (backfill(store, acct, csv).repeated, len(stored(store, acct))) == (1, 1)


class TestGoingOn:
    def test_a_stopped_backfill_goes_on_after_rows_done_and_stores_exactly_the_rest(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """ "Each committed chunk moves BackfillTally.rows_done; a backfill that stops
        part way says where, and --after-row goes on from there." Lines without an id
        would be stored twice if a line were read again."""
        acct = account.account
        file = write_ndjson(
            tmp_path / "long.ndjson",
            *(line(f"Event {n:02}", 1_700_000_000 + n, email=f"p{n % 4}@e.com") for n in range(10)),
        )
        tally = BackfillTally()

        def stop_after_second_chunk(done: BackfillTally, _: Any) -> None:
            if done.rows_done == 6:
                raise Stop

        with pytest.raises(Stop):
            backfill(store, acct, file, chunk_rows=3, on_chunk=stop_after_second_chunk, tally=tally)
        assert counts(tally) == {
            "total": 6,
            "stored": 6,
            "repeated": 0,
            "failed": 0,
            "contacts_created": 4,
            "rows_done": 6,
        }
        assert [a["name"] for a in stored(store, acct)] == [f"Event {n:02}" for n in range(6)]

        rest = backfill(store, acct, file, chunk_rows=3, after_row=tally.rows_done)
        assert counts(rest) == {
            "total": 4,
            "stored": 4,
            "repeated": 0,
            "failed": 0,
            "contacts_created": 0,
            "rows_done": 10,
        }
        assert [a["name"] for a in stored(store, acct)] == [f"Event {n:02}" for n in range(10)]

    def test_after_row_counts_lines_with_the_blank_and_bad_ones(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        """--after-row N "skips the lines up to this one": blank and failed lines count
        as lines, and rows_done names the last line read, failed or not."""
        acct = account.account
        good = b'{"name": "L%d", "occurred_at": %d, "email": "a@e.com"}\n'
        (tmp_path / "mixed.ndjson").write_bytes(
            good % (1, 1) + b"\n" + b"not json\n" + good % (4, 4) + good % (5, 5) + b"[]\n"
        )
        tally = backfill(store, acct, tmp_path / "mixed.ndjson", after_row=3)
        assert counts(tally) == {
            "total": 3,
            "stored": 2,
            "repeated": 0,
            "failed": 1,
            "contacts_created": 1,
            "rows_done": 6,
        }
        assert tally.errors == [{"row": 6, "reason": "is not a JSON object"}]
        assert [a["name"] for a in stored(store, acct)] == ["L4", "L5"]

    def test_after_row_in_a_csv_file_counts_the_header_as_row_1(
        self, store: Database, account: NewAccount, tmp_path: Path
    ) -> None:
        acct = account.account
        file = tmp_path / "rows.csv"
        file.write_text(
            "name,occurred_at,email\n"
            + "".join(f"R{n},2024-01-0{n},a@e.com\n" for n in range(2, 7))
        )
        first = BackfillTally()
        with pytest.raises(Stop):
            backfill(store, acct, file, chunk_rows=2, tally=first, on_chunk=lambda t, _: _stop())
        assert first.rows_done == 3
        rest = backfill(store, acct, file, chunk_rows=2, after_row=first.rows_done)
        assert (rest.total, rest.stored, rest.rows_done) == (3, 3, 6)
        assert [a["name"] for a in stored(store, acct)] == ["R2", "R3", "R4", "R5", "R6"]


def _stop() -> None:
    raise Stop
