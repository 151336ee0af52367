"""Cordial: contact activities (``POST``/``GET /v2/contactactivities``) and their exports."""

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.cordial.destination import DESTINATION
from eventyard.dialects.cordial.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.cordial.routes import EXPORT_PATH, JOBS_PATH, PATH, router

DIALECT = Dialect(
    name="cordial",
    router=router,
    paths=(PATH, EXPORT_PATH, EXPORT_PATH + "/", JOBS_PATH + "/"),
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    credentials=(CredentialKind("cordial", "cordial_api_key", "eyc"),),
    destination=DESTINATION,
)
