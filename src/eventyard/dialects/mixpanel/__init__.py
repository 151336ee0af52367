"""Mixpanel: the ingestion API (``/track``, ``/engage``, ``/groups``, ``/import``)."""

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.mixpanel.destination import DESTINATION
from eventyard.dialects.mixpanel.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.mixpanel.routes import PATHS, router
from eventyard.dialects.mixpanel.translate import (
    SECRET_KIND,
    SECRET_PREFIX,
    TOKEN_KIND,
    TOKEN_PREFIX,
)

DIALECT = Dialect(
    name="mixpanel",
    router=router,
    paths=PATHS,
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    credentials=(
        CredentialKind(TOKEN_KIND, "mixpanel_project_token", TOKEN_PREFIX),
        CredentialKind(SECRET_KIND, "mixpanel_api_secret", SECRET_PREFIX),
    ),
    destination=DESTINATION,
)
