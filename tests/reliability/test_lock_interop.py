"""Locks shared with podman 4.3.1: the same record locks, the same order, tokens (issue #8 item 1).

Evidence comes from the kernel, never from timing:

* ``strace`` of ``podman rmi -f`` and of ``libimage rmi -f`` on copies of one store
  shows which system calls lock the lock files (SF-K-2: ``fcntl(F_SETLKW)`` on the
  whole file, never ``flock``), in which order (SF-K-6), and when the last-writer
  token is written (SF-K-4, SF-K-7); the properties are checked on podman's trace as
  well, so they are podman's behaviour and not our own description of it;
* blocking is read from ``/proc/locks`` (a ``->`` line is a process waiting for a
  POSIX lock); to make podman *hold* a lock for as long as the test needs, podman runs
  under ``strace`` with a ``SIGSTOP`` injected at its first ``renameat`` (it holds its
  write locks then) and is resumed with ``SIGCONT``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from reliability_support import (
    Base,
    Canaries,
    bind_mount,
    cli,
    cli_process,
    holders,
    libimage_argv,
    podman_argv,
    podman_view,
    process_state,
    shared_base,
    store_bytes,
    wait_for,
    waiters,
)
from support.podman import PodmanStore, make_tar, requires_podman

from libimage.adapters.locks import lock_file, store_write_locks
from libimage.adapters.runtime import Runtime
from libimage.adapters.store import read_snapshot, resolve_layout
from libimage.pure.semantics import PODMAN_4_3

pytestmark = [requires_podman, pytest.mark.reliability]


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return shared_base(tmp_path_factory)


STRACE = ["strace", "-f", "-qq", "-s", "128"]
TRACED = "trace=openat,open,close,fcntl,flock,pwrite64,rename,renameat,renameat2"
GUARDED = {  # metadata file -> the lock file whose token a save of it changes (SF-K-4)
    "images.json": "images.lock",
    "layers.json": "layers.lock",
    "containers.json": "containers.lock",
    "mountpoints.json": "mountpoints.lock",
}


# -- reading an strace log ---------------------------------------------------------------------


@dataclass
class Trace:
    """What one process did with lock files, in order, from an ``strace -f`` log.

    ``events`` are ``(kind, lock name, detail)``: ``open`` (detail: the open flags),
    ``lock`` (``READ``/``WRITE``, only whole-file ``F_SETLKW`` locks), ``badlock`` (any
    other ``fcntl`` lock call or a ``flock``), ``unlock`` (the descriptor closed: POSIX
    locks go with it), ``token`` (``pwrite`` of 64 bytes at offset 0, detail: held mode)
    and ``save`` (a ``rename`` onto a metadata file, detail: the file name).
    """

    events: list[tuple[str, str, str]] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple[str, str, str]]:
        return [event for event in self.events if event[0] == kind]


_CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$")


def _calls(text: str) -> Iterator[tuple[str, str, int]]:
    """(syscall, arguments, result) of every completed call, unfinished ones joined."""
    pending: dict[str, str] = {}
    for line in text.splitlines():
        if line.endswith("<unfinished ...>"):
            pid = line.split(maxsplit=1)[0]
            pending[pid] = line.removesuffix("<unfinished ...>")
            continue
        resumed = _RESUMED.match(line)
        whole = pending.pop(resumed.group(1), "") + resumed.group(2) if resumed else line
        match = _CALL.match(whole)
        if match and match.group(4) != "?":
            yield match.group(2), match.group(3), int(match.group(4))


def _path_argument(arguments: str, position: int) -> str:
    quoted: list[str] = re.findall(r'"((?:[^"\\]|\\.)*)"', arguments)
    return quoted[position]


def parse_trace(text: str) -> Trace:
    """The lock-file events of a single-process ``strace -f`` log (threads share fds)."""
    paths: dict[int, str] = {}  # descriptor -> path it was opened as
    held: dict[str, str] = {}  # lock name -> mode held (through its one descriptor)
    trace = Trace()

    def resolve(dirfd: str, name: str) -> str:
        if name.startswith("/") or dirfd == "AT_FDCWD":
            return name
        return os.path.join(paths.get(int(dirfd), "?"), name)  # noqa: PTH118

    for call, arguments, result in _calls(text):
        parts = [part.strip() for part in arguments.split(",")]
        if call in {"openat", "open"} and result >= 0:
            dirfd = parts[0] if call == "openat" else "AT_FDCWD"
            path = resolve(dirfd, _path_argument(arguments, 0))
            paths[result] = path
            if path.endswith(".lock"):
                flags = parts[2] if call == "openat" else parts[1]
                trace.events.append(("open", Path(path).name, flags))
        elif call == "close":
            path = paths.pop(int(parts[0]), "")
            if path.endswith(".lock") and Path(path).name in held:
                held.pop(Path(path).name)
                trace.events.append(("unlock", Path(path).name, ""))
        elif call in {"fcntl", "flock"}:
            path = paths.get(int(parts[0]), "")
            if not path.endswith(".lock"):
                continue
            name = Path(path).name
            whole = "l_whence=SEEK_SET, l_start=0, l_len=0" in arguments
            if call == "fcntl" and parts[1] == "F_SETLKW" and whole and result == 0:
                mode = "WRITE" if "F_WRLCK" in arguments else "READ"
                if "F_UNLCK" in arguments:
                    trace.events.append(("badlock", name, arguments))
                    continue
                held[name] = mode
                trace.events.append(("lock", name, mode))
            elif call == "flock" or parts[1].startswith("F_SETLK") or parts[1].startswith("F_OFD"):
                trace.events.append(("badlock", name, f"{call}({arguments})"))
        elif call == "pwrite64":
            path = paths.get(int(parts[0]), "")
            # storage.lock (the graph driver's) gets tokens too; SF-K-4 is about the rest.
            if Path(path).name in GUARDED.values():
                size, offset = parts[-2], parts[-1]
                ok = size == "64" and offset == "0" and result == 64
                detail = held.get(Path(path).name, "unheld") if ok else f"bad {size}@{offset}"
                trace.events.append(("token", Path(path).name, detail))
        elif call in {"rename", "renameat", "renameat2"} and result == 0:
            target = Path(_path_argument(arguments, 1)).name
            if target in GUARDED:
                trace.events.append(("save", GUARDED[target], target))
    return trace


def strace(argv: list[str], log: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [*STRACE, "-e", TRACED, "-o", str(log), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def held_before(trace: Trace) -> set[tuple[str, str]]:
    """(held, then acquired) pairs of lock names: the order the process takes locks in."""
    pairs: set[tuple[str, str]] = set()
    held: list[str] = []
    for kind, name, _ in trace.events:
        if kind == "lock" and name not in held:
            pairs.update((earlier, name) for earlier in held)
            held.append(name)
        elif kind == "unlock" and name in held:
            held.remove(name)
    return pairs


def tokens_follow_saves(trace: Trace, *, only_after_saves: bool) -> list[str]:
    """Problems with SF-K-4/SF-K-7 in a trace: every save of a metadata file is followed,
    before its lock is released, by a 64-byte token written at offset 0 under a write
    lock; with ``only_after_saves``, no token is written without a save (podman also
    writes tokens after clean-ups that save nothing)."""
    problems: list[str] = []
    waiting: dict[str, int] = {}  # lock name -> saves still without a token
    for index, (kind, name, detail) in enumerate(trace.events):
        if kind == "save":
            waiting[name] = waiting.get(name, 0) + 1
        elif kind == "token":
            if detail != "WRITE":
                problems.append(f"event {index}: token on {name} while {detail}")
            if only_after_saves and not waiting.get(name):
                problems.append(f"event {index}: token on {name} without a save")
            waiting[name] = 0
        elif kind == "unlock" and waiting.get(name):
            problems.append(f"event {index}: {name} released before its token")
    problems += [f"{name}: save without a token" for name, count in waiting.items() if count]
    return problems


# -- the protocol, from the system calls -------------------------------------------------------


def test_our_lock_calls_are_podmans_record_locks_in_its_order(base: Base, tmp_path: Path) -> None:
    """SF-K-2, SF-K-4, SF-K-6, SF-K-7, decision 11, on the same removal by podman and by us.

    Both: only whole-file ``fcntl(F_SETLKW)`` locks, never ``flock``; a token of 64 bytes
    at offset 0 after every save, under the write lock, before the lock is released.
    Order: layers before images before containers in both, and ``mountpoints.lock``
    only ever taken while ``layers.lock`` is held (so that podman taking it after
    ``images.lock`` and us before it can never deadlock: both hold ``layers.lock``
    exclusively then). Ours never creates a lock file (decision 11), podman does.
    """
    theirs, ours = base.copy(tmp_path / "theirs"), base.copy(tmp_path / "ours")
    strace(podman_argv(theirs, "rmi", "-f", "child:1", "c:1"), tmp_path / "podman.log")
    strace(libimage_argv(ours, "rmi", "-f", "child:1", "c:1"), tmp_path / "libimage.log")
    podman = parse_trace((tmp_path / "podman.log").read_text())
    libimage = parse_trace((tmp_path / "libimage.log").read_text())
    assert podman_view(ours) == podman_view(theirs)

    for name, trace in (("podman", podman), ("libimage", libimage)):
        assert trace.of("badlock") == [], name
        assert len(trace.of("save")) >= 4, name  # containers, images, layers (twice)
        assert tokens_follow_saves(trace, only_after_saves=name == "libimage") == [], name
        order = held_before(trace)
        assert ("images.lock", "layers.lock") not in order, name
        assert ("containers.lock", "images.lock") not in order, name
        assert ("containers.lock", "layers.lock") not in order, name
        mountpoints_without_layers = [
            i
            for i, (kind, lock, _) in enumerate(trace.events)
            if kind == "lock"
            and lock == "mountpoints.lock"
            and ("layers.lock", "mountpoints.lock") not in held_before(Trace(trace.events[: i + 1]))
        ]
        assert mountpoints_without_layers == [], name
    # Our write: layers, then images, then containers, all write-locked at once.
    ours_order = held_before(libimage)
    assert {("layers.lock", "images.lock"), ("images.lock", "containers.lock")} <= ours_order
    assert ("layers.lock", "mountpoints.lock") in ours_order
    # Decision 11: we never create a lock file; podman opens them with O_CREAT.
    assert all("O_CREAT" not in flags for _, _, flags in libimage.of("open"))
    assert any("O_CREAT" in flags for _, _, flags in podman.of("open"))
    # Reads lock through read-only descriptors, writes through read-write ones.
    assert {flags.split("|")[0] for _, _, flags in libimage.of("open")} == {"O_RDONLY", "O_RDWR"}


# -- podman waits for us ---------------------------------------------------------------------


LOCKS_PODMAN_NEEDS = {
    "layers.lock (podman images)": ("layers", ["images", "--format", "{{.ID}}"]),
    "images.lock (podman tag)": ("images", ["tag", "solo:1", "localhost/solo:2"]),
    "containers.lock (podman rmi)": ("containers", ["rmi", "solo:1"]),
    "mountpoints.lock (podman images)": ("mountpoints", ["images", "--format", "{{.ID}}"]),
}


@pytest.mark.parametrize(
    ("lock", "command"), LOCKS_PODMAN_NEEDS.values(), ids=LOCKS_PODMAN_NEEDS.keys()
)
def test_podman_waits_while_we_hold_a_lock(
    base: Base, tmp_path: Path, lock: str, command: list[str]
) -> None:
    """SF-K-2: a write lock we hold on any one of the store's lock files makes podman wait
    (it shows in ``/proc/locks`` waiting on that file); released, podman goes on."""
    store = base.copy(tmp_path)
    store.run("images", "-q")  # podman creates the run root's lock files
    layout = resolve_layout(store.options())
    path = getattr(layout.lock_paths, lock)
    with lock_file(path).write():
        podman = subprocess.Popen(podman_argv(store, *command), stderr=subprocess.PIPE, text=True)
        try:
            wait_for(
                lambda: podman.pid in waiters(path),
                f"podman waiting on {path}",
                unless=lambda: podman.poll() is not None,
            )
            assert os.getpid() in holders(path, "WRITE")
        except BaseException:
            podman.kill()
            raise
    _, stderr = podman.communicate(timeout=120)
    assert podman.returncode == 0, stderr


# -- we wait for podman -------------------------------------------------------------------------


class StoppedPodman:
    """podman under strace, stopped (SIGSTOP) at its first rename while it holds its locks."""

    def __init__(self, store: PodmanStore, *args: str) -> None:
        inject = ["-e", "trace=renameat", "-e", "inject=renameat:signal=SIGSTOP:when=1"]
        argv = [*STRACE, "-o", "/dev/null", *inject, *podman_argv(store, *args)]
        self.process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        images_lock = store.root / "vfs-images" / "images.lock"
        self.pid: int = wait_for(
            lambda: next(
                (p for p in holders(images_lock, "WRITE") if process_state(p) in {"t", "T"}),
                None,
            ),
            "podman stopped holding images.lock",
            unless=lambda: self.process.poll() is not None,
        )

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        _, stderr = self.process.communicate(timeout=120)
        assert self.process.returncode == 0, stderr

    def kill(self) -> None:
        self.process.kill()
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=120)


@pytest.mark.parametrize(
    "command",
    [["images", "--format", "json"], ["rmi", "solo:1"]],
    ids=["our read waits", "our removal waits"],
)
def test_we_wait_while_podman_holds_its_locks(
    base: Base, tmp_path: Path, command: list[str]
) -> None:
    """SF-K-2: podman ``tag`` stopped while it holds its write locks: our command waits in
    the kernel (``/proc/locks``), changes nothing meanwhile, and once podman finishes
    sees its change: the removal of ``solo:1`` is then an untag, and podman's new name
    survives it (no lost update)."""
    store = base.copy(tmp_path)
    podman = StoppedPodman(store, "tag", "solo:1", "localhost/solo:2")
    try:
        before = store_bytes(store)
        ours = subprocess.Popen(
            libimage_argv(store, *command),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        layout = resolve_layout(store.options())
        lock_files = [layout.layers_lock, layout.images_lock, layout.containers_lock]
        wait_for(
            lambda: any(ours.pid in waiters(path) for path in lock_files),
            "libimage waiting for podman's lock",
            unless=lambda: ours.poll() is not None,
        )
        assert store_bytes(store) == before
    except BaseException:
        podman.kill()
        raise
    podman.resume()
    stdout, stderr = ours.communicate(timeout=120)
    assert ours.returncode == 0, stderr
    if command[0] == "images":
        assert "localhost/solo:2" in stdout
    else:
        assert stdout.splitlines() == ["Untagged: localhost/solo:1"]
        assert podman_view(store)[base.solo] == ["localhost/solo:2"]


# -- one descriptor per lock file in our process (SF-K-3) ---------------------------------------


def test_other_handles_in_our_process_never_drop_our_lock(base: Base, tmp_path: Path) -> None:
    """SF-K-3: while we write-lock the store, everything else our process may do that
    reaches the same lock files - a read, a runtime, the same store through a symbolic
    link or through a bind mount (another path to the same inodes) - goes through the
    same descriptor: the kernel still reports our write lock on every file afterwards,
    and another process still cannot take any of them."""
    store = base.copy(tmp_path / "store")
    (tmp_path / "link").symlink_to(store.root)
    with bind_mount(store.root, tmp_path / "bound") as bound:
        aliases = [store, _viewed_at(store, tmp_path / "link"), _viewed_at(store, bound)]
        layout = resolve_layout(store.options())
        guarded = [layout.layers_lock, layout.images_lock, layout.containers_lock]
        with store_write_locks(layout.lock_paths):
            for alias in aliases:
                read_snapshot(alias.options())
                runtime = Runtime.from_options(alias.options(), semantics=PODMAN_4_3)
                assert runtime.exists("solo:1")
                runtime.shutdown()
            for path in guarded:
                assert os.getpid() in holders(path, "WRITE"), path
            blocked = _try_lock_elsewhere(guarded)
        assert blocked == dict.fromkeys(guarded, True)


def _viewed_at(store: PodmanStore, root: Path) -> PodmanStore:
    return replace(store, root=root)


def _try_lock_elsewhere(paths: list[str]) -> dict[str, bool]:
    """For each path: True if another process finds it locked (F_SETLK fails)."""
    script = (
        "import fcntl, os, sys\n"
        "for path in sys.argv[1:]:\n"
        "    fd = os.open(path, os.O_RDONLY)\n"
        "    try:\n"
        "        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n"
        "        print('free')\n"
        "    except OSError:\n"
        "        print('locked')\n"
        "    os.close(fd)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, check=True
    )
    return {
        path: word == "locked" for path, word in zip(paths, completed.stdout.split(), strict=True)
    }


# -- a store that names itself as its own read-only store -----------------------------------------


@pytest.mark.parametrize("spelling", ["same path", "symbolic link", "bind mount"])
def test_the_store_as_its_own_additional_store_is_refused_as_podman_does(
    base: Base, tmp_path: Path, spelling: str
) -> None:
    """SF-RO-1, SF-K-1: ``--storage-opt vfs.imagestore=<the graph root>``. podman 4.3.1
    refuses every command (``lock "…/images.lock" is not a read-only lock``, exit 125);
    so do we, for reads and removals, with the same words and no traceback."""
    store = base.copy(tmp_path / "store")
    podman = store.with_image_stores(store).run("images", check=False)
    assert podman.returncode == 125
    assert "is not a read-only lock" in podman.stderr
    if spelling == "symbolic link":
        (tmp_path / "link").symlink_to(store.root)
        extra = tmp_path / "link"
    elif spelling == "bind mount":
        extra = tmp_path / "bound"
    else:
        extra = store.root
    state = store_bytes(store)
    with ExitStack() as stack:
        if spelling == "bind mount":
            stack.enter_context(bind_mount(store.root, extra))
        viewed = store.with_image_stores(_viewed_at(store, extra))
        for command in (["images"], ["rmi", "solo:1"], ["rmi", "-a", "-f"]):
            result = cli(viewed, *command)
            result.assert_clean_failure("is not a read-only lock")
    assert store_bytes(store) == state


# -- lock files that are links ------------------------------------------------------------------


def test_a_lock_file_that_is_a_link_is_never_followed(base: Base, tmp_path: Path) -> None:
    """``images.lock`` replaced by a link to a file outside the store: podman follows it
    and writes its token into that file; we refuse (exit 125, naming the lock file) and
    the file outside keeps its bytes."""
    canaries = Canaries(tmp_path)
    theirs = base.copy(tmp_path / "theirs")
    ours = base.copy(tmp_path / "ours")
    victims = {}
    for name, store in (("theirs", theirs), ("ours", ours)):
        victim = canaries.directory / f"victim-{name}.txt"
        victim.write_bytes(b"precious bytes that are not a lock token " * 3)
        victims[name] = victim
        lock = store.root / "vfs-images" / "images.lock"
        lock.unlink()
        lock.symlink_to(victim)
    theirs.run("tag", "solo:1", "localhost/solo:2")
    assert not victims["theirs"].read_bytes().startswith(b"precious")  # podman wrote into it
    before = victims["ours"].read_bytes()
    for command in (["rmi", "aa:1"], ["rmi", "-f", "child:1"]):
        result = cli_process(ours, *command)
        result.assert_clean_failure(str(ours.root / "vfs-images" / "images.lock"))
    assert victims["ours"].read_bytes() == before
    canaries.assert_alive()


# -- a long-lived runtime ---------------------------------------------------------------------


def test_a_long_lived_runtime_sees_every_podman_change(base: Base, tmp_path: Path) -> None:
    """SF-K-5: one runtime, never restarted, sees podman's tag, untag, import and removal
    (images, layers and containers tokens; layers.json's time) and reads the store again
    exactly once per change; then podman sees the runtime's own removal."""
    store = base.copy(tmp_path)
    runtime = Runtime.from_options(store.options(), semantics=PODMAN_4_3)
    assert runtime.exists("solo:1")
    reads = runtime.reads

    def changed_once() -> None:
        nonlocal reads
        runtime.snapshot()
        assert runtime.reads == reads + 1
        runtime.snapshot()
        assert runtime.reads == reads + 1
        reads = runtime.reads

    store.tag("solo:1", "localhost/solo:2")
    assert runtime.exists("solo:2")
    reads += 1
    store.untag("solo:1", "localhost/solo:2")
    changed_once()
    assert not runtime.exists("solo:2")
    tarball = tmp_path / "new.tar"
    tarball.write_bytes(make_tar({"new.txt": b"new"}))
    store.run("import", "--quiet", str(tarball), "localhost/new:1")
    changed_once()
    assert runtime.exists("new:1")
    store.run("rmi", "-f", "child:1")  # the buildah container, the image, its layer
    changed_once()
    assert not runtime.exists("child:1")
    assert len(runtime.snapshot().containers) == 0
    reports, errors = runtime.remove_images(["new:1"])
    assert len(errors) == 0
    assert [report.removed for report in reports] == [True]
    assert "localhost/new:1" not in {n for names in podman_view(store).values() for n in names}


def test_a_reader_thread_never_sees_a_half_written_store(base: Base, tmp_path: Path) -> None:
    """SF-A, SF-K-3: while podman tags and we remove, a thread of ours reads the store over
    and over through one runtime; every read is a whole store (no error, no partial file)."""
    store = base.copy(tmp_path)
    runtime = Runtime.from_options(store.options(), semantics=PODMAN_4_3)
    stop = threading.Event()
    failures: list[BaseException] = []
    counts = {"reads": 0}

    def reader() -> None:
        while not stop.is_set():
            try:
                snapshot = runtime.snapshot()
                assert any(image.id == base.aa for image in snapshot.images)
                counts["reads"] += 1
            except BaseException as error:  # reported by the main thread
                failures.append(error)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for index in range(5):
            store.tag("aa:1", f"localhost/aa:t{index}")
            assert cli(store, "rmi", f"aa:t{index}").code == 0
    finally:
        stop.set()
        thread.join(120)
    assert failures == []
    assert counts["reads"] > 0
    assert podman_view(store)[base.aa] == ["localhost/aa:1", "localhost/aa:2"]
