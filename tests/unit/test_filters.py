"""Image filters: parsing, compilation, every key, combination (FL-P*, FL-T*, FL-R*, FL-U*).

Expected values come from the list/remove reference (its examples and the POD-F
observations of podman 4.3.1), from containers/common's ``filters.go`` (seed and
v0.50.1) and from Go's documented behaviour of ``path.Match``, ``time.Parse``,
``time.ParseDuration`` and ``strconv.ParseBool``.
"""

# Tables of cases read best one case per line.
# ruff: noqa: E501

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pytest
from pyrsistent import pvector

from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, Failure
from libimage.pure.filters import (
    CompiledFilters,
    CorruptedSkip,
    FilterSpec,
    compile_filters,
    filter_images,
    image_matches,
    parse_go_bool,
    reference_candidates,
    split_filter,
)
from libimage.pure.glob import BAD_PATTERN, decode_rune, path_match
from libimage.pure.semantics import PODMAN_4_3, SEED, Semantics
from libimage.pure.snapshot import Snapshot, StoredImage
from libimage.pure.timeparse import parse_go_duration, parse_go_int64, until_instant
from libimage.spec.builders import (
    child_of,
    container,
    image,
    in_additional_store,
    layer_chain,
    manifest_list,
    missing_config,
    snapshot,
    with_record,
)

SECOND = 10**9
NOW = 1_700_000_000 * SECOND + 250_000_000  # 2023-11-14T22:13:20.25Z


def context(semantics: Semantics = SEED, offset: int = 0) -> Context:
    return Context(semantics=semantics, now_ns=NOW, utc_offset_seconds=offset)


def names_of(images: Sequence[StoredImage]) -> list[str]:
    return [img.names[0] if img.names else img.id[:12] for img in images]


def run(
    snap: Snapshot,
    filters: list[str],
    semantics: Semantics = SEED,
    is_external: Callable[[str], bool] | None = None,
) -> list[str] | Failure:
    """The names (first name, else short ID) of the images the filters keep, or the failure."""
    outcome = filter_images(snap, list(snap.images), filters, context(semantics), is_external)
    if outcome.failure is not None:
        return outcome.failure
    return names_of(outcome.images)


# --------------------------------------------------------------------------- a store
#
# base (labels color=red, env=x; names aa:1 style of POD-F) and friends, record times
# one second apart in this order: base < child < bb < cc < dangling.

T0 = 1_600_000_000 * SECOND

BASE = image(
    "base",
    ["localhost/aa:1", "localhost/aa:2"],
    layers=layer_chain("l1"),
    labels={"color": "red", "env": "x"},
    created=T0,
)
CHILD = child_of(BASE, "child", ["localhost/child:latest"], labels={"color": "blue"})
CHILD = with_record(CHILD, created=T0 + SECOND)
BB = image(
    "bb",
    ["quay.io/org/bb:2"],
    layers=layer_chain("l2"),
    labels={"color": "green"},
    created=T0 + 2 * SECOND,
)
CC = image("cc", ["docker.io/library/cc:latest"], layers=layer_chain("l3"), created=T0 + 3 * SECOND)
DANGLING = image("dangling", [], layers=layer_chain("l4"), created=T0 + 4 * SECOND)
SAME_TIME = image("same", ["localhost/same:1"], layers=layer_chain("l5"), created=T0 + 3 * SECOND)

STORE = snapshot([BASE, CHILD, BB, CC, DANGLING])


# --------------------------------------------------------------------------- FL-P1


@dataclass(frozen=True)
class SplitCase:
    name: str
    text: str
    semantics: Semantics
    expected: FilterSpec | str  # a str is the expected error message


SPLIT_CASES = [
    SplitCase("key=value", "id=x", SEED, FilterSpec("id=x", "id", "x")),
    SplitCase("empty value (FL-P1)", "id=", SEED, FilterSpec("id=", "id", "")),
    SplitCase(
        "value holds '=' (FL-P1)", "label=a=b", SEED, FilterSpec("label=a=b", "label", "a=b")
    ),
    SplitCase(
        "no '=' (FL-P1 example)",
        "label",
        SEED,
        'invalid image filter "label": must be in the format "filter=value"',
    ),
    SplitCase(
        "no '=' in podman 4.3.1 (POD-F-12)",
        "label",
        PODMAN_4_3,
        'invalid image filter "label": must be in the format "filter=value or filter!=value"',
    ),
    SplitCase(
        "seed has no '!=': the key keeps the '!' (POD-F-15)",
        "reference!=aa",
        SEED,
        FilterSpec("reference!=aa", "reference!", "aa"),
    ),
    SplitCase(
        "podman 4.3.1 negation (POD-F-15)",
        "reference!=aa",
        PODMAN_4_3,
        FilterSpec("reference!=aa", "reference", "aa", negate=True),
    ),
    SplitCase(
        "'!=' wins over an earlier '=' in podman 4.3.1",
        "label=a!=b",
        PODMAN_4_3,
        FilterSpec("label=a!=b", "label=a", "b", negate=True),
    ),
]


