"""Read a containers-storage store into a :class:`Snapshot` (SF-I, SF-Y, SF-C, SF-K, SF-RO).

:func:`read_snapshot` resolves the store's layout from
:class:`~libimage.adapters.storage_conf.StoreOptions`, takes the store's locks for
reading in containers-storage's order (layers, images, containers; then each
read-only additional store's layers and images, SF-K-6), reads the last-writer
tokens, and parses ``layers.json``, ``images.json`` and ``containers.json`` of the
read-write store and ``layers.json`` and ``images.json`` of every additional store,
with one ``json.loads`` per file and one pass over its records. Big data is not
read here: the snapshot reaches it lazily through
:class:`~libimage.adapters.content.StoreContent` (decision 7).

What the records mean is the pure core's business; this module only translates:

* A missing or empty file has no records (SF-I-20). A non-empty file that does not
  parse completely, is not an array of objects, or holds a value of the wrong type
  for a field containers-storage decodes is an error naming the file and record
  (``STORE_CORRUPT``, decision 9); podman 4.3.1 would silently read it as empty
  (SF-I-21, SF-Y-21). Nesting too deep or a file too large for memory is the same
  error, never a crash. ``null`` (which Go decodes as an empty list) has no records.
* Keys are matched as Go's ``encoding/json`` matches them: exactly, else ignoring
  case; unknown keys are ignored; ``null`` is the field's zero value.
* ``created`` becomes integer nanoseconds since the Unix epoch, exactly, for every
  RFC 3339 time (any offset, any number of fractional digits, truncated to
  nanoseconds as Go does), including Go's zero time ``0001-01-01T00:00:00Z`` (also
  the value of an absent ``created``). Times Go 1.19 would accept beyond strict
  RFC 3339 (one-digit hours, a comma before the fraction) are errors here.
* An invalid ``digest``, or an invalid digest of a ``manifest*`` big-data item,
  makes containers-storage refuse to open the store (SF-I-23): ``STORE_CORRUPT``.
* A name claimed by several records of one file stays with the **last** record in
  memory (SF-I-22, SF-Y-20; containers alike); nothing is written back, and a
  warning names both records. (A read-only store would refuse to load.)
* A record whose ID is not 64 lowercase hex becomes a
  :class:`~libimage.pure.snapshot.QuarantinedRecord`, with a warning naming the
  file and the ID (decision 10); its names still take part in the duplicate rule,
  as they do in containers-storage.
* A stored image name that does not parse as a reference produces a warning naming
  the image and stays in the record (decision 18).
* A container is ``podman_managed`` when podman's database
  ``<root>/libpod/bolt_state.db`` lists its ID in the ``all-ctrs`` bucket
  (decision 19). The BoltDB file is read under a shared ``flock`` (as bbolt's own
  readers take it) and its B+tree walked; if the file does not parse, a byte search
  for each container ID decides instead (which can only err towards "managed": freed
  pages may still hold removed IDs); if it cannot be read at all, every container
  counts as managed. Either fallback adds a warning.

Metadata files are opened below the store's root without following a link: a link in
place of ``<drv>-images`` (etc.) or of a metadata file is ``STORE_UNREADABLE`` naming
it, so that nothing outside the store is read through it (issue #8 item 5).

Reading never creates, writes, or touches any file or directory: no lock file is
created (see :mod:`libimage.adapters.locks` for reads without a missing lock file),
no incomplete layer is cleaned up, no duplicate name is written back.
"""

# Layout paths are plain str: they are record fields, lock-registry keys and message
# text, and the metadata files are read through one descriptor each.
# ruff: noqa: PTH100, PTH112, PTH114, PTH116, PTH118

from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import re
import stat
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyrsistent import pmap, pvector

from libimage.adapters.content import StoreContent
from libimage.adapters.locks import (
    AdditionalLockPaths,
    HeldLocks,
    LockFile,
    StoreLockPaths,
    read_token,
    store_read_locks,
    token_changed,
)
from libimage.adapters.storage_conf import DRIVER_PRIORITY, StoreOptions, detect_driver
from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.reference import parse as parse_reference
from libimage.pure.snapshot import (
    Container,
    ContainerID,
    ImageID,
    Layer,
    LayerID,
    QuarantinedRecord,
    Snapshot,
    StoredImage,
    is_full_id,
)

# Go's zero time.Time, 0001-01-01T00:00:00Z, in nanoseconds since the Unix epoch.
GO_ZERO_TIME_NS = -62_135_596_800 * 1_000_000_000

LIBPOD_CONTAINERS_BUCKET = b"all-ctrs"  # podman's bucket of every container ID it knows


# -- layout ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdditionalStoreLayout:
    """Paths of one read-only additional image store (SF-RO-2)."""

    root: str
    images_dir: str
    layers_dir: str
    images_json: str
    layers_json: str
    images_lock: str
    layers_lock: str


