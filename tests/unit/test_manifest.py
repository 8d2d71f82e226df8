"""Manifests, manifest lists and configs (ST-5, ST-6, ML-1, ML-2, ML-4, ML-5, EX-1, SF-B-6)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from pyrsistent import pvector

from libimage.pure.context import Platform
from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.manifest import (
    MIME_DOCKER_LIST,
    MIME_DOCKER_V2S1,
    MIME_DOCKER_V2S1_SIGNED,
    MIME_DOCKER_V2S2,
    MIME_OCI_INDEX,
    MIME_OCI_MANIFEST,
    ImageConfig,
    ListEntry,
    ManifestList,
    choose_instance,
    find_instance_image,
    guess_mime_type,
    image_config,
    image_platform,
    instance_list,
    instance_not_found,
    is_corrupted,
    is_manifest_list,
    load_manifest_list,
    open_image,
    parse_go_rfc3339,
    parse_instance_list,
)
from libimage.pure.snapshot import Layer, Snapshot, Unreadable
from libimage.spec.builders import (
    DOCKER,
    OCI,
    BuiltImage,
    canonical_json,
    hex_id,
    image,
    layer,
    layer_chain,
    manifest_list,
    missing_config,
    missing_manifest,
    set_blob,
    snapshot,
    with_blobs,
    with_record,
    without_blob,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


@dataclass(frozen=True)
class MimeCase:
    name: str
    data: bytes
    expected: str


MIME_CASES = [
    MimeCase(
        "docker v2s2 by mediaType",
        b'{"schemaVersion":2,"mediaType":"' + MIME_DOCKER_V2S2.encode() + b'"}',
        MIME_DOCKER_V2S2,
    ),
    MimeCase(
        "docker list by mediaType",
        b'{"mediaType":"' + MIME_DOCKER_LIST.encode() + b'"}',
        MIME_DOCKER_LIST,
    ),
    MimeCase(
        "oci manifest by mediaType",
        b'{"mediaType":"' + MIME_OCI_MANIFEST.encode() + b'"}',
        MIME_OCI_MANIFEST,
    ),
    MimeCase(
        "oci index by mediaType",
        b'{"mediaType":"' + MIME_OCI_INDEX.encode() + b'"}',
        MIME_OCI_INDEX,
    ),
    MimeCase(
        "key MediaType matches", b'{"MediaType":"' + MIME_OCI_INDEX.encode() + b'"}', MIME_OCI_INDEX
    ),
    MimeCase(
        "key MEDIATYPE matches",
        b'{"MEDIATYPE":"' + MIME_DOCKER_LIST.encode() + b'"}',
        MIME_DOCKER_LIST,
    ),
    MimeCase("key SchemaVersion matches", b'{"SCHEMAversion":1}', MIME_DOCKER_V2S1),
    MimeCase(
        "long s folds to s in a key",
        '{"schemaVersion":1,"\u017fignatures":[]}'.encode(),
        MIME_DOCKER_V2S1_SIGNED,
    ),
    MimeCase("media_type is another key", b'{"media_type":"' + MIME_OCI_INDEX.encode() + b'"}', ""),
    MimeCase("schema1 without signatures", b'{"schemaVersion":1}', MIME_DOCKER_V2S1),
    MimeCase(
        "schema1 with null signatures", b'{"schemaVersion":1,"signatures":null}', MIME_DOCKER_V2S1
    ),
    MimeCase(
        "schema1 with empty signatures",
        b'{"schemaVersion":1,"signatures":[]}',
        MIME_DOCKER_V2S1_SIGNED,
    ),
    MimeCase(
        "schema1 with object signatures",
        b'{"schemaVersion":1,"signatures":{}}',
        MIME_DOCKER_V2S1_SIGNED,
    ),
    MimeCase(
        "schema2 with OCI config type",
        b'{"schemaVersion":2,"config":{"mediaType":"' + OCI_CONFIG.encode() + b'"}}',
        MIME_OCI_MANIFEST,
    ),
    MimeCase(
        "schema2 with docker config type",
        b'{"schemaVersion":2,"config":{"mediaType":"' + DOCKER_CONFIG.encode() + b'"}}',
        MIME_DOCKER_V2S2,
    ),
    MimeCase(
        "schema2 with manifests is an index",
        b'{"schemaVersion":2,"manifests":[{"digest":"sha256:1"}]}',
        MIME_OCI_INDEX,
    ),
    MimeCase(
        "quirk: manifests with an odd config type give that type",
        b'{"schemaVersion":2,"config":{"mediaType":"odd"},"manifests":[{}]}',
        "odd",
    ),
    MimeCase(
        "schema2 with empty manifests", b'{"schemaVersion":2,"manifests":[]}', MIME_OCI_MANIFEST
    ),
    MimeCase("schema2 alone", b'{"schemaVersion":2}', MIME_OCI_MANIFEST),
    MimeCase(
        "unknown mediaType falls back to the shape",
        b'{"mediaType":"text/plain","schemaVersion":2}',
        MIME_OCI_MANIFEST,
    ),
    MimeCase(
        "null mediaType is ignored", b'{"mediaType":null,"schemaVersion":2}', MIME_OCI_MANIFEST
    ),
    MimeCase(
        "last duplicate key wins",
        b'{"mediaType":"' + MIME_DOCKER_LIST.encode() + b'","mediaType":"x","schemaVersion":2}',
        MIME_OCI_MANIFEST,
    ),
    MimeCase("schema version 3", b'{"schemaVersion":3}', ""),
    MimeCase("no schema version", b"{}", ""),
    MimeCase("schema version as a string", b'{"schemaVersion":"2"}', ""),
    MimeCase("schema version with a fraction", b'{"schemaVersion":2.0}', ""),
    MimeCase("mediaType of the wrong type", b'{"mediaType":5,"schemaVersion":2}', ""),
    MimeCase("config of the wrong type", b'{"schemaVersion":2,"config":"x"}', ""),
    MimeCase("manifests of the wrong element type", b'{"schemaVersion":2,"manifests":[1]}', ""),
    MimeCase("NaN is not JSON", b'{"schemaVersion":2,"x":NaN}', ""),
    MimeCase("invalid JSON", b'{"schemaVersion":2', ""),
    MimeCase("empty bytes", b"", ""),
    MimeCase("array at the top", b"[]", ""),
    MimeCase("null at the top", b"null", ""),
    MimeCase("trailing garbage", b'{"schemaVersion":1} x', ""),
]


class TestGuessMimeType:
    """ST-5: GuessMIMEType, keys matched case-insensitively as Go does."""

    @pytest.mark.parametrize("case", MIME_CASES, ids=lambda c: c.name)
    def test_classification(self, case: MimeCase) -> None:
        assert guess_mime_type(case.data) == case.expected


@dataclass(frozen=True)
class TimeCase:
    name: str
    text: str
    expected: int | None


TIME_CASES = [
    TimeCase("epoch", "1970-01-01T00:00:00Z", 0),
    TimeCase("offset is subtracted", "1970-01-01T01:00:00+01:00", 0),
    TimeCase("negative offset", "1969-12-31T23:00:00-01:00", 0),
    TimeCase("fraction", "1970-01-01T00:00:01.25Z", 1_250_000_000),
    TimeCase("comma fraction", "1970-01-01T00:00:01,5Z", 1_500_000_000),
    TimeCase("digits past nanoseconds are dropped", "1970-01-01T00:00:00.1234567891Z", 123_456_789),
    TimeCase("one-digit hour", "1970-01-01T1:00:00Z", 3_600_000_000_000),
    TimeCase("leap day", "2024-02-29T00:00:00Z", 1_709_164_800 * 10**9),
    TimeCase("no leap day", "2023-02-29T00:00:00Z", None),
    TimeCase("hour 24", "1970-01-01T24:00:00Z", None),
    TimeCase("space instead of T", "1970-01-01 00:00:00Z", None),
    TimeCase("no zone", "1970-01-01T00:00:00", None),
    TimeCase("lower-case z", "1970-01-01T00:00:00z", None),
    TimeCase("trailing text", "1970-01-01T00:00:00Zx", None),
]


class TestRfc3339:
    """LT-3 compares history ``created`` as instants, read as Go's time.Parse reads them."""

    @pytest.mark.parametrize("case", TIME_CASES, ids=lambda c: c.name)
    def test_parse(self, case: TimeCase) -> None:
        assert parse_go_rfc3339(case.text) == case.expected


