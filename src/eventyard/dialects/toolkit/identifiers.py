"""An identifier's value as text, from the JSON types a dialect's spec allows.

Specs say "String/Integer" (Netcore's identity, CleverTap's ids), "a string
or a number" (Segment's userId) or only a string (an e-mail address): a
dialect passes which numbers it takes. ``true`` and ``false`` are never
numbers here, though Python counts them as integers.
"""

from __future__ import annotations

from typing import Any, Literal

#: Which JSON numbers stand for their text: none, integers, or integers and floats.
Numbers = Literal["none", "int", "int_or_float"]


def identifier_text(raw: Any, numbers: Numbers = "int") -> str | None:
    """``raw`` as text, or ``None`` when it is of a type the dialect does not take.

    An integral float is written without its ``.0`` (``42.0`` -> ``"42"``),
    as a client that sent an integer through a float-only JSON encoder meant.
    The text is not stripped or checked: ``core.identifiers`` normalises it.
    """
    if isinstance(raw, str):
        return raw
    if numbers == "none" or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if numbers == "int_or_float" and isinstance(raw, float):
        return str(int(raw)) if raw.is_integer() else str(raw)
    return None