@dataclass(frozen=True, slots=True)
class StoreLayout:
    """The resolved paths of a store (SF-L-1): what reading and writing act on."""

    graph_root: str
    run_root: str
    driver: str
    images_dir: str  # <root>/<drv>-images (big data below it, SF-B-1)
    layers_dir: str  # <root>/<drv>-layers
    containers_dir: str  # <root>/<drv>-containers
    run_layers_dir: str  # <runroot>/<drv>-layers
    run_containers_dir: str  # <runroot>/<drv>-containers
    images_json: str
    layers_json: str
    containers_json: str
    mountpoints_json: str
    images_lock: str
    layers_lock: str
    containers_lock: str
    mountpoints_lock: str
    libpod_db: str  # <root>/libpod/bolt_state.db (decision 19)
    additional: tuple[AdditionalStoreLayout, ...] = ()

    @property
    def lock_paths(self) -> StoreLockPaths:
        """The lock files, for :func:`~libimage.adapters.locks.store_read_locks` and
        :func:`~libimage.adapters.locks.store_write_locks`."""
        return StoreLockPaths(
            layers=self.layers_lock,
            images=self.images_lock,
            containers=self.containers_lock,
            mountpoints=self.mountpoints_lock,
            additional=tuple(
                AdditionalLockPaths(layers=extra.layers_lock, images=extra.images_lock)
                for extra in self.additional
            ),
        )

    def content(self) -> StoreContent:
        """The lazy big-data and layer-size reader for this layout (decision 7)."""
        return StoreContent(
            driver=self.driver,
            image_dirs=(self.images_dir, *(extra.images_dir for extra in self.additional)),
            layer_homes=(self.graph_root, *(extra.root for extra in self.additional)),
        )


def layout_for(
    graph_root: str, run_root: str, driver: str, image_stores: Iterable[str] = ()
) -> StoreLayout:
    """The layout of a store with a known driver (SF-L-1, SF-K-1, SF-RO-2)."""
    root = os.path.abspath(graph_root)
    run = os.path.abspath(run_root)
    prefix = f"{driver}-"
    images_dir = os.path.join(root, prefix + "images")
    layers_dir = os.path.join(root, prefix + "layers")
    containers_dir = os.path.join(root, prefix + "containers")
    run_layers_dir = os.path.join(run, prefix + "layers")
    additional = []
    for store in image_stores:
        store_root = os.path.abspath(store)
        extra_images = os.path.join(store_root, prefix + "images")
        extra_layers = os.path.join(store_root, prefix + "layers")
        additional.append(
            AdditionalStoreLayout(
                root=store_root,
                images_dir=extra_images,
                layers_dir=extra_layers,
                images_json=os.path.join(extra_images, "images.json"),
                layers_json=os.path.join(extra_layers, "layers.json"),
                images_lock=os.path.join(extra_images, "images.lock"),
                layers_lock=os.path.join(extra_layers, "layers.lock"),
            )
        )
    return StoreLayout(
        graph_root=root,
        run_root=run,
        driver=driver,
        images_dir=images_dir,
        layers_dir=layers_dir,
        containers_dir=containers_dir,
        run_layers_dir=run_layers_dir,
        run_containers_dir=os.path.join(run, prefix + "containers"),
        images_json=os.path.join(images_dir, "images.json"),
        layers_json=os.path.join(layers_dir, "layers.json"),
        containers_json=os.path.join(containers_dir, "containers.json"),
        mountpoints_json=os.path.join(run_layers_dir, "mountpoints.json"),
        images_lock=os.path.join(images_dir, "images.lock"),
        layers_lock=os.path.join(layers_dir, "layers.lock"),
        containers_lock=os.path.join(containers_dir, "containers.lock"),
        mountpoints_lock=os.path.join(run_layers_dir, "mountpoints.lock"),
        libpod_db=os.path.join(root, "libpod", "bolt_state.db"),
        additional=tuple(additional),
    )


def resolve_layout(options: StoreOptions) -> StoreLayout:
    """The layout of the store ``options`` names; the graph root must exist.

    Raises :class:`LibimageError` ``STORE_MISSING`` when the graph root does not
    exist (podman would create it; a reader never does) and ``STORE_UNREADABLE``
    when it is not a directory.
    """
    root = os.path.abspath(options.graph_root)
    try:
        info = os.stat(root)
    except FileNotFoundError as error:
        raise fail(
            ErrorKind.STORE_MISSING, root, f"{root}: no such store (the graph root does not exist)"
        ) from error
    except OSError as error:
        raise fail(ErrorKind.STORE_UNREADABLE, root, f"{root}: {error.strerror}") from error
    if not stat.S_ISDIR(info.st_mode):
        raise fail(ErrorKind.STORE_UNREADABLE, root, f"{root}: the graph root is not a directory")
    # SF-L-4: with no metadata of any driver the store is empty, whatever the driver.
    driver = options.driver or detect_driver(root) or DRIVER_PRIORITY[0]
    return layout_for(root, options.run_root, driver, options.image_stores)


