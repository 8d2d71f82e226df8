"""The snapshot's lazy indexes agree with a naive linear scan (ST-2, ST-3, IP-9, SF-X).

Each property restates a rule as the plainest loop over the records and compares
it with the indexed lookup, over generated snapshots whose IDs share prefixes and
whose names collide (``libimage.spec.gen_snapshots``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libimage.pure.snapshot import (
    Container,
    Layer,
    Snapshot,
    StoredImage,
    containers_of,
    find_in_store,
    find_layer,
    image_digest,
    image_digests,
)
from libimage.spec.gen_snapshots import ID_PREFIXES, NAMES, snapshots

if TYPE_CHECKING:
    # Imported for mypy only: typeguard cannot check hypothesis's DrawFn protocol
    # against the drawing method it is given, and skips names imported this way.
    from hypothesis.strategies import DrawFn

pytestmark = pytest.mark.property


def naive_find(snap: Snapshot, text: str) -> StoredImage | None:
    """ST-2 by the letter: per store in order, ID, then name (later record wins), then
    a unique ID prefix; an ambiguous prefix is "not found in this store"."""
    if not text:
        return None
    for store in sorted({record.store_index for record in snap.images}):
        records = [record for record in snap.images if record.store_index == store]
        for record in records:
            if record.id == text:
                return record
        named = [record for record in records if text in record.names]
        if named:
            return named[-1]
        prefixed = {record.id for record in records if record.id.startswith(text)}
        if len(prefixed) == 1:
            (only,) = prefixed
            return next(record for record in records if record.id == only)
    return None


@st.composite
def store_and_query(draw: DrawFn) -> tuple[Snapshot, str]:
    snap = draw(snapshots(duplicate_names=draw(st.booleans()), layer_loops=draw(st.booleans())))
    choices: list[st.SearchStrategy[str]] = [
        st.sampled_from(NAMES),
        st.sampled_from(ID_PREFIXES),
        st.text(alphabet="0123456789abcdef", max_size=3),
    ]
    if snap.images:
        records = st.sampled_from(list(snap.images))
        choices.append(records.map(lambda record: record.id))
        choices.append(
            st.tuples(records, st.integers(1, 64)).map(lambda pair: pair[0].id[: pair[1]])
        )
    return snap, draw(st.one_of(choices))


@given(store_and_query())
def test_find_in_store_matches_a_linear_scan(case: tuple[Snapshot, str]) -> None:
    """ST-2, SF-X-1..4: the indexed lookup returns the record the plain scan finds."""
    snap, text = case
    assert find_in_store(snap, text) == naive_find(snap, text)


@given(snapshots())
def test_image_digests_follow_the_definition(snap: Snapshot) -> None:
    """ST-3, SF-G-1, decision 3: ``digest`` first, then manifest keys in sorted order, once."""
    for record in snap.images:
        expected: list[str] = []
        candidates = [record.digest] + [
            record.big_data_digests[key]
            for key in sorted(record.big_data_digests)
            if key.startswith("manifest")
        ]
        for digest in candidates:
            if digest and digest not in expected:
                expected.append(digest)
        assert list(image_digests(record)) == expected
        assert image_digest(record) == (expected[0] if expected else "")


@given(snapshots())
def test_containers_of_matches_a_linear_scan(snap: Snapshot) -> None:
    """IP-9: exactly the containers whose ``image`` equals the ID, in containers.json order."""
    probes = {record.id for record in snap.images} | {c.image_id for c in snap.containers} | {""}
    for image_id in probes:
        expected: list[Container] = [c for c in snap.containers if c.image_id == image_id]
        assert list(containers_of(snap, image_id)) == expected


@given(snapshots(layer_loops=True))
def test_find_layer_matches_a_linear_scan(snap: Snapshot) -> None:
    """The first layer record with that exact ID (read-write store first), or None."""
    probes = {lay.id for lay in snap.layers} | {lay.parent for lay in snap.layers}
    probes |= {record.top_layer for record in snap.images} | {"0"}
    for layer_id in probes:
        expected: Layer | None = next((lay for lay in snap.layers if lay.id == layer_id), None)
        assert find_layer(snap, layer_id) == expected


@given(snapshots())
def test_generated_snapshots_keep_store_order(snap: Snapshot) -> None:
    """ST-4: read-write records first, then each additional store in order."""
    stores = [record.store_index for record in snap.images]
    assert stores == sorted(stores)
    assert all(record.read_only == (record.store_index > 0) for record in snap.images)
