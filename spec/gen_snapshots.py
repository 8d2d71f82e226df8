"""Hypothesis strategies for snapshots, shared by the tests and the oracle.

Pools are tiny on purpose so that collisions happen: about five images, names
from a pool of four sharing repositories and tags, IDs that share their first hex
digits, layers shared between images (LT-5), parent/child chains made the way
``buildah commit`` makes them (LT-3, LT-4), dangling and intermediate images,
containers, and now and then a manifest list, a read-only image (with or without
a read-write copy of the same ID, LS-3), a corrupted image or a layer loop.

Every feature can be switched off, so a property can ask for exactly the stores it
is about. This module imports hypothesis; nothing in ``pure/`` or ``adapters/``
imports it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from hypothesis import strategies as st
from pyrsistent import pmap, pvector

from libimage.pure.context import Platform
from libimage.pure.snapshot import ImageID, Layer, LayerID, Snapshot, StoredImage
from libimage.spec.builders import (
    DOCKER,
    OCI,
    BuiltContainer,
    BuiltImage,
    child_of,
    container,
    hex_id,
    image,
    layer_chain,
    manifest_list,
    missing_config,
    missing_manifest,
    snapshot,
    with_record,
)

if TYPE_CHECKING:
    # Imported for mypy only: typeguard cannot check hypothesis's DrawFn protocol
    # against the drawing method it is given, and skips names imported this way.
    from hypothesis.strategies import DrawFn

NAMES = (
    "localhost/foo:latest",
    "localhost/foo:v2",
    "quay.io/x/foo:latest",
    "localhost/bar:1",
)
"""The name pool: two tags of one repository, one tag in two registries."""

ID_PREFIXES = ("0", "0a", "0ab", "a")
"""Prefixes forced onto some IDs, so that short prefixes are ambiguous (ST-2)."""

LAYER_SEEDS = ("base", "alpine", "extra")
"""Layer seeds: chains are paths over these, so equal paths are the same layers."""

PLATFORMS = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("linux", "arm", "v7"),
)

T = TypeVar("T")

CORRUPTIONS = ("manifest", "config", "metadata", "unmeasured", "missing-top")
"""Ways an image can be damaged: a missing item, bad metadata JSON, a layer
without a known size (EX-1), a top layer that is not stored (LT-1)."""


# Strategies are built once: building them inside every draw dominates the run time.
_BOOLEANS = st.booleans()
_PATHS = st.lists(st.sampled_from(LAYER_SEEDS), min_size=1, max_size=2)
_PLATFORM = st.sampled_from(PLATFORMS)
_MAYBE_PLATFORM = st.none() | _PLATFORM
_LABELS = st.none() | st.dictionaries(st.sampled_from("ab"), st.just("1"))
_MEDIA_TYPES = st.sampled_from((OCI, DOCKER))
_CORRUPTION = st.sampled_from(CORRUPTIONS)
_PREFIX = st.sampled_from(ID_PREFIXES)


@cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@cache
def _name_lists(names: tuple[str, ...], most: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(names), max_size=most, unique=True)


@cache
def _permutations(size: int) -> st.SearchStrategy[list[int]]:
    return st.permutations(range(size))


def _rarely(draw: DrawFn, one_in: int) -> bool:
    # Hypothesis favours small integers, so the rare case is the largest one.
    return draw(_integers(1, one_in)) == one_in


def _pick(draw: DrawFn, options: list[T]) -> T:
    return options[draw(_integers(0, len(options) - 1))]


def _chain(path: tuple[str, ...], store_index: int) -> tuple[Layer, ...]:
    # Layer IDs follow the path from the base, so equal prefixes are shared layers.
    seeds = [path[: depth + 1] for depth in range(len(path))]
    return layer_chain(*seeds, read_only=store_index > 0, store_index=store_index)


def _corrupt(draw: DrawFn, built: BuiltImage, index: int) -> BuiltImage:
    kind = draw(_CORRUPTION)
    if kind == "manifest":
        return missing_manifest(built)
    if kind == "config" and built.config_key:
        return missing_config(built)
    if kind == "metadata":
        return with_record(built, metadata='{"signatures-sizes": ')
    if kind == "unmeasured" and built.layers:
        top = replace(built.layers[-1], diff_digest="", diff_size=None)
        return replace(built, layers=(*built.layers[:-1], top))
    if kind == "missing-top":
        return with_record(built, top_layer=hex_id("missing-layer", index))
    return built


def _record(item: BuiltImage | StoredImage) -> StoredImage:
    return item.record if isinstance(item, BuiltImage) else item


def _unique_names(items: list[BuiltImage | StoredImage]) -> list[BuiltImage | StoredImage]:
    """SF-I-22 on load: when two records of one store claim a name, the later keeps it."""
    owner: dict[tuple[int, str], int] = {}
    for position, item in enumerate(items):
        record = _record(item)
        for name in record.names:
            owner[(record.store_index, name)] = position
    fixed: list[BuiltImage | StoredImage] = []
    for position, item in enumerate(items):
        record = _record(item)
        kept = [name for name in record.names if owner[(record.store_index, name)] == position]
        if len(kept) == len(record.names):
            fixed.append(item)
        elif isinstance(item, BuiltImage):
            fixed.append(replace(item, record=replace(record, names=pvector(kept))))
        else:
            fixed.append(replace(record, names=pvector(kept)))
    return fixed


@st.composite
def snapshots(
    draw: DrawFn,
    *,
    max_images: int = 5,
    names: tuple[str, ...] = NAMES,
    children: bool = True,
    empty_images: bool = True,
    containers: bool = True,
    manifest_lists: bool = True,
    read_only: bool = True,
    corrupted: bool = True,
    colliding_ids: bool = True,
    duplicate_ids: bool = True,
    duplicate_names: bool = False,
    layer_loops: bool = False,
    shuffle: bool = True,
) -> Snapshot:
    """Small, realistic snapshots (see the module docstring); features switch off by flag.

    ``duplicate_names`` keeps a name on several records of one store (a store
    podman would repair on load, SF-I-22); by default the later record keeps it.
    ``layer_loops`` adds layers whose parent chain is a cycle, some with an image on
    them: a damaged store the pure code must survive.
    """
    built: list[BuiltImage] = []
    count = draw(_integers(0, max_images))
    for index in range(count):
        singles = [b for b in built if b.record.top_layer or b.diff_ids or b.history]
        kinds = ["base", "base", "base"]
        if empty_images:
            kinds.append("empty")
        if children and singles:
            kinds += ["child", "child", "child"]
        kind = _pick(draw, kinds)
        if manifest_lists and singles and _rarely(draw, 10):
            kind = "list"
        seed = ("image", index)
        image_names = draw(_name_lists(names, 2))
        image_id = None
        if colliding_ids and draw(_BOOLEANS):
            prefix = draw(_PREFIX)
            image_id = prefix + hex_id("id", index)[len(prefix) :]
        store = 1 if read_only and _rarely(draw, 5) else 0
        if kind == "base":
            path = tuple(draw(_PATHS))
            platform = draw(_PLATFORM)
            made = image(
                seed,
                image_names,
                layers=_chain(path, store),
                labels=draw(_LABELS),
                media_type=draw(_MEDIA_TYPES),
                os=platform.os,
                arch=platform.architecture,
                variant=platform.variant,
                image_id=image_id,
                read_only=store > 0,
                store_index=store,
            )
        elif kind == "empty":
            made = image(
                seed, image_names, image_id=image_id, read_only=store > 0, store_index=store
            )
            if built and children and draw(_BOOLEANS):
                # An empty image built on another empty image (LT-C1, LT-P1).
                empties = [b for b in built if not b.layers and b.config_key]
                if empties:
                    made = child_of(_pick(draw, empties), seed, image_names, new_layer=False)
        elif kind == "child":
            base = _pick(draw, singles)
            made = child_of(
                base,
                seed,
                image_names,
                new_layer=draw(_BOOLEANS),
                image_id=image_id,
            )
            if _rarely(draw, 4):
                # Two build steps: only the grandchild is stored (not a child under LT-3).
                made = child_of(made, ("step", index), image_names, image_id=image_id)
        else:
            entries = [
                (_pick(draw, singles), draw(_MAYBE_PLATFORM)) for _ in range(draw(_integers(0, 3)))
            ]
            made = manifest_list(
                seed,
                image_names,
                entries=entries,
                kind=draw(_MEDIA_TYPES),
                image_id=image_id,
                read_only=store > 0,
                store_index=store,
            )
        if corrupted and _rarely(draw, 12):
            made = _corrupt(draw, made, index)
        built.append(made)

    items: list[BuiltImage | StoredImage] = list(built)
    if duplicate_ids and read_only:
        for made in built:
            if made.record.read_only and _rarely(draw, 3):
                # SF-N-6: tagging a read-only image made a read-write copy of its record.
                items.append(
                    replace(
                        made.record,
                        read_only=False,
                        store_index=0,
                        names=made.record.names[1:],
                        names_history=pvector(),
                        big_data_names=pvector(),
                        big_data_sizes=pmap(),
                        big_data_digests=pmap(),
                    )
                )
    if shuffle:
        items = [items[i] for i in draw(_permutations(len(items)))]

    extra_layers: list[Layer] = []
    if layer_loops:
        loop_a, loop_b = LayerID(hex_id("loop", "a")), LayerID(hex_id("loop", "b"))
        selfish = LayerID(hex_id("loop", "self"))
        extra_layers = [
            Layer(id=loop_a, parent=loop_b, diff_digest="sha256:" + "a" * 64, diff_size=1),
            Layer(id=loop_b, parent=loop_a, diff_digest="sha256:" + "b" * 64, diff_size=1),
            Layer(id=selfish, parent=selfish, diff_digest="sha256:" + "c" * 64, diff_size=1),
        ]
        for number, top in enumerate(
            _pick(draw, [loop_a, loop_b, selfish]) for _ in range(draw(_integers(0, 3)))
        ):
            on_loop = image(("on-loop", number), names=draw(_name_lists(names, 1)))
            items.append(with_record(on_loop, top_layer=top))

    if not duplicate_names:
        items = _unique_names(items)

    users: list[BuiltContainer] = []
    if containers and items:
        for number in range(draw(_integers(0, 2))):
            used = _pick(draw, items)
            users.append(container(("container", number), used, podman_managed=draw(_BOOLEANS)))
    return snapshot(items, extra_layers, users)


def image_ids(snap: Snapshot) -> list[ImageID]:
    """The distinct image IDs of ``snap`` in store order (for sampling in tests)."""
    seen: list[ImageID] = []
    for record in snap.images:
        if record.id not in seen:
            seen.append(record.id)
    return seen
