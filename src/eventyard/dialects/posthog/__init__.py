"""PostHog: the capture API (``POST /batch``, ``/capture``, ``/e``, ``/i/v0/e``)."""

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.posthog.destination import DESTINATION
from eventyard.dialects.posthog.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.posthog.routes import PATHS, SHARED_ROUTES, router

DIALECT = Dialect(
    name="posthog",
    router=router,
    paths=PATHS,
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    # The project API key travels in the body; "phc_" is how PostHog's own keys begin.
    credentials=(CredentialKind("posthog", "posthog_api_key", "phc"),),
    shared_routes=SHARED_ROUTES,
    destination=DESTINATION,
)
