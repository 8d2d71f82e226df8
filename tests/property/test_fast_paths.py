"""Fast paths added for speed give exactly the results of the exact code they shortcut.

* Big-data documents (SF-B-6, LT-2, ML-2, ST-5): :func:`libimage.pure.manifest._load`
  parses plain documents with the C parser and decodes them with decoders compiled
  per schema; every other document goes through the exact Go-style decoder. For
  documents generated from the schemas themselves, with deviations (keys that match
  only when case-folded, duplicate keys, values of the wrong type, nulls, long
  numbers, unknown keys), both give the same value or the same error.
* Go's RFC 3339 times (LT-3): :func:`~libimage.pure.manifest.parse_go_rfc3339` with its
  per-day memo agrees with :mod:`datetime` on valid times and rejects invalid ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libimage.pure import manifest

pytestmark = pytest.mark.property

SCHEMAS = {
    "oci config": manifest._OCI_IMAGE_CONFIG,
    "oci manifest": manifest._OCI_MANIFEST,
    "schema2 manifest": manifest._SCHEMA2_MANIFEST,
    "schema1 manifest": manifest._SCHEMA1_MANIFEST,
    "oci index": manifest._OCI_INDEX,
    "schema2 list": manifest._SCHEMA2_LIST,
    "metadata": manifest._METADATA,
    "mime guess": manifest._GUESS_META,
    "ambiguity": manifest._AMBIGUITY_FIELDS,
    "instances": manifest._INSTANCES,
}

# A JSON value as text, built from (key, value) pairs so that duplicates can be written.
Doc = Any


def _text(value: Doc) -> str:
    if isinstance(value, tuple) and value and value[0] == "object":
        return "{" + ",".join(json.dumps(k) + ":" + _text(v) for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(item) for item in value) + "]"
    if isinstance(value, str) and value.startswith("#raw:"):
        return value[5:]
    return json.dumps(value)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(["#raw:1" + "0" * 45, "#raw:-1" + "0" * 39, "#raw:1.5", "#raw:1e3"]),
    st.text(max_size=4),
    st.sampled_from(["2021-01-11T23:23:48.831140014Z", "2020-02-30T00:00:00Z", "sha256:ab"]),
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(st.sampled_from(["a", "A", "os", "x"]), inner), max_size=3).map(
            lambda pairs: ("object", pairs)
        ),
    ),
    max_leaves=6,
)
TIMES = st.sampled_from(
    [
        "2021-01-11T23:23:48.831140014Z",
        "2022-08-25T07:38:23Z",
        "1970-01-01T0:00:01.5+01:00",
        "0000-01-01T00:00:00Z",
        "2021-13-01T00:00:00Z",
        "not a time",
    ]
)


def _variant(name: str, data: st.DataObject) -> str:
    """The field name, or a spelling that only a case-insensitive match finds."""
    spelling = data.draw(st.sampled_from(["exact", "exact", "exact", "upper", "long s"]))
    if spelling == "upper":
        return name.upper()
    if spelling == "long s" and "s" in name:
        return name.replace("s", "\u017f", 1)
    return name


def _value(schema: manifest._Type, data: st.DataObject, depth: int = 0) -> Doc:
    """A value for ``schema``: usually well typed, sometimes anything at all."""
    if depth > 4 or data.draw(st.integers(0, 9)) == 0:
        return data.draw(ANY_VALUE)
    if isinstance(schema, manifest._Struct):
        pairs = []
        for name, kind in schema.fields:
            if data.draw(st.booleans()):
                pairs.append((_variant(name, data), _value(kind, data, depth + 1)))
                if data.draw(st.integers(0, 9)) == 0:  # a duplicate key
                    pairs.append((_variant(name, data), _value(kind, data, depth + 1)))
        if data.draw(st.booleans()):
            pairs.append(
                (data.draw(st.sampled_from(["Unknown", "foo", "x.y"])), data.draw(SCALARS))
            )
        order = data.draw(st.permutations(range(len(pairs))))
        return ("object", [pairs[i] for i in order])
    if isinstance(schema, manifest._Pointer):
        return _value(schema.element, data, depth)
    if isinstance(schema, manifest._Slice):
        count = data.draw(st.integers(0, 3))
        return [_value(schema.element, data, depth + 1) for _ in range(count)]
    if isinstance(schema, manifest._Map):
        keys = data.draw(st.lists(st.sampled_from(["a", "b", "A", "sha256:x"]), max_size=3))
        return ("object", [(key, _value(schema.element, data, depth + 1)) for key in keys])
    kind = schema.kind  # type: ignore[attr-defined]  # the remaining case is _Scalar
    if kind == "string":
        return data.draw(st.text(max_size=5))
    if kind == "int":
        return data.draw(st.integers(min_value=-(2**63) - 1, max_value=2**63))
    if kind == "bool":
        return data.draw(st.booleans())
    if kind == "time":
        return data.draw(TIMES)
    return data.draw(ANY_VALUE)


def _plain(value: Any) -> Any:
    """Both decoders' values in one form (``_ANY`` fields keep the parsed document)."""
    if isinstance(value, manifest._Object):
        return ("object", [(k, _plain(v)) for k, v in value.pairs])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, manifest._Huge) or (
        type(value) is int and len(str(value)) >= 40  # what the exact parser keeps as _Huge
    ):
        return "huge"
    return value


