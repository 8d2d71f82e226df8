"""Reading a real store into a snapshot (SF-I, SF-Y, SF-C, SF-B, SF-RO; decisions 7, 9, 10, 18, 19).

One store is built with podman and buildah per module (several images and names, a
dangling image, a child, a manifest list, a buildah and a podman container, and a
read-only additional store). The snapshot is checked against ``podman images`` and
against the raw JSON files; damaged stores are copies of it, or hand-written files.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.podman import PodmanStore, requires_podman, tree_state

from libimage.adapters.content import StoreContent, big_data_file_name
from libimage.adapters.locks import lock_file
from libimage.adapters.storage_conf import StoreOptions
from libimage.adapters.store import (
    GO_ZERO_TIME_NS,
    OBVIOUSLY_VALID_NAME,
    parse_rfc3339_ns,
    read_snapshot,
)
from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.reference import parse as parse_reference
from libimage.pure.snapshot import (
    Layer,
    LayerID,
    Snapshot,
    StoredImage,
    Unreadable,
    containers_of,
    image_digest,
)

HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Sample:
    """The module's store and the IDs of what was built in it."""

    store: PodmanStore  # the read-write store, viewed with the additional store
    extra: PodmanStore  # the read-only additional store
    base: str
    other: str
    dangling: str
    child: str
    manifest_list: str
    buildah_container: str
    podman_container: str
    read_only: str


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    directory = tmp_path_factory.mktemp("sample")
    store = PodmanStore.create(directory / "rw")
    base = store.import_image("localhost/base:1", {"base.txt": b"base\n"})
    store.tag(base, "localhost/base:latest", "quay.io/example/base:2")
    other = store.import_image(
        "localhost/other:1", {"other.txt": b"other\n"}, labels={"purpose": "test"}
    )
    dangling = store.import_image(None, {"dangling.txt": b"dangling\n"})
    child = store.child_image(base, "localhost/child:1", {"child.txt": b"child!\n"})
    listed = store.manifest_list("localhost/list:1", [base])
    buildah_container = store.buildah_container(other)
    podman_container = store.podman_container(base, name="pc")
    extra = store.additional_store(directory / "ro")
    read_only = extra.import_image("localhost/ro:1", {"ro.txt": b"read-only\n"})
    return Sample(
        store=store.with_image_stores(extra),
        extra=extra,
        base=base,
        other=other,
        dangling=dangling,
        child=child,
        manifest_list=listed,
        buildah_container=buildah_container,
        podman_container=podman_container,
        read_only=read_only,
    )


def image(snapshot: Snapshot, image_id: str, store_index: int = 0) -> StoredImage:
    matches = [i for i in snapshot.images if i.id == image_id and i.store_index == store_index]
    assert len(matches) == 1, image_id
    return matches[0]


def expected_ns(text: str) -> int:
    """Nanoseconds of an RFC 3339 time, computed independently of the adapter."""
    match = re.fullmatch(
        r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|([+-])(\d\d):(\d\d))", text
    )
    assert match is not None, text
    fields = tuple(int(match[n]) for n in range(1, 7))
    seconds = calendar.timegm((*fields, 0, 0, 0))
    if match[8] != "Z":
        offset = (int(match[10]) * 60 + int(match[11])) * 60
        seconds -= offset if match[9] == "+" else -offset
    return seconds * 10**9 + int((match[7] or "0")[:9].ljust(9, "0"))


# -- against podman ------------------------------------------------------------------------


@requires_podman
def test_images_match_podman(sample: Sample) -> None:
    """IDs, names, digests, read-only, containers, created and history as podman lists them."""
    snapshot = read_snapshot(sample.store.options()).snapshot
    listed = sample.store.run("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.ReadOnly}}")
    podman_pairs = {
        (line.split()[0].removeprefix("sha256:"), line.split()[1] == "true")
        for line in listed.stdout.splitlines()
    }
    assert podman_pairs == {(i.id, i.read_only) for i in snapshot.images}
    # podman 4.3.1 prints one entry per name (all alike) and omits empty keys.
    entries = {entry["Id"]: entry for entry in sample.store.images_json()}
    assert len(snapshot.images) == len(entries) == 6
    for entry in entries.values():
        ours = next(i for i in snapshot.images if i.id == entry["Id"])
        assert list(ours.names) == entry.get("Names", [])
        assert image_digest(ours) == entry["Digest"]
        assert len(containers_of(snapshot, ours.id)) == entry["Containers"]
        assert ours.created // 10**9 == entry["Created"]
        assert list(ours.names_history) == entry.get("History", [])


