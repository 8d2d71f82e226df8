"""Unit tests of the removal planner: the references' worked examples, one rule each.

Expected values come from behaviour-list-remove.md (RM-X1..RM-X14, POD-R-*, EV-*,
POD-E-1), storage-format.md (SF-D-8) and decisions.md (2, 10, 16, 19). Stores are
built with ``libimage.spec.builders``; a plan is checked on its reports, errors
(kind and, where the reference gives it, text), events, effects and on the store
``interpret`` leaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import pytest
from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.interpret import interpret
from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    EventType,
    RemovalPlan,
    RemoveContainer,
    RemoveOptions,
    RunContainerHook,
    Untag,
    plan_to_json,
)
from libimage.pure.remove import bundle_requests, bundles_for_listing, plan_removal
from libimage.pure.semantics import PODMAN_4_3, SEED, Semantics
from libimage.pure.snapshot import (
    Container,
    ContainerID,
    ImageID,
    InMemoryContent,
    LayerID,
    QuarantinedRecord,
    Snapshot,
    StoredImage,
)
from libimage.spec.builders import (
    BuiltImage,
    child_of,
    container,
    image,
    in_additional_store,
    layer,
    layer_chain,
    manifest_list,
    missing_config,
    missing_manifest,
    snapshot,
    with_record,
)

FOO = ("localhost/foo:latest", "localhost/foo:v2", "quay.io/x/foo:1")


def plan(
    snap: Snapshot,
    names: Sequence[str],
    semantics: Semantics = SEED,
    **options: object,
) -> RemovalPlan:
    return plan_removal(
        snap,
        names,
        RemoveOptions(**options),  # type: ignore[arg-type]
        Context(semantics=semantics),
    )


def reports(result: RemovalPlan) -> list[tuple[str, list[str], bool]]:
    return [(r.id, list(r.untagged), r.removed) for r in result.reports]


def kinds(result: RemovalPlan) -> list[ErrorKind]:
    return [e.kind for e in result.errors]


def messages(result: RemovalPlan) -> list[str]:
    return [e.message for e in result.errors]


def events(result: RemovalPlan) -> list[tuple[str, str, str]]:
    return [(e.type.value, e.id, e.name) for e in result.events]


def image_ids(snap: Snapshot) -> list[str]:
    return [i.id for i in snap.images]


def names_of(snap: Snapshot, image_id: str) -> list[str]:
    return next(list(i.names) for i in snap.images if i.id == image_id)


def layer_ids(snap: Snapshot) -> set[str]:
    return {lay.id for lay in snap.layers}


# ---------------------------------------------------------------------------
# RM-X1..RM-X14 (behaviour-list-remove.md 5.7)


def _foo(names: Sequence[str] = FOO) -> BuiltImage:
    return image("A", names, layers=layer_chain("a-layer"))


@dataclass(frozen=True)
class Example:
    """One worked example: store, call, reports, error kinds and texts, store after."""

    store: Callable[[], tuple[Snapshot, dict[str, str]]]
    names: tuple[str, ...]
    options: dict[str, object] = field(default_factory=dict)
    reports: Callable[[dict[str, str]], list[tuple[str, list[str], bool]]] = lambda _ids: []
    errors: tuple[ErrorKind, ...] = ()
    texts: Callable[[dict[str, str]], list[str]] | None = None
    remaining: Callable[[dict[str, str]], dict[str, list[str]]] | None = None


def _store_a() -> tuple[Snapshot, dict[str, str]]:
    a = _foo()
    return snapshot([a]), {"A": a.id}


def _store_a_two() -> tuple[Snapshot, dict[str, str]]:
    a = _foo(FOO[:2])
    return snapshot([a]), {"A": a.id}


def _store_bar() -> tuple[Snapshot, dict[str, str]]:
    a = _foo(["localhost/bar:latest"])
    return snapshot([a]), {"A": a.id}


def _store_in_use() -> tuple[Snapshot, dict[str, str]]:
    a = _foo(["localhost/foo:latest"])
    c = container("C", a)
    return snapshot([a], containers=[c]), {"A": a.id, "C": c.id}


def _store_in_use_two() -> tuple[Snapshot, dict[str, str]]:
    a = _foo(["localhost/a:1", "localhost/a:2"])
    c = container("C", a)
    return snapshot([a], containers=[c]), {"A": a.id, "C": c.id}


def _store_parent(named: bool) -> Callable[[], tuple[Snapshot, dict[str, str]]]:
    def build() -> tuple[Snapshot, dict[str, str]]:
        p = image("P", ["localhost/p:latest"] if named else [], layers=layer_chain("p-layer"))
        c = child_of(p, "C", ["localhost/c:latest"])
        return snapshot([p, c]), {"P": p.id, "C": c.id}

    return build


def _store_dangling() -> tuple[Snapshot, dict[str, str]]:
    named = image("N", ["localhost/n:1"], layers=layer_chain("n"))
    d1 = image("D1", [], layers=layer_chain("d1"))
    d2 = image("D2", [], layers=layer_chain("d2"))
    return snapshot([d1, named, d2]), {"D1": d1.id, "N": named.id, "D2": d2.id}


def _store_read_only() -> tuple[Snapshot, dict[str, str]]:
    r = in_additional_store(image("R", ["localhost/r:1"], layers=layer_chain("r")))
    return snapshot([r]), {"R": r.id}


EXAMPLES = {
    "RM-X1": Example(
        _store_a,
        ("foo:v2",),
        reports=lambda i: [(i["A"], ["localhost/foo:v2"], False)],
        remaining=lambda i: {i["A"]: ["localhost/foo:latest", "quay.io/x/foo:1"]},
    ),
    "RM-X2": Example(
        _store_a,
        ("<A12>",),
        errors=(ErrorKind.NEEDS_FORCE_BY_ID,),
        texts=lambda i: [
            f'unable to delete image "{i["A"]}" by ID with more than one tag '
            "([localhost/foo:latest localhost/foo:v2 quay.io/x/foo:1]): please force removal"
        ],
        remaining=lambda i: {i["A"]: list(FOO)},
    ),
    "RM-X3": Example(
        _store_a,
        ("sha256:<A>",),
        errors=(ErrorKind.NEEDS_FORCE_BY_DIGEST,),
        texts=lambda i: [
            f'unable to delete image "{i["A"]}" by digest with more than one tag '
            "([localhost/foo:latest localhost/foo:v2 quay.io/x/foo:1]): please force removal"
        ],
        remaining=lambda i: {i["A"]: list(FOO)},
    ),
    "RM-X4": Example(
        _store_a,
        ("<A12>",),
        {"force": True},
        reports=lambda i: [(i["A"], list(FOO), True)],
        remaining=lambda _i: {},
    ),
    "RM-X5": Example(
        _store_a_two,
        ("foo", "foo"),
        reports=lambda i: [(i["A"], ["localhost/foo:latest", "localhost/foo:v2"], True)],
        remaining=lambda _i: {},
    ),
    "RM-X6": Example(
        _store_bar,
        ("nonexistent", "bar"),
        reports=lambda i: [(i["A"], ["localhost/bar:latest"], True)],
        errors=(ErrorKind.IMAGE_UNKNOWN,),
        texts=lambda _i: ["nonexistent: image not known"],
        remaining=lambda _i: {},
    ),
    "RM-X7": Example(
        _store_in_use,
        ("foo",),
        reports=lambda i: [(i["A"], [], False)],
        errors=(ErrorKind.IMAGE_IN_USE,),
        texts=lambda i: [f"Image used by {i['C']}: image is in use by a container"],
        remaining=lambda i: {i["A"]: ["localhost/foo:latest"]},
    ),
    "RM-X8": Example(
        _store_in_use,
        ("foo",),
        {"force": True},
        reports=lambda i: [(i["A"], ["localhost/foo:latest"], True)],
        remaining=lambda _i: {},
    ),
    "RM-X9": Example(
        _store_in_use_two,
        ("a:1",),
        reports=lambda i: [(i["A"], ["localhost/a:1"], False)],
        remaining=lambda i: {i["A"]: ["localhost/a:2"]},
    ),
    "RM-X10": Example(
        _store_in_use_two,
        ("a:1", "a:2"),
        reports=lambda i: [(i["A"], ["localhost/a:1"], False)],
        errors=(ErrorKind.IMAGE_IN_USE,),
        remaining=lambda i: {i["A"]: ["localhost/a:2"]},
    ),
    "RM-X11": Example(
        _store_parent(named=True),
        ("p",),
        reports=lambda i: [(i["P"], ["localhost/p:latest"], False)],
        remaining=lambda i: {i["C"]: ["localhost/c:latest"]},
    ),
    "RM-X12": Example(
        _store_parent(named=False),
        ("c",),
        reports=lambda i: [(i["C"], ["localhost/c:latest"], True), (i["P"], [], True)],
        remaining=lambda _i: {},
    ),
    "RM-X13": Example(
        _store_dangling,
        (),
        {"filters": pvector(["dangling=true"])},
        reports=lambda i: [(i["D1"], [], True), (i["D2"], [], True)],
        remaining=lambda i: {i["N"]: ["localhost/n:1"]},
    ),
    "RM-X14": Example(
        _store_read_only,
        ("r:1",),
        errors=(ErrorKind.READ_ONLY,),
        texts=lambda i: [f'cannot remove read-only image "{i["R"]}"'],
        remaining=lambda i: {i["R"]: ["localhost/r:1"]},
    ),
    "RM-X14-force": Example(
        _store_read_only,
        ("r:1",),
        {"force": True},
        errors=(ErrorKind.READ_ONLY,),
        remaining=lambda i: {i["R"]: ["localhost/r:1"]},
    ),
}


def _expand(name: str, ids: dict[str, str]) -> str:
    return name.replace("<A12>", ids.get("A", "")[:12]).replace("<A>", ids.get("A", ""))


@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_worked_examples(example: Example) -> None:
    """RM-X1..RM-X14: reports, error kinds and texts, and the store afterwards."""
    snap, ids = example.store()
    names = [_expand(name, ids) for name in example.names]
    result = plan(snap, names, SEED, **example.options)
    assert reports(result) == example.reports(ids)
    assert tuple(kinds(result)) == example.errors
    if example.texts is not None:
        assert messages(result) == example.texts(ids)
    if example.remaining is not None:
        after = interpret(snap, result)
        assert {i.id: list(i.names) for i in after.images} == example.remaining(ids)


def test_rm_x8_removes_the_container_before_the_image() -> None:
    """RM-X8, RM-D2: C's record and layer go first, then A and its layer (SF-D-C)."""
    snap, _ids = _store_in_use()
    result = plan(snap, ["foo"], force=True)
    kinds_of = [type(e).__name__ for e in result.effects]
    assert kinds_of == ["RemoveContainer", "Untag", "DeleteImage", "DeleteLayer"]
    after = interpret(snap, result)
    assert after.containers == pvector()
    assert after.layers == pvector()