# -- result -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreTokens:
    """Last-writer tokens seen while reading (SF-K-5); None where no lock file exists.

    ``layers_mtime_ns`` is layers.json's modification time, which the layer store
    also compares (SF-K-5); None when the file does not exist.
    """

    layers: bytes | None
    images: bytes | None
    containers: bytes | None
    layers_mtime_ns: int | None = None
    additional: tuple[tuple[bytes | None, bytes | None], ...] = ()  # (layers, images)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A snapshot with what was noticed while reading it.

    ``warnings`` are single lines naming a file and a record (decisions 10, 18;
    SF-I-22); ``tokens`` identify the state that was read (SF-K-5); ``paths`` is the
    resolved layout.
    """

    snapshot: Snapshot
    warnings: tuple[str, ...]
    tokens: StoreTokens
    paths: StoreLayout


def read_snapshot(options: StoreOptions) -> ReadResult:
    """Read the store ``options`` names, under shared locks (SF-K-6).

    Raises :class:`LibimageError` with kind ``STORE_MISSING`` (no graph root),
    ``STORE_UNREADABLE`` (a file that exists cannot be read) or ``STORE_CORRUPT``
    (a metadata file that does not parse, decision 9); the message names the file.
    """
    layout = resolve_layout(options)
    with store_read_locks(layout.lock_paths) as held:
        return read_snapshot_held(layout, held)


def read_snapshot_held(layout: StoreLayout, held: HeldLocks) -> ReadResult:
    """Read ``layout`` while the caller holds its locks (read or write) as ``held``.

    For the removal adapter, which reads, plans and applies under one set of write
    locks (:func:`~libimage.adapters.locks.store_write_locks`).
    """
    if len(held.additional) != len(layout.additional):
        raise ValueError("the held locks do not belong to this layout")
    # Parsing a large store allocates millions of objects that all survive; the cyclic
    # collector would rescan them again and again (about 3x the parse time at 100,000
    # images). None of them form cycles, so collection waits until the read is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_held(layout, held)
    finally:
        if collecting:
            gc.enable()


def _read_held(layout: StoreLayout, held: HeldLocks) -> ReadResult:
    warnings: list[str] = []
    tokens = current_tokens(layout, held)
    quarantine: list[QuarantinedRecord] = []

    layers = _read_layers(layout.layers_json, 0, warnings, quarantine)
    images = _read_images(layout.images_json, 0, warnings, quarantine)
    containers_raw = _load_records(layout.containers_json, _CONTAINER_FIELDS)
    for index, extra in enumerate(layout.additional, start=1):
        if not os.path.isdir(extra.root):
            warnings.append(
                f"{extra.root}: additional image store does not exist; no images read from it"
            )
            continue
        layers.extend(_read_layers(extra.layers_json, index, warnings, quarantine))
        images.extend(_read_images(extra.images_json, index, warnings, quarantine))
    containers = _read_containers(layout, containers_raw, warnings, quarantine)

    snapshot = Snapshot(
        images=pvector(images),
        layers=pvector(layers),
        containers=pvector(containers),
        quarantine=pvector(quarantine),
        content=layout.content(),
    )
    return ReadResult(snapshot=snapshot, warnings=tuple(warnings), tokens=tokens, paths=layout)


def _token(lock: LockFile | None) -> bytes | None:
    return None if lock is None else read_token(lock)


def current_tokens(layout: StoreLayout, held: HeldLocks) -> StoreTokens:
    """The last-writer tokens of the locks ``held`` and layers.json's time (SF-K-5)."""
    return StoreTokens(
        layers=_token(held.layers),
        images=_token(held.images),
        containers=_token(held.containers),
        layers_mtime_ns=_mtime_ns(layout.layers_json),
        additional=tuple((_token(extra.layers), _token(extra.images)) for extra in held.additional),
    )


def tokens_changed(before: StoreTokens, now: StoreTokens) -> bool:
    """SF-K-5: a token or layers.json's time differs, or a token cannot be compared."""
    if before.layers_mtime_ns != now.layers_mtime_ns:
        return True
    if len(before.additional) != len(now.additional):
        return True
    pairs = [
        (before.layers, now.layers),
        (before.images, now.images),
        (before.containers, now.containers),
    ]
    for old, new in zip(before.additional, now.additional, strict=True):
        pairs += [(old[0], new[0]), (old[1], new[1])]
    return any(token_changed(old, new) for old, new in pairs)


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


# -- JSON files -----------------------------------------------------------------------


def _quote(text: str) -> str:
    """A string quoted on one line, control characters escaped (warnings name raw IDs)."""
    return json.dumps(text)


