"""Small HTTP helpers shared by the canonical API and the dialects."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from eventyard.core.errors import EventyardError, FieldError
from eventyard.core.model import StoredResponse
from eventyard.core.payload import JsonBody, decode_json
from eventyard.core.timestamps import format_utc

MAX_IDEMPOTENCY_KEY_LENGTH = 255
_GZIP = {"gzip", "x-gzip"}
#: Bodies up to this size are parsed on the event loop: a few tens of
#: microseconds, less than the hop to a worker thread and back, which on a
#: busy machine waits for the scheduler. Larger ones are parsed off the loop.
INLINE_PARSE_BYTES = 4096

T = TypeVar("T")


async def off_loop_if_large(body: bytes, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` about ``body``: on the event loop when it is small, else in a thread."""
    if len(body) <= INLINE_PARSE_BYTES:
        return work(*args)
    return await run_in_threadpool(work, *args)


#: ISO 8601 in UTC with a ``Z``, as every eventyard API prints timestamps.
iso_utc = format_utc


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def stored_json(body: Any, status_code: int = 200) -> StoredResponse:
    return StoredResponse(status_code=status_code, body=orjson.dumps(body))


def send_stored(stored: StoredResponse) -> Response:
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else None
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        media_type=stored.media_type,
        headers=headers,
    )


def body_too_large(*, unread: bool = False) -> EventyardError:
    """The 413 of a body beyond its limit.

    ``unread``: refused before the body was read; ``Connection: close`` ends
    the connection after the answer, so the rest of it is never received.
    """
    headers = {"Connection": "close"} if unread else {}
    return EventyardError("payload_too_large", "Payload Too Large", 413, headers=headers)


async def read_body(request: Request, *, max_bytes: int, timeout_seconds: float) -> bytes:
    """The whole request body, or 408 when it does not arrive in time, 413 when too big."""
    too_large = body_too_large(unread=True)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0

    async def receive_all() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive_all(), timeout_seconds)
    except TimeoutError as exc:
        raise EventyardError(
            "request_timeout", "Request Time Out", 408, headers={"Connection": "close"}
        ) from exc
    return b"".join(chunks)


def parse_json_body(body: bytes) -> JsonBody:
    """Decode a JSON request body or raise a 400 saying why it is not JSON."""
    try:
        return decode_json(body)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError too
        reason = f"body is not valid JSON: {exc}"
        raise EventyardError(
            "invalid_json", reason, 400, errors=[FieldError("body", reason)]
        ) from exc


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise EventyardError(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )
    return key


async def decode_content(request: Request, body: bytes, max_bytes: int) -> bytes:
    """The body without its ``Content-Encoding`` (none or gzip), at most ``max_bytes``."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in _GZIP:
        return await run_in_threadpool(gunzip_body, body, max_bytes)
    raise EventyardError(
        "unsupported_encoding",
        f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding",
        415,
    )


def gunzip_body(body: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body; 413 as soon as it would exceed ``max_bytes``, 400 if corrupt.

    The output is capped while decompressing (``max_length``), so a small
    "gzip bomb" never allocates more than ``max_bytes + 1`` bytes. Several
    gzip members one after the other (as ``cat a.gz b.gz`` makes) are joined.
    """
    parts: list[bytes] = []
    size = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(data, max_bytes - size + 1)
        except zlib.error as exc:
            raise _bad_gzip(f"body is not valid gzip: {exc}") from exc
        size += len(part)
        if size > max_bytes or inflater.unconsumed_tail:
            raise body_too_large()
        if not inflater.eof:
            raise _bad_gzip("body is not valid gzip: the compressed data is truncated")
        parts.append(part)
        data = inflater.unused_data
        if not data:
            return b"".join(parts)


def _bad_gzip(message: str) -> EventyardError:
    return EventyardError("invalid_gzip", message, 400)