def test_rm_x11_keeps_the_parents_layers() -> None:
    """RM-X11, RM-D7: P's record goes, its layer stays under C's (SF-D-8 b)."""
    snap, ids = _store_parent(named=True)()
    after = interpret(snap, plan(snap, ["p"]))
    assert image_ids(after) == [ids["C"]]
    assert layer_ids(after) == layer_ids(snap)


def test_rm_x12_frees_every_layer() -> None:
    """RM-X12, POD-R-9: both records and both layers go (SF-O-5)."""
    snap, _ids = _store_parent(named=False)()
    after = interpret(snap, plan(snap, ["c"]))
    assert after.images == pvector()
    assert after.layers == pvector()


# ---------------------------------------------------------------------------
# POD-R-*: observed podman 4.3.1 runs (the pure part: texts, kinds, reports)


def _four_names() -> BuiltImage:
    return image(
        "four",
        ["localhost/foo:latest", "localhost/foo:v2", "quay.io/x/foo:1", "localhost/bar:latest"],
        layers=layer_chain("four"),
    )


def test_pod_r_1_untags_one_of_four_names() -> None:
    """POD-R-1: ``rmi foo:v2`` prints only ``Untagged: localhost/foo:v2``."""
    four = _four_names()
    result = plan(snapshot([four]), ["foo:v2"], PODMAN_4_3)
    assert reports(result) == [(four.id, ["localhost/foo:v2"], False)]
    assert result.errors == pvector()


@pytest.mark.parametrize("prefix", [12, 4, 1], ids=["12-chars", "4-chars", "1-char"])
def test_pod_r_2_and_6_refuse_by_id_prefix(prefix: int) -> None:
    """POD-R-2, POD-R-6: an ID prefix of any length names the image: refused without -f."""
    three = image("three", FOO, layers=layer_chain("three"))
    result = plan(snapshot([three]), [three.id[:prefix]], PODMAN_4_3)
    assert kinds(result) == [ErrorKind.NEEDS_FORCE_BY_ID]
    assert result.reports == pvector()
    assert messages(result)[0].startswith(f'unable to delete image "{three.id}" by ID')


def test_pod_r_3_refuses_by_full_digest() -> None:
    """POD-R-3, RM-U4: ``sha256:<full id>`` is by digest, not by ID."""
    three = image("three", FOO, layers=layer_chain("three"))
    result = plan(snapshot([three]), ["sha256:" + three.id], PODMAN_4_3)
    assert kinds(result) == [ErrorKind.NEEDS_FORCE_BY_DIGEST]


def test_pod_r_4_and_5_unknown_names() -> None:
    """POD-R-4, POD-R-5: an unknown name is an error; the others are still removed."""
    bar = image("bar", ["localhost/bar:latest"], layers=layer_chain("bar"))
    result = plan(snapshot([bar]), ["nonexistent", "bar"], PODMAN_4_3)
    assert messages(result) == ["nonexistent: image not known"]
    assert reports(result) == [(bar.id, ["localhost/bar:latest"], True)]


def test_pod_r_7_repo_digest_of_a_two_name_image_is_tag_not_known() -> None:
    """POD-R-7, RM-U6: the digest reference is untagged, and is not a stored name."""
    two = image("two", ["localhost/foo:latest", "localhost/foo:v2"], layers=layer_chain("two"))
    name = f"localhost/foo@{two.manifest_digest}"
    result = plan(snapshot([two]), [name], PODMAN_4_3)
    assert kinds(result) == [ErrorKind.TAG_NOT_KNOWN]
    assert messages(result) == [f"{name}: tag not known"]
    assert result.reports == pvector()  # RM-7: failed before being marked processed
    assert result.effects == pvector()


