"""The store snapshot: everything the pure core may read about one store at one instant.

A snapshot is a plain value. Its records are frozen dataclasses holding pyrsistent
collections; two reads of an unchanged store give equal snapshots. Indexes (by ID,
by name, by ID prefix, by digest, containers by image) are derived from the records,
built once per snapshot on first use, and take no part in equality.

Big data (manifests, configs, ``instances.json``) is content-addressed and pinned by
the ``big-data-digests`` of each record, so the snapshot reaches it through a
:class:`LazyContent` reader that the adapter fills on first access (decision 7). The
reader is not part of equality either: the digests in the records are. An unreadable
item is a value (:class:`Unreadable`), never an exception thrown through the core.

Store order (ST-4, LS-3): the read-write store's images in stored order, then each
read-only additional store's images in configured order. ``store_index`` 0 is the
read-write store; 1, 2, … are the additional stores.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NewType, Protocol

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap, PVector

ImageID = NewType("ImageID", str)  # a full 64-hex ID, never a prefix
LayerID = NewType("LayerID", str)
ContainerID = NewType("ContainerID", str)

HEX_DIGITS = frozenset("0123456789abcdef")


def is_full_id(text: str) -> bool:
    """True for exactly 64 lowercase hex characters (NORM-5, decision 10).

    >>> is_full_id("a" * 64), is_full_id("A" * 64), is_full_id("a" * 63)
    (True, False, False)
    """
    return len(text) == 64 and HEX_DIGITS.issuperset(text)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A big-data item or layer measurement that could not be had (decision 7).

    ``missing`` is True when the item does not exist (Go's ``os.ErrNotExist``), which
    is what LK-9 step 2 tolerates; other failures (permissions, I/O) are False.
    """

    what: str
    reason: str
    missing: bool = True


class LazyContent(Protocol):
    """What the adapter reads only on demand: big-data items and layer sizes."""

    def big_data(self, image: StoredImage, key: str) -> bytes | Unreadable:
        """The bytes of big-data item ``key`` of ``image``."""
        ...

    def layer_diff_size(self, layer: Layer) -> int | Unreadable:
        """The measured size of a layer whose record has no ``diff-digest`` (IP-13)."""
        ...


@dataclass(frozen=True, slots=True)
class NoContent:
    """Content of a snapshot that has no big data at all (every item is missing)."""

    def big_data(self, image: StoredImage, key: str) -> bytes | Unreadable:
        return Unreadable(f"{image.id}/{key}", "no such big data item")

    def layer_diff_size(self, layer: Layer) -> int | Unreadable:
        return Unreadable(f"layer {layer.id}", "layer size unknown")


@dataclass(frozen=True, slots=True)
class InMemoryContent:
    """Big data held in memory, keyed by ``(image ID, key)``: for tests and builders."""

    items: PMap[tuple[str, str], bytes] = field(default_factory=pmap)
    layer_sizes: PMap[str, int] = field(default_factory=pmap)

    def big_data(self, image: StoredImage, key: str) -> bytes | Unreadable:
        data = self.items.get((image.id, key))
        if data is None:
            return Unreadable(f"{image.id}/{key}", "no such big data item")
        return data

    def layer_diff_size(self, layer: Layer) -> int | Unreadable:
        size = self.layer_sizes.get(layer.id)
        if size is None:
            return Unreadable(f"layer {layer.id}", "layer size unknown")
        return size


