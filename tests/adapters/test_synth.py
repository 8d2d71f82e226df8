"""The store synthesiser (bench/synth.py) writes stores that podman 4.3.1 reads cleanly.

Expected values come from the synthesiser's summary (what it claims to have written)
and are checked against what podman reports: the image IDs, names and digests
(IP-1, IP-2, IP-8), parents (LT-3, LT-P2), dangling and intermediate images (IP-5,
IP-6), sizes (IP-13), lookups, manifest lists and removal (SF-D, POD-R-*). The file
format itself is checked against storage-format.md (SF-B-2, SF-B-3, SF-I-9, SF-I-10).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.synth import SynthSummary, big_data_file_name, synthesise

PODMAN = shutil.which("podman")
IMAGES = 30
SEED = 11

needs_podman = [
    pytest.mark.differential,
    pytest.mark.skipif(PODMAN is None, reason="podman is not installed"),
]


@dataclass(frozen=True)
class Store:
    root: Path
    runroot: Path
    summary: SynthSummary

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            PODMAN or "podman",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)

    def podman_json(self, *args: str) -> Any:
        """Run podman, require a clean exit (no error, no warning) and parse stdout."""
        result = self.podman(*args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return json.loads(result.stdout or "null")


def new_store(root: Path, runroot: Path, images: int = IMAGES, seed: int = SEED) -> Store:
    summary = synthesise(root, images, seed, runroot=runroot)
    return Store(root, runroot, summary)


@contextmanager
def short_directory() -> Iterator[Path]:
    """A run root short enough for podman (at most 50 characters; pytest's are longer)."""
    path = Path(tempfile.mkdtemp(prefix="synth-run-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def listed_ids(entries: list[dict[str, Any]] | None) -> list[str]:
    """IDs of a ``--format json`` listing; podman 4.3.1 repeats an image per name (POD-I-4)."""
    return sorted({entry["Id"] for entry in entries or []})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One synthesised store that the read-only tests share."""
    with short_directory() as runroot:
        yield new_store(tmp_path_factory.mktemp("synth") / "root", runroot)


@pytest.fixture(scope="module")
def listing(store: Store) -> dict[str, dict[str, Any]]:
    """``podman images -a --format json`` by image ID."""
    if PODMAN is None:
        pytest.skip("podman is not installed")
    entries = store.podman_json("images", "-a", "--format", "json")
    return {entry["Id"]: entry for entry in entries}


# --------------------------------------------------------------------------- the files


class TestFileFormat:
    """What the synthesiser writes follows storage-format.md, checked without podman."""

    @pytest.mark.parametrize(
        ("key", "file_name"),
        [
            ("manifest", "manifest"),
            ("instances.json", "instances.json"),
            # Observed file names written by podman 4.3.1 (import, SF-O-1).
            (
                "sha256:5e18a01f6acae7b7de59f1f7efba2122cfd4c8162471b47230e3802d3b833c0b",
                "=c2hhMjU2OjVlMThhMDFmNmFjYWU3YjdkZTU5ZjFmN2VmYmEyMTIyY2ZkNGM4MTYyNDcx"
                "YjQ3MjMwZTM4MDJkM2I4MzNjMGI=",
            ),
            (
                "signature-0df4a11bfdcc63c3f61c17450353877c7359cc84924b13e7796650ca7fe1a439",
                "=c2lnbmF0dXJlLTBkZjRhMTFiZmRjYzYzYzNmNjFjMTc0NTAzNTM4NzdjNzM1OWNjODQ5"
                "MjRiMTNlNzc5NjY1MGNhN2ZlMWE0Mzk=",
            ),
        ],
        ids=["plain", "plain-with-dot", "config-digest", "signature"],
    )
    def test_big_data_file_name(self, key: str, file_name: str) -> None:
        """SF-B-2: keys of `.0-9a-z` stay as they are; others become `=` + base64."""
        assert big_data_file_name(key) == file_name

    def test_big_data_sizes_and_digests_describe_the_files(self, store: Store) -> None:
        """SF-I-9, SF-I-10, SF-B-3: each item's size and sha256 are those of its file."""
        records = json.loads((store.root / "vfs-images" / "images.json").read_text())
        assert len(records) == IMAGES
        for record in records:
            directory = store.root / "vfs-images" / record["id"]
            assert sorted(record["big-data-sizes"]) == sorted(record["big-data-names"])
            for key in record["big-data-names"]:
                data = (directory / big_data_file_name(key)).read_bytes()
                assert record["big-data-sizes"][key] == len(data)
                assert (
                    record["big-data-digests"][key] == "sha256:" + hashlib.sha256(data).hexdigest()
                )

    def test_file_name_encoding_is_standard_base64(self, store: Store) -> None:
        """SF-B-2: every encoded file name decodes to a key listed in big-data-names."""
        records = json.loads((store.root / "vfs-images" / "images.json").read_text())
        for record in records:
            for path in (store.root / "vfs-images" / record["id"]).iterdir():
                key = path.name
                if key.startswith("="):
                    key = base64.b64decode(key[1:], validate=True).decode()
                assert key in record["big-data-names"]

    def test_same_seed_same_store(self, tmp_path: Path) -> None:
        """The contents are a function of the seed; another seed gives other images."""
        first = synthesise(tmp_path / "a", 20, 3)
        again = synthesise(tmp_path / "b", 20, 3)
        other = synthesise(tmp_path / "c", 20, 4)
        assert [(i.id, i.names) for i in first.images] == [(i.id, i.names) for i in again.images]
        assert {i.id for i in first.images}.isdisjoint({i.id for i in other.images})

    def test_refuses_a_non_empty_root(self, tmp_path: Path) -> None:
        """A store is only ever written into an absent or empty directory."""
        (tmp_path / "keep").write_text("data")
        with pytest.raises(FileExistsError):
            synthesise(tmp_path, 5)
        assert (tmp_path / "keep").read_text() == "data"


# --------------------------------------------------------------------------- podman reads it


class TestPodmanReads:
    """podman 4.3.1 lists, inspects and looks up exactly what the summary says."""

    pytestmark = needs_podman

    def test_ids_names_and_digests(self, store: Store, listing: dict[str, dict[str, Any]]) -> None:
        """IP-1, IP-2, IP-8: every image once, with its stored names and digest."""
        assert sorted(listing) == sorted(i.id for i in store.summary.images)
        for image in store.summary.images:
            entry = listing[image.id]
            assert entry.get("Names", []) == list(image.names), image.id
            assert entry["Digest"] == image.digest, image.id

    def test_parents(self, store: Store, listing: dict[str, dict[str, Any]]) -> None:
        """LT-3, LT-P2: ParentId is the image one build step below, for every image."""
        summary = store.summary
        by_id = {i.id: i for i in summary.images}
        with_parent = [i for i in summary.images if i.parent_id]
        # Both kinds of child exist: a new layer (LT-4) and an empty_layer step (LT-5).
        assert any(by_id[i.parent_id].top_layer != i.top_layer for i in with_parent)
        assert any(by_id[i.parent_id].top_layer == i.top_layer for i in with_parent)
        for image in summary.images:
            assert listing[image.id]["ParentId"] == image.parent_id, image.id

    def test_inspect_child_names_its_parent(self, store: Store) -> None:
        """LT-P2 through `podman image inspect`."""
        assert store.summary.parent_child is not None
        parent, child = store.summary.parent_child
        inspected = store.podman_json("image", "inspect", child)
        assert inspected[0]["Id"] == child
        assert inspected[0]["Parent"] == parent

    def test_dangling_filter(self, store: Store) -> None:
        """IP-5, POD-F-2: dangling=true lists the unnamed images without children."""
        expected = sorted(i.id for i in store.summary.images if i.dangling)
        assert expected
        assert store.summary.dangling_id in expected
        found = store.podman_json("images", "--filter", "dangling=true", "--format", "json")
        assert listed_ids(found) == expected

    def test_intermediate_filter(self, store: Store) -> None:
        """IP-6, POD-I-2, POD-I-3: unnamed parents are intermediate and hidden without -a."""
        expected = sorted(i.id for i in store.summary.images if i.intermediate)
        assert expected
        assert store.summary.intermediate_id in expected
        found = store.podman_json(
            "images", "-a", "--filter", "intermediate=true", "--format", "json"
        )
        assert listed_ids(found) == expected
        default = store.podman_json("images", "--format", "json")
        assert set(listed_ids(default)).isdisjoint(expected)

    def test_sizes_and_labels(self, store: Store, listing: dict[str, dict[str, Any]]) -> None:
        """IP-13 (POD-I-5) and IP-10: Size from the layer records and big data; config labels."""
        assert any(i.labels for i in store.summary.images)
        for image in store.summary.images:
            entry = listing[image.id]
            assert entry["Size"] == image.size, image.id
            assert (entry["Labels"] or {}) == dict(image.labels), image.id

    def test_containers_are_counted(self, store: Store, listing: dict[str, dict[str, Any]]) -> None:
        """IP-9: storage containers count for the image they were created from."""
        containers = store.summary.containers
        assert containers
        for image in store.summary.images:
            expected = sum(1 for c in containers if c.image_id == image.id)
            assert listing[image.id]["Containers"] == expected, image.id

    @pytest.mark.parametrize("sample", ["full_name", "short_name", "id_prefix"])
    def test_lookup_samples(self, store: Store, sample: str) -> None:
        """LK: a full name, a short name and a unique ID prefix find the sampled image."""
        summary = store.summary
        reference = getattr(summary, sample)
        assert reference
        inspected = store.podman_json("image", "inspect", reference)
        assert inspected[0]["Id"] == getattr(summary, f"{sample}_id")

    def test_missing_name(self, store: Store) -> None:
        """The sampled missing name is not known to podman."""
        result = store.podman("image", "inspect", store.summary.missing_name)
        assert result.returncode != 0
        assert "image not known" in result.stderr

    def test_reference_filter(self, store: Store) -> None:
        """FL-R5: the sampled reference pattern matches the images the summary lists."""
        summary = store.summary
        assert summary.reference_matches
        found = store.podman_json(
            "images", "-a", "--filter", f"reference={summary.reference_pattern}", "--format", "json"
        )
        assert listed_ids(found) == sorted(summary.reference_matches)

    def test_manifest_lists(self, store: Store) -> None:
        """IP-11, SF-B-5: each list's instances are the manifests of images in the store."""
        lists = [i for i in store.summary.images if i.manifest_list]
        assert len(lists) >= 2
        digests = {i.digest for i in store.summary.images if not i.manifest_list}
        for image in lists:
            inspected = store.podman_json("manifest", "inspect", image.names[0])
            assert [m["digest"] for m in inspected["manifests"]] == list(image.instances)
            assert set(image.instances) <= digests
        found = store.podman_json("images", "-a", "--filter", "manifest=true", "--format", "json")
        assert listed_ids(found) == sorted(i.id for i in lists)


# --------------------------------------------------------------------------- podman removes


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Store]:
    """A store of its own: podman's database pins the root path, so stores are not copied."""
    if PODMAN is None:
        pytest.skip("podman is not installed")
    with short_directory() as runroot:
        yield new_store(tmp_path / "root", runroot)


class TestPodmanRemoves:
    """`podman rmi` works on a synthesised store and leaves a store podman reads."""

    pytestmark = needs_podman

    def test_rmi_name(self, fresh: Store) -> None:
        """RM, SF-D-6, POD-R-7c: a single-name image without children is untagged and deleted."""
        name = fresh.summary.names_to_remove[0]
        image = next(i for i in fresh.summary.images if name in i.names)
        layers_path = fresh.root / "vfs-layers" / "layers.json"
        before = json.loads(layers_path.read_text())
        # SF-D-6: the top layer goes when nothing else uses it or builds on it.
        freed = not any(
            i.top_layer == image.top_layer for i in fresh.summary.images if i is not image
        ) and not any(layer.get("parent") == image.top_layer for layer in before)
        result = fresh.podman("rmi", name)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.splitlines() == [f"Untagged: {name}", f"Deleted: {image.id}"]
        remaining = fresh.podman_json("images", "-a", "--format", "json")
        assert listed_ids(remaining) == sorted(i.id for i in fresh.summary.images if i is not image)
        after = {layer["id"] for layer in json.loads(layers_path.read_text())}
        assert (image.top_layer not in after) == freed
        assert (fresh.root / "vfs" / "dir" / image.top_layer).exists() == (not freed)

    def test_rmi_all_force(self, fresh: Store) -> None:
        """POD-R-11b, SF-D-C: -a -f removes every image, container and layer."""
        result = fresh.podman("rmi", "-a", "-f")
        assert (result.returncode, result.stderr) == (0, "")
        lines = result.stdout.splitlines()
        untagged = sorted(x.removeprefix("Untagged: ") for x in lines if x.startswith("Untagged: "))
        deleted = {x.removeprefix("Deleted: ") for x in lines if x.startswith("Deleted: ")}
        assert untagged == sorted(name for i in fresh.summary.images for name in i.names)
        # RM-R3: an image deleted while it still had children is not reported as removed.
        assert deleted <= {i.id for i in fresh.summary.images}
        assert fresh.podman_json("images", "-a", "--format", "json") in (None, [])
        assert json.loads((fresh.root / "vfs-containers" / "containers.json").read_text()) == []
        assert json.loads((fresh.root / "vfs-layers" / "layers.json").read_text()) == []
        assert list((fresh.root / "vfs" / "dir").iterdir()) == []
