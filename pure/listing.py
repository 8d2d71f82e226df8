"""``ListImages`` and the facts ``podman images`` prints about each image (LS, IP, POD-I).

:func:`list_images` is the seed's ``ListImages`` (LS-1..LS-6):

* with names, each name is looked up in turn (:func:`libimage.pure.lookup.lookup_image`,
  default options); the first failure aborts; results keep the order of the names
  and are not deduplicated (LS-2);
* without names, every image of the snapshot in store order: read-write store
  first, then each additional read-only store; an ID present in both appears twice
  (LS-3);
* then the filters (:mod:`libimage.pure.filters`); no filters or no candidates
  means the filters are never compiled, so invalid filters are no error on an empty
  store (LS-4); order is kept (LS-5); nothing is hidden or sorted (LS-6).

:func:`summarize` computes what podman's ``images --format json`` prints for one
image (:class:`ImageSummary`, POD-I-4): parent (LT-P*), RepoDigests, size (IP-13),
labels (IP-10), container count (IP-9), dangling (IP-5), digest (ST-3), names
history (IP-3) and created time (IP-7). Facts come from per-snapshot memos (the
layer tree, configs, ``has_children``), so summarising every image of a large store
reads each fact once. Where podman 4.3.1 would abort the whole listing because one
image's fact cannot be computed (a corrupted image), the summary keeps a fallback
value and records the error in ``problems`` (issue #2: the other images keep
working).

The rest of the module is podman's presentation (POD-I-1, POD-I-4, POD-I-6) as pure
functions: rows per name, newest first, human sizes and ages, the aligned table and
the JSON document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyrsistent import pvector
from pyrsistent.typing import PMap, PVector

from libimage.pure import facts
from libimage.pure.context import Context
from libimage.pure.errors import Failure, LibimageError
from libimage.pure.filters import IsExternal, filter_images, is_dangling
from libimage.pure.lookup import LookupOptions, lookup_image
from libimage.pure.reference import go_quote, parse
from libimage.pure.snapshot import Snapshot, StoredImage, containers_of, image_digests

SECOND_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ListResult:
    """The listed images (or the failure that aborted the listing), and what was logged.

    ``errors`` are what the seed logs at error level and continues after: a filter
    that failed on a corrupted image (FL-P9, IP-12). ``warnings`` are what lookups
    logged (names and ``after``/``since``/``before`` values; decision 18, LK-9).
    """

    images: PVector[StoredImage] = field(default_factory=pvector)
    failure: Failure | None = None
    errors: PVector[Failure] = field(default_factory=pvector)
    warnings: PVector[str] = field(default_factory=pvector)

    @property
    def ok(self) -> bool:
        return self.failure is None


def list_images(
    snapshot: Snapshot,
    names: Sequence[str],
    filters: Sequence[str],
    context: Context,
    is_external: IsExternal | None = None,
) -> ListResult:
    """``ListImages(names, {Filters, IsExternalContainerFunc})`` (LS-1..LS-6).

    ``is_external`` is the caller's predicate for ``containers=external`` (FL-T4);
    ``context`` gives the lookup inputs, the semantics profile and, for ``until``,
    the current time and UTC offset.

    >>> from libimage.spec.builders import image, snapshot
    >>> snap = snapshot([image("a", ["localhost/a:1"]), image("b", ["localhost/b:1"])])
    >>> [i.names[0] for i in list_images(snap, ["b:1", "a:1", "b:1"], [], Context()).images]
    ['localhost/b:1', 'localhost/a:1', 'localhost/b:1']
    >>> list_images(snap, ["nope"], [], Context()).failure.message
    'nope: image not known'
    >>> list_images(snapshot([]), [], ["foo=bar"], Context()).ok
    True
    """
    candidates: list[StoredImage] = []
    warnings: list[str] = []
    if names:
        for name in names:
            found = lookup_image(snapshot, name, LookupOptions(), context)
            warnings.extend(found.warnings)
            if found.image is None:
                assert found.failure is not None
                # LS-2: the first error aborts.
                return ListResult(failure=found.failure, warnings=pvector(warnings))
            candidates.append(found.image)
    else:
        candidates = list(snapshot.images)  # LS-3
    outcome = filter_images(snapshot, candidates, filters, context, is_external)
    return ListResult(
        outcome.images, outcome.failure, outcome.errors, pvector(warnings + list(outcome.warnings))
    )


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """What ``podman images --format json`` reports about one image (POD-I-4).

    ``created`` is whole seconds (Go ``Unix()``, floored), ``created_ns`` the stored
    time. ``size`` and ``virtual_size`` are IP-13 (``-1`` when it cannot be
    computed); ``shared_size`` is always 0, as in podman. ``problems`` are the facts
    podman 4.3.1 would have aborted the listing for; the fields they concern hold
    fallbacks (``-1`` size, no labels, no parent, not dangling).
    """

    id: str
    parent_id: str
    repo_digests: PVector[str]
    size: int
    virtual_size: int
    labels: PMap[str, str] | None
    containers: int
    read_only: bool
    dangling: bool
    names: PVector[str]
    digest: str
    history: PVector[str]
    created: int
    created_ns: int
    shared_size: int = 0
    problems: PVector[Failure] = field(default_factory=pvector)


def _problem(image: StoredImage, what: str, failure: Failure) -> Failure:
    # The texts podman 4.3.1's images_list.go wraps these errors with.
    return Failure(failure.kind, image.id, what.format(go_quote(image.id)) + failure.message)


_REMOVE_HINT = "you may need to remove the image to resolve the error: "


def summarize(snapshot: Snapshot, image: StoredImage) -> ImageSummary:
    """The :class:`ImageSummary` of ``image`` (POD-I-4, POD-I-5, IP-*, LT-P*)."""
    problems: list[Failure] = []
    dangling = is_dangling(snapshot, image)
    if isinstance(dangling, Failure):
        problems.append(_problem(image, "checking if image {} is dangling: ", dangling))
        dangling = False
    labels = facts.labels(snapshot, image)
    if isinstance(labels, Failure):
        problems.append(_problem(image, "retrieving label for image {}: " + _REMOVE_HINT, labels))
        labels = None
    size = facts.image_size(snapshot, image)
    if isinstance(size, Failure):
        problems.append(_problem(image, "retrieving size of image {}: " + _REMOVE_HINT, size))
        size = -1
    parent = facts.parent(snapshot, image)
    listed = image_digests(image)
    parent_id = ""
    if isinstance(parent, Failure):
        problems.append(_problem(image, "retrieving parent of image {}: " + _REMOVE_HINT, parent))
    elif parent is not None:
        parent_id = parent.id
    return ImageSummary(
        id=image.id,
        parent_id=parent_id,
        repo_digests=pvector(facts.repo_digests(image, listed)),
        size=size,
        virtual_size=size,
        labels=labels,
        containers=len(containers_of(snapshot, image.id)),
        read_only=image.read_only,
        dangling=dangling,
        names=image.names,
        digest=listed[0] if listed else "",  # image_digest (ST-3), from the list computed once
        history=image.names_history,
        created=image.created // SECOND_NS,
        created_ns=image.created,
        problems=pvector(problems),
    )


def summarize_all(snapshot: Snapshot, images: Iterable[StoredImage]) -> PVector[ImageSummary]:
    """:func:`summarize` for each image, in the order given."""
    return pvector(summarize(snapshot, image) for image in images)


# --------------------------------------------------------------------------- presentation

NONE = "<none>"
TABLE_HEADERS = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")
READ_ONLY_HEADER = "R/O"


def repository_and_tag(name: str) -> tuple[str, str] | None:
    """podman's ``tokenRepoTag``: (repository, tag or ``<none>``); None if unparseable.

    >>> repository_and_tag("quay.io/org/bb:2"), repository_and_tag("localhost/x@sha256:" + "a" * 64)
    (('quay.io/org/bb', '2'), ('localhost/x', '<none>'))
    """
    try:
        ref = parse(name)
    except LibimageError:
        return None
    return ref.name or NONE, ref.tag or NONE


def name_rows(names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The table rows of one image (POD-I-1): one per tagged name, else one.

    Names with a tag give a row each, in stored order; when none has a tag, the
    first digest-only name gives the one row; with no usable names, ``<none>``
    twice. compat (decision 18): podman 4.3.1 aborts on a name that does not parse;
    such names are skipped here.
    """
    tagged: list[tuple[str, str]] = []
    untagged: list[tuple[str, str]] = []
    for name in names:
        pair = repository_and_tag(name)
        if pair is None:
            continue
        (untagged if pair[1] == NONE else tagged).append(pair)
    if tagged:
        return tuple(tagged)
    if untagged:
        return (untagged[0],)
    return ((NONE, NONE),)


