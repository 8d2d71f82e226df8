"""Synthesise a containers-storage store (vfs driver) for benchmarks and large-store tests.

``python -m bench.synth --root DIR --images N [--seed S]`` writes a store that podman
4.3.1 reads cleanly, without running podman or buildah: the metadata files, the
big-data files and the driver directories are written directly, in the format of
storage-format.md, so that 100,000 images take minutes rather than hours.

What the store holds (all of it deterministic from the seed, except lock tokens):

* images named in a few registries (``localhost/``, ``docker.io/library/``,
  ``quay.io/org/``, ``registry.example.com:5000/``), several tags per repository,
  some images with several names or a digest-only name, some with none;
* OCI and Docker schema 2 manifests, each stored under ``manifest`` and
  ``manifest-<digest>`` (SF-B-5), the config under its digest, an empty
  ``signature-<hex>`` item; big-data file names encoded per SF-B-2 and sizes and
  digests recorded per SF-I-8..10 and SF-B-3;
* shared base layers; parent/child chains whose child config extends the parent's
  ``rootfs.diff_ids`` and ``history`` by exactly one entry (LT-3), some through an
  ``empty_layer`` entry so that the child sits on its parent's top layer (LT-5);
  intermediate images (unnamed parents of named children, IP-6) and dangling ones
  (unnamed leaves, IP-5);
* manifest lists (Docker lists and OCI indexes) whose instances are images of the
  store, with ``instances.json`` as podman writes it;
* buildah-style storage containers: a containers.json record, a read-write layer on
  the image's top layer and ``<root>/vfs-containers/<id>/userdata/`` (SF-C, SF-D-C);
  there is no podman database, so every container is external to podman.

Layers are empty directories: their records carry synthetic diff and compressed
digests and sizes (so ``Size`` follows IP-13 from the records alone), but no layer
content and no tar-split exist. Listing, inspecting and removing images never read
either; exporting (``podman save``/``push``) would. ``manifest`` and
``manifest-<digest>`` are one file with two links, which halves the manifest blocks;
podman replaces big data by rename (SF-A), so rewriting one never changes the other.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import secrets
import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "SynthContainer",
    "SynthImage",
    "SynthSummary",
    "big_data_file_name",
    "format_go_time",
    "main",
    "synthesise",
]

DRIVER = "vfs"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REGISTRY_PREFIXES = (
    "localhost/",
    "docker.io/library/",
    "quay.io/org/",
    "registry.example.com:5000/",
)
PREFIX_WEIGHTS = (30, 25, 25, 20)
REFERENCE_PATTERN = "quay.io/org/*"
MISSING_NAME = "localhost/synth-missing-image:never"
DISTROS = ("alpine", "debian", "ubuntu", "fedora", "busybox", "centos", "archlinux", "rockylinux")
REPO_WORDS = (
    "api", "web", "worker", "db", "cache", "proxy", "gateway", "auth", "billing", "search",
    "etl", "cron", "frontend", "backend", "metrics", "logs", "queue", "mailer", "scheduler",
    "reports", "storage", "notify", "ingest", "ledger", "catalog", "orders", "payments",
    "profile", "session", "tracker", "builder", "runner", "agent", "controller", "operator",
)  # fmt: skip
EMPTY_STEPS = (
    "/bin/sh -c #(nop)  ENV APP_ENV=production",
    "/bin/sh -c #(nop) WORKDIR /app",
    "/bin/sh -c #(nop)  EXPOSE 8080",
    '/bin/sh -c #(nop)  CMD ["/app/run"]',
    '/bin/sh -c #(nop)  ENTRYPOINT ["/entrypoint.sh"]',
    "/bin/sh -c #(nop)  USER 1000",
)
LAYER_STEPS = (
    "/bin/sh -c apk add --no-cache ca-certificates",
    "/bin/sh -c apt-get update && apt-get install -y curl",
    "/bin/sh -c make install",
    "/bin/sh -c pip install -r requirements.txt",
    "/bin/sh -c npm ci --omit=dev",
)
# Created times spread over three years from 2021-01-01T00:00:00Z.
CLOCK_START_NS = 1_609_459_200 * 10**9
CLOCK_SPAN_NS = 3 * 365 * 86_400 * 10**9
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class SynthImage:
    """One synthesised image as podman must report it.

    ``parent_id`` is the image LT-3/LT-P2 make its parent (empty when none);
    ``dangling``/``intermediate`` follow IP-5/IP-6; ``size`` follows IP-13.
    ``instances`` are the manifest digests a manifest list refers to.
    """

    id: str
    names: tuple[str, ...]
    digest: str
    top_layer: str
    created: str
    parent_id: str
    dangling: bool
    intermediate: bool
    manifest_list: bool
    size: int
    labels: tuple[tuple[str, str], ...] = ()
    instances: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SynthContainer:
    """A buildah-style storage container (SF-C): no podman database entry."""

    id: str
    name: str
    image_id: str
    layer: str


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """What was written, plus samples that benchmarks and tests need.

    ``images`` is in store order (images.json order). The samples:
    ``full_name`` (a stored tag), ``short_name`` (a ``localhost/`` tag without its
    domain; resolves locally), ``id_prefix`` (a 12-character prefix unique among the
    image IDs), ``missing_name`` (no image has it), ``names_to_remove`` (up to 100
    names of distinct single-name images without containers, children, list
    membership or an unnamed parent, so that ``rmi`` of each deletes exactly that
    image), ``reference_pattern`` and the IDs it
    matches (FL-R), a parent/child pair, a dangling and an intermediate image, a
    manifest list name.
    """

    root: Path
    seed: int
    images: tuple[SynthImage, ...]
    containers: tuple[SynthContainer, ...]
    layer_count: int
    seconds: float
    full_name: str
    full_name_id: str
    short_name: str
    short_name_id: str
    id_prefix: str
    id_prefix_id: str
    missing_name: str
    names_to_remove: tuple[str, ...]
    reference_pattern: str
    reference_matches: tuple[str, ...]
    parent_child: tuple[str, str] | None
    dangling_id: str
    intermediate_id: str
    manifest_list_name: str

    @property
    def image_count(self) -> int:
        return len(self.images)

    def counts(self) -> dict[str, int]:
        """Counts by kind, for reports."""
        return {
            "images": len(self.images),
            "named": sum(1 for i in self.images if i.names),
            "names": sum(len(i.names) for i in self.images),
            "dangling": sum(1 for i in self.images if i.dangling),
            "intermediate": sum(1 for i in self.images if i.intermediate),
            "with_parent": sum(1 for i in self.images if i.parent_id),
            "manifest_lists": sum(1 for i in self.images if i.manifest_list),
            "layers": self.layer_count,
            "containers": len(self.containers),
        }

    def samples(self) -> dict[str, Any]:
        """The sample names and IDs as plain JSON values."""
        return {
            "full_name": self.full_name,
            "full_name_id": self.full_name_id,
            "short_name": self.short_name,
            "short_name_id": self.short_name_id,
            "id_prefix": self.id_prefix,
            "id_prefix_id": self.id_prefix_id,
            "missing_name": self.missing_name,
            "names_to_remove": list(self.names_to_remove),
            "reference_pattern": self.reference_pattern,
            "reference_match_count": len(self.reference_matches),
            "parent_child": list(self.parent_child) if self.parent_child else None,
            "dangling_id": self.dangling_id,
            "intermediate_id": self.intermediate_id,
            "manifest_list_name": self.manifest_list_name,
        }

    def to_json(self, *, full: bool = False) -> dict[str, Any]:
        """Counts and samples; with ``full``, every image and container too."""
        out: dict[str, Any] = {
            "root": str(self.root),
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "samples": self.samples(),
        }
        if full:
            out["images"] = [
                {
                    "id": i.id,
                    "names": list(i.names),
                    "digest": i.digest,
                    "top_layer": i.top_layer,
                    "created": i.created,
                    "parent_id": i.parent_id,
                    "dangling": i.dangling,
                    "intermediate": i.intermediate,
                    "manifest_list": i.manifest_list,
                    "size": i.size,
                    "labels": dict(i.labels),
                    "instances": list(i.instances),
                }
                for i in self.images
            ]
            out["containers"] = [
                {"id": c.id, "name": c.name, "image": c.image_id, "layer": c.layer}
                for c in self.containers
            ]
        return out


# --------------------------------------------------------------------------- format helpers


def big_data_file_name(key: str) -> str:
    """The file name of big-data item ``key`` (SF-B-2).

    >>> big_data_file_name("manifest")
    'manifest'
    >>> big_data_file_name("sha256:ab")
    '=c2hhMjU2OmFi'
    """
    if not key:
        raise ValueError("not a valid name for a big data item")
    if all(c == "." or "0" <= c <= "9" or "a" <= c <= "z" for c in key):
        return key
    encoded = "=" + base64.b64encode(key.encode()).decode("ascii")
    if "/" in encoded:
        # The Go writer would try to create a subdirectory and fail (SF-B-2).
        raise ValueError(f"big data key {key!r} encodes to a path: {encoded!r}")
    return encoded


def format_go_time(ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds, trailing zeros trimmed, as Go writes it (SF-I-11).

    >>> format_go_time(1_609_459_200_120_000_000)
    '2021-01-01T00:00:00.12Z'
    >>> format_go_time(1_609_459_200 * 10**9)
    '2021-01-01T00:00:00Z'
    """
    seconds, nanos = divmod(ns, 10**9)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- builder state


