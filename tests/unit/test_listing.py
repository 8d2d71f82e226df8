"""ListImages, image summaries and podman's presentation (LS-1..LS-6, IP-*, POD-I-*).

Expected values come from the list/remove reference (LS, IP, POD-I), from what
podman 4.3.1 printed for the stores described there (JSON key order, table layout,
sizes such as 11331 → ``11.3 kB``), and from go-units' documented rules for sizes and
ages.
"""

# Tables of cases read best one case per line.
# ruff: noqa: E501

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pyrsistent import pmap, pvector

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind
from libimage.pure.listing import (
    ImageSummary,
    created_at,
    created_since,
    display_id,
    go_json,
    go_json_string,
    human_duration,
    human_size,
    images_json,
    list_images,
    name_rows,
    newest_first,
    quiet_ids,
    repository_and_tag,
    shows_read_only_column,
    summarize,
    summary_object,
    table_rows,
    tabulate,
)
from libimage.pure.semantics import PODMAN_4_3, SEED
from libimage.spec.builders import (
    child_of,
    container,
    image,
    in_additional_store,
    layer_chain,
    manifest_list,
    missing_config,
    snapshot,
    with_record,
)

SECOND = 10**9
NOW = 1_700_000_000 * SECOND
T0 = NOW - 3600 * SECOND

A = image("a", ["localhost/a:1"], layers=layer_chain("la"), created=T0)
B = image("b", ["localhost/b:1", "localhost/b:2"], layers=layer_chain("lb"), created=T0 + SECOND)
C = image("c", [], layers=layer_chain("lc"), created=T0 + 2 * SECOND)
RO = in_additional_store(image("ro", ["localhost/ro:1"], layers=layer_chain("lr"), created=T0))
STORE = snapshot([A, B, C])


def ctx(semantics: object = SEED) -> Context:
    return Context(semantics=semantics, now_ns=NOW)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- LS-*


def test_all_images_in_store_order() -> None:
    """LS-3: without names, every image: read-write store first, then additional stores."""
    snap = snapshot([RO, A, B])
    listed = list_images(snap, [], [], ctx())
    assert [i.id for i in listed.images] == [A.id, B.id, RO.id]


def test_same_id_in_both_stores_is_listed_twice() -> None:
    """LS-3: a read-only image copied into the writable store appears twice, not merged."""
    copy = with_record(RO, read_only=False, store_index=0, names=["localhost/copy:1"])
    snap = snapshot([RO, copy])
    listed = list_images(snap, [], [], ctx())
    assert [(i.id, i.read_only) for i in listed.images] == [(RO.id, False), (RO.id, True)]


def test_names_keep_order_and_duplicates() -> None:
    """LS-2: names are looked up in order; an image named twice appears twice."""
    listed = list_images(STORE, ["b:2", "a:1", "localhost/b:1"], [], ctx())
    assert listed.ok
    assert [i.id for i in listed.images] == [B.id, A.id, B.id]


def test_first_lookup_error_aborts() -> None:
    """LS-2: the first failing name is the error; nothing is listed."""
    listed = list_images(STORE, ["a:1", "nope", "also-nope"], [], ctx())
    assert listed.images == pvector()
    assert listed.failure is not None
    assert listed.failure.kind is ErrorKind.IMAGE_UNKNOWN
    assert listed.failure.message == "nope: image not known"


def test_names_then_filters() -> None:
    """LS-2, LS-5: filters apply to the looked-up images, in the order of the names."""
    listed = list_images(STORE, ["b:1", "a:1"], ["reference=localhost/*"], ctx())
    assert [i.id for i in listed.images] == [B.id, A.id]
    listed = list_images(STORE, ["b:1", "a:1"], ["reference=a"], ctx())
    assert [i.id for i in listed.images] == [A.id]


def test_invalid_filters_on_an_empty_store() -> None:
    """LS-4: empty store + `foo=bar` → [] without error; one image → the error."""
    assert list_images(snapshot([]), [], ["foo=bar"], ctx()).ok
    one = list_images(snapshot([A]), [], ["foo=bar"], ctx())
    assert one.failure is not None
    assert one.failure.message == 'unsupported image filter "foo"'


def test_nothing_hidden_or_sorted() -> None:
    """LS-6: ListImages hides no intermediate image and keeps store order."""
    base = image("base", [], layers=layer_chain("x1"), created=T0 + 9 * SECOND)
    kid = child_of(base, "kid", ["localhost/kid:1"])
    snap = snapshot([base, kid])
    assert [i.id for i in list_images(snap, [], [], ctx()).images] == [base.id, kid.id]


