"""How many server processes ``eventyard serve`` starts when it is not told.

Issue 18: "`eventyard serve` picks a worker count that suits the machine
when none is given, and says so at start." docs/operations.md (Serving):
"one process on SQLite ...; on PostgreSQL one per two CPUs".
"""

from __future__ import annotations

import pytest

from eventyard.cli import choose_workers


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_count_asked_for_is_kept(backend: str) -> None:
    count, why = choose_workers(3, backend, 2)
    assert count == 3
    assert "as asked" in why


@pytest.mark.parametrize("cpus", [1, 2, 16])
def test_sqlite_gets_one_process_whatever_the_machine(cpus: int) -> None:
    count, why = choose_workers(0, "sqlite", cpus)
    assert count == 1
    assert "SQLite" in why


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (2, 1), (3, 1), (4, 2), (16, 8)])
def test_postgresql_gets_one_process_per_two_cpus(cpus: int, expected: int) -> None:
    count, why = choose_workers(0, "postgresql", cpus)
    assert count == expected
    assert f"{cpus} CPUs" in why
