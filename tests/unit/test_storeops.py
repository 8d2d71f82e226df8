"""Unit tests of the storage primitives and the in-memory interpreter.

Expected values come from storage-format.md: SF-N-3/SF-N-4 (names and history, the
observed worked example), SF-N-5 (stealing), SF-D-6..SF-D-8 (the layers a deletion
frees) and SF-D-C (a container goes with its read-write layer).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from pyrsistent import pvector

from libimage.pure.interpret import interpret, interpret_one
from libimage.pure.plan import (
    DeleteImage,
    DeleteLayer,
    Effect,
    RemovalPlan,
    RemoveContainer,
    RunContainerHook,
    Untag,
)
from libimage.pure.snapshot import ContainerID, ImageID, LayerID, Snapshot
from libimage.pure.storeops import (
    dedupe_names,
    layer_usage,
    layers_freed_by_deleting,
    names_after_set,
    names_stolen_by,
    set_names,
    tagged_names,
    untagged_names,
)
from libimage.spec.builders import child_of, container, image, layer, layer_chain, snapshot

LATEST, V2, QUAY, BAR = (
    "localhost/foo:latest",
    "localhost/foo:v2",
    "quay.io/x/foo:1",
    "localhost/bar:latest",
)


class TestNames:
    """SF-N-3: SetNames deduplicates, moves every new name to the front of the history."""

    def test_sf_n_4_worked_example(self) -> None:
        """SF-N-4: the observed sequence, from import to two untags, history after each."""
        built = image("foo", [LATEST], layers=layer_chain("foo"))
        snap = snapshot([built])
        image_id = built.id
        expected = [
            ("tag", V2, [V2, LATEST]),
            ("tag", QUAY, [QUAY, V2, LATEST]),
            ("tag", BAR, [BAR, QUAY, V2, LATEST]),
            ("untag", V2, [BAR, QUAY, LATEST, V2]),
            ("untag", BAR, [QUAY, LATEST, BAR, V2]),
        ]
        assert list(snap.images[0].names_history) == [LATEST]
        for action, name, history in expected:
            names = list(snap.images[0].names)
            wanted = tagged_names(names, name) if action == "tag" else untagged_names(names, name)
            snap = set_names(snap, image_id, wanted)
            assert list(snap.images[0].names_history) == history, (action, name)
        assert list(snap.images[0].names) == [LATEST, QUAY]

    @pytest.mark.parametrize(
        ("names", "history", "new", "expected"),
        [
            ([], [], ["a", "b", "a"], (("a", "b"), ("b", "a"))),
            (["a"], ["a"], ["a"], (("a",), ("a",))),
            (["a", "b"], ["b", "a"], [], ((), ("b", "a"))),
            (["a"], ["x", "a"], ["a", "x"], (("a", "x"), ("x", "a"))),
        ],
        ids=["dedupe", "unchanged", "empty", "reorders-history"],
    )
    def test_names_after_set(
        self,
        names: list[str],
        history: list[str],
        new: list[str],
        expected: tuple[tuple[str, ...], tuple[str, ...]],
    ) -> None:
        """SF-N-3: new names deduplicated; history gets each, last first; nothing dropped."""
        assert names_after_set(names, history, new) == expected

    def test_dedupe_keeps_first_occurrence(self) -> None:
        """SF-N-2: ``dedupeNames`` keeps the first occurrence."""
        assert dedupe_names(["b", "a", "b", "c", "a"]) == ("b", "a", "c")

    def test_untagged_names_keeps_order(self) -> None:
        """RM-T3: the other names, order kept."""
        assert untagged_names([LATEST, V2, QUAY], V2) == (LATEST, QUAY)
        assert untagged_names([LATEST], V2) == (LATEST,)

    def test_sf_n_5_tagging_steals_silently(self) -> None:
        """SF-N-5, SF-N-3: the old owner loses the name; its history keeps it."""
        one = image("one", [LATEST], layers=layer_chain("one"))
        two = image("two", [BAR], layers=layer_chain("two"))
        snap = set_names(snapshot([one, two]), two.id, [BAR, LATEST])
        assert [list(i.names) for i in snap.images] == [[], [BAR, LATEST]]
        assert list(snap.images[0].names_history) == [LATEST]
        assert list(snap.images[1].names_history) == [LATEST, BAR]

    def test_names_stolen_by_reports_only_changed_images(self) -> None:
        """SF-N-3: only images holding one of the new names change."""
        assert names_stolen_by([LATEST], [("a", [LATEST, V2]), ("b", [BAR])]) == {"a": (V2,)}

    def test_set_names_without_a_read_write_record_changes_nothing(self) -> None:
        """SF-N-6 is not modelled: without a read-write record the store is unchanged."""
        snap = snapshot([image("one", [LATEST])])
        assert set_names(snap, "f" * 64, [BAR]) is snap


class TestLayerWalk:
    """SF-D-6, SF-D-7: the layers an image deletion frees, from one snapshot."""

    def test_sf_d_8_a(self) -> None:
        """SF-D-8 (a): an image alone on its chain frees every layer, top first."""
        chain = layer_chain("l1", "l2")
        built = image("a", [LATEST], layers=chain)
        snap = snapshot([built])
        assert layers_freed_by_deleting(layer_usage(snap), built.record) == (
            chain[1].id,
            chain[0].id,
        )

    def test_sf_d_8_b(self) -> None:
        """SF-D-8 (b): the parent's layer has the child's layer on it: nothing is freed."""
        parent = image("p", [LATEST], layers=layer_chain("l1"))
        child = child_of(parent, "c", [BAR])
        snap = snapshot([parent, child])
        assert layers_freed_by_deleting(layer_usage(snap), parent.record) == ()

    def test_sf_d_8_c(self) -> None:
        """SF-D-8 (c): another image's top layer stops the walk."""
        chain = layer_chain("l1")
        one, two = image("one", [LATEST], layers=chain), image("two", [BAR], layers=chain)
        assert layers_freed_by_deleting(layer_usage(snapshot([one, two])), one.record) == ()

    def test_container_layer_stops_the_walk(self) -> None:
        """SF-D-6: the container's read-write layer is a child of the top layer."""
        built = image("a", [LATEST], layers=layer_chain("l1"))
        snap = snapshot([built], containers=[container("c", built)])
        assert layers_freed_by_deleting(layer_usage(snap), built.record) == ()

    def test_layer_named_like_a_container_stops_the_walk(self) -> None:
        """SF-D-6: ``rcstore.Exists(layer)`` also matches a container's ID and names."""
        built = image("a", [LATEST], layers=layer_chain("l1"))
        user = container("c", "f" * 64, names=[built.record.top_layer], with_layer=False)
        snap = snapshot([built], containers=[user])
        assert layers_freed_by_deleting(layer_usage(snap), built.record) == ()

    def test_walk_stops_before_an_unknown_layer(self) -> None:
        """SF-D-7: storage's delete fails at a layer it does not have; the rest stay."""
        chain = layer_chain("l1", "l2")
        built = image("a", [LATEST], layers=chain)
        snap = replace(snapshot([built]), layers=pvector([chain[1]]))  # l1 is not stored
        assert layers_freed_by_deleting(layer_usage(snap), built.record) == (chain[1].id,)

    def test_read_only_layers_are_not_freed(self) -> None:
        """SF-D-6: only the read-write layer store is walked and deleted from."""
        chain = layer_chain("l1", read_only=True, store_index=1)
        copy = replace(image("a", [LATEST], layers=chain).record, read_only=False, store_index=0)
        snap = snapshot([copy], chain)
        assert layers_freed_by_deleting(layer_usage(snap), copy) == ()

    def test_sf_d_7_mapped_layers_first(self) -> None:
        """SF-D-7 (storage 1.43): mapped layers first, then the top layer and down."""
        chain = layer_chain("l1")
        mapped = layer("m", parent=chain[0])
        built = image("a", [LATEST], layers=chain)
        record = replace(built.record, mapped_layers=pvector([mapped.id]))
        snap = snapshot([record], [*chain, mapped])
        assert layers_freed_by_deleting(layer_usage(snap), record) == (mapped.id, chain[0].id)


