"""The abstract model of a store and its rules: a deliberately naive second description.

This module restates the behaviour references (``behaviour-lookup.md``,
``behaviour-list-remove.md``, ``storage-format.md``) as plain Python over plain
dicts and lists, with linear scans and no indexes, caches or working states. It
shares no logic with ``libimage.pure``: only its vocabulary (:class:`ErrorKind`,
:class:`Context`, :class:`Semantics` switches, :class:`RemoveOptions`) and the
snapshot records it is built from. Tests run the optimised core and this model side
by side and compare them (``tests/stateful``, ``tests/exhaustive``,
:mod:`libimage.spec.rules`).

The model is small because its **scope** is: no corrupted images (every manifest and
config reads), no quarantined records (decision 10), no mapped layers, no unmeasured
layers, no platform options on lookups (the context's host and choices still decide
manifest-list instances), no ``until`` filter and no wildcard label keys,
``containers-storage:`` names without a store specification or ``@ID``,
``docker://`` names (refused, TR-2) but no other transport, and no image ID listed
twice (LS-3).
Anything outside raises :class:`OutOfScope`; generators keep to the scope.

The state (:class:`Model`): images with their names, names history, digests, top
layer, config (diff IDs and history, LT-2), manifest-list entries, read-only flag and
store; layers with parents; containers with their image and read-write layer.

Rules, each citing its behaviour ID:

* names: the reference grammar (REF-1..4), docker normalisation (NORM-1..3), short
  names and candidates (SN-1, SN-2), ``NormalizeName`` and repo tags (LN-1, LN-2, LN-4);
* the store: ``store.Image`` (ST-2), digests (ST-3), listing order (ST-4), ``SetNames``
  (SF-N-3), image and layer deletion (SF-D-3..7), container deletion (SF-D-C);
* lookup: :func:`lookup_image` (LK-2..LK-9, TR-4, ML-4, ML-5, DIV-1..3), :func:`exists`
  (EX-1);
* facts: parent and children (LT-1, LT-3, LT-C*, LT-P*), dangling and intermediate
  (IP-5, IP-6), size (IP-13);
* listing: :func:`list_images` (LS-2..5, FL-P*, FL-T*, FL-R*);
* removal: :func:`remove_images` (RM-1..8, RM-D*, RM-U*, RM-T*, RM-C*, EV-2..4).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind
from libimage.pure.plan import RemoveOptions
from libimage.pure.snapshot import Snapshot, StoredImage, Unreadable


class OutOfScope(Exception):
    """The request or store is outside what this model describes (module docstring)."""


@dataclass(frozen=True, slots=True)
class ModelError:
    """A refusal or error as the model predicts it: its kind and the input it names.

    ``subject`` is None where the references do not say which input the error names.
    """

    kind: ErrorKind
    subject: str | None = None


# ------------------------------------------------------------------ the state


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One config history entry (LT-2); ``created`` as an instant, None when absent."""

    created: datetime | None
    created_by: str
    author: str
    comment: str
    empty_layer: bool


@dataclass(frozen=True, slots=True)
class Config:
    """What LT-3 and FL-T8 read from an image's config: diff IDs, history, labels."""

    diff_ids: tuple[str, ...]
    history: tuple[HistoryEntry, ...]
    labels: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One manifest-list entry (ML-4): the instance digest and its platform, if any."""

    digest: str
    platform: tuple[str, str, str] | None  # (os, architecture, variant)


@dataclass
class MImage:
    """One image record (SF-I) with the facts the rules need, read once from its data."""

    id: str
    names: list[str]
    history: list[str]  # names-history, newest first (IP-3)
    digests: list[str]  # ST-3
    top_layer: str
    config: Config | None  # None for manifest lists (no config)
    list_kind: str  # "" (not a list), "docker" or "oci" (ML-1)
    entries: list[ListEntry]
    read_only: bool
    store: int
    created: int
    big_data_size: int  # the sum of the big-data sizes (IP-13)


@dataclass
class MLayer:
    """One layer record (SF-Y): its parent, its measured size and which store holds it."""

    id: str
    parent: str
    diff_size: int | None  # None: not measured (a container's layer)
    read_only: bool
    store: int


@dataclass
class MContainer:
    """One container record (SF-C)."""

    id: str
    image: str
    layer: str
    names: list[str]
    podman_managed: bool  # decision 19


@dataclass
class Model:
    """A store: images in store order (ST-4), layers, containers (containers.json order)."""

    images: list[MImage] = field(default_factory=list)
    layers: list[MLayer] = field(default_factory=list)
    containers: list[MContainer] = field(default_factory=list)

    def copy(self) -> Model:
        """An independent copy (the facts read from big data never change, so they are shared)."""
        return Model(
            images=[replace(i, names=list(i.names), history=list(i.history)) for i in self.images],
            layers=[replace(layer) for layer in self.layers],
            containers=[replace(c, names=list(c.names)) for c in self.containers],
        )


def _json(snapshot: Snapshot, image: StoredImage, key: str) -> object:
    data = snapshot.content.big_data(image, key)
    if isinstance(data, Unreadable):
        raise OutOfScope(f"image {image.id}: big data {key!r} is unreadable")
    return json.loads(data)


def _instant(value: object) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))


_LIST_TYPES = {
    "application/vnd.docker.distribution.manifest.list.v2+json": "docker",
    "application/vnd.oci.image.index.v1+json": "oci",
}


def model_of(snapshot: Snapshot) -> Model:
    """The model of a snapshot, reading each image's manifest and config once.

    Raises :class:`OutOfScope` for what the model does not describe (module docstring).
    """
    if snapshot.quarantine:
        raise OutOfScope("quarantined records (decision 10)")
    model = Model()
    for record in snapshot.images:
        if record.mapped_layers:
            raise OutOfScope("mapped layers")
        manifest_key = "manifest"
        digest_key = f"manifest-{record.digest}"
        if record.digest and digest_key in record.big_data_names:
            manifest_key = digest_key  # SF-B-6
        manifest = _json(snapshot, record, manifest_key)
        if not isinstance(manifest, dict):
            raise OutOfScope(f"image {record.id}: manifest is not an object")
        list_kind = _LIST_TYPES.get(str(manifest.get("mediaType", "")), "")  # ML-1, IP-11
        config: Config | None = None
        entries: list[ListEntry] = []
        if list_kind:
            for entry in manifest.get("manifests") or []:
                platform = entry.get("platform")
                entries.append(
                    ListEntry(
                        entry["digest"],
                        None
                        if platform is None
                        else (
                            platform.get("os", ""),
                            platform.get("architecture", ""),
                            platform.get("variant", ""),
                        ),
                    )
                )
        else:
            document = _json(snapshot, record, manifest["config"]["digest"])
            assert isinstance(document, dict)
            labels = (document.get("config") or {}).get("Labels")
            config = Config(
                diff_ids=tuple((document.get("rootfs") or {}).get("diff_ids") or ()),
                history=tuple(
                    HistoryEntry(
                        _instant(item.get("created")),
                        item.get("created_by", ""),
                        item.get("author", ""),
                        item.get("comment", ""),
                        bool(item.get("empty_layer", False)),
                    )
                    for item in document.get("history") or ()
                ),
                labels=None if labels is None else dict(labels),
            )
        # ST-3, decision 3: the digest field, then manifest* digests in key order.
        digests = [record.digest] if record.digest else []
        for key in sorted(record.big_data_digests):
            value = record.big_data_digests[key]
            if key.startswith("manifest") and value and value not in digests:
                digests.append(value)
        model.images.append(
            MImage(
                id=record.id,
                names=list(record.names),
                history=list(record.names_history),
                digests=digests,
                top_layer=record.top_layer,
                config=config,
                list_kind=list_kind,
                entries=entries,
                read_only=record.read_only,
                store=record.store_index,
                created=record.created,
                big_data_size=sum(record.big_data_sizes.get(k, 0) for k in record.big_data_names),
            )
        )
    for layer in snapshot.layers:
        size = (layer.diff_size or 0) if layer.diff_digest else None
        model.layers.append(
            MLayer(layer.id, layer.parent, size, layer.read_only, layer.store_index)
        )
    for container in snapshot.containers:
        model.containers.append(
            MContainer(
                container.id,
                container.image_id,
                container.layer,
                list(container.names),
                container.podman_managed,
            )
        )
    return model


StoreView = tuple[
    tuple[tuple[str, int, tuple[str, ...], tuple[str, ...]], ...],
    tuple[tuple[str, int], ...],
    tuple[str, ...],
]
"""What two stores must agree on: images (ID, store, names, history), layers, containers."""


def view_of_model(model: Model) -> StoreView:
    """The store's records as :data:`StoreView`."""
    return (
        tuple((i.id, i.store, tuple(i.names), tuple(i.history)) for i in model.images),
        tuple((layer.id, layer.store) for layer in model.layers),
        tuple(c.id for c in model.containers),
    )


