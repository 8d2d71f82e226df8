"""Lookup invariants as plain predicates (issue #3, "What it must show").

Each invariant is a predicate over ``(snapshot, name, context, result)``, where
``result`` is ``lookup_image(snapshot, name, LookupOptions(), context)``; it returns
``None`` when the invariant holds and a one-line explanation when it does not.
Predicates that speak about other queries (``exists``, ``resolve_name``, a reordered
snapshot) compute them themselves. Rule IDs are stable; each cites the behaviour IDs
it rests on.

Where an intuitive property is false for the seed, the predicate states the true
one and the exceptions are pinned by unit tests: a name found through an ID prefix
resolves to a normalised name that may find another image or none (RN-1: ``140f`` →
``localhost/140f:latest``), and ``containers-storage:`` names resolve to
``localhost/containers-storage:…`` (TR-4 gives them an empty resolved name).

These predicates use only the pure core's public functions and the snapshot's
records; they import no test framework, so the oracle can reuse them.
"""

# Every predicate takes the same four arguments, whether it needs them all or not.
# ruff: noqa: ARG001

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pyrsistent import pvector

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.lookup import (
    LookupOptions,
    LookupResult,
    StepOutcome,
    exists,
    lookup_image,
    resolve_name,
)
from libimage.pure.manifest import (
    MANIFEST_KEY,
    guess_mime_type,
    is_corrupted,
    is_manifest_list,
    is_multi_image,
)
from libimage.pure.reference import in_repo_tags, parse, tag_name_only
from libimage.pure.snapshot import (
    Snapshot,
    StoredImage,
    Unreadable,
    find_in_store,
    image_digests,
    is_full_id,
)

Predicate = Callable[[Snapshot, str, Context, LookupResult], "str | None"]


@dataclass(frozen=True, slots=True)
class Invariant:
    """One lookup invariant: a stable rule ID, the behaviours it cites, the predicate."""

    rule: str
    cites: tuple[str, ...]
    statement: str
    check: Predicate


def lookup(snapshot: Snapshot, name: str, context: Context) -> LookupResult:
    """The lookup every invariant is about: no options (``LookupImage(name, nil)``)."""
    return lookup_image(snapshot, name, LookupOptions(), context)


# --------------------------------------------------------------------------- facts


def list_entry_digests(snapshot: Snapshot, image: StoredImage) -> frozenset[str] | None:
    """The instance digests a manifest-list image names, or None if it is no list (ML-1).

    Read straight from the ``manifest`` item with a plain JSON reader: the invariant
    must not lean on the code it checks.
    """
    data = snapshot.content.big_data(image, MANIFEST_KEY)
    if isinstance(data, Unreadable) or not is_multi_image(guess_mime_type(data)):
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return frozenset()
    entries = document.get("manifests") if isinstance(document, dict) else None
    digests = {
        entry["digest"]
        for entry in entries or ()
        if isinstance(entry, dict) and isinstance(entry.get("digest"), str)
    }
    return frozenset(digests)


def cannot_be_classified(snapshot: Snapshot, image: StoredImage) -> bool:
    """The image's manifest type cannot be read for a reason other than a missing item."""
    listed = is_manifest_list(snapshot, image)
    return isinstance(listed, Unreadable) and not listed.missing


def is_instance_of(snapshot: Snapshot, found: StoredImage, list_image: StoredImage) -> bool:
    """``found`` carries a digest that the manifest list ``list_image`` names (ML-5)."""
    entries = list_entry_digests(snapshot, list_image)
    return entries is not None and bool(entries & set(image_digests(found)))


def finds_image_or_instance(
    snapshot: Snapshot, result: LookupResult, expected: StoredImage
) -> str | None:
    """The result is ``expected``, or for a manifest list one of its instances, or a
    failure that only a list or an unreadable manifest type can cause (ML-4, ML-5, LK-9)."""
    entries = list_entry_digests(snapshot, expected)
    if result.image is not None:
        if result.image.id == expected.id:
            return None
        if entries is not None and is_instance_of(snapshot, result.image, expected):
            return None
        return f"found {result.image.id}, expected {expected.id} or an instance of it"
    if entries is not None or cannot_be_classified(snapshot, expected):
        return None
    assert result.failure is not None
    return f"expected {expected.id}, got the failure {result.failure.message!r}"


def store_ids(snapshot: Snapshot) -> dict[int, tuple[str, ...]]:
    """Each store's distinct IDs, sorted (ST-2's prefix search space)."""
    ids: dict[int, set[str]] = {}
    for image in snapshot.images:
        ids.setdefault(image.store_index, set()).add(image.id)
    return {store: tuple(sorted(values)) for store, values in ids.items()}


def ids_with_prefix(ids: Sequence[str], prefix: str) -> int:
    start = bisect_left(ids, prefix)
    count = 0
    while start + count < len(ids) and ids[start + count].startswith(prefix):
        count += 1
    return count


def is_ambiguous_prefix(snapshot: Snapshot, prefix: str) -> bool:
    """No store has exactly one ID starting with ``prefix``, and some store has several."""
    counts = [ids_with_prefix(ids, prefix) for ids in store_ids(snapshot).values()]
    return bool(prefix) and 1 not in counts and any(count > 1 for count in counts)


