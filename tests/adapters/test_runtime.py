"""The Runtime façade and the exists/lookup/resolve commands on real stores.

A small store is built with podman per module. The tests check that a long-lived
runtime re-reads the store only when a last-writer token changed (SF-K-5) and so
sees a ``podman tag`` made meanwhile; the system context (SN-3, the big-files
temporary directory); and the commands' exit codes, outputs and error messages,
including the user-visible consequences of decision 17 and store errors.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.podman import PodmanStore, make_tar, requires_podman

from libimage.adapters.cli import run
from libimage.adapters.host import host_platform
from libimage.adapters.runtime import Runtime
from libimage.adapters.storage_conf import StoreOptions
from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.lookup import LookupOptions
from libimage.pure.semantics import PODMAN_4_3

pytestmark = requires_podman

REGISTRIES_CONF = 'unqualified-search-registries = ["quay.io"]\n'


@dataclass(frozen=True)
class Sample:
    store: PodmanStore
    registries: Path
    foo: str
    arm: str

    def flags(self, *, semantics: str = "seed") -> list[str]:
        return [
            *self.store.storage_flags(),
            "--registries-conf",
            str(self.registries),
            "--semantics",
            semantics,
        ]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    base = tmp_path_factory.mktemp("runtime")
    registries = base / "registries.conf"
    registries.write_text(REGISTRIES_CONF)
    store = PodmanStore.create(base).init()
    foo = store.import_image("localhost/foo:latest", {"foo": b"foo"})
    store.tag(foo, "quay.io/x/thing:1")
    # podman import --arch/--variant writes them into an OCI config (no variant reported).
    arm = _import_platform(store, base, "localhost/armv8:latest", "arm64", "v8")
    # Every lock file gets a token (a container made and removed writes containers.lock).
    container = store.buildah_container("localhost/foo:latest")
    store.buildah("rm", container)
    return Sample(store, registries, foo, arm)


def _import_platform(store: PodmanStore, base: Path, name: str, arch: str, variant: str) -> str:
    tarball = base / f"{arch}.tar"
    tarball.write_bytes(make_tar({arch: arch.encode()}))
    output = store.run(
        "import", "--quiet", "--arch", arch, "--variant", variant, str(tarball), name
    ).stdout
    return output.strip().splitlines()[-1].removeprefix("sha256:")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def runtime_for(sample: Sample, store: PodmanStore | None = None) -> Runtime:
    options = (store or sample.store).options()
    return Runtime.from_options(options, registries_conf=str(sample.registries))


# --------------------------------------------------------------------------- re-reading


def test_snapshot_is_kept_while_the_store_is_unchanged(sample: Sample, tmp_path: Path) -> None:
    """SF-K-5: no token changed, no re-read: the same snapshot object."""
    store = sample.store.copy_to(tmp_path)
    runtime = runtime_for(sample, store)
    first = runtime.snapshot()
    assert runtime.snapshot() is first
    assert runtime.lookup_image("foo").image is not None
    assert runtime.reads == 1


def test_long_lived_runtime_sees_a_podman_tag(sample: Sample, tmp_path: Path) -> None:
    store = sample.store.copy_to(tmp_path)
    runtime = runtime_for(sample, store)
    assert runtime.exists("bar") is False
    before = runtime.snapshot()
    store.tag("localhost/foo:latest", "localhost/bar:latest")
    found = runtime.lookup_image("bar")
    assert found.image is not None
    assert (found.image.id, found.resolved_name) == (sample.foo, "localhost/bar:latest")
    assert runtime.snapshot() is not before
    assert runtime.reads == 2
    store.untag("localhost/foo:latest", "localhost/bar:latest")
    assert runtime.exists("bar") is False


def test_shutdown(sample: Sample) -> None:
    runtime = runtime_for(sample)
    assert runtime.exists("foo") is True
    runtime.shutdown()
    with pytest.raises(RuntimeError):
        runtime.snapshot()


# --------------------------------------------------------------------------- listing


def _podman_ids(sample: Sample, *args: str) -> list[str]:
    listed = sample.store.run("images", "-a", "--no-trunc", "--format", "{{.ID}}", *args)
    # The table has a row per tag: an image with two names is listed twice.
    return list(dict.fromkeys(line.removeprefix("sha256:") for line in listed.stdout.split()))


def test_list_images_lists_what_podman_lists(sample: Sample) -> None:
    """LS-3: without names every image; podman's -a adds no filter, so the sets agree."""
    listed = runtime_for(sample).list_images()
    assert listed.ok
    assert {image.id for image in listed.images} == set(_podman_ids(sample))


