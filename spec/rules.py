"""The index of every rule the executable specification checks, and the checks themselves.

Three kinds of rule ID meet here:

* **behaviour IDs** of the references (``LK-6``, ``RM-U5``, ``SF-D-6``, …): each is
  restated by a function of the naive model (:mod:`libimage.spec.model`), and the
  core is held to it by the agreement checks below;
* **invariant IDs** of the predicates over the core (``INV-LK-*``, ``INV-LS-*``,
  ``INV-IP-1``, ``INV-LT-1``, ``INV-RM-*``), written in
  :mod:`~libimage.spec.invariants_lookup`, :mod:`~libimage.spec.invariants_listing`
  and :mod:`~libimage.spec.invariants_removal`;
* **agreement IDs** (``INV-MD-*``): the optimised core and the naive model give the
  same answer on the same store and request.

:data:`RULES` maps every ID to its statement and to the functions that check it
(dotted names, resolvable with :func:`resolve`). The entry points that run them are

* :func:`check_lookup` (``INV-LK-*``, ``INV-MD-1``, ``INV-MD-2``),
* :func:`check_listing` (``INV-LS-*``, ``INV-IP-1``, ``INV-LT-1``, ``INV-MD-3``),
* :func:`check_removal` (``INV-RM-*``, ``INV-MD-4``, ``INV-MD-5``),

each returning a list of :class:`Violation` (empty when every rule holds). They are
what the stateful machines, the bounded exhaustive check, the mutation check and the
oracle call; each takes an optional ``model`` (the :func:`~libimage.spec.model.model_of`
of the snapshot) so that a caller checking many requests on one store builds it once,
and an optional ``only`` to run a subset of rule IDs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind
from libimage.pure.interpret import interpret
from libimage.pure.lookup import LookupOptions, exists, lookup_image
from libimage.pure.plan import RemovalPlan
from libimage.pure.snapshot import Snapshot
from libimage.spec import invariants_listing, invariants_lookup, invariants_removal, model
from libimage.spec.invariants_listing import ListingCase
from libimage.spec.invariants_removal import RemovalRequest


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: its ID, where it is stated, what it says, and what checks it."""

    id: str
    source: str  # a reference document, or the spec module that states it
    statement: str
    checked_by: tuple[str, ...]  # dotted names of functions (see :func:`resolve`)


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule that does not hold for one request, and why."""

    rule: str
    explanation: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.explanation}"


def resolve(dotted: str) -> object:
    """The object a ``checked_by`` name denotes (``libimage.spec.model.lookup_image``)."""
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


# --------------------------------------------------------------------------- agreement


def _error(kind: ErrorKind | None, subject: str | None) -> str:
    return f"{kind.name if kind else None}({subject!r})"


def lookup_agrees(
    snapshot: Snapshot, name: str, context: Context, naive: model.Model | None = None
) -> str | None:
    """INV-MD-1: ``lookup_image`` finds what the model finds, under the same resolved
    name, or fails with the same kind (and the same subject where the model names one)."""
    naive = model.model_of(snapshot) if naive is None else naive
    expected = model.lookup_image(naive, name, context)
    got = lookup_image(snapshot, name, LookupOptions(), context)
    if isinstance(expected, model.ModelError):
        failure = got.failure
        if failure is None:
            assert got.image is not None
            wanted = _error(expected.kind, expected.subject)
            return f"{name!r}: found {got.image.id[:12]}, the model says {wanted}"
        if failure.kind is not expected.kind or expected.subject not in (None, failure.subject):
            return (
                f"{name!r}: failed with {_error(failure.kind, failure.subject)}, "
                f"the model says {_error(expected.kind, expected.subject)}"
            )
        return None
    if got.image is None:
        assert got.failure is not None
        return (
            f"{name!r}: failed with {_error(got.failure.kind, got.failure.subject)}, the "
            f"model finds {expected.image.id[:12]} as {expected.resolved!r}"
        )
    if (got.image.id, got.resolved_name) != (expected.image.id, expected.resolved):
        return (
            f"{name!r}: found {got.image.id[:12]} as {got.resolved_name!r}, the model finds "
            f"{expected.image.id[:12]} as {expected.resolved!r}"
        )
    return None


def exists_agrees(
    snapshot: Snapshot, name: str, context: Context, naive: model.Model | None = None
) -> str | None:
    """INV-MD-2: ``exists`` answers as the model does (EX-1), or fails with the same kind."""
    naive = model.model_of(snapshot) if naive is None else naive
    expected = model.exists(naive, name, context)
    got = exists(snapshot, name, context)
    expected_answer = expected.kind if isinstance(expected, model.ModelError) else expected
    got_answer = got if isinstance(got, bool) else got.kind
    if got_answer != expected_answer:
        return f"exists({name!r}) is {got_answer}, the model says {expected_answer}"
    return None


def listing_agrees(case: ListingCase, naive: model.Model | None = None) -> str | None:
    """INV-MD-3: ``list_images`` lists what the model lists, in the same order, or fails
    with the same kind."""
    naive = model.model_of(case.snapshot) if naive is None else naive
    expected = model.list_images(
        naive, case.filters, case.context, case.is_external, names=case.names
    )
    got = case.result()
    what = f"names {list(case.names)} filters {list(case.filters)}"
    if isinstance(expected, model.ModelError):
        if got.failure is None or got.failure.kind is not expected.kind:
            found = got.failure.kind if got.failure is not None else "a listing"
            return f"{what}: {found}, the model says {expected.kind.name}"
        return None
    if got.failure is not None:
        return f"{what}: failed with {got.failure.message!r}, the model lists images"
    listed = [(image.id, image.store_index) for image in got.images]
    wanted = [(image.id, image.store) for image in expected]
    if listed != wanted:
        return f"{what}: listed {_short(listed)}, the model lists {_short(wanted)}"
    return None


def _short(items: Sequence[tuple[str, int]]) -> list[str]:
    return [f"{image_id[:12]}@{store}" for image_id, store in items]


Expected = tuple[model.Model, model.Removal]
"""The model's store after a ``RemoveImages`` call, and what the call returned."""


