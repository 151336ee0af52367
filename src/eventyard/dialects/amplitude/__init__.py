"""Amplitude: the HTTP V2 API (``POST /2/httpapi``), Batch Event Upload (``POST /batch``,
shared with PostHog) and the Identify API (``POST /identify``)."""

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.amplitude.destination import DESTINATION
from eventyard.dialects.amplitude.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.amplitude.routes import BATCH_ROUTE, PATHS, router
from eventyard.dialects.base import Dialect

DIALECT = Dialect(
    name="amplitude",
    router=router,
    paths=PATHS,
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    credentials=(CredentialKind("amplitude", "amplitude_api_key", "eyamp"),),
    shared_routes=(BATCH_ROUTE,),
    destination=DESTINATION,
)
