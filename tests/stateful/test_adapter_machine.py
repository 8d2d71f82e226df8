"""The disk adapter against the in-memory core, over random sequences (issue #6 item 2b).

Each example writes a generated snapshot to a temporary directory as a real vfs
store (:func:`libimage.spec.materialise.materialise`, with a read-only additional
image store when the snapshot has one), then runs random operations on it through
the real adapter while the same operations run on the snapshot in memory:

* removals through :class:`~libimage.adapters.runtime.Runtime` (read, plan, lock,
  apply: ``libimage.adapters.apply.remove_images``) against ``plan_removal`` +
  ``interpret`` in memory: the plan carried out on disk is the plan made in memory,
  the container hook is called for exactly the plan's hook effects (RM-C2), and
  every rule of :func:`libimage.spec.rules.check_removal` holds;
* lookups, existence tests and listings through the runtime's re-read snapshot
  against the same calls on the in-memory snapshot (equal results, traces included);
* test-only changes (tag, a new image, a new or removed storage container) made in
  memory and written with :func:`~libimage.spec.materialise.rewrite_records`.

After every step the store re-read from disk (:func:`read_snapshot`, a fresh read
under the store's locks) has exactly the in-memory snapshot's records: images,
layers, containers, in order. Budget: the active profile's examples, up to 25 steps
each.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
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

from libimage.adapters.runtime import Runtime, SystemContext
from libimage.adapters.storage_conf import StoreOptions
from libimage.adapters.store import read_snapshot
from libimage.pure.context import Context, Platform
from libimage.pure.interpret import interpret
from libimage.pure.listing import list_images
from libimage.pure.lookup import LookupOptions, check_exists, lookup_image
from libimage.pure.plan import RemovalPlan, RemoveOptions, RunContainerHook
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import PODMAN_4_3, SEED, Semantics
from libimage.pure.snapshot import Snapshot
from libimage.spec.builders import BuiltImage, add_name, child_of, container, image, layer_chain
from libimage.spec.gen_snapshots import NAMES, snapshots
from libimage.spec.invariants_listing import filter_pool, odd_containers_are_external
from libimage.spec.invariants_lookup import lookup_queries
from libimage.spec.invariants_removal import INVARIANTS as REMOVAL_INVARIANTS
from libimage.spec.invariants_removal import RemovalRequest, candidate_names
from libimage.spec.materialise import (
    materialise,
    rewrite_records,
    with_container,
    with_image,
    without_container,
)
from libimage.spec.rules import check_removal

pytestmark = pytest.mark.stateful

REGISTRIES = RegistriesConfig(unqualified_search_registries=pvector(["quay.io", "docker.io"]))
HOST = Platform("linux", "amd64")
TAGS = (*NAMES, "localhost/baz:1")
ACTIVE = settings()
# Scratch stores live in memory where there is a tmpfs: fdatasync costs nothing there.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None  # noqa: PTH112
FILTERS = st.sampled_from(
    [(), ("dangling=true",), ("readonly=false",), ("reference=foo",), ("containers=false",)]
)


CORE_REMOVAL_RULES = frozenset(invariant.rule for invariant in REMOVAL_INVARIANTS)


def in_model_scope(snapshot: Snapshot) -> bool:
    """The naive model describes stores that list each ID once (LS-3)."""
    return len({(i.id, i.store_index) for i in snapshot.images}) == len(
        {i.id for i in snapshot.images}
    )


def stored_names(snapshot: Snapshot) -> list[str]:
    """Every stored name and its short form (``foo:v2``, ``foo`` for ``:latest``)."""
    found: dict[str, None] = {}
    for stored in snapshot.images:
        for name in stored.names:
            found.setdefault(name)
            found.setdefault(name.removeprefix("localhost/").removesuffix(":latest"))
    return list(found)


def records(snapshot: Snapshot) -> tuple[object, ...]:
    """What a store holds, as compared after every step (the content is read lazily)."""
    return (snapshot.images, snapshot.layers, snapshot.containers, snapshot.quarantine)


class AdapterAgainstCore(RuleBasedStateMachine):
    """A real store on disk and the in-memory snapshot, changed by the same operations."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="libimage-machine-", dir=SCRATCH)
        self.snapshot = Snapshot()
        self.options = StoreOptions(self.directory, self.directory, "vfs")
        self.runtime: Runtime | None = None
        self.seeds = count()
        self.built: list[BuiltImage] = []

    @initialize(
        snapshot=snapshots(max_images=4, corrupted=False),
        semantics=st.sampled_from([SEED, PODMAN_4_3]),
    )
    def start(self, snapshot: Snapshot, semantics: Semantics) -> None:
        # There is no podman database here: every container is storage-only (decision 19).
        self.snapshot = replace(
            snapshot,
            containers=pvector(replace(c, podman_managed=False) for c in snapshot.containers),
        )
        self.options = materialise(
            self.snapshot,
            os.path.join(self.directory, "root"),  # noqa: PTH118
            os.path.join(self.directory, "run"),  # noqa: PTH118
            [os.path.join(self.directory, "additional")],  # noqa: PTH118
        )
        self.runtime = Runtime(self.options, SystemContext(), REGISTRIES, semantics, HOST)

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def context(self) -> Context:
        assert self.runtime is not None
        return self.runtime.context()

    def rewrite(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        rewrite_records(snapshot, self.options)

    # -- test-only changes, written to disk

    @precondition(lambda self: any(i.store_index == 0 for i in self.snapshot.images))
    @rule(data=st.data())
    def tag(self, data: st.DataObject) -> None:
        """SF-N-3, SF-N-5: a name appended to a read-write image."""
        writable = sorted({i.id for i in self.snapshot.images if i.store_index == 0})
        image_id = data.draw(st.sampled_from(writable), label="image")
        self.rewrite(add_name(self.snapshot, image_id, data.draw(st.sampled_from(TAGS))))

    @rule(data=st.data())
    def add_image(self, data: st.DataObject) -> None:
        """A new read-write image: a base image, or a child of one built before (LT-3)."""
        taken = {name for i in self.snapshot.images if i.store_index == 0 for name in i.names}
        free = [name for name in TAGS if name not in taken]
        names = data.draw(st.lists(st.sampled_from(free), max_size=1)) if free else []
        present = {i.id for i in self.snapshot.images}
        parents = [b for b in self.built if b.id in present and b.layers]
        seed = next(self.seeds)
        wants_child = data.draw(st.booleans(), label="child")
        if parents and wants_child:
            parent = data.draw(st.sampled_from(parents), label="parent")
            built = child_of(parent, ("disk", seed), names, new_layer=data.draw(st.booleans()))
        else:
            built = image(("disk", seed), names, layers=layer_chain(("disk-layer", seed)))
        if built.id not in present:
            self.built.append(built)
            self.rewrite(with_image(self.snapshot, built))

    @precondition(lambda self: bool(self.snapshot.images))
    @rule(data=st.data())
    def add_container(self, data: st.DataObject) -> None:
        """SF-C: a storage container on any image, with its read-write layer."""
        used = data.draw(st.sampled_from(list(self.snapshot.images)), label="image")
        built = container(("disk", next(self.seeds)), used)
        self.rewrite(with_container(self.snapshot, built.record, built.layer))

    @precondition(lambda self: bool(self.snapshot.containers))
    @rule(data=st.data())
    def remove_container(self, data: st.DataObject) -> None:
        """SF-D-C: a container and its read-write layer deleted."""
        chosen = data.draw(st.sampled_from(list(self.snapshot.containers)), label="container")
        self.rewrite(without_container(self.snapshot, chosen.id))

    # -- requests through the adapter

    @rule(data=st.data())
    def lookup(self, data: st.DataObject) -> None:
        """LK-*, EX-1: the runtime's answer on the store read from disk is the core's."""
        assert self.runtime is not None
        pool = sorted({*lookup_queries(self.snapshot), *candidate_names(self.snapshot)})
        name = data.draw(st.sampled_from(pool), label="name")
        context = self.context
        assert self.runtime.lookup_image(name) == lookup_image(
            self.snapshot, name, LookupOptions(), context
        )
        on_disk = self.runtime.check_exists(name)
        in_memory = check_exists(self.snapshot, name, context)
        assert (on_disk.exists, on_disk.failure) == (in_memory.exists, in_memory.failure)

    @rule(data=st.data())
    def list_images(self, data: st.DataObject) -> None:
        """LS-*, FL-*: the listing of the store read from disk is the core's."""
        assert self.runtime is not None
        pool = [f for f in filter_pool(self.snapshot) if not f.startswith("until")]
        filters = data.draw(st.lists(st.sampled_from(pool), max_size=2), label="filters")
        context = self.context
        got = list_images(
            self.runtime.snapshot(), (), filters, context, odd_containers_are_external
        )
        wanted = list_images(self.snapshot, (), filters, context, odd_containers_are_external)
        assert got == wanted

    @precondition(lambda self: bool(stored_names(self.snapshot)))
    @rule(data=st.data())
    def remove_by_stored_name(self, data: st.DataObject) -> None:
        """RM-U*, RM-D*: by stored or short names."""
        pool = stored_names(self.snapshot)
        names = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3), label="names")
        self.remove(data, tuple(names))

    @rule(data=st.data())
    def remove_by_name(self, data: st.DataObject) -> None:
        """RM-3: by name, ID, prefix, digest, transport or unknown name."""
        pool = list(candidate_names(self.snapshot))
        names = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3), label="names")
        self.remove(data, tuple(names))

    @rule(data=st.data())
    def remove_by_filter(self, data: st.DataObject) -> None:
        """RM-4: every image the filters list."""
        self.remove(data, ())

    def remove(self, data: st.DataObject, names: tuple[str, ...]) -> None:
        """RM-*, SF-D-*: the removal carried out on disk is the one planned in memory."""
        assert self.runtime is not None
        external = data.draw(st.booleans(), label="external")
        options = RemoveOptions(
            force=data.draw(st.booleans(), label="force"),
            external_containers=external,
            is_external_container=odd_containers_are_external if external else None,
            container_hook=data.draw(st.integers(0, 3), label="hook") == 3,
            filters=pvector(data.draw(FILTERS, label="filters")),
            with_size=data.draw(st.booleans(), label="size"),
        )
        request = RemovalRequest(self.snapshot, names, options, self.context)
        plan = request.plan()
        # The naive model leaves out stores that list an ID twice (spec.model's scope):
        # on those only the core's own invariants are checked.
        rules = None if in_model_scope(self.snapshot) else CORE_REMOVAL_RULES
        found = check_removal(request, plan=plan, only=rules)
        assert not found, "\n".join(map(str, found))
        hooked: list[str] = []
        outcome = self.runtime.remove_images_outcome(names, options, container_hook=hooked.append)
        assert outcome.plan == plan
        assert hooked == hook_calls(plan)
        self.snapshot = interpret(self.snapshot, plan)

    @invariant()
    def disk_equals_memory(self) -> None:
        """The store re-read from disk has the in-memory snapshot's records."""
        if self.runtime is not None:
            assert records(read_snapshot(self.options).snapshot) == records(self.snapshot)


def hook_calls(plan: RemovalPlan) -> list[str]:
    """The images the container hook must be called for, in order (RM-C2)."""
    return [effect.image for effect in plan.effects if isinstance(effect, RunContainerHook)]


TestAdapterAgainstCore = AdapterAgainstCore.TestCase
TestAdapterAgainstCore.settings = settings(
    max_examples=max(3, ACTIVE.max_examples),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=list(ACTIVE.suppress_health_check),
)
