"""Manifests, manifest lists and image configs, read from an image's big data.

What the seed learns by opening an image through containers/image's storage
transport, computed from the snapshot's records and big data:

* the manifest MIME type (``GuessMIMEType``, ST-5) and whether an image is a
  manifest list (ML-1, IP-11);
* loading a manifest list with its ``instances.json`` (ML-2), choosing an instance
  for the wanted platforms (ML-4) and finding it in the store (ML-5);
* whether an image opens fully (EX-1, IP-12): metadata, a single-image manifest,
  every big-data size and the top-layer chain;
* the image config (SF-B-6, LT-2): platform (ST-6), labels (IP-10), history and
  diff IDs.

Documents are decoded the way Go's ``encoding/json`` decodes them into the
upstream structs: object keys match field names case-insensitively (Go's simple
folding, so ``MEDIATYPE`` and ``mediaType`` are the same field), the last duplicate
key wins, ``null`` leaves a field alone, and a value of the wrong JSON type makes
the whole document fail. Unknown keys are ignored without looking at their values.

The manifest is always the ``manifest`` item. compat (SF-B-6): containers/image
(5.17 and 5.23) prefers ``manifest-<digest>`` only for references that carry a
digest; libimage opens images by ID (``@<id>``), so it reads ``manifest``.

Every result is memoised for the snapshot (in ``snapshot.memo``), keyed by
(function, image ID, store). Errors are values (:class:`Unreadable`,
:class:`Failure`), never exceptions.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap, PVector

from libimage.pure.context import Platform
from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.snapshot import (
    Snapshot,
    StoredImage,
    Unreadable,
    find_layer,
    image_digest,
    image_digests,
)

MIME_DOCKER_V2S1 = "application/vnd.docker.distribution.manifest.v1+json"
MIME_DOCKER_V2S1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MIME_DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
MIME_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MIME_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MIME_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MIME_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MIME_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

MANIFEST_KEY = "manifest"
INSTANCES_KEY = "instances.json"

_SCHEMA2_MEDIA_TYPES = frozenset(
    {
        MIME_DOCKER_LIST,
        MIME_DOCKER_V2S1,
        MIME_DOCKER_V2S1_SIGNED,
        MIME_DOCKER_CONFIG,
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        MIME_DOCKER_V2S2,
        "application/vnd.docker.image.rootfs.diff.tar",
    }
)

T = TypeVar("T")


# ---------------------------------------------------------------------------
# Go's encoding/json, as far as these documents need it


class _DecodeError(Exception):
    """A document Go's json.Unmarshal would reject (internal; never escapes)."""


@dataclass(frozen=True, slots=True)
class _Object:
    """A JSON object with its keys in document order, duplicates kept."""

    pairs: tuple[tuple[str, Any], ...]


class _Huge:
    """A JSON integer too long to convert: accepted where any value is, not as an int."""


_HUGE = _Huge()


# Go matches a JSON key to an ASCII field name ignoring ASCII case, with two extra
# simple folds: U+017F (long s) matches s and U+212A (Kelvin sign) matches k.
_FOLD = {
    **{code: code + 32 for code in range(ord("A"), ord("Z") + 1)},
    0x017F: ord("s"),
    0x212A: ord("k"),
}


class _Type:
    """A Go type that JSON is decoded into (one base class keeps run-time checks cheap)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Scalar(_Type):
    """``string``, ``int`` (int64), ``bool``, ``any`` (interface{}) or ``time`` (*time.Time)."""

    kind: str


@dataclass(frozen=True, slots=True)
class _Struct(_Type):
    """A Go struct: JSON field names (as tagged) and their types, in declaration order."""

    fields: tuple[tuple[str, _Type], ...]
    types: dict[str, _Type] = field(init=False, compare=False, hash=False, repr=False)
    folded: dict[str, str] = field(init=False, compare=False, hash=False, repr=False)
    # The zero value, shared: decoding copies a struct before it sets a field.
    zero: dict[str, Any] = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", dict(self.fields))
        object.__setattr__(self, "zero", {name: _zero(kind) for name, kind in self.fields})
        folded: dict[str, str] = {}
        for name, _kind in self.fields:
            folded.setdefault(name.translate(_FOLD), name)  # the first field wins
        object.__setattr__(self, "folded", folded)


@dataclass(frozen=True, slots=True)
class _Slice(_Type):
    element: _Type


@dataclass(frozen=True, slots=True)
class _Map(_Type):
    element: _Type


@dataclass(frozen=True, slots=True)
class _Pointer(_Type):
    element: _Struct


_STRING = _Scalar("string")
_INT = _Scalar("int")
_BOOL = _Scalar("bool")
_ANY = _Scalar("any")
_TIME = _Scalar("time")
_NIL_ABLE_SCALARS = (_ANY, _TIME)


def _parse_int(text: str) -> int | _Huge:
    return int(text) if len(text) < 40 else _HUGE


def _reject_constant(text: str) -> object:
    raise _DecodeError(f"invalid character {text[0]!r} looking for beginning of value")


def _load(data: bytes) -> Any:
    """Parse ``data`` as Go does: UTF-8 (bad bytes in strings become U+FFFD), strict JSON.

    The result is in the fast path's form (dicts) when the document has no
    duplicate keys and no long numbers, else in the exact decoder's form
    (:class:`_Object`); :func:`_decode_document` takes either.
    """
    text = data.decode("utf-8", errors="replace")
    try:
        return _load_fast(text)
    except _Slow:
        return _load_exact(text)


def _load_exact(text: str) -> Any:
    """``text`` parsed into the exact decoder's form (raises _DecodeError as Go would fail)."""
    try:
        return _parse(_EXACT_PARSER, text)
    except ValueError as error:  # JSONDecodeError, and int() of a bad literal
        raise _DecodeError(str(error)) from None
    except RecursionError:
        # Python's parser gives up on deep nesting long before Go's 10000 levels.
        raise _DecodeError("exceeded max depth") from None


def _exact_object(pairs: list[tuple[str, Any]]) -> _Object:
    return _Object(tuple(pairs))


# Built once: json.loads with any keyword builds a new decoder and scanner per call.
_EXACT_PARSER = json.JSONDecoder(
    object_pairs_hook=_exact_object, parse_int=_parse_int, parse_constant=_reject_constant
)


