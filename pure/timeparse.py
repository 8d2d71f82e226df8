"""The ``until`` filter's timestamps: containers/common ``timetype`` (FL-U1..FL-U6).

``until=VALUE`` becomes an instant, relative to the caller's "now" and local UTC
offset (decision 6: both are inputs; nothing here reads a clock). The rules, in
order, as ``timetype.GetTimestamp`` followed by ``ParseTimestamps`` apply them:

* FL-U1: a Go duration (``300ms``, ``1.5h``, ``-2h45m``; not the literal ``0``) gives
  ``now - duration``, truncated (floored) to whole seconds;
* FL-U2/FL-U3: otherwise a date in one of Go's layouts, chosen by the characters the
  value contains; local time (the fixed offset given) unless the value contains
  ``Z``, ``z`` or ``+``, or exactly three ``-``;
* FL-U4: a failed date parse is the error when the value contains ``-``;
* FL-U5/FL-U6: otherwise ``SECONDS[.FRACTION]`` (``0`` is 1970-01-01T00:00:00Z), or
  ``failed to parse value as time or duration: "VALUE"``.

Go's duration grammar (``time.ParseDuration``), its layout parser (``time.Parse``,
Go 1.19, which podman 4.3.1 was built with) and ``strconv.ParseInt`` are reproduced
here, including their error texts.

>>> NOW = 1_700_000_000 * 10**9 + 123
>>> until_instant("1h", NOW, 0) == (1_700_000_000 - 3600) * 10**9
True
>>> until_instant("2000-01-01", NOW, 3600) == (946_684_800 - 3600) * 10**9
True
>>> until_instant("1.5", NOW, 0)
1500000000
>>> until_instant("notatime", NOW, 0).message
'failed to parse value as time or duration: "notatime"'
"""

from __future__ import annotations

from dataclasses import dataclass

from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.reference import go_quote

SECOND_NS = 1_000_000_000
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)

# --------------------------------------------------------------------------- durations

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": SECOND_NS,
    "m": 60 * SECOND_NS,
    "h": 3600 * SECOND_NS,
}


def _leading_int(text: str) -> tuple[int, str] | None:
    """Go 1.19 ``leadingInt``: the leading digits as an int64, or None on overflow."""
    value = 0
    index = 0
    while index < len(text) and "0" <= text[index] <= "9":
        if value > _INT64_MAX // 10:
            return None
        value = value * 10 + ord(text[index]) - 48
        if value > _INT64_MAX:
            return None
        index += 1
    return value, text[index:]


def _leading_fraction(text: str) -> tuple[int, float, str]:
    """Go's ``leadingFraction``: digits, their scale, the rest (overflow stops precision)."""
    value = 0
    scale = 1.0
    overflow = False
    index = 0
    while index < len(text) and "0" <= text[index] <= "9":
        if not overflow:
            if value > _INT64_MAX // 10:
                overflow = True
            else:
                candidate = value * 10 + ord(text[index]) - 48
                if candidate > _INT64_MAX:
                    overflow = True
                else:
                    value = candidate
                    scale *= 10
        index += 1
    return value, scale, text[index:]


def parse_go_duration(text: str) -> int | None:
    """Go 1.19 ``time.ParseDuration``: nanoseconds, or None when ``text`` is not a duration.

    >>> parse_go_duration("1.5h"), parse_go_duration("-2m3s"), parse_go_duration("0")
    (5400000000000, -123000000000, 0)
    >>> parse_go_duration("1"), parse_go_duration(".s"), parse_go_duration("1d")
    (None, None, None)
    """
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        return None
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            return None
        before = len(rest)
        leading = _leading_int(rest)
        if leading is None:
            return None
        whole, rest = leading
        had_whole = before != len(rest)
        fraction, scale, had_fraction = 0, 1.0, False
        if rest[:1] == ".":
            rest = rest[1:]
            before = len(rest)
            fraction, scale, rest = _leading_fraction(rest)
            had_fraction = before != len(rest)
        if not had_whole and not had_fraction:
            return None
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        if end == 0:
            return None  # a number without a unit
        unit = _UNITS.get(rest[:end])
        rest = rest[end:]
        if unit is None:
            return None
        if whole > _INT64_MAX // unit:
            return None
        whole *= unit
        if fraction > 0:
            # float64, as Go computes it (nanosecond-exact for fractions of hours).
            whole += int(float(fraction) * (float(unit) / scale))
            if whole > _INT64_MAX:
                return None
        total += whole
        if total > _INT64_MAX:
            return None
    return -total if negative else total


# --------------------------------------------------------------------------- strconv


