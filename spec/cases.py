"""Scenario cases: a store, requests, and what the behaviour references say must happen.

Every ``spec/cases/*.json`` file holds one case, taken from a worked example of the
references (LK-10, RM-X1..X14, POD-R-*, FL-R5..R7, …); the expected results are the
references', never our own output. A case is replayed by the pure core
(:func:`replay_core`), by the adapter on a real store written to disk
(:func:`replay_adapter`), and by podman (``tests/differential/test_cases_podman.py``);
the same :func:`mismatches` judges every replay. The naive model replays them as well
(:func:`replay_model`), which checks the model against the references directly.

The format (validated by :func:`load`; an invalid file raises :class:`CaseError`
naming the file and the field)::

    {
      "id": "RM-X5",                      # unique; usually the reference's ID
      "rules": ["RM-X5", "RM-U1"],        # behaviour IDs the case exercises
      "description": "...",
      "profiles": ["seed", "podman-4.3"], # where the expectations hold (default: both)
      "podman": true,                     # replayable by podman (default true), else
      "podman_reason": "...",             # why not
      "registries": {"unqualified-search-registries": [...], "aliases": {...}},
      "store": {
        "images": [                        # in store order
          {"key": "A", "names": ["localhost/foo:latest"],
           "parent": "B",                  # a child of an earlier image (LT-3, LT-4)
           "id_prefix": "140f",            # the ID starts so (core and adapter only)
           "labels": {"color": "red"}, "read_only": false},
          {"key": "L", "names": ["localhost/list:1"],
           "list": [{"image": "A", "os": "linux", "arch": "amd64"}]}
        ],
        "containers": [{"image": "A"}]
      },
      "steps": [                           # run in order; rmi changes the store
        {"request": {"op": "lookup", "name": "foo"},
         "expect": {"image": "A", "resolved": "localhost/foo:latest"},
         "expect_podman": {...}}           # optional: what podman-4.3 does instead
      ]
    }

Requests: ``lookup`` (``name``), ``exists`` (``name``), ``images`` (``filters``,
``names``), ``rmi`` (``names``, ``force``, ``lookup_manifest``, ``filters``).
Expectations: ``{"image": KEY, "resolved": NAME}`` or ``{"error": KIND}`` for
``lookup``; ``{"exists": BOOL}`` or ``{"error": KIND}`` for ``exists``;
``{"images": [KEY, ...]}`` (in order) or ``{"error": KIND}`` for ``images``;
``{"reports": [{"image": KEY, "untagged": [...], "removed": BOOL}], "errors": [KIND,
...], "store": {KEY: [names], ...}}`` for ``rmi`` (``store``: every image left, with
its names). ``KIND`` is an :class:`~libimage.pure.errors.ErrorKind` name. Names,
requests and expectations may use placeholders filled in once the store exists:
``{A}`` or ``{A.id}`` (the full ID), ``{A.id12}``, ``{A.id4}``, ``{A.short}`` (the
shortest prefix no other image shares), ``{A.digest}`` (its manifest digest).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyrsistent import pmap, pvector

from libimage.pure.context import Context, Platform
from libimage.pure.errors import ErrorKind
from libimage.pure.interpret import interpret
from libimage.pure.listing import list_images
from libimage.pure.lookup import LookupOptions, exists, lookup_image
from libimage.pure.plan import RemoveOptions
from libimage.pure.registries import RegistriesConfig
from libimage.pure.remove import plan_removal
from libimage.pure.semantics import PROFILES, Semantics
from libimage.pure.snapshot import Snapshot, StoredImage, image_digest
from libimage.spec.builders import (
    BuiltContainer,
    BuiltImage,
    child_of,
    container,
    hex_id,
    image,
    in_additional_store,
    layer_chain,
    manifest_list,
    snapshot,
)

CASES_DIR = Path(__file__).parent / "cases"
OPS = ("lookup", "exists", "images", "rmi")
HOST = Platform("linux", "amd64")
_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)(?:\.(id|id12|id4|short|digest))?\}")


class CaseError(ValueError):
    """A case file that does not follow the format; the message names the file and field."""


# --------------------------------------------------------------------------- the format


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """One image of a case's store (see the module docstring)."""

    key: str
    names: tuple[str, ...] = ()
    parent: str = ""
    id_prefix: str = ""
    labels: Mapping[str, str] | None = None
    read_only: bool = False
    entries: tuple[tuple[str, Platform], ...] | None = None  # a manifest list's entries


