"""Transport-qualified image names: ``alltransports.ParseImageName`` and the storage transport.

What ``LookupImage`` does with a name before anything else (LK-2): it tries to read
it as ``<transport>:<reference>`` (TR-1). A foreign transport is refused (TR-2), a
``containers-storage:`` reference is parsed (TR-3) and resolved in the store without
short names, manifest lists or platform checks (TR-4), and a name that does not
parse as a transport reference is looked up as a plain name.

Two project decisions shape this module (decision 8):

* A foreign transport is accepted or not by its syntax alone. Upstream's ``dir:``,
  ``oci:``, ``oci-archive:``, ``tarball:`` and ``sif:`` parsers look at the file
  system; here every syntactically valid remainder is accepted, so such names are
  always "unsupported transport" (``oci:/nonexistent/x`` is one, where upstream
  falls back to a plain name and fails with "invalid reference format").
* A ``[store-spec]`` is parsed fully. One that names this runtime's store (its graph
  root, and its driver if the spec names one, which is how containers-storage's
  ``GetStore`` recognises an open store) is resolved in the snapshot; one that names
  another store is a ``NAMES_ANOTHER_STORE`` failure, where upstream would open, or
  create, that store as a side effect. Specs upstream refuses without touching the
  disk (no graph root, or no run root for a store it does not know) stay parse
  failures, as upstream.

Which transports are registered besides ``containers-storage`` depends on the build
(``Semantics.atomic_transport_registered``, ``Semantics.sif_transport_registered``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.context import Platform
from libimage.pure.errors import ErrorKind, Failure, LibimageError
from libimage.pure.manifest import (
    choose_instance,
    guess_mime_type,
    is_multi_image,
    parse_instance_list,
)
from libimage.pure.platform import wanted_platforms
from libimage.pure.reference import (
    Reference,
    familiar_name,
    go_len,
    go_quote,
    is_full_id,
    parse_normalized_named,
    tag_name_only,
    validate_digest,
)
from libimage.pure.semantics import Semantics
from libimage.pure.snapshot import Snapshot, StoredImage, Unreadable, find_in_store, image_digests

STORAGE_TRANSPORT = "containers-storage"

# Transports of a standard containers/image build (TR-1), without the two that
# depend on the build (see the module docstring).
_COMMON_TRANSPORTS = (
    STORAGE_TRANSPORT,
    "docker",
    "docker-archive",
    "docker-daemon",
    "dir",
    "oci",
    "oci-archive",
    "tarball",
    "ostree",  # a stub whose parser always fails (built without ostree support)
)

MINIMUM_TRUNCATED_ID_LENGTH = 3  # containers/image storage transport (TR-3 steps 3-4)

# oci/internal: the image name after "<path>:" in oci: and oci-archive: references.
_OCI_SEPARATOR = r"(?:[-._:@+]|--)"
_OCI_COMPONENT = rf"[A-Za-z0-9]+(?:{_OCI_SEPARATOR}[A-Za-z0-9]+)*"
_OCI_IMAGE_NAME_RE = re.compile(rf"{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*", re.ASCII)
_GO_ATOI_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_GO_INT_MAX = (1 << 63) - 1

_INVALID_REFERENCE = "invalid reference"
_PATH_NOT_ABSOLUTE = "path name is not absolute"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """A ``[driver@graphroot+runroot:options]`` store specifier (TR-3)."""

    driver: str = ""
    graph_root: str = ""
    run_root: str = ""
    options: PVector[str] = field(default_factory=pvector)


@dataclass(frozen=True, slots=True)
class StorageReference:
    """A parsed ``containers-storage:`` reference (TR-3): a name, an image ID, or both.

    ``named`` is normalised and tagged (or digested); ``image_id`` is a full ID or
    ``""``. ``store`` is the specifier the reference started with, if any.
    """

    named: Reference | None
    image_id: str = ""
    store: StoreSpec | None = None

    def __str__(self) -> str:
        """``StringWithinTransport`` without the store part: ``name@id``."""
        text = str(self.named) if self.named is not None else ""
        return f"{text}@{self.image_id}" if self.image_id else text


@dataclass(frozen=True, slots=True)
class ForeignReference:
    """A syntactically valid reference of a transport other than containers-storage."""

    transport: str
    remainder: str


@dataclass(frozen=True, slots=True)
class NotATransportReference:
    """``ParseImageName`` failed: the whole name is looked up as a plain name (TR-2).

    ``transport`` is the registered transport whose parser refused the remainder
    (``""`` when there is no colon or the prefix is no transport). ``typed_nil`` is
    True when the storage transport refused the reference part: upstream then hands
    back a non-nil (typed nil) reference together with the error, which the seed's
    ``LookupImage`` reads as "clearly a local image" after its exact lookup (LK-6).
    """

    reason: str
    transport: str = ""
    typed_nil: bool = False


ParsedName = StorageReference | ForeignReference | NotATransportReference | Failure


@dataclass(frozen=True, slots=True)
class StoreIdentity:
    """The runtime's store as ``GetStore`` compares it: graph root, driver, run root."""

    graph_root: str
    driver: str
    run_root: str = ""


