"""Fixtures of the tests that run eventyard commands as real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own with nothing in it, not even the schema: a SQLite file in
    ``tmp_path`` or a fresh PostgreSQL database beside the one of ``postgres_url``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    with scratch_postgres_database(str(request.getfixturevalue("postgres_url"))) as url:
        yield url
