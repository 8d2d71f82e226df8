"""Go's ``path.Match``: the glob of the ``reference`` filter (FL-R4).

The pattern must match the **whole** name. ``*`` matches any run of characters
except ``/``; ``?`` matches one character other than ``/``; ``[...]`` is a class of
characters and ranges (``a-z``), negated by ``^`` (``!`` is an ordinary character);
``\\`` escapes the next character; anything else matches itself, case-sensitively.
A malformed pattern (an unclosed ``[``, a trailing ``\\``, an empty class, a range
without an end) is :data:`BAD_PATTERN`, which every caller in the seed treats as
"no match".

Python's ``fnmatch`` is not equivalent: its ``*`` crosses ``/``, its ``[!...]``
negates, and it may fold case. So this module follows Go 1.19 step by step: the
matcher walks UTF-8 **bytes**; ``?`` and classes decode one rune (an invalid byte is
the replacement rune, one byte wide), every other pattern byte is compared with one
name byte; and a star retries the rest of the pattern at each later byte offset that
does not cross a ``/``. The whole remaining pattern is checked for well-formedness
before "no match" is returned, as Go does since 1.16.

>>> path_match("quay.io/*/bb", "quay.io/org/bb")
True
>>> path_match("q*", "quay.io/org/bb")
False
>>> path_match("[^abc]b", "bb"), path_match("[!abc]b", "!b")
(False, True)
>>> path_match("[", "[")
BadPattern()
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BadPattern:
    """Go's ``path.ErrBadPattern``: "syntax error in pattern"."""

    def __str__(self) -> str:
        return "syntax error in pattern"


BAD_PATTERN = BadPattern()

GlobResult = bool | BadPattern

_RUNE_ERROR = 0xFFFD


def _encode(text: str) -> bytes:
    # Lone surrogates (undecodable input) become bytes Go would see as invalid UTF-8.
    return text.encode("utf-8", "surrogatepass")


def decode_rune(data: bytes, start: int) -> tuple[int, int]:
    """Go's ``utf8.DecodeRune`` at ``start``: (rune, width); invalid input is (U+FFFD, 1).

    >>> decode_rune("é".encode(), 0), decode_rune(b"\\xa9", 0)
    ((233, 2), (65533, 1))
    """
    first = data[start]
    if first < 0x80:
        return first, 1
    if 0xC2 <= first <= 0xDF:
        width, low, high = 2, 0x80, 0xBF
    elif 0xE0 <= first <= 0xEF:
        width = 3
        low, high = (
            (0xA0, 0xBF) if first == 0xE0 else (0x80, 0x9F) if first == 0xED else (0x80, 0xBF)
        )
    elif 0xF0 <= first <= 0xF4:
        width = 4
        low, high = (
            (0x90, 0xBF) if first == 0xF0 else (0x80, 0x8F) if first == 0xF4 else (0x80, 0xBF)
        )
    else:
        return _RUNE_ERROR, 1
    if start + width > len(data):
        return _RUNE_ERROR, 1
    second = data[start + 1]
    if not low <= second <= high:
        return _RUNE_ERROR, 1
    rune = (first & (0x7F >> width)) << 6 | (second & 0x3F)
    for offset in range(2, width):
        following = data[start + offset]
        if not 0x80 <= following <= 0xBF:
            return _RUNE_ERROR, 1
        rune = rune << 6 | (following & 0x3F)
    return rune, width


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    """Go's ``scanChunk``: leading stars, then the chunk up to the next unbracketed ``*``."""
    star = False
    while pattern[:1] == b"*":
        pattern = pattern[1:]
        star = True
    in_range = False
    index = 0
    while index < len(pattern):
        byte = pattern[index]
        if byte == 0x5C:  # backslash: the escaped byte is part of the chunk
            if index + 1 < len(pattern):
                index += 1
        elif byte == 0x5B:  # [
            in_range = True
        elif byte == 0x5D:  # ]
            in_range = False
        elif byte == 0x2A and not in_range:  # *
            break
        index += 1
    return star, pattern[:index], pattern[index:]