def _expected(request: RemovalRequest, naive: model.Model | None) -> Expected:
    naive = model.model_of(request.snapshot) if naive is None else naive
    return model.remove_images(naive, request.names, request.options, request.context)


def removal_agrees(
    request: RemovalRequest,
    plan: RemovalPlan,
    naive: model.Model | None = None,
    expected: Expected | None = None,
) -> str | None:
    """INV-MD-4: the plan reports, refuses and emits what the model's ``RemoveImages``
    does: the same reports (ID, untagged names, removed, size) in the same order, the
    same errors (kind, and subject where the model names one) in the same order, the
    same events. ``expected`` is the model's answer, when the caller has it already."""
    _, result = _expected(request, naive) if expected is None else expected
    what = f"rmi {list(request.names)}"
    reports = [(r.id, list(r.untagged), r.removed, r.size) for r in plan.reports]
    wanted_reports = [(r.id, r.untagged, r.removed, r.size) for r in result.reports]
    if reports != wanted_reports:
        return f"{what}: reports {reports}, the model reports {wanted_reports}"
    errors = [(e.kind, e.subject) for e in plan.errors]
    wanted_errors = [(e.kind, e.subject) for e in result.errors]
    if len(errors) != len(wanted_errors) or any(
        kind is not wanted_kind or wanted_subject not in (None, subject)
        for (kind, subject), (wanted_kind, wanted_subject) in zip(
            errors, wanted_errors, strict=False
        )
    ):
        return f"{what}: errors {errors}, the model says {wanted_errors}"
    events = [(e.type.value, e.id, e.name) for e in plan.events]
    if events != result.events:
        return f"{what}: events {events}, the model emits {result.events}"
    return None


def removal_store_agrees(
    request: RemovalRequest,
    plan: RemovalPlan,
    naive: model.Model | None = None,
    expected: Expected | None = None,
) -> str | None:
    """INV-MD-5: the store after applying the plan (``interpret``) is the model's store
    after ``RemoveImages``: the same images with the same names and names history, the
    same layers, the same containers, in the same order."""
    after, _ = _expected(request, naive) if expected is None else expected
    got = model.view_of_snapshot(interpret(request.snapshot, plan))
    wanted = model.view_of_model(after)
    if got != wanted:
        return f"rmi {list(request.names)}: the store after is {got}, the model's is {wanted}"
    return None


# --------------------------------------------------------------------------- entry points


def _wanted(rule: str, only: Collection[str] | None) -> bool:
    return only is None or rule in only


