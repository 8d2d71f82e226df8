"""Removal invariants as plain predicates (issue #5, "What it must show").

Each invariant is a predicate over a :class:`RemovalRequest` (snapshot, names,
options, context) and the plan ``plan_removal`` made for it; it returns ``None``
when the invariant holds and a one-line explanation when it does not. Predicates
that speak about other calls (bundling, a second plan, applying a plan twice)
make them themselves. Rule IDs are stable; each cites the behaviour IDs it rests on.

Every invariant here holds for the seed. Where an intuitive one does not, the true
one is stated and the exception pinned by a test: naming one image twice is not
idempotent (RM-X5: ``[foo, foo]`` on ``foo:latest`` + ``foo:v2`` deletes the image,
``[foo]`` only untags), so idempotence is stated for the *bundling* of names, not
for the removal; and storage 1.43 deletes an image's mapped layers whoever else
uses them (SF-D-7), so "no used layer is deleted" excepts those.

:func:`candidate_names` lists the names worth asking for on a snapshot (stored
names and their short forms, ID prefixes, digests, transport names, unknown
names); the property tests draw requests from it, and so can the oracle.

These predicates use only the pure core's public functions and the snapshot's
records; they import no test framework.
"""

# Every predicate takes the same two arguments, whether it needs them both or not.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.interpret import interpret, interpret_one
from libimage.pure.lookup import lookup_image
from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    RemovalPlan,
    RemoveContainer,
    RemoveOptions,
    Untag,
)
from libimage.pure.reference import normalize_name
from libimage.pure.remove import bundle_requests, plan_removal, removal_lookup_options
from libimage.pure.snapshot import Snapshot, image_digest

STORAGE_TRANSPORT = "containers-storage:"


@dataclass(frozen=True, slots=True)
class RemovalRequest:
    """One ``RemoveImages`` call: the store, the names, the options, the context."""

    snapshot: Snapshot
    names: tuple[str, ...]
    options: RemoveOptions
    context: Context

    def plan(self) -> RemovalPlan:
        """``plan_removal`` for this request."""
        return plan_removal(self.snapshot, self.names, self.options, self.context)


Predicate = Callable[[RemovalRequest, RemovalPlan], "str | None"]


@dataclass(frozen=True, slots=True)
class Invariant:
    """One removal invariant: a stable rule ID, the behaviours it cites, the predicate."""

    rule: str
    cites: tuple[str, ...]
    statement: str
    check: Predicate


# --------------------------------------------------------------------------- helpers


def candidate_names(snapshot: Snapshot) -> tuple[str, ...]:
    """Names worth requesting on ``snapshot``, in a fixed order (for generators).

    Every stored name, its short form (``foo:v2`` for ``localhost/foo:v2``, the
    repository alone for ``:latest``), its ``containers-storage:`` form, full IDs,
    ``sha256:`` IDs, 1-, 2- and 12-character ID prefixes, ``<repository>@<digest>``
    for each image's digest, and two names that match nothing.
    """
    found: dict[str, None] = {}
    for image in snapshot.images:
        for name in image.names:
            found.setdefault(name)
            if name.startswith("localhost/"):
                short = name.removeprefix("localhost/")
                found.setdefault(short.removesuffix(":latest"))
                found.setdefault(short)
            found.setdefault(STORAGE_TRANSPORT + name)
        for length in (1, 2, 12, 64):
            found.setdefault(image.id[:length])
        found.setdefault("sha256:" + image.id)
        digest = image_digest(image)
        if digest:
            repository = image.names[0].rsplit(":", 1)[0] if image.names else "localhost/x"
            found.setdefault(f"{repository}@{digest}")
    found.setdefault("nonexistent")
    found.setdefault("localhost/nothing:here")
    return tuple(found)


def _normalized(reference: str) -> str | None:
    try:
        return str(normalize_name(reference))
    except LibimageError:
        return None


def _has_transport_name(request: RemovalRequest) -> bool:
    return any(name.startswith(STORAGE_TRANSPORT) for name in request.names)


def _layer_chain(snapshot: Snapshot, start: str) -> set[str]:
    """``start`` and its ancestors through the snapshot's layer records (loops end)."""
    parents: dict[str, str] = {}
    for layer in snapshot.layers:
        parents.setdefault(layer.id, layer.parent)
    chain: set[str] = set()
    layer_id = start
    while layer_id and layer_id not in chain:
        chain.add(layer_id)
        layer_id = parents.get(layer_id, "")
    return chain


# --------------------------------------------------------------------------- RM-3


