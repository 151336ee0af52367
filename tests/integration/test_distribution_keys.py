"""The schema can be distributed by account (Citus) without change.

Citus distributes a table by one column, and a distributed table's primary
key and unique constraints must contain it; colocated tables join and
reference each other on it. So every table holding account data carries
``account_id``, and its primary key and every unique constraint (and index)
start with it, as do its foreign keys to other account tables. The tables
that cannot are listed here with the reason, which docs/scaling.md
("Distribution by account") gives too. Checked on the migrated schema of
both databases, the monthly partitions of ``activities`` included.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from eventyard.storage.engine import normalize_database_url
from eventyard.storage.partitions import is_partition

SCALING_DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"

#: Tables that are not distributed by account, and why (docs/scaling.md says the same).
NOT_BY_ACCOUNT = {
    "accounts": "the accounts themselves",
    "alembic_version": "Alembic's record of the schema revision",
    "instance_secrets": "the installation's own secrets",
    "credentials": "found by the secret's digest before the account is known",
    "console_sessions": "found by the cookie's token before the account is known",
    "jobs": "one queue for every account",
    "lists": "list ids are integers unique across accounts",
}


def table_names(url: str) -> dict[str, list[str]]:
    """Each table's violations of the rule (empty list: it follows it)."""
    engine = create_engine(normalize_database_url(url))
    try:
        inspector = inspect(engine)
        found: dict[str, list[str]] = {}
        for table in inspector.get_table_names():
            problems: list[str] = []
            columns = {c["name"] for c in inspector.get_columns(table)}
            if "account_id" not in columns:
                problems.append("no account_id column")
            pk = inspector.get_pk_constraint(table)["constrained_columns"]
            if pk[:1] != ["account_id"]:
                problems.append(f"primary key {pk}")
            for unique in inspector.get_unique_constraints(table):
                if unique["column_names"][:1] != ["account_id"]:
                    problems.append(f"unique constraint {unique['column_names']}")
            for index in inspector.get_indexes(table):
                if index["unique"] and index["column_names"][:1] != ["account_id"]:
                    problems.append(f"unique index {index['column_names']}")
            for fk in inspector.get_foreign_keys(table):
                referred = fk["referred_table"]
                if referred in NOT_BY_ACCOUNT and referred != "accounts":
                    continue  # a reference table, present on every node
                wanted = ["id"] if referred == "accounts" else ["account_id"]
                if fk["referred_columns"][:1] != wanted:
                    problems.append(f"foreign key {fk['constrained_columns']} -> {referred}")
            found[table] = problems
        return found
    finally:
        engine.dispose()


def test_every_account_table_is_keyed_by_account_first(database_url: str) -> None:
    tables = table_names(database_url)
    wrong = {
        name: problems
        for name, problems in tables.items()
        if problems and name not in NOT_BY_ACCOUNT
    }
    assert wrong == {}
    if "activities" in tables and database_url.startswith("postgresql"):
        assert any(is_partition(name) for name in tables), "the partitions were checked"


def test_the_exceptions_are_real_and_documented(database_url: str) -> None:
    """An exception that follows the rule after all is taken off the list; each one
    left has its reason in docs/scaling.md."""
    tables = table_names(database_url)
    doc = SCALING_DOC.read_text()
    section = doc.split("## Distribution by account", 1)[1]
    for name, reason in NOT_BY_ACCOUNT.items():
        if name == "alembic_version":
            continue
        assert tables.get(name), f"{name} follows the rule: take it off NOT_BY_ACCOUNT"
        assert f"`{name}`" in section, f"docs/scaling.md does not say why {name} is not"
        assert reason in section, f"docs/scaling.md does not give the reason for {name}"