def newest_first(summaries: Sequence[ImageSummary]) -> tuple[ImageSummary, ...]:
    """Sorted by created second, newest first, ties in listing order (POD-I-1).

    compat (POD-I-1): podman sorts with Go's unstable ``sort.Slice``, which keeps
    ties in order only for up to 12 rows; this sort is stable for any number.
    """
    return tuple(sorted(summaries, key=lambda summary: -summary.created))


def shows_read_only_column(summaries: Sequence[ImageSummary]) -> bool:
    """compat (POD-I-6): podman shows the R/O column when the *last* listed image is read-only.

    ``summaries`` are in listing order (before sorting); podman keeps overwriting one
    flag while it walks them.
    """
    return bool(summaries) and summaries[-1].read_only


def display_id(image_id: str, no_trunc: bool) -> str:
    """The IMAGE ID column and ``-q`` output: 12 characters, or ``sha256:<ID>`` (POD-I-1)."""
    if not no_trunc and len(image_id) >= 12:
        return image_id[:12]
    return "sha256:" + image_id


def human_size(size: int) -> str:
    """``units.HumanSizeWithPrecision(size, 3)`` with a space before the unit (POD-I-1).

    >>> human_size(11331), human_size(999), human_size(999_999), human_size(1_500_000_000)
    ('11.3 kB', '999 B', '1e+03 kB', '1.5 GB')
    """
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    value = float(size)
    index = 0
    while value >= 1000.0 and index < len(units) - 1:
        value /= 1000.0
        index += 1
    number = f"{value:.3g}"
    return f"{number} {units[index]}"