@dataclass(slots=True)
class _Layer:
    id: str
    parent: str
    created: str
    diff_digest: str = ""
    diff_size: int = 0
    compressed_digest: str = ""
    compressed_size: int = 0

    def record(self) -> dict[str, Any]:
        # Field order of containers/storage's Layer struct (SF-Y).
        out: dict[str, Any] = {"id": self.id}
        if self.parent:
            out["parent"] = self.parent
        out["created"] = self.created
        if self.diff_digest:
            out["compressed-diff-digest"] = self.compressed_digest
            out["compressed-size"] = self.compressed_size
            out["diff-digest"] = self.diff_digest
            out["diff-size"] = self.diff_size
            out["compression"] = 2  # gzip, matching the manifests' layer media types
            out["uidset"] = [0]
            out["gidset"] = [0]
        return out


@dataclass(slots=True)
class _Rootfs:
    """The part of an OCI config that LT-3 compares, plus the layers behind it."""

    layers: list[_Layer]
    history: list[dict[str, Any]]
    labels: dict[str, str]
    arch: str = "amd64"
    variant: str = ""

    @property
    def top(self) -> str:
        return self.layers[-1].id if self.layers else ""


@dataclass(slots=True)
class _Image:
    id: str
    names: list[str]
    digest: str
    top_layer: str
    created: str
    metadata: str
    big_data: list[tuple[str, bytes]]
    link_manifest: bool  # ``manifest`` and ``manifest-<digest>`` are the same bytes
    rootfs: _Rootfs | None
    fmt: str  # "oci" or "docker"
    parent: int = -1
    children: int = 0
    instances: tuple[str, ...] = ()
    is_list: bool = False
    in_list: bool = False
    has_history: bool = True