@requires_podman
def test_built_facts(sample: Sample) -> None:
    """What the test built is what the snapshot holds (names, dangling, containers, store)."""
    result = read_snapshot(sample.store.options())
    snapshot = result.snapshot
    assert list(image(snapshot, sample.base).names) == [
        "localhost/base:1",
        "localhost/base:latest",
        "quay.io/example/base:2",
    ]
    assert list(image(snapshot, sample.dangling).names) == []
    assert image(snapshot, sample.manifest_list).top_layer == ""
    ro = image(snapshot, sample.read_only, store_index=1)
    assert ro.read_only
    assert list(ro.names) == ["localhost/ro:1"]
    assert not image(snapshot, sample.base).read_only
    assert [c.id for c in containers_of(snapshot, sample.other)] == [sample.buildah_container]
    assert [c.id for c in containers_of(snapshot, sample.base)] == [sample.podman_container]
    assert {layer.store_index for layer in snapshot.layers} == {0, 1}
    assert result.warnings == ()
    assert not snapshot.quarantine


@requires_podman
def test_records_match_the_json_files(sample: Sample) -> None:
    """SF-I, SF-Y, SF-C: every field the snapshot keeps equals the stored one, in stored order."""
    snapshot = read_snapshot(sample.store.options()).snapshot
    raw_images = sample.store.metadata("images") + [
        {**record, "_store": 1} for record in sample.extra.metadata("images")
    ]
    assert [i.id for i in snapshot.images] == [r["id"] for r in raw_images]
    for ours, raw in zip(snapshot.images, raw_images, strict=True):
        assert ours.store_index == raw.get("_store", 0)
        assert ours.digest == raw.get("digest", "")
        assert list(ours.names) == raw.get("names", [])
        assert list(ours.names_history) == raw.get("names-history", [])
        assert ours.top_layer == raw.get("layer", "")
        assert ours.metadata == raw.get("metadata", "")
        assert list(ours.big_data_names) == raw.get("big-data-names", [])
        assert dict(ours.big_data_sizes) == raw.get("big-data-sizes", {})
        assert dict(ours.big_data_digests) == raw.get("big-data-digests", {})
        assert ours.created == expected_ns(raw["created"])
    raw_layers = sample.store.metadata("layers") + sample.extra.metadata("layers")
    assert [layer.id for layer in snapshot.layers] == [r["id"] for r in raw_layers]
    for layer, raw in zip(snapshot.layers, raw_layers, strict=True):
        assert layer.parent == raw.get("parent", "")
        assert list(layer.names) == raw.get("names", [])
        assert layer.diff_digest == raw.get("diff-digest", "")
        assert layer.diff_size == raw.get("diff-size")
        assert layer.compressed_size == raw.get("compressed-size")
        assert layer.incomplete == (raw.get("flags", {}).get("incomplete") is True)
        assert layer.created == expected_ns(raw["created"])
    raw_containers = sample.store.metadata("containers")
    assert [c.id for c in snapshot.containers] == [r["id"] for r in raw_containers]
    for container, raw in zip(snapshot.containers, raw_containers, strict=True):
        assert container.image_id == raw["image"]
        assert container.layer == raw["layer"]
        assert list(container.names) == raw.get("names", [])
        assert container.created == expected_ns(raw["created"])


@requires_podman
def test_podman_managed_containers(sample: Sample, tmp_path: Path) -> None:
    """Decision 19: podman's database knows ``podman create`` containers, not buildah's."""
    snapshot = read_snapshot(sample.store.options()).snapshot
    managed = {c.id: c.podman_managed for c in snapshot.containers}
    assert managed == {sample.buildah_container: False, sample.podman_container: True}
    copy = sample.store.copy_to(tmp_path / "copy")
    assert not any(c.podman_managed for c in read_snapshot(copy.options()).snapshot.containers)


@requires_podman
def test_unparseable_podman_database_falls_back_to_a_byte_search(
    sample: Sample, tmp_path: Path
) -> None:
    """Decision 19: a database we cannot walk errs towards "managed", with a warning."""
    copy = sample.store.copy_to(tmp_path / "copy")
    database = copy.root / "libpod" / "bolt_state.db"
    database.parent.mkdir()
    data = bytearray((sample.store.root / "libpod" / "bolt_state.db").read_bytes())
    page_size = int.from_bytes(data[24:28], "little")
    for page in (0, 1):  # break both meta pages' checksums
        data[page * page_size + 16] ^= 0xFF
    database.write_bytes(bytes(data))
    result = read_snapshot(copy.options())
    managed = {str(c.id): c.podman_managed for c in result.snapshot.containers}
    assert managed[sample.podman_container]
    assert any(str(database) in warning for warning in result.warnings)


