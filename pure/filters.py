"""Image filters: ``key=value`` strings compiled into immutable predicates (FL-*).

Compilation (:func:`compile_filters`) follows the seed's ``compileImageFilters``
step by step, in the order the filters are given:

* FL-P1: each string is split at its first ``=`` into key and value (no ``=`` is an
  error). With ``Semantics.filter_negation`` (podman 4.3.1, POD-F-15) a string that
  contains ``!=`` is split there first, and the compiled filter is negated.
* FL-P2: the key must be one of ``after``, ``since``, ``before``, ``containers``,
  ``dangling``, ``id``, ``intermediate``, ``label``, ``readonly``, ``manifest``,
  ``reference``, ``until``; it is checked when its string is reached, so an
  earlier filter's lookup may already have failed.
* FL-P6: ``containers``, ``dangling``, ``intermediate``, ``readonly`` and
  ``manifest`` may appear once (seed); podman 4.3.1 accepts a repeat with the
  **same value string** (``Semantics.repeated_filter_same_value_allowed``, POD-F-10).
  The repeat check comes before the value is parsed.
* FL-P7: boolean values are Go ``strconv.ParseBool`` values; the error message has
  key and value swapped, as in the seed.
* FL-T1/FL-T2: ``after``/``since``/``before`` look the image up at compile time
  (:func:`libimage.pure.lookup.lookup_image`) and keep its ``created`` time.
* FL-T3: ``until`` is parsed against ``context.now_ns`` and
  ``context.utc_offset_seconds`` (:mod:`libimage.pure.timeparse`).
* FL-T4: ``containers=external`` needs the caller's ``is_external`` predicate.

Combination (FL-P4, FL-P5): filters are grouped by key (``after`` and ``since``
share the group ``since``); an image matches when every group has at least one
matching filter. Groups are checked in the order their keys first appear
(decision 3), filters within a group in the order given, stopping at the first
match. A filter that fails on an image makes the image "not matching" if the image
is corrupted (IP-12; the failure is reported as a warning), and aborts the listing
otherwise (FL-P9).

Evaluation reads facts through :mod:`libimage.pure.facts`, whose layer tree and
config reads are memoised per snapshot (FL-P8), and memoises ``has_children`` per
image here, so filtering a whole store reads each fact once.

>>> from libimage.pure.semantics import PODMAN_4_3
>>> split_filter("reference!=aa", PODMAN_4_3)
FilterSpec(text='reference!=aa', key='reference', value='aa', negate=True)
>>> split_filter("label", PODMAN_4_3).message
'invalid image filter "label": must be in the format "filter=value or filter!=value"'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure import facts, lookup
from libimage.pure.context import Context
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.glob import matches as glob_matches
from libimage.pure.manifest import is_corrupted, is_manifest_list
from libimage.pure.reference import go_quote, parse
from libimage.pure.semantics import Semantics
from libimage.pure.snapshot import Snapshot, StoredImage, Unreadable, containers_of
from libimage.pure.timeparse import until_instant

IsExternal = Callable[[str], bool]
"""The caller's ``IsExternalContainerFunc``: is this container ID external (FL-T4)?"""

SUPPORTED_KEYS = (
    "after",
    "since",
    "before",
    "containers",
    "dangling",
    "id",
    "intermediate",
    "label",
    "readonly",
    "manifest",
    "reference",
    "until",
)
"""FL-P2: every key the seed (and podman 4.3.1) accepts."""

SINGLE_USE_KEYS = frozenset({"containers", "dangling", "intermediate", "readonly", "manifest"})
"""FL-P6: keys that may not repeat (with a different value, in podman 4.3.1)."""

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """One filter string split into key and value (FL-P1); ``negate`` for ``!=`` (POD-F-15)."""

    text: str
    key: str
    value: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class CreatedAfter:
    """FL-T1 (``after``, ``since``): created strictly later than ``instant_ns``."""

    instant_ns: int


@dataclass(frozen=True, slots=True)
class CreatedBefore:
    """FL-T2 (``before``), FL-T3 (``until``): created strictly earlier than ``instant_ns``."""

    instant_ns: int


@dataclass(frozen=True, slots=True)
class HasContainers:
    """FL-T4 ``containers=true|false``: whether any storage container uses the image (IP-9)."""

    value: bool


@dataclass(frozen=True, slots=True)
class OnlyExternalContainers:
    """FL-T4 ``containers=external``: every container of the image is external (vacuous for 0)."""


