"""Reference errors and NormalizeName against podman 4.3.1 (REF-3, REF-4, LN-1, LN-2).

* ``podman image exists NAME`` on an empty store runs LookupImage, whose first step
  is LN-1 (plain ``Parse``): for an invalid name podman prints ``Error: <text>`` and
  exits 125; a valid name is simply not there (exit 1). Our :func:`parse` must
  refuse exactly the names podman refuses, with podman's text.
* ``podman tag IMAGE NAME`` stores ``NormalizeName(NAME)`` (LN-2) as a new name of
  the image, or fails with ``normalizing name "<NAME>": <NormalizeName's error>``.
  Our :func:`normalize_name` with podman 4.3.1's wording must agree on both.

The names avoid transport prefixes (TR-1) and ``sha256:`` (DIV-2), which LookupImage
handles before parsing. Every podman run uses a temporary store and an empty
registries.conf.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from functools import partial

import pytest

from libimage.pure.errors import LibimageError
from libimage.pure.reference import normalize_name, parse
from libimage.pure.semantics import PODMAN_4_3

pytestmark = [
    pytest.mark.differential,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]

HEX = "140f4ef8c5ee4f9a2a94db4d0e3e01cbdc4cd8b0a1f7c0b5d6a1c9d8e7f6a5b4"
DIGEST = f"sha256:{HEX}"

# Names for `podman image exists`: valid ones (exit 1) and invalid ones (exit 125).
EXISTS_NAMES = [
    "busybox",
    "foo/bar",
    "localhost:5000",
    "Foo.com:80/a:V1",
    "ex_ample.com/foo",
    "a__b",
    "a--b",
    "busybox:_a",
    f"fedora:latest@{DIGEST}",
    f"quay.io/a/b:t@{DIGEST}",
    "a" * 255,
    HEX,
    "",
    "Busybox",
    "foo.com/Bar",
    "BUSYBOX:latest",
    "a___b",
    "a.-b",
    "foo//bar",
    "foo/",
    "foo:",
    ":tag",
    "foo:bar:baz",
    f"@{DIGEST}",
    "-foo",
    "busybox:-a",
    "a" * 256,
    "a" * 256 + "@md5:" + "0" * 32,
    "fedora@sha256:" + "a" * 32,
    "fedora@sha256:" + "a" * 31,
    "fedora@md5:" + "a" * 32,
    "fedora@sha256:" + "A" * 64,
    "fedora@sha512:" + "a" * 64,
    "fedora@SHA256:" + "a" * 64,
    "\u0130mage",
]

# Names for `podman tag`: NormalizeName's result or error.
TAG_NAMES = [
    "busybox",
    "ns/busybox:v1",
    "docker.io/busybox",
    "index.docker.io/foo",
    "example.com/x",
    "localhost:5000/x:1",
    "Foo.com:80/a:V1",
    HEX,
    "#",
    "Busybox",
    "BB:1",
    "-foo",
    "a" * 250,
]


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """A podman runner bound to a fresh temporary store and an empty registries.conf."""
    base = tmp_path_factory.mktemp("podman-reference")
    # podman refuses a run root longer than 50 characters: keep it short.
    runroot = tempfile.mkdtemp(prefix="libimage-ref-")
    registries = base / "registries.conf"
    registries.write_text("")
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(registries)}
    prefix = [
        "podman",
        "--root", str(base / "root"),
        "--runroot", runroot,
        "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs",
        "--events-backend", "none",
    ]  # fmt: skip

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, env=env, check=False, timeout=120
        )

    yield run
    shutil.rmtree(runroot, ignore_errors=True)


def error_line(stderr: str) -> str:
    """The text of podman's last ``Error: …`` line."""
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert lines, f"no error line in {stderr!r}"
    return lines[-1].removeprefix("Error: ")


def our_error(call: Callable[[], object]) -> str | None:
    try:
        call()
    except LibimageError as error:
        return error.failure.message
    return None


@pytest.mark.parametrize("name", EXISTS_NAMES, ids=lambda n: repr(n[:40]))
def test_parse_refuses_what_podman_refuses(
    podman: Callable[..., subprocess.CompletedProcess[str]], name: str
) -> None:
    """REF-3, REF-4 (through LN-1): same acceptance, same error text."""
    done = podman("image", "exists", "--", name)
    ours = our_error(partial(parse, name))
    assert done.returncode in {1, 125}, done.stderr
    if done.returncode == 1:
        assert ours is None
    else:
        assert ours == error_line(done.stderr)


def test_the_names_cover_both_outcomes() -> None:
    """The table above is not vacuous: it holds names of both kinds (≥ 20 in all)."""
    refused = [name for name in EXISTS_NAMES if our_error(partial(parse, name)) is not None]
    assert len(EXISTS_NAMES) >= 20
    assert 10 <= len(refused) < len(EXISTS_NAMES)


@pytest.fixture(scope="module")
def tagged(
    podman: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, str], list[str]]:
    """Tag one imported image with every TAG_NAMES entry: errors by name, final names."""
    base = tmp_path_factory.mktemp("podman-tag")
    (base / "f").write_text("hi\n")
    with tarfile.open(base / "t.tar", "w") as archive:
        archive.add(base / "f", arcname="f")
    done = podman("import", "-q", str(base / "t.tar"), "localhost/base:latest")
    assert done.returncode == 0, done.stderr
    errors: dict[str, str] = {}
    for name in TAG_NAMES:
        done = podman("tag", "localhost/base:latest", "--", name)
        if done.returncode != 0:
            errors[name] = error_line(done.stderr)
    inspected = podman("image", "inspect", "--format", "{{json .RepoTags}}", "localhost/base")
    assert inspected.returncode == 0, inspected.stderr
    names: list[str] = json.loads(inspected.stdout)
    return errors, names


def test_normalize_name_matches_podman_tag(tagged: tuple[dict[str, str], Sequence[str]]) -> None:
    """LN-2: the names podman stores, and its errors (wrapped once more by ``Tag``)."""
    errors, names = tagged
    drop = PODMAN_4_3.normalize_name_error_drops_error_prefix
    expected_names = ["localhost/base:latest"]
    for name in TAG_NAMES:
        failure = our_error(partial(normalize_name, name, drop_error_prefix=drop))
        if failure is not None:
            assert errors.get(name) == f'normalizing name "{name}": {failure}'
            continue
        assert name not in errors
        normalized = str(normalize_name(name, drop_error_prefix=drop))
        if normalized not in expected_names:
            expected_names.append(normalized)
    assert names == expected_names
    assert errors  # the table holds names podman refuses