def view_of_snapshot(snapshot: Snapshot) -> StoreView:
    """A snapshot's records as :data:`StoreView`."""
    return (
        tuple(
            (i.id, i.store_index, tuple(i.names), tuple(i.names_history)) for i in snapshot.images
        ),
        tuple((layer.id, layer.store_index) for layer in snapshot.layers),
        tuple(c.id for c in snapshot.containers),
    )


# ------------------------------------------------------------------ names (REF, NORM, SN, LN)

# REF-1, transcribed. An empty separator only joins two alphanumeric runs, which the
# run itself already does, so the component is written without it (same language,
# no exponential backtracking).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_SPLIT = re.compile(rf"(?:({_DOMAIN})/)?({_COMPONENT}(?:/{_COMPONENT})*)", re.ASCII)
_FULL_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference (REF-2): domain, path, tag, digest (empty when absent)."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


class NameError_(Exception):
    """A name that does not parse; carries the error kind (REF-3, REF-4, NORM-1)."""

    def __init__(self, kind: ErrorKind) -> None:
        super().__init__(kind.value)
        self.kind = kind


def _check_digest(digest: str) -> None:
    """REF-4 (go-digest validation)."""
    algorithm, _, hex_part = digest.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None:
        if re.fullmatch(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", digest):
            raise NameError_(ErrorKind.DIGEST_UNSUPPORTED)
        raise NameError_(ErrorKind.CHECKSUM_INVALID_FORMAT)
    if len(hex_part) != length:
        raise NameError_(ErrorKind.DIGEST_INVALID_LENGTH)
    if not re.fullmatch(r"[a-f0-9]+", hex_part):
        raise NameError_(ErrorKind.CHECKSUM_INVALID_FORMAT)


def parse(text: str) -> Ref:
    """``reference.Parse`` (REF-1..REF-4): no normalisation at all."""
    match = _REFERENCE.fullmatch(text)
    if match is None:
        if text == "":
            raise NameError_(ErrorKind.NAME_EMPTY)
        if _REFERENCE.fullmatch(text.lower()):
            raise NameError_(ErrorKind.NAME_CONTAINS_UPPERCASE)
        raise NameError_(ErrorKind.REFERENCE_INVALID_FORMAT)
    name, tag, digest = match.group(1), match.group(2) or "", match.group(3) or ""
    if len(name) > 255:
        raise NameError_(ErrorKind.NAME_TOO_LONG)
    if digest:
        _check_digest(digest)
    split = _SPLIT.fullmatch(name)
    assert split is not None
    return Ref(split.group(1) or "", split.group(2), tag, digest)


def parse_normalized_named(text: str) -> Ref:
    """``ParseNormalizedNamed`` (NORM-1)."""
    if _FULL_ID.fullmatch(text):
        raise NameError_(ErrorKind.NAME_IS_HEX_ID)
    slash = text.find("/")
    first = text[:slash]
    if slash == -1 or ("." not in first and ":" not in first and first != "localhost"):
        domain, rest = "docker.io", text
    else:
        domain, rest = first, text[slash + 1 :]
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    repository = rest.split(":", 1)[0]
    if repository != repository.lower():
        raise NameError_(ErrorKind.NAME_CONTAINS_UPPERCASE)
    return parse(f"{domain}/{rest}")


def tag_name_only(ref: Ref) -> Ref:
    """``TagNameOnly`` (NORM-2): ``:latest`` for a name without tag and digest."""
    if ref.tag or ref.digest:
        return ref
    return Ref(ref.domain, ref.path, "latest")


def parse_docker_ref(text: str) -> Ref:
    """``ParseDockerRef`` (NORM-3)."""
    ref = parse_normalized_named(text)
    if ref.tag and ref.digest:
        return Ref(ref.domain, ref.path, "", ref.digest)
    return tag_name_only(ref)


def _names_registry(domain: str) -> bool:
    return "." in domain or ":" in domain or domain == "localhost"


def is_short_name(text: str) -> bool:
    """SN-1: the domain (as plain parsing splits it) names no registry."""
    try:
        ref = parse(text)
    except NameError_:
        return False
    return not _names_registry(ref.domain)


def resolve_locally(context: Context, name: str) -> list[str]:
    """``ResolveLocally`` (SN-2): the short-name candidates, in order."""
    ref = parse(name)
    if _names_registry(ref.domain):
        return [str(tag_name_only(parse_normalized_named(name)))]
    config = context.registries
    candidates: list[str] = []
    key = ref.name
    alias = config.cached_aliases[key] if key in config.cached_aliases else config.aliases.get(key)
    if alias:
        target = parse(alias)
        candidates.append(str(tag_name_only(Ref(target.domain, target.path, ref.tag, ref.digest))))
    for registry in ("localhost", *config.unqualified_search_registries):
        candidates.append(str(tag_name_only(parse_normalized_named(f"{registry}/{name}"))))
    return candidates


def normalize_tagged_digested(text: str) -> str:
    """``normalizeTaggedDigestedString`` (LN-1): the tag goes when there is a digest."""
    ref = parse(text)
    if ref.tag and ref.digest:
        return f"{ref.name}@{ref.digest}"
    return text


def normalize_name(text: str) -> str:
    """``NormalizeName`` (LN-2, RM-T2): ``localhost/`` for short names, ``:latest`` when bare."""
    ref = parse(text)
    if not _names_registry(ref.domain):
        text = "localhost/" + str(ref).lstrip("/")
    named = parse_normalized_named(text)
    if named.tag and named.digest:
        return str(Ref(named.domain, named.path, "", named.digest))
    if named.digest or named.tag:
        return str(named)
    return str(Ref(named.domain, named.path, "latest"))


def in_repo_tags(names: Sequence[str], query_name: str, query_tag: str) -> str | None:
    """``inRepoTags`` (LN-3, LN-4): the first stored name with that tag ending in the name."""
    for stored in names:
        ref = parse(stored)
        tag = ref.tag or "<none>"
        if tag == query_tag and (ref.name == query_name or ref.name.endswith("/" + query_name)):
            return str(Ref(ref.domain, ref.path, ref.tag))
    return None


# ------------------------------------------------------------------ the store (ST, SF)


def listing(model: Model) -> list[MImage]:
    """``store.Images()`` (ST-4, LS-3): the read-write store, then each additional store."""
    return sorted(model.images, key=lambda image: image.store)


def store_image(model: Model, text: str) -> MImage | None:
    """``store.Image(text)`` (ST-2, SF-X-1, SF-X-4): per store, ID, then name, then unique
    prefix; the first store that yields an image wins. A name held twice stays with the
    later record (ST-2)."""
    if not text:
        return None
    for store in sorted({image.store for image in model.images}):
        images = [image for image in model.images if image.store == store]
        for image in images:
            if image.id == text:
                return image
        holders = [image for image in images if text in image.names]
        if holders:
            return holders[-1]
        ids = {image.id for image in images if image.id.startswith(text)}
        if len(ids) == 1:
            return next(image for image in images if image.id in ids)
    return None


def set_names(model: Model, image_id: str, names: Sequence[str]) -> None:
    """``SetNames`` on the read-write record (SF-N-3): dedupe, steal from the other images,
    move each name to the front of the names history (IP-3, which never forgets one)."""
    wanted: list[str] = []
    for name in names:
        if name not in wanted:
            wanted.append(name)
    target = next(i for i in model.images if i.id == image_id and i.store == 0)
    for name in wanted:
        for other in model.images:
            if other is not target and other.store == 0 and name in other.names:
                other.names.remove(name)
        target.history = [name, *(old for old in target.history if old != name)]
    target.names = wanted


def tag(model: Model, image_id: str, name: str) -> None:
    """Tagging: ``SetNames`` with the name appended (SF-N-5)."""
    target = next(i for i in model.images if i.id == image_id and i.store == 0)
    set_names(model, image_id, [*target.names, name])


def delete_layer(model: Model, layer_id: str) -> None:
    """The layer-store delete of one read-write layer (SF-D-11)."""
    model.layers = [lay for lay in model.layers if not (lay.id == layer_id and lay.store == 0)]


def delete_container(model: Model, container_id: str) -> None:
    """``DeleteContainer`` (SF-D-C): its read-write layer and its record."""
    for container in model.containers:
        if container.id == container_id:
            delete_layer(model, container.layer)
    model.containers = [c for c in model.containers if c.id != container_id]


def add_container(model: Model, container: MContainer, parent_layer: str) -> None:
    """A new storage container and its read-write layer on ``parent_layer`` (SF-C): both
    are appended to their read-write store (whose layers come before the others, ST-1)."""
    position = sum(1 for layer in model.layers if layer.store == 0)
    model.layers.insert(position, MLayer(container.layer, parent_layer, None, False, 0))
    model.containers.append(container)


def add_image(model: Model, image: MImage, layers: Sequence[MLayer]) -> None:
    """``CreateImage`` in the read-write store (SF-N-2: its names are free) with the
    layers it needs that are not stored yet; each goes after the last read-write record."""
    if any(
        name in other.names for other in model.images if other.store == 0 for name in image.names
    ):
        raise ValueError("that name is already in use (SF-N-2)")
    position = sum(1 for other in model.images if other.store == 0)
    model.images.insert(position, image)
    known = {layer.id for layer in model.layers if layer.store == 0}
    position = sum(1 for layer in model.layers if layer.store == 0)
    for layer in layers:
        if layer.id not in known:
            model.layers.insert(position, layer)
            known.add(layer.id)
            position += 1


def containers_of(model: Model, image_id: str) -> list[MContainer]:
    """IP-9: every container whose ``image`` is exactly the ID, in containers.json order."""
    return [c for c in model.containers if c.image == image_id]


def layers_freed(model: Model, image: MImage) -> list[str]:
    """SF-D-6, SF-D-7: the layers deleted with ``image`` (already gone from ``model.images``).

    Walk down from the top layer; stop at an empty ID, at a layer a container uses
    (ID, name or read-write layer), at another read-write image's top layer, at a layer
    with a read-write child not scheduled. Deletion stops at the first scheduled layer
    the read-write layer store does not hold.
    """
    rw_layers = {lay.id: lay for lay in model.layers if lay.store == 0}
    scheduled: list[str] = []
    layer_id = image.top_layer
    while layer_id:
        used_by_container = any(layer_id in (c.id, c.layer, *c.names) for c in model.containers)
        used_by_image = any(i.top_layer == layer_id for i in model.images if i.store == 0)
        has_other_child = any(
            lay.parent == layer_id and lay.id not in scheduled for lay in rw_layers.values()
        )
        if used_by_container or used_by_image or has_other_child:
            break
        scheduled.append(layer_id)
        known = rw_layers.get(layer_id)
        layer_id = known.parent if known is not None else ""
    freed: list[str] = []
    for layer_id in scheduled:
        if layer_id not in rw_layers:
            break
        freed.append(layer_id)
    return freed


# ------------------------------------------------------------------ facts (LT, IP)


def _same_entry(parent: HistoryEntry, child: HistoryEntry) -> bool:
    return (
        parent.created == child.created
        and parent.created_by == child.created_by
        and parent.author == child.author
        and parent.comment == child.comment
        and parent.empty_layer == child.empty_layer
    )


def are_parent_and_child(parent: Config, child: Config) -> bool:
    """``areParentAndChild`` (LT-3): diff-ID prefix, exactly one more history entry, equal
    earlier entries."""
    if len(parent.diff_ids) > len(child.diff_ids):
        return False
    if child.diff_ids[: len(parent.diff_ids)] != parent.diff_ids:
        return False
    if len(child.history) != len(parent.history) + 1:
        return False
    return all(_same_entry(a, b) for a, b in zip(parent.history, child.history, strict=False))


def config_of(model: Model, image: MImage) -> Config | ModelError:
    """LT-2: the image's config as the store gives it. A manifest list has none (opened as
    an image it holds no instance manifest), nor has an image deleted meanwhile."""
    if image.config is None or not any(i.id == image.id for i in model.images):
        return ModelError(ErrorKind.IMAGE_CORRUPTED, image.id)
    return image.config


def _layer_nodes(model: Model) -> set[str]:
    """LT-1: a node per layer and per parent a layer names."""
    nodes = {layer.id for layer in model.layers}
    nodes |= {layer.parent for layer in model.layers if layer.parent}
    return nodes


def has_children(model: Model, image: MImage) -> bool | ModelError:
    """``HasChildren`` (LT-C1..C5): is some other image a child of this one (LT-3)?

    The layer tree (LT-1) has a node per layer and per parent a layer names.

    Candidates: for an image without a top layer, every other empty image (a manifest
    list has none, LT-C1), and the search stops at the first child (LT-C5); otherwise
    the images on the child nodes of its top layer, then those on its own node (LT-C3),
    every one of them read. A config that cannot be read is the answer (LT-C4).
    """
    if not image.top_layer and image.list_kind:
        return False  # LT-C1
    own = config_of(model, image)
    if isinstance(own, ModelError):
        return own
    if not image.top_layer:
        for candidate in listing(model):
            if candidate.top_layer or candidate.id == image.id:
                continue
            other = config_of(model, candidate)
            if isinstance(other, ModelError):
                return other
            if are_parent_and_child(own, other):
                return True
        return False
    if image.top_layer not in _layer_nodes(model):
        return False  # LT-C2
    on_children = [lay.id for lay in model.layers if lay.parent == image.top_layer]
    candidates = [i for layer_id in on_children for i in listing(model) if i.top_layer == layer_id]
    candidates += [i for i in listing(model) if i.top_layer == image.top_layer]
    found = False
    for candidate in candidates:
        if candidate.id == image.id:
            continue
        other = config_of(model, candidate)
        if isinstance(other, ModelError):
            return other
        found = found or are_parent_and_child(own, other)
    return found


def parent(model: Model, image: MImage) -> MImage | ModelError | None:
    """``Parent`` (LT-P1..P3): the first candidate this image is a child of (LT-3).

    Candidates: for an image without a top layer, every other empty image (a manifest
    list has no parent); otherwise the other images on its top layer's node, then those
    on the parent layer's node. A config that cannot be read is the answer (LT-P3).
    """
    if not image.top_layer and image.list_kind:
        return None  # LT-P1
    own = config_of(model, image)
    if isinstance(own, ModelError):
        return own
    if not image.top_layer:
        candidates = [i for i in listing(model) if not i.top_layer]
    else:
        if image.top_layer not in _layer_nodes(model):
            return None  # LT-P2
        candidates = [i for i in listing(model) if i.top_layer == image.top_layer]
        below = next((lay.parent for lay in model.layers if lay.id == image.top_layer), "")
        if below:
            candidates += [i for i in listing(model) if i.top_layer == below]
    for candidate in candidates:
        if candidate.id == image.id:
            continue
        other = config_of(model, candidate)
        if isinstance(other, ModelError):
            return other
        if are_parent_and_child(other, own):
            return candidate
    return None


def is_dangling(model: Model, image: MImage) -> bool | ModelError:
    """IP-5: no names and no children."""
    if image.names:
        return False
    found = has_children(model, image)
    return found if isinstance(found, ModelError) else not found


def is_intermediate(model: Model, image: MImage) -> bool | ModelError:
    """IP-6: no names and at least one child."""
    if image.names:
        return False
    return has_children(model, image)


def image_size(model: Model, image_id: str) -> int:
    """IP-13 and RM-D1: the layer chain's diff sizes plus the big data; -1 when the image
    or a layer is gone."""
    image = next((i for i in model.images if i.id == image_id), None)
    if image is None:
        return -1
    layers = {layer.id: layer for layer in model.layers}
    total, seen, layer_id = 0, set(), image.top_layer
    while layer_id and layer_id not in seen:
        seen.add(layer_id)
        layer = layers.get(layer_id)
        if layer is None:
            return -1
        if layer.diff_size is None:
            raise OutOfScope(f"layer {layer_id} is not measured")
        total += layer.diff_size
        layer_id = layer.parent
    return total + image.big_data_size


# ------------------------------------------------------------------ lookup (LK, ML, TR, EX)


@dataclass(frozen=True, slots=True)
class Found:
    """A lookup's answer: the image and the resolved name (``""`` for TR-4)."""

    image: MImage
    resolved: str


@dataclass(frozen=True, slots=True)
class LookupFlags:
    """The two internal flags removal passes (LK-1, RLK-7)."""

    lookup_manifest: bool = False
    return_list_if_no_instance: bool = False


_FOREIGN_TRANSPORTS = {"docker", "docker-archive", "docker-daemon", "dir", "oci", "oci-archive"}
_FOREIGN_TRANSPORTS |= {"tarball", "ostree", "atomic", "sif"}


def _wanted_platforms(context: Context) -> list[tuple[str, str, str]]:
    """``WantedPlatforms`` (PLAT-4) from the context's choices and the host."""
    host = context.host
    arch = context.architecture_choice or host.architecture
    variant = "" if context.architecture_choice else host.variant
    variant = context.variant_choice or variant
    os_name = context.os_choice or host.os
    compatible = {"arm": ["v8", "v7", "v6", "v5"], "arm64": ["v8"]}.get(arch, [])
    if variant:
        tail = compatible[compatible.index(variant) :] if variant in compatible else [variant]
        variants = [*tail, ""]
    else:
        variants = ["", *compatible]
    return [(os_name, arch, v) for v in variants]


def instance_of(model: Model, image: MImage, context: Context) -> MImage | None:
    """ML-4, ML-5: the local image of the list entry the platforms of PLAT-4 choose, if any."""
    chosen = ""
    for wanted in _wanted_platforms(context):
        for entry in image.entries:
            if entry.platform is not None and entry.platform == wanted:
                chosen = entry.digest
                break
        if chosen:
            break
    if not chosen and image.list_kind == "oci":
        chosen = next((e.digest for e in image.entries if e.platform is None), "")
    if not chosen:
        return None
    return next((i for i in listing(model) if chosen in i.digests), None)


def _in_local_storage(
    model: Model, candidate: str, flags: LookupFlags, context: Context
) -> MImage | ModelError | None:
    """``lookupImageInLocalStorage`` (LK-9) without platform options (scope)."""
    image = store_image(model, candidate)
    if image is None:
        return None
    if flags.lookup_manifest:
        if image.list_kind:
            return image
        return ModelError(ErrorKind.NOT_A_MANIFEST_LIST, candidate)
    if image.list_kind:
        instance = instance_of(model, image, context)
        if instance is None:
            if flags.return_list_if_no_instance:
                return image
            return ModelError(ErrorKind.IMAGE_UNKNOWN)
        return instance
    return image


def _unknown(name: str) -> ModelError:
    return ModelError(ErrorKind.IMAGE_UNKNOWN, name)


def _storage_transport(model: Model, name: str, rest: str) -> Found | ModelError:
    """TR-3 (without a store specification or ``@ID``) and TR-4; resolved name ``""``."""
    if rest.startswith("[") or "@" in rest or not rest:
        raise OutOfScope(f"containers-storage reference {name!r}")
    if len(rest) >= 3 and ":" not in rest:
        by_id = store_image(model, rest)
        if by_id is not None and by_id.id.startswith(rest):
            return Found(by_id, "")
    try:
        named = tag_name_only(parse_normalized_named(rest))
    except NameError_ as error:
        raise OutOfScope(f"{name!r} does not parse as a storage reference") from error
    image = store_image(model, str(named))
    if image is None:
        return _unknown(name)
    return Found(image, "")


def lookup_image(
    model: Model, name: str, context: Context, flags: LookupFlags | None = None
) -> Found | ModelError:
    """``LookupImage(name)`` without platform options (LK-2..LK-9; DIV-1..DIV-3).

    ``containers-storage:`` names go through TR-3 and TR-4; ``docker://`` names are
    refused (TR-2).
    """
    flags = flags or LookupFlags()
    semantics = context.semantics
    transport, colon, rest = name.partition(":")
    if colon and transport == "containers-storage":
        return _storage_transport(model, name, rest)  # LK-2
    if colon and transport == "docker" and rest.startswith("//"):
        try:  # TR-2: the docker transport accepts a normalisable name
            named = parse_normalized_named(rest[2:])
        except NameError_:
            named = None
        if named is not None and not (named.tag and named.digest):
            return ModelError(ErrorKind.UNSUPPORTED_TRANSPORT, name)
    if colon and transport in _FOREIGN_TRANSPORTS:
        raise OutOfScope(f"transport {transport!r}")
    try:
        name = normalize_tagged_digested(name)  # LK-3
    except NameError_ as error:
        return ModelError(error.kind, name)
    original = name
    by_digest = name.startswith("sha256:")  # LK-4
    if by_digest:
        name = name.removeprefix("sha256:")
    full_id = bool(_FULL_ID.fullmatch(name))
    if semantics.sha256_needs_full_id and by_digest and not full_id:
        return ModelError(ErrorKind.INVALID_ID_FORMAT, original)  # DIV-2

    def attempt(candidate: str, resolved: str) -> Found | ModelError | None:
        found = _in_local_storage(model, candidate, flags, context)
        if isinstance(found, MImage):
            return Found(found, resolved)
        return found

    if semantics.short_names_before_id_prefix and (full_id or by_digest):
        found = attempt(name, original)  # DIV-1: an ID is looked up in the store only
        return found if found is not None else _unknown(original)
    if not semantics.short_names_before_id_prefix:
        found = attempt(name, original)  # LK-6
        if found is not None:
            return found
        if by_digest:
            return _unknown(original)
    if context.registries_error is not None:
        return _unknown(original)  # LK-7
    try:
        candidates = resolve_locally(context, name)  # LK-7, SN-2
    except NameError_:
        return _unknown(original)
    with contextlib.suppress(NameError_):
        candidates.append(str(parse_docker_ref(name)))  # LK-7: docker.io compatibility
    for candidate in candidates:
        found = attempt(candidate, candidate)
        if found is not None:
            return found
    if semantics.short_names_before_id_prefix:
        found = attempt(name, name)  # DIV-1: the raw name after the short names
        if found is not None:
            return found
    return _digests_and_repo_tags(model, original, flags, context)


def _digests_and_repo_tags(
    model: Model, name: str, flags: LookupFlags, context: Context
) -> Found | ModelError:
    """``lookupImageInDigestsAndRepoTags`` (LK-8, LN-4; DIV-3)."""
    ref = parse(name)
    if ref.digest:
        image = next((i for i in listing(model) if ref.digest in i.digests), None)
        if image is None:
            return _unknown(name)
        if context.semantics.digest_match_runs_lookup_checks:
            checked = _in_local_storage(model, image.id, flags, context)  # DIV-3
            if isinstance(checked, ModelError):
                return checked
        return Found(image, name)  # quirk (LK-8): the repository is not compared
    if not is_short_name(name):
        return _unknown(name)
    query = tag_name_only(ref)
    for image in listing(model):
        hit = in_repo_tags(image.names, query.name, query.tag)
        if hit is None:
            continue
        found = _in_local_storage(model, hit, flags, context)
        if isinstance(found, ModelError):
            return found
        if found is not None:
            return Found(found, hit)
    return _unknown(name)


def exists(model: Model, name: str, context: Context) -> bool | ModelError:
    """``Exists`` (EX-1): "image not known" is False; every in-scope image opens."""
    found = lookup_image(model, name, context)
    if isinstance(found, ModelError):
        return False if found.kind is ErrorKind.IMAGE_UNKNOWN else found
    return True


# ------------------------------------------------------------------ listing (LS, FL)

IsExternal = Callable[[str], bool]
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_SINGLE_USE = {"containers", "dangling", "intermediate", "readonly", "manifest"}


def glob_matches(pattern: str, text: str) -> bool:
    """Go ``path.Match`` (FL-R4): ``*`` and ``?`` never match ``/``, ``[^...]`` negates,
    ``\\`` escapes; a malformed pattern matches nothing."""
    regex = ""
    position = 0
    while position < len(pattern):
        char = pattern[position]
        position += 1
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "\\":
            if position >= len(pattern):
                return False
            regex += re.escape(pattern[position])
            position += 1
        elif char == "[":
            negate = position < len(pattern) and pattern[position] == "^"
            position += negate
            ranges: list[str] = []
            count = 0
            while True:
                if position >= len(pattern):
                    return False  # an unclosed class
                if pattern[position] == "]" and count:
                    position += 1
                    break
                low, position = _class_char(pattern, position)
                high = low
                if low is not None and position < len(pattern) and pattern[position] == "-":
                    high, position = _class_char(pattern, position + 1)
                if low is None or high is None:
                    return False
                count += 1
                if low <= high:  # a reversed range matches nothing
                    ranges.append(f"{re.escape(low)}-{re.escape(high)}")
            if ranges:
                regex += ("[^" if negate else "[") + "".join(ranges) + "]"
            else:
                regex += "[\\s\\S]" if negate else "(?!)"
        else:
            regex += re.escape(char)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _class_char(pattern: str, position: int) -> tuple[str | None, int]:
    if position >= len(pattern) or pattern[position] in "-]":
        return None, position
    if pattern[position] == "\\":
        position += 1
        if position >= len(pattern):
            return None, position
    return pattern[position], position + 1


def reference_candidates(name: str) -> list[str]:
    """FL-R2: what a ``reference`` pattern is matched against, for one stored name."""
    repository = parse(name).name
    parts = repository.split("/")
    path = "/".join(parts[1:]) if len(parts) >= 2 else repository
    suffix = name[len(repository) :]
    candidates = [name, path, name.rsplit("/", 1)[-1]]
    if suffix:
        candidates += [repository, path + suffix, repository.rsplit("/", 1)[-1]]
    return candidates


@dataclass(frozen=True, slots=True)
class Filter:
    """One compiled filter (FL-P1): its group (FL-P4), key, value, and whether negated."""

    group: str
    key: str
    value: str
    negate: bool = False
    created: int = 0  # the time of the image an after/since/before filter names


def _compile(
    model: Model, filters: Sequence[str], context: Context, is_external: IsExternal | None
) -> list[Filter] | ModelError:
    """Filter compilation (FL-P1..P7, FL-T1, FL-T4): the filters in order, or the first error."""
    semantics = context.semantics
    compiled: list[Filter] = []
    seen: dict[str, str] = {}
    for text in filters:
        negate = semantics.filter_negation and "!=" in text  # POD-F-15
        key, separator, value = text.partition("!=" if negate else "=")
        if not separator:
            return ModelError(ErrorKind.FILTER_INVALID_FORMAT, text)  # FL-P1
        if key in _SINGLE_USE:  # FL-P6, POD-F-10: checked before the value
            same_allowed = semantics.repeated_filter_same_value_allowed
            if key in seen and not (same_allowed and seen[key] == value):
                return ModelError(ErrorKind.FILTER_REPEATED, text)
            seen[key] = value
        created = 0
        if key in ("dangling", "intermediate", "readonly", "manifest"):
            if value not in _TRUE | _FALSE:
                return ModelError(ErrorKind.FILTER_INVALID_VALUE, text)  # FL-P7
        elif key == "containers":  # FL-T4
            if value not in ("true", "false", "external"):
                return ModelError(ErrorKind.FILTER_INVALID_VALUE, text)
            if value == "external" and is_external is None:
                return ModelError(ErrorKind.FILTER_NEEDS_CALLBACK, text)
        elif key in ("after", "since", "before"):  # FL-T1, FL-T2: looked up now
            found = lookup_image(model, value, context)
            if isinstance(found, ModelError):
                return ModelError(ErrorKind.FILTER_IMAGE_LOOKUP, text)
            created = found.image.created
        elif key == "label":
            if "*" in value.partition("=")[0]:
                raise OutOfScope("label keys with wildcards")
        elif key == "until":
            raise OutOfScope("the until filter")
        elif key not in ("id", "reference"):
            return ModelError(ErrorKind.FILTER_UNSUPPORTED, text)  # FL-P2
        group = "since" if key == "after" else key  # FL-P4
        compiled.append(Filter(group, key, value, negate, created))
    return compiled


class _Abort(Exception):
    """A filter failed on an image that is not corrupted: the listing fails (FL-P9)."""

    def __init__(self, error: ModelError) -> None:
        super().__init__(error.kind.value)
        self.error = error


def _matches(model: Model, spec: Filter, image: MImage, is_external: IsExternal | None) -> bool:
    """One filter on one image (FL-T4..T11), before negation."""
    key, value = spec.key, spec.value
    if key in ("dangling", "intermediate"):
        fact = is_dangling if key == "dangling" else is_intermediate  # FL-T5, FL-T6
        answer = fact(model, image)
        if isinstance(answer, ModelError):
            raise _Abort(answer)  # FL-P9: the image itself is not corrupted (scope)
        return answer == (value in _TRUE)
    if key == "readonly":
        return image.read_only == (value in _TRUE)  # FL-T9
    if key == "manifest":
        return bool(image.list_kind) == (value in _TRUE)  # FL-T10
    if key == "containers":
        users = containers_of(model, image.id)
        if value == "external":
            assert is_external is not None
            return all(is_external(c.id) for c in users)
        return bool(users) == (value == "true")
    if key in ("after", "since"):
        return image.created > spec.created  # FL-T1: strictly later
    if key == "before":
        return image.created < spec.created  # FL-T2: strictly earlier
    if key == "id":
        return image.id == value  # FL-T7: no prefix, no sha256:
    if key == "label":  # FL-T8
        label_key, _, label_value = value.partition("=")
        labels = image.config.labels if image.config is not None else None
        if not labels or label_key not in labels:
            return False
        return not label_value or labels[label_key] == label_value
    assert key == "reference"  # FL-T11, FL-R3
    return any(glob_matches(value, c) for n in image.names for c in reference_candidates(n))


def list_images(
    model: Model,
    filters: Sequence[str],
    context: Context,
    is_external: IsExternal | None = None,
    names: Sequence[str] = (),
) -> list[MImage] | ModelError:
    """``ListImages(names, {Filters})`` (LS-2..LS-5, FL-P3..P5; a failing filter, FL-P9)."""
    candidates: list[MImage] = []
    if names:
        for name in names:
            found = lookup_image(model, name, context)
            if isinstance(found, ModelError):
                return found  # LS-2: the first error aborts
            candidates.append(found.image)
    else:
        candidates = listing(model)
    if not filters or not candidates:
        return candidates  # LS-4: the filters are never compiled
    compiled = _compile(model, filters, context, is_external)
    if isinstance(compiled, ModelError):
        return compiled
    groups = list(dict.fromkeys(spec.group for spec in compiled))  # decision 3
    try:  # FL-P5: every group, one filter of each; both searches stop early
        return [
            image
            for image in candidates
            if all(
                any(
                    _matches(model, spec, image, is_external) != spec.negate
                    for spec in compiled
                    if spec.group == group
                )
                for group in groups
            )
        ]
    except _Abort as abort:
        return abort.error


# ------------------------------------------------------------------ removal (RM, EV)


@dataclass
class Report:
    """``RemoveImageReport`` (RM-R1..R4)."""

    id: str
    untagged: list[str] = field(default_factory=list)
    removed: bool = False
    size: int = 0


@dataclass
class Removal:
    """What ``RemoveImages`` returns and emits: reports, errors, events ``(type, ID, name)``."""

    reports: list[Report] = field(default_factory=list)
    errors: list[ModelError] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class _Loaded:
    """The seed's ``*Image`` object: the record as looked up, with the names it last loaded."""

    image: MImage
    names: list[str]


class _Remover:
    """One ``RemoveImages`` call on ``model`` (changed in place)."""

    def __init__(self, model: Model, options: RemoveOptions, context: Context) -> None:
        self.model = model
        self.options = options
        self.context = context
        self.reports: dict[str, Report] = {}
        self.result = Removal()

    def current(self, image_id: str) -> MImage | None:
        return next((i for i in self.model.images if i.id == image_id and i.store == 0), None)

    def remove(self, loaded: _Loaded, reference: str) -> tuple[list[str], ModelError | None]:
        """``removeRecursive(image, referencedBy)`` (RM-D0..D9); the IDs processed, the error."""
        image = loaded.image
        subject = reference or image.id
        if image.read_only:
            return [], ModelError(ErrorKind.READ_ONLY, subject)  # RM-D0: no report, no event
        processed: list[str] = []
        try:
            error = self._remove(loaded, reference, processed, subject)
        finally:
            self.result.events.append(("remove", image.id, reference))  # EV-2
        return processed, error

    def _remove(
        self, loaded: _Loaded, reference: str, processed: list[str], subject: str
    ) -> ModelError | None:
        image = loaded.image
        report = self.reports.get(image.id)
        if report is not None and report.removed:
            return None  # RM-D0: already removed in this call
        if report is None:
            report = self.reports[image.id] = Report(image.id)
        if self.options.with_size:
            report.size = image_size(self.model, image.id)  # RM-D1
        count = len(loaded.names)  # RM-U1: as last loaded
        if reference and count != 1:
            by_id = image.id.startswith(reference)  # RM-U2
            by_digest = reference.startswith("sha256:")
            if not self.options.force and count > 1:
                if by_id:
                    return ModelError(ErrorKind.NEEDS_FORCE_BY_ID, subject)  # RM-U3
                if by_digest:
                    return ModelError(ErrorKind.NEEDS_FORCE_BY_DIGEST, subject)  # RM-U4
            if not by_id and not by_digest:  # RM-U5; RM-U7 deletes
                error = self.untag(loaded, reference)
                if error is not None:
                    return error  # RM-U6
                report.untagged.append(reference)
                if loaded.names:
                    processed.append(image.id)
                    return None
        processed.append(image.id)  # RM-D2
        error = self.remove_containers(image, subject)
        if error is not None:
            return error
        # RM-D3, RM-D4: an error (an unreadable config, LT-C4, LT-P3; also that of an
        # image deleted earlier in this call) counts as no children and no parent.
        had_children = has_children(self.model, image) is True
        found_parent = parent(self.model, image)
        parent_image = found_parent if isinstance(found_parent, MImage) else None
        error = self.delete_image(image, subject)  # RM-D5
        if error is not None:
            return error
        report.untagged.extend(loaded.names)  # RM-D6
        if self.context.semantics.untag_events_on_delete:  # EV-4, POD-E-1
            self.result.events.extend(("untag", image.id, name) for name in loaded.names)
        report.removed = not had_children  # RM-D7, RM-D9
        if parent_image is None:
            return None
        if is_dangling(self.model, parent_image) is not True:  # RM-D8: now; an error is no
            return None
        parent_processed, error = self.remove(_Loaded(parent_image, list(parent_image.names)), "")
        processed.extend(parent_processed)
        return error

    def untag(self, loaded: _Loaded, reference: str) -> ModelError | None:
        """``Untag`` (RM-T2, RM-T3, EV-3): ``SetNames`` without the normalised name."""
        name = normalize_name(reference)
        self.result.events.append(("untag", loaded.image.id, name))
        if name not in loaded.names:
            return ModelError(ErrorKind.TAG_NOT_KNOWN, reference)
        kept = [n for n in loaded.names if n != name]
        if self.current(loaded.image.id) is not None:
            set_names(self.model, loaded.image.id, kept)
            loaded.names = kept
        # Otherwise the record is gone: SetNames fails with "layer not known", which
        # removal ignores (RM-E1); the object keeps the names it had loaded.
        return None

    def remove_containers(self, image: MImage, subject: str) -> ModelError | None:
        """``removeContainers`` (RM-C1..C5; decision 19)."""
        options = self.options
        if not options.force and not options.external_containers:
            return None  # RM-C1
        users = containers_of(self.model, image.id)  # RM-C3
        if not options.force:
            check = options.is_external_container
            for container in users:
                if check is None or not check(container.id):
                    return ModelError(ErrorKind.NOT_EXTERNAL_CONTAINER, container.id)  # RM-C4
        hook = options.force and options.container_hook
        refused = False
        for container in users:
            if options.force and not hook and container.podman_managed:
                refused = True  # decision 19
                continue
            delete_container(self.model, container.id)  # RM-C5
        return ModelError(ErrorKind.PODMAN_CONTAINER, subject) if refused else None

    def delete_image(self, image: MImage, subject: str) -> ModelError | None:
        """``DeleteImage(id, true)`` (RM-D5, SF-D-2..7)."""
        record = self.current(image.id)
        if record is None:
            return None  # RM-E1: not an image (any more)
        if containers_of(self.model, image.id):
            return ModelError(ErrorKind.IMAGE_IN_USE, subject)  # SF-D-3
        self.model.images.remove(record)
        for layer_id in layers_freed(self.model, record):
            delete_layer(self.model, layer_id)
        return None


def _lookup_flags(options: RemoveOptions) -> LookupFlags:
    """RM-3, RLK-7: the lookup options of removal."""
    if options.lookup_manifest:
        return LookupFlags(lookup_manifest=True)
    return LookupFlags(return_list_if_no_instance=True)


def remove_images(
    model: Model, names: Sequence[str], options: RemoveOptions, context: Context
) -> tuple[Model, Removal]:
    """``RemoveImages(names, options)`` (RM-1..RM-8): the store after it, and its results.

    ``model`` is not changed; the store after the call is returned.
    """
    after = model.copy()
    remover = _Remover(after, options, context)
    result = remover.result
    if options.external_containers and options.is_external_container is None:
        result.errors.append(ModelError(ErrorKind.EXTERNAL_CALLBACK))  # RM-2
        return after, result
    lookup_errors: list[ModelError] = []
    bundles: list[tuple[_Loaded, list[str]]] = []
    if names:  # RM-3: every name is looked up before anything is removed
        by_id: dict[str, tuple[_Loaded, list[str]]] = {}
        ignore_unknown = options.force and context.semantics.force_ignores_unknown_names
        for name in names:
            found = lookup_image(after, name, context, _lookup_flags(options))
            if isinstance(found, ModelError):
                if not (ignore_unknown and found.kind is ErrorKind.IMAGE_UNKNOWN):
                    lookup_errors.append(found)  # decision 16 drops it under force
                continue
            if found.image.id not in by_id:
                by_id[found.image.id] = (_Loaded(found.image, list(found.image.names)), [])
                bundles.append(by_id[found.image.id])
            by_id[found.image.id][1].append(found.resolved)
    else:  # RM-4
        listed = list_images(after, options.filters, context, options.is_external_container)
        if isinstance(listed, ModelError):
            result.errors.append(listed)
            return after, result
        if len({image.id for image in listed}) != len(listed):
            raise OutOfScope("an ID listed twice (LS-3)")
        bundles = [(_Loaded(image, list(image.names)), []) for image in listed]
    ordered: list[str] = []
    removal_errors: list[ModelError] = []
    for loaded, references in bundles:  # RM-6
        for reference in references or [""]:
            processed, error = remover.remove(loaded, reference)
            if error is not None:
                removal_errors.append(error)
            for image_id in processed:
                if image_id not in ordered:
                    ordered.append(image_id)
    result.reports = [remover.reports[i] for i in ordered]  # RM-7
    result.errors = lookup_errors + removal_errors  # RM-8
    return after, result
