"""Time-sortable identifiers: 24 lowercase hex characters.

The first 12 hex digits are the creation time in milliseconds since the
epoch, the last 12 are random; within one process, ids created in the same
millisecond still sort in creation order (the random part is incremented).
Other dialects expose contact ids as Ortto ``person_id`` and CleverTap
``objectId``, both of which are 24 hex characters.
"""

from __future__ import annotations

import os
import re
import threading
import time

_ID_RE = re.compile(r"\A[0-9a-f]{24}\Z")
_RANDOM_MAX = (1 << 48) - 1
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def new_id(now_ms: int | None = None) -> str:
    """Return a new 24-hex id that sorts after every id this process made before."""
    global _last_ms, _last_random
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms and _last_random < _RANDOM_MAX:
            ms = _last_ms
            rand = _last_random + 1
        else:
            rand = int.from_bytes(os.urandom(6), "big") >> 1
        _last_ms, _last_random = ms, rand
    return f"{ms & ((1 << 48) - 1):012x}{rand:012x}"


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of an eventyard id."""
    return bool(_ID_RE.match(value))