@dataclass(slots=True)
class _Container:
    id: str
    name: str
    image: int
    layer: _Layer


@dataclass(slots=True)
class _Repo:
    prefix: str
    name: str
    style: int
    tags: int = 0
    has_latest: bool = False


@dataclass(slots=True)
class _Builder:
    """Generates images in creation order; nothing touches the disk here."""

    rng: random.Random
    store_ref: str  # ``[vfs@root+runroot]`` for instances.json
    clock_ns: int = CLOCK_START_NS
    step_ns: int = 10**9
    layer_seq: int = 0
    images: list[_Image] = field(default_factory=list)
    layers: list[_Layer] = field(default_factory=list)
    containers: list[_Container] = field(default_factory=list)
    bases: list[_Rootfs] = field(default_factory=list)
    used_names: set[str] = field(default_factory=set)
    repos: dict[str, list[_Repo]] = field(default_factory=dict)
    repo_names: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)

    # ---- time, digests, layers

    def tick(self) -> int:
        self.clock_ns += self.rng.randrange(1, 2 * self.step_ns)
        return self.clock_ns

    def new_layer(self, parent: _Layer | None, created: str, base: bool = False) -> _Layer:
        self.layer_seq += 1
        token = f"synth-layer/{self.rng.getrandbits(64):016x}/{self.layer_seq}"
        diff_digest = _sha256(token.encode())
        compressed_digest = _sha256(b"gzip:" + token.encode())
        size = (
            self.rng.randrange(2_000_000, 80_000_000)
            if base
            else self.rng.randrange(512, 20_000_000)
        )
        if parent is None:
            layer_id = diff_digest.removeprefix("sha256:")
        else:
            # Chain ID, as containers/image names pulled layers.
            chain = f"sha256:{parent.id} {diff_digest}".encode()
            layer_id = hashlib.sha256(chain).hexdigest()
        layer = _Layer(
            id=layer_id,
            parent=parent.id if parent else "",
            created=created,
            diff_digest=diff_digest,
            diff_size=size,
            compressed_digest=compressed_digest,
            compressed_size=max(64, size * 2 // 5),
        )
        self.layers.append(layer)
        return layer

    def rw_layer(self, parent: str, created: str) -> _Layer:
        layer = _Layer(id=f"{self.rng.getrandbits(256):064x}", parent=parent, created=created)
        self.layers.append(layer)
        return layer

    # ---- configs and manifests

    def extend(self, rootfs: _Rootfs, steps: Sequence[bool], when_ns: int) -> _Rootfs:
        """A copy of ``rootfs`` with one history entry per step; True steps add a layer."""
        layers = list(rootfs.layers)
        history = list(rootfs.history)
        created = format_go_time(when_ns)
        for offset, makes_layer in enumerate(steps):
            step_time = format_go_time(when_ns - (len(steps) - offset) * 1_000_003)
            if makes_layer:
                layer = self.new_layer(layers[-1] if layers else None, created)
                layers.append(layer)
                history.append({"created": step_time, "created_by": self.rng.choice(LAYER_STEPS)})
            else:
                history.append(
                    {
                        "created": step_time,
                        "created_by": self.rng.choice(EMPTY_STEPS),
                        "empty_layer": True,
                    }
                )
        labels = dict(rootfs.labels)
        if self.rng.random() < 0.4:
            labels["org.opencontainers.image.revision"] = f"{self.rng.getrandbits(28):07x}"
            labels["com.example.team"] = self.rng.choice(("core", "data", "edge", "infra"))
        if self.rng.random() < 0.1:
            labels["env"] = self.rng.choice(("prod", "staging", "dev"))
        return _Rootfs(layers, history, labels, rootfs.arch, rootfs.variant)

    def config_bytes(self, rootfs: _Rootfs, created_ns: int) -> bytes:
        inner: dict[str, Any] = {"Env": [PATH_ENV], "Cmd": ["/bin/sh"]}
        if rootfs.labels:
            inner["Labels"] = dict(sorted(rootfs.labels.items()))
        config: dict[str, Any] = {
            "created": format_go_time(created_ns),
            "architecture": rootfs.arch,
            "os": "linux",
        }
        if rootfs.variant:
            config["variant"] = rootfs.variant
        config["config"] = inner
        config["rootfs"] = {"type": "layers", "diff_ids": [x.diff_digest for x in rootfs.layers]}
        config["history"] = rootfs.history
        return _compact(config)

    @staticmethod
    def manifest_bytes(rootfs: _Rootfs, config: bytes, fmt: str) -> bytes:
        layer_type = DOCKER_LAYER_GZIP if fmt == "docker" else OCI_LAYER_GZIP
        layers = [
            {"mediaType": layer_type, "size": x.compressed_size, "digest": x.compressed_digest}
            for x in rootfs.layers
        ]
        if fmt == "docker":
            return _compact(
                {
                    "schemaVersion": 2,
                    "mediaType": DOCKER_MANIFEST,
                    "config": {
                        "mediaType": DOCKER_CONFIG,
                        "size": len(config),
                        "digest": _sha256(config),
                    },
                    "layers": layers,
                }
            )
        return _compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _sha256(config), "size": len(config)},
                "layers": layers,
            }
        )

    # ---- images

    def add_image(self, rootfs: _Rootfs, fmt: str, names: Sequence[str], parent: int) -> int:
        """Store an image built to ``rootfs`` (SF-O-1 keys), optionally a known child."""
        created_ns = self.tick()
        config = self.config_bytes(rootfs, created_ns - self.rng.randrange(1, 10**9))
        manifest = self.manifest_bytes(rootfs, config, fmt)
        config_digest = _sha256(config)
        image_id = config_digest.removeprefix("sha256:")
        if image_id in self.ids:
            raise RuntimeError(f"synthesised two identical configs ({image_id})")
        self.ids.add(image_id)
        digest = _sha256(manifest)
        big_data = [
            (config_digest, config),
            (f"manifest-{digest}", manifest),
            ("manifest", manifest),
            (f"signature-{digest.removeprefix('sha256:')}", b""),
        ]
        image = _Image(
            id=image_id,
            names=list(names),
            digest=digest,
            top_layer=rootfs.top,
            created=format_go_time(created_ns),
            metadata=json.dumps({"signatures-sizes": {digest: []}}, separators=(",", ":")),
            big_data=big_data,
            link_manifest=True,
            rootfs=rootfs,
            fmt=fmt,
            parent=parent,
        )
        index = len(self.images)
        self.images.append(image)
        if parent >= 0:
            self.images[parent].children += 1
        for name in names:
            self.used_names.add(name)
        return index

    def new_base(self, names: Sequence[str] = ()) -> int:
        """A base image: one or two layers from nothing (like ``podman import``)."""
        when = self.tick()
        created = format_go_time(when)
        depth = 1 if self.rng.random() < 0.7 else 2
        layers: list[_Layer] = []
        history: list[dict[str, Any]] = []
        for level in range(depth):
            layer = self.new_layer(layers[-1] if layers else None, created, base=True)
            layers.append(layer)
            history.append(
                {
                    "created": format_go_time(when - (depth - level) * 1_000_003),
                    "created_by": f"/bin/sh -c #(nop) ADD file:{layer.diff_digest[7:]} in / ",
                }
            )
        history.append(
            {
                "created": created,
                "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
                "empty_layer": True,
            }
        )
        rootfs = _Rootfs(layers, history, {})
        self.bases.append(rootfs)
        if not names:
            names = self.base_names()
        return self.add_image(rootfs, self.pick_format(), names, -1)

    def new_app(self, names: Sequence[str], fmt: str = "") -> int:
        """An image built from a base in several steps: not a child of the base (LT-3 c)."""
        base = self.rng.choice(self.bases)
        count = self.rng.choice((2, 2, 3, 4))
        steps = [False] * count
        for position in self.rng.sample(range(count), 1 if self.rng.random() < 0.75 else 2):
            steps[position] = True
        rootfs = self.extend(base, steps, self.clock_ns + self.step_ns)
        return self.add_image(rootfs, fmt or self.pick_format(), names, -1)

    def new_child(self, parent: int, names: Sequence[str], empty: bool | None = None) -> int:
        """One more build step on ``parent``: its child by LT-3 (LT-4, or LT-5 when empty)."""
        base = self.images[parent].rootfs
        if base is None:
            raise ValueError("a manifest list has no children")
        if empty is None:
            empty = self.rng.random() < 0.25
        rootfs = self.extend(base, [not empty], self.clock_ns + self.step_ns)
        return self.add_image(rootfs, self.pick_format(), names, parent)

    def new_instance(self, arch: str, variant: str, fmt: str) -> int:
        """An unnamed per-platform image, as ``podman build --manifest`` leaves them."""
        when = self.tick()
        created = format_go_time(when)
        layer = self.new_layer(None, created, base=True)
        history = [
            {
                "created": created,
                "created_by": f"/bin/sh -c #(nop) ADD file:{layer.diff_digest[7:]} in / ",
            }
        ]
        base = _Rootfs([layer], history, {}, arch, variant)
        rootfs = self.extend(base, [True], when + self.step_ns)
        index = self.add_image(rootfs, fmt, (), -1)
        self.images[index].in_list = True
        return index

    def new_list(self, names: Sequence[str], fmt: str, members: Sequence[int]) -> int:
        """A manifest list (Docker list or OCI index) over images of the store (SF-B-5)."""
        entries = []
        instances: dict[str, str] = {}
        for member in members:
            image = self.images[member]
            rootfs = image.rootfs
            if rootfs is None or image.fmt != fmt:
                raise ValueError("list members are images of the list's format")
            manifest = dict(image.big_data)["manifest"]
            platform = {"architecture": rootfs.arch, "os": "linux"}
            if rootfs.variant:
                platform["variant"] = rootfs.variant
            media_type = DOCKER_MANIFEST if fmt == "docker" else OCI_MANIFEST
            entries.append(
                {
                    "mediaType": media_type,
                    "digest": image.digest,
                    "size": len(manifest),
                    "platform": platform,
                }
            )
            reference = image.names[0] if image.names else "@" + image.id
            instances[image.digest] = f"containers-storage:{self.store_ref}{reference}"
            image.in_list = True
        list_type = DOCKER_LIST if fmt == "docker" else OCI_INDEX
        manifest = _compact({"schemaVersion": 2, "mediaType": list_type, "manifests": entries})
        created_ns = self.tick()
        list_id = f"{self.rng.getrandbits(256):064x}"  # podman manifest create: a random ID
        instances_json = _compact({"": list_id, **instances})
        image = _Image(
            id=list_id,
            names=list(names),
            digest=_sha256(manifest),
            top_layer="",
            created=format_go_time(created_ns),
            metadata="",
            big_data=[("manifest", manifest), ("instances.json", instances_json)],
            link_manifest=False,
            rootfs=None,
            fmt=fmt,
            instances=tuple(self.images[m].digest for m in members),
            is_list=True,
            has_history=False,  # observed: manifest create leaves names-history out
        )
        self.ids.add(list_id)
        self.images.append(image)
        self.used_names.update(names)
        return len(self.images) - 1

    # ---- names

    def pick_format(self) -> str:
        return "docker" if self.rng.random() < 0.3 else "oci"

    def base_names(self) -> list[str]:
        distro = self.rng.choice(DISTROS)
        for _ in range(1000):
            version = f"{self.rng.randrange(1, 40)}.{self.rng.randrange(0, 20)}"
            name = f"docker.io/library/{distro}:{version}"
            if name not in self.used_names:
                names = [name]
                latest = f"docker.io/library/{distro}:latest"
                if latest not in self.used_names and self.rng.random() < 0.5:
                    names.append(latest)
                return names
        return []

    def repo(self, prefix: str) -> _Repo:
        pool = self.repos.setdefault(prefix, [])
        if pool and self.rng.random() < 0.7:
            return self.rng.choice(pool)
        word = self.rng.choice(REPO_WORDS)
        name = word
        suffix = 1
        while prefix + name in self.repo_names:
            suffix += 1
            name = f"{word}-{suffix}"
        repo = _Repo(prefix, name, style=self.rng.randrange(4))
        self.repo_names.add(prefix + name)
        pool.append(repo)
        return repo

    def next_tag(self, repo: _Repo) -> str:
        for _ in range(100):
            repo.tags += 1
            number = repo.tags
            tag = (
                f"1.{number}.0",
                f"v{number}",
                f"2024.{number}",
                f"build-{number}-{self.rng.getrandbits(24):06x}",
            )[repo.style]
            if f"{repo.prefix}{repo.name}:{tag}" not in self.used_names:
                return tag
        raise RuntimeError("no free tag")  # unreachable: tag numbers only grow

    def fresh_names(self) -> list[str]:
        """One to three tags: a versioned tag, sometimes ``latest``, sometimes a mirror."""
        prefix = self.rng.choices(REGISTRY_PREFIXES, PREFIX_WEIGHTS)[0]
        repo = self.repo(prefix)
        tag = self.next_tag(repo)
        names = [f"{prefix}{repo.name}:{tag}"]
        roll = self.rng.random()
        if roll < 0.12 and not repo.has_latest:
            repo.has_latest = True
            names.append(f"{prefix}{repo.name}:latest")
        elif roll < 0.20:
            mirror = self.rng.choice([p for p in REGISTRY_PREFIXES if p != prefix])
            name = f"{mirror}{repo.name}:{tag}"
            if name not in self.used_names:
                names.append(name)
        return [n for n in names if n not in self.used_names]

    def add_digest_name(self, index: int, replace: bool) -> None:
        """Name an image by its repository and manifest digest, as a pull by digest does."""
        image = self.images[index]
        prefix = self.rng.choice(REGISTRY_PREFIXES[1:])
        name = f"{prefix}{self.repo(prefix).name}@{image.digest}"
        if name in self.used_names:
            return
        if replace:
            for old in image.names:
                self.used_names.discard(old)
            image.names = []
        image.names.append(name)
        self.used_names.add(name)

    # ---- containers

    def new_container(self, image_index: int, taken: dict[str, int]) -> None:
        image = self.images[image_index]
        created = format_go_time(self.tick())
        layer = self.rw_layer(image.top_layer, created)
        stem = "working-container"
        if image.names:
            reference = image.names[0].rsplit("/", 1)[-1]
            stem = reference.split("@")[0].split(":")[0] + "-working-container"
        count = taken.get(stem, 0)
        taken[stem] = count + 1
        name = stem if count == 0 else f"{stem}-{count}"
        container_id = f"{self.rng.getrandbits(256):064x}"
        self.containers.append(_Container(container_id, name, image_index, layer))


