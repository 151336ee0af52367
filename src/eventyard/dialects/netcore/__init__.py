"""Netcore: the Add Activity API (``POST /v1/activity/upload``) and the bulk contact
upload (``POST /apiv2?type=contact&activity=bulkupload``)."""

from fastapi import APIRouter

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.netcore import bulkupload
from eventyard.dialects.netcore.destination import DESTINATION
from eventyard.dialects.netcore.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.netcore.routes import PATH, router

_routes = APIRouter()
_routes.include_router(router)
_routes.include_router(bulkupload.router)

DIALECT = Dialect(
    name="netcore",
    router=_routes,
    paths=(PATH, bulkupload.PATH),
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    credentials=(CredentialKind("netcore", "netcore_api_key", "eyn"),),
    destination=DESTINATION,
)
