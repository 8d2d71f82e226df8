"""Properties of the layer tree and image facts over generated snapshots.

IP-5/IP-6 against their definitions, termination of ``parent`` chains (also when
layers form loops), the converse of ``children`` and ``parent`` (LT-3, LT-C3,
LT-P2), and determinism: the facts do not depend on the memo, on evaluation order
or on the insertion order of the record maps.
"""

from __future__ import annotations

from dataclasses import replace
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pmap, pvector

from libimage.pure.errors import Failure
from libimage.pure.facts import (
    are_parent_and_child,
    children,
    has_children,
    image_size,
    is_dangling,
    is_intermediate,
    labels,
    layer_tree,
    parent,
)
from libimage.pure.manifest import ImageConfig, image_config, is_corrupted
from libimage.pure.snapshot import InMemoryContent, Snapshot, StoredImage
from libimage.spec.gen_snapshots import snapshots

pytestmark = pytest.mark.property


@given(snapshots())
def test_dangling_and_intermediate_follow_their_definitions(snap: Snapshot) -> None:
    """IP-5, IP-6: unnamed and without / with a child; exclusive; false when named."""
    for record in snap.images:
        dangling, intermediate = is_dangling(snap, record), is_intermediate(snap, record)
        if record.names:
            assert dangling is False
            assert intermediate is False
            continue
        found = has_children(snap, record)
        if isinstance(found, Failure):
            assert dangling == found
            assert intermediate == found
            continue
        assert dangling is (not found)
        assert intermediate is found
        every = children(snap, record)
        if not isinstance(every, Failure):
            # The boolean search may stop early (LT-C5) but agrees with the full one.
            assert bool(every) is found


@given(snapshots(layer_loops=True))
def test_following_parents_ends(snap: Snapshot) -> None:
    """LT-3 makes each parent's history one entry shorter: no chain can cycle, and a
    layer loop in the store does not make any question loop forever."""
    for record in snap.images:
        current: StoredImage = record
        seen = {(current.id, current.store_index)}
        for _ in range(len(snap.images) + 1):
            step = parent(snap, current)
            if step is None or isinstance(step, Failure):
                break
            own, up = image_config(snap, current), image_config(snap, step)
            assert isinstance(own, ImageConfig)
            assert isinstance(up, ImageConfig)
            assert len(up.history) + 1 == len(own.history)
            assert (step.id, step.store_index) not in seen
            seen.add((step.id, step.store_index))
            current = step
        else:
            pytest.fail(f"parent chain from {record.id} does not end")
        # These walk layer chains and must end on loops too.
        image_size(snap, record)
        is_corrupted(snap, record)


@given(snapshots())
def test_children_and_parent_are_converse(snap: Snapshot) -> None:
    """If ``parent(C)`` is P, C is among ``children(P)``; if C is among ``children(P)``,
    ``parent(C)`` finds a parent (LT-C3 and LT-P2 search the same nodes)."""
    for record in snap.images:
        found = parent(snap, record)
        if isinstance(found, StoredImage):
            kids = children(snap, found)
            if not isinstance(kids, Failure):
                assert record.id in {kid.id for kid in kids}
        kids = children(snap, record)
        if isinstance(kids, Failure):
            continue
        for kid in kids:
            up = parent(snap, kid)
            if isinstance(up, Failure):
                continue
            assert up is not None
            own, theirs = image_config(snap, up), image_config(snap, kid)
            assert isinstance(own, ImageConfig)
            assert isinstance(theirs, ImageConfig)
            assert are_parent_and_child(own, theirs)


def _facts(snap: Snapshot, order: list[int]) -> dict[int, tuple[object, ...]]:
    results: dict[int, tuple[object, ...]] = {}
    for position in order:
        record = snap.images[position]

        def key(value: object) -> object:
            if isinstance(value, tuple):
                return tuple(item.id for item in value if isinstance(item, StoredImage))
            if isinstance(value, StoredImage):
                return value.id
            return value

        results[position] = (
            key(children(snap, record)),
            key(parent(snap, record)),
            is_dangling(snap, record),
            is_intermediate(snap, record),
            image_size(snap, record),
            labels(snap, record),
            is_corrupted(snap, record),
        )
    return results


def _reordered(snap: Snapshot) -> Snapshot:
    """The same snapshot with every map rebuilt in reverse insertion order, no memo."""

    def flip(record: StoredImage) -> StoredImage:
        return replace(
            record,
            big_data_sizes=pmap(dict(reversed(list(record.big_data_sizes.items())))),
            big_data_digests=pmap(dict(reversed(list(record.big_data_digests.items())))),
        )

    content = snap.content
    assert isinstance(content, InMemoryContent)
    return Snapshot(
        images=pvector(flip(record) for record in snap.images),
        layers=snap.layers,
        containers=snap.containers,
        quarantine=snap.quarantine,
        content=InMemoryContent(
            items=pmap(dict(reversed(list(content.items.items())))),
            layer_sizes=pmap(dict(reversed(list(content.layer_sizes.items())))),
        ),
    )


@given(snapshots(layer_loops=True), st.randoms(use_true_random=False))
def test_facts_are_deterministic(snap: Snapshot, random: Random) -> None:
    """The same store gives the same facts: with a fresh memo, in any evaluation order,
    whatever the insertion order of the record maps."""
    positions = list(range(len(snap.images)))
    first = _facts(snap, positions)
    shuffled = positions[:]
    random.shuffle(shuffled)
    again = _facts(_reordered(snap), shuffled)
    assert again == first
    assert layer_tree(_reordered(snap)) == layer_tree(snap)