def _parse(parser: json.JSONDecoder, text: str) -> Any:
    """``json.loads(text, ...)`` with a decoder built once (same values, same errors)."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return parser.decode(text)


def _json_type(value: Any) -> str:
    if isinstance(value, _Object):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def _mismatch(value: Any, go_type: str, path: str) -> _DecodeError:
    return _DecodeError(
        f"json: cannot unmarshal {_json_type(value)} into Go value of type {go_type}"
        + (f" (field {path})" if path else "")
    )


def _zero(schema: _Type) -> Any:
    if isinstance(schema, _Struct):
        return schema.zero
    if schema == _STRING:
        return ""
    if schema == _INT:
        return 0
    if schema == _BOOL:
        return False
    return None  # slices, maps, pointers, interface{} and *time.Time are nil


def _field_for(schema: _Struct, key: str) -> str:
    """The field ``key`` sets: an exact match first, then a folded one; "" for none."""
    if key in schema.types:
        return key
    return schema.folded.get(key.translate(_FOLD), "")


def _decode(value: Any, schema: _Type, current: Any, path: str = "") -> Any:
    """Decode ``value`` into a Go value of type ``schema`` that currently holds ``current``."""
    if value is None:
        # null: pointers, slices, maps and interfaces become nil; everything else stays.
        nil_able = isinstance(schema, _Slice | _Map | _Pointer) or schema in _NIL_ABLE_SCALARS
        return None if nil_able else current
    if isinstance(schema, _Struct):
        if not isinstance(value, _Object):
            raise _mismatch(value, "struct", path)
        result = dict(current)
        for key, item in value.pairs:
            name = _field_for(schema, key)
            if name:
                result[name] = _decode(item, schema.types[name], result[name], f"{path}.{name}")
        return result
    if isinstance(schema, _Pointer):
        target = current if current is not None else _zero(schema.element)
        return _decode(value, schema.element, target, path)
    if isinstance(schema, _Slice):
        if not isinstance(value, list):
            raise _mismatch(value, "slice", path)
        old = current or []
        return [
            _decode(item, schema.element, old[i] if i < len(old) else _zero(schema.element), path)
            for i, item in enumerate(value)
        ]
    if isinstance(schema, _Map):
        if not isinstance(value, _Object):
            raise _mismatch(value, "map", path)
        mapping = dict(current) if current is not None else {}
        for key, item in value.pairs:
            mapping[key] = _decode(item, schema.element, _zero(schema.element), path)
        return mapping
    if schema == _ANY:
        return value
    if schema == _STRING:
        if not isinstance(value, str):
            raise _mismatch(value, "string", path)
        return value
    if schema == _BOOL:
        if not isinstance(value, bool):
            raise _mismatch(value, "bool", path)
        return value
    if schema == _INT:
        if type(value) is not int or not -(2**63) <= value < 2**63:
            raise _mismatch(value, "int64", path)
        return value
    # *time.Time: Time.UnmarshalJSON parses the quoted literal as RFC 3339.
    if not isinstance(value, str):
        raise _DecodeError(f"parsing time {_json_text(value)} as RFC 3339: cannot parse")
    instant = parse_go_rfc3339(value)
    if instant is None:
        raise _DecodeError(f"parsing time {_json_text(value)} as RFC 3339: cannot parse")
    return instant


def _json_default(value: Any) -> Any:
    if isinstance(value, _Object):
        return dict(value.pairs)
    return "<number too long>"  # _Huge: the digits are not kept


def _json_text(value: Any) -> str:
    """A parsed value as JSON text again, for error messages (objects and long numbers too)."""
    return json.dumps(value, default=_json_default)


def _unmarshal(data: bytes | Any, schema: _Struct) -> dict[str, Any]:
    """``json.Unmarshal(data, &v)`` for a struct ``v`` of type ``schema`` (raises _DecodeError)."""
    document = _load(data) if isinstance(data, bytes) else data
    return cast("dict[str, Any]", _decode_document(document, schema))


# ---------------------------------------------------------------------------
# The fast path: Python's C parser and a decoder compiled per schema
#
# Almost every document is plain: no duplicate keys, every key that names a field
# spelt exactly as the field, every value of the field's type. For those, Go's
# decoding is simply "take the field's value", so the document is parsed into dicts
# by the C parser and each schema's fields are picked out by a decoder built once
# per schema. Anything else (a duplicate key, a key that matches a field only when
# folded, a type mismatch, a long number, a time that does not parse) raises
# _Slow, and the exact decoder above decodes the same document again, giving the
# same value or the same error. ``_ANY`` fields hold the raw value in either form:
# callers only ask whether it is null.


class _Slow(Exception):
    """The fast path cannot decode this document exactly; the exact decoder will."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise _Slow
    return mapping


_FAST_PARSER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def _load_fast(text: str) -> Any:
    """``text`` parsed into dicts and lists, or _Slow (duplicates, constants, bad JSON)."""
    try:
        return _parse(_FAST_PARSER, text)
    except (ValueError, RecursionError, _DecodeError):
        raise _Slow from None


def _to_exact(value: Any) -> Any:
    """A fast-path document in the exact decoder's form (keys in document order)."""
    kind = type(value)
    if kind is dict:
        return _Object(tuple((key, _to_exact(item)) for key, item in value.items()))
    if kind is list:
        return [_to_exact(item) for item in value]
    if kind is int and len(str(value)) >= 40:  # what _parse_int gives for the literal
        return _HUGE
    return value


_FAST: dict[int, Callable[[Any], Any]] = {}
# Keys seen in documents that are not field names, folded (bounded: hostile documents).
_FOLDED_KEYS: dict[str, str] = {}
_INT64_RANGE = range(-(2**63), 2**63)


def _folded(key: str) -> str:
    folded = _FOLDED_KEYS.get(key)
    if folded is None:
        folded = key.translate(_FOLD)
        if len(_FOLDED_KEYS) < 4096:
            _FOLDED_KEYS[key] = folded
    return folded


def _check_keys(
    value: dict[str, Any],
    names: frozenset[str],
    folded_names: dict[str, str],
    plain_keys: set[tuple[str, ...]],
) -> None:
    """_Slow if a key that is not a field name matches one when folded."""
    keys = tuple(value)
    if keys in plain_keys:
        return
    for key in keys:
        if key not in names and _folded(key) in folded_names:
            raise _Slow
    # Documents of one producer share their key lists (bounded: hostile documents).
    if len(plain_keys) < 1024:
        plain_keys.add(keys)


_STRING_FIELD, _BOOL_FIELD, _OTHER_FIELD = 0, 1, 2


def _struct_decoder(schema: _Struct) -> Callable[[Any], Any]:
    """The fast decoder of a struct: one ``get`` per field.

    A missing field decodes like null: the zero value, which Go leaves in place.
    String and bool fields are checked inline; other fields call their decoder.
    """
    fields = tuple(
        (
            name,
            _STRING_FIELD if kind == _STRING else _BOOL_FIELD if kind == _BOOL else _OTHER_FIELD,
            _fast_decoder(kind),
        )
        for name, kind in schema.fields
    )
    names, zero, folded_names = frozenset(schema.types), schema.zero, schema.folded
    plain_keys: set[tuple[str, ...]] = set()

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            if value is None:
                return zero
            raise _Slow
        if not value.keys() <= names:
            _check_keys(value, names, folded_names, plain_keys)
        result = {}
        get = value.get
        for name, kind, field_decoder in fields:
            item = get(name)
            if kind == _STRING_FIELD:
                if type(item) is not str:
                    if item is not None:
                        raise _Slow
                    item = ""
            elif kind == _BOOL_FIELD:
                if type(item) is not bool:
                    if item is not None:
                        raise _Slow
                    item = False
            else:
                item = field_decoder(item)
            result[name] = item
        return result

    return decode


