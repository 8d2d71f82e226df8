"""Crashes, recovery and what reads may never do (issue #8 item 2).

``tests/adapters/test_crash.py`` kills vfs removals (an untag, ``-f`` with one
storage container, one intermediate parent, ``rmi -a -f``) after every step and in
every temporary file. This module covers what it does not:

* the **overlay** driver (layer directories and their ``l/`` links), an image used
  by **two** storage containers removed with ``-f``, and **parent pruning two levels
  deep** - one removal that needs all of them, killed after every step and inside
  every temporary file; each time the store is consistent and podman reads it, and a
  second run ends byte-identical to an uninterrupted run;
* a crash **during recovery** (the second run killed in turn) still ends the same;
  recovery is idempotent: once done, a write operation finds nothing to recover and
  writes nothing;
* recovery runs **only inside write operations and under the write locks**: every
  read command leaves a store full of crash debris (flagged layers, stale temporary
  files, an intent file, orphans) exactly as it was, and a removal waiting for
  podman's lock has not touched anything yet;
* **orphan** directories are reported, never deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from reliability_support import (
    Base,
    assert_store_sound,
    cli,
    cli_process,
    leftovers,
    libimage_argv,
    podman_view,
    shared_base,
    wait_for,
    waiters,
)
from support.podman import CommandFailed, PodmanStore, requires_podman, tree_state

from libimage.adapters.apply import INTENT_NAME, remove_images
from libimage.adapters.atomic import FaultInjector
from libimage.adapters.locks import lock_file
from libimage.adapters.runtime import Runtime
from libimage.adapters.store import read_snapshot, resolve_layout
from libimage.pure.plan import RemoveOptions
from libimage.pure.semantics import PODMAN_4_3

pytestmark = [requires_podman, pytest.mark.reliability]


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return shared_base(tmp_path_factory)


@dataclass(frozen=True)
class Overlay:
    """An overlay store: top:1 on an untagged mid on an untagged bottom, two containers."""

    store: PodmanStore
    top: str
    mid: str
    bottom: str
    containers: tuple[str, str]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Overlay:
    store = replace(PodmanStore.create(tmp_path_factory.mktemp("crash-overlay")), driver="overlay")
    try:
        bottom = store.import_image("localhost/bottom:1", {"bottom.txt": b"bottom"})
    except CommandFailed as error:  # pragma: no cover - depends on the kernel
        pytest.skip(f"overlay does not work here: {error}")
    mid = store.child_image(bottom, "localhost/mid:1", {"mid.txt": b"mid"})
    top = store.child_image(mid, "localhost/top:1", {"top.txt": b"top"})
    containers = (store.buildah_container(top), store.buildah_container(top))
    store.untag(bottom, "localhost/bottom:1")
    store.untag(mid, "localhost/mid:1")
    return Overlay(store, top, mid, bottom, containers)


def run(store: PodmanStore, names: list[str], options: RemoveOptions, fault: FaultInjector) -> None:
    context = Runtime.from_options(store.options(), semantics=PODMAN_4_3).context()
    remove_images(store.options(), names, options, context, fault=fault)


def run_killed(
    store: PodmanStore, names: list[str], options: RemoveOptions, fault: FaultInjector
) -> int:
    """The removal in a forked child that the injector kills; its exit code (-9 if killed)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child is killed or exits without returning
        code = 0
        try:
            run(store, names, options, fault)
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _listing(store: PodmanStore) -> dict[str, list[str]]:
    drv = store.driver
    parts = {
        "images": store.root / f"{drv}-images",
        "layers": store.root / f"{drv}-layers",
        "containers": store.root / f"{drv}-containers",
        "run-containers": store.runroot / f"{drv}-containers",
        "data": store.root / drv / "dir" if drv == "vfs" else store.root / drv,
    }
    listing = {
        key: sorted(p.name for p in path.iterdir()) if path.exists() else []
        for key, path in parts.items()
    }
    links = store.root / drv / "l"
    if links.exists():
        listing["links"] = sorted(f"{p.name} -> {p.readlink()}" for p in links.iterdir())
    return listing


def _metadata(store: PodmanStore) -> dict[str, bytes]:
    drv = store.driver
    return {
        kind: (store.root / f"{drv}-{kind}" / f"{kind}.json").read_bytes()
        for kind in ("images", "layers", "containers")
    }


def assert_finished_like(store: PodmanStore, reference: PodmanStore) -> None:
    assert _metadata(store) == _metadata(reference)
    assert _listing(store) == _listing(reference)
    assert leftovers(store) == []


def assert_consistent(store: PodmanStore, scratch: Path) -> None:
    """Our reader reads the store, and podman on a copy lists the same images (a copy,
    because podman itself finishes layers flagged incomplete)."""
    read_snapshot(store.options())
    copy = store.copy_to(scratch)
    assert_store_sound(copy)


