"""Exists and LookupImage against podman 4.3.1 and buildah 1.28.2 on real stores.

One store is built per module with podman and buildah (``tests/support/podman.py``):
about sixty images, so that one- and two-character ID prefixes collide; names on
``localhost``, ``quay.io`` and ``docker.io/library``; images of foreign platforms
(``podman import --arch/--os/--variant``); manifest lists with instances for
several platforms, one without an instance for the host and an empty one; a short
name that is also another image's ID prefix (DIV-1). A registries.conf with search
registries and an alias is given to podman (``CONTAINERS_REGISTRIES_CONF``) and to
us (``--registries-conf``).

For every query (the ``QUERIES`` templates, filled in with the store's IDs and
digests) ``libimage --semantics podman-4.3`` must agree with

* ``podman image exists NAME`` on the exit code (0, 1 or 125), and
* ``podman image inspect --format '{{.Id}}' NAME`` on whether an image is found and
  which (our ``libimage lookup NAME``).

``--arch/--os/--variant`` have no podman lookup command: ``buildah from
--pull=never --arch … NAME`` performs the lookup, ``buildah inspect --format
'{{.FromImageID}}'`` tells which image it used. buildah drops an ``--arch`` equal to
the host's, so only foreign platforms are asked for.

Left out, as documented divergences tested in unit tests: names whose upstream
handling depends on the file system, and ``containers-storage:[spec]`` names whose
spec is not exactly this store (podman would open, or create, another store:
decision 8). Also left out: ``buildah from`` with a manifest list found through its
digest (DIV-3): the lookup finds the list itself, and buildah then fails to read
the platform of a list, which is no lookup question.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.podman import BUILDAH, PODMAN, PodmanStore, make_tar, requires_podman

from libimage.adapters.cli import run
from libimage.adapters.cmd_lookup import exists_exit_code, lookup_exit_code
from libimage.adapters.runtime import Runtime
from libimage.pure.lookup import LookupOptions
from libimage.pure.semantics import PODMAN_4_3

pytestmark = [pytest.mark.differential, requires_podman]

HOST_ARCH = "amd64"  # the platforms below are foreign to this host
ABSENT_HEX = "f" * 63 + "0"

REGISTRIES_CONF = """\
unqualified-search-registries = ["quay.io", "docker.io"]

