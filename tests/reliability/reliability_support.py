"""Stores, observers and fixtures shared by the reliability tests (issue #8).

One store is built per test session with podman 4.3.1 and buildah (vfs): an image
with two names, a parent with a child used by a buildah container, an intermediate
(untagged) parent of ``c:1``, a dangling image, an image alone on its layer and a
manifest list. Every test works on ``base.store.copy_to(tmp_path)`` (podman's
database dropped, so containers are storage-only there, decision 19).

Observers never rely on timing: blocking is read from ``/proc/locks`` (a ``->`` line
is a process waiting for a POSIX lock) and process states from ``/proc/<pid>/stat``;
:func:`wait_for` only bounds how long a test waits for an event it expects, so that a
broken lock fails the test instead of hanging it.

Each test module declares its ``base`` fixture as ``shared_base(tmp_path_factory)``,
which builds the store once per process: a ``conftest.py`` here would clash with
``tests/conftest.py`` as a module name for mypy.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.podman import PodmanStore

WAIT_BOUND = 120.0  # seconds before an expected event counts as never happening
# Scratch copies live in memory where there is a tmpfs: fdatasync costs nothing there.
SCRATCH = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None


@dataclass(frozen=True)
class Base:
    """The session's store and the IDs of what it holds."""

    store: PodmanStore
    aa: str  # localhost/aa:1, localhost/aa:2
    bb: str  # localhost/bb:1, parent of child
    child: str  # localhost/child:1, used by a buildah container
    container: str
    parent: str  # intermediate (untagged) parent of c
    c: str  # localhost/c:1
    dangling: str
    solo: str  # localhost/solo:1, alone on its layer
    listed: str  # localhost/list:1, a manifest list of aa

    def copy(self, directory: Path) -> PodmanStore:
        return self.store.copy_to(directory)


_SHARED: list[Base] = []


def shared_base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """The process's podman-built store, built on first use (never changed: tests copy it)."""
    if not _SHARED:
        _SHARED.append(_build_base(tmp_path_factory))
    return _SHARED[0]


def _build_base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    store = PodmanStore.create(tmp_path_factory.mktemp("reliability-base"))
    aa = store.import_image("localhost/aa:1", {"aa.txt": b"aa"})
    store.tag(aa, "localhost/aa:2")
    bb = store.import_image("localhost/bb:1", {"bb.txt": b"bb"})
    child = store.child_image(bb, "localhost/child:1", {"child.txt": b"child"})
    container = store.buildah_container(child)
    parent = store.import_image("localhost/p:1", {"p.txt": b"p"})
    c = store.child_image(parent, "localhost/c:1", {"c.txt": b"c"})
    store.untag(parent, "localhost/p:1")
    dangling = store.import_image(None, {"dangling.txt": b"d"})
    solo = store.import_image("localhost/solo:1", {"solo.txt": b"solo"})
    listed = store.manifest_list("localhost/list:1", [aa])
    return Base(store, aa, bb, child, container, parent, c, dangling, solo, listed)


