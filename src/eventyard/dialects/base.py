"""What a dialect provides to the application."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Response

from eventyard.core.credentials import CredentialKind
from eventyard.core.errors import EventyardError


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
