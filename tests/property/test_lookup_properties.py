"""Lookup properties of issue #3 over generated snapshots (INV-LK-1..9).

Each test checks one invariant of :mod:`libimage.spec.invariants_lookup` for every
query worth asking of a generated snapshot (:func:`lookup_queries`: stored names and
their short forms, IDs, ID prefixes, digests, ``containers-storage:`` names), in both
profiles. Where the intuitive property is false for the seed, the counter-example
is pinned instead (RN-1: ``140f`` → ``localhost/140f:latest``; ``containers-storage:``
names).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind
from libimage.pure.lookup import LookupOptions, lookup_image, resolve_name
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import PODMAN_4_3, SEED, Semantics
from libimage.pure.snapshot import Snapshot
from libimage.spec.builders import hex_id, image, snapshot
from libimage.spec.gen_snapshots import ID_PREFIXES, snapshots
from libimage.spec.invariants_lookup import (
    INVARIANTS,
    Invariant,
    is_ambiguous_prefix,
    lookup,
    lookup_queries,
    outcome,
    reordered,
    repo_tag_owners,
    shares_name_digest_or_id,
)

pytestmark = pytest.mark.property

SEARCH = RegistriesConfig(unqualified_search_registries=pvector(["quay.io", "docker.io"]))
PROFILES = st.sampled_from([SEED, PODMAN_4_3])
BY_RULE = {invariant.rule: invariant for invariant in INVARIANTS}
SAMPLE = 6  # queries per generated snapshot for the invariants about every name


def some_queries(data: st.DataObject, snap: Snapshot) -> list[str]:
    """A few of the queries worth asking of ``snap`` (all of them would be slow)."""
    queries = lookup_queries(snap)
    return data.draw(st.lists(st.sampled_from(queries), max_size=SAMPLE, unique=True))


def ids_of(snap: Snapshot) -> list[str]:
    return list(dict.fromkeys(record.id for record in snap.images))


def id_prefixes(data: st.DataObject, snap: Snapshot) -> list[str]:
    """A few ID prefixes: the generators' forced prefixes and prefixes of stored IDs."""
    prefixes = [record.id[:length] for record in snap.images for length in (1, 2, 4, 12)]
    pool = list(dict.fromkeys([*ID_PREFIXES, *prefixes]))
    return data.draw(st.lists(st.sampled_from(pool), max_size=SAMPLE, unique=True))


def stored_names(snap: Snapshot) -> list[str]:
    return list(dict.fromkeys(name for record in snap.images for name in record.names))


def check(invariant: Invariant, snap: Snapshot, semantics: Semantics, names: Sequence[str]) -> None:
    context = Context(registries=SEARCH, semantics=semantics)
    for name in names:
        problem = invariant.check(snap, name, context, lookup(snap, name, context))
        assert problem is None, f"{invariant.rule} ({semantics.name}) for {name!r}: {problem}"


@given(snap=snapshots(), semantics=PROFILES)
def test_full_id_finds_its_image(snap: Snapshot, semantics: Semantics) -> None:
    """INV-LK-1 (ST-2, LK-6, DIV-1, ML-4, ML-5)."""
    check(BY_RULE["INV-LK-1"], snap, semantics, ids_of(snap))


@given(snap=snapshots(), semantics=PROFILES, data=st.data())
def test_ambiguous_prefix_finds_nothing(
    snap: Snapshot, semantics: Semantics, data: st.DataObject
) -> None:
    """INV-LK-2 (ST-2): and with the generators' name pool, nothing at all is found."""
    check(BY_RULE["INV-LK-2"], snap, semantics, id_prefixes(data, snap))
    context = Context(registries=SEARCH, semantics=semantics)
    for prefix in ID_PREFIXES:
        if is_ambiguous_prefix(snap, prefix):
            result = lookup(snap, prefix, context)
            assert result.failure is not None
            assert result.failure.kind is ErrorKind.IMAGE_UNKNOWN


@given(snap=snapshots(), semantics=PROFILES, data=st.data())
def test_unique_prefix_finds_its_image_in_the_seed(
    snap: Snapshot, semantics: Semantics, data: st.DataObject
) -> None:
    """INV-LK-3 (ST-2, LK-6); not asked of ``podman-4.3`` (DIV-1)."""
    check(BY_RULE["INV-LK-3"], snap, semantics, id_prefixes(data, snap))


