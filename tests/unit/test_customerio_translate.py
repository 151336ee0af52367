"""Customer.io operations -> canonical records (``dialects/customerio/translate.py``), pure.

Docstrings quote ``shared/specs/customerio.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventyard.core.identifiers import Identifier
from eventyard.core.model import ContactHint, GroupMembership, NewActivity, ProfileUpdate
from eventyard.dialects.customerio.translate import (
    Erase,
    Person,
    Problems,
    entity,
    event,
    identify,
    merge,
    path_person,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", Person((Identifier("identity", "42"),))),
        ("Ann@Example.com", Person((Identifier("email", "ann@example.com"),))),
        ("+15555550100", Person((Identifier("identity", "+15555550100"),))),
        ("cio_01abc", Person(contact_id="01abc")),
        ("cio_", Person((Identifier("identity", "cio_"),))),
    ],
)
def test_the_path_identifier_type_follows_its_shape(raw: str, expected: Person) -> None:
    """Spec: "cio_ prefix -> cio_id, email-looking -> email, anything else -> id. A phone
    number in the path is treated as an id"."""
    fail = Problems()
    assert path_person(raw, fail) == expected
    assert fail.items == []


def test_identify_names_the_body_identifiers_and_keeps_the_attributes() -> None:
    fail = Problems()
    person = Person((Identifier("identity", "5"),))
    body = {"email": "A@B.io", "anonymous_id": "anon", "_update": True, "plan": "x"}
    [update] = identify(person, body, fail)
    assert isinstance(update, ProfileUpdate)
    assert update.identifiers == (
        Identifier("identity", "5"),
        Identifier("email", "a@b.io"),
        Identifier("anonid", "anon"),
    )
    assert update.attributes == {"email": "A@B.io", "plan": "x"}


def test_a_cio_id_is_a_contact_hint_without_fallback() -> None:
    """Spec: "A cio_id that does not exist or was deleted -> request dropped"."""
    [update] = identify(Person(contact_id="01abc"), {}, Problems())
    assert update.contact_hint == ContactHint("01abc")


def test_page_views_keep_the_url() -> None:
    fail = Problems()
    [page] = event(
        Person((Identifier("identity", "5"),)),
        {"type": "page", "name": " https://x.io/ ", "data": {"a": 1}},
        now=NOW,
        fail=fail,
    )
    assert isinstance(page, NewActivity)
    assert (page.name, page.properties, page.occurred_at) == (
        "Page Viewed",
        {"url": "https://x.io/", "a": 1},
        NOW,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "a", "timestamp": True}, "timestamp"),
        ({"name": "a", "timestamp": 1e20}, "timestamp"),
        ({"name": "a", "id": {"x": 1}}, "id"),
    ],
)
def test_bad_events_name_the_field(body: dict[str, Any], field: str) -> None:
    fail = Problems()
    assert event(Person(), body, now=NOW, fail=fail) == []
    assert [f for f, _ in fail.items] == [field]


def test_merge_is_the_primary_absorbing_the_secondary() -> None:
    """§3.6: "``secondary`` is deleted" into the primary, here merged into it."""
    [update] = merge({"primary": {"cio_id": "01p"}, "secondary": {"email": "d@x.io"}}, Problems())
    assert update.contact_hint == ContactHint("01p")
    assert update.identifiers == ()
    assert update.absorbs == (Identifier("email", "d@x.io"),)


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        ({"type": "person", "identifiers": {"id": "1", "phone": "+1555"}}, "identifiers"),
        ({"type": "person", "identifiers": {"id": "1"}, "action": "jump"}, "action"),
        ({"type": "object", "action": "identify"}, "type"),
        ({"type": "person", "identifiers": {}, "action": "identify"}, "identifiers"),
        ({"type": "person", "action": "event", "name": "x"}, "identifiers"),
    ],
)
def test_v2_refusals_name_the_field(operation: dict[str, Any], field: str) -> None:
    """Spec: "You cannot pass multiple identifiers."; objects have no place in the model."""
    operation.setdefault("action", "identify")
    fail = Problems()
    assert entity(operation, now=NOW, fail=fail) is None
    assert fail.items[0][0] == field


def test_v2_delete_is_an_erasure_and_relationships_are_memberships() -> None:
    person = {"type": "person", "identifiers": {"id": "1"}}
    assert entity({**person, "action": "delete"}, now=NOW, fail=Problems()) == Erase(
        Person((Identifier("identity", "1"),))
    )
    done = entity(
        {
            **person,
            "action": "add_relationships",
            "cio_relationships": [{"identifiers": {"object_type_id": 1, "object_id": "acme"}}],
        },
        now=NOW,
        fail=Problems(),
    )
    assert isinstance(done, list)
    [membership] = done
    assert isinstance(membership, GroupMembership)
    assert membership.group_id == "1:acme"
