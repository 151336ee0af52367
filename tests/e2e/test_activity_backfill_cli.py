"""``eventyard activities import`` as an operator runs it: a real process, then the read API.

``eventyard activities import FILE --account ID --dialect NAME [--format ndjson|csv]
[--after-row N] [--json]`` loads a backfill of historical activities; on
SQLite and PostgreSQL, each test on a database of its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from eventyard.core.model import NewAccount
from tests.support import (
    admin,
    create_account_at,
    find_contact,
    own_database,
    run_cli,
    running_server,
)

#: An NDJSON backfill: nested and top-level identifiers, an id, a bad line, a blank one.
NDJSON = (
    b'{"id": "o-1", "name": "Order Placed", "occurred_at": "2024-05-06T07:08:09.5Z",'
    b' "email": "Ann@Example.com", "properties": {"total": 12.5, "items": [{"sku": "A"}],'
    b' "currency": "EUR"}}\n'
    b'{"name": "Page Viewed", "occurred_at": 1715000000123,'
    b' "identifiers": {"email": "ann@example.com", "anonid": "web-1"}}\n'
    b"\n"
    b'{"name": "Login", "occurred_at": "2024-05-07", "mobile": "+91 98450 12345"}\n'
    b'{"name": "Login", "occurred_at": "last tuesday", "email": "bob@example.com"}\n'
    b"not json\n"
)
#: A CSV backfill: its extra columns are text properties.
CSV = (
    "name,occurred_at,id,email,plan\n"
    "Upgrade,2024-06-01T12:00:00+02:00,u-1,bob@example.com,gold\n"
    "Upgrade,2024-06-02T12:00:00,,ann@,silver\n"
    "Downgrade,2024-06-03T12:00:00,,ann@example.com,\n"
)


def backfill(url: str, account: NewAccount, path: Path, *args: str) -> Any:
    """Run the command with ``--json``; its summary."""
    done = run_cli(
        url,
        "activities",
        "import",
        str(path),
        "--account",
        account.account.id,
        *args,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = orjson.loads(done.stdout)
    assert isinstance(summary.pop("seconds"), int | float)
    return summary


def activities_of(api: httpx.Client, account: NewAccount, identifier: str) -> list[Any]:
    """The activities of the contact owning ``identifier``, as the read API lists them."""
    contact = find_contact(api, account, identifier)
    assert contact is not None, identifier
    r = api.get(f"/api/v1/contacts/{contact['id']}/activities", headers=admin(account))
    assert r.status_code == 200, r.text
    return list(r.json()["activities"])


def test_a_backfill_from_the_command_line_is_read_back_through_the_api(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")  # PostgreSQL is there (CI fails otherwise)
    with own_database(backend, tmp_path) as url:
        account = create_account_at(url, "backfill")
        ndjson = tmp_path / "history.ndjson"
        ndjson.write_bytes(NDJSON)
        csv = tmp_path / "history.csv"
        csv.write_text(CSV)

        # --json: the summary, one JSON object on stdout.
        summary = backfill(url, account, ndjson, "--dialect", "netcore")
        (not_json,) = [e for e in summary["errors"] if e["row"] == 6]
        assert not_json["reason"].startswith("is not JSON: "), not_json
        assert summary == {
            "total": 5,
            "stored": 3,
            "repeated": 0,
            "failed": 2,
            "contacts_created": 2,
            "errors": [
                {"row": 5, "reason": "occurred_at 'last tuesday' is not an ISO 8601 date-time"},
                not_json,
            ],
            "rows_done": 6,
        }

        # The human table on stdout, the skipped rows and the progress bar on stderr.
        table = run_cli(
            url,
            "activities",
            "import",
            str(csv),
            "--account",
            account.account.id,
            "--dialect",
            "cordial",
            COLUMNS="200",
        )
        assert table.returncode == 0, table.stderr
        shown = dict(re.findall(r"^│ (\S+) +│ (\S+) +│$", table.stdout, flags=re.MULTILINE))
        assert shown.keys() == {
            "total",
            "stored",
            "repeated",
            "failed",
            "contacts_created",
            "rows_done",
            "seconds",
            "activities/s",
        }, table.stdout
        assert {k: shown[k] for k in ("total", "stored", "repeated", "failed")} == {
            "total": "3",
            "stored": "2",
            "repeated": "0",
            "failed": "1",
        }
        assert (shown["contacts_created"], shown["rows_done"]) == ("1", "4")
        assert "Activity backfill" in table.stdout
        assert "line 3: email 'ann@' is not a valid e-mail address" in table.stderr
        assert "rows/s" in table.stderr, "the progress bar"

        # Loaded again: what has an id is there; what has none is stored again.
        again = backfill(url, account, ndjson, "--dialect", "netcore")
        assert (again["stored"], again["repeated"], again["contacts_created"]) == (2, 1, 0)
        # --after-row: only the lines after it; --format names a format the name does not.
        renamed = tmp_path / "history.txt"
        renamed.write_text(CSV)
        rest = backfill(
            url, account, renamed, "--dialect", "cordial", "--format", "csv", "--after-row", "3"
        )
        assert {k: rest[k] for k in ("total", "stored", "failed", "rows_done")} == {
            "total": 1,
            "stored": 1,
            "failed": 0,
            "rows_done": 4,
        }

        with (
            running_server(url, tmp_path / "server.log") as server,
            httpx.Client(base_url=server.base_url, timeout=30) as api,
        ):
            ann = activities_of(api, account, "email:ann@example.com")
            assert [(a["name"], a["occurred_at"], a["dialect"]) for a in ann] == [
                ("Downgrade", "2024-06-03T12:00:00Z", "cordial"),
                ("Downgrade", "2024-06-03T12:00:00Z", "cordial"),
                ("Page Viewed", "2024-05-06T12:53:20.123000Z", "netcore"),
                ("Page Viewed", "2024-05-06T12:53:20.123000Z", "netcore"),
                ("Order Placed", "2024-05-06T07:08:09.500000Z", "netcore"),
            ]
            assert {(a["source"], a["journey_eligible"]) for a in ann} == {("import", False)}
            order = ann[-1]
            assert order["properties"] == {
                "total": 12.5,
                "items": [{"sku": "A"}],
                "currency": "EUR",
            }
            assert list(order["properties"]) == ["total", "items", "currency"]
            assert ann[0]["properties"] == {}
            # The anonymous id named with Ann's e-mail is Ann's.
            web = find_contact(api, account, "anonid:web-1")
            assert web is not None
            assert web["status"] == "known"
            assert web == find_contact(api, account, "email:ann@example.com")

            bob = activities_of(api, account, "email:bob@example.com")
            assert [(a["name"], a["occurred_at"], a["properties"]) for a in bob] == [
                ("Upgrade", "2024-06-01T10:00:00Z", {"plan": "gold"})
            ]
            login = activities_of(api, account, "mobile:+919845012345")
            assert [(a["name"], a["occurred_at"]) for a in login] == [
                ("Login", "2024-05-07T00:00:00Z"),
                ("Login", "2024-05-07T00:00:00Z"),
            ]


@pytest.mark.parametrize(
    ("args", "file", "message"),
    [
        (
            ("--dialect", "shopify"),
            "a.ndjson",
            "--dialect 'shopify' is none of: amplitude, clevertap, cordial, customerio, mixpanel, "
            "netcore, ortto, posthog, segment",
        ),
        (("--dialect", "netcore", "--format", "xml"), "a.ndjson", "--format is ndjson or csv"),
        (("--dialect", "netcore"), "noname.csv", "the header row has no name column"),
        (("--dialect", "netcore", "--account", "acc_nope"), "a.ndjson", "acc_nope"),
    ],
)
def test_refusals_exit_1_with_a_message_and_store_nothing(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    args: tuple[str, ...],
    file: str,
    message: str,
) -> None:
    """An unknown dialect or format, a file that cannot be read, an unknown account:
    exit code 1, the reason on stderr, nothing stored."""
    if backend == "postgresql":
        request.getfixturevalue("postgres_url")
    (tmp_path / "a.ndjson").write_bytes(NDJSON)
    (tmp_path / "noname.csv").write_text("event,occurred_at,email\nx,2024-01-01,a@e.com\n")
    with own_database(backend, tmp_path) as url:
        account = create_account_at(url, "refused")
        done = run_cli(
            url,
            "activities",
            "import",
            str(tmp_path / file),
            "--account",
            account.account.id,
            *args,
            COLUMNS="200",
        )
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "Error:" in done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        again = backfill(url, account, tmp_path / "a.ndjson", "--dialect", "netcore")
        assert again["stored"] == 3, "the refused run stored nothing"