def parse_go_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: an optional sign, decimal digits, int64 range.

    >>> parse_go_int64("+12"), parse_go_int64("-0"), parse_go_int64(""), parse_go_int64("1_0")
    (12, 0, None, None)
    """
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all("0" <= char <= "9" for char in digits):
        return None
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        return None
    return value


def _parse_unix_timestamp(value: str) -> tuple[int, int] | None:
    """``timetype.parseTimestamp``: (seconds, nanoseconds) from ``SECONDS[.FRACTION]``."""
    seconds_text, dot, fraction_text = value.partition(".")
    seconds = parse_go_int64(seconds_text)
    if seconds is None:
        return None
    if not dot:
        return seconds, 0
    fraction = parse_go_int64(fraction_text)
    if fraction is None:
        return None
    # Go scales by math.Pow(10, 9-len); Pow of 10 to a negative integer is 1/10^k.
    exponent = 9 - len(fraction_text.encode())
    factor = float(10**exponent) if exponent >= 0 else 1.0 / float(10**-exponent)
    return seconds, int(float(fraction) * factor)


# --------------------------------------------------------------------------- time.Parse


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One element of a Go layout: a literal, or a standard field (``std``)."""

    text: str
    std: str = ""  # "" for a literal; else year, month, day, hour, minute, second, frac, zone


_YEAR = _Chunk("2006", "year")
_MONTH = _Chunk("01", "month")
_DAY = _Chunk("02", "day")
_HOUR = _Chunk("15", "hour")
_MINUTE = _Chunk("04", "minute")
_SECOND = _Chunk("05", "second")
_FRACTION = _Chunk(".999999999", "frac")
_ZONE = _Chunk("Z07:00", "zone")


def _literal(text: str) -> _Chunk:
    return _Chunk(text)


_DATE = (_YEAR, _literal("-"), _MONTH, _literal("-"), _DAY)
_T_HOUR = (*_DATE, _literal("T"), _HOUR)
_T_MINUTE = (*_T_HOUR, _literal(":"), _MINUTE)
_T_SECOND = (*_T_MINUTE, _literal(":"), _SECOND)
_T_NANO = (*_T_SECOND, _FRACTION)


def _layout_text(layout: tuple[_Chunk, ...]) -> str:
    return "".join(chunk.text for chunk in layout)


def _time_quote(text: str) -> str:
    """Go's ``time.quote``: non-ASCII and control bytes as ``\\xNN``."""
    pieces = ['"']
    for char in text:
        if char < " " or char >= "\x80":
            pieces.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            if char in '"\\':
                pieces.append("\\")
            pieces.append(char)
    pieces.append('"')
    return "".join(pieces)


class _ParseError(Exception):
    """Go's ``time.ParseError``, carrying its exact text."""


def _cannot_parse(layout: str, value: str, element: str, layout_element: str) -> _ParseError:
    return _ParseError(
        f"parsing time {_time_quote(value)} as {_time_quote(layout)}: cannot parse "
        f"{_time_quote(element)} as {_time_quote(layout_element)}"
    )


def _out_of_range(value: str, message: str) -> _ParseError:
    return _ParseError(f"parsing time {_time_quote(value)}{message}")


def _is_digit(text: str, index: int) -> bool:
    return index < len(text) and "0" <= text[index] <= "9"


def _get_number(text: str, fixed: bool) -> tuple[int, str] | None:
    """Go's ``getnum``: one or (``fixed``) exactly two leading digits."""
    if not _is_digit(text, 0):
        return None
    if not _is_digit(text, 1):
        if fixed:
            return None
        return ord(text[0]) - 48, text[1:]
    return (ord(text[0]) - 48) * 10 + ord(text[1]) - 48, text[2:]