def test_pod_r_7b_repo_digest_of_a_one_name_image_deletes() -> None:
    """POD-R-7b: with one name, the digest reference deletes the image."""
    one = image("dd", ["localhost/dd:1"], layers=layer_chain("dd"))
    result = plan(snapshot([one]), [f"localhost/dd@{one.manifest_digest}"], PODMAN_4_3)
    assert reports(result) == [(one.id, ["localhost/dd:1"], True)]


@pytest.mark.parametrize(
    "form", ["sha256-id", "12-char-id", "transport"], ids=["sha256-id", "12-char-id", "transport"]
)
def test_pod_r_7c_one_name_image_is_deleted(form: str) -> None:
    """POD-R-7c: ``sha256:<id>``, a 12-character ID and a storage-transport name delete."""
    one = image("ee", ["localhost/ee:1"], layers=layer_chain("ee"))
    name = {
        "sha256-id": "sha256:" + one.id,
        "12-char-id": one.id[:12],
        "transport": "containers-storage:localhost/ee:1",
    }[form]
    result = plan(snapshot([one]), [name], PODMAN_4_3)
    assert reports(result) == [(one.id, ["localhost/ee:1"], True)]
    assert result.errors == pvector()


def test_pod_r_7c_transport_name_deletes_a_multi_name_image() -> None:
    """RLK-1: a storage-transport name resolves to "", so every name goes."""
    three = image("three", FOO, layers=layer_chain("three"))
    result = plan(snapshot([three]), ["containers-storage:localhost/foo:v2"])
    assert reports(result) == [(three.id, list(FOO), True)]


def test_pod_r_8_two_references_to_one_image() -> None:
    """POD-R-8: ``rmi aa:1 localhost/aa:1`` untags aa:1, then deletes with aa:2."""
    aa = image("aa", ["localhost/aa:1", "localhost/aa:2"], layers=layer_chain("aa"))
    result = plan(snapshot([aa]), ["aa:1", "localhost/aa:1"], PODMAN_4_3)
    assert reports(result) == [(aa.id, ["localhost/aa:1", "localhost/aa:2"], True)]


def test_pod_r_8b_repeated_unknown_name() -> None:
    """POD-R-8b: each unknown name is its own error."""
    aa = image("aa", ["localhost/aa:1"], layers=layer_chain("aa"))
    result = plan(snapshot([aa]), ["aa:2", "aa:2"], PODMAN_4_3)
    assert messages(result) == ["aa:2: image not known", "aa:2: image not known"]
    assert result.reports == pvector()


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_pod_r_10_named_parent_is_only_untagged(force: bool) -> None:
    """POD-R-10, RM-D7, RM-D9: ``rmi [-f] base`` with a child: Untagged, not Deleted."""
    snap, ids = _store_parent(named=True)()
    result = plan(snap, ["p"], PODMAN_4_3, force=force)
    assert reports(result) == [(ids["P"], ["localhost/p:latest"], False)]
    assert image_ids(interpret(snap, result)) == [ids["C"]]


def test_pod_r_11_all_with_an_image_in_use() -> None:
    """POD-R-11: ``rmi -a`` removes what it can; the image in use is an error (with hint)."""
    aa = image("aa", ["localhost/aa:1", "localhost/aa:2"], layers=layer_chain("aa"))
    bb = image("bb", ["localhost/bb:1"], layers=layer_chain("bb"))
    dangling = image("dangling", [], layers=layer_chain("dangling"))
    user = container("c1", bb, podman_managed=True)
    snap = snapshot([aa, bb, dangling], containers=[user])
    result = plan(snap, [], PODMAN_4_3)
    assert reports(result) == [
        (aa.id, ["localhost/aa:1", "localhost/aa:2"], True),
        (bb.id, [], False),
        (dangling.id, [], True),
    ]
    assert messages(result) == [
        f"image used by {user.id}: image is in use by a container: "
        "consider listing external containers and force-removing image"
    ]


def test_pod_r_11b_all_force_with_podmans_hook() -> None:
    """POD-R-11b: podman's own hook removes its container; the image goes (RM-C2)."""
    bb = image("bb", ["localhost/bb:1"], layers=layer_chain("bb"))
    user = container("c1", bb, podman_managed=True)
    snap = snapshot([bb], containers=[user])
    result = plan(snap, [], PODMAN_4_3, force=True, container_hook=True)
    assert reports(result) == [(bb.id, ["localhost/bb:1"], True)]
    assert result.effects[:2] == pvector(
        [
            RunContainerHook(bb.id, "RM-C2", result.effects[0].why),
            RemoveContainer(user.id, bb.id, "RM-C5", result.effects[1].why),
        ]
    )
    after = interpret(snap, result)
    assert (after.images, after.containers, after.layers) == (pvector(), pvector(), pvector())


def _child_with_buildah_container() -> tuple[Snapshot, dict[str, str]]:
    base = image("base", ["localhost/base:1"], layers=layer_chain("base"))
    child = child_of(base, "child", ["localhost/child:latest"])
    user = container("buildah", child)
    return snapshot([base, child], containers=[user]), {"child": child.id, "C": user.id}


def test_pod_r_12_buildah_container_blocks() -> None:
    """POD-R-12: the storage container blocks ``rmi child`` (exit 2 is the CLI's)."""
    snap, ids = _child_with_buildah_container()
    result = plan(snap, ["child"], PODMAN_4_3)
    assert kinds(result) == [ErrorKind.IMAGE_IN_USE]
    assert messages(result)[0].startswith(f"image used by {ids['C']}: ")


def test_pod_r_12b_force_removes_the_buildah_container() -> None:
    """POD-R-12b, RM-C6: ``rmi -f child`` deletes the container, then the image."""
    snap, ids = _child_with_buildah_container()
    result = plan(snap, ["child"], PODMAN_4_3, force=True)
    assert reports(result) == [(ids["child"], ["localhost/child:latest"], True)]
    after = interpret(snap, result)
    assert after.containers == pvector()
    assert ids["child"] not in image_ids(after)


def _multi_and_in_use() -> tuple[Snapshot, BuiltImage, BuiltImage]:
    multi = image("multi", ["localhost/m:1", "localhost/m:2"], layers=layer_chain("multi"))
    bb = image("bb", ["localhost/bb:1"], layers=layer_chain("bb"))
    return snapshot([multi, bb], containers=[container("c", bb)]), multi, bb


def test_pod_r_13_error_order() -> None:
    """POD-R-13, RM-8: lookup errors first, then removal errors in processing order."""
    snap, multi, _bb = _multi_and_in_use()
    result = plan(snap, ["nonexistent", multi.id[:12]], PODMAN_4_3)
    assert kinds(result) == [ErrorKind.IMAGE_UNKNOWN, ErrorKind.NEEDS_FORCE_BY_ID]
    result = plan(snap, ["bb:1", multi.id[:12]], PODMAN_4_3)
    assert kinds(result) == [ErrorKind.IMAGE_IN_USE, ErrorKind.NEEDS_FORCE_BY_ID]
    result = plan(snap, ["bb:1", multi.id[:12], "nonexistent"], PODMAN_4_3)
    assert kinds(result) == [
        ErrorKind.IMAGE_UNKNOWN,
        ErrorKind.IMAGE_IN_USE,
        ErrorKind.NEEDS_FORCE_BY_ID,
    ]


