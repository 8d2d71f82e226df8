"""Apply a removal plan to a real store: batched, atomic, crash-safe (SF-A, SF-D, decision 12).

:func:`remove_images` is ``RemoveImages`` on disk: read the store and plan
(:func:`~libimage.pure.remove.plan_removal`); a dry run stops there and writes
nothing, not even a lock token. Otherwise the caller's container hooks run (RM-C2,
before any lock is taken, since the hook is podman's own code and takes the same
locks), then the store's write locks are taken in containers-storage's order
(layers, mountpoints, images, containers; SF-K-6), the last-writer tokens are
compared with those the plan was made from and, if the store changed meanwhile, it
is re-read and re-planned (SF-K-5). :func:`apply_plan` then carries out the effects.

The adapter decides nothing about images: which names an image keeps and how its
history moves come from :mod:`libimage.pure.storeops`, which layers go from the plan.
It converts records between JSON and Python and back, keeping every key it does not
know and the opaque ``metadata`` verbatim (SF-I-24), in the byte format podman
writes (:func:`~libimage.adapters.atomic.encode_records`).

Write order (one save per file per phase, linear in the plan)
-------------------------------------------------------------
Podman removes one image at a time: a container's layer (flagged ``incomplete`` and
saved, data, record) and its record and directories first; then ``images.json``
without the image and its big-data directory; then for each freed layer
``layers.json`` with the layer flagged ``incomplete``, its data, ``layers.json``
without it (SF-D-5, SF-D-11, SF-D-C, SF-O-4, SF-O-6). We batch the whole command
into phases, each a single save (decision 12):

0. the intent file ``<root>/<drv>-layers/libimage-removal-intent.json`` listing the
   containers, images and layers this command deletes (written atomically; see
   *Recovery*);
1. ``layers.json``: the read-write layers of the removed containers flagged
   ``incomplete``;
2. ``containers.json`` without the removed containers;
3. ``images.json`` with every untag (names and history per SF-N-3) and without the
   deleted images;
4. ``layers.json``: every layer the plan deletes flagged ``incomplete``;
5. directories: containers' (graph root and run root), images' big data, layers'
   driver data (vfs ``vfs/dir/<id>``; overlay ``overlay/<id>`` and its ``l/`` link),
   tar-split and layer big data;
6. ``layers.json`` without the deleted layers, and ``mountpoints.json`` if it listed
   any of them;
7. the intent file removed.

After each save a new last-writer token is written to that file's lock while the
lock is held (SF-K-4, SF-K-7). Phases with nothing to do are skipped; applying the
same plan again finds nothing to do and writes nothing (every effect is idempotent).

Why this is crash-safe: every prefix of the sequence is a state podman's own
one-by-one sequence passes through or one it cleans up itself. Containers are gone
before their image (2 before 3); a container layer is flagged before its record goes
(1 before 2, as DeleteContainer deletes the layer first); the images are saved before
any of their layers is touched (3 before 4); a layer is flagged ``incomplete``
before its data goes (4 before 5), so any writable load of podman 4.3.1 or of ours
finishes it (SF-Y-10); metadata is saved before the directories that it stops
referring to are deleted (2, 3 before 5); every file is replaced atomically (SF-A).
Nothing is deleted before the saves it depends on succeeded, so a failed save leaves
every directory in place; when the first save fails the intent file is removed
again and every metadata file is byte-identical.

Recovery
--------
Recovery runs only inside write operations, under the write locks (reads never
change anything). It removes stale temporary files of the metadata files and of the
intent file (anything named ``.tmp-<file><digits>``: only a writer holding the lock
makes them, and we hold it); finishes every layer flagged ``incomplete`` as
containers-storage 1.43 does on a locked load (driver data, tar-split, big data,
record); and completes an interrupted command from its intent file: the big-data
directories of listed images that no longer have a record, the directories of
listed containers that no longer have a record, and the listed layers that nothing
references any more (no image's top or mapped layer, no container's layer, no child
layer that stays) - the layers a crash between phases 3 and 4 would otherwise leak,
since no image names them any more. Listed layers still in use are left alone (a
crash before phase 3, or a podman that used them since). Directories under the
store that have no record (orphans) are reported as warnings, never deleted.

Refusals: an effect naming an ID that is not 64 lower-case hex is refused before
anything is written (decision 10); a layer deletion on a driver other than vfs and
overlay, or of an overlay layer that is mounted, is refused likewise. A read-only
additional store is never opened for writing. Errors of the world (a full disk, a
read-only or immutable file) are :class:`~libimage.adapters.atomic.StoreWriteError`
naming the file.

Fault injection (tests only): ``LIBIMAGE_FAULT_AFTER_STEP=k`` kills the process with
SIGKILL after step ``k`` (each save, each directory removal, the intent's write and
removal), ``LIBIMAGE_FAULT_IN_WRITE=k`` inside the ``k``-th temporary file; see
:class:`~libimage.adapters.atomic.FaultInjector`.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import queue
import re
import stat
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyrsistent.typing import PVector

from libimage.adapters.atomic import (
    CONTAINER_FIELDS,
    IMAGE_FIELDS,
    LAYER_FIELDS,
    MOUNT_FIELDS,
    FaultInjector,
    StoreDirs,
    StoreWriteError,
    checked_id,
    encode_document,
    encode_records,
    is_temp_of,
    listdir,
    os_detail,
    read_file_bytes,
    remove_tree,
    unlink_if_present,
    write_file_atomic,
)
from libimage.adapters.locks import (
    HeldLocks,
    LockFile,
    store_read_locks,
    store_write_locks,
    write_token,
)
from libimage.adapters.storage_conf import StoreOptions
from libimage.adapters.store import (
    ReadResult,
    StoreLayout,
    current_tokens,
    read_snapshot_held,
    resolve_layout,
    tokens_changed,
)
from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    Event,
    EventType,
    RemovalPlan,
    RemoveContainer,
    RemoveImageReport,
    RemoveOptions,
    RunContainerHook,
    Untag,
)
from libimage.pure.snapshot import ImageID, Snapshot, is_full_id
from libimage.pure.storeops import names_after_set, names_stolen_by, untagged_names

INTENT_NAME = "libimage-removal-intent.json"
INTENT_VERSION = 1
SUPPORTED_DRIVERS = ("vfs", "overlay")
_LINK_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # overlay l/<LINKID> (SF-L-3)
_FS_IOC_GETFLAGS = 0x80086601
_IMMUTABLE_FLAGS = 0x00000010 | 0x00000020  # FS_IMMUTABLE_FL | FS_APPEND_FL

ContainerHook = Callable[[ImageID], None]


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What :func:`apply_plan` did: how many saves and removals, and what it noticed."""

    saves: tuple[str, ...] = ()  # the files saved, in order
    removed: tuple[str, ...] = ()  # the directories and files deleted, in order
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.saves or self.removed)


