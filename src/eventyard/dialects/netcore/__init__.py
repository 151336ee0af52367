"""Netcore: the Add Activity API (``POST /v1/activity/upload``)."""

from eventyard.dialects.base import Dialect
from eventyard.dialects.netcore.errors import render_error
from eventyard.dialects.netcore.routes import PATH, router

DIALECT = Dialect(name="netcore", router=router, paths=(PATH,), render_error=render_error)
