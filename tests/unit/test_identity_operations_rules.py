"""The rules of core.identity_operations and provenance, stated back."""

from __future__ import annotations

import pytest

from eventyard.core.errors import EventyardError
from eventyard.core.identifiers import Identifier
from eventyard.core.identity import primary_rank, resolving_identifier
from eventyard.core.identity_operations import (
    changed_attributes,
    check_split,
    merge_attributes,
    parse_split_identifiers,
    undo_changes,
)

RANK = primary_rank(("identity", "email", "mobile"))


def test_provenance_is_the_best_ranked_primary_kind_then_the_first_named() -> None:
    anon, email, user = (
        Identifier("anonid", "c"),
        Identifier("email", "a@x.io"),
        Identifier("identity", "u"),
    )
    assert resolving_identifier([anon, email, user], RANK) == user
    assert resolving_identifier([anon, email], RANK) == email
    assert resolving_identifier([anon, Identifier("custID", "9")], RANK) == anon
    assert resolving_identifier([], RANK) is None


def test_survivor_values_win_unless_the_other_is_preferred() -> None:
    survivor, other = {"plan": "pro", "city": "Paris"}, {"plan": "free", "age": 40}
    assert merge_attributes(survivor, other) == {"plan": "pro", "city": "Paris", "age": 40}
    assert merge_attributes(survivor, other, "other") == {
        "plan": "free",
        "city": "Paris",
        "age": 40,
    }
    assert changed_attributes(survivor, merge_attributes(survivor, other)) == {"age": (None, 40)}


def test_undo_restores_what_the_merge_changed_unless_written_since() -> None:
    before = {"plan": "pro", "city": "Paris"}
    after = {"plan": "free", "city": "Paris", "age": 40}
    assert undo_changes(before, after, after) == before
    # Written since: the later write stays; untouched keys written since stay too.
    current = {"plan": "free", "city": "Lyon", "age": 41, "new": 1}
    assert undo_changes(before, after, current) == {
        "plan": "pro",
        "city": "Lyon",
        "age": 41,
        "new": 1,
    }
    # Removed since a merge added it: stays removed.
    assert undo_changes(before, after, {"plan": "free", "city": "Paris"}) == before


def test_a_split_names_held_identifiers_and_leaves_one() -> None:
    held = [Identifier("identity", "u"), Identifier("anonid", "c")]
    check_split(held, [Identifier("anonid", "c")])
    with pytest.raises(EventyardError) as missing:
        check_split(held, [Identifier("email", "a@x.io")])
    assert missing.value.errors[0].field == "identifiers[0]"
    with pytest.raises(EventyardError) as everything:
        check_split(held, held)
    assert everything.value.code == "split_takes_everything"
    assert parse_split_identifiers(["EMAIL:A@X.io"]) == [Identifier("email", "a@x.io")]
    with pytest.raises(EventyardError):
        parse_split_identifiers("email:a@x.io")