LINUX_AMD64 = Platform("linux", "amd64")
ARM_V7 = Platform("linux", "arm", "v7")


def wanted(os: str, arch: str, variants: list[str]) -> list[Platform]:
    return [Platform(os, arch, v) for v in variants]


def entry(digest: str, platform: Platform | None) -> ListEntry:
    return ListEntry(digest, platform)


@dataclass(frozen=True)
class ChoiceCase:
    name: str
    mime_type: str
    entries: list[ListEntry]
    wanted: list[Platform]
    expected: str


CHOICE_CASES = [
    ChoiceCase(
        "docker list exact match",
        MIME_DOCKER_LIST,
        [entry("sha256:arm", ARM_V7), entry("sha256:amd", LINUX_AMD64)],
        wanted("linux", "amd64", [""]),
        "sha256:amd",
    ),
    ChoiceCase(
        "wanted platform order beats entry order (PLAT-4 arm v7 -> v7, v6, v5, '')",
        MIME_DOCKER_LIST,
        [entry("sha256:v6", Platform("linux", "arm", "v6")), entry("sha256:v7", ARM_V7)],
        wanted("linux", "arm", ["v7", "v6", "v5", ""]),
        "sha256:v7",
    ),
    ChoiceCase(
        "compatible older variant",
        MIME_DOCKER_LIST,
        [entry("sha256:v5", Platform("linux", "arm", "v5"))],
        wanted("linux", "arm", ["v7", "v6", "v5", ""]),
        "sha256:v5",
    ),
    ChoiceCase(
        "entry without variant matches the empty wanted variant",
        MIME_DOCKER_LIST,
        [entry("sha256:plain", Platform("linux", "arm64"))],
        wanted("linux", "arm64", ["v8", ""]),
        "sha256:plain",
    ),
    ChoiceCase(
        "first entry wins among equals",
        MIME_OCI_INDEX,
        [entry("sha256:one", LINUX_AMD64), entry("sha256:two", LINUX_AMD64)],
        wanted("linux", "amd64", [""]),
        "sha256:one",
    ),
    ChoiceCase(
        "OCI entry without platform is skipped when another matches",
        MIME_OCI_INDEX,
        [entry("sha256:none", None), entry("sha256:amd", LINUX_AMD64)],
        wanted("linux", "amd64", [""]),
        "sha256:amd",
    ),
    ChoiceCase(
        "OCI entry without platform is the fallback",
        MIME_OCI_INDEX,
        [entry("sha256:arm", ARM_V7), entry("sha256:none1", None), entry("sha256:none2", None)],
        wanted("linux", "amd64", [""]),
        "sha256:none1",
    ),
]


