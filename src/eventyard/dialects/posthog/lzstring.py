"""lz-string's ``decompressFromBase64``: the ``compression=lz64`` bodies of posthog-js.

posthog-js (and posthog-js-lite) compress a capture body with lz-string 1.4
(``LZString.compressToBase64``) and send it as ``data=<that>&compression=lz64``.
The PyPI port (``lzstring`` 1.0.4) was last released in 2018 and pulls in the
Python 2 shim ``future``, so this is the decoder written out from the
JavaScript original (pieroxy/lz-string, ``_decompress``), with one addition:
the output is capped, so that a small body cannot inflate without bound (an
"lz bomb").

The format: a stream of bits, read six per base64 character, most significant
first. Each code is ``num_bits`` wide (3 at first, one more each time the
dictionary doubles): 0 and 1 bring a new 8- or 16-bit character, 2 ends the
stream, any other code names a dictionary entry (or the entry being built, the
``w + w[0]`` case of LZW). Characters are UTF-16 code units; the result is
joined and read back as UTF-16, so that surrogate pairs become one character.
"""

from __future__ import annotations

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_VALUE = {char: index for index, char in enumerate(_ALPHABET)}
#: Bits per base64 character, as lz-string reads them (``resetValue`` 32).
_RESET = 32


class _Bits:
    """The input read bit by bit, as ``data.val``/``data.position``/``data.index`` in lz-string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.index = 1
        self.value = self._char(0)
        self.position = _RESET

    def _char(self, index: int) -> int:
        if index >= len(self.text):
            return 0  # lz-string reads past the end as 0; the length check stops it
        try:
            return _VALUE[self.text[index]]
        except KeyError:
            raise ValueError(f"character {self.text[index]!r} is not base64") from None

    def read(self, count: int) -> int:
        bits, power = 0, 1
        for _ in range(count):
            if self.value & self.position:
                bits |= power
            self.position >>= 1
            if self.position == 0:
                self.position = _RESET
                self.value = self._char(self.index)
                self.index += 1
            power <<= 1
        return bits


def decompress_from_base64(text: str, max_chars: int) -> str:
    """The text ``LZString.compressToBase64`` made ``text`` of.

    ``ValueError`` when ``text`` is not such output, or when the result would
    exceed ``max_chars`` UTF-16 code units (about ``max_chars`` bytes of JSON).
    """
    if not text:
        raise ValueError("the lz64 data is empty")
    bits = _Bits(text)
    dictionary: list[str] = ["\x00", "\x01", "\x02"]  # codes 0-2 are markers, never read
    enlarge_in, num_bits = 4, 3
    first = bits.read(2)
    if first == 2:
        return ""
    if first not in (0, 1):
        raise ValueError("the lz64 data does not start with a character")
    char = chr(bits.read(8 if first == 0 else 16))
    dictionary.append(char)
    word = char
    result = [char]
    size = 1
    while True:
        if bits.index > len(text):
            raise ValueError("the lz64 data ends before its end marker")
        code = bits.read(num_bits)
        if code == 2:
            break
        if code in (0, 1):
            dictionary.append(chr(bits.read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, num_bits = 2**num_bits, num_bits + 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = word + word[0]
        else:
            raise ValueError("the lz64 data names a dictionary entry that does not exist")
        size += len(entry)
        if size > max_chars:
            raise OverflowError(f"the lz64 data inflates beyond {max_chars} characters")
        result.append(entry)
        dictionary.append(word + entry[0])
        enlarge_in -= 1
        word = entry
        if enlarge_in == 0:
            enlarge_in, num_bits = 2**num_bits, num_bits + 1
    joined = "".join(result)
    try:
        return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise ValueError("the lz64 data holds a lone UTF-16 surrogate") from exc
