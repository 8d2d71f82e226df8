"""``libimage images`` against ``podman images`` on real stores (POD-I-*, POD-F-*, FL-*).

One store per module, built with podman 4.3.1 and buildah (vfs): a base image with
labels and three names; a buildah child of it with its own label; a dangling image;
an image with two names used by a buildah (storage-only) container and one used by
a podman container; an untagged parent of a named child (intermediate); a manifest
list; records one second apart where the time filters need it; and a read-only
additional image store with an image of its own.

* (a) ``libimage images -a --format json`` and ``podman images -a --format json``
  report the same images with the same facts (IDs, names, digests, read-only flags,
  container counts, parents, sizes, labels, dangling flags, history, times); podman's
  per-name repetition of each object (POD-I-4) is folded first. Without ``-a`` too.
* (b) More than sixty ``images`` queries with and without ``--all``, every filter
  key, ``!=``, combined, repeated and invalid filters, run with
  ``--semantics podman-4.3``: the same exit code, the same set of (ID, names), and
  for failures the same ``Error:`` line. The default table is compared row by row
  as a set (ties in podman's unstable sort may order rows differently, POD-I-1).
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.podman import PodmanStore, next_second

from libimage.adapters.cli import run

pytestmark = [
    pytest.mark.differential,
    pytest.mark.skipif(
        shutil.which("podman") is None or shutil.which("buildah") is None,
        reason="podman and buildah are not installed",
    ),
]


@dataclass(frozen=True)
class World:
    """The store as podman sees it, and the IDs and times the queries refer to."""

    store: PodmanStore
    ids: dict[str, str]
    created: dict[str, int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base_dir = tmp_path_factory.mktemp("images-podman")
    read_only = PodmanStore.create(base_dir / "ro")
    ids: dict[str, str] = {}
    ids["ro"] = read_only.import_image("localhost/ro:1", {"ro.txt": b"ro"}, labels={"tier": "ro"})
    store = PodmanStore.create(base_dir / "main")
    ids["base"] = store.import_image(
        "localhost/base:1", {"a.txt": b"a"}, labels={"color": "red", "env": "x"}
    )
    store.tag(ids["base"], "quay.io/org/bb:2", "docker.io/library/cc:latest")
    next_second()
    ids["child"] = store.child_image(
        ids["base"], "localhost/child:1", {"b.txt": b"b"}, labels={"color": "blue"}
    )
    next_second()
    ids["dangling"] = store.import_image(None, {"d.txt": b"d"})
    ids["aa"] = store.import_image("localhost/aa:1", {"aa.txt": b"aa"})
    store.tag(ids["aa"], "localhost/aa:2")
    store.buildah_container("localhost/aa:1")
    next_second()
    ids["used"] = store.import_image("quay.io/x/used:1", {"u.txt": b"u"}, labels={"color": "green"})
    store.podman_container("quay.io/x/used:1")
    ids["mid"] = store.import_image("localhost/mid:1", {"m.txt": b"m"})
    ids["kid"] = store.child_image(ids["mid"], "localhost/kid:1", {"k.txt": b"k"})
    store.untag(ids["mid"], "localhost/mid:1")
    next_second()
    ids["list"] = store.manifest_list("localhost/list:1", ["localhost/aa:1"])
    view = store.with_image_stores(read_only)
    created = {entry["Id"]: int(entry["Created"]) for entry in view.images_json()}
    return World(view, ids, created)


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def error_line(self) -> str:
        lines = self.stderr.splitlines()
        errors = [line for line in lines if line.startswith("Error: ")]
        return errors[0] if errors else ""


def podman(world: World, args: Sequence[str]) -> Result:
    completed = world.store.run("images", *args, check=False)
    return Result(completed.returncode, completed.stdout, completed.stderr)


def libimage(world: World, args: Sequence[str], semantics: str = "podman-4.3") -> Result:
    out, err = io.StringIO(), io.StringIO()
    argv = [*world.store.storage_flags(), "--semantics", semantics, "images", *args]
    code = run(argv, stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


def folded(document: str) -> list[dict[str, Any]]:
    """podman's JSON with each image once (it repeats an image's object per name)."""
    parsed = json.loads(document)
    assert isinstance(parsed, list)
    unique: list[dict[str, Any]] = []
    for entry in parsed:
        if entry not in unique:
            unique.append(entry)
    return unique


def identities(document: str) -> set[tuple[str, tuple[str, ...]]]:
    return {(entry["Id"], tuple(entry.get("Names", ()))) for entry in folded(document)}


# --------------------------------------------------------------------------- (a)


@pytest.mark.parametrize("all_images", [True, False], ids=["-a", "default"])
def test_json_matches_podman(world: World, all_images: bool) -> None:
    """POD-I-4, POD-I-5, POD-I-6, IP-*: every fact of every image, podman's key order."""
    args = ["--format", "json"] + (["-a"] if all_images else [])
    theirs = podman(world, args)
    ours = libimage(world, args)
    assert theirs.code == ours.code == 0, (theirs.stderr, ours.stderr)
    expected = folded(theirs.stdout)
    listed = json.loads(ours.stdout)
    assert [list(entry) for entry in listed] == [list(entry) for entry in expected]
    assert {entry["Id"]: entry for entry in listed} == {entry["Id"]: entry for entry in expected}
    assert len(listed) == len(expected)
    assert ours.stderr == ""