[aliases]
"myalias" = "quay.io/someone/thing"
"""


@dataclass
class World:
    """The store, the environment for podman, and the values the queries refer to."""

    store: PodmanStore
    registries: Path
    values: dict[str, str] = field(default_factory=dict)
    runtime: Runtime | None = None
    answers: dict[tuple[str, str, str, str], tuple[int, int, str]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(self.registries)}

    def fill(self, template: str) -> str:
        return template.format(**self.values)

    def command(self, program: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        """podman or buildah on this store, with this world's registries.conf."""
        assert program is not None
        argv = [program, *self.store.storage_flags()]
        if program == PODMAN:
            argv += ["--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, env=self.env, check=False, timeout=300
        )

    def podman(self, *args: str) -> tuple[int, str, str]:
        completed = self.command(PODMAN, *args)
        return completed.returncode, completed.stdout.strip(), completed.stderr.strip()

    def checked(self, program: str | None, *args: str) -> str:
        completed = self.command(program, *args)
        assert completed.returncode == 0, f"{args}: {completed.stderr}"
        return completed.stdout.strip()

    def import_image(self, name: str | None, label: str, *platform: str) -> str:
        """``podman import [--arch/--os/--variant …]`` of a one-file tarball; the new ID."""
        with tempfile.TemporaryDirectory(prefix="libimage-lookup-") as scratch:
            tarball = Path(scratch) / "layer.tar"
            tarball.write_bytes(make_tar({f"{label}.txt": label.encode()}))
            args = ["import", "--quiet", *platform, str(tarball)]
            output = self.checked(PODMAN, *args, *([name] if name else []))
        return output.splitlines()[-1].removeprefix("sha256:")

    def manifest_list(self, name: str, instances: list[str]) -> str:
        list_id = self.checked(PODMAN, "manifest", "create", name).splitlines()[-1]
        for instance in instances:
            self.checked(PODMAN, "manifest", "add", name, f"containers-storage:{instance}")
        return list_id

    def library(self) -> Runtime:
        """One runtime for the whole module: the store is read once (its tokens hold)."""
        if self.runtime is None:
            self.runtime = Runtime.from_options(
                self.store.options(), registries_conf=str(self.registries), semantics=PODMAN_4_3
            )
        return self.runtime

    def answer(self, name: str, options: LookupOptions) -> tuple[int, int, str]:
        """Our ``exists`` exit code, ``lookup`` exit code and ID for one query.

        podman rewrites the layers lock's last-writer token on every run, so a
        long-lived runtime re-reads the store after each podman command (SF-K-5). All
        queries are therefore answered at once, from one read, before podman runs.
        """
        if not self.answers:
            runtime = self.library()
            queries = [(self.fill(t), LookupOptions()) for t in QUERIES + CLI_QUERIES]
            for flags, template in PLATFORM_QUERIES:
                args = flags.split()
                platform = LookupOptions(
                    architecture=_flag(args, "--arch"),
                    os=_flag(args, "--os"),
                    variant=_flag(args, "--variant"),
                )
                queries.append((self.fill(template), platform))
            for query, platform in queries:
                result = runtime.lookup_image(query, platform)
                found = result.image.id if result.image is not None else ""
                exists_code = exists_exit_code(runtime.check_exists(query))
                key = (query, platform.architecture, platform.os, platform.variant)
                self.answers[key] = (exists_code, lookup_exit_code(result), found)
            assert runtime.reads == 1
        return self.answers[(name, options.architecture, options.os, options.variant)]

    def ours_exists(self, name: str) -> int:
        return self.answer(name, LookupOptions())[0]

    def ours_lookup(self, name: str, options: LookupOptions | None = None) -> tuple[int, str]:
        _, code, found = self.answer(name, options or LookupOptions())
        return code, found

    def ours(self, *args: str) -> tuple[int, str, str]:
        """The command line, in this process."""
        out, err = io.StringIO(), io.StringIO()
        argv = [*self.store.storage_flags(), "--semantics", "podman-4.3"]
        argv += ["--registries-conf", str(self.registries), *args]
        code = run(argv, out, err)
        return code, out.getvalue().strip(), err.getvalue().strip()


def _ids(store: PodmanStore) -> list[str]:
    return [record["id"] for record in store.metadata("images")]


