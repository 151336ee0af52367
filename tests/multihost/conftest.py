"""Every test under ``tests/multihost`` carries the ``multihost`` marker.

They run in the normal suite (``./scripts/test``) at a small size;
``-m multihost`` runs them alone, ``-m "not multihost"`` leaves them out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.multihost)