def bundling_is_idempotent(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-1 (RM-3): bundling the request rebuilt from the bundles gives them back.

    For requests without transport names (whose resolved name is empty): the
    rebuilt request is every bundle's ``referenced_by`` in bundle order.
    """
    if not request.names or _has_transport_name(request):
        return None
    first = bundle_requests(request.snapshot, request.names, request.options, request.context)
    rebuilt = tuple(name for bundle in first.bundles for name in bundle.referenced_by)
    again = bundle_requests(request.snapshot, rebuilt, request.options, request.context)
    if again.bundles != first.bundles:
        return f"bundling {rebuilt} gives {again.bundles}, not {first.bundles}"
    return None


def resolving_names_land_in_one_bundle(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-2 (RM-3): one bundle per image, holding exactly the names that found it.

    Every name whose lookup succeeds lands in the bundle of its image, in request
    order, repeats included; no image has two bundles.
    """
    if not request.names:
        return None
    bundling = bundle_requests(request.snapshot, request.names, request.options, request.context)
    ids = [bundle.image.id for bundle in bundling.bundles]
    if len(ids) != len(set(ids)):
        return f"an image has two bundles: {ids}"
    expected: dict[str, list[str]] = {}
    lookup_options = removal_lookup_options(request.options)
    for name in request.names:
        result = lookup_image(request.snapshot, name, lookup_options, request.context)
        if result.image is not None:
            expected.setdefault(result.image.id, []).append(result.resolved_name)
    got = {bundle.image.id: list(bundle.referenced_by) for bundle in bundling.bundles}
    if got != expected or ids != list(expected):
        return f"bundles {got} (order {ids}), expected {expected}"
    return None


# --------------------------------------------------------------------------- purity


def planning_is_deterministic(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-3: planning again gives the same plan, and the inputs are unchanged."""
    before = (request.snapshot.images, request.snapshot.layers, request.snapshot.containers)
    again = request.plan()
    if again != plan:
        return f"a second plan differs: {again} != {plan}"
    after = (request.snapshot.images, request.snapshot.layers, request.snapshot.containers)
    if after != before:
        return "planning changed the snapshot"
    return None


def effects_are_idempotent(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-4: each effect applied twice equals once, where it applies; so does the plan.

    This is what lets an interrupted apply be completed by applying the plan again.
    """
    state = request.snapshot
    for effect in plan.effects:
        once = interpret_one(state, effect)
        if interpret_one(once, effect) != once:
            return f"{effect} is not idempotent"
        state = once
    if interpret(state, plan) != state:
        return "applying the plan a second time changed the store"
    if interpret(request.snapshot, plan) != state:
        return "interpret differs from the fold of interpret_one"
    return None


# --------------------------------------------------------------------------- RM-U*, RM-D6


def unrequested_names_go_only_with_their_image(
    request: RemovalRequest, plan: RemovalPlan
) -> str | None:
    """INV-RM-5 (RM-U5, RM-D6, RM-R2): a name not asked for is untagged only when its
    image is deleted, and that effect says why.

    An ``Untag`` of a name that is not (the normalised form of) a resolved name of the
    request must be rule RM-D6, carry a reason and be followed by the ``DeleteImage``
    of its image; a reported untagged name that was not asked for belongs to an
    image the plan deletes.
    """
    resolved: set[str] = set()
    if request.names:
        bundling = bundle_requests(
            request.snapshot, request.names, request.options, request.context
        )
        resolved = {name for bundle in bundling.bundles for name in bundle.referenced_by}
    requested = {n for n in map(_normalized, resolved) if n} | resolved
    deleted_later: set[str] = set()
    for effect in reversed(plan.effects):
        if isinstance(effect, DeleteImage):
            deleted_later.add(effect.image)
        elif isinstance(effect, Untag) and effect.name not in requested:
            if effect.rule != "RM-D6" or not effect.why:
                return f"{effect} untags a name not asked for without saying why"
            if effect.image not in deleted_later:
                return f"{effect} untags a name not asked for, but the image is not deleted"
    deleted = {effect.image for effect in plan.effects if isinstance(effect, DeleteImage)}
    for report in plan.reports:
        strays = [name for name in report.untagged if name not in requested]
        if strays and report.id not in deleted:
            return f"report {report.id} untagged {strays} without deleting the image"
    return None


# --------------------------------------------------------------------------- SF-D-6


def kept_layers_stay(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-6 (SF-D-6, SF-D-7): no layer a kept image or container uses is deleted.

    "Uses" is the layer chain of a kept image's top and mapped layers, or of a kept
    container's read-write layer. A layer is deleted when no record of it is left
    in any store. Exception: storage 1.43 deletes a deleted image's mapped layers
    unconditionally, and then counts them as scheduled children of their parents
    (SF-D-7), so an image or container built on such a mapped layer is not protected.
    """
    before = request.snapshot
    after = interpret(before, plan)
    left = {layer.id for layer in after.layers}
    gone = {layer.id for layer in before.layers} - left
    deleted_images = {effect.image for effect in plan.effects if isinstance(effect, DeleteImage)}
    excused = {
        mapped
        for image in before.images
        if image.id in deleted_images and image.store_index == 0
        for mapped in image.mapped_layers
    }
    for image in after.images:
        for start in (image.top_layer, *image.mapped_layers):
            chain = _layer_chain(before, start)
            if chain & excused:
                continue  # it sits on a deleted image's mapped layer (SF-D-7)
            lost = chain & gone
            if lost:
                return f"image {image.id} is kept but its layers {sorted(lost)} were deleted"
    for container in after.containers:
        chain = _layer_chain(before, container.layer)
        lost = chain & gone
        if lost and not chain & excused:
            return f"container {container.id} is kept but its layers {sorted(lost)} were deleted"
    return None


# --------------------------------------------------------------------------- RM-C*, RM-D5


def images_in_use_need_force(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-7 (RM-D5, RM-C1, RM-C4): an image a container uses is deleted only with
    ``force``, or with ``external_containers`` when every such container is external;
    and each of those containers is removed before the image."""
    options = request.options
    removed: set[str] = set()
    for effect in plan.effects:
        if isinstance(effect, RemoveContainer):
            removed.add(effect.container)
        if not isinstance(effect, DeleteImage):
            continue
        users = [c.id for c in request.snapshot.containers if c.image_id == effect.image]
        if not users:
            continue
        check = options.is_external_container
        external = (
            options.external_containers and check is not None and all(check(user) for user in users)
        )
        if not options.force and not external:
            return f"image {effect.image} is used by {users} but deleted without force"
        if not set(users) <= removed:
            return f"image {effect.image} is deleted before its containers {users} are removed"
    return None


# --------------------------------------------------------------------------- RM-D0


def read_only_images_are_untouched(request: RemovalRequest, plan: RemovalPlan) -> str | None:
    """INV-RM-8 (RM-D0, SF-RO-3): no effect touches a read-only store.

    Every ``Untag``, ``DeleteImage`` and ``DeleteLayer`` names a record of the
    read-write store; every read-only record is unchanged after the plan; and each
    reference to a read-only image is refused with a ``READ_ONLY`` error.
    """
    snapshot = request.snapshot
    options = request.options
    refused_at_once = (
        options.external_containers and options.is_external_container is None
    ) or any(
        error.kind is ErrorKind.INVALID_RECORD_ID for error in plan.errors
    )  # RM-2 and decision 10 refuse the whole call before any image is looked at
    if request.names and not refused_at_once:
        bundling = bundle_requests(snapshot, request.names, request.options, request.context)
        refused = sum(
            len(bundle.referenced_by) for bundle in bundling.bundles if bundle.image.read_only
        )
        found = sum(1 for error in plan.errors if error.kind is ErrorKind.READ_ONLY)
        if found < refused:
            return f"{refused} references name read-only images, {found} were refused"
    writable_images = {image.id for image in snapshot.images if image.store_index == 0}
    writable_layers = {layer.id for layer in snapshot.layers if layer.store_index == 0}
    for effect in plan.effects:
        if isinstance(effect, Untag | DeleteImage) and effect.image not in writable_images:
            return f"{effect} touches an image that only a read-only store holds"
        if isinstance(effect, DeleteLayer) and effect.layer not in writable_layers:
            return f"{effect} touches a layer that only a read-only store holds"
    after = interpret(snapshot, plan)
    kept = [image for image in after.images if image.read_only]
    if kept != [image for image in snapshot.images if image.read_only]:
        return "a read-only image record changed"
    if [lay for lay in after.layers if lay.read_only] != [
        lay for lay in snapshot.layers if lay.read_only
    ]:
        return "a read-only layer record changed"
    return None


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "INV-RM-1",
        ("RM-3",),
        "bundling a request rebuilt from its bundles gives the same bundles",
        bundling_is_idempotent,
    ),
    Invariant(
        "INV-RM-2",
        ("RM-3",),
        "every name that resolves lands in exactly one bundle",
        resolving_names_land_in_one_bundle,
    ),
    Invariant(
        "INV-RM-3",
        (),
        "planning is deterministic and never modifies its inputs",
        planning_is_deterministic,
    ),
    Invariant(
        "INV-RM-4",
        ("SF-D-11", "SF-N-5"),
        "every effect is idempotent: applying a plan twice equals applying it once",
        effects_are_idempotent,
    ),
    Invariant(
        "INV-RM-5",
        ("RM-U5", "RM-D6", "RM-R2"),
        "names not asked for are untagged only when their image is deleted, saying why",
        unrequested_names_go_only_with_their_image,
    ),
    Invariant(
        "INV-RM-6",
        ("SF-D-6", "SF-D-7"),
        "no layer still used by a kept image or container is deleted",
        kept_layers_stay,
    ),
    Invariant(
        "INV-RM-7",
        ("RM-D5", "RM-C1", "RM-C4"),
        "an image in use is deleted only with force or with only external containers",
        images_in_use_need_force,
    ),
    Invariant(
        "INV-RM-8",
        ("RM-D0", "SF-RO-3"),
        "a read-only image is never touched",
        read_only_images_are_untouched,
    ),
)


def violations(request: RemovalRequest, plan: RemovalPlan | None = None) -> list[str]:
    """Every invariant's explanation that is not ``None``, prefixed by its rule ID."""
    made = request.plan() if plan is None else plan
    found: list[str] = []
    for invariant in INVARIANTS:
        outcome = invariant.check(request, made)
        if outcome is not None:
            found.append(f"{invariant.rule}: {outcome}")
    return found
