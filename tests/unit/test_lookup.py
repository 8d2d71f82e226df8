"""LookupImage, Exists and ResolveName over in-memory snapshots (LK, ML, EX, RN, DIV).

Expected values are the rows of behaviour-lookup.md: the worked examples of LK-10,
ML-6 and RN-1, the LK-11 and EX-1 rules, and one pinned example per difference
between the ``seed`` and ``podman-4.3`` profiles (DIV-1..DIV-5, decisions 17 and 18).
Each difference is also checked with only its own switch flipped, so that a test
fails if the behaviour hides behind another switch.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from pyrsistent import pmap, pvector

from libimage.pure.context import Context, Platform
from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.lookup import (
    LookupOptions,
    LookupResult,
    StepOutcome,
    check_exists,
    exists,
    lookup_image,
    resolve_name,
)
from libimage.pure.registries import RegistriesConfig
from libimage.pure.semantics import PODMAN_4_3, SEED, PlatformPolicy, Semantics
from libimage.pure.snapshot import Snapshot
from libimage.spec.builders import (
    DOCKER,
    OCI,
    BuiltImage,
    hex_id,
    image,
    layer_chain,
    manifest_list,
    missing_config,
    missing_manifest,
    snapshot,
    with_record,
    without_blob,
)

A_ID = "140f4e" + hex_id("A")[6:]
B_ID = "bb0d69" + hex_id("B")[6:]
A_DIGEST = "sha256:aa9d" + hex_id("A digest")[4:]
UNKNOWN_HEX = "d" * 64
NOTHING_HEX = "e" * 64

SEARCH = RegistriesConfig(unqualified_search_registries=pvector(["quay.io", "docker.io"]))
SEED_CONTEXT = Context(registries=SEARCH, semantics=SEED)
PODMAN_CONTEXT = Context(registries=SEARCH, semantics=PODMAN_4_3)


def built_a() -> BuiltImage:
    made = image(
        "A",
        ["localhost/foo:latest", "docker.io/library/busybox:latest"],
        layers=layer_chain("a"),
        image_id=A_ID,
    )
    return with_record(made, digest=A_DIGEST)


def built_b() -> BuiltImage:
    return image(
        "B",
        ["quay.io/other/img:v1", "localhost/140f:latest"],
        layers=layer_chain("b"),
        image_id=B_ID,
    )


def lk10_store() -> Snapshot:
    """The store of LK-10: A (140f4e…, digest aa9d…) and B (bb0d69…)."""
    return snapshot([built_a(), built_b()])


def context(semantics: Semantics = SEED, **changes: object) -> Context:
    return replace(Context(registries=SEARCH, semantics=semantics), **changes)  # type: ignore[arg-type]


def found_id(result: LookupResult) -> str:
    assert result.failure is None, result.failure
    assert result.image is not None
    return result.image.id


def failure_of(result: LookupResult) -> Failure:
    assert result.image is None, result.image
    assert result.failure is not None
    return result.failure


def outcomes(result: LookupResult) -> list[StepOutcome]:
    return [step.outcome for step in result.trace]


# --------------------------------------------------------------------------- LK-10

FOUND_ROWS = [
    ("1", A_ID, "1"),
    ("140f", A_ID, "140f"),
    ("sha256:140f", A_ID, "sha256:140f"),
    ("foo", A_ID, "localhost/foo:latest"),
    ("busybox", A_ID, "docker.io/library/busybox:latest"),
    ("library/busybox", A_ID, "docker.io/library/busybox:latest"),
    ("img:v1", B_ID, "quay.io/other/img:v1"),
    (f"whatever@{A_DIGEST}", A_ID, f"whatever@{A_DIGEST}"),
    ("containers-storage:busybox", A_ID, ""),
]

FAILED_ROWS = [
    (f"sha256:{NOTHING_HEX}", ErrorKind.IMAGE_UNKNOWN, f"sha256:{NOTHING_HEX}: image not known"),
    ("box", ErrorKind.IMAGE_UNKNOWN, "box: image not known"),
    ("img", ErrorKind.IMAGE_UNKNOWN, "img: image not known"),
    ("other/img", ErrorKind.IMAGE_UNKNOWN, "other/img: image not known"),
    (
        f"busybox:latest@sha256:{UNKNOWN_HEX}",
        ErrorKind.IMAGE_UNKNOWN,
        f"busybox@sha256:{UNKNOWN_HEX}: image not known",
    ),
    (
        "docker://busybox",
        ErrorKind.UNSUPPORTED_TRANSPORT,
        'unsupported transport "docker" for looking up local images',
    ),
    ("containers-storage:foo", ErrorKind.IMAGE_UNKNOWN, "image not known"),
    ("BusyBox", ErrorKind.NAME_CONTAINS_UPPERCASE, "repository name must be lowercase"),
    ("", ErrorKind.NAME_EMPTY, "repository name must have at least one component"),
    ("localhost:5000", ErrorKind.IMAGE_UNKNOWN, "localhost:5000: image not known"),
]


class TestWorkedExamples:
    """LK-10: the worked examples, seed profile, store A/B, search [quay.io, docker.io]."""

    @pytest.mark.parametrize(
        ("name", "image_id", "resolved"), FOUND_ROWS, ids=[row[0] for row in FOUND_ROWS]
    )
    def test_found(self, name: str, image_id: str, resolved: str) -> None:
        result = lookup_image(lk10_store(), name, LookupOptions(), SEED_CONTEXT)
        assert (found_id(result), result.resolved_name) == (image_id, resolved)

    @pytest.mark.parametrize(
        ("name", "kind", "message"), FAILED_ROWS, ids=[row[0] or "empty" for row in FAILED_ROWS]
    )
    def test_failed(self, name: str, kind: ErrorKind, message: str) -> None:
        failure = failure_of(lookup_image(lk10_store(), name, LookupOptions(), SEED_CONTEXT))
        assert (failure.kind, failure.message) == (kind, message)

    @pytest.mark.parametrize(
        ("name", "image_id", "resolved"),
        [row for row in FOUND_ROWS if row[0] not in ("140f", "sha256:140f")],
        ids=[row[0] for row in FOUND_ROWS if row[0] not in ("140f", "sha256:140f")],
    )
    def test_same_in_podman_profile(self, name: str, image_id: str, resolved: str) -> None:
        """Rows without a DIV note give the same answer in ``podman-4.3``."""
        result = lookup_image(lk10_store(), name, LookupOptions(), PODMAN_CONTEXT)
        assert (found_id(result), result.resolved_name) == (image_id, resolved)

    def test_short_name_candidates_in_order(self) -> None:
        """LK-6, LK-7: the raw name, then localhost, the search registries, docker.io."""
        result = lookup_image(lk10_store(), "busybox", LookupOptions(), SEED_CONTEXT)
        tried = [step.candidate for step in result.trace if step.outcome is not StepOutcome.FOUND]
        assert tried == [
            "busybox",
            "localhost/busybox:latest",
            "quay.io/busybox:latest",
            "docker.io/library/busybox:latest",
        ]

    def test_alias_comes_first(self) -> None:
        """LK-7, SN-2: an alias is the first short-name candidate."""
        registries = replace(SEARCH, aliases=pmap({"thing": "quay.io/other/img"}))
        result = lookup_image(
            lk10_store(), "thing:v1", LookupOptions(), context(registries=registries)
        )
        assert (found_id(result), result.resolved_name) == (B_ID, "quay.io/other/img:v1")

    def test_ambiguous_prefix_is_not_known(self) -> None:
        """ST-2: a prefix of two IDs is "not found", and the trace says why."""
        first = image("x1", image_id="abc1" + "0" * 60)
        second = image("x2", image_id="abc2" + "0" * 60)
        result = lookup_image(snapshot([first, second]), "abc", LookupOptions(), SEED_CONTEXT)
        assert failure_of(result).message == "abc: image not known"
        assert result.trace[0].outcome is StepOutcome.AMBIGUOUS_PREFIX

    def test_unknown_registries_configuration_means_unknown_short_names(self) -> None:
        """LK-7: an error of ResolveLocally (here: a bad registries.conf) is "not known"."""
        broken = Failure(ErrorKind.REGISTRIES_CONF, "/r.conf", "loading registries …", "SN-4")
        ctx = context(registries_error=broken)
        assert failure_of(lookup_image(lk10_store(), "foo", None, ctx)).message == (
            "foo: image not known"
        )
        assert found_id(lookup_image(lk10_store(), A_ID, None, ctx)) == A_ID

    def test_trace_ends_with_the_chosen_image(self) -> None:
        result = lookup_image(lk10_store(), "foo", LookupOptions(), SEED_CONTEXT)
        last = result.trace[-1]
        assert (last.outcome, last.image_id, last.candidate) == (
            StepOutcome.CHOSEN,
            A_ID,
            "localhost/foo:latest",
        )


# --------------------------------------------------------------------------- ML-6

HOST = Platform("linux", "amd64")


def list_store(
    entries: list[tuple[BuiltImage | str, Platform | None]], kind: str = DOCKER
) -> tuple[Snapshot, BuiltImage]:
    listed = manifest_list("list", ["localhost/list:latest"], entries=entries, kind=kind)
    return snapshot([built_a(), built_b(), listed]), listed


class TestManifestLists:
    """ML-6 examples (host linux/amd64, options empty unless said), ML-2..ML-5."""

    def test_empty_list_has_no_instance(self) -> None:
        snap, _ = list_store([])
        failure = failure_of(lookup_image(snap, "localhost/list", None, SEED_CONTEXT))
        assert failure.kind is ErrorKind.IMAGE_UNKNOWN
        assert failure.message == (
            'no image found in manifest list for architecture amd64, variant "", OS linux: '
            "image not known"
        )

    def test_empty_oci_index_names_the_index(self) -> None:
        snap, _ = list_store([], kind=OCI)
        assert failure_of(lookup_image(snap, "localhost/list", None, SEED_CONTEXT)).message == (
            'no image found in image index for architecture amd64, variant "", OS linux: '
            "image not known"
        )

    def test_empty_list_returned_when_asked(self) -> None:
        snap, listed = list_store([])
        options = LookupOptions(return_manifest_if_no_instance=True)
        assert found_id(lookup_image(snap, "localhost/list", options, SEED_CONTEXT)) == listed.id

    def test_instance_for_the_host(self) -> None:
        snap, _ = list_store([(built_a(), Platform("linux", "amd64"))])
        result = lookup_image(snap, "list", None, SEED_CONTEXT)
        assert (found_id(result), result.resolved_name) == (A_ID, "localhost/list:latest")
        step = next(s for s in result.trace if s.outcome is StepOutcome.MANIFEST_LIST_INSTANCE)
        assert step.image_id == A_ID

    def test_lookup_manifest_returns_the_list(self) -> None:
        snap, listed = list_store([(built_a(), Platform("linux", "amd64"))])
        options = LookupOptions(lookup_manifest=True)
        assert found_id(lookup_image(snap, "list", options, SEED_CONTEXT)) == listed.id

    def test_manifest_list_option_returns_the_list(self) -> None:
        snap, listed = list_store([(built_a(), Platform("linux", "amd64"))])
        options = LookupOptions(manifest_list=True)
        assert found_id(lookup_image(snap, "list", options, SEED_CONTEXT)) == listed.id

    def test_lookup_manifest_refuses_an_image(self) -> None:
        snap, _ = list_store([])
        options = LookupOptions(lookup_manifest=True)
        failure = failure_of(lookup_image(snap, "foo", options, SEED_CONTEXT))
        assert (failure.kind, failure.message) == (
            ErrorKind.NOT_A_MANIFEST_LIST,
            "localhost/foo:latest: image is not a manifest list",
        )

    def test_manifest_list_option_accepts_an_image(self) -> None:
        """LK-9 step 3: ``ManifestList`` alone carries on with a single image."""
        snap, _ = list_store([])
        assert found_id(lookup_image(snap, "foo", LookupOptions(manifest_list=True))) == A_ID

    def test_arm_instance_of_oci_image_fails_the_platform_check(self) -> None:
        """ML-6: arm/v7 chosen, then the OCI instance reports no variant: not found."""
        arm = image("arm", layers=layer_chain("arm"), arch="arm", variant="v7", media_type=OCI)
        listed = manifest_list(
            "list", ["localhost/list:latest"], entries=[(arm, Platform("linux", "arm", "v7"))]
        )
        snap = snapshot([arm, listed])
        options = LookupOptions(architecture="arm", variant="v7")
        result = lookup_image(snap, "list", options, SEED_CONTEXT)
        assert failure_of(result).message == "list: image not known"
        assert StepOutcome.MANIFEST_LIST_INSTANCE in outcomes(result)
        assert StepOutcome.PLATFORM_MISMATCH in outcomes(result)

    def test_variant_alone_does_not_choose_the_instance(self) -> None:
        """ML-3: a variant counts for instance choice only together with an architecture."""
        plain = image("plain", layers=layer_chain("plain"), media_type=DOCKER)
        v3 = image("v3", layers=layer_chain("v3"), variant="v3", media_type=DOCKER)
        listed = manifest_list(
            "list",
            ["localhost/list:latest"],
            entries=[(plain, Platform("linux", "amd64")), (v3, Platform("linux", "amd64", "v3"))],
        )
        snap = snapshot([plain, v3, listed])
        result = lookup_image(snap, "list", LookupOptions(variant="v3"), SEED_CONTEXT)
        chosen = [s for s in result.trace if s.outcome is StepOutcome.MANIFEST_LIST_INSTANCE]
        assert chosen[0].image_id == plain.id
        with_arch = LookupOptions(architecture="amd64", variant="v3")
        assert found_id(lookup_image(snap, "list", with_arch, SEED_CONTEXT)) == v3.id

    def test_missing_instances_file_is_an_error(self) -> None:
        """ML-2: ``instances.json`` is needed to load a list; its absence is no "unknown"."""
        listed = without_blob(
            manifest_list("list", ["localhost/list:latest"], entries=[(built_a(), HOST)]),
            "instances.json",
        )
        snap = snapshot([built_a(), listed])
        failure = failure_of(lookup_image(snap, "list", None, SEED_CONTEXT))
        assert failure.kind is ErrorKind.MANIFEST_LIST_LOAD
        assert failure.message.startswith(
            f'error locating image "{listed.id}" for loading instance list: '
        )

    def test_instance_not_in_store(self) -> None:
        """ML-5: the chosen digest is no local image; LK-9 wraps the error once more."""
        absent = "sha256:" + "c" * 64
        snap, listed = list_store([(absent, HOST)])
        failure = failure_of(lookup_image(snap, "list", None, SEED_CONTEXT))
        assert failure.kind is ErrorKind.IMAGE_UNKNOWN
        assert failure.message == (
            f"could not find image instance {absent} of manifest list {listed.id} "
            "in local containers storage: image not known: image not known"
        )


# --------------------------------------------------------------------------- LK-11, EX-1


class TestCorruptedImages:
    """LK-11: only a missing manifest (here) and Exists tolerate a corrupted image."""

    def test_missing_manifest_is_returned_as_is(self) -> None:
        broken = missing_manifest(image("x", ["localhost/broken:latest"], layers=layer_chain("x")))
        result = lookup_image(snapshot([broken]), "broken", None, SEED_CONTEXT)
        assert found_id(result) == broken.id
        assert StepOutcome.CORRUPTED_TOLERATED in outcomes(result)
        assert result.warnings[0].startswith("Failed to determine if an image is a manifest list")

    def test_missing_manifest_is_returned_even_with_a_platform(self) -> None:
        broken = missing_manifest(image("x", ["localhost/broken:latest"], layers=layer_chain("x")))
        options = LookupOptions(architecture="arm64")
        assert found_id(lookup_image(snapshot([broken]), "broken", options)) == broken.id

    def test_bad_metadata_is_an_error(self) -> None:
        broken = with_record(image("x", ["localhost/broken:latest"]), metadata='{"a": ')
        failure = failure_of(lookup_image(snapshot([broken]), "broken", None, SEED_CONTEXT))
        assert failure.kind is ErrorKind.IMAGE_CORRUPTED
        assert failure.message.startswith("decoding metadata for source image")

    def test_platform_check_of_an_image_without_config_is_an_error(self) -> None:
        broken = missing_config(image("x", ["localhost/broken:latest"], layers=layer_chain("x")))
        options = LookupOptions(architecture="amd64")
        failure = failure_of(lookup_image(snapshot([broken]), "broken", options, SEED_CONTEXT))
        assert failure.kind is ErrorKind.IMAGE_CORRUPTED

    def test_platform_check_is_skipped_without_options(self) -> None:
        broken = missing_config(image("x", ["localhost/broken:latest"], layers=layer_chain("x")))
        assert found_id(lookup_image(snapshot([broken]), "broken", None, SEED_CONTEXT)) == (
            broken.id
        )


class TestExists:
    """EX-1: unknown is False, other errors are returned, corrupted images are False."""

    def test_sound_image(self) -> None:
        assert exists(lk10_store(), "foo", SEED_CONTEXT) is True

    def test_unknown_image(self) -> None:
        assert exists(lk10_store(), "nothere", SEED_CONTEXT) is False

    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("BusyBox", ErrorKind.NAME_CONTAINS_UPPERCASE),
            ("docker://busybox", ErrorKind.UNSUPPORTED_TRANSPORT),
            ("$$garbage", ErrorKind.REFERENCE_INVALID_FORMAT),
        ],
        ids=["uppercase", "transport", "garbage"],
    )
    def test_errors_are_returned(self, name: str, kind: ErrorKind) -> None:
        answer = exists(lk10_store(), name, SEED_CONTEXT)
        assert isinstance(answer, Failure)
        assert answer.kind is kind

    def test_manifest_list_exists(self) -> None:
        snap, _ = list_store([(built_a(), HOST)])
        assert exists(snap, "list", SEED_CONTEXT) is True

    def test_list_without_instance_does_not_exist(self) -> None:
        snap, _ = list_store([])
        assert exists(snap, "list", SEED_CONTEXT) is False

    def test_missing_manifest_does_not_exist(self) -> None:
        broken = missing_manifest(image("x", ["localhost/broken:latest"], layers=layer_chain("x")))
        checked = check_exists(snapshot([broken]), "broken", SEED_CONTEXT)
        assert (checked.exists, checked.failure) == (False, None)
        assert checked.lookup.image is not None
        assert checked.corruption is not None
        assert checked.corruption.message.startswith(
            "Image broken exists in local storage but may be corrupted "
            "(remove the image to resolve the issue): "
        )

    def test_missing_layer_does_not_exist(self) -> None:
        broken = with_record(image("x", ["localhost/broken:latest"]), top_layer=hex_id("gone"))
        assert exists(snapshot([broken]), "broken", SEED_CONTEXT) is False

    def test_storage_name_is_opened_through_its_reference(self) -> None:
        """EX-1, TR-4: ``name@id`` finds the image by name, but opening resolves the ID,
        whose image lacks the name: "corrupted" (observed with podman 4.3.1)."""
        name = f"containers-storage:quay.io/other/img:v1@{A_ID}"
        checked = check_exists(lk10_store(), name, SEED_CONTEXT)
        assert checked.lookup.image is not None
        assert checked.lookup.image.id == B_ID
        assert checked.exists is False
        assert checked.corruption is not None
        assert checked.corruption.message.endswith(": identifier is not an image")
        plain = "containers-storage:quay.io/other/img:v1"
        assert exists(lk10_store(), plain, SEED_CONTEXT) is True

    def test_missing_config_still_exists(self) -> None:
        """EX-1 opens the image without its config (observed with podman 4.3.1)."""
        broken = missing_config(image("x", ["localhost/broken:latest"], layers=layer_chain("x")))
        assert exists(snapshot([broken]), "broken", SEED_CONTEXT) is True


# --------------------------------------------------------------------------- RN-1


class TestResolveName:
    """RN-1 examples with the LK-10 store."""

    @pytest.mark.parametrize(
        ("name", "resolved"),
        [
            ("", ""),
            ("busybox", "docker.io/library/busybox:latest"),
            # quirk (RN-1): found by ID prefix, so the *name* is normalised.
            ("140f", "localhost/140f:latest"),
            (f"sha256:{A_ID}", f"sha256:{A_ID}"),
            ("nothere", "localhost/nothere:latest"),
            # quirk (RN-1, TR-4): the resolved name of a containers-storage: name is "".
            ("containers-storage:busybox", "localhost/containers-storage:busybox"),
            ("quay.io/x", "quay.io/x:latest"),
        ],
        ids=["empty", "busybox", "id-prefix", "sha256", "nothere", "storage", "qualified"],
    )
    def test_examples(self, name: str, resolved: str) -> None:
        assert resolve_name(lk10_store(), name, SEED_CONTEXT) == resolved

    def test_lookup_errors_are_returned(self) -> None:
        answer = resolve_name(lk10_store(), "BusyBox", SEED_CONTEXT)
        assert isinstance(answer, Failure)
        assert answer.kind is ErrorKind.NAME_CONTAINS_UPPERCASE

    def test_id_prefix_resolves_to_another_image(self) -> None:
        """RN-1 counter-example: ``140f`` finds A, but its resolution finds B."""
        snap = lk10_store()
        assert found_id(lookup_image(snap, "140f", None, SEED_CONTEXT)) == A_ID
        resolved = resolve_name(snap, "140f", SEED_CONTEXT)
        assert isinstance(resolved, str)
        assert found_id(lookup_image(snap, resolved, None, SEED_CONTEXT)) == B_ID

    def test_storage_name_resolves_to_nothing(self) -> None:
        """RN-1 counter-example: a containers-storage: name resolves to a name of no image."""
        snap = lk10_store()
        resolved = resolve_name(snap, "containers-storage:busybox", SEED_CONTEXT)
        assert isinstance(resolved, str)
        assert failure_of(lookup_image(snap, resolved, None, SEED_CONTEXT)).kind is (
            ErrorKind.IMAGE_UNKNOWN
        )


# --------------------------------------------------------------------------- DIV


def flipped(**switch: object) -> Context:
    """The seed profile with one switch set as podman 4.3.1 has it."""
    return context(SEED.with_changes(**switch))


class TestProfileDifferences:
    """DIV-1..DIV-5 and decisions 17/18, each with the reference's small example."""

    def test_div1_short_name_beats_id_prefix(self) -> None:
        snap = lk10_store()
        assert found_id(lookup_image(snap, "140f", None, SEED_CONTEXT)) == A_ID
        for ctx in (flipped(short_names_before_id_prefix=True), PODMAN_CONTEXT):
            result = lookup_image(snap, "140f", None, ctx)
            assert (found_id(result), result.resolved_name) == (B_ID, "localhost/140f:latest")

    def test_div1_full_id_is_only_looked_up_in_the_store(self) -> None:
        """DIV-1: a 64-hex name that is no ID is not expanded as a short name."""
        named = image("hexnamed", [f"localhost/{NOTHING_HEX}:latest"])
        snap = snapshot([named])
        assert found_id(lookup_image(snap, NOTHING_HEX, None, SEED_CONTEXT)) == named.id
        assert failure_of(lookup_image(snap, NOTHING_HEX, None, PODMAN_CONTEXT)).message == (
            f"{NOTHING_HEX}: image not known"
        )

    def test_div2_sha256_needs_a_full_id(self) -> None:
        snap = lk10_store()
        assert found_id(lookup_image(snap, "sha256:140f", None, SEED_CONTEXT)) == A_ID
        for ctx in (flipped(sha256_needs_full_id=True), PODMAN_CONTEXT):
            failure = failure_of(lookup_image(snap, "sha256:140f", None, ctx))
            assert (failure.kind, failure.message) == (
                ErrorKind.INVALID_ID_FORMAT,
                "sha256:140f: invalid format: no 64-byte hexadecimal value",
            )

    def test_div3_digest_match_gets_the_lookup_checks(self) -> None:
        snap = lk10_store()
        options = LookupOptions(lookup_manifest=True)
        name = f"whatever@{A_DIGEST}"
        assert found_id(lookup_image(snap, name, options, SEED_CONTEXT)) == A_ID
        for ctx in (flipped(digest_match_runs_lookup_checks=True), PODMAN_CONTEXT):
            failure = failure_of(lookup_image(snap, name, options, ctx))
            assert (failure.kind, failure.message) == (
                ErrorKind.NOT_A_MANIFEST_LIST,
                f"{A_ID}: image is not a manifest list",
            )

    def test_div4_both_sides_are_normalised(self) -> None:
        """DIV-4: the seed compares the image's ``x86_64`` verbatim with ``amd64``."""
        odd = image("odd", ["localhost/odd:latest"], layers=layer_chain("odd"), arch="x86_64")
        snap = snapshot([odd])
        options = LookupOptions(architecture="amd64")
        assert failure_of(lookup_image(snap, "odd", options, SEED_CONTEXT)).kind is (
            ErrorKind.IMAGE_UNKNOWN
        )
        policy = PlatformPolicy.NORMALIZED_IF_REQUESTED
        for ctx in (flipped(platform_policy=policy), PODMAN_CONTEXT):
            assert found_id(lookup_image(snap, "odd", options, ctx)) == odd.id

    def test_div4_mismatch_only_matters_when_asked(self) -> None:
        """DIV-4: without options a foreign image is kept, with a trace note (podman)."""
        arm = image("arm", ["localhost/arm:latest"], layers=layer_chain("arm"), arch="arm64")
        result = lookup_image(snapshot([arm]), "arm", None, PODMAN_CONTEXT)
        assert found_id(result) == arm.id
        assert StepOutcome.PLATFORM_MISMATCH_IGNORED in outcomes(result)

    def test_div4_id_prefix_skips_the_check_of_a_corrupted_image(self) -> None:
        """DIV-4: the seed reads the platform of an ID-prefix candidate; podman does not."""
        broken = missing_config(image("x", ["localhost/x:latest"], layers=layer_chain("x")))
        snap = snapshot([broken])
        options = LookupOptions(architecture="arm64")
        prefix = broken.id[:8]
        assert failure_of(lookup_image(snap, prefix, options, SEED_CONTEXT)).kind is (
            ErrorKind.IMAGE_CORRUPTED
        )
        policy = PlatformPolicy.NORMALIZED_IF_REQUESTED
        for ctx in (flipped(platform_policy=policy), PODMAN_CONTEXT):
            assert found_id(lookup_image(snap, prefix, options, ctx)) == broken.id

    def test_div5_default_variant_chooses_another_instance(self) -> None:
        """DIV-5: ``armhf`` is arm without a variant in the seed, arm/v7 in podman."""
        v8 = image("v8", layers=layer_chain("v8"), arch="arm", variant="v8", media_type=DOCKER)
        v7 = image("v7", layers=layer_chain("v7"), arch="arm", variant="v7", media_type=DOCKER)
        listed = manifest_list(
            "list",
            ["localhost/list:latest"],
            entries=[(v8, Platform("linux", "arm", "v8")), (v7, Platform("linux", "arm", "v7"))],
        )
        snap = snapshot([v8, v7, listed])
        options = LookupOptions(architecture="armhf")
        assert found_id(lookup_image(snap, "list", options, SEED_CONTEXT)) == v8.id
        for ctx in (flipped(normalize_platform_keeps_default_variant=True), PODMAN_CONTEXT):
            assert found_id(lookup_image(snap, "list", options, ctx)) == v7.id

    def test_decision17_variant_never_matches_an_oci_image_in_the_seed(self) -> None:
        arm = image(
            "arm", ["localhost/arm:latest"], layers=layer_chain("arm"), arch="arm64", variant="v8"
        )
        snap = snapshot([arm])
        options = LookupOptions(architecture="arm64", variant="v8")
        assert failure_of(lookup_image(snap, "arm", options, SEED_CONTEXT)).message == (
            "arm: image not known"
        )
        assert found_id(lookup_image(snap, "arm", options, PODMAN_CONTEXT)) == arm.id

    def test_decision18_unparseable_stored_name_is_skipped_with_a_warning(self) -> None:
        bad = image("bad", ["localhost/Bad:latest"])
        snap = snapshot([bad, built_b()])
        for ctx in (SEED_CONTEXT, PODMAN_CONTEXT):
            result = lookup_image(snap, "img:v1", None, ctx)
            assert found_id(result) == B_ID
            assert any(bad.id in w and "localhost/Bad:latest" in w for w in result.warnings)

    def test_typed_nil_storage_reference_stops_the_seed(self) -> None:
        """quirk (LK-6): a refused containers-storage: reference is "clearly local"."""
        name = f"containers-storage:{NOTHING_HEX}"
        named = image("odd", [f"localhost/{name}"])
        snap = snapshot([named])
        assert failure_of(lookup_image(snap, name, None, SEED_CONTEXT)).message == (
            f"{name}: image not known"
        )
        assert found_id(lookup_image(snap, name, None, PODMAN_CONTEXT)) == named.id

    def test_registered_transports(self) -> None:
        """TR-1: ``atomic:`` is a transport in the seed, ``sif:`` in podman 4.3.1."""
        snap = lk10_store()
        seed_atomic = failure_of(lookup_image(snap, "atomic:a/b:1", None, SEED_CONTEXT))
        podman_atomic = failure_of(lookup_image(snap, "atomic:a/b:1", None, PODMAN_CONTEXT))
        assert (seed_atomic.kind, podman_atomic.kind) == (
            ErrorKind.UNSUPPORTED_TRANSPORT,
            ErrorKind.REFERENCE_INVALID_FORMAT,
        )
        seed_sif = failure_of(lookup_image(snap, "sif:foo", None, SEED_CONTEXT))
        podman_sif = failure_of(lookup_image(snap, "sif:foo", None, PODMAN_CONTEXT))
        assert (seed_sif.message, podman_sif.kind) == (
            "sif:foo: image not known",
            ErrorKind.UNSUPPORTED_TRANSPORT,
        )

    def test_platform_choices_of_the_context(self) -> None:
        """LK-5: empty options take the runtime's choices."""
        arm = image("arm", ["localhost/arm:latest"], layers=layer_chain("arm"), arch="arm64")
        snap = snapshot([arm])
        amd64 = lookup_image(snap, "arm", None, context(architecture_choice="amd64"))
        assert failure_of(amd64).kind is ErrorKind.IMAGE_UNKNOWN
        arm64 = lookup_image(snap, "arm", None, context(architecture_choice="aarch64"))
        assert found_id(arm64) == arm.id


