"""The rule index (``libimage.spec.rules``) is complete and consistent (issue #6 item 1).

Every rule ID appears once; every ``checked_by`` name resolves to a function; every
behaviour ID the naive model cites is indexed, and every indexed behaviour is cited
where the model restates it; every invariant of ``spec/invariants_*.py`` is indexed;
the entry points report violations with their rule IDs (a planted violation is
found, so the checks can fail); and every Python name of ``spec/glossary.md`` exists.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections import Counter
from pathlib import Path

import pytest

from libimage.pure.context import Context
from libimage.pure.plan import RemovalPlan, RemoveOptions
from libimage.spec import invariants_listing, invariants_lookup, invariants_removal, model, rules
from libimage.spec.builders import image, snapshot
from libimage.spec.invariants_listing import ListingCase
from libimage.spec.invariants_removal import RemovalRequest

# The behaviour-ID families of the references, and the decisions.
BEHAVIOUR_ID = re.compile(
    r"\b(?:REF|NORM|SN|LN|PLAT|ST|TR|LK|ML|EX|DIV|LT|IP|LS|RM|EV|RLK|SF-N|SF-D|POD-F|POD-R|RM-X)"
    r"-[0-9]+\b"
    r"|\b(?:LT-C|LT-P|FL-P|FL-T|FL-R|RM-D|RM-U|RM-T|RM-C|RM-E)[0-9]+\b"
    r"|\bSF-D-C\b|\bdecision [0-9]+\b"
)


RANGE = re.compile(r"\b([A-Z]+(?:-[A-Z]+)*-?)([0-9]+)\.\.(?:[A-Z]+(?:-[A-Z]+)*-?)?([0-9]+)\b")


def cited(text: str) -> set[str]:
    """The behaviour IDs ``text`` cites, ranges such as ``RM-D0..D9`` included."""
    found = set(BEHAVIOUR_ID.findall(text))
    for prefix, low, high in RANGE.findall(text):
        found |= {f"{prefix}{n}" for n in range(int(low), int(high) + 1)}
    return found


def test_rule_ids_are_unique() -> None:
    counts = Counter(rule.id for rule in rules.RULES)
    assert [rule_id for rule_id, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("rule", rules.RULES, ids=[r.id for r in rules.RULES])
def test_every_check_resolves_to_a_function(rule: rules.Rule) -> None:
    assert rule.checked_by
    for name in rule.checked_by:
        assert callable(rules.resolve(name)), name


def test_every_behaviour_the_model_cites_is_indexed() -> None:
    """IDs cited in the model's text are in the index, with the model function citing them."""
    indexed = {rule.id for rule in rules.RULES}
    assert sorted(cited(inspect.getsource(model)) - indexed) == []


@pytest.mark.parametrize(
    "rule",
    [r for r in rules.RULES if r.checked_by[0].startswith("libimage.spec.model.")],
    ids=lambda r: r.id,
)
def test_every_indexed_behaviour_is_cited_by_its_model_function(rule: rules.Rule) -> None:
    """The model function the index names for a behaviour mentions that behaviour."""
    function = rules.resolve(rule.checked_by[0])
    text = inspect.getsource(function)  # type: ignore[arg-type]
    assert rule.id in cited(text), f"{rule.checked_by[0]} does not cite {rule.id}"


def test_every_invariant_is_indexed() -> None:
    indexed = {rule.id for rule in rules.RULES}
    for module in (invariants_lookup, invariants_listing, invariants_removal):
        for invariant in module.INVARIANTS:
            assert invariant.rule in indexed
    for agreement in ("INV-MD-1", "INV-MD-2", "INV-MD-3", "INV-MD-4", "INV-MD-5"):
        assert rules.rule(agreement).checked_by


def test_unknown_rule_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        rules.rule("LK-999")


SNAPSHOT = snapshot([image("a", ["localhost/foo:latest", "localhost/foo:v2"])])


def test_entry_points_hold_on_a_sound_request() -> None:
    """RM-X5's store: every lookup, listing and removal rule holds."""
    context = Context()
    assert rules.check_lookup(SNAPSHOT, "foo", context) == []
    case = ListingCase(SNAPSHOT, ("dangling=false",), context)
    assert rules.check_listing(case) == []
    request = RemovalRequest(SNAPSHOT, ("foo", "foo"), RemoveOptions(), context)
    assert rules.check_removal(request) == []


def test_a_planted_violation_is_reported_with_its_rule() -> None:
    """A plan that does nothing where RM-X5 deletes the image breaks INV-MD-4 and INV-MD-5."""
    request = RemovalRequest(SNAPSHOT, ("foo", "foo"), RemoveOptions(), Context())
    found = rules.check_removal(request, plan=RemovalPlan(), only={"INV-MD-4", "INV-MD-5"})
    assert [v.rule for v in found] == ["INV-MD-4", "INV-MD-5"]
    assert "the model reports" in found[0].explanation


GLOSSARY = Path(rules.__file__).parent / "glossary.md"


def test_every_name_in_the_glossary_exists() -> None:
    """spec/glossary.md (style.md section 5) names only things that exist."""
    missing = []
    for match in re.finditer(r"`((?:pure|adapters|model)\.[A-Za-z_.]+)`", GLOSSARY.read_text()):
        parts = match.group(1).split(".")
        if parts[0] == "model":
            parts = ["spec", *parts]
        for split in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module("libimage." + ".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for attribute in parts[split:]:
                    found = getattr(found, attribute)
            except AttributeError:
                missing.append(match.group(1))
            break
        else:
            missing.append(match.group(1))
    assert missing == []
