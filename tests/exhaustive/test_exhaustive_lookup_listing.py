"""Bounded exhaustive checking of lookups and listings (issue #6 item 3).

The stores are those of the removal check (:mod:`libimage.spec.bounded`: up to 3
images with colliding ID prefixes, every parent relation through a new layer or the
same top layer, every assignment of two names of one repository, at most one storage
container, with and without a manifest list): **2,099 stores**. In both profiles,
every name of :func:`~libimage.spec.bounded.lookup_names` (short, qualified,
``containers-storage:``, ambiguous and unique ID prefixes, full and ``sha256:`` IDs,
foreign-repository digests, unknown names) is looked up on each of the 543 stores
without a container (containers play no part in a lookup), and every listing of
:func:`~libimage.spec.bounded.listing_filters` (no filter, each single filter,
``id=``/``since=``, two filters together) is made on every store: **72,594 requests**.

Every lookup must satisfy ``INV-LK-1..9`` and agree with the naive model
(``INV-MD-1``, ``INV-MD-2``); every listing ``INV-LS-1..6``, ``INV-IP-1``, ``INV-LT-1``
and ``INV-MD-3``. No randomness. As for removal, the enumeration runs in two fresh
interpreters, without typeguard.
"""

from __future__ import annotations

import pytest

from libimage.spec import bounded

pytestmark = pytest.mark.exhaustive

EXPECTED_STORES = 2099
EXPECTED_REQUESTS = 72594


def test_every_lookup_and_listing_rule_on_every_store_in_scope(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """INV-LK-*, INV-LS-*, INV-IP-1, INV-LT-1, INV-MD-1..3 on all 72,594 requests."""
    total = bounded.run_in_processes("lookup-listing", processes=2, timeout=600)
    violations = total["violations"]
    with capsys.disabled():
        print(
            f"\nexhaustive lookup and listing: {total['stores']} stores, "
            f"{total['requests']} requests, {len(violations)} violations"
        )
    assert not violations, "\n".join(
        f"{v['rule']}: {v['explanation']}\n  store: {v['store']}\n  request: {v['request']}"
        for v in violations[:10]
    )
    assert total["stores"] == EXPECTED_STORES
    assert total["requests"] == EXPECTED_REQUESTS


def test_sample_of_the_scope_under_typeguard() -> None:
    """The first stores of the same scope, in this (instrumented) process."""
    coverage = bounded.check_lookups_and_listings(limit=4)
    assert coverage.stores == 4
    assert coverage.requests > 0
    assert not coverage.violations, coverage.violations[:3]
