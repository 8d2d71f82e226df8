"""The persistent index (issue #7 item 4): used only while valid, never a different answer.

Stores are materialised from builders (:mod:`libimage.spec.materialise`) or made by
podman 4.3.1; the index lives in a temporary directory (``LIBIMAGE_CACHE_DIR``) and
is built for stores of any size (``LIBIMAGE_CACHE_MIN_BYTES=0``). Whether a command
used the index is seen by making the full read fail: a command answered by the
index never reads the store's metadata in full.
"""

from __future__ import annotations

import io
import marshal
import os
import sqlite3
import stat
import zlib
from pathlib import Path
from typing import Any

import pytest
from support.podman import PodmanStore, requires_podman, tree_state

from libimage.adapters import cache, content
from libimage.adapters.cli import run
from libimage.adapters.locks import HeldLocks
from libimage.adapters.storage_conf import StoreOptions
from libimage.adapters.store import (
    ReadResult,
    StoreLayout,
    read_snapshot,
    read_snapshot_held,
    resolve_layout,
)
from libimage.pure.errors import ErrorKind, fail
from libimage.spec.builders import child_of, image, layer_chain, manifest_list, snapshot
from libimage.spec.materialise import materialise

A = image("a", ["localhost/foo:latest", "quay.io/x/foo:v2"], layers=layer_chain("base"))
B = child_of(A, "b", ["localhost/bar:1"])
C = image("c", [], layers=layer_chain("extra"))
LISTED = manifest_list("l", ["localhost/list:1"], entries=[(A, None)])


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_DIRECTORY, str(directory))
    monkeypatch.setenv(cache.ENV_MIN_BYTES, "0")
    monkeypatch.delenv(cache.ENV_DISABLE, raising=False)
    return directory


@pytest.fixture
def store(tmp_path: Path) -> StoreOptions:
    snap = snapshot([A, B, C])
    return materialise(snap, str(tmp_path / "root"), str(tmp_path / "run"))


