"""Reaching user-supplied URLs safely: CSV sources (http, https, s3, local files) and callbacks.

Every http(s) connection goes through :class:`GuardedTransport`, which
resolves the host, refuses it unless every address it resolves to passes
the SSRF rule (``core/netguard.py``), and then connects to the address it
checked (the request's URL is rewritten to it; ``Host`` and TLS SNI keep the
name), so a DNS answer that changes between the check and the connection
cannot lead elsewhere. Redirects are followed by httpx (at most
:data:`MAX_REDIRECTS`) through the same transport, so each hop is checked.
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from eventyard.core.netguard import Network, address_refusal, parse_allowlist
from eventyard.settings import Settings

T = TypeVar("T")
#: What :func:`read_ahead`'s thread hands over after the last item.
_END = object()

MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SourceRefused(Exception):
    """The URL may not be used or the file cannot be had: retrying will not help."""


class SourceUnavailable(Exception):
    """The file could not be had this time (network, server error): worth a retry."""


@dataclass
class Download:
    """A file being read: its chunks, its size when known, the bytes read so far."""

    chunks: Iterator[bytes]
    size: int | None
    read: int = 0


def allowlist_of(settings: Settings) -> tuple[Network, ...]:
    try:
        return parse_allowlist(settings.url_allowlist)
    except ValueError as exc:
        raise SourceRefused(f"EVENTYARD_URL_ALLOWLIST: {exc}") from exc


def checked_addresses(host: str, port: int, allowlist: tuple[Network, ...]) -> list[str]:
    """The addresses ``host`` resolves to, all allowed; ``SourceRefused`` if one is not.

    Every address must pass, not just one: a name that resolves to a public
    and a private address could otherwise reach the private one.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceUnavailable(f"cannot resolve {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        reason = address_refusal(address, allowlist)
        if reason is not None:
            raise SourceRefused(
                f"{host} is not allowed: {reason} (EVENTYARD_URL_ALLOWLIST lists the "
                "networks that may be reached)"
            )
    return addresses


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that only connects to checked addresses, pinned for the request."""

    def __init__(self, allowlist: tuple[Network, ...], inner: httpx.BaseTransport) -> None:
        self.allowlist = allowlist
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in _DEFAULT_PORTS:
            raise SourceRefused(f"only http and https URLs may be fetched, not {url.scheme!r}")
        host = url.host
        port = url.port or _DEFAULT_PORTS[url.scheme]
        address = checked_addresses(host, port, self.allowlist)[0]
        extensions = dict(request.extensions)
        if url.scheme == "https":
            # TLS still names (and verifies) the host, not the address.
            extensions["sni_hostname"] = host
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=address),
            headers=request.headers,  # Host: was set from the original URL
            stream=request.stream,
            extensions=extensions,
        )
        return self.inner.handle_request(pinned)

    def close(self) -> None:
        self.inner.close()


def guarded_client(
    settings: Settings, *, follow_redirects: bool, timeout: float | None = None
) -> httpx.Client:
    """An httpx client for user-supplied URLs: SSRF-guarded, timeouts from settings."""
    return httpx.Client(
        transport=GuardedTransport(allowlist_of(settings), httpx.HTTPTransport()),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        timeout=httpx.Timeout(timeout or settings.fetch_timeout_seconds),
        trust_env=False,  # no proxy from the environment: it would bypass the pinning
    )


def check_url(url: str, settings: Settings, *, what: str) -> None:
    """Refuse a malformed http(s) URL, or one whose host the SSRF rule refuses now.

    A name that does not resolve yet is let through: the fetch checks again.
    """
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise SourceRefused(f"{what} must be an http:// or https:// URL with a host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise SourceRefused(f"{what} has an invalid port: {exc}") from exc
    with suppress(SourceUnavailable):
        checked_addresses(parts.hostname, port, allowlist_of(settings))


def check_source(source: str, settings: Settings, *, local_files: bool) -> None:
    """Refuse a CSV path that cannot be read: its kind, its shape, its host."""
    kind = source_kind(source)
    if kind == "http":
        check_url(source, settings, what="path")
    elif kind == "s3":
        bucket, key = s3_location(source)
        if not bucket or not key:
            raise SourceRefused("path s3://bucket/key needs a bucket and a key")
    elif kind == "file":
        if not local_files:
            raise SourceRefused(
                "path names a file on the server, which this server does not allow "
                "(EVENTYARD_IMPORT_LOCAL_FILES); give an http(s):// or s3:// URL"
            )
    else:
        raise SourceRefused("path must be an http://, https:// or s3:// URL")


def source_kind(source: str) -> str:
    """``http`` (also https), ``s3``, ``file`` (an absolute path or file:// URL) or ``unknown``."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return "http"
    if scheme == "s3":
        return "s3"
    if scheme == "file" or (not scheme and source.startswith("/")):
        return "file"
    return "unknown"


def s3_location(source: str) -> tuple[str, str]:
    parts = urlsplit(source)
    return parts.netloc, unquote(parts.path.lstrip("/"))


def local_path(source: str) -> Path:
    return Path(unquote(urlsplit(source).path) if source.startswith("file:") else source)


@contextmanager
def open_source(source: str, settings: Settings, *, local_files: bool) -> Iterator[Download]:
    """The file at ``source``, read in chunks, at most ``EVENTYARD_IMPORT_MAX_BYTES``.

    ``SourceRefused`` when it may not or cannot be read (SSRF rule, 4xx, no
    such key, too large); ``SourceUnavailable`` for what may pass (5xx,
    network errors, timeouts).
    """
    check_source(source, settings, local_files=local_files)
    kind = source_kind(source)
    if kind == "http":
        with _http_download(source, settings) as download:
            yield download
    elif kind == "s3":
        with _s3_download(source, settings) as download:
            yield download
    else:
        with _file_download(local_path(source), settings) as download:
            yield download


def _capped(chunks: Iterator[bytes], download: Download, cap: int) -> Iterator[bytes]:
    for chunk in chunks:
        download.read += len(chunk)
        if download.read > cap:
            raise SourceRefused(f"the file is larger than EVENTYARD_IMPORT_MAX_BYTES ({cap} bytes)")
        yield chunk


def _too_large(size: int | None, cap: int) -> None:
    if size is not None and size > cap:
        raise SourceRefused(
            f"the file has {size} bytes, more than EVENTYARD_IMPORT_MAX_BYTES ({cap})"
        )


@contextmanager
def _http_download(url: str, settings: Settings) -> Iterator[Download]:
    cap = settings.import_max_bytes
    try:
        with (
            guarded_client(settings, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 500:
                raise SourceUnavailable(f"GET {url} answered {response.status_code}")
            if response.status_code != 200:
                raise SourceRefused(f"GET {url} answered {response.status_code}, not 200")
            length = response.headers.get("content-length")
            size = int(length) if length and length.isdigit() else None
            _too_large(size, cap)
            download = Download(iter(()), size)
            download.chunks = _capped(response.iter_bytes(CHUNK_BYTES), download, cap)
            yield download
    except httpx.TooManyRedirects as exc:
        raise SourceRefused(f"GET {url}: more than {MAX_REDIRECTS} redirects") from exc
    except httpx.UnsupportedProtocol as exc:
        raise SourceRefused(f"GET {url}: a redirect leads to an unsupported URL") from exc
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from exc


@contextmanager
def _s3_download(source: str, settings: Settings) -> Iterator[Download]:
    try:
        import boto3  # the optional extra eventyard[s3]
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise SourceRefused("s3:// paths need boto3: pip install 'eventyard[s3]'") from exc
    bucket, key = s3_location(source)
    client: Any = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None)
    cap = settings.import_max_bytes
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        code = exc.response.get("Error", {}).get("Code", "error")
        message = f"s3://{bucket}/{key}: {code}"
        if status >= 500:
            raise SourceUnavailable(message) from exc
        raise SourceRefused(message) from exc
    except BotoCoreError as exc:
        raise SourceUnavailable(f"s3://{bucket}/{key}: {exc}") from exc
    body = obj["Body"]
    try:
        size = obj.get("ContentLength")
        _too_large(size, cap)
        download = Download(iter(()), size)
        download.chunks = _capped(body.iter_chunks(CHUNK_BYTES), download, cap)
        yield download
    except BotoCoreError as exc:
        raise SourceUnavailable(f"s3://{bucket}/{key}: {exc}") from exc
    finally:
        body.close()


@contextmanager
def _file_download(path: Path, settings: Settings) -> Iterator[Download]:
    cap = settings.import_max_bytes
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceRefused(f"cannot open {path}: {exc.strerror}") from exc
    with handle:
        size = path.stat().st_size
        _too_large(size, cap)
        download = Download(iter(()), size)
        download.chunks = _capped(iter(lambda: handle.read(CHUNK_BYTES), b""), download, cap)
        yield download


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """What ``items`` yields, produced by a thread up to ``depth`` items ahead of the caller.

    While the caller waits on the database (the driver releases the GIL),
    the thread reads and parses the next part of the file. An exception of
    ``items`` is raised to the caller when it reaches that point. Closing
    the returned generator stops the thread and waits for it, so ``items``
    (and the download under it) is no longer used once it is closed.
    """
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            with suppress(queue.Full):
                ready.put(entry, timeout=0.1)
                return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
            hand_over((True, _END))
        except BaseException as exc:  # handed to the caller, raised there
            hand_over((False, exc))

    thread = threading.Thread(target=produce, name="eventyard-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = ready.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class Numbered(Protocol):
    """A row of a file, or why it is skipped: either knows its number."""

    @property
    def number(self) -> int: ...


N = TypeVar("N", bound=Numbered)


def chunks_after(rows: Iterator[N], done: int, size: int) -> Iterator[list[N]]:
    """The rows after row number ``done`` (stored by an earlier attempt), ``size`` at a time."""
    chunk: list[N] = []
    for item in rows:
        if item.number <= done:
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a file given as chunks of bytes (without their line ends).

    The start of a line that spans reads is kept in pieces and joined once
    its end comes: a long line costs its length, not its length squared.
    """
    pieces: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            pieces.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if pieces:
            pieces.append(lines[0])
            lines[0] = b"".join(pieces)
        pieces = [lines.pop()]
        yield from lines
    left = b"".join(pieces)
    if left:
        yield left