# --------------------------------------------------------------------------- generation


def _generate(builder: _Builder, count: int, lists: int, containers: int) -> None:
    """Fill ``builder`` with exactly ``count`` images, ``lists`` of them manifest lists."""
    rng = builder.rng

    def room() -> int:
        return count - len(builder.images)

    # A graded prelude makes every feature appear even in small stores (the tests use
    # 30 images): each step runs while its images still fit, cheapest features first.
    base = builder.new_base(["docker.io/library/alpine:3.17", "docker.io/library/alpine:latest"])
    made_lists = 0
    if room() >= 1:
        app = builder.new_app(["localhost/app:1.0"], fmt="oci")
    if room() >= 1:
        child = builder.new_child(app, ["localhost/app:1.1"], empty=False)  # LT-4
    if room() >= 3:
        oci = [builder.new_instance("amd64", "", "oci"), builder.new_instance("arm64", "v8", "oci")]
        builder.new_list(["localhost/multi:1"], "oci", oci)
        made_lists += 1
    if room() >= 2:
        hidden = builder.new_child(base, [], empty=False)  # intermediate (IP-6)
        builder.new_child(hidden, ["registry.example.com:5000/svc:2"], empty=False)
    if room() >= 1:
        builder.new_app([], fmt="docker")  # dangling (IP-5)
    if room() >= 1:
        builder.new_child(child, ["quay.io/org/app:1.1-labelled"], empty=True)  # LT-5
    if room() >= 1:
        pulled = builder.new_app([], fmt="docker")
        builder.add_digest_name(pulled, replace=True)
    if room() >= 3:
        docker = [
            builder.new_instance("amd64", "", "docker"),
            builder.new_instance("arm64", "v8", "docker"),
        ]
        builder.new_list(["quay.io/org/multi:2"], "docker", docker)
        made_lists += 1
    lists = max(0, lists - made_lists)

    target_bases = max(3, int(count**0.5) // 2)
    list_every = room() // (lists + 1) if lists else 0
    next_list_at = len(builder.images) + list_every if lists else count + 1
    while room() > 0:
        if lists and len(builder.images) >= next_list_at and room() >= 1:
            fmt = builder.pick_format()
            fresh = min(room() - 1, rng.choice((1, 2, 2, 3)))
            members = [
                builder.new_instance(arch, variant, fmt)
                for arch, variant in (("amd64", ""), ("arm64", "v8"), ("ppc64le", ""))[:fresh]
            ]
            if not members:
                candidates = [
                    i
                    for i, image in enumerate(builder.images)
                    if image.fmt == fmt and not image.is_list and image.names
                ]
                members = [rng.choice(candidates)] if candidates else []
            if members:
                builder.new_list(builder.fresh_names(), fmt, members)
            lists -= 1
            next_list_at = len(builder.images) + list_every
            continue
        roll = rng.random()
        if len(builder.bases) < target_bases and roll < 0.05:
            builder.new_base()
        elif roll < 0.62:
            index = builder.new_app(builder.fresh_names())
            if rng.random() < 0.03:
                builder.add_digest_name(index, replace=rng.random() < 0.5)
        elif roll < 0.69:
            builder.new_app([])  # dangling: an old build that lost its tag
        elif roll < 0.91:
            builder.new_child(_pick_parent(builder), builder.fresh_names())
        elif roll < 0.95 and room() >= 2:
            hidden = builder.new_child(_pick_parent(builder), [])
            builder.new_child(hidden, builder.fresh_names())  # hidden is now intermediate
        else:
            builder.new_child(_pick_parent(builder), [])

    taken: dict[str, int] = {}
    eligible = [i for i, image in enumerate(builder.images) if not image.is_list]
    for _ in range(containers if eligible else 0):
        builder.new_container(rng.choice(eligible), taken)


def _pick_parent(builder: _Builder) -> int:
    """A recent image with a config, so that chains grow as builds do."""
    rng = builder.rng
    for _ in range(100):
        low = max(0, len(builder.images) - 200)
        index = rng.randrange(low, len(builder.images))
        image = builder.images[index]
        if not image.is_list and not image.in_list:
            return index
    return next(i for i, image in enumerate(builder.images) if not image.is_list)


# --------------------------------------------------------------------------- writing


def _image_record(image: _Image) -> dict[str, Any]:
    # Field order of containers/storage's Image struct; empty fields omitted (SF-I).
    out: dict[str, Any] = {"id": image.id}
    if image.digest:
        out["digest"] = image.digest
    if image.names:
        out["names"] = image.names
        if image.has_history:
            # SF-N-3: SetNames prepends each name in turn, so the last is newest.
            out["names-history"] = image.names[::-1]
    if image.top_layer:
        out["layer"] = image.top_layer
    if image.metadata:
        out["metadata"] = image.metadata
    out["big-data-names"] = [key for key, _ in image.big_data]
    out["big-data-sizes"] = {key: len(data) for key, data in sorted(image.big_data)}
    # SF-B-3: without schema1 manifests, every item's digest is the sha256 of its bytes.
    out["big-data-digests"] = {key: _sha256(data) for key, data in sorted(image.big_data)}
    out["created"] = image.created
    return out


def _container_record(container: _Container, image_id: str) -> dict[str, Any]:
    # Observed buildah record: no metadata, flags with Volatile (SF-C-6).
    return {
        "id": container.id,
        "names": [container.name],
        "image": image_id,
        "layer": container.layer.id,
        "created": container.layer.created,
        "flags": {"MountLabel": "", "ProcessLabel": "", "Volatile": True},
    }


def _write_new(path: str, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def _write_json_atomically(path: Path, value: object) -> None:
    temporary = path.with_name(f".tmp-{path.name}{os.getpid()}")
    with temporary.open("wb") as stream:
        stream.write(_compact(value))
        stream.flush()
        os.fdatasync(stream.fileno())
    temporary.chmod(0o600)
    temporary.replace(path)


def _write_token(path: Path) -> None:
    # A fresh 64-byte last-writer token (SF-K-4): readers compare bytes only.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, secrets.token_hex(32).encode(), 0)
    finally:
        os.close(fd)


def _prepare_root(root: Path) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root}: refusing to synthesise into a non-empty path")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    for sub in ("mounts", "tmp", DRIVER, f"{DRIVER}/dir"):
        (root / sub).mkdir(mode=0o700)
    for sub in ("images", "layers", "containers"):
        (root / f"{DRIVER}-{sub}").mkdir(mode=0o700)


def _prepare_runroot(runroot: Path) -> None:
    layers = runroot / f"{DRIVER}-layers"
    layers.mkdir(mode=0o700, parents=True, exist_ok=True)
    mounts = layers / "mountpoints.json"
    if not mounts.exists():  # never clobber the mount state of a store in use
        _write_json_atomically(mounts, [])
    _write_token(layers / "mountpoints.lock")


def _write_image_dirs(images_dir: str, images: Sequence[_Image]) -> None:
    for image in images:
        directory = f"{images_dir}/{image.id}"
        os.mkdir(directory, 0o700)  # noqa: PTH102 -- str paths: 10^5 calls, no Path objects
        manifest_path = ""
        for key, data in image.big_data:
            path = f"{directory}/{big_data_file_name(key)}"
            if image.link_manifest and key.startswith("manifest"):
                if manifest_path:
                    os.link(manifest_path, path)
                    continue
                manifest_path = path
            _write_new(path, data)


def _make_layer_dirs(layer_dir: str, layers: Sequence[_Layer]) -> None:
    for layer in layers:
        # vfs keeps a flattened copy per layer (SF-L-2); these layers have no content.
        os.mkdir(f"{layer_dir}/{layer.id}", 0o555)  # noqa: PTH102 -- as above


def _write_store(root: Path, builder: _Builder) -> None:
    images_dir = str(root / f"{DRIVER}-images")
    layer_dir = str(root / DRIVER / "dir")
    _write_image_dirs(images_dir, builder.images)
    _make_layer_dirs(layer_dir, builder.layers)
    containers_dir = root / f"{DRIVER}-containers"
    for container in builder.containers:
        userdata = containers_dir / container.id / "userdata"
        userdata.mkdir(mode=0o700, parents=True)
    _write_json_atomically(
        root / f"{DRIVER}-layers" / "layers.json", [layer.record() for layer in builder.layers]
    )
    _write_json_atomically(
        root / f"{DRIVER}-images" / "images.json", [_image_record(i) for i in builder.images]
    )
    _write_json_atomically(
        containers_dir / "containers.json",
        [_container_record(c, builder.images[c.image].id) for c in builder.containers],
    )
    for lock in (
        root / "storage.lock",
        root / "userns.lock",
        root / f"{DRIVER}-layers" / "layers.lock",
        root / f"{DRIVER}-images" / "images.lock",
        containers_dir / "containers.lock",
    ):
        _write_token(lock)


# --------------------------------------------------------------------------- summary


def _image_size(image: _Image, layers: Mapping[str, _Layer]) -> int:
    # IP-13: the top layer's chain (diff-size, every record has diff-digest) plus big data.
    total = sum(len(data) for _, data in image.big_data)
    layer_id = image.top_layer
    while layer_id:
        layer = layers[layer_id]
        total += layer.diff_size
        layer_id = layer.parent
    return total


def _labels(image: _Image) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(image.rootfs.labels.items())) if image.rootfs else ()


