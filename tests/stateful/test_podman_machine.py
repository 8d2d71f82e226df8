"""podman 4.3.1 and libimage side by side on random sequences of operations (issue #6 item 2c).

One real store is built once per module with podman and buildah: an image with
three names, single-name images, a named parent with a child, an intermediate
(untagged) parent with a named child, a dangling image, a storage (buildah)
container, and a manifest list with a local instance. Each example copies it twice
(without podman's database, so every container is storage-only, decision 19) and
runs the same random operations on both copies: ``libimage --semantics podman-4.3``
(in this process) on one, ``podman`` on the other. The operations:

* ``rmi [-f] NAME...`` by stored name, short name, ID, ID prefix (unique or not),
  ``sha256:`` ID, repository digest, ``containers-storage:`` name or unknown name,
  and ``rmi -a [-f]``: exit code, ``Untagged:``/``Deleted:`` lines and the ``Error:``
  text must be equal (decision 13, POD-R-*);
* ``image exists NAME`` and ``image inspect --format {{.Id}} NAME`` against our
  ``exists`` and ``lookup`` (EX-1, LK-*);
* ``images -a -q --no-trunc --filter F`` against ours (the same set of IDs, FL-*);
* test-only changes made with podman and buildah on both copies: ``tag``, ``buildah
  from`` (a new storage container) and ``buildah rm``.

After every step both stores hold the same images (IDs, names, names history), the
same layers, and containers on the same images (container IDs differ between the
copies: each new one is mapped to its twin). When an example ends, podman lists our
copy exactly as it lists its own, so podman reads every store we modified.
Budget: a fifth of the active profile's examples (at least 3), up to 10 steps each.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support.podman import BUILDAH, PODMAN, PodmanStore, requires_podman

from libimage.adapters import cli
from libimage.adapters.store import read_snapshot
from libimage.pure.snapshot import Snapshot, image_digest

pytestmark = [pytest.mark.stateful, pytest.mark.differential, requires_podman]

ACTIVE = settings()
REGISTRIES_CONF = 'unqualified-search-registries = ["quay.io", "docker.io"]\n'
TAGS = ("localhost/foo:v3", "localhost/aa:2", "quay.io/x/aa:1", "localhost/new:1")
FILTERS = (
    "dangling=true",
    "dangling=false",
    "intermediate=true",
    "containers=true",
    "containers=false",
    "reference=foo",
    "reference=localhost/*",
    "manifest=true",
    "label=color",
    "label=color=red",
    "id=nothing",
    "nosuchfilter=1",
)
_SCRATCH: list[str] = []


@cache
def base_store() -> tuple[PodmanStore, Path]:
    """The module's store (built once) and its registries.conf."""
    directory = Path(tempfile.mkdtemp(prefix="libimage-podman-machine-"))
    if not _SCRATCH:
        atexit.register(_remove_scratch)
    _SCRATCH.append(str(directory))
    store = PodmanStore.create(directory / "base")
    foo = store.import_image("localhost/foo:latest", {"foo.txt": b"foo"})
    store.tag(foo, "localhost/foo:v2", "quay.io/x/foo:1")
    store.import_image("localhost/aa:1", {"aa.txt": b"aa"}, {"color": "red"})
    bb = store.import_image("localhost/bb:1", {"bb.txt": b"bb"}, {"color": "blue"})
    store.buildah_container(bb)
    base = store.import_image("localhost/base:latest", {"base.txt": b"base"})
    store.child_image(base, "localhost/child:latest", {"child.txt": b"child"})
    parent = store.import_image("localhost/p:1", {"p.txt": b"p"})
    store.child_image(parent, "localhost/c:1", {"c.txt": b"c"})
    store.untag(parent, "localhost/p:1")
    store.import_image(None, {"dangling.txt": b"dangling"})
    solo = store.import_image("localhost/solo:1", {"solo.txt": b"solo"})
    store.manifest_list("localhost/list:1", [solo])
    registries = directory / "registries.conf"
    registries.write_text(REGISTRIES_CONF)
    return store, registries


def _remove_scratch() -> None:
    for directory in _SCRATCH:
        shutil.rmtree(directory, ignore_errors=True)


def _without_warnings(stderr: str, *, ours: bool) -> str:
    kept = [
        line
        for line in stderr.splitlines()
        if not (line.startswith("WARNING: ") if ours else "level=warning" in line)
    ]
    return "\n".join(kept).strip()