class TestInterpreter:
    """What each effect does to the store, and that applying it twice changes nothing."""

    @staticmethod
    def _store() -> tuple[Snapshot, dict[str, str]]:
        built = image("a", [LATEST, V2], layers=layer_chain("l1"))
        user = container("c", built)
        snap = snapshot([built], containers=[user])
        assert user.layer is not None
        return snap, {"image": built.id, "container": user.id, "rw": user.layer.id}

    def test_untag_moves_history(self) -> None:
        """Untag is SetNames without the name (SF-N-5, SF-N-3)."""
        snap, ids = self._store()
        after = interpret_one(snap, Untag(ImageID(ids["image"]), LATEST, "RM-U5"))
        assert list(after.images[0].names) == [V2]
        assert list(after.images[0].names_history) == [V2, LATEST]

    def test_remove_container_takes_its_layer(self) -> None:
        """SF-D-C: the record and its read-write layer go."""
        snap, ids = self._store()
        effect = RemoveContainer(ContainerID(ids["container"]), ImageID(ids["image"]), "RM-C5")
        after = interpret_one(snap, effect)
        assert after.containers == pvector()
        assert ids["rw"] not in {lay.id for lay in after.layers}

    def test_delete_image_keeps_layers(self) -> None:
        """SF-D-5: the record goes; its layers have their own effects."""
        snap, ids = self._store()
        after = interpret_one(snap, DeleteImage(ImageID(ids["image"]), "RM-D5"))
        assert after.images == pvector()
        assert after.layers == snap.layers

    def test_hook_changes_nothing_in_the_model(self) -> None:
        """RM-C2: the hook is the caller's code; the model cannot know what it does."""
        snap, ids = self._store()
        assert interpret_one(snap, RunContainerHook(ImageID(ids["image"]))) == snap

    @pytest.mark.parametrize(
        "effect",
        ["untag", "untag-unknown", "container", "image", "layer", "hook"],
        ids=["untag", "untag-unknown", "container", "image", "layer", "hook"],
    )
    def test_every_effect_is_idempotent(self, effect: str) -> None:
        """Applying an effect twice equals applying it once."""
        snap, ids = self._store()
        choices: dict[str, Effect] = {
            "untag": Untag(ImageID(ids["image"]), V2, "RM-U5"),
            "untag-unknown": Untag(ImageID(ids["image"]), BAR, "RM-U5"),
            "container": RemoveContainer(ContainerID(ids["container"]), ImageID(ids["image"]), "x"),
            "image": DeleteImage(ImageID(ids["image"]), "RM-D5"),
            "layer": DeleteLayer(LayerID(ids["rw"]), "SF-D-6"),
            "hook": RunContainerHook(ImageID(ids["image"])),
        }
        chosen = choices[effect]
        once = interpret_one(snap, chosen)
        assert interpret_one(once, chosen) == once

    def test_interpret_is_the_fold(self) -> None:
        """``interpret`` equals folding ``interpret_one`` over the effects."""
        snap, ids = self._store()
        effects: list[Effect] = [
            Untag(ImageID(ids["image"]), LATEST, "RM-U5"),
            RemoveContainer(ContainerID(ids["container"]), ImageID(ids["image"]), "RM-C5"),
            Untag(ImageID(ids["image"]), V2, "RM-D6"),
            DeleteImage(ImageID(ids["image"]), "RM-D5"),
            DeleteLayer(LayerID(snap.images[0].top_layer), "SF-D-6"),
        ]
        folded = snap
        for effect in effects:
            folded = interpret_one(folded, effect)
        assert interpret(snap, RemovalPlan(effects=pvector(effects))) == folded
        assert (folded.images, folded.layers) == (pvector(), pvector())

    def test_untag_steals_in_a_store_with_duplicate_names(self) -> None:
        """SF-N-3: SetNames takes the kept names from any other read-write holder."""
        one = image("one", [LATEST, V2])
        two = image("two", [V2])
        snap = snapshot([one, two])
        after = interpret_one(snap, Untag(one.id, LATEST, "RM-U5"))
        assert [list(i.names) for i in after.images] == [[V2], []]


def test_untag_of_an_unknown_image_changes_nothing() -> None:
    """An Untag whose image has no read-write record is a no-op (idempotence)."""
    snap = snapshot([image("one", [LATEST])])
    assert interpret_one(snap, Untag(ImageID("f" * 64), LATEST, "RM-U5")) is snap
