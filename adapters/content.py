"""Lazy big data and layer sizes of a real store: the :class:`LazyContent` for disk (decision 7).

Big data (manifests, configs, ``instances.json``) is read only when the core asks
for an item, never while the metadata files are read, so a lookup in a store of
100,000 images opens the few files it needs. Nothing is cached here: the core
memoizes what it parses (``Snapshot.memo``), and the items are content-addressed.

Item ``key`` of image ``I`` is the file ``<store>/<drv>-images/I/<name>`` of the store
the record came from (SF-B-1), where ``<name>`` is ``key`` itself when it consists
only of ``.``, ``0-9`` and ``a-z``, else ``=`` and the standard base64 of its UTF-8
bytes (SF-B-2). Files are opened with ``O_NOFOLLOW`` on the images directory, the
image directory and the file, so no symbolic link placed in the store can make us
read a file outside it; only regular files are read. A
base64 name containing ``/`` (which the Go code would turn into a subdirectory and
fail to write, SF-B-2), the empty key, and the names ``.``/``..`` are unreadable
items.

Failures are values (decision 7): an item or directory that does not exist is
``Unreadable(missing=True)`` (Go's ``os.ErrNotExist``, which LK-9 tolerates); every
other failure (permissions, a symbolic link, not a regular file, I/O) is
``Unreadable(missing=False)`` whose reason names the file (lookup errors quote only
the reason).

Layer sizes (IP-13) are measured only for layers whose record has no
``diff-digest``: **overlay** sums the ``lstat`` sizes of every non-directory under
``<home>/overlay/<id>/diff``, counting an inode once (containers-storage's
``directory.Size``); **vfs** sizes the changes of the layer's directory against its
parent's, as the naive diff driver does (``ChangesDirs`` + ``ChangesSize``): an
entry counts when the parent lacks it or differs in mode, owner, device, size,
modification time, ``security.capability`` or link target, directories never count,
and a hard-linked inode counts once. Symbolic links are never followed.
"""

# Paths stay str here: they feed dir_fd opens and scandir walks over whole layers,
# where pathlib objects only add cost.
# ruff: noqa: PTH114, PTH115, PTH118

from __future__ import annotations

import base64
import errno
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from libimage.pure.snapshot import Layer, StoredImage, Unreadable, is_full_id

if TYPE_CHECKING:  # the derivations' module is imported by the core that uses them
    from libimage.pure.manifest import Derivation

_PLAIN_NAME_CHARS = frozenset(".0123456789abcdefghijklmnopqrstuvwxyz")
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CAPABILITY_XATTR = "security.capability"


def big_data_file_name(key: str) -> str:
    """The file name containers-storage stores big-data item ``key`` under (SF-B-2).

    >>> big_data_file_name("manifest")
    'manifest'
    >>> big_data_file_name("sha256:ab")
    '=c2hhMjU2OmFi'
    >>> big_data_file_name("")
    ''
    """
    if not key or _PLAIN_NAME_CHARS.issuperset(key):
        return key
    return "=" + base64.b64encode(key.encode("utf-8")).decode("ascii")


def _unusable_name_reason(key: str, name: str) -> str | None:
    if not key:
        return "not a valid name for a big data item"
    if "/" in name:
        return f"big data file name {name!r} contains '/' (SF-B-2)"
    if name in {".", ".."}:
        return f"big data file name {name!r} is a directory"
    return None


Identity = tuple[int, int, int, int, int, int]
"""A file's (mode, device, inode, size, mtime_ns, ctime_ns): the facts cache's validity."""

RACY_NS = 2_000_000_000
"""A file changed this recently is not recorded: a write in the same clock tick could
leave its identity unchanged (the racy-clean rule of git's index)."""


