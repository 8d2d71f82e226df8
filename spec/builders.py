"""Builders of realistic in-memory snapshots, for tests and the oracle.

Every builder is deterministic: IDs come from seeds, so a test that builds the same
images twice gets equal snapshots. An image built here looks like what
containers/image writes on ``podman import``/``pull``/``commit`` (SF-B-5): the
big-data keys ``<config digest>``, ``manifest-<manifest digest>``, ``manifest`` and
``signature-<manifest hex>``, with ``big-data-sizes`` and ``big-data-digests``
(sha256 of the bytes, SF-B-3), the ``digest`` field set to the manifest digest and
the ``metadata`` string podman writes. The image ID is the hex of the config digest,
as for real images, unless a test asks for a particular ID (``image_id=``).

A snapshot is assembled from built images, layers and containers by
:func:`snapshot`; the big data goes into an :class:`InMemoryContent`.

>>> base = image("base", names=["localhost/base:latest"], layers=layer_chain("l1"))
>>> child = child_of(base, "child", names=["localhost/child:latest"])
>>> snap = snapshot([base, child])
>>> [len(i.names) for i in snap.images], len(snap.layers)
([1, 1], 2)
>>> snap.layers[1].parent == snap.layers[0].id == base.record.top_layer
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap

from libimage.pure.context import Platform
from libimage.pure.snapshot import (
    Container,
    ContainerID,
    ImageID,
    InMemoryContent,
    Layer,
    LayerID,
    Snapshot,
    StoredImage,
)

OCI = "oci"
DOCKER = "docker"

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# 2023-11-14T22:13:20Z: a fixed origin for record times derived from seeds.
BASE_CREATED_NS = 1_700_000_000 * 10**9
SECOND_NS = 10**9


def hex_id(*parts: object) -> str:
    """A deterministic 64-hex ID from ``parts`` (sha256 of their ``repr``).

    >>> hex_id("a") == hex_id("a") != hex_id("b")
    True
    """
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (SF-B-3 for every key that is not a schema1 manifest)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: object) -> bytes:
    """Compact JSON as Go's encoder writes it for these documents."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def seed_created(seed: object) -> int:
    """A deterministic record time (ns) for ``seed``, within a few days of the origin."""
    return BASE_CREATED_NS + (int(hex_id("created", seed)[:8], 16) % 400_000) * SECOND_NS


def rfc3339(ns: int) -> str:
    """``ns`` since the epoch as RFC 3339 in UTC, seconds only (history ``created``)."""
    seconds = ns // SECOND_NS
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    # Howard Hinnant's algorithm: days since 1970-01-01 -> (year, month, day).
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return (year + 1 if month <= 2 else year, month, day)


# ---------------------------------------------------------------------------
# Layers


def layer(
    seed: object,
    *,
    parent: Layer | str | None = None,
    size: int = 1024,
    measured: bool = True,
    layer_id: str | None = None,
    read_only: bool = False,
    store_index: int = 0,
    names: Iterable[str] = (),
) -> Layer:
    """A layer record (SF-Y) named by ``seed``.

    ``measured`` layers carry ``diff-digest`` and ``diff-size`` (as after a pull or
    import); unmeasured ones have neither, so their size comes from the content
    (``layer_diff_size``, IP-13) and they make an image fail to open (EX-1).
    """
    parent_id = parent.id if isinstance(parent, Layer) else (parent or "")
    return Layer(
        id=LayerID(layer_id or hex_id("layer", seed)),
        parent=parent_id,
        names=pvector(names),
        diff_digest=diff_id_of(seed) if measured else "",
        diff_size=size if measured else None,
        compressed_size=size if measured else None,
        created=seed_created(("layer", seed)),
        read_only=read_only,
        store_index=store_index,
    )


def diff_id_of(seed: object) -> str:
    """The uncompressed digest (diff ID) the builders give the layer named ``seed``."""
    return "sha256:" + hex_id("diff", seed)