@pytest.mark.parametrize("semantics", [SEED, PODMAN_4_3], ids=["seed", "podman-4.3"])
def test_corrupted_image_errors_are_logged(semantics: object) -> None:
    """FL-P9: a filter that fails on a corrupted image is logged; listing goes on."""
    broken = missing_config(image("broken", ["localhost/broken:1"], layers=layer_chain("lx")))
    # Make it corrupted (IP-12): its top layer is not stored.
    snap = snapshot([A, with_record(broken, top_layer="9" * 64)])
    listed = list_images(snap, [], ["label=x"], ctx(semantics))
    assert listed.ok
    assert listed.images == pvector()
    assert [e.kind for e in listed.errors] == [ErrorKind.IMAGE_CORRUPTED]


# --------------------------------------------------------------------------- summaries


def test_summary_of_a_parent_and_child() -> None:
    """POD-I-4, LT-4: ParentId of a child; digest, history and size (IP-13) from the record."""
    base = image("p", ["localhost/p:1"], layers=layer_chain("p1", size=10240), labels={"k": "v"})
    kid = child_of(base, "k", ["localhost/k:1"], layer_size=100)
    used = container("c", kid)
    snap = snapshot([base, kid], containers=[used])
    parent_summary = summarize(snap, snap.images[0])
    kid_summary = summarize(snap, snap.images[1])
    assert parent_summary.parent_id == ""
    assert kid_summary.parent_id == base.id
    assert kid_summary.containers == 1
    assert parent_summary.containers == 0
    assert parent_summary.labels == pmap({"k": "v"})
    # IP-13: layers' diff sizes plus every big-data item's size.
    big_data = sum(base.record.big_data_sizes.values())
    assert parent_summary.size == 10240 + big_data
    assert parent_summary.virtual_size == parent_summary.size
    assert parent_summary.digest == base.record.digest
    assert parent_summary.history == base.record.names_history
    assert parent_summary.created == base.record.created // SECOND
    assert not parent_summary.dangling
    assert parent_summary.problems == pvector()
    assert parent_summary.repo_digests == pvector([f"localhost/p@{base.record.digest}"])


def test_summary_of_dangling_and_intermediate() -> None:
    """IP-5, IP-6, POD-I-4: Dangling only for unnamed leaves."""
    base = image("p", [], layers=layer_chain("p1"))
    kid = child_of(base, "k", ["localhost/k:1"])
    leaf = image("leaf", [], layers=layer_chain("l9"))
    snap = snapshot([base, kid, leaf])
    assert [summarize(snap, i).dangling for i in snap.images] == [False, False, True]


def test_summary_of_a_manifest_list() -> None:
    """IP-10: a manifest list has no labels (null), and no error."""
    listed = manifest_list("l", ["localhost/l:1"], entries=[(A, None)])
    snap = snapshot([A, listed])
    summary = summarize(snap, snap.images[1])
    assert summary.labels is None
    assert summary.problems == pvector()


def test_summary_problems_keep_fallbacks() -> None:
    """Issue #2: a fact podman would abort for is a problem; the others keep working."""
    broken = missing_config(image("x", ["localhost/x:1"], layers=layer_chain("lx")))
    snap = snapshot([broken])
    summary = summarize(snap, snap.images[0])
    assert summary.labels is None
    assert summary.parent_id == ""
    assert [p.message.split(":")[0] for p in summary.problems] == [
        f'retrieving label for image "{broken.id}"',
        f'retrieving parent of image "{broken.id}"',
    ]


def test_summary_of_an_image_without_its_layer() -> None:
    """IP-13, IP-5: a missing top layer makes every fact a problem, in podman's order of asking."""
    lost = with_record(image("lost", [], layers=layer_chain("gone")), top_layer="7" * 64)
    snap = snapshot([lost])
    summary = summarize(snap, snap.images[0])
    assert (summary.size, summary.virtual_size, summary.dangling) == (-1, -1, False)
    assert [p.message.split(" of image")[0].split(" image")[0] for p in summary.problems] == [
        "checking if",
        "retrieving label for",
        "retrieving size",
        "retrieving parent",
    ]
    assert 'error locating layer with ID "' + "7" * 64 + '": layer not known' in (
        summary.problems[2].message
    )