def _identity(info: os.stat_result) -> Identity:
    return (
        info.st_mode,
        info.st_dev,
        info.st_ino,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


_ABSENT = object()


@dataclass(slots=True)
class FactsCache:
    """Facts derived from big-data files, valid while each file's identity is unchanged.

    ``entries`` maps (store index, image ID, file name) to the file's identity when it
    was read and the values of the derivations computed from its bytes (by
    derivation name). The adapter that persists it is :mod:`libimage.adapters.cache`;
    here it is only consulted and filled. ``added`` counts values recorded in this
    run, ``hits`` values answered without reading. ``now_ns`` is when the run began:
    a file whose modification or change time is less than :data:`RACY_NS` before it
    is not recorded.
    """

    entries: dict[tuple[int, str, str], tuple[Identity, dict[str, Any]]] = field(
        default_factory=dict
    )
    now_ns: int = field(default_factory=time.time_ns)
    added: int = 0
    hits: int = 0
    # Images and image directories seen to be real directories in this run (not links).
    real_dirs: set[str] = field(default_factory=set)

    def get(self, where: tuple[int, str, str], identity: Identity, name: str) -> Any:
        try:
            entry = self.entries.get(where)
            if entry is None or entry[0] != identity:
                return _ABSENT
            value = entry[1].get(name, _ABSENT)
        except (TypeError, IndexError, AttributeError):
            return _ABSENT  # an entry of another shape (a file not written by save_facts)
        if value is not _ABSENT:
            self.hits += 1
        return value

    def record(
        self, where: tuple[int, str, str], identity: Identity, name: str, value: Any
    ) -> None:
        if self.now_ns - identity[4] < RACY_NS or self.now_ns - identity[5] < RACY_NS:
            return
        # Any: a loaded file may hold entries of another shape; they are replaced.
        entry: Any = self.entries.get(where)
        if not (
            type(entry) is tuple
            and len(entry) == 2
            and entry[0] == identity
            and type(entry[1]) is dict
        ):
            entry = (identity, {})
            self.entries[where] = entry
        entry[1][name] = value
        self.added += 1


@dataclass(frozen=True, slots=True)
class StoreContent:
    """Reads big data and measures layers of one store on first access (decision 7).

    ``image_dirs[n]`` is ``<store>/<drv>-images`` of store ``n`` (0 = the read-write
    store, then the additional stores in configured order, matching
    ``StoredImage.store_index``). ``layer_homes`` are the graph roots where the
    driver looks for layer data, in its search order: the read-write root, then
    each additional store (SF-RO-2).
    """

    driver: str
    image_dirs: tuple[str, ...]
    layer_homes: tuple[str, ...]
    facts: FactsCache | None = field(default=None, compare=False)

    # -- big data ----------------------------------------------------------------

    def big_data(self, image: StoredImage, key: str) -> bytes | Unreadable:
        """The bytes of big-data item ``key`` of ``image`` (SF-B-1, SF-B-2), or Unreadable."""
        found = self._file_name(image, key)
        if isinstance(found, Unreadable):
            return found
        own, _identity_read = _read_below(
            self.image_dirs[image.store_index], image.id, found, f"{image.id}/{key}"
        )
        return self._or_other_stores(image, found, key, own)

    def derived(self, image: StoredImage, key: str, derivation: Derivation) -> Any:
        """``derivation.derive`` of the item's bytes, or the item's Unreadable.

        With a :class:`FactsCache`, a value derived earlier from the record's own file
        is given without reading when the file's identity (lstat, through image
        directories that are real directories, as a read requires) is unchanged;
        otherwise the item is read exactly as :meth:`big_data` reads it, and the value
        recorded when it came from that file, unchanged during the read.
        """
        cache = self.facts
        if cache is None:
            data = self.big_data(image, key)
            return data if isinstance(data, Unreadable) else derivation.derive(data)
        name = self._file_name(image, key)
        if isinstance(name, Unreadable):
            return name
        images_dir = self.image_dirs[image.store_index]
        where = (image.store_index, image.id, name)
        seen = _identity_below(images_dir, image.id, name, cache.real_dirs)
        if seen is not None:
            value = cache.get(where, seen, derivation.name)
            if value is not _ABSENT:
                return value
        own, identity_read = _read_below(images_dir, image.id, name, f"{image.id}/{key}")
        data = self._or_other_stores(image, name, key, own)
        if isinstance(data, Unreadable):
            return data
        value = derivation.derive(data)
        if identity_read is not None and data is own:
            cache.record(where, identity_read, derivation.name, value)
        return value

    def _file_name(self, image: StoredImage, key: str) -> str | Unreadable:
        """The item's file name, or why it has none that can be read (SF-B-2, decision 10)."""
        what = f"{image.id}/{key}"
        try:
            name = big_data_file_name(key)
        except UnicodeEncodeError:
            return Unreadable(what, "big data key is not valid UTF-8", missing=False)
        reason = _unusable_name_reason(key, name)
        if reason is not None:
            return Unreadable(what, reason, missing=False)
        if not is_full_id(image.id):
            # decision 10: an ID that is not 64 hex never becomes part of a path.
            return Unreadable(what, "image ID is not 64 lowercase hex", missing=False)
        if not 0 <= image.store_index < len(self.image_dirs):
            return Unreadable(what, f"no image store {image.store_index}", missing=False)
        return name

    def _or_other_stores(
        self, image: StoredImage, name: str, key: str, own: bytes | Unreadable
    ) -> bytes | Unreadable:
        # compat (SF-N-6): containers-storage's ImageBigData tries every image store in
        # order, so a read-write copy of a read-only image (which has no big data of its
        # own) reads the read-only store's items. The record's own failure is reported.
        if not isinstance(own, Unreadable):
            return own
        what = f"{image.id}/{key}"
        for index, images_dir in enumerate(self.image_dirs):
            if index != image.store_index:
                data, _identity_read = _read_below(images_dir, image.id, name, what)
                if not isinstance(data, Unreadable):
                    return data
        return own

    # -- layer sizes (IP-13) -------------------------------------------------------

    def layer_diff_size(self, layer: Layer) -> int | Unreadable:
        """The measured size of ``layer``'s changes, as the driver computes it (IP-13)."""
        what = f"layer {layer.id}"
        if not is_full_id(layer.id) or (layer.parent and not is_full_id(layer.parent)):
            return Unreadable(what, "layer ID is not 64 lowercase hex", missing=False)
        if self.driver == "overlay":
            layer_dir = self._layer_dir(layer.id)
            if layer_dir is None:
                return Unreadable(what, "layer directory does not exist")
            diff_dir = os.path.join(layer_dir, "diff")
            return _measure(what, lambda: _directory_size(diff_dir))
        if self.driver == "vfs":
            layer_dir = self._layer_dir(layer.id)
            if layer_dir is None:
                return Unreadable(what, "layer directory does not exist")
            parent_dir: str | None = None
            if layer.parent:
                parent_dir = self._layer_dir(layer.parent)
                if parent_dir is None:
                    return Unreadable(what, f"parent layer {layer.parent} has no directory")
            return _measure(what, lambda: _changes_size(layer_dir, parent_dir))
        return Unreadable(what, f"measuring layers of driver {self.driver!r}", missing=False)

    def _layer_dir(self, layer_id: str) -> str | None:
        """The driver's directory of a layer: first home that has it (SF-L-2, SF-L-3, SF-RO-2)."""
        for home in self.layer_homes:
            if self.driver == "vfs":
                candidate = os.path.join(home, "vfs", "dir", layer_id)
            else:
                candidate = os.path.join(home, self.driver, layer_id)
            try:
                if stat.S_ISDIR(os.lstat(candidate).st_mode):
                    return candidate
            except OSError:
                continue
        return None


def _identity_below(
    images_dir: str, image_id: str, name: str, real_dirs: set[str]
) -> Identity | None:
    """The identity of ``images_dir/image_id/name`` if :func:`_read_below` could open it.

    None unless the images directory and the image directory are directories (not
    links) and the file is a regular file (not a link): the conditions of a read.
    ``real_dirs`` remembers the directories already checked in this run (the
    manifest and the config of an image are in the same directory).
    """
    image_path = os.path.join(images_dir, image_id)
    try:
        if images_dir not in real_dirs:
            if not stat.S_ISDIR(os.lstat(images_dir).st_mode):
                return None
            real_dirs.add(images_dir)
        if image_path not in real_dirs:
            if not stat.S_ISDIR(os.lstat(image_path).st_mode):
                return None
            real_dirs.add(image_path)
        info = os.lstat(os.path.join(image_path, name))
    except (OSError, ValueError):
        return None
    return _identity(info) if stat.S_ISREG(info.st_mode) else None


def _read_below(
    images_dir: str, image_id: str, name: str, what: str
) -> tuple[bytes | Unreadable, Identity | None]:
    """Read ``images_dir/image_id/name`` without following links at or below ``images_dir``.

    ``images_dir`` is ``<store>/<drv>-images``: the store's root may be reached through
    a link (configuration), its images directory may not (issue #8 item 5). With the
    bytes comes the file's identity, when it was the same before and after the read
    (else None).
    """
    data = _read_below_fd(images_dir, image_id, name, what)
    if isinstance(data, Unreadable):
        return data, None
    return data[0], data[1]


def _read_below_fd(
    images_dir: str, image_id: str, name: str, what: str
) -> tuple[bytes, Identity | None] | Unreadable:
    image_path = os.path.join(images_dir, image_id)
    file_path = os.path.join(image_path, name)
    try:
        top = os.open(images_dir, _OPEN_DIR | os.O_NOFOLLOW)
    except OSError as error:
        return _unreadable(what, error, images_dir)
    try:
        try:
            image_dir = os.open(image_id, _OPEN_DIR | os.O_NOFOLLOW, dir_fd=top)
        except OSError as error:
            return _unreadable(what, error, image_path)
        try:
            try:
                fd = os.open(name, _OPEN_FILE, dir_fd=image_dir)
            except OSError as error:
                return _unreadable(what, error, file_path)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    return Unreadable(what, f"{file_path}: not a regular file", missing=False)
                data = _read_all(fd, info.st_size)
                before = _identity(info)
                return data, before if _identity(os.fstat(fd)) == before else None
            except OSError as error:
                return _unreadable(what, error, file_path)
            except MemoryError:
                return Unreadable(
                    what, f"{file_path}: too large to read into memory", missing=False
                )
            finally:
                os.close(fd)
        finally:
            os.close(image_dir)
    finally:
        os.close(top)


def _read_all(fd: int, size_hint: int) -> bytes:
    chunks: list[bytes] = []
    want = max(size_hint, 0) + 1  # one byte more, to see EOF without a second call
    while True:
        chunk = os.read(fd, max(want, 65536))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        want = 65536


def _unreadable(what: str, error: OSError, path: str) -> Unreadable:
    """A failure as a value; any but "missing" names the file (lookup errors quote only
    the reason, and "Not a directory" alone would not say which file is damaged)."""
    if error.errno == errno.ENOENT:
        return Unreadable(what, "no such file", missing=True)
    # O_NOFOLLOW | O_DIRECTORY on a link fails with ENOTDIR, on a file with ELOOP.
    if error.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
        return Unreadable(what, f"{path}: is a symbolic link; not followed", missing=False)
    text = error.strerror or str(error)
    return Unreadable(what, f"{path}: {text[:1].lower()}{text[1:]}", missing=False)


def _measure(what: str, measure: Callable[[], int]) -> int | Unreadable:
    try:
        return measure()
    except FileNotFoundError:
        return Unreadable(what, "layer directory vanished while measuring")
    except OSError as error:
        return Unreadable(what, error.strerror or str(error), missing=False)


def _directory_size(root: str) -> int:
    """``directory.Size``: lstat sizes of every non-directory, each inode once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [root]
    os.lstat(root)  # a missing root is an error; vanished entries below are not
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except FileNotFoundError:
            continue
        for entry in listed:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            inode = (info.st_dev, info.st_ino)
            if inode in seen:
                continue
            seen.add(inode)
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
            else:
                total += info.st_size
    return total


def _lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, _CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None


def _link_target(path: str, info: os.stat_result) -> str | None:
    return os.readlink(path) if stat.S_ISLNK(info.st_mode) else None


def _same_fs_time(old_ns: int, new_ns: int) -> bool:
    """``sameFsTimeSpec``: equal seconds, and equal nanoseconds unless either is 0."""
    old_sec, old_nsec = divmod(old_ns, 1_000_000_000)
    new_sec, new_nsec = divmod(new_ns, 1_000_000_000)
    return old_sec == new_sec and (old_nsec == new_nsec or 0 in (old_nsec, new_nsec))


def _stat_different(old: os.stat_result, new: os.stat_result) -> bool:
    """``statDifferent`` of containers-storage's archive package."""
    if (
        old.st_mode != new.st_mode
        or old.st_uid != new.st_uid
        or old.st_gid != new.st_gid
        or old.st_rdev != new.st_rdev
    ):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False  # size and mtime of directories are no measure of change
    return not _same_fs_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size


def _changes_size(layer_dir: str, parent_dir: str | None) -> int:
    """``ChangesSize(ChangesDirs(layer, parent))`` of the naive diff driver (vfs)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    os.lstat(layer_dir)
    # (directory in the layer, same directory in the parent or None when absent)
    stack: list[tuple[str, str | None]] = [(layer_dir, parent_dir)]
    while stack:
        new_dir, old_dir = stack.pop()
        with os.scandir(new_dir) as entries:
            listed = list(entries)
        for entry in listed:
            new = entry.stat(follow_symlinks=False)
            old_path = os.path.join(old_dir, entry.name) if old_dir is not None else None
            old = _lstat_or_none(old_path) if old_path is not None else None
            if stat.S_ISDIR(new.st_mode):
                keep_old = old is not None and old_path is not None and stat.S_ISDIR(old.st_mode)
                stack.append((entry.path, old_path if keep_old else None))
                continue
            if old is not None and old_path is not None:
                changed = (
                    _stat_different(old, new)
                    or _capability(old_path) != _capability(entry.path)
                    or _link_target(old_path, old) != _link_target(entry.path, new)
                )
                if not changed:
                    continue
            if new.st_nlink > 1:
                inode = (new.st_dev, new.st_ino)
                if inode in seen:
                    continue
                seen.add(inode)
            total += new.st_size
    return total
