"""Properties of reference parsing and normalisation (REF-*, NORM-*, LN-2).

Strategies come from ``libimage.spec.gen_references``: valid references carry the
parts they were built from, invalid ones the error kind they must produce.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.reference import (
    ANCHORED_NAME_RE,
    REFERENCE_RE,
    Reference,
    familiar_string,
    is_full_id,
    names_registry,
    normalize_name,
    parse,
    parse_normalized_named,
)
from libimage.spec.gen_references import (
    LITERAL_ANCHORED_NAME_RE,
    LITERAL_REFERENCE_RE,
    GeneratedReference,
    InvalidReference,
    hex_ids,
    invalid_references,
    valid_references,
)

pytestmark = pytest.mark.property


def normalised_or_none(text: str) -> Reference | None:
    try:
        return parse_normalized_named(text)
    except LibimageError:
        return None


def valid_for_norm(text: str) -> bool:
    return normalised_or_none(text) is not None


@given(ref=valid_references())
def test_parse_gives_the_parts_and_round_trips(ref: GeneratedReference) -> None:
    """REF-2, REF-3: parts as built (domain split by REF-2's rule); ``str`` gives the input."""
    parsed = parse(ref.text)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (
        ref.domain,
        ref.path,
        ref.tag,
        ref.digest,
    )
    assert str(parsed) == ref.text


@given(bad=invalid_references())
def test_invalid_references_are_refused_with_their_kind(bad: InvalidReference) -> None:
    """REF-3, REF-4: the error kind the construction implies, naming the input."""
    with pytest.raises(LibimageError) as caught:
        parse(bad.text)
    assert (caught.value.kind, caught.value.failure.subject) == (bad.kind, bad.text)


# Upstream's literal separator backtracks exponentially on failing input in Python, so
# arbitrary strings stay short; valid references, which match at the first try, may not.
GRAMMAR_INPUTS = st.one_of(
    st.text(alphabet="aA0_.-/:@", max_size=14),
    valid_references().map(lambda ref: ref.text),
    valid_references().map(lambda ref: ref.text[:14]),  # prefixes: often just invalid
)


@given(text=GRAMMAR_INPUTS)
def test_grammar_matches_the_literal_transcription(text: str) -> None:
    """REF-1: the rewritten separator and domain component capture what upstream's do."""
    ours, literal = REFERENCE_RE.fullmatch(text), LITERAL_REFERENCE_RE.fullmatch(text)
    assert (ours is None) == (literal is None)
    if ours is None or literal is None:
        return
    assert ours.groups() == literal.groups()
    # REF-2's split, on the matched name only (a failing match is the slow case).
    ours_name = ANCHORED_NAME_RE.fullmatch(ours.group(1))
    literal_name = LITERAL_ANCHORED_NAME_RE.fullmatch(ours.group(1))
    assert ours_name is not None
    assert literal_name is not None
    assert ours_name.groups() == literal_name.groups()


@given(ref=valid_references())
def test_normalisation_is_idempotent(ref: GeneratedReference) -> None:
    """NORM-1: a normalised reference normalises to itself, and parses plainly to itself."""
    normalized = normalised_or_none(ref.text)
    assume(normalized is not None)
    assert parse_normalized_named(str(normalized)) == normalized
    assert parse(str(normalized)) == normalized


@given(ref=valid_references())
def test_normalize_name_is_idempotent(ref: GeneratedReference) -> None:
    """LN-2: NormalizeName of its own output changes nothing; the result is qualified."""
    try:
        normalized = normalize_name(ref.text)
    except LibimageError:
        assume(False)
        return
    assert normalize_name(str(normalized)) == normalized
    assert names_registry(normalized.domain)
    assert normalized.is_tagged != normalized.is_digested


@given(ref=valid_references())
def test_familiar_forms_renormalise(ref: GeneratedReference) -> None:
    """NORM-4: the familiar string normalises back to the same reference.

    Two upstream ambiguities are excluded, both pinned by unit tests: a docker.io
    path whose first part looks like a registry (``docker.io/quay.io/x`` is familiar
    ``quay.io/x``), and ``docker.io/library/<64 hex>``, whose familiar form is refused
    by NORM-1 rule 1.
    """
    normalized = parse_normalized_named(ref.text) if valid_for_norm(ref.text) else None
    assume(normalized is not None)
    assert normalized is not None
    first_part = normalized.path.split("/")[0]
    assume(not (normalized.domain == "docker.io" and names_registry(first_part)))
    familiar = familiar_string(normalized)
    assume(not is_full_id(familiar))
    assert parse_normalized_named(familiar) == normalized


@given(text=hex_ids())
def test_hex_ids_are_not_names(text: str) -> None:
    """NORM-1 rule 1, but plain Parse accepts them and NormalizeName qualifies them."""
    with pytest.raises(LibimageError) as caught:
        parse_normalized_named(text)
    assert caught.value.kind is ErrorKind.NAME_IS_HEX_ID
    assert str(parse(text)) == text
    assert str(normalize_name(text)) == f"localhost/{text}:latest"