@dataclass(frozen=True, slots=True)
class IsDangling:
    """FL-T5: ``IsDangling(image) == value`` (IP-5)."""

    value: bool


@dataclass(frozen=True, slots=True)
class IsIntermediate:
    """FL-T6: ``IsIntermediate(image) == value`` (IP-6)."""

    value: bool


@dataclass(frozen=True, slots=True)
class IdEquals:
    """FL-T7: the image ID equals ``image_id`` exactly (no prefixes, no ``sha256:``)."""

    image_id: str


@dataclass(frozen=True, slots=True)
class HasLabel:
    """FL-T8: a label ``key`` (any value when ``value`` is empty), from the config (IP-10).

    With ``key_wildcards`` (podman 4.3.1) a key containing ``*`` also matches every
    label key that the glob ``*<key>*`` matches (``/`` treated as an ordinary byte).
    """

    key: str
    value: str
    key_wildcards: bool = False


@dataclass(frozen=True, slots=True)
class IsReadOnly:
    """FL-T9: ``IsReadOnly(image) == value`` (IP-4)."""

    value: bool


@dataclass(frozen=True, slots=True)
class IsManifestList:
    """FL-T10: ``IsManifestList(image) == value`` (IP-11)."""

    value: bool


@dataclass(frozen=True, slots=True)
class ReferenceMatches:
    """FL-T11, FL-R1..R8: the glob ``pattern`` matches a candidate of one of the names."""

    pattern: str


Predicate = (
    CreatedAfter
    | CreatedBefore
    | HasContainers
    | OnlyExternalContainers
    | IsDangling
    | IsIntermediate
    | IdEquals
    | HasLabel
    | IsReadOnly
    | IsManifestList
    | ReferenceMatches
)


@dataclass(frozen=True, slots=True)
class Filter:
    """One compiled filter: the string it came from, its group, its predicate."""

    spec: FilterSpec
    group: str  # FL-P4: the key, except "since" for both after and since
    predicate: Predicate

    @property
    def negate(self) -> bool:
        return self.spec.negate


@dataclass(frozen=True, slots=True)
class FilterGroup:
    """The filters of one key (FL-P5: OR within the group), in the order given."""

    key: str
    filters: PVector[Filter]


@dataclass(frozen=True, slots=True)
class CompiledFilters:
    """All groups (FL-P5: AND across groups), in the order their keys first appeared.

    ``warnings`` are what the compile-time lookups logged (``after``/``since``/``before``).
    """

    groups: PVector[FilterGroup]
    warnings: PVector[str] = field(default_factory=pvector)

    @property
    def filters(self) -> tuple[Filter, ...]:
        """Every compiled filter, group by group."""
        return tuple(item for group in self.groups for item in group.filters)


@dataclass(frozen=True, slots=True)
class CorruptedSkip:
    """FL-P9: a filter failed on a corrupted image, which therefore does not match.

    ``warning`` is the corrupted-image error the seed logs (IP-12).
    """

    warning: Failure


Verdict = bool | Failure | CorruptedSkip
"""What :func:`image_matches` says about one image."""


# --------------------------------------------------------------------------- parsing


def split_filter(text: str, semantics: Semantics) -> FilterSpec | Failure:
    """Split one filter string into key and value (FL-P1, POD-F-12, POD-F-15).

    The split is at the first ``=``; with ``semantics.filter_negation`` a string
    containing ``!=`` is split at its first ``!=`` instead and negated (so
    ``label=a!=b`` has the key ``label=a``, as in podman 4.3.1). The value may be
    empty or contain ``=``.
    """
    if semantics.filter_negation:
        key, separator, value = text.partition("!=")
        if separator:
            return FilterSpec(text, key, value, negate=True)
    key, separator, value = text.partition("=")
    if separator:
        return FilterSpec(text, key, value)
    expected = (
        "filter=value or filter!=value"
        if semantics.filter_format_message_mentions_negation
        else "filter=value"
    )
    return Failure(
        ErrorKind.FILTER_INVALID_FORMAT,
        text,
        f"invalid image filter {go_quote(text)}: must be in the format {go_quote(expected)}",
        "FL-P1",
    )