def cli(options: StoreOptions, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    flags = ["--root", options.graph_root, "--runroot", options.run_root]
    code = run([*flags, "--storage-driver", "vfs", *args], out, err)
    return code, out.getvalue(), err.getvalue()


def uncached(options: StoreOptions, *args: str) -> tuple[int, str, str]:
    previous = os.environ.get(cache.ENV_DISABLE)
    os.environ[cache.ENV_DISABLE] = "1"
    try:
        return cli(options, *args)
    finally:
        if previous is None:
            del os.environ[cache.ENV_DISABLE]
        else:
            os.environ[cache.ENV_DISABLE] = previous


def index_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sqlite")) if directory.exists() else []


QUERIES = [
    ("exists", "localhost/foo:latest"),
    ("exists", "foo"),
    ("exists", "foo:v2"),
    ("exists", "x/foo:v2"),
    ("exists", "bar:1"),
    ("exists", "missing"),
    ("exists", A.id[:12]),
    ("exists", "sha256:" + A.id),
    ("lookup", "--explain", "foo"),
    ("lookup", "--format", "json", "bar:1"),
    ("lookup", "--explain", A.id[:3]),
    ("lookup", "--explain", "nothing:here"),
    ("resolve", "foo"),
]


class TestWhere:
    """The cache directory: override, XDG, home, disabled."""

    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            ({"LIBIMAGE_CACHE_DIR": "/c"}, "/c"),
            ({"LIBIMAGE_CACHE_DIR": ""}, None),
            ({"LIBIMAGE_CACHE_DIR": "/c", "LIBIMAGE_NO_CACHE": "1"}, None),
            ({"LIBIMAGE_CACHE_DIR": "/c", "LIBIMAGE_NO_CACHE": "0"}, "/c"),
            ({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/libimage"),
            ({"XDG_CACHE_HOME": "relative", "HOME": "/h"}, "/h/.cache/libimage"),
            ({"HOME": "/h"}, "/h/.cache/libimage"),
            ({}, None),
        ],
        ids=["override", "empty", "disabled", "zero", "xdg", "relative-xdg", "home", "nothing"],
    )
    def test_directory(self, environ: dict[str, str], expected: str | None) -> None:
        assert cache.cache_directory(environ) == expected

    def test_one_file_per_store_outside_it(self, store: StoreOptions, cache_dir: Path) -> None:
        assert cli(store, "exists", "foo")[0] == 0
        files = index_files(cache_dir)
        assert [f.name for f in files] == [cache.store_key(resolve_layout(store)) + ".sqlite"]
        assert not str(files[0]).startswith(store.graph_root)
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


class TestSameAnswers:
    """Cached and uncached commands print the same, and the index is really used."""

    @pytest.mark.parametrize("query", QUERIES, ids=[" ".join(q) for q in QUERIES])
    def test_same_output(
        self, store: StoreOptions, cache_dir: Path, query: tuple[str, ...]
    ) -> None:
        expected = uncached(store, "--semantics", "podman-4.3", *query)
        assert index_files(cache_dir) == []
        first = cli(store, "--semantics", "podman-4.3", *query)  # builds the index
        assert index_files(cache_dir)
        second = cli(store, "--semantics", "podman-4.3", *query)  # uses it
        assert first == expected
        assert second == expected

    @pytest.mark.parametrize("name", ["foo", "bar:1", A.id[:12], "missing"])
    def test_a_valid_index_answers_without_a_full_read(
        self, store: StoreOptions, cache_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        expected = cli(store, "exists", name)
        assert index_files(cache_dir)

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise fail(ErrorKind.STORE_UNREADABLE, "full read", "full read attempted")

        monkeypatch.setattr(cache, "read_snapshot_held", refuse)
        assert cli(store, "exists", name) == expected

    def test_the_store_is_never_touched(self, store: StoreOptions, cache_dir: Path) -> None:
        before = tree_state(Path(store.graph_root), Path(store.run_root))
        for query in QUERIES:
            cli(store, *query)
        assert index_files(cache_dir)
        assert tree_state(Path(store.graph_root), Path(store.run_root)) == before

    def test_small_stores_are_not_indexed_by_default(
        self, store: StoreOptions, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(cache.ENV_MIN_BYTES)
        assert cli(store, "exists", "foo")[0] == 0
        assert index_files(cache_dir) == []


class TestFallbacks:
    """Lookups the index cannot bound read the store in full, with the same answer."""

    @pytest.mark.usefixtures("cache_dir")
    def test_manifest_lists_read_the_store(self, tmp_path: Path) -> None:
        """ML-5: a list's instance is searched in the whole store."""
        options = materialise(snapshot([A, LISTED]), str(tmp_path / "root"), str(tmp_path / "run"))
        expected = uncached(options, "lookup", "--explain", "localhost/list:1")
        cli(options, "exists", "foo")  # builds the index
        assert cli(options, "lookup", "--explain", "localhost/list:1") == expected

    @pytest.mark.parametrize(
        "name", ["containers-storage:localhost/foo:latest", "containers-storage:" + A.id[:12]]
    )
    @pytest.mark.usefixtures("cache_dir")
    def test_storage_references_read_the_store(self, store: StoreOptions, name: str) -> None:
        """TR-4: a containers-storage reference resolves in the whole store."""
        expected = uncached(store, "exists", name)
        cli(store, "exists", "foo")
        assert cli(store, "exists", name) == expected

    def test_unparseable_stored_names_are_not_indexed(
        self, tmp_path: Path, cache_dir: Path
    ) -> None:
        """Decision 18: every lookup that reaches LN-4 warns about each such name."""
        bad = image("d", ["localhost/Bad:1"], layers=layer_chain("base"))
        options = materialise(snapshot([A, bad]), str(tmp_path / "root"), str(tmp_path / "run"))
        expected = uncached(options, "exists", "foo:v2")
        assert cli(options, "exists", "foo:v2") == expected
        assert index_files(cache_dir) == []


class TestValidity:
    """Any change of the store's state makes the index unused until it is rebuilt."""

    @pytest.mark.usefixtures("cache_dir")
    def test_a_changed_token_is_a_changed_state(
        self, store: StoreOptions, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cli(store, "exists", "foo")
        layout = resolve_layout(store)
        Path(layout.images_lock).write_bytes(b"f" * 64)
        calls = []

        def counting(layout: StoreLayout, held: HeldLocks) -> ReadResult:
            calls.append(layout)
            return read_snapshot_held(layout, held)

        monkeypatch.setattr(cache, "read_snapshot_held", counting)
        assert cli(store, "exists", "foo")[0] == 0
        assert len(calls) == 1  # stale: read in full (and rebuilt)
        assert cli(store, "exists", "foo")[0] == 0
        assert len(calls) == 1  # the rebuilt index answered

    @pytest.mark.usefixtures("cache_dir")
    def test_an_edit_in_place_of_the_same_size(self, store: StoreOptions) -> None:
        """Identity: same inode and size, different bytes (a hand edit, no token)."""
        assert cli(store, "exists", "foo")[0] == 0
        layout = resolve_layout(store)
        path = Path(layout.images_json)
        data = path.read_bytes()
        info = path.stat()
        edited = data.replace(b"localhost/foo:latest", b"localhost/zoo:latest")
        assert len(edited) == len(data)
        path.write_bytes(edited)
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # even the same mtime
        assert cli(store, "exists", "localhost/foo:latest")[0] == 1
        assert cli(store, "exists", "localhost/zoo:latest")[0] == 0

    def test_a_corrupt_index_is_ignored(self, store: StoreOptions, cache_dir: Path) -> None:
        expected = cli(store, "lookup", "--explain", "foo")
        for file in index_files(cache_dir):
            file.write_bytes(b"not a database" * 100)
        assert cli(store, "lookup", "--explain", "foo") == expected

    def test_an_index_with_wrong_records_is_not_trusted_after_a_change(
        self, store: StoreOptions, cache_dir: Path
    ) -> None:
        """An index left by an older state (valid key of that state only) is not used."""
        cli(store, "exists", "foo")
        layout = resolve_layout(store)
        Path(layout.layers_lock).write_bytes(b"e" * 64)
        [file] = index_files(cache_dir)
        with sqlite3.connect(file) as connection:
            connection.execute("UPDATE images SET record = 'garbage'")
        assert cli(store, "exists", "foo") == uncached(store, "exists", "foo")

    def test_an_index_others_can_write_is_ignored(
        self, store: StoreOptions, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cli(store, "exists", "foo")
        [file] = index_files(cache_dir)
        file.chmod(0o666)

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise fail(ErrorKind.STORE_UNREADABLE, "full read", "full read attempted")

        monkeypatch.setattr(cache, "read_snapshot_held", refuse)
        code, _out, err = cli(store, "exists", "foo")
        assert code == 125
        assert "full read attempted" in err


class TestBestEffort:
    """The index never fails a command."""

    def test_an_unwritable_cache_directory(self, store: StoreOptions, tmp_path: Path) -> None:
        directory = tmp_path / "ro"
        directory.mkdir()
        directory.chmod(0o500)
        try:
            os.environ[cache.ENV_DIRECTORY] = str(directory)
            os.environ[cache.ENV_MIN_BYTES] = "0"
            assert cli(store, "exists", "foo") == uncached(store, "exists", "foo")
            if os.geteuid() != 0:  # root writes through the mode bits
                assert index_files(directory) == []
        finally:
            directory.chmod(0o700)
            del os.environ[cache.ENV_DIRECTORY]
            del os.environ[cache.ENV_MIN_BYTES]

    def test_a_cache_path_that_is_a_file(self, store: StoreOptions, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        os.environ[cache.ENV_DIRECTORY] = str(blocker / "sub")
        try:
            assert cli(store, "exists", "foo") == uncached(store, "exists", "foo")
        finally:
            del os.environ[cache.ENV_DIRECTORY]

    def test_no_room_no_index(
        self, store: StoreOptions, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cache, "_enough_space", lambda _directory, _needed: False)
        assert cli(store, "exists", "foo")[0] == 0
        assert index_files(cache_dir) == []

    def test_old_files_are_evicted(self, store: StoreOptions, cache_dir: Path) -> None:
        cache_dir.mkdir()
        for number in range(cache.MAX_FILES + 3):
            (cache_dir / f"{number:064x}.sqlite").write_bytes(b"")
        assert cli(store, "exists", "foo")[0] == 0
        files = index_files(cache_dir)
        assert len(files) == cache.MAX_FILES
        assert cache_dir / (cache.store_key(resolve_layout(store)) + ".sqlite") in files

    def test_the_index_holds_the_full_reads_records(
        self, store: StoreOptions, cache_dir: Path
    ) -> None:
        cli(store, "exists", "foo")
        full = read_snapshot(store).snapshot
        [file] = index_files(cache_dir)
        with sqlite3.connect(file) as connection:
            query = "SELECT record FROM images ORDER BY position"
            records = [cache._image_of(record) for (record,) in connection.execute(query)]
        assert records == list(full.images)


@requires_podman
def test_cached_answers_follow_podmans_changes(tmp_path: Path, cache_dir: Path) -> None:
    """Tag, untag, rmi and import by podman between two cached commands (SF-K-5)."""
    store = PodmanStore.create(tmp_path / "podman")
    first = store.import_image("localhost/one:1", {"a.txt": b"a"})
    store.import_image("localhost/two:1", {"b.txt": b"b"})
    options = store.options()
    names = ["one:1", "two:1", "three:1", "localhost/one:2", first[:12], "missing"]

    def check() -> None:
        for name in names:
            expected = uncached(options, "lookup", "--explain", name)
            assert cli(options, "lookup", "--explain", name) == expected, name
            assert cli(options, "lookup", "--explain", name) == expected, name

    check()
    assert index_files(cache_dir)
    store.tag("localhost/one:1", "localhost/one:2")
    check()
    store.untag("localhost/one:1", "localhost/one:1")
    check()
    store.run("rmi", "localhost/two:1")
    check()
    store.import_image("localhost/three:1", {"c.txt": b"c"})
    check()


# --------------------------------------------------------------------------- big-data facts


def facts_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.facts")) if directory.exists() else []


LISTINGS = [
    ("images",),
    ("images", "-a"),
    ("images", "-a", "--format", "json"),
    ("images", "--filter", "dangling=true"),
    ("images", "-a", "--filter", "label=team"),
]


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as settled (the racy-clean rule would skip them)."""
    monkeypatch.setattr(content, "RACY_NS", -(2**62))


@pytest.fixture
def no_big_data_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Big-data reads are counted (the facts cache is used when they do not happen)."""
    reads: list[str] = []
    real = content._read_below_fd

    def counting(images_dir: str, image_id: str, name: str, what: str) -> object:
        reads.append(what)
        return real(images_dir, image_id, name, what)

    monkeypatch.setattr(content, "_read_below_fd", counting)
    return reads


def config_path(options: StoreOptions, image_id: str) -> Path:
    full = read_snapshot(options).snapshot
    [record] = [i for i in full.images if i.id == image_id]
    config_key = next(key for key in record.big_data_names if key.startswith("sha256:"))
    return Path(
        resolve_layout(options).images_dir, image_id, content.big_data_file_name(config_key)
    )


@pytest.mark.usefixtures("settled")
class TestFacts:
    """Facts derived from manifests and configs (issue #7): same listing, re-read on change."""

    @pytest.mark.parametrize("query", LISTINGS, ids=[" ".join(q) for q in LISTINGS])
    def test_same_listing_cold_warm_and_uncached(
        self,
        store: StoreOptions,
        cache_dir: Path,
        no_big_data_reads: list[str],
        query: tuple[str, ...],
    ) -> None:
        expected = uncached(store, *query)
        assert facts_files(cache_dir) == []
        assert cli(store, *query) == expected  # records the facts
        [file] = facts_files(cache_dir)
        assert file.name == cache.store_key(resolve_layout(store)) + ".facts"
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        no_big_data_reads.clear()
        assert cli(store, *query) == expected  # answers from them
        assert no_big_data_reads == []

    def test_the_store_is_never_touched(self, store: StoreOptions, cache_dir: Path) -> None:
        before = tree_state(Path(store.graph_root), Path(store.run_root))
        for query in LISTINGS:
            cli(store, *query)
        assert facts_files(cache_dir)
        assert not str(facts_files(cache_dir)[0]).startswith(store.graph_root)
        assert tree_state(Path(store.graph_root), Path(store.run_root)) == before

    @pytest.mark.parametrize("change", ["replaced", "truncated", "removed", "appended"])
    def test_a_changed_config_is_read_again(
        self, store: StoreOptions, cache_dir: Path, change: str
    ) -> None:
        """EX-1, IP-12: a damaged config gives the uncached listing's ERROR lines."""
        before = cli(store, "images", "-a")
        assert facts_files(cache_dir)
        path = config_path(store, A.id)
        data = path.read_bytes()
        if change == "replaced":  # as containers-storage writes: a new file renamed in
            scratch = path.with_name("scratch")
            scratch.write_bytes(data.replace(b"amd64", b"arm64"))
            scratch.replace(path)
        elif change == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif change == "removed":
            path.unlink()
        else:
            with path.open("ab") as file:
                file.write(b" ")
        after = cli(store, "images", "-a")
        assert after == uncached(store, "images", "-a")
        assert after != before
        assert "ERROR" in after[2]

    def test_a_corrupt_facts_file_is_ignored(self, store: StoreOptions, cache_dir: Path) -> None:
        expected = cli(store, "images", "-a", "--format", "json")
        for file in facts_files(cache_dir):
            file.write_bytes(b"not marshal data" * 100)
        assert cli(store, "images", "-a", "--format", "json") == expected
        for file in facts_files(cache_dir):
            file.write_bytes(file.read_bytes()[:-10])
        assert cli(store, "images", "-a", "--format", "json") == expected

    def test_a_facts_file_of_another_shape_is_not_used(
        self, store: StoreOptions, cache_dir: Path
    ) -> None:
        """Right header and checksum, entries that are not what save_facts writes."""
        expected = cli(store, "images", "-a", "--format", "json")
        layout = resolve_layout(store)
        [file] = facts_files(cache_dir)
        shapes: list[Any] = [{}, [], {(0, A.id, "manifest"): 1}, {(0, A.id, "manifest"): (1, 2)}]
        for entries in shapes:
            payload = marshal.dumps(entries)
            header = cache._facts_header(layout)
            file.write_bytes(marshal.dumps((header, zlib.crc32(payload), payload)))
            assert cli(store, "images", "-a", "--format", "json") == expected

    def test_facts_others_can_write_are_not_used(
        self, store: StoreOptions, cache_dir: Path, no_big_data_reads: list[str]
    ) -> None:
        cli(store, "images")
        [file] = facts_files(cache_dir)
        file.chmod(0o666)
        no_big_data_reads.clear()
        assert cli(store, "images") == uncached(store, "images")
        assert no_big_data_reads

    @pytest.mark.usefixtures("cache_dir")
    def test_a_symbolic_link_in_the_store_is_not_followed(self, store: StoreOptions) -> None:
        """A file replaced by a link to itself reads as the uncached read does (unreadable)."""
        cli(store, "images", "-a")
        path = config_path(store, A.id)
        moved = path.with_name("moved")
        path.replace(moved)
        path.symlink_to(moved)
        assert cli(store, "images", "-a") == uncached(store, "images", "-a")

    def test_no_room_no_facts(
        self, store: StoreOptions, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cache, "_enough_space", lambda _directory, _needed: False)
        assert cli(store, "images") == uncached(store, "images")
        assert facts_files(cache_dir) == []

    def test_disabled(self, store: StoreOptions, cache_dir: Path) -> None:
        uncached(store, "images")
        assert facts_files(cache_dir) == []


def test_recently_changed_files_are_not_recorded(store: StoreOptions, cache_dir: Path) -> None:
    """The racy-clean rule: files written in the last two seconds (all of them here)."""
    assert cli(store, "images") == uncached(store, "images")
    assert facts_files(cache_dir) == []


@requires_podman
@pytest.mark.usefixtures("settled")
def test_cached_facts_follow_podmans_changes(tmp_path: Path, cache_dir: Path) -> None:
    """Tag, rmi, import and a label by podman between two listings with facts."""
    store = PodmanStore.create(tmp_path / "podman")
    first = store.import_image("localhost/one:1", {"a.txt": b"a"}, labels={"team": "a"})
    store.import_image("localhost/two:1", {"b.txt": b"b"})
    options = store.options()

    queries = [  # no relative times: they change from one second to the next
        ("images", "-a", "--format", "json"),
        ("images", "-q"),
        ("images", "--filter", "dangling=true", "--format", "json"),
        ("images", "-a", "--filter", "label=team", "--format", "json"),
    ]

    def check() -> None:
        for query in queries:
            expected = uncached(options, *query)
            assert cli(options, *query) == expected, query
            assert cli(options, *query) == expected, query

    check()
    assert facts_files(cache_dir)
    store.tag(first, "localhost/one:2")
    check()
    store.run("rmi", "localhost/two:1")
    check()
    store.import_image(None, {"c.txt": b"c"}, labels={"team": "c"})
    check()
