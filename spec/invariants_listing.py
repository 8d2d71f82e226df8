"""Listing invariants as plain predicates (issue #4, "What it must show").

Each invariant checks one :class:`ListingCase` (a snapshot, the names and filters of
a ``ListImages`` call, the context and the external-container predicate) and
returns ``None`` when it holds, else a one-line explanation. Rule IDs are stable;
each cites the behaviour IDs it rests on.

Properties that are false for the seed are stated in their true form:

* filter order does not change *which* images match, but it may change *whether*
  a listing fails: groups and filters stop early (FL-P5), so a filter that would
  fail on an image may never run in one order and run in another, and compilation
  reports the first bad filter (FL-P3). Decision 3 fixes one order; these
  predicates compare results only when both listings succeed;
* a filter's verdict on an image does not depend on the other images listed with it
  (only on the snapshot), which is what "a pure predicate" means here.

Only the pure core's public functions and the snapshot's records are used; no test
framework is imported, so the oracle can reuse these predicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from libimage.pure import facts
from libimage.pure.context import Context
from libimage.pure.errors import Failure
from libimage.pure.filters import IsExternal, filter_images, is_dangling, is_intermediate
from libimage.pure.listing import ListResult, list_images
from libimage.pure.lookup import LookupOptions, lookup_image
from libimage.pure.snapshot import Snapshot, StoredImage


@dataclass(frozen=True, slots=True)
class ListingCase:
    """One ``ListImages`` call: its inputs; :meth:`result` runs it."""

    snapshot: Snapshot
    filters: tuple[str, ...]
    context: Context
    names: tuple[str, ...] = ()
    is_external: IsExternal | None = field(default=None, compare=False)

    def result(self) -> ListResult:
        return list_images(self.snapshot, self.names, self.filters, self.context, self.is_external)

    def with_filters(self, filters: Sequence[str]) -> ListingCase:
        return ListingCase(
            self.snapshot, tuple(filters), self.context, self.names, self.is_external
        )


Check = Callable[[ListingCase], "str | None"]


@dataclass(frozen=True, slots=True)
class Invariant:
    """One listing invariant: a stable rule ID, the behaviours it cites, the predicate."""

    rule: str
    cites: tuple[str, ...]
    statement: str
    check: Check


def _ids(images: Sequence[StoredImage]) -> list[tuple[str, int]]:
    return [(image.id, image.store_index) for image in images]


def _candidates(case: ListingCase) -> list[StoredImage] | Failure:
    """What ListImages filters: the looked-up images, or every image (LS-2, LS-3)."""
    if not case.names:
        return list(case.snapshot.images)
    found: list[StoredImage] = []
    for name in case.names:
        result = lookup_image(case.snapshot, name, LookupOptions(), case.context)
        if result.image is None:
            assert result.failure is not None
            return result.failure
        found.append(result.image)
    return found


# --------------------------------------------------------------------------- predicates


def order_independent(case: ListingCase) -> str | None:
    """INV-LS-1: reversing the filters never changes the images of two successful listings."""
    forward = case.result()
    backward = case.with_filters(list(reversed(case.filters))).result()
    if forward.failure is None and backward.failure is None and forward.images != backward.images:
        return f"filters {list(case.filters)} and their reverse list different images"
    return None


def idempotent(case: ListingCase) -> str | None:
    """INV-LS-2: filtering a listing's result again with the same filters changes nothing."""
    first = case.result()
    if first.failure is not None:
        return None
    again = filter_images(
        case.snapshot, list(first.images), case.filters, case.context, case.is_external
    )
    if again.failure is not None:
        return f"filtering the result again failed: {again.failure.message}"
    if again.images != first.images:
        return "filtering the result again dropped images"
    return None


def keeps_input_order(case: ListingCase) -> str | None:
    """INV-LS-3: the result is a subsequence of the candidates, in their order (LS-5)."""
    listed = case.result()
    candidates = _candidates(case)
    if isinstance(candidates, Failure) or listed.failure is not None:
        return None
    remaining = iter(_ids(candidates))
    for wanted in _ids(listed.images):
        if not any(wanted == candidate for candidate in remaining):
            return f"{wanted[0][:12]} is out of order or not a candidate"
    return None


def per_image_verdicts(case: ListingCase) -> str | None:
    """INV-LS-4: each image's verdict does not depend on the other images listed.

    Filtering the candidates one by one and concatenating gives the listing, when
    the listing succeeds (a filter is a pure predicate of the image and the snapshot).
    """
    listed = case.result()
    candidates = _candidates(case)
    if isinstance(candidates, Failure) or listed.failure is not None:
        return None
    one_by_one: list[StoredImage] = []
    for image in candidates:
        alone = filter_images(case.snapshot, [image], case.filters, case.context, case.is_external)
        if alone.failure is not None:
            return f"{image.id[:12]} alone fails: {alone.failure.message}"
        one_by_one.extend(alone.images)
    if _ids(one_by_one) != _ids(listed.images):
        return "filtering image by image differs from filtering the list"
    return None


def names_are_lookups(case: ListingCase) -> str | None:
    """INV-LS-5: listing names (no filters) is looking each name up, in order (LS-2).

    The result is every found image, duplicates kept; or the first lookup failure.
    """
    if not case.names:
        return None
    listed = list_images(case.snapshot, case.names, (), case.context)
    candidates = _candidates(case)
    if isinstance(candidates, Failure):
        if listed.failure != candidates:
            return f"expected the first lookup failure {candidates.message!r}"
        return None
    if listed.failure is not None:
        return f"listing failed although every name was found: {listed.failure.message}"
    if _ids(listed.images) != _ids(candidates):
        return "listing names differs from looking each name up"
    return None


