"""The lz64 decoder and the body decoding of the PostHog dialect, without a server.

Expected values are outputs of npm ``lz-string`` 1.5 (``LZString.compressToBase64``),
the library posthog-js compresses ``compression=lz64`` bodies with.
"""

from __future__ import annotations

import base64
import gzip
from urllib.parse import quote

import pytest

from eventyard.core.errors import EventyardError
from eventyard.dialects.posthog.decode import decode_body
from eventyard.dialects.posthog.lzstring import decompress_from_base64
from tests.lz64 import compress_to_base64

#: (text, LZString.compressToBase64(text)) as node printed them.
VECTORS = [
    (
        '{"api_key":"k","event":"e","distinct_id":"u1"}',
        "N4IghgDglg+g1gUwJ4gFwjiANCBA3BAOwBc1dsQATKAZ2KkIGNiYpKyBXARhAF8g",
    ),
    (
        '[{"event":"ünïcødé 🎉","distinct_id":"x"}]',
        "NobwRApgbhB2AuYBcYA/sD3BjAHwEwEuACQHg3BI/bABow8BLAZ3lti3gH1a9kwAPMAXwC6QA===",
    ),
    ("a" * 69, "IY18ZXTukA=="),
    ("", "Q==="),
]
EVENT = b'{"api_key":"k","event":"e","distinct_id":"u1"}'


@pytest.mark.parametrize(("text", "compressed"), VECTORS)
def test_decodes_what_lz_string_made(text: str, compressed: str) -> None:
    assert decompress_from_base64(compressed, 10_000) == text


@pytest.mark.parametrize(("text", "compressed"), VECTORS)
def test_the_test_compressor_agrees_with_lz_string(text: str, compressed: str) -> None:
    assert compress_to_base64(text) == compressed


def test_an_lz_bomb_stops_at_the_limit() -> None:
    """A small body must not inflate without bound: OverflowError past ``max_chars``."""
    bomb = compress_to_base64("a" * 100_000)
    assert len(bomb) < 1_000
    with pytest.raises(OverflowError):
        decompress_from_base64(bomb, 10_000)


@pytest.mark.parametrize("bad", ["!!!!", "AAAA", "N4Igh"])
def test_refuses_what_is_not_lz64(bad: str) -> None:
    with pytest.raises(ValueError, match=r"lz64|base64"):
        decompress_from_base64(bad, 10_000)


@pytest.mark.parametrize(
    "body",
    [
        EVENT,
        b"  \n" + EVENT,
        gzip.compress(EVENT),  # ?compression=gzip-js: "regardless of hints"
        base64.b64encode(EVENT),
        base64.b64encode(base64.b64encode(EVENT)),  # "base64-decoded once more"
        compress_to_base64(EVENT.decode()).encode(),
        b"data=" + quote(compress_to_base64(EVENT.decode())).encode() + b"&compression=lz64",
        b"data=" + quote(base64.b64encode(EVENT).decode()).encode(),
        b"compression=base64&data=" + base64.b64encode(EVENT).replace(b"+", b" "),
        b"data=" + quote(EVENT.decode()).encode(),
    ],
    ids=[
        "json",
        "json-with-whitespace",
        "gzip-magic",
        "base64",
        "base64-twice",
        "lz64",
        "form-lz64",
        "form-base64",
        "form-base64-unescaped-plus",
        "form-json",
    ],
)
def test_every_encoding_the_sdks_send_gives_the_json(body: bytes) -> None:
    assert decode_body(body, 1_000_000) == EVENT


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "neither JSON"),
        (b"foo=bar&x=1", "no data field"),
        (b"data=%21%21", "not lz64"),
        (b"compression=base64&data=%21%21", "not base64"),
    ],
)
def test_an_undecodable_body_is_a_400_naming_why(body: bytes, reason: str) -> None:
    with pytest.raises(EventyardError) as raised:
        decode_body(body, 1_000_000)
    assert raised.value.status == 400
    assert raised.value.message.startswith("failed to decode request: ")
    assert reason in raised.value.message


def test_a_gzip_bomb_is_a_413() -> None:
    with pytest.raises(EventyardError) as raised:
        decode_body(gzip.compress(b"[" + b" " * 2_000_000 + b"]"), 1_000_000)
    assert raised.value.status == 413
