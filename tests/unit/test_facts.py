"""The layer tree and image facts (LT-1, LT-3..LT-5, LT-C*, LT-P*, IP-5, IP-6, IP-9, IP-10,
IP-13, IP-15, POD-I-4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pyrsistent import pmap, pvector

from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.facts import (
    are_parent_and_child,
    children,
    containers,
    has_children,
    image_size,
    is_dangling,
    is_intermediate,
    labels,
    layer_tree,
    parent,
    repo_digests,
    repo_tags,
    snapshot_facts,
    unparseable_names,
)
from libimage.pure.manifest import HistoryEntry, ImageConfig, parse_go_rfc3339
from libimage.pure.snapshot import ImageID, InMemoryContent, Layer, LayerID, Snapshot, StoredImage
from libimage.spec.builders import (
    BuiltImage,
    History,
    child_of,
    container,
    hex_id,
    image,
    layer,
    layer_chain,
    manifest_list,
    missing_config,
    missing_manifest,
    remove_name,
    snapshot,
    with_record,
)


def ids(result: object) -> list[str]:
    assert isinstance(result, tuple), result
    return [record.id for record in result if isinstance(record, StoredImage)]


def at(snap: Snapshot, built: BuiltImage) -> StoredImage:
    for record in snap.images:
        if record.id == built.id:
            return record
    raise AssertionError(built.id)


def config(diff_ids: list[str], history: list[HistoryEntry]) -> ImageConfig:
    return ImageConfig(diff_ids=pvector(diff_ids), history=pvector(history))


H1 = HistoryEntry(parse_go_rfc3339("2021-01-01T00:00:00Z"), "ADD base")
H1_OTHER_ZONE = HistoryEntry(parse_go_rfc3339("2021-01-01T01:00:00+01:00"), "ADD base")
H2 = HistoryEntry(parse_go_rfc3339("2021-01-02T00:00:00Z"), "COPY x")
H3 = HistoryEntry(None, "RUN y")


@dataclass(frozen=True)
class RelationCase:
    name: str
    parent: ImageConfig
    child: ImageConfig
    expected: bool


RELATION_CASES = [
    RelationCase("LT-4 one more layer", config(["d1"], [H1]), config(["d1", "d2"], [H1, H2]), True),
    RelationCase(
        "LT-5 same layers, one more entry", config(["d1"], [H1]), config(["d1"], [H1, H2]), True
    ),
    RelationCase(
        "created compared as instants (time zone ignored)",
        config(["d1"], [H1]),
        config(["d1", "d2"], [H1_OTHER_ZONE, H2]),
        True,
    ),
    RelationCase("empty parent history", config([], []), config([], [H1]), True),
    RelationCase(
        "two more entries", config(["d1"], [H1]), config(["d1", "d2", "d3"], [H1, H2, H3]), False
    ),
    RelationCase("same history length", config(["d1"], [H1]), config(["d1", "d2"], [H1]), False),
    RelationCase(
        "diff IDs not a prefix", config(["d1"], [H1]), config(["dx", "d2"], [H1, H2]), False
    ),
    RelationCase(
        "parent has more diff IDs", config(["d1", "d2"], [H1]), config(["d1"], [H1, H2]), False
    ),
    RelationCase(
        "created present vs absent",
        config(["d1"], [H1]),
        config(["d1", "d2"], [HistoryEntry(None, "ADD base"), H2]),
        False,
    ),
    RelationCase(
        "created_by differs",
        config(["d1"], [H1]),
        config(["d1", "d2"], [HistoryEntry(H1.created, "ADD other"), H2]),
        False,
    ),
    RelationCase(
        "author differs",
        config(["d1"], [H1]),
        config(["d1", "d2"], [HistoryEntry(H1.created, "ADD base", author="me"), H2]),
        False,
    ),
    RelationCase(
        "comment differs",
        config(["d1"], [H1]),
        config(["d1", "d2"], [HistoryEntry(H1.created, "ADD base", comment="c"), H2]),
        False,
    ),
    RelationCase(
        "empty_layer differs",
        config(["d1"], [H1]),
        config(["d1", "d2"], [HistoryEntry(H1.created, "ADD base", empty_layer=True), H2]),
        False,
    ),
    RelationCase("child is not its own parent", config(["d1"], [H1]), config(["d1"], [H1]), False),
]


class TestAreParentAndChild:
    """LT-3: diff-ID prefix, exactly one more history entry, equal earlier entries."""

    @pytest.mark.parametrize("case", RELATION_CASES, ids=lambda c: c.name)
    def test_relation(self, case: RelationCase) -> None:
        assert are_parent_and_child(case.parent, case.child) is case.expected


def base_image(names: list[str] | None = None, seed: str = "B") -> BuiltImage:
    return image(
        seed,
        names if names is not None else ["localhost/base:latest"],
        layers=layer_chain(("L1", seed)),
        history=[History("ADD base", created="2021-01-01T00:00:00Z")],
    )


class TestLayerTreeExamples:
    """LT-4 and LT-5, the reference's worked examples."""

    def test_lt4_child_with_a_new_layer(self) -> None:
        base = base_image()
        child = child_of(base, "C", ["localhost/child:latest"])
        snap = snapshot([base, child])
        b, c = at(snap, base), at(snap, child)
        assert ids(children(snap, b)) == [child.id]
        assert parent(snap, c) == b
        assert is_dangling(snap, b) is False
        assert is_intermediate(snap, b) is False

    def test_lt4_untagged_base_is_intermediate(self) -> None:
        base = base_image()
        child = child_of(base, "C", ["localhost/child:latest"])
        snap = remove_name(snapshot([base, child]), base.id, "localhost/base:latest")
        b, c = at(snap, base), at(snap, child)
        assert is_intermediate(snap, b) is True
        assert is_dangling(snap, b) is False
        assert is_dangling(snap, c) is False  # named

    def test_lt5_metadata_child_on_the_same_layer(self) -> None:
        base = base_image()
        derived = child_of(base, "D", ["localhost/d:latest"], new_layer=False)
        snap = snapshot([base, derived])
        assert derived.record.top_layer == base.record.top_layer
        assert ids(children(snap, at(snap, base))) == [derived.id]
        assert parent(snap, at(snap, derived)) == at(snap, base)

    def test_two_build_steps_are_not_a_child(self) -> None:
        """LT-3 (c): exactly one more history entry; the intermediate step is missing."""
        base = base_image()
        grandchild = child_of(child_of(base, "step"), "G", ["localhost/g:latest"])
        snap = snapshot([base, grandchild])
        assert ids(children(snap, at(snap, base))) == []
        assert parent(snap, at(snap, grandchild)) is None

    def test_children_of_child_nodes_come_before_the_same_node(self) -> None:
        """LT-C3: child layer nodes first (layer-list order), then the image's own node."""
        base = base_image()
        same_layer = child_of(base, "same", new_layer=False)
        new_layer = child_of(base, "new")
        snap = snapshot([base, same_layer, new_layer])
        assert ids(children(snap, at(snap, base))) == [new_layer.id, same_layer.id]

    def test_all_children_are_returned(self) -> None:
        """Decision 4: every child, not only the first on a node (LT-C5)."""
        base = base_image()
        kids = [child_of(base, f"kid{i}", new_layer=True) for i in range(2)]
        snap = snapshot([base, *kids])
        assert sorted(ids(children(snap, at(snap, base)))) == sorted(k.id for k in kids)

    def test_sibling_on_the_same_layer_is_not_a_child(self) -> None:
        """Two unrelated images sharing a top layer are not related (their histories differ)."""
        one = image("one", layers=layer_chain("shared"))
        two = image("two", layers=layer_chain("shared"))
        snap = snapshot([one, two])
        assert one.record.top_layer == two.record.top_layer
        assert children(snap, at(snap, one)) == ()
        assert parent(snap, at(snap, two)) is None


