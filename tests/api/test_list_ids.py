"""A list id no column can hold names no list: 404, never a 500 from the database.

Schema fuzzing (tests/reliability/test_schema_fuzz.py) found that
``GET /api/v1/lists/647007142232632`` was a 500 on PostgreSQL, whose
``lists.id`` is a 32-bit INTEGER, and a 100-bit id was a 500 on SQLite too.
"""

from __future__ import annotations

import httpx
import pytest

from eventyard.core.model import NewAccount
from tests.support import admin

IDS = ["2147483648", "647007142232632", "-2147483649", str(10**30), str(-(10**30))]


@pytest.mark.parametrize("list_id", IDS)
@pytest.mark.parametrize("suffix", ["", "/contacts"])
def test_an_id_beyond_the_column_is_404(
    http: httpx.Client, account: NewAccount, list_id: str, suffix: str
) -> None:
    r = http.get(f"/api/v1/lists/{list_id}{suffix}", headers=admin(account))
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("list_id", ["2147483648", "647007142232632"])
def test_a_netcore_bulk_upload_naming_such_a_list_is_400(
    http: httpx.Client, account: NewAccount, list_id: str
) -> None:
    r = http.post(
        "/apiv2",
        params={
            "type": "contact",
            "activity": "bulkupload",
            "apikey": account.netcore_api_key,
            "path": "https://example.com/a.csv",
            "listid": list_id,
        },
    )
    assert r.status_code == 400, r.text
    assert f"listid {list_id} names no list of this account" in r.json()["message"]