def layer_chain(
    *seeds: object,
    size: int = 1024,
    on: Layer | None = None,
    read_only: bool = False,
    store_index: int = 0,
) -> tuple[Layer, ...]:
    """Layers named by ``seeds``, each the parent of the next, base first (optionally ``on``)."""
    chain: list[Layer] = [] if on is None else [on]
    for seed in seeds:
        chain.append(
            layer(
                seed,
                parent=chain[-1] if chain else None,
                size=size,
                read_only=read_only,
                store_index=store_index,
            )
        )
    return tuple(chain if on is None else chain[1:])


# ---------------------------------------------------------------------------
# Images


@dataclass(frozen=True, slots=True)
class History:
    """One config ``history`` entry (LT-2); ``created`` is an RFC 3339 string or None."""

    created_by: str = ""
    created: str | None = None
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, object]:
        entry: dict[str, object] = {}
        if self.created is not None:
            entry["created"] = self.created
        if self.created_by:
            entry["created_by"] = self.created_by
        if self.author:
            entry["author"] = self.author
        if self.comment:
            entry["comment"] = self.comment
        if self.empty_layer:
            entry["empty_layer"] = True
        return entry


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """A stored image record plus its big data and layers, ready for :func:`snapshot`.

    ``blobs`` maps big-data keys to bytes; ``layers`` is the image's layer chain,
    base first (empty for layer-less images and lists). ``diff_ids`` and ``history``
    are what the config holds, kept so that :func:`child_of` can extend them.
    """

    record: StoredImage
    blobs: PMap[str, bytes] = field(default_factory=pmap)
    layers: tuple[Layer, ...] = ()
    diff_ids: tuple[str, ...] = ()
    history: tuple[History, ...] = ()
    os: str = "linux"
    arch: str = "amd64"
    variant: str = ""
    media_type: str = OCI
    labels: PMap[str, str] | None = None

    @property
    def id(self) -> ImageID:
        return self.record.id

    @property
    def manifest_digest(self) -> str:
        """The digest of the ``manifest`` item ("" when there is none)."""
        return self.record.big_data_digests.get("manifest", "")

    @property
    def config_key(self) -> str:
        """The big-data key of the config blob ("" for lists)."""
        for key in self.record.big_data_names:
            if key.startswith("sha256:"):
                return key
        return ""


def image(
    seed: object,
    names: Iterable[str] = (),
    *,
    layers: Sequence[Layer] = (),
    labels: Mapping[str, str] | None = None,
    history: Sequence[History] | None = None,
    diff_ids: Sequence[str] | None = None,
    os: str = "linux",
    arch: str = "amd64",
    variant: str = "",
    media_type: str = OCI,
    created: int | None = None,
    config_created: str | None = None,
    image_id: str | None = None,
    set_digest: bool = True,
    signature: bool = True,
    metadata: str | None = None,
    names_history: Iterable[str] | None = None,
    read_only: bool = False,
    store_index: int = 0,
    extra_config: Mapping[str, object] | None = None,
) -> BuiltImage:
    """An image as containers/image stores it (SF-B-5), named by ``seed``.

    ``layers`` is the image's layer chain, base first; the top layer becomes the
    record's ``layer``. Without ``diff_ids``/``history`` the config gets one diff ID
    and one history entry per layer. ``media_type`` is ``OCI`` (what ``podman
    import`` writes; the manifest has no top-level ``mediaType``) or ``DOCKER``
    (docker v2s2, whose config ``variant`` is reported, ST-6). ``config_created``
    defaults to a time derived from the seed, which keeps IDs (the config digest)
    distinct per seed. ``created`` is the storage record time in ns (IP-7).
    """
    chain = tuple(layers)
    ids = tuple(diff_ids) if diff_ids is not None else tuple(lay.diff_digest for lay in chain)
    if history is None:
        history = tuple(
            History(created_by=f"/bin/sh -c #(nop) ADD layer {i} of {seed}", created=rfc3339(0))
            for i in range(len(chain))
        )
    labels_map = None if labels is None else pmap(labels)
    config = _config_json(
        seed=seed,
        os=os,
        arch=arch,
        variant=variant,
        labels=labels_map,
        history=tuple(history),
        diff_ids=ids,
        created=config_created,
        extra=extra_config,
    )
    built = BuiltImage(
        record=StoredImage(id=ImageID("0" * 64)),
        layers=chain,
        diff_ids=ids,
        history=tuple(history),
        os=os,
        arch=arch,
        variant=variant,
        media_type=media_type,
        labels=labels_map,
    )
    config_bytes = canonical_json(config)
    config_digest = sha256_digest(config_bytes)
    manifest_bytes = _manifest_json(media_type, config_digest, len(config_bytes), chain)
    manifest_digest = sha256_digest(manifest_bytes)
    blobs: dict[str, bytes] = {config_digest: config_bytes}
    blobs[f"manifest-{manifest_digest}"] = manifest_bytes
    blobs["manifest"] = manifest_bytes
    if signature:
        blobs["signature-" + manifest_digest.removeprefix("sha256:")] = b""
    if metadata is None:
        metadata = canonical_json({"signatures-sizes": {manifest_digest: []}}).decode()
    name_list = _dedupe(names)
    record = StoredImage(
        id=ImageID(image_id or config_digest.removeprefix("sha256:")),
        digest=manifest_digest if set_digest else "",
        names=pvector(name_list),
        names_history=pvector(
            _dedupe(names_history) if names_history is not None else list(reversed(name_list))
        ),
        top_layer=chain[-1].id if chain else "",
        metadata=metadata,
        created=seed_created(seed) if created is None else created,
        read_only=read_only,
        store_index=store_index,
    )
    return with_blobs(replace(built, record=record), blobs)


