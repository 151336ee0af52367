"""lz-string's ``compressToBase64`` (posthog-js's ``compression=lz64``), for tests.

A transcription of the JavaScript original's ``_compress`` with 6 bits per
output character, so tests can send lz64 bodies holding an account's own key.
Checked against outputs of npm ``lz-string`` in ``tests/unit/test_posthog_lzstring.py``.
"""

from __future__ import annotations

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def compress_to_base64(text: str) -> str:
    units = text.encode("utf-16-le", "surrogatepass")
    chars = [chr(int.from_bytes(units[i : i + 2], "little")) for i in range(0, len(units), 2)]
    dictionary: dict[str, int] = {}
    to_create: set[str] = set()
    out: list[str] = []
    state = {"val": 0, "pos": 0, "enlarge": 2, "size": 3, "bits": 2}

    def write(count: int, value: int) -> None:
        for _ in range(count):
            state["val"] = (state["val"] << 1) | (value & 1)
            if state["pos"] == 5:
                state["pos"] = 0
                out.append(ALPHABET[state["val"]])
                state["val"] = 0
            else:
                state["pos"] += 1
            value >>= 1

    def shrink() -> None:
        state["enlarge"] -= 1
        if state["enlarge"] == 0:
            state["enlarge"] = 2 ** state["bits"]
            state["bits"] += 1

    def emit(word: str) -> None:
        if word in to_create:
            code = ord(word[0])
            if code < 256:
                write(state["bits"], 0)
                write(8, code)
            else:
                write(state["bits"], 1)
                write(16, code)
            shrink()
            to_create.discard(word)
        else:
            write(state["bits"], dictionary[word])
        shrink()

    word = ""
    for char in chars:
        if char not in dictionary:
            dictionary[char] = state["size"]
            state["size"] += 1
            to_create.add(char)
        joined = word + char
        if joined in dictionary:
            word = joined
            continue
        emit(word)
        dictionary[joined] = state["size"]
        state["size"] += 1
        word = char
    if word:
        emit(word)
    write(state["bits"], 2)
    while True:
        state["val"] <<= 1
        if state["pos"] == 5:
            out.append(ALPHABET[state["val"]])
            break
        state["pos"] += 1
    result = "".join(out)
    return result + "=" * (-len(result) % 4)