@dataclass(frozen=True, slots=True)
class RemovalOutcome:
    """The result of :func:`remove_images`: the plan carried out and what happened.

    ``plan`` is the plan that was applied (re-made if the store changed between the
    first read and the write locks: ``replanned``), or for a dry run the plan that
    would be. ``applied`` is False when nothing was written. ``warnings`` are the
    store's (decisions 10, 18; SF-I-22) and the adapter's (recovery, orphans).
    """

    plan: RemovalPlan
    applied: bool = False
    dry_run: bool = False
    replanned: bool = False
    warnings: tuple[str, ...] = ()
    saves: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def reports(self) -> PVector[RemoveImageReport]:
        return self.plan.reports

    @property
    def errors(self) -> PVector[Failure]:
        return self.plan.errors

    @property
    def events(self) -> PVector[Event]:
        return self.plan.events


# -- events (EV-1..EV-4) ----------------------------------------------------------------------

EVENT_CHANNEL_CAPACITY = 100  # EV: the seed's channel holds 100 events
EVENT_SEND_TIMEOUT = 2.0  # seconds an event may wait for room before it is dropped


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """An event as the runtime's channel delivers it: the plan's event and its time (EV-1)."""

    id: str
    name: str
    time: datetime
    type: EventType


class EventChannel:
    """The runtime's event channel (``Runtime.EventChannel()``, EV-1): a bounded queue.

    :func:`remove_images` sends the plan's events (EV-2..EV-4) once the plan has been
    carried out (not for a dry run). As in the seed, the channel holds
    :data:`EVENT_CHANNEL_CAPACITY` events; an event that finds no room within
    ``send_timeout`` seconds is dropped, and the drop is reported as a warning.
    Receive with :meth:`get` (blocking) or iterate over the events waiting now.
    """

    def __init__(
        self, capacity: int = EVENT_CHANNEL_CAPACITY, send_timeout: float = EVENT_SEND_TIMEOUT
    ) -> None:
        self._queue: queue.Queue[RuntimeEvent] = queue.Queue(capacity)
        self._send_timeout = send_timeout

    def send(self, event: Event, when: datetime) -> str | None:
        """Queue ``event`` stamped ``when``; a warning if it had to be dropped."""
        try:
            self._queue.put(
                RuntimeEvent(event.id, event.name, when, event.type), timeout=self._send_timeout
            )
        except queue.Full:
            return f"unable to write {event.type.value} event for image {event.id}: dropped"
        return None

    def get(self, timeout: float | None = None) -> RuntimeEvent:
        """The next event; raises :class:`queue.Empty` after ``timeout`` seconds."""
        return self._queue.get(timeout=timeout)

    def __iter__(self) -> Iterator[RuntimeEvent]:
        """The events waiting now, oldest first (does not block)."""
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return


def _send_events(channel: EventChannel | None, plan: RemovalPlan) -> list[str]:
    if channel is None:
        return []
    now = datetime.now(UTC)
    return [w for event in plan.events if (w := channel.send(event, now)) is not None]


# -- raw metadata -------------------------------------------------------------------------

_KNOWN = {
    "images": frozenset(name for name, _ in IMAGE_FIELDS),
    "layers": frozenset(name for name, _ in LAYER_FIELDS),
    "containers": frozenset(name for name, _ in CONTAINER_FIELDS),
    "mountpoints": frozenset(name for name, _ in MOUNT_FIELDS),
}