def unique_prefix_image(snapshot: Snapshot, prefix: str) -> StoredImage | None:
    """The image ST-2 resolves ``prefix`` to when it is only an ID prefix (no ID, no name)."""
    if not prefix or is_full_id(prefix):
        return None
    for image in snapshot.images:
        if prefix in image.names:
            return None
    return find_in_store(snapshot, prefix)


def repo_tag_owners(snapshot: Snapshot, name: str) -> set[str]:
    """IDs of the images with a stored name the repo-tag search (LN-4) matches for ``name``."""
    try:
        query = tag_name_only(parse(name))
    except LibimageError:
        return set()
    if query.digest or not query.tag:
        return set()
    return {image.id for image in snapshot.images if in_repo_tags(image.names, query) is not None}


def shares_name_digest_or_id(snapshot: Snapshot) -> bool:
    """Two records share a stored name, a digest or an ID (ties decided by store order)."""
    seen_names: set[str] = set()
    seen_digests: set[str] = set()
    seen_ids: set[str] = set()
    for image in snapshot.images:
        if image.id in seen_ids:
            return True
        seen_ids.add(image.id)
        digests = set(image_digests(image))
        if seen_names & set(image.names) or seen_digests & digests:
            return True
        seen_names.update(image.names)
        seen_digests.update(digests)
    return False


def reversed_within_stores(snapshot: Snapshot) -> Snapshot:
    """The same records with each store's images in reverse order (a fresh memo)."""
    return reordered(snapshot, list(reversed(range(len(snapshot.images)))))


def reordered(snapshot: Snapshot, permutation: Sequence[int]) -> Snapshot:
    """The records in ``permutation`` order, kept grouped by store (ST-4), fresh memo."""
    records = [snapshot.images[position] for position in permutation]
    records.sort(key=lambda record: record.store_index)
    return replace(snapshot, images=pvector(records))


def outcome(result: LookupResult) -> tuple[str, str, ErrorKind | None, str]:
    """What a caller sees of a lookup: image ID, resolved name, failure kind and text."""
    return (
        result.image.id if result.image is not None else "",
        result.resolved_name,
        result.failure.kind if result.failure is not None else None,
        result.failure.message if result.failure is not None else "",
    )


# --------------------------------------------------------------------------- predicates