def view(snapshot: Snapshot) -> tuple[object, ...]:
    """What both copies must agree on (container IDs differ; their images do not)."""
    return (
        [(i.id, list(i.names), list(i.names_history)) for i in snapshot.images],
        sorted(
            layer.id for layer in snapshot.layers if not _is_container_layer(snapshot, layer.id)
        ),
        sorted(c.image_id for c in snapshot.containers),
    )


def _is_container_layer(snapshot: Snapshot, layer_id: str) -> bool:
    return any(c.layer == layer_id for c in snapshot.containers)


class PodmanAgainstLibimage(RuleBasedStateMachine):
    """Two copies of one real store: podman acts on one, libimage on the other."""

    def __init__(self) -> None:
        super().__init__()
        base, self.registries = base_store()
        self.directory = Path(tempfile.mkdtemp(prefix="libimage-podman-example-"))
        self.ours = base.copy_to(self.directory / "ours")
        self.theirs = base.copy_to(self.directory / "theirs")
        self.containers: dict[str, str] = {}  # podman's container ID -> ours

    def teardown(self) -> None:
        try:
            ours = self.podman(self.ours, "images", "-a", "--format", "{{.ID}} {{.Names}}")
            theirs = self.podman(self.theirs, "images", "-a", "--format", "{{.ID}} {{.Names}}")
            assert ours[0] == 0, f"podman cannot list our store: {ours[2]}"
            assert sorted(ours[1].splitlines()) == sorted(theirs[1].splitlines())
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- running both sides

    def podman(self, store: PodmanStore, *args: str) -> tuple[int, str, str]:
        assert PODMAN is not None
        argv = [PODMAN, *store.storage_flags(), "--cgroup-manager", "cgroupfs"]
        argv += ["--events-backend", "none", *args]
        environ = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(self.registries)}
        done = subprocess.run(
            argv, capture_output=True, text=True, env=environ, check=False, timeout=300
        )
        return done.returncode, done.stdout.strip(), done.stderr.strip()

    def buildah(self, store: PodmanStore, *args: str) -> str:
        assert BUILDAH is not None
        done = subprocess.run(
            [BUILDAH, *store.storage_flags(), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, f"buildah {args}: {done.stderr}"
        return done.stdout.strip()

    def libimage(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        argv = [*self.ours.storage_flags(), "--semantics", "podman-4.3"]
        argv += ["--registries-conf", str(self.registries), *args]
        code = cli.run(argv, out, err)
        return code, out.getvalue().strip(), err.getvalue().strip()

    def both(self, *args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        """The same command on both copies; podman's container IDs mapped to ours."""
        ours = self.libimage(*args)
        code, stdout, stderr = self.podman(self.theirs, *args)
        for theirs_id, ours_id in self.containers.items():
            stdout, stderr = stdout.replace(theirs_id, ours_id), stderr.replace(theirs_id, ours_id)
        return ours, (code, stdout, stderr)

    def snapshot(self) -> Snapshot:
        return read_snapshot(self.ours.options()).snapshot

    def names_pool(self) -> list[str]:
        """Names worth asking for: stored, short, IDs, prefixes, digests, unknown names."""
        snapshot = self.snapshot()
        pool: dict[str, None] = dict.fromkeys(["nothere", "localhost/nothere:1", "a", "0"])
        for image in snapshot.images:
            for name in image.names:
                pool.setdefault(name)
                short = name.removeprefix("localhost/")
                pool.setdefault(short.removesuffix(":latest"))
                pool.setdefault(f"containers-storage:{name}")
            pool.setdefault(image.id[:12])
            pool.setdefault(image.id[:1])
            pool.setdefault(f"sha256:{image.id}")
            digest = image_digest(image)
            if digest and image.names:
                pool.setdefault(f"{image.names[0].rsplit(':', 1)[0]}@{digest}")
        return list(pool)

    # -- test-only changes, made with podman and buildah on both copies

    @rule(data=st.data())
    def tag(self, data: st.DataObject) -> None:
        """SF-N-3: ``podman tag`` on both copies."""
        ids = [image.id for image in self.snapshot().images if image.names]
        if not ids:
            return
        image_id = data.draw(st.sampled_from(ids), label="image")
        name = data.draw(st.sampled_from(TAGS), label="name")
        for store in (self.ours, self.theirs):
            code, _, error = self.podman(store, "tag", image_id, name)
            assert code == 0, error

    @rule(data=st.data())
    def add_container(self, data: st.DataObject) -> None:
        """SF-C: ``buildah from`` an image on both copies (storage-only containers)."""
        ids = [i.id for i in self.snapshot().images if i.top_layer]
        if not ids:
            return
        image_id = data.draw(st.sampled_from(ids), label="image")
        ours = self.buildah(self.ours, "from", "--pull=never", "--quiet", image_id)
        theirs = self.buildah(self.theirs, "from", "--pull=never", "--quiet", image_id)
        ours_id = self.container_id(self.ours, ours)
        self.containers[self.container_id(self.theirs, theirs)] = ours_id

    def container_id(self, store: PodmanStore, name: str) -> str:
        return self.buildah(store, "inspect", "--format", "{{.ContainerID}}", name)

    @precondition(lambda self: bool(self.containers))
    @rule(data=st.data())
    def remove_container(self, data: st.DataObject) -> None:
        """SF-D-C: ``buildah rm`` of a container added before, on both copies."""
        theirs_id = data.draw(st.sampled_from(sorted(self.containers)), label="container")
        ours_id = self.containers.pop(theirs_id)
        if any(c.id == ours_id for c in self.snapshot().containers):
            self.buildah(self.ours, "rm", ours_id)
            self.buildah(self.theirs, "rm", theirs_id)

    # -- the same request on both sides

    @rule(data=st.data(), force=st.booleans())
    def rmi(self, data: st.DataObject, force: bool) -> None:
        """RM-*, POD-R-*: exit code, output lines, error text (decision 13)."""
        pool = self.names_pool()
        names = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3), label="names")
        ours, theirs = self.both("rmi", *(["-f"] if force else []), *names)
        assert ours[:2] == theirs[:2], f"rmi {names}: ours {ours}, podman {theirs}"
        assert _without_warnings(ours[2], ours=True) == _without_warnings(theirs[2], ours=False)

    @rule(force=st.booleans())
    def rmi_all(self, force: bool) -> None:
        """RM-4, decision 15: ``rmi -a`` removes every image it can."""
        ours, theirs = self.both("rmi", "-a", *(["-f"] if force else []))
        assert ours[0] == theirs[0], f"rmi -a: ours {ours}, podman {theirs}"
        # podman sorts -a by its listing; compare the lines as multisets (RM-4)
        assert sorted(ours[1].splitlines()) == sorted(theirs[1].splitlines())

    @rule(data=st.data())
    def lookup(self, data: st.DataObject) -> None:
        """EX-1, LK-*: ``image exists`` and ``image inspect`` against ours."""
        name = data.draw(st.sampled_from(self.names_pool()), label="name")
        ours = self.libimage("exists", name)
        theirs = self.podman(self.theirs, "image", "exists", name)
        assert ours[0] == theirs[0], f"exists {name!r}: ours {ours}, podman {theirs}"
        found = self.libimage("lookup", name)
        inspected = self.podman(self.theirs, "image", "inspect", "--format", "{{.Id}}", name)
        if inspected[0] == 0:
            assert found[:2] == (0, inspected[1]), f"lookup {name!r}: ours {found}"
        elif found[0] == 0:
            # podman found something it could not inspect: only a manifest list (ML-1).
            assert "image index" in inspected[2] or "manifest list" in inspected[2], inspected

    @rule(data=st.data(), all_images=st.booleans())
    def images(self, data: st.DataObject, all_images: bool) -> None:
        """LS-*, FL-*, POD-I-2: ``images -q --no-trunc --filter``, the same set of IDs."""
        chosen = data.draw(st.lists(st.sampled_from(FILTERS), max_size=2, unique=True))
        args = ["images", "-q", "--no-trunc", *(["-a"] if all_images else [])]
        for item in chosen:
            args += ["--filter", item]
        ours, theirs = self.both(*args)
        assert ours[0] == theirs[0], f"{args}: ours {ours}, podman {theirs}"
        assert set(ours[1].split()) == set(theirs[1].split()), f"{args}: {ours} / {theirs}"

    @invariant()
    def same_store(self) -> None:
        """Both copies hold the same images, names, history, layers and containers."""
        theirs = read_snapshot(self.theirs.options()).snapshot
        assert view(self.snapshot()) == view(theirs)


TestPodmanAgainstLibimage = PodmanAgainstLibimage.TestCase
TestPodmanAgainstLibimage.settings = settings(
    max_examples=max(3, ACTIVE.max_examples // 5),
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=list(ACTIVE.suppress_health_check),
)


def test_base_store_as_podman_lists_it() -> None:
    """The machine's premise: podman and libimage read the same base store (POD-I-1)."""
    store, _ = base_store()
    listed = store.run("images", "-a", "-q", "--no-trunc").stdout.split()
    ours = read_snapshot(store.options()).snapshot
    assert {i.removeprefix("sha256:") for i in listed} == {i.id for i in ours.images}
    assert len(ours.images) == 10
    assert len(ours.containers) == 1
