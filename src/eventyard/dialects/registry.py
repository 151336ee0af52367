"""The built-in dialects. Adding a dialect is one package and one line here."""

from __future__ import annotations

from typing import Any

from eventyard.core.credentials import ADMIN, READ, CredentialKind
from eventyard.core.delivery import DestinationFormat
from eventyard.core.model import NewAccount
from eventyard.dialects.amplitude import DIALECT as AMPLITUDE
from eventyard.dialects.base import Dialect
from eventyard.dialects.clevertap import DIALECT as CLEVERTAP
from eventyard.dialects.cordial import DIALECT as CORDIAL
from eventyard.dialects.customerio import DIALECT as CUSTOMERIO
from eventyard.dialects.customerio import DIALECT_V2 as CUSTOMERIO_V2
from eventyard.dialects.mixpanel import DIALECT as MIXPANEL
from eventyard.dialects.netcore import DIALECT as NETCORE
from eventyard.dialects.ortto import DIALECT as ORTTO
from eventyard.dialects.posthog import DIALECT as POSTHOG
from eventyard.dialects.segment import DIALECT as SEGMENT
from eventyard.services import accounts
from eventyard.services.destinations.webhook import WEBHOOK
from eventyard.services.ports import Store

BUILTIN_DIALECTS: tuple[Dialect, ...] = (
    NETCORE,
    CLEVERTAP,
    ORTTO,
    CORDIAL,
    SEGMENT,
    MIXPANEL,
    AMPLITUDE,
    POSTHOG,
    CUSTOMERIO,
    CUSTOMERIO_V2,
)

#: Every credential an account holds: the admin token and each dialect's.
CREDENTIAL_KINDS: tuple[CredentialKind, ...] = (
    ADMIN,
    *(kind for dialect in BUILTIN_DIALECTS for kind in dialect.credentials),
)

#: What the credentials API issues: those, and the read-only token.
ISSUABLE_KINDS: tuple[CredentialKind, ...] = (*CREDENTIAL_KINDS, READ)


def destination_formats() -> dict[str, DestinationFormat]:
    """Every destination kind: the built-in ``webhook`` and each dialect's format."""
    formats = {WEBHOOK.kind: WEBHOOK}
    for dialect in BUILTIN_DIALECTS:
        if dialect.destination is not None:
            formats[dialect.destination.kind] = dialect.destination
    return formats


def create_account(store: Store, name: str, settings: dict[str, Any] | None = None) -> NewAccount:
    """An account with the credentials of every built-in dialect (shown this once)."""
    return accounts.create_account(store, name, settings, credential_kinds=CREDENTIAL_KINDS)
