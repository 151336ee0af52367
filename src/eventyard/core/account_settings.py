"""The settings an account may hold, their defaults and how a change is applied.

An account stores only the settings set on it (``accounts.settings``); a
missing key means the default below, so a default changed in a later release
reaches every account that never set it. A change is a JSON merge patch
(RFC 7396): a key set to ``null`` goes back to its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.identifiers import DEFAULT_PRIMARY_KINDS, canonical_kind, is_identifier_kind

DEFAULT_AUTO_CREATE_DEFINITIONS = False
#: Ortto's ``merge_strategy``: 1 append only, 2 overwrite, 3 ignore existing.
ORTTO_MERGE_STRATEGIES = (1, 2, 3)
DEFAULT_ORTTO_MERGE_STRATEGY = 2
#: About 18 months.
DEFAULT_RETENTION_DAYS = 548
MAX_RETENTION_DAYS = 36_500
#: Segment "stores at least 24 hours' worth of event messageIds" to deduplicate.
DEFAULT_DEDUP_WINDOW_HOURS = 24
MAX_DEDUP_WINDOW_HOURS = 24 * 90
MAX_PRIMARY_KINDS = 20


class AccountSettings(BaseModel):
    """Every setting of an account, defaults filled in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    primary_kinds: tuple[StrictStr, ...] = Field(
        DEFAULT_PRIMARY_KINDS,
        min_length=1,
        max_length=MAX_PRIMARY_KINDS,
        description="Identifier kinds, in the order that settles a conflict between contacts.",
    )
    auto_create_definitions: StrictBool = Field(
        DEFAULT_AUTO_CREATE_DEFINITIONS,
        description="An Ortto activity_id without a definition creates one on first use.",
    )
    ortto_merge_strategy: Annotated[StrictInt, Field(ge=1, le=3)] = Field(
        DEFAULT_ORTTO_MERGE_STRATEGY,
        description="Ortto merge_strategy when a request gives none: "
        "1 append only, 2 overwrite, 3 ignore existing.",
    )
    retention_days: Annotated[StrictInt, Field(ge=1, le=MAX_RETENTION_DAYS)] = Field(
        DEFAULT_RETENTION_DAYS, description="How many days activities are kept."
    )
    dedup_window_hours: Annotated[StrictInt, Field(ge=1, le=MAX_DEDUP_WINDOW_HOURS)] = Field(
        DEFAULT_DEDUP_WINDOW_HOURS,
        description="Hours during which a message id (Segment messageId) is stored only once.",
    )

    @field_validator("primary_kinds")
    @classmethod
    def _known_kind_spelling(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        canonical = []
        for kind in kinds:
            if not is_identifier_kind(kind):
                raise ValueError(f"{kind!r} is not an identifier kind")
            # People type EMAIL or custid; well-known kinds match in any case.
            canonical.append(canonical_kind(kind))
        if len(set(canonical)) != len(canonical):
            raise ValueError("names a kind twice")
        return tuple(canonical)


SETTING_NAMES = tuple(AccountSettings.model_fields)


def effective_settings(stored: Mapping[str, Any]) -> AccountSettings:
    """The stored settings with defaults filled in.

    Reading is lenient: a key this release does not know, or a value it
    cannot use (written before it checked), counts as unset.
    """
    known = {k: v for k, v in stored.items() if k in AccountSettings.model_fields and v is not None}
    while True:
        try:
            return AccountSettings.model_validate(known)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if not bad & known.keys():
                raise
            known = {k: v for k, v in known.items() if k not in bad}


def apply_settings_patch(stored: Mapping[str, Any], patch: object) -> dict[str, Any]:
    """``stored`` changed by the merge patch ``patch``: what the account stores next.

    ``null`` removes a key (back to its default). An unknown key or a bad
    value is ``EventyardError`` (400) naming the key.
    """
    if not isinstance(patch, Mapping):
        raise _invalid([FieldError("settings", "settings must be a JSON object")])
    errors = [
        FieldError(
            str(key),
            f"unknown setting {key!r}; the settings are {', '.join(SETTING_NAMES)}",
        )
        for key in patch
        if key not in AccountSettings.model_fields
    ]
    if errors:
        raise _invalid(errors)
    merged = {k: v for k, v in stored.items() if k in AccountSettings.model_fields}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    try:
        checked = AccountSettings.model_validate(merged)
    except ValidationError as exc:
        raise _invalid(_field_errors(exc)) from exc
    # Keep only what is set, in its checked form (canonical kind spelling).
    return {key: _plain(getattr(checked, key)) for key in merged}


def settings_document(settings: AccountSettings) -> dict[str, Any]:
    """The settings as JSON: every key, defaults filled in."""
    return {key: _plain(getattr(settings, key)) for key in SETTING_NAMES}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"]) or "settings"
        errors.append(FieldError(path, f"{path}: {error['msg']}"))
    return errors


def _invalid(errors: list[FieldError]) -> EventyardError:
    return EventyardError("invalid_settings", errors[0].reason, 400, errors=errors)