def _summarise(builder: _Builder, root: Path, seed: int, seconds: float) -> SynthSummary:
    rng = random.Random(f"samples/{seed}")
    layers = {layer.id: layer for layer in builder.layers}
    with_container = {c.image for c in builder.containers}
    images = tuple(
        SynthImage(
            id=image.id,
            names=tuple(image.names),
            digest=image.digest,
            top_layer=image.top_layer,
            created=image.created,
            parent_id=builder.images[image.parent].id if image.parent >= 0 else "",
            dangling=not image.names and image.children == 0,
            intermediate=not image.names and image.children > 0,
            manifest_list=image.is_list,
            size=_image_size(image, layers),
            labels=_labels(image),
            instances=image.instances,
        )
        for image in builder.images
    )
    middle = len(images) // 2
    order = list(range(middle, len(images))) + list(range(middle))

    def first(predicate: Callable[[SynthImage], bool]) -> int:
        return next((i for i in order if predicate(images[i])), -1)

    def tag_name(image: SynthImage, prefix: str = "") -> str:
        return next((n for n in image.names if "@" not in n and n.startswith(prefix)), "")

    # A list's name or ID resolves to its instance for the host platform (LK), so the
    # lookup samples are plain images.
    full = first(lambda i: not i.manifest_list and tag_name(i) != "")
    short = first(lambda i: not i.manifest_list and tag_name(i, "localhost/") != "")
    ids = sorted(image.id for image in images)
    prefix_index = -1
    for index in order:
        if images[index].manifest_list:
            continue
        prefix = images[index].id[:12]
        position = bisect_left(ids, images[index].id)
        neighbours = ids[max(0, position - 1) : position] + ids[position + 1 : position + 2]
        if not any(other.startswith(prefix) for other in neighbours):
            prefix_index = index
            break
    removable = [
        index
        for index, image in enumerate(builder.images)
        if len(image.names) == 1
        and "@" not in image.names[0]
        and image.children == 0
        and not image.is_list
        and not image.in_list
        and index not in with_container
        # RM pruning would also delete an unnamed parent left without children.
        and (image.parent < 0 or bool(builder.images[image.parent].names))
    ]
    chosen = sorted(rng.sample(removable, min(100, len(removable))))
    pairs = [i for i in order if images[i].parent_id and images[i].names]
    dangling = first(lambda i: i.dangling and not i.manifest_list)
    intermediate = first(lambda i: i.intermediate)
    listed = first(lambda i: i.manifest_list and bool(i.names))
    pattern_prefix = REFERENCE_PATTERN.removesuffix("*")
    return SynthSummary(
        root=root,
        seed=seed,
        images=images,
        containers=tuple(
            SynthContainer(c.id, c.name, builder.images[c.image].id, c.layer.id)
            for c in builder.containers
        ),
        layer_count=len(builder.layers),
        seconds=seconds,
        full_name=tag_name(images[full]) if full >= 0 else "",
        full_name_id=images[full].id if full >= 0 else "",
        short_name=tag_name(images[short], "localhost/").removeprefix("localhost/")
        if short >= 0
        else "",
        short_name_id=images[short].id if short >= 0 else "",
        id_prefix=images[prefix_index].id[:12] if prefix_index >= 0 else "",
        id_prefix_id=images[prefix_index].id if prefix_index >= 0 else "",
        missing_name=MISSING_NAME,
        names_to_remove=tuple(builder.images[i].names[0] for i in chosen),
        reference_pattern=REFERENCE_PATTERN,
        # FL-R5: "quay.io/org/*" matches the full name when the rest has no "/".
        reference_matches=tuple(
            image.id
            for image in images
            if any(
                n.startswith(pattern_prefix) and "/" not in n[len(pattern_prefix) :]
                for n in image.names
            )
        ),
        parent_child=(images[pairs[0]].parent_id, images[pairs[0]].id) if pairs else None,
        dangling_id=images[dangling].id if dangling >= 0 else "",
        intermediate_id=images[intermediate].id if intermediate >= 0 else "",
        manifest_list_name=images[listed].names[0] if listed >= 0 else "",
    )


