"""Account settings (core/account_settings.py): defaults, checks and merge patches.

DESIGN.md: an account "holds ... settings (which identifier is the primary
key, retention, limits)". Ortto: "merge_strategy ... 1 (append only), 2
(overwrite), 3 (ignore existing)".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventyard.core.account_settings import (
    SETTING_NAMES,
    apply_settings_patch,
    effective_settings,
    settings_document,
)
from eventyard.core.errors import EventyardError
from eventyard.core.model import Account

DEFAULTS = {
    "primary_kinds": ["identity", "email", "mobile"],
    "auto_create_definitions": False,
    "ortto_merge_strategy": 2,
    "retention_days": 548,
    "dedup_window_hours": 24,
}


def account(settings: dict[str, Any]) -> Account:
    return Account(id="a" * 24, name="Acme", settings=settings, created_at=datetime.now(UTC))


def rejected(stored: dict[str, Any], patch: object) -> dict[str, str]:
    with pytest.raises(EventyardError) as caught:
        apply_settings_patch(stored, patch)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_settings"
    return {e.field: e.reason for e in caught.value.errors}


class TestDefaults:
    def test_an_account_without_settings_gets_every_default(self) -> None:
        assert settings_document(effective_settings({})) == DEFAULTS
        assert list(SETTING_NAMES) == list(DEFAULTS)

    def test_account_accessors_read_the_defaults(self) -> None:
        plain = account({})
        assert plain.primary_kinds == ("identity", "email", "mobile")
        assert plain.auto_create_definitions is False
        assert plain.ortto_merge_strategy == 2
        assert plain.retention_days == 548
        assert plain.dedup_window_hours == 24

    def test_account_accessors_read_what_is_set(self) -> None:
        stored = apply_settings_patch(
            {},
            {
                "primary_kinds": ["email"],
                "auto_create_definitions": True,
                "ortto_merge_strategy": 3,
                "retention_days": 30,
            },
        )
        configured = account(stored)
        assert configured.primary_kinds == ("email",)
        assert configured.auto_create_definitions is True
        assert configured.ortto_merge_strategy == 3
        assert configured.retention_days == 30

    def test_reading_ignores_unknown_keys_and_unusable_values(self) -> None:
        """Settings written before they were checked must not break reading them."""
        settings = effective_settings({"legacy": 1, "retention_days": 0, "ortto_merge_strategy": 1})
        assert settings.retention_days == 548
        assert settings.ortto_merge_strategy == 1


class TestMergePatch:
    def test_only_the_keys_set_are_stored(self) -> None:
        assert apply_settings_patch({}, {"retention_days": 90}) == {"retention_days": 90}

    def test_a_patch_keeps_the_other_keys(self) -> None:
        stored = {"retention_days": 90}
        assert apply_settings_patch(stored, {"auto_create_definitions": True}) == {
            "retention_days": 90,
            "auto_create_definitions": True,
        }
        assert stored == {"retention_days": 90}, "the input is not changed"

    def test_null_resets_to_the_default(self) -> None:
        """RFC 7396: a member whose value is null is removed."""
        stored = {"retention_days": 90, "ortto_merge_strategy": 1}
        assert apply_settings_patch(stored, {"retention_days": None}) == {"ortto_merge_strategy": 1}
        assert apply_settings_patch({}, {"retention_days": None}) == {}

    def test_empty_patch_changes_nothing(self) -> None:
        assert apply_settings_patch({"retention_days": 9}, {}) == {"retention_days": 9}

    def test_well_known_kinds_are_stored_in_their_spelling(self) -> None:
        stored = apply_settings_patch({}, {"primary_kinds": ["EMAIL", "custid", "loyalty_no"]})
        assert stored == {"primary_kinds": ["email", "custID", "loyalty_no"]}


class TestRejections:
    def test_unknown_key_names_the_key(self) -> None:
        found = rejected({}, {"retention": 30, "retention_days": 30})
        assert list(found) == ["retention"]
        assert found["retention"].startswith("unknown setting 'retention'")
        assert "retention_days" in found["retention"]

    @pytest.mark.parametrize("patch", [[], "x", None, 3])
    def test_patch_must_be_an_object(self, patch: object) -> None:
        assert list(rejected({}, patch)) == ["settings"]

    @pytest.mark.parametrize("value", ["true", 1, 0, "yes"])
    def test_auto_create_definitions_is_a_boolean(self, value: object) -> None:
        assert list(rejected({}, {"auto_create_definitions": value})) == ["auto_create_definitions"]

    @pytest.mark.parametrize("value", [0, 4, "2", 2.5, True])
    def test_ortto_merge_strategy_is_1_2_or_3(self, value: object) -> None:
        assert list(rejected({}, {"ortto_merge_strategy": value})) == ["ortto_merge_strategy"]

    @pytest.mark.parametrize("value", [0, -1, "30", 1.5, True, 36_501])
    def test_retention_days_is_a_whole_number_of_at_least_one(self, value: object) -> None:
        found = rejected({}, {"retention_days": value})
        assert list(found) == ["retention_days"]
        assert found["retention_days"].startswith("retention_days: ")

    @pytest.mark.parametrize(
        "value", [[], "email", ["email", "EMAIL"], ["bad kind"], [3], ["x"] * 21]
    )
    def test_primary_kinds_is_a_list_of_distinct_kinds(self, value: object) -> None:
        fields = list(rejected({}, {"primary_kinds": value}))
        assert fields
        assert all(f.startswith("primary_kinds") for f in fields), fields

    def test_every_bad_value_is_reported(self) -> None:
        found = rejected({}, {"retention_days": 0, "ortto_merge_strategy": 9})
        assert set(found) == {"retention_days", "ortto_merge_strategy"}
