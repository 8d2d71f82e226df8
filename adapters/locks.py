"""containers-storage lock files: POSIX record locks, one object per file (SF-K, decision 11).

containers-storage guards every metadata file with a lock file next to it
(``layers.lock``, ``images.lock``, ``containers.lock``, ``mountpoints.lock``;
SF-K-1) and locks it with ``fcntl(F_SETLKW)`` on the whole file: ``F_RDLCK`` for
readers, ``F_WRLCK`` for writers (SF-K-2). Python's :func:`fcntl.lockf` issues exactly
these locks; ``flock()`` is a different lock family and would not exclude podman.

POSIX locks belong to the *process*, and closing **any** descriptor of the file
drops them (SF-K-3). So this module is the only place in libimage that opens a lock
file: :func:`lock_file` returns one process-wide :class:`LockFile` per file (whatever
path reaches it: links, ``..``, a bind mount, a hard link), holding an in-process
reader/writer mutex and a reference count. The descriptor is opened when the first
holder in the process acquires the lock and closed when the last one releases it,
exactly as containers-storage's ``lockfile`` does. No other module may ``open()`` a
lock file; everything goes through this API. A lock file that is itself a symbolic
link, or not a regular file, is refused: the token written under a write lock would
otherwise land in whatever file the link names (issue #8 item 5). An additional
store whose lock files are the read-write store's own is refused as podman refuses
it (``lock "<path>" is not a read-only lock``).

Reading never creates anything. A lock file that does not exist is never created:

* for a read, :func:`store_read_locks` reads that metadata file **without** the lock
  and reports no token for it. containers-storage creates every lock file of a store
  when it first opens the store (SF-L-0, SF-K-2; observed with podman 4.3.1 even for
  additional image stores), so a missing lock file means no containers-storage
  process uses that store and nothing can be holding the lock; the metadata files
  are replaced atomically (SF-A), so an unlocked read still sees whole files.
* for a write, :func:`store_write_locks` refuses (``STORE_MISSING``) when the
  layers, images or containers lock is missing (decision 11: a lock file we did not
  create is never recreated). ``mountpoints.lock`` lives on the run root, a tmpfs
  emptied at boot; when it is missing no layer of the store is mounted and it is
  skipped (its guard, the layers lock, is held anyway).

Read-only additional image stores are opened ``O_RDONLY`` and only read-locked
(SF-K-1, SF-RO-5). Read locks always use an ``O_RDONLY`` descriptor (a shared POSIX
lock needs only read access); write locks open ``O_RDWR``.

Last-writer tokens (SF-K-4, SF-K-5, SF-K-8): :func:`read_token` reads the 64 bytes at
offset 0 (fewer bytes mean "changed"); :func:`write_token` writes a new token with
``pwrite`` at offset 0 without truncating. Our tokens are 64 random lower-case hex
characters (256 random bits), the form containers/storage bf170b3 writes; podman
4.3.1 writes a 64-byte binary value, and since readers only compare bytes the two
interoperate (decision 11, SF-K-4).

Lock order (SF-K-6): layers, then images, then containers; the writer also takes
``mountpoints.lock`` inside the layers lock; release in reverse. Reads then
read-lock each additional store's layers and images, in configured order.

Forking: POSIX locks are not inherited by a child process. A child forked without
``exec`` starts with an empty registry (its inherited descriptors are closed), so
it never believes it holds a lock it does not hold.
"""

# Lock paths are plain str: they are registry keys and message text.
# ruff: noqa: PTH100, PTH116, PTH118

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass

from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.reference import go_quote

TOKEN_SIZE = 64  # SF-K-4: the last-writer token is exactly 64 bytes at offset 0


