"""Scenario cases (``spec/cases/*.json``) replayed by the pure core and by the adapter.

Each case comes from a worked example of the behaviour references (LK-10, LN-4,
ML-6, RLK-7, RM-X1..X14, POD-R-*, FL-R5..R7, FL-P*, LS-4); its expectations are the
references'. Every case runs in every profile it names, on the pure core
(:func:`libimage.spec.cases.replay_core`), on the naive model
(:func:`libimage.spec.cases.replay_model`) and through the adapter on the case's store
written to disk (:func:`libimage.spec.cases.replay_adapter`); podman replays them in
``tests/differential/test_cases_podman.py``. The format itself is checked too:
invalid documents are refused with a message naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libimage.pure.semantics import PROFILES
from libimage.spec.cases import (
    CaseError,
    Values,
    build_snapshot,
    load_all,
    mismatches,
    parse_case,
    replay_adapter,
    replay_core,
    replay_model,
)

CASES = load_all()
RUNS = [
    pytest.param(case, profile, id=f"{case.id}-{profile}")
    for case in CASES
    for profile in case.profiles
]


def test_there_are_enough_cases() -> None:
    """Issue #6 item 5: at least 20 cases, with unique IDs, citing rules."""
    assert len(CASES) >= 20
    assert all(case.rules for case in CASES)
    assert sum(len(case.steps) for case in CASES) >= 100


@pytest.mark.parametrize(("case", "profile"), RUNS)
def test_case_on_the_core(case: Any, profile: str) -> None:
    """The pure core does what the case's reference says."""
    problems = replay_core(case, PROFILES[profile])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("case", "profile"), RUNS)
def test_case_on_the_model(case: Any, profile: str) -> None:
    """The naive model (libimage.spec.model) does what the case's reference says."""
    problems = replay_model(case, PROFILES[profile])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("case", "profile"), RUNS)
def test_case_through_the_adapter(case: Any, profile: str, tmp_path: Path) -> None:
    """The adapter, on the case's store written to disk, does the same."""
    problems = replay_adapter(case, PROFILES[profile], tmp_path)
    assert not problems, "\n".join(problems)


MINIMAL: dict[str, Any] = {
    "id": "x",
    "store": {"images": [{"key": "A", "names": ["localhost/a:1"]}]},
    "steps": [{"request": {"op": "lookup", "name": "a:1"}, "expect": {"image": "A"}}],
}

INVALID = [
    ("not an object", [], "a JSON object"),
    ("unknown field", {**MINIMAL, "extra": 1}, "unknown fields"),
    ("no steps", {**MINIMAL, "steps": []}, "at least one step"),
    (
        "unknown op",
        {**MINIMAL, "steps": [{"request": {"op": "push"}, "expect": {"images": []}}]},
        "request op",
    ),
    (
        "unknown error kind",
        {**MINIMAL, "steps": [{"request": {"op": "lookup"}, "expect": {"error": "NOPE"}}]},
        "not an ErrorKind",
    ),
    (
        "expectation of another op",
        {**MINIMAL, "steps": [{"request": {"op": "exists"}, "expect": {"images": []}}]},
        "exists expects",
    ),
    (
        "parent not earlier",
        {**MINIMAL, "store": {"images": [{"key": "A", "parent": "B"}]}},
        "not an earlier image",
    ),
    (
        "repeated key",
        {**MINIMAL, "store": {"images": [{"key": "A"}, {"key": "A"}]}},
        "repeated",
    ),
    (
        "container on nothing",
        {**MINIMAL, "store": {"images": [], "containers": [{"image": "Z"}]}},
        "names no image",
    ),
    ("bad id prefix", {**MINIMAL, "store": {"images": [{"key": "A", "id_prefix": "XY"}]}}, "hex"),
    ("unknown profile", {**MINIMAL, "profiles": ["podman-9"]}, "profiles"),
    ("podman without reason", {**MINIMAL, "podman": False}, "podman_reason"),
]


@pytest.mark.parametrize(
    ("document", "message"), [(d, m) for _, d, m in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid_cases_are_refused(document: Any, message: str) -> None:
    """A case that does not follow the format is refused, naming what is wrong."""
    with pytest.raises(CaseError, match=message):
        parse_case(document, "test.json")


def test_placeholders_are_filled_from_the_built_store() -> None:
    """``{A}``, ``{A.id12}``, ``{A.id4}``, ``{A.short}``, ``{A.digest}`` name the built image."""
    document = {
        **MINIMAL,
        "store": {
            "images": [
                {"key": "A", "id_prefix": "ab1", "names": ["localhost/a:1"]},
                {"key": "B", "id_prefix": "ab2", "names": ["localhost/{A.id4}:1"]},
            ]
        },
    }
    snap, values = build_snapshot(parse_case(document))
    a_id = values.ids["A"]
    assert a_id.startswith("ab1")
    assert len(a_id) == 64
    assert values.fill("{A}|{A.id12}|{A.short}") == f"{a_id}|{a_id[:12]}|ab1"
    assert values.fill("{A.digest}") == snap.images[0].digest
    assert snap.images[1].names[0] == f"localhost/{a_id[:4]}:1"
    assert values.fill("{Q.id}") == "{Q.id}"  # not an image of the case: left alone


def test_only_what_is_expected_is_compared() -> None:
    """An expectation names what it checks; a difference in it is reported, others not."""
    values = Values({"A": "a" * 64}, {"A": "sha256:" + "b" * 64})
    got = {"reports": [], "errors": ["IMAGE_UNKNOWN"], "store": {"A": ["x"]}}
    assert mismatches({"errors": ["IMAGE_UNKNOWN"]}, got, values) == []
    assert mismatches({"errors": []}, got, values) == ["errors: expected [], got ['IMAGE_UNKNOWN']"]
