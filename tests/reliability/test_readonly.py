"""Read-only files, directories, file systems and additional stores (issue #8 item 3).

As root, permission bits do not stop a write, so read-only-ness is made with
``chattr +i`` / ``+a`` (immutable, append-only), read-only bind mounts and a read-only
tmpfs. Every refused removal exits 125 with one ``Error:`` line naming the file or
directory, no traceback. When the first write is refused, every file of the store is
byte-identical afterwards. When a later step is refused (a layer or big-data directory
that cannot be deleted after the metadata was saved), the stated state is: the
metadata saved without the removed records, the doomed layers flagged ``incomplete``,
the intent file present; podman lists the store (on a copy), and once the cause is
gone the same command finishes the job exactly as an uninterrupted run does.

Files we create get podman's modes (SF-L-5), whatever our umask.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from reliability_support import (
    Base,
    assert_store_sound,
    bind_mount,
    cli,
    immutable,
    leftovers,
    libimage_argv,
    metadata_bytes,
    podman_view,
    remount,
    shared_base,
    store_bytes,
    tmpfs,
)
from support.podman import PodmanStore, requires_podman

pytestmark = [requires_podman, pytest.mark.reliability]

INTENT = "libimage-removal-intent.json"


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return shared_base(tmp_path_factory)


# -- immutable and append-only files and directories ---------------------------------------------

FIRST_WRITE_REFUSED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # what is made immutable (relative to the graph root), chattr flag, the request
    "images.json": ("vfs-images/images.json", "+i", ("rmi", "aa:1")),
    "layers.json": ("vfs-layers/layers.json", "+i", ("rmi", "solo:1")),
    "containers.json": ("vfs-containers/containers.json", "+i", ("rmi", "-f", "child:1")),
    "images.json append-only": ("vfs-images/images.json", "+a", ("rmi", "aa:1")),
    "the images directory": ("vfs-images", "+i", ("rmi", "aa:1")),
    "the layers directory (intent, layers.json)": ("vfs-layers", "+i", ("rmi", "solo:1")),
    "the containers directory": ("vfs-containers", "+i", ("rmi", "-f", "child:1")),
}


@pytest.mark.parametrize(
    ("relative", "flag", "request_args"),
    FIRST_WRITE_REFUSED.values(),
    ids=FIRST_WRITE_REFUSED.keys(),
)
def test_an_immutable_file_or_directory_changes_nothing(
    base: Base, tmp_path: Path, relative: str, flag: str, request_args: tuple[str, ...]
) -> None:
    """A removal that has to replace an immutable or append-only file, or write into an
    immutable directory: refused naming it, exit 125, every file byte-identical."""
    store = base.copy(tmp_path)
    target = store.root / relative
    state = store_bytes(store)
    with _chattr(target, flag):
        result = cli(store, *request_args)
        result.assert_clean_failure(str(target))
        assert store_bytes(store) == state
    # Once writable again, the same command works.
    assert cli(store, *request_args).code == 0


LATER_STEP_REFUSED: dict[str, Callable[[Base, PodmanStore], Path]] = {
    "a layer directory": lambda b, s: s.root / "vfs" / "dir" / _top_layer(s, b.solo),
    "a file in a layer directory": lambda b, s: _first_file(
        s.root / "vfs" / "dir" / _top_layer(s, b.solo)
    ),
    "the big-data directory": lambda b, s: s.root / "vfs-images" / b.solo,
    "a big-data file": lambda b, s: s.root / "vfs-images" / b.solo / "manifest",
}


@pytest.mark.parametrize("target_of", LATER_STEP_REFUSED.values(), ids=LATER_STEP_REFUSED.keys())
def test_a_directory_that_cannot_be_deleted_leaves_a_stated_state(
    base: Base, tmp_path: Path, target_of: Callable[[Base, PodmanStore], Path]
) -> None:
    """The metadata is saved before any directory goes (decision 12), so an immutable
    layer or big-data directory stops the removal after its saves: exit 125 naming it;
    images.json without solo, its layer flagged incomplete, the intent file kept; podman
    lists the store; made deletable again, the next run finishes like an uninterrupted
    one."""
    reference = base.copy(tmp_path / "reference")
    assert cli(reference, "rmi", "solo:1").code == 0
    store = base.copy(tmp_path / "store")
    layer = _top_layer(store, base.solo)
    target = target_of(base, store)
    with immutable(target):
        result = cli(store, "rmi", "solo:1")
        result.assert_clean_failure(str(target), "operation not permitted")
        assert base.solo not in {r["id"] for r in store.metadata("images")}
        flagged = [r for r in store.metadata("layers") if r["id"] == layer]
        assert [r.get("flags") for r in flagged] in ([{"incomplete": True}], [])
        assert (store.root / "vfs-layers" / INTENT).exists()
        assert [p for p in leftovers(store) if ".tmp-" in p] == []
        copy = store.copy_to(tmp_path / "podman")
        assert base.solo not in podman_view(copy)
        assert_store_sound(copy)
    finished = cli(store, "rmi", "nonexistent")  # any write operation recovers
    assert finished.code == 1
    assert metadata_bytes(store) == metadata_bytes(reference)
    assert leftovers(store) == []


def _top_layer(store: PodmanStore, image_id: str) -> str:
    layer = next(r["layer"] for r in store.metadata("images") if r["id"] == image_id)
    assert isinstance(layer, str)
    return layer


def _first_file(directory: Path) -> Path:
    return next(p for p in sorted(directory.rglob("*")) if p.is_file())


class _chattr:
    """``chattr <flag>`` for the block (``+i`` through :func:`immutable`)."""

    def __init__(self, path: Path, flag: str) -> None:
        self.path, self.flag = path, flag
        self._inner = immutable(path) if flag == "+i" else None

    def __enter__(self) -> None:
        if self._inner is not None:
            self._inner.__enter__()
            return
        done = subprocess.run(["chattr", self.flag, str(self.path)], check=False)
        if done.returncode != 0:  # pragma: no cover - depends on the file system
            pytest.skip(f"chattr {self.flag} is not supported here")

    def __exit__(self, *exc: object) -> None:
        if self._inner is not None:
            self._inner.__exit__(None, None, None)
        else:
            subprocess.run(["chattr", "-" + self.flag[1:], str(self.path)], check=False)


# -- read-only file systems ---------------------------------------------------------------------


def test_a_read_only_bind_mount_of_the_layer_data_is_a_later_failure(
    base: Base, tmp_path: Path
) -> None:
    """``<root>/vfs/dir`` bind-mounted read-only over itself: EROFS when the first layer
    directory goes (after the saves); the stated state; remounted, the next run finishes."""
    reference = base.copy(tmp_path / "reference")
    assert cli(reference, "rmi", "c:1").code == 0
    store = base.copy(tmp_path / "store")
    data = store.root / "vfs" / "dir"
    with bind_mount(data, data, read_only=True):
        result = cli(store, "rmi", "c:1")
        result.assert_clean_failure(str(data), "read-only file system")
        assert (store.root / "vfs-layers" / INTENT).exists()
        assert {base.c, base.parent}.isdisjoint(podman_view(store.copy_to(tmp_path / "copy")))
    assert cli(store, "rmi", "nonexistent").code == 1
    assert metadata_bytes(store) == metadata_bytes(reference)
    assert leftovers(store) == []


def test_a_read_only_tmpfs_changes_nothing(base: Base, tmp_path: Path) -> None:
    """A store on a tmpfs remounted read-only: reads work; every removal is refused with
    EROFS naming the file, exit 125, every file byte-identical."""
    with tmpfs(tmp_path / "tmpfs", "size=16m") as mountpoint:
        store = base.copy(mountpoint)
        remount(mountpoint, "ro")
        state = store_bytes(store)
        assert cli(store, "images").code == 0
        for request in (["rmi", "aa:1"], ["rmi", "-f", "child:1"], ["rmi", "-a", "-f"]):
            result = cli(store, *request)
            result.assert_clean_failure(str(store.root), "read-only file system")
        assert store_bytes(store) == state


# -- read-only additional image stores ------------------------------------------------------------


@pytest.fixture(scope="module")
def extra(tmp_path_factory: pytest.TempPathFactory) -> PodmanStore:
    """An additional store with one image, localhost/ro:1 (SF-RO)."""
    store = PodmanStore.create(tmp_path_factory.mktemp("extra"))
    store.import_image("localhost/ro:1", {"ro.txt": b"ro"})
    return store


@pytest.mark.parametrize("locks", ["with lock files", "without lock files"])
def test_a_read_only_additional_store_is_read_never_written(
    base: Base, extra: PodmanStore, tmp_path: Path, locks: str
) -> None:
    """SF-RO-3..5, decision 15: an additional store on a read-only bind mount is listed
    (R/O), ``rmi ro:1`` is podman's refusal (exit 125, same words), ``rmi -a -f``
    removes every writable image and nothing of it. Without lock files on the read-only
    mount it is read without locks (nothing can hold them); podman 4.3.1 cannot open it
    at all then."""
    source = extra.copy_to(tmp_path / "extra")
    if locks == "without lock files":
        for lock in source.root.rglob("*.lock"):
            lock.unlink()
    with bind_mount(source.root, tmp_path / "ro-view", read_only=True) as view:
        read_only = replace(source, root=view)
        store = base.copy(tmp_path / "store").with_image_stores(read_only)
        extra_state = store_bytes(read_only)
        podman = store.run("rmi", "ro:1", check=False)
        if locks == "with lock files":
            assert podman.returncode == 125
            assert "cannot remove read-only image" in podman.stderr
        else:
            assert podman.returncode == 125
            assert "read-only file system" in podman.stderr
        listing = cli(store, "images", "--format", "json")
        assert listing.code == 0, listing
        assert any(entry.get("ReadOnly") for entry in json.loads(listing.out))
        refused = cli(store, "rmi", "ro:1")
        refused.assert_clean_failure("cannot remove read-only image")
        everything = cli(store, "rmi", "-a", "-f")
        assert everything.code == 0, everything
        assert store_bytes(read_only) == extra_state
        remaining = cli(store, "images", "-a", "--format", "json")
        assert [entry["Names"] for entry in json.loads(remaining.out)] == [["localhost/ro:1"]]


# -- modes (SF-L-5) --------------------------------------------------------------------------------


def _modes(store: PodmanStore) -> dict[str, int]:
    modes = {}
    for top in (store.root, store.runroot):
        for path in top.rglob("*"):
            if not path.is_symlink() and "libpod" not in path.parts:
                modes[str(path.relative_to(top))] = stat.S_IMODE(path.lstat().st_mode)
    return modes


@pytest.mark.parametrize("umask", [0o000, 0o077], ids=["umask 000", "umask 077"])
def test_files_we_write_get_podmans_modes(base: Base, tmp_path: Path, umask: int) -> None:
    """SF-L-5: after the same removal by podman and by us, every file and directory left
    has the same mode (JSON 0600, directories 0700, lock files 0644), whatever our umask."""
    theirs, ours = base.copy(tmp_path / "theirs"), base.copy(tmp_path / "ours")
    theirs.run("rmi", "-f", "child:1", "aa:1")
    completed = subprocess.run(
        libimage_argv(ours, "rmi", "-f", "child:1", "aa:1"),
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(umask),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    theirs_modes = {k: v for k, v in _modes(theirs).items() if _comparable(k)}
    ours_modes = {k: v for k, v in _modes(ours).items() if _comparable(k)}
    assert ours_modes == theirs_modes
    assert ours_modes["vfs-images/images.json"] == 0o600
    assert ours_modes["vfs-layers/layers.json"] == 0o600


def _comparable(relative: str) -> bool:
    # podman also creates its own state (networks, tmp, volumes) that we never touch.
    return relative.startswith(("vfs-", "vfs/"))
