"""Lock files: POSIX record locks that exclude podman, one descriptor per file (SF-K, decision 11).

Blocking is observed, never timed: a process waiting for a POSIX lock appears in
``/proc/locks`` as a ``->`` line on the file's inode, and the tests wait for that
line (with a generous bound, so that a broken lock fails instead of hanging).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.podman import PodmanStore, requires_podman

from libimage.adapters.locks import (
    TOKEN_SIZE,
    LockFile,
    StoreLockPaths,
    lock_file,
    read_token,
    require_write_held,
    store_read_locks,
    store_write_locks,
    token_changed,
    write_token,
)
from libimage.adapters.storage_conf import StoreOptions
from libimage.adapters.store import layout_for, read_snapshot
from libimage.pure.errors import ErrorKind, LibimageError

WAIT_BOUND = 60.0  # seconds before a wait for an expected event counts as a failure


# -- helpers -------------------------------------------------------------------------------


def store_options(directory: Path) -> StoreOptions:
    return StoreOptions(
        graph_root=str(directory / "root"), run_root=str(directory / "runroot"), driver="vfs"
    )


def lock_paths(directory: Path) -> StoreLockPaths:
    """The lock paths of a vfs store whose graph root is ``directory/root``."""
    return layout_for(str(directory / "root"), str(directory / "runroot"), "vfs").lock_paths


def make_lock_files(paths: StoreLockPaths) -> None:
    for path in (paths.layers, paths.images, paths.containers, paths.mountpoints):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).touch()


def descriptors_of(path: str) -> int:
    """How many descriptors of this process refer to ``path``'s inode."""
    target = Path(path).stat()
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        try:
            info = entry.stat()
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
            count += 1
    return count


def waiting_pids(path: str) -> set[int]:
    """PIDs blocked on a POSIX lock of ``path`` (the ``->`` lines of /proc/locks)."""
    inode = Path(path).stat().st_ino
    pids: set[int] = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "7: -> POSIX  ADVISORY  READ 1234 fe:00:5678 0 EOF"
        waiting = len(fields) > 6 and fields[1] == "->" and fields[2] == "POSIX"
        if waiting and int(fields[6].rsplit(":", 1)[1]) == inode:
            pids.add(int(fields[5]))
    return pids


def wait_until_blocked(paths: list[str], pid: int, finished: Callable[[], bool]) -> None:
    """Wait until ``pid`` waits for a lock on one of ``paths``; fail if ``finished()`` first."""
    deadline = time.monotonic() + WAIT_BOUND
    while not any(pid in waiting_pids(path) for path in paths):
        assert not finished(), f"{pid} finished instead of waiting for a lock on {paths}"
        assert time.monotonic() < deadline, f"{pid} never waited for a lock on {paths}"
        time.sleep(0.01)


def probe(path: str, operation: int) -> bool:
    """Could another process take ``operation`` (LOCK_SH/LOCK_EX) on ``path`` right now?"""
    script = textwrap.dedent(
        f"""
        import fcntl, os, sys
        fd = os.open({path!r}, os.O_RDWR)
        try:
            fcntl.lockf(fd, {operation} | fcntl.LOCK_NB)
        except OSError:
            sys.exit(1)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], check=False, timeout=WAIT_BOUND)
    assert completed.returncode in {0, 1}
    return completed.returncode == 0


# A process holding one lock file the way containers-storage does (F_SETLKW, whole file).
PODMAN_STYLE_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX if sys.argv[2] == "write" else fcntl.LOCK_SH)
    print("locked", flush=True)
    sys.stdin.readline()
    """
)