def test_summary_object_keys_in_podman_order() -> None:
    """POD-I-4, POD-I-6: key order as podman 4.3.1 prints it; omitted keys when empty/false."""
    full = ImageSummary(
        id="a" * 64,
        parent_id="b" * 64,
        repo_digests=pvector(["localhost/x@sha256:" + "c" * 64]),
        size=11331,
        virtual_size=11331,
        labels=pmap({"z": "1", "a": "2"}),
        containers=2,
        read_only=True,
        dangling=True,
        names=pvector(["localhost/x:1"]),
        digest="sha256:" + "c" * 64,
        history=pvector(["localhost/x:1"]),
        created=1_700_000_000,
        created_ns=1_700_000_000 * SECOND,
    )
    assert list(summary_object(full)) == [
        "Id", "ParentId", "RepoTags", "RepoDigests", "Size", "SharedSize", "VirtualSize",
        "Labels", "Containers", "ReadOnly", "Dangling", "Names", "Digest", "History",
        "Created", "CreatedAt",
    ]  # fmt: skip
    assert summary_object(full)["RepoTags"] is None
    assert summary_object(full)["CreatedAt"] == "2023-11-14T22:13:20Z"
    assert list(summary_object(full)["Labels"]) == ["a", "z"]  # type: ignore[call-overload]
    bare = ImageSummary(
        id="a" * 64,
        parent_id="",
        repo_digests=pvector(),
        size=0,
        virtual_size=0,
        labels=None,
        containers=0,
        read_only=False,
        dangling=False,
        names=pvector(),
        digest="",
        history=pvector(),
        created=0,
        created_ns=0,
    )
    assert list(summary_object(bare)) == [
        "Id", "ParentId", "RepoTags", "RepoDigests", "Size", "SharedSize", "VirtualSize",
        "Labels", "Containers", "Created", "CreatedAt",
    ]  # fmt: skip
    assert summary_object(bare)["RepoDigests"] == []
    assert summary_object(bare)["Labels"] is None


# --------------------------------------------------------------------------- presentation


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 kB"),
        (11331, "11.3 kB"),  # POD-I-5: the imported test image
        (14376, "14.4 kB"),
        (999_499, "999 kB"),
        (999_999, "1e+03 kB"),  # Go's %.3g
        (5_300_000, "5.3 MB"),
        (1_234_567_890_123, "1.23 TB"),
        (-1, "-1 B"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    """POD-I-1: go-units HumanSizeWithPrecision(size, 3), a space before the unit."""
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "Less than a second"),
        (0, "Less than a second"),
        (1, "1 second"),
        (2, "2 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (int(47.5 * 3600), "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (729 * 86400, "24 months"),
        (730 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    """POD-I-1: go-units HumanDuration (hours rounded, then days, weeks, months, years)."""
    assert human_duration(seconds * SECOND) == text


def test_created_since_uses_whole_seconds() -> None:
    """POD-I-1: the CREATED column counts from the created second (podman truncates)."""
    assert created_since(1_700_000_000, NOW + 999_999_999) == "Less than a second ago"
    assert created_since(1_700_000_000 - 120, NOW) == "2 minutes ago"


def test_created_at() -> None:
    """POD-I-4: CreatedAt is RFC 3339 in UTC; Go's zero time prints year 0001."""
    assert created_at(1_795_972_662) == "2026-11-29T17:17:42Z"
    assert created_at(-62_135_596_800) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("names", "rows"),
    [
        ([], (("<none>", "<none>"),)),
        (["localhost/a:1", "localhost/a:2"], (("localhost/a", "1"), ("localhost/a", "2"))),
        (["localhost/a@sha256:" + "1" * 64, "localhost/a:1"], (("localhost/a", "1"),)),
        (
            ["localhost/a@sha256:" + "1" * 64, "quay.io/b@sha256:" + "2" * 64],
            (("localhost/a", "<none>"),),
        ),
        (["localhost/BAD:1"], (("<none>", "<none>"),)),
        (["localhost/BAD:1", "localhost/ok:1"], (("localhost/ok", "1"),)),
    ],
    ids=[
        "no names",
        "two tags",
        "tag wins over digest",
        "first digest-only name",
        "unparseable only",
        "unparseable skipped",
    ],
)
def test_name_rows(names: list[str], rows: tuple[tuple[str, str], ...]) -> None:
    """POD-I-1: one row per tagged name; <none> when there is none (decision 18 skips bad names)."""
    assert name_rows(names) == rows


def test_repository_and_tag() -> None:
    """podman tokenRepoTag: the name as stored (no normalisation) and the tag."""
    assert repository_and_tag("docker.io/library/cc:latest") == ("docker.io/library/cc", "latest")
    assert repository_and_tag("localhost/BAD:1") is None


def summary(
    image_id: str, created: int, names: list[str], read_only: bool = False, size: int = 11331
) -> ImageSummary:
    return ImageSummary(
        id=image_id,
        parent_id="",
        repo_digests=pvector(),
        size=size,
        virtual_size=size,
        labels=None,
        containers=0,
        read_only=read_only,
        dangling=not names,
        names=pvector(names),
        digest="",
        history=pvector(),
        created=created,
        created_ns=created * SECOND,
    )


OLD = summary("1" * 64, 1_700_000_000 - 7200, ["localhost/old:1", "localhost/old:2"])
NEW = summary("2" * 64, 1_700_000_000 - 60, [])
TIE = summary("3" * 64, 1_700_000_000 - 60, ["localhost/tie:1"], read_only=True)


def test_newest_first_keeps_ties_in_order() -> None:
    """POD-I-1: newest first; equal seconds keep listing order."""
    assert newest_first([OLD, NEW, TIE]) == (NEW, TIE, OLD)
    assert newest_first([OLD, TIE, NEW]) == (TIE, NEW, OLD)


def test_read_only_column_follows_the_last_listed_image() -> None:
    """POD-I-6 (compat): podman shows R/O when the last image it listed is read-only."""
    assert shows_read_only_column([OLD, TIE])
    assert not shows_read_only_column([TIE, OLD])
    assert not shows_read_only_column([])


def test_display_id() -> None:
    """POD-I-1: 12 characters, or sha256:<ID> with --no-trunc."""
    assert display_id("a" * 64, no_trunc=False) == "a" * 12
    assert display_id("a" * 64, no_trunc=True) == "sha256:" + "a" * 64


def test_table_rows() -> None:
    """POD-I-1, POD-I-6: header, one row per name, newest first, R/O when the last is RO."""
    rows = table_rows([OLD, NEW, TIE], NOW)
    assert rows == (
        ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "R/O"),
        ("<none>", "<none>", "2" * 12, "About a minute ago", "11.3 kB", "false"),
        ("localhost/tie", "1", "3" * 12, "About a minute ago", "11.3 kB", "true"),
        ("localhost/old", "1", "1" * 12, "2 hours ago", "11.3 kB", "false"),
        ("localhost/old", "2", "1" * 12, "2 hours ago", "11.3 kB", "false"),
    )
    assert table_rows([], NOW) == (("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"),)