def _fast_decoder(schema: _Type) -> Callable[[Any], Any]:
    """The fast decoder of ``schema`` (built once, kept for the module's schemas)."""
    decoder = _FAST.get(id(schema))
    if decoder is not None:
        return decoder
    if isinstance(schema, _Struct):
        decoder = _struct_decoder(schema)
    elif isinstance(schema, _Pointer):
        element = _fast_decoder(schema.element)

        def decode_pointer(value: Any) -> Any:
            return None if value is None else element(value)

        decoder = decode_pointer
    elif isinstance(schema, _Slice):
        element = _fast_decoder(schema.element)

        def decode_slice(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not list:
                raise _Slow
            return [element(item) for item in value]

        decoder = decode_slice
    elif isinstance(schema, _Map):
        element = _fast_decoder(schema.element)

        def decode_map(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not dict:
                raise _Slow
            return {key: element(item) for key, item in value.items()}

        decoder = decode_map
    else:
        decoder = _FAST_SCALARS[cast("_Scalar", schema).kind]
    _FAST[id(schema)] = decoder
    return decoder


def _fast_string(value: Any) -> Any:
    if type(value) is str:
        return value
    if value is None:
        return ""
    raise _Slow


def _fast_int(value: Any) -> Any:
    if type(value) is int and value in _INT64_RANGE:
        return value
    if value is None:
        return 0
    raise _Slow


def _fast_bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    if value is None:
        return False
    raise _Slow


def _fast_any(value: Any) -> Any:
    return value


_TIMES: dict[str, int] = {}  # history times repeat from image to image (bounded)


def _fast_time(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is not str:
        raise _Slow
    instant = _TIMES.get(value)
    if instant is None:
        instant = parse_go_rfc3339(value)
        if instant is None:
            raise _Slow
        if len(_TIMES) < 65536:
            _TIMES[value] = instant
    return instant


_FAST_SCALARS: dict[str, Callable[[Any], Any]] = {
    "string": _fast_string,
    "int": _fast_int,
    "bool": _fast_bool,
    "any": _fast_any,
    "time": _fast_time,
}


def _decode_document(document: Any, schema: _Type) -> Any:
    """Decode a parsed document (either form) into a zero ``schema`` value."""
    if not isinstance(document, _Object):
        try:
            return _fast_decoder(schema)(document)
        except _Slow:
            document = _to_exact(document)
    return _decode(document, schema, _zero(schema))


def _struct(*fields: tuple[str, _Type]) -> _Struct:
    return _Struct(tuple(fields))


_STRINGS = _Slice(_STRING)
_STRING_MAP = _Map(_STRING)
_PLATFORM = _struct(
    ("architecture", _STRING),
    ("os", _STRING),
    ("os.version", _STRING),
    ("os.features", _STRINGS),
    ("variant", _STRING),
)
_DESCRIPTOR = _struct(
    ("mediaType", _STRING),
    ("digest", _STRING),
    ("size", _INT),
    ("urls", _STRINGS),
    ("annotations", _STRING_MAP),
    ("platform", _Pointer(_PLATFORM)),
)
_SCHEMA2_DESCRIPTOR = _struct(
    ("mediaType", _STRING), ("size", _INT), ("digest", _STRING), ("urls", _STRINGS)
)
_SCHEMA2_LIST = _struct(
    ("schemaVersion", _INT),
    ("mediaType", _STRING),
    (
        "manifests",
        _Slice(
            _Struct(
                (
                    *_SCHEMA2_DESCRIPTOR.fields,
                    (
                        "platform",
                        _struct(*_PLATFORM.fields, ("features", _STRINGS)),
                    ),
                )
            )
        ),
    ),
)
_OCI_INDEX = _struct(
    ("schemaVersion", _INT),
    ("mediaType", _STRING),
    ("manifests", _Slice(_DESCRIPTOR)),
    ("annotations", _STRING_MAP),
)
_OCI_MANIFEST = _struct(
    ("schemaVersion", _INT),
    ("mediaType", _STRING),
    ("config", _DESCRIPTOR),
    ("layers", _Slice(_DESCRIPTOR)),
    ("annotations", _STRING_MAP),
)
_SCHEMA2_MANIFEST = _struct(
    ("schemaVersion", _INT),
    ("mediaType", _STRING),
    ("config", _SCHEMA2_DESCRIPTOR),
    ("layers", _Slice(_SCHEMA2_DESCRIPTOR)),
)
_SCHEMA1_MANIFEST = _struct(
    ("name", _STRING),
    ("tag", _STRING),
    ("architecture", _STRING),
    ("fsLayers", _Slice(_struct(("blobSum", _STRING)))),
    ("history", _Slice(_struct(("v1Compatibility", _STRING)))),
    ("schemaVersion", _INT),
)
_SCHEMA1_V1_COMPATIBILITY = _struct(
    ("id", _STRING),
    ("parent", _STRING),
    ("comment", _STRING),
    # time.Time (not a pointer) in the upstream struct; null leaves the zero time.
    ("created", _TIME),
    ("container_config", _struct(("Cmd", _STRINGS))),
    ("author", _STRING),
    ("throwaway", _BOOL),
)
_AMBIGUITY_FIELDS = _struct(
    ("config", _ANY),
    ("fsLayers", _ANY),
    ("history", _ANY),
    ("layers", _ANY),
    ("manifests", _ANY),
)
_STRUCT_SET = _Map(_struct())
_OCI_IMAGE_CONFIG = _struct(
    ("created", _TIME),
    ("author", _STRING),
    ("architecture", _STRING),
    ("variant", _STRING),
    ("os", _STRING),
    ("os.version", _STRING),
    ("os.features", _STRINGS),
    (
        "config",
        _struct(
            ("User", _STRING),
            ("ExposedPorts", _STRUCT_SET),
            ("Env", _STRINGS),
            ("Entrypoint", _STRINGS),
            ("Cmd", _STRINGS),
            ("Volumes", _STRUCT_SET),
            ("WorkingDir", _STRING),
            ("Labels", _STRING_MAP),
            ("StopSignal", _STRING),
        ),
    ),
    ("rootfs", _struct(("type", _STRING), ("diff_ids", _STRINGS))),
    (
        "history",
        _Slice(
            _struct(
                ("created", _TIME),
                ("created_by", _STRING),
                ("author", _STRING),
                ("comment", _STRING),
                ("empty_layer", _BOOL),
            )
        ),
    ),
)
# The docker config fields Inspect reports that the OCI view drops (ST-6: variant).
_DOCKER_INSPECT = _struct(("variant", _STRING))
_METADATA = _struct(
    ("signature-sizes", _Slice(_INT)),
    ("signatures-sizes", _Map(_Slice(_INT))),
)
_INSTANCES = _Map(_STRING)


# ---------------------------------------------------------------------------
# RFC 3339 as Go's time.Parse reads it


# Go's time.Parse with layout RFC3339: a one- or two-digit hour; a fraction after "."
# or "," when a digit follows; the offset's hour and minute each read by Go's atoi
# (two digits, or a sign and one digit), without range checks.
_GO_OFFSET_PART = "([0-9]{2}|[+-][0-9])"
_GO_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?"
    rf"(?:Z|([+-]){_GO_OFFSET_PART}:{_GO_OFFSET_PART})",
    re.ASCII,
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in {4, 6, 9, 11} else 31


def parse_go_rfc3339(text: str) -> int | None:
    """The instant (ns since the epoch, UTC) Go's ``time.Parse(RFC3339, text)`` gives, or None.

    Go is lenient where Python is not: a one-digit hour, a fraction of any length
    (digits past the ninth are ignored) after ``.`` or ``,``, and an offset read
    as ``±hh:mm`` without range checks. Used for history ``created`` (LT-3).

    >>> parse_go_rfc3339("1970-01-01T01:00:00+01:00"), parse_go_rfc3339("1970-01-01T0:00:01.5Z")
    (0, 1500000000)
    >>> parse_go_rfc3339("1970-01-01 00:00:00Z") is None
    True
    """
    match = _GO_RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, offset_hours, offset_minutes = (
        match.groups()
    )
    date = (year, month, day)
    midnight = _DAY_STARTS.get(date, _UNKNOWN_DAY)
    if midnight is _UNKNOWN_DAY:
        midnight = _day_start(int(year), int(month), int(day))
        if len(_DAY_STARTS) < 65536:  # histories share their days (bounded)
            _DAY_STARTS[date] = midnight
    hours, minutes, seconds = int(hour), int(minute), int(second)
    if midnight is None or not (hours < 24 and minutes < 60 and seconds < 60):
        return None
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    offset = 0
    if sign:
        offset = (int(offset_hours) * 60 + int(offset_minutes)) * 60
        offset = -offset if sign == "-" else offset
    total: int = midnight + hours * 3600 + minutes * 60 + seconds
    return (total - offset) * 1_000_000_000 + nanos


_UNKNOWN_DAY = -(2**80)  # not a day start: marks a date not seen yet
_DAY_STARTS: dict[tuple[str, str, str], int | None] = {}


def _day_start(year: int, month: int, day: int) -> int | None:
    """Seconds from the epoch to the start of a valid date, else None."""
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return None
    return _days_from_civil(year, month, day) * 86400


# ---------------------------------------------------------------------------
# ST-5: the MIME type of a manifest

_GUESS_META = _struct(("mediaType", _STRING), ("schemaVersion", _INT), ("signatures", _ANY))
_GUESS_CONFIG = _struct(("config", _struct(("mediaType", _STRING))))
_GUESS_MANIFESTS = _struct(("manifests", _Slice(_DESCRIPTOR)))


def guess_mime_type(data: bytes) -> str:
    """``manifest.GuessMIMEType`` (ST-5): the manifest type of ``data``, or ``""``.

    >>> guess_mime_type(b'{"schemaVersion": 2, "MEDIATYPE": "'
    ...     b'application/vnd.oci.image.index.v1+json"}') == MIME_OCI_INDEX
    True
    >>> guess_mime_type(b'{"schemaVersion":1,"signatures":[]}') == MIME_DOCKER_V2S1_SIGNED
    True
    >>> guess_mime_type(b'{"schemaVersion":"2"}'), guess_mime_type(b"[]")
    ('', '')
    """
    try:
        document = _load(data)
    except _DecodeError:
        return ""
    return _guess_document(document)


def _guess_document(document: Any) -> str:
    """:func:`guess_mime_type` of a document already parsed."""
    try:
        meta = _unmarshal(document, _GUESS_META)
        if meta["mediaType"] in {
            MIME_DOCKER_V2S2,
            MIME_DOCKER_LIST,
            MIME_OCI_MANIFEST,
            MIME_OCI_INDEX,
        }:
            return str(meta["mediaType"])
        if meta["schemaVersion"] == 1:
            return MIME_DOCKER_V2S1_SIGNED if meta["signatures"] is not None else MIME_DOCKER_V2S1
        if meta["schemaVersion"] != 2:
            return ""
        config_type = str(_unmarshal(document, _GUESS_CONFIG)["config"]["mediaType"])
        if config_type == MIME_OCI_CONFIG:
            return MIME_OCI_MANIFEST
        if config_type == MIME_DOCKER_CONFIG:
            return MIME_DOCKER_V2S2
        manifests = _unmarshal(document, _GUESS_MANIFESTS)["manifests"]
    except _DecodeError:
        return ""
    if manifests:
        # quirk (ST-5): a non-empty "manifests" with an odd config media type yields that type.
        return config_type or MIME_OCI_INDEX
    return MIME_OCI_MANIFEST


def normalized_mime_type(mime_type: str) -> str:
    """``manifest.NormalizedMIMEType``: unknown types are read as signed schema1."""
    if mime_type in {
        MIME_DOCKER_V2S1,
        MIME_DOCKER_V2S1_SIGNED,
        MIME_OCI_MANIFEST,
        MIME_OCI_INDEX,
        MIME_DOCKER_V2S2,
        MIME_DOCKER_LIST,
    }:
        return mime_type
    return MIME_DOCKER_V2S1_SIGNED


def is_multi_image(mime_type: str) -> bool:
    """``MIMETypeIsMultiImage``: a docker manifest list or an OCI index (ML-1)."""
    return mime_type in {MIME_DOCKER_LIST, MIME_OCI_INDEX}


# ---------------------------------------------------------------------------
# Reading an image's items


class _Results:
    """This module's results for one snapshot, keyed by (function, image ID, store).

    One entry in ``snapshot.memo`` holds them all, so the memo stays small.
    """

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, int], object] = {}


def _memoised(snapshot: Snapshot, name: str, image: StoredImage, compute: Callable[[], T]) -> T:
    memo = snapshot.memo
    results = memo.get(_Results)
    if not isinstance(results, _Results):
        results = _Results()
        memo[_Results] = results
    key = (name, image.id, image.store_index)
    values = results.values
    if key not in values:
        values[key] = compute()
    return cast("T", values[key])


def _remember(snapshot: Snapshot, name: str, image: StoredImage, value: object) -> None:
    """Record what :func:`_memoised` would compute for ``name``, learnt on the way."""
    results = snapshot.memo.get(_Results)
    if isinstance(results, _Results):
        results.values.setdefault((name, image.id, image.store_index), value)


def _unreadable_text(item: Unreadable) -> str:
    return f"{item.what}: {item.reason}"


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _corrupted(image: StoredImage, message: str) -> Failure:
    return Failure(ErrorKind.IMAGE_CORRUPTED, image.id, message, "EX-1")


def _list_failure(image: StoredImage, message: str, rule: str) -> Failure:
    return Failure(ErrorKind.MANIFEST_LIST_LOAD, image.id, message, rule)


def _metadata_error(image: StoredImage) -> str:
    """Why the record's ``metadata`` does not decode (``newImageSource``), or ""."""
    if not image.metadata or _PLAIN_METADATA.fullmatch(image.metadata):
        return ""
    found = _METADATA_ERRORS.get(image.metadata)
    if found is not None:
        return found
    try:
        _unmarshal(image.metadata.encode(), _METADATA)
        error_text = ""
    except _DecodeError as error:
        error_text = f"decoding metadata for source image: {error}"
    if len(_METADATA_ERRORS) < 65536:  # asked by opening and by the type check (bounded)
        _METADATA_ERRORS[image.metadata] = error_text
    return error_text


_METADATA_ERRORS: dict[str, str] = {}
# What podman, buildah and the synthesiser write for an image pulled or committed
# with one manifest: an object with one key, "signatures-sizes", holding a map from
# one sha256 digest to an empty list. It decodes into _METADATA without error.
_PLAIN_METADATA = re.compile(r'\{"signatures-sizes":\{"sha256:[0-9a-f]{64}":\[\]\}\}', re.ASCII)


def manifest_mime_type(snapshot: Snapshot, image: StoredImage) -> str | Unreadable:
    """The image's manifest type as the storage image source reports it (ST-5, LK-9 step 2).

    Opening the source decodes the record's ``metadata`` first: a bad one is an
    error that is not "missing". Then the ``manifest`` item is read; a missing item
    is an :class:`Unreadable` with ``missing=True`` (what LK-9 tolerates).
    """

    def compute() -> str | Unreadable:
        metadata_error = _metadata_error(image)
        if metadata_error:
            return Unreadable(f"{image.id}/metadata", metadata_error, missing=False)
        facts = derived(snapshot, image, MANIFEST_KEY, MANIFEST_FACTS)
        if isinstance(facts, Unreadable):
            return facts
        return cast("str", facts[1])  # guess_mime_type: "" when the manifest does not parse

    return _memoised(snapshot, "manifest_mime_type", image, compute)


def is_manifest_list(snapshot: Snapshot, image: StoredImage) -> bool | Unreadable:
    """``IsManifestList`` (ML-1, IP-11): the manifest is a docker list or an OCI index."""
    mime_type = manifest_mime_type(snapshot, image)
    if isinstance(mime_type, Unreadable):
        return mime_type
    return is_multi_image(mime_type)


# ---------------------------------------------------------------------------
# Manifest lists (ML-2, ML-4, ML-5)


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One entry of a manifest list: the instance's digest and platform (None: none given)."""

    digest: str
    platform: Platform | None
    media_type: str = ""
    size: int = 0


@dataclass(frozen=True, slots=True)
class ManifestList:
    """A parsed manifest list (docker list or OCI index) of image ``image_id``.

    ``instances`` is ``instances.json`` (digest -> image ID) for a list loaded with
    :func:`load_manifest_list` (ML-2); it is empty for :func:`instance_list`.
    """

    image_id: str
    mime_type: str
    entries: PVector[ListEntry] = field(default_factory=pvector)
    instances: PMap[str, str] = field(default_factory=pmap)


def _platform(raw: dict[str, Any] | None) -> Platform | None:
    if raw is None:
        return None
    return Platform(os=raw["os"], architecture=raw["architecture"], variant=raw["variant"])


def _entries(document: dict[str, Any]) -> PVector[ListEntry]:
    # A docker entry's platform is a struct (never nil); an OCI entry's is a pointer.
    return pvector(
        ListEntry(raw["digest"], _platform(raw["platform"]), raw["mediaType"], raw["size"])
        for raw in document["manifests"] or ()
    )


def _ambiguity(document: Any, expected: str, allowed: frozenset[str]) -> str:
    """``validateUnambiguousManifestFormat``: the error text, or "" (CVE-2021-41190 checks)."""
    # The document already decoded into a struct, so this decoding cannot fail.
    present = _unmarshal(document, _AMBIGUITY_FIELDS)
    unexpected = [
        name
        for name, _kind in _AMBIGUITY_FIELDS.fields
        if present[name] is not None and name not in allowed
    ]
    if unexpected:
        listed = ", ".join(_go_quote(name) for name in unexpected)
        return (
            f"rejecting ambiguous manifest, unexpected fields []string{{{listed}}} "
            f"in supposedly {expected}"
        )
    return ""


def load_manifest_list(snapshot: Snapshot, image: StoredImage) -> ManifestList | Failure:
    """``ToManifestList`` (ML-2): the list in ``manifest`` plus its ``instances.json``.

    Errors (all kind ``MANIFEST_LIST_LOAD``): the ``manifest`` item cannot be read;
    it is not a docker list or OCI index (``unsupported format``); it does not
    decode; ``instances.json`` is missing (``error locating image "<id>" for loading
    instance list: ...``) or is not a JSON object of strings.
    """

    def compute() -> ManifestList | Failure:
        quoted = _go_quote(image.id)
        data = snapshot.content.big_data(image, MANIFEST_KEY)
        if isinstance(data, Unreadable):
            return _list_failure(
                image,
                f"error locating image {quoted} for loading manifest list: "
                f"{_unreadable_text(data)}",
                "ML-2",
            )
        mime_type = guess_mime_type(data)
        if mime_type == MIME_DOCKER_LIST:
            schema, what = _SCHEMA2_LIST, "unable to parse Docker manifest list from image"
        elif mime_type == MIME_OCI_INDEX:
            schema, what = _OCI_INDEX, "unable to parse OCIv1 manifest list"
        else:
            return _list_failure(
                image,
                f"unable to load manifest list: unsupported format {_go_quote(mime_type)}: "
                "manifest type not supported",
                "ML-2",
            )
        try:
            document = _unmarshal(data, schema)
        except _DecodeError as error:
            return _list_failure(image, f"{what}: {error}", "ML-2")
        instances_data = snapshot.content.big_data(image, INSTANCES_KEY)
        if isinstance(instances_data, Unreadable):
            return _list_failure(
                image,
                f"error locating image {quoted} for loading instance list: "
                f"{_unreadable_text(instances_data)}",
                "ML-2",
            )
        try:
            instances = _decode_document(_load(instances_data), _INSTANCES)
        except _DecodeError as error:
            return _list_failure(
                image, f"error decoding instance list for image {quoted}: {error}", "ML-2"
            )
        if instances is None:
            # Go decodes `null` into a nil map and then panics writing to it.
            return _list_failure(
                image,
                f"error decoding instance list for image {quoted}: assignment to entry in nil map",
                "ML-2",
            )
        instances[""] = image.id
        return ManifestList(image.id, mime_type, _entries(document), pmap(instances))

    return _memoised(snapshot, "load_manifest_list", image, compute)


def parse_instance_list(data: bytes, image_id: str = "") -> ManifestList | Failure:
    """``manifest.ListFromBlob`` on a list's manifest, as ``LookupInstance`` does (ML-4).

    Single-image types give ``Treating single images as manifest lists is not
    implemented``; the list must decode and pass the ambiguity check.
    """
    mime_type = guess_mime_type(data)
    normalized = normalized_mime_type(mime_type)

    def failure(message: str) -> Failure:
        return Failure(ErrorKind.MANIFEST_LIST_LOAD, image_id, message, "ML-4")

    if normalized == MIME_DOCKER_LIST:
        schema, what = _SCHEMA2_LIST, "Schema2List"
    elif normalized == MIME_OCI_INDEX:
        schema, what = _OCI_INDEX, "OCI1Index"
    elif normalized in {
        MIME_DOCKER_V2S1,
        MIME_DOCKER_V2S1_SIGNED,
        MIME_OCI_MANIFEST,
        MIME_DOCKER_V2S2,
    }:
        return failure("Treating single images as manifest lists is not implemented")
    else:  # pragma: no cover - NormalizedMIMEType never returns anything else
        return failure(
            f"Unimplemented manifest list MIME type {mime_type} (normalized as {normalized})"
        )
    try:
        document = _load(data)
        decoded = _unmarshal(document, schema)
    except _DecodeError as error:
        text = data.decode("utf-8", errors="replace")
        return failure(f"unmarshaling {what} {_go_quote(text)}: {error}")
    ambiguity = _ambiguity(document, normalized, frozenset({"manifests"}))
    if ambiguity:
        return failure(ambiguity)
    return ManifestList(image_id, normalized, _entries(decoded))


def instance_list(snapshot: Snapshot, image: StoredImage) -> ManifestList | Failure:
    """The list image's ``manifest`` re-read and parsed for instance choice (ML-4)."""

    def compute() -> ManifestList | Failure:
        data = snapshot.content.big_data(image, MANIFEST_KEY)
        if isinstance(data, Unreadable):
            return Failure(ErrorKind.MANIFEST_LIST_LOAD, image.id, _unreadable_text(data), "ML-4")
        return parse_instance_list(data, image.id)

    return _memoised(snapshot, "instance_list", image, compute)


def choose_instance(manifest_list: ManifestList, wanted: Sequence[Platform]) -> str | Failure:
    """``ChooseInstance`` (ML-4): the digest of the entry for the first wanted platform.

    For each wanted platform in order (PLAT-4), the first entry whose OS,
    architecture and variant are exactly equal wins. In an OCI index, entries
    without a platform are skipped in that pass, and if nothing matched the first
    of them is chosen. No match names the first wanted platform.

    >>> arm = Platform("linux", "arm", "v7")
    >>> index = ManifestList("l", MIME_OCI_INDEX, pvector([ListEntry("sha256:a", None),
    ...     ListEntry("sha256:b", arm)]))
    >>> choose_instance(index, [arm]), choose_instance(index, [Platform("linux", "amd64")])
    ('sha256:b', 'sha256:a')
    """
    if not wanted:
        raise ValueError("choose_instance needs at least one wanted platform (PLAT-4)")
    for platform in wanted:
        for entry in manifest_list.entries:
            if entry.platform is None:
                continue
            if (
                entry.platform.architecture == platform.architecture
                and entry.platform.os == platform.os
                and entry.platform.variant == platform.variant
            ):
                return entry.digest
    oci = manifest_list.mime_type == MIME_OCI_INDEX
    if oci:
        for entry in manifest_list.entries:
            if entry.platform is None:
                return entry.digest
    first = wanted[0]
    where = "image index" if oci else "manifest list"
    return Failure(
        ErrorKind.MANIFEST_LIST_LOAD,
        manifest_list.image_id,
        f"no image found in {where} for architecture {first.architecture}, "
        f"variant {_go_quote(first.variant)}, OS {first.os}",
        "ML-4",
    )


def find_instance_image(snapshot: Snapshot, digest: str) -> StoredImage | None:
    """The first image in store order whose digests include ``digest`` (ML-5).

    quirk (ML-5): the seed compares with ``append(Digests(), Digest())``, so an
    empty chosen digest matches the first image that has no digest at all.
    """
    for image in snapshot.images:
        if digest in image_digests(image) or digest == image_digest(image):
            return image
    return None


def instance_not_found(list_image: StoredImage, digest: str) -> Failure:
    """ML-5's error when no local image has the chosen digest (kind ``IMAGE_UNKNOWN``)."""
    message = (
        f"could not find image instance {digest} of manifest list {list_image.id} "
        "in local containers storage: image not known"
    )
    return Failure(ErrorKind.IMAGE_UNKNOWN, list_image.id, message, "ML-5")


# ---------------------------------------------------------------------------
# Facts derived from one big-data item's bytes
#
# What opening an image and reading its config need from a file is a pure function
# of the file's bytes. Computing it through the content reader lets an adapter keep
# the value for a file it has already read (adapters/content.py, the persistent
# facts cache); readers without that ability read the bytes and derive here. The
# values are plain (None, bool, int, str, tuples, dicts of str) so that they can be
# stored and read back equal.


@dataclass(frozen=True, slots=True)
class Derivation:
    """A pure function of a big-data item's bytes, named with its version for stored copies."""

    name: str
    derive: Callable[[bytes], Any]


def _manifest_facts(data: bytes) -> tuple[str | None, str, str, str, str]:
    """(load error or None, guessed MIME type, parse error, opened type, config digest).

    The MIME type is ``guess_mime_type`` (ST-5: "" when the bytes do not parse); the
    rest is ``manifestInstanceFromBlob`` for one image (the parse error text, or the
    normalised type and the config descriptor's digest).
    """
    try:
        document = _load(data)
    except _DecodeError as error:
        return str(error), "", "", "", ""
    mime_type = _guess_document(document)
    opened = _parse_single_document(document, mime_type)
    if isinstance(opened, str):
        return None, mime_type, opened, "", ""
    return None, mime_type, "", opened.mime_type, opened.config_digest


_HistoryFacts = tuple[int | None, str, str, str, bool]
_ConfigFacts = tuple[
    str, str, str, str, str, dict[str, str] | None, tuple[_HistoryFacts, ...], tuple[str, ...]
]


def _config_facts(data: bytes) -> _ConfigFacts:
    """(sha256 digest, decode error, os, architecture, variant, labels, history, diff IDs).

    The bytes decoded as an OCI image config (SF-B-6, LT-2); on a decode error the
    fields after it are zero. ``variant`` is the config's own: decoding the docker
    view (``_DOCKER_INSPECT``) gives the same value, since the OCI struct has the
    same ``variant`` field (name, type, folding) and has decoded without error.
    """
    computed = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        config = _unmarshal(_load(data), _OCI_IMAGE_CONFIG)
    except _DecodeError as error:
        return computed, str(error), "", "", "", None, (), ()
    return (
        computed,
        "",
        config["os"],
        config["architecture"],
        config["variant"],
        config["config"]["Labels"],
        tuple(
            _shared(
                (
                    entry["created"],
                    entry["created_by"],
                    entry["author"],
                    entry["comment"],
                    entry["empty_layer"],
                )
            )
            for entry in config["history"] or ()
        ),
        tuple(_shared(diff_id) for diff_id in config["rootfs"]["diff_ids"] or ()),
    )


_SHARED: dict[Any, Any] = {}


def _shared(value: T) -> T:
    """One object for equal history entries and diff IDs (images share their base layers).

    Equal values, fewer objects: less memory, and a stored copy of the facts writes
    each once. Bounded, like the other memos.
    """
    found = _SHARED.get(value)
    if found is not None:
        return cast("T", found)
    if len(_SHARED) < 262144:
        _SHARED[value] = value
    return value


MANIFEST_FACTS = Derivation("manifest-facts/1", _manifest_facts)
CONFIG_FACTS = Derivation("config-facts/1", _config_facts)
DERIVATIONS = (MANIFEST_FACTS, CONFIG_FACTS)
"""Every derivation; a stored copy made by another set (another version) is not used."""


def derived(snapshot: Snapshot, image: StoredImage, key: str, derivation: Derivation) -> Any:
    """``derivation`` of big-data item ``key`` of ``image``, or the item's :class:`Unreadable`.

    A content reader with a ``derived`` method answers itself (it may hold the value
    for an unchanged file); any other reader gives the bytes and they are derived here.
    """
    content = snapshot.content
    ask = getattr(content, "derived", None)
    if ask is not None:
        return ask(image, key, derivation)
    data = content.big_data(image, key)
    return data if isinstance(data, Unreadable) else derivation.derive(data)


# ---------------------------------------------------------------------------
# Opening an image (EX-1) and its config (SF-B-6, LT-2, ST-6, IP-10)


@dataclass(frozen=True, slots=True)
class _Opened:
    """What opening a single image yields: its manifest type and config descriptor."""

    mime_type: str
    config_digest: str


_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_DIGITS = frozenset("0123456789abcdef")
_DIGEST_TEXT = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)