def _dedupe(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _config_json(
    *,
    seed: object,
    os: str,
    arch: str,
    variant: str,
    labels: Mapping[str, str] | None,
    history: Sequence[History],
    diff_ids: Sequence[str],
    created: str | None,
    extra: Mapping[str, object] | None,
) -> dict[str, object]:
    config: dict[str, object] = {
        "created": created if created is not None else rfc3339(seed_created(("config", seed))),
        "architecture": arch,
        "os": os,
    }
    if variant:
        config["variant"] = variant
    config["config"] = {} if labels is None else {"Labels": dict(labels)}
    config["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    config["history"] = [entry.to_json() for entry in history]
    if extra:
        config.update(extra)
    return config


def _manifest_json(
    media_type: str,
    config_digest: str,
    config_size: int,
    chain: Sequence[Layer],
) -> bytes:
    # The manifest names each layer blob; the builders' blobs are uncompressed.
    sizes = [lay.diff_size or 0 for lay in chain]
    digests = [lay.diff_digest or diff_id_of(lay.id) for lay in chain]
    if media_type == DOCKER:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_DOCKER_MANIFEST,
                "config": {
                    "mediaType": MEDIA_DOCKER_CONFIG,
                    "size": config_size,
                    "digest": config_digest,
                },
                "layers": [
                    {"mediaType": MEDIA_DOCKER_LAYER, "size": size, "digest": digest}
                    for size, digest in zip(sizes, digests, strict=False)
                ],
            }
        )
    if media_type != OCI:
        raise ValueError(f"media_type must be {OCI!r} or {DOCKER!r}, not {media_type!r}")
    # podman import writes an OCI manifest without a top-level mediaType (observed).
    return canonical_json(
        {
            "schemaVersion": 2,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [
                {"mediaType": MEDIA_OCI_LAYER, "digest": digest, "size": size}
                for size, digest in zip(sizes, digests, strict=False)
            ],
        }
    )


def with_blobs(built: BuiltImage, blobs: Mapping[str, bytes]) -> BuiltImage:
    """Replace the image's big data by ``blobs``, recomputing names, sizes and digests (SF-B-4).

    Keys keep their order in ``blobs`` (``big-data-names`` is insertion order).
    """
    return replace(
        built,
        blobs=pmap(blobs),
        record=replace(
            built.record,
            big_data_names=pvector(blobs),
            big_data_sizes=pmap({key: len(data) for key, data in blobs.items()}),
            big_data_digests=pmap({key: sha256_digest(data) for key, data in blobs.items()}),
        ),
    )


def set_blob(built: BuiltImage, key: str, data: bytes) -> BuiltImage:
    """Add or overwrite one big-data item, keeping sizes and digests right."""
    blobs = dict(built.blobs)
    blobs[key] = data
    return with_blobs(built, blobs)