def parse_go_bool(value: str) -> bool | None:
    """Go's ``strconv.ParseBool``: ``1 t T TRUE true True`` / ``0 f F FALSE false False``.

    >>> parse_go_bool("T"), parse_go_bool("False"), parse_go_bool("yes")
    (True, False, None)
    """
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _repeated(spec: FilterSpec, seen: dict[str, str], semantics: Semantics) -> Failure | None:
    """FL-P6 / POD-F-10: the repeat check, made before the value is parsed."""
    previous = seen.get(spec.key)
    seen[spec.key] = spec.value
    if previous is None:
        return None
    if semantics.repeated_filter_same_value_allowed:
        if previous == spec.value:
            return None
        message = (
            f"specifying {go_quote(spec.key)} filter more than once "
            "with different values is not supported"
        )
    else:
        # quirk (FL-P6): the seed's message says "then".
        message = f"specifying {go_quote(spec.key)} filter more then once is not supported"
    return Failure(ErrorKind.FILTER_REPEATED, spec.text, message, "FL-P6")


def _boolean(spec: FilterSpec) -> bool | Failure:
    parsed = parse_go_bool(spec.value)
    if parsed is not None:
        return parsed
    # quirk (FL-P7): key and value are swapped in the seed's message.
    return Failure(
        ErrorKind.FILTER_INVALID_VALUE,
        spec.text,
        f"non-boolean value {go_quote(spec.key)} for {spec.value} filter: "
        f"strconv.ParseBool: parsing {go_quote(spec.value)}: invalid syntax",
        "FL-P7",
    )


def _image_time(
    snapshot: Snapshot, spec: FilterSpec, context: Context, warnings: list[str]
) -> int | Failure:
    """FL-T1, FL-T2: the created time of the image ``spec.value`` names (``LookupImage``)."""
    result = lookup.lookup_image(snapshot, spec.value, lookup.LookupOptions(), context)
    warnings.extend(result.warnings)
    if result.image is not None:
        return result.image.created
    cause = result.failure.message if result.failure is not None else ""
    return Failure(
        ErrorKind.FILTER_IMAGE_LOOKUP,
        spec.text,
        f"could not find local image for filter filter {go_quote(spec.key)}="
        f"{go_quote(spec.value)}: {cause}",
        "FL-T1",
    )


def _compile_one(
    snapshot: Snapshot,
    spec: FilterSpec,
    context: Context,
    *,
    seen: dict[str, str],
    is_external: IsExternal | None,
    warnings: list[str],
) -> Filter | Failure:
    key, value = spec.key, spec.value
    semantics = context.semantics
    predicate: Predicate | Failure
    group = key
    if key in ("after", "since"):
        created = _image_time(snapshot, spec, context, warnings)
        predicate = created if isinstance(created, Failure) else CreatedAfter(created)
        group = "since"  # FL-P4: after and since OR together
    elif key == "before":
        created = _image_time(snapshot, spec, context, warnings)
        predicate = created if isinstance(created, Failure) else CreatedBefore(created)
    elif key == "containers":
        repeated = _repeated(spec, seen, semantics)
        if repeated is not None:
            return repeated
        if value in ("true", "false"):
            predicate = HasContainers(value == "true")
        elif value != "external":
            predicate = Failure(
                ErrorKind.FILTER_INVALID_VALUE,
                spec.text,
                f"unsupported value {go_quote(value)} for containers filter",
                "FL-T4",
            )
        elif is_external is None:
            predicate = Failure(
                ErrorKind.FILTER_NEEDS_CALLBACK,
                spec.text,
                "libimage error: external containers filter without callback",
                "FL-T4",
            )
        else:
            predicate = OnlyExternalContainers()
    elif key in ("dangling", "intermediate", "readonly", "manifest"):
        repeated = _repeated(spec, seen, semantics)
        if repeated is not None:
            return repeated
        flag = _boolean(spec)
        if isinstance(flag, Failure):
            return flag
        if key == "dangling":
            predicate = IsDangling(flag)
        elif key == "intermediate":
            predicate = IsIntermediate(flag)
        elif key == "readonly":
            predicate = IsReadOnly(flag)
        else:
            predicate = IsManifestList(flag)
    elif key == "id":
        predicate = IdEquals(value)
    elif key == "label":
        label_key, _, label_value = value.partition("=")
        predicate = HasLabel(label_key, label_value, semantics.label_filter_key_wildcards)
    elif key == "reference":
        predicate = ReferenceMatches(value)
    elif key == "until":
        if context.now_ns is None:
            raise ValueError("the until filter needs context.now_ns (decision 6)")
        instant = until_instant(value, context.now_ns, context.utc_offset_seconds)
        predicate = instant if isinstance(instant, Failure) else CreatedBefore(instant)
    else:
        return Failure(
            ErrorKind.FILTER_UNSUPPORTED,
            spec.text,
            f"unsupported image filter {go_quote(key)}",
            "FL-P2",
        )
    if isinstance(predicate, Failure):
        return predicate
    return Filter(spec, group, predicate)