# -- running our command line --------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """Exit code and output of one command."""

    code: int
    out: str
    err: str

    def assert_clean_failure(self, *named: str) -> None:
        """Exit 125, one ``Error:`` line naming each of ``named``, no traceback."""
        assert self.code == 125, self
        assert "Traceback" not in self.err, self.err
        errors = [line for line in self.err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, self.err
        for text in named:
            assert text in errors[0], (text, errors[0])


def cli(store: PodmanStore, *args: str, semantics: str = "podman-4.3") -> Result:
    """``libimage <store flags> --semantics S args`` in this process."""
    from libimage.adapters.cli import run

    out, err = io.StringIO(), io.StringIO()
    code = run([*store.storage_flags(), "--semantics", semantics, *args], out, err)
    return Result(code, out.getvalue(), err.getvalue())


def cli_process(
    store: PodmanStore,
    *args: str,
    env: dict[str, str] | None = None,
    semantics: str = "podman-4.3",
) -> Result:
    """The same command in a new Python process (for kills, strace, real concurrency)."""
    argv = [sys.executable, "-m", "libimage", *store.storage_flags(), "--semantics", semantics]
    completed = subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=WAIT_BOUND,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def libimage_argv(store: PodmanStore, *args: str) -> list[str]:
    """The argv of ``libimage`` on ``store`` (podman-4.3 profile) running ``args``."""
    flags = [*store.storage_flags(), "--semantics", "podman-4.3"]
    return [sys.executable, "-m", "libimage", *flags, *args]


def podman_argv(store: PodmanStore, *args: str) -> list[str]:
    """The argv of ``podman`` on ``store`` running ``args`` (as ``PodmanStore.run``)."""
    flags = [*store.storage_flags(), "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    return ["podman", *flags, *args]


# -- observing a store -------------------------------------------------------------------------

METADATA = ("images", "layers", "containers")


def file_bytes(*roots: Path) -> dict[str, bytes | str | None]:
    """Every path under ``roots``: file bytes, ``-> target`` for links, None for directories."""
    state: dict[str, bytes | str | None] = {}
    for top in roots:
        if not top.exists():
            continue
        for walked, dirs, files in os.walk(top):
            state[walked] = None
            for name in [*dirs, *files]:
                path = Path(walked, name)
                if path.is_symlink():
                    state[str(path)] = f"-> {path.readlink()}"
                elif path.is_file():
                    state[str(path)] = path.read_bytes()
    return state


def store_bytes(store: PodmanStore) -> dict[str, bytes | str | None]:
    return file_bytes(store.root, store.runroot)


def metadata_bytes(store: PodmanStore) -> dict[str, bytes]:
    """The three metadata files of a vfs store, as bytes (absent: empty)."""
    result = {}
    for kind in METADATA:
        path = store.root / f"{store.driver}-{kind}" / f"{kind}.json"
        result[kind] = path.read_bytes() if path.exists() else b""
    return result


def podman_view(store: PodmanStore) -> dict[str, list[str]]:
    """What podman lists: image ID -> sorted names (podman must read the store)."""
    return {entry["Id"]: sorted(entry.get("Names") or []) for entry in store.images_json()}


def our_view(store: PodmanStore) -> dict[str, list[str]]:
    from libimage.adapters.store import read_snapshot

    snapshot = read_snapshot(store.options()).snapshot
    return {image.id: sorted(image.names) for image in snapshot.images if image.store_index == 0}


def leftovers(store: PodmanStore) -> list[str]:
    """Temporary files and our intent file anywhere in the store (none may stay)."""
    found = [
        str(p)
        for top in (store.root, store.runroot)
        for p in top.rglob("*")
        if p.name.startswith(".tmp-") or p.name == "libimage-removal-intent.json"
    ]
    return sorted(found)


def assert_store_sound(store: PodmanStore) -> None:
    """Every image's layer chain and every container's layer is recorded and not flagged
    ``incomplete``; every layer not flagged has its data; podman and we list the same
    images (podman runs on the store itself: use a copy when it must stay as it is)."""
    layers = {record["id"]: record for record in store.metadata("layers")}
    for image in store.metadata("images"):
        layer = image.get("layer", "")
        while layer:
            assert layer in layers, f"image {image['id']} lost layer {layer}"
            assert not (layers[layer].get("flags") or {}).get("incomplete"), layer
            layer = layers[layer].get("parent", "")
    for container in store.metadata("containers"):
        assert container["layer"] in layers, f"container {container['id']} lost its layer"
    for layer_id, record in layers.items():
        if not (record.get("flags") or {}).get("incomplete"):
            assert layer_data(store, layer_id).is_dir(), f"data of {layer_id}"
    assert podman_view(store) == our_view(store)


def layer_data(store: PodmanStore, layer_id: str) -> Path:
    """The driver's directory of a layer (SF-L-2, SF-L-3)."""
    if store.driver == "vfs":
        return store.root / "vfs" / "dir" / layer_id
    return store.root / store.driver / layer_id


# -- POSIX locks as the kernel reports them ------------------------------------------------


@dataclass(frozen=True)
class LockLine:
    """One line of ``/proc/locks``."""

    kind: str  # POSIX, FLOCK, OFDLCK
    waiting: bool  # a "->" line: the process is blocked waiting for this lock
    mode: str  # READ or WRITE
    pid: int
    inode: int


def proc_locks() -> list[LockLine]:
    lines = []
    for text in Path("/proc/locks").read_text().splitlines():
        fields = text.split()
        waiting = fields[1] == "->"
        if waiting:
            fields.pop(1)
        # "1: POSIX  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
        lines.append(
            LockLine(
                kind=fields[1],
                waiting=waiting,
                mode=fields[3],
                pid=int(fields[4]),
                inode=int(fields[5].rsplit(":", 1)[1]),
            )
        )
    return lines


def inode(path: str | Path) -> int:
    return Path(path).stat().st_ino


def waiters(path: str | Path) -> set[int]:
    """PIDs blocked on a POSIX lock of ``path``."""
    number = inode(path)
    return {line.pid for line in proc_locks() if line.waiting and line.inode == number}


def holders(path: str | Path, mode: str | None = None) -> set[int]:
    """PIDs holding a POSIX lock of ``path`` (of ``mode`` READ/WRITE if given)."""
    number = inode(path)
    return {
        line.pid
        for line in proc_locks()
        if not line.waiting
        and line.kind == "POSIX"
        and line.inode == number
        and (mode is None or line.mode == mode)
    }


def process_state(pid: int) -> str:
    """The one-letter state of a process (R, S, D, T, t, Z), or "" when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text.rsplit(")", 1)[1].split()[0]


def wait_for(
    condition: Callable[[], Any], what: str, *, unless: Callable[[], bool] | None = None
) -> Any:
    """Poll ``condition`` until it returns something true; fail after :data:`WAIT_BOUND` or
    as soon as ``unless()`` (the event can no longer happen) is true."""
    deadline = time.monotonic() + WAIT_BOUND
    while True:
        value = condition()
        if value:
            return value
        assert unless is None or not unless(), f"gave up waiting: {what}"
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


# -- hostile surroundings --------------------------------------------------------------------


class Canaries:
    """Files and directories outside the store that nothing may read through or delete.

    Planted in the directory that holds the graph root (where ``../x`` IDs point) and
    in a sibling directory; :meth:`assert_alive` checks every one is still there with
    its bytes and mode.
    """

    def __init__(self, around: Path) -> None:
        self.paths: dict[Path, tuple[bytes, int]] = {}
        for directory in (around, around / "outside", around / "outside" / "deeper"):
            directory.mkdir(parents=True, exist_ok=True)
            canary = directory / "canary.txt"
            canary.write_bytes(b"alive: " + str(directory).encode())
            self.paths[canary] = (canary.read_bytes(), canary.stat().st_mode)
        self.directory = around / "outside"

    def assert_alive(self) -> None:
        for path, (data, mode) in self.paths.items():
            assert path.read_bytes() == data, f"{path} changed"
            assert path.stat().st_mode == mode, f"{path} mode changed"


@contextmanager
def tmpfs(mountpoint: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``mountpoint`` (we run as root), unmounted afterwards."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:  # pragma: no cover - depends on privileges
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def remount(mountpoint: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mountpoint)], check=True)


@contextmanager
def bind_mount(source: Path, target: Path, *, read_only: bool = False) -> Iterator[Path]:
    """``source`` bind-mounted at ``target`` (read-only if asked), unmounted afterwards."""
    target.mkdir(parents=True, exist_ok=True)
    bound = subprocess.run(
        ["mount", "--bind", str(source), str(target)], capture_output=True, text=True, check=False
    )
    if bound.returncode != 0:  # pragma: no cover - depends on privileges
        pytest.skip(f"cannot bind-mount: {bound.stderr.strip()}")
    try:
        if read_only:
            remount(target, "bind,ro")
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i`` on ``paths`` for the block (root cannot write, rename or unlink them)."""
    done: list[Path] = []
    try:
        for path in paths:
            flagged = subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True, text=True, check=False
            )
            if flagged.returncode != 0:  # pragma: no cover - depends on the file system
                pytest.skip(f"chattr +i is not supported here: {flagged.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=False)
