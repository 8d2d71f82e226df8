"""Listing properties of issue #4 over generated snapshots (INV-LS-*, INV-IP-1, INV-LT-1).

Each test checks one invariant of :mod:`libimage.spec.invariants_listing` on
generated snapshots (every feature on: children, empty images, containers, manifest
lists, read-only copies, corrupted images, layer loops) with filter lists drawn from
:func:`filter_pool` (every key, ``!=``, invalid filters, lookups of stored images),
in both profiles.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libimage.pure.context import Context
from libimage.pure.semantics import PODMAN_4_3, SEED
from libimage.pure.snapshot import Snapshot
from libimage.spec.gen_snapshots import snapshots
from libimage.spec.invariants_listing import (
    INVARIANTS,
    Invariant,
    ListingCase,
    filter_pool,
    name_pool,
    odd_containers_are_external,
)

pytestmark = pytest.mark.property

NOW = 1_700_100_000 * 10**9  # a day after the builders' record times begin
BY_RULE = {invariant.rule: invariant for invariant in INVARIANTS}
PROFILES = st.sampled_from([SEED, PODMAN_4_3])
STORES = snapshots(layer_loops=True)


@st.composite
def cases(draw: st.DrawFn, *, with_names: bool = False) -> ListingCase:
    snap: Snapshot = draw(STORES)
    filters = draw(st.lists(st.sampled_from(filter_pool(snap)), max_size=4))
    names: list[str] = []
    if with_names:
        names = draw(st.lists(st.sampled_from(name_pool(snap)), min_size=1, max_size=3))
    context = Context(semantics=draw(PROFILES), now_ns=NOW, utc_offset_seconds=3600)
    return ListingCase(snap, tuple(filters), context, tuple(names), odd_containers_are_external)


def check(invariant: Invariant, case: ListingCase) -> None:
    problem = invariant.check(case)
    assert problem is None, f"{invariant.rule} ({case.context.semantics.name}): {problem}"


@given(case=cases())
def test_filter_order_does_not_change_matches(case: ListingCase) -> None:
    """INV-LS-1 (FL-P4, FL-P5, decision 3)."""
    check(BY_RULE["INV-LS-1"], case)


@given(case=cases())
def test_filtering_is_idempotent(case: ListingCase) -> None:
    """INV-LS-2 (FL-P5, LS-5)."""
    check(BY_RULE["INV-LS-2"], case)


@given(case=cases(with_names=True))
def test_order_is_kept(case: ListingCase) -> None:
    """INV-LS-3 (LS-2, LS-3, LS-5)."""
    check(BY_RULE["INV-LS-3"], case)


@given(case=cases())
def test_filters_are_pure_predicates(case: ListingCase) -> None:
    """INV-LS-4 (FL-P5, FL-P9)."""
    check(BY_RULE["INV-LS-4"], case)


@given(case=cases(with_names=True))
def test_listing_names_is_looking_them_up(case: ListingCase) -> None:
    """INV-LS-5 (LS-2)."""
    check(BY_RULE["INV-LS-5"], case)


@given(case=cases())
def test_empty_listing_never_compiles(case: ListingCase) -> None:
    """INV-LS-6 (LS-4)."""
    check(BY_RULE["INV-LS-6"], case)


@given(case=cases())
def test_dangling_and_intermediate_follow_their_definitions(case: ListingCase) -> None:
    """INV-IP-1 (IP-5, IP-6, LT-C*, decision 4)."""
    check(BY_RULE["INV-IP-1"], case)


@given(case=cases())
def test_parent_chains_end(case: ListingCase) -> None:
    """INV-LT-1 (LT-P1, LT-P2, LT-3)."""
    check(BY_RULE["INV-LT-1"], case)