@pytest.mark.parametrize("case", SPLIT_CASES, ids=lambda c: c.name)
def test_split_filter(case: SplitCase) -> None:
    """FL-P1: split at the first '='; podman 4.3.1 splits at '!=' first."""
    result = split_filter(case.text, case.semantics)
    if isinstance(case.expected, str):
        assert isinstance(result, Failure)
        assert result.kind is ErrorKind.FILTER_INVALID_FORMAT
        assert result.message == case.expected
        assert result.subject == case.text
    else:
        assert result == case.expected


# --------------------------------------------------------------------------- compile errors


@dataclass(frozen=True)
class ErrorCase:
    name: str
    filters: list[str]
    semantics: Semantics
    kind: ErrorKind
    message: str


ERROR_CASES = [
    ErrorCase(
        "unsupported key (FL-P2, POD-F-12)",
        ["foo=bar"],
        SEED,
        ErrorKind.FILTER_UNSUPPORTED,
        'unsupported image filter "foo"',
    ),
    ErrorCase(
        "keys are case-sensitive (FL-P2)",
        ["ID=x"],
        SEED,
        ErrorKind.FILTER_UNSUPPORTED,
        'unsupported image filter "ID"',
    ),
    ErrorCase(
        "seed: reference!= is key 'reference!' (POD-F-15)",
        ["reference!=aa"],
        SEED,
        ErrorKind.FILTER_UNSUPPORTED,
        'unsupported image filter "reference!"',
    ),
    ErrorCase(
        "podman 4.3.1: label=a!=b has key 'label=a'",
        ["label=a!=b"],
        PODMAN_4_3,
        ErrorKind.FILTER_UNSUPPORTED,
        'unsupported image filter "label=a"',
    ),
    ErrorCase(
        "bool swapped message (FL-P7 example)",
        ["dangling=maybe"],
        SEED,
        ErrorKind.FILTER_INVALID_VALUE,
        'non-boolean value "dangling" for maybe filter: strconv.ParseBool: parsing "maybe": '
        "invalid syntax",
    ),
    ErrorCase(
        "seed: single-use key repeated with the same value (FL-P6)",
        ["dangling=true", "dangling=true"],
        SEED,
        ErrorKind.FILTER_REPEATED,
        'specifying "dangling" filter more then once is not supported',
    ),
    ErrorCase(
        "seed: repeat checked before the value (FL-P6)",
        ["readonly=true", "readonly=maybe"],
        SEED,
        ErrorKind.FILTER_REPEATED,
        'specifying "readonly" filter more then once is not supported',
    ),
    ErrorCase(
        "seed: containers repeated (FL-P6)",
        ["containers=true", "containers=false"],
        SEED,
        ErrorKind.FILTER_REPEATED,
        'specifying "containers" filter more then once is not supported',
    ),
    ErrorCase(
        "podman 4.3.1: different values (POD-F-10)",
        ["dangling=true", "dangling=false"],
        PODMAN_4_3,
        ErrorKind.FILTER_REPEATED,
        'specifying "dangling" filter more than once with different values is not supported',
    ),
    ErrorCase(
        "podman 4.3.1: values compared as strings",
        ["readonly=1", "readonly=true"],
        PODMAN_4_3,
        ErrorKind.FILTER_REPEATED,
        'specifying "readonly" filter more than once with different values is not supported',
    ),
    ErrorCase(
        "containers value (FL-T4)",
        ["containers=maybe"],
        SEED,
        ErrorKind.FILTER_INVALID_VALUE,
        'unsupported value "maybe" for containers filter',
    ),
    ErrorCase(
        "containers value is case-sensitive (FL-T4)",
        ["containers=True"],
        SEED,
        ErrorKind.FILTER_INVALID_VALUE,
        'unsupported value "True" for containers filter',
    ),
    ErrorCase(
        "external without callback (FL-T4, POD-F-13)",
        ["containers=external"],
        SEED,
        ErrorKind.FILTER_NEEDS_CALLBACK,
        "libimage error: external containers filter without callback",
    ),
    ErrorCase(
        "until not a time (FL-U5 example)",
        ["until=notatime"],
        SEED,
        ErrorKind.FILTER_TIME,
        'failed to parse value as time or duration: "notatime"',
    ),
    ErrorCase(
        "the first error wins (FL-P3)",
        ["foo=bar", "dangling=maybe"],
        SEED,
        ErrorKind.FILTER_UNSUPPORTED,
        'unsupported image filter "foo"',
    ),
    ErrorCase(
        "keys are checked when reached (FL-P2)",
        ["dangling=maybe", "foo=bar"],
        SEED,
        ErrorKind.FILTER_INVALID_VALUE,
        'non-boolean value "dangling" for maybe filter: strconv.ParseBool: parsing "maybe": '
        "invalid syntax",
    ),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.name)