def _canonicalize(record: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Known keys spelled as Go matches them (exact, else case-insensitive; later wins)."""
    if known.issuperset(record):
        return record
    canonical: dict[str, Any] = {}
    for key, value in record.items():
        name = key if key in known else None
        if name is None:
            folded = key.casefold()
            name = next((f for f in known if len(f) == len(key) and f == folded), None)
        canonical[key if name is None else name] = value
    return canonical


def _string(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else ""


def _strings(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key)
    if not isinstance(value, list):
        return []
    return [item if isinstance(item, str) else "" for item in value]


def resolve_duplicate_names(
    names_of: Sequence[list[str]], *, register_each: bool
) -> list[list[str]]:
    """SF-I-22, SF-Y-20: a later record claiming a name takes it from earlier records.

    The same rule the store reader applies in memory (images register a record's
    names after checking them all; layers and containers each name as met). Podman
    writes the result back on a locked load; we write it whenever we save the file,
    so that the file says what every reader already saw.

    >>> resolve_duplicate_names([["a", "b"], ["b"]], register_each=False)
    [['a'], ['b']]
    """
    result = [list(names) for names in names_of]
    owner: dict[str, int] = {}
    for position, names in enumerate(names_of):
        for name in names:
            earlier = owner.get(name)
            if earlier is not None:
                result[earlier] = [kept for kept in result[earlier] if kept != name]
            if register_each:
                owner[name] = position
        if not register_each:
            for name in names:
                owner[name] = position
    return result


@dataclass
class _File:
    """One metadata file held in memory while the write locks are held."""

    kind: str  # images, layers, containers, mountpoints
    base: str  # "root" or "run"
    directory: tuple[str, ...]
    name: str
    display: str
    records: list[dict[str, Any]]
    existed: bool

    def ids(self) -> list[str]:
        return [_string(record, "id") for record in self.records]


def _load_file(
    dirs: StoreDirs, kind: str, base: str, directory: tuple[str, ...], name: str
) -> _File:
    """Parse one metadata file completely, or refuse (decision 9: never write it back)."""
    display = dirs.path(base, *directory, name)
    fd = dirs.dir(base, *directory)
    data = None if fd is None else read_file_bytes(fd, name, display)
    records: list[dict[str, Any]] = []
    if data:
        try:
            document = json.loads(data.decode("utf-8", errors="replace"))
        except (ValueError, RecursionError) as error:
            raise LibimageError(
                Failure(ErrorKind.STORE_CORRUPT, display, f"{display}: not valid JSON: {error}")
            ) from error
        if document is not None:
            if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
                raise LibimageError(
                    Failure(
                        ErrorKind.STORE_CORRUPT,
                        display,
                        f"{display}: expected a JSON array of records",
                    )
                )
            known = _KNOWN[kind]
            records = [_canonicalize(record, known) for record in document]
    loaded = _File(kind, base, directory, name, display, records, data is not None)
    if kind != "mountpoints":
        resolved = resolve_duplicate_names(
            [_strings(record, "names") for record in records],
            register_each=kind != "images",
        )
        for record, names in zip(records, resolved, strict=True):
            if names != _strings(record, "names"):
                record["names"] = names
    return loaded


# -- the store while we hold its write locks -----------------------------------------------


class _Store:
    """The read-write store under write locks: raw files, directories, saves, deletions."""

    def __init__(
        self,
        layout: StoreLayout,
        held: HeldLocks,
        dirs: StoreDirs,
        fault: FaultInjector | None,
    ) -> None:
        if not held.write:
            raise RuntimeError("applying a plan needs the store's write locks")
        self.layout = layout
        self.held = held
        self.dirs = dirs
        self.fault = fault
        drv = layout.driver
        self.images_dir = (f"{drv}-images",)
        self.layers_dir = (f"{drv}-layers",)
        self.containers_dir = (f"{drv}-containers",)
        self.images = _load_file(dirs, "images", "root", self.images_dir, "images.json")
        self.layers = _load_file(dirs, "layers", "root", self.layers_dir, "layers.json")
        self.containers = _load_file(
            dirs, "containers", "root", self.containers_dir, "containers.json"
        )
        self.mounts = _load_file(dirs, "mountpoints", "run", (f"{drv}-layers",), "mountpoints.json")
        self.saves: list[str] = []
        self.removed: list[str] = []
        self.warnings: list[str] = []

    # -- steps ----------------------------------------------------------------------

    def step(self, what: str) -> None:
        if self.fault is not None:
            self.fault.step(what)

    def _lock_for(self, kind: str) -> LockFile | None:
        return {
            "images": self.held.images,
            "layers": self.held.layers,
            "containers": self.held.containers,
            "mountpoints": self.held.mountpoints,
        }[kind]

    def save(self, file: _File) -> None:
        """Replace the file atomically, then write a new token to its lock (SF-A, SF-K-7)."""
        lock = self._lock_for(file.kind)
        if lock is None or not lock.held_for_writing:
            raise RuntimeError(f"{file.display}: store is not locked for writing")
        fd = self.dirs.dir(file.base, *file.directory)
        if fd is None:
            raise StoreWriteError(self.dirs.path(file.base, *file.directory), "does not exist")
        write_file_atomic(
            fd, file.name, encode_records(file.kind, file.records), file.display, fault=self.fault
        )
        file.existed = True
        try:
            write_token(lock)
        except OSError as error:
            raise StoreWriteError(
                lock.path, f"writing the last-writer token: {os_detail(error)}"
            ) from error
        self.saves.append(file.display)
        self.step(f"save {file.display}")

    def remove(self, base: str, directory: tuple[str, ...], name: str) -> None:
        """Remove one directory tree or file below the store, if present; one step."""
        fd = self.dirs.dir(base, *directory)
        if fd is None:
            return
        display = self.dirs.path(base, *directory, name)
        self.dirs.forget(base, *directory, name)
        if remove_tree(fd, name, display, self.dirs.device(base)):
            self.removed.append(display)
            self.step(f"remove {display}")

    # -- layer data (SF-D-11) -------------------------------------------------------

    def remove_layer_data(self, layer_id: str) -> None:
        """Driver data, tar-split and big data of one layer (SF-D-11, SF-L-2, SF-L-3, SF-B-7)."""
        driver = self.layout.driver
        if driver == "vfs":
            self.remove("root", ("vfs", "dir"), layer_id)
        elif driver == "overlay":
            self._remove_overlay_link(layer_id)
            self.remove("root", ("overlay",), layer_id)
        self.remove("root", self.layers_dir, f"{layer_id}.tar-split.gz")
        self.remove("root", self.layers_dir, layer_id)

    def _remove_overlay_link(self, layer_id: str) -> None:
        display = self.dirs.path("root", "overlay", layer_id, "link")
        with self.dirs.transient("root", "overlay", layer_id) as layer_fd:
            data = None if layer_fd is None else read_file_bytes(layer_fd, "link", display)
        if data is None:
            return
        link_id = data.decode("ascii", errors="replace").strip()
        if not _LINK_ID.fullmatch(link_id):
            self.warnings.append(f"{display}: unexpected link ID {json.dumps(link_id)}; left alone")
            return
        links_fd = self.dirs.dir("root", "overlay", "l")
        if links_fd is None:
            return
        link_display = self.dirs.path("root", "overlay", "l", link_id)
        try:
            target = os.readlink(link_id, dir_fd=links_fd)
        except FileNotFoundError:
            return
        except OSError as error:
            self.warnings.append(f"{link_display}: {os_detail(error)}; left alone")
            return
        if target != f"../{layer_id}/diff":
            self.warnings.append(
                f"{link_display} points to {json.dumps(target)}, not to layer {layer_id}; "
                "left alone"
            )
            return
        unlink_if_present(links_fd, link_id, link_display)
        self.removed.append(link_display)

    # -- intent ---------------------------------------------------------------------

    def write_intent(
        self, containers: Sequence[str], images: Sequence[str], layers: Sequence[str]
    ) -> None:
        fd = self.dirs.dir("root", *self.layers_dir)
        display = self.dirs.path("root", *self.layers_dir, INTENT_NAME)
        if fd is None:
            raise StoreWriteError(self.dirs.path("root", *self.layers_dir), "does not exist")
        document = {
            "version": INTENT_VERSION,
            "containers": list(containers),
            "images": list(images),
            "layers": list(layers),
        }
        write_file_atomic(fd, INTENT_NAME, encode_document(document), display, fault=self.fault)
        self.step(f"write {display}")

    def read_intent(self) -> tuple[list[str], list[str], list[str]] | None:
        fd = self.dirs.dir("root", *self.layers_dir)
        display = self.dirs.path("root", *self.layers_dir, INTENT_NAME)
        data = None if fd is None else read_file_bytes(fd, INTENT_NAME, display)
        if data is None:
            return None
        try:
            document = json.loads(data)
            lists = tuple(
                [item for item in document[key] if isinstance(item, str) and is_full_id(item)]
                for key in ("containers", "images", "layers")
            )
        except (ValueError, TypeError, KeyError, RecursionError):
            self.warnings.append(f"{display}: not a removal intent this version wrote; ignored")
            return None
        containers, images, layers = lists
        return containers, images, layers

    def remove_intent(self) -> None:
        fd = self.dirs.dir("root", *self.layers_dir)
        display = self.dirs.path("root", *self.layers_dir, INTENT_NAME)
        if fd is not None and unlink_if_present(fd, INTENT_NAME, display):
            self.step(f"remove {display}")

    # -- questions about the raw records ---------------------------------------------

    def layer_positions(self) -> dict[str, list[int]]:
        return _positions(self.layers.ids())


def _incomplete(record: dict[str, Any]) -> bool:
    flags = record.get("flags")
    return isinstance(flags, dict) and flags.get("incomplete") is True


def _flag_incomplete(record: dict[str, Any]) -> bool:
    """Set ``flags.incomplete`` (SF-D-11); False if it was already set."""
    if _incomplete(record):
        return False
    flags = record.get("flags")
    record["flags"] = (
        {**flags, "incomplete": True} if isinstance(flags, dict) else {"incomplete": True}
    )
    return True


# -- the batch: what a plan changes --------------------------------------------------------


@dataclass
class _Batch:
    """The changes of one plan on the raw records, grouped by phase."""

    containers: list[str] = field(default_factory=list)  # container IDs removed
    container_layers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # image IDs deleted
    image_layers: list[str] = field(default_factory=list)
    images_changed: bool = False

    @property
    def layers(self) -> list[str]:
        return [*self.container_layers, *self.image_layers]

    @property
    def deletes(self) -> bool:
        return bool(self.containers or self.images or self.image_layers or self.container_layers)


def _positions(ids: Iterable[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for position, record_id in enumerate(ids):
        positions.setdefault(record_id, []).append(position)
    return positions


def _batch(store: _Store, plan: RemovalPlan) -> _Batch:
    """Carry the plan's effects out on the raw records in memory, in plan order.

    Every effect is idempotent: one that already happened changes nothing. IDs are
    checked (decision 10) before anything else is looked at.
    """
    for effect in plan.effects:
        match effect:
            case Untag(image=image_id) | DeleteImage(image=image_id):
                checked_id(image_id, "image", store.images.display)
            case RemoveContainer(container=container_id):
                checked_id(container_id, "container", store.containers.display)
            case DeleteLayer(layer=layer_id):
                checked_id(layer_id, "layer", store.layers.display)
            case RunContainerHook():
                pass
    batch = _Batch()
    images = store.images.records
    image_positions = _positions(store.images.ids())
    deleted_images: set[int] = set()
    container_positions = _positions(store.containers.ids())
    removed_containers: set[int] = set()
    layer_positions = store.layer_positions()
    doomed_layers: set[str] = set()
    holders: dict[str, list[int]] | None = None

    for effect in plan.effects:
        match effect:
            case Untag(image=image_id, name=name):
                target = next(
                    (p for p in image_positions.get(image_id, ()) if p not in deleted_images),
                    None,
                )
                if target is None:
                    continue
                record = images[target]
                current = _strings(record, "names")
                if name not in current:
                    continue
                names, history = names_after_set(
                    current, _strings(record, "names-history"), untagged_names(current, name)
                )
                if holders is None:
                    holders = {}
                    for position, other in enumerate(images):
                        for held in _strings(other, "names"):
                            holders.setdefault(held, []).append(position)
                # SF-N-3: only a store whose names were not unique has other holders.
                others = {
                    p: _strings(images[p], "names")
                    for kept in names
                    for p in holders.get(kept, ())
                    if p != target and p not in deleted_images
                }
                for position, kept_names in names_stolen_by(names, others.items()).items():
                    images[position]["names"] = list(kept_names)
                record["names"] = list(names)
                record["names-history"] = list(history)
                batch.images_changed = True
            case DeleteImage(image=image_id):
                positions = [
                    p for p in image_positions.get(image_id, ()) if p not in deleted_images
                ]
                if positions:
                    deleted_images.update(positions)
                    batch.images_changed = True
                    batch.images.append(image_id)
            case RemoveContainer(container=container_id):
                positions = [
                    p
                    for p in container_positions.get(container_id, ())
                    if p not in removed_containers
                ]
                if not positions:
                    continue
                removed_containers.update(positions)
                batch.containers.append(container_id)
                # SF-D-C: the container's read-write layer goes with it.
                rw_layer = _string(store.containers.records[positions[0]], "layer")
                if rw_layer and rw_layer in layer_positions and rw_layer not in doomed_layers:
                    checked_id(rw_layer, "layer", store.containers.display)
                    doomed_layers.add(rw_layer)
                    batch.container_layers.append(rw_layer)
            case DeleteLayer(layer=layer_id):
                if layer_id in layer_positions and layer_id not in doomed_layers:
                    doomed_layers.add(layer_id)
                    batch.image_layers.append(layer_id)
            case RunContainerHook():
                pass  # run by remove_images before the locks were taken (RM-C2)
    if deleted_images:
        store.images.records = [r for p, r in enumerate(images) if p not in deleted_images]
    if removed_containers:
        store.containers.records = [
            r for p, r in enumerate(store.containers.records) if p not in removed_containers
        ]
    return batch


# -- preflight ---------------------------------------------------------------------------------


def _immutable(fd: int) -> bool:
    try:
        buffer = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("I", 0))
    except OSError:
        return False  # the file system has no such flags
    return bool(struct.unpack("I", buffer)[0] & _IMMUTABLE_FLAGS)


def _preflight(store: _Store, batch: _Batch) -> None:
    """Refuse before writing anything what would fail half-way (issue #8 items 3, 5).

    A layer deletion needs a driver we know (vfs, overlay) and, for overlay, a layer
    that is not mounted. Each file we will save and its directory must not be
    immutable or append-only (``chattr +i``/``+a``: root cannot rename over those).
    """
    layout = store.layout
    if batch.layers and layout.driver not in SUPPORTED_DRIVERS:
        raise StoreWriteError(
            layout.graph_root,
            f"deleting layers of storage driver {layout.driver!r} is not supported "
            f"(only {', '.join(SUPPORTED_DRIVERS)})",
        )
    if batch.layers and layout.driver == "overlay":
        mounted = {
            _string(m, "id")
            for m in store.mounts.records
            if isinstance(m.get("count"), int) and m["count"] > 0
        }
        root_device = store.dirs.device("root")
        for layer_id in batch.layers:
            with store.dirs.transient("root", "overlay", layer_id) as layer_fd:
                merged = None
                if layer_fd is not None:
                    try:
                        merged = os.stat("merged", dir_fd=layer_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        merged = None
            on_other_device = merged is not None and merged.st_dev != root_device
            if layer_id in mounted or on_other_device:
                raise StoreWriteError(
                    store.dirs.path("root", "overlay", layer_id, "merged"),
                    f"layer {layer_id} is mounted; unmount it first",
                )
    # Every directory we will delete from is reached now, so that a link in its place
    # (or a missing one) stops us before anything is written.
    needed: list[tuple[str, tuple[str, ...]]] = []
    if batch.layers:
        needed.append(("root", store.layers_dir))
        driver = ("vfs", "dir") if layout.driver == "vfs" else ("overlay",)
        needed.append(("root", driver))
    if batch.images:
        needed.append(("root", store.images_dir))
    if batch.containers:
        needed += [("root", store.containers_dir), ("run", store.containers_dir)]
    for base, parts in needed:
        store.dirs.dir(base, *parts)
    files = []
    if batch.layers:
        files.append(store.layers)
    if batch.containers:
        files.append(store.containers)
    if batch.images_changed:
        files.append(store.images)
    for file in files:
        directory = store.dirs.dir(file.base, *file.directory)
        if directory is None:
            raise StoreWriteError(store.dirs.path(file.base, *file.directory), "does not exist")
        if _immutable(directory):
            raise StoreWriteError(
                store.dirs.path(file.base, *file.directory), "directory is immutable or append-only"
            )
        try:
            fd = os.open(file.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise StoreWriteError(file.display, os_detail(error)) from error
        try:
            if _immutable(fd):
                raise StoreWriteError(file.display, "file is immutable or append-only")
        finally:
            os.close(fd)


# -- applying ----------------------------------------------------------------------------------


def _run_phases(store: _Store, batch: _Batch) -> None:
    """Phases 0-7 of the module docstring."""
    if batch.deletes:
        store.write_intent(batch.containers, batch.images, batch.layers)
    first_save = True
    try:
        positions = store.layer_positions()
        if batch.container_layers:  # phase 1
            flagged = [
                _flag_incomplete(store.layers.records[p])
                for layer_id in batch.container_layers
                for p in positions.get(layer_id, ())
            ]
            if any(flagged):
                store.save(store.layers)
                first_save = False
        if batch.containers:  # phase 2
            store.save(store.containers)
            first_save = False
        if batch.images_changed:  # phase 3
            store.save(store.images)
            first_save = False
        if batch.image_layers:  # phase 4
            flagged = [
                _flag_incomplete(store.layers.records[p])
                for layer_id in batch.image_layers
                for p in positions.get(layer_id, ())
            ]
            if any(flagged):
                store.save(store.layers)
                first_save = False
    except StoreWriteError:
        if first_save and batch.deletes:
            # Nothing happened: take the intent back so that the store is as it was.
            fd = store.dirs.dir("root", *store.layers_dir)
            if fd is not None:
                with suppress(OSError):  # recovery would find nothing to do for it
                    os.unlink(INTENT_NAME, dir_fd=fd)
        raise
    for container_id in batch.containers:  # phase 5
        store.remove("root", store.containers_dir, container_id)
        store.remove("run", store.containers_dir, container_id)
    for image_id in batch.images:
        store.remove("root", store.images_dir, image_id)
    for layer_id in batch.layers:
        store.remove_layer_data(layer_id)
    _drop_layers(store, set(batch.layers))  # phase 6
    if batch.deletes:
        store.remove_intent()  # phase 7


def _drop_layers(store: _Store, doomed: set[str]) -> None:
    """One save of layers.json without ``doomed``, and mountpoints.json if it listed them."""
    if not doomed:
        return
    kept = [r for r in store.layers.records if _string(r, "id") not in doomed]
    if len(kept) != len(store.layers.records):
        store.layers.records = kept
        store.save(store.layers)
    mounts = [m for m in store.mounts.records if _string(m, "id") not in doomed]
    if len(mounts) != len(store.mounts.records):
        if store.held.mountpoints is None:
            # Decision 11: its lock file is missing and is never created; without the
            # lock the file is not ours to write (SF-K-7). podman drops stale entries.
            store.warnings.append(
                f"{store.mounts.display} lists deleted layers but has no lock file; left as is"
            )
            return
        store.mounts.records = mounts
        store.save(store.mounts)


def apply_plan(
    layout: StoreLayout,
    held: HeldLocks,
    plan: RemovalPlan,
    *,
    fault: FaultInjector | None = None,
) -> ApplyResult:
    """Carry out ``plan``'s effects on the store while the caller holds ``held`` for writing.

    The phases, their order and why it is crash-safe are in the module docstring.
    Effects that already happened change nothing; a plan whose effects all happened
    writes nothing. Raises :class:`~libimage.pure.errors.LibimageError` with kind
    ``INVALID_RECORD_ID`` for an effect naming a bad ID (nothing written),
    :class:`~libimage.adapters.atomic.StoreWriteError` for a write that failed (the
    message names the file; see the module docstring for the state left behind).
    """
    with StoreDirs(layout.graph_root, layout.run_root) as dirs:
        store = _Store(layout, held, dirs, fault)
        _apply_loaded(store, plan)
        return ApplyResult(tuple(store.saves), tuple(store.removed), tuple(store.warnings))


def _apply_loaded(store: _Store, plan: RemovalPlan) -> None:
    with _collector_paused():
        batch = _batch(store, plan)
        _preflight(store, batch)
        _run_phases(store, batch)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The raw records are millions of long-lived acyclic objects at 100,000 images: the
    cyclic collector would rescan them again and again while the batch is built."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


# -- recovery ----------------------------------------------------------------------------------


def _remove_stale_temporaries(store: _Store) -> None:
    """Temporary files of crashed writers (SF-A-1): only a writer holding the lock makes them."""
    targets = (
        ("root", store.images_dir, ("images.json",)),
        ("root", store.layers_dir, ("layers.json", INTENT_NAME)),
        ("root", store.containers_dir, ("containers.json",)),
        ("run", store.layers_dir, ("mountpoints.json",)),
    )
    for base, directory, names in targets:
        fd = store.dirs.dir(base, *directory)
        for entry in listdir(fd):
            if fd is None or not any(is_temp_of(entry, name) for name in names):
                continue
            if stat.S_ISREG(os.stat(entry, dir_fd=fd, follow_symlinks=False).st_mode):
                display = store.dirs.path(base, *directory, entry)
                unlink_if_present(fd, entry, display)
                store.removed.append(display)
                store.warnings.append(f"{display}: removed a stale temporary file")


def _unreferenced(store: _Store, candidates: Iterable[str]) -> list[str]:
    """The candidate layers nothing else uses: no image, no container, no child that stays.

    A candidate with a child outside the set is used; dropping it from the set makes
    its own parent used in turn (a worklist, linear in the number of layers).
    """
    present = {_string(r, "id") for r in store.layers.records}
    chosen = [layer for layer in dict.fromkeys(candidates) if layer in present]
    used: set[str] = set()
    for record in store.images.records:
        used.add(_string(record, "layer"))
        used.update(_strings(record, "mapped-layers"))
    for record in store.containers.records:
        used.add(_string(record, "layer"))
        used.add(_string(record, "id"))
        used.update(_strings(record, "names"))
    parent_of = {_string(r, "id"): _string(r, "parent") for r in store.layers.records}
    remaining = set(chosen) - used
    # Every layer outside the set keeps its parent.
    pending = [parent for layer, parent in parent_of.items() if layer not in remaining]
    while pending:
        parent = pending.pop()
        if parent in remaining:
            remaining.discard(parent)
            pending.append(parent_of.get(parent, ""))
    return [layer for layer in chosen if layer in remaining]


def recovery_wanted(layout: StoreLayout, snapshot: Snapshot) -> bool:
    """Whether a write operation must recover first: incomplete layers or an intent file."""
    if any(layer.incomplete and layer.store_index == 0 for layer in snapshot.layers):
        return True
    return os.path.lexists(os.path.join(layout.layers_dir, INTENT_NAME))  # noqa: PTH118


def _recover(store: _Store) -> bool:
    """Finish what crashed writers left (module docstring, *Recovery*); True if it wrote."""
    before = (len(store.saves), len(store.removed))
    _remove_stale_temporaries(store)
    intent = store.read_intent()
    intent_layers: list[str] = []
    if intent is not None:
        containers, images, intent_layers = intent
        live_containers = set(store.containers.ids())
        for container_id in containers:
            if container_id not in live_containers:
                store.remove("root", store.containers_dir, container_id)
                store.remove("run", store.containers_dir, container_id)
        live_images = set(store.images.ids())
        for image_id in images:
            if image_id not in live_images:
                store.remove("root", store.images_dir, image_id)
    incomplete = [
        _string(r, "id")
        for r in store.layers.records
        if _incomplete(r) and is_full_id(_string(r, "id"))
    ]
    for record in store.layers.records:
        if _incomplete(record) and not is_full_id(_string(record, "id")):
            store.warnings.append(
                f"{store.layers.display}: incomplete layer with invalid ID "
                f"{json.dumps(_string(record, 'id'))} left alone (decision 10)"
            )
    finishing = list(dict.fromkeys([*incomplete, *_unreferenced(store, intent_layers)]))
    if finishing:
        for layer_id in incomplete:
            store.warnings.append(f"found incomplete layer {layer_id}, deleting it (SF-Y-10)")
        flagged = [
            _flag_incomplete(r) for r in store.layers.records if _string(r, "id") in finishing
        ]
        if any(flagged):
            store.save(store.layers)
        for layer_id in finishing:
            store.remove_layer_data(layer_id)
        _drop_layers(store, set(finishing))
    if intent is not None:
        store.remove_intent()
    return (len(store.saves), len(store.removed)) != before


def _orphans(store: _Store) -> list[str]:
    """Directories (and tar-split files) with no record: reported, never deleted."""
    warnings: list[str] = []
    dirs = store.dirs
    layer_ids = set(store.layers.ids())
    checks: list[tuple[str, tuple[str, ...], set[str], str, str]] = [
        ("root", store.images_dir, set(store.images.ids()), "image", ""),
        ("root", store.containers_dir, set(store.containers.ids()), "container", ""),
        ("run", store.containers_dir, set(store.containers.ids()), "container", ""),
        ("root", store.layers_dir, layer_ids, "layer", ""),
        ("root", store.layers_dir, layer_ids, "layer", ".tar-split.gz"),
    ]
    if store.layout.driver == "vfs":
        checks.append(("root", ("vfs", "dir"), layer_ids, "layer", ""))
    elif store.layout.driver == "overlay":
        checks.append(("root", ("overlay",), layer_ids, "layer", ""))
    for base, directory, known, kind, suffix in checks:
        for entry in listdir(dirs.dir(base, *directory)):
            record_id = entry.removesuffix(suffix) if suffix else entry
            if suffix and not entry.endswith(suffix):
                continue
            if is_full_id(record_id) and record_id not in known:
                warnings.append(
                    f"{dirs.path(base, *directory, entry)}: no {kind} record refers to it "
                    "(orphan); not removed"
                )
    return warnings


# -- the whole command -------------------------------------------------------------------------


def _has_store_effects(plan: RemovalPlan) -> bool:
    return any(not isinstance(effect, RunContainerHook) for effect in plan.effects)


def _run_hooks(plan: RemovalPlan, hook: ContainerHook | None) -> None:
    for effect in plan.effects:
        if isinstance(effect, RunContainerHook):
            if hook is None:
                raise ValueError("the plan asks for a container hook but none was given")
            hook(effect.image)


@contextmanager
def _locked_store(layout: StoreLayout) -> Iterator[tuple[HeldLocks, StoreDirs]]:
    with ExitStack() as stack:
        held = stack.enter_context(store_write_locks(layout.lock_paths))
        dirs = stack.enter_context(StoreDirs(layout.graph_root, layout.run_root))
        yield held, dirs


def read_store(layout: StoreLayout) -> ReadResult:
    """Read ``layout`` under shared locks (the first read of a removal)."""
    with store_read_locks(layout.lock_paths) as held:
        return read_snapshot_held(layout, held)


def remove_images(
    store_options: StoreOptions,
    names: Sequence[str],
    options: RemoveOptions,
    context: Context,
    *,
    dry_run: bool = False,
    container_hook: ContainerHook | None = None,
    fault: FaultInjector | None = None,
    events: EventChannel | None = None,
) -> RemovalOutcome:
    """``RemoveImages(names, options)`` on the store ``store_options`` names.

    Reads and plans; with ``dry_run`` returns the plan and writes nothing. Otherwise
    runs ``container_hook`` for every :class:`~libimage.pure.plan.RunContainerHook`
    of the plan (before locking, RM-C2), takes the write locks, recovers what a
    crashed writer left (module docstring), re-plans if the store changed since the
    read (SF-K-5), and applies the plan (:func:`apply_plan`). Without store effects
    and without anything to recover, no lock is taken for writing and nothing is
    written. The plan's events go to ``events`` once it has been carried out (never
    for a dry run; EV-2..EV-4). ``fault`` defaults to the test-only environment
    variables (:class:`~libimage.adapters.atomic.FaultInjector`).

    Raises :class:`~libimage.pure.errors.LibimageError` for store errors (kind
    ``STORE_*``, message naming the file) and refusals (``INVALID_RECORD_ID``).
    Per-name errors are values in the outcome's ``errors`` (RM-8).
    """
    if fault is None:
        fault = FaultInjector.from_environment()
    layout = resolve_layout(store_options)
    first = read_store(layout)
    plan = plan_removal_for(first.snapshot, names, options, context)
    warnings = list(first.warnings)
    if dry_run:
        return RemovalOutcome(plan, dry_run=True, warnings=_unique(warnings, plan.warnings))
    _run_hooks(plan, container_hook)
    if not _has_store_effects(plan) and not recovery_wanted(layout, first.snapshot):
        warnings.extend(_send_events(events, plan))
        return RemovalOutcome(plan, warnings=_unique(warnings, plan.warnings))
    replanned = False
    with _locked_store(layout) as (held, dirs):
        store = _Store(layout, held, dirs, fault)
        recovered = _recover(store)
        if recovered or tokens_changed(first.tokens, current_tokens(layout, held)):
            fresh = read_snapshot_held(layout, held)
            warnings = list(fresh.warnings)
            plan = plan_removal_for(fresh.snapshot, names, options, context)
            replanned = True
            done = store
            store = _Store(layout, held, dirs, fault)
            store.saves, store.removed, store.warnings = done.saves, done.removed, done.warnings
        _apply_loaded(store, plan)
        store.warnings.extend(_orphans(store))
        warnings.extend(store.warnings)
        saves, removed = tuple(store.saves), tuple(store.removed)
    warnings.extend(_send_events(events, plan))
    return RemovalOutcome(
        plan,
        applied=bool(saves or removed),
        replanned=replanned,
        warnings=_unique(warnings, plan.warnings),
        saves=saves,
        removed=removed,
    )


def plan_removal_for(
    snapshot: Snapshot, names: Sequence[str], options: RemoveOptions, context: Context
) -> RemovalPlan:
    """The planner (imported here so that a dry run of the CLI pays only for what it uses)."""
    from libimage.pure.remove import plan_removal

    return plan_removal(snapshot, names, options, context)


def _unique(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


__all__ = [
    "INTENT_NAME",
    "ApplyResult",
    "EventChannel",
    "RemovalOutcome",
    "RuntimeEvent",
    "apply_plan",
    "recovery_wanted",
    "remove_images",
    "resolve_duplicate_names",
]