def test_json_sample_facts(world: World) -> None:
    """POD-I-4: the facts the store was built with are the ones both report."""
    listed = {
        entry["Id"]: entry
        for entry in json.loads(libimage(world, ["-a", "--format", "json"]).stdout)
    }
    assert listed[world.ids["ro"]]["ReadOnly"] is True
    assert listed[world.ids["child"]]["ParentId"] == world.ids["base"]
    assert listed[world.ids["kid"]]["ParentId"] == world.ids["mid"]
    assert listed[world.ids["aa"]]["Containers"] == 1
    assert listed[world.ids["used"]]["Containers"] == 1
    assert listed[world.ids["dangling"]]["Dangling"] is True
    assert "Dangling" not in listed[world.ids["mid"]]
    assert listed[world.ids["base"]]["Names"] == [
        "localhost/base:1",
        "quay.io/org/bb:2",
        "docker.io/library/cc:latest",
    ]


@pytest.mark.parametrize("args", [[], ["-a"], ["-a", "--no-trunc"], ["--filter", "readonly=true"]])
def test_table_matches_podman(world: World, args: list[str]) -> None:
    """POD-I-1, POD-I-6: the same header and the same rows (compared as a set: ties)."""
    theirs = podman(world, args).stdout.splitlines()
    ours = libimage(world, args).stdout.splitlines()
    assert ours[0] == theirs[0]
    assert sorted(ours[1:]) == sorted(theirs[1:])


@pytest.mark.parametrize("args", [["-q"], ["-a", "-q"], ["-a", "-q", "--no-trunc"]])
def test_quiet_matches_podman(world: World, args: list[str]) -> None:
    """podman writeID: the same IDs, each once."""
    theirs = podman(world, args).stdout.splitlines()
    ours = libimage(world, args).stdout.splitlines()
    assert sorted(ours) == sorted(theirs)
    assert len(set(ours)) == len(ours)


# --------------------------------------------------------------------------- (b)