def _any_fields_plain(value: Any) -> Any:
    # A fast document's objects are dicts; written as pairs they equal the exact form.
    if isinstance(value, dict):
        return {k: _any_fields_plain(v) for k, v in value.items()}
    return value


def _exact(text: str, schema: manifest._Type) -> tuple[str, Any]:
    try:
        document = manifest._load_exact(text)
        return "ok", _plain(manifest._decode(document, schema, manifest._zero(schema)))
    except manifest._DecodeError as error:
        return "error", str(error)


def _fast(text: str, schema: manifest._Type) -> tuple[str, Any]:
    try:
        document = manifest._load(text.encode("utf-8", "surrogatepass"))
        return "ok", _plain(manifest._decode_document(document, schema))
    except manifest._DecodeError as error:
        return "error", str(error)


def _normalise_any(result: tuple[str, Any]) -> tuple[str, Any]:
    """Objects under ``_ANY`` fields: a dict (fast) and its pairs (exact) are the same."""

    def walk(value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "object":
            return {k: walk(v) for k, v in value[1]}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return result[0], walk(result[1])


@given(name=st.sampled_from(sorted(SCHEMAS)), data=st.data())
def test_fast_decoding_equals_exact_decoding(name: str, data: st.DataObject) -> None:
    """SF-B-6, LT-2, ML-2, ST-5: same value or same error, whatever the document."""
    schema = SCHEMAS[name]
    text = _text(_value(schema, data))
    exact = _exact(text, schema)
    fast = _fast(text, schema)
    if name in {"mime guess", "ambiguity"}:
        # _ANY fields hold the parsed document: a duplicate-free object either way.
        exact, fast = _normalise_any(exact), _normalise_any(fast)
    assert fast == exact, text


@pytest.mark.parametrize(
    "text",
    [
        '{"os":"linux","OS":"x"}',
        '{"os":"linux","os":"x"}',
        '{"config":{"Labels":{"a":"1"}},"config":{"User":"u"}}',
        '{"created":"2021-01-11T23:23:48.831140014Z","history":[{"created":null}]}',
        '{"rootfs":{"diff_ids":null},"history":[null,{"empty_layer":true}]}',
        '{"architecture":1}',
        '{"x":NaN}',
        '{"x":' + "9" * 5000 + "}",
        '{"x":1' + "0" * 45 + "}",
        '{"\u017fize":1}',
        "[]",
        "null",
    ],
)
def test_fast_decoding_of_known_hard_documents(text: str) -> None:
    """Duplicates merge, folded keys match, nulls leave zero values, bad literals fail."""
    schema = manifest._OCI_IMAGE_CONFIG
    assert _fast(text, schema) == _exact(text, schema)


@given(
    moment=st.datetimes(
        min_value=dt.datetime(1, 1, 1),
        max_value=dt.datetime(9999, 12, 31),
    ),
    offset_minutes=st.integers(min_value=-23 * 60, max_value=23 * 60),
    digits=st.integers(min_value=0, max_value=12),
)
def test_go_times_agree_with_datetime(
    moment: dt.datetime, offset_minutes: int, digits: int
) -> None:
    """LT-3: the instant of a valid RFC 3339 time, whatever its offset and precision."""
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=zone)
    fraction = f"{moment.microsecond:06d}000000"[:digits]
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        + (f".{fraction}" if digits else "")
        + (f"{sign}{hours:02d}:{minutes:02d}" if offset_minutes else "Z")
    )
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    whole = local.replace(microsecond=0) - epoch
    seconds = whole.days * 86400 + whole.seconds
    nanos = int(fraction.ljust(9, "0")[:9]) if digits else 0
    assert manifest.parse_go_rfc3339(text) == seconds * 1_000_000_000 + nanos
    assert manifest.parse_go_rfc3339(text) == manifest.parse_go_rfc3339(text)  # memo agrees


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-29T00:00:00Z",
        "2021-13-01T00:00:00Z",
        "2021-01-01T24:00:00Z",
        "2021-01-00T00:00:00Z",
    ],
)
def test_go_times_reject_invalid_dates(text: str) -> None:
    """LT-3: days past the month's end, month 13, hour 24 do not parse (twice: the memo)."""
    assert manifest.parse_go_rfc3339(text) is None
    assert manifest.parse_go_rfc3339(text) is None


# --------------------------------------------------------------------------- parsers built once