@dataclass(frozen=True, slots=True)
class Step:
    """One request and what must come of it (``expect_podman`` for podman-4.3, if it differs)."""

    request: Mapping[str, Any]
    expect: Mapping[str, Any]
    expect_podman: Mapping[str, Any] | None = None

    def expected(self, semantics: Semantics) -> Mapping[str, Any]:
        """The expectation in this profile (decision 1: the profile's switches decide)."""
        if semantics.name != "seed" and self.expect_podman is not None:
            return self.expect_podman
        return self.expect


@dataclass(frozen=True, slots=True)
class Case:
    """A scenario: a store, requests in order, and their expected outcomes."""

    id: str
    rules: tuple[str, ...]
    description: str
    images: tuple[ImageSpec, ...]
    containers: tuple[str, ...]  # the key of the image each container uses
    steps: tuple[Step, ...]
    profiles: tuple[str, ...] = ("seed", "podman-4.3")
    podman: bool = True
    podman_reason: str = ""
    search_registries: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def registries(self) -> RegistriesConfig:
        return RegistriesConfig(
            unqualified_search_registries=pvector(self.search_registries),
            aliases=pmap(self.aliases),
        )

    def context(self, semantics: Semantics) -> Context:
        return Context(host=HOST, registries=self.registries(), semantics=semantics)


