"""Contact lists (Netcore ``listid``): integer ids, a name unique in its account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eventyard.core.errors import EventyardError

MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class ContactList:
    id: int
    name: str
    created_at: datetime
    #: How many contacts are members (filled where it is counted).
    members: int = 0


def check_list_name(name: object) -> str:
    """The name trimmed, or a 400 saying what is wrong with it."""
    if not isinstance(name, str) or not name.strip():
        raise EventyardError("invalid_list", "a list needs a non-empty name")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise EventyardError("invalid_list", f"a list name is at most {MAX_NAME_LENGTH} characters")
    return name