@requires_podman
def test_tokens_are_the_lock_files_first_64_bytes(sample: Sample) -> None:
    """SF-K-4, SF-K-5: the tokens podman wrote are what the read reports."""
    result = read_snapshot(sample.store.options())
    paths = result.paths
    assert result.tokens.images == Path(paths.images_lock).read_bytes()[:64]
    assert result.tokens.layers == Path(paths.layers_lock).read_bytes()[:64]
    assert result.tokens.containers == Path(paths.containers_lock).read_bytes()[:64]
    extra = paths.additional[0]
    assert result.tokens.additional == (
        (Path(extra.layers_lock).read_bytes()[:64], Path(extra.images_lock).read_bytes()[:64]),
    )
    assert result.tokens.layers_mtime_ns == Path(paths.layers_json).stat().st_mtime_ns
    # SF-K-1: the additional store's locks are read-only lock objects.
    assert lock_file(extra.images_lock).read_only
    assert not lock_file(paths.images_lock).read_only


@requires_podman
def test_two_reads_are_equal_and_change_nothing(sample: Sample) -> None:
    """A snapshot is a value; reading creates, changes and removes nothing."""
    roots = (sample.store.root, sample.store.runroot, sample.extra.root, sample.extra.runroot)
    before = tree_state(*roots)
    first = read_snapshot(sample.store.options())
    second = read_snapshot(sample.store.options())
    for image_record in first.snapshot.images:  # lazy big data reads change nothing either
        for key in image_record.big_data_names:
            first.snapshot.content.big_data(image_record, key)
    for layer in first.snapshot.layers:
        first.snapshot.content.layer_diff_size(layer)
    assert tree_state(*roots) == before
    assert first.snapshot == second.snapshot
    assert first.tokens == second.tokens


# -- big data (SF-B, decision 7) -----------------------------------------------------------


@requires_podman
def test_big_data_is_read_from_the_image_store(sample: Sample) -> None:
    """SF-B-1..3: every item's bytes have its recorded size and digest, in both stores."""
    snapshot = read_snapshot(sample.store.options()).snapshot
    for image_record in snapshot.images:
        for key in image_record.big_data_names:
            data = snapshot.content.big_data(image_record, key)
            assert isinstance(data, bytes), (image_record.id, key, data)
            assert len(data) == image_record.big_data_sizes[key]
            if key != "manifest" or image_record.id != sample.manifest_list:
                assert (
                    "sha256:" + hashlib.sha256(data).hexdigest()
                    == (image_record.big_data_digests[key])
                )
    config = snapshot.content.big_data(image(snapshot, sample.other), f"sha256:{sample.other}")
    assert isinstance(config, bytes)
    assert json.loads(config)["config"]["Labels"] == {"purpose": "test"}


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("manifest", "manifest"),
        ("instances.json", "instances.json"),
        ("sha256:ab", "=" + base64.b64encode(b"sha256:ab").decode()),
        ("manifest-sha256:5911", "=" + base64.b64encode(b"manifest-sha256:5911").decode()),
        ("Manifest", "=" + base64.b64encode(b"Manifest").decode()),
    ],
    ids=["plain", "plain-with-dot", "colon", "dash", "upper-case"],
)
def test_big_data_file_names(key: str, name: str) -> None:
    """SF-B-2: only ``.``, ``0-9`` and ``a-z`` keep the key; else ``=`` + standard base64."""
    assert big_data_file_name(key) == name


