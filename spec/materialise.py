"""Write an in-memory snapshot to disk as a real containers-storage store (vfs driver).

A test-only builder: the stateful and scenario tests generate store states in memory
(:mod:`libimage.spec.builders`, :mod:`libimage.spec.gen_snapshots`), then run the real
adapter on them. :func:`materialise` writes the store that a snapshot describes, in
the format of ``storage-format.md``: ``images.json``, ``layers.json`` and
``containers.json`` as containers-storage encodes them (SF-I, SF-Y, SF-C, through
:func:`libimage.adapters.atomic.encode_records`), every big-data item under its
encoded file name (SF-B-1, SF-B-2), an empty ``vfs/dir/<layer>`` per layer (SF-L-2),
``<drv>-containers/<id>/userdata`` per container (SF-D-C), and lock files with a
fresh last-writer token (SF-K-1, SF-K-4). Images and layers of additional store *n*
(``store_index`` *n*) go to the *n*-th of ``image_stores`` (SF-RO-2).

Reading the result back (:func:`libimage.adapters.store.read_snapshot`) gives a
snapshot with equal records, as long as the snapshot has no quarantined records and
no container that podman's database knows (there is no database here, decision 19).
:func:`rewrite_records` writes changed records of the read-write store again (for
test-only changes such as tagging or adding a container between two removals).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyrsistent import pvector

from libimage.adapters.atomic import encode_records
from libimage.adapters.content import big_data_file_name
from libimage.adapters.storage_conf import StoreOptions
from libimage.pure.snapshot import (
    Container,
    InMemoryContent,
    Layer,
    Snapshot,
    StoredImage,
    Unreadable,
)
from libimage.spec.builders import BuiltImage

DRIVER = "vfs"
SECOND_NS = 1_000_000_000


def go_time(ns: int) -> str:
    """Nanoseconds since the epoch as Go writes a UTC ``time.Time`` (SF-I-11).

    >>> go_time(1_700_000_000_500_000_000), go_time(0)
    ('2023-11-14T22:13:20.5Z', '1970-01-01T00:00:00Z')
    """
    seconds, fraction = divmod(ns, SECOND_NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def image_record(image: StoredImage) -> dict[str, Any]:
    """One ``images.json`` record (SF-I-1..11); empty fields are left out by the encoder."""
    return {
        "id": image.id,
        "digest": image.digest,
        "names": list(image.names),
        "names-history": list(image.names_history),
        "layer": image.top_layer,
        "mapped-layers": list(image.mapped_layers),
        "metadata": image.metadata,
        "big-data-names": list(image.big_data_names),
        "big-data-sizes": dict(image.big_data_sizes),
        "big-data-digests": dict(image.big_data_digests),
        "created": go_time(image.created),
    }


def layer_record(layer: Layer) -> dict[str, Any]:
    """One ``layers.json`` record (SF-Y-1..12)."""
    record: dict[str, Any] = {
        "id": layer.id,
        "names": list(layer.names),
        "parent": layer.parent,
        "created": go_time(layer.created),
        "compressed-size": layer.compressed_size,
        "diff-digest": layer.diff_digest,
        "diff-size": layer.diff_size,
        "big-data-names": list(layer.big_data_names),
    }
    if layer.incomplete:
        record["flags"] = {"incomplete": True}
    return record


def container_record(container: Container) -> dict[str, Any]:
    """One ``containers.json`` record (SF-C-1..6)."""
    return {
        "id": container.id,
        "names": list(container.names),
        "image": container.image_id,
        "layer": container.layer,
        "created": go_time(container.created),
    }


def _directory(*parts: str | Path) -> Path:
    path = Path(*parts)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _token(path: Path) -> None:
    """A lock file holding a new 64-byte last-writer token (SF-K-1, SF-K-4)."""
    path.write_bytes(secrets.token_hex(32).encode())
    path.chmod(0o644)


def _store_root(options: StoreOptions, store_index: int) -> str:
    return options.graph_root if store_index == 0 else options.image_stores[store_index - 1]


def _write_store_records(root: str, images: Sequence[StoredImage], layers: Sequence[Layer]) -> None:
    images_dir = _directory(root, f"{DRIVER}-images")
    layers_dir = _directory(root, f"{DRIVER}-layers")
    _write(images_dir / "images.json", encode_records("images", map(image_record, images)))
    _write(layers_dir / "layers.json", encode_records("layers", map(layer_record, layers)))
    _token(images_dir / "images.lock")
    _token(layers_dir / "layers.lock")
    _directory(root, DRIVER, "dir")
    for layer in layers:
        _directory(root, DRIVER, "dir", layer.id)


def _write_big_data(root: str, snapshot: Snapshot, image: StoredImage) -> None:
    directory = _directory(root, f"{DRIVER}-images", image.id)
    for key in image.big_data_names:
        data = snapshot.content.big_data(image, key)
        if not isinstance(data, Unreadable):
            _write(directory / big_data_file_name(key), data)


def materialise(
    snapshot: Snapshot, graph_root: str, run_root: str, image_stores: Sequence[str] = ()
) -> StoreOptions:
    """Write ``snapshot`` as a new vfs store; return the options that open it.

    ``image_stores`` are the roots of the read-only additional stores, one per
    ``store_index`` above 0 the snapshot uses (SF-RO-2). Every directory is created.
    """
    used = {image.store_index for image in snapshot.images}
    used |= {layer.store_index for layer in snapshot.layers}
    if max(used, default=0) > len(image_stores):
        raise ValueError(f"the snapshot uses {max(used)} additional stores")
    options = StoreOptions(
        graph_root=graph_root,
        run_root=run_root,
        driver=DRIVER,
        image_stores=tuple(image_stores),
        driver_options=tuple(f"{DRIVER}.imagestore={store}" for store in image_stores),
    )
    for directory in ("mounts", "tmp", DRIVER):
        _directory(graph_root, directory)
    for index in range(len(image_stores) + 1):
        root = _store_root(options, index)
        _write_store_records(
            root,
            [image for image in snapshot.images if image.store_index == index],
            [layer for layer in snapshot.layers if layer.store_index == index],
        )
        for image in snapshot.images:
            if image.store_index == index:
                _write_big_data(root, snapshot, image)
    run_layers = _directory(run_root, f"{DRIVER}-layers")
    _write(run_layers / "mountpoints.json", b"[]")
    _token(run_layers / "mountpoints.lock")
    _directory(run_root, f"{DRIVER}-containers")
    _write_containers(options, snapshot)
    return options


def _write_containers(options: StoreOptions, snapshot: Snapshot) -> None:
    containers_dir = _directory(options.graph_root, f"{DRIVER}-containers")
    records = encode_records("containers", map(container_record, snapshot.containers))
    _write(containers_dir / "containers.json", records)
    _token(containers_dir / "containers.lock")
    for container in snapshot.containers:
        _directory(containers_dir, container.id, "userdata")


def rewrite_records(snapshot: Snapshot, options: StoreOptions) -> None:
    """Write the read-write store's records of ``snapshot`` over those on disk.

    For test-only changes between two operations (a tag, a new or removed
    container): metadata files and tokens are rewritten, directories of new layers,
    containers and images are created, those of records that are gone are removed.
    Additional stores are read-only and left alone.
    """
    root = options.graph_root
    images = [image for image in snapshot.images if image.store_index == 0]
    layers = [layer for layer in snapshot.layers if layer.store_index == 0]
    _write_store_records(root, images, layers)
    for image in images:
        if not Path(root, f"{DRIVER}-images", image.id).exists():
            _write_big_data(root, snapshot, image)
    _write_containers(options, snapshot)
    kept = {layer.id for layer in layers}
    for entry in Path(root, DRIVER, "dir").iterdir():
        if entry.name not in kept:
            shutil.rmtree(entry)
    users = {container.id for container in snapshot.containers}
    for entry in Path(root, f"{DRIVER}-containers").iterdir():
        if entry.is_dir() and entry.name not in users:
            shutil.rmtree(entry)


# -- test-only changes of an in-memory snapshot, mirrored on disk by rewrite_records


def with_container(snapshot: Snapshot, container: Container, layer: Layer | None) -> Snapshot:
    """The snapshot with a new container record and its read-write layer (SF-C).

    The layer goes after the last read-write layer (read-write layers come before
    those of the additional stores, ST-1), as reading the store back would list it.
    """
    layers = snapshot.layers
    if layer is not None:
        position = sum(1 for existing in layers if existing.store_index == 0)
        layers = pvector([*layers[:position], layer, *layers[position:]])
    return replace(snapshot, layers=layers, containers=snapshot.containers.append(container))


def without_container(snapshot: Snapshot, container_id: str) -> Snapshot:
    """The snapshot after ``DeleteContainer`` (SF-D-C): the record and its read-write layer."""
    gone = {c.layer for c in snapshot.containers if c.id == container_id and c.layer}
    return replace(
        snapshot,
        layers=pvector(
            layer for layer in snapshot.layers if not (layer.id in gone and layer.store_index == 0)
        ),
        containers=pvector(c for c in snapshot.containers if c.id != container_id),
    )


def with_image(snapshot: Snapshot, built: BuiltImage) -> Snapshot:
    """The snapshot with a new read-write image, its new layers and its big data.

    The record goes after the last read-write image and its layers (those not stored
    yet) after the last read-write layer, as reading the store back would list them.
    The snapshot's content must be an :class:`InMemoryContent` (what the builders make).
    """
    if not isinstance(snapshot.content, InMemoryContent):
        raise TypeError("with_image needs a snapshot built in memory")
    images = list(snapshot.images)
    position = sum(1 for image in images if image.store_index == 0)
    images.insert(position, built.record)
    layers = list(snapshot.layers)
    known = {layer.id for layer in layers if layer.store_index == 0}
    position = sum(1 for layer in layers if layer.store_index == 0)
    for layer in built.layers:
        if layer.id not in known:
            layers.insert(position, layer)
            known.add(layer.id)
            position += 1
    items = snapshot.content.items.update({(built.id, k): v for k, v in built.blobs.items()})
    return replace(
        snapshot,
        images=pvector(images),
        layers=pvector(layers),
        content=replace(snapshot.content, items=items),
    )