def test_pod_r_14_untag_is_not_blocked_by_a_container() -> None:
    """POD-R-14, POD-R-14b: the container blocks only the delete, after a:1 is untagged."""
    snap, ids = _store_in_use_two()
    assert reports(plan(snap, ["a:1"], PODMAN_4_3)) == [(ids["A"], ["localhost/a:1"], False)]
    both = plan(snap, ["a:1", "a:2"], PODMAN_4_3)
    assert reports(both) == [(ids["A"], ["localhost/a:1"], False)]
    assert kinds(both) == [ErrorKind.IMAGE_IN_USE]


def test_pod_r_15_ambiguous_prefix_is_unknown() -> None:
    """POD-R-15: a prefix two IDs share is not found."""
    one = image("one", ["localhost/one:1"], image_id="7" + "a" * 63)
    two = image("two", ["localhost/two:1"], image_id="7" + "b" * 63)
    result = plan(snapshot([one, two]), ["7"], PODMAN_4_3)
    assert messages(result) == ["7: image not known"]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_pod_r_16_read_only_image(force: bool) -> None:
    """POD-R-16, RM-D0: no report, no event, no effect, with or without -f."""
    snap, ids = _store_read_only()
    result = plan(snap, ["r:1"], PODMAN_4_3, force=force)
    assert messages(result) == [f'cannot remove read-only image "{ids["R"]}"']
    assert (result.reports, result.events, result.effects) == (pvector(), pvector(), pvector())


# ---------------------------------------------------------------------------
# EV-*, POD-E-1


def test_ev_2_parent_event_fires_before_the_childs() -> None:
    """EV-2: ``rmi C`` pruning P: ``Remove{P,""}`` then ``Remove{C, name}``."""
    snap, ids = _store_parent(named=False)()
    assert events(plan(snap, ["c"])) == [
        ("remove", ids["P"], ""),
        ("remove", ids["C"], "localhost/c:latest"),
    ]


def test_ev_3_untag_then_remove() -> None:
    """EV-3: ``rmi a:2`` (untag only) is ``Untag{a:2}`` then ``Remove{a:2}``."""
    snap, ids = _store_in_use_two()
    assert events(plan(snap, ["a:2"])) == [
        ("untag", ids["A"], "localhost/a:2"),
        ("remove", ids["A"], "localhost/a:2"),
    ]


def test_ev_3_untag_event_fires_on_tag_not_known() -> None:
    """EV-3: normalisation succeeded, so the untag event fires even though it failed."""
    two = image("two", ["localhost/foo:latest", "localhost/foo:v2"], layers=layer_chain("two"))
    name = f"localhost/foo@{two.manifest_digest}"
    assert [e[0] for e in events(plan(snapshot([two]), [name]))] == ["untag", "remove"]


def test_ev_4_seed_has_no_untag_events_on_delete() -> None:
    """EV-4: at the seed, deleting drops names without untag events."""
    snap, _ids = _store_parent(named=False)()
    assert [e[0] for e in events(plan(snap, ["c"]))] == ["remove", "remove"]


def test_pod_e_1_podman_untag_events() -> None:
    """POD-E-1: the three observed sequences, in the podman-4.3 profile."""
    aa = image("aa", ["localhost/aa:1", "localhost/aa:2"], layers=layer_chain("aa"))
    assert events(plan(snapshot([aa]), ["aa:2"], PODMAN_4_3)) == [
        ("untag", aa.id, "localhost/aa:2"),
        ("remove", aa.id, "localhost/aa:2"),
    ]
    aa3 = image("aa", ["localhost/aa:1", "localhost/aa:3"], layers=layer_chain("aa"))
    result = plan(snapshot([aa3]), ["aa:1"], PODMAN_4_3, force=True)
    assert events(result) == [
        ("untag", aa3.id, "localhost/aa:1"),
        ("remove", aa3.id, "localhost/aa:1"),
    ]
    assert names_of(interpret(snapshot([aa3]), result), aa3.id) == ["localhost/aa:3"]
    snap, ids = _store_parent(named=False)()
    assert events(plan(snap, ["c"], PODMAN_4_3)) == [
        ("untag", ids["C"], "localhost/c:latest"),
        ("remove", ids["P"], ""),
        ("remove", ids["C"], "localhost/c:latest"),
    ]


# ---------------------------------------------------------------------------
# RM-2, RM-C*, decision 19


def test_rm_2_external_containers_need_a_callback() -> None:
    """RM-2: refused at once, nothing looked up."""
    snap, _ids = _store_a()
    result = plan(snap, ["nonexistent"], external_containers=True)
    assert messages(result) == [
        "libimage error: cannot remove external containers without callback"
    ]


def test_rm_c4_all_external_containers_are_removed() -> None:
    """RM-C4: without force, external containers go and the image is deleted."""
    snap, ids = _store_in_use()
    result = plan(snap, ["foo"], external_containers=True, is_external_container=lambda _cid: True)
    assert reports(result) == [(ids["A"], ["localhost/foo:latest"], True)]
    assert result.effects[0] == RemoveContainer(
        ContainerID(ids["C"]), ImageID(ids["A"]), "RM-C4", result.effects[0].why
    )


def test_rm_c4_one_non_external_container_blocks() -> None:
    """RM-C4: a container that is not external stops the removal of this image."""
    snap, ids = _store_in_use()
    result = plan(snap, ["foo"], external_containers=True, is_external_container=lambda _cid: False)
    assert messages(result) == [f"cannot remove container {ids['C']}: not an external container"]
    assert reports(result) == [(ids["A"], [], False)]  # RM-D2: processed before failing
    assert result.effects == pvector()


def test_rm_c4_callback_error() -> None:
    """RM-C4: the callback's error is wrapped with the container ID."""
    snap, ids = _store_in_use()

    def broken(cid: str) -> bool:
        raise fail(ErrorKind.INTERNAL, cid, "database is locked")

    result = plan(snap, ["foo"], external_containers=True, is_external_container=broken)
    assert kinds(result) == [ErrorKind.EXTERNAL_CALLBACK]
    assert messages(result) == [
        f"checking if {ids['C']} is an external container: database is locked"
    ]


def _podman_and_buildah() -> tuple[Snapshot, dict[str, str]]:
    a = _foo(["localhost/foo:latest"])
    managed = container("podman", a, podman_managed=True)
    external = container("buildah", a)
    return snapshot([a], containers=[managed, external]), {
        "A": a.id,
        "podman": managed.id,
        "buildah": external.id,
    }


def test_decision_19_podman_container_is_refused_without_a_hook() -> None:
    """Decision 19: ``-f`` removes the buildah container but not podman's; A stays."""
    snap, ids = _podman_and_buildah()
    result = plan(snap, ["foo"], PODMAN_4_3, force=True)
    assert kinds(result) == [ErrorKind.PODMAN_CONTAINER]
    assert ids["podman"] in messages(result)[0]
    assert f'run "podman rm {ids["podman"]}" first' in messages(result)[0]
    assert reports(result) == [(ids["A"], [], False)]
    after = interpret(snap, result)
    assert [c.id for c in after.containers] == [ids["podman"]]
    assert image_ids(after) == [ids["A"]]


def test_decision_19_hook_removes_podman_containers() -> None:
    """RM-C2: with a hook, every storage container gets a RemoveContainer after it."""
    snap, _ids = _podman_and_buildah()
    result = plan(snap, ["foo"], force=True, container_hook=True)
    assert [type(e).__name__ for e in result.effects[:3]] == [
        "RunContainerHook",
        "RemoveContainer",
        "RemoveContainer",
    ]
    assert result.errors == pvector()


