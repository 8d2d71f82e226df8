"""Facts about images that need more than one record: the layer tree and its relations.

The layer tree (LT-1) is built once per snapshot, in one pass over the layers and
one over the images, and memoised in ``snapshot.memo``; every question below reuses
it ("no per-image rescans"). Configs are read (through :mod:`libimage.pure.manifest`,
memoised per image) only where the seed reads them: the image asked about, and the
candidates that share its top-layer node, a child node or the parent node.

Relations (section 4 of the list/remove reference):

* ``children`` (LT-C1..C4, decision 4: *all* children) and ``has_children``,
  ``is_dangling`` (IP-5), ``is_intermediate`` (IP-6), which keep the seed's exact
  boolean results, including which config errors they meet;
* ``parent`` (LT-P1..P3);
* ``are_parent_and_child`` (LT-3) on two configs.

Per-image facts: ``image_size`` (IP-13), ``labels`` (IP-10), ``containers``
(IP-9), ``repo_tags`` (IP-15) and ``repo_digests`` (POD-I-4). Errors are values
(:class:`Failure`); warnings are values kept on the tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from pyrsistent.typing import PMap

from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.manifest import (
    HistoryEntry,
    ImageConfig,
    image_config,
    is_manifest_list,
)
from libimage.pure.reference import (
    Reference,
    parse,
    parse_normalized_named,
    trim_named,
    with_digest,
)
from libimage.pure.snapshot import (
    Snapshot,
    StoredImage,
    Unreadable,
    containers_of,
    find_layer,
    image_digests,
)

_RESET_HINT = "The storage may be corrupted, consider running `podman system reset`."


@dataclass(frozen=True, slots=True)
class LayerNode:
    """One node of the layer tree: a layer ID, possibly of a layer that is not stored.

    ``parent`` is the parent node's ID (None for base layers); ``children`` are the
    child nodes in layer-list order; ``images`` are positions in ``snapshot.images``
    of the images whose top layer this is, in store order.
    """

    layer_id: str
    parent: str | None
    children: tuple[str, ...]
    images: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LayerTree:
    """The layer tree of a snapshot (LT-1), with its empty images and warnings.

    ``empty_images`` are positions of images without a top layer, in store order.
    ``warnings`` name images whose top layer has no node (LT-1). Such an image is on
    no node; asking for its parent or children fails, because the seed reads the
    image's own config first and an image without its top layer does not open.
    """

    nodes: Mapping[str, LayerNode]
    empty_images: tuple[int, ...]
    warnings: tuple[str, ...]


def layer_tree(snapshot: Snapshot) -> LayerTree:
    """The snapshot's layer tree (LT-1), built on first use and memoised.

    A node exists for every stored layer and for every parent ID a layer names, even
    when that parent is not stored. Each image with a top layer is attached to that
    layer's node in store order; images without one are the empty images; an image
    whose top layer has no node is skipped with a warning (not an error).
    """
    memo = snapshot.memo
    tree = memo.get("layer_tree")
    if isinstance(tree, LayerTree):
        return tree
    parents: dict[str, str | None] = {}
    children: dict[str, list[str]] = {}
    for stored in snapshot.layers:
        children.setdefault(stored.id, [])
        parents.setdefault(stored.id, None)
        if not stored.parent:
            continue
        children.setdefault(stored.parent, [])
        parents.setdefault(stored.parent, None)
        parents[stored.id] = stored.parent
        # A layer ID listed twice (read-write and read-only store) links twice, as in Go.
        children[stored.parent].append(stored.id)
    images: dict[str, list[int]] = {}
    empty: list[int] = []
    warnings: list[str] = []
    for position, image in enumerate(snapshot.images):
        if not image.top_layer:
            empty.append(position)
        elif image.top_layer in parents:
            images.setdefault(image.top_layer, []).append(position)
        else:
            warnings.append(
                f"Top layer {image.top_layer} of image {image.id} not found in layer tree. "
                + _RESET_HINT
            )
    tree = LayerTree(
        nodes={
            layer_id: LayerNode(
                layer_id, parent, tuple(children[layer_id]), tuple(images.get(layer_id, ()))
            )
            for layer_id, parent in parents.items()
        },
        empty_images=tuple(empty),
        warnings=tuple(warnings),
    )
    memo["layer_tree"] = tree
    return tree


# ---------------------------------------------------------------------------
# LT-3


def _same_history(parent: HistoryEntry, child: HistoryEntry) -> bool:
    # Instants are compared (time zones ignored); both absent also counts as equal.
    return (
        parent.created == child.created
        and parent.created_by == child.created_by
        and parent.author == child.author
        and parent.comment == child.comment
        and parent.empty_layer == child.empty_layer
    )


def are_parent_and_child(parent: ImageConfig, child: ImageConfig) -> bool:
    """``areParentAndChild`` (LT-3): is ``child`` built directly on ``parent``?

    The parent's diff IDs are a prefix of the child's, the child has **exactly one**
    more history entry, and the parent's entries equal the child's first ones
    (``created`` as an instant, ``created_by``, ``author``, ``comment``,
    ``empty_layer``).

    >>> from pyrsistent import pvector
    >>> base = ImageConfig(diff_ids=pvector(["d1"]), history=pvector([HistoryEntry(0, "h1")]))
    >>> child = ImageConfig(diff_ids=pvector(["d1", "d2"]),
    ...     history=pvector([HistoryEntry(0, "h1"), HistoryEntry(None, "h2")]))
    >>> are_parent_and_child(base, child), are_parent_and_child(child, base)
    (True, False)
    """
    if len(parent.diff_ids) > len(child.diff_ids):
        return False
    if any(parent.diff_ids[i] != child.diff_ids[i] for i in range(len(parent.diff_ids))):
        return False
    if len(parent.history) + 1 != len(child.history):
        return False
    return all(
        _same_history(parent.history[i], child.history[i]) for i in range(len(parent.history))
    )


# ---------------------------------------------------------------------------
# LT-C*, LT-P*, IP-5, IP-6


@dataclass(frozen=True, slots=True)
class _Checker:
    """Compares one image with candidates, reading each candidate's config once."""

    snapshot: Snapshot
    image: StoredImage
    config: ImageConfig
    as_parent: bool

    def related(self, position: int) -> bool | Failure:
        candidate = self.snapshot.images[position]
        if candidate.id == self.image.id:
            return False
        other = image_config(self.snapshot, candidate)
        if isinstance(other, Failure):
            return other
        if self.as_parent:
            return are_parent_and_child(self.config, other)
        return are_parent_and_child(other, self.config)