class TestChooseInstance:
    """ML-4: for each wanted platform, the first entry that matches exactly."""

    @pytest.mark.parametrize("case", CHOICE_CASES, ids=lambda c: c.name)
    def test_choice(self, case: ChoiceCase) -> None:
        listing = ManifestList("list", case.mime_type, pvector(case.entries))
        assert choose_instance(listing, case.wanted) == case.expected

    @pytest.mark.parametrize(
        ("mime_type", "message"),
        [
            (
                MIME_DOCKER_LIST,
                'no image found in manifest list for architecture arm, variant "v7", OS linux',
            ),
            (
                MIME_OCI_INDEX,
                'no image found in image index for architecture arm, variant "v7", OS linux',
            ),
        ],
        ids=["docker list", "oci index"],
    )
    def test_no_match_names_the_first_wanted_platform(self, mime_type: str, message: str) -> None:
        listing = ManifestList("list", mime_type, pvector([entry("sha256:amd", LINUX_AMD64)]))
        result = choose_instance(listing, wanted("linux", "arm", ["v7", "v6", "v5", ""]))
        assert isinstance(result, Failure)
        assert result.message == message
        assert result.kind is ErrorKind.MANIFEST_LIST_LOAD

    def test_matching_is_case_sensitive(self) -> None:
        listing = ManifestList(
            "l", MIME_DOCKER_LIST, pvector([entry("sha256:x", Platform("Linux", "amd64"))])
        )
        assert isinstance(choose_instance(listing, [LINUX_AMD64]), Failure)

    def test_docker_entry_without_platform_never_matches(self) -> None:
        built = manifest_list("l", entries=[("sha256:" + "1" * 64, None)], kind=DOCKER)
        snap = snapshot([built])
        listing = instance_list(snap, snap.images[0])
        assert isinstance(listing, ManifestList)
        assert isinstance(choose_instance(listing, [LINUX_AMD64]), Failure)

    def test_oci_entry_without_platform_from_stored_index(self) -> None:
        built = manifest_list("l", entries=[("sha256:" + "1" * 64, None)], kind=OCI)
        snap = snapshot([built])
        listing = instance_list(snap, snap.images[0])
        assert isinstance(listing, ManifestList)
        assert choose_instance(listing, [LINUX_AMD64]) == "sha256:" + "1" * 64


def amd64_image(seed: str, names: list[str] | None = None, **options: object) -> BuiltImage:
    return image(seed, names or [], layers=layer_chain(("layer", seed)), **options)  # type: ignore[arg-type]  # test helper passes image() keywords


