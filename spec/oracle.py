"""The oracle: check another implementation of these semantics against ours (issue #6 item 4).

The other implementation is described by the command protocol
(:mod:`libimage.spec.protocol`); podman 4.3.1 is built in. The oracle

1. **generates workloads** with hypothesis (:func:`workloads`): a small store written
   in the scenario-case vocabulary (:mod:`libimage.spec.cases`: images with names
   from :data:`libimage.spec.gen_snapshots.NAMES`, IDs sharing the prefixes of
   :data:`~libimage.spec.gen_snapshots.ID_PREFIXES`, children, labels, read-only
   images, manifest lists, storage containers, a registries configuration) and up
   to a few requests: ``lookup`` and ``exists`` of names, short names, IDs, ID
   prefixes, ``sha256:`` IDs, digests and ``containers-storage:`` names; ``images``
   with filters; ``rmi`` of names with or without force, and ``rmi -a``. Names, IDs
   and digests in requests are the case format's placeholders (``{A.id12}``), so a
   workload *is* a case;
2. **runs both sides** on identical copies of the store (:func:`execute`): ours is
   libimage with the chosen semantics profile, through its command line in this
   interpreter (:func:`~libimage.spec.protocol.libimage_protocol`); theirs through
   its description. After the store is written and after every removal, both
   stores are read back;
3. **compares** (:func:`compare`) the status of each request (its exit code's class),
   the IDs found, the listed (ID, names) sets, the ``Untagged:``/``Deleted:`` lines
   and the stores read back (for two containers-storage implementations also names
   history, layers and the containers' images, read from disk);
4. **judges** each divergence against the list of known differences
   (:func:`load_known`, ``spec/known-podman-differences.json``): an entry matches by
   the request's operation, the aspects that differ, patterns over the request and a
   named predicate over the store (:data:`PREDICATES`), never by message text;
5. **shrinks** the first divergence no entry explains (hypothesis's shrinking, within
   the same time bound as the search) and **saves** it as a scenario case
   (:func:`case_document`): the store, the requests up to the diverging one, and what
   the other implementation did as the expectations. :func:`replay` runs a saved case
   (or any case of ``spec/cases``) on both sides again.

:func:`run_oracle` returns an :class:`OracleRun`; ``libimage oracle``
(:mod:`libimage.adapters.cmd_oracle`) prints it and exits 0 when every divergence it
found is a known one, 1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from libimage.pure.context import Platform
from libimage.pure.semantics import PROFILES
from libimage.pure.snapshot import Snapshot, StoredImage
from libimage.spec.cases import (
    Case,
    CaseError,
    ImageSpec,
    Step,
    Values,
    build_snapshot,
    load,
    run_step,
)
from libimage.spec.gen_snapshots import ID_PREFIXES, NAMES
from libimage.spec.protocol import (
    Completed,
    Listed,
    Protocol,
    Variables,
    libimage_protocol,
    parse_id,
    parse_lines,
    parse_listing,
    run_command,
    store_document,
)

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn

KNOWN_PODMAN_DIFFERENCES = Path(__file__).parent / "known-podman-differences.json"
KEYS = "ABCDE"
NAME_POOL = (*NAMES, "docker.io/library/foo:latest")
"""Stored names: the generators' pool and a Docker Hub name (NORM-2, SN-1)."""
BAD_NAME = "localhost/Bad:1"
"""A stored name that does not parse (upper case), given now and then (decision 18)."""
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))
LABELS: tuple[Mapping[str, str] | None, ...] = (None, {"a": "1"}, {"b": "1"}, {"a": "2", "b": "1"})
REGISTRIES: tuple[Mapping[str, Any], ...] = (
    {},
    {"unqualified-search-registries": ["quay.io", "docker.io"]},
    {"unqualified-search-registries": ["docker.io"], "aliases": {"foo": "quay.io/x/foo"}},
)
FIXED_NAMES = (
    "foo",
    "foo:v2",
    "bar:1",
    "x/foo",
    "library/foo",
    "nothere",
    "localhost/nothere:1",
    "0",
    "0a",
    "a",
    "docker://foo",
    "oci:/nonexistent:1",
    "dir:/nonexistent",
    "Foo",
    "foo@sha256:0",
    "docker.io/library/foo",
)
FIXED_FILTERS = (
    "dangling=true",
    "dangling=false",
    "intermediate=true",
    "intermediate=false",
    "readonly=true",
    "readonly=false",
    "manifest=true",
    "manifest=false",
    "containers=true",
    "containers=false",
    "label=a",
    "label=b=1",
    "label=a=2",
    "reference=foo",
    "reference=*",
    "reference=localhost/*",
    "reference=*foo*",
    "reference=quay.io/*/foo:*",
    "containers=external",
    "label=*",
    "reference!=foo",
    "dangling!=true",
    "since=nothere",
    "id=",
    "nosuchfilter=1",
    "dangling=maybe",
)
"""Filters every workload may use (``until`` is left out: it reads the clock)."""
ALL_IMAGES_FILTERS = ("readonly=false",)
"""``rmi -a`` as a case request: every image but the read-only ones (decision 15)."""
OPS = ("rmi", "lookup", "exists", "images")


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True, slots=True)
class Workload:
    """A store in the case vocabulary and the requests to run on it, in order."""

    images: tuple[ImageSpec, ...]
    containers: tuple[str, ...] = ()
    registries: Mapping[str, Any] = field(default_factory=dict)
    requests: tuple[Mapping[str, Any], ...] = ()
    case_id: str = ""

    def store(self) -> dict[str, Any]:
        """The case's ``store`` object."""
        return store_object(self.images, self.containers)

    def identity(self) -> str:
        """A case ID derived from the content (the IDs of the built store depend on it)."""
        if self.case_id:
            return self.case_id
        content = json.dumps(
            [self.store(), dict(self.registries), list(self.requests)], sort_keys=True
        )
        return "oracle-" + hashlib.sha256(content.encode()).hexdigest()[:12]

    def case(self, profiles: Sequence[str] = ("podman-4.3",)) -> Case:
        """The workload as a :class:`Case` (without expectations)."""
        return Case(
            id=self.identity(),
            rules=(),
            description="",
            images=self.images,
            containers=self.containers,
            steps=tuple(Step(request, {}) for request in self.requests),
            profiles=tuple(profiles),
            search_registries=tuple(self.registries.get("unqualified-search-registries", [])),
            aliases=dict(self.registries.get("aliases", {})),
        )