def child_of(
    parent: BuiltImage,
    seed: object,
    names: Iterable[str] = (),
    *,
    new_layer: bool = True,
    created_by: str | None = None,
    layer_size: int = 1024,
    labels: Mapping[str, str] | None = None,
    media_type: str | None = None,
    os: str | None = None,
    arch: str | None = None,
    variant: str | None = None,
    created: int | None = None,
    image_id: str | None = None,
) -> BuiltImage:
    """A child of ``parent`` under LT-3: diff IDs extended, history extended by exactly one.

    With ``new_layer`` (LT-4, ``buildah copy`` + ``commit``) the child gets one more
    layer on top of the parent's and one more diff ID. Without it (LT-5, a metadata
    change such as ``LABEL``) it shares the parent's top layer, its diff IDs are the
    parent's and the new history entry has ``empty_layer: true``. Labels, platform,
    media type and store default to the parent's.
    """
    chain = parent.layers
    diff_ids = parent.diff_ids
    if new_layer:
        top = layer(
            ("child-layer", seed),
            parent=chain[-1] if chain else None,
            size=layer_size,
            read_only=parent.record.read_only,
            store_index=parent.record.store_index,
        )
        chain = (*chain, top)
        diff_ids = (*diff_ids, top.diff_digest)
    entry = History(
        created_by=created_by or f"/bin/sh -c #(nop) STEP {seed}",
        created=rfc3339(seed_created(("history", seed))),
        empty_layer=not new_layer,
    )
    return image(
        seed,
        names,
        layers=chain,
        diff_ids=diff_ids,
        history=(*parent.history, entry),
        labels=parent.labels if labels is None else labels,
        media_type=parent.media_type if media_type is None else media_type,
        os=parent.os if os is None else os,
        arch=parent.arch if arch is None else arch,
        variant=parent.variant if variant is None else variant,
        created=created,
        image_id=image_id,
        read_only=parent.record.read_only,
        store_index=parent.record.store_index,
    )


def manifest_list(
    seed: object,
    names: Iterable[str] = (),
    *,
    entries: Sequence[tuple[BuiltImage | str, Platform | None]] = (),
    kind: str = DOCKER,
    instances: Mapping[str, str] | None = None,
    image_id: str | None = None,
    created: int | None = None,
    read_only: bool = False,
    store_index: int = 0,
) -> BuiltImage:
    """A manifest list as ``podman manifest create``/``add`` stores it (ML-1, ML-2).

    The list (docker manifest list for ``kind=DOCKER``, OCI index for ``kind=OCI``)
    is the ``manifest`` item; ``instances.json`` maps instance digests to image IDs.
    Each entry is an instance (a built image, whose manifest digest is used, or a
    digest string) and its platform; ``None`` writes an OCI entry without a
    ``platform`` object (docker lists always carry one). The list has no layer and
    no config, and its ID is random in real stores (here: from the seed).
    """
    descriptors: list[dict[str, object]] = []
    mapping: dict[str, str] = {}
    for instance, platform in entries:
        if isinstance(instance, BuiltImage):
            digest = instance.manifest_digest
            size = instance.record.big_data_sizes.get("manifest", 0)
            media = MEDIA_DOCKER_MANIFEST if instance.media_type == DOCKER else MEDIA_OCI_MANIFEST
            mapping[digest] = instance.id
        else:
            digest, size = instance, 0
            media = MEDIA_DOCKER_MANIFEST if kind == DOCKER else MEDIA_OCI_MANIFEST
        descriptor: dict[str, object] = {"mediaType": media, "size": size, "digest": digest}
        if platform is not None or kind == DOCKER:
            described = platform or Platform("", "")
            spec: dict[str, object] = {
                "architecture": described.architecture,
                "os": described.os,
            }
            if described.variant:
                spec["variant"] = described.variant
            descriptor["platform"] = spec
        descriptors.append(descriptor)
    if kind == DOCKER:
        document: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": MEDIA_DOCKER_LIST,
            "manifests": descriptors,
        }
    elif kind == OCI:
        document = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": descriptors}
    else:
        raise ValueError(f"kind must be {OCI!r} or {DOCKER!r}, not {kind!r}")
    list_bytes = canonical_json(document)
    instances_bytes = canonical_json(dict(instances) if instances is not None else mapping)
    list_digest = sha256_digest(list_bytes)
    name_list = _dedupe(names)
    record = StoredImage(
        id=ImageID(image_id or hex_id("list", seed)),
        digest=list_digest,
        names=pvector(name_list),
        names_history=pvector(reversed(name_list)),
        created=seed_created(seed) if created is None else created,
        read_only=read_only,
        store_index=store_index,
    )
    built = BuiltImage(record=record, media_type=kind, os="", arch="")
    return with_blobs(built, {"manifest": list_bytes, "instances.json": instances_bytes})


