"""The persistent index: a derived copy of a store's records for per-name lookups.

``exists``, ``lookup`` and ``resolve`` ask about one name, yet a full read parses all
of ``images.json`` and ``layers.json`` (1.7 s of ``json.loads`` alone at 100,000
images). The persistent index keeps the records of the last full read in an SQLite
file outside the store, keyed by what a lookup could ask for, so that a lookup reads
only the few records it can examine (issue #7 item 4).

**Where.** ``$LIBIMAGE_CACHE_DIR`` if set (an empty value disables the index), else
``$XDG_CACHE_HOME/libimage``, else ``~/.cache/libimage``; ``LIBIMAGE_NO_CACHE`` set to
anything but ``""`` or ``0`` disables it too. One file per store:
``<sha256 of realpath(graph root), driver and additional image stores>.sqlite``. The
store itself is never written, created or locked for writing by the index.

**Validity.** The file records the *validity key* of the full read it was built from:
the last-writer token of every lock file (SF-K-5) and the identity of every file the
read parsed or consulted (device, inode, size, modification and change times in
nanoseconds, plus a hash of its first and last 4 KiB; ``lstat`` of the metadata
directories and of podman's database too). The key is computed under the store's
read locks, as a full read takes them; a file whose key differs is not used, and
the full read that follows rebuilds it. Every writer (podman, buildah, ``libimage
rmi``) writes a new token under its write lock and replaces the files it changes, so
a change by any of them changes the key. The index is never used for a write: ``rmi``
reads the store itself under its write lock.

**What a lookup gets.** The records a lookup of a name could possibly examine,
found through the index, in store order, as a :class:`Snapshot` of their own (the
pure lookup then runs unchanged on it; LK-2..LK-11):

* every image whose ID starts with the name, or with the name without ``sha256:``
  (exact IDs, unique prefixes and ambiguous ones: ST-2, LK-6, DIV-1);
* every image with a stored name whose last path component, without tag or digest,
  is the name's, or an alias target's (by name: ST-2, LK-7; repo tags: LN-4);
* every image whose digest list holds the name's digest (LK-8, DIV-3, ST-3);
* the layer records of their top-layer and mapped-layer chains (EX-1, IP-12);
* the warnings of the full read, verbatim (decisions 10 and 18, SF-I-22).

A lookup that could need more falls back to the full read: a ``containers-storage:``
name (TR-4 resolves IDs in the whole store), a store with stored names that do not
parse (LN-4 warns about every one of them), any manifest list among the records (ML-5
searches the whole store for the chosen instance), or more than
:data:`MAX_RECORDS` records. Any error of the index (unreadable, corrupt, full disk,
read-only file system, a file not owned by the user) is ignored and the full read
used: the index never fails a command and never changes a result
(``tests/property/test_cache_properties.py`` checks cached and uncached answers on
generated stores and across podman's changes).

**Big-data facts** (``<key>.facts``, :func:`load_facts`, :func:`save_facts`): what
``images`` derives from each image's manifest and config file, kept per file with
the file's identity and used only while that identity is unchanged (see the section
below and :class:`libimage.adapters.content.FactsCache`).
"""

# Cache paths are plain str, like the store layout's.
# ruff: noqa: PTH100, PTH101, PTH103, PTH105, PTH108, PTH110, PTH117, PTH118, PTH123

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import sqlite3
import stat
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrsistent import pmap, pvector

from libimage.adapters.content import FactsCache
from libimage.adapters.locks import HeldLocks, LockFile, read_token, store_read_locks
from libimage.adapters.store import (
    ReadResult,
    StoreLayout,
    current_tokens,
    read_snapshot_held,
)
from libimage.pure.context import Context
from libimage.pure.errors import LibimageError
from libimage.pure.lookup import LookupOptions
from libimage.pure.manifest import DERIVATIONS, is_manifest_list
from libimage.pure.registries import resolve_locally
from libimage.pure.snapshot import (
    ImageID,
    Layer,
    LayerID,
    Snapshot,
    StoredImage,
    image_digests,
)