# ---------------------------------------------------------------------------
# Decision 16


@pytest.mark.parametrize(
    ("semantics", "expected"),
    [(SEED, [ErrorKind.IMAGE_UNKNOWN]), (PODMAN_4_3, [])],
    ids=["seed", "podman-4.3"],
)
def test_decision_16_force_and_unknown_names(
    semantics: Semantics, expected: list[ErrorKind]
) -> None:
    """Decision 16: ``-f nonexistent bar`` removes bar; the unknown name is an error in
    the seed profile and ignored in podman-4.3."""
    snap, ids = _store_bar()
    result = plan(snap, ["nonexistent", "bar"], semantics, force=True)
    assert kinds(result) == expected
    assert reports(result) == [(ids["A"], ["localhost/bar:latest"], True)]


def test_decision_16_force_keeps_other_lookup_errors() -> None:
    """Decision 16 only drops "image not known": an invalid name stays an error."""
    snap, _ids = _store_bar()
    result = plan(snap, ["BAR"], PODMAN_4_3, force=True)
    assert kinds(result) == [ErrorKind.NAME_CONTAINS_UPPERCASE]


# ---------------------------------------------------------------------------
# RM-D5 texts per profile


@pytest.mark.parametrize(
    ("semantics", "text"),
    [
        (SEED, "Image used by {c}: image is in use by a container"),
        (
            PODMAN_4_3,
            "image used by {c}: image is in use by a container: "
            "consider listing external containers and force-removing image",
        ),
    ],
    ids=["seed", "podman-4.3"],
)
def test_rm_d5_in_use_text(semantics: Semantics, text: str) -> None:
    """RM-D5: the last container using the image is named (SF-D-3)."""
    a = _foo(["localhost/foo:latest"])
    first, last = container("first", a), container("last", a)
    result = plan(snapshot([a], containers=[first, last]), ["foo"], semantics)
    assert messages(result) == [text.format(c=last.id)]


# ---------------------------------------------------------------------------
# Decision 2: seed quirks, pinned


def test_quirk_rm_d1_size_of_a_vanished_image_and_names_twice() -> None:
    """RM-D1, RM-D6: a second reference to a parent deleted earlier in the call.

    The first deletes it (children: not removed); the second sees the cached names,
    cannot read the config of the deleted image (so "no children"), reports the
    names again, ``Size == -1`` and ``Removed``.
    """
    p = image("P", ["localhost/p:1", "localhost/p:2"], layers=layer_chain("p"))
    c = child_of(p, "C", ["localhost/c:1"])
    snap = snapshot([p, c])
    result = plan(snap, [p.id, p.id[:12]], force=True, with_size=True)
    assert reports(result) == [
        (p.id, ["localhost/p:1", "localhost/p:2", "localhost/p:1", "localhost/p:2"], True)
    ]
    assert result.reports[0].size == -1
    assert [type(e).__name__ for e in result.effects].count("DeleteImage") == 1


def test_rm_d1_size_before_deletion() -> None:
    """RM-D1, RM-R4: the size is IP-13's, taken before the image is deleted."""
    a = image("A", ["localhost/a:1"], layers=layer_chain("a1", "a2", size=1000))
    result = plan(snapshot([a]), ["a:1"], with_size=True)
    assert result.reports[0].size == 2000 + sum(a.record.big_data_sizes.values())


def test_quirk_rlk_3_hex_short_name_is_an_id_prefix() -> None:
    """RLK-3 (seed): ``rmi abc`` removes the image whose ID starts with abc."""
    by_id = image("byid", ["localhost/x:1"], image_id="abc" + "0" * 61)
    named = image("named", ["localhost/abc:latest"], image_id="f" * 64)
    result = plan(snapshot([by_id, named]), ["abc"])
    assert reports(result) == [(by_id.id, ["localhost/x:1"], True)]
    assert reports(plan(snapshot([by_id, named]), ["abc"], PODMAN_4_3)) == [
        (named.id, ["localhost/abc:latest"], True)
    ]


def test_rm_4_duplicate_ids_are_queued_twice() -> None:
    """RM-4, LS-3: a read-only image and its read-write copy; both passes use the later."""
    ro = in_additional_store(image("ro", ["localhost/ro:1"], layers=layer_chain("ro")))
    copy = replace(ro.record, read_only=False, store_index=0, names=pvector(["localhost/ro:2"]))
    bundles = bundles_for_listing([copy, ro.record])
    assert [b.image for b in bundles] == [ro.record, ro.record]
    result = plan(snapshot([copy, ro]), [])
    assert kinds(result) == [ErrorKind.READ_ONLY, ErrorKind.READ_ONLY]


def test_rm_4_readonly_filter_skips_the_read_only_copy() -> None:
    """Decision 15: ``readonly=false`` lists only the read-write copy, which goes."""
    ro = in_additional_store(image("ro", ["localhost/ro:1"], layers=layer_chain("ro")))
    copy = replace(ro.record, read_only=False, store_index=0, names=pvector(["localhost/ro:2"]))
    result = plan(snapshot([copy, ro]), [], filters=pvector(["readonly=false"]))
    assert reports(result) == [(ro.id, ["localhost/ro:2"], True)]
    assert [i.store_index for i in interpret(snapshot([copy, ro]), result).images] == [1]


def test_rm_4_filter_error_removes_nothing() -> None:
    """RM-4, RM-E3: a listing error is the only error."""
    snap, _ids = _store_a()
    result = plan(snap, [], filters=pvector(["foo=bar"]))
    assert messages(result) == ['unsupported image filter "foo"']
    assert result.effects == pvector()


def test_rm_3_bundles_keep_first_seen_order_and_duplicates() -> None:
    """RM-3: one bundle per ID, first-seen order, resolved names with repeats."""
    a = image("a", ["localhost/a:1", "localhost/a:2"])
    b = image("b", ["localhost/b:1"])
    bundling = bundle_requests(
        snapshot([a, b]), ["b:1", "a:1", "nope", "localhost/b:1", "a:1"], RemoveOptions(), Context()
    )
    assert [(x.image.id, list(x.referenced_by)) for x in bundling.bundles] == [
        (b.id, ["localhost/b:1", "localhost/b:1"]),
        (a.id, ["localhost/a:1", "localhost/a:1"]),
    ]
    assert [e.message for e in bundling.errors] == ["nope: image not known"]


def test_rm_3_lookup_manifest_refuses_plain_images() -> None:
    """RM-3, RLK-7: with ``lookup_manifest`` a plain image is not a manifest list."""
    snap, _ids = _store_bar()
    result = plan(snap, ["bar"], lookup_manifest=True)
    assert kinds(result) == [ErrorKind.NOT_A_MANIFEST_LIST]


def test_rm_t2_unparseable_name_fails_in_the_lookup() -> None:
    """RM-T2 is reached only by names the lookup parsed (LK-3): a bad name fails there."""
    a = image("a", ["localhost/a:1", "Bad/Name"], layers=layer_chain("a"))
    result = plan(snapshot([a]), ["Bad/Name"])
    assert kinds(result) == [ErrorKind.NAME_CONTAINS_UPPERCASE]
    assert messages(result) == ["repository name must be lowercase"]
    assert result.effects == pvector()


# ---------------------------------------------------------------------------
# SF-D-8 and the layer walk (SF-D-6, SF-D-7)