def full_id_finds_its_image(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-1: a stored full ID finds its image, or the instance its list chooses."""
    if not is_full_id(name):
        return None
    expected = find_in_store(snapshot, name)
    if expected is None:
        if result.image is not None and result.image.id.startswith(name):
            return f"{name} is not stored, yet {result.image.id} was found by it"
        return None
    return finds_image_or_instance(snapshot, result, expected)


def ambiguous_prefix_finds_nothing_by_prefix(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-2: an ambiguous ID prefix never finds an image as an ID prefix (ST-2)."""
    if not is_ambiguous_prefix(snapshot, name):
        return None
    for step in result.trace:
        if step.candidate == name and step.outcome is StepOutcome.FOUND:
            return f"the ambiguous prefix {name} found {step.image_id}"
    return None


def unique_prefix_finds_its_image(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-3: in the seed, a unique ID prefix finds its image (LK-6; not so in DIV-1)."""
    if context.semantics.short_names_before_id_prefix:
        return None
    expected = unique_prefix_image(snapshot, name)
    if expected is None:
        return None
    return finds_image_or_instance(snapshot, result, expected)


def stored_name_finds_its_image(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-4: a stored name finds the image that holds it (ST-2), or its instance."""
    owner = find_in_store(snapshot, name)
    if owner is None or name not in owner.names:
        return None
    return finds_image_or_instance(snapshot, result, owner)


def deterministic(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-5: the same lookup on the same records gives the same result, trace included."""
    again = lookup(replace(snapshot), name, context)
    if again != result:
        return f"a second lookup of {name!r} gave {outcome(again)}, first {outcome(result)}"
    return None


def independent_of_store_order(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-6: without shared names, digests or IDs (and no two images matching the
    repo-tag search), store order does not change the outcome (ST-2, ST-4, LK-8)."""
    if shares_name_digest_or_id(snapshot) or len(repo_tag_owners(snapshot, name)) > 1:
        return None
    other = lookup(reversed_within_stores(snapshot), name, context)
    if outcome(other) != outcome(result):
        return f"reversed store order gave {outcome(other)}, stored order {outcome(result)}"
    return None


def exists_agrees_with_lookup(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-7: ``exists`` is the lookup's answer, except for corrupted images (EX-1)."""
    answer = exists(snapshot, name, context)
    failure = result.failure
    if failure is not None and failure.kind is not ErrorKind.IMAGE_UNKNOWN:
        return None if answer == failure else f"exists gave {answer!r}, lookup {failure}"
    if result.image is None:
        return None if answer is False else f"exists gave {answer!r} for an unknown image"
    corrupted = is_corrupted(snapshot, result.image, name) is not None
    if answer is (not corrupted):
        return None
    return f"exists gave {answer!r}; the image is {'' if corrupted else 'not '}corrupted"


def resolved_stored_name_finds_same_image(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-8: a name found through a stored name resolves to that name, which finds
    the same image (RN-1). Names found by ID, ID prefix or ``containers-storage:`` are
    exempt: they resolve to ``NormalizeName`` (pinned counter-examples)."""
    image, resolved = result.image, result.resolved_name
    if image is None or not resolved or image.id.startswith(resolved):
        return None
    owner = find_in_store(snapshot, resolved)
    if owner is None or resolved not in owner.names:
        return None
    answer = resolve_name(snapshot, name, context)
    if isinstance(answer, Failure) or answer != resolved:
        return f"resolve_name({name!r}) gave {answer!r}, the lookup resolved {resolved!r}"
    again = lookup(snapshot, answer, context)
    if again.image is None or again.image.id != image.id:
        return f"{answer!r} finds {outcome(again)}, {name!r} found {image.id}"
    return None


def trace_ends_in_result(
    snapshot: Snapshot, name: str, context: Context, result: LookupResult
) -> str | None:
    """INV-LK-9: the trace's last step names the returned image, or carries the failure."""
    if not result.trace:
        return "the trace is empty"
    last = result.trace[-1]
    if result.image is not None:
        if last.outcome is StepOutcome.CHOSEN and last.image_id == result.image.id:
            return None
        return f"the last step {last} does not name {result.image.id}"
    assert result.failure is not None
    if last.outcome is StepOutcome.ERROR and last.detail == result.failure.message:
        return None
    return f"the last step {last} does not carry {result.failure.message!r}"


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "INV-LK-1",
        ("ST-2", "LK-6", "DIV-1", "ML-4", "ML-5"),
        "a stored full ID finds its image, or for a manifest list the chosen instance",
        full_id_finds_its_image,
    ),
    Invariant(
        "INV-LK-2",
        ("ST-2", "LK-6", "LK-9"),
        "an ambiguous ID prefix never finds an image as an ID prefix",
        ambiguous_prefix_finds_nothing_by_prefix,
    ),
    Invariant(
        "INV-LK-3",
        ("ST-2", "LK-6"),
        "in the seed profile a unique ID prefix finds its image (or instance)",
        unique_prefix_finds_its_image,
    ),
    Invariant(
        "INV-LK-4",
        ("ST-2", "LK-6", "LK-7", "SN-2"),
        "every stored name finds the image holding it (or its instance)",
        stored_name_finds_its_image,
    ),
    Invariant(
        "INV-LK-5",
        ("LK-2", "LK-11"),
        "lookup is deterministic",
        deterministic,
    ),
    Invariant(
        "INV-LK-6",
        ("ST-2", "ST-4", "LK-8", "LN-4", "ML-5"),
        "without shared names, digests or IDs the store order does not matter",
        independent_of_store_order,
    ),
    Invariant(
        "INV-LK-7",
        ("EX-1", "LK-11"),
        "exists agrees with lookup except for corrupted images",
        exists_agrees_with_lookup,
    ),
    Invariant(
        "INV-LK-8",
        ("RN-1", "LN-2"),
        "a name found through a stored name resolves to it, and it finds the same image",
        resolved_stored_name_finds_same_image,
    ),
    Invariant(
        "INV-LK-9",
        ("LK-2", "LK-9"),
        "the trace's last step names the returned image (or the failure)",
        trace_ends_in_result,
    ),
)


def violations(snapshot: Snapshot, name: str, context: Context) -> list[tuple[str, str]]:
    """Every invariant's verdict on one lookup: ``(rule, explanation)`` for each violation."""
    result = lookup(snapshot, name, context)
    found: list[tuple[str, str]] = []
    for invariant in INVARIANTS:
        problem = invariant.check(snapshot, name, context, result)
        if problem is not None:
            found.append((invariant.rule, problem))
    return found


# --------------------------------------------------------------------------- queries

SHORT_QUERIES = ("foo", "foo:v2", "bar:1", "x/foo", "library/foo", "nothere", "0", "0a", "0ab", "a")
"""Short names and hex strings that meet the generators' name and ID pools."""


def lookup_queries(snapshot: Snapshot) -> list[str]:
    """The names worth looking up in ``snapshot``, deduplicated, in a fixed order.

    Stored names and their short forms, full IDs with and without ``sha256:``, ID
    prefixes of several lengths, digests under a foreign repository name,
    ``containers-storage:`` names, and :data:`SHORT_QUERIES`.
    """
    queries: list[str] = list(SHORT_QUERIES)
    for image in snapshot.images:
        for stored in image.names:
            queries.append(stored)
            queries.append(f"containers-storage:{stored}")
            registry, _slash, rest = stored.partition("/")
            if "." in registry or registry == "localhost":
                queries.append(rest)
        queries += [image.id, f"sha256:{image.id}", f"containers-storage:{image.id}"]
        queries += [image.id[:length] for length in (1, 2, 3, 4, 12)]
        queries.append(f"sha256:{image.id[:4]}")
        queries += [f"whatever@{digest}" for digest in image_digests(image)]
    return list(dict.fromkeys(queries))
