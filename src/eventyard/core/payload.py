"""Decoding JSON bodies so that every backend stores exactly what was sent.

Two things JSON allows cannot be kept faithfully: the character U+0000
(PostgreSQL text and JSONB refuse it) and integers beyond 64 bits (the fast
JSON codec turns them into floats, changing their value). Dialects refuse
both, naming the record and the path of every offending value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

Path = tuple[str | int, ...]

# A run of 20 or more ASCII digits, found by mapping every digit to "0" and
# searching for twenty of them: about ten times faster than a regular
# expression over a large body.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20
_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
NUL_REASON = "contains the character \\u0000, which cannot be stored; remove it"
BIG_INT_REASON = "is an integer beyond 64 bits, which cannot be kept exactly; send it as a string"
DEPTH_REASON = "is nested more than 254 levels deep, which cannot be stored"
UNICODE_REASON = "holds text that is not valid Unicode (a lone surrogate), which cannot be stored"


class OversizeInt(int):
    """An integer literal beyond 64 bits, kept exactly so that it can be refused."""


@dataclass(frozen=True, slots=True)
class JsonBody:
    value: Any
    #: Whether records must be checked with :func:`unstorable_values`; false
    #: for ordinary bodies, which then cost nothing extra.
    suspicious: bool


#: Why a body that is not UTF-8 is refused (both codecs).
NOT_UTF8 = "the text is not valid UTF-8"


def decode_json(raw: bytes) -> JsonBody:
    """Decode ``raw``; ``ValueError`` (or ``orjson.JSONDecodeError``) when it is not JSON.

    Text that is not UTF-8 is refused with one message whichever codec reads
    the body: which one does depends on the body's digits, not on its bytes.
    """
    if _TWENTY_DIGITS in raw.translate(_DIGITS_AS_ZERO):
        # Rare: the standard codec keeps long integers exact (as OversizeInt).
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            raise ValueError(NOT_UTF8) from exc
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_finite_float, parse_constant=_refuse_constant
        )
        return JsonBody(value, suspicious=True)
    try:
        return JsonBody(orjson.loads(raw), suspicious=b"\\u0000" in raw)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in str(exc):
            raise ValueError(NOT_UTF8) from exc
        raise


def unstorable_values(record: Any, *, thorough: bool = False) -> list[tuple[str, str]]:
    """``(dotted path, reason)`` for every value of ``record`` that cannot be stored as sent.

    Always, at the cost of one serialisation in C: nesting deeper than the
    store can write back and text that is not valid Unicode. With
    ``thorough`` (set when the body holds a ``\\u0000`` escape or a long
    run of digits): every U+0000 and every integer beyond 64 bits, by path.
    """
    try:
        orjson.dumps(record)
    except orjson.JSONEncodeError as exc:
        message = str(exc)
        if "Recursion limit" in message:
            return [("record", DEPTH_REASON)]
        if "surrogates" in message or "UTF-8" in message:
            return [("record", UNICODE_REASON)]
        if not thorough:
            return [("record", f"cannot be stored: {message}")]
    if not thorough:
        return []
    problems: list[tuple[str, str]] = []
    for path, value in _leaves(record):
        if type(value) is OversizeInt:
            problems.append((_dotted(path), BIG_INT_REASON))
        elif isinstance(value, str) and "\x00" in value:
            problems.append((_dotted(path), NUL_REASON))
    return problems


def _parse_int(text: str) -> int:
    value = int(text)
    return OversizeInt(value) if not _INT64_MIN <= value <= _UINT64_MAX else value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: refused like the fast codec refuses it
        raise ValueError(f"number {text} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path) or "record"


def _leaves(value: Any) -> Iterator[tuple[Path, Any]]:
    """Every key and scalar value in ``value`` with its path (a key is its own path).

    Iterative, so that no nesting depth can exhaust Python's stack.
    """
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            children: list[tuple[Path, Any]] = []
            for key, child in item.items():
                yield (*path, key), key
                children.append(((*path, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([((*path, i), child) for i, child in enumerate(item)]))
        else:
            yield path, item