class TestEmptyImages:
    """LT-C1, LT-P1: images without a top layer are compared with other empty images."""

    def test_relation_between_empty_images(self) -> None:
        empty = image("E", ["localhost/e:latest"])
        derived = child_of(empty, "F", ["localhost/f:latest"], new_layer=False)
        snap = snapshot([empty, derived])
        assert ids(children(snap, at(snap, empty))) == [derived.id]
        assert parent(snap, at(snap, derived)) == at(snap, empty)

    def test_manifest_list_has_no_children_or_parent(self) -> None:
        listed = manifest_list("L", ["localhost/list:latest"])
        snap = snapshot([listed])
        assert children(snap, at(snap, listed)) == ()
        assert parent(snap, at(snap, listed)) is None

    def test_quirk_a_manifest_list_among_empty_images_fails_their_search(self) -> None:
        """quirk (LT-C1): the seed compares with lists too, and a list's config fails."""
        empty = image("E", [])
        listed = manifest_list("L", ["localhost/list:latest"])
        snap = snapshot([empty, listed])
        assert isinstance(children(snap, at(snap, empty)), Failure)
        assert isinstance(is_dangling(snap, at(snap, empty)), Failure)

    def test_boolean_search_stops_at_the_first_child(self) -> None:
        """LT-C5: among empty images ``has_children`` stops at the first child, so a later
        broken candidate is not met; ``children`` looks at all of them (LT-C4)."""
        empty = image("E", [])
        derived = child_of(empty, "F", [], new_layer=False)
        broken = missing_config(image("X", []))
        snap = snapshot([empty, derived, broken])
        e = at(snap, empty)
        assert has_children(snap, e) is True
        assert is_intermediate(snap, e) is True
        assert isinstance(children(snap, e), Failure)