@requires_podman
def test_missing_and_unsafe_big_data_are_unreadable_items(sample: Sample, tmp_path: Path) -> None:
    """Decision 7: a missing file is Unreadable(missing) for that item only; links out of
    the store, odd names and non-files are Unreadable(not missing)."""
    copy = sample.store.copy_to(tmp_path / "copy")
    images_dir = copy.root / "vfs-images"
    (images_dir / sample.base / "manifest").unlink()
    (images_dir / sample.other / "manifest").unlink()
    (images_dir / sample.other / "manifest").symlink_to("/etc/hostname")
    shutil.rmtree(images_dir / sample.child)
    (images_dir / sample.child).symlink_to(images_dir / sample.base)
    snapshot = read_snapshot(copy.options()).snapshot
    content = snapshot.content

    missing = content.big_data(image(snapshot, sample.base), "manifest")
    assert isinstance(missing, Unreadable)
    assert missing.missing
    assert isinstance(
        content.big_data(image(snapshot, sample.base), f"sha256:{sample.base}"), bytes
    )
    assert isinstance(content.big_data(image(snapshot, sample.dangling), "manifest"), bytes)

    for unsafe in (
        content.big_data(image(snapshot, sample.other), "manifest"),  # symlink file
        content.big_data(image(snapshot, sample.child), "manifest"),  # symlinked directory
        content.big_data(image(snapshot, sample.base), ""),
        content.big_data(image(snapshot, sample.base), ".."),
        content.big_data(image(snapshot, sample.base), slash_key()),
    ):
        assert isinstance(unsafe, Unreadable)
        assert not unsafe.missing

    fifo_dir = images_dir / sample.dangling
    os.mkfifo(fifo_dir / "fifo")
    fifo = content.big_data(image(snapshot, sample.dangling), "fifo")
    assert isinstance(fifo, Unreadable)
    assert not fifo.missing
    absent = content.big_data(image(snapshot, sample.dangling), "absent")
    assert isinstance(absent, Unreadable)
    assert absent.missing


def slash_key() -> str:
    """A key whose base64 file name contains ``/`` (SF-B-2: an unreadable item)."""
    for first in range(32, 127):
        for second in range(32, 127):
            key = chr(first) + chr(second) + "?"
            if "/" in base64.b64encode(key.encode()).decode():
                return key
    raise AssertionError("no such key")


# -- layer sizes (IP-13) -------------------------------------------------------------------


@requires_podman
def test_vfs_layer_sizes_count_the_changed_files(sample: Sample) -> None:
    """IP-13 (vfs): a layer's measured size is the size of the files it changed."""
    snapshot = read_snapshot(sample.store.options()).snapshot
    base_layer = next(
        layer for layer in snapshot.layers if layer.id == image(snapshot, sample.base).top_layer
    )
    child_layer = next(
        layer for layer in snapshot.layers if layer.id == image(snapshot, sample.child).top_layer
    )
    assert snapshot.content.layer_diff_size(base_layer) == len(b"base\n")
    assert child_layer.parent == base_layer.id
    assert snapshot.content.layer_diff_size(child_layer) == len(b"child!\n")


def make_layer(layer_id: str, parent: str = "") -> Layer:
    return Layer(id=LayerID(layer_id), parent=parent)


def test_vfs_changes_against_the_parent(tmp_path: Path) -> None:
    """IP-13 (vfs, ChangesDirs + ChangesSize): added and modified non-directories count,
    unchanged ones and directories do not, a hard-linked inode counts once, and links
    are measured, never followed."""
    parent_id, child_id = "1" * 64, "2" * 64
    parent = tmp_path / "vfs" / "dir" / parent_id
    child = tmp_path / "vfs" / "dir" / child_id
    (parent / "sub").mkdir(parents=True)
    (parent / "same.txt").write_bytes(b"12345")
    (parent / "changed.txt").write_bytes(b"12")
    (parent / "sub" / "kept").write_bytes(b"k" * 100)
    shutil.copytree(parent, child, symlinks=True)  # copy2 keeps the times
    (child / "changed.txt").write_bytes(b"1234")  # 4 bytes, modified
    (child / "new.txt").write_bytes(b"n" * 10)  # 10 bytes, added
    os.link(child / "new.txt", child / "sub" / "hardlink")  # same inode: counted once
    (child / "newdir").mkdir()
    (child / "newdir" / "inner").write_bytes(b"i" * 3)  # 3 bytes, inside an added dir
    (child / "link").symlink_to("/" + "x" * 20)  # a link of 21 bytes, not followed
    content = StoreContent(driver="vfs", image_dirs=(), layer_homes=(str(tmp_path),))
    assert content.layer_diff_size(make_layer(parent_id)) == 5 + 2 + 100
    assert content.layer_diff_size(make_layer(child_id, parent_id)) == 4 + 10 + 3 + 21


