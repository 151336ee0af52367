"""Event type registry admission: record by record, in order, within the limits.

CleverTap: "While the maximum number of event types per account is 512, some
events are reserved for system events, so you may not get to use all of
them. For each event type, the maximum number of properties is 256."
"""

from __future__ import annotations

from eventyard.core.model import EventTypeLimits
from eventyard.core.registry import RegistryState, admit_event_types

LIMITS = EventTypeLimits(max_types=4, max_properties_per_type=3, reserved_names=frozenset({"Sys"}))


def test_new_types_are_admitted_until_reserved_names_leave_no_room() -> None:
    state = RegistryState(type_count=1, properties={"Known": {"a"}})
    usage = [(0, "A", []), (1, "B", []), (2, "C", []), (3, "Known", ["a"])]
    admission = admit_event_types(usage, state, LIMITS)
    # 4 types, 1 reserved: room for 3 user types; "Known" is one already.
    assert admission.new_types == ["A", "B"]
    assert [(r.index, r.code) for r in admission.rejections] == [(2, "event_type_limit")]
    assert "'C'" in admission.rejections[0].message


def test_a_type_admitted_earlier_in_the_batch_is_known_to_later_records() -> None:
    state = RegistryState(type_count=2)
    usage = [(0, "A", ["x"]), (1, "A", ["y"]), (2, "B", [])]
    admission = admit_event_types(usage, state, LIMITS)
    assert admission.new_types == ["A"]
    assert admission.new_properties == [("A", "x"), ("A", "y")]
    assert [r.index for r in admission.rejections] == [2]


def test_property_keys_beyond_the_limit_refuse_the_record_not_the_type() -> None:
    state = RegistryState(type_count=1, properties={"T": {"a", "b"}})
    usage = [(0, "T", ["a", "c"]), (1, "T", ["d"]), (2, "T", ["a", "b", "c"])]
    admission = admit_event_types(usage, state, LIMITS)
    assert admission.new_properties == [("T", "c")]
    assert [(r.index, r.code) for r in admission.rejections] == [(1, "event_property_limit")]


def test_a_refused_record_registers_nothing() -> None:
    state = RegistryState(type_count=0)
    usage = [(0, "New", ["a", "b", "c", "d"])]
    admission = admit_event_types(usage, state, LIMITS)
    assert admission.new_types == []
    assert admission.new_properties == []
    assert not admission.changes_registry
    assert not state.knows("New")


def test_known_types_and_keys_change_nothing() -> None:
    state = RegistryState(type_count=3, properties={"T": {"a"}})
    admission = admit_event_types([(0, "T", ["a"]), (1, "T", [])], state, LIMITS)
    assert not admission.changes_registry
    assert admission.rejections == []
