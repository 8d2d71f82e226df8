"""Transport names: ParseImageName acceptance, containers-storage: grammar and resolution.

Rows come from behaviour-lookup.md section 6 (TR-1..TR-4) and decision 8 (no file
system look-ups; another store is refused, never opened).
"""

from __future__ import annotations

import pytest
from pyrsistent import pvector

from libimage.pure.context import Platform
from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.semantics import PODMAN_4_3, SEED, Semantics
from libimage.pure.snapshot import Snapshot
from libimage.pure.transport import (
    ForeignReference,
    NotATransportReference,
    StorageReference,
    StoreIdentity,
    StoreSpec,
    get_store_image,
    names_this_store,
    parse_image_name,
    parse_store_reference,
    parse_store_spec,
)
from libimage.spec.builders import (
    BuiltImage,
    canonical_json,
    hex_id,
    image,
    layer_chain,
    set_blob,
    sha256_digest,
    snapshot,
)

A_ID = "140f4e" + hex_id("A")[6:]
HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
OURS = StoreIdentity("/var/lib/ours", "vfs", "/run/ours")
HOST = Platform("linux", "amd64")


def store_a() -> tuple[Snapshot, BuiltImage]:
    made = image(
        "A",
        ["localhost/foo:latest", "docker.io/library/busybox:latest"],
        layers=layer_chain("a"),
        image_id=A_ID,
    )
    return snapshot([made]), made


def parsed(name: str, semantics: Semantics = SEED) -> object:
    return parse_image_name(store_a()[0], name, semantics, OURS)


class TestParseImageName:
    """TR-1, TR-2: which names are transport references (decision 8: no file system)."""

    @pytest.mark.parametrize(
        ("name", "transport"),
        [
            ("docker://busybox", "docker"),
            ("docker://busybox@" + DIGEST, "docker"),
            ("docker-daemon:busybox:latest", "docker-daemon"),
            ("docker-daemon:" + DIGEST, "docker-daemon"),
            ("docker-archive:/x.tar", "docker-archive"),
            ("docker-archive:/x.tar:@1", "docker-archive"),
            ("docker-archive:/x.tar:busybox", "docker-archive"),
            ("docker-archive::busybox:1", "docker-archive"),
            ("oci:/nonexistent/x", "oci"),  # decision 8: upstream looks at the disk
            ("oci:/x:my-image:1.0", "oci"),
            ("oci-archive:/x.tar", "oci-archive"),
            ("dir:/nonexistent", "dir"),
            ("dir:", "dir"),
            ("tarball:/nonexistent", "tarball"),
            ("atomic:a/b:1", "atomic"),
            ("atomic:foo:1", "atomic"),  # docker.io/library/foo: namespace/stream
        ],
        ids=lambda value: value,
    )
    def test_foreign(self, name: str, transport: str) -> None:
        result = parsed(name)
        assert isinstance(result, ForeignReference)
        assert result.transport == transport

    @pytest.mark.parametrize(
        ("name", "transport"),
        [
            ("busybox", ""),
            ("localhost:5000", ""),
            ("docker:busybox", "docker"),
            ("docker://busybox:1@" + DIGEST, "docker"),
            ("docker://Busybox", "docker"),
            ("docker-daemon:busybox", "docker-daemon"),
            ("docker-daemon:sha512:" + "0" * 128, "docker-daemon"),
            ("docker-daemon:sha256:abc", "docker-daemon"),
            ("docker-daemon:busybox:1@" + DIGEST, "docker-daemon"),
            ("docker-archive:", "docker-archive"),
            ("docker-archive:/x.tar:@-1", "docker-archive"),
            ("docker-archive:/x.tar:@x", "docker-archive"),
            ("docker-archive:/x.tar:busybox@" + DIGEST, "docker-archive"),
            ("oci:/x:Invalid!", "oci"),
            ("atomic:a/b/c:1", "atomic"),
            ("atomic:a/b", "atomic"),
            ("ostree:/repo", "ostree"),
            ("sif:/x.sif", ""),  # not registered in the seed's build
        ],
        ids=lambda value: value or "-",
    )
    def test_plain_names(self, name: str, transport: str) -> None:
        result = parsed(name)
        assert isinstance(result, NotATransportReference)
        assert result.transport == transport
        assert not result.typed_nil

    def test_podman_build_has_sif_but_no_atomic(self) -> None:
        assert isinstance(parsed("sif:/x.sif", PODMAN_4_3), ForeignReference)
        atomic = parsed("atomic:a/b:1", PODMAN_4_3)
        assert isinstance(atomic, NotATransportReference)
        assert atomic.transport == ""

    def test_storage_reference(self) -> None:
        result = parsed("containers-storage:busybox")
        assert isinstance(result, StorageReference)
        assert str(result) == "docker.io/library/busybox:latest"

    def test_refused_storage_reference_is_a_typed_nil(self) -> None:
        """LK-6 quirk: the storage transport refusing the reference part."""
        result = parsed(f"containers-storage:{HEX}")
        assert isinstance(result, NotATransportReference)
        assert (result.transport, result.typed_nil) == ("containers-storage", True)

    def test_refused_store_spec_is_no_typed_nil(self) -> None:
        result = parsed("containers-storage:[rel]busybox")
        assert isinstance(result, NotATransportReference)
        assert not result.typed_nil