def test_overlay_diff_directory_size(tmp_path: Path) -> None:
    """IP-13 (overlay, directory.Size): every non-directory under diff/, each inode once."""
    layer_id = "3" * 64
    diff = tmp_path / "overlay" / layer_id / "diff"
    (diff / "d").mkdir(parents=True)
    (diff / "a").write_bytes(b"a" * 7)
    os.link(diff / "a", diff / "d" / "a-again")
    (diff / "d" / "b").write_bytes(b"b" * 11)
    (diff / "l").symlink_to("abc")
    content = StoreContent(driver="overlay", image_dirs=(), layer_homes=(str(tmp_path),))
    assert content.layer_diff_size(make_layer(layer_id)) == 7 + 11 + 3
    missing = content.layer_diff_size(make_layer("4" * 64))
    assert isinstance(missing, Unreadable)
    assert missing.missing


# -- damaged stores ------------------------------------------------------------------------


def hand_made_store(
    tmp_path: Path,
    images: str | None = None,
    layers: str | None = None,
    containers: str | None = None,
) -> StoreOptions:
    """A vfs store of raw JSON texts (None: no file), without lock files."""
    root = tmp_path / "root"
    for kind, text in (("images", images), ("layers", layers), ("containers", containers)):
        directory = root / f"vfs-{kind}"
        directory.mkdir(parents=True, exist_ok=True)
        if text is not None:
            (directory / f"{kind}.json").write_text(text)
    return StoreOptions(graph_root=str(root), run_root=str(tmp_path / "run"), driver="vfs")


A, B, C = "a" * 64, "b" * 64, "c" * 64

CORRUPT_IMAGES = {
    "truncated": '[{"id":"' + A,
    "object": '{"id":"' + A + '"}',
    "array-of-numbers": "[1]",
    "null-record": "[null]",
    "id-number": '[{"id":5}]',
    "names-string": '[{"id":"' + A + '","names":"localhost/x:1"}]',
    "names-of-numbers": '[{"id":"' + A + '","names":[1]}]',
    "created-number": '[{"id":"' + A + '","created":5}]',
    "created-text": '[{"id":"' + A + '","created":"yesterday"}]',
    "size-float": '[{"id":"' + A + '","big-data-sizes":{"manifest":1.5}}]',
    "nan": '[{"id":"' + A + '","big-data-sizes":{"manifest":NaN}}]',
    "flags-array": '[{"id":"' + A + '","flags":[]}]',
    "invalid-digest": '[{"id":"' + A + '","digest":"sha256:abc"}]',
    "invalid-manifest-digest": '[{"id":"' + A + '","big-data-digests":{"manifest":"md5:x"}}]',
    "whitespace-only": "  \n",
    "trailing-garbage": "[]]",
    "deeply-nested": "[" * 200_000 + "]" * 200_000,
}


@pytest.mark.parametrize("text", CORRUPT_IMAGES.values(), ids=CORRUPT_IMAGES.keys())
def test_corrupt_images_json_is_an_error_naming_the_file(tmp_path: Path, text: str) -> None:
    """Decision 9, SF-I-21, SF-I-23: never "no images"; the error names images.json."""
    options = hand_made_store(tmp_path, images=text)
    with pytest.raises(LibimageError) as raised:
        read_snapshot(options)
    assert raised.value.kind is ErrorKind.STORE_CORRUPT
    assert str(tmp_path / "root" / "vfs-images" / "images.json") in str(raised.value)
    assert "\n" not in str(raised.value)


CORRUPT_OTHERS = {
    "layers-truncated": ("layers", '[{"id":"' + A + '","parent":'),
    "layers-diff-size-string": ("layers", '[{"id":"' + A + '","diff-size":"10"}]'),
    "layers-uidset-negative": ("layers", '[{"id":"' + A + '","uidset":[-1]}]'),
    "layers-uidmap-string": ("layers", '[{"id":"' + A + '","uidmap":"0:0:1"}]'),
    "containers-truncated": ("containers", '[{"id":"' + A + '"'),
    "containers-image-number": ("containers", '[{"id":"' + A + '","image":1}]'),
}


@pytest.mark.parametrize(("kind", "text"), CORRUPT_OTHERS.values(), ids=CORRUPT_OTHERS.keys())
def test_corrupt_layers_or_containers_json_names_the_file(
    tmp_path: Path, kind: str, text: str
) -> None:
    """Decision 9, SF-Y-21: the same for layers.json and containers.json."""
    options = hand_made_store(tmp_path, **{kind: text})
    with pytest.raises(LibimageError) as raised:
        read_snapshot(options)
    assert raised.value.kind is ErrorKind.STORE_CORRUPT
    assert str(tmp_path / "root" / f"vfs-{kind}" / f"{kind}.json") in str(raised.value)


EMPTY_FILES = {"missing": None, "empty": "", "empty-array": "[]", "null": "null"}