def check_lookup(
    snapshot: Snapshot,
    name: str,
    context: Context,
    *,
    naive: model.Model | None = None,
    only: Collection[str] | None = None,
) -> list[Violation]:
    """Every lookup rule on one name: ``INV-LK-*`` (the core's invariants), then
    ``INV-MD-1`` and ``INV-MD-2`` (agreement with the model)."""
    found: list[Violation] = []
    result = invariants_lookup.lookup(snapshot, name, context)
    for invariant in invariants_lookup.INVARIANTS:
        if _wanted(invariant.rule, only):
            problem = invariant.check(snapshot, name, context, result)
            if problem is not None:
                found.append(Violation(invariant.rule, problem))
    agreement: tuple[tuple[str, Callable[..., str | None]], ...] = (
        ("INV-MD-1", lookup_agrees),
        ("INV-MD-2", exists_agrees),
    )
    for rule, check in agreement:
        if _wanted(rule, only):
            problem = check(snapshot, name, context, naive)
            if problem is not None:
                found.append(Violation(rule, problem))
    return found


def check_listing(
    case: ListingCase,
    *,
    naive: model.Model | None = None,
    only: Collection[str] | None = None,
) -> list[Violation]:
    """Every listing rule on one ``ListImages`` call: ``INV-LS-*``, ``INV-IP-1``,
    ``INV-LT-1`` (the core's invariants), then ``INV-MD-3`` (agreement with the model)."""
    found: list[Violation] = []
    for invariant in invariants_listing.INVARIANTS:
        if _wanted(invariant.rule, only):
            problem = invariant.check(case)
            if problem is not None:
                found.append(Violation(invariant.rule, problem))
    if _wanted("INV-MD-3", only):
        problem = listing_agrees(case, naive)
        if problem is not None:
            found.append(Violation("INV-MD-3", problem))
    return found


def check_removal(
    request: RemovalRequest,
    *,
    plan: RemovalPlan | None = None,
    naive: model.Model | None = None,
    only: Collection[str] | None = None,
) -> list[Violation]:
    """Every removal rule on one ``RemoveImages`` call: ``INV-RM-*`` (the core's
    invariants), then ``INV-MD-4`` and ``INV-MD-5`` (agreement with the model)."""
    made = request.plan() if plan is None else plan
    found: list[Violation] = []
    for invariant in invariants_removal.INVARIANTS:
        if _wanted(invariant.rule, only):
            problem = invariant.check(request, made)
            if problem is not None:
                found.append(Violation(invariant.rule, problem))
    if _wanted("INV-MD-4", only) or _wanted("INV-MD-5", only):
        expected = _expected(request, naive)
        for rule, check in (("INV-MD-4", removal_agrees), ("INV-MD-5", removal_store_agrees)):
            if _wanted(rule, only):
                problem = check(request, made, expected=expected)
                if problem is not None:
                    found.append(Violation(rule, problem))
    return found


# --------------------------------------------------------------------------- the index

_MODEL = "libimage.spec.model."
_RULES = "libimage.spec.rules."
_LOOKUP = "behaviour-lookup.md"
_LIST = "behaviour-list-remove.md"
_STORAGE = "storage-format.md"
_DECISIONS = "decisions.md"

_LK = (_RULES + "lookup_agrees", _RULES + "exists_agrees")
_LS = (_RULES + "listing_agrees",)
_RM = (_RULES + "removal_agrees", _RULES + "removal_store_agrees")

