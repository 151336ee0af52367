"""Vendor names live under ``dialects/``: adding a dialect touches its package and the registry.

Issue 18: "adding a dialect touches no file outside its package and the
registry line (a test lists the modules that name a vendor and fails on a
new one outside ``dialects/``)". Comments and docstrings may cite a vendor's
documentation anywhere; code (names, attributes, strings) may not.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import eventyard

PACKAGE = Path(eventyard.__file__).parent
VENDOR = re.compile(
    r"netcore|cordial|ortto|clevertap|segment|mixpanel|amplitude|posthog|customer\.?io",
    re.IGNORECASE,
)

#: Modules outside ``dialects/`` that name a vendor in code today, and why it
#: is not the dialect's to declare (yet). The list may only shrink.
KNOWN: dict[str, str] = {
    "core/account_settings.py": "the account setting ortto_merge_strategy (stored settings key)",
    "core/model.py": "Account.ortto_merge_strategy reads that setting",
    "app.py": "the OpenAPI description lists the dialects spoken",
    "cli.py": "help texts of the lists and definitions commands",
    "api/lists.py": "the lists API description cites the Netcore listid",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def vendor_names_in_code(source: str) -> set[str]:
    """Vendor names in the identifiers and strings of ``source`` (not comments, not docstrings)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    words: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            words.append(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.alias):
            words.append(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            words.append(node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            words.append(node.value)
    return {match.lower() for word in words for match in VENDOR.findall(word)}


def modules_naming_vendors() -> dict[str, set[str]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("dialects/", "storage/migrations/")):
            continue
        names = vendor_names_in_code(path.read_text(encoding="utf-8"))
        if names:
            found[relative] = names
    return found


def test_no_module_outside_dialects_names_a_new_vendor() -> None:
    found = modules_naming_vendors()
    new = {module: sorted(names) for module, names in found.items() if module not in KNOWN}
    assert not new, (
        f"these modules name a vendor outside dialects/: {new}; declare it on the dialect "
        "(its Dialect entry in dialects/<vendor>/__init__.py) instead"
    )


def test_the_known_list_only_holds_modules_that_still_name_a_vendor() -> None:
    found = modules_naming_vendors()
    stale = sorted(set(KNOWN) - set(found))
    assert not stale, f"remove {stale} from KNOWN: they no longer name a vendor"


def test_the_check_sees_code_and_not_comments() -> None:
    source = '"""Netcore said so."""\n# CleverTap too\nkey = "ortto_api_key"\nsegment_id = 1\n'
    assert vendor_names_in_code(source) == {"ortto", "segment"}