def _digest_error(digest: str) -> str:
    """``digest.Digest.Validate``: the error text, or ""."""
    colon = digest.find(":")
    if colon <= 0 or colon + 1 == len(digest):
        return "invalid checksum digest format"
    algorithm, encoded = digest[:colon], digest[colon + 1 :]
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None:
        if not _DIGEST_TEXT.fullmatch(digest):
            return "invalid checksum digest format"
        return "unsupported digest algorithm"
    if len(encoded) != length:
        return "invalid checksum digest length"
    if not _HEX_DIGITS.issuperset(encoded):
        return "invalid checksum digest format"
    return ""


def _parse_single(data: bytes, mime_type: str) -> _Opened | str:
    """``manifestInstanceFromBlob`` for one image: the parsed manifest, or the error text."""
    try:
        document = _load(data)
    except _DecodeError as error:
        return str(error)
    return _parse_single_document(document, mime_type)


def _parse_single_document(document: Any, mime_type: str) -> _Opened | str:
    """:func:`_parse_single` of a document already parsed."""
    normalized = normalized_mime_type(mime_type)
    try:
        if normalized in {MIME_DOCKER_V2S1, MIME_DOCKER_V2S1_SIGNED}:
            return _parse_schema1(document)
        if normalized == MIME_OCI_MANIFEST:
            manifest = _unmarshal(document, _OCI_MANIFEST)
            ambiguity = _ambiguity(document, MIME_OCI_INDEX, frozenset({"config", "layers"}))
            if ambiguity:
                return ambiguity
            return _Opened(normalized, manifest["config"]["digest"])
        if normalized == MIME_DOCKER_V2S2:
            manifest = _unmarshal(document, _SCHEMA2_MANIFEST)
            ambiguity = _ambiguity(document, MIME_DOCKER_V2S2, frozenset({"config", "layers"}))
            if ambiguity:
                return ambiguity
            for media_type in [manifest["mediaType"]] + [
                layer["mediaType"] for layer in manifest["layers"] or ()
            ]:
                if media_type not in _SCHEMA2_MEDIA_TYPES:
                    return f"unsupported docker v2s2 media type: {_go_quote(media_type)}"
            return _Opened(normalized, manifest["config"]["digest"])
    except _DecodeError as error:
        return str(error)
    # A list opened as an image: upstream picks the host platform's instance and reads
    # its manifest from the list image itself, which list images do not store.
    return "manifest lists are not opened as single images: the list holds no instance manifest"