def without_blob(built: BuiltImage, key: str, *, keep_size: bool = True) -> BuiltImage:
    """A corrupted copy: big-data item ``key`` is gone from the content.

    With ``keep_size`` the record still lists the key with its size and digest (what
    a deleted file looks like to podman: the listing works, opening fails).
    """
    if not keep_size:
        blobs = {k: v for k, v in built.blobs.items() if k != key}
        return with_blobs(built, blobs)
    return replace(built, blobs=built.blobs.discard(key))


def missing_manifest(built: BuiltImage) -> BuiltImage:
    """An image whose ``manifest`` file is gone (LK-9 step 2 tolerates it; EX-1 does not)."""
    return without_blob(built, "manifest")


def missing_config(built: BuiltImage) -> BuiltImage:
    """An image whose config blob is gone (it still opens, EX-1; its config fails, LT-C4, IP-10)."""
    return without_blob(built, built.config_key)


def with_record(built: BuiltImage, **changes: object) -> BuiltImage:
    """The same image with record fields replaced (``names=``, ``metadata=``, ``created=``...).

    Sequences and mappings are converted to pyrsistent collections.
    """
    fixed: dict[str, object] = {}
    for key, value in changes.items():
        if isinstance(value, Mapping):
            fixed[key] = pmap(value)
        elif isinstance(value, list | tuple):
            fixed[key] = pvector(value)
        else:
            fixed[key] = value
    return replace(built, record=replace(built.record, **fixed))  # type: ignore[arg-type]


def in_additional_store(built: BuiltImage, store_index: int = 1) -> BuiltImage:
    """The image and its layers as loaded from read-only additional store ``store_index`` (IP-4)."""
    return replace(
        built,
        record=replace(built.record, read_only=True, store_index=store_index),
        layers=tuple(replace(lay, read_only=True, store_index=store_index) for lay in built.layers),
    )


# ---------------------------------------------------------------------------
# Containers


@dataclass(frozen=True, slots=True)
class BuiltContainer:
    """A container record plus its read-write layer (a child of the image's top layer)."""

    record: Container
    layer: Layer | None = None

    @property
    def id(self) -> ContainerID:
        return self.record.id


def container(
    seed: object,
    of: BuiltImage | StoredImage | str,
    names: Iterable[str] = (),
    *,
    podman_managed: bool = False,
    with_layer: bool = True,
) -> BuiltContainer:
    """A storage container using image ``of`` (SF-C), with its read-write layer."""
    image_id: str
    if isinstance(of, BuiltImage):
        image_id, top = of.id, of.record.top_layer
    elif isinstance(of, StoredImage):
        image_id, top = of.id, of.top_layer
    else:
        image_id, top = of, ""
    rw_layer = None
    if with_layer:
        rw_layer = Layer(
            id=LayerID(hex_id("container-layer", seed)),
            parent=top,
            created=seed_created(("container-layer", seed)),
        )
    record = Container(
        id=ContainerID(hex_id("container", seed)),
        image_id=image_id,
        names=pvector(names),
        layer=rw_layer.id if rw_layer else "",
        created=seed_created(("container", seed)),
        podman_managed=podman_managed,
    )
    return BuiltContainer(record=record, layer=rw_layer)


# ---------------------------------------------------------------------------
# Snapshots