# A process holding a whole store through libimage's write-lock API.
LIBIMAGE_HOLDER = textwrap.dedent(
    """
    import sys
    from libimage.adapters.locks import store_write_locks
    from libimage.adapters.store import layout_for
    layout = layout_for(sys.argv[1], sys.argv[2], "vfs")
    with store_write_locks(layout.lock_paths):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


class Holder:
    """A child process that holds locks until :meth:`release`."""

    def __init__(self, script: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        stdout, _ = self.process.communicate("\n", timeout=WAIT_BOUND)
        assert self.process.returncode == 0, stdout


@pytest.fixture
def paths(tmp_path: Path) -> StoreLockPaths:
    result = lock_paths(tmp_path)
    make_lock_files(result)
    return result


# -- one object, one descriptor (SF-K-3) ---------------------------------------------------


def test_one_object_per_real_path(tmp_path: Path) -> None:
    """SF-K-3: every spelling of a lock file gives the same process-wide object."""
    real = tmp_path / "store" / "images.lock"
    real.parent.mkdir()
    real.touch()
    (tmp_path / "alias").symlink_to(tmp_path / "store")
    assert lock_file(str(real)) is lock_file(str(tmp_path / "alias" / "images.lock"))
    assert lock_file(str(real)) is lock_file(
        str(tmp_path / "store" / ".." / "store" / "images.lock")
    )


def test_nested_holders_share_one_descriptor(paths: StoreLockPaths, tmp_path: Path) -> None:
    """SF-K-3: other spellings, other threads and a snapshot read never open a second
    descriptor, so their releases cannot drop the lock this block still holds."""
    (tmp_path / "alias").symlink_to(tmp_path / "root")
    alias = str(tmp_path / "alias" / "vfs-images" / "images.lock")
    inside, leave = threading.Event(), threading.Event()

    def other_thread() -> None:
        with lock_file(alias).read():
            inside.set()
            leave.wait(WAIT_BOUND)

    with store_read_locks(paths):
        assert descriptors_of(paths.images) == 1
        with lock_file(alias).read():
            assert descriptors_of(paths.images) == 1
        worker = threading.Thread(target=other_thread)
        worker.start()
        assert inside.wait(WAIT_BOUND)
        assert descriptors_of(paths.images) == 1
        leave.set()
        worker.join(WAIT_BOUND)
        read_snapshot(store_options(tmp_path))
        assert descriptors_of(paths.images) == 1
        # Every inner holder has come and gone; the lock is still held.
        assert not probe(paths.images, fcntl.LOCK_EX)
        assert probe(paths.images, fcntl.LOCK_SH)
    assert descriptors_of(paths.images) == 0
    assert probe(paths.images, fcntl.LOCK_EX)


def test_closing_a_second_descriptor_would_drop_the_lock(paths: StoreLockPaths) -> None:
    """SF-K-3, the pitfall the registry exists for: any close of the file drops our lock."""
    with store_read_locks(paths):
        assert not probe(paths.images, fcntl.LOCK_EX)
        os.close(os.open(paths.images, os.O_RDONLY))  # what no module may ever do
        assert probe(paths.images, fcntl.LOCK_EX)


# -- exclusion between processes (SF-K-2) --------------------------------------------------


def test_write_locks_exclude_every_other_process(paths: StoreLockPaths) -> None:
    """SF-K-2, SF-K-6: a write lock excludes readers and writers; a read lock only writers."""
    guarded = (paths.layers, paths.mountpoints, paths.images, paths.containers)
    with store_write_locks(paths) as held:
        assert held.write
        for path in guarded:
            assert not probe(path, fcntl.LOCK_SH)
            assert not probe(path, fcntl.LOCK_EX)
    with store_read_locks(paths) as held:
        assert not held.write
        for path in (paths.layers, paths.images, paths.containers):
            assert probe(path, fcntl.LOCK_SH)
            assert not probe(path, fcntl.LOCK_EX)
    for path in guarded:
        assert probe(path, fcntl.LOCK_EX)


def test_a_podman_style_lock_blocks_our_read(paths: StoreLockPaths, tmp_path: Path) -> None:
    """SF-K-2: a process holding images.lock as podman does (F_SETLKW) blocks read_snapshot."""
    holder = Holder(PODMAN_STYLE_HOLDER, paths.images, "write")
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(read_snapshot(store_options(tmp_path))))
    try:
        reader.start()
        wait_until_blocked([paths.images], os.getpid(), lambda: not reader.is_alive())
        assert not results
    finally:
        holder.release()
    reader.join(WAIT_BOUND)
    assert len(results) == 1


def test_lock_order_layers_images_containers(
    paths: StoreLockPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SF-K-6: acquired layers (mountpoints inside), images, containers; released in reverse."""
    events: list[tuple[str, str]] = []
    original_acquire, original_close = LockFile.acquire_write, LockFile._close

    def acquire(self: LockFile) -> None:
        original_acquire(self)
        events.append(("lock", Path(self.path).name))

    def close(self: LockFile) -> None:
        events.append(("unlock", Path(self.path).name))
        original_close(self)

    monkeypatch.setattr(LockFile, "acquire_write", acquire)
    monkeypatch.setattr(LockFile, "_close", close)
    with store_write_locks(paths):
        pass
    order = ["layers.lock", "mountpoints.lock", "images.lock", "containers.lock"]
    assert events == [("lock", name) for name in order] + [
        ("unlock", name) for name in reversed(order)
    ]


# -- against podman ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def podman_store(tmp_path_factory: pytest.TempPathFactory) -> PodmanStore:
    store = PodmanStore.create(tmp_path_factory.mktemp("locks"))
    store.import_image("localhost/locked:1", {"locked.txt": b"locked\n"})
    return store


@requires_podman
def test_our_write_locks_block_podman(podman_store: PodmanStore) -> None:
    """SF-K-2, SF-K-6: while libimage write-locks the store, ``podman images`` waits."""
    layout = read_snapshot(podman_store.options()).paths
    holder = Holder(LIBIMAGE_HOLDER, layout.graph_root, layout.run_root)
    argv = ["podman", *podman_store.storage_flags(), "images", "--format", "{{.Names}}"]
    podman = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Observed: podman 4.3.1 first write-locks images.lock while opening the store.
        guarded = [layout.layers_lock, layout.images_lock, layout.containers_lock]
        wait_until_blocked(guarded, podman.pid, lambda: podman.poll() is not None)
        assert podman.poll() is None
    finally:
        holder.release()
    stdout, stderr = podman.communicate(timeout=WAIT_BOUND)
    assert podman.returncode == 0, stderr
    assert "localhost/locked:1" in stdout


@requires_podman
def test_podman_token_is_read_and_ours_is_accepted(podman_store: PodmanStore) -> None:
    """SF-K-4, SF-K-5: tokens are the lock file's first 64 bytes; podman reads past ours."""
    layout = read_snapshot(podman_store.options()).paths
    with lock_file(layout.images_lock).read() as lock:
        before = read_token(lock)
    assert len(before) == TOKEN_SIZE
    with store_write_locks(layout.lock_paths) as held:
        assert held.images is not None
        ours = write_token(held.images)
        assert read_token(held.images) == ours
    assert token_changed(before, ours)
    podman_store.tag("localhost/locked:1", "localhost/locked:2")
    result = read_snapshot(podman_store.options())
    assert result.tokens.images is not None
    assert token_changed(ours, result.tokens.images)  # podman wrote a new token
    assert {"localhost/locked:1", "localhost/locked:2"} <= {
        name for image in result.snapshot.images for name in image.names
    }


# -- tokens (SF-K-4, SF-K-5, SF-K-8) -------------------------------------------------------


def test_new_lock_file_token_counts_as_changed(paths: StoreLockPaths) -> None:
    """SF-K-8: a fresh lock file has no token; a short read means "changed"."""
    with lock_file(paths.images).read() as lock:
        token = read_token(lock)
    assert token == b""
    assert token_changed(token, token)


def test_write_token_is_64_hex_unique_and_does_not_truncate(paths: StoreLockPaths) -> None:
    """SF-K-4: 64 new bytes at offset 0 with pwrite; bytes after them stay."""
    Path(paths.images).write_bytes(b"x" * 100)
    with lock_file(paths.images).write() as lock:
        first = write_token(lock)
        second = write_token(lock)
    data = Path(paths.images).read_bytes()
    assert len(first) == TOKEN_SIZE
    assert set(first.decode("ascii")) <= set("0123456789abcdef")
    assert first != second
    assert data == second + b"x" * 36


def test_tokens_only_under_a_write_lock(paths: StoreLockPaths) -> None:
    """SF-K-7: no token (and no metadata write) without holding the write lock."""
    lock = lock_file(paths.images)
    with pytest.raises(RuntimeError):
        require_write_held(lock, paths.images)
    with lock.read(), pytest.raises(RuntimeError):
        write_token(lock)
    with lock.write():
        assert require_write_held(lock, paths.images) is lock


# -- missing and read-only lock files (decision 11, SF-RO-5) -------------------------------


def test_missing_lock_files_are_never_created(tmp_path: Path) -> None:
    """Decision 11: a read goes without an absent lock; a write refuses; nothing is created."""
    paths = lock_paths(tmp_path)
    with store_read_locks(paths) as held:
        assert (held.layers, held.images, held.containers) == (None, None, None)
    with pytest.raises(LibimageError) as raised, store_write_locks(paths):
        pass
    assert raised.value.kind is ErrorKind.STORE_MISSING
    assert paths.layers in str(raised.value)
    assert not (tmp_path / "root").exists()
    assert not (tmp_path / "runroot").exists()


def test_missing_mountpoints_lock_is_skipped_on_write(paths: StoreLockPaths) -> None:
    """The run root is emptied at boot: no mountpoints.lock means nothing is mounted."""
    Path(paths.mountpoints).unlink()
    with store_write_locks(paths) as held:
        assert held.mountpoints is None
        assert held.layers is not None
    assert not Path(paths.mountpoints).exists()


def test_read_only_store_locks_use_read_only_descriptors(tmp_path: Path) -> None:
    """SF-K-1, SF-RO-5: additional stores are opened O_RDONLY and never write-locked."""
    extra = tmp_path / "extra"
    layout = layout_for(str(tmp_path / "root"), str(tmp_path / "run"), "vfs", [str(extra)])
    make_lock_files(layout.lock_paths)
    for path in (layout.additional[0].layers_lock, layout.additional[0].images_lock):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).touch()
    with store_read_locks(layout.lock_paths) as held:
        extra_lock = held.additional[0].images
        assert extra_lock is not None
        assert extra_lock.read_only
        flags = int(
            Path(f"/proc/self/fdinfo/{extra_lock.fileno()}")
            .read_text()
            .split("flags:")[1]
            .split()[0],
            8,
        )
        assert flags & os.O_ACCMODE == os.O_RDONLY
    with pytest.raises(RuntimeError):
        extra_lock.acquire_write()


