"""The persistent index never changes an answer (issue #7 item 4).

On every generated store (:func:`libimage.spec.gen_snapshots.snapshots`: colliding
ID prefixes, shared and moved names, children, empty images, manifest lists,
read-only additional stores, corrupted images), written to disk
(:func:`libimage.spec.materialise.materialise`) and indexed, a lookup, an ``exists``
and a ``resolve`` of any name from the pool give the same result, trace and
warnings through :func:`libimage.adapters.cache.read_for_lookup` as on the full
read, in both profiles and with short-name aliases; so do they after the store is
changed by a writer (names moved, an image dropped) between two cached reads.

The facts derived from big-data files (manifests, configs) give the same listing,
summaries and per-image facts whether they are derived, recorded or read back from
the facts file, also after files were damaged, replaced or removed between two runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pmap, pvector

from libimage.adapters import cache, content
from libimage.adapters.storage_conf import StoreOptions
from libimage.adapters.store import read_snapshot, resolve_layout
from libimage.pure import manifest
from libimage.pure.context import Context, Platform
from libimage.pure.listing import list_images, summarize_all
from libimage.pure.lookup import LookupOptions, check_exists, lookup_image, resolve_name
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import PROFILES
from libimage.pure.snapshot import Snapshot
from libimage.spec.gen_snapshots import NAMES, snapshots
from libimage.spec.materialise import materialise, rewrite_records

pytestmark = pytest.mark.property

EXTRA_NAMES = (
    "foo",
    "foo:v2",
    "x/foo",
    "bar:1",
    "bar",
    "baz",
    "baz:1",  # the alias with the tag of a stored name: localhost/bar:1 (SN-2)
    "localhost/bar",
    "docker.io/library/foo:latest",
    "missing:1",
    "containers-storage:localhost/foo:latest",
    "0",
    "0a",
    "0ab",
    "a",
    "sha256:0a",
)
REGISTRIES = (
    RegistriesConfig(),
    RegistriesConfig(
        unqualified_search_registries=pvector(["quay.io"]),
        aliases=pmap({"baz": "localhost/bar", "foo": "quay.io/x/foo"}),
    ),
)
OPTIONS = (LookupOptions(), LookupOptions(architecture="arm64", manifest_list=True))


@contextmanager
def on_disk(snap: Snapshot) -> Iterator[tuple[StoreOptions, dict[str, str]]]:
    """The snapshot as a store, and an environment with an index directory of its own."""
    with tempfile.TemporaryDirectory(prefix="libimage-cache-") as directory:
        extra = str(Path(directory, "extra"))
        options = materialise(
            snap, str(Path(directory, "root")), str(Path(directory, "run")), [extra]
        )
        environ = {
            cache.ENV_DIRECTORY: str(Path(directory, "cache")),
            cache.ENV_MIN_BYTES: "0",
        }
        yield options, environ


def _names(snap: Snapshot) -> list[str]:
    ids = [image.id for image in snap.images]
    digests = [image.digest for image in snap.images if image.digest]
    return [
        *NAMES,
        *EXTRA_NAMES,
        *ids,
        *(image_id[:12] for image_id in ids),
        *("sha256:" + image_id for image_id in ids),
        *("localhost/foo@" + digest for digest in digests),
    ]


def _assert_same_answers(
    options: StoreOptions, environ: dict[str, str], context: Context, names: list[str]
) -> None:
    layout = resolve_layout(options)
    full = read_snapshot(options)
    for name in names:
        for lookup_options in OPTIONS:
            read, _full = cache.read_for_lookup(layout, name, lookup_options, context, environ)
            assert read.warnings == full.warnings
            expected = lookup_image(full.snapshot, name, lookup_options, context)
            assert lookup_image(read.snapshot, name, lookup_options, context) == expected, name
        assert check_exists(read.snapshot, name, context) == check_exists(
            full.snapshot, name, context
        )
        assert resolve_name(read.snapshot, name, context) == resolve_name(
            full.snapshot, name, context
        )


def _context(options: StoreOptions, profile: str, registries: RegistriesConfig) -> Context:
    return Context(
        host=Platform("linux", "amd64"),
        registries=registries,
        semantics=PROFILES[profile],
        store_graph_root=options.graph_root,
        store_driver=options.driver,
        store_run_root=options.run_root,
    )


@given(
    snap=snapshots(),
    profile=st.sampled_from(sorted(PROFILES)),
    registries=st.sampled_from(REGISTRIES),
    data=st.data(),
)
def test_cached_lookups_equal_full_reads(
    snap: Snapshot, profile: str, registries: RegistriesConfig, data: st.DataObject
) -> None:
    """LK-2..LK-11, EX-1, RN-1: the same result, trace and warnings, index or not."""
    with on_disk(snap) as (options, environ):
        context = _context(options, profile, registries)
        names = data.draw(st.lists(st.sampled_from(_names(snap)), min_size=1, max_size=4))
        cache.read_for_lookup(resolve_layout(options), names[0], None, context, environ)
        _assert_same_answers(options, environ, context, names)


@given(snap=snapshots(read_only=False), data=st.data())
def test_cached_lookups_follow_a_writer(snap: Snapshot, data: st.DataObject) -> None:
    """SF-K-5: after a writer moves names or drops an image, the index is not trusted."""
    with on_disk(snap) as (options, environ):
        context = _context(options, "podman-4.3", REGISTRIES[1])
        names = _names(snap)
        before = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
        _assert_same_answers(options, environ, context, before)
        images = list(snap.images)
        drop = data.draw(st.booleans())
        if images and drop:
            del images[data.draw(st.integers(0, len(images) - 1))]
        if images:
            position = data.draw(st.integers(0, len(images) - 1))
            moved = data.draw(st.sampled_from(NAMES))
            images = [replace(i, names=pvector(n for n in i.names if n != moved)) for i in images]
            images[position] = replace(images[position], names=images[position].names.append(moved))
        rewrite_records(replace(snap, images=pvector(images)), options)
        after = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
        _assert_same_answers(options, environ, context, after)


# --------------------------------------------------------------------------- big-data facts

FILTERS: tuple[list[str], ...] = (
    [],
    ["intermediate=false"],
    ["dangling=true"],
    ["label=a"],
    ["reference=foo"],
)


def _with_facts(snap: Snapshot, facts: content.FactsCache | None) -> Snapshot:
    store_content = snap.content
    assert isinstance(store_content, content.StoreContent)
    return replace(snap, content=replace(store_content, facts=facts))


def _answers(snap: Snapshot, context: Context) -> list[object]:
    """Every listing and every per-image fact the facts can feed (LS, IP, EX-1, ST-5, ML-2)."""
    found: list[object] = []
    for filters in FILTERS:
        listed = list_images(snap, [], filters, context)
        found += [listed, summarize_all(snap, listed.images)]
    for image in snap.images:
        found += [
            manifest.manifest_mime_type(snap, image),
            manifest.open_image(snap, image),
            manifest.image_config(snap, image),
            manifest.load_manifest_list(snap, image),
        ]
    return found


def _damage(options: StoreOptions, snap: Snapshot, data: st.DataObject) -> None:
    """Replace, truncate or remove some big-data files, as a crash or an editor would."""
    files = [
        Path(root, f"vfs-images/{image.id}/{content.big_data_file_name(key)}")
        for image in snap.images
        for key in image.big_data_names
        for root in (options.graph_root, *options.image_stores)
    ]
    files = [path for path in files if path.is_file()]
    if not files:
        return
    for path in data.draw(st.lists(st.sampled_from(files), max_size=3, unique=True)):
        change = data.draw(st.sampled_from(["replace", "truncate", "remove", "garbage"]))
        if change == "remove":
            path.unlink()
            continue
        old = path.read_bytes()
        new = {
            "replace": old.replace(b"amd64", b"arm64").replace(b"linux", b"Linux"),
            "truncate": old[: len(old) // 2],
            "garbage": b"{" + old,
        }[change]
        scratch = path.with_name("scratch")
        scratch.write_bytes(new)
        scratch.replace(path)  # a new file, as containers-storage writes one


@contextmanager
def _settled() -> Iterator[None]:
    """Files written by the test count as settled (the racy-clean rule would skip them)."""
    previous = content.RACY_NS
    content.RACY_NS = -(2**62)
    try:
        yield
    finally:
        content.RACY_NS = previous


@given(snap=snapshots(), profile=st.sampled_from(sorted(PROFILES)), data=st.data())
def test_cached_facts_equal_derived_facts(
    snap: Snapshot, profile: str, data: st.DataObject
) -> None:
    """Cold (recording), warm (read back) and uncached: the same answers, before and after
    files change (identity changed: read again)."""
    with on_disk(snap) as (options, environ), _settled():
        context = _context(options, profile, REGISTRIES[1])
        layout = resolve_layout(options)
        for _round in range(2):
            read = read_snapshot(options).snapshot
            expected = _answers(read, context)
            recorded = content.FactsCache()
            loaded = cache.load_facts(layout, environ)
            assert loaded is not None
            assert _answers(_with_facts(read_snapshot(options).snapshot, loaded), context) == (
                expected
            )
            assert _answers(_with_facts(read, recorded), context) == expected
            cache.save_facts(layout, environ, recorded, read)
            warm = cache.load_facts(layout, environ)
            assert warm is not None
            assert _answers(_with_facts(read_snapshot(options).snapshot, warm), context) == (
                expected
            )
            assert warm.hits >= recorded.added  # each recorded value is used again
            _damage(options, snap, data)