def test_tabulate_matches_podman_layout() -> None:
    """POD-I-1: Go tabwriter(minwidth 12, padding 2): what podman printed for an empty store and a row."""
    empty = tabulate([("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")])
    assert empty == "REPOSITORY  TAG         IMAGE ID    CREATED     SIZE\n"
    rows = tabulate(
        [
            ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "R/O"),
            ("docker.io/library/cc", "latest", "256f7d90bec7", "6 seconds ago", "11.4 kB", "false"),
        ]
    )
    assert rows == (
        "REPOSITORY            TAG         IMAGE ID      CREATED        SIZE        R/O\n"
        "docker.io/library/cc  latest      256f7d90bec7  6 seconds ago  11.4 kB     false\n"
    )


def test_quiet_ids_dedupe_in_display_order() -> None:
    """podman writeID: each displayed ID once, newest first."""
    assert quiet_ids([OLD, NEW, TIE]) == ("2" * 12, "3" * 12, "1" * 12)
    assert quiet_ids([OLD, OLD]) == ("1" * 12,)
    assert quiet_ids([OLD], no_trunc=True) == ("sha256:" + "1" * 64,)


@dataclass(frozen=True)
class JsonCase:
    name: str
    value: object
    text: str


JSON_CASES = [
    JsonCase("empty list", [], "[]"),
    JsonCase("empty object", {}, "{}"),
    JsonCase("null/true/int", [None, True, 7], "[\n    null,\n    true,\n    7\n]"),
    JsonCase("nested", {"a": ["x"], "b": {}}, '{\n    "a": [\n        "x"\n    ],\n    "b": {}\n}'),
    JsonCase("HTML-safe escapes", "<a&b>", '"\\u003ca\\u0026b\\u003e"'),
    JsonCase("control characters", "a\tb\x01\b", '"a\\tb\\u0001\\u0008"'),
    JsonCase("non-ASCII kept", "é", '"é"'),
    JsonCase("C1 controls escaped (not Go)", "a\x9bb", '"a\\u009bb"'),
]


@pytest.mark.parametrize("case", JSON_CASES, ids=lambda c: c.name)
def test_go_json(case: JsonCase) -> None:
    """json.MarshalIndent(v, "", "    ") as podman prints it."""
    assert go_json(case.value) == case.text


def test_go_json_rejects_other_values() -> None:
    """Only JSON's own value types are encoded; false is written as false."""
    assert go_json([False]) == "[\n    false\n]"
    with pytest.raises(TypeError):
        go_json(1.5)


def test_tabulate_nothing() -> None:
    """No rows, no output."""
    assert tabulate([]) == ""


def test_go_json_string_quotes_and_backslashes() -> None:
    """Quotes and backslashes are escaped, with or without other escapes."""
    assert go_json_string('a"b\\c') == '"a\\"b\\\\c"'
    assert go_json_string('<"\\') == '"\\u003c\\"\\\\"'


def test_images_json_one_object_per_image() -> None:
    """POD-I-4 (compat): each image once, newest first (podman repeats it per name)."""
    document = images_json([OLD, NEW])
    assert document.count('"Id"') == 2
    assert document.index("2" * 64) < document.index("1" * 64)
    assert images_json([]) == "[]"