# (ID, document, statement, the model's restatement, checks of the core against it)
_BEHAVIOURS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("REF-1", _LOOKUP, "the reference grammar", "parse", _LK),
    ("REF-2", _LOOKUP, "how the domain is split off", "parse", _LK),
    ("REF-3", _LOOKUP, "parse errors, in order", "parse", _LK),
    ("REF-4", _LOOKUP, "digest validation", "parse", _LK),
    ("NORM-1", _LOOKUP, "ParseNormalizedNamed", "parse_normalized_named", _LK),
    ("NORM-2", _LOOKUP, "TagNameOnly", "tag_name_only", _LK),
    ("NORM-3", _LOOKUP, "ParseDockerRef", "parse_docker_ref", _LK),
    ("SN-1", _LOOKUP, "IsShortName", "is_short_name", _LK),
    ("SN-2", _LOOKUP, "short-name candidates, in order", "resolve_locally", _LK),
    ("LN-1", _LOOKUP, "the tag goes when there is a digest", "normalize_tagged_digested", _LK),
    ("LN-2", _LOOKUP, "NormalizeName", "normalize_name", _RM),
    ("LN-4", _LOOKUP, "inRepoTags", "in_repo_tags", _LK),
    ("PLAT-4", _LOOKUP, "the platforms an instance is chosen for", "instance_of", _LK),
    ("ST-2", _LOOKUP, "store.Image: ID, name, unique prefix, per store", "store_image", _LK),
    ("ST-3", _LOOKUP, "an image's digests", "model_of", _LK),
    (
        "ST-4",
        _LOOKUP,
        "listing order: read-write store, then additional stores",
        "listing",
        _LK + _LS,
    ),
    ("TR-3", _LOOKUP, "containers-storage: references", "lookup_image", _LK),
    (
        "TR-4",
        _LOOKUP,
        "the image a storage reference names; resolved name empty",
        "lookup_image",
        _LK,
    ),
    ("LK-2", _LOOKUP, "transport prefix first", "lookup_image", _LK),
    ("LK-3", _LOOKUP, "tag stripping (LN-1)", "lookup_image", _LK),
    ("LK-4", _LOOKUP, "sha256: means by ID", "lookup_image", _LK),
    ("LK-6", _LOOKUP, "the name itself in the store", "lookup_image", _LK),
    ("LK-7", _LOOKUP, "short-name candidates, then docker.io", "lookup_image", _LK),
    ("LK-8", _LOOKUP, "digests and repo tags", "lookup_image", _LK),
    ("LK-9", _LOOKUP, "lookupImageInLocalStorage", "lookup_image", _LK),
    ("ML-4", _LOOKUP, "instance choice", "instance_of", _LK),
    ("ML-5", _LOOKUP, "the local instance", "instance_of", _LK),
    ("EX-1", _LOOKUP, "Exists", "exists", (_RULES + "exists_agrees",)),
    ("DIV-1", _LOOKUP, "podman 4.3: short names before the ID prefix", "lookup_image", _LK),
    ("DIV-2", _LOOKUP, "podman 4.3: sha256: needs 64 hex", "lookup_image", _LK),
    ("DIV-3", _LOOKUP, "podman 4.3: digest matches run the lookup checks", "lookup_image", _LK),
    ("LT-1", _LIST, "the layer tree's nodes", "has_children", _LS + _RM),
    ("LT-2", _LIST, "relations come from the configs", "config_of", _LS + _RM),
    ("LT-3", _LIST, "areParentAndChild", "are_parent_and_child", _LS + _RM),
    ("LT-C1", _LIST, "children of an image without a top layer", "has_children", _LS + _RM),
    ("LT-C2", _LIST, "a top layer without a node has no children", "has_children", _LS),
    ("LT-C3", _LIST, "children on child nodes, then on the own node", "has_children", _LS + _RM),
    ("LT-C4", _LIST, "an unreadable candidate config is the error", "has_children", _LS + _RM),
    ("LT-C5", _LIST, "among empty images the search stops at the first child", "has_children", _LS),
    ("LT-P1", _LIST, "the parent of an image without a top layer", "parent", _RM),
    ("LT-P2", _LIST, "parent candidates: own node, then the parent layer's", "parent", _RM),
    ("LT-P3", _LIST, "an unreadable config while searching the parent", "parent", _RM),
    ("IP-5", _LIST, "dangling: no names, no children", "is_dangling", _LS + _RM),
    ("IP-6", _LIST, "intermediate: no names, some child", "is_intermediate", _LS),
    ("IP-9", _LIST, "the containers of an image", "containers_of", _LS + _RM),
    ("IP-13", _LIST, "the size of an image", "image_size", _RM),
    ("LS-2", _LIST, "names are looked up; the first error aborts", "list_images", _LS),
    ("LS-3", _LIST, "without names, every image in store order", "list_images", _LS),
    ("LS-4", _LIST, "no candidates or no filters: nothing is compiled", "list_images", _LS),
    ("LS-5", _LIST, "filtering keeps the order", "list_images", _LS),
    ("FL-P1", _LIST, "key=value", "_compile", _LS),
    ("FL-P2", _LIST, "supported keys", "_compile", _LS),
    ("FL-P3", _LIST, "the first compilation error aborts", "_compile", _LS),
    ("FL-P4", _LIST, "after and since are one group", "_compile", _LS),
    ("FL-P5", _LIST, "AND across groups, OR within", "list_images", _LS),
    ("FL-P6", _LIST, "single-use keys", "_compile", _LS),
    ("FL-P7", _LIST, "boolean values", "_compile", _LS),
    ("FL-P9", _LIST, "a filter error on a sound image aborts", "list_images", _LS),
    ("FL-T1", _LIST, "after/since: strictly later", "_matches", _LS),
    ("FL-T2", _LIST, "before: strictly earlier", "_matches", _LS),
    ("FL-T4", _LIST, "containers=true/false/external", "_matches", _LS),
    ("FL-T5", _LIST, "dangling", "_matches", _LS),
    ("FL-T6", _LIST, "intermediate", "_matches", _LS),
    ("FL-T7", _LIST, "id: exact", "_matches", _LS),
    ("FL-T8", _LIST, "label", "_matches", _LS),
    ("FL-T9", _LIST, "readonly", "_matches", _LS),
    ("FL-T10", _LIST, "manifest", "_matches", _LS),
    ("FL-T11", _LIST, "reference", "_matches", _LS),
    ("FL-R2", _LIST, "reference candidates of a name", "reference_candidates", _LS),
    ("FL-R3", _LIST, "any candidate of any name", "_matches", _LS),
    ("FL-R4", _LIST, "Go path.Match", "glob_matches", _LS),
    ("POD-F-10", _LIST, "podman 4.3: a repeat with the same value", "_compile", _LS),
    ("POD-F-15", _LIST, "podman 4.3: != negates", "_compile", _LS),
    ("RM-1", _LIST, "RemoveImages(names, options)", "remove_images", _RM),
    ("RM-2", _LIST, "external containers need the callback", "remove_images", _RM),
    ("RM-3", _LIST, "every name looked up first, bundled by ID", "remove_images", _RM),
    ("RM-4", _LIST, "without names: the filtered listing", "remove_images", _RM),
    ("RM-5", _LIST, "nothing collected: only the errors", "remove_images", _RM),
    ("RM-6", _LIST, "each reference of each bundle, in order", "remove_images", _RM),
    ("RM-7", _LIST, "one report per processed image", "remove_images", _RM),
    ("RM-8", _LIST, "lookup errors first, then removal errors", "remove_images", _RM),
    ("RM-D0", _LIST, "read-only images are refused; removed images are done", "_Remover", _RM),
    ("RM-D1", _LIST, "the size, -1 when gone", "image_size", _RM),
    ("RM-D2", _LIST, "deletion: processed, then containers", "_Remover", _RM),
    ("RM-D3", _LIST, "children before the delete", "_Remover", _RM),
    ("RM-D4", _LIST, "parent before the delete", "_Remover", _RM),
    ("RM-D5", _LIST, "DeleteImage; in use is an error", "_Remover", _RM),
    ("RM-D6", _LIST, "every name goes with the record", "_Remover", _RM),
    ("RM-D7", _LIST, "removed only without children", "_Remover", _RM),
    ("RM-D8", _LIST, "dangling parents are pruned", "_Remover", _RM),
    ("RM-D9", _LIST, "force does not remove children", "_Remover", _RM),
    ("RM-U1", _LIST, "no reference or one name: delete", "_Remover", _RM),
    ("RM-U2", _LIST, "by ID, by digest", "_Remover", _RM),
    ("RM-U3", _LIST, "by ID with several names needs force", "_Remover", _RM),
    ("RM-U4", _LIST, "by digest with several names needs force", "_Remover", _RM),
    ("RM-U5", _LIST, "a name is untagged", "_Remover", _RM),
    ("RM-U6", _LIST, "an untag failure is the error", "_Remover", _RM),
    ("RM-U7", _LIST, "with force, by ID or digest deletes", "_Remover", _RM),
    ("RM-T2", _LIST, "the untagged name is normalised", "normalize_name", _RM),
    ("RM-T3", _LIST, "tag not known", "_Remover", _RM),
    ("RM-C1", _LIST, "no force, no external: containers stay", "_Remover", _RM),
    ("RM-C2", _LIST, "the container-removal hook", "_Remover", _RM),
    ("RM-C3", _LIST, "containers listed after the hook", "_Remover", _RM),
    ("RM-C4", _LIST, "without force every container must be external", "_Remover", _RM),
    ("RM-C5", _LIST, "each container is deleted", "_Remover", _RM),
    ("RM-E1", _LIST, "gone images and layers are ignored", "_Remover", _RM),
    ("EV-2", _LIST, "remove events, parent first", "_Remover", _RM),
    ("EV-3", _LIST, "untag events", "_Remover", _RM),
    ("EV-4", _LIST, "podman 4.3: untag events on delete", "_Remover", _RM),
    ("SF-N-3", _STORAGE, "SetNames", "set_names", _RM),
    ("SF-D-3", _STORAGE, "an image in use is not deleted", "_Remover", _RM),
    ("SF-D-6", _STORAGE, "the layers an image deletion frees", "layers_freed", _RM),
    ("SF-D-7", _STORAGE, "deletion stops at an unknown layer", "layers_freed", _RM),
    ("SF-D-C", _STORAGE, "a container goes with its layer", "delete_container", _RM),
    ("ST-1", _LOOKUP, "read-write records come before the additional stores", "add_container", _RM),
    ("TR-2", _LOOKUP, "other transports are refused", "lookup_image", _LK),
    ("LK-1", _LOOKUP, "the internal flags of removal", "LookupFlags", _RM),
    ("LK-5", _LOOKUP, "platform options (none in the model's scope)", "lookup_image", _LK),
    ("IP-11", _LIST, "a manifest list by its media type", "model_of", _LS),
    ("LN-3", _LOOKUP, "name/tag pairs of stored names", "in_repo_tags", _LK),
    ("ML-1", _LOOKUP, "which images are manifest lists", "model_of", _LK + _LS),
    ("RLK-7", _LIST, "removal resolves a list to its instance, or the list", "_lookup_flags", _RM),
    ("IP-3", _LIST, "names history, newest first", "set_names", _RM),
    ("RM-R1", _LIST, "report: ID", "Report", _RM),
    ("RM-R2", _LIST, "report: untagged names, in order", "Report", _RM),
    ("RM-R3", _LIST, "report: removed", "Report", _RM),
    ("RM-R4", _LIST, "report: size", "Report", _RM),
    ("SF-N-2", _STORAGE, "a new image's names are free", "add_image", _RM),
    ("SF-N-5", _STORAGE, "tagging and untagging are SetNames", "tag", _RM),
    ("SF-D-2", _STORAGE, "only read-write images are deleted", "_Remover", _RM),
    ("SF-D-4", _STORAGE, "the deletion sees the other images and layers", "_Remover", _RM),
    ("SF-D-5", _STORAGE, "the record goes", "_Remover", _RM),
    ("SF-D-11", _STORAGE, "a layer's deletion", "delete_layer", _RM),
    ("decision 3", _DECISIONS, "fixed orders: digests, filter groups", "list_images", _LS),
    ("decision 10", _DECISIONS, "records with bad IDs (outside the model)", "model_of", ()),
    ("decision 16", _DECISIONS, "rmi --force and unknown names, per profile", "remove_images", _RM),
    (
        "decision 19",
        _DECISIONS,
        "podman's containers are not removed from storage",
        "_Remover",
        _RM,
    ),
)