class LockFile:
    """One containers-storage lock file, shared by every user in this process (SF-K-3).

    Obtain it with :func:`lock_file`, never construct it directly. Holders nest:
    any number of threads may hold it for reading at once; one thread may hold it
    for writing, and that thread may nest further write or read acquisitions (a read
    inside a write changes nothing on disk). Upgrading a read to a write in one
    thread would deadlock and raises :class:`RuntimeError` instead.

    The file descriptor exists only while someone holds the lock; it is opened on
    the first acquisition and closed on the last release, which drops the POSIX
    lock (SF-K-2).
    """

    __slots__ = (
        "_cond",
        "_fd",
        "_readers",
        "_write_depth",
        "_writer",
        "path",
        "read_only",
    )

    def __init__(self, path: str, *, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._cond = threading.Condition(threading.Lock())
        self._fd: int | None = None
        self._readers: dict[int, int] = {}  # thread ident -> nesting depth
        self._writer: int | None = None
        self._write_depth = 0

    def __repr__(self) -> str:
        return f"LockFile({self.path!r}, read_only={self.read_only})"

    # -- state -----------------------------------------------------------------

    @property
    def held(self) -> bool:
        """True while any thread of this process holds the lock."""
        with self._cond:
            return self._fd is not None

    @property
    def held_for_writing(self) -> bool:
        """True while the calling thread holds the lock for writing."""
        with self._cond:
            return self._writer == threading.get_ident()

    def fileno(self) -> int:
        """The descriptor of the held lock (for tokens); only valid while held."""
        fd = self._fd
        if fd is None:
            raise RuntimeError(f"lock file {self.path} is not held")
        return fd

    # -- acquisition -----------------------------------------------------------

    def acquire_read(self) -> None:
        """Take a shared lock (``F_RDLCK``), blocking until no writer holds the file.

        Raises :class:`FileNotFoundError` if the file does not exist (it is never
        created) and other :class:`OSError` if it cannot be opened; the lock is then
        not held.
        """
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._readers[me] = self._readers.get(me, 0) + 1
                return
            while self._writer is not None:
                self._cond.wait()
            if self._fd is None:
                # The POSIX call blocks while another process holds a write lock; the
                # in-process mutex is held meanwhile, which only delays other threads
                # that would have to wait for the same file anyway.
                self._fd = _open_and_lock(self.path, os.O_RDONLY, fcntl.LOCK_SH)
            self._readers[me] = self._readers.get(me, 0) + 1

    def acquire_write(self) -> None:
        """Take the exclusive lock (``F_WRLCK``); refuses on a read-only lock file."""
        if self.read_only:
            raise RuntimeError(f"lock file {self.path} belongs to a read-only store")
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._write_depth += 1
                return
            if self._readers.get(me):
                raise RuntimeError(f"lock file {self.path}: cannot upgrade a read lock")
            while self._writer is not None or self._readers:
                self._cond.wait()
            self._fd = _open_and_lock(self.path, os.O_RDWR, fcntl.LOCK_EX)
            self._writer = me
            self._write_depth = 1

    def release_read(self) -> None:
        """Release one read acquisition of the calling thread."""
        me = threading.get_ident()
        with self._cond:
            depth = self._readers.get(me, 0)
            if depth == 0:
                raise RuntimeError(f"lock file {self.path} is not read-locked by this thread")
            if depth == 1:
                del self._readers[me]
            else:
                self._readers[me] = depth - 1
            if self._writer is None and not self._readers:
                self._close()
                self._cond.notify_all()

    def release_write(self) -> None:
        """Release one write acquisition of the calling thread."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                raise RuntimeError(f"lock file {self.path} is not write-locked by this thread")
            self._write_depth -= 1
            if self._write_depth:
                return
            self._writer = None
            if self._readers.get(me):
                # Reads nested inside the write outlived it: a misuse that would leave
                # an exclusive lock behind a "read" holder.
                raise RuntimeError(f"lock file {self.path}: read still held inside a write")
            self._close()
            self._cond.notify_all()

    @contextmanager
    def read(self) -> Iterator[LockFile]:
        """Hold the lock for reading inside a ``with`` block."""
        self.acquire_read()
        try:
            yield self
        finally:
            self.release_read()

    @contextmanager
    def write(self) -> Iterator[LockFile]:
        """Hold the lock for writing inside a ``with`` block."""
        self.acquire_write()
        try:
            yield self
        finally:
            self.release_write()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # drops the POSIX lock (SF-K-2)

    def _forget_after_fork(self) -> None:
        fd, self._fd = self._fd, None
        self._cond = threading.Condition(threading.Lock())
        self._readers = {}
        self._writer = None
        self._write_depth = 0
        if fd is not None:
            with suppress(OSError):
                os.close(fd)


def _open_and_lock(path: str, access: int, operation: int) -> int:
    # A lock file that is a symbolic link is never followed (issue #8 item 5): the token
    # written under a write lock would land in whatever file the link names. O_NONBLOCK
    # keeps a FIFO in its place from blocking the open; only regular files are locked.
    fd = os.open(path, access | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        while True:
            try:
                fcntl.lockf(fd, operation)
                return fd
            except InterruptedError:
                continue
            except OSError as error:
                # SF-K-2: containers-storage retries a failed F_SETLKW; EDEADLK is
                # the kernel's guess at a cycle between processes, which a retry
                # after the other side moves on resolves.
                if error.errno != errno.EDEADLK:
                    raise
    except BaseException:
        os.close(fd)
        raise


_registry: dict[str, LockFile] = {}
_by_inode: dict[tuple[int, int], LockFile] = {}
_registry_lock = threading.Lock()


def real_lock_path(path: str) -> str:
    """``path`` with its directory resolved and its last component kept (never followed)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(directory), name)