class TestStoreSpec:
    """TR-3: the ``[driver@graphroot+runroot:options]`` prefix."""

    def test_all_parts(self) -> None:
        split = parse_store_spec("[vfs@/var/lib/x+/run/x:a=1,b=2]busybox")
        assert split == (
            StoreSpec("vfs", "/var/lib/x", "/run/x", pvector(["a=1", "b=2"])),
            "busybox",
        )

    def test_no_spec(self) -> None:
        assert parse_store_spec("busybox") == (None, "busybox")

    def test_root_only(self) -> None:
        assert parse_store_spec("[/var/lib/x]") == (StoreSpec("", "/var/lib/x"), "")

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("[/var/lib/x", ErrorKind.INVALID_STORAGE_REFERENCE),
            ("[]busybox", ErrorKind.INVALID_STORAGE_REFERENCE),
            ("[vfs@]busybox", ErrorKind.INVALID_STORAGE_REFERENCE),
            ("[@/var/lib/x]busybox", ErrorKind.INVALID_STORAGE_REFERENCE),
            ("[relative]busybox", ErrorKind.PATH_NOT_ABSOLUTE),
            ("[/var/lib/x+run]busybox", ErrorKind.PATH_NOT_ABSOLUTE),
        ],
        ids=["unterminated", "empty", "empty-root", "empty-driver", "relative", "relative-run"],
    )
    def test_errors(self, text: str, kind: ErrorKind) -> None:
        failure = parse_store_spec(text)
        assert isinstance(failure, Failure)
        assert failure.kind is kind

    @pytest.mark.parametrize(
        ("spec", "seed", "podman"),
        [
            (StoreSpec("", "/var/lib/ours"), True, False),
            (StoreSpec("vfs", "/var/lib/ours/", "/run/other"), True, False),
            (StoreSpec("", "/var/lib/./ours", "/run/ours/"), True, True),
            (StoreSpec("vfs", "/var/lib/ours", "/run/ours"), True, True),
            (StoreSpec("overlay", "/var/lib/ours", "/run/ours"), False, False),
            (StoreSpec("", "/var/lib/other", "/run/ours"), False, False),
        ],
        ids=["root", "other-runroot", "unclean", "all", "other-driver", "other-root"],
    )
    def test_names_this_store(self, spec: StoreSpec, seed: bool, podman: bool) -> None:
        """``GetStore``: graph root, then driver if given; storage 1.43 also the run root."""
        assert names_this_store(spec, OURS, SEED) is seed
        assert names_this_store(spec, OURS, PODMAN_4_3) is podman


class TestDecision8:
    """A spec naming this store is resolved here; another store is refused, not opened."""

    def test_our_store(self) -> None:
        for semantics in (SEED, PODMAN_4_3):
            result = parsed("containers-storage:[vfs@/var/lib/ours+/run/ours]busybox", semantics)
            assert isinstance(result, StorageReference)
            assert result.store == StoreSpec("vfs", "/var/lib/ours", "/run/ours")

    def test_another_store(self) -> None:
        for semantics in (SEED, PODMAN_4_3):
            result = parsed("containers-storage:[/var/lib/other+/run/other]busybox", semantics)
            assert isinstance(result, Failure)
            assert result.kind is ErrorKind.NAMES_ANOTHER_STORE
            assert "containers-storage:[/var/lib/other+/run/other]busybox" in result.message

    def test_without_run_root(self) -> None:
        """storage 1.37 refuses a spec without run root for a store it does not know
        (before any I/O); 1.43 fills in its default, which opens another store."""
        seed = parsed("containers-storage:[/var/lib/other]busybox")
        assert isinstance(seed, NotATransportReference)
        podman = parsed("containers-storage:[/var/lib/ours]busybox", PODMAN_4_3)
        assert isinstance(podman, Failure)
        assert podman.kind is ErrorKind.NAMES_ANOTHER_STORE

    def test_neither_root(self) -> None:
        for semantics in (SEED, PODMAN_4_3):
            result = parsed("containers-storage:[vfs@:opt]busybox", semantics)
            assert isinstance(result, NotATransportReference)


