"""Docs are tested: a setting, dialect or metric without its documentation fails here.

STYLE.md, habit 12: "a dialect or setting without its page in ``docs/`` fails a test".
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from pydantic_core import PydanticUndefined

from eventyard.core.account_settings import SETTING_NAMES, AccountSettings
from eventyard.dialects.base import Dialect
from eventyard.dialects.registry import BUILTIN_DIALECTS
from eventyard.observability import Metrics
from eventyard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SETTINGS_DOC = ROOT / "docs" / "settings.md"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
API_DOC = ROOT / "docs" / "api.md"
DIALECT_DOCS = ROOT / "docs" / "dialects"
#: Variables read by the test suite and the benchmark, not by eventyard itself.
NOT_SETTINGS = {
    "EVENTYARD_TEST_POSTGRES_URL",
    "EVENTYARD_TEST_PGBOUNCER",
    "EVENTYARD_BENCH_POSTGRES_URL",
}


def env_name(field: str) -> str:
    return f"EVENTYARD_{field.upper()}"


def table_row(text: str, variable: str) -> str | None:
    """The first Markdown table row whose first cell names ``variable``."""
    for line in text.splitlines():
        if line.startswith(f"| `{variable}` |"):
            return line
    return None


SETTING_FIELDS = sorted(Settings.model_fields)


@pytest.mark.parametrize("doc", [SETTINGS_DOC, README], ids=lambda p: p.name)
@pytest.mark.parametrize("field", SETTING_FIELDS)
def test_every_setting_has_a_row_showing_its_default(doc: Path, field: str) -> None:
    row = table_row(doc.read_text(), env_name(field))
    assert row is not None, f"{doc.relative_to(ROOT)} has no table row for {env_name(field)}"
    default = Settings.model_fields[field].default
    assert default is not PydanticUndefined
    assert f"`{default}`" in row, (
        f"the {env_name(field)} row of {doc.relative_to(ROOT)} does not show its "
        f"default `{default}`: {row}"
    )


@pytest.mark.parametrize("doc", [SETTINGS_DOC, README], ids=lambda p: p.name)
def test_no_documented_setting_is_missing_from_settings(doc: Path) -> None:
    documented = set(re.findall(r"^\| `(EVENTYARD_[A-Z0-9_]+)` \|", doc.read_text(), re.M))
    real = {env_name(f) for f in SETTING_FIELDS}
    assert documented - real - NOT_SETTINGS == set(), "documented but not in Settings"


def test_every_setting_has_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"


@pytest.mark.parametrize("dialect", BUILTIN_DIALECTS, ids=lambda d: d.name)
def test_every_dialect_has_a_page_naming_its_paths(dialect: Dialect) -> None:
    page = DIALECT_DOCS / f"{dialect.name}.md"
    assert page.is_file(), f"dialect {dialect.name!r} has no docs/dialects/{dialect.name}.md"
    text = page.read_text()
    for path in dialect.paths:
        assert path in text, f"docs/dialects/{dialect.name}.md does not mention {path}"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    ci_commands = re.findall(r"^(\./scripts/\S+)", ci, re.M)
    assert ci_commands == ["./scripts/test"], ci_commands
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick_start, re.S)
    commands = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["./scripts/serve", "./scripts/test"], commands
    for command in commands:
        script = ROOT / command
        assert script.is_file(), command
        assert script.stat().st_mode & 0o111, f"{command} is not executable"


def test_every_metric_is_documented() -> None:
    text = OPERATIONS_DOC.read_text()
    for family in Metrics.create().registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        assert f"`{name}`" in text, f"docs/operations.md does not document {name}"


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_account_setting_has_a_row_showing_its_default(name: str) -> None:
    """docs/api.md has the table of account settings (``PATCH /api/v1/account/settings``)."""
    row = table_row(API_DOC.read_text(), name)
    assert row is not None, f"docs/api.md has no table row for the account setting {name}"
    default = orjson.dumps(getattr(AccountSettings(), name)).decode().replace(",", ", ")
    assert f"`{default}`" in row, f"the {name} row of docs/api.md does not show `{default}`"


def test_relative_links_in_docs_resolve() -> None:
    for doc in [README, *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target:
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to {target}"