def compile_filters(
    snapshot: Snapshot,
    filters: Sequence[str],
    context: Context,
    is_external: IsExternal | None = None,
) -> CompiledFilters | Failure:
    """Compile ``filters`` (FL-P1..FL-P8); the first error is returned as is (FL-P3).

    Filters are compiled in the order given; groups keep the order in which their
    keys first appear (decision 3). ``context`` supplies the semantics profile, the
    lookup inputs for ``after``/``since``/``before`` and the clock for ``until``.
    """
    seen: dict[str, str] = {}
    grouped: dict[str, list[Filter]] = {}
    warnings: list[str] = []
    for text in filters:
        spec = split_filter(text, context.semantics)
        if isinstance(spec, Failure):
            return spec
        compiled = _compile_one(
            snapshot, spec, context, seen=seen, is_external=is_external, warnings=warnings
        )
        if isinstance(compiled, Failure):
            return compiled
        grouped.setdefault(compiled.group, []).append(compiled)
    return CompiledFilters(
        pvector(FilterGroup(key, pvector(items)) for key, items in grouped.items()),
        pvector(warnings),
    )


# --------------------------------------------------------------------------- evaluation


class _ChildrenMemo:
    """``has_children`` answers of one snapshot, keyed by (image ID, store)."""

    __slots__ = ("answers",)

    def __init__(self) -> None:
        self.answers: dict[tuple[str, int], bool | Failure] = {}


def has_children(snapshot: Snapshot, image: StoredImage) -> bool | Failure:
    """:func:`libimage.pure.facts.has_children`, memoised for the snapshot."""
    memo = snapshot.memo.get(_ChildrenMemo)
    if not isinstance(memo, _ChildrenMemo):
        memo = _ChildrenMemo()
        snapshot.memo[_ChildrenMemo] = memo
    key = (image.id, image.store_index)
    answer = memo.answers.get(key)
    if answer is None:
        answer = facts.has_children(snapshot, image)
        memo.answers[key] = answer
    return answer


def is_dangling(snapshot: Snapshot, image: StoredImage) -> bool | Failure:
    """IP-5 with the memoised children answer: no names and no children."""
    if image.names:
        return False
    found = has_children(snapshot, image)
    return found if isinstance(found, Failure) else not found


def is_intermediate(snapshot: Snapshot, image: StoredImage) -> bool | Failure:
    """IP-6 with the memoised children answer: no names and at least one child."""
    if image.names:
        return False
    return has_children(snapshot, image)


def reference_candidates(name: str) -> tuple[str, ...] | None:
    """The strings a ``reference`` pattern is matched against for one name (FL-R1, FL-R2).

    The name is parsed without normalisation; None when it does not parse (such a
    stored name is skipped, decision 18).

    >>> reference_candidates("quay.io/org/bb:2")
    ('quay.io/org/bb:2', 'org/bb', 'bb:2', 'quay.io/org/bb', 'org/bb:2', 'bb')
    >>> reference_candidates("busybox")
    ('busybox', 'busybox', 'busybox')
    """
    try:
        ref = parse(name)
    except LibimageError:
        return None
    full = str(ref)
    candidates = [full, ref.path, full[full.rfind("/") + 1 :]]
    trimmed = ref.name
    if full != trimmed:
        suffix = full[len(trimmed) :]
        candidates += [trimmed, ref.path + suffix, trimmed[trimmed.rfind("/") + 1 :]]
    return tuple(candidates)


def _label_key_matches(pattern: str, label_key: str) -> bool:
    """containers/common v0.50.1 ``matchPattern``: ``*<pattern>*`` with ``/`` as ``|``."""
    if "*" not in pattern:
        return False
    wrapped = f"*{pattern}*".replace("/", "|")
    return glob_matches(wrapped, label_key.replace("/", "|"))


