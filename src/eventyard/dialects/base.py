"""What a dialect provides to the application."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from eventyard.core.credentials import CredentialKind
from eventyard.core.delivery import DestinationFormat
from eventyard.core.errors import EventyardError

if TYPE_CHECKING:
    from eventyard.dialects.pipeline import IngestEndpoint


@dataclass(frozen=True)
class SharedRoute:
    """A vendor path that several dialects post to (``/batch``: Amplitude's and PostHog's).

    The application mounts one route for the path; it reads and inflates the
    body once, then asks each dialect sharing the path, in registry order,
    whether the body is its own (``claims``, given the request and the
    inflated body; it must be cheap: no full parse where a glance will do)
    and runs the first claimant's ``endpoint``. The last dialect to share a
    path is the default: it takes a body nobody claims, and its error shape
    answers what goes wrong before a claim (a body too large, a 404 or 405).
    """

    path: str
    claims: Callable[[Request, bytes], bool]
    endpoint: IngestEndpoint[Any]
    summary: str
    description: str


@dataclass(frozen=True)
class Dialect:
    """A built-in dialect: its routes and how it renders errors on its paths."""

    name: str
    router: APIRouter
    #: Request paths whose errors (including 404/405/500) use this dialect's shape.
    paths: tuple[str, ...]
    render_error: Callable[[EventyardError], Response]
    #: The JSON schema of ``render_error``'s body, documented for every error status.
    error_schema: dict[str, Any]
    #: The credentials an account holds for this dialect, made at account creation.
    credentials: tuple[CredentialKind, ...] = ()
    #: Paths this dialect shares with others, each dispatched on the body.
    shared_routes: tuple[SharedRoute, ...] = ()
    #: How activities are delivered to this vendor when it is a destination's
    #: ``kind`` (``core/delivery.py``); None when it cannot be one.
    destination: DestinationFormat | None = None