def test_list_images_with_a_filter_agrees_with_podman(sample: Sample) -> None:
    """FL-R*: a reference filter selects what podman's does."""
    listed = runtime_for(sample).list_images(filters=["reference=quay.io/*/*"])
    assert listed.ok
    expected = _podman_ids(sample, "--filter", "reference=quay.io/*/*")
    assert [image.id for image in listed.images] == expected == [sample.foo]


def test_list_images_of_names_keeps_their_order(sample: Sample) -> None:
    """LS-2: one entry per name, in the order given, duplicates kept."""
    listed = runtime_for(sample).list_images(["armv8", "foo", "armv8"])
    assert [image.id for image in listed.images] == [sample.arm, sample.foo, sample.arm]


def test_list_images_of_an_unknown_name_fails_naming_it(sample: Sample) -> None:
    """LS-2: the first lookup error aborts the listing."""
    listed = runtime_for(sample).list_images(["foo", "nothing-here"])
    assert listed.failure is not None
    assert listed.failure.kind is ErrorKind.IMAGE_UNKNOWN
    assert "nothing-here" in listed.failure.message
    assert not listed.images


def test_list_images_with_a_bad_filter_fails_naming_it(sample: Sample) -> None:
    """FL-P1: an unknown filter key is an error naming the key."""
    listed = runtime_for(sample).list_images(filters=["colour=blue"])
    assert listed.failure is not None
    assert "colour" in listed.failure.message


def test_list_images_until_uses_the_given_time(sample: Sample) -> None:
    """FL-T*: ``until`` compares with the caller's clock; before 1970 nothing was made."""
    runtime = runtime_for(sample)
    assert len(runtime.list_images(filters=["until=1h"], now_ns=0).images) == 0
    an_hour_later = time.time_ns() + 3600 * 10**9
    listed = runtime.list_images(filters=["until=1s"], now_ns=an_hour_later)
    assert len(listed.images) == len(_podman_ids(sample))


# --------------------------------------------------------------------------- system context


def options_of(sample: Sample) -> StoreOptions:
    return sample.store.options()


@pytest.mark.parametrize(
    ("explicit", "environ", "path"),
    [
        ("/explicit.conf", {"CONTAINERS_REGISTRIES_CONF": "/env.conf"}, "/explicit.conf"),
        (None, {"CONTAINERS_REGISTRIES_CONF": "/env.conf"}, "/env.conf"),
        (None, {"REGISTRIES_CONFIG_PATH": "/old.conf"}, "/old.conf"),
        (None, {"CONTAINERS_REGISTRIES_CONF": "", "REGISTRIES_CONFIG_PATH": "/old.conf"}, ""),
        (None, {}, ""),
    ],
    ids=["explicit", "containers-env", "old-env", "empty-stops", "none"],
)
def test_registries_conf_path(
    sample: Sample, explicit: str | None, environ: dict[str, str], path: str
) -> None:
    """SN-3: libimage's ``setRegistriesConfPath``."""
    runtime = Runtime.from_options(
        options_of(sample), registries_conf=explicit, environ={"HOME": "/nonexistent", **environ}
    )
    assert runtime.system_context().system_registries_conf_path == path


def test_registries_from_the_environment_are_used(sample: Sample) -> None:
    environ = {"HOME": "/nonexistent", "CONTAINERS_REGISTRIES_CONF": str(sample.registries)}
    runtime = Runtime.from_options(options_of(sample), environ=environ)
    found = runtime.lookup_image("x/thing:1")
    assert (found.resolved_name, found.image.id if found.image else "") == (
        "quay.io/x/thing:1",
        sample.foo,
    )