class TestManifestLists:
    """ML-1 detection, ML-2 loading, ML-4 parsing and ML-5 instance lookup."""

    def test_list_is_detected_and_single_images_are_not(self) -> None:
        instance = amd64_image("a")
        listed = manifest_list("l", ["localhost/list:latest"], entries=[(instance, LINUX_AMD64)])
        snap = snapshot([instance, listed])
        assert is_manifest_list(snap, snap.images[0]) is False
        assert is_manifest_list(snap, snap.images[1]) is True

    def test_pulled_instance_with_list_under_digest_key_is_not_a_list(self) -> None:
        """ML-1: the list stored as manifest-<listdigest> only adds a digest."""
        instance = amd64_image("a")
        listed = manifest_list("l", entries=[(instance, LINUX_AMD64)])
        list_bytes = listed.blobs["manifest"]
        pulled = set_blob(instance, "manifest-sha256:" + hex_id("listdigest"), list_bytes)
        snap = snapshot([pulled])
        assert is_manifest_list(snap, snap.images[0]) is False

    def test_missing_manifest_is_unreadable_and_missing(self) -> None:
        snap = snapshot([missing_manifest(amd64_image("a"))])
        result = is_manifest_list(snap, snap.images[0])
        assert isinstance(result, Unreadable)
        assert result.missing

    def test_bad_metadata_is_an_error_that_is_not_missing(self) -> None:
        """LK-9 step 2: a metadata decoding error is not tolerated like a missing manifest."""
        snap = snapshot([with_record(amd64_image("a"), metadata="{not json")])
        result = is_manifest_list(snap, snap.images[0])
        assert isinstance(result, Unreadable)
        assert not result.missing
        assert result.reason.startswith("decoding metadata for source image: ")

    def test_load_has_entries_and_instances(self) -> None:
        instance = amd64_image("a")
        listed = manifest_list("l", entries=[(instance, ARM_V7)], kind=OCI)
        snap = snapshot([instance, listed])
        loaded = load_manifest_list(snap, snap.images[1])
        assert isinstance(loaded, ManifestList)
        assert loaded.mime_type == MIME_OCI_INDEX
        assert [(e.digest, e.platform) for e in loaded.entries] == [
            (instance.manifest_digest, ARM_V7)
        ]
        assert loaded.instances[instance.manifest_digest] == instance.id
        assert loaded.instances[""] == listed.id

    def test_missing_instances_is_an_error_not_unknown(self) -> None:
        listed = without_blob(manifest_list("l", entries=[]), "instances.json")
        snap = snapshot([listed])
        loaded = load_manifest_list(snap, snap.images[0])
        assert isinstance(loaded, Failure)
        assert loaded.kind is ErrorKind.MANIFEST_LIST_LOAD
        assert loaded.message.startswith(
            f'error locating image "{listed.id}" for loading instance list: '
        )

    def test_single_image_does_not_load_as_a_list(self) -> None:
        snap = snapshot([amd64_image("a")])
        loaded = load_manifest_list(snap, snap.images[0])
        assert isinstance(loaded, Failure)
        assert loaded.message == (
            f'unable to load manifest list: unsupported format "{MIME_OCI_MANIFEST}": '
            "manifest type not supported"
        )

    def test_instance_parse_refuses_single_images(self) -> None:
        built = amd64_image("a")
        result = parse_instance_list(built.blobs["manifest"], built.id)
        assert isinstance(result, Failure)
        assert result.message == "Treating single images as manifest lists is not implemented"

    def test_instance_parse_refuses_ambiguous_lists(self) -> None:
        data = canonical_json({"mediaType": MIME_DOCKER_LIST, "manifests": [], "config": {}})
        result = parse_instance_list(data, "x")
        assert isinstance(result, Failure)
        assert result.message.startswith("rejecting ambiguous manifest")

    def test_empty_list_reports_the_host_platform(self) -> None:
        """ML-6: an empty list gives the docker-list error text for the wanted platform."""
        snap = snapshot([manifest_list("l", ["localhost/list:latest"])])
        listing = instance_list(snap, snap.images[0])
        assert isinstance(listing, ManifestList)
        result = choose_instance(listing, [LINUX_AMD64])
        assert isinstance(result, Failure)
        assert result.message == (
            'no image found in manifest list for architecture amd64, variant "", OS linux'
        )

    def test_instance_is_found_in_store_order(self) -> None:
        """ML-5: the first image in store order whose digests hold the chosen digest."""
        first = amd64_image("a")
        copy = with_record(amd64_image("b"), digest=first.manifest_digest)
        snap = snapshot([copy, first])
        found = find_instance_image(snap, first.manifest_digest)
        assert found is not None
        assert found.id == copy.id
        assert find_instance_image(snap, "sha256:" + "9" * 64) is None

    def test_read_only_store_comes_after_read_write(self) -> None:
        target = amd64_image("a")
        ro = replace(target, record=replace(target.record, read_only=True, store_index=1))
        rw = with_record(amd64_image("b"), digest=target.manifest_digest)
        snap = snapshot([ro, rw])
        found = find_instance_image(snap, target.manifest_digest)
        assert found is not None
        assert found.id == rw.id