def store_object(images: Sequence[ImageSpec], containers: Sequence[str]) -> dict[str, Any]:
    """A case's ``store`` object for these images and containers (the inverse of loading)."""
    described: list[dict[str, Any]] = []
    for spec in images:
        entry: dict[str, Any] = {"key": spec.key, "names": list(spec.names)}
        if spec.parent:
            entry["parent"] = spec.parent
        if spec.id_prefix:
            entry["id_prefix"] = spec.id_prefix
        if spec.labels is not None:
            entry["labels"] = dict(spec.labels)
        if spec.read_only:
            entry["read_only"] = True
        if spec.entries is not None:
            entry["list"] = [
                {"image": key, "os": platform.os, "arch": platform.architecture}
                for key, platform in spec.entries
            ]
        described.append(entry)
    store: dict[str, Any] = {"images": described}
    if containers:
        store["containers"] = [{"image": key} for key in containers]
    return store


def workload_of(case: Case) -> Workload:
    """A case (for example a saved divergence) as a workload: its store and requests."""
    registries: dict[str, Any] = {}
    if case.search_registries:
        registries["unqualified-search-registries"] = list(case.search_registries)
    if case.aliases:
        registries["aliases"] = dict(case.aliases)
    return Workload(
        images=case.images,
        containers=case.containers,
        registries=registries,
        requests=tuple(dict(step.request) for step in case.steps),
        case_id=case.id,
    )


def _rarely(draw: DrawFn, one_in: int) -> bool:
    # Hypothesis shrinks integers towards 0: the rare case is the largest value.
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def stores(draw: DrawFn, max_images: int = 4) -> tuple[tuple[ImageSpec, ...], tuple[str, ...]]:
    """Images (in store order) and the keys of the images containers use.

    Every choice shrinks towards the simplest store: fewer images, base images,
    no names, plain IDs, no labels, read-write, no lists, no containers. Parents and
    list entries are earlier read-write single images; a name belongs to one image.
    """
    specs: list[ImageSpec] = []
    taken: set[tuple[bool, str]] = set()  # a name belongs to one image of each store
    for index in range(draw(st.integers(0, max_images))):
        key = KEYS[index]
        singles = [s.key for s in specs if s.entries is None and not s.read_only]
        kinds = ["base", "child"] if singles else ["base"]
        kind = draw(st.sampled_from(kinds))
        if singles and _rarely(draw, 6):
            kind = "list"
        drawn = draw(st.lists(st.sampled_from(NAME_POOL), max_size=2, unique=True))
        if _rarely(draw, 25):
            drawn.append(BAD_NAME)
        read_only = kind == "base" and _rarely(draw, 6)
        names = tuple(name for name in drawn if (read_only, name) not in taken)
        taken.update((read_only, name) for name in names)
        id_prefix = draw(st.sampled_from(("", *ID_PREFIXES)))
        if kind == "list":
            members = draw(st.lists(st.sampled_from(singles), min_size=1, max_size=2, unique=True))
            entries = tuple(
                (member, Platform(*draw(st.sampled_from(PLATFORMS)))) for member in members
            )
            specs.append(ImageSpec(key, names, id_prefix=id_prefix, entries=entries))
            continue
        parent = draw(st.sampled_from(singles)) if kind == "child" else ""
        labels = draw(st.sampled_from(LABELS))
        specs.append(ImageSpec(key, names, parent, id_prefix, labels, read_only))
    usable = [s.key for s in specs if s.entries is None and not s.read_only]
    containers: tuple[str, ...] = ()
    if usable:
        containers = tuple(draw(st.lists(st.sampled_from(usable), max_size=2)))
    return tuple(specs), containers


def name_pool(images: Sequence[ImageSpec]) -> list[str]:
    """Names worth asking for on these images: stored names and their short forms,
    ``containers-storage:`` names, IDs, ID prefixes, ``sha256:`` IDs and digests (as
    placeholders), and names that match nothing or everything (:data:`FIXED_NAMES`)."""
    pool: dict[str, None] = dict.fromkeys(FIXED_NAMES)
    for spec in images:
        for name in spec.names:
            pool.setdefault(name)
            registry, _, rest = name.partition("/")
            if registry in ("localhost", "docker.io", "quay.io"):
                pool.setdefault(rest)
                pool.setdefault(rest.removesuffix(":latest"))
            pool.setdefault(f"containers-storage:{name}")
        key = spec.key
        for form in ("{K}", "{K.id12}", "{K.id4}", "{K.short}", "sha256:{K}", "sha256:{K.id4}"):
            pool.setdefault(form.replace("K", key))
        repository = spec.names[0].rsplit(":", 1)[0] if spec.names else "localhost/x"
        pool.setdefault(f"{repository}@{{{key}.digest}}")
    return list(pool)


def filter_pool(images: Sequence[ImageSpec]) -> list[str]:
    """:data:`FIXED_FILTERS` plus ``id``, ``since``, ``before`` and ``after`` naming images."""
    pool = list(FIXED_FILTERS)
    for spec in images[:3]:
        pool += [f"id={{{spec.key}}}", f"since={{{spec.key}.id12}}", f"before={{{spec.key}}}"]
        if spec.names:
            pool.append(f"after={spec.names[0]}")
    return pool