def test_compile_errors(case: ErrorCase) -> None:
    """FL-P2..FL-P7, FL-T4, FL-U5: compile errors have the seed's (or podman's) texts."""
    result = compile_filters(STORE, case.filters, context(case.semantics))
    assert isinstance(result, Failure)
    assert result.kind is case.kind
    assert result.message == case.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *((t, True) for t in ("1", "t", "T", "TRUE", "true", "True")),
        *((f, False) for f in ("0", "f", "F", "FALSE", "false", "False")),
        *((o, None) for o in ("yes", "tRUE", "", " true", "2")),
    ],
)
def test_parse_go_bool(text: str, expected: bool | None) -> None:
    """FL-P7: exactly Go's strconv.ParseBool spellings."""
    assert parse_go_bool(text) is expected


def test_repeated_same_value_allowed_in_podman() -> None:
    """POD-F-10: `dangling=true` twice works in podman 4.3.1 (and lists the dangling image)."""
    assert run(STORE, ["dangling=true", "dangling=true"], PODMAN_4_3) == [DANGLING.id[:12]]


def test_repeatable_keys_repeat_freely_in_seed() -> None:
    """FL-P6: after, since, before, id, label, reference and until may repeat."""
    filters = [
        "id=x",
        "id=y",
        "label=a",
        "label=b",
        "reference=x",
        "reference=y",
        "until=1h",
        "until=2h",
        "since=aa:1",
        "after=aa:1",
        "before=cc",
        "before=cc",
    ]
    assert isinstance(compile_filters(STORE, filters, context()), CompiledFilters)


# --------------------------------------------------------------------------- each key


@dataclass(frozen=True)
class KeyCase:
    name: str
    filters: list[str]
    expected: list[str]
    semantics: Semantics = SEED


