"""Storage primitives as pure functions: names, name history and the layer walk.

containers-storage decides a few things inside its write methods: which names an
image keeps and how ``names-history`` moves when names are set (SF-N-3..SF-N-5), and
which layers an image deletion frees (SF-D-6, SF-D-7). Those decisions live here, so
that the removal planner (:mod:`libimage.pure.remove`), the in-memory interpreter
(:mod:`libimage.pure.interpret`) and the disk adapter all take them from one place
and the adapter only carries them out.

The layer walk asks its questions through :class:`LayerUsage`: the planner answers
them from its working state (which changes as it plans), :func:`layer_usage` from
one snapshot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from pyrsistent import pvector

from libimage.pure.snapshot import LayerID, Snapshot, StoredImage

Key = TypeVar("Key")


def dedupe_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names without repeats, first occurrence kept (``dedupeNames``, SF-N-2).

    >>> dedupe_names(["a", "b", "a"])
    ('a', 'b')
    """
    return tuple(dict.fromkeys(names))


def names_after_set(
    names: Sequence[str], history: Sequence[str], new_names: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``SetNames`` on one record: its new ``names`` and ``names-history`` (SF-N-3).

    The new list is deduplicated (first occurrence kept). Then each of its names, in
    order, is prepended to the history, which is deduplicated again; so every name
    of the new list moves to the front of the history, the last one first. Names
    that were dropped stay in the history (IP-3). ``names`` (the old list) takes no
    part: storage overwrites it. Stealing from other images is
    :func:`names_stolen_by`.

    SF-N-4's observed sequence, untagging ``foo:v2``:

    >>> names_after_set(["foo:latest", "foo:v2", "quay", "bar"],
    ...                 ["bar", "quay", "foo:v2", "foo:latest"],
    ...                 ["foo:latest", "quay", "bar"])
    (('foo:latest', 'quay', 'bar'), ('bar', 'quay', 'foo:latest', 'foo:v2'))
    """
    del names  # SetNames replaces the list; the argument documents the call site
    wanted = dedupe_names(new_names)
    moved = list(history)
    for name in wanted:
        moved = [name, *(old for old in moved if old != name)]
    return wanted, tuple(moved)


def untagged_names(names: Sequence[str], name: str) -> tuple[str, ...]:
    """The names an image keeps when ``name`` is untagged, order kept (RM-T3, SF-N-5).

    >>> untagged_names(["localhost/a:1", "localhost/a:2"], "localhost/a:1")
    ('localhost/a:2',)
    """
    return tuple(kept for kept in names if kept != name)


def tagged_names(names: Sequence[str], name: str) -> tuple[str, ...]:
    """The names an image asks for when ``name`` is tagged: appended (SF-N-5)."""
    return (*names, name)


def names_stolen_by(
    new_names: Sequence[str], holders: Iterable[tuple[Key, Sequence[str]]]
) -> dict[Key, tuple[str, ...]]:
    """Names the other images of the store lose when one image gets ``new_names`` (SF-N-3).

    ``holders`` are the *other* read-write images with their names. Each one that
    holds a name of ``new_names`` loses it, silently (SF-N-5); its history is left
    alone. Returns the new names of the images that changed.

    >>> names_stolen_by(["x", "y"], [("b", ["y", "z"]), ("c", ["q"])])
    {'b': ('z',)}
    """
    wanted = set(new_names)
    changed: dict[Key, tuple[str, ...]] = {}
    for image_id, held in holders:
        kept = tuple(name for name in held if name not in wanted)
        if len(kept) != len(held):
            changed[image_id] = kept
    return changed


def set_names(snapshot: Snapshot, image_id: str, new_names: Sequence[str]) -> Snapshot:
    """The store after ``SetNames(image_id, new_names)`` on its read-write record (SF-N-3).

    The record gets the deduplicated names and the moved history
    (:func:`names_after_set`); every other read-write record loses the names it held
    of the new list (:func:`names_stolen_by`). Without a read-write record of that
    ID nothing changes (the seed's call would fail; removal ignores it, RM-E1).
    """
    images = snapshot.images
    target = next(
        (p for p, image in enumerate(images) if image.id == image_id and image.store_index == 0),
        None,
    )
    if target is None:
        return snapshot
    record = images[target]
    names, history = names_after_set(record.names, record.names_history, new_names)
    others = (
        (position, image.names)
        for position, image in enumerate(images)
        if position != target and image.store_index == 0 and image.names
    )
    evolver = images.evolver()
    for position, kept in names_stolen_by(names, others).items():
        evolver[position] = replace(images[position], names=pvector(kept))
    evolver[target] = replace(record, names=pvector(names), names_history=pvector(history))
    return replace(snapshot, images=evolver.persistent())


# ---------------------------------------------------------------------------
# SF-D-6, SF-D-7: the layers an image deletion frees


class LayerUsage(Protocol):
    """What the layer walk asks about the store at the moment of one deletion (SF-D-6).

    Every question is about the read-write stores, as containers-storage asks them:
    the read-write layer store, the read-write image store, the container store.
    """

    def layer_parent(self, layer_id: str) -> str | None:
        """The parent of the read-write layer ``layer_id`` ("" for a base layer);
        None when the read-write layer store has no such layer."""
        ...

    def child_count(self, layer_id: str) -> int:
        """How many read-write layers have ``layer_id`` as their parent."""
        ...

    def used_by_container(self, layer_id: str) -> bool:
        """True if a container's ID, name or read-write layer is ``layer_id``."""
        ...

    def used_by_other_image(self, layer_id: str, image_id: str) -> bool:
        """True if a read-write image other than ``image_id`` has ``layer_id`` as its
        top layer or one of its mapped layers."""
        ...


def layers_freed_by_deleting(usage: LayerUsage, image: StoredImage) -> tuple[LayerID, ...]:
    """The layers deleted with ``image``, in deletion order (SF-D-6, SF-D-7).

    The image's mapped layers come first: storage 1.43 (podman 4.3.1) schedules them
    always, even when the walk stops at the top layer; the seed's storage scheduled
    them only together with the top layer. This module follows 1.43 in every profile
    (a mapped layer is a private copy of the top layer made for one image's user
    namespace, so nothing else can be using it).

    Then the walk from the top layer down: it stops at an empty ID, at a layer a
    container uses (ID, name or read-write layer), at another read-write image's top
    or mapped layer, and at a layer with a read-write child that is not itself
    scheduled (for the top layer, children of the mapped layers count too);
    otherwise the layer is scheduled and the walk goes on with its parent.

    Deletion stops at the first scheduled layer the read-write layer store does not
    have (storage's ``Delete`` fails there and the rest stay, SF-D-7; removal ignores
    that error, RM-E1), so the result ends before it. A layer already scheduled ends
    the walk: it can only be a mapped layer that is also the top layer, whose second
    deletion would fail in storage and abort the rest. (Parents that form a loop stop
    the walk by themselves: each layer of the loop has a child that is not scheduled.)
    """
    scheduled: list[str] = list(image.mapped_layers)
    seen = set(scheduled)
    scheduled_children: Counter[str] = Counter()
    for mapped in image.mapped_layers:
        mapped_parent = usage.layer_parent(mapped)
        if mapped_parent:
            scheduled_children[mapped_parent] += 1
    layer = image.top_layer
    while layer and layer not in seen:
        if usage.used_by_container(layer) or usage.used_by_other_image(layer, image.id):
            break
        parent = usage.layer_parent(layer)
        checked = [layer, *image.mapped_layers] if layer == image.top_layer else [layer]
        if any(usage.child_count(c) > scheduled_children[c] for c in checked):
            break
        scheduled.append(layer)
        seen.add(layer)
        if parent:
            scheduled_children[parent] += 1
        layer = parent or ""
    freed: list[LayerID] = []
    for layer_id in scheduled:
        if usage.layer_parent(layer_id) is None:
            break
        freed.append(LayerID(layer_id))
    return tuple(freed)


@dataclass(frozen=True, slots=True)
class SnapshotLayerUsage:
    """:class:`LayerUsage` of one snapshot, its tables built once (:func:`layer_usage`)."""

    parents: Mapping[str, str]  # read-write layer ID -> parent ("" for base layers)
    children: Mapping[str, int]  # layer ID -> number of read-write layers on it
    container_keys: frozenset[str]  # container IDs, names and read-write layers
    image_layers: Mapping[str, Mapping[str, int]]  # layer -> read-write image ID -> uses

    def layer_parent(self, layer_id: str) -> str | None:
        return self.parents.get(layer_id)

    def child_count(self, layer_id: str) -> int:
        return self.children.get(layer_id, 0)

    def used_by_container(self, layer_id: str) -> bool:
        return layer_id in self.container_keys

    def used_by_other_image(self, layer_id: str, image_id: str) -> bool:
        return any(user != image_id for user in self.image_layers.get(layer_id, {}))


def layer_usage(snapshot: Snapshot) -> SnapshotLayerUsage:
    """The :class:`LayerUsage` of ``snapshot``'s read-write stores (SF-D-4)."""
    parents: dict[str, str] = {}
    children: Counter[str] = Counter()
    for layer in snapshot.layers:
        if layer.store_index == 0 and layer.id not in parents:
            parents[layer.id] = layer.parent
            children[layer.parent] += 1
    keys: set[str] = set()
    for container in snapshot.containers:
        keys.add(container.id)
        keys.update(container.names)
        if container.layer:
            keys.add(container.layer)
    image_layers: dict[str, Counter[str]] = {}
    for image in snapshot.images:
        if image.store_index == 0:
            for layer_id in (image.top_layer, *image.mapped_layers):
                image_layers.setdefault(layer_id, Counter())[image.id] += 1
    return SnapshotLayerUsage(
        parents=parents,
        children=dict(children),
        container_keys=frozenset(keys),
        image_layers=image_layers,
    )
