"""A capture body as the SDKs send it -> its JSON text.

The capture service (``payload/decompression.rs``) takes, on every path:
gzip ("body starts with bytes ``1f 8b 08``: gzip, regardless of hints"),
lz-string (``compression=lz64``), base64, and a form body whose ``data``
field holds the payload (``data=...&compression=...``, posthog-js-lite).
``Content-Encoding: gzip`` (posthog-python, posthog-node) is inflated by the
pipeline before this runs.

eventyard reads the encoding from the body itself, so that a shared path
(``/batch``, dispatched on the body) needs nothing else: JSON starts with
``{`` or ``[``, gzip with its magic bytes, a form has ``data=`` or ``&``; what is
left is base64 or lz64, told apart by trying base64 first (lz-string's bits
never base64-decode to a JSON text). A ``compression`` hint (in the query or
the form) is honoured where it names lz64 or base64 and otherwise not needed.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qs

from eventyard.core.errors import EventyardError
from eventyard.dialects.posthog.errors import posthog_error
from eventyard.dialects.posthog.lzstring import decompress_from_base64
from eventyard.http import body_too_large, gunzip_body

GZIP_MAGIC = b"\x1f\x8b\x08"
LZ_HINTS = frozenset({"lz64", "lz-string"})
BASE64_HINTS = frozenset({"base64", "b64"})
_JSON_START = (b"{", b"[")
#: A form names its ``data`` field; base64 and lz64 never hold ``&``.
_FORM = re.compile(rb"(?:\A|&)data=|&")
#: "On the legacy paths a payload that is still base64 after decompression is
#: base64-decoded once more": at most this many rounds of base64.
_BASE64_ROUNDS = 2


def decode_body(body: bytes, max_bytes: int, hint: str | None = None) -> bytes:
    """The JSON text of ``body``; 400 (``failed to decode request``) when it has none.

    ``hint`` is the query's ``compression`` value, if any; a form's own wins.
    """
    if body.startswith(GZIP_MAGIC):
        body = gunzip_body(body, max_bytes)
    stripped = body.lstrip()
    if stripped.startswith(_JSON_START):
        return stripped
    if _FORM.search(stripped):
        text, hint = _form_data(stripped, hint)
    else:
        try:
            text = stripped.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _undecodable("the body is neither JSON, gzip, a form, base64 nor lz64") from None
    return _decode_text(text, max_bytes, (hint or "").strip().lower())


def _form_data(body: bytes, hint: str | None) -> tuple[str, str | None]:
    """``data`` and ``compression`` of a form body (``application/x-www-form-urlencoded``)."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _undecodable("the form body is not UTF-8") from None
    data = form.get("data")
    if not data:
        raise _undecodable("the form body has no data field")
    compression = form.get("compression")
    return data[0].strip(), compression[0] if compression else hint


def _decode_text(text: str, max_bytes: int, hint: str) -> bytes:
    if text.startswith(("{", "[")):
        return text.encode("utf-8", "surrogatepass")
    if hint in LZ_HINTS:
        return _lz64(text, max_bytes)
    decoded = _base64(text)
    for _ in range(_BASE64_ROUNDS):
        if decoded is None:
            break
        if decoded.startswith(GZIP_MAGIC):
            decoded = gunzip_body(decoded, max_bytes)
        stripped = decoded.lstrip()
        if stripped.startswith(_JSON_START):
            return stripped
        try:
            decoded = _base64(stripped.decode("ascii").strip())
        except UnicodeDecodeError:
            break
    if hint in BASE64_HINTS:
        raise _undecodable("compression=base64, but the data is not base64 of JSON")
    return _lz64(text, max_bytes)


def _base64(text: str) -> bytes | None:
    # A form encoder that left "+" unescaped turns it into a space.
    text = text.replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _lz64(text: str, max_bytes: int) -> bytes:
    try:
        decoded = decompress_from_base64(text, max_bytes)
    except OverflowError:
        raise body_too_large() from None
    except ValueError as exc:
        raise _undecodable(f"the body is not lz64 (lz-string compressToBase64): {exc}") from None
    return decoded.encode("utf-8", "surrogatepass")


def _undecodable(reason: str) -> EventyardError:
    return posthog_error(f"failed to decode request: {reason}", attr="body", code="invalid_payload")
