"""The reliability suite's dialect table speaks every dialect correctly.

Every other part of the suite (crash, hostile input, tenant isolation, fuzz,
load) trusts ``tests/reliability/dialects.py`` to produce requests that are
stored in full and to find their markers again; this proves it per dialect.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from eventyard.core.model import NewAccount
from eventyard.storage.database import Database
from eventyard.storage.tables import contacts
from tests.reliability.dialects import DIALECTS, Dialect, markers, stored_markers


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_batch_is_stored_in_full_with_its_markers(
    dialect: Dialect, http: httpx.Client, account: NewAccount, store: Database
) -> None:
    dialect.prepare(http, account)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    sent = markers(prefix, 6, contacts=2)
    size = dialect.batch_size
    for start in range(0, len(sent), size):
        r = dialect.batch(account, sent[start : start + size]).send(http)
        assert dialect.accepted(r), r.text
    assert sorted(stored_markers(store, account.account.id, dialect)) == sorted(sent)
    with store.engine.connect() as conn:
        stored_contacts = conn.execute(
            select(func.count()).where(contacts.c.account_id == account.account.id)
        ).scalar_one()
    assert stored_contacts == 2