KEY_CASES = [
    # FL-T1, FL-T2, POD-F-7, POD-F-11
    KeyCase("since: strictly newer", ["since=child"], ["quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]]),
    KeyCase("after = since", ["after=child"], ["quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]]),
    KeyCase("before: strictly older", ["before=quay.io/org/bb:2"], ["localhost/aa:1", "localhost/child:latest"]),
    KeyCase("before the oldest: none", ["before=aa:1"], []),
    KeyCase("since + after are one group (POD-F-11)", ["since=cc", "after=quay.io/org/bb:2"], ["docker.io/library/cc:latest", DANGLING.id[:12]]),
    KeyCase("since AND before", ["since=aa:1", "before=cc"], ["localhost/child:latest", "quay.io/org/bb:2"]),
    # FL-T3, POD-F-8
    KeyCase("until 1h: all are older", ["until=1h"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]]),
    KeyCase("until 2000-01-01: none (POD-F-8)", ["until=2000-01-01"], []),
    KeyCase("until=0 is the epoch (FL-U6)", ["until=0"], []),
    KeyCase("until a record time: strictly earlier", [f"until={(T0 + 2 * SECOND) // SECOND}"], ["localhost/aa:1", "localhost/child:latest"]),
    KeyCase("until with before is AND (FL-T3)", [f"until={(T0 + 3 * SECOND) // SECOND}", "before=child"], ["localhost/aa:1"]),
    # FL-T5, FL-T6, POD-F-2
    KeyCase("dangling=true: untagged leaf", ["dangling=true"], [DANGLING.id[:12]]),
    KeyCase("dangling=false: the named ones", ["dangling=false"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest"]),
    KeyCase("intermediate=true: none while the base is named", ["intermediate=true"], []),
    KeyCase("intermediate=0: all", ["intermediate=0"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]]),
    # FL-T7, POD-F-5, POD-F-6
    KeyCase("id: full ID", [f"id={BB.id}"], ["quay.io/org/bb:2"]),
    KeyCase("id: a 12-char prefix matches nothing", [f"id={BB.id[:12]}"], []),
    KeyCase("id: sha256: is not stripped", [f"id=sha256:{BB.id}"], []),
    KeyCase("id= matches nothing (FL-P1)", ["id="], []),
    # FL-T8, POD-F-1, POD-F-9
    KeyCase("label key presence", ["label=color"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2"]),
    KeyCase("label exact value", ["label=color=red"], ["localhost/aa:1"]),
    KeyCase("label other key", ["label=env"], ["localhost/aa:1"]),
    KeyCase("label no such value", ["label=color=purple"], []),
    KeyCase("label K= means any value", ["label=color="], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2"]),
    KeyCase("labels OR together (POD-F-9)", ["label=color=red", "label=color=blue"], ["localhost/aa:1", "localhost/child:latest"]),
    KeyCase("label values are case-sensitive", ["label=color=RED"], []),
    KeyCase("seed: no wildcards in label keys", ["label=col*"], []),
    KeyCase("podman 4.3.1: label key wildcard", ["label=col*"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2"], PODMAN_4_3),
    KeyCase("podman 4.3.1: a plain key is literal", ["label=env"], ["localhost/aa:1"], PODMAN_4_3),
    KeyCase("podman 4.3.1: wildcard with value", ["label=*o*=red"], ["localhost/aa:1"], PODMAN_4_3),
    # FL-T11, FL-R*, POD-F-3, POD-F-4
    KeyCase("reference short", ["reference=aa"], ["localhost/aa:1"]),
    KeyCase("reference glob", ["reference=*bb*"], ["quay.io/org/bb:2"]),
    KeyCase("reference full", ["reference=quay.io/org/bb:2"], ["quay.io/org/bb:2"]),
    KeyCase("reference path", ["reference=org/bb"], ["quay.io/org/bb:2"]),
    KeyCase("reference name:tag", ["reference=bb:2"], ["quay.io/org/bb:2"]),
    KeyCase("reference library", ["reference=library/cc"], ["docker.io/library/cc:latest"]),
    KeyCase("reference domain glob", ["reference=docker.io/library/*"], ["docker.io/library/cc:latest"]),
    KeyCase("reference */cc:latest", ["reference=*/cc:latest"], ["docker.io/library/cc:latest"]),
    KeyCase("reference localhost/*", ["reference=localhost/*"], ["localhost/aa:1", "localhost/child:latest"]),
    KeyCase("reference aa:*", ["reference=aa:*"], ["localhost/aa:1"]),
    KeyCase("reference: no normalisation (POD-F-4)", ["reference=docker.io/cc"], []),
    KeyCase("reference=* matches every named image (FL-R7)", ["reference=*"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest"]),
    KeyCase("references OR together (FL-P5)", ["reference=aa", "reference=cc"], ["localhost/aa:1", "docker.io/library/cc:latest"]),
    KeyCase("reference AND label (FL-P5)", ["reference=*", "label=color=green"], ["quay.io/org/bb:2"]),
    KeyCase("malformed pattern matches nothing (FL-R4)", ["reference=[aa"], []),
    # POD-F-15: negation in podman 4.3.1
    KeyCase("reference!=aa", ["reference!=aa"], ["localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]], PODMAN_4_3),
    KeyCase("label!=color", ["label!=color"], ["docker.io/library/cc:latest", DANGLING.id[:12]], PODMAN_4_3),
    KeyCase("dangling=true OR dangling!=true (same value string)", ["dangling=true", "dangling!=true"], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]], PODMAN_4_3),
    KeyCase("id!= (empty) matches everything", ["id!="], ["localhost/aa:1", "localhost/child:latest", "quay.io/org/bb:2", "docker.io/library/cc:latest", DANGLING.id[:12]], PODMAN_4_3),
]  # fmt: skip


@pytest.mark.parametrize("case", KEY_CASES, ids=lambda c: c.name)
def test_filter_keys(case: KeyCase) -> None:
    """FL-T1..FL-T11, FL-P5, POD-F-1..POD-F-15: which images each filter keeps, in order."""
    assert run(STORE, case.filters, case.semantics) == case.expected


def test_before_and_since_exclude_equal_times() -> None:
    """FL-T2: equal record times are excluded by both before and since."""
    snap = snapshot([BASE, CC, SAME_TIME])
    assert run(snap, ["since=cc"]) == []
    assert run(snap, ["before=cc"]) == ["localhost/aa:1"]
    assert run(snap, ["since=same:1"]) == []


def test_since_lookup_failure() -> None:
    """FL-T1, POD-F-12: the key as written, "filter" twice, then the lookup error."""
    for key in ("since", "after", "before"):
        result = compile_filters(STORE, [f"{key}=nope"], context())
        assert isinstance(result, Failure)
        assert result.kind is ErrorKind.FILTER_IMAGE_LOOKUP
        assert result.message == (
            f'could not find local image for filter filter "{key}"="nope": nope: image not known'
        )


def test_intermediate_after_untagging_the_base() -> None:
    """LT-4, POD-I-3: an untagged base with a child is intermediate, not dangling."""
    untagged = with_record(BASE, names=[])
    snap = snapshot([untagged, CHILD, DANGLING])
    assert run(snap, ["intermediate=true"]) == [BASE.id[:12]]
    assert run(snap, ["dangling=true"]) == [DANGLING.id[:12]]
    assert run(snap, ["intermediate=false"]) == ["localhost/child:latest", DANGLING.id[:12]]


def test_containers_filter() -> None:
    """FL-T4, POD-F-13: true/false by count; external: every container external, vacuous for 0."""
    used = container("c1", BB)
    other = container("c2", CC)
    snap = snapshot([BASE, BB, CC], containers=[used, other])
    assert run(snap, ["containers=true"]) == ["quay.io/org/bb:2", "docker.io/library/cc:latest"]
    assert run(snap, ["containers=false"]) == ["localhost/aa:1"]
    external = {used.id}.__contains__
    assert run(snap, ["containers=external"], is_external=external) == [
        "localhost/aa:1",
        "quay.io/org/bb:2",
    ]


def test_readonly_and_manifest_filters() -> None:
    """FL-T9, FL-T10, POD-F-14: read-only images come from additional stores; lists by type."""
    read_only = in_additional_store(image("ro", ["localhost/ro:1"], layers=layer_chain("r1")))
    listed = manifest_list("list", ["localhost/list:1"], entries=[(BB, None)])
    snap = snapshot([BB, listed, read_only])
    assert run(snap, ["readonly=true"]) == ["localhost/ro:1"]
    assert run(snap, ["readonly=false"]) == ["quay.io/org/bb:2", "localhost/list:1"]
    assert run(snap, ["manifest=true"]) == ["localhost/list:1"]
    assert run(snap, ["manifest=false"]) == ["quay.io/org/bb:2", "localhost/ro:1"]
    assert run(snap, ["label=color"]) == ["quay.io/org/bb:2"]  # FL-T8: a list has no labels


def test_groups_keep_the_order_of_first_appearance() -> None:
    """Decision 3, FL-P4: groups in order of first key; after joins since's group."""
    compiled = compile_filters(
        STORE, ["label=a", "after=aa:1", "id=x", "since=cc", "label=b"], context()
    )
    assert isinstance(compiled, CompiledFilters)
    assert [group.key for group in compiled.groups] == ["label", "since", "id"]
    assert [len(group.filters) for group in compiled.groups] == [2, 2, 1]


def test_no_filters_or_no_images_never_compile() -> None:
    """LS-4: invalid filters are no error when there is nothing to filter."""
    assert filter_images(STORE, [], ["foo=bar"], context()).failure is None
    assert filter_images(STORE, list(STORE.images), [], context()).images == STORE.images
    assert filter_images(STORE, list(STORE.images), ["foo=bar"], context()).failure is not None


# --------------------------------------------------------------------------- FL-P9


def test_failure_on_a_corrupted_image_is_no_match() -> None:
    """FL-P9, IP-12: a label filter failing on a corrupted image skips it and reports it."""
    broken = with_record(missing_config(BB), names=["localhost/broken:1"])
    broken = replace(broken, record=replace(broken.record, top_layer="f" * 64))
    snap = snapshot([BASE, broken])
    outcome = filter_images(snap, list(snap.images), ["label=color"], context())
    assert outcome.failure is None
    assert names_of(outcome.images) == ["localhost/aa:1"]
    assert len(outcome.errors) == 1
    assert outcome.errors[0].kind is ErrorKind.IMAGE_CORRUPTED
    assert outcome.errors[0].message.startswith(
        f"Image {BB.id[:12]} exists in local storage but may be corrupted"
    )


def test_failure_on_a_sound_image_aborts() -> None:
    """FL-P9, LT-C4: a sound image whose child candidate has no config fails the listing."""
    base = image("sound", [], layers=layer_chain("s1"))
    broken_child = missing_config(child_of(base, "kid", ["localhost/kid:1"]))
    snap = snapshot([base, broken_child])
    sound = snap.images[0]
    compiled = compile_filters(snap, ["dangling=true"], context())
    assert isinstance(compiled, CompiledFilters)
    verdict = image_matches(compiled, snap, sound)
    assert isinstance(verdict, Failure)
    outcome = filter_images(snap, list(snap.images), ["dangling=true"], context())
    assert outcome.failure == verdict
    assert outcome.images == pvector()


def test_corrupted_skip_is_a_value() -> None:
    """FL-P9: the verdict on a corrupted image carries the corruption error."""
    broken = missing_config(image("x", [], layers=layer_chain("x1")))
    broken = replace(broken, record=replace(broken.record, top_layer="e" * 64))
    snap = snapshot([broken])
    compiled = compile_filters(snap, ["label=a"], context())
    assert isinstance(compiled, CompiledFilters)
    verdict = image_matches(compiled, snap, snap.images[0])
    assert isinstance(verdict, CorruptedSkip)
    assert verdict.warning.rule == "EX-1"


# --------------------------------------------------------------------------- FL-R


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        (
            "quay.io/org/bb:2",
            ("quay.io/org/bb:2", "org/bb", "bb:2", "quay.io/org/bb", "org/bb:2", "bb"),
        ),
        (
            "docker.io/library/cc:latest",
            (
                "docker.io/library/cc:latest",
                "library/cc",
                "cc:latest",
                "docker.io/library/cc",
                "library/cc:latest",
                "cc",
            ),
        ),
        ("localhost/aa:1", ("localhost/aa:1", "aa", "aa:1", "localhost/aa", "aa:1", "aa")),
        (
            "localhost/foo@sha256:" + "a" * 64,
            (
                "localhost/foo@sha256:" + "a" * 64,
                "foo",
                "foo@sha256:" + "a" * 64,
                "localhost/foo",
                "foo@sha256:" + "a" * 64,
                "foo",
            ),
        ),
        ("localhost/Upper:1", None),
    ],
    ids=["FL-R5", "FL-R6", "FL-R7", "FL-R8", "decision 18: unparseable"],
)
def test_reference_candidates(name: str, candidates: tuple[str, ...] | None) -> None:
    """FL-R2, FL-R5..FL-R8: the six candidates (three without a suffix), in order."""
    assert reference_candidates(name) == candidates


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        *((p, True) for p in ("bb", "bb:2", "org/bb", "*bb*", "quay.io/org/bb:2", "quay.io/*/bb", "bb:*", "quay.io/*/*")),
        *((p, False) for p in ("quay.io/bb", "*/bb:3", "q*")),
    ],
)  # fmt: skip
def test_reference_examples_fl_r5(pattern: str, expected: bool) -> None:
    """FL-R5: patterns that do and do not match quay.io/org/bb:2."""
    snap = snapshot([BB])
    assert (run(snap, [f"reference={pattern}"]) == ["quay.io/org/bb:2"]) is expected


def test_unparseable_names_are_skipped() -> None:
    """Decision 18: a stored name that does not parse is skipped; the others still match."""
    odd = with_record(BB, names=["localhost/Bad:1", "quay.io/org/bb:2"])
    assert run(snapshot([odd]), ["reference=bb"]) == ["localhost/Bad:1"]
    assert run(snapshot([odd]), ["reference=Bad"]) == []


@dataclass(frozen=True)
class GlobCase:
    pattern: str
    name: str
    expected: bool | object


GLOB_CASES = [
    # FL-R4: * and ? stop at "/"
    GlobCase("*", "abc", True),
    GlobCase("*", "a/b", False),
    GlobCase("a*", "a/b", False),
    GlobCase("a/*", "a/b", True),
    GlobCase("a*b", "a/b", False),
    GlobCase("a*/b", "abc/b", True),
    GlobCase("a?c", "abc", True),
    GlobCase("a?c", "a/c", False),
    GlobCase("a?", "a", False),
    # classes: ranges, ^ negates, ! does not
    GlobCase("[a-c]x", "bx", True),
    GlobCase("[a-c]x", "dx", False),
    GlobCase("[^a-c]x", "dx", True),
    GlobCase("[^a-c]x", "ax", False),
    GlobCase("[!a]x", "!x", True),
    GlobCase("[!a]x", "bx", False),
    GlobCase("[\\]]", "]", True),
    GlobCase("[\\-]", "-", True),
    # escapes and literals; case-sensitive
    GlobCase("a\\*b", "a*b", True),
    GlobCase("a\\*b", "axb", False),
    GlobCase("ABC", "abc", False),
    GlobCase("", "", True),
    GlobCase("", "a", False),
    GlobCase("**", "abc", True),
    GlobCase("*c", "abc", True),
    GlobCase("a*b*c", "axxbyyc", True),
    GlobCase("a*b*c", "axxbyy", False),
    # malformed patterns (FL-R4: an error, which callers treat as no match)
    GlobCase("[", "[", BAD_PATTERN),
    GlobCase("[a-", "a", BAD_PATTERN),
    GlobCase("[]", "a", BAD_PATTERN),
    GlobCase("[-a]", "a", BAD_PATTERN),
    GlobCase("a\\", "a", BAD_PATTERN),
    GlobCase("x[", "a", BAD_PATTERN),
    GlobCase("*x[", "abc", BAD_PATTERN),
    GlobCase("a*[", "abc", BAD_PATTERN),
    GlobCase("[\\", "a", BAD_PATTERN),
    GlobCase("[\udcff]", "a", BAD_PATTERN),  # invalid UTF-8 in a class
    GlobCase("a*b", "acb/b", False),
    GlobCase("x*", "abc", False),
    GlobCase("x*[", "abc", BAD_PATTERN),
    # runes: ? and classes take one character, other bytes compare exactly
    GlobCase("?", "é", True),
    GlobCase("[é]", "é", True),
    GlobCase("é*", "éa", True),
]


@pytest.mark.parametrize("case", GLOB_CASES, ids=lambda c: f"{c.pattern!r}~{c.name!r}")
def test_glob(case: GlobCase) -> None:
    """FL-R4: Go path.Match, by hand (fnmatch differs on /, [!..] and case)."""
    assert path_match(case.pattern, case.name) == case.expected


def test_decode_rune_rejects_invalid_utf8() -> None:
    """Go's utf8.DecodeRune: invalid or truncated sequences are U+FFFD, one byte wide."""
    assert decode_rune("€".encode(), 0) == (0x20AC, 3)
    assert decode_rune(b"\xe2\x82", 0) == (0xFFFD, 1)
    assert decode_rune(b"\xe2\x82\x41", 0) == (0xFFFD, 1)
    assert decode_rune(b"\xed\xa0\x80", 0) == (0xFFFD, 1)  # a surrogate
    assert decode_rune(b"\xff", 0) == (0xFFFD, 1)
    assert decode_rune("\U0001f600".encode(), 0) == (0x1F600, 4)


# --------------------------------------------------------------------------- FL-U


@dataclass(frozen=True)
class UntilCase:
    name: str
    value: str
    expected: int | str  # ns since the epoch, or the start of the error message
    offset: int = 0


UNTIL_CASES = [
    UntilCase("FL-U1 duration, floored to seconds", "1h", (NOW - 3600 * SECOND) // SECOND * SECOND),
    UntilCase("FL-U1 fractional hours", "1.5h", (NOW - 5400 * SECOND) // SECOND * SECOND),
    UntilCase("FL-U1 composite", "2h45m", (NOW - 9900 * SECOND) // SECOND * SECOND),
    UntilCase("FL-U1 ms", "300ms", (NOW - 300_000_000) // SECOND * SECOND),
    UntilCase("FL-U1 negative: the future", "-1h", (NOW + 3600 * SECOND) // SECOND * SECOND),
    UntilCase("FL-U1 micro sign", "5\u00b5s", NOW // SECOND * SECOND),
    UntilCase("FL-U1 +0 is a duration", "+0", NOW // SECOND * SECOND),
    UntilCase("FL-U6 0 is the epoch", "0", 0),
    UntilCase("FL-U5 unix seconds", "1700000000", 1_700_000_000 * SECOND),
    UntilCase("FL-U5 fraction by digits", "1.5", 1_500_000_000),
    UntilCase("FL-U5 nine digits", "1.000000001", 1_000_000_001),
    UntilCase("FL-U5 leading zeros", "1.05", 1_050_000_000),
    UntilCase("FL-U5 plus sign", "+5", 5 * SECOND),
    UntilCase("FL-U3 local date", "2000-01-01", 946_684_800 * SECOND),
    UntilCase("FL-U3 local date, offset +1h", "2000-01-01", (946_684_800 - 3600) * SECOND, 3600),
    UntilCase("FL-U3 T hour", "2000-01-01T10", (946_684_800 + 36000) * SECOND),
    UntilCase("FL-U3 T minute", "2000-01-01T10:30", (946_684_800 + 37800) * SECOND),
    UntilCase("FL-U3 one-digit hour (Go 1.19)", "2000-01-01T1:00", (946_684_800 + 3600) * SECOND),
    UntilCase("FL-U3 T second", "2000-01-01T10:30:15", (946_684_800 + 37815) * SECOND),
    UntilCase("FL-U3 nanoseconds", "2000-01-01T00:00:00.5", 946_684_800 * SECOND + 500_000_000),
    UntilCase("FL-U2 Z: UTC whatever the offset", "2000-01-01T00:00:00Z", 946_684_800 * SECOND, 7200),
    UntilCase("FL-U2 +hh:mm zone", "2000-01-01T02:00:00+02:00", 946_684_800 * SECOND, -3600),
    UntilCase("FL-U2 three dashes: -hh:mm zone", "2000-01-01T00:00:00-01:00", 946_688_400 * SECOND),
    UntilCase("FL-U3 zone, one colon (hour only)", "2000-01-01T05+05:00", 946_684_800 * SECOND),
    UntilCase("FL-U3 date with zone", "2000-01-01Z", 946_684_800 * SECOND, 3600),
    UntilCase("FL-U3 zoned nanoseconds", "2000-01-01T00:00:00.25Z", 946_684_800 * SECOND + 250_000_000),
    UntilCase("year 0", "0000-01-01", -62_167_219_200 * SECOND),
    UntilCase("leap day", "2000-02-29", 951_782_400 * SECOND),
    UntilCase("FL-U4 month", "2000-13-01", 'parsing time "2000-13-01": month out of range'),
    UntilCase("FL-U4 day", "2001-02-29", 'parsing time "2001-02-29": day out of range'),
    UntilCase("FL-U4 hour", "2000-01-01T24", 'parsing time "2000-01-01T24": hour out of range'),
    UntilCase("FL-U4 negative number", "-1", 'parsing time "-1" as "2006-01-02": cannot parse "-1" as "2006"'),
    UntilCase("FL-U4 lower-case z", "2000-01-01z", 'parsing time "2000-01-01z" as "2006-01-02Z07:00": cannot parse "z" as "Z07:00"'),
    UntilCase("FL-U4 ten fraction digits (Go 1.19)", "2000-01-01T00:00:00.1234567891", 'parsing time "2000-01-01T00:00:00.1234567891": extra text: "1"'),
    UntilCase("FL-U4 dangling dot", "2000-01-01T00:00:00.", 'parsing time "2000-01-01T00:00:00.": extra text: "."'),
    UntilCase("FL-U4 bad zone sign (observed)", "2000-01-01T00:00x01:00-", 'parsing time "2000-01-01T00:00x01:00-" as "2006-01-02T15:04Z07:00": cannot parse "-" as "Z07:00"'),
    UntilCase("FL-U4 non-ASCII is quoted as bytes (observed)", "2000-01-0é", 'parsing time "2000-01-0\\xc3\\xa9" as "2006-01-02": cannot parse "0\\xc3\\xa9" as "02"'),
    UntilCase("FL-U4 quote and backslash", '2000-01-0"\\', 'parsing time "2000-01-0\\"\\\\" as "2006-01-02": cannot parse "0\\"\\\\" as "02"'),
    UntilCase("FL-U4 hour not a number", "2000-01-01Tx", 'parsing time "2000-01-01Tx" as "2006-01-02T15": cannot parse "x" as "15"'),
    UntilCase("FL-U4 minute", "2000-01-01T10:61", 'parsing time "2000-01-01T10:61": minute out of range'),
    UntilCase("FL-U4 second", "2000-01-01T10:00:60", 'parsing time "2000-01-01T10:00:60": second out of range'),
    UntilCase("FL-U4 one-digit minute", "2000-01-01T10:6", 'parsing time "2000-01-01T10:6" as "2006-01-02T15:04": cannot parse "6" as "04"'),
    UntilCase("FL-U4 zone too short (observed)", "2000-01-01T10:00:00+01", 'parsing time "2000-01-01T10:00:00+01" as "2006-01-02T15:04Z07:00": cannot parse ":00+01" as "Z07:00"'),
    UntilCase("FL-U3 comma fraction after seconds (Go takes it)", "2000-01-01T00:00:00,5", 946_684_800 * SECOND + 500_000_000),
    UntilCase("FL-U5 seconds out of range", "99999999999999999999", 'failed to parse value as time or duration: "99999999999999999999"'),
    UntilCase("FL-U5 bad fraction", "1.x", 'failed to parse value as time or duration: "1.x"'),
    UntilCase("FL-U5 not a time", "notatime", 'failed to parse value as time or duration: "notatime"'),
    UntilCase("FL-U5 no fraction digits", "5.", 'failed to parse value as time or duration: "5."'),
    UntilCase("FL-U5 exponent", "1e5", 'failed to parse value as time or duration: "1e5"'),
    UntilCase("FL-U5 empty", "", 'failed to parse value as time or duration: ""'),
    UntilCase("FL-U5 unknown unit", "1d", 'failed to parse value as time or duration: "1d"'),
]  # fmt: skip


@pytest.mark.parametrize("case", UNTIL_CASES, ids=lambda c: c.name)
def test_until_instant(case: UntilCase) -> None:
    """FL-U1..FL-U6: the instant an until value means, or Go's error (observed on podman)."""
    result = until_instant(case.value, NOW, case.offset)
    if isinstance(case.expected, str):
        assert isinstance(result, Failure)
        assert result.kind is ErrorKind.FILTER_TIME
        assert result.message == case.expected
    else:
        assert result == case.expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300ms", 300_000_000),
        ("-1.5h", -5_400_000_000_000),
        ("2h45m", 9_900_000_000_000),
        ("1.h", 3_600_000_000_000),
        (".5s", 500_000_000),
        ("1us", 1_000),
        ("1\u03bcs", 1_000),
        ("9223372036854775807ns", 9_223_372_036_854_775_807),
        ("9223372036854775808ns", None),
        ("99999999999999999999ns", None),
        ("1.99999999999999999999999s", 2_000_000_000),  # float64, as in Go
        ("2562048h", None),
        (".9223372036854775809s", 922_337_203),
        ("9223372036.9s", None),
        ("9223372036s854775808ns", None),
        ("5124095h", None),
        ("1.5x", None),
        ("x", None),
        ("", None),
        ("-", None),
        ("1", None),
        (".s", None),
        ("1hh", None),
        ("h", None),
    ],
)
def test_parse_go_duration(text: str, expected: int | None) -> None:
    """Go 1.19 time.ParseDuration: units, fractions, signs, overflow."""
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("+7", 7), ("-7", -7), ("9223372036854775807", 2**63 - 1), ("9223372036854775808", None), ("", None), ("+", None), (" 1", None), ("1_000", None)],
)  # fmt: skip
def test_parse_go_int64(text: str, expected: int | None) -> None:
    """strconv.ParseInt(s, 10, 64) as FL-U5 uses it."""
    assert parse_go_int64(text) == expected


def test_manifest_filter_on_an_unreadable_manifest() -> None:
    """FL-T10, FL-P9: a manifest that cannot be read fails the filter; corrupted → skipped."""
    broken = with_record(
        image("m", ["localhost/m:1"], layers=layer_chain("m1")), top_layer="d" * 64
    )
    broken = replace(broken, blobs=broken.blobs.discard("manifest"))
    snap = snapshot([broken])
    outcome = filter_images(snap, list(snap.images), ["manifest=false"], context())
    assert outcome.images == pvector()
    assert [e.rule for e in outcome.errors] == ["EX-1"]


def test_compiled_filters_in_group_order() -> None:
    """FL-P4: every compiled filter, group by group."""
    compiled = compile_filters(STORE, ["id=x", "label=a", "id=y"], context())
    assert isinstance(compiled, CompiledFilters)
    assert [f.spec.text for f in compiled.filters] == ["id=x", "id=y", "label=a"]
    assert [f.negate for f in compiled.filters] == [False, False, False]


def test_bad_pattern_text() -> None:
    """Go's path.ErrBadPattern text."""
    assert str(BAD_PATTERN) == "syntax error in pattern"


def test_until_needs_the_clock() -> None:
    """Decision 6: the core never reads a clock; a context without now is a caller bug."""
    with pytest.raises(ValueError, match="now_ns"):
        compile_filters(STORE, ["until=1h"], Context())
