"""Bulk work in the background gives way to the API while the API receives traffic.

A server process runs its job worker beside the API (unless separate
``eventyard worker`` processes run the jobs). A contact import or a backfill
there competes with ingest for the interpreter (one thread runs Python at a
time), for SQLite's one writer, and for PostgreSQL's CPU. Ingest must not
starve: while ingest requests arrive, bulk work takes at most
``EVENTYARD_IMPORT_BUSY_SHARE`` of the time, pausing after each chunk for
the rest, and goes back to full speed once no request was answered for
:data:`BUSY_WINDOW_SECONDS`. Requests still being answered count: on SQLite
they may be waiting for the writer lock the import held, and an import that
took their wait for quiet would take the lock again at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The API counts as busy this long after its last ingest request.
BUSY_WINDOW_SECONDS = 1.0
#: A pause is cut into steps this long, to end it soon after the API goes quiet.
PAUSE_STEP_SECONDS = 0.05


class Foreground:
    """The ingest requests this process is answering, and when it last answered one.

    Counted on the event loop's thread only; the job worker only reads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = float("-inf")
        self._serving = 0

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Around the answering of one ingest request."""
        self._serving += 1
        try:
            yield
        finally:
            self._serving -= 1
            self._last = self._clock()

    def touch(self) -> None:
        """An ingest request was answered just now."""
        self._last = self._clock()

    def busy(self) -> bool:
        """Whether an ingest request is being answered, or was within the last
        :data:`BUSY_WINDOW_SECONDS` (clients that send one after another)."""
        return self._serving > 0 or self._clock() - self._last <= BUSY_WINDOW_SECONDS


def give_way(
    foreground: Foreground | None,
    worked: float,
    share: float,
    sleep: Callable[[float], object] = time.sleep,
) -> float:
    """After ``worked`` seconds of bulk work, pause so that it took ``share`` of the time.

    Only while the API is busy; the pause ends early once it is not. The
    seconds paused.
    """
    if foreground is None or share >= 1 or not foreground.busy():
        return 0.0
    pause = worked * (1 - share) / share
    paused = 0.0
    while paused < pause and foreground.busy():
        step = min(PAUSE_STEP_SECONDS, pause - paused)
        sleep(step)
        paused += step
    return paused