@pytest.mark.parametrize(
    ("environ", "directory"),
    [({"TMPDIR": "/scratch"}, "/scratch"), ({"TMPDIR": ""}, "/var/tmp"), ({}, "/var/tmp")],
    ids=["tmpdir", "empty", "unset"],
)
def test_big_files_temporary_dir(sample: Sample, environ: dict[str, str], directory: str) -> None:
    runtime = Runtime.from_options(options_of(sample), environ={"HOME": "/nonexistent", **environ})
    assert runtime.system_context().big_files_temporary_dir == directory


def test_system_context_is_a_copy(sample: Sample) -> None:
    runtime = Runtime.from_options(options_of(sample), architecture_choice="arm64")
    copy = runtime.system_context()
    assert copy == runtime.system_context()
    assert copy.architecture_choice == "arm64"
    assert runtime.context().architecture_choice == "arm64"


def test_bad_registries_conf_makes_short_names_unknown(sample: Sample, tmp_path: Path) -> None:
    """LK-7: a registries.conf that does not load fails short-name resolution only."""
    broken = tmp_path / "broken.conf"
    broken.write_text('unqualified-search-registries = "quay.io"\n')
    runtime = Runtime.from_options(options_of(sample), registries_conf=str(broken))
    failure = runtime.lookup_image("foo").failure
    assert failure is not None
    assert (failure.kind, failure.message) == (ErrorKind.IMAGE_UNKNOWN, "foo: image not known")
    assert runtime.lookup_image("localhost/foo:latest").image is not None


# --------------------------------------------------------------------------- commands


def test_exists_exit_codes(sample: Sample) -> None:
    assert cli(*sample.flags(), "exists", "foo")[0] == 0
    assert cli(*sample.flags(), "exists", "nothere")[0] == 1
    code, _, err = cli(*sample.flags(), "exists", "BusyBox")
    assert (code, err) == (125, "Error: repository name must be lowercase\n")


def test_lookup_prints_the_id(sample: Sample) -> None:
    assert cli(*sample.flags(), "lookup", "foo") == (0, f"{sample.foo}\n", "")
    code, out, err = cli(*sample.flags(), "lookup", "nothere")
    assert (code, out, err) == (1, "", "Error: nothere: image not known\n")
    code, out, err = cli(*sample.flags(), "lookup", "docker://foo")
    assert (code, out) == (125, "")
    assert err == 'Error: unsupported transport "docker" for looking up local images\n'


def test_lookup_explain(sample: Sample) -> None:
    code, out, _ = cli(*sample.flags(), "lookup", "--explain", "foo")
    lines = out.splitlines()
    assert code == 0
    host = host_platform()
    shown = "/".join(part for part in (host.os, host.architecture, host.variant) if part)
    assert lines[0] == f'Looking up "foo" (semantics seed, host {shown})'
    assert lines[1] == "  1. [LK-6] foo: not in store"
    assert lines[2] == (
        f"  2. [LK-7] localhost/foo:latest: found in store (by name) -> {sample.foo[:12]}"
    )
    assert lines[3] == (
        '  3. [LK-7] localhost/foo:latest: chosen (resolved name "localhost/foo:latest")'
        f" -> {sample.foo}"
    )
    assert lines[4] == sample.foo


def test_lookup_json(sample: Sample) -> None:
    code, out, _ = cli(*sample.flags(), "lookup", "--format", "json", "foo")
    document = json.loads(out)
    assert code == 0
    assert document["Id"] == sample.foo
    assert document["ResolvedName"] == "localhost/foo:latest"
    assert document["ManifestList"] is False
    assert document["Error"] is None
    assert [step["Outcome"] for step in document["Trace"]] == ["NOT_IN_STORE", "FOUND", "CHOSEN"]
    code, out, _ = cli(*sample.flags(), "lookup", "--format", "json", "nothere")
    document = json.loads(out)
    assert (code, document["Id"], document["Error"]) == (1, None, "nothere: image not known")