def empty_candidates_never_fail(case: ListingCase) -> str | None:
    """INV-LS-6: with no candidates the filters are never compiled (LS-4)."""
    empty = Snapshot(layers=case.snapshot.layers)
    listed = list_images(empty, (), case.filters, case.context, case.is_external)
    if listed.failure is not None or listed.images:
        return "an empty store gave an error or images"
    return None


def dangling_and_intermediate_agree(case: ListingCase) -> str | None:
    """INV-IP-1: dangling ⇔ no names ∧ no children; intermediate ⇔ no names ∧ children.

    Checked against the full children list (LT-C*, decision 4) where it can be
    computed; the two are never both true (IP-5, IP-6). When the full list fails
    (a candidate's config, LT-C4) the booleans may still succeed, because among
    empty images they stop at the first child (LT-C5); no claim is made then.
    """
    for image in case.snapshot.images:
        dangling = is_dangling(case.snapshot, image)
        intermediate = is_intermediate(case.snapshot, image)
        if image.names:
            if dangling is not False or intermediate is not False:
                return f"named image {image.id[:12]} is dangling or intermediate"
            continue
        kids = facts.children(case.snapshot, image)
        if isinstance(kids, Failure):
            continue
        if dangling is not (not kids) or intermediate is not bool(kids):
            return (
                f"{image.id[:12]}: dangling={dangling} intermediate={intermediate} "
                f"children={len(kids)}"
            )
    return None


def parent_chains_end(case: ListingCase) -> str | None:
    """INV-LT-1: following ``parent()`` from any image ends, without visiting an image twice."""
    snapshot = case.snapshot
    for image in snapshot.images:
        seen: set[tuple[str, int]] = set()
        current: StoredImage | None = image
        while current is not None:
            key = (current.id, current.store_index)
            if key in seen:
                return f"parent chain from {image.id[:12]} returns to {current.id[:12]}"
            seen.add(key)
            found = facts.parent(snapshot, current)
            current = None if isinstance(found, Failure) else found
    return None


INVARIANTS = (
    Invariant(
        "INV-LS-1",
        ("FL-P4", "FL-P5", "decision 3"),
        "the order of the filters does not change which images match",
        order_independent,
    ),
    Invariant("INV-LS-2", ("FL-P5", "LS-5"), "filtering is idempotent", idempotent),
    Invariant("INV-LS-3", ("LS-5", "LS-2", "LS-3"), "the input order is kept", keeps_input_order),
    Invariant(
        "INV-LS-4",
        ("FL-P5", "FL-P9"),
        "a filter is a pure predicate of one image and the snapshot",
        per_image_verdicts,
    ),
    Invariant("INV-LS-5", ("LS-2",), "listing names is looking each name up", names_are_lookups),
    Invariant(
        "INV-LS-6",
        ("LS-4",),
        "an empty listing never compiles filters",
        empty_candidates_never_fail,
    ),
    Invariant(
        "INV-IP-1",
        ("IP-5", "IP-6", "LT-C1", "LT-C3", "decision 4"),
        "dangling and intermediate follow their definitions",
        dangling_and_intermediate_agree,
    ),
    Invariant("INV-LT-1", ("LT-P1", "LT-P2", "LT-3"), "parent chains end", parent_chains_end),
)


def violations(case: ListingCase) -> list[tuple[str, str]]:
    """Every invariant that ``case`` breaks, as (rule, explanation)."""
    found: list[tuple[str, str]] = []
    for invariant in INVARIANTS:
        problem = invariant.check(case)
        if problem is not None:
            found.append((invariant.rule, problem))
    return found


# --------------------------------------------------------------------------- inputs


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
    "containers=external",
    "label=a",
    "label=b=1",
    "label=a=2",
    "label=*",
    "reference=foo",
    "reference=*",
    "reference=localhost/*",
    "reference=quay.io/*/foo:*",
    "reference=[",
    "until=0",
    "until=1h",
    "until=2023-11-16",
    "id=",
    "reference!=foo",
    "label!=a",
    "dangling!=true",
    "foo=bar",
    "dangling=maybe",
    "label",
)
"""Filters worth trying on any generated snapshot: every key, ``!=``, invalid ones."""


def filter_pool(snapshot: Snapshot) -> list[str]:
    """:data:`FIXED_FILTERS` plus ``id``, ``since``, ``after``, ``before`` for stored images."""
    pool = list(FIXED_FILTERS)
    for image in snapshot.images[:3]:
        pool.append(f"id={image.id}")
        pool.append(f"since={image.id}")
        pool.append(f"before={image.id[:12]}")
        if image.names:
            pool.append(f"after={image.names[0]}")
    pool.append("since=nothere")
    return pool


def name_pool(snapshot: Snapshot) -> list[str]:
    """Names worth listing: stored names, IDs, prefixes, and names that are not there."""
    pool = ["foo", "nothere", "0", "a"]
    for image in snapshot.images:
        pool.extend(image.names)
        pool.append(image.id)
        pool.append(image.id[:4])
    return pool


def odd_containers_are_external(container_id: str) -> bool:
    """A fixed ``IsExternalContainerFunc`` for generated stores: odd last hex digit."""
    return container_id[-1:] in "13579bdf"