def _check(
    predicate: Predicate,
    snapshot: Snapshot,
    image: StoredImage,
    is_external: IsExternal | None,
) -> bool | Failure:
    """One predicate on one image; a Failure is a runtime error (FL-P9)."""
    match predicate:
        case CreatedAfter(instant_ns=instant):
            return image.created > instant
        case CreatedBefore(instant_ns=instant):
            return image.created < instant
        case HasContainers(value=value):
            return bool(containers_of(snapshot, image.id)) == value
        case OnlyExternalContainers():
            if is_external is None:  # pragma: no cover - refused at compile time (FL-T4)
                raise ValueError("containers=external needs an is_external predicate")
            return all(is_external(used.id) for used in containers_of(snapshot, image.id))
        case IsDangling(value=value):
            dangling = is_dangling(snapshot, image)
            return dangling if isinstance(dangling, Failure) else dangling == value
        case IsIntermediate(value=value):
            intermediate = is_intermediate(snapshot, image)
            return intermediate if isinstance(intermediate, Failure) else intermediate == value
        case IdEquals(image_id=image_id):
            return image.id == image_id
        case HasLabel(key=key, value=value, key_wildcards=wildcards):
            found = facts.labels(snapshot, image)
            if isinstance(found, Failure):
                return found
            for label_key, label_value in (found or {}).items():
                if value and label_value != value:
                    continue
                if label_key == key or (wildcards and _label_key_matches(key, label_key)):
                    return True
            return False
        case IsReadOnly(value=value):
            return image.read_only == value
        case IsManifestList(value=value):
            listed = is_manifest_list(snapshot, image)
            if isinstance(listed, Unreadable):
                return Failure(
                    ErrorKind.FILTER_RUNTIME,
                    image.id,
                    f"{listed.what}: {listed.reason}",
                    "FL-T10",
                )
            return listed == value
        case ReferenceMatches(pattern=pattern):
            for name in image.names:
                candidates = reference_candidates(name)
                if candidates and any(glob_matches(pattern, c) for c in candidates):
                    return True
            return False


def image_matches(
    compiled: CompiledFilters,
    snapshot: Snapshot,
    image: StoredImage,
    is_external: IsExternal | None = None,
) -> Verdict:
    """Does ``image`` pass every group (FL-P5)? A runtime error follows FL-P9.

    Groups in order; within a group, filters in order until one matches (a negated
    filter matches when its predicate does not). When a filter fails, the image's
    corruption check (IP-12) decides: corrupted → :class:`CorruptedSkip` (no match);
    sound → the failure, which aborts the listing.
    """
    for group in compiled.groups:
        matched = False
        for item in group.filters:
            outcome = _check(item.predicate, snapshot, image, is_external)
            if isinstance(outcome, Failure):
                corrupted = is_corrupted(snapshot, image)
                if corrupted is not None:
                    return CorruptedSkip(corrupted)
                return outcome
            matched = outcome != item.negate
            if matched:
                break
        if not matched:
            return False
    return True


@dataclass(frozen=True, slots=True)
class FilterResult:
    """The images that passed, in input order (LS-5), or the failure.

    ``errors`` are the corrupted images a filter failed on (FL-P9: the seed logs them
    at error level and goes on); ``warnings`` what the compile-time lookups logged.
    """

    images: PVector[StoredImage]
    failure: Failure | None = None
    errors: PVector[Failure] = field(default_factory=pvector)
    warnings: PVector[str] = field(default_factory=pvector)


def filter_images(
    snapshot: Snapshot,
    images: Sequence[StoredImage],
    filters: Sequence[str],
    context: Context,
    is_external: IsExternal | None = None,
) -> FilterResult:
    """The seed's ``filterImages`` (LS-4, LS-5, FL-P3, FL-P9).

    With no filters or no images, ``images`` come back unchanged and the filters
    are never compiled (LS-4). Otherwise every filter is compiled first; then each
    image is checked in order. The first runtime error on a sound image aborts.
    """
    if not filters or not images:
        return FilterResult(pvector(images))
    compiled = compile_filters(snapshot, filters, context, is_external)
    if isinstance(compiled, Failure):
        return FilterResult(pvector(), compiled)
    kept: list[StoredImage] = []
    errors: list[Failure] = []
    for image in images:
        verdict = image_matches(compiled, snapshot, image, is_external)
        if isinstance(verdict, Failure):
            return FilterResult(pvector(), verdict, pvector(errors), compiled.warnings)
        if isinstance(verdict, CorruptedSkip):
            errors.append(verdict.warning)
        elif verdict:
            kept.append(image)
    return FilterResult(pvector(kept), None, pvector(errors), compiled.warnings)