# -- overlay, two containers, two levels of pruning, killed everywhere ------------------------


@pytest.mark.parametrize("where", ["after-step", "in-write"])
def test_overlay_removal_killed_anywhere_is_finished_by_a_second_run(
    overlay: Overlay, tmp_path: Path, where: str
) -> None:
    """``rmi -f top:1`` on overlay: two storage containers (SF-D-C), the image, its layers
    and both untagged parents (RM-D8, SF-D-6), layer directories and ``l/`` links
    (SF-D-11). Killed after step k (or half-way through temporary file k), for every k."""
    names, options = ["top:1"], RemoveOptions(force=True)
    reference = overlay.store.copy_to(tmp_path / "reference")
    counter = FaultInjector()
    run(reference, names, options, counter)
    assert podman_view(reference) == {}
    points = counter.steps if where == "after-step" else counter.writes
    # Writes: the intent, five saves. Steps: those, the intent's removal, and the
    # directories (two containers twice, three images, five layers).
    assert points >= (6 if where == "in-write" else 17), points
    make: Callable[[int], FaultInjector] = (
        (lambda k: FaultInjector(after_step=k))
        if where == "after-step"
        else (lambda k: FaultInjector(in_write=k))
    )
    for k in range(1, points + 1):
        store = overlay.store.copy_to(tmp_path / f"{k}")
        assert run_killed(store, names, options, make(k)) == -signal.SIGKILL, k
        assert_consistent(store, tmp_path / f"{k}-podman")
        run(store, names, options, FaultInjector())
        assert_finished_like(store, reference)
        shutil.rmtree(tmp_path / f"{k}")


# -- a crash during recovery ---------------------------------------------------------------------


def test_recovery_killed_anywhere_is_finished_and_is_idempotent(base: Base, tmp_path: Path) -> None:
    """A removal killed after its layers were flagged and its first directory removed
    leaves work for recovery; that recovery (a write operation with nothing else to do)
    is killed after each of its own steps; the next one finishes the job, as an
    uninterrupted removal would have; a further write operation writes nothing."""
    names, options = ["child:1"], RemoveOptions(force=True)
    reference = base.copy(tmp_path / "reference")
    run(reference, names, options, FaultInjector())
    crashed = base.copy(tmp_path / "crashed")
    counter = FaultInjector()
    run(base.copy(tmp_path / "count"), names, options, counter)
    # after the intent, the four saves (container layer, containers, images, layers) and
    # one directory: recovery has directories, records and the intent left to do.
    assert run_killed(crashed, names, options, FaultInjector(after_step=6)) == -signal.SIGKILL
    assert (crashed.root / "vfs-layers" / INTENT_NAME).exists()
    recovery = FaultInjector()
    run(crashed.copy_to(tmp_path / "recovery-count"), ["nonexistent"], RemoveOptions(), recovery)
    assert recovery.steps >= 3
    for k in range(1, recovery.steps + 1):
        store = crashed.copy_to(tmp_path / f"{k}")
        code = run_killed(store, ["nonexistent"], RemoveOptions(), FaultInjector(after_step=k))
        assert code == -signal.SIGKILL, k
        assert_consistent(store, tmp_path / f"{k}-podman")
        run(store, ["nonexistent"], RemoveOptions(), FaultInjector())
        assert_finished_like(store, reference)
        # Idempotent: nothing left to recover, so nothing is locked for writing or written.
        state = tree_state(store.root, store.runroot)
        again = FaultInjector()
        run(store, ["nonexistent"], RemoveOptions(), again)
        assert again.steps == 0
        assert tree_state(store.root, store.runroot) == state


# -- reads never recover ---------------------------------------------------------------------------


def _crash_debris(base: Base, store: PodmanStore) -> None:
    """What crashed writers leave: a layer flagged incomplete whose image is gone, an
    intent file, stale temporary files of every metadata file, orphan directories."""
    snapshot = read_snapshot(store.options()).snapshot
    dangling = next(i for i in snapshot.images if i.id == base.dangling)
    images_path = store.root / "vfs-images" / "images.json"
    images = [r for r in json.loads(images_path.read_bytes()) if r["id"] != base.dangling]
    images_path.write_bytes(json.dumps(images, separators=(",", ":")).encode())
    layers_path = store.root / "vfs-layers" / "layers.json"
    layers = json.loads(layers_path.read_bytes())
    for record in layers:
        if record["id"] == dangling.top_layer:
            record["flags"] = {"incomplete": True}
    layers_path.write_bytes(json.dumps(layers, separators=(",", ":")).encode())
    intent = {"version": 1, "containers": [], "images": [base.dangling], "layers": []}
    (store.root / "vfs-layers" / INTENT_NAME).write_bytes(json.dumps(intent).encode())
    for directory, name in (
        ("vfs-images", "images.json"),
        ("vfs-layers", "layers.json"),
        ("vfs-containers", "containers.json"),
    ):
        (store.root / directory / f".tmp-{name}4242").write_bytes(b"[{")
    (store.root / "vfs" / "dir" / ("0" * 64)).mkdir()  # an orphan layer directory


