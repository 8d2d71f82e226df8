"""The in-memory interpreter: what applying a removal plan does to the store.

:func:`interpret_one` applies one effect to a snapshot and :func:`interpret` applies
a whole plan; ``interpret(s, plan)`` equals the fold of ``interpret_one`` over
``plan.effects`` (it only avoids rebuilding the snapshot per effect). The disk
adapter is tested against this model: after applying a plan to a real store and
re-reading it, the store must equal ``interpret(snapshot, plan)``.

Each effect is the one storage call it names, on the read-write stores:

* :class:`~libimage.pure.plan.Untag` is ``SetNames`` without the name (SF-N-3,
  SF-N-5): the record keeps its other names, its history moves
  (:func:`~libimage.pure.storeops.names_after_set`);
* :class:`~libimage.pure.plan.RemoveContainer` deletes the container record and its
  read-write layer (SF-D-C);
* :class:`~libimage.pure.plan.DeleteImage` deletes the image record (SF-D-5); its
  layers go through their own :class:`~libimage.pure.plan.DeleteLayer` effects;
* :class:`~libimage.pure.plan.DeleteLayer` deletes the layer record (SF-D-11);
* :class:`~libimage.pure.plan.RunContainerHook` is the caller's code: the model
  cannot know what it does, so it changes nothing here (the plan still lists a
  ``RemoveContainer`` for every storage container of the image, RM-C2).

Every effect is idempotent: one that already happened (a name already gone, a
record already deleted) changes nothing. That is what lets an interrupted apply be
completed by applying the same plan again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    Effect,
    RemovalPlan,
    RemoveContainer,
    RunContainerHook,
    Untag,
)
from libimage.pure.snapshot import Snapshot
from libimage.pure.storeops import names_after_set, names_stolen_by, untagged_names

T = TypeVar("T")


class _Store:
    """A mutable working copy of a snapshot's read-write records, for one interpretation."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.names: dict[int, tuple[str, ...]] = {}
        self.history: dict[int, tuple[str, ...]] = {}
        self.deleted_images: set[int] = set()
        self.deleted_layers: set[int] = set()
        self.removed_containers: set[int] = set()
        self._holders: dict[str, list[int]] | None = None
        self._layers: dict[str, list[int]] | None = None
        self._images: dict[str, list[int]] | None = None

    def _rw_images(self, image_id: str) -> list[int]:
        if self._images is None:
            images: dict[str, list[int]] = {}
            for position, image in enumerate(self.snapshot.images):
                if image.store_index == 0:
                    # A read-write store lists an ID once; a damaged one may repeat it.
                    images.setdefault(image.id, []).append(position)
            self._images = images
        return [p for p in self._images.get(image_id, ()) if p not in self.deleted_images]

    def names_of(self, position: int) -> tuple[str, ...]:
        found = self.names.get(position)
        return tuple(self.snapshot.images[position].names) if found is None else found

    def _holders_of(self, name: str) -> list[int]:
        if self._holders is None:
            holders: dict[str, list[int]] = {}
            for position, image in enumerate(self.snapshot.images):
                if image.store_index == 0:
                    for held in image.names:
                        holders.setdefault(held, []).append(position)
            self._holders = holders
        return self._holders.get(name, [])

    def untag(self, image_id: str, name: str) -> None:
        positions = self._rw_images(image_id)
        if not positions:
            return
        target = positions[0]
        current = self.names_of(target)
        if name not in current:
            return
        record = self.snapshot.images[target]
        history = self.history.get(target, tuple(record.names_history))
        names, moved = names_after_set(current, history, untagged_names(current, name))
        # SF-N-3: another read-write image holding one of the kept names loses it
        # (only in a store whose names were not unique, SF-N-1).
        others = {
            p: self.names_of(p)
            for kept in names
            for p in self._holders_of(kept)
            if p != target and p not in self.deleted_images
        }
        for position, kept_names in names_stolen_by(names, others.items()).items():
            self.names[position] = kept_names
        self.names[target] = names
        self.history[target] = moved

    def delete_image(self, image_id: str) -> None:
        self.deleted_images.update(self._rw_images(image_id))

    def delete_layer(self, layer_id: str) -> None:
        if self._layers is None:
            layers: dict[str, list[int]] = {}
            for position, layer in enumerate(self.snapshot.layers):
                if layer.store_index == 0:
                    layers.setdefault(layer.id, []).append(position)
            self._layers = layers
        self.deleted_layers.update(self._layers.get(layer_id, ()))

    def remove_container(self, container_id: str) -> None:
        layer_id = ""
        for position, container in enumerate(self.snapshot.containers):
            if container.id == container_id and position not in self.removed_containers:
                self.removed_containers.add(position)
                layer_id = layer_id or container.layer
        if layer_id:
            self.delete_layer(layer_id)

    def apply(self, effect: Effect) -> None:
        match effect:
            case Untag(image=image_id, name=name):
                self.untag(image_id, name)
            case DeleteImage(image=image_id):
                self.delete_image(image_id)
            case DeleteLayer(layer=layer_id):
                self.delete_layer(layer_id)
            case RemoveContainer(container=container_id):
                self.remove_container(container_id)
            case RunContainerHook():
                pass  # the caller's code; the model cannot know what it removes

    def result(self) -> Snapshot:
        snap = self.snapshot
        if not (
            self.names or self.deleted_images or self.deleted_layers or self.removed_containers
        ):
            return snap
        images = []
        for position, image in enumerate(snap.images):
            if position in self.deleted_images:
                continue
            if position in self.names:
                history = self.history.get(position, tuple(image.names_history))
                images.append(
                    replace(
                        image,
                        names=pvector(self.names[position]),
                        names_history=pvector(history),
                    )
                )
            else:
                images.append(image)
        return replace(
            snap,
            images=pvector(images),
            layers=_without(snap.layers, self.deleted_layers),
            containers=_without(snap.containers, self.removed_containers),
        )


def _without(items: Iterable[T], positions: set[int]) -> PVector[T]:
    return pvector(item for position, item in enumerate(items) if position not in positions)


def interpret_one(snapshot: Snapshot, effect: Effect) -> Snapshot:
    """The store after applying one effect (see the module docstring); idempotent."""
    store = _Store(snapshot)
    store.apply(effect)
    return store.result()


def interpret(snapshot: Snapshot, plan: RemovalPlan) -> Snapshot:
    """The store after applying every effect of ``plan`` in order.

    Equal to folding :func:`interpret_one` over ``plan.effects``; the snapshot is
    rebuilt once at the end rather than once per effect.
    """
    store = _Store(snapshot)
    for effect in plan.effects:
        store.apply(effect)
    return store.result()