def test_sf_d_8_a_single_image() -> None:
    """SF-D-8 (a): image A alone on L1: the record and L1 go."""
    a = image("A", ["localhost/a:1"], layers=layer_chain("L1"))
    result = plan(snapshot([a]), ["a:1"])
    assert [e for e in result.effects if isinstance(e, DeleteLayer)] == [
        DeleteLayer(LayerID(a.record.top_layer), "SF-D-6", result.effects[-1].why)
    ]


def test_sf_d_8_b_parent_then_child() -> None:
    """SF-D-8 (b): deleting P keeps L1 (L2 is on it); deleting C then frees L2 and L1."""
    p = image("P", ["localhost/p:1"], layers=layer_chain("L1"))
    c = child_of(p, "C", ["localhost/c:1"])
    snap = snapshot([p, c])
    first = plan(snap, ["p:1"])
    assert not any(isinstance(e, DeleteLayer) for e in first.effects)
    middle = interpret(snap, first)
    second = plan(middle, ["c:1"])
    assert [e.layer for e in second.effects if isinstance(e, DeleteLayer)] == [
        c.record.top_layer,
        p.record.top_layer,
    ]
    assert interpret(middle, second).layers == pvector()


def test_sf_d_8_c_shared_top_layer() -> None:
    """SF-D-8 (c): two images on one top layer: deleting one leaves it."""
    chain = layer_chain("L1")
    one = image("one", ["localhost/one:1"], layers=chain)
    two = image("two", ["localhost/two:1"], layers=chain)
    result = plan(snapshot([one, two]), ["one:1"])
    assert not any(isinstance(e, DeleteLayer) for e in result.effects)


def test_sf_d_8_d_container_blocks() -> None:
    """SF-D-8 (d), SF-D-3: a container on the image blocks the deletion entirely."""
    snap, _ids = _store_in_use()
    assert plan(snap, ["foo"]).effects == pvector()


def test_sf_d_7_mapped_layers_go_first_even_when_the_top_layer_stays() -> None:
    """SF-D-7 (storage 1.43): mapped layers are scheduled first, always."""
    chain = layer_chain("L1")
    mapped = layer("mapped", parent=chain[0])
    one = with_record(image("one", ["localhost/one:1"], layers=chain), mapped_layers=[mapped.id])
    two = image("two", ["localhost/two:1"], layers=chain)
    result = plan(snapshot([one, two], [mapped]), ["one:1"])
    assert [(e.layer, e.rule) for e in result.effects if isinstance(e, DeleteLayer)] == [
        (mapped.id, "SF-D-7")
    ]


def test_sf_d_6_layer_loop_stops_the_walk() -> None:
    """SF-D-6: in a damaged store whose parents form a loop, every layer of the loop has
    a child that is not scheduled, so the walk stops at once; the record still goes."""
    loop_a = layer("loop-a", parent="0" * 64, layer_id="a" * 64)
    loop_b = layer("loop-b", parent=loop_a.id, layer_id="0" * 64)
    on_loop = with_record(image("x", ["localhost/x:1"]), top_layer=loop_b.id)
    result = plan(snapshot([on_loop], [loop_a, loop_b]), ["x:1"])
    assert [type(e).__name__ for e in result.effects] == ["Untag", "DeleteImage"]


def test_sf_d_7_mapped_top_layer_is_deleted_once() -> None:
    """SF-D-7: a mapped layer that is also the top layer is deleted once; storage's
    second delete of it would fail and abort the rest of the walk."""
    chain = layer_chain("L1", "L2")
    odd = with_record(image("odd", ["localhost/odd:1"], layers=chain), mapped_layers=[chain[1].id])
    result = plan(snapshot([odd]), ["odd:1"])
    assert [e.layer for e in result.effects if isinstance(e, DeleteLayer)] == [chain[1].id]


# ---------------------------------------------------------------------------
# Decision 10: quarantined records


def _quarantined(
    kind: str, layer: str = "", parent: str = "", image_id: str = ""
) -> QuarantinedRecord:
    return QuarantinedRecord(
        file=f"/store/vfs-{kind}s/{kind}s.json",
        kind=kind,
        id="../bad",
        layer=layer,
        parent=parent,
        image_id=image_id,
    )


def test_decision_10_refuses_a_plan_that_touches_a_quarantined_record() -> None:
    """Decision 10: a quarantined layer on A's top layer: the whole plan is refused."""
    a = image("A", ["localhost/a:1"], layers=layer_chain("L1"))
    b = image("B", ["localhost/b:1"], layers=layer_chain("L2"))
    snap = replace(
        snapshot([a, b]), quarantine=pvector([_quarantined("layer", parent=a.record.top_layer)])
    )
    result = plan(snap, ["b:1", "a:1"])
    assert kinds(result) == [ErrorKind.INVALID_RECORD_ID]
    assert "/store/vfs-layers/layers.json" in messages(result)[0]
    assert '"../bad"' in messages(result)[0]
    assert (result.effects, result.reports, result.events) == (pvector(), pvector(), pvector())


@pytest.mark.parametrize(
    "record",
    ["image-layer", "container-layer", "container-image"],
    ids=["image-layer", "container-layer", "container-image"],
)
def test_decision_10_other_references(record: str) -> None:
    """Decision 10: an image or container record with a bad ID using A's layer or A."""
    a = image("A", ["localhost/a:1"], layers=layer_chain("L1"))
    bad = {
        "image-layer": _quarantined("image", layer=a.record.top_layer),
        "container-layer": _quarantined("container", layer=a.record.top_layer),
        "container-image": _quarantined("container", image_id=a.id),
    }[record]
    snap = replace(snapshot([a]), quarantine=pvector([bad]))
    assert kinds(plan(snap, ["a:1"], force=True)) == [ErrorKind.INVALID_RECORD_ID]


def test_decision_10_all_force_removes_the_sound_images() -> None:
    """Decision 10: ``rmi -a -f``: a quarantined image is no image; the rest go."""
    a = image("A", ["localhost/a:1"], layers=layer_chain("L1"))
    bad = QuarantinedRecord(
        file="/store/vfs-images/images.json", kind="image", id="XYZ", layer="f" * 64
    )
    snap = replace(snapshot([a]), quarantine=pvector([bad]))
    result = plan(snap, [], force=True)
    assert reports(result) == [(a.id, ["localhost/a:1"], True)]
    assert result.errors == pvector()


# ---------------------------------------------------------------------------
# Plans are explained


def test_every_effect_names_its_rule_and_why() -> None:
    """Each effect carries the rule that put it there and a reason."""
    snap, _ids = _store_parent(named=False)()
    result = plan(snap, ["c"])
    assert all(effect.rule and effect.why for effect in result.effects)
    assert {type(e) for e in result.effects} == {Untag, DeleteImage, DeleteLayer}
    assert [e.rule for e in result.effects if isinstance(e, DeleteImage)] == ["RM-D5", "RM-D5"]
    assert "RM-D8" in next(e.why for e in result.effects[3:] if isinstance(e, DeleteImage))


def test_failing_callback_is_not_raised_through() -> None:
    """The plan never raises for a callback error (RM-C4)."""
    snap, _ids = _store_in_use()

    def broken(_cid: str) -> bool:
        raise LibimageError(fail(ErrorKind.INTERNAL, "x", "boom").failure)

    assert kinds(plan(snap, ["foo"], external_containers=True, is_external_container=broken)) == [
        ErrorKind.EXTERNAL_CALLBACK
    ]


