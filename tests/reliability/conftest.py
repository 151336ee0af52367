"""Every test under ``tests/reliability`` carries the ``reliability`` marker.

They run in the normal suite (``./scripts/test``); ``-m reliability`` runs
them alone, ``-m "not reliability"`` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import empty_database  # noqa: F401  (a fixture shared with e2e)

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
