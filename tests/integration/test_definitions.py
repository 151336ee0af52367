"""Activity definitions and account settings in the store, on SQLite and PostgreSQL.

Ortto: "ensure the activity definition exists" before sending activities; an
account may let the first activity create it (``auto_create_definitions``).
STYLE.md: "uniqueness enforced by constraints and ON CONFLICT, never
check-then-insert" -- two first uses of one id at the same moment must both
succeed and leave one definition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventyard.core.definitions import DefinitionSpec, definition_from_attributes
from eventyard.core.errors import EventyardError, NotFound
from eventyard.core.model import Account, ActivityDefinition, NewAccount
from eventyard.services.accounts import get_account, update_account_settings
from eventyard.services.credentials import Authenticator
from eventyard.services.definitions import (
    create_definition,
    delete_definition,
    get_definition,
    list_definitions,
    replace_definition,
)
from eventyard.storage.database import Database
from eventyard.storage.tables import activity_definitions
from tests.integration.helpers import NOW, count, counting_statements, new_account
from tests.integration.test_concurrency import run_together

PURCHASE_FIELDS = {"str:cm:product-name": "str", "int::v": "int"}
WRITERS = 4


def definition(activity_id: str, **overrides: object) -> ActivityDefinition:
    values: dict[str, object] = {
        "activity_id": activity_id,
        "name": activity_id.removeprefix("act:cm:").title(),
        "fields": dict(PURCHASE_FIELDS),
        "auto_created": False,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return ActivityDefinition(**values)  # type: ignore[arg-type]


class TestDefinitionRepository:
    def test_create_then_read_back(self, store: Database) -> None:
        acct = new_account(store, "defs")
        with store.unit_of_work() as uow:
            assert uow.definitions.create(acct.id, definition("act:cm:purchase"))
            uow.commit()
        with store.unit_of_work(write=False) as uow:
            assert uow.definitions.get(acct.id, "act:cm:purchase") == definition("act:cm:purchase")
            assert uow.definitions.list(acct.id) == [definition("act:cm:purchase")]

    def test_create_of_an_existing_id_is_false_and_changes_nothing(self, store: Database) -> None:
        acct = new_account(store, "defs")
        with store.unit_of_work() as uow:
            assert uow.definitions.create(acct.id, definition("act:cm:purchase"))
            assert not uow.definitions.create(
                acct.id, definition("act:cm:purchase", name="Other", fields={})
            )
            uow.commit()
        assert get_definition(store, acct, "act:cm:purchase") == definition("act:cm:purchase")

    def test_get_many_is_one_query_and_returns_only_existing(self, store: Database) -> None:
        acct = new_account(store, "defs")
        with store.unit_of_work() as uow:
            for activity_id in ("act:cm:a", "act:cm:b", "act:cm:c"):
                uow.definitions.create(acct.id, definition(activity_id))
            uow.commit()
        with store.unit_of_work(write=False) as uow, counting_statements(store.engine) as sql:
            found = uow.definitions.get_many(acct.id, {"act:cm:a", "act:cm:c", "act:cm:zzz"})
        assert sorted(found) == ["act:cm:a", "act:cm:c"]
        assert found["act:cm:c"] == definition("act:cm:c")
        assert len([s for s in sql if "activity_definitions" in s]) == 1
        with store.unit_of_work(write=False) as uow:
            assert uow.definitions.get_many(acct.id, []) == {}

    def test_list_is_ordered_by_activity_id(self, store: Database) -> None:
        acct = new_account(store, "defs")
        with store.unit_of_work() as uow:
            for activity_id in ("act:cm:zeta", "act:cm:alpha", "act:cm:mid"):
                uow.definitions.create(acct.id, definition(activity_id))
            uow.commit()
        assert [d.activity_id for d in list_definitions(store, acct)] == [
            "act:cm:alpha",
            "act:cm:mid",
            "act:cm:zeta",
        ]

    def test_fields_keep_their_order(self, store: Database) -> None:
        """JSON is stored as sent (json, not jsonb): fields read back in the declared order."""
        acct = new_account(store, "defs")
        fields = {"str:cm:zz": "str", "int::v": "int", "bol:cm:aa": "bol"}
        with store.unit_of_work() as uow:
            uow.definitions.create(acct.id, definition("act:cm:x", fields=fields))
            uow.commit()
        assert list(get_definition(store, acct, "act:cm:x").fields) == list(fields)

    def test_replace_changes_name_fields_and_updated_at_only(self, store: Database) -> None:
        acct = new_account(store, "defs")
        later = NOW + timedelta(hours=1)
        with store.unit_of_work() as uow:
            uow.definitions.create(acct.id, definition("act:cm:x", auto_created=True))
            replaced = definition(
                "act:cm:x", name="New", fields={}, created_at=later, updated_at=later
            )
            assert uow.definitions.replace(acct.id, replaced)
            assert not uow.definitions.replace(acct.id, definition("act:cm:missing"))
            uow.commit()
        assert get_definition(store, acct, "act:cm:x") == definition(
            "act:cm:x", name="New", fields={}, auto_created=True, updated_at=later
        )

    def test_delete(self, store: Database) -> None:
        acct = new_account(store, "defs")
        with store.unit_of_work() as uow:
            uow.definitions.create(acct.id, definition("act:cm:x"))
            assert uow.definitions.delete(acct.id, "act:cm:x")
            assert not uow.definitions.delete(acct.id, "act:cm:x")
            uow.commit()
        assert count(store, activity_definitions, acct) == 0

    def test_another_account_sees_nothing(self, store: Database) -> None:
        """DESIGN.md: "Tenants never see each other's data"."""
        owner, other = new_account(store, "owner"), new_account(store, "other")
        with store.unit_of_work() as uow:
            uow.definitions.create(owner.id, definition("act:cm:x"))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.definitions.get(other.id, "act:cm:x") is None
            assert uow.definitions.get_many(other.id, ["act:cm:x"]) == {}
            assert uow.definitions.list(other.id) == []
            assert not uow.definitions.replace(other.id, definition("act:cm:x", name="Mine"))
            assert not uow.definitions.delete(other.id, "act:cm:x")
            # The same id is free for the other account.
            assert uow.definitions.create(other.id, definition("act:cm:x", name="Theirs"))
            uow.commit()
        assert get_definition(store, owner, "act:cm:x") == definition("act:cm:x")
        assert get_definition(store, other, "act:cm:x").name == "Theirs"


class TestAddMissing:
    def test_creates_auto_created_definitions_and_keeps_existing_ones(
        self, store: Database
    ) -> None:
        acct = new_account(store, "defs")
        with store.unit_of_work() as uow:
            uow.definitions.create(acct.id, definition("act:cm:declared"))
            uow.definitions.add_missing(
                acct.id,
                [
                    DefinitionSpec("act:cm:declared", "would overwrite", {}),
                    definition_from_attributes("act:cm:new", ["str:cm:colour", "int::v"]),
                ],
                NOW,
            )
            uow.definitions.add_missing(acct.id, [], NOW)
            uow.commit()
        assert get_definition(store, acct, "act:cm:declared") == definition("act:cm:declared")
        assert get_definition(store, acct, "act:cm:new") == ActivityDefinition(
            activity_id="act:cm:new",
            name="new",
            fields={"str:cm:colour": "str", "int::v": "int"},
            auto_created=True,
            created_at=NOW,
            updated_at=NOW,
        )

    @pytest.mark.parametrize("round_", range(3))
    def test_concurrent_first_uses_all_succeed_and_one_definition_remains(
        self, database_url: str, store: Database, round_: int
    ) -> None:
        """Several requests auto-create the same id at once: none fails, the first commit wins."""
        acct = new_account(store, f"race{round_}")

        def first_use(database: Database, index: int) -> ActivityDefinition:
            spec = definition_from_attributes("act:cm:race", [f"str:cm:from-{index}"])
            with database.unit_of_work() as uow:
                uow.definitions.add_missing(acct.id, [spec], NOW)
                found = uow.definitions.get_many(acct.id, ["act:cm:race"])["act:cm:race"]
                uow.commit()
            return found

        seen = run_together(database_url, WRITERS, first_use)

        assert count(store, activity_definitions, acct) == 1
        stored = get_definition(store, acct, "act:cm:race")
        assert stored.auto_created
        assert len(stored.fields) == 1
        # Every request went on with the one definition that is stored.
        assert all(found == stored for found in seen), seen


class TestDefinitionService:
    def test_create_returns_what_is_stored(self, store: Database) -> None:
        acct = new_account(store, "svc")
        created = create_definition(store, acct, "act:cm:purchase", " Purchase ", PURCHASE_FIELDS)
        assert created.name == "Purchase"
        assert not created.auto_created
        assert created.created_at == created.updated_at
        assert created.created_at.tzinfo is not None
        assert get_definition(store, acct, "act:cm:purchase") == created

    def test_create_twice_is_409(self, store: Database) -> None:
        acct = new_account(store, "svc")
        create_definition(store, acct, "act:cm:purchase", "Purchase", {})
        with pytest.raises(EventyardError) as caught:
            create_definition(store, acct, "act:cm:purchase", "Again", {})
        assert (caught.value.status, caught.value.code) == (409, "definition_exists")

    def test_invalid_definition_stores_nothing(self, store: Database) -> None:
        acct = new_account(store, "svc")
        with pytest.raises(EventyardError) as caught:
            create_definition(store, acct, "act:cm:x", "X", {"str:cm:x": "int"})
        assert caught.value.errors[0].field == "fields.str:cm:x"
        assert count(store, activity_definitions, acct) == 0

    def test_replace_keeps_how_it_was_created(self, store: Database) -> None:
        acct = new_account(store, "svc")
        with store.unit_of_work() as uow:
            uow.definitions.add_missing(acct.id, [DefinitionSpec("act:cm:x", "x", {})], NOW)
            uow.commit()
        replaced = replace_definition(store, acct, "act:cm:x", "X", PURCHASE_FIELDS)
        assert replaced == get_definition(store, acct, "act:cm:x")
        assert (replaced.auto_created, replaced.created_at) == (True, NOW)
        assert replaced.updated_at > NOW
        assert replaced.fields == PURCHASE_FIELDS

    def test_unknown_ids_are_not_found(self, store: Database) -> None:
        acct = new_account(store, "svc")
        with pytest.raises(NotFound):
            get_definition(store, acct, "act:cm:nothing")
        with pytest.raises(NotFound):
            replace_definition(store, acct, "act:cm:nothing", "X", {})
        with pytest.raises(NotFound):
            delete_definition(store, acct, "act:cm:nothing")


class TestAccountSettings:
    def test_patch_is_stored_and_read_back(self, store: Database) -> None:
        acct = new_account(store, "settings")
        updated = update_account_settings(
            store, acct, {"auto_create_definitions": True, "retention_days": 30}
        )
        assert updated.settings == {"auto_create_definitions": True, "retention_days": 30}
        assert get_account(store, acct.id) == updated
        assert updated.auto_create_definitions
        assert updated.retention_days == 30

        reset = update_account_settings(store, updated, {"retention_days": None})
        assert get_account(store, acct.id).settings == {"auto_create_definitions": True}
        assert reset.retention_days == 548

    def test_bad_patch_changes_nothing(self, store: Database) -> None:
        acct = new_account(store, "settings", {"retention_days": 30})
        with pytest.raises(EventyardError) as caught:
            update_account_settings(store, acct, {"retention_days": 60, "colour": "blue"})
        assert [e.field for e in caught.value.errors] == ["colour"]
        assert get_account(store, acct.id).settings == {"retention_days": 30}

    def test_unknown_account(self, store: Database) -> None:
        ghost = Account(id="f" * 24, name="ghost", settings={}, created_at=datetime.now(UTC))
        with pytest.raises(NotFound):
            update_account_settings(store, ghost, {})
        with pytest.raises(NotFound):
            get_account(store, ghost.id)
        with pytest.raises(NotFound):
            get_account(store, "not-an-id")

    def test_create_account_checks_its_settings(self, store: Database) -> None:
        with pytest.raises(EventyardError):
            new_account(store, "settings", {"retention_days": 0})

    def test_the_cache_of_this_process_forgets_the_old_settings(
        self, store: Database, account: NewAccount
    ) -> None:
        """A settings change is seen at once by the process that made it."""
        auth = Authenticator(store, idle_seconds=300)
        before = auth.check(("admin",), account.admin_token).account
        assert before.auto_create_definitions is False

        update_account_settings(store, before, {"auto_create_definitions": True}, auth)

        assert auth.cached(("admin",), account.admin_token) is None
        after = auth.check(("admin",), account.admin_token)
        assert after.account.auto_create_definitions is True

    def test_concurrent_patches_of_different_keys_all_take_effect(
        self, database_url: str, store: Database
    ) -> None:
        """The row is locked while it changes: no patch overwrites another's key."""
        acct = new_account(store, "settings")
        patches = [
            {"auto_create_definitions": True},
            {"ortto_merge_strategy": 3},
            {"retention_days": 90},
            {"primary_kinds": ["email"]},
        ]
        run_together(
            database_url, len(patches), lambda db, i: update_account_settings(db, acct, patches[i])
        )
        assert get_account(store, acct.id).settings == {
            key: value for patch in patches for key, value in patch.items()
        }
