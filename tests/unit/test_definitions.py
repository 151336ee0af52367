"""The rules of an activity definition (core/definitions.py), without a database.

Ortto: "activity_id ... Custom activity identifier (e.g., act:cm:product-purchase)";
"attributes ... Activity-specific fields using format type:namespace:field";
types ``str``, ``int``, ``bol``, ``dtz``, ``obj``; ``int::v`` is the conversion value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventyard.core.definitions import (
    FIELD_TYPES,
    MAX_FIELDS,
    DefinitionSpec,
    check_attributes,
    definition_from_attributes,
    field_type,
    validate_definition,
)
from eventyard.core.errors import EventyardError
from eventyard.core.model import ActivityDefinition

SPEC_FIELDS = {"str:cm:product-name": "str", "int::v": "int"}


def problems(activity_id: object, name: object, fields: object) -> dict[str, str]:
    """The field errors of an invalid definition, by field path."""
    with pytest.raises(EventyardError) as caught:
        validate_definition(activity_id, name, fields)
    error = caught.value
    assert error.status == 400
    assert error.code == "invalid_definition"
    assert error.message == error.errors[0].reason
    return {e.field: e.reason for e in error.errors}


class TestValidDefinitions:
    def test_the_spec_example_is_valid(self) -> None:
        """The spec's first example: act:cm:product-purchase with str:cm:product-name and int::v."""
        spec = validate_definition("act:cm:product-purchase", "Product purchase", SPEC_FIELDS)
        assert spec == DefinitionSpec("act:cm:product-purchase", "Product purchase", SPEC_FIELDS)

    @pytest.mark.parametrize("kind", FIELD_TYPES)
    def test_every_field_type_of_the_spec(self, kind: str) -> None:
        """ "str:cm:field-name", "int:cm:field-name", "bol:cm:...", "dtz:cm:...", "obj:cm:..."."""
        spec = validate_definition("act:cm:x", "X", {f"{kind}:cm:field-name": kind})
        assert spec.fields == {f"{kind}:cm:field-name": kind}

    def test_field_types_are_the_five_of_the_spec(self) -> None:
        assert FIELD_TYPES == ("str", "int", "bol", "dtz", "obj")

    def test_empty_namespace_and_underscores(self) -> None:
        spec = validate_definition("act:cm:a-1", "A", {"int::v": "int", "str:cm:order_id": "str"})
        assert set(spec.fields) == {"int::v", "str:cm:order_id"}

    def test_name_is_trimmed_and_fields_may_be_empty(self) -> None:
        spec = validate_definition("act:cm:page-view", "  Page view ", {})
        assert spec.name == "Page view"
        assert spec.fields == {}

    def test_longest_ids_and_names(self) -> None:
        activity_id = "act:cm:" + "a" * 193
        field_id = "str:cm:" + "f" * 100
        spec = validate_definition(activity_id, "n" * 255, {field_id: "str"})
        assert len(spec.activity_id) == 200
        assert spec.fields == {field_id: "str"}

    def test_at_most_a_hundred_fields(self) -> None:
        fields = {f"int:cm:f{i}": "int" for i in range(MAX_FIELDS)}
        assert len(validate_definition("act:cm:x", "X", fields).fields) == 100


class TestActivityId:
    @pytest.mark.parametrize(
        "activity_id",
        [
            "product-purchase",
            "act:product-purchase",
            "act::product-purchase",
            "act:xx:product-purchase",
            "act:cm:",
            "act:cm:Product-Purchase",
            "act:cm:product purchase",
            "act:cm:product_purchase",
            "act:cm:a:b",
            "ACT:CM:purchase",
        ],
    )
    def test_must_look_like_act_cm_name(self, activity_id: str) -> None:
        found = problems(activity_id, "X", {})
        assert list(found) == ["activity_id"]
        assert found["activity_id"].startswith("activity_id must look like act:cm:<name>")

    def test_at_most_200_characters(self) -> None:
        found = problems("act:cm:" + "a" * 194, "X", {})
        assert found == {"activity_id": "activity_id must be at most 200 characters"}

    @pytest.mark.parametrize("activity_id", [None, 7, ["act:cm:x"]])
    def test_must_be_a_string(self, activity_id: object) -> None:
        assert problems(activity_id, "X", {}) == {"activity_id": "activity_id must be a string"}


class TestName:
    @pytest.mark.parametrize("name", ["", "   ", None, 5])
    def test_must_be_a_non_empty_string(self, name: object) -> None:
        assert problems("act:cm:x", name, {}) == {"name": "name must be a non-empty string"}

    def test_at_most_255_characters(self) -> None:
        assert problems("act:cm:x", "n" * 256, {}) == {
            "name": "name must be at most 255 characters"
        }


