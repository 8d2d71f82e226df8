"""Bounded exhaustive checking: every store within a small scope, every request within it.

No randomness: :func:`stores` enumerates every store of the scope below, in a fixed
order; :func:`removal_requests`, :func:`lookup_names` and :func:`listing_filters` every
request of the scope on a store. :func:`check_all` runs
:func:`libimage.spec.rules.check_removal` (``INV-RM-1..8`` and agreement with the naive
model, ``INV-MD-4``, ``INV-MD-5``) on each removal request;
:func:`check_lookups_and_listings` runs :func:`~libimage.spec.rules.check_lookup`
(``INV-LK-1..9``, ``INV-MD-1``, ``INV-MD-2``) and
:func:`~libimage.spec.rules.check_listing` (``INV-LS-1..6``, ``INV-IP-1``, ``INV-LT-1``,
``INV-MD-3``) on each lookup and listing. :func:`run_in_processes` runs either over the
whole scope in fresh interpreters, one per core (``python -m libimage.spec.bounded``).

**The store scope** (2,099 stores):

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
  manifest for linux/amd64 (RLK-7, ML-4, ML-5).

**The removal scope** (91,174 requests), per store: each single name of ``foo``,
``foo:v2``, ``localhost/foo:latest``, ``localhost/list:1``, ``nothere``, ``a``, each
image's 12-character ID prefix and its ``sha256:`` ID; the pairs ``[foo, foo]`` and
``[foo:v2, foo]``; each without force (``seed``) and with force (``seed`` and
``podman-4.3``, decision 16, EV-4); and the removals by filter ``rmi -a`` (no filter)
and ``dangling=true``: 26 + 6 n requests for a store of n images.

**The lookup and listing scope** (72,594 requests), in both profiles: on each of the
543 stores without a container (containers play no part in a lookup), the single names
above, ``containers-storage:localhost/foo:latest``, ``list`` and ``localhost/list:1``,
each image's full ID, 12-character prefix and ``sha256:`` ID, and ``whatever@<digest>``
for each image; on every store, the listings without a filter, with each of
:data:`LISTING_FILTERS`, with ``id=`` and ``since=`` naming ``I0``, and with
``dangling=false`` and ``reference=foo`` together.

The counts are fixed by the scope; ``tests/exhaustive`` asserts them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from libimage.spec.invariants_listing import ListingCase
from libimage.spec.invariants_removal import RemovalRequest
from libimage.spec.model import Model, model_of
from libimage.spec.rules import Violation, check_listing, check_lookup, check_removal

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


LOOKUP_EXTRA = ("containers-storage:localhost/foo:latest", "localhost/list:1", "list")
LISTING_FILTERS = (
    "dangling=true",
    "dangling=false",
    "intermediate=true",
    "containers=true",
    "containers=external",
    "reference=foo",
    "manifest=true",
    "label=a",
)


def lookup_names(store: Store) -> list[str]:
    """Every name the lookup scope asks for on ``store``: the removal names, each image's
    full ID, a ``containers-storage:`` name, the list by name and short name, and each
    image's digest under a foreign repository (LK-8)."""
    names = [*SINGLE_NAMES, *LOOKUP_EXTRA]
    for image_id in store.image_ids:
        names += [image_id, image_id[:12], f"sha256:{image_id}"]
    for record in store.snapshot.images:
        if record.id in store.image_ids and record.digest:
            names.append(f"whatever@{record.digest}")
    return names


def listing_filters(store: Store) -> list[tuple[str, ...]]:
    """Every listing of the scope: no filter, each filter of :data:`LISTING_FILTERS`, an
    ``id`` and a ``since`` filter naming the first image, and two filters together."""
    filters: list[tuple[str, ...]] = [(), *((f,) for f in LISTING_FILTERS)]
    if store.image_ids:
        filters += [(f"id={store.image_ids[0]}",), (f"since={store.image_ids[0][:12]}",)]
    filters.append(("dangling=false", "reference=foo"))
    return filters


def _is_external(container_id: str) -> bool:
    return container_id[-1] in "02468ace"


def check_lookups_and_listings(
    *, limit: int | None = None, shard: int = 0, shards: int = 1
) -> Coverage:
    """:func:`~libimage.spec.rules.check_lookup` on every name of :func:`lookup_names` and
    :func:`~libimage.spec.rules.check_listing` on every listing of :func:`listing_filters`,
    in both profiles, on every store of the scope (``requests`` counts both kinds)."""
    coverage = Coverage()
    for position, store in enumerate(itertools.islice(stores(), limit)):
        if position % shards != shard:
            continue
        coverage.stores += 1
        naive = model_of(store.snapshot)
        # Containers play no part in a lookup (LK-*): lookups run on the stores without one.
        names = lookup_names(store) if not store.snapshot.containers else []
        for semantics in (SEED, PODMAN_4_3):
            context = Context(semantics=semantics)
            for name in names:
                coverage.requests += 1
                for violation in check_lookup(store.snapshot, name, context, naive=naive):
                    what = f"lookup {name!r} {semantics.name}"
                    coverage.violations.append((store.description, what, violation))
            for filters in listing_filters(store):
                coverage.requests += 1
                case = ListingCase(store.snapshot, filters, context, (), _is_external)
                for violation in check_listing(case, naive=naive):
                    what = f"images {list(filters)} {semantics.name}"
                    coverage.violations.append((store.description, what, violation))
    return coverage


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


def run_in_processes(
    kind: str = "removal", *, processes: int = 2, limit: int | None = None, timeout: float = 600
) -> dict[str, Any]:
    """Run the ``kind`` check (``removal`` or ``lookup-listing``) over the whole scope in
    ``processes`` fresh interpreters (``python -m libimage.spec.bounded --shard K/N``)
    and add up their summaries.

    A fresh interpreter imports ``libimage`` without any test instrumentation (the
    typeguard pytest plugin instruments the pytest process only), and the shards use
    every core. Raises :class:`RuntimeError` if a shard prints no summary.
    """
    argv = [sys.executable, "-m", "libimage.spec.bounded", "--kind", kind]
    if limit is not None:
        argv += ["--limit", str(limit)]
    children = [
        subprocess.Popen(
            [*argv, "--shard", f"{shard}/{processes}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for shard in range(processes)
    ]
    total: dict[str, Any] = {
        "stores": 0,
        "requests": 0,
        "deleted_images": 0,
        "refusals": 0,
        "violations": [],
    }
    for child in children:
        stdout, stderr = child.communicate(timeout=timeout)
        if not stdout.strip():
            raise RuntimeError(f"a shard of the bounded check printed nothing: {stderr}")
        part = json.loads(stdout.splitlines()[-1])
        for key in ("stores", "requests", "deleted_images", "refusals"):
            total[key] += part[key]
        total["violations"] += part["violations"]
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m libimage.spec.bounded [--shard K/N] [--limit STORES]``: one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m libimage.spec.bounded")
    parser.add_argument("--shard", default="0/1", help="K/N: every N-th store from the K-th")
    parser.add_argument("--limit", type=int, default=None, help="only the first STORES stores")
    parser.add_argument(
        "--kind", choices=("removal", "lookup-listing"), default="removal", help="what to check"
    )
    arguments = parser.parse_args(argv)
    shard, _, shards = arguments.shard.partition("/")
    run = check_all if arguments.kind == "removal" else check_lookups_and_listings
    coverage = run(limit=arguments.limit, shard=int(shard), shards=int(shards))
    sys.stdout.write(json.dumps(summary(coverage)) + "\n")
    return 1 if coverage.violations else 0


if __name__ == "__main__":
    sys.exit(main())