def _go_trunc_div(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def _duration_in(duration_ns: int, unit_ns: int) -> float:
    # Go's Duration.Seconds/Minutes/Hours: whole units plus the remainder as a fraction.
    whole = _go_trunc_div(duration_ns, unit_ns)
    rest = duration_ns - whole * unit_ns
    return float(whole) + float(rest) / float(unit_ns)


def human_duration(duration_ns: int) -> str:
    """go-units ``HumanDuration`` (podman's CREATED column, without " ago").

    >>> [human_duration(s * SECOND_NS) for s in (0, 1, 59, 60, 3599, 5400, 86400 * 3)]
    ['Less than a second', '1 second', '59 seconds', 'About a minute', '59 minutes', \
'2 hours', '3 days']
    """
    seconds = int(_duration_in(duration_ns, SECOND_NS))
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(_duration_in(duration_ns, 60 * SECOND_NS))
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hour_ns = 3600 * SECOND_NS
    hours = int(_duration_in(duration_ns, hour_ns) + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(_duration_in(duration_ns, hour_ns)) // 24 // 365} years"


def created_since(created_seconds: int, now_ns: int) -> str:
    """The CREATED column: how long ago ``created_seconds`` was, as podman words it."""
    return human_duration(now_ns - created_seconds * SECOND_NS) + " ago"


def created_at(created_seconds: int) -> str:
    """``CreatedAt``: RFC 3339 in UTC, whole seconds (POD-I-4).

    >>> created_at(1_700_000_000), created_at(-62135596800)
    ('2023-11-14T22:13:20Z', '0001-01-01T00:00:00Z')
    """
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=created_seconds)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def table_rows(
    summaries: Sequence[ImageSummary], now_ns: int, *, no_trunc: bool = False
) -> tuple[tuple[str, ...], ...]:
    """The default ``podman images`` table, header first (POD-I-1, POD-I-6).

    One row per name (:func:`name_rows`), newest first; the R/O column when
    :func:`shows_read_only_column` says so. Cells are plain text: escaping control
    characters is the terminal adapter's job.
    """
    read_only = shows_read_only_column(summaries)
    header = TABLE_HEADERS + ((READ_ONLY_HEADER,) if read_only else ())
    rows: list[tuple[tuple[str, ...], int]] = []
    for summary in summaries:
        for repository, tag in name_rows(summary.names):
            row: tuple[str, ...] = (
                repository,
                tag,
                display_id(summary.id, no_trunc),
                created_since(summary.created, now_ns),
                human_size(summary.size),
            )
            if read_only:
                row += ("true" if summary.read_only else "false",)
            rows.append((row, summary.created))
    # Rows are sorted by the created second after expansion; ties keep their order.
    body = sorted(rows, key=lambda item: -item[1])
    return (header, *(row for row, _ in body))


def tabulate(rows: Sequence[Sequence[str]]) -> str:
    """Go's ``tabwriter`` as podman configures it: min width 12, padding 2, spaces.

    Every cell but the last of a line is padded to its column's width: the widest
    cell (in runes) plus 2, at least 12. The last cell is written as is.

    >>> print(tabulate([("REPOSITORY", "TAG", "SIZE"), ("localhost/abc", "1", "1 B")]), end="")
    REPOSITORY     TAG         SIZE
    localhost/abc  1           1 B
    """
    if not rows:
        return ""
    columns = max(len(row) for row in rows) - 1
    widths = [
        max([12, *(len(row[column]) + 2 for row in rows if column < len(row) - 1)])
        for column in range(columns)
    ]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[index]) for index, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1] + "\n")
    return "".join(lines)