PARSER_TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "\ufeff{}",
            "\ufeff",
            ' {"a": 1} ',
            '{"a": 1} x',
            '{"a": 1, "a": 2}',
            "[NaN]",
            "[-Infinity]",
            "1" + "0" * 45,
            '{"a": "\\ud800"}',
            "",
        ]
    ),
    ANY_VALUE.map(_text),
)


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", _plain(call())
    except (ValueError, RecursionError, manifest._DecodeError, manifest._Slow) as error:
        return type(error).__name__, str(error)


@given(text=PARSER_TEXTS)
def test_parsers_built_once_equal_json_loads(text: str) -> None:
    """SF-B-6: the decoders built once parse as ``json.loads`` with the same hooks."""
    exact = _outcome(lambda: manifest._parse(manifest._EXACT_PARSER, text))
    assert exact == _outcome(
        lambda: json.loads(
            text,
            object_pairs_hook=manifest._exact_object,
            parse_int=manifest._parse_int,
            parse_constant=manifest._reject_constant,
        )
    )
    fast = _outcome(lambda: manifest._parse(manifest._FAST_PARSER, text))
    assert fast == _outcome(
        lambda: json.loads(
            text,
            object_pairs_hook=manifest._no_duplicates,
            parse_constant=manifest._reject_constant,
        )
    )


# --------------------------------------------------------------------------- derived facts


def _config_document(data: st.DataObject) -> str:
    return _text(_value(manifest._OCI_IMAGE_CONFIG, data))


@given(data=st.data())
def test_config_variant_is_the_docker_views_variant(data: st.DataObject) -> None:
    """ST-6: when the OCI view decodes, decoding the docker view gives the same variant."""
    text = _config_document(data)
    oci = _exact(text, manifest._OCI_IMAGE_CONFIG)
    if oci[0] == "ok":
        assert _exact(text, manifest._DOCKER_INSPECT) == ("ok", {"variant": oci[1]["variant"]})


def _config_before(data: bytes) -> Any:
    """What image_config computed from the bytes before the facts were derived at once."""
    computed = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        config = manifest._unmarshal(manifest._load(data), manifest._OCI_IMAGE_CONFIG)
        docker = manifest._unmarshal(manifest._load(data), manifest._DOCKER_INSPECT)
    except manifest._DecodeError as error:
        return computed, str(error)
    history = [
        (h["created"], h["created_by"], h["author"], h["comment"], h["empty_layer"])
        for h in config["history"] or ()
    ]
    return (
        computed,
        config["os"],
        config["architecture"],
        docker["variant"],
        config["config"]["Labels"],
        history,
        list(config["rootfs"]["diff_ids"] or ()),
    )


@given(data=st.data())
def test_config_facts_are_the_decoded_config(data: st.DataObject) -> None:
    """SF-B-6, LT-2, IP-10: the derived config facts hold what decoding the bytes gives."""
    raw = _config_document(data).encode("utf-8", "surrogatepass")
    facts = manifest._config_facts(raw)
    before = _config_before(raw)
    if facts[1]:
        assert (facts[0], facts[1]) == before
        return
    computed, _error, os_name, architecture, variant, labels, history, diff_ids = facts
    assert (
        computed,
        os_name,
        architecture,
        variant,
        labels,
        [tuple(entry) for entry in history],
        list(diff_ids),
    ) == before


MANIFEST_SCHEMAS = st.sampled_from(
    [
        manifest._OCI_MANIFEST,
        manifest._SCHEMA2_MANIFEST,
        manifest._SCHEMA1_MANIFEST,
        manifest._OCI_INDEX,
        manifest._SCHEMA2_LIST,
    ]
)


@given(schema=MANIFEST_SCHEMAS, data=st.data())
def test_manifest_facts_are_the_guess_and_the_parse(
    schema: manifest._Struct, data: st.DataObject
) -> None:
    """ST-5, EX-1: the derived manifest facts are GuessMIMEType and the single-image parse."""
    raw = _text(_value(schema, data)).encode("utf-8", "surrogatepass")
    load_error, mime_type, parse_error, opened_type, config_digest = manifest._manifest_facts(raw)
    assert mime_type == manifest.guess_mime_type(raw)
    try:
        manifest._load(raw)
        expected_error = None
    except manifest._DecodeError as error:
        expected_error = str(error)
    assert load_error == expected_error
    if expected_error is not None:
        return
    opened = manifest._parse_single(raw, mime_type)
    if isinstance(opened, str):
        assert (parse_error, opened_type, config_digest) == (opened, "", "")
    else:
        assert (parse_error, opened_type, config_digest) == (
            "",
            opened.mime_type,
            opened.config_digest,
        )


@given(digest=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_plain_metadata_decodes(digest: str) -> None:
    """The metadata shape podman writes, matched without decoding, does decode (EX-1)."""
    text = '{"signatures-sizes":{"sha256:' + digest + '":[]}}'
    assert manifest._PLAIN_METADATA.fullmatch(text)
    assert manifest._unmarshal(text.encode(), manifest._METADATA) == {
        "signature-sizes": None,
        "signatures-sizes": {"sha256:" + digest: []},
    }
