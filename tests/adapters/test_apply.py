"""Applying removal plans to real stores (issue #5 item 2; issue #8 items 2, 3, 5).

One store is built per module with podman and buildah (images with several names, a
parent/child chain with a storage container on the child, an intermediate parent, a
dangling image, a manifest list); every test works on a copy without podman's
database. The expected store is always the in-memory model's
(:func:`libimage.pure.interpret.interpret`) or podman's own result on another copy;
never our own output.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import pvector
from support.podman import CommandFailed, PodmanStore, requires_podman, tree_state

from libimage.adapters import apply as apply_module
from libimage.adapters import atomic
from libimage.adapters.apply import INTENT_NAME, EventChannel, apply_plan, remove_images
from libimage.adapters.atomic import StoreWriteError
from libimage.adapters.locks import store_write_locks
from libimage.adapters.runtime import Runtime
from libimage.adapters.store import ReadResult, read_snapshot, resolve_layout
from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.interpret import interpret
from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    Effect,
    EventType,
    RemovalPlan,
    RemoveContainer,
    RemoveOptions,
    Untag,
)
from libimage.pure.semantics import PODMAN_4_3
from libimage.pure.snapshot import ContainerID, ImageID, LayerID, Snapshot
from libimage.spec.invariants_removal import candidate_names

pytestmark = requires_podman

# Scratch copies live in memory where there is a tmpfs: fdatasync costs nothing there.
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None  # noqa: PTH112


@dataclass(frozen=True)
class Base:
    """The module's store and the IDs of what it holds."""

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


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    store = PodmanStore.create(tmp_path_factory.mktemp("apply-base"))
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


def copy_of(base: Base, directory: Path) -> PodmanStore:
    return base.store.copy_to(directory)


def context_of(store: PodmanStore) -> Context:
    return Runtime.from_options(store.options(), semantics=PODMAN_4_3).context()


def file_bytes(store: PodmanStore) -> dict[str, bytes | None]:
    """Every path under the graph root and run root: file bytes, None for directories."""
    state: dict[str, bytes | None] = {}
    for top in (store.root, store.runroot):
        for walked, dirs, files in os.walk(top):
            state[walked] = None
            for name in [*dirs, *files]:
                path = Path(walked, name)
                if path.is_symlink():
                    state[str(path)] = b"-> " + str(path.readlink()).encode()
                elif path.is_file():
                    state[str(path)] = path.read_bytes()
    return state


def temporaries(store: PodmanStore) -> list[str]:
    return [p for p in file_bytes(store) if Path(p).name.startswith(".tmp-")]


def podman_view(store: PodmanStore) -> dict[str, list[str]]:
    """What podman lists: image ID -> names (podman must read the store)."""
    return {entry["Id"]: sorted(entry.get("Names", [])) for entry in store.images_json()}


def model_view(snapshot: Snapshot) -> dict[str, list[str]]:
    return {image.id: sorted(image.names) for image in snapshot.images}


# -- the model: applying a plan gives the store interpret() predicts ---------------------------

REQUESTS: dict[str, tuple[Callable[[Base], list[str]], RemoveOptions]] = {
    "untag one of two names (RM-U5)": (lambda _: ["aa:1"], RemoveOptions()),
    "both names (RM-X5)": (lambda _: ["aa:1", "aa:2"], RemoveOptions()),
    "by ID without force (RM-U3)": (lambda b: [b.aa[:12]], RemoveOptions()),
    "by ID with force (RM-U7)": (lambda b: [b.aa[:12]], RemoveOptions(force=True)),
    "in use (RM-D5)": (lambda _: ["child:1"], RemoveOptions()),
    "force removes the container (RM-C5)": (lambda _: ["child:1"], RemoveOptions(force=True)),
    "parent with a child is untagged (RM-D7)": (lambda _: ["bb:1"], RemoveOptions()),
    "child prunes its intermediate parent (RM-D8)": (lambda _: ["c:1"], RemoveOptions()),
    "dangling by ID": (lambda b: [b.dangling], RemoveOptions()),
    "digest form (RM-U4)": (lambda b: ["sha256:" + b.solo], RemoveOptions()),
    "unknown and known (POD-R-5)": (lambda _: ["nonexistent", "solo:1"], RemoveOptions()),
    "manifest list (RLK-7)": (lambda _: ["list:1"], RemoveOptions(lookup_manifest=True)),
    "everything with force (RM-4)": (lambda _: [], RemoveOptions(force=True)),
    "everything without force": (lambda _: [], RemoveOptions()),
}


