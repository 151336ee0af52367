"""The capture bodies as pydantic models, for the OpenAPI document only.

The routes read the body themselves (it may be gzip, lz64, base64 or a form,
and a bad event must drop alone rather than fail the request), so these
models describe the JSON wire format; ``translate.py`` enforces it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Id = str | int


class Event(BaseModel):
    """One event (capture page, "Single event"; ``RawEvent`` of the capture service)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event: str = Field(description="the activity's name; `$identify`, `$create_alias` … act")
    distinct_id: Id | None = Field(
        None, description="identifier kind `identity` (`anonid` when personless)"
    )
    properties: dict[str, Any] | None = Field(None, description="the activity's properties")
    uuid: str | None = Field(None, description="the dedup key; a UUID")
    timestamp: str | None = Field(None, description="ISO 8601; corrected by `sent_at`")
    offset: int | None = Field(None, description="milliseconds before the receive time")
    set_: dict[str, Any] | None = Field(None, alias="$set", description="person properties")
    set_once: dict[str, Any] | None = Field(
        None, alias="$set_once", description="person properties, written only when missing"
    )
    api_key: str | None = Field(None, description="the project API key (`posthog_api_key`)")


class Batch(BaseModel):
    """``/batch``: any number of events, at most 20 MB."""

    model_config = ConfigDict(extra="allow")

    api_key: str | None = Field(None, description="the project API key (`posthog_api_key`)")
    batch: list[Event]
    sent_at: str | None = Field(None, description="ISO 8601: when the client sent the batch")
    historical_migration: bool | None = None


def request_body() -> dict[str, Any]:
    """The ``requestBody`` of every capture path: a batch, one event or an array of events."""
    batch = Batch.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    definitions = batch.pop("$defs", {})
    event = definitions["Event"]

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("$ref") == "#/$defs/Event":
                return event
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    schema = {"anyOf": [inline(batch), event, {"type": "array", "items": event}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