class TestMissingNodesAndErrors:
    """LT-1 warnings, LT-C2/LT-P2 (no node), LT-C4/LT-P3 (config errors)."""

    def test_top_layer_without_node_is_skipped_with_a_warning(self) -> None:
        lost = with_record(base_image(), top_layer="9" * 64)
        snap = snapshot([lost])
        tree = layer_tree(snap)
        assert tree.warnings == (
            f"Top layer {'9' * 64} of image {lost.id} not found in layer tree. "
            "The storage may be corrupted, consider running `podman system reset`.",
        )
        assert snapshot_facts(snap).warnings == tree.warnings
        # The seed reads the image's own config before the LT-C2/LT-P2 node check, and an
        # image whose top layer is not stored does not open: the question fails.
        assert isinstance(children(snap, at(snap, lost)), Failure)
        assert isinstance(parent(snap, at(snap, lost)), Failure)

    def test_a_missing_parent_layer_still_gets_a_node(self) -> None:
        """LT-1: a node exists for a parent ID even when that layer is not stored."""
        orphan = layer("orphan", parent="7" * 64)
        on_missing = with_record(image("M", []), top_layer="7" * 64)
        snap = snapshot([on_missing], [orphan])
        tree = layer_tree(snap)
        assert "7" * 64 in tree.nodes
        assert tree.nodes["7" * 64].children == (orphan.id,)
        assert tree.warnings == ()

    def test_candidate_config_error_fails_children_and_parent(self) -> None:
        base = base_image()
        child = missing_config(child_of(base, "C", ["localhost/c:latest"]))
        snap = snapshot([base, child])
        result = children(snap, at(snap, base))
        assert isinstance(result, Failure)
        assert result.kind is ErrorKind.IMAGE_CORRUPTED
        assert isinstance(parent(snap, at(snap, child)), Failure)

    def test_own_config_error_fails_first(self) -> None:
        """The seed reads the image's own config before looking at candidates."""
        lone = missing_manifest(base_image([]))
        snap = snapshot([lone])
        assert isinstance(is_dangling(snap, at(snap, lone)), Failure)

    def test_named_image_needs_no_config(self) -> None:
        named = missing_manifest(base_image(["localhost/n:latest"]))
        snap = snapshot([named])
        assert is_dangling(snap, at(snap, named)) is False
        assert is_intermediate(snap, at(snap, named)) is False