FORMAT = 1  # bump when the file's tables or record encoding change
ENV_DIRECTORY = "LIBIMAGE_CACHE_DIR"
ENV_DISABLE = "LIBIMAGE_NO_CACHE"
ENV_MIN_BYTES = "LIBIMAGE_CACHE_MIN_BYTES"
DEFAULT_MIN_BYTES = 256 * 1024
"""Stores whose images.json is smaller are read in full (a few milliseconds)."""
MAX_RECORDS = 2000
"""A lookup that would examine more records than this reads the whole store instead."""
MAX_FILES = 16
"""Index files kept in the cache directory; the least recently built go first."""
STORAGE_TRANSPORT_PREFIX = "containers-storage:"
_EDGE = 4096  # bytes hashed at each end of a metadata file (in-place edits, same size)


# --------------------------------------------------------------------------- where


def cache_directory(environ: Mapping[str, str]) -> str | None:
    """The directory of index files, or None when the index is disabled.

    >>> cache_directory({"LIBIMAGE_CACHE_DIR": "/c"}), cache_directory({"LIBIMAGE_CACHE_DIR": ""})
    ('/c', None)
    >>> cache_directory({"XDG_CACHE_HOME": "/x", "LIBIMAGE_NO_CACHE": "1"}) is None
    True
    >>> cache_directory({"XDG_CACHE_HOME": "/x", "HOME": "/h"})
    '/x/libimage'
    """
    if environ.get(ENV_DISABLE, "") not in ("", "0"):
        return None
    if ENV_DIRECTORY in environ:
        chosen = environ[ENV_DIRECTORY]
        return os.path.abspath(chosen) if chosen else None
    base = environ.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        home = environ.get("HOME", "")
        if not home:
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "libimage")


def minimum_bytes(environ: Mapping[str, str]) -> int:
    """The size of images.json from which an index is worth building."""
    try:
        return max(0, int(environ.get(ENV_MIN_BYTES, DEFAULT_MIN_BYTES)))
    except ValueError:
        return DEFAULT_MIN_BYTES


def store_key(layout: StoreLayout) -> str:
    """The index file's name stem: the store's real paths and driver, hashed."""
    parts = [os.path.realpath(layout.graph_root), layout.driver]
    parts += [os.path.realpath(extra.root) for extra in layout.additional]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


# --------------------------------------------------------------------------- validity


def _token(lock: LockFile | None) -> str | None:
    return None if lock is None else read_token(lock).hex()