# --------------------------------------------------------------------------- helpers


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` for an absolute or relative POSIX path.

    >>> go_clean("//a/./b/../c/"), go_clean("")
    ('/a/c', '.')
    """
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


@lru_cache(maxsize=16)
def registered_transports(semantics: Semantics) -> frozenset[str]:
    """The transport names ``ParseImageName`` knows in this profile (TR-1).

    >>> from libimage.pure.semantics import SEED
    >>> "atomic" in registered_transports(SEED), "sif" in registered_transports(SEED)
    (True, False)
    """
    names = set(_COMMON_TRANSPORTS)
    if semantics.atomic_transport_registered:
        names.add("atomic")
    if semantics.sif_transport_registered:
        names.add("sif")
    return frozenset(names)


def _parses(text: str) -> Reference | Failure:
    """``ParseNormalizedNamed``, or its error as a value."""
    try:
        return parse_normalized_named(text)
    except LibimageError as error:
        return error.failure


# --------------------------------------------------------------------------- TR-1 foreign


def _docker(remainder: str) -> str:
    """The docker transport's parser: "" when accepted, else why not."""
    if not remainder.startswith("//"):
        return f"docker: image reference {remainder} does not start with //"
    named = _parses(remainder[2:])
    if isinstance(named, Failure):
        return named.message
    named = tag_name_only(named)
    if named.tag and named.digest:
        return "Docker references with both a tag and digest are currently not supported"
    return ""


def _docker_daemon(remainder: str) -> str:
    try:
        validate_digest(remainder)
    except LibimageError:
        pass
    else:
        if not remainder.startswith("sha256:"):
            return (
                f"Invalid docker-daemon: reference {remainder}: "
                "only digest algorithm sha256 accepted"
            )
        return ""
    named = _parses(remainder)
    if isinstance(named, Failure):
        return named.message
    if familiar_name(named) == "sha256":
        return (
            f"Invalid docker-daemon: reference {remainder}: The sha256 repository name "
            "is reserved for (non-shortened) digest references"
        )
    if named.is_name_only:
        return f"docker-daemon: reference {remainder} has neither a tag nor a digest"
    if named.tag and named.digest:
        return "docker-daemon: references with both a tag and digest are currently not supported"
    return ""


def _docker_archive(remainder: str) -> str:
    if remainder == "":
        return f"docker-archive reference {remainder} isn't of the form <path>[:<reference>]"
    path, colon, rest = remainder.partition(":")
    if colon:
        if rest.startswith("@"):
            index = rest[1:]
            if _GO_ATOI_RE.fullmatch(index) is None or abs(int(index)) > _GO_INT_MAX:
                return f"Invalid source index {rest}"
            if int(index) < 0:
                return f"Invalid source index @{int(index)}: must not be negative"
        else:
            named = _parses(rest)
            if isinstance(named, Failure):
                return f"docker-archive parsing reference: {named.message}"
            named = tag_name_only(named)
            if not named.tag:
                return f"reference does not include a tag: {named}"
            if named.digest:
                return f"docker-archive doesn't support digest references: {named}"
    if ":" in path:  # pragma: no cover - partition leaves no colon in the path
        return f'Invalid docker-archive: reference: colon in path "{path}" is not supported'
    return ""


def _oci(remainder: str) -> str:
    # Decision 8: the path is not looked up; it cannot hold a colon after the split.
    _path, _colon, image = remainder.partition(":")
    if image and _OCI_IMAGE_NAME_RE.fullmatch(image) is None:
        return f"Invalid image {image}"
    return ""


def _atomic(remainder: str) -> str:
    named = _parses(remainder)
    if isinstance(named, Failure):
        return f"failed to parse image reference {go_quote(remainder)}: {named.message}"
    if not named.tag:
        return (
            f"invalid image reference {remainder}, expected format: 'hostname/namespace/stream:tag'"
        )
    if len(named.path.split("/", 2)) != 2:
        return f"invalid image reference: {named}, expected format: 'hostname/namespace/stream:tag'"
    return ""


def _foreign_refusal(transport: str, remainder: str) -> str:
    """Why a foreign transport's parser refuses ``remainder`` ("" if it accepts it)."""
    if transport == "docker":
        return _docker(remainder)
    if transport == "docker-daemon":
        return _docker_daemon(remainder)
    if transport == "docker-archive":
        return _docker_archive(remainder)
    if transport in ("oci", "oci-archive"):
        return _oci(remainder)
    if transport == "atomic":
        return _atomic(remainder)
    if transport == "ostree":
        return 'the "ostree" transport is not supported in this build'
    # dir, tarball, sif: any path is accepted without looking at it (decision 8).
    return ""


# --------------------------------------------------------------------------- TR-3


def _invalid(message: str) -> Failure:
    return Failure(ErrorKind.INVALID_STORAGE_REFERENCE, message, message, "TR-3")


def parse_store_spec(text: str) -> tuple[StoreSpec | None, str] | Failure:
    """Split a leading ``[store-spec]`` off a storage reference (TR-3, ``ParseReference``).

    Returns the specifier (None when ``text`` has none) and the rest. Errors:
    ``INVALID_STORAGE_REFERENCE`` ("invalid reference") for a spec without ``]``, an
    empty spec, or an empty driver or root around ``@``; ``PATH_NOT_ABSOLUTE`` ("path
    name is not absolute") for a relative graph root or run root.

    >>> parse_store_spec("[vfs@/var/lib/x+/run/x:a=1,b=2]busybox")[0].options
    pvector(['a=1', 'b=2'])
    >>> parse_store_spec("[rel]busybox").message
    'path name is not absolute'
    """
    if not text.startswith("["):
        return None, text
    close = text.find("]")
    if close < 1:
        return _invalid(_INVALID_REFERENCE)
    spec, rest = text[1:close], text[close + 1 :]
    driver = ""
    driver_part, at, root_part = spec.partition("@")
    if at:
        driver = driver_part
        if driver == "" or root_part == "":
            return _invalid(_INVALID_REFERENCE)
        spec = root_part
    elif spec == "":
        return _invalid(_INVALID_REFERENCE)
    options: list[str] = []
    spec, colon, option_text = spec.partition(":")
    if colon:
        options = option_text.split(",")
    graph_root, _plus, run_root = spec.partition("+")
    for path in (graph_root, run_root):
        if path and not path.startswith("/"):
            return Failure(ErrorKind.PATH_NOT_ABSOLUTE, path, _PATH_NOT_ABSOLUTE, "TR-3")
    return StoreSpec(driver, graph_root, run_root, pvector(options)), rest


def names_this_store(spec: StoreSpec, store: StoreIdentity, semantics: Semantics) -> bool:
    """``GetStore``'s test for an already open store (TR-3).

    The same graph root, and the same driver when the spec names one; with
    ``Semantics.store_spec_needs_run_root`` (containers/storage 1.43) also the same
    run root, so a spec without a run root never names an open store.

    >>> from libimage.pure.semantics import PODMAN_4_3, SEED
    >>> ours = StoreIdentity("/var/lib/x", "vfs", "/run/x")
    >>> names_this_store(StoreSpec("", "/var/lib/x/"), ours, SEED)
    True
    >>> names_this_store(StoreSpec("", "/var/lib/x/"), ours, PODMAN_4_3)
    False
    >>> names_this_store(StoreSpec("overlay", "/var/lib/x", "/run/x"), ours, PODMAN_4_3)
    False
    """
    if not store.graph_root or not spec.graph_root:
        return False
    if go_clean(spec.graph_root) != go_clean(store.graph_root):
        return False
    if semantics.store_spec_needs_run_root and (
        not spec.run_root or go_clean(spec.run_root) != go_clean(store.run_root)
    ):
        return False
    return spec.driver in ("", store.driver)


def _resolves_to_prefix(snapshot: Snapshot, text: str) -> str:
    """The full ID when ``store.Image(text)`` finds an image whose ID starts with ``text``."""
    found = find_in_store(snapshot, text)
    if found is not None and found.id.startswith(text):
        return found.id
    return ""


def parse_store_reference(snapshot: Snapshot, text: str) -> StorageReference | Failure:
    """``ParseStoreReference``: a name, an image ID, or both (TR-3 steps 1-6).

    ``text`` is what follows ``containers-storage:`` and the store specifier, if
    any. ID prefixes are resolved in ``snapshot`` (the store the reference names).
    Errors have kind ``INVALID_STORAGE_REFERENCE`` with upstream's texts, or the
    kind of the name's parse error with the text ``parsing named reference "<t>": …``.

    >>> str(parse_store_reference(Snapshot(), "busybox"))
    'docker.io/library/busybox:latest'
    >>> parse_store_reference(Snapshot(), "").message
    '"" is an empty reference: invalid reference'
    """
    if text == "":
        return _invalid(f'"" is an empty reference: {_INVALID_REFERENCE}')
    if text.startswith("["):
        close = text.find("]")
        if close < 1:
            return _invalid(
                f"store specifier in {go_quote(text)} did not end: {_INVALID_REFERENCE}"
            )
        text = text[close + 1 :]
    image_id = ""
    split = text.rfind("@")
    if split != -1:
        possible_id = text[split + 1 :]
        if possible_id == "":
            return _invalid(
                f"empty trailing digest or ID in {go_quote(text)}: {_INVALID_REFERENCE}"
            )
        try:
            validate_digest(possible_id)
        except LibimageError:
            if is_full_id(possible_id):
                image_id = possible_id
            elif go_len(possible_id) >= MINIMUM_TRUNCATED_ID_LENGTH and (
                expanded := _resolves_to_prefix(snapshot, possible_id)
            ):
                image_id = expanded
            else:
                return _invalid(
                    f"{go_quote(possible_id)} does not look like an image ID or digest: "
                    f"{_INVALID_REFERENCE}"
                )
            text = text[:split]
    if (
        image_id == ""
        and go_len(text) >= MINIMUM_TRUNCATED_ID_LENGTH
        and "@" not in text
        and ":" not in text
        and (expanded := _resolves_to_prefix(snapshot, text))
    ):
        image_id, text = expanded, ""
    named: Reference | None = None
    if text:
        parsed = _parses(text)
        if isinstance(parsed, Failure):
            message = f"parsing named reference {go_quote(text)}: {parsed.message}"
            return Failure(parsed.kind, text, message, "TR-3")
        named = tag_name_only(parsed)
    if named is None and image_id == "":
        return _invalid(_INVALID_REFERENCE)
    return StorageReference(named, image_id)


def _incomplete_spec(spec: StoreSpec, semantics: Semantics) -> str:
    """Why ``GetStore`` refuses a spec for a store it does not know, before any I/O.

    containers/storage 1.37 needs both roots; 1.43 fills a missing one from its
    defaults and only refuses a spec with neither ("" = it would open a store).
    """
    if semantics.store_spec_needs_run_root:
        if not spec.graph_root and not spec.run_root:
            return "no storage runroot or graphroot specified"
        return ""
    if not spec.graph_root:
        return "no storage root specified"
    if not spec.run_root:
        return "no storage runroot specified"
    return ""


# --------------------------------------------------------------------------- TR-1, TR-2


def parse_image_name(
    snapshot: Snapshot, name: str, semantics: Semantics, store: StoreIdentity
) -> ParsedName:
    """``alltransports.ParseImageName`` as ``LookupImage`` uses it (TR-1, TR-2, TR-3).

    The name is split at its first ``:``; the prefix must be a registered transport
    (:func:`registered_transports`), whose parser then judges the rest. Results:

    * :class:`StorageReference` for an accepted ``containers-storage:`` reference
      whose store specifier, if any, names ``store``;
    * a ``NAMES_ANOTHER_STORE`` :class:`Failure` when the specifier names another
      store that upstream would open (decision 8);
    * :class:`ForeignReference` for a reference another transport accepts (the
      caller refuses it: "unsupported transport");
    * :class:`NotATransportReference` otherwise: the name is a plain name.

    >>> from libimage.pure.semantics import SEED
    >>> parse_image_name(Snapshot(), "docker://busybox", SEED, StoreIdentity("", ""))
    ForeignReference(transport='docker', remainder='//busybox')
    >>> parse_image_name(Snapshot(), "docker:busybox", SEED, StoreIdentity("", "")).transport
    'docker'
    """
    transport, colon, remainder = name.partition(":")
    if not colon:
        return NotATransportReference(
            f"Invalid image name {go_quote(name)}, expected colon-separated transport:reference"
        )
    if transport not in registered_transports(semantics):
        return NotATransportReference(
            f"Invalid image name {go_quote(name)}, unknown transport {go_quote(transport)}"
        )
    if transport != STORAGE_TRANSPORT:
        refusal = _foreign_refusal(transport, remainder)
        if refusal:
            return NotATransportReference(refusal, transport)
        return ForeignReference(transport, remainder)
    split = parse_store_spec(remainder)
    if isinstance(split, Failure):
        return NotATransportReference(split.message, transport)
    spec, rest = split
    if spec is not None and not names_this_store(spec, store, semantics):
        refusal = _incomplete_spec(spec, semantics)
        if refusal:
            return NotATransportReference(f"{refusal}: incomplete options in {name}", transport)
        message = (
            f"{name}: the store specification names another store "
            f"({go_quote(go_clean(spec.graph_root or '.'))}), not this runtime's "
            f"({go_quote(store.graph_root)}); it is not opened (decision 8)"
        )
        return Failure(ErrorKind.NAMES_ANOTHER_STORE, name, message, "TR-3")
    parsed = parse_store_reference(snapshot, rest)
    if isinstance(parsed, Failure):
        return NotATransportReference(parsed.message, transport, typed_nil=True)
    return StorageReference(parsed.named, parsed.image_id, spec)


# --------------------------------------------------------------------------- TR-4


def images_with_digest(snapshot: Snapshot, digest: str) -> tuple[StoredImage, ...]:
    """``store.ImagesByDigest``: every image whose digest list holds ``digest`` (ST-3, ST-4).

    In store order. The digest index is built once per snapshot (memoised).
    """
    return tuple(snapshot.images[p] for p in digest_positions(snapshot).get(digest, ()))


_DIGEST_INDEX_KEY = "libimage.pure.transport.digest_positions"


def digest_positions(snapshot: Snapshot) -> dict[str, tuple[int, ...]]:
    """Digest → positions of the images whose digest list (ST-3) holds it, store order."""
    memo = snapshot.memo
    index = memo.get(_DIGEST_INDEX_KEY)
    if not isinstance(index, dict):
        building: dict[str, list[int]] = {}
        for position, image in enumerate(snapshot.images):
            for digest in image_digests(image):
                building.setdefault(digest, []).append(position)
        index = {digest: tuple(positions) for digest, positions in building.items()}
        memo[_DIGEST_INDEX_KEY] = index
    return index


def image_matches_repo(image: StoredImage, named: Reference) -> bool:
    """``imageMatchesRepo``: a stored name, normalised, has the repository of ``named``."""
    repository = named.name
    for stored in image.names:
        parsed = _parses(stored)
        if isinstance(parsed, Reference) and parsed.name == repository:
            return True
    return False


def _multi_arch_matches(
    snapshot: Snapshot, image: StoredImage, digest: str, host: Platform
) -> bool:
    """``multiArchImageMatchesSystemContext`` with no system context (the host platform)."""
    data = snapshot.content.big_data(image, f"manifest-{digest}")
    if isinstance(data, Unreadable) or not is_multi_image(guess_mime_type(data)):
        return False
    listed = parse_instance_list(data, image.id)
    if isinstance(listed, Failure):
        return False
    chosen = choose_instance(listed, wanted_platforms("", "", "", host))
    if isinstance(chosen, Failure):
        return False
    return not isinstance(snapshot.content.big_data(image, f"manifest-{chosen}"), Unreadable)


def resolve_image(
    snapshot: Snapshot, ref: StorageReference, host: Platform
) -> StoredImage | Failure:
    """``storageReference.resolveImage`` without a system context (TR-4 step 2).

    Without an ID: the image holding the reference's name (ST-2); else, for a
    digested name, the images whose digest list holds the digest and that have a
    stored name of the same repository (the first, replaced by a later one whose
    manifest list would choose that digest for the host platform). With an ID (given
    or found): that image, which must have a stored name of the reference's
    repository when the reference has a name. Failures (kind ``IMAGE_UNKNOWN``)
    carry upstream's texts; ``GetStoreImage`` turns them into "image not known",
    ``Exists`` reports them as corruption (EX-1).
    """
    image_id = ref.image_id
    loaded: StoredImage | None = None
    named = ref.named
    if not image_id and named is not None:
        loaded = find_in_store(snapshot, str(named))
        image_id = loaded.id if loaded is not None else ""
    if not image_id and named is not None and named.digest:
        digest = named.digest
        for candidate in images_with_digest(snapshot, digest):
            if image_matches_repo(candidate, named) and (
                loaded is None or _multi_arch_matches(snapshot, candidate, digest, host)
            ):
                loaded, image_id = candidate, candidate.id
    if not image_id:
        message = (
            f"reference {go_quote(str(ref))} does not resolve to an image ID: "
            "identifier is not an image"
        )
        return Failure(ErrorKind.IMAGE_UNKNOWN, str(ref), message, "TR-4")
    if loaded is None:
        loaded = find_in_store(snapshot, image_id)
        if loaded is None:
            message = f"reading image {go_quote(image_id)}: image not known"
            return Failure(ErrorKind.IMAGE_UNKNOWN, image_id, message, "TR-4")
    if named is not None and not image_matches_repo(loaded, named):
        return Failure(ErrorKind.IMAGE_UNKNOWN, str(ref), "identifier is not an image", "TR-4")
    return loaded


def get_store_image(
    snapshot: Snapshot, ref: StorageReference, host: Platform
) -> StoredImage | None:
    """``GetStoreImage``: the image a storage reference names, or None (TR-4).

    A reference with a name first tries ``store.Image(name)`` (ST-2): found → done,
    whatever the reference's ID says. Otherwise :func:`resolve_image`. No short
    names, no manifest-list instance choice, no platform check.
    """
    if ref.named is not None:
        found = find_in_store(snapshot, str(ref.named))
        if found is not None:
            return found
    resolved = resolve_image(snapshot, ref, host)
    return None if isinstance(resolved, Failure) else resolved
