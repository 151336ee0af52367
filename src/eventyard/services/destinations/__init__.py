"""Destinations: deliver an account's activities to other platforms, durably, with replay.

- ``outbox``: ingest queues each stored activity for every enabled destination
  whose filter it passes, in the transaction that stores it;
- ``delivery``: workers claim a lane's waiting activities as a delivery, send
  it in the destination kind's wire format, retry, dead-letter;
- ``replay``: the job that queues stored history (or the dead letters) again;
- ``manage``: the API's use cases; ``sealing``: credentials encrypted at rest;
- ``webhook``: the vendor-neutral kind (the vendor kinds are their dialects').
"""