def _get_escaped(chunk: bytes) -> tuple[int, bytes] | None:
    """Go's ``getEsc``: one (possibly escaped) rune of a class, or None if malformed."""
    if not chunk or chunk[0] in (0x2D, 0x5D):  # empty, "-" or "]"
        return None
    if chunk[0] == 0x5C:
        chunk = chunk[1:]
        if not chunk:
            return None
    rune, width = decode_rune(chunk, 0)
    if rune == _RUNE_ERROR and width == 1:
        return None
    rest = chunk[width:]
    if not rest:
        return None
    return rune, rest


def _match_chunk(chunk: bytes, name: bytes) -> tuple[bytes, bool] | BadPattern:
    """Go's ``matchChunk``: (rest of name, matched), or BAD_PATTERN.

    After the match has failed, the rest of the chunk is still parsed, so that a
    malformed chunk is reported whatever the name.
    """
    failed = False
    while chunk:
        if not failed and not name:
            failed = True
        head = chunk[0]
        if head == 0x5B:  # [
            rune = -1
            if not failed:
                rune, width = decode_rune(name, 0)
                name = name[width:]
            chunk = chunk[1:]
            negated = False
            if chunk[:1] == b"^":
                negated = True
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk[:1] == b"]" and ranges > 0:
                    chunk = chunk[1:]
                    break
                low_part = _get_escaped(chunk)
                if low_part is None:
                    return BAD_PATTERN
                low, chunk = low_part
                high = low
                if chunk[0] == 0x2D:  # "-": a range
                    high_part = _get_escaped(chunk[1:])
                    if high_part is None:
                        return BAD_PATTERN
                    high, chunk = high_part
                if low <= rune <= high:
                    matched = True
                ranges += 1
            if matched == negated:
                failed = True
        elif head == 0x3F:  # ?
            if not failed:
                if name[0] == 0x2F:
                    failed = True
                _, width = decode_rune(name, 0)
                name = name[width:]
            chunk = chunk[1:]
        else:
            if head == 0x5C:  # backslash: match the next byte literally
                chunk = chunk[1:]
                if not chunk:
                    return BAD_PATTERN
            if not failed:
                if chunk[0] != name[0]:
                    failed = True
                name = name[1:]
            chunk = chunk[1:]
    if failed:
        return b"", False
    return name, True


def _rest_is_valid(pattern: bytes) -> bool:
    while pattern:
        _, chunk, pattern = _scan_chunk(pattern)
        if isinstance(_match_chunk(chunk, b""), BadPattern):
            return False
    return True


def path_match(pattern: str, name: str) -> GlobResult:
    """Go's ``path.Match(pattern, name)`` (FL-R4): True, False, or :data:`BAD_PATTERN`.

    >>> [path_match(p, "quay.io/org/bb:2") for p in ("quay.io/org/bb:2", "quay.io/*/*", "*")]
    [True, True, False]
    >>> path_match("a\\\\*b", "a*b"), path_match("[a-", "a")
    (True, BadPattern())
    """
    pattern_bytes, name_bytes = _encode(pattern), _encode(name)
    while pattern_bytes:
        star, chunk, pattern_bytes = _scan_chunk(pattern_bytes)
        if star and not chunk:
            # A trailing star matches the rest of the name unless it has a "/".
            return b"/" not in name_bytes
        outcome = _match_chunk(chunk, name_bytes)
        if not isinstance(outcome, BadPattern):
            rest, matched = outcome
            # The last chunk must use up the name; otherwise the star may still help.
            if matched and (not rest or pattern_bytes):
                name_bytes = rest
                continue
        else:
            return BAD_PATTERN
        if star:
            found = False
            index = 0
            while index < len(name_bytes) and name_bytes[index] != 0x2F:
                retry = _match_chunk(chunk, name_bytes[index + 1 :])
                if isinstance(retry, BadPattern):  # pragma: no cover - it parsed above
                    return BAD_PATTERN
                rest, matched = retry
                if matched and not (not pattern_bytes and rest):
                    name_bytes = rest
                    found = True
                    break
                index += 1
            if found:
                continue
        return BAD_PATTERN if not _rest_is_valid(pattern_bytes) else False
    return not name_bytes


def matches(pattern: str, name: str) -> bool:
    """True only when ``pattern`` matches ``name``; a malformed pattern matches nothing (FL-R4)."""
    return path_match(pattern, name) is True