class TestFields:
    @pytest.mark.parametrize("fields", [None, [], "str:cm:x", 3])
    def test_must_be_an_object(self, fields: object) -> None:
        assert problems("act:cm:x", "X", fields) == {
            "fields": "fields must be an object of field id to type"
        }

    @pytest.mark.parametrize(
        ("field_id", "says"),
        [
            ("str:cm", "must have the form type:namespace:field"),
            ("str:cm:a:b", "must have the form type:namespace:field"),
            ("txt:cm:name", "has type 'txt'; the type must be one of str, int, bol, dtz, obj"),
            ("str:xx:name", "has namespace 'xx'; the namespace must be cm or empty"),
            ("str:cm:", "has field name ''"),
            ("str:cm:Name", "has field name 'Name'"),
            ("str:cm:a b", "has field name 'a b'"),
            ("str:cm:" + "f" * 101, f"has field name {'f' * 101!r}; it must be 1 to 100"),
        ],
    )
    def test_field_id_must_be_type_namespace_field(self, field_id: str, says: str) -> None:
        found = problems("act:cm:x", "X", {field_id: "str", "int::v": "int"})
        path = f"fields.{field_id}"
        assert list(found) == [path]
        assert found[path].startswith(f"{path} {says}")

    @pytest.mark.parametrize("declared", ["int", "string", "", None, 1])
    def test_type_must_be_the_ids_prefix(self, declared: Any) -> None:
        found = problems("act:cm:x", "X", {"str:cm:colour": declared})
        assert found == {
            "fields.str:cm:colour": (
                f"fields.str:cm:colour must have type 'str' (its prefix), not {declared!r}"
            )
        }

    def test_more_than_a_hundred_fields(self) -> None:
        fields = {f"int:cm:f{i}": "int" for i in range(MAX_FIELDS + 1)}
        assert problems("act:cm:x", "X", fields) == {
            "fields": "fields has 101 entries; at most 100"
        }

    def test_every_problem_is_reported_at_once(self) -> None:
        found = problems("purchase", "", {"bad": "str", "int::v": "str"})
        assert list(found) == ["activity_id", "name", "fields.bad", "fields.int::v"]


class TestFieldType:
    def test_is_the_prefix(self) -> None:
        assert field_type("int::v") == "int"
        assert field_type("dtz:cm:when") == "dtz"

    def test_raises_value_error_for_a_bad_id(self) -> None:
        with pytest.raises(ValueError, match="must have the form"):
            field_type("v")


class TestDefinitionFromAttributes:
    def test_fields_are_the_attribute_ids_typed_by_their_prefix(self) -> None:
        """An account with auto_create_definitions: the first activity defines the fields."""
        spec = definition_from_attributes(
            "act:cm:order-completed", ["str:cm:order-id", "int::v", "bol:cm:gift"]
        )
        assert spec == DefinitionSpec(
            "act:cm:order-completed",
            "order-completed",
            {"str:cm:order-id": "str", "int::v": "int", "bol:cm:gift": "bol"},
        )

    def test_no_attributes_no_fields(self) -> None:
        assert definition_from_attributes("act:cm:page-view", []).fields == {}

    def test_bad_ids_name_the_attribute(self) -> None:
        with pytest.raises(EventyardError) as caught:
            definition_from_attributes("page-view", ["str:cm:ok", "colour"])
        assert [e.field for e in caught.value.errors] == ["activity_id", "attributes.colour"]

    def test_too_many_attributes(self) -> None:
        with pytest.raises(EventyardError) as caught:
            definition_from_attributes("act:cm:x", [f"int:cm:f{i}" for i in range(101)])
        assert [e.field for e in caught.value.errors] == ["attributes"]


class TestCheckAttributes:
    definition = ActivityDefinition(
        activity_id="act:cm:purchase",
        name="Purchase",
        fields={"str:cm:product-name": "str", "int:cm:quantity": "int", "int::v": "int"},
        auto_created=False,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )

    def test_declared_fields_pass(self) -> None:
        assert check_attributes(self.definition, ["int::v", "str:cm:product-name"]) == []

    def test_undeclared_fields_are_reported_once_each_in_order(self) -> None:
        found = check_attributes(
            self.definition, ["str:cm:colour", "int::v", "bol:cm:gift", "str:cm:colour"]
        )
        assert found == [
            ("str:cm:colour", "not declared by activity definition act:cm:purchase"),
            ("bol:cm:gift", "not declared by activity definition act:cm:purchase"),
        ]

    def test_a_field_of_another_type_says_which_one_is_declared(self) -> None:
        assert check_attributes(self.definition, ["str:cm:quantity"]) == [
            (
                "str:cm:quantity",
                "not declared by activity definition act:cm:purchase, "
                "which declares int:cm:quantity (another type)",
            )
        ]
