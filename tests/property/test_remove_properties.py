"""Properties of removal plans over generated snapshots (issue #5, "What it must show").

Each property is an invariant of ``libimage.spec.invariants_removal`` (INV-RM-1..8)
checked on generated stores (``libimage.spec.gen_snapshots``) and requests drawn
from the names worth asking for on each store (``candidate_names``), with every
option and both semantics profiles. The pinned counter-example RM-X5 shows why
idempotence is stated for the bundling of names and not for removal itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from libimage.pure.context import Context
from libimage.pure.interpret import interpret
from libimage.pure.plan import DeleteImage, RemoveOptions, Untag
from libimage.pure.semantics import PODMAN_4_3, SEED
from libimage.spec.builders import image, layer_chain, snapshot
from libimage.spec.gen_snapshots import snapshots
from libimage.spec.invariants_removal import (
    INVARIANTS,
    STORAGE_TRANSPORT,
    RemovalRequest,
    candidate_names,
    violations,
)

pytestmark = pytest.mark.property

PROFILES = st.sampled_from([SEED, PODMAN_4_3])
FILTERS = st.sampled_from(
    [
        (),
        ("dangling=true",),
        ("readonly=false",),
        ("reference=foo",),
        ("containers=false",),
        ("intermediate=true",),
        ("nosuchfilter=1",),
    ]
)


def is_external(container_id: str) -> bool:
    """A deterministic external-container predicate: about half of the IDs."""
    return container_id[-1] in "02468ace"


@st.composite
def requests(
    draw: st.DrawFn,
    *,
    transport: bool = True,
    layer_loops: bool = False,
    duplicate_names: bool = False,
) -> RemovalRequest:
    """A store, names drawn from its candidate names (or none), options and a profile."""
    snap = draw(snapshots(layer_loops=layer_loops, duplicate_names=duplicate_names))
    pool = [n for n in candidate_names(snap) if transport or not n.startswith(STORAGE_TRANSPORT)]
    names = draw(st.lists(st.sampled_from(pool), max_size=4))
    external = draw(st.booleans())
    options = RemoveOptions(
        force=draw(st.booleans()),
        lookup_manifest=draw(st.integers(0, 5)) == 5,
        external_containers=external,
        is_external_container=is_external if external or draw(st.booleans()) else None,
        container_hook=draw(st.booleans()),
        filters=pvector(draw(FILTERS)),
        with_size=draw(st.booleans()),
    )
    return RemovalRequest(snap, tuple(names), options, Context(semantics=draw(PROFILES)))


def check(rule: str, request: RemovalRequest) -> None:
    invariant = next(i for i in INVARIANTS if i.rule == rule)
    outcome = invariant.check(request, request.plan())
    assert outcome is None, f"{rule}: {outcome}"


@given(requests(transport=False))
def test_bundling_is_idempotent(request: RemovalRequest) -> None:
    """INV-RM-1 (RM-3): bundling a request rebuilt from its bundles gives them back."""
    check("INV-RM-1", request)


@given(requests())
def test_every_resolving_name_lands_in_one_bundle(request: RemovalRequest) -> None:
    """INV-RM-2 (RM-3): one bundle per image, with exactly the names that found it."""
    check("INV-RM-2", request)


@given(requests())
def test_planning_is_deterministic_and_pure(request: RemovalRequest) -> None:
    """INV-RM-3: the same plan twice; the inputs are unchanged."""
    names = list(request.names)
    check("INV-RM-3", request)
    assert list(request.names) == names


@given(requests())
def test_effects_are_idempotent(request: RemovalRequest) -> None:
    """INV-RM-4: each effect twice equals once; the plan twice equals once."""
    check("INV-RM-4", request)


@given(requests())
def test_unrequested_names_go_only_with_their_image(request: RemovalRequest) -> None:
    """INV-RM-5 (RM-U5, RM-D6): other names are untagged only with a deletion, with why."""
    check("INV-RM-5", request)


@given(requests())
def test_no_kept_layer_is_deleted(request: RemovalRequest) -> None:
    """INV-RM-6 (SF-D-6, SF-D-7): layers of kept images and containers stay."""
    check("INV-RM-6", request)


@given(requests())
def test_images_in_use_need_force_or_external_containers(request: RemovalRequest) -> None:
    """INV-RM-7 (RM-D5, RM-C4): a used image is deleted only with force or external ones."""
    check("INV-RM-7", request)


@given(requests())
def test_read_only_images_are_never_touched(request: RemovalRequest) -> None:
    """INV-RM-8 (RM-D0): effects name read-write records only."""
    check("INV-RM-8", request)


@given(requests(layer_loops=True, duplicate_names=True))
def test_damaged_stores_keep_every_invariant(request: RemovalRequest) -> None:
    """Layer loops and names on several records: planning ends and every invariant holds."""
    assert violations(request) == []


def test_every_invariant_has_a_test() -> None:
    """Each INV-RM rule is checked by a property above."""
    source = Path(__file__).read_text(encoding="utf-8")
    missing = [i.rule for i in INVARIANTS if f'"{i.rule}"' not in source]
    assert missing == []
    assert len({i.rule for i in INVARIANTS}) == len(INVARIANTS) == 8
    assert all(i.statement and i.rule.startswith("INV-RM-") for i in INVARIANTS)


# --------------------------------------------------------------------------- RM-X5


def _foo() -> tuple[RemovalRequest, RemovalRequest]:
    built = image("foo", ["localhost/foo:latest", "localhost/foo:v2"], layers=layer_chain("foo"))
    snap = snapshot([built])
    twice = RemovalRequest(snap, ("foo", "foo"), RemoveOptions(), Context())
    once = RemovalRequest(snap, ("foo",), RemoveOptions(), Context())
    return twice, once


def test_rm_x5_naming_an_image_twice_deletes_it() -> None:
    """RM-X5, pinned: ``[foo, foo]`` deletes the image (the second reference sees one
    name left, RM-U1) while ``[foo]`` only untags: removal is not idempotent in the
    names, although bundling them is (INV-RM-1)."""
    twice, once = _foo()
    twice_plan, once_plan = twice.plan(), once.plan()
    assert [type(e) for e in twice_plan.effects if isinstance(e, DeleteImage)] == [DeleteImage]
    assert [r.removed for r in twice_plan.reports] == [True]
    assert [type(e) for e in once_plan.effects] == [Untag]
    assert [list(i.names) for i in interpret(once.snapshot, once_plan).images] == [
        ["localhost/foo:v2"]
    ]
    assert interpret(twice.snapshot, twice_plan).images == pvector()
    assert violations(twice) == violations(once) == []