def image_with_layer(seed: str, lay: Layer) -> BuiltImage:
    return image(seed, layers=[lay])


def sound() -> BuiltImage:
    return amd64_image("sound")


def orphan() -> BuiltImage:
    """An image whose top layer's parent is not stored."""
    return image("orphan", layers=[layer("top", parent="f" * 64)])


@dataclass(frozen=True)
class CorruptionCase:
    name: str
    build: object  # () -> Snapshot
    corrupted: bool
    reason: str = ""


def _snap(*images: BuiltImage, layers: list[Layer] | None = None) -> Snapshot:
    return snapshot(images, layers or [])


def _cycle() -> Snapshot:
    a = layer("a", parent=hex_id("layer", "b"))
    b = layer("b", parent=a)
    return snapshot([image("cyclic", layers=[b])], [a])


CORRUPTION_CASES = [
    CorruptionCase("sound image", lambda: _snap(sound()), corrupted=False),
    CorruptionCase("image without layers", lambda: _snap(image("empty")), corrupted=False),
    CorruptionCase(
        "docker image", lambda: _snap(amd64_image("d", media_type=DOCKER)), corrupted=False
    ),
    CorruptionCase(
        "missing config still opens (EX-1 does not read it)",
        lambda: _snap(missing_config(sound())),
        corrupted=False,
    ),
    CorruptionCase(
        "missing manifest",
        lambda: _snap(missing_manifest(sound())),
        corrupted=True,
        reason="manifest",
    ),
    CorruptionCase(
        "metadata is not JSON",
        lambda: _snap(with_record(sound(), metadata="{")),
        corrupted=True,
        reason="decoding metadata for source image",
    ),
    CorruptionCase(
        "metadata of the wrong shape",
        lambda: _snap(with_record(sound(), metadata='{"signature-sizes": "x"}')),
        corrupted=True,
        reason="decoding metadata for source image",
    ),
    CorruptionCase(
        "manifest is garbage",
        lambda: _snap(set_blob(sound(), "manifest", b"garbage")),
        corrupted=True,
    ),
    CorruptionCase(
        "docker manifest with an unsupported layer media type",
        lambda: _snap(
            set_blob(
                sound(),
                "manifest",
                canonical_json(
                    {
                        "schemaVersion": 2,
                        "mediaType": MIME_DOCKER_V2S2,
                        "config": {"mediaType": DOCKER_CONFIG, "digest": "sha256:" + "0" * 64},
                        "layers": [{"mediaType": "text/plain", "digest": "sha256:" + "1" * 64}],
                    }
                ),
            )
        ),
        corrupted=True,
        reason='unsupported docker v2s2 media type: "text/plain"',
    ),
    CorruptionCase(
        "OCI manifest carrying manifests (ambiguous)",
        lambda: _snap(
            set_blob(
                sound(),
                "manifest",
                canonical_json(
                    {
                        "schemaVersion": 2,
                        "config": {"mediaType": OCI_CONFIG},
                        "layers": [],
                        "manifests": [],
                    }
                ),
            )
        ),
        corrupted=True,
        reason="rejecting ambiguous manifest",
    ),
    CorruptionCase(
        "layer without a known digest",
        lambda: _snap(image_with_layer("u", layer("u", measured=False))),
        corrupted=True,
        reason="is unknown, failing getSize()",
    ),
    CorruptionCase(
        "layer with a negative size",
        lambda: _snap(image_with_layer("n", replace(layer("n"), diff_size=-1))),
        corrupted=True,
        reason="is unknown, failing getSize()",
    ),
    CorruptionCase(
        "parent layer not stored",
        lambda: _snap(orphan()),
        corrupted=True,
        reason="layer not known",
    ),
    CorruptionCase(
        "docker manifest carrying manifests (ambiguous)",
        lambda: _snap(
            set_blob(
                sound(),
                "manifest",
                canonical_json(
                    {"schemaVersion": 2, "mediaType": MIME_DOCKER_V2S2, "manifests": [{}]}
                ),
            )
        ),
        corrupted=True,
        reason="rejecting ambiguous manifest",
    ),
    CorruptionCase(
        "unknown schema version is read as schema1",
        lambda: _snap(set_blob(sound(), "manifest", b'{"schemaVersion":3}')),
        corrupted=True,
        reason="unsupported schema version 3",
    ),
    CorruptionCase("layer cycle ends", _cycle, corrupted=True, reason="cycle"),
    CorruptionCase(
        "manifest list that loads",
        lambda: _snap(manifest_list("l", entries=[("sha256:" + "1" * 64, LINUX_AMD64)])),
        corrupted=False,
    ),
    CorruptionCase(
        "manifest list without instances.json",
        lambda: _snap(without_blob(manifest_list("l"), "instances.json")),
        corrupted=True,
    ),
]