def test_event_types_are_removal_types() -> None:
    """EV-1: removal emits only Remove and Untag events."""
    snap, _ids = _store_a()
    assert {e.type for e in plan(snap, ["foo:v2"]).events} == {EventType.UNTAG, EventType.REMOVE}


def test_plans_accept_stored_images_as_values() -> None:
    """Bundles carry the stored records as the lookup returned them."""
    snap, ids = _store_a()
    bundling = bundle_requests(snap, ["foo:v2"], RemoveOptions(), Context())
    assert isinstance(bundling.bundles[0].image, StoredImage)
    assert bundling.bundles[0].image.id == ids["A"]


def test_plan_to_json_is_a_json_document() -> None:
    """The plan's JSON form (docs/removal.md): keys, effect names, reports, errors."""
    snap, ids = _store_in_use()
    result = plan(snap, ["foo", "nonexistent"], force=True, container_hook=True)
    document = json.loads(json.dumps(plan_to_json(result)))
    assert list(document) == ["effects", "reports", "events", "errors", "warnings"]
    assert [e["effect"] for e in document["effects"]] == [
        "run-container-hook",
        "remove-container",
        "untag",
        "delete-image",
        "delete-layer",
    ]
    assert document["effects"][1]["container"] == ids["C"]
    assert document["reports"] == [
        {"id": ids["A"], "untagged": ["localhost/foo:latest"], "removed": True, "size": 0}
    ]
    assert document["events"] == [
        {"type": "remove", "id": ids["A"], "name": "localhost/foo:latest"}
    ]
    assert [(e["kind"], e["subject"]) for e in document["errors"]] == [
        ("ErrImageUnknown", "nonexistent")
    ]


def test_rm_d8_pruned_parents_error_is_the_original_references() -> None:
    """RM-D8: the dangling parent is read-only; its error comes back for ``c:1``, whose
    image is already deleted (and reported), and the parent fires no event (RM-D0)."""
    base = image("base", [], layers=layer_chain("b"))
    child = child_of(base, "c", ["localhost/c:1"])
    snap = snapshot([in_additional_store(base), child])
    result = plan(snap, ["c:1"])
    assert reports(result) == [(child.id, ["localhost/c:1"], True)]
    assert messages(result) == [f'cannot remove read-only image "{base.id}"']
    assert events(result) == [("remove", child.id, "localhost/c:1")]
    assert image_ids(interpret(snap, result)) == [base.id]


def test_quirk_lt_c4_unreadable_child_counts_as_no_children() -> None:
    """RM-D3, LT-C4: a child whose config cannot be read makes "has children" fail; the
    failure is a warning and counts as "no children", so P is reported removed while
    its layer stays under the child's."""
    p = image("P", ["localhost/p:1"], layers=layer_chain("p"))
    c = missing_config(child_of(p, "C", ["localhost/c:1"]))
    snap = snapshot([p, c])
    result = plan(snap, ["p:1"])
    assert reports(result) == [(p.id, ["localhost/p:1"], True)]
    assert any(w.startswith("Failed to determine if an image is a parent") for w in result.warnings)
    assert layer_ids(interpret(snap, result)) == layer_ids(snap)


# ---------------------------------------------------------------------------
# The planner's view of the store as it changes (RM-D0, RM-D3, RM-D4, RM-D8, LT-*)


def test_rm_d0_an_image_pruned_earlier_is_done() -> None:
    """RM-4, RM-D0: ``-a`` with the child first: the parent is pruned with it (RM-D8);
    its own entry then finds it removed and only fires its Remove event (EV-2)."""
    p = image("P", [], layers=layer_chain("p"))
    c = child_of(p, "C", ["localhost/c:1"])
    result = plan(snapshot([c, p]), [])
    assert reports(result) == [(c.id, ["localhost/c:1"], True), (p.id, [], True)]
    assert events(result) == [
        ("remove", p.id, ""),
        ("remove", c.id, ""),
        ("remove", p.id, ""),
    ]
    assert [type(e).__name__ for e in result.effects].count("DeleteImage") == 2


def _family(bad: bool) -> tuple[Snapshot, BuiltImage, list[BuiltImage]]:
    p = image("P", [], layers=layer_chain("p"))
    kids = [child_of(p, f"C{i}", [f"localhost/c{i}:1"]) for i in (1, 2, 3)]
    if bad:
        kids[1] = missing_config(kids[1])
    return snapshot([p, *kids]), p, kids


def test_rm_d8_parent_is_pruned_after_its_last_child() -> None:
    """RM-D8: an unnamed parent stays while a child is left; the last one prunes it."""
    snap, p, kids = _family(bad=False)
    result = plan(snap, ["c1:1", "c2:1", "c3:1"])
    assert [r[0] for r in reports(result)] == [k.id for k in kids] + [p.id]
    assert interpret(snap, result).images == pvector()


def test_rm_d8_unreadable_sibling_blocks_pruning_until_it_is_gone() -> None:
    """RM-D8, LT-C4: a sibling whose config cannot be read makes "dangling" fail (a
    warning, not dangling); once it is deleted the last child prunes the parent."""
    snap, p, kids = _family(bad=True)
    first = plan(snap, ["c1:1"])
    assert image_ids(interpret(snap, first)) == [p.id, kids[1].id, kids[2].id]
    assert any("Failed to determine if an image is a parent" in w for w in first.warnings)
    result = plan(snap, ["c1:1", "c2:1", "c3:1"])
    assert reports(result)[-1] == (p.id, [], True)
    assert interpret(snap, result).images == pvector()


def test_rm_d4_unreadable_parent_is_a_warning() -> None:
    """RM-D4, LT-P3: a candidate parent whose config cannot be read: no parent, a warning."""
    p = missing_config(image("P", [], layers=layer_chain("p")))
    c = child_of(image("P", [], layers=layer_chain("p")), "C", ["localhost/c:1"])
    snap = snapshot([p, c])
    result = plan(snap, ["c:1"])
    assert reports(result) == [(c.id, ["localhost/c:1"], True)]
    assert any(w.startswith("Failed to determine parent of image") for w in result.warnings)
    assert image_ids(interpret(snap, result)) == [p.id]


def _empty_family() -> tuple[Snapshot, BuiltImage, list[BuiltImage]]:
    e = image("E", [])
    kids = [child_of(e, f"F{i}", [f"localhost/f{i}:1"], new_layer=False) for i in (1, 2)]
    return snapshot([e, *kids]), e, kids


def test_lt_c1_empty_images_parent_and_children() -> None:
    """LT-C1, LT-P1: images without layers relate through the other empty images; the
    unnamed parent goes with its last child."""
    snap, e, kids = _empty_family()
    result = plan(snap, ["f1:1", "f2:1"])
    assert [r[0] for r in reports(result)] == [kids[0].id, kids[1].id, e.id]
    named = snapshot([with_record(e, names=["localhost/e:1"]), *kids])
    assert reports(plan(named, ["e:1"])) == [(e.id, ["localhost/e:1"], False)]


def test_lt_c4_unreadable_empty_candidate() -> None:
    """LT-C4 among empty images: a candidate whose config fails makes "has children"
    fail, which counts as none (RM-D3)."""
    e = image("E", ["localhost/e:1"])
    broken = missing_config(image("G", []))
    result = plan(snapshot([e, broken]), ["e:1"])
    assert reports(result) == [(e.id, ["localhost/e:1"], True)]
    assert any("Failed to determine if an image is a parent" in w for w in result.warnings)