def _is_list(snapshot: Snapshot, image: StoredImage) -> bool:
    # The seed ignores errors here: an unreadable manifest is "not a list".
    return is_manifest_list(snapshot, image) is True


def _children(
    snapshot: Snapshot, image: StoredImage, *, first_only: bool
) -> tuple[StoredImage, ...] | Failure:
    """The seed's ``children``; ``first_only`` is its ``all=false`` (booleans).

    Among empty images the boolean search stops at the first child (LT-C5), so a
    later candidate's config error is not met there; on layer nodes both searches
    look at every candidate.
    """
    if not image.top_layer and _is_list(snapshot, image):
        return ()  # LT-C1: a manifest list has no children
    own = image_config(snapshot, image)
    if isinstance(own, Failure):
        return own  # LT-C4: the seed reads the parent's own config first
    tree = layer_tree(snapshot)
    checker = _Checker(snapshot, image, own, as_parent=True)
    found: list[int] = []
    if not image.top_layer:
        # quirk (LT-C1): the seed does not skip manifest lists here; their config fails.
        for position in tree.empty_images:
            related = checker.related(position)
            if isinstance(related, Failure):
                return related
            if related:
                found.append(position)
                if first_only:
                    break
        return tuple(snapshot.images[p] for p in found)
    node = tree.nodes.get(image.top_layer)
    if node is None:  # pragma: no cover - see below
        # LT-C2: an image whose top layer has no node has no stored top layer, so it
        # does not open and its own config has already failed above (as in the seed).
        return ()
    candidates = [p for child in node.children for p in tree.nodes[child].images]
    candidates.extend(node.images)  # LT-C3, LT-5: the same top layer comes last
    for position in candidates:
        related = checker.related(position)
        if isinstance(related, Failure):
            return related
        if related and position not in found:
            found.append(position)
    return tuple(snapshot.images[p] for p in found)


def children(snapshot: Snapshot, image: StoredImage) -> tuple[StoredImage, ...] | Failure:
    """Every child of ``image`` (LT-C1..C4, decision 4), in the seed's search order.

    Candidates: for an image without a top layer, every other empty image (none for
    a manifest list); otherwise the images on each child node of its top layer
    (child nodes in layer-list order), then the other images on its own node. A
    candidate is a child when :func:`are_parent_and_child` holds. A config that
    cannot be read (the image's own, or a candidate's) is the error (LT-C4).
    """
    return _children(snapshot, image, first_only=False)


def has_children(snapshot: Snapshot, image: StoredImage) -> bool | Failure:
    """True if ``image`` has at least one child (``HasChildren``, exact as in the seed)."""
    found = _children(snapshot, image, first_only=True)
    return found if isinstance(found, Failure) else bool(found)


def is_dangling(snapshot: Snapshot, image: StoredImage) -> bool | Failure:
    """No names and no children (IP-5); a named image is never dangling."""
    if image.names:
        return False
    found = has_children(snapshot, image)
    return found if isinstance(found, Failure) else not found