def _invariant_rules() -> tuple[Rule, ...]:
    rules: list[Rule] = []
    modules = (invariants_lookup, invariants_listing, invariants_removal)
    for module in modules:
        for invariant in module.INVARIANTS:
            check = invariant.check
            rules.append(
                Rule(
                    invariant.rule,
                    module.__name__,
                    invariant.statement,
                    (f"{module.__name__}.{check.__name__}",),
                )
            )
    return tuple(rules)


_AGREEMENTS = (
    Rule("INV-MD-1", __name__, "lookup agrees with the model", (_RULES + "lookup_agrees",)),
    Rule("INV-MD-2", __name__, "exists agrees with the model", (_RULES + "exists_agrees",)),
    Rule("INV-MD-3", __name__, "listing agrees with the model", (_RULES + "listing_agrees",)),
    Rule(
        "INV-MD-4",
        __name__,
        "removal reports, errors and events agree with the model",
        (_RULES + "removal_agrees",),
    ),
    Rule(
        "INV-MD-5",
        __name__,
        "the store after a removal agrees with the model",
        (_RULES + "removal_store_agrees",),
    ),
)

RULES: tuple[Rule, ...] = (
    *(
        Rule(rule_id, source, statement, (_MODEL + function, *checks))
        for rule_id, source, statement, function, checks in _BEHAVIOURS
    ),
    *_invariant_rules(),
    *_AGREEMENTS,
)
"""Every rule ID the specification checks, behaviour IDs first, then invariants."""


def rule(rule_id: str) -> Rule:
    """The rule with this ID (``KeyError`` if there is none)."""
    for candidate in RULES:
        if candidate.id == rule_id:
            return candidate
    raise KeyError(rule_id)
