"""The core against the naive model, over random sequences of operations (issue #6 item 2a).

A :class:`~hypothesis.stateful.RuleBasedStateMachine` keeps two stores side by side,
started from one generated snapshot: the core's :class:`Snapshot` (changed only by
``plan_removal`` + ``interpret`` and by test-only builders) and the naive
:class:`~libimage.spec.model.Model` (changed only by the model's own rules). Rules:
tag a name (SF-N-3), add and remove a storage container (SF-C, SF-D-C), look up,
test existence, list (names and filters), and remove images by name, ID, prefix,
digest, ``containers-storage:`` name or filter, with and without force, external
containers, a container hook, sizes, or ``lookup_manifest``. After every step the
two stores hold the same records (:func:`~libimage.spec.model.view_of_model`), and
each request is checked against every rule of :mod:`libimage.spec.rules`: the
core's invariants (``INV-LK-*``, ``INV-LS-*``, ``INV-IP-1``, ``INV-LT-1``,
``INV-RM-*``) and agreement with the model (``INV-MD-1..5``). Both semantics
profiles are drawn. Budget: twice the active profile's examples, up to 30 steps each.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from pyrsistent import pvector

from libimage.pure.context import Context
from libimage.pure.interpret import interpret
from libimage.pure.plan import RemoveOptions
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import PODMAN_4_3, SEED
from libimage.pure.snapshot import Snapshot
from libimage.spec import model
from libimage.spec.builders import (
    BuiltImage,
    add_name,
    child_of,
    container,
    hex_id,
    image,
    layer_chain,
)
from libimage.spec.builders import snapshot as build_snapshot
from libimage.spec.gen_snapshots import ID_PREFIXES, NAMES, snapshots
from libimage.spec.invariants_listing import (
    ListingCase,
    filter_pool,
    name_pool,
    odd_containers_are_external,
)
from libimage.spec.invariants_lookup import lookup_queries
from libimage.spec.invariants_removal import RemovalRequest, candidate_names
from libimage.spec.materialise import with_container, with_image, without_container
from libimage.spec.rules import check_listing, check_lookup, check_removal

pytestmark = pytest.mark.stateful

REGISTRIES = RegistriesConfig(unqualified_search_registries=pvector(["quay.io", "docker.io"]))
TAGS = (*NAMES, "localhost/baz:1", "docker.io/library/foo:latest")
REMOVAL_FILTERS = (
    ("dangling=true",),
    ("readonly=false",),
    ("reference=foo",),
    ("containers=false",),
    ("intermediate=true",),
    ("dangling=true", "label=a"),
    ("nosuchfilter=1",),
    (),  # every image (rmi -a without readonly=false)
)
ACTIVE = settings()  # the profile loaded by tests/conftest.py


def in_model_scope(snapshot: Snapshot) -> bool:
    """The model describes stores without corruption or IDs listed twice (spec.model)."""
    return len({(i.id, i.store_index) for i in snapshot.images}) == len(snapshot.images)


def listing_filters(snapshot: Snapshot) -> list[str]:
    """Filters the model describes: all of the pool but ``until`` and wildcard label keys."""
    return [
        f
        for f in filter_pool(snapshot)
        if not f.startswith("until") and "*" not in f.partition("=")[2].partition("=")[0]
    ]


def new_image(
    data: st.DataObject, snapshot: Snapshot, seed: int, parents: Sequence[BuiltImage]
) -> BuiltImage:
    """A new read-write image: a base image on a new layer, or a child (LT-3; a new layer,
    LT-4, or the same top layer, LT-5) of an image built earlier by the machine, with a
    free name or none, and sometimes an ID sharing a prefix with others (ST-2)."""
    taken = {name for i in snapshot.images if i.store_index == 0 for name in i.names}
    free = [name for name in TAGS if name not in taken]
    names = data.draw(st.lists(st.sampled_from(free), max_size=1), label="names") if free else []
    image_id = None
    if data.draw(st.booleans(), label="colliding ID"):
        prefix = data.draw(st.sampled_from(ID_PREFIXES), label="prefix")
        image_id = prefix + hex_id("machine-image", seed)[len(prefix) :]
    wants_child = data.draw(st.booleans(), label="child")
    if parents and wants_child:
        parent = data.draw(st.sampled_from(list(parents)), label="parent")
        new_layer = data.draw(st.booleans(), label="new layer")
        return child_of(parent, ("machine", seed), names, new_layer=new_layer, image_id=image_id)
    chain = layer_chain(("machine-layer", seed))
    return image(("machine", seed), names, layers=chain, image_id=image_id)


def stored_names(snapshot: Snapshot) -> list[str]:
    """Every stored name and its short form (``foo:v2``, ``foo`` for ``:latest``)."""
    found: dict[str, None] = {}
    for stored in snapshot.images:
        for name in stored.names:
            found.setdefault(name)
            short = name.removeprefix("localhost/")
            found.setdefault(short.removesuffix(":latest"))
    return list(found)


def removal_options(data: st.DataObject) -> RemoveOptions:
    external = data.draw(st.booleans(), label="external")
    return RemoveOptions(
        force=data.draw(st.booleans(), label="force"),
        lookup_manifest=data.draw(st.integers(0, 5), label="manifest") == 5,
        external_containers=external,
        is_external_container=(
            odd_containers_are_external if external or data.draw(st.booleans()) else None
        ),
        container_hook=data.draw(st.integers(0, 4), label="hook") == 4,
        filters=pvector(data.draw(st.sampled_from(REMOVAL_FILTERS), label="filters")),
        with_size=data.draw(st.booleans(), label="size"),
    )


class CoreAgainstModel(RuleBasedStateMachine):
    """The core's snapshot and the naive model, changed by the same operations."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshot = Snapshot()
        self.model = model.Model()
        self.context = Context()
        self.seeds = count()
        self.built: list[BuiltImage] = []  # images the machine added (possible parents)

    @initialize(
        snapshot=snapshots(max_images=4, corrupted=False, duplicate_ids=False),
        semantics=st.sampled_from([SEED, PODMAN_4_3]),
    )
    def start(self, snapshot: Snapshot, semantics: object) -> None:
        assert semantics in (SEED, PODMAN_4_3)
        self.snapshot = snapshot
        self.model = model.model_of(snapshot)
        self.context = Context(registries=REGISTRIES, semantics=semantics)

    # -- changes made by test-only builders, mirrored by the model's own rules

    @precondition(lambda self: any(i.store_index == 0 for i in self.snapshot.images))
    @rule(data=st.data())
    def tag(self, data: st.DataObject) -> None:
        """SF-N-3, SF-N-5: a name appended to a read-write image; its old owner loses it."""
        writable = [i.id for i in self.snapshot.images if i.store_index == 0]
        image_id = data.draw(st.sampled_from(writable), label="image")
        name = data.draw(st.sampled_from(TAGS), label="name")
        self.snapshot = add_name(self.snapshot, image_id, name)
        model.tag(self.model, image_id, name)

    @rule(data=st.data())
    def add_image(self, data: st.DataObject) -> None:
        """SF-N-2: a new read-write image (base or child) with its new layers."""
        present = {i.id for i in self.snapshot.images}
        parents = [b for b in self.built if b.id in present and b.layers]
        built = new_image(data, self.snapshot, next(self.seeds), parents)
        if built.id in present:
            return  # the same config twice: the same image (its ID is the config digest)
        self.snapshot = with_image(self.snapshot, built)
        self.built.append(built)
        converted = model.model_of(build_snapshot([built]))
        model.add_image(self.model, converted.images[0], converted.layers)

    @precondition(lambda self: bool(self.snapshot.images))
    @rule(data=st.data())
    def add_container(self, data: st.DataObject) -> None:
        """SF-C: a storage container on any image, with its read-write layer."""
        image = data.draw(st.sampled_from(list(self.snapshot.images)), label="image")
        managed = data.draw(st.booleans(), label="podman")
        built = container(("machine", next(self.seeds)), image, podman_managed=managed)
        self.snapshot = with_container(self.snapshot, built.record, built.layer)
        model.add_container(
            self.model,
            model.MContainer(built.id, image.id, built.record.layer, [], managed),
            image.top_layer,
        )

    @precondition(lambda self: bool(self.snapshot.containers))
    @rule(data=st.data())
    def remove_container(self, data: st.DataObject) -> None:
        """SF-D-C: a container and its read-write layer deleted."""
        chosen = data.draw(st.sampled_from(list(self.snapshot.containers)), label="container")
        self.snapshot = without_container(self.snapshot, chosen.id)
        model.delete_container(self.model, chosen.id)

    # -- requests: the core's answer is checked against every rule

    @rule(data=st.data())
    def lookup(self, data: st.DataObject) -> None:
        """LK-*, EX-1: INV-LK-*, INV-MD-1, INV-MD-2."""
        pool = sorted({*lookup_queries(self.snapshot), *candidate_names(self.snapshot)})
        name = data.draw(st.sampled_from(pool), label="name")
        found = check_lookup(self.snapshot, name, self.context, naive=self.model)
        assert not found, "\n".join(map(str, found))

    @rule(data=st.data())
    def list_images(self, data: st.DataObject) -> None:
        """LS-*, FL-*: INV-LS-*, INV-IP-1, INV-LT-1, INV-MD-3."""
        filters = data.draw(
            st.lists(st.sampled_from(listing_filters(self.snapshot)), max_size=3), label="filters"
        )
        names: list[str] = []
        if data.draw(st.integers(0, 3), label="by name") == 3:
            pool = name_pool(self.snapshot)
            names = data.draw(st.lists(st.sampled_from(pool), max_size=2), label="names")
        case = ListingCase(
            self.snapshot,
            tuple(filters),
            self.context,
            tuple(names),
            odd_containers_are_external,
        )
        found = check_listing(case, naive=self.model)
        assert not found, "\n".join(map(str, found))

    @rule(data=st.data())
    def remove_by_name(self, data: st.DataObject) -> None:
        """RM-3, RM-U*, RM-D*: by stored or short name, ID, prefix, digest, transport."""
        stored = stored_names(self.snapshot)
        by_stored_name = data.draw(st.booleans(), label="stored")
        pool = stored if stored and by_stored_name else list(candidate_names(self.snapshot))
        names = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3), label="names")
        options = removal_options(data)
        self.remove(RemovalRequest(self.snapshot, tuple(names), options, self.context))

    @rule(data=st.data())
    def remove_by_filter(self, data: st.DataObject) -> None:
        """RM-4: every image the filters list, whatever its names."""
        options = removal_options(data)
        self.remove(RemovalRequest(self.snapshot, (), options, self.context))

    def remove(self, request: RemovalRequest) -> None:
        """INV-RM-*, INV-MD-4, INV-MD-5; then both stores move on."""
        plan = request.plan()
        found = check_removal(request, plan=plan, naive=self.model)
        assert not found, "\n".join(map(str, found))
        self.snapshot = interpret(self.snapshot, plan)
        self.model, _ = model.remove_images(
            self.model, request.names, request.options, request.context
        )

    @invariant()
    def same_store(self) -> None:
        """Both stores hold the same images (names, history), layers and containers."""
        assert in_model_scope(self.snapshot)
        assert model.view_of_snapshot(self.snapshot) == model.view_of_model(self.model)


TestCoreAgainstModel = CoreAgainstModel.TestCase
TestCoreAgainstModel.settings = settings(
    max_examples=max(3, 2 * ACTIVE.max_examples),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=list(ACTIVE.suppress_health_check),
)
