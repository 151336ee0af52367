"""Delivery threads: each server process with a worker, and each ``eventyard worker``, runs
``EVENTYARD_DESTINATION_WORKERS`` of them beside its job worker.

Each thread claims one delivery at a time (``services/destinations/delivery.py``)
and looks again at once while there is work, every
``EVENTYARD_WORKER_POLL_SECONDS`` when there is none. A database outage
pauses them (said once); they go on when it is back, and deliveries whose
settlement was lost are sent again once their lease runs out.

In a server process they give way to ingest (``services/pacing.py``): while
requests arrive, each thread takes ``EVENTYARD_DESTINATION_BUSY_SHARE`` of
the time, unless the delivery it just made had waited
``EVENTYARD_DESTINATION_CATCH_UP_SECONDS``; then it goes on at full speed,
which bounds the lag under sustained ingest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from eventyard.core.delivery import DestinationFormat
from eventyard.core.errors import StoreUnavailable
from eventyard.observability import Metrics
from eventyard.services.destinations.delivery import Deliverer
from eventyard.services.destinations.sealing import CredentialSealer
from eventyard.services.pacing import Foreground, give_way
from eventyard.services.ports import Store
from eventyard.settings import Settings

log = logging.getLogger("eventyard.destinations")


class DeliveryThreads:
    """The delivery threads of one process."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        formats: Mapping[str, DestinationFormat],
        *,
        worker_id: str,
        metrics: Metrics | None = None,
        foreground: Foreground | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        #: The ingest traffic of this process, which deliveries give way to.
        self.foreground = foreground
        sealer = CredentialSealer(store, settings)
        self.deliverers = [
            Deliverer(
                store,
                settings,
                formats,
                sealer,
                worker_id=f"{worker_id}:d{n}",
                on_outcome=None if metrics is None else metrics.count_delivery,
                on_lag=None if metrics is None else metrics.set_delivery_lag,
            )
            for n in range(settings.destination_workers)
        ]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._run, args=(d,), name=f"eventyard-delivery-{n}", daemon=True
            )
            for n, d in enumerate(self.deliverers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Let each thread finish its delivery in hand, then end them."""
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join()
        for deliverer in self.deliverers:
            deliverer.close()

    def _run(self, deliverer: Deliverer) -> None:
        unavailable = False
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                busy = deliverer.run_once()
            except StoreUnavailable:
                if not unavailable:
                    log.warning("delivery cannot reach the database")
                unavailable, busy = True, False
            except Exception:  # a bug: keep delivering, say so loudly
                log.exception("delivery attempt failed unexpectedly")
                busy = False
            else:
                if unavailable:
                    log.info("delivery reached the database again")
                unavailable = False
            if not busy:
                self._stop.wait(self.settings.worker_poll_seconds)
            else:
                self.give_way(deliverer, time.monotonic() - started, self._stop.wait)

    def give_way(
        self, deliverer: Deliverer, worked: float, sleep: Callable[[float], object]
    ) -> float:
        """After a delivery that took ``worked`` seconds, pause while this process
        receives ingest; not when the delivery was late. The seconds paused."""
        if deliverer.last_wait_seconds >= self.settings.destination_catch_up_seconds:
            return 0.0
        return give_way(self.foreground, worked, self.settings.destination_busy_share, sleep)
