"""Scenario cases (``spec/cases/*.json``) replayed by podman 4.3.1 (issue #6 item 5).

Each case whose store podman can build (``"podman": true``) is built in a fresh store
with podman and buildah: base images with ``podman import`` (each with content of its
own), children with ``buildah from`` + ``copy`` + ``commit`` (LT-4), names with
``podman tag``, labels, storage containers with ``buildah from``, manifest lists with
``podman manifest create``/``add``. The case's placeholders (``{A.id}``, ``{A.digest}``
…) take podman's values, so expectations that name IDs hold for podman's IDs as well
(``id_prefix`` only shapes IDs in memory). Then every step runs through podman and is
judged against the case's ``podman-4.3`` expectation, in podman's own terms:

* ``lookup``: ``podman image exists`` (0 found, 1 "image not known", 125 any other
  error) and ``podman image inspect --format {{.Id}}`` (the image found);
* ``exists``: ``podman image exists``;
* ``images``: ``podman images -a -q --no-trunc --filter …`` (the set of IDs; 125 for a
  filter error);
* ``rmi``: ``podman rmi [-f]`` (``podman manifest rm`` for ``lookup_manifest``;
  ``podman images -a -q --filter`` then ``rmi`` of those IDs for a removal by
  filter): the ``Untagged:`` and ``Deleted:`` lines the expected reports give
  (POD-R-11 grouping), the exit code the expected errors give (decision 13), and the
  images podman lists afterwards with their names.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from support.podman import PODMAN, PodmanStore, requires_podman

from libimage.adapters.store import read_snapshot
from libimage.pure.semantics import PODMAN_4_3
from libimage.pure.snapshot import image_digest
from libimage.spec.cases import Case, Values, load_all

pytestmark = [pytest.mark.differential, requires_podman]

CASES = [case for case in load_all() if case.podman and "podman-4.3" in case.profiles]


def exit_code(errors: Sequence[str]) -> int:
    """podman's exit code for a removal's errors (decision 13)."""
    if not errors:
        return 0
    if "IMAGE_IN_USE" in errors:
        return 2
    if all(kind == "IMAGE_UNKNOWN" for kind in errors):
        return 1
    return 125


class Podman:
    """A case's store built with podman, and podman run on it."""

    def __init__(self, case: Case, directory: Path) -> None:
        self.store = PodmanStore.create(directory).init()
        self.registries = directory / "registries.conf"
        lines = [f"unqualified-search-registries = {json.dumps(list(case.search_registries))}"]
        if case.aliases:
            lines.append("[aliases]")
            lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in case.aliases.items()]
        self.registries.write_text("\n".join(lines) + "\n")
        ids: dict[str, str] = {}
        for spec in case.images:
            names = [Values(ids, {}).fill(name) for name in spec.names]
            first = names[0] if names else None
            if spec.entries is not None:
                assert first is not None, "a manifest list needs a name to be created"
                image_id = self.store.manifest_list(first, [ids[key] for key, _ in spec.entries])
            elif spec.parent:
                files = {f"{spec.key}.txt": spec.key.encode()}
                image_id = self.store.child_image(ids[spec.parent], first, files, spec.labels)
            else:
                files = {f"{spec.key}.txt": f"{case.id} {spec.key}".encode()}
                image_id = self.store.import_image(first, files, spec.labels)
            if len(names) > 1:
                self.store.tag(image_id, *names[1:])
            ids[spec.key] = image_id
        for key in case.containers:
            self.store.buildah_container(ids[key])
        snapshot = read_snapshot(self.store.options()).snapshot
        digests = {key: image_digest(i) for i in snapshot.images for key in ids if ids[key] == i.id}
        self.values = Values(ids, digests)

    def run(self, *args: str) -> tuple[int, str, str]:
        assert PODMAN is not None
        argv = [PODMAN, *self.store.storage_flags(), "--cgroup-manager", "cgroupfs"]
        argv += ["--events-backend", "none", *args]
        environ = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(self.registries)}
        done = subprocess.run(
            argv, capture_output=True, text=True, env=environ, check=False, timeout=300
        )
        return done.returncode, done.stdout.strip(), done.stderr.strip()

    def listed(self) -> dict[str, list[str]]:
        """Every image podman lists, as the case's keys with their names."""
        code, output, error = self.run("images", "-a", "--no-trunc", "--format", "json")
        assert code == 0, error
        found: dict[str, list[str]] = {}
        for entry in json.loads(output or "[]"):
            image_id = entry["Id"].removeprefix("sha256:")
            found[self.values.key_of(image_id)] = list(entry.get("Names") or [])
        return found

    # -- the steps, in podman's terms

    def lookup(self, name: str, expected: Mapping[str, Any]) -> list[str]:
        code, _, error = self.run("image", "exists", name)
        if "error" in expected:
            wanted = 1 if expected["error"] == "IMAGE_UNKNOWN" else 125
            return [] if code == wanted else [f"exists exited {code}, not {wanted}: {error}"]
        if code != 0:
            return [f"exists exited {code}, not 0: {error}"]
        code, found, error = self.run("image", "inspect", "--format", "{{.Id}}", name)
        key = self.values.key_of(found) if code == 0 else f"<exit {code}: {error}>"
        return [] if key == expected["image"] else [f"inspect found {key}, not {expected['image']}"]

    def exists(self, name: str, expected: Mapping[str, Any]) -> list[str]:
        code, _, error = self.run("image", "exists", name)
        if "error" in expected:
            wanted = 1 if expected["error"] == "IMAGE_UNKNOWN" else 125
        else:
            wanted = 0 if expected["exists"] else 1
        return [] if code == wanted else [f"exists exited {code}, not {wanted}: {error}"]

    def images(self, filters: Sequence[str], expected: Mapping[str, Any]) -> list[str]:
        args = ["images", "-a", "-q", "--no-trunc"]
        for item in filters:
            args += ["--filter", item]
        code, output, error = self.run(*args)
        if "error" in expected:
            return [] if code == 125 else [f"images exited {code}, not 125: {output}"]
        if code != 0:
            return [f"images exited {code}: {error}"]
        found = {self.values.key_of(line.removeprefix("sha256:")) for line in output.split()}
        wanted = set(expected["images"])
        return [] if found == wanted else [f"images listed {sorted(found)}, not {sorted(wanted)}"]

    def rmi(self, request: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
        force = ["-f"] if request.get("force") else []
        names = list(request.get("names", []))
        if request.get("lookup_manifest"):
            code, output, error = self.run("manifest", "rm", *names)
        elif not names:  # removal by filter: podman's rmi has no --filter
            args = ["images", "-a", "-q", "--no-trunc"]
            for item in request.get("filters", []):
                args += ["--filter", item]
            _, listed, _ = self.run(*args)
            ids = [line.removeprefix("sha256:") for line in listed.split()]
            code, output, error = self.run("rmi", *force, *ids) if ids else (0, "", "")
        else:
            code, output, error = self.run("rmi", *force, *names)
        problems = []
        if "errors" in expected and code != exit_code(expected["errors"]):
            problems.append(f"rmi exited {code}, not {exit_code(expected['errors'])}: {error}")
        if "reports" in expected:
            untagged = [f"Untagged: {n}" for r in expected["reports"] for n in r["untagged"]]
            deleted = [
                f"Deleted: {self.values.ids[r['image']]}"
                for r in expected["reports"]
                if r["removed"]
            ]
            lines = output.splitlines()
            if sorted(lines) != sorted(untagged + deleted):
                problems.append(f"rmi printed {lines}, not {untagged + deleted}")
        if "store" in expected and self.listed() != expected["store"]:
            problems.append(f"podman lists {self.listed()}, not {expected['store']}")
        return problems


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case_on_podman(case: Case, tmp_path: Path) -> None:
    """podman 4.3.1 does what the case's reference says (its podman-4.3 expectations)."""
    podman = Podman(case, tmp_path)
    values = podman.values
    problems: list[str] = []
    for number, step in enumerate(case.steps):
        request = values.fill_all(dict(step.request))
        expected = values.fill_all(dict(step.expected(PODMAN_4_3)))
        op = request["op"]
        if op == "lookup":
            found = podman.lookup(request["name"], expected)
        elif op == "exists":
            found = podman.exists(request["name"], expected)
        elif op == "images":
            found = podman.images(request.get("filters", []), expected)
        else:
            found = podman.rmi(request, expected)
        problems += [f"step {number} {request}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)


def test_every_case_podman_cannot_replay_says_why() -> None:
    """A case left out here is marked in its file, with the reason (no silent skip)."""
    left_out = [case for case in load_all() if not case.podman]
    assert all(case.podman_reason for case in left_out)
    assert len(left_out) <= 3