@given(snap=snapshots(duplicate_names=True), semantics=PROFILES)
def test_stored_name_finds_its_image(snap: Snapshot, semantics: Semantics) -> None:
    """INV-LK-4 (ST-2, LK-6, LK-7): also when a store lists a name twice (SF-I-22)."""
    check(BY_RULE["INV-LK-4"], snap, semantics, stored_names(snap))


@given(snap=snapshots(), semantics=PROFILES, data=st.data())
def test_lookup_is_deterministic(snap: Snapshot, semantics: Semantics, data: st.DataObject) -> None:
    """INV-LK-5."""
    check(BY_RULE["INV-LK-5"], snap, semantics, some_queries(data, snap))


@given(snap=snapshots(duplicate_ids=False), semantics=PROFILES, data=st.data())
def test_store_order_does_not_matter_without_ties(
    snap: Snapshot, semantics: Semantics, data: st.DataObject
) -> None:
    """INV-LK-6 (ST-2, ST-4, LK-8): reversed, and in a random order within each store."""
    names = some_queries(data, snap)
    check(BY_RULE["INV-LK-6"], snap, semantics, names)
    if shares_name_digest_or_id(snap):
        return
    shuffled = reordered(snap, data.draw(st.permutations(range(len(snap.images)))))
    context = Context(registries=SEARCH, semantics=semantics)
    for name in names:
        if len(repo_tag_owners(snap, name)) > 1:
            continue  # two images answer the repo-tag search: store order decides (LN-4)
        expected = outcome(lookup(snap, name, context))
        assert outcome(lookup(shuffled, name, context)) == expected, name


@given(snap=snapshots(), semantics=PROFILES, data=st.data())
def test_exists_agrees_with_lookup(
    snap: Snapshot, semantics: Semantics, data: st.DataObject
) -> None:
    """INV-LK-7 (EX-1, LK-11)."""
    check(BY_RULE["INV-LK-7"], snap, semantics, some_queries(data, snap))


@given(snap=snapshots(), semantics=PROFILES, data=st.data())
def test_resolved_stored_name_finds_the_same_image(
    snap: Snapshot, semantics: Semantics, data: st.DataObject
) -> None:
    """INV-LK-8 (RN-1)."""
    check(BY_RULE["INV-LK-8"], snap, semantics, some_queries(data, snap))


@given(snap=snapshots(), semantics=PROFILES, data=st.data())
def test_trace_ends_in_the_result(
    snap: Snapshot, semantics: Semantics, data: st.DataObject
) -> None:
    """INV-LK-9."""
    check(BY_RULE["INV-LK-9"], snap, semantics, some_queries(data, snap))


def test_every_invariant_has_a_test() -> None:
    tested = {f"INV-LK-{number}" for number in range(1, 10)}
    assert {invariant.rule for invariant in INVARIANTS} == tested


# --------------------------------------------------------------------------- counter-examples


class TestResolveCounterExamples:
    """The intuitive "resolve(n) finds what n found" is false for these names (RN-1)."""

    def store(self) -> Snapshot:
        a = image("A", ["docker.io/library/busybox:latest"], image_id="140f" + hex_id("A")[4:])
        b = image("B", ["localhost/140f:latest"], image_id="bb0d" + hex_id("B")[4:])
        return snapshot([a, b])

    @pytest.mark.parametrize("semantics", [SEED], ids=["seed"])
    def test_id_prefix(self, semantics: Semantics) -> None:
        snap = self.store()
        context = Context(registries=SEARCH, semantics=semantics)
        found = lookup_image(snap, "140f", LookupOptions(), context)
        assert found.image is not None
        assert found.image.id.startswith("140f")
        resolved = resolve_name(snap, "140f", context)
        assert resolved == "localhost/140f:latest"
        again = lookup(snap, resolved, context)
        assert again.image is not None
        assert again.image.id.startswith("bb0d")

    @pytest.mark.parametrize("semantics", [SEED, PODMAN_4_3], ids=["seed", "podman-4.3"])
    def test_storage_name(self, semantics: Semantics) -> None:
        snap = self.store()
        context = Context(registries=SEARCH, semantics=semantics)
        found = lookup(snap, "containers-storage:busybox", context)
        assert (found.image is not None, found.resolved_name) == (True, "")
        resolved = resolve_name(snap, "containers-storage:busybox", context)
        assert resolved == "localhost/containers-storage:busybox"
        assert lookup(snap, resolved, context).image is None