def _identity(path: str, *, content: bool) -> list[int | str] | None:
    """What identifies a file's state: lstat fields, and a hash of its two ends."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return [f"error {error.errno}"]
    identity: list[int | str] = [
        info.st_mode,
        info.st_dev,
        info.st_ino,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    ]
    if content and stat.S_ISREG(info.st_mode):
        try:
            with open(path, "rb") as file:
                head = file.read(_EDGE)
                file.seek(max(0, info.st_size - _EDGE))
                tail = file.read(_EDGE)
        except OSError as error:
            return [f"error {error.errno}"]
        identity.append(hashlib.sha256(head + b"\0" + tail).hexdigest())
    return identity


def validity_key(layout: StoreLayout, held: HeldLocks) -> str:
    """The state of the store a full read would see now (call under its read locks)."""
    tokens = [_token(held.layers), _token(held.images), _token(held.containers)]
    for held_extra in held.additional:
        tokens += [_token(held_extra.layers), _token(held_extra.images)]
    files: dict[str, Any] = {}
    for path in (layout.images_json, layout.layers_json, layout.containers_json):
        files[path] = _identity(path, content=True)
    for path in (layout.images_dir, layout.layers_dir, layout.containers_dir):
        files[path] = _identity(path, content=False)
    files[layout.libpod_db] = _identity(layout.libpod_db, content=False)
    for extra in layout.additional:
        files[extra.images_json] = _identity(extra.images_json, content=True)
        files[extra.layers_json] = _identity(extra.layers_json, content=True)
        for path in (extra.root, extra.images_dir, extra.layers_dir):
            files[path] = _identity(path, content=False)
    return json.dumps({"format": FORMAT, "tokens": tokens, "files": files}, sort_keys=True)


# --------------------------------------------------------------------------- records


def _image_row(image: StoredImage) -> str:
    return json.dumps(
        [
            image.id,
            image.digest,
            list(image.names),
            list(image.names_history),
            image.top_layer,
            list(image.mapped_layers),
            image.metadata,
            list(image.big_data_names),
            dict(image.big_data_sizes),
            dict(image.big_data_digests),
            image.created,
            image.read_only,
            image.store_index,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _image_of(row: str) -> StoredImage:
    (
        image_id,
        digest,
        names,
        history,
        top_layer,
        mapped,
        metadata,
        big_names,
        big_sizes,
        big_digests,
        created,
        read_only,
        store_index,
    ) = json.loads(row)
    return StoredImage(
        id=ImageID(image_id),
        digest=digest,
        names=pvector(names),
        names_history=pvector(history),
        top_layer=top_layer,
        mapped_layers=pvector(mapped),
        metadata=metadata,
        big_data_names=pvector(big_names),
        big_data_sizes=pmap(big_sizes),
        big_data_digests=pmap(big_digests),
        created=created,
        read_only=read_only,
        store_index=store_index,
    )


def _layer_row(layer: Layer) -> str:
    return json.dumps(
        [
            layer.id,
            layer.parent,
            list(layer.names),
            layer.diff_digest,
            layer.diff_size,
            layer.compressed_size,
            layer.incomplete,
            list(layer.big_data_names),
            layer.created,
            layer.read_only,
            layer.store_index,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _layer_of(row: str) -> Layer:
    (
        layer_id,
        parent,
        names,
        diff_digest,
        diff_size,
        compressed_size,
        incomplete,
        big_names,
        created,
        read_only,
        store_index,
    ) = json.loads(row)
    return Layer(
        id=LayerID(layer_id),
        parent=parent,
        names=pvector(names),
        diff_digest=diff_digest,
        diff_size=diff_size,
        compressed_size=compressed_size,
        incomplete=incomplete,
        big_data_names=pvector(big_names),
        created=created,
        read_only=read_only,
        store_index=store_index,
    )


def name_key(text: str) -> str:
    """The last path component of a name's repository, without tag or digest.

    Every stored name a lookup can match by name (ST-2) or as a repo tag (LN-4) has
    the key of the name asked for, or of a short-name alias target (SN-2).

    >>> name_key("quay.io/org/app:v1"), name_key("localhost:5000/app@sha256:ab"), name_key("app")
    ('app', 'app', 'app')
    """
    repository = text.partition("@")[0]
    return repository.rpartition("/")[2].partition(":")[0]


def _hex_prefixes(name: str) -> set[str]:
    """The texts an ID could start with for this name (the name, without ``sha256:``)."""
    candidates = {name, name.removeprefix("sha256:")}
    return {text for text in candidates if text and all(c in "0123456789abcdef" for c in text)}


# --------------------------------------------------------------------------- building


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (position INTEGER PRIMARY KEY, id TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX images_by_id ON images (id);
CREATE TABLE image_keys (key TEXT NOT NULL, position INTEGER NOT NULL);
CREATE INDEX image_keys_by_key ON image_keys (key);
CREATE TABLE layers (position INTEGER PRIMARY KEY, id TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX layers_by_id ON layers (id);
"""


def _has_unparseable_names(snapshot: Snapshot) -> bool:
    from libimage.pure.lookup import _unparseable_names  # the lookup's own test (decision 18)

    return bool(_unparseable_names(snapshot))


def _image_keys(images: Sequence[StoredImage]) -> Iterable[tuple[str, int]]:
    for position, image in enumerate(images):
        for key in {name_key(name) for name in image.names}:
            yield "n:" + key, position
        for digest in image_digests(image):
            yield "d:" + digest, position