@st.composite
def requests(
    draw: DrawFn, images: Sequence[ImageSpec], max_steps: int = 4
) -> tuple[dict[str, Any], ...]:
    """Up to ``max_steps`` case requests on a store of ``images``."""
    names = name_pool(images)
    filters = filter_pool(images)
    drawn: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(OPS))
        if op in ("lookup", "exists"):
            drawn.append({"op": op, "name": draw(st.sampled_from(names))})
        elif op == "images":
            chosen = draw(st.lists(st.sampled_from(filters), max_size=2))
            drawn.append({"op": "images", "filters": chosen})
        else:
            force = draw(st.booleans())
            if _rarely(draw, 8):
                drawn.append(
                    {"op": "rmi", "names": [], "filters": list(ALL_IMAGES_FILTERS), "force": force}
                )
            else:
                chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
                drawn.append({"op": "rmi", "names": chosen, "force": force})
    return tuple(drawn)


@st.composite
def workloads(draw: DrawFn, max_images: int = 4, max_steps: int = 4) -> Workload:
    """A store (:func:`stores`), a registries configuration and requests (:func:`requests`)."""
    images, containers = draw(stores(max_images))
    registries = draw(st.sampled_from(REGISTRIES))
    drawn = draw(requests(images, max_steps))
    return Workload(images, containers, registries, drawn)


# --------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True)
class Observation:
    """What one request gave, through a description: the status class of the exit code
    and what the output says (``found``, ``listed`` or ``lines`` by operation)."""

    op: str
    status: str
    exit_code: int
    found: str | None = None
    listed: Listed | None = None
    lines: tuple[str, ...] = ()
    stderr: str = ""
    problem: str = ""  # output that does not parse


@dataclass(frozen=True, slots=True)
class StoreView:
    """A store as read back: every image with its names (the description's ``read``),
    and for containers-storage stores also what the files say."""

    images: Listed = ()
    history: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    layers: tuple[str, ...] | None = None
    containers: tuple[str, ...] | None = None  # the image ID of each container, sorted
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Difference:
    """One aspect in which the two sides disagree, with both values."""

    aspect: str
    ours: Any
    theirs: Any


@dataclass(frozen=True, slots=True)
class StepResult:
    """One request on both sides. ``index`` -1 is the store as written, before any request."""

    index: int
    request: Mapping[str, Any]  # as in the workload (placeholders)
    filled: Mapping[str, Any]  # placeholders filled
    ours: Observation | None
    theirs: Observation | None
    ours_store: StoreView | None
    theirs_store: StoreView | None
    differences: tuple[Difference, ...] = ()


@dataclass(slots=True)
class Side:
    """One implementation on one copy of the store during one workload."""

    protocol: Protocol
    values: dict[str, str]
    image_stores: tuple[str, ...] = ()
    storage: Any = None  # the StoreOptions of a containers-storage store

    def variables(
        self,
        values: Mapping[str, str] | None = None,
        lists: Mapping[str, Sequence[str]] | None = None,
        flags: Mapping[str, bool] | None = None,
    ) -> Variables:
        return Variables(
            {**self.values, **(values or {})},
            {"image_stores": self.image_stores, **(lists or {})},
            dict(flags or {}),
        )

    def run(self, operation: str, variables: Variables) -> Completed:
        return run_command(self.protocol, operation, variables)


class UnsupportedRequest(ValueError):
    """A case request the command protocol cannot express (for example ``rmi --filter``)."""