def _parse_schema1(document: Any) -> _Opened | str:
    manifest = _unmarshal(document, _SCHEMA1_MANIFEST)
    if manifest["schemaVersion"] != 1:
        return f"unsupported schema version {manifest['schemaVersion']}"
    ambiguity = _ambiguity(document, MIME_DOCKER_V2S1_SIGNED, frozenset({"fsLayers", "history"}))
    if ambiguity:
        return ambiguity
    layers, history = manifest["fsLayers"] or [], manifest["history"] or []
    if len(layers) != len(history):
        return "length of history not equal to number of layers"
    if not layers:
        return "no FSLayers in manifest"
    compat = []
    for index, entry in enumerate(history):
        try:
            compat.append(_unmarshal(entry["v1Compatibility"].encode(), _SCHEMA1_V1_COMPATIBILITY))
        except _DecodeError as error:
            return f"parsing v2s1 history entry {index}: {error}"
    for entry in compat:
        if not re.fullmatch(r"[a-f0-9]{64}", entry["id"], re.ASCII):
            return f"image ID {_go_quote(entry['id'])} is invalid"
    if compat[-1]["parent"]:
        return "Invalid parent ID in the base layer of the image"
    seen: set[str] = set()
    last = ""
    for entry in compat:
        if entry["id"] != last and entry["id"] in seen:
            return f"ID {entry['id']} appears multiple times in manifest"
        last = entry["id"]
        seen.add(last)
    for index in range(len(compat) - 2, -1, -1):
        if compat[index]["id"] != compat[index + 1]["id"] and (
            compat[index]["parent"] != compat[index + 1]["id"]
        ):
            return (
                f"Invalid parent ID. Expected {compat[index + 1]['id']}, "
                f"got {compat[index]['parent']}"
            )
    # Schema1 has no config blob; containers/image synthesizes one (SF-B-6: unavailable).
    return _Opened(MIME_DOCKER_V2S1_SIGNED, "")