def _prefix_counts(ids: list[str], length: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for image_id in ids:
        counts[image_id[:length]] = counts.get(image_id[:length], 0) + 1
    return counts


def _shortest_unique_prefix(ids: list[str], image_id: str) -> str:
    for length in range(1, 65):
        prefix = image_id[:length]
        if sum(1 for other in ids if other.startswith(prefix)) == 1:
            return prefix
    raise AssertionError(f"{image_id} has no unique prefix")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("lookup-podman")
    registries = base / "registries.conf"
    registries.write_text(REGISTRIES_CONF)
    store = PodmanStore.create(base)
    made = World(store, registries)
    values = made.values

    def imported(label: str, name: str | None, *platform: str) -> str:
        image_id = made.import_image(name, label, *platform)
        values[label] = image_id
        return image_id

    store.init()
    imported("A", "localhost/foo:latest")
    store.tag(values["A"], "docker.io/library/busybox:latest")
    imported("B", "quay.io/other/img:v1")
    imported("C", "docker.io/library/alpine:3.18")
    store.tag(values["C"], "docker.io/myorg/tool:2")
    imported("D", "quay.io/someone/thing:latest")
    imported("E", "localhost/ns/deep:1")
    imported("DANGLING", None)
    imported("ARM64", "localhost/arm64img:latest", "--arch", "arm64", "--variant", "v8")
    imported("ARMV7", "localhost/armv7img:latest", "--arch", "arm", "--variant", "v7")
    imported("ARMV6", "localhost/armv6img:latest", "--arch", "arm", "--variant", "v6")
    imported("AMD", "localhost/amdimg:latest")
    imported("WIN", "localhost/winimg:latest", "--os", "windows")
    values["LIST"] = made.manifest_list(
        "localhost/list:latest",
        ["localhost/arm64img:latest", "localhost/armv7img:latest", "localhost/amdimg:latest"],
    )
    values["ARMLIST"] = made.manifest_list(
        "localhost/armlist:latest", ["localhost/arm64img:latest", "localhost/armv6img:latest"]
    )
    values["EMPTYLIST"] = made.manifest_list("localhost/emptylist:latest", [])

    # Enough images that one- and two-character ID prefixes collide.
    number = 0
    while number < 40 or not any(count > 1 for count in _prefix_counts(_ids(store), 2).values()):
        imported(f"FILL{number}", f"localhost/fill{number}:latest")
        number += 1
        assert number < 200, "no two-character ID prefix collision"

    ids = _ids(store)
    one = sorted(p for p, count in _prefix_counts(ids, 1).items() if count > 1)
    two = sorted(p for p, count in _prefix_counts(ids, 2).items() if count > 1)
    values["AMBIGUOUS1"], values["AMBIGUOUS1B"] = one[0], one[-1]
    values["AMBIGUOUS2"] = two[0]
    for label in ("A", "B", "DANGLING", "ARM64", "LIST"):
        values[f"{label}_UNIQUE"] = _shortest_unique_prefix(ids, values[label])
    # DIV-1: a short name that is also a unique prefix of another image's ID.
    victim = values["FILL1"]
    values["SHADOW"] = next(
        victim[:length]
        for length in range(4, 65)
        if sum(1 for other in ids if other.startswith(victim[:length])) == 1
    )
    store.tag(values["FILL2"], f"localhost/{values['SHADOW']}:latest")

    # A container made and removed writes a last-writer token into containers.lock; with
    # every token written, the module's runtime keeps its snapshot between queries.
    container = made.checked(BUILDAH, "from", "--pull=never", "--quiet", "localhost/foo:latest")
    made.checked(BUILDAH, "rm", container.splitlines()[-1])

    records = {record["id"]: record for record in store.metadata("images")}
    values["A_DIGEST"] = records[values["A"]]["digest"]
    values["LIST_DIGEST"] = records[values["LIST"]]["digest"]
    values["ARM64_DIGEST"] = records[values["ARM64"]]["digest"]
    values["ROOT"] = str(store.root)
    values["RUNROOT"] = str(store.runroot)
    values["ABSENT"] = ABSENT_HEX
    return made


QUERIES = [
    # IDs and sha256: (DIV-1, DIV-2)
    "{A}",
    "{B}",
    "{DANGLING}",
    "{ARM64}",
    "{LIST}",
    "{EMPTYLIST}",
    "{ARMLIST}",
    "sha256:{A}",
    "sha256:{LIST}",
    "sha256:{ABSENT}",
    "sha256:{A_UNIQUE}",
    "{ABSENT}",
    # ID prefixes, unique and ambiguous (ST-2)
    "{A_UNIQUE}",
    "{B_UNIQUE}",
    "{DANGLING_UNIQUE}",
    "{ARM64_UNIQUE}",
    "{LIST_UNIQUE}",
    "{A:.12}",
    "{DANGLING:.12}",
    "{AMBIGUOUS1}",
    "{AMBIGUOUS1B}",
    "{AMBIGUOUS2}",
    "{SHADOW}",
    # full names
    "localhost/foo:latest",
    "localhost/foo",
    "docker.io/library/busybox:latest",
    "quay.io/other/img:v1",
    "quay.io/other/img",
    "docker.io/library/alpine:3.18",
    "docker.io/myorg/tool:2",
    "quay.io/someone/thing:latest",
    "localhost/ns/deep:1",
    "localhost/fill3:latest",
    "localhost/nothere:latest",
    "quay.io/nothere",
    "localhost:5000/foo",
    # short names, search registries and aliases (SN-2, LK-7)
    "foo",
    "foo:latest",
    "busybox",
    "busybox:latest",
    "img:v1",
    "img",
    "other/img:v1",
    "other/img",
    "alpine:3.18",
    "alpine",
    "myorg/tool:2",
    "tool:2",
    "thing",
    "myalias",
    "myalias:latest",
    "someone/thing",
    "ns/deep:1",
    "deep:1",
    "fill3",
    "nothere",
    "localhost:5000",
    # docker.io/library names (NORM-1, LK-7)
    "library/busybox",
    "library/alpine:3.18",
    "docker.io/busybox",
    "docker.io/busybox:latest",
    "index.docker.io/library/busybox",
    "docker.io/library/busybox",
    "docker.io/tool:2",
    # digests (LK-8, DIV-3)
    "whatever@{A_DIGEST}",
    "localhost/foo@{A_DIGEST}",
    "foo:latest@{A_DIGEST}",
    "busybox@{A_DIGEST}",
    "quay.io/x/y:1@{A_DIGEST}",
    "whatever@{LIST_DIGEST}",
    "whatever@{ARM64_DIGEST}",
    "whatever@sha256:{ABSENT}",
    "foo@sha256:{ABSENT}",
    # containers-storage: names (TR-3, TR-4)
    "containers-storage:busybox",
    "containers-storage:foo",
    "containers-storage:localhost/foo",
    "containers-storage:localhost/foo:latest",
    "containers-storage:quay.io/other/img:v1",
    "containers-storage:{A}",
    "containers-storage:@{A}",
    "containers-storage:@{A:.12}",
    "containers-storage:{A:.12}",
    "containers-storage:localhost/foo@{A}",
    "containers-storage:quay.io/other/img:v1@{A}",
    "containers-storage:localhost/foo@{A_DIGEST}",
    "containers-storage:docker.io/library/busybox@{A_DIGEST}",
    "containers-storage:quay.io/x@{A_DIGEST}",
    "containers-storage:[vfs@{ROOT}+{RUNROOT}]localhost/foo",
    "containers-storage:[{ROOT}+{RUNROOT}]busybox",
    "containers-storage:[vfs@{ROOT}+{RUNROOT}]{A:.12}",
    "containers-storage:[vfs@{ROOT}+{RUNROOT}:vfs.ignore_chown_errors=true]localhost/foo",
    "containers-storage:localhost/list",
    "containers-storage:{ABSENT}",
    "containers-storage:Foo",
    "containers-storage:",
    "containers-storage:@",
    "containers-storage:@xyz",
    # manifest lists (ML-*) and foreign platforms
    "localhost/list",
    "list",
    "list:latest",
    "armlist",
    "emptylist",
    "localhost/emptylist:latest",
    "arm64img",
    "armv7img",
    "armv6img",
    "winimg",
    "amdimg",
    # invalid names and transports (LK-3, TR-2)
    "",
    "BusyBox",
    "foo/Bar",
    "a___b",
    "foo:",
    ":tag",
    "$$garbage",
    "docker://busybox",
    "docker:busybox",
    "docker-daemon:busybox:latest",
    "docker-daemon:busybox",
    "docker-archive:/x.tar",
    "docker-archive:/x.tar:@1",
    "sif:/x.sif",
    "atomic:a/b:1",
    "ostree:/repo",
    "dir:/",
    "oci:/",
    "oci-archive:/",
    "foo:latest@sha256:abc",
]


def _found(code: int, output: str) -> str:
    """The image ID a command printed when it succeeded, else ""."""
    return output.splitlines()[-1] if code == 0 and output else ""


# podman inspects what LookupImage found; a manifest list found as such (through its
# digest, DIV-3) is found, but inspecting it fails, naming the list's ID.
_LIST_NOT_INSPECTABLE = re.compile(
    r"fetching target platform image selected from image index: "
    r'.* for image with ID "([0-9a-f]{64})"'
)


def _inspected(code: int, output: str, error: str) -> str:
    """The ID podman's ``image inspect`` found, also when inspecting it failed."""
    if code == 0:
        return _found(code, output)
    match = _LIST_NOT_INSPECTABLE.search(error)
    return match.group(1) if match else ""


@pytest.mark.parametrize("template", QUERIES, ids=lambda template: template or "empty")
def test_exists_and_lookup_agree_with_podman(world: World, template: str) -> None:
    """``image exists`` exit codes and ``image inspect`` IDs (EX-1, LK-*, TR-*, ML-*)."""
    name = world.fill(template)
    podman_exists, _, podman_err = world.podman("image", "exists", name)
    ours_exists = world.ours_exists(name)
    assert ours_exists == podman_exists, f"exists {name!r}: podman {podman_err!r}"

    inspected = world.podman("image", "inspect", "--format", "{{.Id}}", name)
    _, found = world.ours_lookup(name)
    explained = f"lookup {name!r}: podman {inspected[2]!r}"
    if found and ours_exists != 0:
        # Found, but it does not open (EX-1): inspecting opens it, and fails as well.
        assert inspected[0] != 0, explained
    else:
        assert found == _inspected(*inspected), explained


CLI_QUERIES = [
    "foo",
    "nothere",
    "BusyBox",
    "docker://busybox",
    "sha256:{A_UNIQUE}",
    "{AMBIGUOUS1}",
    "{SHADOW}",
    "localhost/list",
    "emptylist",
    "whatever@{LIST_DIGEST}",
    "containers-storage:quay.io/other/img:v1@{A}",
]


@pytest.mark.parametrize("template", CLI_QUERIES)
def test_commands_agree_with_podman(world: World, template: str) -> None:
    """The same through the command line: exit codes of ``exists``, the ID of ``lookup``."""
    name = world.fill(template)
    podman_exists, _, podman_err = world.podman("image", "exists", name)
    ours_exists, _, ours_err = world.ours("exists", name)
    assert ours_exists == podman_exists, f"exists {name!r}: {ours_err!r} / {podman_err!r}"
    code, out, _ = world.ours("lookup", name)
    assert (code, _found(code, out)) == world.ours_lookup(name)


def test_enough_lookups() -> None:
    assert len(QUERIES) >= 100


PLATFORM_QUERIES = [
    ("--arch arm64", "localhost/list"),
    ("--arch arm64", "list"),
    ("--arch arm64 --variant v8", "localhost/list"),
    ("--arch arm --variant v7", "localhost/list"),
    ("--arch arm", "localhost/list"),  # DIV-5: arm means arm/v7
    ("--arch arm --variant v6", "localhost/list"),
    ("--arch arm --variant v5", "localhost/list"),
    ("--arch arm64", "localhost/armlist"),
    ("--arch arm --variant v6", "localhost/armlist"),
    ("--arch arm --variant v7", "localhost/armlist"),
    ("--arch arm64", "arm64img"),
    ("--arch arm64 --variant v8", "arm64img"),  # decision 17: found in podman 4.3.1
    ("--arch arm64", "amdimg"),
    ("--arch arm --variant v7", "armv7img"),
    ("--arch arm --variant v6", "armv7img"),
    ("--arch arm", "armv7img"),
    ("--arch arm", "armv6img"),
    ("--arch arm --variant v6", "armv6img"),
    ("--arch arm64", "{ARM64}"),
    ("--arch arm64", "{AMD}"),  # a full ID is not checked (DIV-1, DIV-4)
    ("--arch arm64", "{AMD:.12}"),  # nor an ID prefix (DIV-4)
    ("--arch arm64", "{LIST}"),
    ("--arch arm64", "foo"),
    ("--arch aarch64", "localhost/list"),
    ("--os windows", "winimg"),
    ("--os windows", "localhost/list"),
    ("--os windows", "amdimg"),
]


@pytest.mark.parametrize(
    ("flags", "template"), PLATFORM_QUERIES, ids=[f"{f} {t}" for f, t in PLATFORM_QUERIES]
)
def test_platform_lookup_agrees_with_buildah(world: World, flags: str, template: str) -> None:
    """``--arch/--os/--variant`` (LK-5, LK-9, ML-3, DIV-4, DIV-5) against ``buildah from``."""
    name = world.fill(template)
    args = flags.split()
    assert HOST_ARCH not in args
    completed = world.command(BUILDAH, "from", "--pull=never", "--quiet", *args, name)
    buildah_id = ""
    if completed.returncode == 0:
        container = completed.stdout.strip().splitlines()[-1]
        buildah_id = world.checked(BUILDAH, "inspect", "--format", "{{.FromImageID}}", container)
        world.checked(BUILDAH, "rm", container)
    options = LookupOptions(
        architecture=_flag(args, "--arch"), os=_flag(args, "--os"), variant=_flag(args, "--variant")
    )
    code, found = world.ours_lookup(name, options)
    assert re.fullmatch(r"[0-9a-f]{64}|", buildah_id)
    assert (code == 0) == (completed.returncode == 0), f"{flags} {name}: {completed.stderr}"
    assert found == buildah_id


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1] if flag in args else ""


def test_platform_flags_of_the_command(world: World) -> None:
    """``libimage lookup --arch/--os/--variant`` passes its flags to the lookup."""
    code, out, _ = world.ours("lookup", "--arch", "arm", "--variant", "v7", "localhost/list")
    assert (code, out) == (0, world.values["ARMV7"])
    code, _, err = world.ours("lookup", "--arch", "arm64", "amdimg")
    assert (code, err) == (1, "Error: amdimg: image not known")