class TestDanglingAndIntermediate:
    """IP-5, IP-6: unnamed without / with children; exclusive; false for named images."""

    def test_unnamed_leaf_is_dangling(self) -> None:
        leaf = base_image([])
        snap = snapshot([leaf])
        assert is_dangling(snap, at(snap, leaf)) is True
        assert is_intermediate(snap, at(snap, leaf)) is False


class TestImageSize:
    """IP-13: layers (each once) plus every big-data item."""

    def test_podman_import_example_is_11331(self) -> None:
        """IP-13 / POD-I-5: a 10240-byte layer + 341 + 341 + 409 + 0 = 11331."""
        top = Layer(
            id=LayerID(hex_id("imported")),
            diff_digest="sha256:" + hex_id("diff"),
            diff_size=10240,
        )
        config_key = "sha256:" + hex_id("config")
        manifest_key = "manifest-sha256:" + hex_id("manifest")
        signature_key = "signature-" + hex_id("manifest")
        record = StoredImage(
            id=ImageID(hex_id("config")),
            top_layer=top.id,
            big_data_names=pvector([config_key, manifest_key, "manifest", signature_key]),
            big_data_sizes=pmap(
                {config_key: 409, manifest_key: 341, "manifest": 341, signature_key: 0}
            ),
        )
        snap = Snapshot(images=pvector([record]), layers=pvector([top]))
        assert image_size(snap, record) == 11331

    def test_each_layer_counts_once_and_mapped_layers_count(self) -> None:
        base, middle = layer_chain("a", "b", size=100)
        mapped = layer("mapped", parent=base, size=7)
        built = with_record(
            image("s", layers=[base, middle], signature=False), mapped_layers=[mapped.id]
        )
        snap = snapshot([built], [mapped])
        big_data = sum(built.record.big_data_sizes.values())
        assert image_size(snap, at(snap, built)) == 100 + 100 + 7 + big_data

    def test_unmeasured_layer_uses_the_content(self) -> None:
        plain = layer("p", measured=False)
        built = image("u", layers=[plain])
        snap = snapshot([built], layer_sizes={plain.id: 55})
        assert image_size(snap, at(snap, built)) == 55 + sum(built.record.big_data_sizes.values())

    def test_missing_layer_is_layer_not_known(self) -> None:
        built = with_record(image("m", layers=layer_chain("x")), top_layer="5" * 64)
        snap = snapshot([built])
        result = image_size(snap, at(snap, built))
        assert isinstance(result, Failure)
        assert result.message == f'error locating layer with ID "{"5" * 64}": layer not known'

    def test_size_without_recorded_size_reads_the_item(self) -> None:
        built = with_record(image("r"), big_data_sizes={})
        snap = snapshot([built])
        expected = sum(len(data) for data in built.blobs.values())
        assert image_size(snap, at(snap, built)) == expected

    def test_unmeasured_layer_without_content_size_is_an_error(self) -> None:
        plain = layer("p", measured=False)
        built = image("u", layers=[plain])
        snap = Snapshot(
            images=pvector([built.record]),
            layers=pvector([plain]),
            content=InMemoryContent(
                items=pmap({(str(built.id), key): data for key, data in built.blobs.items()})
            ),
        )
        result = image_size(snap, snap.images[0])
        assert isinstance(result, Failure)
        assert result.message.startswith(
            f'size/digest of layer with ID "{plain.id}" could not be calculated: '
        )

    def test_big_data_without_size_or_content_is_an_error(self) -> None:
        built = with_record(image("r"), big_data_sizes={}, big_data_names=["gone"])
        snap = snapshot([built])
        result = image_size(snap, at(snap, built))
        assert isinstance(result, Failure)
        assert result.message == (
            f'error reading size of big data item "gone" for image "{built.id}": size is not known'
        )

    def test_read_write_copy_is_measured_for_a_read_only_image(self) -> None:
        """IP-13: ``ImageSize(id)`` finds the read-write record with that ID first."""
        original = image("ro", layers=layer_chain("x"))
        read_only = with_record(original, read_only=True, store_index=1)
        copy = StoredImage(id=original.id, top_layer=original.record.top_layer)
        snap = snapshot([copy, read_only])
        assert image_size(snap, snap.images[1]) == image_size(snap, snap.images[0]) == 1024

    def test_record_outside_the_snapshot_is_measured_as_given(self) -> None:
        built = image("outside", layers=layer_chain("x"), signature=False)
        snap = snapshot([], built.layers)
        expected = 1024 + sum(built.record.big_data_sizes.values())
        assert image_size(snap, built.record) == expected

    def test_layer_cycle_terminates(self) -> None:
        a = Layer(
            id=LayerID("a" * 64), parent="b" * 64, diff_digest="sha256:" + "1" * 64, diff_size=3
        )
        b = Layer(
            id=LayerID("b" * 64), parent="a" * 64, diff_digest="sha256:" + "2" * 64, diff_size=4
        )
        record = StoredImage(id=ImageID("c" * 64), top_layer=a.id)
        snap = Snapshot(images=pvector([record]), layers=pvector([a, b]), content=InMemoryContent())
        assert image_size(snap, record) == 7

    @pytest.mark.parametrize("order", ["lower first", "upper first"], ids=str)
    def test_images_sharing_a_chain_each_count_their_whole_chain(self, order: str) -> None:
        """IP-13: a lower layer's chain total, walked once per snapshot, serves every image."""

        def chain_layer(name: str, parent: str, size: int) -> Layer:
            return Layer(
                id=LayerID(hex_id(name)),
                parent=parent,
                diff_digest="sha256:" + hex_id(name + "-diff"),
                diff_size=size,
            )

        base = chain_layer("base", "", 100)
        middle = chain_layer("middle", base.id, 20)
        top = chain_layer("top", middle.id, 3)
        lower = StoredImage(id=ImageID(hex_id("lower")), top_layer=middle.id)
        upper = StoredImage(id=ImageID(hex_id("upper")), top_layer=top.id)
        records = [lower, upper] if order == "lower first" else [upper, lower]
        snap = Snapshot(
            images=pvector(records),
            layers=pvector([base, middle, top]),
            content=InMemoryContent(),
        )
        sizes = {record.id: image_size(snap, record) for record in snap.images}
        assert sizes == {lower.id: 120, upper.id: 123}

    def test_cycle_above_a_measured_chain_still_counts_each_layer_once(self) -> None:
        """IP-13: a chain that loops back is summed over each layer once, as the walk does."""
        digest = "sha256:" + "1" * 64
        a = Layer(id=LayerID("a" * 64), parent="b" * 64, diff_digest=digest, diff_size=3)
        b = Layer(id=LayerID("b" * 64), parent="a" * 64, diff_digest=digest, diff_size=4)
        c = Layer(id=LayerID("c" * 64), parent="a" * 64, diff_digest=digest, diff_size=5)
        first = StoredImage(id=ImageID("d" * 64), top_layer=c.id)
        second = StoredImage(id=ImageID("e" * 64), top_layer=b.id)
        snap = Snapshot(
            images=pvector([first, second]),
            layers=pvector([a, b, c]),
            content=InMemoryContent(),
        )
        assert image_size(snap, first) == 12
        assert image_size(snap, second) == 7
        assert image_size(snap, first) == 12

    def test_missing_layer_below_a_counted_chain_is_still_reported(self) -> None:
        """IP-13: an image whose chain reaches a missing layer fails even after others."""
        digest = "sha256:" + "1" * 64
        base = Layer(id=LayerID("a" * 64), diff_digest=digest, diff_size=3)
        broken = Layer(id=LayerID("b" * 64), parent="f" * 64, diff_digest=digest, diff_size=4)
        good = StoredImage(id=ImageID("c" * 64), top_layer=base.id)
        bad = StoredImage(id=ImageID("d" * 64), top_layer=broken.id)
        snap = Snapshot(
            images=pvector([good, bad]), layers=pvector([base, broken]), content=InMemoryContent()
        )
        assert image_size(snap, good) == 3
        result = image_size(snap, bad)
        assert isinstance(result, Failure)
        assert result.message == f'error locating layer with ID "{"f" * 64}": layer not known'