def file_identity(path: str) -> tuple[int, int] | str:
    """(device, inode) of the file ``path`` names (a link itself, not its target), or
    its resolved path when it does not exist: equal for every path to one file."""
    real = real_lock_path(path)
    try:
        info = os.stat(real, follow_symlinks=False)
    except OSError:
        return real
    return (info.st_dev, info.st_ino)


def lock_file(path: str, *, read_only: bool = False) -> LockFile:
    """The process-wide :class:`LockFile` for ``path`` (one per file, SF-K-3).

    Every path to one file gives the same object - other spellings through symbolic
    links and ``..`` (the directory's real path is the key), and other paths to the
    same inode (a bind mount or a hard link) - so the process never holds two
    descriptors of one lock file, and closing one never drops a lock the other still
    holds. The last component is not resolved: a lock file that is itself a link is
    refused when it is opened. ``read_only`` marks a lock of a read-only additional
    store; once marked, the object never takes a write lock. Nothing is opened or
    created here.
    """
    real = real_lock_path(path)
    identity = file_identity(real)
    with _registry_lock:
        lock = _registry.get(real)
        if lock is None and isinstance(identity, tuple):
            alias = _by_inode.get(identity)
            # An inode number is reused once its file is gone: only a live alias counts.
            if alias is not None and file_identity(alias.path) == identity:
                lock = alias
        if lock is None:
            lock = LockFile(real, read_only=read_only)
        _registry[real] = lock
        if isinstance(identity, tuple):
            _by_inode[identity] = lock
        if read_only:
            lock.read_only = True
        return lock


def _reset_registry_in_child() -> None:
    global _registry_lock  # noqa: PLW0603 (the child needs a fresh, unlocked mutex)
    _registry_lock = threading.Lock()
    for lock in _registry.values():
        lock._forget_after_fork()


os.register_at_fork(after_in_child=_reset_registry_in_child)


# -- last-writer tokens (SF-K-4, SF-K-5, SF-K-8) -----------------------------------


def read_token(lock: LockFile) -> bytes:
    """The 64-byte last-writer token at offset 0 of a held lock file (SF-K-5).

    Fewer than 64 bytes (a new lock file, SF-K-8) are returned as read; compare
    tokens with :func:`token_changed`, which counts a short token as "changed".
    """
    return os.pread(lock.fileno(), TOKEN_SIZE, 0)