@pytest.mark.parametrize(("names_of", "options"), REQUESTS.values(), ids=REQUESTS.keys())
def test_disk_equals_the_model_and_podman_reads_it(
    base: Base,
    tmp_path: Path,
    names_of: Callable[[Base], list[str]],
    options: RemoveOptions,
) -> None:
    store = copy_of(base, tmp_path)
    before = read_snapshot(store.options())
    names = names_of(base)
    outcome = remove_images(store.options(), names, options, context_of(store))
    after = read_snapshot(store.options())
    assert not outcome.replanned
    assert after.snapshot == interpret(before.snapshot, outcome.plan)
    assert podman_view(store) == model_view(after.snapshot)
    for image in after.snapshot.images:
        if image.id != base.listed:  # podman cannot inspect a list whose instance is gone
            store.run("image", "inspect", image.id)
    assert temporaries(store) == []
    assert not (store.root / "vfs-layers" / INTENT_NAME).exists()
    # Applied again, the plan finds everything done and writes nothing (idempotent).
    state = file_bytes(store)
    layout = resolve_layout(store.options())
    with store_write_locks(layout.lock_paths) as held:
        again = apply_plan(layout, held, outcome.plan)
    assert not again.changed
    assert file_bytes(store) == state


# Each example copies and rewrites a real store: a quarter of the active profile's examples.
@settings(max_examples=max(10, settings().max_examples // 4))
@given(data=st.data())
def test_generated_requests_match_the_model(base: Base, data: st.DataObject) -> None:
    """Issue #5: the model's result of applying a plan equals what the adapter writes.

    Requests are drawn from the names worth asking for on the real store
    (``candidate_names``), with and without force.
    """
    with tempfile.TemporaryDirectory(prefix="libimage-apply-", dir=SCRATCH) as scratch:
        store = copy_of(base, Path(scratch))
        before = read_snapshot(store.options())
        names = data.draw(
            st.lists(st.sampled_from(candidate_names(before.snapshot)), max_size=3), label="names"
        )
        force = data.draw(st.booleans(), label="force")
        outcome = remove_images(
            store.options(), names, RemoveOptions(force=force), context_of(store)
        )
        after = read_snapshot(store.options())
        assert after.snapshot == interpret(before.snapshot, outcome.plan)
        assert temporaries(store) == []


# -- byte compatibility with podman's own writes -------------------------------------------


def _metadata(store: PodmanStore) -> dict[str, bytes]:
    return {
        kind: (store.root / f"vfs-{kind}" / f"{kind}.json").read_bytes()
        for kind in ("images", "layers", "containers")
    }


def _listing(store: PodmanStore) -> dict[str, list[str]]:
    return {
        part: sorted(p.name for p in (store.root / part).iterdir())
        for part in ("vfs-images", "vfs-layers", "vfs-containers", "vfs/dir")
    }


@pytest.mark.parametrize(
    "args",
    [["aa:1"], ["-f", "child:1"], ["c:1"], ["bb:1"], ["-f", "aa:2", "solo:1", "nonexistent"]],
    ids=["untag", "force-with-container", "prune-parent", "untag-parent", "mixed"],
)
def test_files_are_byte_identical_to_podmans(base: Base, tmp_path: Path, args: list[str]) -> None:
    """The same removal by podman and by us leaves identical metadata files and directories."""
    ours = copy_of(base, tmp_path / "ours")
    theirs = copy_of(base, tmp_path / "theirs")
    force = "-f" in args
    names = [a for a in args if a != "-f"]
    remove_images(ours.options(), names, RemoveOptions(force=force), context_of(ours))
    theirs.run("rmi", *args, check=False)
    assert _metadata(ours) == _metadata(theirs)
    assert _listing(ours) == _listing(theirs)


def test_unknown_keys_and_opaque_strings_survive(base: Base, tmp_path: Path) -> None:
    """SF-I-24, SF-I-7: keys we do not know and ``metadata`` round-trip; podman reads the file."""
    store = copy_of(base, tmp_path)
    path = store.root / "vfs-images" / "images.json"
    records = json.loads(path.read_bytes())
    by_id = {r["id"]: r for r in records}
    by_id[base.bb]["x-future"] = {"b": [1, 2.5, None], "a": "<&>"}
    by_id[base.bb]["metadata"] = '{"odd":"<tag> & \\u2028 \\b"}'
    path.write_bytes(json.dumps(records, separators=(",", ":")).encode())
    remove_images(store.options(), ["aa:1"], RemoveOptions(), context_of(store))
    rewritten = {r["id"]: r for r in json.loads(path.read_bytes())}
    assert rewritten[base.bb]["x-future"] == {"b": [1, 2.5, None], "a": "<&>"}
    assert rewritten[base.bb]["metadata"] == '{"odd":"<tag> & \\u2028 \\b"}'
    assert b"<" not in path.read_bytes()  # Go's HTML-safe escapes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # SF-L-5
    assert podman_view(store)[base.aa] == ["localhost/aa:2"]


# -- tokens and dry runs ------------------------------------------------------------------


def _tokens(store: PodmanStore) -> dict[str, bytes]:
    return {
        kind: (store.root / f"vfs-{kind}" / f"{kind}.lock").read_bytes()
        for kind in ("images", "layers", "containers")
    }


def test_a_new_token_after_each_saved_file(base: Base, tmp_path: Path) -> None:
    """SF-K-4, SF-K-7: every file we save gets a new 64-byte token; the others keep theirs."""
    store = copy_of(base, tmp_path)
    before = _tokens(store)
    remove_images(store.options(), ["aa:1"], RemoveOptions(), context_of(store))
    untagged = _tokens(store)
    assert len(untagged["images"]) == 64
    assert untagged["images"] != before["images"]
    assert untagged["layers"] == before["layers"]
    assert untagged["containers"] == before["containers"]
    remove_images(store.options(), ["child:1"], RemoveOptions(force=True), context_of(store))
    deleted = _tokens(store)
    assert all(len(t) == 64 for t in deleted.values())
    assert all(deleted[kind] != untagged[kind] for kind in deleted)


def test_dry_run_writes_nothing(base: Base, tmp_path: Path) -> None:
    """A dry run takes no write lock and writes no token (issue #5 item 3)."""
    store = copy_of(base, tmp_path)
    state = file_bytes(store)
    tree = tree_state(store.root, store.runroot)
    outcome = remove_images(
        store.options(), [], RemoveOptions(force=True), context_of(store), dry_run=True
    )
    assert outcome.dry_run
    assert not outcome.applied
    assert len(outcome.reports) == len(read_snapshot(store.options()).snapshot.images)
    assert file_bytes(store) == state
    assert tree_state(store.root, store.runroot) == tree


def test_a_store_changed_after_planning_is_replanned(
    base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SF-K-5: podman tags an image between our read and our write locks; we re-plan."""
    store = copy_of(base, tmp_path)
    real_read = apply_module.read_store

    def read_then_podman_tags(layout: Any) -> ReadResult:
        result = real_read(layout)
        store.tag(base.solo, "localhost/solo:2")
        return result

    monkeypatch.setattr(apply_module, "read_store", read_then_podman_tags)
    outcome = remove_images(store.options(), ["solo:1"], RemoveOptions(), context_of(store))
    assert outcome.replanned
    # On the fresh store solo has two names: only the one asked for goes (RM-U5).
    assert [type(e).__name__ for e in outcome.plan.effects] == ["Untag"]
    assert podman_view(store)[base.solo] == ["localhost/solo:2"]


# -- refusals: bad IDs never become paths (decision 10) ------------------------------------------

BAD_EFFECTS: dict[str, Effect] = {
    "image ../x": DeleteImage(ImageID("../x"), "test"),
    "untag on an absolute path": Untag(ImageID("/etc"), "localhost/x:1", "test"),
    "upper-case layer": DeleteLayer(LayerID("A" * 64), "test"),
    "empty container": RemoveContainer(ContainerID(""), ImageID("a" * 64), "test"),
    "layer with NUL": DeleteLayer(LayerID("a" * 63 + "\0"), "test"),
}


@pytest.mark.parametrize("effect", BAD_EFFECTS.values(), ids=BAD_EFFECTS.keys())
def test_bad_ids_are_refused_before_anything_is_written(
    base: Base, tmp_path: Path, effect: Effect
) -> None:
    store = copy_of(base, tmp_path)
    state = file_bytes(store)
    plan = RemovalPlan(effects=pvector([DeleteImage(ImageID(base.solo), "test"), effect]))
    layout = resolve_layout(store.options())
    with store_write_locks(layout.lock_paths) as held, pytest.raises(LibimageError) as raised:
        apply_plan(layout, held, plan)
    assert raised.value.kind is ErrorKind.INVALID_RECORD_ID
    assert "json" in raised.value.failure.message  # names the file
    assert file_bytes(store) == state


def test_a_container_layer_with_a_bad_id_is_refused(base: Base, tmp_path: Path) -> None:
    """A layer record ``../../outside`` used by a container: refused, nothing outside touched."""
    store = copy_of(base, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary").write_bytes(b"alive")
    layers_path = store.root / "vfs-layers" / "layers.json"
    layers = json.loads(layers_path.read_bytes())
    containers_path = store.root / "vfs-containers" / "containers.json"
    containers = json.loads(containers_path.read_bytes())
    hostile = os.path.relpath(outside, store.root / "vfs" / "dir")
    layers.append({"id": hostile, "created": "2026-01-01T00:00:00Z"})
    containers[0]["layer"] = hostile
    layers_path.write_bytes(json.dumps(layers).encode())
    containers_path.write_bytes(json.dumps(containers).encode())
    state = file_bytes(store)
    plan = RemovalPlan(
        effects=pvector([RemoveContainer(ContainerID(base.container), ImageID(base.child), "t")])
    )
    layout = resolve_layout(store.options())
    with store_write_locks(layout.lock_paths) as held, pytest.raises(LibimageError) as raised:
        apply_plan(layout, held, plan)
    assert raised.value.kind is ErrorKind.INVALID_RECORD_ID
    assert file_bytes(store) == state
    assert (outside / "canary").read_bytes() == b"alive"


def test_symbolic_links_in_the_store_are_removed_not_followed(base: Base, tmp_path: Path) -> None:
    """A layer directory and a big-data directory replaced by links out of the store."""
    store = copy_of(base, tmp_path / "store")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary").write_bytes(b"alive")
    snapshot = read_snapshot(store.options()).snapshot
    solo = next(i for i in snapshot.images if i.id == base.solo)
    layer_dir = store.root / "vfs" / "dir" / solo.top_layer
    shutil.rmtree(layer_dir)
    layer_dir.symlink_to(outside)
    remove_images(store.options(), ["solo:1"], RemoveOptions(), context_of(store))
    assert not layer_dir.is_symlink()
    assert not layer_dir.exists()
    # The planner refuses an image whose big data is a link (LK-9); the adapter, given
    # the plan anyway, unlinks the link and leaves its target alone.
    image_dir = store.root / "vfs-images" / base.dangling
    shutil.rmtree(image_dir)
    image_dir.symlink_to(outside)
    plan = RemovalPlan(effects=pvector([DeleteImage(ImageID(base.dangling), "test")]))
    layout = resolve_layout(store.options())
    with store_write_locks(layout.lock_paths) as held:
        apply_plan(layout, held, plan)
    assert not image_dir.is_symlink()
    assert (outside / "canary").read_bytes() == b"alive"


def test_a_linked_driver_directory_is_refused_before_writing(base: Base, tmp_path: Path) -> None:
    """``<root>/vfs`` replaced by a link: refused before any metadata is written."""
    store = copy_of(base, tmp_path / "store")
    moved = tmp_path / "moved-vfs"
    shutil.move(store.root / "vfs", moved)
    (store.root / "vfs").symlink_to(moved)
    state = file_bytes(store)
    with pytest.raises(StoreWriteError) as raised:
        remove_images(store.options(), ["solo:1"], RemoveOptions(), context_of(store))
    assert "vfs" in str(raised.value)
    assert file_bytes(store) == state


# -- failing writes: ENOSPC, read-only and immutable files (issue #8 item 3) -------------------


def _fail_write(monkeypatch: pytest.MonkeyPatch, failing: int, code: int = errno.ENOSPC) -> None:
    """Make the ``failing``-th temporary-file write fail with ``code``."""
    real = atomic._write_all
    calls = {"n": 0}

    def write_all(fd: int, data: memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == failing:
            raise OSError(code, os.strerror(code))
        return real(fd, data)

    monkeypatch.setattr(atomic, "_write_all", write_all)


@pytest.mark.parametrize("failing", [1, 2], ids=["intent", "first-metadata-save"])
def test_a_failed_first_write_leaves_every_file_byte_identical(
    base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    store = copy_of(base, tmp_path)
    state = file_bytes(store)
    _fail_write(monkeypatch, failing)
    with pytest.raises(StoreWriteError) as raised:
        remove_images(store.options(), ["child:1"], RemoveOptions(force=True), context_of(store))
    assert "no space left on device" in str(raised.value)
    assert ".json" in str(raised.value)
    assert file_bytes(store) == state


def test_a_later_failed_write_leaves_a_state_the_next_run_completes(
    base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """images.json cannot be written after containers.json was: podman reads the store,
    and the next run finishes with the store an uninterrupted run leaves."""
    store = copy_of(base, tmp_path / "store")
    reference = copy_of(base, tmp_path / "reference")
    options = RemoveOptions(force=True)
    remove_images(reference.options(), ["child:1"], options, context_of(reference))
    with monkeypatch.context() as patch:
        _fail_write(patch, 4)  # intent, container layer flagged, containers.json, images.json
        with pytest.raises(StoreWriteError):
            remove_images(store.options(), ["child:1"], options, context_of(store))
    assert (store.root / "vfs-layers" / INTENT_NAME).exists()
    assert base.child in podman_view(store)
    remove_images(store.options(), ["child:1"], options, context_of(store))
    assert _metadata_records(store) == _metadata_records(reference)
    assert _listing(store) == _listing(reference)
    assert not (store.root / "vfs-layers" / INTENT_NAME).exists()


def _metadata_records(store: PodmanStore) -> dict[str, Any]:
    return {kind: store.metadata(kind) for kind in ("images", "layers", "containers")}


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (we run as root); skipped where mounting is not allowed."""
    mountpoint = tmp_path / "tmpfs"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(stream: Any) -> None:
    while True:
        stream.write(b"\0" * 4096)


def test_a_full_disk_changes_nothing(base: Base, tiny_tmpfs: Path) -> None:
    """ENOSPC on a real (tiny) file system: the error names the file; nothing changed."""
    store = copy_of(base, tiny_tmpfs / "store")
    filler = tiny_tmpfs / "filler"
    with filler.open("wb", buffering=0) as stream, pytest.raises(OSError, match="No space left"):
        _fill(stream)
    state = file_bytes(store)
    with pytest.raises(StoreWriteError) as raised:
        remove_images(store.options(), ["child:1"], RemoveOptions(force=True), context_of(store))
    assert "no space left on device" in str(raised.value)
    assert file_bytes(store) == state
    filler.unlink()
    remove_images(store.options(), ["child:1"], RemoveOptions(force=True), context_of(store))
    assert base.child not in podman_view(store)


def test_an_immutable_metadata_file_is_refused_before_writing(base: Base, tmp_path: Path) -> None:
    """``chattr +i images.json``: root cannot replace it; nothing is written at all."""
    store = copy_of(base, tmp_path)
    images_json = store.root / "vfs-images" / "images.json"
    if subprocess.run(["chattr", "+i", str(images_json)], check=False).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        state = file_bytes(store)
        with pytest.raises(StoreWriteError) as raised:
            remove_images(
                store.options(), ["child:1"], RemoveOptions(force=True), context_of(store)
            )
        assert str(images_json) in str(raised.value)
        assert file_bytes(store) == state
    finally:
        subprocess.run(["chattr", "-i", str(images_json)], check=False)


def test_read_only_additional_store_is_never_written(base: Base, tmp_path: Path) -> None:
    """SF-RO-3, decision 15: ``rmi -a -f`` skips read-only images; ``rmi ro`` is refused."""
    extra = PodmanStore.create(tmp_path / "extra")
    extra.import_image("localhost/ro:1", {"ro.txt": b"ro"})
    store = copy_of(base, tmp_path / "store").with_image_stores(extra)
    extra_state = file_bytes(extra)
    refused = remove_images(store.options(), ["ro:1"], RemoveOptions(force=True), context_of(store))
    assert [e.kind for e in refused.errors] == [ErrorKind.READ_ONLY]
    everything = RemoveOptions(force=True, filters=pvector(["readonly=false"]))
    outcome = remove_images(store.options(), [], everything, context_of(store))
    assert outcome.errors == pvector()
    assert file_bytes(extra) == extra_state
    assert list(podman_view(store).values()) == [["localhost/ro:1"]]


# -- recovery (only inside write operations) and orphans -------------------------------------------


def test_incomplete_layers_are_finished_by_a_write_never_by_a_read(
    base: Base, tmp_path: Path
) -> None:
    """SF-Y-10: a layer flagged incomplete (a crash after phase 4) is deleted as podman would."""
    store = copy_of(base, tmp_path)
    snapshot = read_snapshot(store.options()).snapshot
    dangling = next(i for i in snapshot.images if i.id == base.dangling)
    images_path = store.root / "vfs-images" / "images.json"
    images = [r for r in json.loads(images_path.read_bytes()) if r["id"] != base.dangling]
    images_path.write_bytes(json.dumps(images).encode())
    layers_path = store.root / "vfs-layers" / "layers.json"
    layers = json.loads(layers_path.read_bytes())
    for record in layers:
        if record["id"] == dangling.top_layer:
            record["flags"] = {"incomplete": True}
    layers_path.write_bytes(json.dumps(layers).encode())
    (store.root / "vfs-images" / ".tmp-images.json123").write_bytes(b"[")
    state = tree_state(store.root, store.runroot)
    read_snapshot(store.options())
    assert tree_state(store.root, store.runroot) == state  # reads change nothing
    outcome = remove_images(store.options(), ["nonexistent"], RemoveOptions(), context_of(store))
    assert [e.kind for e in outcome.errors] == [ErrorKind.IMAGE_UNKNOWN]
    assert dangling.top_layer not in {layer["id"] for layer in store.metadata("layers")}
    assert not (store.root / "vfs" / "dir" / dangling.top_layer).exists()
    assert not (store.root / "vfs-layers" / f"{dangling.top_layer}.tar-split.gz").exists()
    assert not (store.root / "vfs-images" / ".tmp-images.json123").exists()
    assert any("incomplete layer" in w for w in outcome.warnings)
    # The image's big-data directory has no record and no intent names it: an orphan.
    assert (store.root / "vfs-images" / base.dangling).is_dir()
    assert any(base.dangling in w and "orphan" in w for w in outcome.warnings)
    assert podman_view(store) == model_view(read_snapshot(store.options()).snapshot)


def test_the_intent_finishes_layers_no_image_names_any_more(base: Base, tmp_path: Path) -> None:
    """A crash between phases 3 and 4: the image is gone, its layers unflagged; the intent
    lets the next write delete them, and only those nothing uses."""
    store = copy_of(base, tmp_path)
    snapshot = read_snapshot(store.options()).snapshot
    solo = next(i for i in snapshot.images if i.id == base.solo)
    bb = next(i for i in snapshot.images if i.id == base.bb)
    images_path = store.root / "vfs-images" / "images.json"
    images = [r for r in json.loads(images_path.read_bytes()) if r["id"] != base.solo]
    images_path.write_bytes(json.dumps(images).encode())
    intent = {"version": 1, "containers": [], "images": [base.solo]}
    intent["layers"] = [solo.top_layer, bb.top_layer]  # bb's layer is still used: kept
    (store.root / "vfs-layers" / INTENT_NAME).write_bytes(json.dumps(intent).encode())
    remove_images(store.options(), ["nonexistent"], RemoveOptions(), context_of(store))
    layer_ids = {layer["id"] for layer in store.metadata("layers")}
    assert solo.top_layer not in layer_ids
    assert bb.top_layer in layer_ids
    assert not (store.root / "vfs-images" / base.solo).exists()
    assert not (store.root / "vfs" / "dir" / solo.top_layer).exists()
    assert (store.root / "vfs" / "dir" / bb.top_layer).exists()
    assert not (store.root / "vfs-layers" / INTENT_NAME).exists()
    assert podman_view(store) == model_view(read_snapshot(store.options()).snapshot)


def test_podman_containers_are_refused_not_removed(tmp_path: Path) -> None:
    """Decision 19: ``-f`` never removes a container podman's database knows; nothing is
    written, and podman still lists the image with its container."""
    store = PodmanStore.create(tmp_path)
    image_id = store.import_image("localhost/pc:1", {"pc.txt": b"pc"})
    container = store.podman_container(image_id, "pc-container")
    state = file_bytes(store)
    outcome = remove_images(store.options(), ["pc:1"], RemoveOptions(force=True), context_of(store))
    assert [e.kind for e in outcome.errors] == [ErrorKind.PODMAN_CONTAINER]
    assert container in outcome.errors[0].message
    assert "podman rm" in outcome.errors[0].message
    assert not outcome.applied
    assert file_bytes(store) == state
    (entry,) = store.images_json()
    assert (entry["Id"], entry["Containers"]) == (image_id, 1)


def test_events_reach_the_channel_after_the_removal(base: Base, tmp_path: Path) -> None:
    """EV-3, POD-E-1: ``rmi aa:1`` (untag only) sends Untag then Remove; a dry run sends
    nothing; an event that finds the channel full is dropped with a warning."""
    store = copy_of(base, tmp_path)
    channel = EventChannel()
    remove_images(
        store.options(), ["aa:1"], RemoveOptions(), context_of(store), dry_run=True, events=channel
    )
    assert list(channel) == []
    remove_images(store.options(), ["aa:1"], RemoveOptions(), context_of(store), events=channel)
    received = list(channel)
    assert [(e.type, e.id, e.name) for e in received] == [
        (EventType.UNTAG, base.aa, "localhost/aa:1"),
        (EventType.REMOVE, base.aa, "localhost/aa:1"),
    ]
    assert all(e.time.tzinfo is not None for e in received)
    tiny = EventChannel(capacity=1, send_timeout=0.01)
    outcome = remove_images(
        store.options(), ["aa:2"], RemoveOptions(), context_of(store), events=tiny
    )
    assert len(list(tiny)) == 1
    assert len(outcome.plan.events) > 1
    assert any("dropped" in w for w in outcome.warnings)


# -- overlay (SF-L-3, SF-D-11) ------------------------------------------------------------


@pytest.fixture(scope="module")
def overlay_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[PodmanStore, str]:
    store = replace(PodmanStore.create(tmp_path_factory.mktemp("overlay-base")), driver="overlay")
    try:
        parent = store.import_image("localhost/ov-parent:1", {"p.txt": b"p"})
    except CommandFailed as error:  # pragma: no cover - depends on the kernel
        pytest.skip(f"overlay does not work here: {error}")
    child = store.child_image(parent, "localhost/ov-child:1", {"c.txt": b"c"})
    return store, store.buildah_container(child)


def _overlay_listing(store: PodmanStore) -> dict[str, list[str]]:
    home = store.root / "overlay"
    return {
        "layers": sorted(p.name for p in home.iterdir() if p.name != "l"),
        "links": sorted(f"{p.name} -> {p.readlink()}" for p in (home / "l").iterdir()),
        "images": sorted(p.name for p in (store.root / "overlay-images").iterdir()),
        "containers": sorted(p.name for p in (store.root / "overlay-containers").iterdir()),
    }


@pytest.mark.parametrize("args", [["-f", "ov-child:1"], ["-a", "-f"]], ids=["child", "all"])
def test_overlay_layers_and_links_go_as_podman_removes_them(
    overlay_base: tuple[PodmanStore, str], tmp_path: Path, args: list[str]
) -> None:
    """Overlay: the layer directory and its ``l/<LINKID>`` link go, ``l/`` stays; the
    metadata files are byte-identical to podman's after the same removal."""
    base_store, _container = overlay_base
    ours = base_store.copy_to(tmp_path / "ours")
    theirs = base_store.copy_to(tmp_path / "theirs")
    names = [a for a in args if not a.startswith("-")]
    remove_images(ours.options(), names, RemoveOptions(force=True), context_of(ours))
    theirs.run("rmi", *args)
    for kind in ("images", "layers", "containers"):
        path = f"overlay-{kind}/{kind}.json"
        assert (ours.root / path).read_bytes() == (theirs.root / path).read_bytes()
    assert _overlay_listing(ours) == _overlay_listing(theirs)
    assert podman_view(ours) == podman_view(theirs)


def test_a_mounted_overlay_layer_is_refused(
    overlay_base: tuple[PodmanStore, str], tmp_path: Path
) -> None:
    """A mounted container layer is not deleted under the mount: refused, nothing written."""
    base_store, container = overlay_base
    store = base_store.copy_to(tmp_path)
    mounted = store.buildah("mount", container, check=False)
    if mounted.returncode != 0:  # pragma: no cover - depends on the kernel
        pytest.skip(f"cannot mount: {mounted.stderr}")
    try:
        metadata = {
            kind: (store.root / f"overlay-{kind}" / f"{kind}.json").read_bytes()
            for kind in ("images", "layers", "containers")
        }
        with pytest.raises(StoreWriteError, match="is mounted"):
            remove_images(
                store.options(), ["ov-child:1"], RemoveOptions(force=True), context_of(store)
            )
        for kind, data in metadata.items():
            assert (store.root / f"overlay-{kind}" / f"{kind}.json").read_bytes() == data
    finally:
        store.buildah("umount", container, check=False)


def test_a_read_only_file_system_changes_nothing(base: Base, tmp_path: Path) -> None:
    """EROFS (a read-only bind mount of the store): one error naming the file, exit 125 in
    the CLI, and nothing written."""
    store = copy_of(base, tmp_path / "store")
    view = tmp_path / "read-only-view"
    view.mkdir()
    bound = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(store.root), str(view)],
        capture_output=True,
        check=False,
    )
    if bound.returncode != 0:  # pragma: no cover - depends on privileges
        pytest.skip(f"cannot bind-mount: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=False)
        state = file_bytes(store)
        read_only = replace(store, root=view)
        with pytest.raises(LibimageError) as raised:
            remove_images(read_only.options(), ["solo:1"], RemoveOptions(), context_of(read_only))
        assert "read-only file system" in str(raised.value).lower()
        assert str(view) in str(raised.value)
        assert file_bytes(store) == state
    finally:
        subprocess.run(["umount", str(view)], check=False)


def test_the_runtime_removes_and_sends_events(base: Base, tmp_path: Path) -> None:
    """The façade: ``Runtime.remove_images`` returns (reports, errors) as RM-1 says, feeds
    the event channel, and sees its own change on the next lookup."""
    store = copy_of(base, tmp_path)
    runtime = Runtime.from_options(store.options(), semantics=PODMAN_4_3)
    assert runtime.exists("aa:1")
    channel = runtime.event_channel()
    assert runtime.event_channel() is channel
    reports, errors = runtime.remove_images(["aa:1", "nonexistent"])
    assert [(r.id, list(r.untagged), r.removed) for r in reports] == [
        (base.aa, ["localhost/aa:1"], False)
    ]
    assert [e.message for e in errors] == ["nonexistent: image not known"]
    assert [(e.type, e.name) for e in channel] == [
        (EventType.UNTAG, "localhost/aa:1"),
        (EventType.REMOVE, "localhost/aa:1"),
    ]
    assert not runtime.exists("aa:1")
    assert runtime.exists("aa:2")
    dry = runtime.remove_images_outcome(["aa:2"], dry_run=True)
    assert dry.dry_run
    assert list(channel) == []
    assert runtime.exists("aa:2")