@pytest.mark.parametrize("text", EMPTY_FILES.values(), ids=EMPTY_FILES.keys())
def test_missing_or_empty_files_have_no_records(tmp_path: Path, text: str | None) -> None:
    """SF-I-20: a missing or empty file (and Go's ``null``) means no records."""
    result = read_snapshot(hand_made_store(tmp_path, images=text, layers=text, containers=text))
    assert result.snapshot == Snapshot()
    assert result.warnings == ()
    assert (result.tokens.images, result.tokens.layers) == (None, None)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_unreadable_metadata_file_is_an_error(tmp_path: Path, kind: str) -> None:
    """A metadata file that is not a regular file is STORE_UNREADABLE, never "no records"
    (and a FIFO in its place does not hang the read)."""
    options = hand_made_store(tmp_path)
    path = tmp_path / "root" / "vfs-images" / "images.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(LibimageError) as raised:
        read_snapshot(options)
    assert raised.value.kind is ErrorKind.STORE_UNREADABLE
    assert str(path) in str(raised.value)


def test_missing_store_is_an_error(tmp_path: Path) -> None:
    """A reader never creates the graph root; its absence is STORE_MISSING naming it."""
    options = StoreOptions(graph_root=str(tmp_path / "nowhere"), run_root=str(tmp_path), driver="")
    with pytest.raises(LibimageError) as raised:
        read_snapshot(options)
    assert raised.value.kind is ErrorKind.STORE_MISSING
    assert str(tmp_path / "nowhere") in str(raised.value)
    assert not (tmp_path / "nowhere").exists()


def test_go_field_matching_and_null_values(tmp_path: Path) -> None:
    """Keys match as Go's encoding/json matches them (case-insensitively, later wins);
    ``null`` is the zero value; an absent ``created`` is Go's zero time; unknown keys pass."""
    record = (
        '{"ID":"' + A + '","Names":["localhost/x:1"],"names-history":null,'
        '"LAYER":"' + B + '","big-data-sizes":{"manifest":null},"future-key":{"x":1}}'
    )
    result = read_snapshot(hand_made_store(tmp_path, images=f"[{record}]"))
    (only,) = result.snapshot.images
    assert only.id == A
    assert list(only.names) == ["localhost/x:1"]
    assert only.top_layer == B
    assert dict(only.big_data_sizes) == {"manifest": 0}
    assert only.created == GO_ZERO_TIME_NS


@st.composite
def plain_stored_names(draw: st.DrawFn) -> str:
    """Names in the shape podman stores, many near the grammar's edges."""
    alnum = st.text(alphabet="abz019", min_size=1, max_size=3)

    def component() -> str:
        parts = draw(st.lists(alnum, min_size=1, max_size=3))
        separators = draw(
            st.lists(st.sampled_from("._-"), min_size=len(parts), max_size=len(parts))
        )
        return "".join(p + s for p, s in zip(parts, separators, strict=True))[:-1]

    name = "/".join(component() for _ in range(draw(st.integers(1, 4))))
    if draw(st.booleans()):
        name += ":" + draw(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,5}", fullmatch=True))
    if draw(st.booleans()):
        name += "@sha256:" + draw(st.text(alphabet=HEX, min_size=64, max_size=64))
    return name


@pytest.mark.property
@given(name=plain_stored_names())
def test_fast_name_check_accepts_only_parseable_names(name: str) -> None:
    """Decision 18: the fast path of the stored-name check is a subset of REF-3's grammar."""
    if OBVIOUSLY_VALID_NAME.fullmatch(name) and len(name) <= 255:
        parse_reference(name)  # raises if the subset claim is wrong