def quiet_ids(summaries: Sequence[ImageSummary], *, no_trunc: bool = False) -> tuple[str, ...]:
    """``images -q``: the displayed IDs, newest first, each once (podman ``writeID``)."""
    seen: list[str] = []
    for summary in newest_first(summaries):
        shown = display_id(summary.id, no_trunc)
        if shown not in seen:
            seen.append(shown)
    return tuple(seen)


def summary_object(summary: ImageSummary) -> dict[str, object]:
    """One ``--format json`` object, keys in podman 4.3.1's order (POD-I-4).

    ``ReadOnly`` and ``Dangling`` appear only when true, ``Names``, ``Digest`` and
    ``History`` only when not empty; ``RepoTags`` is always null.
    """
    data: dict[str, object] = {
        "Id": summary.id,
        "ParentId": summary.parent_id,
        "RepoTags": None,
        "RepoDigests": list(summary.repo_digests),
        "Size": summary.size,
        "SharedSize": summary.shared_size,
        "VirtualSize": summary.virtual_size,
        "Labels": None if summary.labels is None else dict(sorted(summary.labels.items())),
        "Containers": summary.containers,
    }
    if summary.read_only:
        data["ReadOnly"] = True
    if summary.dangling:
        data["Dangling"] = True
    if summary.names:
        data["Names"] = list(summary.names)
    if summary.digest:
        data["Digest"] = summary.digest
    if summary.history:
        data["History"] = list(summary.history)
    data["Created"] = summary.created
    data["CreatedAt"] = created_at(summary.created)
    return data


_GO_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_GO_JSON_ESCAPES.update({"\u2028": "\\u2028", "\u2029": "\\u2029"})
_GO_JSON_ESCAPES.update({"\b": "\\u0008", "\f": "\\u000c"})
# Not Go: DEL and the C1 controls are escaped too (same JSON value, safe on a terminal).
_GO_JSON_ESCAPES.update({chr(code): f"\\u{code:04x}" for code in range(0x7F, 0xA0)})
_NEEDS_GO_ESCAPE = re.compile("[<>&\b\f\x7f-\x9f\u2028\u2029]")


def go_json_string(text: str) -> str:
    """A string as Go 1.19's ``encoding/json`` writes it (HTML-safe escapes).

    One difference on purpose: DEL and C1 control characters are escaped as well, so
    that printing the document cannot drive a terminal.

    >>> print(go_json_string('a<b>&"\\n\\b'))
    "a\\u003cb\\u003e\\u0026\\"\\n\\u0008"
    """
    if not text.isascii():
        # Go sees a lone surrogate (invalid UTF-8 read from a store) as U+FFFD.
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    if _NEEDS_GO_ESCAPE.search(text) is None:
        return json.dumps(text, ensure_ascii=False)
    inner = text.replace("\\", "\\\\").replace('"', '\\"')
    pieces = []
    for char in inner:
        escape = _GO_JSON_ESCAPES.get(char)
        if escape is not None:
            pieces.append(escape)
        elif char in "\n\r\t":
            pieces.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif ord(char) < 0x20:
            pieces.append(f"\\u{ord(char):04x}")
        else:
            pieces.append(char)
    return '"' + "".join(pieces) + '"'


def go_json(value: object, indent: str = "    ", level: int = 0) -> str:
    """``json.MarshalIndent(value, "", indent)`` for str, int, bool, None, list and dict."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_json_string(value)
    inner = indent * (level + 1)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [inner + go_json(item, indent, level + 1) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent * level + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        members = [
            inner + go_json_string(str(key)) + ": " + go_json(item, indent, level + 1)
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(members) + "\n" + indent * level + "}"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def images_json(summaries: Sequence[ImageSummary]) -> str:
    """The ``--format json`` document: one object per image, newest first (POD-I-4).

    compat (POD-I-4): podman 4.3.1 repeats an image's object once per name (a
    by-product of its table rows); each image appears here once.
    """
    return go_json([summary_object(summary) for summary in newest_first(summaries)])