class TestCorruption:
    """EX-1/IP-12: a list that loads, or an image that opens fully, is not corrupted."""

    @pytest.mark.parametrize("case", CORRUPTION_CASES, ids=lambda c: c.name)
    def test_case(self, case: CorruptionCase) -> None:
        build = case.build
        assert callable(build)
        snap = build()
        assert isinstance(snap, Snapshot)
        result = is_corrupted(snap, snap.images[0])
        if not case.corrupted:
            assert result is None
            return
        assert isinstance(result, Failure)
        assert result.kind is ErrorKind.IMAGE_CORRUPTED
        assert case.reason in result.message

    def test_message_names_the_input_or_the_short_id(self) -> None:
        snap = _snap(missing_manifest(sound()))
        target = snap.images[0]
        named = is_corrupted(snap, target, "foo")
        unnamed = is_corrupted(snap, target)
        assert named is not None
        assert unnamed is not None
        prefix = (
            "exists in local storage but may be corrupted (remove the image to resolve the issue): "
        )
        assert named.message.startswith("Image foo " + prefix)
        assert unnamed.message.startswith(f"Image {target.id[:12]} " + prefix)

    def test_big_data_size_falls_back_to_the_content(self) -> None:
        """getSize: an item without a recorded size is measured; unreadable -> not known."""
        built = with_record(sound(), big_data_sizes={})
        assert open_image(_snap(built), _snap(built).images[0]) is None
        gone = without_blob(built, "manifest-" + built.manifest_digest)
        snap = _snap(gone)
        failure = open_image(snap, snap.images[0])
        assert failure is not None
        assert "size is not known" in failure.message


class TestImageConfig:
    """SF-B-6, ST-6, LT-2: the config read through the manifest."""

    def test_docker_reports_variant(self) -> None:
        snap = _snap(amd64_image("d", media_type=DOCKER, arch="arm", variant="v7"))
        assert image_platform(snap, snap.images[0]) == Platform("linux", "arm", "v7")

    def test_oci_reports_no_variant(self) -> None:
        """ST-6: OCI manifests always report an empty variant, even if the config has one."""
        snap = _snap(amd64_image("o", media_type=OCI, arch="arm", variant="v7"))
        assert image_platform(snap, snap.images[0]) == Platform("linux", "arm", "")

    def test_platform_of_an_image_that_does_not_open_is_the_error(self) -> None:
        snap = _snap(missing_manifest(amd64_image("x")))
        result = image_platform(snap, snap.images[0])
        assert isinstance(result, Failure)
        assert result.kind is ErrorKind.IMAGE_CORRUPTED

    def test_values_are_verbatim(self) -> None:
        snap = _snap(amd64_image("v", os="Linux", arch="x86_64"))
        assert image_platform(snap, snap.images[0]) == Platform("Linux", "x86_64", "")

    def test_labels_history_and_diff_ids(self) -> None:
        built = amd64_image("l", labels={"color": "red"})
        snap = _snap(built)
        config = image_config(snap, snap.images[0])
        assert isinstance(config, ImageConfig)
        assert dict(config.labels or {}) == {"color": "red"}
        assert list(config.diff_ids) == [built.layers[0].diff_digest]
        assert len(config.history) == 1

    def test_no_labels_is_none(self) -> None:
        snap = _snap(amd64_image("n"))
        config = image_config(snap, snap.images[0])
        assert isinstance(config, ImageConfig)
        assert config.labels is None

    def test_config_digest_must_match(self) -> None:
        built = amd64_image("m")
        snap = _snap(set_blob(built, built.config_key, b"{}"))
        config = image_config(snap, snap.images[0])
        assert isinstance(config, Failure)
        assert "does not match expected" in config.message

    def test_missing_config_is_an_error(self) -> None:
        snap = _snap(missing_config(amd64_image("c")))
        assert isinstance(image_config(snap, snap.images[0]), Failure)

    def test_bad_history_time_is_an_error(self) -> None:
        snap = _snap(amd64_image("t", extra_config={"history": [{"created": "yesterday"}]}))
        assert isinstance(image_config(snap, snap.images[0]), Failure)

    def test_labels_of_the_wrong_type_are_an_error(self) -> None:
        snap = _snap(amd64_image("w", extra_config={"config": {"Labels": {"a": 1}}}))
        assert isinstance(image_config(snap, snap.images[0]), Failure)

    def test_manifest_key_is_read_not_the_digest_key(self) -> None:
        """compat (SF-B-6): images opened by ID read ``manifest``, not ``manifest-<digest>``."""
        built = amd64_image("k")
        other = amd64_image("other", arch="arm64")
        mixed = set_blob(built, "manifest", other.blobs["manifest"])
        mixed = set_blob(mixed, other.config_key, other.blobs[other.config_key])
        snap = _snap(mixed)
        platform = image_platform(snap, snap.images[0])
        assert platform == Platform("linux", "arm64", "")

    def test_results_are_memoised_per_snapshot(self) -> None:
        snap = _snap(sound())
        first = image_config(snap, snap.images[0])
        assert image_config(snap, snap.images[0]) is first