def _size_error(snapshot: Snapshot, image: StoredImage) -> str:
    """``getSize`` of the storage image source: why the size cannot be had, or ""."""
    for key in image.big_data_names:
        if key in image.big_data_sizes:
            continue
        data = snapshot.content.big_data(image, key)
        if isinstance(data, Unreadable):
            return (
                f"reading data blob size {_go_quote(key)} for {_go_quote(image.id)}: "
                "size is not known"
            )
    layer_id = image.top_layer
    visited: set[str] = set()
    while layer_id:
        if layer_id in visited:
            # Go would loop forever here; a cycle is a corrupted layer chain.
            return f"layer {_go_quote(layer_id)} is its own ancestor: the layer chain has a cycle"
        visited.add(layer_id)
        layer = find_layer(snapshot, layer_id)
        if layer is None:
            return "layer not known"
        if not layer.diff_digest or (layer.diff_size is not None and layer.diff_size < 0):
            return f"size for layer {_go_quote(layer_id)} is unknown, failing getSize()"
        layer_id = layer.parent
    return ""


def _open(snapshot: Snapshot, image: StoredImage) -> _Opened | Failure:
    """``ref.NewImage``: metadata, manifest, single-image parse, size (EX-1), memoised."""

    def compute() -> _Opened | Failure:
        metadata_error = _metadata_error(image)
        if metadata_error:
            return _corrupted(image, metadata_error)
        facts = derived(snapshot, image, MANIFEST_KEY, MANIFEST_FACTS)
        if isinstance(facts, Unreadable):
            return _corrupted(image, _unreadable_text(facts))
        load_error, mime_type, parse_error, opened_type, config_digest = facts
        _remember(snapshot, "manifest_mime_type", image, mime_type)
        if load_error is not None:
            return _corrupted(image, load_error)
        if parse_error:
            return _corrupted(image, parse_error)
        opened = _Opened(opened_type, config_digest)
        size_error = _size_error(snapshot, image)
        if size_error:
            return _corrupted(image, size_error)
        return opened

    return _memoised(snapshot, "open_image", image, compute)