class TestParseStoreReference:
    """TR-3's table (store: image A ``140f4e…``)."""

    @pytest.mark.parametrize(
        ("text", "named", "image_id"),
        [
            ("busybox", "docker.io/library/busybox:latest", ""),
            ("localhost/foo", "localhost/foo:latest", ""),
            ("140f4ef", "", A_ID),
            ("@140", "", A_ID),
            (f"busybox:1@{HEX}", "docker.io/library/busybox:1", HEX),
            (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", ""),
            (f"sha256:{HEX}", f"docker.io/library/sha256:{HEX}", ""),
            (f"[/x]localhost/foo@{A_ID}", "localhost/foo:latest", A_ID),
            ("14", "docker.io/library/14:latest", ""),  # too short for an ID prefix
        ],
        ids=lambda value: value[:20] or "-",
    )
    def test_parsed(self, text: str, named: str, image_id: str) -> None:
        result = parse_store_reference(store_a()[0], text)
        assert isinstance(result, StorageReference)
        assert (str(result.named) if result.named else "", result.image_id) == (named, image_id)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", '"" is an empty reference: invalid reference'),
            ("[/x", 'store specifier in "[/x" did not end: invalid reference'),
            ("busybox@", 'empty trailing digest or ID in "busybox@": invalid reference'),
            ("busybox@xyz", '"xyz" does not look like an image ID or digest: invalid reference'),
            ("@14", '"14" does not look like an image ID or digest: invalid reference'),
            (
                HEX,
                f'parsing named reference "{HEX}": invalid repository name ({HEX}), '
                "cannot specify 64-byte hexadecimal strings",
            ),
            ("[/x]", "invalid reference"),
        ],
        ids=["empty", "unterminated", "empty-id", "not-an-id", "short-prefix", "hex", "nothing"],
    )
    def test_errors(self, text: str, message: str) -> None:
        result = parse_store_reference(store_a()[0], text)
        assert isinstance(result, Failure)
        assert result.message == message


def storage_ref(text: str) -> StorageReference:
    result = parse_store_reference(store_a()[0], text)
    assert isinstance(result, StorageReference)
    return result


class TestGetStoreImage:
    """TR-4: by name, by digest and repository, by ID with a repository check."""

    @pytest.mark.parametrize(
        ("text", "found"),
        [
            ("busybox", True),
            ("foo", False),  # docker.io/library/foo: no short-name expansion
            ("localhost/foo", True),
            (f"@{A_ID}", True),
            (f"localhost/foo@{A_ID}", True),
            (f"quay.io/x@{A_ID}", False),  # the ID's image has no quay.io/x name
        ],
        ids=["busybox", "foo", "localhost-foo", "id", "name-and-id", "wrong-repository"],
    )
    def test_examples(self, text: str, found: bool) -> None:
        snap, made = store_a()
        result = get_store_image(snap, storage_ref(text), HOST)
        assert (result.id if result else None) == (made.id if found else None)

    def test_digest_with_the_same_repository(self) -> None:
        snap, made = store_a()
        digest = made.manifest_digest
        assert get_store_image(snap, storage_ref(f"localhost/foo@{digest}"), HOST) == made.record
        assert get_store_image(snap, storage_ref(f"quay.io/foo@{digest}"), HOST) is None

    def test_later_image_wins_when_its_list_chooses_the_digest(self) -> None:
        """TR-4 step 2: among images with the digest, a later one replaces the first only
        if its manifest list would choose an instance it holds, for the host."""
        chosen = image("chosen", ["localhost/pulled:2"], layers=layer_chain("c"))
        other = image("other", ["localhost/pulled:1"], layers=layer_chain("o"))
        list_bytes = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "size": 1,
                        "digest": chosen.manifest_digest,
                        "platform": {"architecture": "amd64", "os": "linux"},
                    }
                ],
            }
        )
        list_digest = sha256_digest(list_bytes)
        chosen = set_blob(chosen, f"manifest-{list_digest}", list_bytes)
        other = set_blob(other, f"manifest-{list_digest}", list_bytes)
        ref = storage_ref(f"localhost/pulled@{list_digest}")
        for order in ([other, chosen], [chosen, other]):
            assert get_store_image(snapshot(order), ref, HOST) == chosen.record
        # On an arm64 host the list chooses nothing: the first image stays.
        arm_host = Platform("linux", "arm64")
        assert get_store_image(snapshot([other, chosen]), ref, arm_host) == other.record