def test_bad_ids_are_quarantined_with_warnings(tmp_path: Path) -> None:
    """Decision 10: records whose ID is not 64 lowercase hex are set aside, each with a
    warning naming the file and the ID; the sound records are read as usual."""
    bad_image, bad_layer, bad_container = "../../etc", "A" * 64, "c" * 63
    options = hand_made_store(
        tmp_path,
        images=json.dumps(
            [
                {"id": A, "layer": B, "names": ["localhost/good:1"]},
                {"id": bad_image, "layer": C, "mapped-layers": [B]},
            ]
        ),
        layers=json.dumps([{"id": B}, {"id": bad_layer, "parent": B}]),
        containers=json.dumps(
            [{"id": bad_container, "image": A, "layer": C}, {"id": C, "image": A, "layer": B}]
        ),
    )
    result = read_snapshot(options)
    snapshot = result.snapshot
    assert [i.id for i in snapshot.images] == [A]
    assert [layer.id for layer in snapshot.layers] == [B]
    assert [c.id for c in snapshot.containers] == [C]
    quarantined = {(q.kind, q.id): q for q in snapshot.quarantine}
    assert set(quarantined) == {
        ("image", bad_image),
        ("layer", bad_layer),
        ("container", bad_container),
    }
    assert quarantined["image", bad_image].layer == C
    assert list(quarantined["image", bad_image].mapped_layers) == [B]
    assert quarantined["layer", bad_layer].parent == B
    assert quarantined["container", bad_container].image_id == A
    assert quarantined["container", bad_container].layer == C
    root = tmp_path / "root"
    for kind, bad_id in (
        ("images", bad_image),
        ("layers", bad_layer),
        ("containers", bad_container),
    ):
        path = str(root / f"vfs-{kind}" / f"{kind}.json")
        assert quarantined[kind.removesuffix("s"), bad_id].file == path
        assert any(path in w and bad_id in w for w in result.warnings), (kind, result.warnings)
    assert all("\n" not in warning for warning in result.warnings)


def test_unparseable_stored_names_warn_and_stay(tmp_path: Path) -> None:
    """Decision 18: a stored name that is not a reference is kept, with a warning naming
    the image."""
    names = ["localhost/Upper:1", "localhost/fine:1"]
    result = read_snapshot(
        hand_made_store(tmp_path, images=json.dumps([{"id": A, "names": names}]))
    )
    assert list(result.snapshot.images[0].names) == names
    (warning,) = result.warnings
    assert A in warning
    assert "localhost/Upper:1" in warning


@requires_podman
def test_duplicate_names_later_record_wins_as_in_podman(sample: Sample, tmp_path: Path) -> None:
    """SF-I-22: a name claimed by two records stays with the later one, in memory only;
    podman (which rewrites the file) then shows the same names."""
    copy = sample.store.copy_to(tmp_path / "copy")
    path = copy.root / "vfs-images" / "images.json"
    records: list[dict[str, Any]] = json.loads(path.read_bytes())
    records[0]["names"] = ["localhost/dup:1"]
    records[1]["names"] = ["localhost/dup:1", "localhost/bb:1"]
    edited = json.dumps(records, separators=(",", ":")).encode()
    path.write_bytes(edited)
    result = read_snapshot(copy.options())
    assert path.read_bytes() == edited  # nothing written back
    ours = {(i.id, i.store_index): list(i.names) for i in result.snapshot.images}
    assert ours[records[0]["id"], 0] == []
    assert ours[records[1]["id"], 0] == ["localhost/dup:1", "localhost/bb:1"]
    assert any("localhost/dup:1" in w and str(path) in w for w in result.warnings)
    podman = {(e["Id"], tuple(e.get("Names", ()))) for e in copy.images_json()}
    assert {(image_id, tuple(names)) for (image_id, _), names in ours.items()} == podman


@requires_podman
def test_store_without_lock_files_is_read_without_creating_them(
    sample: Sample, tmp_path: Path
) -> None:
    """Decision 11: absent lock files are never created; the read goes without them."""
    copy = sample.store.copy_to(tmp_path / "copy")
    for lock in [*copy.root.rglob("*.lock"), *copy.runroot.rglob("*.lock")]:
        lock.unlink()
    before = tree_state(copy.root, copy.runroot)
    result = read_snapshot(copy.options())
    assert tree_state(copy.root, copy.runroot) == before
    assert (result.tokens.layers, result.tokens.images, result.tokens.containers) == (None,) * 3
    assert len(result.snapshot.images) == 6


# -- times (SF-I-11) -----------------------------------------------------------------------

TIMES: dict[str, tuple[str, int | None]] = {
    "epoch": ("1970-01-01T00:00:00Z", 0),
    "go-zero-time": ("0001-01-01T00:00:00Z", -62_135_596_800 * 10**9),
    "year-zero": ("0000-01-01T00:00:00Z", -62_167_219_200 * 10**9),
    "one-nanosecond": ("1970-01-01T00:00:00.000000001Z", 1),
    "before-epoch": ("1969-12-31T23:59:59.999999999Z", -1),
    "offset": ("1970-01-01T01:00:00+01:00", 0),
    "negative-offset": ("1969-12-31T23:30:00-00:30", 0),
    "leap-day": ("2000-02-29T00:00:00Z", 951_782_400 * 10**9),
    "digits-beyond-nine-truncated": ("1970-01-01T00:00:00.1234567891Z", 123_456_789),
    "observed": ("2026-11-29T15:28:31.003337538Z", 1_795_966_111_003_337_538),
    "no-zone": ("1970-01-01T00:00:00", None),
    "lower-case": ("1970-01-01t00:00:00z", None),
    "hour-24": ("1970-01-01T24:00:00Z", None),
    "second-60": ("1970-01-01T00:00:60Z", None),
    "february-30": ("1970-02-30T00:00:00Z", None),
    "not-a-leap-year": ("2001-02-29T00:00:00Z", None),
    "empty-fraction": ("1970-01-01T00:00:00.Z", None),
    "offset-without-colon": ("1970-01-01T00:00:00+0100", None),
    "non-ascii-digits": ("١٩٧٠-01-01T00:00:00Z", None),
}