def _enough_space(directory: str, needed: int) -> bool:
    try:
        info = os.statvfs(directory)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize >= 2 * needed + (64 << 20)


def build_index(directory: str, layout: StoreLayout, key: str, read: ReadResult) -> bool:
    """Write the index of ``read`` (whose store had validity ``key``); True if written.

    Best effort: nothing is written for a store with stored names that do not parse,
    where the directory cannot be created or written, or where the file system has
    too little room; a temporary file is renamed into place, so a reader sees the old
    index or the new one, never half of one. Errors are swallowed.
    """
    snapshot = read.snapshot
    if _has_unparseable_names(snapshot):
        return False
    temporary = ""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        estimate = sum(
            os.lstat(path).st_size
            for path in (layout.images_json, layout.layers_json)
            if os.path.exists(path)
        )
        if not os.access(directory, os.W_OK) or not _enough_space(directory, estimate):
            return False
        target = os.path.join(directory, store_key(layout) + ".sqlite")
        temporary = f"{target}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=OFF")
            connection.execute("PRAGMA synchronous=OFF")
            connection.executescript(_SCHEMA)
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO images VALUES (?, ?, ?)",
                ((p, image.id, _image_row(image)) for p, image in enumerate(snapshot.images)),
            )
            connection.executemany(
                "INSERT INTO image_keys VALUES (?, ?)", _image_keys(snapshot.images)
            )
            connection.executemany(
                "INSERT INTO layers VALUES (?, ?, ?)",
                ((p, layer.id, _layer_row(layer)) for p, layer in enumerate(snapshot.layers)),
            )
            connection.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("validity", key), ("warnings", json.dumps(list(read.warnings)))],
            )
            connection.execute("COMMIT")
        finally:
            connection.close()
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
        temporary = ""
        _evict(directory, keep=target)
    except (OSError, sqlite3.Error, ValueError):
        return False
    finally:
        if temporary:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return True


def _evict(directory: str, keep: str, suffix: str = ".sqlite") -> None:
    """Keep at most :data:`MAX_FILES` files ending in ``suffix``: drop the oldest others."""
    entries = []
    for entry in os.scandir(directory):
        if entry.name.endswith(suffix) and entry.path != keep:
            with contextlib.suppress(OSError):
                entries.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.path))
    entries.sort()
    for _mtime, path in entries[: max(0, len(entries) - (MAX_FILES - 1))]:
        with contextlib.suppress(OSError):
            os.unlink(path)


# --------------------------------------------------------------------------- reading


class _NotUsable(Exception):
    """The index cannot answer this lookup exactly: read the store."""


@dataclass(frozen=True, slots=True)
class IndexedRead:
    """A read answered by the index: the partial snapshot and the full read's warnings."""

    snapshot: Snapshot
    warnings: tuple[str, ...]


def _open_owned(path: str) -> sqlite3.Connection:
    """The index file, read-only; it must be a regular file of ours that others cannot write."""
    info = os.lstat(path)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise _NotUsable
    return sqlite3.connect(Path(path).as_uri() + "?mode=ro", uri=True)


def _alias_keys(name: str, context: Context) -> set[str]:
    """Keys of the alias targets a lookup of ``name`` can try (SN-2).

    Only the alias of the name itself is a candidate, as short-name resolution
    builds them; where that cannot be worked out (a name resolution rejects, a
    transport prefix), every alias target's key, which is a superset.
    """
    registries = context.registries
    try:
        candidates = resolve_locally(registries, name)
    except (LibimageError, ValueError):
        targets = [*registries.aliases.values(), *registries.cached_aliases.values()]
        return {name_key(target) for target in targets if target}
    return {name_key(str(candidate)) for candidate in candidates}