# --------------------------------------------------------------------------- entry points


def synthesise(
    root: Path,
    images: int,
    seed: int = 0,
    *,
    containers: int | None = None,
    manifest_lists: int | None = None,
    driver: str = DRIVER,
    runroot: Path | None = None,
) -> SynthSummary:
    """Write a new store of exactly ``images`` images at ``root`` and describe it.

    ``root`` must be absent or an empty directory. ``containers`` defaults to one per
    50 images (at least two); ``manifest_lists`` to one per 100 images, but a small
    store always gets the prelude's lists when they fit (one from 6 images, two from
    14). Lists and their instance
    images count toward ``images``; containers do not.

    ``runroot`` is the run root podman will be given. It names the store in the
    lists' ``instances.json`` (default ``/run/containers/storage``), and, when given,
    receives ``vfs-layers/mountpoints.json`` (only if absent) and a token in
    ``mountpoints.lock``: with an empty lock file every layer-store access of podman
    4.3.1 counts as a change (SF-K-5, SF-K-8) and reloads layers.json, which makes
    listing a large store several times slower. Only the vfs driver is written. The
    contents are a function of ``seed``; lock tokens are random (SF-K-4).
    """
    if driver != DRIVER:
        raise ValueError(f"unsupported driver {driver!r}: only {DRIVER!r} is synthesised")
    if images < 0:
        raise ValueError("the image count must not be negative")
    started = time.monotonic()
    root = root.absolute()
    run = (runroot or Path("/run/containers/storage")).absolute()
    default_containers = max(images // 50, min(images, 2))
    container_count = default_containers if containers is None else containers
    list_count = images // 100 if manifest_lists is None else manifest_lists
    builder = _Builder(rng=random.Random(seed), store_ref=f"[{DRIVER}@{root}+{run}]")
    builder.step_ns = max(1, CLOCK_SPAN_NS // max(1, images + container_count))
    _prepare_root(root)
    if images:
        _generate(builder, images, list_count, container_count)
    _write_store(root, builder)
    if runroot is not None:
        _prepare_runroot(run)
    return _summarise(builder, root, seed, time.monotonic() - started)


def _disk_usage(root: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for directory, subdirs, files in os.walk(root):
        for name in [*subdirs, *files]:
            info = os.lstat(os.path.join(directory, name))  # noqa: PTH118 -- hot loop over 10^5 entries
            key = (info.st_dev, info.st_ino)
            if key not in seen:
                seen.add(key)
                total += info.st_blocks * 512
    return total


def main(argv: Iterable[str] | None = None) -> int:
    """Command line: synthesise, then print the summary as JSON on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.synth", description="Synthesise a containers-storage store."
    )
    parser.add_argument("--root", type=Path, required=True, help="new store (absent or empty)")
    parser.add_argument("--images", type=int, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--driver", choices=[DRIVER], default=DRIVER)
    parser.add_argument("--containers", type=int, default=None, help="default: images/50")
    parser.add_argument("--manifest-lists", type=int, default=None, help="default: images/100")
    parser.add_argument(
        "--runroot", type=Path, default=None, help="podman's --runroot (see synthesise)"
    )
    parser.add_argument("--summary", type=Path, default=None, help="write the full summary here")
    parser.add_argument("--du", action="store_true", help="also report the store's disk use")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        summary = synthesise(
            args.root,
            args.images,
            seed=args.seed,
            containers=args.containers,
            manifest_lists=args.manifest_lists,
            driver=args.driver,
            runroot=args.runroot,
        )
    except (OSError, ValueError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 125
    report = summary.to_json()
    if args.du:
        report["disk_bytes"] = _disk_usage(summary.root)
    if args.summary is not None:
        args.summary.write_text(json.dumps(summary.to_json(full=True), indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
