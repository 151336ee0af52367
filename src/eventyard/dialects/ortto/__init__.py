"""Ortto: custom activity events (``POST /v1/activities/create``)."""

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.ortto.destination import DESTINATION
from eventyard.dialects.ortto.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.ortto.routes import PATH, router

DIALECT = Dialect(
    name="ortto",
    router=router,
    paths=(PATH,),
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    credentials=(CredentialKind("ortto", "ortto_api_key", "eyo"),),
    destination=DESTINATION,
)
