"""``eventyard definitions …`` and ``eventyard accounts settings``, as real processes.

On both databases (the session's migrated database; each test has its own
account). docs/api.md: "errors end the command with exit code 1 and a
message, never a traceback".
"""

from __future__ import annotations

import subprocess
from typing import Any

import orjson
import pytest

from eventyard.services.accounts import get_account
from eventyard.services.definitions import get_definition, list_definitions
from eventyard.storage.database import Database
from tests.e2e.test_cli import create_account_json, run


@pytest.fixture
def account_id(database_url: str) -> str:
    created = create_account_json(database_url, "CLI definitions")
    account_id: str = created["account_id"]
    return account_id


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    return orjson.loads(result.stdout)


def failed(database_url: str, *args: str) -> str:
    """Run a command that must fail with exit code 1; its stderr."""
    result = run(database_url, *args, check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    return result.stderr


def definitions(verb: str, account_id: str, *rest: str) -> tuple[str, ...]:
    """The arguments of ``eventyard definitions VERB --account ACCOUNT_ID REST...``."""
    return ("definitions", verb, "--account", account_id, *rest)


def creation(account_id: str, activity_id: str, name: str, *fields: str) -> tuple[str, ...]:
    """The arguments of ``definitions create``, one ``--field`` per field."""
    options = [option for field in fields for option in ("--field", field)]
    return definitions("create", account_id, activity_id, "--name", name, *options)


def settings(account_id: str, *changes: str) -> tuple[str, ...]:
    """The arguments of ``eventyard accounts settings ACCOUNT_ID``, one ``--set`` per change."""
    return ("accounts", "settings", account_id, *(x for c in changes for x in ("--set", c)))


def create_purchase(database_url: str, account_id: str) -> dict[str, Any]:
    """``definitions create`` of the spec's act:cm:product-purchase; what it printed with --json."""
    args = creation(
        account_id,
        "act:cm:product-purchase",
        "Product purchase",
        "str:cm:product-name=str",
        "int::v=int",
    )
    created: dict[str, Any] = json_of(run(database_url, *args, "--json"))
    return created


class TestDefinitions:
    def test_create_stores_the_definition(
        self, database_url: str, store: Database, account_id: str
    ) -> None:
        """Brief: ``definitions create --account ID ACTIVITY_ID --name NAME --field ...``."""
        created = create_purchase(database_url, account_id)
        assert {k: created[k] for k in ("activity_id", "name", "fields", "auto_created")} == {
            "activity_id": "act:cm:product-purchase",
            "name": "Product purchase",
            "fields": {"str:cm:product-name": "str", "int::v": "int"},
            "auto_created": False,
        }
        stored = get_definition(store, get_account(store, account_id), "act:cm:product-purchase")
        assert stored.fields == created["fields"]

    def test_a_field_without_a_type_takes_its_prefix(
        self, database_url: str, store: Database, account_id: str
    ) -> None:
        run(
            database_url,
            *creation(account_id, "act:cm:page-view", "Page", "str:cm:page-url", "int::v"),
        )
        stored = get_definition(store, get_account(store, account_id), "act:cm:page-view")
        assert stored.fields == {"str:cm:page-url": "str", "int::v": "int"}

    def test_list_show_and_delete(
        self, database_url: str, store: Database, account_id: str
    ) -> None:
        created = create_purchase(database_url, account_id)

        listed = run(database_url, *definitions("list", account_id, "--json"))
        assert [orjson.loads(line) for line in listed.stdout.splitlines()] == [created]
        # Piped (no terminal): one tab-separated line per definition.
        plain = run(database_url, *definitions("list", account_id)).stdout
        assert plain.splitlines()[0].split("\t")[:4] == [
            "act:cm:product-purchase",
            "Product purchase",
            "2",
            "false",
        ]
        purchase = "act:cm:product-purchase"
        shown = run(database_url, *definitions("show", account_id, purchase, "--json"))
        assert json_of(shown) == created
        text = run(database_url, *definitions("show", account_id, purchase)).stdout
        assert "act:cm:product-purchase: Product purchase" in text
        assert "str:cm:product-name\tstr" in text

        run(database_url, *definitions("delete", account_id, purchase))
        assert list_definitions(store, get_account(store, account_id)) == []

    def test_existing_id_is_an_error(self, database_url: str, account_id: str) -> None:
        create_purchase(database_url, account_id)
        stderr = failed(database_url, *creation(account_id, "act:cm:product-purchase", "Again"))
        assert "act:cm:product-purchase exists already" in stderr

    def test_invalid_definition_names_every_field(
        self, database_url: str, store: Database, account_id: str
    ) -> None:
        args = creation(account_id, "act:cm:Bad Id", "Bad", "str:cm:colour=int", "colour")
        stderr = failed(database_url, *args)
        assert "activity_id must look like act:cm:<name>" in stderr
        assert "fields.str:cm:colour must have type 'str'" in stderr
        assert "fields.colour must have the form type:namespace:field" in stderr
        assert list_definitions(store, get_account(store, account_id)) == []

    @pytest.mark.parametrize("verb", ["show", "delete"])
    def test_unknown_definition_is_an_error(
        self, database_url: str, account_id: str, verb: str
    ) -> None:
        stderr = failed(database_url, *definitions(verb, account_id, "act:cm:nope"))
        assert "No activity definition 'act:cm:nope'" in stderr

    def test_unknown_account_is_an_error(self, database_url: str) -> None:
        stderr = failed(database_url, *definitions("list", "f" * 24))
        assert f"No account '{'f' * 24}'" in stderr

    def test_help_lists_the_definition_commands(self) -> None:
        result = run(None, "definitions", "--help")
        for name in ("create", "list", "show", "delete"):
            assert name in result.stdout


class TestAccountSettings:
    def test_shows_the_defaults(self, database_url: str, account_id: str) -> None:
        shown = run(database_url, *settings(account_id), "--json")
        assert json_of(shown) == {
            "primary_kinds": ["identity", "email", "mobile"],
            "auto_create_definitions": False,
            "ortto_merge_strategy": 2,
            "retention_days": 548,
            "dedup_window_hours": 24,
        }
        plain = run(database_url, *settings(account_id)).stdout.splitlines()
        assert "retention_days\t548" in plain
        assert 'primary_kinds\t["identity","email","mobile"]' in plain

    def test_set_values_are_read_as_json(
        self, database_url: str, store: Database, account_id: str
    ) -> None:
        """Brief: ``--set auto_create_definitions=true --set ortto_merge_strategy=1``."""
        changes = (
            "auto_create_definitions=true",
            "ortto_merge_strategy=1",
            'primary_kinds=["email","identity"]',
        )
        changed = run(database_url, *settings(account_id, *changes), "--json")
        assert json_of(changed)["ortto_merge_strategy"] == 1
        account = get_account(store, account_id)
        assert account.settings == {
            "auto_create_definitions": True,
            "ortto_merge_strategy": 1,
            "primary_kinds": ["email", "identity"],
        }
        assert account.primary_kinds == ("email", "identity")

        run(database_url, *settings(account_id, "ortto_merge_strategy=null"))
        assert get_account(store, account_id).ortto_merge_strategy == 2

    @pytest.mark.parametrize(
        ("change", "says"),
        [
            ("retention_days=abc", "retention_days"),
            ("retention_days=0", "retention_days"),
            ("colour=blue", "unknown setting 'colour'"),
        ],
    )
    def test_bad_values_are_errors_that_change_nothing(
        self, database_url: str, store: Database, account_id: str, change: str, says: str
    ) -> None:
        stderr = failed(database_url, *settings(account_id, "auto_create_definitions=true", change))
        assert says in stderr
        assert get_account(store, account_id).settings == {}

    def test_unknown_account_is_an_error(self, database_url: str) -> None:
        assert "No account 'nope'" in failed(database_url, *settings("nope"))

    def test_set_without_equals_is_a_usage_error(self, database_url: str, account_id: str) -> None:
        result = run(database_url, *settings(account_id, "retention_days"), check=False)
        assert result.returncode == 2
        assert "is not KEY=VALUE" in result.stderr
        assert "Traceback" not in result.stderr
