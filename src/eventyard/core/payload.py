"""Checks that a decoded JSON payload can be stored identically on every backend.

Two things JSON allows cannot be kept faithfully: the character U+0000
(PostgreSQL text and JSONB refuse it) and integers beyond 64 bits (the JSON
codec would turn them into floats and change their value). Both are refused
with the path of every offending value, so a client knows what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from eventyard.core.errors import FieldError

Path = tuple[str | int, ...]

_LONG_DIGITS = re.compile(rb"[0-9]{20,}")
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
NUL_REASON = "contains the character \\u0000, which cannot be stored; remove it"
BIG_INT_REASON = "is an integer beyond 64 bits, which cannot be kept exactly; send it as a string"


class _OversizeInt(int):
    """An integer literal the fast JSON codec would have turned into a float."""


def _parse_int(text: str) -> int:
    value = int(text)
    return _OversizeInt(value) if not _INT64_MIN <= value <= _UINT64_MAX else value


def unstorable_values(raw: bytes, payload: Any) -> list[tuple[Path, str]]:
    """Paths of values in ``payload`` (decoded from ``raw``) that cannot be stored as sent.

    Cheap for ordinary bodies: the payload is only walked when ``raw`` holds a
    ``\\u0000`` escape or a run of 20 digits.
    """
    problems: list[tuple[Path, str]] = []
    if _LONG_DIGITS.search(raw):
        exact = json.loads(raw, parse_int=_parse_int)
        problems += [
            (path, BIG_INT_REASON) for path, v in _leaves(exact) if type(v) is _OversizeInt
        ]
    if b"\\u0000" in raw:
        problems += [
            (path, NUL_REASON) for path, v in _leaves(payload) if isinstance(v, str) and "\x00" in v
        ]
    return problems


def field_error(path: Path, reason: str) -> FieldError:
    """A ``FieldError`` for ``path``: a leading list position becomes the record index."""
    if path and isinstance(path[0], int):
        index, rest = path[0], path[1:]
    else:
        index, rest = None, path
    field = ".".join(str(p) for p in rest) or "record"
    return FieldError(field=field, reason=f"{field} {reason}", index=index)


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every key and scalar value in ``value`` with its path (a key is its own path)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), key
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value