class TestRegistriesConfigurationFailure:
    """LK-7, SN-2: a configuration that does not load hides short names only.

    ResolveLocally returns a name that is not short without reading registries.conf,
    so a qualified stored name is still found; a short name is "image not known".
    """

    BROKEN = Failure(ErrorKind.REGISTRIES_CONF, "/etc/r.conf", "loading registries ...", "SN-4")

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("localhost/foo:latest", A_ID),
            ("docker.io/library/busybox", A_ID),
            ("quay.io/other/img:v1", B_ID),
            (A_ID, A_ID),
        ],
        ids=["exact name", "qualified docker.io", "qualified quay.io", "full ID"],
    )
    def test_qualified_names_and_ids_are_found(self, name: str, expected: str) -> None:
        for semantics in (SEED, PODMAN_4_3):
            result = lookup_image(
                lk10_store(), name, None, context(semantics, registries_error=self.BROKEN)
            )
            assert found_id(result) == expected

    @pytest.mark.parametrize("name", ["foo", "busybox", "img:v1"])
    def test_short_names_are_unknown(self, name: str) -> None:
        result = lookup_image(lk10_store(), name, None, context(registries_error=self.BROKEN))
        assert failure_of(result).kind is ErrorKind.IMAGE_UNKNOWN
        assert failure_of(result).message == f"{name}: image not known"