def schema1(history: list[dict[str, object]], layers: int | None = None, **extra: object) -> bytes:
    """A schema1 manifest whose v1Compatibility entries are ``history`` (newest first)."""
    count = len(history) if layers is None else layers
    document: dict[str, object] = {
        "schemaVersion": 1,
        "name": "x",
        "tag": "latest",
        "fsLayers": [{"blobSum": "sha256:" + "0" * 64}] * count,
        "history": [{"v1Compatibility": canonical_json(h).decode()} for h in history],
    }
    document.update(extra)
    return canonical_json(document)


V1_A, V1_B = "a" * 64, "b" * 64

SCHEMA1_CASES = [
    ("well formed", schema1([{"id": V1_B, "parent": V1_A}, {"id": V1_A}]), "config unavailable"),
    (
        "repeated ID in a row is dropped",
        schema1([{"id": V1_A}, {"id": V1_A}]),
        "config unavailable",
    ),
    ("no layers", schema1([]), "no FSLayers in manifest"),
    (
        "history and layers differ",
        schema1([{"id": V1_A}], layers=2),
        "length of history not equal to number of layers",
    ),
    ("bad v1 ID", schema1([{"id": "nothex"}]), 'image ID "nothex" is invalid'),
    (
        "base has a parent",
        schema1([{"id": V1_A, "parent": V1_B}]),
        "Invalid parent ID in the base layer of the image",
    ),
    (
        "ID appears twice apart",
        schema1([{"id": V1_A, "parent": V1_B}, {"id": V1_B}, {"id": V1_A}]),
        "appears multiple times in manifest",
    ),
    (
        "broken parent chain",
        schema1([{"id": V1_B, "parent": "c" * 64}, {"id": V1_A}]),
        f"Invalid parent ID. Expected {V1_A}, got {'c' * 64}",
    ),
    (
        "v1Compatibility is not JSON",
        canonical_json(
            {
                "schemaVersion": 1,
                "fsLayers": [{"blobSum": "sha256:" + "0" * 64}],
                "history": [{"v1Compatibility": "{"}],
            }
        ),
        "parsing v2s1 history entry 0",
    ),
    (
        "schema1 carrying layers is ambiguous",
        schema1([{"id": V1_A}], config={}),
        "rejecting ambiguous manifest",
    ),
]


class TestSchema1:
    """Schema1 manifests open (EX-1) when well formed, but have no config (SF-B-6)."""

    @pytest.mark.parametrize(
        ("data", "reason"),
        [case[1:] for case in SCHEMA1_CASES],
        ids=[case[0] for case in SCHEMA1_CASES],
    )
    def test_schema1(self, data: bytes, reason: str) -> None:
        snap = _snap(set_blob(sound(), "manifest", data))
        record = snap.images[0]
        config = image_config(snap, record)
        assert isinstance(config, Failure)
        assert reason in config.message
        opened = open_image(snap, record)
        assert (opened is None) == (reason == "config unavailable")


def with_config_digest(digest: str) -> Snapshot:
    manifest = canonical_json(
        {"schemaVersion": 2, "config": {"mediaType": OCI_CONFIG, "digest": digest}, "layers": []}
    )
    return _snap(set_blob(image("cfg"), "manifest", manifest))


class TestConfigDigest:
    """The config descriptor's digest is validated (go-digest) before it is read."""

    @pytest.mark.parametrize(
        ("digest", "message"),
        [
            ("nocolon", "invalid checksum digest format"),
            ("sha256:", "invalid checksum digest format"),
            ("md5:" + "0" * 32, "unsupported digest algorithm"),
            ("MD5:x", "invalid checksum digest format"),
            ("sha256:abc", "invalid checksum digest length"),
            ("sha256:" + "G" * 64, "invalid checksum digest format"),
            ("sha512:" + "0" * 128, "no such big data item"),
        ],
        ids=[
            "no colon",
            "empty hex",
            "unknown algorithm",
            "bad algorithm",
            "short",
            "upper",
            "sha512",
        ],
    )
    def test_digest(self, digest: str, message: str) -> None:
        snap = with_config_digest(digest)
        config = image_config(snap, snap.images[0])
        assert isinstance(config, Failure)
        assert message in config.message


