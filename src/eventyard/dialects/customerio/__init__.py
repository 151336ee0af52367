"""Customer.io: the Track API, v1 (``/api/v1/customers/…``, ``/api/v1/events``) and v2
(``/api/v2/entity``, ``/api/v2/batch``).

Two dialect entries share one package: v1 and v2 answer errors in different
shapes (``{"meta": {"errors": […]}}`` and ``{"errors": [{…}]}``), and a
dialect renders one shape on its paths. The credential belongs to the first.
"""

import secrets

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.customerio.destination import DESTINATION
from eventyard.dialects.customerio.errors import (
    V1_ERROR_SCHEMA,
    V2_ERROR_SCHEMA,
    render_v1,
    render_v2,
)
from eventyard.dialects.customerio.routes import V1_PATHS, V2_PATHS, v1_router, v2_router


def new_site_id() -> str:
    """A site id shaped like Customer.io's (20 hex digits); it is public, not secret."""
    return secrets.token_hex(10)


DIALECT = Dialect(
    name="customerio",
    router=v1_router,
    paths=V1_PATHS,
    render_error=render_v1,
    error_schema=V1_ERROR_SCHEMA,
    # HTTP Basic: the site id as user name, the API key as password.
    credentials=(
        CredentialKind(
            "customerio",
            "customerio_api_key",
            "eyio",
            public_id_name="customerio_site_id",
            new_public_id=new_site_id,
            public_id_field="site_id",
            secret_field="api_key",  # noqa: S106 (a field name, not a secret)
        ),
    ),
)

DIALECT_V2 = Dialect(
    name="customerio",
    router=v2_router,
    paths=V2_PATHS,
    render_error=render_v2,
    error_schema=V2_ERROR_SCHEMA,
    destination=DESTINATION,
)
