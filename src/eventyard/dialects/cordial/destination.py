"""Destination kind ``cordial``: activities as contact activities, one per request.

``POST <url>/v2/contactactivities`` with HTTP Basic ("Cordial's core APIs use
https Basic Authentication"): the API key as user name, an empty password.
The POST "Creates a new contact activity" from one JSON body: Cordial has no
batch form of it, so every activity is a request of its own. The body is
what ``translate.py`` reads, so an eventyard receiver stores what was sent
(``docs/dialects/cordial.md``, "As a destination").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eventyard.core.delivery import (
    AnswerReading,
    OutgoingActivity,
    OutgoingRequest,
    ReceiverAnswer,
)
from eventyard.core.identifiers import IDENTITY, MOBILE
from eventyard.dialects.cordial.translate import CONTACT_KEYS, MAX_BODY_BYTES, MAX_PARAMS
from eventyard.dialects.toolkit.outgoing import (
    JsonArray,
    basic_authorization,
    first_value,
    json_array_format,
    numbered_name,
    quote_answer,
    read_json,
)
from eventyard.dialects.toolkit.timestamps import format_utc

KIND = "cordial"
PATH = "/v2/contactactivities"
#: One activity per request; a body stays within an eventyard receiver's 1 MiB.
BODY = JsonArray(prefix=b"", suffix=b"", max_records=1, max_bytes=MAX_BODY_BYTES)
#: ``a``, ``ats`` and ``properties`` leave room for this many contact identifiers
#: ("Six is the maximum number of parameters allowed for the payload").
MAX_IDENTIFIERS = MAX_PARAMS - 3
#: Kinds sent when the contact has none of Cordial's own keys; an eventyard
#: receiver takes them when they are among the account's ``primary_kinds``
#: (``identity`` and ``mobile`` are, by default).
OTHER_KEYS = (IDENTITY, MOBILE)
#: The longest property key written (Cordial states none).
MAX_KEY_LENGTH = 255

_STRIPPED_KEY = re.compile(r"\A\d+\Z")


def contact_activity(activity: OutgoingActivity) -> dict[str, Any]:
    """The body of one activity's request."""
    body: dict[str, Any] = {"a": activity.name}
    body.update(contact_keys(activity))
    body["ats"] = format_utc(activity.occurred_at)
    body["properties"] = cordial_properties(activity.properties)
    return body


def contact_keys(activity: OutgoingActivity) -> dict[str, str]:
    """ "Unique primary or secondary contact identifier key/value pair[s]", at most three.

    Cordial's own keys (``email``, ``custID``, ``cID``) when the contact has
    any; else ``identity`` and ``mobile``; else ``cID`` = the eventyard
    contact id (an anonymous contact too: Cordial has none).
    """
    for group in (CONTACT_KEYS, OTHER_KEYS):
        keys = {
            kind: value
            for kind in group
            if (value := first_value(activity.identifiers, kind)) is not None
        }
        if keys:
            return dict(list(keys.items())[:MAX_IDENTIFIERS])
    return {"cID": activity.contact_id}


def cordial_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Properties with the keys Cordial would strip renamed.

    "Property keys consisting of numeric-only values (e.g. 57) or keys
    containing a period, like shoes.color, will be stripped": a period
    becomes ``_`` (``shoes.color`` -> ``shoes_color``) and a numeric key gets
    a leading ``_`` (``57`` -> ``_57``); a key that then clashes with another
    is numbered (``-2``, ``-3`` …). Nested keys are sent as they are.
    """
    renamed: dict[str, Any] = {}
    for key, value in properties.items():
        name = key.replace(".", "_")
        if _STRIPPED_KEY.match(name):
            name = f"_{name}"
        renamed[numbered_name(name, renamed, MAX_KEY_LENGTH)] = value
    return renamed


def request_headers(credentials: Mapping[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": basic_authorization(credentials["api_key"]),
    }


def read_answer(request: OutgoingRequest, answer: ReceiverAnswer) -> AnswerReading:
    """Whether Cordial took the request's one activity.

    "The Cordial API will return an error object with an errorKey and
    message if there is a problem with an API call" (``{"error": true,
    "errorKey": "CONTACT_ACTIVITIES_VALIDATION_ERROR", "message": "…"}``):
    the activity is refused with ``<errorKey>: <message>``. A 2xx
    (``{"success": true, "cID": "…"}``) delivered it.
    """
    if 200 <= answer.status < 300:
        return AnswerReading()
    body = read_json(answer.body)
    if isinstance(body, dict) and body.get("errorKey"):
        reason = f"{body['errorKey']}: {body.get('message')}"
    else:
        reason = quote_answer(answer)
    return AnswerReading(refused=dict.fromkeys(request.activity_ids, reason))


DESTINATION = json_array_format(
    kind=KIND,
    credential_fields=("api_key",),
    path=PATH,
    shape=BODY,
    headers=request_headers,
    record=lambda activity, credentials: contact_activity(activity),
    read_answer=read_answer,
)