class TestDecodingErrors:
    """Go's json.Unmarshal rejects a value of the wrong JSON type anywhere in a known field."""

    @pytest.mark.parametrize(
        "extra",
        [
            {"config": {"Labels": []}},
            {"config": {"ExposedPorts": {"80/tcp": 1}}},
            {"history": [{"empty_layer": "yes"}]},
            {"history": [{"created": 5}]},
            {"rootfs": {"diff_ids": "x"}},
            {"os": ["linux"]},
            {"os": {}},
            {"architecture": True},
        ],
        ids=[
            "labels array",
            "port set value",
            "bool as string",
            "time as number",
            "diff ids",
            "os array",
            "os object",
            "arch bool",
        ],
    )
    def test_config_type_errors(self, extra: dict[str, object]) -> None:
        snap = _snap(amd64_image("e", extra_config=extra))
        assert isinstance(image_config(snap, snap.images[0]), Failure)

    def test_unknown_keys_are_not_checked(self) -> None:
        snap = _snap(amd64_image("u", extra_config={"container_config": 5, "Config": None}))
        assert isinstance(image_config(snap, snap.images[0]), ImageConfig)

    def test_deep_nesting_is_an_error_not_a_crash(self) -> None:
        assert guess_mime_type(b"[" * 100_000 + b"]" * 100_000) == ""


class TestListErrors:
    """ML-2 and ML-4 failures are values naming the list image."""

    def test_list_that_does_not_decode(self) -> None:
        data = canonical_json({"mediaType": MIME_DOCKER_LIST, "manifests": [{"size": "big"}]})
        listed = set_blob(manifest_list("l"), "manifest", data)
        snap = _snap(listed)
        loaded = load_manifest_list(snap, snap.images[0])
        assert isinstance(loaded, Failure)
        assert loaded.message.startswith("unable to parse Docker manifest list from image: ")
        parsed = instance_list(snap, snap.images[0])
        assert isinstance(parsed, Failure)
        assert parsed.message.startswith("unmarshaling Schema2List ")

    @pytest.mark.parametrize(
        ("instances", "message"),
        [
            (b"[]", "error decoding instance list for image"),
            (b'{"sha256:x": 1}', "error decoding instance list for image"),
            (b"null", "assignment to entry in nil map"),
        ],
        ids=["array", "number value", "null"],
    )
    def test_bad_instances(self, instances: bytes, message: str) -> None:
        snap = _snap(set_blob(manifest_list("l"), "instances.json", instances))
        loaded = load_manifest_list(snap, snap.images[0])
        assert isinstance(loaded, Failure)
        assert message in loaded.message

    def test_missing_manifest_fails_both_parses(self) -> None:
        snap = _snap(missing_manifest(manifest_list("l")))
        loaded = load_manifest_list(snap, snap.images[0])
        assert isinstance(loaded, Failure)
        assert loaded.message.startswith("error locating image ")
        assert isinstance(instance_list(snap, snap.images[0]), Failure)

    def test_docker_entry_without_platform_reads_as_empty_platform(self) -> None:
        data = canonical_json(
            {"mediaType": MIME_DOCKER_LIST, "manifests": [{"digest": "sha256:1"}]}
        )
        snap = _snap(set_blob(manifest_list("l"), "manifest", data))
        loaded = load_manifest_list(snap, snap.images[0])
        assert isinstance(loaded, ManifestList)
        assert loaded.entries[0].platform == Platform("", "")

    def test_no_wanted_platform_is_a_caller_bug(self) -> None:
        with pytest.raises(ValueError, match="PLAT-4"):
            choose_instance(ManifestList("l", MIME_DOCKER_LIST), [])

    def test_instance_not_found_text(self) -> None:
        """ML-5: LK-9 wraps it once more, giving '...: image not known: image not known'."""
        record = snapshot([manifest_list("l")]).images[0]
        failure = instance_not_found(record, "sha256:" + "1" * 64)
        assert failure.kind is ErrorKind.IMAGE_UNKNOWN
        assert failure.message == (
            f"could not find image instance sha256:{'1' * 64} of manifest list {record.id} "
            "in local containers storage: image not known"
        )

    def test_empty_chosen_digest_matches_an_image_without_digests(self) -> None:
        """quirk (ML-5): Digests() plus Digest() holds "" for an image without digests."""
        bare = with_record(with_blobs(image("bare"), {}), digest="")
        digested = amd64_image("d")
        snap = snapshot([digested, bare])
        found = find_instance_image(snap, "")
        assert found is not None
        assert found.id == bare.id