def _go_atoi(text: str) -> int | None:
    """Go's internal ``time.atoi``: an optional sign, then digits only."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not all("0" <= char <= "9" for char in digits):
        return None
    value = int(digits) if digits else 0
    return -value if text[:1] == "-" else value


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (any year, as Go's ``Date``).

    >>> days_from_civil(1970, 1, 1), days_from_civil(2000, 3, 1), days_from_civil(0, 1, 1)
    (0, 11017, -719528)
    """
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _go_parse(layout: tuple[_Chunk, ...], value: str, local_offset: int | None) -> int:
    """Go 1.19 ``time.Parse``/``ParseInLocation`` for this module's layouts: ns since the epoch.

    ``local_offset`` is the fixed zone of ``ParseInLocation`` (None for ``Parse``, whose
    default is UTC). Raises :class:`_ParseError` with Go's message.
    """
    whole_layout = _layout_text(layout)
    original = value
    year, month, day = 0, 1, 1
    hour = minute = second = nanos = 0
    zone_offset: int | None = None
    for position, chunk in enumerate(layout):
        if not chunk.std:
            if not value.startswith(chunk.text):
                raise _cannot_parse(whole_layout, original, value, chunk.text)
            value = value[len(chunk.text) :]
            continue
        range_error = ""
        failed = False
        if chunk.std == "year":
            if len(value) < 4 or not _is_digit(value, 0):
                failed = True
            else:
                parsed = _go_atoi(value[:4])
                value = value[4:]
                failed = parsed is None
                year = parsed or 0
        elif chunk.std in ("month", "day", "hour", "minute", "second"):
            number = _get_number(value, fixed=chunk.std != "hour")
            if number is None:
                failed = True
                parsed_number = 0
            else:
                parsed_number, value = number
            if chunk.std == "month":
                month = parsed_number
                if not failed and not 1 <= month <= 12:
                    range_error = "month"
            elif chunk.std == "day":
                day = parsed_number
            elif chunk.std == "hour":
                hour = parsed_number
                if hour >= 24:
                    range_error = "hour"
            elif chunk.std == "minute":
                minute = parsed_number
                if minute >= 60:
                    range_error = "minute"
            else:
                second = parsed_number
                if second >= 60:
                    range_error = "second"
                elif len(value) >= 2 and value[0] in ".," and _is_digit(value, 1):
                    following = layout[position + 1] if position + 1 < len(layout) else None
                    if following is None or following.std != "frac":
                        # A fraction in the value but not in the layout: take it anyway.
                        end = 2
                        while _is_digit(value, end):
                            end += 1
                        nanos = _nanoseconds(value[:end])
                        value = value[end:]
        elif chunk.std == "frac":
            if len(value) >= 2 and value[0] in ".," and _is_digit(value, 1):
                end = 1
                while end <= 9 and _is_digit(value, end):  # Go 1.19 takes at most nine
                    end += 1
                nanos = _nanoseconds(value[:end])
                value = value[end:]
        elif value[:1] == "Z":  # the zone: "Z" or ±hh:mm
            value = value[1:]
            zone_offset = 0
        elif len(value) < 6 or value[3] != ":":
            failed = True
        else:
            sign, hours_text, minutes_text, value = value[0], value[1:3], value[4:6], value[6:]
            hours, minutes = _go_atoi(hours_text), _go_atoi(minutes_text)
            if hours is None or minutes is None or sign not in "+-":
                failed = True
            else:
                offset = (hours * 60 + minutes) * 60
                zone_offset = -offset if sign == "-" else offset
        if range_error:
            raise _out_of_range(original, f": {range_error} out of range")
        if failed:
            # Go 1.19 names what is left of the value after the failed field.
            raise _cannot_parse(whole_layout, original, value, chunk.text)
    if value:
        raise _out_of_range(original, f": extra text: {_time_quote(value)}")
    if not 1 <= day <= _days_in(month, year):
        raise _out_of_range(original, ": day out of range")
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    offset = zone_offset if zone_offset is not None else (local_offset or 0)
    return (seconds - offset) * SECOND_NS + nanos


def _nanoseconds(text: str) -> int:
    """Go's ``parseNanoseconds`` of ``.ddd``: at most nine digits count."""
    digits = text[1:10]
    return int(digits.ljust(9, "0"))


def _layout_for(value: str, in_location: bool) -> tuple[_Chunk, ...]:
    """FL-U3: the layout ``GetTimestamp`` chooses for ``value``."""
    zoned = () if in_location else (_ZONE,)
    if "." in value:
        return (*_T_NANO, *zoned)
    if "T" in value:
        colons = value.count(":")
        if not in_location and "z" not in value and "Z" not in value and colons > 0:
            colons -= 1  # the colon of a ±hh:mm offset
        base = _T_HOUR if colons == 0 else _T_MINUTE if colons == 1 else _T_SECOND
        return (*base, *zoned)
    return (*_DATE, *zoned)


def until_instant(value: str, now_ns: int, utc_offset_seconds: int) -> int | Failure:
    """The instant ``until=value`` means (FL-T3, FL-U1..U6), in ns since the epoch.

    ``now_ns`` is the current time and ``utc_offset_seconds`` the local zone's offset
    east of UTC at that time (``time.FixedZone(now.Zone())`` in Go). Errors are
    :class:`Failure` values of kind ``FILTER_TIME`` with Go's texts.
    """
    if value != "0":
        duration = parse_go_duration(value)
        if duration is not None:
            return ((now_ns - duration) // SECOND_NS) * SECOND_NS  # FL-U1
    in_location = not (any(char in value for char in "zZ+") or value.count("-") == 3)
    layout = _layout_for(value, in_location)
    try:
        return _go_parse(layout, value, utc_offset_seconds if in_location else None)
    except _ParseError as error:
        if "-" in value:
            return Failure(ErrorKind.FILTER_TIME, value, str(error), "FL-U4")
    stamp = _parse_unix_timestamp(value)
    if stamp is None:
        return Failure(
            ErrorKind.FILTER_TIME,
            value,
            f"failed to parse value as time or duration: {go_quote(value)}",
            "FL-U5",
        )
    seconds, nanos = stamp
    return seconds * SECOND_NS + nanos