READ_COMMANDS = {
    "images": ["images"],
    "images -a --format json": ["images", "-a", "--format", "json"],
    "images with a filter": ["images", "--filter", "dangling=true"],
    "exists": ["exists", "aa:1"],
    "lookup": ["lookup", "bb:1"],
    "lookup --explain": ["lookup", "--explain", "c:1"],
    "rmi --dry-run": ["rmi", "--dry-run", "-f", "child:1"],
    "rmi -a --dry-run --format json": ["rmi", "-a", "-f", "--dry-run", "--format", "json"],
}


def test_reads_never_create_or_change_anything(base: Base, tmp_path: Path) -> None:
    """SF-L-0, SF-Y-10, decision 12: with crash debris in the store, every read - each
    command in another process, read_snapshot and a runtime's lookups in this one -
    leaves every file, directory, mode, time and lock token as it was."""
    store = base.copy(tmp_path)
    _crash_debris(base, store)
    state = tree_state(store.root, store.runroot)
    tokens = {p: p.read_bytes() for p in store.root.rglob("*.lock")}
    for name, command in READ_COMMANDS.items():
        result = cli_process(store, *command)
        assert result.code in {0, 1}, (name, result)
        assert "Traceback" not in result.err, name
        assert tree_state(store.root, store.runroot) == state, name
    read_snapshot(store.options())
    runtime = Runtime.from_options(store.options(), semantics=PODMAN_4_3)
    assert runtime.exists("aa:1")
    assert runtime.lookup_image("c:1").image is not None
    runtime.remove_images_outcome(["child:1"], RemoveOptions(force=True), dry_run=True)
    assert tree_state(store.root, store.runroot) == state
    assert {p: p.read_bytes() for p in store.root.rglob("*.lock")} == tokens
    # The same debris is cleaned up by the first write operation (recovery).
    outcome = cli(store, "rmi", "nonexistent")
    assert outcome.code == 1
    assert leftovers(store) == []
    assert (store.root / "vfs" / "dir" / ("0" * 64)).is_dir()  # an orphan: reported, kept


def test_recovery_waits_for_the_write_lock(base: Base, tmp_path: Path) -> None:
    """Recovery happens under the write locks: while another process holds layers.lock,
    a write operation that must recover waits in the kernel and has changed nothing;
    released, it recovers."""
    store = base.copy(tmp_path)
    _crash_debris(base, store)
    layout = resolve_layout(store.options())
    state = tree_state(store.root, store.runroot)
    with lock_file(layout.layers_lock).write():
        ours = subprocess.Popen(
            libimage_argv(store, "rmi", "nonexistent"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                lambda: ours.pid in waiters(layout.layers_lock),
                "the removal waiting for layers.lock",
                unless=lambda: ours.poll() is not None,
            )
            assert tree_state(store.root, store.runroot) == state
        except BaseException:
            ours.kill()
            raise
    _, stderr = ours.communicate(timeout=120)
    assert ours.returncode == 1, stderr
    assert "found incomplete layer" in stderr
    assert leftovers(store) == []
    assert_store_sound(store)


# -- orphans ------------------------------------------------------------------------------------

ORPHAN = "9" * 64


def _plant_orphans(store: PodmanStore) -> list[Path]:
    planted = [
        store.root / "vfs-images" / ORPHAN,
        store.root / "vfs-containers" / ORPHAN,
        store.runroot / "vfs-containers" / ORPHAN,
        store.root / "vfs-layers" / ORPHAN,
        store.root / "vfs" / "dir" / ORPHAN,
    ]
    for directory in planted:
        directory.mkdir(parents=True)
        (directory / "file").write_bytes(b"orphaned")
    tar_split = store.root / "vfs-layers" / f"{ORPHAN}.tar-split.gz"
    tar_split.write_bytes(b"orphaned")
    return [*planted, tar_split]


def test_orphans_are_reported_never_deleted(base: Base, tmp_path: Path) -> None:
    """Directories and tar-split files with no record: every write operation names each
    on stderr as a warning (``WARNING: …orphan…``) and leaves it; reads say nothing."""
    store = base.copy(tmp_path)
    planted = _plant_orphans(store)
    assert "orphan" not in cli(store, "images").err
    result = cli(store, "rmi", "solo:1")
    assert result.code == 0, result
    warnings = [line for line in result.err.splitlines() if line.startswith("WARNING: ")]
    for path in planted:
        assert path.exists(), path
        assert any(str(path) in line and "orphan" in line for line in warnings), path
    assert base.solo not in podman_view(store)