# -- threads and processes -----------------------------------------------------------------


def test_threads_exclude_each_other(paths: StoreLockPaths) -> None:
    """SF-K-3: POSIX locks do not exclude threads; the in-process mutex does."""
    lock = lock_file(paths.images)
    entered = threading.Event()

    def reader() -> None:
        with lock.read():
            entered.set()

    with lock.write():
        worker = threading.Thread(target=reader)
        worker.start()
        deadline = time.monotonic() + WAIT_BOUND
        while not lock._cond._waiters:  # type: ignore[attr-defined]  # the reader is waiting
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not entered.is_set()
    worker.join(WAIT_BOUND)
    assert entered.is_set()


def test_upgrade_in_one_thread_is_refused(paths: StoreLockPaths) -> None:
    """A read-to-write upgrade would deadlock; a read nested in a write is fine."""
    lock = lock_file(paths.images)
    with lock.read(), pytest.raises(RuntimeError):
        lock.acquire_write()
    with lock.write(), lock.read():
        assert lock.held_for_writing


def test_forked_child_holds_nothing(paths: StoreLockPaths) -> None:
    """POSIX locks are not inherited: a forked child's registry starts empty."""
    lock = lock_file(paths.images)
    with lock.read():
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            os._exit(0 if not lock.held else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert lock.held
