"""Hostile store content: bad IDs, links, swaps, hard links, names, aliases (issue #8 item 5).

Canary files around the store (:class:`~reliability_support.Canaries`, and "victims"
exactly where podman 4.3.1 resolves a ``../`` ID) prove that nothing outside the store
is read through a link or deleted. podman 4.3.1 itself, on a copy, deletes outside the
store when an image or layer ID in the metadata is ``../../x``: the test shows it, and
that we do not.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    Base,
    Canaries,
    Result,
    cli,
    leftovers,
    libimage_argv,
    our_view,
    podman_argv,
    podman_view,
    shared_base,
    store_bytes,
)
from support.podman import PodmanStore, requires_podman

from libimage.adapters.store import read_snapshot
from libimage.pure.reference import go_quote
from libimage.pure.snapshot import Unreadable

pytestmark = [requires_podman, pytest.mark.reliability]

# Characters a terminal may act on: C0 (but tab and newline), DEL, C1.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return shared_base(tmp_path_factory)


def _edit(path: Path, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    records = json.loads(path.read_bytes())
    edit(records)
    path.write_bytes(json.dumps(records, separators=(",", ":")).encode())


def _by_id(records: list[dict[str, Any]], record_id: str) -> dict[str, Any]:
    return next(r for r in records if r["id"] == record_id)


def _top_layer(store: PodmanStore, image_id: str) -> str:
    layer = _by_id(store.metadata("images"), image_id)["layer"]
    assert isinstance(layer, str)
    return layer


# -- IDs that are not 64 lower-case hex (decision 10) ---------------------------------------------

BAD_IDS = {
    "../../victim": "../../victim",
    "absolute path": "/etc",
    "empty": "",
    "NUL": "a" * 32 + "\0" + "a" * 31,
    "upper case": "A" * 64,
}


def _victims(store: PodmanStore) -> list[Path]:
    """Where podman resolves ``../../victim`` from the images and layers directories."""
    victims = [store.root.parent / "victim", store.root / "victim"]
    for victim in victims:
        victim.mkdir(exist_ok=True)
        (victim / "keep.txt").write_bytes(b"alive")
    (store.root.parent / "victim.tar-split.gz").write_bytes(b"alive")
    return [*victims, store.root.parent / "victim.tar-split.gz"]


def _assert_victims_alive(victims: list[Path]) -> None:
    for victim in victims:
        assert victim.exists(), victim
        if victim.is_dir():
            assert (victim / "keep.txt").read_bytes() == b"alive"


@pytest.mark.parametrize("bad", BAD_IDS.values(), ids=BAD_IDS.keys())
@pytest.mark.parametrize("kind", ["image", "layer", "container"])
def test_records_with_bad_ids_are_never_acted_on(
    base: Base, tmp_path: Path, bad: str, kind: str
) -> None:
    """Decision 10: the record is skipped with a warning naming the file and the ID.
    An image record: the other images are listed and ``rmi -a -f`` removes them (exit
    0) and leaves it. A layer record (solo's): solo is listed (flagged) and removable,
    the layer record and its data stay. A container record (on child): a removal that
    would take the container is refused as a whole, naming the file and the ID, exit
    125, nothing changed. Nothing outside the store is touched."""
    store = base.copy(tmp_path / "store")
    canaries = Canaries(tmp_path)
    victims = _victims(store)
    drv = store.root
    if kind == "image":
        path = drv / "vfs-images" / "images.json"
        _edit(path, lambda records: _by_id(records, base.dangling).update(id=bad))
    elif kind == "layer":
        path = drv / "vfs-layers" / "layers.json"
        layer = _top_layer(store, base.solo)
        _edit(path, lambda records: _by_id(records, layer).update(id=bad))
        _edit(
            drv / "vfs-images" / "images.json",
            lambda records: _by_id(records, base.solo).update(layer=bad),
        )
    else:
        path = drv / "vfs-containers" / "containers.json"
        _edit(path, lambda records: _by_id(records, base.container).update(id=bad))
    quoted = json.dumps(bad)
    listing = cli(store, "images", "-a")
    assert listing.code == 0, listing
    assert any(str(path) in w and quoted in w for w in listing.err.splitlines()), listing.err
    assert base.aa[:12] in listing.out
    if kind == "image":
        result = cli(store, "rmi", "-a", "-f")
        assert result.code == 0, result
        assert [r["id"] for r in store.metadata("images")] == [bad]
    elif kind == "layer":
        assert base.solo[:12] in listing.out
        result = cli(store, "rmi", "solo:1")
        assert result.code == 0, result
        assert bad in [r["id"] for r in store.metadata("layers")]
        assert (drv / "vfs" / "dir" / layer).is_dir()
    else:
        state = store_bytes(store)
        for command in (["rmi", "-f", "child:1"], ["rmi", "-a", "-f"]):
            result = cli(store, *command)
            result.assert_clean_failure(str(path), "decision 10")
            assert quoted in result.err or go_quote(bad) in result.err
        assert store_bytes(store) == state
    assert "Traceback" not in result.err
    assert not RAW_CONTROL.search(listing.err + result.err)
    _assert_victims_alive(victims)
    canaries.assert_alive()


def test_podman_deletes_outside_the_store_for_dot_dot_ids_and_we_do_not(
    base: Base, tmp_path: Path
) -> None:
    """An image ID and a layer ID ``../../victim`` (and ``../../victim2``) in the metadata:
    ``podman rmi -a -f`` removes ``<root>/../victim`` and ``<root>/../victim2`` - outside
    the store; ours removes every sound image and leaves both."""
    results = {}
    for who in ("podman", "libimage"):
        directory = tmp_path / who
        store = base.copy(directory / "store")
        victims = _victims(store)
        victim2 = store.root.parent / "victim2"
        victim2.mkdir()
        (victim2 / "keep.txt").write_bytes(b"alive")
        _make_dot_dot_ids(base, store)
        if who == "podman":
            store.run("rmi", "-a", "-f", check=False)
        else:
            assert cli(store, "rmi", "-a", "-f").code == 0
        results[who] = (victims[0].exists(), victim2.exists())
        if who == "libimage":
            _assert_victims_alive([*victims, victim2])
            assert our_view(store) == {}
    assert results["podman"] == (False, False)  # podman deleted both, outside its store
    assert results["libimage"] == (True, True)


def _make_dot_dot_ids(base: Base, store: PodmanStore) -> None:
    """solo's layer becomes ``../../victim``, the dangling image ``../../victim2``."""
    layer = _top_layer(store, base.solo)

    def layers(records: list[dict[str, Any]]) -> None:
        _by_id(records, layer).update(id="../../victim")

    def images(records: list[dict[str, Any]]) -> None:
        _by_id(records, base.solo).update(layer="../../victim")
        _by_id(records, base.dangling).update(id="../../victim2")

    _edit(store.root / "vfs-layers" / "layers.json", layers)
    _edit(store.root / "vfs-images" / "images.json", images)


# -- links in place of files and directories ----------------------------------------------------


def _outside_images_json(store: PodmanStore, outside: Path) -> Path:
    """A valid images.json outside the store naming one image ``localhost/outside:1``."""
    records = store.metadata("images")
    records[0]["names"] = ["localhost/outside:1"]
    target = outside / "images.json"
    target.write_bytes(json.dumps(records[:1]).encode())
    return target


LINKED = {
    "images.json": "vfs-images/images.json",
    "layers.json": "vfs-layers/layers.json",
    "containers.json": "vfs-containers/containers.json",
    "the images directory": "vfs-images",
}


@pytest.mark.parametrize("relative", LINKED.values(), ids=LINKED.keys())
def test_metadata_behind_a_link_is_never_read(base: Base, tmp_path: Path, relative: str) -> None:
    """A metadata file (or its directory) replaced by a link to a copy outside the store
    that names ``localhost/outside:1``: podman follows it; we read nothing through it -
    every command exits 125 naming the link - and write nothing."""
    store = base.copy(tmp_path / "store")
    canaries = Canaries(tmp_path)
    outside = canaries.directory
    _outside_images_json(store, outside)
    link = store.root / relative
    real = outside / ("moved-" + link.name)
    shutil.move(link, real)
    if relative == "vfs-images/images.json":
        link.symlink_to(outside / "images.json")
    else:
        link.symlink_to(real)
    if relative.endswith("images.json"):
        assert "localhost/outside:1" in str(podman_view(store.copy_to(tmp_path / "podman")))
    state = store_bytes(store)
    outside_state = store_bytes(PodmanStore(root=outside, runroot=outside))
    for command in (["images"], ["exists", "outside:1"], ["rmi", "aa:1"]):
        result = cli(store, *command)
        result.assert_clean_failure(str(link))
        assert "outside:1" not in result.out
    assert store_bytes(store) == state
    assert store_bytes(PodmanStore(root=outside, runroot=outside)) == outside_state
    canaries.assert_alive()


def test_big_data_behind_a_link_is_never_read(base: Base, tmp_path: Path) -> None:
    """solo's big-data directory replaced by a link to a copy outside the store whose
    config carries a label: we list solo as damaged (its big data is not read through
    the link, so the label never shows); removing it is refused naming the link."""
    store = base.copy(tmp_path / "store")
    canaries = Canaries(tmp_path)
    image_dir = store.root / "vfs-images" / base.solo
    outside = canaries.directory / "solo-big-data"
    shutil.copytree(image_dir, outside)
    config = next(p for p in outside.iterdir() if p.name.startswith("=c2hh"))
    document = json.loads(config.read_bytes())
    document.setdefault("config", {})["Labels"] = {"read-through": "a-link"}
    config.write_bytes(json.dumps(document).encode())
    shutil.rmtree(image_dir)
    image_dir.symlink_to(outside)
    before = store_bytes(PodmanStore(root=outside, runroot=outside))
    listing = cli(store, "images", "--format", "json")
    assert listing.code == 0, listing
    assert "read-through" not in listing.out
    assert any(base.solo in line for line in listing.err.splitlines())
    # LK-9: an image whose big data cannot be read (not merely missing) is refused,
    # naming the link; the link and its target stay.
    state = store_bytes(store)
    cli(store, "rmi", "solo:1").assert_clean_failure(str(image_dir), "symbolic link")
    assert store_bytes(store) == state
    assert store_bytes(PodmanStore(root=outside, runroot=outside)) == before
    canaries.assert_alive()


def _slash_key() -> str:
    """A key whose base64 file name contains ``/`` (SF-B-2: an unreadable item)."""
    for first in range(32, 127):
        key = chr(first) + "??"
        if "/" in base64.b64encode(key.encode()).decode():
            return key
    raise AssertionError("no such key")


def test_big_data_keys_never_name_a_path_outside_the_image(base: Base, tmp_path: Path) -> None:
    """SF-B-2, decision 7: keys that would name ``..``, ``.``, a subdirectory (a base64
    name with ``/``) or nothing are unreadable items; keys with separators are encoded,
    so they name a file inside the image's directory. A file planted where a key would
    lead if it were used as a path is never read."""
    store = base.copy(tmp_path / "store")
    images_dir = store.root / "vfs-images"
    (images_dir / "manifest").write_bytes(b"planted one level up")
    (store.root / "manifest").write_bytes(b"planted two levels up")
    snapshot = read_snapshot(store.options()).snapshot
    solo = next(image for image in snapshot.images if image.id == base.solo)
    content = snapshot.content
    for key in ("", ".", "..", _slash_key(), "../manifest", "../../manifest", "/etc/hostname"):
        value = content.big_data(solo, key)
        assert not isinstance(value, bytes) or not value.startswith(b"planted"), key
        if key in {"", ".", "..", _slash_key()}:
            assert isinstance(value, Unreadable), key
            assert not value.missing, key
    assert isinstance(content.big_data(solo, "manifest"), bytes)


def test_a_hostile_intent_file_is_never_followed(base: Base, tmp_path: Path) -> None:
    """Our intent file replaced by a link to an intent outside the store naming sound
    images: a write operation refuses naming it (nothing recovered through it); garbage
    in its place is ignored with a warning and the removal goes on."""
    store = base.copy(tmp_path / "store")
    intent = store.root / "vfs-layers" / "libimage-removal-intent.json"
    outside = tmp_path / "intent.json"
    outside.write_text(json.dumps({"version": 1, "containers": [], "images": [base.aa]}))
    intent.symlink_to(outside)
    state = store_bytes(store)
    cli(store, "rmi", "solo:1").assert_clean_failure(str(intent), "symbolic link")
    assert store_bytes(store) == state
    intent.unlink()
    intent.write_bytes(b"\0garbage")
    result = cli(store, "rmi", "solo:1")
    assert result.code == 0, result
    assert any(str(intent) in line for line in result.err.splitlines())
    assert base.aa in our_view(store)
    assert leftovers(store) == []


# -- links swapped in while we work --------------------------------------------------------------


def test_directories_swapped_for_links_during_a_removal(base: Base, tmp_path: Path) -> None:
    """While ``rmi -a -f`` runs in another process, a thread keeps swapping layer and
    big-data directories for links to look-alike directories outside the store (and
    back). Whatever the interleaving, nothing outside is deleted; the removal ends with
    exit 0 or one clean error (no traceback); run again once the swapping stops, it
    finishes."""
    store = base.copy(tmp_path / "store")
    canaries = Canaries(tmp_path)
    swapped: list[Path] = []
    for image_id in (base.solo, base.aa, base.c):
        swapped.append(store.root / "vfs-images" / image_id)
        swapped.append(store.root / "vfs" / "dir" / _top_layer(store, image_id))
    decoys = []
    for index, directory in enumerate(swapped):
        decoy = canaries.directory / f"decoy-{index}"
        shutil.copytree(directory, decoy, symlinks=True)
        decoys.append(decoy)
    decoy_state = store_bytes(PodmanStore(root=canaries.directory, runroot=canaries.directory))
    stop = threading.Event()
    swaps = {"count": 0}

    def swap() -> None:
        while not stop.is_set():
            for directory, decoy in zip(swapped, decoys, strict=True):
                aside = directory.with_name(directory.name + ".aside")
                try:
                    directory.rename(aside)
                except FileNotFoundError:
                    continue  # already removed by the removal
                directory.symlink_to(decoy)
                swaps["count"] += 1
                # The removal may have unlinked the link itself (never its target):
                # either way the real directory goes back for the next round.
                directory.unlink(missing_ok=True)
                aside.rename(directory)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        completed = subprocess.run(
            libimage_argv(store, "rmi", "-a", "-f"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop.set()
        swapper.join(120)
    assert swaps["count"] > 0
    assert "Traceback" not in completed.stderr
    assert completed.returncode in {0, 125}, completed.stderr
    if completed.returncode == 125:
        Result(completed.returncode, completed.stdout, completed.stderr).assert_clean_failure()
    assert store_bytes(PodmanStore(root=canaries.directory, runroot=canaries.directory)) == (
        decoy_state
    )
    canaries.assert_alive()
    for leftover in store.root.rglob("*.aside"):
        leftover.rename(leftover.with_name(leftover.name.removesuffix(".aside")))
    again = cli(store, "rmi", "-a", "-f")
    assert again.code == 0, again
    assert our_view(store) == {}
    assert leftovers(store) == []


# -- hard links ----------------------------------------------------------------------------------


def test_hard_links_to_outside_files_keep_their_bytes(base: Base, tmp_path: Path) -> None:
    """A file of a layer directory and images.json itself hard-linked to files outside
    the store: the removal unlinks and replaces names (SF-A), so the outside files keep
    their bytes."""
    store = base.copy(tmp_path / "store")
    outside = tmp_path / "outside"
    outside.mkdir()
    layer_dir = store.root / "vfs" / "dir" / _top_layer(store, base.solo)
    inside = next(p for p in layer_dir.rglob("*") if p.is_file())
    linked_layer_file = outside / "layer-file"
    os.link(inside, linked_layer_file)
    linked_images = outside / "images.json"
    os.link(store.root / "vfs-images" / "images.json", linked_images)
    before = {p: p.read_bytes() for p in (linked_layer_file, linked_images)}
    assert cli(store, "rmi", "solo:1", "aa:1").code == 0
    assert not layer_dir.exists()
    assert {p: p.read_bytes() for p in before} == before
    assert base.solo not in podman_view(store)


# -- names: control characters, look-alikes, extreme lengths -------------------------------------

HOSTILE_NAMES = [
    "localhost/esc\x1b[31mred:1",
    "localhost/new\nline:1",
    "localhost/csi\x9b2J:1",
    "localhost/del\x7f:1",
    "localhost/bidi\u202egpj:1",
    "localhost/\u0455olo:1",  # Cyrillic dze, looks like "solo"
    "localhost/zero\u200bwidth:1",
    "localhost/" + "a" * 300_000 + ":1",
    "localhost/" + "a/" * 100_000 + "b:1",
]


def test_hostile_names_are_escaped_and_never_mistaken(base: Base, tmp_path: Path) -> None:
    """Decision 18: stored names that do not parse are warned about (escaped) and skipped
    for matching; a look-alike never matches the real name; every line we print escapes
    control characters (the JSON document escapes them as JSON); extreme lengths cost no
    more than a normal read."""
    store = base.copy(tmp_path)
    _edit(
        store.root / "vfs-images" / "images.json",
        lambda records: _by_id(records, base.aa).update(names=["localhost/aa:1", *HOSTILE_NAMES]),
    )
    outputs = {
        "images": cli(store, "images", "-a"),
        "images json": cli(store, "images", "-a", "--format", "json"),
        "lookup": cli(store, "lookup", "--explain", "aa:1"),
        "lookup look-alike": cli(store, "lookup", "localhost/\u0455olo:1"),
        "lookup escape": cli(store, "lookup", "localhost/esc\x1b[31mred:1"),
        "lookup long": cli(store, "lookup", "localhost/" + "a/" * 60_000 + "b"),
    }
    for name, result in outputs.items():
        assert "Traceback" not in result.err, name
        assert not RAW_CONTROL.search(result.out + result.err), (name, result)
    assert outputs["images"].code == 0
    warnings = outputs["images"].err
    assert "esc\\u001b[31mred" in warnings or "esc\\x1b[31mred" in warnings
    document = json.loads(outputs["images json"].out)
    listed = next(entry for entry in document if entry["Id"] == base.aa)
    assert set(HOSTILE_NAMES) <= set(listed["Names"])  # the data itself is kept exactly
    assert outputs["lookup look-alike"].code != 0
    assert base.solo not in outputs["lookup look-alike"].out
    # The look-alike belongs to aa; removing solo:1 removes solo, nothing of aa.
    removed = cli(store, "rmi", "solo:1")
    assert removed.code == 0, removed
    assert set(HOSTILE_NAMES) <= set(_by_id(store.metadata("images"), base.aa)["names"])
    # Removing aa by ID untags every name: each printed escaped.
    everything = cli(store, "rmi", "-f", base.aa)
    assert everything.code == 0, everything
    assert not RAW_CONTROL.search(everything.out + everything.err)
    assert everything.out.count("Untagged: ") == 1 + len(HOSTILE_NAMES)


# -- hostile registries.conf aliases -------------------------------------------------------------

ALIASES: dict[str, tuple[str, str | None]] = {
    # the [aliases] table, and which image ``lookup solo:1`` finds (None: "not known")
    "control characters in a key": ('"so\\u001b[2Jlo" = "localhost/solo"\n', None),
    "control characters in a value": ('"solo" = "localhost/so\\u001b[2Jlo"\n', None),
    "a path as a value": ('"solo" = "../../etc/passwd"\n', None),
    "a transport as a value": ('"solo" = "containers-storage:[vfs@/tmp]localhost/x"\n', None),
    "a digest as a value": ('"solo" = "localhost/solo@sha256:' + "0" * 64 + '"\n', None),
    "a huge value": ('"solo" = "localhost/' + "a" * 100_000 + '"\n', None),
    "a huge table": ("".join(f'"n{i}" = "localhost/n{i}"\n' for i in range(5_000)), "solo"),
    "an alias to another image": ('"solo" = "localhost/aa"\n', "aa"),
}


def _registries_conf(directory: Path, aliases: str) -> Path:
    conf = directory / "registries.conf"
    conf.write_text(f'unqualified-search-registries = ["localhost"]\n[aliases]\n{aliases}')
    return conf


@pytest.mark.parametrize(("aliases", "finds"), ALIASES.values(), ids=ALIASES.keys())
def test_hostile_registries_aliases(
    base: Base, tmp_path: Path, aliases: str, finds: str | None
) -> None:
    """SN-4, SN-5, LK-7: an alias table that does not validate makes short names "image
    not known" (exit 1; ``--explain`` names the file), never a traceback, every printed
    character escaped; a valid one only maps a short name to another name, looked up in
    this store like any other."""
    store = base.copy(tmp_path / "store")
    conf = _registries_conf(tmp_path, aliases)
    state = store_bytes(store)
    result = cli(store, "--registries-conf", str(conf), "lookup", "--explain", "solo:1")
    assert store_bytes(store) == state
    assert "Traceback" not in result.err
    assert not RAW_CONTROL.search(result.out + result.err), result
    if finds is None:
        assert result.code == 1, result
        assert str(conf) in result.out + result.err
        # podman 4.3.1 still finds a fully qualified name, and so do we (SN-2).
        podman = subprocess.run(
            podman_argv(store, "image", "inspect", "--format", "{{.Id}}", "localhost/solo:1"),
            env={**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert podman.stdout.strip() == base.solo, podman.stderr
    else:
        assert result.code == 0, result
        assert result.out.strip().splitlines()[-1] == getattr(base, finds)


def test_a_bad_alias_table_does_not_hide_fully_qualified_names(base: Base, tmp_path: Path) -> None:
    """SN-2, LK-7: only short names need the configuration; podman finds this name too."""
    store = base.copy(tmp_path / "store")
    conf = _registries_conf(tmp_path, ALIASES["a path as a value"][0])
    result = cli(store, "--registries-conf", str(conf), "lookup", "localhost/solo:1")
    assert result.code == 0, result
