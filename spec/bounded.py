"""Bounded exhaustive checking: every store within a small scope, every request within it.

No randomness: :func:`stores` enumerates every store of the scope below, in a fixed
order, and :func:`removal_requests` every removal request of the scope on a store.
:func:`check_all` runs :func:`libimage.spec.rules.check_removal` (every removal
invariant, ``INV-RM-1..8``, and agreement with the naive model, ``INV-MD-4``,
``INV-MD-5``) on each pair and counts what it covered.

**The store scope** (:data:`SCOPE`):

* up to three images ``I0``, ``I1``, ``I2``, built the way podman builds them (one
  layer each, LT-4), with IDs sharing first hex digits (``a1…``, ``a2…``, ``b…``: the
  prefix ``a`` is ambiguous, ``a1`` is not, ST-2);
* every parent relation: ``I1`` is a base image or a child of ``I0``; ``I2`` is a base
  image or a child of ``I0`` or of ``I1``; a child either adds a layer (LT-4) or only
  a history entry on the same top layer (LT-5);
* every assignment of the two names ``localhost/foo:latest`` and ``localhost/foo:v2``
  (one repository, so short names collide, RM-X5) to at most one image each, so that
  images have zero, one or two names;
* at most one storage container, on any image (RM-C*, SF-D-3);
* with and without a manifest list ``localhost/list:1`` whose one entry is ``I0``'s
  manifest for linux/amd64 (RLK-7, ML-4, ML-5);

**The request scope**, per store: each single name of ``foo``, ``foo:v2``,
``localhost/foo:latest``, ``localhost/list:1``, ``nothere``, ``a``, each image's
12-character ID prefix and its ``sha256:`` ID; the pairs ``[foo, foo]`` and
``[foo:v2, foo]``; all of them with and without force; and the removals by filter
``rmi -a`` (no filter) and ``dangling=true``. All in the ``seed`` profile, with the
``podman-4.3`` profile for the requests with force (decision 16, EV-4).

The counts are fixed by the scope (:data:`EXPECTED_STORES`, :data:`EXPECTED_REQUESTS`):
``tests/exhaustive/test_exhaustive_removal.py`` asserts them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pyrsistent import pvector

from libimage.pure.context import Context, Platform
from libimage.pure.plan import RemovalPlan, RemoveOptions
from libimage.pure.semantics import PODMAN_4_3, SEED
from libimage.pure.snapshot import Snapshot
from libimage.spec.builders import (
    BuiltContainer,
    BuiltImage,
    child_of,
    container,
    hex_id,
    image,
    layer_chain,
    manifest_list,
    snapshot,
)
from libimage.spec.invariants_removal import RemovalRequest
from libimage.spec.model import Model, model_of
from libimage.spec.rules import Violation, check_removal

NAMES = ("localhost/foo:latest", "localhost/foo:v2")
LIST_NAME = "localhost/list:1"
ID_PREFIXES = ("a1", "a2", "b")
AMBIGUOUS_PREFIX = "a"
SINGLE_NAMES = ("foo", "foo:v2", "localhost/foo:latest", LIST_NAME, "nothere", AMBIGUOUS_PREFIX)
NAME_PAIRS = (("foo", "foo"), ("foo:v2", "foo"))
FILTERS = ((), ("dangling=true",))
SCOPE = "<= 3 images, every parent relation, 2 names, <= 1 container, with/without a list"

# (kind, parent): I1 and I2 are base images or children of an earlier image, with a
# new layer ("layer", LT-4) or only a new history entry ("history", LT-5).
Lineage = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Store:
    """One store of the scope and how it was made (for messages)."""

    description: str
    snapshot: Snapshot
    image_ids: tuple[str, ...]


def _lineages(count: int) -> Iterator[Lineage]:
    choices: list[list[tuple[str, int]]] = [[("base", -1)]] if count else []
    for index in range(1, count):
        options = [("base", -1)]
        options += [(kind, parent) for parent in range(index) for kind in ("layer", "history")]
        choices.append(options)
    yield from itertools.product(*choices)


def _build(lineage: Lineage, names: tuple[int, ...]) -> list[BuiltImage]:
    """The images of one lineage; ``names[k]`` is the index of the image holding NAMES[k]."""
    built: list[BuiltImage] = []
    for index, (kind, parent) in enumerate(lineage):
        own = [NAMES[k] for k, holder in enumerate(names) if holder == index]
        prefix = ID_PREFIXES[index]
        image_id = prefix + hex_id("bounded", lineage, names, index)[len(prefix) :]
        if kind == "base":
            made = image(
                ("bounded", index), own, layers=layer_chain(("bounded", index)), image_id=image_id
            )
        else:
            made = child_of(
                built[parent],
                ("bounded", index),
                own,
                new_layer=kind == "layer",
                image_id=image_id,
            )
        built.append(made)
    return built


def stores() -> Iterator[Store]:
    """Every store of the scope, in a fixed order (see the module docstring)."""
    for count in range(4):
        for lineage in _lineages(count):
            for names in itertools.product(range(-1, count), repeat=len(NAMES)):
                images = _build(lineage, names)
                for used in range(-1, count):
                    users: list[BuiltContainer] = []
                    if used >= 0:
                        users.append(container(("bounded", used), images[used]))
                    for with_list in (False, True) if count else (False,):
                        members: list[BuiltImage] = list(images)
                        if with_list:
                            entry = (images[0], Platform("linux", "amd64"))
                            members.append(
                                manifest_list(
                                    "bounded-list",
                                    [LIST_NAME],
                                    entries=[entry],
                                    image_id="c" + hex_id("bounded-list")[1:],
                                )
                            )
                        description = (
                            f"lineage={lineage} names={names} container_on={used} list={with_list}"
                        )
                        yield Store(
                            description,
                            snapshot(members, containers=users),
                            tuple(i.id for i in images),
                        )


def removal_requests(store: Store) -> Iterator[RemovalRequest]:
    """Every removal request of the scope on ``store`` (see the module docstring)."""
    singles: list[tuple[str, ...]] = [(name,) for name in SINGLE_NAMES]
    for image_id in store.image_ids:
        singles += [(image_id[:12],), (f"sha256:{image_id}",)]
    for names in (*singles, *NAME_PAIRS):
        for force in (False, True):
            options = RemoveOptions(force=force)
            yield RemovalRequest(store.snapshot, names, options, Context(semantics=SEED))
            if force:
                yield RemovalRequest(store.snapshot, names, options, Context(semantics=PODMAN_4_3))
    for filters in FILTERS:
        options = RemoveOptions(filters=pvector(filters))
        yield RemovalRequest(store.snapshot, (), options, Context(semantics=SEED))


@dataclass
class Coverage:
    """What a run covered: stores, requests, and every violation found."""

    stores: int = 0
    requests: int = 0
    deleted_images: int = 0
    refusals: int = 0
    violations: list[tuple[str, str, Violation]] = field(default_factory=list)


Check = Callable[[RemovalRequest, RemovalPlan, Model], list[Violation]]


def _check_every_rule(request: RemovalRequest, plan: RemovalPlan, naive: Model) -> list[Violation]:
    return check_removal(request, plan=plan, naive=naive)


def check_all(
    check: Check = _check_every_rule,
    *,
    limit: int | None = None,
    shard: int = 0,
    shards: int = 1,
) -> Coverage:
    """Run ``check`` (by default :func:`~libimage.spec.rules.check_removal`) on every
    request of every store of the scope; violations are kept with the store and the
    request that showed them. ``limit`` keeps the first stores only; ``shard``/``shards``
    take every ``shards``-th store from the ``shard``-th (to split a run over processes).
    """
    coverage = Coverage()
    for position, store in enumerate(itertools.islice(stores(), limit)):
        if position % shards != shard:
            continue
        coverage.stores += 1
        naive = model_of(store.snapshot)
        for request in removal_requests(store):
            coverage.requests += 1
            plan = request.plan()
            coverage.deleted_images += sum(report.removed for report in plan.reports)
            coverage.refusals += len(plan.errors)
            for violation in check(request, plan, naive):
                names, profile = list(request.names), request.context.semantics.name
                described = f"rmi {names} force={request.options.force} {profile}"
                coverage.violations.append((store.description, described, violation))
    return coverage


def summary(coverage: Coverage) -> dict[str, object]:
    """A coverage as a JSON-ready document (what :func:`main` prints)."""
    return {
        "stores": coverage.stores,
        "requests": coverage.requests,
        "deleted_images": coverage.deleted_images,
        "refusals": coverage.refusals,
        "violations": [
            {"store": store, "request": request, "rule": v.rule, "explanation": v.explanation}
            for store, request, v in coverage.violations
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m libimage.spec.bounded [--shard K/N] [--limit STORES]``: one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m libimage.spec.bounded")
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th store from the K-th")
    parser.add_argument("--limit", type=int, default=None, help="only the first STORES stores")
    arguments = parser.parse_args(argv)
    shard, _, shards = arguments.shard.partition("/")
    coverage = check_all(limit=arguments.limit, shard=int(shard), shards=int(shards))
    sys.stdout.write(json.dumps(summary(coverage)) + "\n")
    return 1 if coverage.violations else 0


if __name__ == "__main__":
    sys.exit(main())