def snapshot(
    images: Iterable[BuiltImage | StoredImage] = (),
    layers: Iterable[Layer] = (),
    containers: Iterable[BuiltContainer | Container] = (),
    *,
    layer_sizes: Mapping[str, int] | None = None,
    extra_blobs: Mapping[tuple[str, str], bytes] | None = None,
) -> Snapshot:
    """A snapshot of ``images`` (store order as given), their layers and ``containers``.

    Layers are gathered from the images (each layer once, the first time it is
    seen), then ``layers``, then the containers' layers; read-write layers come
    before each additional store's layers (ST-1). Images are stably ordered by
    store. Unmeasured layers (no ``diff-digest``) get their size from ``layer_sizes``,
    else 0.
    """
    image_list = list(images)
    records = [item.record if isinstance(item, BuiltImage) else item for item in image_list]
    records.sort(key=lambda record: record.store_index)
    collected: dict[tuple[str, int], Layer] = {}
    for item in image_list:
        if isinstance(item, BuiltImage):
            for lay in item.layers:
                collected.setdefault((lay.id, lay.store_index), lay)
    for lay in layers:
        collected.setdefault((lay.id, lay.store_index), lay)
    container_records: list[Container] = []
    for entry in containers:
        if isinstance(entry, BuiltContainer):
            container_records.append(entry.record)
            if entry.layer is not None:
                collected.setdefault((entry.layer.id, entry.layer.store_index), entry.layer)
        else:
            container_records.append(entry)
    layer_list = sorted(collected.values(), key=lambda lay: lay.store_index)
    items: dict[tuple[str, str], bytes] = {}
    for item in image_list:
        if isinstance(item, BuiltImage):
            for key, data in item.blobs.items():
                items.setdefault((item.id, key), data)
    items.update(extra_blobs or {})
    sizes: dict[str, int] = {
        lay.id: lay.diff_size or 0 for lay in layer_list if not lay.diff_digest
    }
    sizes.update(layer_sizes or {})
    return Snapshot(
        images=pvector(records),
        layers=pvector(layer_list),
        containers=pvector(container_records),
        content=InMemoryContent(items=pmap(items), layer_sizes=pmap(sizes)),
    )


def set_names(snap: Snapshot, image_id: str, names: Iterable[str]) -> Snapshot:
    """``SetNames`` on the read-write store (SF-N-3): dedupe, steal, prepend to history.

    Every new name is removed from other read-write images that hold it; each name of
    the new list is moved to the front of ``names-history`` (the last one first).
    """
    wanted = _dedupe(names)
    position = _rw_position(snap, image_id)
    images = list(snap.images)
    for index, other in enumerate(images):
        if index != position and other.store_index == 0:
            kept = [name for name in other.names if name not in wanted]
            if len(kept) != len(other.names):
                images[index] = replace(other, names=pvector(kept))
    target = images[position]
    history = list(target.names_history)
    for name in wanted:
        history = [name, *(old for old in history if old != name)]
    images[position] = replace(target, names=pvector(wanted), names_history=pvector(history))
    return replace(snap, images=pvector(images))


def add_name(snap: Snapshot, image_id: str, name: str) -> Snapshot:
    """Tag: ``SetNames`` with ``name`` appended (SF-N-5); the old owner loses it."""
    current = list(snap.images[_rw_position(snap, image_id)].names)
    return set_names(snap, image_id, [*current, name])


def remove_name(snap: Snapshot, image_id: str, name: str) -> Snapshot:
    """Untag: ``SetNames`` without ``name`` (SF-N-5); history keeps the old name."""
    current = list(snap.images[_rw_position(snap, image_id)].names)
    return set_names(snap, image_id, [n for n in current if n != name])


def _rw_position(snap: Snapshot, image_id: str) -> int:
    for index, candidate in enumerate(snap.images):
        if candidate.id == image_id and candidate.store_index == 0:
            return index
    raise KeyError(f"no read-write image with ID {image_id!r}")


def remove_image(snap: Snapshot, image_id: str) -> Snapshot:
    """The snapshot without the read-write record ``image_id`` (layers and big data stay)."""
    position = _rw_position(snap, image_id)
    return replace(snap, images=snap.images.delete(position))