def protocol_request(request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The operation and its variables for a (filled) case request."""
    op = request.get("op")
    if op in ("lookup", "exists"):
        return str(op), {"values": {"name": request["name"]}}
    if op == "images":
        if request.get("names"):
            raise UnsupportedRequest("images with names is not part of the protocol")
        return "images", {"lists": {"filters": list(request.get("filters", []))}}
    if op == "rmi":
        if request.get("lookup_manifest"):
            raise UnsupportedRequest("rmi --lookup-manifest is not part of the protocol")
        names = list(request.get("names", []))
        filters = list(request.get("filters", []))
        if names and filters:
            raise UnsupportedRequest("rmi with names and filters")
        if not names and filters not in ([], list(ALL_IMAGES_FILTERS)):
            raise UnsupportedRequest(f"rmi by the filters {filters} (only rmi -a is)")
        flags = {"force": bool(request.get("force")), "all": not names}
        return "rmi", {"lists": {"names": names}, "flags": flags}
    raise UnsupportedRequest(f"unknown operation {op!r}")


def observe(side: Side, request: Mapping[str, Any]) -> Observation:
    """Run one filled request on one side and parse what it printed."""
    op, parts = protocol_request(request)
    done = side.run(op, side.variables(**parts))
    command = side.protocol.commands[op]
    status = command.status(done.exit_code)
    stderr = done.stderr.strip()
    if op == "lookup":
        found = parse_id(done.stdout) if done.exit_code == 0 else None
        return Observation(op, status, done.exit_code, found=found, stderr=stderr)
    if op == "images":
        if status != "ok":
            return Observation(op, status, done.exit_code, stderr=stderr)
        try:
            listed = parse_listing(command.output, done.stdout)
        except ValueError as error:
            problem = f"cannot parse the listing: {error}"
            return Observation(op, status, done.exit_code, stderr=stderr, problem=problem)
        return Observation(op, status, done.exit_code, listed=listed, stderr=stderr)
    if op == "rmi":
        lines = parse_lines(done.stdout)
        return Observation(op, status, done.exit_code, lines=lines, stderr=stderr)
    return Observation(op, status, done.exit_code, stderr=stderr)


def read_store(side: Side) -> StoreView:
    """The store as the side's ``read`` lists it, and its files (containers-storage)."""
    done = side.run("read", side.variables())
    command = side.protocol.commands["read"]
    if command.status(done.exit_code) != "ok":
        return StoreView(problem=f"read exited {done.exit_code}: {done.stderr.strip()}")
    try:
        listed = parse_listing(command.output, done.stdout)
    except ValueError as error:
        return StoreView(problem=f"cannot parse the store listing: {error}")
    if side.storage is None:
        return StoreView(images=listed)
    from libimage.adapters.store import read_snapshot
    from libimage.pure.errors import LibimageError

    try:
        snapshot = read_snapshot(side.storage).snapshot
    except LibimageError as error:
        return StoreView(images=listed, problem=f"the store files: {error.failure.message}")
    return StoreView(
        images=listed,
        history=tuple(sorted((i.id, tuple(i.names_history)) for i in snapshot.images)),
        layers=tuple(sorted({layer.id for layer in snapshot.layers} - _container_layers(snapshot))),
        containers=tuple(sorted(c.image_id for c in snapshot.containers)),
    )


def _container_layers(snapshot: Snapshot) -> set[str]:
    # Container IDs and their layers are random per copy only when a side makes them;
    # here both copies are written from one snapshot, but only images are compared.
    return {c.layer for c in snapshot.containers if c.layer}


# --------------------------------------------------------------------------- comparing


def compare(ours: Observation, theirs: Observation, request: Mapping[str, Any]) -> list[Difference]:
    """Where two observations of one request differ (module docstring, step 3).

    ``rmi -a`` lines are compared as multisets: podman prints them in its listing's
    order (RM-4); named removals in order.
    """
    found: list[Difference] = []
    for side, observation in (("ours", ours), ("theirs", theirs)):
        if observation.problem:
            found.append(Difference(f"output ({side})", observation.problem, ""))
    if ours.status != theirs.status:
        found.append(Difference("status", _status(ours), _status(theirs)))
    if ours.op == "lookup" and ours.found != theirs.found:
        found.append(Difference("found", ours.found, theirs.found))
    if (
        ours.op == "images"
        and ours.listed is not None
        and theirs.listed is not None
        and not _same_listing(ours.listed, theirs.listed)
    ):
        found.append(Difference("listed", _listing(ours.listed), _listing(theirs.listed)))
    if ours.op == "rmi":
        all_images = not request.get("names")
        left = sorted(ours.lines) if all_images else list(ours.lines)
        right = sorted(theirs.lines) if all_images else list(theirs.lines)
        if left != right:
            found.append(Difference("lines", list(ours.lines), list(theirs.lines)))
    return found


def _status(observation: Observation) -> str:
    return f"{observation.status} (exit {observation.exit_code})"


def _same_listing(ours: Listed, theirs: Listed) -> bool:
    if len(ours) != len(theirs):
        return False
    for (our_id, our_names), (their_id, their_names) in zip(ours, theirs, strict=True):
        if our_id != their_id:
            return False
        if our_names is not None and their_names is not None and our_names != their_names:
            return False
    return True


def _listing(listed: Listed) -> list[str]:
    return [
        image_id + ("" if names is None else " " + json.dumps(list(names)))
        for image_id, names in listed
    ]


def compare_stores(ours: StoreView, theirs: StoreView) -> list[Difference]:
    """Where two stores read back differ: images and names; names history, layers and
    containers when both were read from disk."""
    found: list[Difference] = []
    if ours.problem or theirs.problem:
        found.append(Difference("store (read)", ours.problem, theirs.problem))
        return found
    if not _same_listing(ours.images, theirs.images):
        found.append(Difference("store", _listing(ours.images), _listing(theirs.images)))
    for aspect in ("history", "layers", "containers"):
        left, right = getattr(ours, aspect), getattr(theirs, aspect)
        if left is not None and right is not None and left != right:
            found.append(Difference(f"store {aspect}", _plain(left), _plain(right)))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


# --------------------------------------------------------------------------- known differences


@dataclass(frozen=True, slots=True)
class Context:
    """What a known difference's predicate may look at: the diverging step, the steps
    before it, the store as written, and a way to run our side again in another
    semantics profile (``rerun(profile)``: our observation of the same step, and our
    store after it when the step is a removal)."""

    workload: Workload
    values: Values
    snapshot: Snapshot  # the store as written
    step: StepResult
    history: tuple[StepResult, ...]  # the steps before it
    rerun: Callable[[str], tuple[Observation | None, StoreView | None]]

    @property
    def op(self) -> str:
        return str(self.step.request.get("op", "read"))

    def spec(self, image_id: str) -> ImageSpec | None:
        key = self.values.key_of(image_id)
        return next((s for s in self.workload.images if s.key == key), None)


Predicate = Callable[[Context], bool]


def _unparseable_stored_name(context: Context) -> bool:
    """Decision 18: a stored name does not parse, and only their side failed to read."""
    from libimage.pure.facts import unparseable_names

    step = context.step
    theirs_failed = step.theirs_store is not None and bool(step.theirs_store.problem)
    ours_read = step.ours_store is not None and not step.ours_store.problem
    bad = any(unparseable_names(image) for image in context.snapshot.images)
    return bad and theirs_failed and ours_read


def _explained_by_podman_profile(context: Context) -> bool:
    """Decision 1: our side run again in the ``podman-4.3`` profile does what theirs did,
    so the divergence is one of the profile's switches (DIV-*, decisions 13 to 17)."""
    step = context.step
    if step.theirs is None:
        return False
    observation, store = context.rerun("podman-4.3")
    if observation is None:
        return False
    if compare(observation, step.theirs, step.filled):
        return False
    if store is not None and step.theirs_store is not None:
        return not compare_stores(store, step.theirs_store)
    return True


PREDICATES: Mapping[str, Predicate] = {
    "always": lambda _context: True,
    "unparseable-stored-name": _unparseable_stored_name,
    "explained-by-podman-4.3-profile": _explained_by_podman_profile,
}
"""Named predicates a known difference may require (``"predicate"`` in its ``match``)."""


@dataclass(frozen=True, slots=True)
class KnownDifference:
    """One entry of a known-differences list (``spec/known-podman-differences.json``).

    It explains a divergence when the diverging request's operation is one of
    ``ops`` (``read`` for the store as written), every aspect that differs is one of
    ``aspects`` (``"*"`` stands for any, in either), each pattern of
    ``request`` (a field: ``name``, ``names``, ``filters``, ``force``, ``all`` ->
    a regular expression) matches the filled request (for a list, some element), and
    the named ``predicate`` holds.
    """

    id: str
    title: str
    reason: str
    rules: tuple[str, ...]
    semantics: tuple[str, ...]
    ops: tuple[str, ...]
    aspects: tuple[str, ...]
    request: Mapping[str, str] = field(default_factory=dict)
    predicate: str = "always"

    def explains(self, context: Context, semantics: str) -> bool:
        if self.semantics and semantics not in self.semantics:
            return False
        if "*" not in self.ops and context.op not in self.ops:
            return False
        if "*" not in self.aspects and not all(
            d.aspect in self.aspects for d in context.step.differences
        ):
            return False
        for key, pattern in self.request.items():
            if not _request_matches(context.step.filled, key, pattern):
                return False
        return PREDICATES[self.predicate](context)


def _request_matches(request: Mapping[str, Any], key: str, pattern: str) -> bool:
    if key == "all":
        value: Any = str(request.get("op") == "rmi" and not request.get("names")).lower()
    else:
        value = request.get(key, "")
    if isinstance(value, bool):
        value = str(value).lower()
    values = value if isinstance(value, list) else [value]
    return any(re.fullmatch(pattern, str(item)) for item in values)


class KnownListError(ValueError):
    """A known-differences file that does not follow the format."""


def parse_known(document: Any, source: str = "<known>") -> tuple[KnownDifference, ...]:
    """The entries of a known-differences document (:class:`KnownDifference`)."""
    if not isinstance(document, dict) or not isinstance(document.get("differences"), list):
        raise KnownListError(f"{source}: an object with a 'differences' list")
    entries: list[KnownDifference] = []
    for position, raw in enumerate(document["differences"]):
        where = f"{source}: differences[{position}]"
        if not isinstance(raw, dict):
            raise KnownListError(f"{where}: an entry is an object")
        match = raw.get("match")
        if not isinstance(match, dict):
            raise KnownListError(f"{where}: 'match' must be an object")
        for required in ("id", "title", "reason"):
            if not isinstance(raw.get(required), str) or not raw[required]:
                raise KnownListError(f"{where}: {required!r} must be a non-empty string")
        predicate = match.get("predicate", "always")
        if predicate not in PREDICATES:
            raise KnownListError(f"{where}: unknown predicate {predicate!r}")
        request = match.get("request", {})
        if not isinstance(request, dict):
            raise KnownListError(f"{where}: 'match.request' must be an object")
        for pattern in request.values():
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                raise KnownListError(f"{where}: bad pattern {pattern!r}: {error}") from error
        ops = tuple(match.get("ops", ()))
        aspects = tuple(match.get("aspects", ()))
        if not ops or not aspects:
            raise KnownListError(f"{where}: 'match' needs 'ops' and 'aspects'")
        entries.append(
            KnownDifference(
                id=raw["id"],
                title=raw["title"],
                reason=raw["reason"],
                rules=tuple(raw.get("rules", ())),
                semantics=tuple(raw.get("semantics", ())),
                ops=ops,
                aspects=aspects,
                request=dict(request),
                predicate=predicate,
            )
        )
    ids = [entry.id for entry in entries]
    if len(ids) != len(set(ids)):
        raise KnownListError(f"{source}: entry IDs are not unique")
    return tuple(entries)


def load_known(path: str | Path = KNOWN_PODMAN_DIFFERENCES) -> tuple[KnownDifference, ...]:
    """The known differences listed in a JSON file (by default podman 4.3.1's)."""
    location = Path(path)
    try:
        document = json.loads(location.read_text(encoding="utf-8"))
    except OSError as error:
        raise KnownListError(f"{location}: cannot read: {error.strerror}") from error
    except ValueError as error:
        raise KnownListError(f"{location}: not JSON: {error}") from error
    return parse_known(document, str(location))


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first step at which the two sides differ, with everything before it."""

    workload: Workload
    values: Values
    steps: tuple[StepResult, ...]  # up to and including the diverging step
    known: KnownDifference | None = None

    @property
    def step(self) -> StepResult:
        return self.steps[-1]


@dataclass(frozen=True, slots=True)
class Execution:
    """One workload on both sides: the steps run, the divergences met (known ones may
    be followed by more steps; an unexplained one ends the run)."""

    workload: Workload
    values: Values
    steps: tuple[StepResult, ...]
    divergences: tuple[Divergence, ...]

    @property
    def unexplained(self) -> Divergence | None:
        return next((d for d in self.divergences if d.known is None), None)


def write_registries_conf(path: Path, registries: Mapping[str, Any]) -> None:
    """A registries.conf (v2) with the search registries and aliases of a case."""
    search = list(registries.get("unqualified-search-registries", []))
    lines = [f"unqualified-search-registries = {json.dumps(search)}"]
    aliases = registries.get("aliases", {})
    if aliases:
        lines.append("[aliases]")
        lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in aliases.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_RUN_ROOT_PARENT = "/tmp"  # podman 4.3.1 refuses run roots longer than 50 characters


@contextmanager
def _scratch() -> Iterator[tuple[Path, Path]]:
    work = Path(tempfile.mkdtemp(prefix="libimage-oracle-"))
    runs = Path(tempfile.mkdtemp(prefix="lo-", dir=_RUN_ROOT_PARENT))
    try:
        yield work, runs
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runs, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class _Written:
    """One workload's store in memory and the scratch folders its copies go to."""

    case: Case
    snapshot: Snapshot
    values: Values
    work: Path
    runs: Path
    common: Mapping[str, str]  # placeholders every command may use


def _prepare(protocol: Protocol, name: str, written: _Written) -> tuple[Side, str]:
    """One side's copy of the store; the second value is a setup failure, if any."""
    case, snapshot, values = written.case, written.snapshot, written.values
    work, runs, common = written.work, written.runs, written.common
    directory = work / name
    directory.mkdir()
    if protocol.store == "containers-storage":
        from libimage.spec.materialise import DRIVER, materialise

        uses_additional = any(image.store_index > 0 for image in snapshot.images)
        additional = (str(directory / "additional"),) if uses_additional else ()
        run_root = runs / name
        options = materialise(snapshot, str(directory / "root"), str(run_root), additional)
        side = Side(
            protocol,
            {
                **common,
                "root": options.graph_root,
                "runroot": options.run_root,
                "driver": DRIVER,
                "state": str(directory),
            },
            additional,
            options,
        )
    else:
        document = json_store(case, snapshot, values)
        store_json = directory / "store.json"
        store_json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        state = directory / "state"
        state.mkdir()
        side = Side(protocol, {**common, "store_json": str(store_json), "state": str(state)})
    if protocol.command("setup") is not None:
        done = side.run("setup", side.variables())
        if protocol.commands["setup"].status(done.exit_code) != "ok":
            return side, f"setup exited {done.exit_code}: {done.stderr.strip()}"
    return side, ""


def json_store(case: Case, snapshot: Snapshot, values: Values) -> dict[str, Any]:
    """The ``{store_json}`` document of a case's store (see :func:`store_document`)."""
    from libimage.pure.snapshot import image_digests

    records: dict[str, StoredImage] = {image.id: image for image in snapshot.images}
    images: list[dict[str, Any]] = []
    for spec in case.images:
        image_id = values.ids[spec.key]
        record = records[image_id]
        listed = None
        if spec.entries is not None:
            listed = [
                {"id": values.ids[key], "os": p.os, "architecture": p.architecture}
                for key, p in spec.entries
            ]
        images.append(
            {
                "id": image_id,
                "names": list(record.names),
                "digests": list(image_digests(record)),
                "parent": values.ids[spec.parent] if spec.parent else None,
                "read_only": record.read_only,
                "labels": dict(spec.labels or {}),
                "manifest_list": listed,
            }
        )
    containers = [{"id": c.id, "image": c.image_id} for c in snapshot.containers]
    return store_document(images, containers)


def execute(
    workload: Workload,
    ours: Protocol,
    theirs: Protocol,
    *,
    semantics: str,
    known: Sequence[KnownDifference] = (),
) -> Execution:
    """Run ``workload`` on both sides (module docstring, steps 2 to 4).

    The store is written once per side, read back by both and compared; then each
    request runs on both, and after a removal both stores are read back. A divergence
    no entry of ``known`` explains ends the run; after a known one the run goes on
    while the stores still agree.
    """
    case = workload.case((semantics,))
    snapshot, values = build_snapshot(case)
    steps: list[StepResult] = []
    divergences: list[Divergence] = []

    def settle(result: StepResult) -> bool:
        """Record a step; False when the run must stop (an unexplained divergence, or
        stores that no longer agree)."""
        if not result.differences:
            steps.append(result)
            return True
        judged = _judge(
            workload,
            values=values,
            snapshot=snapshot,
            step=result,
            history=steps,
            known=known,
            semantics=semantics,
            ours=ours,
        )
        steps.append(result)
        divergences.append(judged)
        stores_differ = any(d.aspect.startswith(("store", "setup")) for d in result.differences)
        return judged.known is not None and not stores_differ

    with _scratch() as (work, runs):
        conf = work / "registries.conf"
        write_registries_conf(conf, workload.registries)
        common = {"registries_conf": str(conf), "semantics": semantics}
        written = _Written(case, snapshot, values, work, runs, common)
        our_side, our_problem = _prepare(ours, "ours", written)
        their_side, their_problem = _prepare(theirs, "theirs", written)
        if our_problem or their_problem:
            difference = Difference("setup", our_problem, their_problem)
            setup = {"op": "setup"}
            settle(StepResult(-1, setup, setup, None, None, None, None, (difference,)))
            return Execution(workload, values, tuple(steps), tuple(divergences))
        our_store, their_store = read_store(our_side), read_store(their_side)
        read = {"op": "read"}
        differences = compare_stores(our_store, their_store)
        going = settle(
            StepResult(-1, read, read, None, None, our_store, their_store, tuple(differences))
        )
        for index, request in enumerate(workload.requests):
            if not going:
                break
            filled = values.fill_all(dict(request))
            our_result = observe(our_side, filled)
            their_result = observe(their_side, filled)
            differences = compare(our_result, their_result, filled)
            after_ours = after_theirs = None
            if request.get("op") == "rmi":
                after_ours, after_theirs = read_store(our_side), read_store(their_side)
                differences += compare_stores(after_ours, after_theirs)
            going = settle(
                StepResult(
                    index,
                    dict(request),
                    filled,
                    our_result,
                    their_result,
                    after_ours,
                    after_theirs,
                    tuple(differences),
                )
            )
    return Execution(workload, values, tuple(steps), tuple(divergences))


def _judge(
    workload: Workload,
    *,
    values: Values,
    snapshot: Snapshot,
    step: StepResult,
    history: Sequence[StepResult],
    known: Sequence[KnownDifference],
    semantics: str,
    ours: Protocol,
) -> Divergence:
    def rerun(profile: str) -> tuple[Observation | None, StoreView | None]:
        return rerun_ours(workload, ours, profile, step.index)

    context = Context(workload, values, snapshot, step, tuple(history), rerun)
    explained = next((entry for entry in known if entry.explains(context, semantics)), None)
    return Divergence(workload, values, (*history, step), explained)


def rerun_ours(
    workload: Workload, ours: Protocol, semantics: str, index: int
) -> tuple[Observation | None, StoreView | None]:
    """Our side alone, in profile ``semantics``, on a fresh copy of the workload's store:
    the observation of request ``index`` (after the ones before it), and the store after
    it if it is a removal. ``(None, None)`` when there is no such request."""
    if not 0 <= index < len(workload.requests):
        return None, None
    case = workload.case((semantics,))
    snapshot, values = build_snapshot(case)
    with _scratch() as (work, runs):
        conf = work / "registries.conf"
        write_registries_conf(conf, workload.registries)
        common = {"registries_conf": str(conf), "semantics": semantics}
        side, problem = _prepare(ours, "ours", _Written(case, snapshot, values, work, runs, common))
        if problem:
            return None, None
        observation: Observation | None = None
        for request in workload.requests[: index + 1]:
            observation = observe(side, values.fill_all(dict(request)))
        store = read_store(side) if workload.requests[index].get("op") == "rmi" else None
        return observation, store


# --------------------------------------------------------------------------- reporting


def describe_store(workload: Workload, values: Values) -> list[str]:
    """One line per image of the store (key, ID, names, how it was made), then containers."""
    lines: list[str] = []
    for spec in workload.images:
        parts = [f"{spec.key} {values.ids.get(spec.key, '?')[:12]}"]
        parts.append(json.dumps(list(spec.names)))
        if spec.parent:
            parts.append(f"child of {spec.parent}")
        if spec.entries is not None:
            members = ", ".join(f"{k} {p.os}/{p.architecture}" for k, p in spec.entries)
            parts.append(f"manifest list of [{members}]")
        if spec.labels:
            parts.append(f"labels {json.dumps(dict(spec.labels))}")
        if spec.read_only:
            parts.append("read-only (additional store)")
        lines.append(" ".join(parts))
    if not workload.images:
        lines.append("(no images)")
    for key in workload.containers:
        lines.append(f"a storage container using {key}")
    if workload.registries:
        lines.append(f"registries: {json.dumps(dict(workload.registries), sort_keys=True)}")
    return lines


def describe_request(request: Mapping[str, Any]) -> str:
    """A request as the command line it stands for (``rmi -f foo``)."""
    op = request.get("op")
    if op in ("lookup", "exists"):
        return f"{op} {request['name']}"
    if op == "images":
        return "images -a" + "".join(f" --filter {f}" for f in request.get("filters", []))
    if op == "rmi":
        force = " -f" if request.get("force") else ""
        names = request.get("names", [])
        return f"rmi{force} " + (" ".join(names) if names else "-a")
    return str(op)


def describe(divergence: Divergence) -> list[str]:
    """A divergence as lines of text: the store, the requests, what differs."""
    lines = ["store:"]
    lines += [f"  {line}" for line in describe_store(divergence.workload, divergence.values)]
    lines.append("requests:")
    for step in divergence.steps:
        if step.index < 0:
            continue
        marker = "  ->" if step is divergence.step else "    "
        lines.append(f"{marker} {step.index + 1}. {describe_request(step.filled)}")
    where = "the store as written" if divergence.step.index < 0 else "the last request"
    lines.append(f"differences ({where}):")
    for difference in divergence.step.differences:
        lines.append(f"  {difference.aspect}:")
        lines.append(f"    ours:   {json.dumps(difference.ours)}")
        lines.append(f"    theirs: {json.dumps(difference.theirs)}")
    if divergence.step.ours is not None and divergence.step.ours.stderr:
        lines.append(f"  ours said:   {divergence.step.ours.stderr.splitlines()[-1]}")
    if divergence.step.theirs is not None and divergence.step.theirs.stderr:
        lines.append(f"  theirs said: {divergence.step.theirs.stderr.splitlines()[-1]}")
    if divergence.known is not None:
        lines.append(f"known difference {divergence.known.id}: {divergence.known.title}")
    return lines


def case_document(divergence: Divergence, semantics: str, against: str) -> dict[str, Any]:
    """A divergence as a scenario case (:mod:`libimage.spec.cases`), to be replayed.

    The store and the requests up to the diverging one; each step expects what the
    *other* implementation did, as far as its output says: ``exists``, the image a
    ``lookup`` found, the images listed (in store order), and after ``rmi`` the
    images left with their names (plus ``errors: []`` when it succeeded). An error
    whose kind the output does not say takes our core's kind when our core failed
    too, else ``IMAGE_UNKNOWN`` for a lookup and ``INTERNAL`` otherwise.
    """
    workload, values = divergence.workload, divergence.values
    case = workload.case((semantics,))
    core_snapshot, _ = build_snapshot(case)
    core_context = case.context(PROFILES[semantics])
    steps: list[dict[str, Any]] = []
    for step in divergence.steps:
        if step.index < 0:
            continue
        core, core_snapshot = run_step(core_snapshot, step.filled, core_context, values)
        expected = _expectation(step, core, values, workload)
        entry: dict[str, Any] = {"request": dict(step.request), "expect": expected}
        if semantics != "seed":
            entry["expect_podman"] = expected
        steps.append(entry)
    if not steps:  # the stores differed as written: one read-only request shows it
        listed = divergence.step.theirs_store.images if divergence.step.theirs_store else ()
        expected = _listing_expect(listed, values, workload)
        steps.append({"request": {"op": "images", "filters": []}, "expect": expected})
    text = " ".join(
        f"{d.aspect}: ours {json.dumps(d.ours)}, {against} {json.dumps(d.theirs)};"
        for d in divergence.step.differences
    )
    document: dict[str, Any] = {
        "id": workload.identity(),
        "rules": list(divergence.known.rules) if divergence.known else [],
        "description": f"oracle divergence against {against} ({semantics}): {text}".strip(";"),
        "profiles": [semantics],
        "store": workload.store(),
        "steps": steps,
    }
    if workload.registries:
        document["registries"] = dict(workload.registries)
    return document


def _key_order(workload: Workload) -> dict[str, int]:
    return {spec.key: position for position, spec in enumerate(workload.images)}


def _listing_expect(listed: Listed, values: Values, workload: Workload) -> dict[str, Any]:
    order = _key_order(workload)
    keys = sorted(
        (values.key_of(image_id) for image_id, _ in listed), key=lambda k: order.get(k, 99)
    )
    return {"images": keys}


def _expectation(
    step: StepResult, core: Mapping[str, Any], values: Values, workload: Workload
) -> dict[str, Any]:
    theirs = step.theirs
    assert theirs is not None
    op = theirs.op
    core_error = core.get("error")
    if op == "exists":
        if theirs.status in ("exists", "missing"):
            return {"exists": theirs.status == "exists"}
        return {"error": core_error or "INTERNAL"}
    if op == "lookup":
        if theirs.found is not None:
            return {"image": values.key_of(theirs.found)}
        return {"error": core_error or "IMAGE_UNKNOWN"}
    if op == "images":
        if theirs.listed is not None:
            return _listing_expect(theirs.listed, values, workload)
        return {"error": core_error or "INTERNAL"}
    expected: dict[str, Any] = {}
    if theirs.status == "ok":
        expected["errors"] = []
    store = step.theirs_store
    if store is not None and not store.problem:
        order = _key_order(workload)
        left = sorted(store.images, key=lambda item: order.get(values.key_of(item[0]), 99))
        expected["store"] = {values.key_of(i): list(names or ()) for i, names in left}
    return expected or {"errors": []}


def save(divergence: Divergence, directory: Path, semantics: str, against: str) -> Path:
    """Write the divergence as a case file in ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    document = case_document(divergence, semantics, against)
    path = directory / f"{document['id']}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the search


@dataclass
class OracleRun:
    """What one run of the oracle found."""

    against: str
    semantics: str
    seed: int
    examples: int = 0  # workloads generated and run
    requests: int = 0
    shrink_runs: int = 0  # workloads run while shrinking
    known: dict[str, list[Divergence]] = field(default_factory=dict)
    failure: Divergence | None = None
    saved: Path | None = None
    elapsed: float = 0.0
    out_of_time: bool = False
    error: str = ""  # the harness itself failed
    save_error: str = ""  # the divergence could not be written to the save directory

    @property
    def ok(self) -> bool:
        """True when every divergence found is a known difference."""
        return self.failure is None and not self.error


class _Unexplained(AssertionError):
    """Raised inside hypothesis for a divergence no known difference explains."""


def run_oracle(
    theirs: Protocol,
    *,
    semantics: str = "podman-4.3",
    examples: int = 50,
    seed: int | None = None,
    max_seconds: float = 180.0,
    known: Sequence[KnownDifference] = (),
    save_dir: Path | None = None,
    ours: Protocol | None = None,
    max_images: int = 4,
    max_steps: int = 4,
    progress: Callable[[str], None] | None = None,
) -> OracleRun:
    """Generate up to ``examples`` workloads, run them on both sides, shrink the first
    unexplained divergence and save it (module docstring).

    The whole run, shrinking included, stops after about ``max_seconds``: once the time
    is up no more workloads run, and the smallest failing workload found so far is the
    one reported. ``seed`` makes the run repeatable (a random one is chosen and reported
    otherwise).
    """
    mine = ours if ours is not None else libimage_protocol()
    chosen_seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    run = OracleRun(theirs.name, semantics, chosen_seed)
    started = time.monotonic()
    deadline = started + max_seconds

    def probe(workload: Workload) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            # Every later example (generated or shrunk) passes at once, so hypothesis
            # ends; the smallest failing workload found so far stays the one reported.
            run.out_of_time = True
            return
        # A command of theirs that hangs is cut off at the time left (a minimum of a
        # second, so that a slow start near the end is not taken for a hang).
        bounded = replace(theirs, timeout=min(theirs.timeout, max(left, 1.0)))
        execution = execute(workload, mine, bounded, semantics=semantics, known=known)
        if time.monotonic() > deadline and _cut_off(execution):
            # A time-out caused by the deadline is not a divergence of theirs.
            run.out_of_time = True
            return
        if run.failure is None:
            run.examples += 1
            run.requests += sum(1 for step in execution.steps if step.index >= 0)
        else:
            run.shrink_runs += 1
        for divergence in execution.divergences:
            if divergence.known is not None:
                run.known.setdefault(divergence.known.id, []).append(divergence)
        unexplained = execution.unexplained
        if unexplained is None:
            return
        if run.failure is None and progress is not None:
            progress(f"divergence after {run.examples} examples; shrinking")
        run.failure = unexplained
        raise _Unexplained(describe_request(unexplained.step.filled))

    test = given(workloads(max_images, max_steps))(probe)
    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )(test)
    test = hypothesis_seed(chosen_seed)(test)
    try:
        test()
    except _Unexplained:
        pass
    except Exception as error:  # reported by the caller, never as a traceback
        if run.failure is None:
            run.error = f"{type(error).__name__}: {error}"
    run.elapsed = time.monotonic() - started
    if run.failure is not None and save_dir is not None:
        try:
            run.saved = save(run.failure, save_dir, semantics, theirs.name)
        except OSError as error:
            run.save_error = f"{save_dir}: cannot save the divergence: {error.strerror}"
    return run


def _cut_off(execution: Execution) -> bool:
    """Whether a command of the other side timed out (exit 124, :func:`run_command`):
    a request, a read of the store (``read exited 124``) or the setup."""
    for step in execution.steps:
        if step.theirs is not None and step.theirs.exit_code == 124:
            return True
        if step.theirs_store is not None and step.theirs_store.problem.startswith(
            "read exited 124"
        ):
            return True
        if any(str(d.theirs).startswith("setup exited 124") for d in step.differences):
            return True
    return False


def replay(
    path: Path,
    theirs: Protocol,
    *,
    semantics: str,
    known: Sequence[KnownDifference] = (),
    ours: Protocol | None = None,
) -> Execution:
    """Run a case file (a saved divergence, or any case of ``spec/cases``) on both sides.

    Raises :class:`~libimage.spec.cases.CaseError` for a file that is not a case and
    :class:`UnsupportedRequest` for a step the protocol cannot express.
    """
    try:
        case = load(path)
    except OSError as error:
        raise CaseError(f"{path}: cannot read: {error.strerror}") from error
    workload = workload_of(case)
    for position, request in enumerate(workload.requests):
        try:
            protocol_request(request)
        except UnsupportedRequest as error:
            raise UnsupportedRequest(f"{path}: steps[{position}]: {error}") from error
    mine = ours if ours is not None else libimage_protocol()
    return execute(workload, mine, theirs, semantics=semantics, known=known)


__all__ = [
    "KNOWN_PODMAN_DIFFERENCES",
    "CaseError",
    "Divergence",
    "Execution",
    "KnownDifference",
    "OracleRun",
    "UnsupportedRequest",
    "Workload",
    "case_document",
    "describe",
    "execute",
    "load_known",
    "replay",
    "run_oracle",
    "workloads",
]