def test_lt_c1_manifest_lists_have_no_children_or_parent() -> None:
    """LT-C1, LT-P1, RLK-7: ``--lookup-manifest`` removes the list itself."""
    inner = image("inner", ["localhost/inner:1"], layers=layer_chain("inner"))
    listed = manifest_list("list", ["localhost/list:1"], entries=[(inner, None)])
    snap = snapshot([inner, listed])
    result = plan(snap, ["list:1"], lookup_manifest=True)
    assert reports(result) == [(listed.id, ["localhost/list:1"], True)]
    assert image_ids(interpret(snap, result)) == [inner.id]


def test_sf_d_7_mapped_layer_that_is_another_images_top_layer() -> None:
    """SF-D-7 (1.43): deleting X deletes its mapped layer M even though Y sits on M; Y's
    layer is then gone from the tree (LT-C2, LT-P2 warnings) and nothing more is freed."""
    base = layer_chain("L1")
    mapped = layer("M", parent=base[0])
    x = with_record(image("X", ["localhost/x:1"], layers=base), mapped_layers=[mapped.id])
    y = image("Y", ["localhost/y:1"], layers=(*base, mapped))
    snap = snapshot([x, y], [mapped])
    result = plan(snap, ["x:1", "y:1"])
    # M is scheduled first, so L1's only child counts as scheduled: L1 goes too.
    assert [e.layer for e in result.effects if isinstance(e, DeleteLayer)] == [
        mapped.id,
        base[0].id,
    ]
    assert any(w.startswith(f"Layer {mapped.id} not found") for w in result.warnings)
    assert reports(result)[1] == (y.id, ["localhost/y:1"], True)


# ---------------------------------------------------------------------------
# RM-D1: sizes


def _sized(**record: object) -> tuple[Snapshot, BuiltImage]:
    chain = layer_chain("s1")
    built = with_record(image("S", ["localhost/s:1"], layers=chain), **record)
    return snapshot([built]), built


def test_rm_d1_measured_layer_and_unrecorded_big_data() -> None:
    """IP-13: an unmeasured layer is measured; a big-data item without a recorded size
    counts with its length."""
    chain = (replace(layer("s1"), diff_digest="", diff_size=None),)
    built = image("S", ["localhost/s:1"], layers=chain)
    sizes = dict(built.record.big_data_sizes)
    sizes.pop("manifest")
    built = with_record(built, big_data_sizes=sizes)
    snap = snapshot([built], layer_sizes={chain[0].id: 700})
    result = plan(snap, ["s:1"], with_size=True)
    assert result.reports[0].size == 700 + sum(len(b) for b in built.blobs.values())


def test_rm_d1_unmeasurable_layer_is_an_error() -> None:
    """RM-D1: a size error that is not "already gone" is the image's error; no report."""
    chain = (replace(layer("s1"), diff_digest="", diff_size=None),)
    built = image("S", ["localhost/s:1"], layers=chain)
    blobs: dict[tuple[str, str], bytes] = {(built.id, k): v for k, v in built.blobs.items()}
    items: PMap[tuple[str, str], bytes] = pmap(blobs)
    snap = replace(snapshot([built]), content=InMemoryContent(items=items))
    result = plan(snap, ["s:1"], with_size=True)
    assert kinds(result) == [ErrorKind.IMAGE_CORRUPTED]
    assert result.reports == pvector()
    assert result.effects == pvector()


def test_rm_d1_unreadable_big_data_size_is_an_error() -> None:
    """RM-D1: an item with no recorded size that cannot be read is an error."""
    built = image("S", ["localhost/s:1"], layers=layer_chain("s1"))
    sizes = dict(built.record.big_data_sizes)
    sizes.pop("manifest")
    built = with_record(built, big_data_sizes=sizes)
    snap = replace(snapshot([built]), content=InMemoryContent())
    assert kinds(plan(snap, [built.id], with_size=True)) == [ErrorKind.IMAGE_CORRUPTED]


def test_rm_d1_missing_layer_gives_minus_one() -> None:
    """RM-D1 quirk: a layer that is not stored makes the size -1; the image still goes."""
    built = image("S", ["localhost/s:1"], layers=layer_chain("s1", "s2"))
    snap = replace(snapshot([built]), layers=pvector([built.layers[1]]))
    result = plan(snap, ["s:1"], with_size=True)
    assert [(r.size, r.removed) for r in result.reports] == [(-1, True)]


def test_rm_d1_shared_ancestor_counts_once() -> None:
    """IP-13: a layer reached from the top layer and from a mapped layer counts once."""
    chain = layer_chain("s1", "s2", size=100)
    mapped = layer("m", parent=chain[0], size=10)
    built = with_record(image("S", ["localhost/s:1"], layers=chain), mapped_layers=[mapped.id])
    result = plan(snapshot([built], [mapped]), ["s:1"], with_size=True)
    assert result.reports[0].size == 210 + sum(built.record.big_data_sizes.values())


# ---------------------------------------------------------------------------
# Containers and quarantine, more cases


def test_rm_c5_container_without_a_stored_layer() -> None:
    """RM-C5, SF-D-C: containers whose read-write layer is missing, or shared (a damaged
    store), are removed all the same."""
    a = _foo(["localhost/foo:latest"])
    shared = layer("shared", parent=a.record.top_layer)
    users = [
        Container(id=ContainerID(c * 64), image_id=a.id, layer=layer_id)
        for c, layer_id in (("1", shared.id), ("2", shared.id), ("3", "e" * 64))
    ]
    snap = snapshot([a], [shared], containers=users)
    result = plan(snap, ["foo"], force=True)
    assert [type(e).__name__ for e in result.effects[:3]] == ["RemoveContainer"] * 3
    after = interpret(snap, result)
    assert (after.images, after.layers, after.containers) == (pvector(), pvector(), pvector())


def test_decision_19_several_podman_containers() -> None:
    """Decision 19: every podman container is named, with one ``podman rm`` line."""
    a = _foo(["localhost/foo:latest"])
    one, two = (container(s, a, podman_managed=True) for s in ("p1", "p2"))
    result = plan(snapshot([a], containers=[one, two]), ["foo"], force=True)
    assert messages(result) == [
        f"cannot remove containers {one.id} {two.id}: they are podman containers using image "
        f'{a.id}; run "podman rm {one.id} {two.id}" first'
    ]


def test_decision_10_container_layer_with_a_quarantined_child() -> None:
    """Decision 10: removing the container would delete a layer a bad record sits on."""
    snap, _ids = _store_in_use()
    rw_layer = snap.containers[0].layer
    snap = replace(snap, quarantine=pvector([_quarantined("layer", parent=rw_layer)]))
    assert kinds(plan(snap, ["foo"], force=True)) == [ErrorKind.INVALID_RECORD_ID]
    assert kinds(plan(snap, ["foo"])) == [ErrorKind.IMAGE_IN_USE]


def test_lookup_warnings_reach_the_plan() -> None:
    """LK-11: a lookup that returns a corrupted image warns; the plan keeps the warning."""
    broken = missing_manifest(image("B", ["localhost/b:1"], layers=layer_chain("b")))
    result = plan(snapshot([broken]), ["b:1"])
    assert result.warnings != pvector()
    assert reports(result) == [(broken.id, ["localhost/b:1"], True)]
