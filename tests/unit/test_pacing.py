"""Bulk work gives way to the API (services/pacing.py), with a clock the test moves.

A fake clock and sleep stand in for time: what is checked is how long an
import pauses, which real timing would only blur.
"""

from __future__ import annotations

import pytest

from eventyard.services.pacing import (
    BUSY_WINDOW_SECONDS,
    PAUSE_STEP_SECONDS,
    Foreground,
    give_way,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        #: When a request arrives, as the sleeping import would see it.
        self.arrivals: list[float] = []
        self.foreground: Foreground | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        end = self.now + seconds
        assert self.foreground is not None
        while self.arrivals and self.arrivals[0] <= end + 1e-9:
            self.now = self.arrivals.pop(0)  # the request arrives at its own time
            self.foreground.touch()
        self.now = end


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def foreground(clock: Clock) -> Foreground:
    clock.foreground = Foreground(clock)
    return clock.foreground


def test_an_idle_api_lets_the_import_run_at_full_speed(
    clock: Clock, foreground: Foreground
) -> None:
    """No ingest request yet: no pause at all."""
    assert give_way(foreground, 0.6, 0.3, clock.sleep) == 0
    assert clock.now == 1000.0


def test_a_busy_api_gets_the_rest_of_the_time(clock: Clock, foreground: Foreground) -> None:
    """EVENTYARD_IMPORT_BUSY_SHARE 0.3: a chunk of 0.6 s is followed by a pause of 1.4 s
    while requests keep arriving, so the import takes 30 % of the time."""
    foreground.touch()
    clock.arrivals = [1000.0 + 0.25 * n for n in range(1, 20)]
    paused = give_way(foreground, 0.6, 0.3, clock.sleep)
    assert paused == pytest.approx(1.4)
    assert 0.6 / (0.6 + paused) == pytest.approx(0.3)


def test_the_pause_ends_once_the_api_goes_quiet(clock: Clock, foreground: Foreground) -> None:
    """The last request came 0.2 s into the pause: the import goes on one busy window
    later (give or take the pause's steps), not after the 27 s the share asks for."""
    foreground.touch()
    clock.arrivals = [1000.2]
    paused = give_way(foreground, 3.0, 0.1, clock.sleep)
    assert paused == pytest.approx(0.2 + BUSY_WINDOW_SECONDS, abs=2 * PAUSE_STEP_SECONDS)


def test_a_share_of_one_never_pauses(clock: Clock, foreground: Foreground) -> None:
    foreground.touch()
    assert give_way(foreground, 0.6, 1.0, clock.sleep) == 0


def test_a_worker_of_its_own_does_not_pause(clock: Clock) -> None:
    """A separate ``eventyard worker`` process sees no API traffic (``foreground`` None)."""
    assert give_way(None, 0.6, 0.3, clock.sleep) == 0


def test_a_request_still_being_answered_keeps_the_api_busy(
    clock: Clock, foreground: Foreground
) -> None:
    """On SQLite a request may wait seconds for the writer lock the import held: while
    it is answered the API is busy, however long ago it arrived; once answered, for one
    more busy window."""
    with foreground.serving():
        clock.now += 10 * BUSY_WINDOW_SECONDS
        assert foreground.busy()
    clock.now += BUSY_WINDOW_SECONDS / 2
    assert foreground.busy()
    clock.now += BUSY_WINDOW_SECONDS
    assert not foreground.busy()