@pytest.mark.parametrize(("text", "expected"), TIMES.values(), ids=TIMES.keys())
def test_rfc3339_nanoseconds(text: str, expected: int | None) -> None:
    """SF-I-11: exact nanoseconds since the epoch, Go's zero time included."""
    assert parse_rfc3339_ns(text) == expected


# -- additional stores (SF-RO) -------------------------------------------------------------


@requires_podman
def test_missing_additional_store_warns_and_reads_the_rest(sample: Sample, tmp_path: Path) -> None:
    """A configured additional store that does not exist adds no records and is not created."""
    options = sample.store.options()
    missing = tmp_path / "no-such-store"
    widened = StoreOptions(
        graph_root=options.graph_root,
        run_root=options.run_root,
        driver="vfs",
        image_stores=(*options.image_stores, str(missing)),
    )
    result = read_snapshot(widened)
    assert len(result.snapshot.images) == 6
    assert any(str(missing) in warning for warning in result.warnings)
    assert not missing.exists()


def test_unknown_driver_layers_are_unreadable(tmp_path: Path) -> None:
    """IP-13: only vfs and overlay are measured; other drivers give Unreadable."""
    content = StoreContent(driver="btrfs", image_dirs=(), layer_homes=(str(tmp_path),))
    size = content.layer_diff_size(Layer(id=LayerID("5" * 64)))
    assert isinstance(size, Unreadable)
    assert not size.missing


# -- the committed sample store (examples/make-sample-store.sh) ----------------------------

SAMPLE_STORE = Path(__file__).resolve().parents[2] / "examples" / "sample-store"


def test_sample_store_reads_as_built(tmp_path: Path) -> None:
    """The committed sample store holds what its script builds, and reading it changes
    nothing in the repository."""
    before = tree_state(SAMPLE_STORE)
    options = StoreOptions(graph_root=str(SAMPLE_STORE), run_root=str(tmp_path), driver="")
    result = read_snapshot(options)
    assert tree_state(SAMPLE_STORE) == before
    assert result.warnings == ()
    snapshot = result.snapshot
    names = sorted(tuple(i.names) for i in snapshot.images)
    assert names == [
        (),
        ("localhost/alpha-child:1",),
        ("localhost/alpha:1", "localhost/alpha:latest", "quay.io/example/alpha:1"),
        ("localhost/beta:1",),
    ]
    by_name = {i.names[0]: i for i in snapshot.images if i.names}
    alpha, child = by_name["localhost/alpha:1"], by_name["localhost/alpha-child:1"]
    child_layer = next(layer for layer in snapshot.layers if layer.id == child.top_layer)
    assert child_layer.parent == alpha.top_layer
    (container,) = snapshot.containers
    assert container.image_id == by_name["localhost/beta:1"].id
    assert list(container.names) == ["sample-working"]
    assert not container.podman_managed
    assert result.paths.driver == "vfs"


@requires_podman
def test_sample_store_matches_podman(tmp_path: Path) -> None:
    """podman lists the sample store (a copy of it) as the snapshot does."""
    copy = tmp_path / "root"
    shutil.copytree(SAMPLE_STORE, copy, symlinks=True)
    store = PodmanStore(root=copy, runroot=PodmanStore.create(tmp_path / "run").runroot)
    snapshot = read_snapshot(store.options()).snapshot
    entries = {entry["Id"]: entry for entry in store.images_json()}
    assert set(entries) == {i.id for i in snapshot.images}
    for ours in snapshot.images:
        assert list(ours.names) == entries[ours.id].get("Names", [])
        assert image_digest(ours) == entries[ours.id]["Digest"]
        assert len(containers_of(snapshot, ours.id)) == entries[ours.id]["Containers"]