def queries(world: World) -> list[list[str]]:
    """The filter lists of (b); each is run with and without -a unless noted."""
    ids, created = world.ids, world.created
    child_second = created[ids["child"]]
    return [
        [],
        ["dangling=true"],
        ["dangling=false"],
        ["dangling=1"],
        ["intermediate=true"],
        ["intermediate=false"],
        [f"id={ids['base']}"],
        [f"id={ids['base'][:12]}"],
        [f"id=sha256:{ids['base']}"],
        ["id="],
        ["label=color"],
        ["label=color=red"],
        ["label=env"],
        ["label=color=purple"],
        ["label=color=red", "label=color=blue"],
        ["label=color="],
        ["label=col*"],
        ["label=*o*=red"],
        ["label=tier=ro"],
        ["reference=aa"],
        ["reference=*bb*"],
        ["reference=quay.io/org/bb:2"],
        ["reference=org/bb"],
        ["reference=bb:2"],
        ["reference=cc"],
        ["reference=library/cc"],
        ["reference=docker.io/library/*"],
        ["reference=*/cc:latest"],
        ["reference=localhost/*"],
        ["reference=aa:*"],
        ["reference=docker.io/cc"],
        ["reference=*"],
        ["reference=[a"],
        ["reference=aa", "reference=cc"],
        ["reference=*", "label=color"],
        ["before=localhost/child:1"],
        ["since=localhost/child:1"],
        ["after=child:1"],
        ["since=child:1", "after=aa:1"],
        ["since=base:1", "before=aa:2"],
        [f"before={ids['used'][:12]}"],
        ["since=nope"],
        [f"since=sha256:{ids['child']}"],
        [f"since=sha256:{ids['child'][:12]}"],
        ["until=1h"],
        ["until=-1h"],
        ["until=2000-01-01"],
        [f"until={child_second}"],
        [f"until={child_second}", "before=aa:1"],
        ["until=0"],
        ["until=notatime"],
        ["until=2000-13-01"],
        ["containers=true"],
        ["containers=false"],
        ["containers=external"],
        ["containers=maybe"],
        ["readonly=true"],
        ["readonly=false"],
        ["manifest=true"],
        ["manifest=false"],
        ["reference!=aa"],
        ["label!=color"],
        ["dangling!=true"],
        ["readonly!=true"],
        [f"id!={ids['base']}"],
        ["dangling=true", "dangling!=true"],
        ["manifest!=false", "reference=localhost/*"],
        ["dangling=true", "dangling=true"],
        ["dangling=true", "dangling=false"],
        ["readonly=1", "readonly=true"],
        ["containers=true", "containers=true"],
        ["reference=localhost/*", "dangling=false", "label=color"],
        ["label=color,reference=localhost/*"],
        ['"label=color=red,x"'],
        ['label=a"b'],
        [""],
        ["foo=bar"],
        ["label"],
        ["dangling=maybe"],
        ["label=a!=b"],
        ["reference!"],
        ["ID=x"],
    ]


@dataclass(frozen=True)
class Comparison:
    args: tuple[str, ...]
    problem: str


KINDS: dict[str, int] = {}
"""How many queries failed, listed nothing, or listed images (so the comparison has teeth)."""


def compare(world: World, args: list[str]) -> Comparison | None:
    theirs = podman(world, [*args, "--format", "json"])
    ours = libimage(world, [*args, "--format", "json"])
    kind = "error" if theirs.code else "images" if folded(theirs.stdout) else "none"
    KINDS[kind] = KINDS.get(kind, 0) + 1
    if theirs.code != ours.code:
        return Comparison(tuple(args), f"exit {ours.code} != podman's {theirs.code}: {ours.stderr}")
    if theirs.code != 0:
        if ours.error_line() != theirs.error_line():
            return Comparison(tuple(args), f"{ours.error_line()!r} != {theirs.error_line()!r}")
        return None
    mine, expected = identities(ours.stdout), identities(theirs.stdout)
    if mine != expected:
        return Comparison(tuple(args), f"ours {sorted(mine)} != podman's {sorted(expected)}")
    return None


def test_at_least_sixty_queries(world: World) -> None:
    """Issue #4: more than sixty distinct queries, with and without --all."""
    assert len(queries(world)) * 2 >= 60


@pytest.mark.parametrize("all_images", [True, False], ids=["-a", "default"])
def test_queries_match_podman(world: World, all_images: bool) -> None:
    """FL-*, POD-F-*, decision 14: exit code, (ID, names) set and error text agree."""
    problems: list[Comparison] = []
    for filters in queries(world):
        args = [arg for value in filters for arg in ("--filter", value)]
        if all_images:
            args.insert(0, "-a")
        problem = compare(world, args)
        if problem is not None:
            problems.append(problem)
    assert not problems, "\n".join(f"{p.args}: {p.problem}" for p in problems)
    assert min(KINDS.get("error", 0), KINDS.get("images", 0), KINDS.get("none", 0)) >= 10, KINDS


# --------------------------------------------------------------------------- read-only copies


def test_tagged_read_only_image(world: World, tmp_path: Path) -> None:
    """SF-N-6, LS-3: after `tag ro:1`, the copy's labels and manifest are the read-only image's."""
    copy = world.store.copy_to(tmp_path / "copy")
    copy.tag("localhost/ro:1", "localhost/rocopy:1")
    view = World(copy, world.ids, world.created)
    for args in (["-a", "--filter", "label=tier=ro"], ["-a", "--filter", "manifest=false"]):
        assert compare(view, args) is None
    assert libimage(view, ["-a", "--format", "json"]).stderr == ""