def _corrupt(path: str, detail: str) -> LibimageError:
    return fail(ErrorKind.STORE_CORRUPT, path, f"{path}: {detail}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _LinkRefused(OSError):
    """A link in place of a store directory or metadata file (never followed)."""

    def __init__(self, link: str) -> None:
        super().__init__(errno.ELOOP, "is a symbolic link; not followed")
        self.link = link


_OPEN_BELOW = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW


def _open_below_root(path: str) -> int:
    """Open ``<root>/<drv>-<kind>/<kind>.json`` without following a link below ``<root>``.

    The graph root (or an additional store's root) is configuration and may be
    reached through links; its metadata directory and file are store content, and a
    link there could make us read a file outside the store (issue #8 item 5).
    """
    directory, name = os.path.split(path)
    root, subdirectory = os.path.split(directory)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            dir_fd = os.open(subdirectory, _OPEN_BELOW | os.O_DIRECTORY, dir_fd=root_fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(directory):
                raise _LinkRefused(directory) from error
            raise
    finally:
        os.close(root_fd)
    try:
        return os.open(name, _OPEN_BELOW | os.O_NOCTTY | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _LinkRefused(path) from error
        raise
    finally:
        os.close(dir_fd)


def _read_regular_file(path: str) -> bytes:
    """The bytes of a regular file (a FIFO or device in its place would block or lie)."""
    fd = _open_below_root(path)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        chunks: list[bytes] = []
        while chunk := os.read(fd, max(info.st_size + 1, 1 << 16)):
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _load_json(path: str) -> Any:
    """One metadata file parsed (None when missing or empty, SF-I-20; errors per decision 9)."""
    try:
        data = _read_regular_file(path)
    except FileNotFoundError:
        return None
    except MemoryError as error:
        raise _corrupt(path, "too large to read into memory") from error
    except _LinkRefused as error:
        raise fail(
            ErrorKind.STORE_UNREADABLE, error.link, f"{error.link}: {error.strerror}"
        ) from error
    except OSError as error:
        raise fail(
            ErrorKind.STORE_UNREADABLE, path, f"{path}: {error.strerror or error}"
        ) from error
    if not data:
        return None
    try:
        # compat: Go's decoder replaces invalid UTF-8 inside strings with U+FFFD.
        text = data.decode("utf-8", errors="replace")
        del data
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as error:
        raise _corrupt(path, "not valid JSON: nested too deeply") from error
    except MemoryError as error:
        raise _corrupt(path, "not valid JSON: too large to parse in memory") from error
    except ValueError as error:
        raise _corrupt(path, f"not valid JSON: {error}") from error


def _load_records(path: str, fields: frozenset[str]) -> list[dict[str, Any]]:
    """The records of one metadata file, keys canonicalized as Go matches them."""
    document = _load_json(path)
    if document is None:
        return []
    if not isinstance(document, list):
        raise _corrupt(path, f"expected a JSON array of records, found {_json_type(document)}")
    records: list[dict[str, Any]] = []
    for position, record in enumerate(document):
        if not isinstance(record, dict):
            raise _corrupt(
                path, f"record {position}: expected an object, found {_json_type(record)}"
            )
        records.append(record if fields.issuperset(record) else _canonical_keys(record, fields))
    return records


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _canonical_keys(record: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """Go's ``encoding/json`` key matching: exact, else case-insensitive; later keys win."""
    canonical: dict[str, Any] = {}
    for key, value in record.items():
        if key in fields:
            canonical[key] = value
            continue
        folded = key.casefold()
        for field_name in fields:
            # Same length: Go folds one character at a time (no "ß" -> "ss").
            if len(key) == len(field_name) and folded == field_name:
                canonical[field_name] = value
                break
    return canonical


class _FieldError(Exception):
    """A field of the wrong type; becomes STORE_CORRUPT naming file, record and key."""

    def __init__(self, key: str, expected: str, found: object) -> None:
        super().__init__(f"{_quote(key)}: expected {expected}, found {_json_type(found)}")


def _string(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise _FieldError(key, "a string", value)
    return value


def _strings(record: Mapping[str, Any], key: str) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    if type(value) is not list:
        raise _FieldError(key, "an array of strings", value)
    for item in value:
        if type(item) is not str:
            if item is None:
                return [item or "" for item in value]
            raise _FieldError(key, "an array of strings", value)
    return value


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int64(record: Mapping[str, Any], key: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
        raise _FieldError(key, "a 64-bit integer", value)
    return value


def _int_map(record: Mapping[str, Any], key: str) -> dict[str, int]:
    value = record.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise _FieldError(key, "an object of integers", value)
    for item in value.values():
        if type(item) is not int or not _INT64_MIN <= item <= _INT64_MAX:
            if item is None:
                return {k: v or 0 for k, v in value.items()}
            raise _FieldError(key, "an object of integers", value)
    return value


def _string_map(record: Mapping[str, Any], key: str) -> dict[str, str]:
    value = record.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise _FieldError(key, "an object of strings", value)
    for item in value.values():
        if type(item) is not str:
            if item is None:
                return {k: v or "" for k, v in value.items()}
            raise _FieldError(key, "an object of strings", value)
    return value


def _object(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise _FieldError(key, "an object", value)
    return value


def _uint32s(record: Mapping[str, Any], key: str) -> None:
    value = record.get(key)
    if value is None:
        return
    if type(value) is not list or not all(
        item is None or (type(item) is int and 0 <= item < 2**32) for item in value
    ):
        raise _FieldError(key, "an array of 32-bit unsigned integers", value)


def _id_maps(record: Mapping[str, Any], key: str) -> None:
    value = record.get(key)
    if value is None:
        return
    if type(value) is not list:
        raise _FieldError(key, "an array of ID mappings", value)
    for item in value:
        if item is None:
            continue
        if type(item) is not dict:
            raise _FieldError(key, "an array of ID mappings", value)
        mapping = _canonical_keys(item, _ID_MAP_FIELDS)
        for field_name in _ID_MAP_FIELDS:
            _int64(mapping, field_name)


_ID_MAP_FIELDS = frozenset({"container_id", "host_id", "size"})


def _time(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key)
    if value is None:
        return GO_ZERO_TIME_NS
    if type(value) is not str:
        raise _FieldError(key, "an RFC 3339 time string", value)
    nanoseconds = parse_rfc3339_ns(value)
    if nanoseconds is None:
        raise _FieldError(key, "an RFC 3339 time string", value)
    return nanoseconds


# -- times (SF-I-11) ------------------------------------------------------------------------


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, including 0)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in {4, 6, 9, 11} else 31


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)


@lru_cache(maxsize=4096)
def _midnight_seconds(year: int, month: int, day: int) -> int | None:
    """Seconds since the epoch at the start of a valid date, else None (records share dates)."""
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    return _days_from_civil(year, month, day) * 86400


def parse_rfc3339_ns(text: str) -> int | None:
    """Nanoseconds since the Unix epoch of an RFC 3339 time, or None (SF-I-11).

    Exact at any precision: fractional digits beyond nine are truncated, as Go does.

    >>> parse_rfc3339_ns("1970-01-01T00:00:01.5Z")
    1500000000
    >>> parse_rfc3339_ns("0001-01-01T00:00:00Z") == GO_ZERO_TIME_NS
    True
    >>> parse_rfc3339_ns("2026-11-29T16:28:31.003337538+01:00")
    1795966111003337538
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, utc, sign, zone_hour, zone_minute = (
        match.groups()
    )
    midnight = _midnight_seconds(int(year), int(month), int(day))
    hours, minutes, seconds = int(hour), int(minute), int(second)
    if midnight is None or hours > 23 or minutes > 59 or seconds > 59:
        return None
    offset = 0
    if utc is None:
        offset_hours, offset_minutes = int(zone_hour), int(zone_minute)
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = (offset_hours * 60 + offset_minutes) * 60 * (1 if sign == "+" else -1)
    nanoseconds = int(fraction[:9].ljust(9, "0")) if fraction else 0
    total = midnight + hours * 3600 + minutes * 60 + seconds - offset
    return total * 1_000_000_000 + nanoseconds


# -- digests (SF-I-23) -------------------------------------------------------------------------

_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = frozenset("0123456789abcdef")


_VALID_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}")


def digest_problem(value: str) -> str | None:
    """Why ``digest.Digest(value).Validate()`` fails, or None when it is valid.

    >>> digest_problem("sha256:" + "a" * 64) is None, digest_problem("sha256:abc")
    (True, 'invalid checksum digest length')
    """
    if _VALID_DIGEST.fullmatch(value):
        return None
    algorithm, sep, encoded = value.partition(":")
    if not sep or not algorithm or not encoded:
        return "invalid checksum digest format"
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        return "unsupported digest algorithm"
    if len(encoded) != length:
        return "invalid checksum digest length"
    if not _LOWER_HEX.issuperset(encoded):
        return "invalid checksum digest format"
    return None


# -- records ---------------------------------------------------------------------------------

_IMAGE_FIELDS = frozenset(
    {
        "id",
        "digest",
        "names",
        "names-history",
        "layer",
        "mapped-layers",
        "metadata",
        "big-data-names",
        "big-data-sizes",
        "big-data-digests",
        "created",
        "flags",
    }
)
_LAYER_FIELDS = frozenset(
    {
        "id",
        "names",
        "parent",
        "metadata",
        "mountlabel",
        "created",
        "compressed-diff-digest",
        "compressed-size",
        "diff-digest",
        "diff-size",
        "compression",
        "uidset",
        "gidset",
        "flags",
        "uidmap",
        "gidmap",
        "big-data-names",
    }
)
_CONTAINER_FIELDS = frozenset(
    {
        "id",
        "names",
        "image",
        "layer",
        "metadata",
        "big-data-names",
        "big-data-sizes",
        "big-data-digests",
        "created",
        "uidmap",
        "gidmap",
        "flags",
    }
)


def _resolve_duplicate_names(
    path: str,
    kind: str,
    names_of: list[list[str]],
    ids: list[str],
    warnings: list[str],
    *,
    register_each: bool,
) -> list[list[str]]:
    """SF-I-22 / SF-Y-20 in memory: a later record claiming a name takes it.

    ``register_each`` follows the layer and container loaders, which register each
    name as they meet it (so a record listing a name twice loses it); the image
    loader registers a record's names after checking them all.
    """
    owner: dict[str, int] = {}
    result = names_of
    for position, names in enumerate(names_of):
        for name in names:
            earlier = owner.get(name)
            if earlier is not None:
                if result is names_of:
                    result = list(names_of)  # the records' own lists stay untouched
                result[earlier] = [kept for kept in result[earlier] if kept != name]
                warnings.append(
                    f"{path}: {kind} {_quote(ids[position])} and earlier {kind} "
                    f"{_quote(ids[earlier])} both claim name {_quote(name)}; "
                    f"the later record keeps it (SF-I-22)"
                )
            if register_each:
                owner[name] = position
        if not register_each:
            for name in names:
                owner[name] = position
    return result


def _read_images(
    path: str, store_index: int, warnings: list[str], quarantine: list[QuarantinedRecord]
) -> list[StoredImage]:
    records = _load_records(path, _IMAGE_FIELDS)
    read_only = store_index > 0
    ids: list[str] = []
    names_of: list[list[str]] = []
    for position, record in enumerate(records):
        try:
            ids.append(_string(record, "id"))
            names_of.append(_strings(record, "names"))
        except _FieldError as error:
            raise _corrupt(path, f"record {position}: {error}") from error
    names_of = _resolve_duplicate_names(path, "image", names_of, ids, warnings, register_each=False)
    images: list[StoredImage] = []
    for position, record in enumerate(records):
        image_id = ids[position]
        try:
            digest = _string(record, "digest")
            big_data_digests = _string_map(record, "big-data-digests")
            fields = (
                _strings(record, "names-history"),
                _string(record, "layer"),
                _strings(record, "mapped-layers"),
                _string(record, "metadata"),
                _strings(record, "big-data-names"),
                _int_map(record, "big-data-sizes"),
                _time(record, "created"),
            )
            _object(record, "flags")
        except _FieldError as error:
            raise _corrupt(path, f"record {position} ({_quote(image_id)}): {error}") from error
        history, layer, mapped, metadata, big_data_names, big_data_sizes, created = fields
        _check_digests(path, image_id, names_of[position], digest, big_data_digests)
        if not is_full_id(image_id):
            quarantine.append(
                QuarantinedRecord(
                    file=path, kind="image", id=image_id, layer=layer, mapped_layers=pvector(mapped)
                )
            )
            warnings.append(_bad_id_warning(path, "image", image_id))
            continue
        names = names_of[position]
        _warn_unparseable_names(path, image_id, names, warnings)
        images.append(
            StoredImage(
                id=ImageID(image_id),
                digest=digest,
                names=pvector(names),
                names_history=pvector(history),
                top_layer=layer,
                mapped_layers=pvector(mapped),
                metadata=metadata,
                big_data_names=pvector(big_data_names),
                big_data_sizes=pmap(big_data_sizes),
                big_data_digests=pmap(big_data_digests),
                created=created,
                read_only=read_only,
                store_index=store_index,
            )
        )
    return images


def _check_digests(
    path: str, image_id: str, names: list[str], digest: str, big_data_digests: Mapping[str, str]
) -> None:
    """SF-I-23: containers-storage refuses to open a store with an invalid image digest."""
    valid = _VALID_DIGEST.fullmatch
    if (not digest or valid(digest)) and all(
        valid(value) for key, value in big_data_digests.items() if key.startswith("manifest")
    ):
        return
    problems: list[str] = []
    if digest:
        problem = digest_problem(digest)
        if problem is not None:
            problems.append(f"validating image digest {_quote(digest)}: {problem}")
    for key in sorted(big_data_digests):
        if key.startswith("manifest"):
            value = big_data_digests[key]
            problem = digest_problem(value)
            if problem is not None:
                problems.append(
                    f"validating digest {_quote(value)} for big data item {_quote(key)}: {problem}"
                )
    if problems:
        raise _corrupt(
            path,
            f"computing digests for image with ID {_quote(image_id)} ({', '.join(names)}): "
            + problems[0],
        )


def _read_layers(
    path: str, store_index: int, warnings: list[str], quarantine: list[QuarantinedRecord]
) -> list[Layer]:
    records = _load_records(path, _LAYER_FIELDS)
    read_only = store_index > 0
    ids: list[str] = []
    names_of: list[list[str]] = []
    parsed: list[tuple[str, str, int | None, int | None, bool, list[str], int]] = []
    for position, record in enumerate(records):
        layer_id = ""
        try:
            layer_id = _string(record, "id")
            ids.append(layer_id)
            names_of.append(_strings(record, "names"))
            for key in ("metadata", "mountlabel", "compressed-diff-digest"):
                _string(record, key)
            _int64(record, "compression")
            _uint32s(record, "uidset")
            _uint32s(record, "gidset")
            _id_maps(record, "uidmap")
            _id_maps(record, "gidmap")
            flags = _object(record, "flags")
            parsed.append(
                (
                    _string(record, "parent"),
                    _string(record, "diff-digest"),
                    _int64(record, "diff-size"),
                    _int64(record, "compressed-size"),
                    # containers-storage only honours a boolean true here.
                    flags.get("incomplete") is True,
                    _strings(record, "big-data-names"),
                    _time(record, "created"),
                )
            )
        except _FieldError as error:
            raise _corrupt(path, f"record {position} ({_quote(layer_id)}): {error}") from error
    names_of = _resolve_duplicate_names(path, "layer", names_of, ids, warnings, register_each=True)
    layers: list[Layer] = []
    for position, (
        parent,
        diff_digest,
        diff_size,
        compressed_size,
        incomplete,
        big,
        created,
    ) in enumerate(parsed):
        layer_id = ids[position]
        if not is_full_id(layer_id):
            quarantine.append(
                QuarantinedRecord(file=path, kind="layer", id=layer_id, parent=parent)
            )
            warnings.append(_bad_id_warning(path, "layer", layer_id))
            continue
        layers.append(
            Layer(
                id=LayerID(layer_id),
                parent=parent,
                names=pvector(names_of[position]),
                diff_digest=diff_digest,
                diff_size=diff_size,
                compressed_size=compressed_size,
                incomplete=incomplete,
                big_data_names=pvector(big),
                created=created,
                read_only=read_only,
                store_index=store_index,
            )
        )
    return layers


def _read_containers(
    layout: StoreLayout,
    records: list[dict[str, Any]],
    warnings: list[str],
    quarantine: list[QuarantinedRecord],
) -> list[Container]:
    path = layout.containers_json
    ids: list[str] = []
    names_of: list[list[str]] = []
    parsed: list[tuple[str, str, int]] = []
    for position, record in enumerate(records):
        container_id = ""
        try:
            container_id = _string(record, "id")
            ids.append(container_id)
            names_of.append(_strings(record, "names"))
            _string(record, "metadata")
            _strings(record, "big-data-names")
            _int_map(record, "big-data-sizes")
            _string_map(record, "big-data-digests")
            _id_maps(record, "uidmap")
            _id_maps(record, "gidmap")
            _object(record, "flags")
            parsed.append(
                (_string(record, "image"), _string(record, "layer"), _time(record, "created"))
            )
        except _FieldError as error:
            raise _corrupt(path, f"record {position} ({_quote(container_id)}): {error}") from error
    names_of = _resolve_duplicate_names(
        path, "container", names_of, ids, warnings, register_each=True
    )
    managed = (
        _libpod_containers(layout.libpod_db, [cid for cid in ids if is_full_id(cid)], warnings)
        if ids
        else None
    )
    containers: list[Container] = []
    for position, (image_id, layer, created) in enumerate(parsed):
        container_id = ids[position]
        if not is_full_id(container_id):
            quarantine.append(
                QuarantinedRecord(
                    file=path, kind="container", id=container_id, layer=layer, image_id=image_id
                )
            )
            warnings.append(_bad_id_warning(path, "container", container_id))
            continue
        containers.append(
            Container(
                id=ContainerID(container_id),
                image_id=image_id,
                names=pvector(names_of[position]),
                layer=layer,
                created=created,
                podman_managed=managed is not None and container_id in managed,
            )
        )
    return containers


def _bad_id_warning(path: str, kind: str, record_id: str) -> str:
    return f"{path}: skipping {kind} record with invalid ID {_quote(record_id)} (decision 10)"


# A subset of the reference grammar (REF-3) that covers what podman stores: lower-case
# components joined by single separators, a tag and/or a sha256 digest. Every match
# parses (whether the first component reads as a domain or as a path component), so
# only the rest goes through the full parser; tests check the subset property.
OBVIOUSLY_VALID_NAME = re.compile(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?",
    re.ASCII,
)


def _name_parses(name: str) -> bool:
    """Decision 18: does a stored name parse as the seed parses stored names (LN-4)?"""
    if len(name) <= 255 and OBVIOUSLY_VALID_NAME.fullmatch(name):
        return True
    try:
        parse_reference(name)
    except LibimageError:
        return False
    return True


def _warn_unparseable_names(
    path: str, image_id: str, names: Iterable[str], warnings: list[str]
) -> None:
    for name in names:
        if not _name_parses(name):
            warnings.append(
                f"{path}: image {image_id}: stored name {_quote(name)} "
                "is not a valid reference (decision 18)"
            )


# -- podman's database (decision 19) ----------------------------------------------------------


class _BoltError(Exception):
    """The BoltDB file does not have the structure we walk."""


_BOLT_MAGIC = 0xED0CDAED
_BOLT_VERSION = 2
_BOLT_BRANCH, _BOLT_LEAF, _BOLT_META = 0x01, 0x02, 0x04
_BOLT_BUCKET_FLAG = 0x01
_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_META = struct.Struct("<IIIIQQQQQQ")  # magic, version, page size, flags, root, sequence,
# freelist, high-water page, txid, checksum
_BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, key size, child page
_LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, key size, value size
_BUCKET_HEADER = struct.Struct("<QQ")  # root page (0 = inline), sequence


def _fnv64a(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def _bolt_metas(data: bytes) -> list[tuple[int, int, int]]:
    """Valid meta pages as (txid, root page, page size), newest first."""
    metas: list[tuple[int, int, int]] = []
    page_sizes = [4096]
    if len(data) >= _PAGE_HEADER.size + _META.size:
        page_sizes.insert(0, _META.unpack_from(data, _PAGE_HEADER.size)[2])
    for page in (0, 1):
        for page_size in page_sizes:
            offset = page * page_size + _PAGE_HEADER.size
            if page_size <= 0 or offset + _META.size > len(data):
                continue
            magic, version, size, _flags, root, _seq, _free, _high, txid, checksum = (
                _META.unpack_from(data, offset)
            )
            if (
                magic == _BOLT_MAGIC
                and version == _BOLT_VERSION
                and size > 0
                and checksum == _fnv64a(data[offset : offset + _META.size - 8])
            ):
                metas.append((txid, root, size))
                break
    metas.sort(reverse=True)
    return metas


def _bolt_leaf_entries(
    data: bytes, page_size: int, root: int, inline: tuple[bytes, int] | None
) -> Iterator[tuple[int, bytes, bytes]]:
    """(flags, key, value) of every leaf entry of a B+tree, walking branches iteratively."""
    stack: list[tuple[bytes, int]] = [inline] if inline is not None else [(data, root * page_size)]
    visited: set[int] = set()
    while stack:
        buffer, offset = stack.pop()
        if offset + _PAGE_HEADER.size > len(buffer):
            raise _BoltError("page beyond the end of the file")
        _id, flags, count, overflow = _PAGE_HEADER.unpack_from(buffer, offset)
        end = offset + (overflow + 1) * page_size if buffer is data else len(buffer)
        if end > len(buffer) or offset + _PAGE_HEADER.size + count * 16 > end:
            raise _BoltError("page overruns the file")
        if flags & _BOLT_BRANCH:
            children = []
            for index in range(count):
                element = offset + _PAGE_HEADER.size + index * 16
                _pos, _ksize, child = _BRANCH_ELEMENT.unpack_from(buffer, element)
                if child in visited or child * page_size >= len(data):
                    raise _BoltError("bad branch element")
                visited.add(child)
                children.append((data, child * page_size))
            stack.extend(reversed(children))
        elif flags & _BOLT_LEAF:
            for index in range(count):
                element = offset + _PAGE_HEADER.size + index * 16
                entry_flags, pos, ksize, vsize = _LEAF_ELEMENT.unpack_from(buffer, element)
                start = element + pos
                if start + ksize + vsize > end:
                    raise _BoltError("leaf element overruns its page")
                yield (
                    entry_flags,
                    buffer[start : start + ksize],
                    buffer[start + ksize : start + ksize + vsize],
                )
        else:
            raise _BoltError(f"unexpected page flags {flags:#x}")


def bolt_bucket_keys(data: bytes, bucket: bytes) -> frozenset[bytes]:
    """The keys (not sub-buckets) of a top-level bucket of a BoltDB file's bytes.

    Uses the newest valid meta page (magic, version, FNV-64a checksum), as bbolt
    does, falling back to the other one; raises :class:`ValueError` if neither gives
    a well-formed tree. An absent bucket has no keys.
    """
    metas = _bolt_metas(data)
    if not metas:
        raise ValueError("no valid BoltDB meta page")
    last_error: Exception | None = None
    for _txid, root, page_size in metas:
        try:
            for flags, key, value in _bolt_leaf_entries(data, page_size, root, None):
                if key != bucket or not flags & _BOLT_BUCKET_FLAG:
                    continue
                if len(value) < _BUCKET_HEADER.size:
                    raise _BoltError("short bucket header")
                bucket_root, _sequence = _BUCKET_HEADER.unpack_from(value, 0)
                inline = (value, _BUCKET_HEADER.size) if bucket_root == 0 else None
                return frozenset(
                    entry_key
                    for entry_flags, entry_key, _v in _bolt_leaf_entries(
                        data, page_size, bucket_root, inline
                    )
                    if not entry_flags & _BOLT_BUCKET_FLAG
                )
            return frozenset()
        except (_BoltError, struct.error) as error:
            last_error = error
    raise ValueError(f"malformed BoltDB file: {last_error}")


def _read_shared(path: str) -> bytes | None:
    """The whole file under a shared ``flock`` (bbolt's readers' lock), or None if absent.

    bbolt writers hold an exclusive ``flock`` only while podman has the database
    open; we wait at most about a second for it, then read anyway (a torn read falls
    back to the byte search, which errs towards "managed").
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    try:
        for _attempt in range(100):
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.01)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)  # also drops the flock; this is not a containers-storage lock file


def _libpod_containers(
    db_path: str, container_ids: list[str], warnings: list[str]
) -> frozenset[str] | None:
    """IDs among ``container_ids`` that podman's database knows (decision 19).

    An empty set when there is no database (a buildah-only store, or a copy without
    ``libpod/``); all of them, with a warning, when the database cannot be read.
    """
    try:
        data = _read_shared(db_path)
    except OSError as error:
        warnings.append(
            f"{db_path}: cannot read podman's database ({error.strerror}); "
            "treating every container as podman's (decision 19)"
        )
        return frozenset(container_ids)
    if data is None:
        return frozenset()
    try:
        known = bolt_bucket_keys(data, LIBPOD_CONTAINERS_BUCKET)
    except ValueError as error:
        warnings.append(
            f"{db_path}: {error}; containers whose ID occurs in the file "
            "count as podman's (decision 19)"
        )
        return frozenset(cid for cid in container_ids if cid.encode("ascii") in data)
    return frozenset(cid for cid in container_ids if cid.encode("ascii") in known)
