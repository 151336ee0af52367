"""The request bodies of the Segment endpoints, as pydantic models for the OpenAPI document.

The routes read the body themselves (it may be gzip-compressed, and a bad
message must drop alone rather than fail the request), so these models
describe the wire format; ``translate.py`` enforces it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = str | int | None


class Common(BaseModel):
    """The fields every call has (Segment Spec, "Common fields")."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    userId: Id = Field(None, description="identifier kind `identity`; null allowed")
    anonymousId: Id = Field(None, description="identifier kind `anonid`; null allowed")
    messageId: str | None = Field(
        None, max_length=255, description="dedup key within the account's dedup window"
    )
    timestamp: str | None = Field(None, description="ISO 8601; default: when received")
    originalTimestamp: str | None = Field(None, description="used when `timestamp` is absent")
    sentAt: str | None = Field(None, description="ISO 8601; corrects the client's clock skew")
    context: dict[str, Any] | None = Field(None, description="kept on the activity as sent")
    integrations: dict[str, Any] | None = Field(None, description="kept on the activity as sent")
    metadata: dict[str, Any] | None = Field(
        None, alias="_metadata", description="kept on the activity as sent"
    )
    writeKey: str | None = Field(None, description="the write key, when not in a header")


class Identify(Common):
    type: Literal["identify"] | None = None
    traits: dict[str, Any] | None = Field(
        None, description="contact attributes; `email` and `phone` also identify the contact"
    )


class Track(Common):
    type: Literal["track"] | None = None
    event: str = Field(max_length=255, description="the activity's name")
    properties: dict[str, Any] | None = None


class Page(Common):
    type: Literal["page"] | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] | None = None


class Screen(Common):
    type: Literal["screen"] | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] | None = None


class Group(Common):
    type: Literal["group"] | None = None
    groupId: str | int = Field(description="the group the contact joins")
    traits: dict[str, Any] | None = Field(None, description="the group's traits (merged)")


class Alias(Common):
    type: Literal["alias"] | None = None
    previousId: str | int = Field(description="an earlier anonymousId or userId")
    userId: str | int = Field(description="the user id previousId becomes")


class Batch(BaseModel):
    """``POST /v1/batch``: at most 500 KB, 32 KB per call; each call has its ``type``."""

    model_config = ConfigDict(extra="allow")

    batch: list[Identify | Track | Page | Screen | Group | Alias] = Field(
        description="calls, each with `type`: identify, track, page, screen, group or alias"
    )
    context: dict[str, Any] | None = Field(None, description="merged into each call's context")
    integrations: dict[str, Any] | None = Field(
        None, description="merged into each call's integrations"
    )
    sentAt: str | None = None
    writeKey: str | None = None


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place (OpenAPI ``requestBody``)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


#: The model of each single-call endpoint.
CALL_MODELS: dict[str, type[Common]] = {
    "identify": Identify,
    "track": Track,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}