@dataclass(frozen=True, slots=True)
class StoredImage:
    """One image record as the store holds it (SF-I), plus where it was loaded from."""

    id: ImageID
    digest: str = ""  # SF-I-2: the stored "searchable" digest, may be empty
    names: PVector[str] = field(default_factory=pvector)  # store order; podman prints it
    names_history: PVector[str] = field(default_factory=pvector)  # newest first (IP-3)
    top_layer: str = ""  # SF-I-5, IP-14: empty for images without layers
    mapped_layers: PVector[str] = field(default_factory=pvector)  # SF-I-6
    metadata: str = ""  # SF-I-7, opaque
    big_data_names: PVector[str] = field(default_factory=pvector)  # SF-I-8, insertion order
    big_data_sizes: PMap[str, int] = field(default_factory=pmap)  # SF-I-9
    big_data_digests: PMap[str, str] = field(default_factory=pmap)  # SF-I-10
    created: int = 0  # SF-I-11 as integer nanoseconds since the Unix epoch (UTC)
    read_only: bool = False  # IP-4: loaded from an additional image store
    store_index: int = 0  # 0 = read-write store; n = n-th additional store


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer record (SF-Y)."""

    id: LayerID
    parent: str = ""  # SF-Y-3: empty for base layers
    names: PVector[str] = field(default_factory=pvector)
    diff_digest: str = ""  # SF-Y-7
    diff_size: int | None = None  # SF-Y-7; only counts when diff_digest is set (IP-13)
    compressed_size: int | None = None
    incomplete: bool = False  # SF-Y-10: flags.incomplete
    big_data_names: PVector[str] = field(default_factory=pvector)  # SF-B-7
    created: int = 0
    read_only: bool = False
    store_index: int = 0


@dataclass(frozen=True, slots=True)
class Container:
    """One container record (SF-C); ``podman_managed`` is decision 19's ghost guard."""

    id: ContainerID
    image_id: str = ""  # SF-C-3: compared exactly with image IDs (IP-9)
    names: PVector[str] = field(default_factory=pvector)
    layer: str = ""  # SF-C-4: the read-write layer
    created: int = 0
    podman_managed: bool = False  # known to <root>/libpod/bolt_state.db


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record whose ID is not 64 lowercase hex (decision 10).

    Reading commands skip it (with a warning naming ``file`` and ``id``); it stays in
    the snapshot so that a removal never deletes what it references (its ``layer``,
    ``parent`` or ``image_id``) and refuses as a whole when it would touch it.
    """

    file: str  # the metadata file it came from, e.g. ".../vfs-images/images.json"
    kind: str  # "image", "layer" or "container"
    id: str  # as found (may be anything: "../x", "", ...)
    layer: str = ""  # image: top layer; container: read-write layer
    parent: str = ""  # layer: parent layer
    image_id: str = ""  # container: its image
    mapped_layers: PVector[str] = field(default_factory=pvector)


@dataclass(frozen=True, slots=True)
class SnapshotIndex:
    """Lookup tables derived from a snapshot's records, built in one pass."""

    stores: tuple[int, ...]  # store indexes in search order (SF-X-4)
    id_position: Mapping[tuple[int, str], int]  # (store, ID) -> position in images
    name_position: Mapping[tuple[int, str], int]  # (store, name) -> position
    sorted_ids: Mapping[int, tuple[str, ...]]  # store -> its IDs, sorted (prefix search)
    layer_position: Mapping[str, int]  # first layer with that ID, store order
    containers_by_image: Mapping[str, tuple[int, ...]]  # image ID -> container positions

    @staticmethod
    def build(snapshot: Snapshot) -> SnapshotIndex:
        id_position: dict[tuple[int, str], int] = {}
        name_position: dict[tuple[int, str], int] = {}
        ids_by_store: dict[int, list[str]] = {}
        for position, image in enumerate(snapshot.images):
            store = image.store_index
            ids_by_store.setdefault(store, []).append(image.id)
            id_position.setdefault((store, image.id), position)
            for name in image.names:
                # ST-2: within one store the later record keeps a shared name.
                name_position[(store, name)] = position
        layer_position: dict[str, int] = {}
        for position, layer in enumerate(snapshot.layers):
            layer_position.setdefault(layer.id, position)
        containers_by_image: dict[str, list[int]] = {}
        for position, container in enumerate(snapshot.containers):
            containers_by_image.setdefault(container.image_id, []).append(position)
        return SnapshotIndex(
            stores=tuple(sorted(ids_by_store)),
            id_position=id_position,
            name_position=name_position,
            sorted_ids={store: tuple(sorted(set(ids))) for store, ids in ids_by_store.items()},
            layer_position=layer_position,
            containers_by_image={k: tuple(v) for k, v in containers_by_image.items()},
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the core may read about one store at one instant."""

    images: PVector[StoredImage] = field(default_factory=pvector)  # store order (ST-4)
    layers: PVector[Layer] = field(default_factory=pvector)  # rw store, then ro stores
    containers: PVector[Container] = field(default_factory=pvector)  # containers.json order
    quarantine: PVector[QuarantinedRecord] = field(default_factory=pvector)  # decision 10
    content: LazyContent = field(default_factory=NoContent, compare=False, repr=False)
    _index: list[SnapshotIndex] = field(
        default_factory=list, init=False, compare=False, repr=False, hash=False
    )
    # Memo of facts parsed from big data (manifest types, configs), keyed by the
    # function that computed them; results depend only on the records and content.
    _memo: dict[Any, Any] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    @property
    def index(self) -> SnapshotIndex:
        """The derived lookup tables, built on first use (one pass over the records)."""
        if not self._index:
            self._index.append(SnapshotIndex.build(self))
        return self._index[0]

    @property
    def memo(self) -> dict[Any, Any]:
        """A cache for pure functions of this snapshot (never part of its value)."""
        return self._memo


def find_in_store(snapshot: Snapshot, text: str) -> StoredImage | None:
    """``store.Image(text)`` (ST-2, SF-X-1, SF-X-4): ID, then name, then unique ID prefix.

    Stores are searched in order and the first store that yields an image wins; an
    ambiguous prefix is "not found" in that store, exactly like no match.
    """
    if not text:
        return None
    index = snapshot.index
    for store in index.stores:
        position = index.id_position.get((store, text))
        if position is None:
            position = index.name_position.get((store, text))
        if position is None:
            image_id = unique_id_with_prefix(index.sorted_ids[store], text)
            if image_id is not None:
                position = index.id_position[(store, image_id)]
        if position is not None:
            return snapshot.images[position]
    return None


def unique_id_with_prefix(sorted_ids: Sequence[str], prefix: str) -> str | None:
    """The only ID starting with ``prefix``, or None if there are none or several (ST-2)."""
    start = bisect_left(sorted_ids, prefix)
    if start >= len(sorted_ids) or not sorted_ids[start].startswith(prefix):
        return None
    if start + 1 < len(sorted_ids) and sorted_ids[start + 1].startswith(prefix):
        return None
    return sorted_ids[start]


def image_digests(image: StoredImage) -> tuple[str, ...]:
    """The image's digest list (ST-3, SF-G-1, decision 3).

    The stored ``digest`` when set, then the big-data digests of every key starting
    with ``manifest`` in sorted key order, without duplicates. When ``digest`` is empty
    the first of those is the image's digest.

    >>> img = StoredImage(ImageID("a" * 64), big_data_digests=pmap(
    ...     {"manifest-sha256:2": "sha256:2", "manifest": "sha256:1", "sha256:x": "sha256:x"}))
    >>> image_digests(img)
    ('sha256:1', 'sha256:2')
    """
    digests: list[str] = [image.digest] if image.digest else []
    # One pass over the map; keys are unique, so sorting the pairs sorts by key.
    manifests = [item for item in image.big_data_digests.items() if item[0].startswith("manifest")]
    if len(manifests) > 1:
        manifests.sort()
    for _key, value in manifests:
        if value and value not in digests:
            digests.append(value)
    return tuple(digests)


def image_digest(image: StoredImage) -> str:
    """``Digest()``: the first entry of :func:`image_digests`, or empty (ST-3)."""
    digests = image_digests(image)
    return digests[0] if digests else ""


def containers_of(snapshot: Snapshot, image_id: str) -> tuple[Container, ...]:
    """Every container whose ``image`` is exactly ``image_id``, in containers.json order (IP-9)."""
    positions = snapshot.index.containers_by_image.get(image_id, ())
    return tuple(snapshot.containers[p] for p in positions)


def find_layer(snapshot: Snapshot, layer_id: str) -> Layer | None:
    """The layer record with this exact ID (rw store first), or None."""
    position = snapshot.index.layer_position.get(layer_id)
    return None if position is None else snapshot.layers[position]