def write_token(lock: LockFile) -> bytes:
    """Write a new unique token at offset 0 of a write-held lock file; return it (SF-K-4).

    64 random lower-case hex characters (256 bits from :mod:`secrets`), written with
    ``pwrite`` and without truncating, while the write lock is still held (SF-K-7).
    """
    if not lock.held_for_writing:
        raise RuntimeError(f"lock file {lock.path} is not write-locked by this thread")
    import secrets  # only writers need it: reading commands start without it

    token = secrets.token_hex(TOKEN_SIZE // 2).encode("ascii")
    written = os.pwrite(lock.fileno(), token, 0)
    if written != TOKEN_SIZE:
        raise OSError(errno.EIO, f"short write of the last-writer token to {lock.path}")
    return token


def token_changed(remembered: bytes | None, current: bytes | None) -> bool:
    """True unless both tokens are the same full 64 bytes (SF-K-5, SF-K-8).

    >>> token_changed(b"a" * 64, b"a" * 64), token_changed(b"", b""), token_changed(None, None)
    (False, True, True)
    """
    if remembered is None or current is None or len(current) < TOKEN_SIZE:
        return True
    return remembered != current


# -- the store's locks, in containers-storage order (SF-K-6) -----------------------


@dataclass(frozen=True, slots=True)
class AdditionalLockPaths:
    """Lock files of one read-only additional image store (SF-K-1)."""

    layers: str  # <store>/<drv>-layers/layers.lock
    images: str  # <store>/<drv>-images/images.lock


@dataclass(frozen=True, slots=True)
class StoreLockPaths:
    """Lock files of a store, as SF-K-1 lists them (driver-specific paths resolved)."""

    layers: str  # <root>/<drv>-layers/layers.lock
    images: str  # <root>/<drv>-images/images.lock
    containers: str  # <root>/<drv>-containers/containers.lock
    mountpoints: str  # <runroot>/<drv>-layers/mountpoints.lock
    additional: tuple[AdditionalLockPaths, ...] = ()


@dataclass(frozen=True, slots=True)
class HeldAdditional:
    """The held locks of one additional store (None: lock file absent, read unlocked)."""

    layers: LockFile | None
    images: LockFile | None


@dataclass(frozen=True, slots=True)
class HeldLocks:
    """The locks a ``with store_*_locks(...)`` block holds; None where a file was absent.

    ``write`` tells whether the read-write store's locks are held for writing.
    Additional stores are always held for reading only.
    """

    write: bool
    layers: LockFile | None
    images: LockFile | None
    containers: LockFile | None
    mountpoints: LockFile | None
    additional: tuple[HeldAdditional, ...] = ()


def _open_failure(path: str, error: OSError, *, write: bool) -> LibimageError:
    if error.errno == errno.ELOOP:
        detail = "is a symbolic link; not followed"
    else:
        text = error.strerror or str(error)
        detail = text[:1].lower() + text[1:]  # Go-style, as the other store errors
    # A lock file that cannot be opened for writing (EROFS, EACCES) makes the store
    # unwritable, not unreadable: reads open it read-only.
    kind = ErrorKind.STORE_UNWRITABLE if write else ErrorKind.STORE_UNREADABLE
    return fail(kind, path, f"opening lock file {path}: {detail}")


def _refuse_own_store_as_additional(paths: StoreLockPaths) -> None:
    """An additional store whose lock files are the read-write store's own (the graph
    root named again, through a link or a bind mount) is refused, as podman 4.3.1's
    ``lock "<path>" is not a read-only lock`` refuses it (SF-RO-1, SF-K-1): its records
    would be read twice and its lock files locked both ways."""
    own = {file_identity(p) for p in (paths.layers, paths.images, paths.containers)}
    for extra in paths.additional:
        for path in (extra.images, extra.layers):
            if file_identity(path) in own:
                raise fail(
                    ErrorKind.STORE_UNREADABLE,
                    path,
                    f"lock {go_quote(os.path.abspath(path))} is not a read-only lock "
                    "(the additional image store is the read-write store itself)",
                )


def _enter_read(stack: ExitStack, path: str, *, read_only: bool) -> LockFile | None:
    lock = lock_file(path, read_only=read_only)
    try:
        lock.acquire_read()
    except FileNotFoundError:
        return None  # see the module docstring: read without a lock nobody can hold
    except OSError as error:
        raise _open_failure(path, error, write=False) from error
    stack.callback(lock.release_read)
    return lock


def _enter_write(stack: ExitStack, path: str, *, optional: bool) -> LockFile | None:
    lock = lock_file(path)
    try:
        lock.acquire_write()
    except FileNotFoundError as error:
        if optional:
            return None
        raise fail(
            ErrorKind.STORE_MISSING,
            path,
            f"lock file {path} does not exist (decision 11: it is never created)",
        ) from error
    except OSError as error:
        raise _open_failure(path, error, write=True) from error
    stack.callback(lock.release_write)
    return lock


@contextmanager
def store_read_locks(paths: StoreLockPaths) -> Iterator[HeldLocks]:
    """Read-lock a store for a consistent read (SF-K-6): layers, images, containers.

    Then each read-only additional store's layers and images, in configured order
    (read-only descriptors, SF-K-1). Released in reverse order when the block ends.
    A missing lock file is skipped (None in the result; see the module docstring);
    any other failure to open one raises :class:`LibimageError` ``STORE_UNREADABLE``
    naming the file.
    """
    _refuse_own_store_as_additional(paths)
    with ExitStack() as stack:
        layers = _enter_read(stack, paths.layers, read_only=False)
        images = _enter_read(stack, paths.images, read_only=False)
        containers = _enter_read(stack, paths.containers, read_only=False)
        additional = tuple(
            HeldAdditional(
                layers=_enter_read(stack, extra.layers, read_only=True),
                images=_enter_read(stack, extra.images, read_only=True),
            )
            for extra in paths.additional
        )
        yield HeldLocks(
            write=False,
            layers=layers,
            images=images,
            containers=containers,
            mountpoints=None,
            additional=additional,
        )


@contextmanager
def store_write_locks(paths: StoreLockPaths) -> Iterator[HeldLocks]:
    """Write-lock the read-write store for a change (SF-K-6, SF-K-7, SF-D-1).

    Order: ``layers.lock``, ``mountpoints.lock`` (inside the layers lock, as the
    layer store's save does), ``images.lock``, ``containers.lock``; then each
    additional store is read-locked (they are never written, SF-RO-3), so that a
    snapshot read inside the block is consistent. Released in reverse order.

    A missing layers, images or containers lock file raises :class:`LibimageError`
    ``STORE_MISSING`` naming it (decision 11); a missing ``mountpoints.lock`` is
    skipped (None). After saving a metadata file the caller writes a new token with
    :func:`write_token` on the matching lock before leaving the block (SF-K-7).
    """
    _refuse_own_store_as_additional(paths)
    with ExitStack() as stack:
        layers = _enter_write(stack, paths.layers, optional=False)
        mountpoints = _enter_write(stack, paths.mountpoints, optional=True)
        images = _enter_write(stack, paths.images, optional=False)
        containers = _enter_write(stack, paths.containers, optional=False)
        additional = tuple(
            HeldAdditional(
                layers=_enter_read(stack, extra.layers, read_only=True),
                images=_enter_read(stack, extra.images, read_only=True),
            )
            for extra in paths.additional
        )
        yield HeldLocks(
            write=True,
            layers=layers,
            images=images,
            containers=containers,
            mountpoints=mountpoints,
            additional=additional,
        )


def require_write_held(lock: LockFile | None, path: str) -> LockFile:
    """The lock guarding ``path``, if the calling thread holds it for writing (SF-K-7).

    Writing a metadata file without its write lock is a programming error
    (containers-storage: ``image store is not locked for writing``), raised as
    :class:`RuntimeError` naming the file.
    """
    if lock is None or not lock.held_for_writing:
        raise RuntimeError(f"{path}: store is not locked for writing")
    return lock