def open_image(snapshot: Snapshot, image: StoredImage) -> Failure | None:
    """Why the image does not open as a single image (``ref.NewImage``), or None (EX-1).

    The record's ``metadata`` must decode; the ``manifest`` item must exist and parse
    as a single image (schema1, schema2 or OCI manifest, with the ambiguity and
    media-type checks); every big-data item must have a known size; and every layer
    of the top-layer chain must exist with a known uncompressed digest and a size of
    at least 0. The config blob is *not* needed (checked with podman 4.3.1: an image
    whose config file is gone still "exists").
    """
    opened = _open(snapshot, image)
    return opened if isinstance(opened, Failure) else None


def is_corrupted(snapshot: Snapshot, image: StoredImage, name: str = "") -> Failure | None:
    """``isCorrupted`` (EX-1, IP-12): None if the image is sound, else the error.

    An image that loads as a manifest list (ML-2) is sound; otherwise it must open
    fully (:func:`open_image`). The message names ``name`` (the caller's input) or
    the first 12 characters of the ID::

        Image <name> exists in local storage but may be corrupted (remove the image
        to resolve the issue): <error>
    """
    if not isinstance(load_manifest_list(snapshot, image), Failure):
        return None
    failure = open_image(snapshot, image)
    if failure is None:
        return None
    shown = name or image.id[:12]
    return Failure(
        ErrorKind.IMAGE_CORRUPTED,
        name or image.id,
        f"Image {shown} exists in local storage but may be corrupted "
        f"(remove the image to resolve the issue): {failure.message}",
        "EX-1",
    )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One config history entry (LT-2); ``created`` in ns since the epoch, None if absent."""

    created: int | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image's config the core uses (LT-2, ST-6, IP-10).

    ``variant`` is what ``Inspect`` reports: only docker v2s2 images have one (ST-6).
    ``labels`` is None when the config has no ``Labels`` (podman prints ``null``).
    """

    os: str = ""
    architecture: str = ""
    variant: str = ""
    labels: PMap[str, str] | None = None
    history: PVector[HistoryEntry] = field(default_factory=pvector)
    diff_ids: PVector[str] = field(default_factory=pvector)
    mime_type: str = ""
    config_digest: str = ""


