"""CleverTap: the Upload Events API (``POST /1/upload``), events and profiles."""

from eventyard.dialects.base import Dialect
from eventyard.dialects.clevertap.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.clevertap.routes import PATH, router

DIALECT = Dialect(
    name="clevertap",
    router=router,
    paths=(PATH,),
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
)