def is_intermediate(snapshot: Snapshot, image: StoredImage) -> bool | Failure:
    """No names and at least one child (IP-6)."""
    if image.names:
        return False
    return has_children(snapshot, image)


def parent(snapshot: Snapshot, image: StoredImage) -> StoredImage | Failure | None:
    """The parent of ``image`` (LT-P1..P3), or None.

    For an image without a top layer, the first other empty image that is its parent
    (none for a manifest list). Otherwise the candidates are the other images on its
    own top-layer node, then the images on the parent layer's node; the first
    candidate that is its parent under LT-3 wins. Config errors are returned (LT-P3).
    """
    if not image.top_layer and _is_list(snapshot, image):
        return None
    own = image_config(snapshot, image)
    if isinstance(own, Failure):
        return own
    tree = layer_tree(snapshot)
    checker = _Checker(snapshot, image, own, as_parent=False)
    if not image.top_layer:
        candidates: tuple[int, ...] = tree.empty_images
    else:
        node = tree.nodes.get(image.top_layer)
        if node is None:  # pragma: no cover - LT-P2: unreachable, as LT-C2 in _children
            return None
        candidates = node.images
        if node.parent is not None:
            candidates += tree.nodes[node.parent].images
    for position in candidates:
        related = checker.related(position)
        if isinstance(related, Failure):
            return related
        if related:
            return snapshot.images[position]
    return None


# ---------------------------------------------------------------------------
# IP-13, IP-10, IP-9, IP-15, POD-I-4


def _layer_unknown(layer_id: str) -> Failure:
    return Failure(
        ErrorKind.IMAGE_CORRUPTED,
        layer_id,
        f'error locating layer with ID "{layer_id}": layer not known',
        "IP-13",
    )


class _ChainSizes:
    """Per-snapshot memo: layer ID -> size of the acyclic chain from it (IP-13)."""

    __slots__ = ("sizes",)

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}


def _chain_size(snapshot: Snapshot, top_layer: str) -> int | None:
    """The summed ``diff-size`` of the chain from ``top_layer``, or None (IP-13).

    Images share their lower layers, so each layer's chain total is computed once
    per snapshot and reused from every image above it. Only chains whose layers all
    exist and all have a ``diff-digest`` and that end without a cycle are answered
    (and remembered); anything else (a missing layer, a size to measure, a cycle)
    is None, and :func:`image_size` takes its exact walk, errors included. A
    remembered chain is acyclic, so it cannot meet a layer the walk has passed.
    """
    memo = snapshot.memo
    holder = memo.get(_ChainSizes)
    if not isinstance(holder, _ChainSizes):
        holder = _ChainSizes()
        memo[_ChainSizes] = holder
    sizes = holder.sizes
    walked: list[str] = []
    own: list[int] = []
    seen: set[str] = set()
    total = 0
    layer_id = top_layer
    while layer_id:
        known = sizes.get(layer_id)
        if known is not None:
            total = known
            break
        if layer_id in seen:
            return None
        seen.add(layer_id)
        stored = find_layer(snapshot, layer_id)
        if stored is None or not stored.diff_digest:
            return None
        walked.append(layer_id)
        own.append(stored.diff_size or 0)
        layer_id = stored.parent
    for index in range(len(walked) - 1, -1, -1):
        total += own[index]
        sizes[walked[index]] = total
    return total


def image_size(snapshot: Snapshot, image: StoredImage) -> int | Failure:
    """``store.ImageSize`` (IP-13): the layers' sizes plus every big-data item's size.

    The record is the first with this ID in store order (the read-write copy of a
    read-only image, if there is one). Layers: the top layer and every mapped layer,
    then parents, each layer once; ``diff-size`` when ``diff-digest`` is set, else
    the measured size. Big data: every name in ``big-data-names``, its size from
    ``big-data-sizes`` or else the item's length. A missing layer is
    ``error locating layer with ID "<id>": layer not known``.
    """
    index = snapshot.index
    for store in index.stores:
        position = index.id_position.get((store, image.id))
        if position is not None:
            image = snapshot.images[position]
            break
    if not image.mapped_layers:
        chain = _chain_size(snapshot, image.top_layer)
        if chain is not None:
            big_data = _big_data_size(snapshot, image)
            return big_data if isinstance(big_data, Failure) else chain + big_data
    queue = [layer_id for layer_id in (image.top_layer, *image.mapped_layers) if layer_id]
    visited: set[str] = set()
    total = 0
    while queue:
        layer_id = queue.pop(0)
        if layer_id in visited:
            continue
        visited.add(layer_id)
        stored = find_layer(snapshot, layer_id)
        if stored is None:
            return _layer_unknown(layer_id)
        if stored.diff_digest:
            total += stored.diff_size or 0
        else:
            measured = snapshot.content.layer_diff_size(stored)
            if isinstance(measured, Unreadable):
                return Failure(
                    ErrorKind.IMAGE_CORRUPTED,
                    layer_id,
                    f'size/digest of layer with ID "{layer_id}" could not be calculated: '
                    f"{measured.reason}",
                    "IP-13",
                )
            total += measured
        if stored.parent:
            queue.append(stored.parent)
    big_data = _big_data_size(snapshot, image)
    return big_data if isinstance(big_data, Failure) else total + big_data