def image_config(snapshot: Snapshot, image: StoredImage) -> ImageConfig | Failure:
    """The image's config, read through its manifest (SF-B-6, LT-2), or why not.

    The image must open (:func:`open_image`); the manifest's ``config.digest`` must
    be a valid digest naming a big-data item whose sha256 is that digest; the bytes
    must decode as an OCI image config. Schema1 images have no config blob and
    report "config unavailable". Errors have kind ``IMAGE_CORRUPTED``.
    """

    def compute() -> ImageConfig | Failure:
        opened = _open(snapshot, image)
        if isinstance(opened, Failure):
            return opened
        digest = opened.config_digest
        if opened.mime_type == MIME_DOCKER_V2S1_SIGNED:
            return _corrupted(image, "config unavailable: schema1 images have no config blob")
        digest_error = _digest_error(digest)
        if digest_error:
            return _corrupted(image, digest_error)
        facts = derived(snapshot, image, digest, CONFIG_FACTS)
        if isinstance(facts, Unreadable):
            return _corrupted(image, _unreadable_text(facts))
        computed, decode_error, os_name, architecture, variant, labels, history, diff_ids = facts
        if computed != digest:
            return _corrupted(
                image, f"Download config.json digest {computed} does not match expected {digest}"
            )
        if decode_error:
            return _corrupted(image, decode_error)
        return ImageConfig(
            os=os_name,
            architecture=architecture,
            # Only docker v2s2 images report a variant (ST-6).
            variant=variant if opened.mime_type == MIME_DOCKER_V2S2 else "",
            labels=None if labels is None else pmap(labels),
            history=pvector(HistoryEntry(*entry) for entry in history),
            diff_ids=pvector(diff_ids),
            mime_type=opened.mime_type,
            config_digest=digest,
        )

    return _memoised(snapshot, "image_config", image, compute)


def image_platform(snapshot: Snapshot, image: StoredImage) -> Platform | Failure:
    """The image's OS, architecture and variant as ``Inspect`` reports them (ST-6).

    Values are verbatim (not normalised); only docker v2s2 images report a variant.
    """
    config = image_config(snapshot, image)
    if isinstance(config, Failure):
        return config
    return Platform(os=config.os, architecture=config.architecture, variant=config.variant)