def _positions(connection: sqlite3.Connection, name: str, context: Context) -> list[int]:
    found: set[int] = set()
    for prefix in _hex_prefixes(name):
        rows = connection.execute(
            "SELECT position FROM images WHERE id >= ? AND id < ?", (prefix, prefix + "g")
        ).fetchall()
        found.update(row[0] for row in rows)
    keys = {"n:" + name_key(name)} | {"n:" + key for key in _alias_keys(name, context)}
    digest = name.partition("@")[2]
    if digest:
        keys.add("d:" + digest)
    for key in keys:
        rows = connection.execute(
            "SELECT position FROM image_keys WHERE key = ?", (key,)
        ).fetchall()
        found.update(row[0] for row in rows)
        if len(found) > MAX_RECORDS:
            raise _NotUsable
    return sorted(found)


def _rows(
    connection: sqlite3.Connection, table: str, column: str, values: Sequence[Any]
) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT position, record FROM {table} WHERE {column} IN ({marks})"
        rows += connection.execute(query, tuple(chunk)).fetchall()
    return rows


def _layers_for(connection: sqlite3.Connection, images: Sequence[StoredImage]) -> list[Layer]:
    """Every layer record on the top-layer and mapped-layer chains of ``images``."""
    wanted = {
        layer for image in images for layer in (image.top_layer, *image.mapped_layers) if layer
    }
    seen: set[str] = set()
    found: dict[int, Layer] = {}
    while wanted:
        seen |= wanted
        next_ids: set[str] = set()
        for position, record in _rows(connection, "layers", "id", sorted(wanted)):
            layer = _layer_of(record)
            found[position] = layer
            if layer.parent and layer.parent not in seen:
                next_ids.add(layer.parent)
        wanted = next_ids
        if len(found) > 4 * MAX_RECORDS:
            raise _NotUsable
    return [found[position] for position in sorted(found)]


def indexed_read(
    directory: str, layout: StoreLayout, key: str, name: str, context: Context
) -> tuple[IndexedRead | None, bool]:
    """The records a lookup of ``name`` could examine, if the index has them (see module).

    Returns the read (None when the index cannot answer) and whether the index is
    valid for the store state ``key`` (computed under the store's read locks, which
    the caller still holds). A valid index may still decline a lookup that could
    need more than the index can bound.
    """
    path = os.path.join(directory, store_key(layout) + ".sqlite")
    try:
        connection = _open_owned(path)
    except (OSError, sqlite3.Error, _NotUsable):
        return None, False
    valid = False
    try:
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        valid = meta.get("validity") == key
        if not valid or name.startswith(STORAGE_TRANSPORT_PREFIX):
            return None, valid
        warnings = tuple(json.loads(meta["warnings"]))
        positions = _positions(connection, name, context)
        images = [
            _image_of(record)
            for _position, record in sorted(_rows(connection, "images", "position", positions))
        ]
        layers = _layers_for(connection, images)
    except (OSError, sqlite3.Error, ValueError, KeyError, TypeError, _NotUsable):
        return None, valid
    finally:
        connection.close()
    snapshot = Snapshot(images=pvector(images), layers=pvector(layers), content=layout.content())
    return IndexedRead(snapshot, warnings), True


def _has_manifest_list(snapshot: Snapshot) -> bool:
    """ML-5 searches the whole store for a list's instance: lists need the full read."""
    return any(is_manifest_list(snapshot, image) is True for image in snapshot.images)


def read_for_lookup(
    layout: StoreLayout,
    name: str,
    options: LookupOptions | None,
    context: Context,
    environ: Mapping[str, str],
) -> tuple[ReadResult, bool]:
    """The read a lookup of ``name`` needs: from the index when it can answer, else in full.

    The index is consulted under the store's read locks, after the validity key is
    taken. A full read made because the index was missing or stale rebuilds it
    (for stores whose images.json is at least :func:`minimum_bytes`). The result's
    ``snapshot`` holds every record the lookup could examine (module docstring);
    ``tokens`` are those of the store as read. The flag is True for a full read.
    """
    del options  # every option examines the same records (platforms read big data only)
    directory = cache_directory(environ)
    valid = False
    with store_read_locks(layout.lock_paths) as held:
        key = validity_key(layout, held) if directory is not None else ""
        if directory is not None:
            indexed, valid = indexed_read(directory, layout, key, name, context)
            if indexed is not None and not _has_manifest_list(indexed.snapshot):
                tokens = current_tokens(layout, held)
                return ReadResult(indexed.snapshot, indexed.warnings, tokens, layout), False
        full = read_snapshot_held(layout, held)
    if directory is not None and not valid and _worth_indexing(layout, environ):
        build_index(directory, layout, key, full)
    return full, True


