"""CleverTap: the Upload Events API (``POST /1/upload``), events and profiles."""

import secrets
import string

from eventyard.core.credentials import CredentialKind
from eventyard.dialects.base import Dialect
from eventyard.dialects.clevertap.destination import DESTINATION
from eventyard.dialects.clevertap.errors import ERROR_SCHEMA, render_error
from eventyard.dialects.clevertap.routes import PATH, router


def new_account_id() -> str:
    """An id shaped like CleverTap's (``XXX-XXX-XXXX``); it is public, not secret."""
    alphabet = string.ascii_uppercase + string.digits
    part = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{part[:3]}-{part[3:6]}-{part[6:]}"


DIALECT = Dialect(
    name="clevertap",
    router=router,
    paths=(PATH,),
    render_error=render_error,
    error_schema=ERROR_SCHEMA,
    # The account id goes in X-CleverTap-Account-Id, the passcode in X-CleverTap-Passcode.
    credentials=(
        CredentialKind(
            "clevertap",
            "clevertap_passcode",
            "eyt",
            public_id_name="clevertap_account_id",
            new_public_id=new_account_id,
            public_id_field="account_id",
            secret_field="passcode",  # noqa: S106 (a field name, not a secret)
        ),
    ),
    destination=DESTINATION,
)
