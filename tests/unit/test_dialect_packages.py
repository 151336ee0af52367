"""Dialect packages stand alone: none imports another, and the shared parts import none.

A dialect is one package under ``dialects/`` and one line in
``dialects/registry.py``. This check finds the packages itself, so a new
dialect needs no line here (nor in the import-linter contracts, which name
layers, not dialects).
"""

from __future__ import annotations

import ast
from pathlib import Path

import eventyard.dialects
from eventyard.dialects.registry import BUILTIN_DIALECTS

DIALECTS_DIR = Path(eventyard.dialects.__file__).parent
#: Packages under ``dialects/`` that are shared by every dialect, not dialects.
SHARED_PACKAGES = {"toolkit"}


def dialect_packages() -> set[str]:
    return {
        path.parent.name
        for path in DIALECTS_DIR.glob("*/__init__.py")
        if path.parent.name not in SHARED_PACKAGES
    }


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def dialects_imported_by(files: list[Path]) -> set[str]:
    prefix = "eventyard.dialects."
    return {
        module[len(prefix) :].split(".")[0]
        for path in files
        for module in imported_modules(path)
        if module.startswith(prefix)
    } & dialect_packages()


def test_every_dialect_package_is_registered() -> None:
    assert {d.name for d in BUILTIN_DIALECTS} == dialect_packages()


def test_no_dialect_imports_another() -> None:
    for name in sorted(dialect_packages()):
        files = sorted((DIALECTS_DIR / name).rglob("*.py"))
        assert dialects_imported_by(files) <= {name}, f"dialects/{name} imports another dialect"


def test_the_shared_parts_import_no_dialect() -> None:
    shared = [DIALECTS_DIR / "base.py", DIALECTS_DIR / "pipeline.py"]
    for package in sorted(SHARED_PACKAGES):
        shared += sorted((DIALECTS_DIR / package).rglob("*.py"))
    assert dialects_imported_by(shared) == set()