def _worth_indexing(layout: StoreLayout, environ: Mapping[str, str]) -> bool:
    try:
        return os.lstat(layout.images_json).st_size >= minimum_bytes(environ)
    except OSError:
        return False


# --------------------------------------------------------------------------- big-data facts
#
# The listing reads two big-data files per image (the manifest and the config) and
# derives a few facts from each (pure/manifest.py, ``DERIVATIONS``). The facts file
# keeps those values per file, with the identity (mode, device, inode, size, mtime
# and ctime in nanoseconds) the file had when it was read; a value is used only while
# the file's identity is unchanged (``StoreContent.derived``), so an edited, replaced,
# truncated or removed file is read again. Files changed in the last two seconds are
# not recorded (a second write in the same clock tick could keep the identity).
# Same directory, naming (``<store key>.facts``), ownership checks and best-effort
# rules as the index; it is never used for a write (only ``images`` attaches it).

FACTS_FORMAT = 1  # bump when the file's layout changes
_FACTS_SUFFIX = ".facts"


def _facts_path(directory: str, layout: StoreLayout) -> str:
    return os.path.join(directory, store_key(layout) + _FACTS_SUFFIX)


def _facts_header(layout: StoreLayout) -> tuple[Any, ...]:
    return (FACTS_FORMAT, store_key(layout), tuple(d.name for d in DERIVATIONS))


def load_facts(layout: StoreLayout, environ: Mapping[str, str]) -> FactsCache | None:
    """The store's facts cache (empty when there is no usable file), or None when disabled.

    Disabled like the index (:func:`cache_directory`) and for stores whose images.json
    is smaller than :func:`minimum_bytes`. A file that is not a regular file of ours,
    is writable by others, does not decode, fails its checksum or was written for
    another store or another set of derivations is ignored.
    """
    directory = cache_directory(environ)
    if directory is None or not _worth_indexing(layout, environ):
        return None
    cache = FactsCache()
    path = _facts_path(directory, layout)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return cache
    try:
        info = os.fstat(descriptor)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return cache
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            raw = file.read()
        header, checksum, payload = marshal.loads(raw)
        if header != _facts_header(layout) or zlib.crc32(payload) != checksum:
            return cache
        entries = marshal.loads(payload)
        if isinstance(entries, dict):
            cache.entries = entries
    except (OSError, EOFError, ValueError, TypeError):
        return FactsCache()
    finally:
        os.close(descriptor)
    return cache


def save_facts(
    layout: StoreLayout, environ: Mapping[str, str], cache: FactsCache, snapshot: Snapshot
) -> bool:
    """Write ``cache`` for the store when it learnt something; True if written.

    Only the entries of images in ``snapshot`` are kept. Best effort, as
    :func:`build_index`: never where the directory cannot be written or the file
    system is short of room, through a temporary file renamed into place; errors are
    swallowed.
    """
    directory = cache_directory(environ)
    if directory is None or cache.added == 0:
        return False
    images = {image.id for image in snapshot.images}
    entries = {where: entry for where, entry in cache.entries.items() if where[1] in images}
    temporary = ""
    try:
        payload = marshal.dumps(entries)
        raw = marshal.dumps((_facts_header(layout), zlib.crc32(payload), payload))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.access(directory, os.W_OK) or not _enough_space(directory, len(raw)):
            return False
        target = _facts_path(directory, layout)
        temporary = f"{target}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        descriptor = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with os.fdopen(descriptor, "wb") as file:
            file.write(raw)
        os.replace(temporary, target)
        temporary = ""
        _evict(directory, keep=target, suffix=_FACTS_SUFFIX)
    except (OSError, ValueError):
        return False
    finally:
        if temporary:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return True