def _field(document: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = document.get(key)
    if not isinstance(value, kind):
        raise CaseError(f"{where}: {key!r} must be {kind}, not {value!r}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CaseError(f"{where}: expected a list of strings, not {value!r}")
    return tuple(value)


def _image_spec(raw: Any, known: set[str], where: str) -> ImageSpec:
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: an image must be an object")
    allowed = {"key", "names", "parent", "id_prefix", "labels", "read_only", "list"}
    unknown = set(raw) - allowed
    if unknown:
        raise CaseError(f"{where}: unknown fields {sorted(unknown)}")
    key = _field(raw, "key", str, where)
    if key in known or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key):
        raise CaseError(f"{where}: image key {key!r} is repeated or not a plain word")
    parent = raw.get("parent", "")
    if parent and parent not in known:
        raise CaseError(f"{where}: parent {parent!r} is not an earlier image")
    entries = None
    if "list" in raw:
        entries_list = []
        for entry in _field(raw, "list", list, where):
            member = entry.get("image") if isinstance(entry, dict) else None
            if member not in known:
                raise CaseError(f"{where}: list entry {entry!r} names no earlier image")
            platform = Platform(entry.get("os", "linux"), entry.get("arch", "amd64"))
            entries_list.append((str(member), platform))
        entries = tuple(entries_list)
    prefix = raw.get("id_prefix", "")
    if not re.fullmatch(r"[0-9a-f]{0,63}", prefix):
        raise CaseError(f"{where}: id_prefix {prefix!r} is not lowercase hex")
    labels = raw.get("labels")
    if labels is not None and not isinstance(labels, dict):
        raise CaseError(f"{where}: labels must be an object")
    return ImageSpec(
        key=key,
        names=_strings(raw.get("names", []), f"{where}.names"),
        parent=parent,
        id_prefix=prefix,
        labels=labels,
        read_only=bool(raw.get("read_only", False)),
        entries=entries,
    )


def _step(raw: Any, where: str) -> Step:
    if not isinstance(raw, dict) or set(raw) - {"request", "expect", "expect_podman"}:
        raise CaseError(f"{where}: a step has 'request', 'expect' and maybe 'expect_podman'")
    request = _field(raw, "request", dict, where)
    op = request.get("op")
    if op not in OPS:
        raise CaseError(f"{where}: request op {op!r} is not one of {OPS}")
    expectations = [_field(raw, "expect", dict, where)]
    if "expect_podman" in raw:
        expectations.append(_field(raw, "expect_podman", dict, where))
    for expected in expectations:
        _check_expectation(op, expected, where)
    return Step(request, expectations[0], expectations[1] if len(expectations) > 1 else None)


_EXPECTED_KEYS = {
    "lookup": ({"image", "resolved"}, {"error"}),
    "exists": ({"exists"}, {"error"}),
    "images": ({"images"}, {"error"}),
    "rmi": ({"reports", "errors", "store"}, set()),
}


def _check_expectation(op: str, expected: Mapping[str, Any], where: str) -> None:
    success, failure = _EXPECTED_KEYS[op]
    keys = set(expected)
    if not (keys <= success or (failure and keys == failure)) or not keys:
        raise CaseError(f"{where}: {op} expects {sorted(success)} or {sorted(failure)}")
    kinds = [expected["error"]] if "error" in expected else list(expected.get("errors", []))
    for kind in kinds:
        if kind not in ErrorKind.__members__:
            raise CaseError(f"{where}: {kind!r} is not an ErrorKind name")


def parse_case(document: Any, source: str = "<case>") -> Case:
    """A :class:`Case` from a decoded JSON document; :class:`CaseError` if it is invalid."""
    if not isinstance(document, dict):
        raise CaseError(f"{source}: a case is a JSON object")
    allowed = {"id", "rules", "description", "profiles", "podman", "podman_reason"}
    allowed |= {"registries", "store", "steps"}
    unknown = set(document) - allowed
    if unknown:
        raise CaseError(f"{source}: unknown fields {sorted(unknown)}")
    case_id = _field(document, "id", str, source)
    store = _field(document, "store", dict, source)
    known: set[str] = set()
    images: list[ImageSpec] = []
    for position, raw in enumerate(store.get("images", [])):
        spec = _image_spec(raw, known, f"{source}: store.images[{position}]")
        known.add(spec.key)
        images.append(spec)
    containers: list[str] = []
    for position, raw in enumerate(store.get("containers", [])):
        if not isinstance(raw, dict) or raw.get("image") not in known:
            raise CaseError(f"{source}: store.containers[{position}] names no image")
        containers.append(str(raw["image"]))
    steps = tuple(
        _step(raw, f"{source}: steps[{position}]")
        for position, raw in enumerate(_field(document, "steps", list, source))
    )
    if not steps:
        raise CaseError(f"{source}: a case needs at least one step")
    profiles = _strings(document.get("profiles", ["seed", "podman-4.3"]), f"{source}.profiles")
    if not set(profiles) <= set(PROFILES):
        raise CaseError(f"{source}: profiles {profiles} are not all in {sorted(PROFILES)}")
    registries = document.get("registries", {})
    if not isinstance(registries, dict):
        raise CaseError(f"{source}: registries must be an object")
    podman = document.get("podman", True)
    if podman is not True and not document.get("podman_reason"):
        raise CaseError(f"{source}: a case podman cannot replay says why (podman_reason)")
    return Case(
        id=case_id,
        rules=_strings(document.get("rules", []), f"{source}.rules"),
        description=str(document.get("description", "")),
        images=tuple(images),
        containers=tuple(containers),
        steps=steps,
        profiles=profiles,
        podman=podman is True,
        podman_reason=str(document.get("podman_reason", "")),
        search_registries=_strings(
            registries.get("unqualified-search-registries", []), f"{source}.registries"
        ),
        aliases=dict(registries.get("aliases", {})),
        source=source,
    )


def load(path: Path) -> Case:
    """The case in one JSON file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise CaseError(f"{path}: not JSON: {error}") from error
    return parse_case(document, str(path))


def load_all(directory: Path = CASES_DIR) -> list[Case]:
    """Every case of ``directory``, sorted by file name; case IDs must be unique."""
    cases = [load(path) for path in sorted(directory.glob("*.json"))]
    ids = [case.id for case in cases]
    if len(ids) != len(set(ids)):
        raise CaseError(f"{directory}: case IDs are not unique: {ids}")
    return cases


# --------------------------------------------------------------------------- placeholders


@dataclass(frozen=True, slots=True)
class Values:
    """The values a case's placeholders stand for, once its store exists."""

    ids: Mapping[str, str]  # image key -> full ID
    digests: Mapping[str, str]  # image key -> manifest digest

    def key_of(self, image_id: str) -> str:
        """The image key of an ID (the ID itself if no image of the case has it)."""
        for key, known in self.ids.items():
            if known == image_id:
                return key
        return image_id

    def fill(self, text: str) -> str:
        """``text`` with every placeholder replaced (see the module docstring)."""

        def value(match: re.Match[str]) -> str:
            key, part = match.group(1), match.group(2) or "id"
            if key not in self.ids:
                return match.group(0)
            image_id = self.ids[key]
            if part == "id12":
                return image_id[:12]
            if part == "id4":
                return image_id[:4]
            if part == "digest":
                return self.digests[key]
            if part == "short":
                others = [other for k, other in self.ids.items() if k != key]
                length = 1
                while any(other.startswith(image_id[:length]) for other in others):
                    length += 1
                return image_id[:length]
            return image_id

        return _PLACEHOLDER.sub(value, text)

    def fill_all(self, value: Any) -> Any:
        """Placeholders filled in every string of a JSON value."""
        if isinstance(value, str):
            return self.fill(value)
        if isinstance(value, list):
            return [self.fill_all(item) for item in value]
        if isinstance(value, dict):
            return {self.fill(k): self.fill_all(v) for k, v in value.items()}
        return value


def build_snapshot(case: Case) -> tuple[Snapshot, Values]:
    """The case's store in memory (builders), and its placeholder values.

    Images are built in order; each image's names may use placeholders of earlier
    images. A child gets one more layer than its parent (LT-4); a read-only image goes
    to additional store 1 with its layers (IP-4).
    """
    built: dict[str, BuiltImage] = {}
    ids: dict[str, str] = {}
    digests: dict[str, str] = {}
    for spec in case.images:
        values = Values(ids, digests)
        names = [values.fill(name) for name in spec.names]
        seed = ("case", case.id, spec.key)
        image_id = None
        if spec.id_prefix:
            image_id = spec.id_prefix + hex_id(*seed)[len(spec.id_prefix) :]
        made: BuiltImage
        if spec.entries is not None:
            made = manifest_list(
                seed,
                names,
                entries=[(built[key], platform) for key, platform in spec.entries],
                image_id=image_id,
            )
        elif spec.parent:
            made = child_of(built[spec.parent], seed, names, image_id=image_id, labels=spec.labels)
        else:
            made = image(
                seed, names, layers=layer_chain(seed), labels=spec.labels, image_id=image_id
            )
        if spec.read_only:
            made = in_additional_store(made)
        built[spec.key] = made
        ids[spec.key] = made.id
        digests[spec.key] = image_digest(made.record)
    users: list[BuiltContainer] = [
        container(("case", case.id, position), built[key])
        for position, key in enumerate(case.containers)
    ]
    return snapshot(list(built.values()), containers=users), Values(ids, digests)


# --------------------------------------------------------------------------- outcomes


Outcome = dict[str, Any]
"""A replay's result in the vocabulary of the expectations (image keys, kind names)."""


def _names_by_key(snap: Snapshot, values: Values) -> dict[str, list[str]]:
    return {values.key_of(i.id): list(i.names) for i in snap.images}


def lookup_outcome(
    image_id: str | None, resolved: str, error: ErrorKind | None, values: Values
) -> Outcome:
    """The outcome of a lookup: the image's key and the resolved name, or the error kind."""
    if error is not None:
        return {"error": error.name}
    assert image_id is not None
    return {"image": values.key_of(image_id), "resolved": resolved}


def request_options(request: Mapping[str, Any]) -> RemoveOptions:
    """The ``RemoveOptions`` of an ``rmi`` request."""
    return RemoveOptions(
        force=bool(request.get("force", False)),
        lookup_manifest=bool(request.get("lookup_manifest", False)),
        filters=pvector(request.get("filters", [])),
    )


def run_step(
    snap: Snapshot, request: Mapping[str, Any], context: Context, values: Values
) -> tuple[Outcome, Snapshot]:
    """One request on an in-memory store: its outcome and the store after it."""
    op = request["op"]
    if op == "lookup":
        result = lookup_image(snap, request["name"], LookupOptions(), context)
        found = result.image.id if result.image is not None else None
        kind = result.failure.kind if result.failure is not None else None
        return lookup_outcome(found, result.resolved_name, kind, values), snap
    if op == "exists":
        answer = exists(snap, request["name"], context)
        if isinstance(answer, bool):
            return {"exists": answer}, snap
        return {"error": answer.kind.name}, snap
    if op == "images":
        listed = list_images(snap, request.get("names", []), request.get("filters", []), context)
        if listed.failure is not None:
            return {"error": listed.failure.kind.name}, snap
        return {"images": [values.key_of(i.id) for i in listed.images]}, snap
    plan = plan_removal(snap, request.get("names", []), request_options(request), context)
    after = interpret(snap, plan)
    return rmi_outcome(plan.reports, [e.kind for e in plan.errors], after, values), after


def rmi_outcome(
    reports: Sequence[Any], errors: Sequence[ErrorKind], after: Snapshot, values: Values
) -> Outcome:
    """The outcome of a removal: reports by key, error kinds, and the store left."""
    return {
        "reports": [
            {"image": values.key_of(r.id), "untagged": list(r.untagged), "removed": r.removed}
            for r in reports
        ],
        "errors": [kind.name for kind in errors],
        "store": _names_by_key(after, values),
    }


def mismatches(expected: Mapping[str, Any], got: Outcome, values: Values) -> list[str]:
    """How ``got`` differs from the expectation (placeholders filled); empty if it does not.

    Only what the expectation states is compared (an ``rmi`` expectation without
    ``store`` says nothing about the store).
    """
    wanted = values.fill_all(dict(expected))
    problems = []
    for key, value in wanted.items():
        if got.get(key) != value:
            problems.append(f"{key}: expected {value!r}, got {got.get(key)!r}")
    return problems


def replay_core(case: Case, semantics: Semantics) -> list[str]:
    """Every step of ``case`` on the pure core (``lookup_image``, ``exists``,
    ``list_images``, ``plan_removal`` + ``interpret``): the mismatches, step by step."""
    snap, values = build_snapshot(case)
    context = case.context(semantics)
    problems: list[str] = []
    for number, step in enumerate(case.steps):
        request = values.fill_all(dict(step.request))
        got, snap = run_step(snap, request, context, values)
        for problem in mismatches(step.expected(semantics), got, values):
            problems.append(f"{case.id} step {number} {request}: {problem}")
    return problems


def replay_model(case: Case, semantics: Semantics) -> list[str]:
    """Every step of ``case`` on the naive model (:mod:`libimage.spec.model`): the model
    answers to the references' examples too, independently of the core."""
    from libimage.spec import model

    snap, values = build_snapshot(case)
    state = model.model_of(snap)
    context = case.context(semantics)
    problems: list[str] = []
    for number, step in enumerate(case.steps):
        request = values.fill_all(dict(step.request))
        op = request["op"]
        got: Outcome
        if op in ("lookup", "exists"):
            answer = (model.lookup_image if op == "lookup" else model.exists)(
                state, request["name"], context
            )
            if isinstance(answer, model.ModelError):
                got = {"error": answer.kind.name}
            elif isinstance(answer, bool):
                got = {"exists": answer}
            else:
                got = lookup_outcome(answer.image.id, answer.resolved, None, values)
        elif op == "images":
            listed = model.list_images(
                state, request.get("filters", []), context, names=request.get("names", [])
            )
            if isinstance(listed, model.ModelError):
                got = {"error": listed.kind.name}
            else:
                got = {"images": [values.key_of(i.id) for i in listed]}
        else:
            state, result = model.remove_images(
                state, request.get("names", []), request_options(request), context
            )
            got = {
                "reports": [
                    {"image": values.key_of(r.id), "untagged": r.untagged, "removed": r.removed}
                    for r in result.reports
                ],
                "errors": [error.kind.name for error in result.errors],
                "store": {values.key_of(i.id): list(i.names) for i in state.images},
            }
        for problem in mismatches(step.expected(semantics), got, values):
            problems.append(f"{case.id} step {number} {request}: {problem}")
    return problems


def replay_adapter(case: Case, semantics: Semantics, directory: Path) -> list[str]:
    """Every step of ``case`` through the adapters, on the case's store written to disk
    under ``directory`` (:func:`~libimage.spec.materialise.materialise`): lookups and
    existence through :class:`~libimage.adapters.runtime.Runtime`, listings of the
    store as read back, removals applied to disk and the store read back afterwards."""
    from libimage.adapters.runtime import Runtime, SystemContext
    from libimage.adapters.store import read_snapshot
    from libimage.spec.materialise import materialise

    snap, values = build_snapshot(case)
    options = materialise(
        snap,
        str(directory / "root"),
        str(directory / "run"),
        [str(directory / "additional")],
    )
    runtime = Runtime(options, SystemContext(), case.registries(), semantics, HOST)
    context = runtime.context()
    problems: list[str] = []
    for number, step in enumerate(case.steps):
        request = values.fill_all(dict(step.request))
        op = request["op"]
        got: Outcome
        if op == "lookup":
            result = runtime.lookup_image(request["name"])
            found = result.image.id if result.image is not None else None
            kind = result.failure.kind if result.failure is not None else None
            got = lookup_outcome(found, result.resolved_name, kind, values)
        elif op == "exists":
            checked = runtime.check_exists(request["name"])
            failure = checked.failure
            got = {"error": failure.kind.name} if failure else {"exists": checked.exists}
        elif op == "images":
            got, _ = run_step(runtime.snapshot(), request, context, values)
        else:
            outcome = runtime.remove_images_outcome(
                request.get("names", []), request_options(request)
            )
            after = read_snapshot(options).snapshot
            got = rmi_outcome(outcome.reports, [e.kind for e in outcome.errors], after, values)
        for problem in mismatches(step.expected(semantics), got, values):
            problems.append(f"{case.id} step {number} {request}: {problem}")
    runtime.shutdown()
    return problems


def stored_image(snap: Snapshot, values: Values, key: str) -> StoredImage:
    """The record of the image ``key`` (for tests that look at a case's store)."""
    return next(i for i in snap.images if i.id == values.ids[key])
