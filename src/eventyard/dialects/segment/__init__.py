"""Segment: the HTTP Tracking API (``POST /v1/batch``, ``/v1/identify``, ``/v1/track`` …)."""

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.segment.destination import DESTINATION
from eventyard.dialects.segment.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.segment.routes import PATHS, router

DIALECT = Dialect(
    name="segment",
    router=router,
    paths=PATHS,
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    credentials=(CredentialKind("segment", "segment_write_key", "eys"),),
    destination=DESTINATION,
)
