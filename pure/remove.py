"""Removal as a pure plan: the seed's ``RemoveImages`` (RM-*, EV-*, SF-D-*).

:func:`plan_removal` takes a snapshot, the requested names, the options and the
context, and returns a :class:`~libimage.pure.plan.RemovalPlan`: the effects in the
order the seed would carry them out, the reports it would return, the events it
would emit and the errors it would collect. Nothing is changed; the adapter applies
the plan, :func:`libimage.pure.interpret.interpret` applies it in memory.

Theory of operation
-------------------
**Collection (RM-3, RM-4).** With names, every name is looked up *before anything is
removed* (LK, with ``lookup_manifest`` or ``return_manifest_if_no_instance``, RLK-7).
A lookup error is collected and the name skipped (with ``force`` in a profile where
``force_ignores_unknown_names``, an "image not known" error is dropped instead,
decision 16). The images found are **bundled by ID**: one bundle per image, in the
order of first appearance, each keeping the resolved names that reached it, repeats
included (:func:`bundle_requests`). Without names, the images the listing returns
for ``filters`` become bundles without references, in store order; an ID listed
twice is queued twice and both entries use the later record (RM-4).

**Processing (RM-6, 5.2).** Each bundle's references are processed in order (no
reference means one pass with ``""``, "whatever its names"). One pass is the seed's
``remove(image, ref)``:

1. A read-only image is refused (RM-D0); an image already reported removed is done.
2. With ``with_size`` the size is taken first (IP-13; -1 when the image or a layer
   is already gone, RM-D1).
3. **Untag or delete** (RM-U1..U7): with ``ref == ""`` or exactly one name left, the
   image is deleted. Otherwise an ID (prefix) or ``sha256:`` reference needs
   ``force`` (RM-U3, RM-U4) and then deletes; a name is untagged, and the image stays
   while names remain. The name count is read *now*, after the untags of earlier
   references in the same call (RM-X5: ``[foo, foo]`` on ``foo:latest`` +
   ``foo:v2`` untags one name, then deletes the image).
4. **Deletion** (RM-D2..D8): containers go first (``force``: every storage
   container, through the caller's hook if there is one, RM-C2; without ``force``
   but with ``external_containers``: only if all are external, RM-C4; a container
   podman's database knows is refused without a hook, decision 19). Children and
   parent are worked out before the delete (RM-D3, RM-D4). A container still using
   the image refuses the delete (RM-D5). The record goes with its names (RM-D6) and
   the layers it frees (SF-D-6, SF-D-7). ``removed`` only if it had no children
   (RM-D7; ``force`` does not remove children, RM-D9).
5. **Pruning** (RM-D8): a parent that is now dangling (no names, no children, on a
   fresh view of the store) is removed the same way with ``ref == ""``, up the chain;
   its error becomes the error of the original reference.

The seed works on live ``Image`` objects that cache their names: untagging reloads
them, deleting does not. The planner keeps that distinction (``_ImageObject``): a
second reference to an image deleted earlier in the call still sees its old names,
exactly as the seed does.

**Working state.** Planning never rebuilds a snapshot. The facts module's layer tree
is built once; a mutable working state (built once, in linear time) records names
changed, images, layers and containers removed so far, and how many live users each
layer has. Questions about children (LT-C*) are answered from candidate scans cached
per image and trimmed as candidates are deleted, so ``rmi -a -f`` on a large store
stays near-linear.

**Refusal as a whole (decision 10).** A plan that would touch a quarantined record
(a layer whose parent or child is quarantined, a layer a quarantined image or
container uses, an image a quarantined container uses) has no effects and one error
of kind ``INVALID_RECORD_ID`` naming the file and the ID.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.facts import LayerTree, are_parent_and_child, layer_tree
from libimage.pure.lookup import LookupOptions, lookup_image
from libimage.pure.manifest import ImageConfig, image_config, is_manifest_list
from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    Effect,
    Event,
    EventType,
    RemovalPlan,
    RemoveContainer,
    RemoveImageReport,
    RemoveOptions,
    RunContainerHook,
    Untag,
)
from libimage.pure.reference import go_quote, normalize_name
from libimage.pure.snapshot import (
    Container,
    ImageID,
    Layer,
    LayerID,
    QuarantinedRecord,
    Snapshot,
    StoredImage,
    Unreadable,
)
from libimage.pure.storeops import layers_freed_by_deleting, untagged_names

_RESET_HINT = "The storage may be corrupted, consider running `podman system reset`."


# ---------------------------------------------------------------------------
# RM-3, RM-4: bundling


@dataclass(frozen=True, slots=True)
class Bundle:
    """One entry of the seed's delete map: an image and the names that reached it (RM-3).

    ``referenced_by`` holds the resolved names (RLK), in request order, repeats kept;
    it is empty for images listed by filter (RM-4) and holds ``""`` for a
    ``containers-storage:`` name (RLK-1).
    """

    image: StoredImage
    referenced_by: PVector[str] = field(default_factory=pvector)


@dataclass(frozen=True, slots=True)
class Bundling:
    """The bundles of a request, in first-seen order, and the lookup errors (RM-3, RM-8)."""

    bundles: PVector[Bundle] = field(default_factory=pvector)
    errors: PVector[Failure] = field(default_factory=pvector)
    warnings: PVector[str] = field(default_factory=pvector)


def removal_lookup_options(options: RemoveOptions) -> LookupOptions:
    """The lookup options ``RemoveImages`` passes for every name (RM-3, RLK-7)."""
    if options.lookup_manifest:
        return LookupOptions(lookup_manifest=True)
    return LookupOptions(return_manifest_if_no_instance=True)


def bundle_requests(
    snapshot: Snapshot, names: Sequence[str], options: RemoveOptions, context: Context
) -> Bundling:
    """Look every name up and bundle the results by image ID (RM-3, decision 16).

    Names are looked up in order, all before any removal. Each image found gets one
    bundle, in order of first appearance; its ``referenced_by`` collects the resolved
    names in request order, duplicates included. Lookup errors are kept in name order
    (RM-8), except that ``force`` drops "image not known" errors in a profile whose
    ``force_ignores_unknown_names`` is set (podman 4.3.1's ``rmi -f``).
    """
    lookup_options = removal_lookup_options(options)
    ignore_unknown = options.force and context.semantics.force_ignores_unknown_names
    order: list[ImageID] = []
    found: dict[ImageID, tuple[StoredImage, list[str]]] = {}
    errors: list[Failure] = []
    warnings: list[str] = []
    for name in names:
        result = lookup_image(snapshot, name, lookup_options, context)
        warnings.extend(result.warnings)
        if result.image is None:
            failure = result.failure
            if failure is None:  # pragma: no cover - LookupResult sets one of the two
                failure = Failure(ErrorKind.INTERNAL, name, f"{name}: lookup failed", "RM-3")
            if ignore_unknown and failure.kind is ErrorKind.IMAGE_UNKNOWN:
                continue  # compat (decision 16): podman 4.3.1's rmi -f sets Ignore
            errors.append(failure)
            continue
        entry = found.get(result.image.id)
        if entry is None:
            entry = (result.image, [])
            found[result.image.id] = entry
            order.append(result.image.id)
        entry[1].append(result.resolved_name)
    bundles = [Bundle(found[i][0], pvector(found[i][1])) for i in order]
    return Bundling(pvector(bundles), pvector(errors), pvector(dict.fromkeys(warnings)))


def bundles_for_listing(images: Sequence[StoredImage]) -> PVector[Bundle]:
    """The seed's delete queue for the no-names path (RM-4).

    One entry per listed image, in listing order, without references. An ID listed
    twice (a read-only image and its read-write copy, LS-3) is queued twice and both
    entries use the later record: the seed's map keeps the last image per ID.
    """
    last = {image.id: image for image in images}
    return pvector(Bundle(last[image.id]) for image in images)


# ---------------------------------------------------------------------------
# The planner's working state


class _ImageObject:
    """The seed's ``*Image`` during removal: a record and the names it last loaded.

    Untagging reloads the names; deleting does not, so a later reference to a deleted
    image still sees the names it had (the seed reads ``i.Names()`` from its cache).
    """

    __slots__ = ("names", "record")

    def __init__(self, record: StoredImage, names: tuple[str, ...]) -> None:
        self.record = record
        self.names = names

    @property
    def id(self) -> ImageID:
        return self.record.id


@dataclass(slots=True)
class _ChildScan:
    """The candidates that matter for one image's children question (LT-C1..C4).

    Built once per image by scanning every candidate; trimmed (from the front) as
    candidates are deleted. ``ordered`` is used for images without a top layer, where
    the seed stops at the first child; ``failures`` and ``children`` for the layer
    nodes, where every candidate is checked and any failure wins.
    """

    ordered: deque[tuple[int, Failure | None]] = field(default_factory=deque)
    failures: deque[tuple[int, Failure]] = field(default_factory=deque)
    children: deque[int] = field(default_factory=deque)


K = TypeVar("K")


class _Count(Generic[K]):
    """A counter over a shared base: reads the base plus this plan's changes.

    Writing keeps only the change, so a plan never copies the per-snapshot tables.
    """

    __slots__ = ("base", "changes")

    def __init__(self, base: Counter[K]) -> None:
        self.base = base
        self.changes: dict[K, int] = {}

    def __getitem__(self, key: K) -> int:
        return self.base[key] + self.changes.get(key, 0)

    def __setitem__(self, key: K, value: int) -> None:
        self.changes[key] = value - self.base[key]


@dataclass(frozen=True, slots=True)
class _Tables:
    """What the planner starts from, built in one pass per snapshot and never changed."""

    positions_by_id: dict[str, list[int]]
    rw_position: dict[str, int]
    layer_users: Counter[str]  # layer -> uses by read-write images
    layer_users_by: Counter[tuple[str, str]]  # (layer, image ID) -> uses
    rw_layers: dict[str, list[Layer]]
    all_layers: dict[str, list[Layer]]  # every record of a layer ID, store order
    layer_records: Counter[str]  # records of a layer ID, any store
    parent_refs: Counter[str]  # layer records naming it as parent
    rw_children: Counter[str]  # read-write layers on it
    container_keys: Counter[str]


_TABLES_KEY = "libimage.pure.remove.tables"


def _tables(snapshot: Snapshot) -> _Tables:
    """The snapshot's :class:`_Tables`, memoised: planning one name stays O(what it touches)."""
    found = snapshot.memo.get(_TABLES_KEY)
    if isinstance(found, _Tables):
        return found
    positions_by_id: dict[str, list[int]] = {}
    rw_position: dict[str, int] = {}
    layer_users: Counter[str] = Counter()
    layer_users_by: Counter[tuple[str, str]] = Counter()
    for position, image in enumerate(snapshot.images):
        positions_by_id.setdefault(image.id, []).append(position)
        if image.store_index == 0:
            rw_position.setdefault(image.id, position)
            for layer_id in (image.top_layer, *image.mapped_layers):
                layer_users[layer_id] += 1
                layer_users_by[(layer_id, image.id)] += 1
    rw_layers: dict[str, list[Layer]] = {}
    all_layers: dict[str, list[Layer]] = {}
    layer_records: Counter[str] = Counter()
    parent_refs: Counter[str] = Counter()
    rw_children: Counter[str] = Counter()
    for layer in snapshot.layers:
        layer_records[layer.id] += 1
        all_layers.setdefault(layer.id, []).append(layer)
        if layer.parent:
            parent_refs[layer.parent] += 1
        if layer.store_index == 0:
            rw_layers.setdefault(layer.id, []).append(layer)
            rw_children[layer.parent] += 1
    container_keys: Counter[str] = Counter()
    for container in snapshot.containers:
        for key in _container_keys(container):
            container_keys[key] += 1
    tables = _Tables(
        positions_by_id,
        rw_position,
        layer_users,
        layer_users_by,
        rw_layers,
        all_layers,
        layer_records,
        parent_refs,
        rw_children,
        container_keys,
    )
    snapshot.memo[_TABLES_KEY] = tables
    return tables


class _Working:
    """The store as the plan so far leaves it: shared tables plus this plan's changes.

    Implements :class:`~libimage.pure.storeops.LayerUsage` for the layer walk.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        tables = _tables(snapshot)
        self.deleted_images: set[int] = set()
        self.names: dict[int, tuple[str, ...]] = {}
        self.positions_by_id = tables.positions_by_id
        self.rw_position = tables.rw_position
        self.layer_users = _Count(tables.layer_users)
        self.layer_users_by = _Count(tables.layer_users_by)
        self.rw_layers = tables.rw_layers
        self.deleted_layers: set[str] = set()
        self.layer_records = _Count(tables.layer_records)  # live records of a layer ID
        self.parent_refs = _Count(tables.parent_refs)  # live layer records naming it as parent
        self.rw_children = _Count(tables.rw_children)  # live read-write layers on it
        self.removed_containers: set[int] = set()
        self.container_keys = _Count(tables.container_keys)
        self.tree: LayerTree = layer_tree(snapshot)
        self.live_empty = len(self.tree.empty_images)  # images without a top layer, live
        self.scans: dict[tuple[str, str], _ChildScan] = {}
        self._all_layers = tables.all_layers

    # -- images

    def names_of(self, position: int) -> tuple[str, ...]:
        found = self.names.get(position)
        return tuple(self.snapshot.images[position].names) if found is None else found

    def position_of(self, record: StoredImage) -> int:
        return self.snapshot.index.id_position[(record.store_index, record.id)]

    def live_rw_position(self, image_id: str) -> int | None:
        position = self.rw_position.get(image_id)
        if position is None or position in self.deleted_images:
            return None
        return position

    def first_live_record(self, image_id: str) -> StoredImage | None:
        """``store.Image(id)``: the first record with this ID that still exists."""
        for position in self.positions_by_id.get(image_id, ()):
            if position not in self.deleted_images:
                return self.snapshot.images[position]
        return None

    def config(self, image_id: str) -> ImageConfig | Failure:
        """The config the seed reads for an image, by ID (``toOCI`` through ``@<id>``)."""
        record = self.first_live_record(image_id)
        if record is None:
            return Failure(
                ErrorKind.IMAGE_UNKNOWN,
                image_id,
                f'reading image "{image_id}": locating image with ID "{image_id}": image not known',
                "RM-D3",
            )
        return image_config(self.snapshot, record)

    def is_list(self, image_id: str) -> bool:
        record = self.first_live_record(image_id)
        # The seed ignores the error: an image that does not open is "not a list".
        return record is not None and is_manifest_list(self.snapshot, record) is True

    def in_tree(self, position: int) -> bool:
        """Would a layer tree built now hold this image (LT-1)?"""
        if position in self.deleted_images:
            return False
        top = self.snapshot.images[position].top_layer
        return not top or self.node_alive(top)

    def node_alive(self, layer_id: str) -> bool:
        return self.layer_records[layer_id] > 0 or self.parent_refs[layer_id] > 0

    def set_names(self, position: int, names: tuple[str, ...]) -> None:
        self.names[position] = names

    def delete_image(self, position: int) -> None:
        self.deleted_images.add(position)
        image = self.snapshot.images[position]
        if not image.top_layer:
            self.live_empty -= 1
        for layer_id in (image.top_layer, *image.mapped_layers):
            self.layer_users[layer_id] -= 1
            self.layer_users_by[(layer_id, image.id)] -= 1

    # -- layers (LayerUsage)

    def layer_parent(self, layer_id: str) -> str | None:
        if layer_id in self.deleted_layers:
            return None
        records = self.rw_layers.get(layer_id)
        return records[0].parent if records else None

    def child_count(self, layer_id: str) -> int:
        return self.rw_children[layer_id]

    def used_by_container(self, layer_id: str) -> bool:
        return self.container_keys[layer_id] > 0

    def used_by_other_image(self, layer_id: str, image_id: str) -> bool:
        return self.layer_users[layer_id] - self.layer_users_by[(layer_id, image_id)] > 0

    def delete_layer(self, layer_id: str) -> None:
        if layer_id in self.deleted_layers:
            return
        records = self.rw_layers.get(layer_id, [])
        if not records:
            return
        self.deleted_layers.add(layer_id)
        for layer in records:
            self.layer_records[layer_id] -= 1
            if layer.parent:
                self.parent_refs[layer.parent] -= 1
            self.rw_children[layer.parent] -= 1

    def live_layer(self, layer_id: str) -> Layer | None:
        """The layer record ``store.Layer`` finds now: read-write first, then read-only."""
        for layer in self._all_layers.get(layer_id, ()):
            if layer.store_index != 0 or layer_id not in self.deleted_layers:
                return layer
        return None

    # -- containers

    def live_containers_of(self, image_id: str) -> list[tuple[int, Container]]:
        positions = self.snapshot.index.containers_by_image.get(image_id, ())
        return [
            (p, self.snapshot.containers[p]) for p in positions if p not in self.removed_containers
        ]

    def remove_container(self, position: int) -> None:
        self.removed_containers.add(position)
        container = self.snapshot.containers[position]
        for key in _container_keys(container):
            self.container_keys[key] -= 1
        if container.layer:
            self.delete_layer(container.layer)  # SF-D-C: its read-write layer goes with it


def _container_keys(container: Container) -> tuple[str, ...]:
    # SF-X-1 for containers: ID, names, read-write layer (rcstore.Exists in SF-D-6).
    return (container.id, *container.names, *((container.layer,) if container.layer else ()))


# ---------------------------------------------------------------------------
# The planner


@dataclass(slots=True)
class _Report:
    untagged: list[str] = field(default_factory=list)
    removed: bool = False
    size: int = 0


@dataclass(frozen=True, slots=True)
class _Prune:
    """The outcome of one ``remove`` pass that continues with a dangling parent (RM-D8)."""

    parent: _ImageObject
    child: ImageID


def _go_list(names: Sequence[str]) -> str:
    """A string slice as Go's ``%s`` prints it: ``[a b c]``."""
    return "[" + " ".join(names) + "]"


class _Planner:
    """One ``RemoveImages`` call, planned: the seed's loop over bundles and references."""

    def __init__(
        self, snapshot: Snapshot, options: RemoveOptions, context: Context, *, listed: bool
    ) -> None:
        self.snapshot = snapshot
        # Why an image requested without a reference is deleted whatever its names.
        self.unreferenced_why = (
            "listed for removal (RM-4)"
            if listed
            else "requested through the containers-storage transport (RLK-1)"
        )
        self.options = options
        self.context = context
        self.semantics = context.semantics
        self.state = _Working(snapshot)
        self.effects: list[Effect] = []
        self.events: list[Event] = []
        self.errors: list[Failure] = []
        self.warnings: dict[str, None] = {}
        self.reports: dict[ImageID, _Report] = {}
        self.ordered: dict[ImageID, None] = {}
        self.objects: dict[ImageID, _ImageObject] = {}

    # -- RM-6: the loop

    def run(self, bundles: Sequence[Bundle]) -> None:
        for bundle in bundles:
            image_object = self.objects.get(bundle.image.id)
            if image_object is None:
                image_object = self._object(bundle.image)
                self.objects[bundle.image.id] = image_object
            for reference in bundle.referenced_by or ("",):
                processed, failure = self.remove(image_object, reference)
                if failure is not None:
                    self.errors.append(failure)
                for image_id in processed:
                    self.ordered.setdefault(image_id)

    def _object(self, record: StoredImage) -> _ImageObject:
        return _ImageObject(record, self.state.names_of(self.state.position_of(record)))

    def warn(self, text: str) -> None:
        self.warnings.setdefault(text)

    # -- 5.2: remove(image, referencedBy), the recursion unrolled

    def remove(self, top: _ImageObject, reference: str) -> tuple[list[ImageID], Failure | None]:
        """``remove(image, ref)`` with its recursion into dangling parents (RM-D0..D9).

        Returns the IDs processed (the image, then pruned parents) and the error. Each
        level's Remove event fires as that level returns (EV-2): deepest parent first.
        """
        processed: list[ImageID] = []
        returning: list[Event] = []
        current, current_reference = top, reference
        origin = self.unreferenced_why
        failure: Failure | None = None
        while True:
            if current.record.read_only:
                failure = Failure(
                    ErrorKind.READ_ONLY,
                    current_reference or current.id,
                    f"cannot remove read-only image {go_quote(current.id)}",
                    "RM-D0",
                )
                break
            returning.append(Event(current.id, current_reference, EventType.REMOVE))
            outcome = self.remove_one(current, current_reference, processed, origin)
            if isinstance(outcome, _Prune):
                current, current_reference = outcome.parent, ""
                origin = f"a dangling parent of image {outcome.child[:12]} (RM-D8)"
                continue
            failure = outcome
            break
        self.events.extend(reversed(returning))
        return processed, failure

    def remove_one(
        self, image: _ImageObject, reference: str, processed: list[ImageID], origin: str
    ) -> Failure | _Prune | None:
        """One level of ``removeRecursive`` after the read-only check.

        ``origin`` says why an image reached without a reference is deleted.
        """
        subject = reference or image.id
        report = self.reports.get(image.id)
        if report is not None and report.removed:
            return None  # RM-D0: already removed in this call
        if report is None:
            report = _Report()
            self.reports[image.id] = report

        if self.options.with_size:
            size = self.size(image.id)
            if isinstance(size, Failure):
                return size  # RM-D1: not an "already gone" error
            report.size = size

        skip_remove = False
        count = len(image.names)
        if not reference:
            why = f"{origin}: deleted whatever its names (RM-U1)"
        else:
            why = f"requested as {reference}; an image with one name is deleted (RM-U1)"
        if reference and count != 1:  # RM-U1: "" or a single name deletes
            by_id = image.id.startswith(reference)  # RM-U2
            by_digest = reference.startswith("sha256:")
            if not self.options.force and count > 1:
                if by_id:
                    return Failure(
                        ErrorKind.NEEDS_FORCE_BY_ID,
                        subject,
                        f"unable to delete image {go_quote(image.id)} by ID with more than one "
                        f"tag ({_go_list(image.names)}): please force removal",
                        "RM-U3",
                    )
                if by_digest:
                    return Failure(
                        ErrorKind.NEEDS_FORCE_BY_DIGEST,
                        subject,
                        f"unable to delete image {go_quote(image.id)} by digest with more than "
                        f"one tag ({_go_list(image.names)}): please force removal",
                        "RM-U4",
                    )
            if not by_id and not by_digest:  # RM-U5; with force an ID or digest deletes, RM-U7
                failure = self.untag(image, reference)
                if failure is not None:
                    return failure  # RM-U6
                report.untagged.append(reference)
                skip_remove = len(image.names) > 0
                why = f"requested as {reference}, its last name (RM-U5)"
            else:
                kind = "ID" if by_id else "digest"
                forced = " with force, whatever its names (RM-U7)" if count > 1 else " (RM-U2)"
                why = f"requested by {kind} as {reference}{forced}"

        processed.append(image.id)
        if skip_remove:
            return None

        failure = self.remove_containers(image, subject)  # RM-D2, RM-C*
        if failure is not None:
            return failure

        has_children = self.has_children(image, exact=False)  # RM-D3
        if isinstance(has_children, Failure):
            self.warn(
                "Failed to determine if an image is a parent: "
                f"{has_children.message}, ignoring the error"
            )
            has_children = False
        parent = self.parent(image)  # RM-D4
        if isinstance(parent, Failure):
            self.warn(f"Failed to determine parent of image: {parent.message}, ignoring the error")
            parent = None

        failure = self.delete_image(image, subject, why)  # RM-D5
        if failure is not None:
            return failure
        report.untagged.extend(image.names)  # RM-D6
        if self.semantics.untag_events_on_delete:
            # compat (EV-4, POD-E-1): podman 4.3.1 emits an untag event per dropped name.
            self.events.extend(Event(image.id, name, EventType.UNTAG) for name in image.names)
        if not has_children:
            report.removed = True  # RM-D7; force does not remove children (RM-D9)

        if parent is None:
            return None
        dangling = self.is_dangling(parent)  # RM-D8, on the store as it is now
        if isinstance(dangling, Failure):
            self.warn(
                f"Failed to determine if an image is a parent: {dangling.message}, "
                "ignoring the error"
            )
            return None
        if not dangling:
            return None
        return _Prune(parent, image.id)

    # -- RM-D1

    def size(self, image_id: ImageID) -> int | Failure:
        """``store.ImageSize`` now (IP-13); -1 when the image or a layer is gone (RM-D1)."""
        record = self.state.first_live_record(image_id)
        if record is None:
            return -1  # quirk (RM-D1): "image not known" is ignored and Size becomes -1
        queue = [layer_id for layer_id in (record.top_layer, *record.mapped_layers) if layer_id]
        visited: set[str] = set()
        total = 0
        while queue:
            layer_id = queue.pop()
            if layer_id in visited:
                continue
            visited.add(layer_id)
            layer = self.state.live_layer(layer_id)
            if layer is None:
                return -1  # quirk (RM-D1): "layer not known" likewise
            if layer.diff_digest:
                total += layer.diff_size or 0
            else:
                measured = self.snapshot.content.layer_diff_size(layer)
                if isinstance(measured, Unreadable):
                    return Failure(
                        ErrorKind.IMAGE_CORRUPTED,
                        layer_id,
                        f'size/digest of layer with ID "{layer_id}" could not be calculated: '
                        f"{measured.reason}",
                        "RM-D1",
                    )
                total += measured
            if layer.parent:
                queue.append(layer.parent)
        for key in record.big_data_names:
            size = record.big_data_sizes.get(key)
            if size is None:
                data = self.snapshot.content.big_data(record, key)
                if isinstance(data, Unreadable):
                    return Failure(
                        ErrorKind.IMAGE_CORRUPTED,
                        image_id,
                        f'error reading size of big data item "{key}" for image "{image_id}": '
                        "size is not known",
                        "RM-D1",
                    )
                size = len(data)
            total += size
        return total

    # -- 5.3: Untag

    def untag(self, image: _ImageObject, reference: str) -> Failure | None:
        """``Untag(reference)`` (RM-T1..T3, EV-3); None on success."""
        if reference.startswith("sha256:"):  # pragma: no cover - RM-T1: handled as byDigest
            return Failure(
                ErrorKind.UNTAG_BY_DIGEST,
                reference,
                f"{reference}: untag by digest not supported",
                "RM-T1",
            )
        drop_prefix = self.semantics.normalize_name_error_drops_error_prefix
        try:
            name = str(normalize_name(reference, drop_error_prefix=drop_prefix))
        except LibimageError as error:  # pragma: no cover - the lookup parsed it (LK-3)
            return Failure(
                error.kind,
                reference,
                f"normalizing name {go_quote(reference)}: {error.failure.message}",
                "RM-T2",
            )
        # EV-3: the untag event fires whenever normalisation succeeded, failure or not.
        event = Event(image.id, name, EventType.UNTAG)
        if name not in image.names:
            self.events.append(event)
            return Failure(ErrorKind.TAG_NOT_KNOWN, reference, f"{name}: tag not known", "RM-T3")
        kept = untagged_names(image.names, name)
        position = self.state.live_rw_position(image.id)
        if position is not None:
            self.effects.append(
                Untag(
                    image.id,
                    name,
                    "RM-U5",
                    f"requested as {reference}; the image has other names, so only this "
                    "one is removed",
                )
            )
            self.state.set_names(position, kept)
            image.names = kept  # the seed reloads the image after SetNames
        # Otherwise the record is gone (deleted earlier in this call): storage answers
        # "layer not known", which removal ignores (RM-E1), and the image keeps the
        # names it had loaded.
        self.events.append(event)
        return None

    # -- 5.4: removeContainers

    def remove_containers(self, image: _ImageObject, subject: str) -> Failure | None:
        """``removeContainers`` (RM-C1..C6, decision 19)."""
        options = self.options
        if not options.force and not options.external_containers:
            return None  # RM-C1
        hook = options.force and options.container_hook
        if hook:
            self.effects.append(
                RunContainerHook(
                    image.id,
                    "RM-C2",
                    "force with a container-removal hook: the caller removes its containers",
                )
            )
        users = self.state.live_containers_of(image.id)  # RM-C3, after the hook
        if not options.force:
            check = options.is_external_container
            if check is None:  # pragma: no cover - refused at the start (RM-2)
                return None
            for _, container in users:
                try:
                    external = check(container.id)
                except LibimageError as error:
                    return Failure(
                        ErrorKind.EXTERNAL_CALLBACK,
                        container.id,
                        f"checking if {container.id} is an external container: "
                        f"{error.failure.message}",
                        "RM-C4",
                    )
                if not external:
                    return Failure(
                        ErrorKind.NOT_EXTERNAL_CONTAINER,
                        container.id,
                        f"cannot remove container {container.id}: not an external container",
                        "RM-C4",
                    )
        refused: list[str] = []
        for position, container in users:
            if options.force and not hook and container.podman_managed:
                refused.append(container.id)  # decision 19: a ghost in podman's database
                continue
            if options.force:
                rule, why = "RM-C5", f"force: the container uses image {image.id[:12]}"
            else:
                rule, why = "RM-C4", f"an external container using image {image.id[:12]}"
            self.effects.append(RemoveContainer(container.id, image.id, rule, why))
            self.state.remove_container(position)
        if refused:
            return _podman_containers(refused, image.id, subject)
        return None

    # -- RM-D5, SF-D-*

    def delete_image(self, image: _ImageObject, subject: str, why: str) -> Failure | None:
        """``store.DeleteImage(id, true)``: the refusal, or the effects (RM-D5, SF-D-1..8)."""
        position = self.state.live_rw_position(image.id)
        if position is None:
            return None  # RM-E1: not an image (any more) in the read-write store
        users = self.state.live_containers_of(image.id)
        if users:
            return self._in_use(users[-1][1].id, subject)  # SF-D-3: the last container
        record = self.snapshot.images[position]
        for name in self.state.names_of(position):
            self.effects.append(
                Untag(image.id, name, "RM-D6", f"dropped with the record of image {image.id[:12]}")
            )
        self.effects.append(DeleteImage(image.id, "RM-D5", why))
        self.state.delete_image(position)
        for layer_id in layers_freed_by_deleting(self.state, record):
            mapped = layer_id in record.mapped_layers
            self.effects.append(
                DeleteLayer(
                    LayerID(layer_id),
                    "SF-D-7" if mapped else "SF-D-6",
                    f"{'a mapped layer' if mapped else 'no longer used'} after deleting image "
                    f"{image.id[:12]}",
                )
            )
            self.state.delete_layer(layer_id)
        return None

    def _in_use(self, container_id: str, subject: str) -> Failure:
        # compat (RM-D5): storage 1.43 writes "image used by", libimage 0.50 adds a hint.
        lead = "image" if self.semantics.in_use_message_lowercase else "Image"
        message = f"{lead} used by {container_id}: image is in use by a container"
        if self.semantics.in_use_message_has_hint:
            message += ": consider listing external containers and force-removing image"
        return Failure(ErrorKind.IMAGE_IN_USE, subject, message, "RM-D5")

    # -- LT-C*, LT-P*, IP-5 on the working state

    def has_children(self, image: _ImageObject, *, exact: bool = True) -> bool | Failure:
        """``HasChildren`` on the store as it is now (LT-C1..C4), failures as values.

        With ``exact=False`` the caller counts a failure as "no children" (RM-D3), so
        an image without candidates is answered without reading its config.
        """
        record = image.record
        state = self.state
        if not record.top_layer and state.is_list(image.id):
            return False  # LT-C1
        key = (image.id, record.top_layer)
        scan = state.scans.get(key)
        if scan is None and not exact and not self._child_candidates(image):
            return False
        own = state.config(image.id)
        if isinstance(own, Failure):
            return own
        if not record.top_layer:
            if scan is None:
                scan = self._scan_empty(image.id, own)
                state.scans[key] = scan
            while scan.ordered and not state.in_tree(scan.ordered[0][0]):
                scan.ordered.popleft()
            if not scan.ordered:
                return False
            failure = scan.ordered[0][1]
            return True if failure is None else failure
        if record.top_layer not in state.tree.nodes or not state.node_alive(record.top_layer):
            self.warn(f"Layer {record.top_layer} not found in layer tree. {_RESET_HINT}")
            return False  # LT-C2
        if scan is None:
            scan = self._scan_node(image.id, record.top_layer, own)
            state.scans[key] = scan
        while scan.failures and not state.in_tree(scan.failures[0][0]):
            scan.failures.popleft()
        if scan.failures:
            return scan.failures[0][1]
        while scan.children and not state.in_tree(scan.children[0]):
            scan.children.popleft()
        return bool(scan.children)

    def _child_candidates(self, image: _ImageObject) -> bool:
        """Could a layer tree built now offer ``image`` any candidate child (LT-C1, LT-C3)?

        True when unsure (the top layer has no node: the full path gives the warning).
        """
        state = self.state
        tree = state.tree
        top = image.record.top_layer
        if not top:
            own = sum(
                1
                for p in state.positions_by_id.get(image.id, ())
                if not self.snapshot.images[p].top_layer and p not in state.deleted_images
            )
            return state.live_empty - own > 0
        node = tree.nodes.get(top)
        if node is None or not state.node_alive(top):
            return True
        nodes = [tree.nodes[c] for c in node.children if state.layer_records[c] > 0]
        return any(
            state.in_tree(p) and self.snapshot.images[p].id != image.id
            for candidate_node in (*nodes, node)
            for p in candidate_node.images
        )

    def _scan_empty(self, image_id: str, own: ImageConfig) -> _ChildScan:
        scan = _ChildScan()
        for position in self.state.tree.empty_images:
            candidate = self.snapshot.images[position]
            if candidate.id == image_id or not self.state.in_tree(position):
                continue
            config = self.state.config(candidate.id)
            if isinstance(config, Failure):
                scan.ordered.append((position, config))
            elif are_parent_and_child(own, config):
                scan.ordered.append((position, None))
        return scan

    def _scan_node(self, image_id: str, top_layer: str, own: ImageConfig) -> _ChildScan:
        state = self.state
        tree = state.tree
        node = tree.nodes[top_layer]
        candidates = [
            position
            for child in node.children
            if state.layer_records[child] > 0
            for position in tree.nodes[child].images
        ]
        candidates.extend(node.images)  # LT-C3: the same top layer comes last
        scan = _ChildScan()
        for position in candidates:
            candidate = self.snapshot.images[position]
            if candidate.id == image_id or not state.in_tree(position):
                continue
            config = state.config(candidate.id)
            if isinstance(config, Failure):
                scan.failures.append((position, config))
            elif are_parent_and_child(own, config):
                scan.children.append(position)
        return scan

    def parent(self, image: _ImageObject) -> _ImageObject | Failure | None:
        """``Parent`` on the store as it is now (LT-P1..P3), failures as values."""
        record = image.record
        state = self.state
        if not record.top_layer and state.is_list(image.id):
            return None  # LT-P1
        tree = state.tree
        node = tree.nodes.get(record.top_layer) if record.top_layer else None
        candidates: Sequence[int] = tree.empty_images
        if node is not None and state.node_alive(record.top_layer):
            candidates = list(node.images)
            if node.parent is not None and state.node_alive(node.parent):
                candidates.extend(tree.nodes[node.parent].images)
            if not any(
                state.in_tree(p) and self.snapshot.images[p].id != image.id for p in candidates
            ):
                # No candidate: "no parent", as a config failure would be for the caller
                # (RM-D4), so the config need not be read.
                return None
        own = state.config(image.id)
        if isinstance(own, Failure):
            return own
        if record.top_layer and (node is None or not state.node_alive(record.top_layer)):
            self.warn(f"Layer {record.top_layer} not found in layer tree. {_RESET_HINT}")
            return None  # LT-P2
        for position in candidates:
            candidate = self.snapshot.images[position]
            if candidate.id == image.id or not state.in_tree(position):
                continue
            config = state.config(candidate.id)
            if isinstance(config, Failure):
                return config
            if are_parent_and_child(config, own):
                return _ImageObject(candidate, state.names_of(position))
        return None

    def is_dangling(self, image: _ImageObject) -> bool | Failure:
        """``IsDangling`` (IP-5): no names (as loaded) and no children now."""
        if image.names:
            return False
        found = self.has_children(image)
        return found if isinstance(found, Failure) else not found

    # -- decision 10

    def quarantine_refusal(self) -> Failure | None:
        """The first quarantined record the effects would touch, as the refusal (decision 10)."""
        quarantine = self.snapshot.quarantine
        if not quarantine:
            return None
        layer_users: dict[str, QuarantinedRecord] = {}
        children_of: dict[str, QuarantinedRecord] = {}
        bad_layers: dict[str, QuarantinedRecord] = {}
        image_users: dict[str, QuarantinedRecord] = {}
        for record in quarantine:
            if record.kind == "layer":
                bad_layers.setdefault(record.id, record)
                if record.parent:
                    children_of.setdefault(record.parent, record)
            for layer_id in (record.layer, *record.mapped_layers):
                if layer_id:
                    layer_users.setdefault(layer_id, record)
            if record.kind == "container" and record.image_id:
                image_users.setdefault(record.image_id, record)

        def touching_layer(layer_id: str) -> QuarantinedRecord | None:
            parent = self.state.rw_layers.get(layer_id, [Layer(LayerID(""))])[0].parent
            return (
                children_of.get(layer_id)
                or layer_users.get(layer_id)
                or bad_layers.get(layer_id)
                or (bad_layers.get(parent) if parent else None)
            )

        containers = {container.id: container for container in self.snapshot.containers}
        for effect in self.effects:
            touched: QuarantinedRecord | None = None
            if isinstance(effect, DeleteLayer):
                touched = touching_layer(effect.layer)
            elif isinstance(effect, DeleteImage):
                touched = image_users.get(effect.image)
            elif isinstance(effect, RemoveContainer):
                container = containers.get(effect.container)
                if container is not None and container.layer:
                    touched = touching_layer(container.layer)
            if touched is not None:
                return Failure(
                    ErrorKind.INVALID_RECORD_ID,
                    touched.id,
                    f"{touched.file}: refusing to remove: the {touched.kind} record with "
                    f"invalid ID {go_quote(touched.id)} would be touched (decision 10)",
                    "decision 10",
                )
        return None

    def plan(self, lookup_errors: Sequence[Failure], warnings: Sequence[str]) -> RemovalPlan:
        for warning in warnings:
            self.warn(warning)
        refusal = self.quarantine_refusal()
        if refusal is not None:
            return RemovalPlan(errors=pvector([refusal]), warnings=pvector(self.warnings))
        reports = [
            RemoveImageReport(
                image_id,
                pvector(self.reports[image_id].untagged),
                self.reports[image_id].removed,
                self.reports[image_id].size,
            )
            for image_id in self.ordered
            if image_id in self.reports
        ]
        return RemovalPlan(
            effects=pvector(self.effects),
            reports=pvector(reports),
            events=pvector(self.events),
            errors=pvector([*lookup_errors, *self.errors]),
            warnings=pvector(self.warnings),
        )


def _podman_containers(container_ids: Sequence[str], image_id: str, subject: str) -> Failure:
    """Decision 19: containers podman's database knows are not removed from storage alone."""
    listed = " ".join(container_ids)
    if len(container_ids) == 1:
        text = f"cannot remove container {listed}: it is a podman container"
    else:
        text = f"cannot remove containers {listed}: they are podman containers"
    return Failure(
        ErrorKind.PODMAN_CONTAINER,
        subject,
        f'{text} using image {image_id}; run "podman rm {listed}" first',
        "decision 19",
    )


# ---------------------------------------------------------------------------
# RemoveImages


def plan_removal(
    snapshot: Snapshot, names: Sequence[str], options: RemoveOptions, context: Context
) -> RemovalPlan:
    """Plan ``RemoveImages(names, options)`` on ``snapshot`` (RM-1..RM-8, RM-R*, EV-*).

    See the module docstring for the procedure. The plan's effects are in the order
    the seed would carry them out, each with its rule and why; its reports are the
    seed's ``RemoveImageReport`` values in processing order (RM-7); its events the
    seed's Remove and Untag events (EV-2..EV-4); its errors the lookup errors in name
    order, then the removal errors in processing order (RM-8).

    With ``names`` empty, the images listed for ``options.filters`` are removed
    whatever their names (RM-4); a listing error is the only error, and nothing is
    removed. ``external_containers`` without ``is_external_container`` is refused at
    once (RM-2).
    """
    if options.external_containers and options.is_external_container is None:
        return RemovalPlan(
            errors=pvector(
                [
                    Failure(
                        ErrorKind.EXTERNAL_CALLBACK,
                        "",
                        "libimage error: cannot remove external containers without callback",
                        "RM-2",
                    )
                ]
            )
        )
    if names:
        bundling = bundle_requests(snapshot, names, options, context)
        bundles, lookup_errors, warnings = bundling.bundles, bundling.errors, bundling.warnings
    else:
        listed = _listed_for_removal(snapshot, options, context)
        if isinstance(listed, Failure):
            return RemovalPlan(errors=pvector([listed]))  # RM-4, RM-E3
        bundles, lookup_errors = bundles_for_listing(listed[0]), pvector()
        warnings = pvector(listed[1])
    if not bundles:
        return RemovalPlan(errors=lookup_errors, warnings=warnings)  # RM-5
    planner = _Planner(snapshot, options, context, listed=not names)
    planner.run(bundles)
    return planner.plan(lookup_errors, warnings)


def _listed_for_removal(
    snapshot: Snapshot, options: RemoveOptions, context: Context
) -> tuple[Sequence[StoredImage], Sequence[str]] | Failure:
    """``ListImages(nil, {Filters, IsExternalContainerFunc})`` for RM-4, and its warnings.

    Without filters the listing is every image in store order, unchanged (LS-3,
    LS-4); quarantined records are not images of the snapshot (decision 10).
    """
    if not options.filters:
        return tuple(snapshot.images), ()
    from libimage.pure.listing import list_images

    result = list_images(
        snapshot, (), tuple(options.filters), context, options.is_external_container
    )
    if result.failure is not None:
        return result.failure
    logged = [*(error.message for error in result.errors), *result.warnings]
    return tuple(result.images), tuple(logged)