def _big_data_size(snapshot: Snapshot, image: StoredImage) -> int | Failure:
    """IP-13's big-data part: every item's recorded size, else its length."""
    total = 0
    for key in image.big_data_names:
        size = image.big_data_sizes.get(key)
        if size is None:
            data = snapshot.content.big_data(image, key)
            if isinstance(data, Unreadable):
                return Failure(
                    ErrorKind.IMAGE_CORRUPTED,
                    image.id,
                    f'error reading size of big data item "{key}" for image "{image.id}": '
                    "size is not known",
                    "IP-13",
                )
            size = len(data)
        total += size
    return total


def labels(snapshot: Snapshot, image: StoredImage) -> PMap[str, str] | Failure | None:
    """``Labels`` (IP-10): the config's labels; None when it has none.

    If the config cannot be read and the image is a manifest list, None (no error).
    If deciding whether it is a list fails too, the error says so.
    """
    config = image_config(snapshot, image)
    if not isinstance(config, Failure):
        return config.labels
    listed = is_manifest_list(snapshot, image)
    if isinstance(listed, Unreadable):
        # quirk (IP-10): the seed wraps the config error with its own text again.
        return Failure(
            config.kind,
            config.subject,
            "fallback error checking whether image is a manifest list: "
            f"{config.message}: {config.message}",
            "IP-10",
        )
    if listed:
        return None
    return config


def containers(snapshot: Snapshot, image: StoredImage) -> tuple[str, ...]:
    """The IDs of the containers using ``image``, in containers.json order (IP-9)."""
    return tuple(container.id for container in containers_of(snapshot, image.id))


def repo_tags(image: StoredImage) -> tuple[str, ...]:
    """``RepoTags`` (IP-15): the names that parse with a tag, in stored order.

    Names that do not parse are skipped (decision 18; :func:`unparseable_names`
    lists them for the warning); digest-only names are not tags.
    """
    tags: list[str] = []
    for name in image.names:
        try:
            ref = parse(name)
        except LibimageError:
            continue
        if ref.is_tagged:
            tags.append(str(ref))
    return tuple(tags)


def unparseable_names(image: StoredImage) -> tuple[str, ...]:
    """The stored names that do not parse as references (decision 18's warning)."""
    bad: list[str] = []
    for name in image.names:
        try:
            parse(name)
        except LibimageError:
            bad.append(name)
    return tuple(bad)


@lru_cache(maxsize=1 << 17)
def _repository(name: str) -> str | None:
    """The stored name normalised with its tag dropped, or None if it does not parse.

    Memoised (a pure function of the text), as large as the reference parser's memo:
    a listing asks it for every name of every image.
    """
    try:
        return str(trim_named(parse_normalized_named(name)))
    except LibimageError:
        return None


_DIGEST_PROBE = Reference("", "probe")


def _digest_shape_ok(digest: str) -> bool:
    """Does ``WithDigest`` accept ``digest`` (REF-5)? Asked once per digest, not per name."""
    try:
        with_digest(_DIGEST_PROBE, digest)
    except LibimageError:
        return False  # IP-8: a store with a bad manifest digest does not load at all
    return True


def repo_digests(image: StoredImage, listed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """``RepoDigests`` (POD-I-4): ``<repository>@<digest>`` for each name and digest.

    Every name (normalised, tag dropped) with every digest of the image (ST-3),
    sorted and without duplicates. Names that do not parse are skipped (decision 18).
    ``listed`` is :func:`image_digests` of ``image`` when the caller has it already.
    """
    found: set[str] = set()
    if listed is None:
        listed = image_digests(image)
    # image_digest(image) is the first of the list (ST-3): computed once, not twice.
    digests = [d for d in (*listed, listed[0] if listed else "") if d]
    valid = [d for d in digests if _digest_shape_ok(d)]
    for name in image.names:
        repository = _repository(name)
        if repository is None:
            continue
        for digest in valid:
            # str(WithDigest(TrimNamed(ref), digest)): a name-only reference plus "@digest".
            found.add(f"{repository}@{digest}")
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    """The per-snapshot facts shared by every question: the layer tree and its warnings."""

    tree: LayerTree

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.tree.warnings


def snapshot_facts(snapshot: Snapshot) -> SnapshotFacts:
    """The snapshot's shared facts, computed once (memoised in ``snapshot.memo``)."""
    return SnapshotFacts(layer_tree(snapshot))
