"""Local image lookup: ``LookupImage``, ``Exists`` and ``ResolveName`` (LK, ML, EX, RN).

This module's types are the contract other parts of the core build on (listing
resolves ``since``/``before`` and names through :func:`lookup_image`; removal looks
up every requested name through it).

Theory of operation
-------------------
:func:`lookup_image` follows the seed's ``LookupImage`` step by step, over a
snapshot instead of a store, and records every candidate it tries in a trace:

1. A ``<transport>:`` prefix (LK-2, TR-1..TR-4): ``containers-storage:`` names are
   resolved in the snapshot (resolved name ``""``); other transports are refused; a
   name no transport accepts is a plain name.
2. ``name:tag@digest`` loses its tag (LK-3, LN-1); ``sha256:`` is stripped (LK-4).
3. The platform options are completed from the context's choices and normalised
   (LK-5, PLAT-1 or DIV-5).
4. The name itself is looked up in the store: an ID, an exact stored name or a
   unique ID prefix (LK-6); then the short-name candidates and the docker.io
   candidate (LK-7, SN-2, NORM-3); then the digest and repo-tag search (LK-8, LN-4).
   In the ``podman-4.3`` profile (DIV-1) a full ID (or a ``sha256:`` name) is looked
   up in the store only, and the raw name comes after the short-name candidates.
5. Each candidate goes through ``lookupImageInLocalStorage`` (LK-9): found in the
   store (ST-2), tolerated when its manifest is missing (LK-11), manifest lists
   resolved to the instance for the wanted platform (ML-*), and the platform check
   (LK-9 step 5, or DIV-4's policy).

Every divergence between the profiles is one field of ``context.semantics``
(decision 1): ``short_names_before_id_prefix`` (DIV-1), ``sha256_needs_full_id``
(DIV-2), ``digest_match_runs_lookup_checks`` (DIV-3), ``platform_policy`` (DIV-4),
``normalize_platform_keeps_default_variant`` (DIV-5) and the registered transports
(TR-1). Nothing else differs between profiles.

Cost: a lookup by full ID, exact name or ID prefix uses the snapshot's index (a
dictionary probe or a binary search) and reads at most the few big-data items of
the image found; only the digest and repo-tag fallback (LK-8) visits every image.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.context import Context, Platform
from libimage.pure.errors import ErrorKind, Failure, LibimageError, wrap_unknown
from libimage.pure.manifest import (
    choose_instance,
    find_instance_image,
    image_platform,
    instance_list,
    instance_not_found,
    is_corrupted,
    is_manifest_list,
    load_manifest_list,
    open_image,
)
from libimage.pure.platform import (
    normalize_platform,
    platform_matches_podman,
    wanted_platforms,
)
from libimage.pure.reference import (
    go_quote,
    in_repo_tags,
    is_short_name,
    normalize_name,
    normalize_tagged_digested_string,
    parse,
    parse_docker_ref,
    tag_name_only,
)
from libimage.pure.registries import resolve_locally
from libimage.pure.semantics import PlatformPolicy
from libimage.pure.snapshot import Snapshot, StoredImage, Unreadable, find_in_store, is_full_id
from libimage.pure.transport import (
    ForeignReference,
    NotATransportReference,
    StorageReference,
    StoreIdentity,
    digest_positions,
    get_store_image,
    parse_image_name,
    resolve_image,
)

__all__ = [
    "ExistsResult",
    "LookupOptions",
    "LookupResult",
    "StepOutcome",
    "TraceStep",
    "check_exists",
    "exists",
    "lookup_image",
    "resolve_name",
]


@dataclass(frozen=True, slots=True)
class LookupOptions:
    """``LookupImageOptions`` (LK-1), including the two internal flags of the seed."""

    architecture: str = ""
    os: str = ""
    variant: str = ""
    manifest_list: bool = False
    lookup_manifest: bool = False  # only manifest lists are acceptable (RemoveImages)
    return_manifest_if_no_instance: bool = False  # RemoveImages without LookupManifest


class StepOutcome(enum.Enum):
    """What happened to one candidate the lookup tried (the explain trace)."""

    NOT_IN_STORE = "not in store"
    AMBIGUOUS_PREFIX = "ambiguous ID prefix"
    FOUND = "found in store"
    PLATFORM_MISMATCH = "platform mismatch"
    PLATFORM_MISMATCH_IGNORED = "platform mismatch ignored"
    MANIFEST_LIST_INSTANCE = "manifest list resolved to instance"
    MANIFEST_LIST_RETURNED = "manifest list returned"
    NO_INSTANCE = "no matching instance in manifest list"
    NOT_A_MANIFEST_LIST = "not a manifest list"
    CORRUPTED_TOLERATED = "corrupted image returned as is"
    SKIPPED = "skipped"
    ERROR = "error"
    CHOSEN = "chosen"


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a lookup: the candidate tried, the rule, and what came of it."""

    candidate: str
    rule: str
    outcome: StepOutcome
    detail: str = ""
    image_id: str = ""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The image found (or the failure) with the name it was found under, and the trace.

    Exactly one of ``image`` and ``failure`` is set. ``resolved_name`` is what the
    seed returns as its second value (empty for ``containers-storage:`` names). The
    trace ends in a ``CHOSEN`` step naming the image, or an ``ERROR`` step carrying the
    failure's text. ``warnings`` are what upstream logs at warning level (a corrupted
    image returned as is, LK-9 step 2) and the stored names skipped because they do
    not parse (decision 18).
    """

    image: StoredImage | None
    resolved_name: str = ""
    failure: Failure | None = None
    trace: PVector[TraceStep] = field(default_factory=pvector)
    warnings: PVector[str] = field(default_factory=pvector)
    # The parsed ``containers-storage:`` reference the image was found through (TR-4);
    # upstream keeps it with the image and opens the image through it (EX-1).
    storage_reference: StorageReference | None = None

    @property
    def found(self) -> bool:
        return self.image is not None


@dataclass(frozen=True, slots=True)
class _Wanted:
    """The platform options a candidate is checked against (after LK-5, or raw)."""

    os: str
    architecture: str
    variant: str

    @property
    def any(self) -> bool:
        return bool(self.os or self.architecture or self.variant)

    def __str__(self) -> str:
        parts = [self.os or "*", self.architecture or "*"]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)


class _Done(Exception):
    """Ends a lookup early with its result (keeps the seed's early returns readable)."""

    def __init__(self, result: LookupResult) -> None:
        super().__init__()
        self.result = result


# A subset of the reference grammar that covers what podman stores; every match parses,
# so only other names go through the full parser (decision 18's warning).
_OBVIOUSLY_VALID_NAME = re.compile(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?",
    re.ASCII,
)
_UNPARSEABLE_KEY = "libimage.pure.lookup.unparseable_names"


def _unparseable_names(snapshot: Snapshot) -> dict[int, tuple[str, ...]]:
    """Position → stored names that do not parse (decision 18), memoised per snapshot."""
    memo = snapshot.memo
    found = memo.get(_UNPARSEABLE_KEY)
    if isinstance(found, dict):
        return found
    bad: dict[int, tuple[str, ...]] = {}
    for position, image in enumerate(snapshot.images):
        names = [
            name
            for name in image.names
            if not (len(name) <= 255 and _OBVIOUSLY_VALID_NAME.fullmatch(name))
            and not _parses(name)
        ]
        if names:
            bad[position] = tuple(names)
    memo[_UNPARSEABLE_KEY] = bad
    return bad


def _parses(name: str) -> bool:
    try:
        parse(name)
    except LibimageError:
        return False
    return True


# The platform rules are pure functions of a few strings, asked again on every lookup.
@lru_cache(maxsize=1024)
def _normalized_platform(
    os_name: str, arch: str, variant: str, host: Platform, keep_default_variant: bool
) -> tuple[str, str, str]:
    return normalize_platform(os_name, arch, variant, host, keep_default_variant)


@lru_cache(maxsize=4096)
def _platform_matches(expected: Platform, image: Platform, host: Platform) -> bool:
    return platform_matches_podman(expected, image, host)


def _ambiguous(snapshot: Snapshot, text: str) -> bool:
    """True if some store has several IDs starting with ``text`` (ST-2's silent case)."""
    index = snapshot.index
    for store in index.stores:
        ids = index.sorted_ids[store]
        start = bisect_left(ids, text)
        if start + 1 < len(ids) and ids[start].startswith(text) and ids[start + 1].startswith(text):
            return True
    return False


class _Lookup:
    """One run of ``LookupImage``: the inputs, the trace so far, and the warnings."""

    def __init__(self, snapshot: Snapshot, options: LookupOptions, context: Context) -> None:
        self.snapshot = snapshot
        self.options = options
        self.context = context
        self.semantics = context.semantics
        self.trace: list[TraceStep] = []
        self.warnings: list[str] = []

    # -- results -----------------------------------------------------------------------

    def step(
        self,
        candidate: str,
        rule: str,
        outcome: StepOutcome,
        detail: str = "",
        image_id: str = "",
    ) -> None:
        self.trace.append(TraceStep(candidate, rule, outcome, detail, image_id))

    def chosen(
        self,
        image: StoredImage,
        resolved_name: str,
        shown: str,
        rule: str,
        reference: StorageReference | None = None,
    ) -> _Done:
        detail = f"resolved name {go_quote(resolved_name)}"
        self.step(shown, rule, StepOutcome.CHOSEN, detail, image.id)
        return _Done(
            LookupResult(
                image=image,
                resolved_name=resolved_name,
                trace=pvector(self.trace),
                warnings=pvector(self.warnings),
                storage_reference=reference,
            )
        )

    def failed(self, failure: Failure, shown: str) -> _Done:
        self.step(shown, failure.rule, StepOutcome.ERROR, failure.message)
        return _Done(
            LookupResult(
                image=None,
                failure=failure,
                trace=pvector(self.trace),
                warnings=pvector(self.warnings),
            )
        )

    def unknown(self, name: str, rule: str) -> _Done:
        return self.failed(wrap_unknown(name, rule), name)

    # -- the steps of LookupImage (LK-2..LK-8) -----------------------------------------------

    def run(self, name: str) -> LookupResult:
        try:
            self.lookup(name)
        except _Done as done:
            return done.result
        raise AssertionError("a lookup always ends in a result")  # pragma: no cover

    def lookup(self, name: str) -> None:
        semantics = self.semantics
        context = self.context
        store = StoreIdentity(
            context.store_graph_root, context.store_driver, context.store_run_root
        )
        parsed = parse_image_name(self.snapshot, name, semantics, store)
        typed_nil = False
        if isinstance(parsed, Failure):
            raise self.failed(parsed, name)
        if isinstance(parsed, ForeignReference):
            message = (
                f"unsupported transport {go_quote(parsed.transport)} for looking up local images"
            )
            raise self.failed(Failure(ErrorKind.UNSUPPORTED_TRANSPORT, name, message, "TR-2"), name)
        if isinstance(parsed, StorageReference):
            self.storage_reference(name, parsed)
        if isinstance(parsed, NotATransportReference):
            typed_nil = parsed.typed_nil
            if parsed.transport:
                detail = f"not a {parsed.transport} reference ({parsed.reason}): a plain name"
                self.step(name, "TR-2", StepOutcome.SKIPPED, detail)

        try:
            name = normalize_tagged_digested_string(name)  # LK-3, LN-1
        except LibimageError as error:
            raise self.failed(error.failure, name) from None
        original_name = name
        by_digest = name.startswith("sha256:")  # LK-4
        if by_digest:
            name = name.removeprefix("sha256:")
        by_full_id = is_full_id(name)

        if semantics.sha256_needs_full_id and by_digest and not by_full_id:
            # compat (DIV-2): podman 4.3.1 wants 64 hex digits after "sha256:".
            message = f"{original_name}: invalid format: no 64-byte hexadecimal value"
            raise self.failed(
                Failure(ErrorKind.INVALID_ID_FORMAT, original_name, message, "DIV-2"),
                original_name,
            )
        raw = _Wanted(self.options.os, self.options.architecture, self.options.variant)
        if semantics.short_names_before_id_prefix and (by_full_id or by_digest):
            # compat (DIV-1): an ID is looked up in the store only, before the platform
            # options are completed and normalised.
            found = self.in_storage(name, name, raw, "DIV-1")
            if found is not None:
                raise self.chosen(found, original_name, original_name, "DIV-1")
            raise self.unknown(original_name, "DIV-1")

        wanted = self.platform_options()  # LK-5
        if not semantics.short_names_before_id_prefix:
            found = self.in_storage(name, name, wanted, "LK-6")
            if found is not None:
                raise self.chosen(found, original_name, original_name, "LK-6")
            if by_digest or typed_nil:
                # quirk (LK-6): a failed containers-storage parse still hands back a
                # (typed nil) reference, which the seed takes for "clearly local".
                raise self.unknown(original_name, "LK-6")

        registries_error = self.context.registries_error
        if registries_error is not None and is_short_name(name):
            # LK-7: any error is "image not known". ResolveLocally reads the registries
            # configuration only for short names (SN-2), so a qualified name is still
            # found when the configuration does not load.
            self.step(name, "SN-2", StepOutcome.SKIPPED, registries_error.message)
            raise self.unknown(original_name, "LK-7")
        try:
            candidates = [str(c) for c in resolve_locally(self.context.registries, name)]
        except LibimageError as error:  # LK-7: any error is "image not known"
            self.step(name, "SN-2", StepOutcome.SKIPPED, error.failure.message)
            raise self.unknown(original_name, "LK-7") from None
        try:
            candidates.append(str(parse_docker_ref(name)))  # LK-7: docker.io compat
        except LibimageError as error:
            self.step(name, "NORM-3", StepOutcome.SKIPPED, error.failure.message)
        for candidate in candidates:
            found = self.in_storage(name, candidate, wanted, "LK-7")
            if found is not None:
                raise self.chosen(found, candidate, candidate, "LK-7")

        if semantics.short_names_before_id_prefix:
            # compat (DIV-1): the raw name (maybe an ID prefix) comes after the short names.
            found = self.in_storage(name, name, wanted, "DIV-1")
            if found is not None:
                raise self.chosen(found, name, name, "DIV-1")

        self.digests_and_repo_tags(original_name, wanted)

    def storage_reference(self, name: str, ref: StorageReference) -> None:
        """TR-4: the image a ``containers-storage:`` reference names (resolved name "")."""
        image = get_store_image(self.snapshot, ref, self.context.host)
        if image is None:
            self.step(str(ref), "TR-4", StepOutcome.NOT_IN_STORE, "containers-storage reference")
            failure = Failure(ErrorKind.IMAGE_UNKNOWN, name, "image not known", "TR-4")
            raise self.failed(failure, name)
        raise self.chosen(image, "", name, "TR-4", ref)

    def platform_options(self) -> _Wanted:
        """LK-5: empty options take the context's choices, then ``NormalizePlatform``."""
        options, context = self.options, self.context
        os_name, arch, variant = _normalized_platform(
            options.os or context.os_choice,
            options.architecture or context.architecture_choice,
            options.variant or context.variant_choice,
            context.host,
            self.semantics.normalize_platform_keeps_default_variant,
        )
        return _Wanted(os_name, arch, variant)

    def digests_and_repo_tags(self, name: str, wanted: _Wanted) -> None:
        """``lookupImageInDigestsAndRepoTags`` (LK-8, LN-4)."""
        ref = parse(name)  # it parsed in LK-3 already
        if ref.digest:
            positions = digest_positions(self.snapshot).get(ref.digest, ())
            if not positions:
                self.step(ref.digest, "LK-8", StepOutcome.NOT_IN_STORE, "no image has this digest")
                raise self.unknown(name, "LK-8")
            image = self.snapshot.images[positions[0]]
            # quirk (LK-8): the repository part of the name is ignored entirely.
            detail = "first image with this digest (the repository is not compared)"
            self.step(ref.digest, "LK-8", StepOutcome.FOUND, detail, image.id)
            if self.semantics.digest_match_runs_lookup_checks:
                # compat (DIV-3): the match goes through LK-9 by ID; only its error counts.
                self.in_storage(name, image.id, wanted, "DIV-3")
            raise self.chosen(image, name, name, "LK-8")
        if not is_short_name(name):
            self.step(name, "LK-8", StepOutcome.SKIPPED, "no repo-tag search: not a short name")
            raise self.unknown(name, "LK-8")
        query = tag_name_only(ref)
        bad_names = _unparseable_names(self.snapshot)
        tried = False
        for position, image in enumerate(self.snapshot.images):
            for bad in bad_names.get(position, ()):
                # Decision 18: skipped with a warning instead of failing every lookup.
                self.warnings.append(
                    f"image {image.id}: stored name {go_quote(bad)} is not a valid "
                    "reference; skipped in the repo-tag search (decision 18)"
                )
            hit = in_repo_tags(image.names, query)
            if hit is None:
                continue
            tried = True
            found = self.in_storage(name, str(hit), wanted, "LN-4")
            if found is not None:
                raise self.chosen(found, str(hit), str(hit), "LN-4")
        if not tried:
            detail = f"no stored name is {query.name}:{query.tag} or ends in /{query.name}"
            self.step(str(query), "LN-4", StepOutcome.NOT_IN_STORE, detail)
        raise self.unknown(name, "LK-8")

    # -- lookupImageInLocalStorage (LK-9) ------------------------------------------------

    def in_storage(
        self, name: str, candidate: str, wanted: _Wanted, rule: str
    ) -> StoredImage | None:
        """LK-9: the image ``candidate`` names if it suits the options, else None.

        Errors end the lookup (they are raised as :class:`_Done`).
        """
        del name  # upstream only logs it
        snapshot, options = self.snapshot, self.options
        image = find_in_store(snapshot, candidate)
        if image is None:
            if _ambiguous(snapshot, candidate):
                self.step(
                    candidate, rule, StepOutcome.AMBIGUOUS_PREFIX, "several IDs start with it"
                )
            else:
                self.step(candidate, rule, StepOutcome.NOT_IN_STORE)
            return None
        how = "by ID" if image.id == candidate else "by name"
        if image.id != candidate and candidate not in image.names:
            how = "by ID prefix"
        self.step(candidate, rule, StepOutcome.FOUND, how, image.id)

        is_list = is_manifest_list(snapshot, image)
        if isinstance(is_list, Unreadable):
            if is_list.missing:
                # LK-11: a corrupted image is tolerated here and returned as is.
                text = f"{is_list.what}: {is_list.reason}"
                self.warnings.append(
                    "Failed to determine if an image is a manifest list: "
                    f"{text}, ignoring the error"
                )
                self.step(candidate, "LK-11", StepOutcome.CORRUPTED_TOLERATED, text, image.id)
                return image
            failure = Failure(ErrorKind.IMAGE_CORRUPTED, image.id, is_list.reason, "LK-9")
            raise self.failed(failure, candidate)
        if options.lookup_manifest or options.manifest_list:
            if is_list:
                self.step(candidate, rule, StepOutcome.MANIFEST_LIST_RETURNED, "", image.id)
                return image
            if options.lookup_manifest:
                self.step(candidate, rule, StepOutcome.NOT_A_MANIFEST_LIST, "", image.id)
                message = f"{candidate}: image is not a manifest list"
                raise self.failed(
                    Failure(ErrorKind.NOT_A_MANIFEST_LIST, candidate, message, "LK-9"), candidate
                )
        if is_list:
            instance = self.instance(candidate, image, wanted)
            if instance is None:  # returnManifestIfNoInstance: the list, unchecked
                return image
            image = instance
        if self.platform_suits(candidate, image, wanted, rule):
            return image
        return None

    def instance(
        self, candidate: str, list_image: StoredImage, wanted: _Wanted
    ) -> StoredImage | None:
        """LK-9 step 4: the list's instance for the wanted platform (ML-2..ML-5).

        None when there is none and the caller wants the list itself then.
        """
        snapshot, context = self.snapshot, self.context
        loaded = load_manifest_list(snapshot, list_image)
        if isinstance(loaded, Failure):  # ML-2: returned as is
            raise self.failed(loaded, candidate)
        # ML-3: a variant counts only together with an architecture.
        platforms = wanted_platforms(
            wanted.architecture or context.architecture_choice,
            wanted.os or context.os_choice,
            wanted.variant if wanted.architecture else context.variant_choice,
            context.host,
        )
        listed = instance_list(snapshot, list_image)
        chosen = listed if isinstance(listed, Failure) else choose_instance(listed, platforms)
        instance: StoredImage | Failure
        if isinstance(chosen, Failure):
            instance = chosen
        else:
            instance = self.instance_image(list_image, chosen)
        if isinstance(instance, Failure):
            if self.options.return_manifest_if_no_instance:
                detail = f"no instance: {instance.message}"
                self.step(
                    candidate, "ML-4", StepOutcome.MANIFEST_LIST_RETURNED, detail, list_image.id
                )
                return None
            self.step(candidate, "ML-4", StepOutcome.NO_INSTANCE, instance.message, list_image.id)
            message = f"{instance.message}: image not known"
            raise self.failed(
                Failure(ErrorKind.IMAGE_UNKNOWN, candidate, message, instance.rule), candidate
            )
        assert not isinstance(chosen, Failure)
        assert not isinstance(listed, Failure)
        entry = next(entry for entry in listed.entries if entry.digest == chosen)
        detail = f"entry {chosen}"
        if entry.platform is not None:
            detail += f" for {_platform_text(entry.platform)}"
        self.step(candidate, "ML-5", StepOutcome.MANIFEST_LIST_INSTANCE, detail, instance.id)
        return instance

    def instance_image(self, list_image: StoredImage, digest: str) -> StoredImage | Failure:
        """ML-5: the first image in store order with the chosen digest."""
        if digest == "":
            found = find_instance_image(self.snapshot, digest)  # quirk (ML-5): Digest() == ""
        else:
            positions = digest_positions(self.snapshot).get(digest, ())
            found = self.snapshot.images[positions[0]] if positions else None
        return found if found is not None else instance_not_found(list_image, digest)

    def platform_suits(
        self, candidate: str, image: StoredImage, wanted: _Wanted, rule: str
    ) -> bool:
        """LK-9 steps 5-6, or podman 4.3.1's platform policy (DIV-4)."""
        snapshot, host = self.snapshot, self.context.host
        by_id = image.id.startswith(candidate)
        if self.semantics.platform_policy is PlatformPolicy.SEED:
            if not wanted.any:
                return True
            platform = image_platform(snapshot, image)
            if isinstance(platform, Failure):  # LK-11: an error of the lookup
                raise self.failed(platform, candidate)
            mismatch = _seed_mismatch(wanted, platform)
            if not mismatch:
                return True
            if by_id:
                # quirk (LK-9): an ID prefix keeps the image whatever its platform.
                detail = f"{mismatch}; kept: the candidate is an ID prefix"
                self.step(candidate, rule, StepOutcome.PLATFORM_MISMATCH_IGNORED, detail, image.id)
                return True
            self.step(candidate, rule, StepOutcome.PLATFORM_MISMATCH, mismatch, image.id)
            return False
        # compat (DIV-4): podman 4.3.1's matchesPlatform and its callers.
        if by_id:
            return True
        if is_corrupted(snapshot, image) is not None:
            return True  # reported elsewhere; the lookup keeps the image
        platform = image_platform(snapshot, image)
        if isinstance(platform, Failure):
            return True  # upstream ignores this (fatal) error during lookups
        expected = Platform(wanted.os, wanted.architecture, wanted.variant)
        if _platform_matches(expected, platform, host):
            return True
        detail = f"image is {_platform_text(platform)}, expected {_platform_text(expected, host)}"
        if wanted.any:
            self.step(candidate, rule, StepOutcome.PLATFORM_MISMATCH, detail, image.id)
            return False
        detail += "; kept: no platform was asked for"
        self.step(candidate, rule, StepOutcome.PLATFORM_MISMATCH_IGNORED, detail, image.id)
        return True


def _seed_mismatch(wanted: _Wanted, platform: Platform) -> str:
    """``imageReferenceMatchesContext``'s comparison: the first difference, or ""."""
    if wanted.architecture and wanted.architecture != platform.architecture:
        return (
            f"architecture {go_quote(wanted.architecture)} does not match architecture "
            f"{go_quote(platform.architecture)} of the image"
        )
    if wanted.os and wanted.os != platform.os:
        return f"OS {go_quote(wanted.os)} does not match OS {go_quote(platform.os)} of the image"
    if wanted.variant and wanted.variant != platform.variant:
        return (
            f"variant {go_quote(wanted.variant)} does not match variant "
            f"{go_quote(platform.variant)} of the image"
        )
    return ""


def _platform_text(platform: Platform, host: Platform | None = None) -> str:
    os_name, arch = platform.os, platform.architecture
    if host is not None:
        os_name, arch = os_name or host.os, arch or host.architecture
    text = f"{os_name}/{arch}"
    return f"{text}/{platform.variant}" if platform.variant else text


# --------------------------------------------------------------------------- public API


def lookup_image(
    snapshot: Snapshot,
    name: str,
    options: LookupOptions | None = None,
    context: Context | None = None,
) -> LookupResult:
    """``LookupImage``: the image ``name`` refers to, its resolved name, and the trace.

    See the module docstring for the steps (LK-2..LK-11, ML-*, TR-*). Failures are
    values: ``IMAGE_UNKNOWN`` (``<name>: image not known``, or plain ``image not
    known`` for a ``containers-storage:`` name), the reference errors of LK-3,
    ``UNSUPPORTED_TRANSPORT``, ``NAMES_ANOTHER_STORE`` (decision 8),
    ``INVALID_ID_FORMAT`` (DIV-2), ``NOT_A_MANIFEST_LIST``, ``MANIFEST_LIST_LOAD`` and
    ``IMAGE_CORRUPTED`` (LK-11).

    >>> from libimage.spec.builders import image, snapshot
    >>> snap = snapshot([image("a", ["localhost/foo:latest"])])
    >>> found = lookup_image(snap, "foo")
    >>> found.resolved_name, [step.outcome.name for step in found.trace]
    ('localhost/foo:latest', ['NOT_IN_STORE', 'FOUND', 'CHOSEN'])
    >>> lookup_image(snap, "bar").failure.message
    'bar: image not known'
    """
    run = _Lookup(snapshot, options or LookupOptions(), context or Context())
    return run.run(name)


@dataclass(frozen=True, slots=True)
class ExistsResult:
    """What ``Exists`` found out (EX-1): the answer, or the error, and why.

    ``corruption`` is the error upstream logs when the image exists but does not
    open (``Image <name> exists in local storage but may be corrupted …``).
    """

    exists: bool
    failure: Failure | None
    corruption: Failure | None
    lookup: LookupResult


def check_exists(snapshot: Snapshot, name: str, context: Context | None = None) -> ExistsResult:
    """``Exists`` with its reasons (EX-1); :func:`exists` is the plain answer."""
    context = context or Context()
    found = lookup_image(snapshot, name, LookupOptions(), context)
    if found.failure is not None:
        if found.failure.kind is ErrorKind.IMAGE_UNKNOWN:
            return ExistsResult(False, None, None, found)
        return ExistsResult(False, found.failure, None, found)
    assert found.image is not None
    reference = found.storage_reference
    if reference is None:
        corruption = is_corrupted(snapshot, found.image, name)
    else:
        corruption = _opened_through(snapshot, found.image, reference, name, context.host)
    return ExistsResult(corruption is None, None, corruption, found)


def _opened_through(
    snapshot: Snapshot, image: StoredImage, reference: StorageReference, name: str, host: Platform
) -> Failure | None:
    """EX-1 for an image found through ``containers-storage:``: upstream opens it through
    the parsed reference, which resolves on its own terms (TR-4 step 2), not by ID."""
    if not isinstance(load_manifest_list(snapshot, image), Failure):
        return None
    resolved = resolve_image(snapshot, reference, host)
    failure = resolved if isinstance(resolved, Failure) else open_image(snapshot, resolved)
    if failure is None:
        return None
    return Failure(
        ErrorKind.IMAGE_CORRUPTED,
        name,
        f"Image {name} exists in local storage but may be corrupted "
        f"(remove the image to resolve the issue): {failure.message}",
        "EX-1",
    )


def exists(snapshot: Snapshot, name: str, context: Context | None = None) -> bool | Failure:
    """``Exists`` (EX-1): True if ``name`` finds an image that opens, else False.

    ``IMAGE_UNKNOWN`` is False; other lookup failures are returned. A found image
    that does not load as a manifest list and does not open fully is False (upstream
    logs it; :func:`check_exists` says why).

    >>> from libimage.spec.builders import image, snapshot
    >>> snap = snapshot([image("a", ["localhost/foo:latest"])])
    >>> exists(snap, "foo"), exists(snap, "bar"), exists(snap, "Foo").kind.name
    (True, False, 'NAME_CONTAINS_UPPERCASE')
    """
    checked = check_exists(snapshot, name, context)
    return checked.failure if checked.failure is not None else checked.exists


def resolve_name(snapshot: Snapshot, name: str, context: Context | None = None) -> str | Failure:
    """``ResolveName`` (RN-1): the name an image was found under, else ``NormalizeName``.

    ``""`` stays ``""``. Lookup failures other than ``IMAGE_UNKNOWN`` are returned.
    An image found under a name that is not a prefix of its ID gives that name;
    otherwise (not found, found by ID or ID prefix, or through ``containers-storage:``,
    whose resolved name is ``""``) the name is normalised (LN-2), whose errors are
    returned.

    >>> from libimage.spec.builders import image, snapshot
    >>> snap = snapshot([image("a", ["docker.io/library/busybox:latest"])])
    >>> resolve_name(snap, "busybox"), resolve_name(snap, "nothere")
    ('docker.io/library/busybox:latest', 'localhost/nothere:latest')
    """
    if name == "":
        return ""
    context = context or Context()
    found = lookup_image(snapshot, name, LookupOptions(), context)
    if found.failure is not None and found.failure.kind is not ErrorKind.IMAGE_UNKNOWN:
        return found.failure
    if found.image is not None and not found.image.id.startswith(found.resolved_name):
        return found.resolved_name
    try:
        drop_prefix = context.semantics.normalize_name_error_drops_error_prefix
        return str(normalize_name(name, drop_error_prefix=drop_prefix))
    except LibimageError as error:
        return error.failure