def test_resolve(sample: Sample) -> None:
    assert cli(*sample.flags(), "resolve", "thing:1") == (0, "quay.io/x/thing:1\n", "")
    assert cli(*sample.flags(), "resolve", "nothere") == (0, "localhost/nothere:latest\n", "")
    assert cli(*sample.flags(), "resolve", "Foo")[0] == 125


def test_decision17_short_sha256(sample: Sample) -> None:
    """``sha256:<short hex>``: found in ``seed``, an invalid-format error in ``podman-4.3``."""
    name = f"sha256:{sample.foo[:8]}"
    assert cli(*sample.flags(), "lookup", name) == (0, f"{sample.foo}\n", "")
    code, _, err = cli(*sample.flags(semantics="podman-4.3"), "lookup", name)
    assert (code, err) == (125, f"Error: {name}: invalid format: no 64-byte hexadecimal value\n")


def test_decision17_variant_of_an_oci_image(sample: Sample) -> None:
    """``--variant`` never matches an OCI image in ``seed``; podman 4.3.1 finds it."""
    args = ["lookup", "--arch", "arm64", "--variant", "v8", "armv8"]
    assert cli(*sample.flags(), *args)[0] == 1
    assert cli(*sample.flags(semantics="podman-4.3"), *args) == (0, f"{sample.arm}\n", "")
    assert cli(*sample.flags(), "lookup", "--arch", "arm64", "armv8")[0] == 0


def test_platform_options_reach_the_lookup(sample: Sample) -> None:
    runtime = Runtime.from_options(options_of(sample), semantics=PODMAN_4_3)
    assert runtime.lookup_image("armv8", LookupOptions(architecture="amd64")).image is None


def test_missing_store_exits_125_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    code, out, err = cli("--root", str(root), "--runroot", str(tmp_path / "run"), "exists", "foo")
    assert (code, out) == (125, "")
    assert err.startswith("Error: ")
    assert str(root) in err
    with pytest.raises(LibimageError) as caught:
        Runtime.from_options(StoreOptions(str(root), str(tmp_path), "vfs")).snapshot()
    assert caught.value.kind is ErrorKind.STORE_MISSING


def test_malformed_images_json_exits_125_naming_it(sample: Sample, tmp_path: Path) -> None:
    store = sample.store.copy_to(tmp_path)
    images_json = store.root / "vfs-images" / "images.json"
    images_json.write_text("[{")
    code, _, err = cli(*store.storage_flags(), "lookup", "foo")
    assert code == 125
    assert str(images_json) in err


def test_store_warnings_go_to_stderr(sample: Sample, tmp_path: Path) -> None:
    """Decision 18: an unparseable stored name is reported on stderr, lookups go on."""
    store = sample.store.copy_to(tmp_path)
    images_json = store.root / "vfs-images" / "images.json"
    records = json.loads(images_json.read_text())
    for record in records:
        if record["id"] == sample.foo:
            record["names"].append("localhost/Bad:latest")
    images_json.write_text(json.dumps(records))
    code, out, err = cli(*store.storage_flags(), "lookup", "thing:1")
    assert (code, out) == (0, f"{sample.foo}\n")
    assert "WARNING: " in err
    assert "localhost/Bad:latest" in err


def test_command_import_path_is_lean() -> None:
    """The lookup commands import neither hypothesis nor typeguard nor listing/removal."""
    code = (
        "import sys, libimage.adapters.cmd_lookup\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('hypothesis', 'typeguard')"
        " or m in ('libimage.pure.plan', 'libimage.pure.facts', 'libimage.adapters.cmd_images',"
        " 'libimage.adapters.cmd_rmi', 'libimage.spec.gen_snapshots')]\n"
        "print(','.join(bad))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == ""


@pytest.mark.parametrize("module", ["cmd_images", "cmd_rmi", "cache"])
def test_listing_and_removal_import_paths_are_lean(module: str) -> None:
    """``images``, ``rmi`` and the persistent index import neither hypothesis nor typeguard."""
    code = (
        f"import sys, libimage.adapters.{module}\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('hypothesis', 'typeguard')]\n"
        "print(','.join(bad))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == ""
