"""Removal killed with SIGKILL at every step, and inside every temporary file (issue #8 item 2).

For each scenario the uninterrupted removal runs once on a copy of a podman-built
store (the reference); then, for every step ``k`` it takes and every temporary file
``w`` it writes, a fresh copy is removed from by a forked child that the fault
injector kills right after step ``k`` (or half-way through file ``w``). Each time:

* the store is consistent: our reader reads it, podman lists and inspects every
  image on a copy of it, every image's layers and every container's layer are
  recorded, and every layer not flagged ``incomplete`` still has its data;
* a second, uninterrupted run of the same request finishes the job: the metadata
  files are byte-identical to the reference's, the same directories exist, and no
  temporary or intent file is left (lock tokens legitimately differ).

One more test goes through the command line and the environment variable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.podman import PodmanStore, requires_podman

from libimage.adapters.apply import INTENT_NAME, remove_images
from libimage.adapters.atomic import FAULT_AFTER_STEP, FaultInjector
from libimage.adapters.runtime import Runtime
from libimage.adapters.store import read_snapshot
from libimage.pure.plan import RemoveOptions
from libimage.pure.semantics import PODMAN_4_3

pytestmark = requires_podman


@dataclass(frozen=True)
class Base:
    store: PodmanStore
    child: str
    c: str


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    store = PodmanStore.create(tmp_path_factory.mktemp("crash-base"))
    aa = store.import_image("localhost/aa:1", {"aa.txt": b"aa"})
    store.tag(aa, "localhost/aa:2")
    bb = store.import_image("localhost/bb:1", {"bb.txt": b"bb"})
    child = store.child_image(bb, "localhost/child:1", {"child.txt": b"child"})
    store.buildah_container(child)
    parent = store.import_image("localhost/p:1", {"p.txt": b"p"})
    c = store.child_image(parent, "localhost/c:1", {"c.txt": b"c"})
    store.untag(parent, "localhost/p:1")
    store.import_image(None, {"dangling.txt": b"d"})
    return Base(store, child, c)


SCENARIOS: dict[str, tuple[list[str], RemoveOptions]] = {
    "untag (SF-O-3)": (["aa:1"], RemoveOptions()),
    "force with a storage container (SF-O-6)": (["child:1"], RemoveOptions(force=True)),
    "child and its intermediate parent (SF-O-5)": (["c:1"], RemoveOptions()),
    "everything (rmi -a -f)": ([], RemoveOptions(force=True)),
}


def context_of(store: PodmanStore) -> Any:
    return Runtime.from_options(store.options(), semantics=PODMAN_4_3).context()


def run(store: PodmanStore, names: list[str], options: RemoveOptions, fault: FaultInjector) -> None:
    remove_images(store.options(), names, options, context_of(store), fault=fault)


def run_killed(
    store: PodmanStore, names: list[str], options: RemoveOptions, fault: FaultInjector
) -> int:
    """Run the removal in a forked child; return its exit code (-9 when SIGKILLed)."""
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


def counted(base: Base, directory: Path, names: list[str], options: RemoveOptions) -> FaultInjector:
    """The steps and temporary files of an uninterrupted run (the injector only counts)."""
    injector = FaultInjector()
    run(base.store.copy_to(directory), names, options, injector)
    return injector


# -- what a consistent store and a finished job look like -----------------------------------------


def metadata(store: PodmanStore) -> dict[str, bytes]:
    return {
        kind: (store.root / f"vfs-{kind}" / f"{kind}.json").read_bytes()
        for kind in ("images", "layers", "containers")
    }


def directories(store: PodmanStore) -> dict[str, list[str]]:
    parts = {
        "images": store.root / "vfs-images",
        "layers": store.root / "vfs-layers",
        "containers": store.root / "vfs-containers",
        "data": store.root / "vfs" / "dir",
        "run-containers": store.runroot / "vfs-containers",
    }
    return {
        key: sorted(p.name for p in path.iterdir()) if path.exists() else []
        for key, path in parts.items()
    }


def assert_consistent(store: PodmanStore, scratch: Path) -> None:
    snapshot = read_snapshot(store.options()).snapshot  # our reader reads it
    layers = {record["id"]: record for record in store.metadata("layers")}
    for image in store.metadata("images"):
        layer = image.get("layer", "")
        while layer:  # an image's whole chain is recorded and none of it is being deleted
            assert layer in layers, f"image {image['id']} lost layer {layer}"
            assert not layers[layer].get("flags", {}).get("incomplete")
            layer = layers[layer].get("parent", "")
    for container in store.metadata("containers"):
        assert container["layer"] in layers, f"container {container['id']} lost its layer"
    for layer_id, record in layers.items():
        if not record.get("flags", {}).get("incomplete"):
            assert (store.root / "vfs" / "dir" / layer_id).is_dir(), f"layer {layer_id} data"
    # podman reads it (on a copy: podman may clean up incomplete layers itself).
    copy = store.copy_to(scratch)
    listed = {entry["Id"] for entry in copy.images_json()}
    assert listed == {image.id for image in snapshot.images}
    if listed:
        copy.run("image", "inspect", *sorted(listed))


def assert_finished_like(store: PodmanStore, reference: PodmanStore) -> None:
    assert metadata(store) == metadata(reference)
    assert directories(store) == directories(reference)
    assert not (store.root / "vfs-layers" / INTENT_NAME).exists()
    leftovers = list(store.root.rglob(".tmp-*")) + list(store.runroot.rglob(".tmp-*"))
    assert leftovers == []


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("names", "options"), SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("where", ["after-step", "in-write"])
def test_killed_anywhere_the_store_stays_consistent_and_a_rerun_finishes(
    base: Base, tmp_path: Path, names: list[str], options: RemoveOptions, where: str
) -> None:
    reference = base.store.copy_to(tmp_path / "reference")
    run(reference, names, options, FaultInjector())
    count = counted(base, tmp_path / "count", names, options)
    points = count.steps if where == "after-step" else count.writes
    assert points >= 1
    make: Callable[[int], FaultInjector] = (
        (lambda k: FaultInjector(after_step=k))
        if where == "after-step"
        else (lambda k: FaultInjector(in_write=k))
    )
    for k in range(1, points + 1):
        store = base.store.copy_to(tmp_path / f"{where}-{k}")
        code = run_killed(store, names, options, make(k))
        assert code == -signal.SIGKILL, f"{where} {k}: the child exited {code}"
        assert_consistent(store, tmp_path / f"{where}-{k}-podman")
        run(store, names, options, FaultInjector())
        assert_finished_like(store, reference)


def test_killed_through_the_command_line(base: Base, tmp_path: Path) -> None:
    """``LIBIMAGE_FAULT_AFTER_STEP`` kills ``libimage rmi``; running it again finishes."""
    reference = base.store.copy_to(tmp_path / "reference")
    run(reference, ["child:1"], RemoveOptions(force=True), FaultInjector())
    store = base.store.copy_to(tmp_path / "store")
    argv = [sys.executable, "-m", "libimage", *store.storage_flags()]
    argv += ["--semantics", "podman-4.3", "rmi", "-f", "child:1"]
    killed = subprocess.run(
        argv, env={**os.environ, FAULT_AFTER_STEP: "4"}, capture_output=True, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    assert (store.root / "vfs-layers" / INTENT_NAME).exists()
    assert_consistent(store, tmp_path / "podman")
    again = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert_finished_like(store, reference)
    # The first run printed nothing: it was killed before it could report.
    assert killed.stdout == b""
    assert json.loads((store.root / "vfs-images" / "images.json").read_bytes()) == json.loads(
        (reference.root / "vfs-images" / "images.json").read_bytes()
    )
