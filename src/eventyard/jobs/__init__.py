"""Durable background work: claim, run, retry, report.

Handlers get the store passed in (``JobRun.store``); this package never
imports storage, the HTTP API, the dialects or the CLI.
"""