class TestLabelsAndNames:
    """IP-9, IP-10, IP-15, POD-I-4."""

    def test_labels(self) -> None:
        labelled = image("l", labels={"color": "red"}, layers=layer_chain("x"))
        plain = image("p", layers=layer_chain("y"))
        snap = snapshot([labelled, plain])
        assert labels(snap, at(snap, labelled)) == pmap({"color": "red"})
        assert labels(snap, at(snap, plain)) is None

    def test_manifest_list_has_no_labels_and_no_error(self) -> None:
        snap = snapshot([manifest_list("L")])
        assert labels(snap, snap.images[0]) is None

    def test_unreadable_config_is_an_error(self) -> None:
        snap = snapshot([missing_config(image("c", layers=layer_chain("x")))])
        assert isinstance(labels(snap, snap.images[0]), Failure)

    def test_quirk_fallback_message_repeats_the_error(self) -> None:
        """quirk (IP-10): podman 4.3.1 prints the config error twice after the fallback text."""
        snap = snapshot([missing_manifest(image("m", layers=layer_chain("x")))])
        result = labels(snap, snap.images[0])
        assert isinstance(result, Failure)
        prefix = "fallback error checking whether image is a manifest list: "
        assert result.message.startswith(prefix)
        inner = result.message.removeprefix(prefix)
        half = (len(inner) - 2) // 2
        assert inner[:half] == inner[half + 2 :]

    def test_containers_in_containers_json_order(self) -> None:
        target = image("t", layers=layer_chain("x"))
        other = image("o", layers=layer_chain("y"))
        first, second = container("c1", target), container("c2", target)
        snap = snapshot([target, other], containers=[first, container("c3", other), second])
        assert containers(snap, at(snap, target)) == (first.id, second.id)
        assert containers(snap, at(snap, other)) != ()

    def test_repo_tags(self) -> None:
        record = StoredImage(
            id=ImageID("a" * 64),
            names=pvector(
                [
                    "localhost/foo:latest",
                    "quay.io/x/foo@sha256:" + "1" * 64,
                    "Localhost/BAD:1",
                    "localhost/bar:v2",
                ]
            ),
        )
        assert repo_tags(record) == ("localhost/foo:latest", "localhost/bar:v2")
        assert unparseable_names(record) == ("Localhost/BAD:1",)

    def test_repo_digests_sorted_and_deduplicated(self) -> None:
        digest = "sha256:" + "2" * 64
        record = StoredImage(
            id=ImageID("a" * 64),
            digest=digest,
            names=pvector(["localhost/foo:v2", "localhost/foo:latest", "busybox:latest"]),
            big_data_digests=pmap({"manifest": digest}),
        )
        assert repo_digests(record) == (
            f"docker.io/library/busybox@{digest}",
            f"localhost/foo@{digest}",
        )

    def test_repo_digests_skip_names_and_digests_that_do_not_parse(self) -> None:
        """Decision 18: a damaged name is skipped; so is a digest the reference refuses."""
        good = "sha256:" + "3" * 64
        record = StoredImage(
            id=ImageID("a" * 64),
            digest="bogus",
            names=pvector(["Localhost/BAD:1", "localhost/ok:1"]),
            big_data_digests=pmap({"manifest": good}),
        )
        assert repo_digests(record) == (f"localhost/ok@{good}",)

    def test_repo_digests_without_digest_is_empty(self) -> None:
        record = StoredImage(id=ImageID("a" * 64), names=pvector(["localhost/foo:v2"]))
        assert repo_digests(record) == ()
