"""Image references: the docker/reference grammar, go-digest validation, normalisation.

This module reproduces containers/image's ``docker/reference`` package and the
``go-digest`` validation it relies on (REF-1..REF-5, NORM-1..NORM-5), and the name
helpers of libimage built on them (LN-1..LN-4, SN-1). Every error is a
:class:`~libimage.pure.errors.LibimageError` whose kind mirrors the upstream
sentinel and whose text is the upstream text, so that a command prints what podman
prints.

Theory of operation
-------------------
Plain parsing (:func:`parse`) matches the whole input against the ``reference``
regular expression of REF-1 and then splits the name with REF-2's rule: the first
``/``-separated part is the domain whenever it *can* be one. Normalisation
(:func:`parse_normalized_named`) is a different question, answered by the docker
rule (a ``.`` or ``:`` or exactly ``localhost``), and prefixes ``docker.io`` and
``library/``. libimage's :func:`normalize_name` prefixes ``localhost/`` instead.

Regular expressions are compiled once, applied with ``fullmatch`` and ``re.ASCII``
(Go's ``$`` never matches before a trailing newline; Go's ``\\w`` is ASCII). The
separator of a path component is written ``-+`` where upstream writes ``[-]*``: the
language is the same (an empty separator between two alphanumeric runs adds
nothing) and the captures are the same, but Python's backtracking matcher would
take exponential time on ``aaaa…!`` with the nested, possibly empty repetition that
Go's linear-time matcher tolerates. ``libimage.spec.gen_references`` keeps the
literal transcription and a property test compares the two.

Parsing runs once per stored name on large stores, so the parse of a string is
cached (its outcome, error or reference, is a pure function of the string).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from pyrsistent import pvector
from pyrsistent.typing import PVector

from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.snapshot import is_full_id

__all__ = [
    "ANCHORED_NAME_RE",
    "COMPONENT_PATTERN",
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "DIGEST_ALGORITHM_SIZES",
    "DIGEST_PATTERN",
    "DIGEST_RE",
    "DOMAIN_PATTERN",
    "DOMAIN_RE",
    "IDENTIFIER_RE",
    "LEGACY_DEFAULT_DOMAIN",
    "NAME_PATTERN",
    "NAME_RE",
    "NAME_TOTAL_LENGTH_MAX",
    "NONE",
    "OFFICIAL_REPO_NAME",
    "REFERENCE_PATTERN",
    "REFERENCE_RE",
    "SHORT_IDENTIFIER_RE",
    "TAG_PATTERN",
    "TAG_RE",
    "NameTagPair",
    "Reference",
    "RepoTagsMatch",
    "familiar",
    "familiar_name",
    "familiar_string",
    "find_in_repo_tags",
    "go_len",
    "go_lower",
    "go_quote",
    "in_repo_tags",
    "is_full_id",
    "is_short_name",
    "names_registry",
    "normalize_name",
    "normalize_tagged_digested_string",
    "parse",
    "parse_docker_ref",
    "parse_normalized_named",
    "split_docker_domain",
    "tag_name_only",
    "to_name_tag_pairs",
    "trim_named",
    "validate_digest",
    "with_digest",
    "with_name",
    "with_tag",
]

# --------------------------------------------------------------------------- grammar (REF-1)

_ALNUM = r"[a-z0-9]+"
# Upstream: (?:[._]|__|[-]*). Same language and captures; see the module docstring.
_SEPARATOR = r"(?:[._]|__|-+)"
COMPONENT_PATTERN = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
# Upstream: (?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]); the same language.
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
DOMAIN_PATTERN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
TAG_PATTERN = r"[\w][\w.-]{0,127}"
DIGEST_PATTERN = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH_PATTERN = rf"{COMPONENT_PATTERN}(?:/{COMPONENT_PATTERN})*"
NAME_PATTERN = rf"(?:{DOMAIN_PATTERN}/)?{_PATH_PATTERN}"
REFERENCE_PATTERN = rf"({NAME_PATTERN})(?::({TAG_PATTERN}))?(?:@({DIGEST_PATTERN}))?"

# All of these are meant for ``fullmatch`` (the anchored upstream expressions).
DOMAIN_RE = re.compile(DOMAIN_PATTERN, re.ASCII)
TAG_RE = re.compile(TAG_PATTERN, re.ASCII)
DIGEST_RE = re.compile(DIGEST_PATTERN, re.ASCII)  # the reference package's digest *shape*
NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
ANCHORED_NAME_RE = re.compile(rf"(?:({DOMAIN_PATTERN})/)?({_PATH_PATTERN})", re.ASCII)
REFERENCE_RE = re.compile(REFERENCE_PATTERN, re.ASCII)
IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)  # NORM-5 "full identifier"
SHORT_IDENTIFIER_RE = re.compile(r"[a-f0-9]{6,64}", re.ASCII)  # NORM-5, unused by lookups

# go-digest (REF-4).
DIGEST_ALGORITHM_SIZES = {"sha256": 64, "sha384": 96, "sha512": 128}  # hex characters
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+", re.ASCII)
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)

NAME_TOTAL_LENGTH_MAX = 255
DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_NAME = "library"
DEFAULT_TAG = "latest"
NONE = "<none>"  # LN-3

# Upstream texts (behaviour-lookup.md, "Error kinds").
_TEXTS = {
    ErrorKind.REFERENCE_INVALID_FORMAT: "invalid reference format",
    ErrorKind.NAME_CONTAINS_UPPERCASE: "repository name must be lowercase",
    ErrorKind.NAME_EMPTY: "repository name must have at least one component",
    ErrorKind.NAME_TOO_LONG: (
        f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
    ),
    ErrorKind.TAG_INVALID_FORMAT: "invalid tag format",
    ErrorKind.DIGEST_INVALID_FORMAT: "invalid digest format",
    ErrorKind.CHECKSUM_INVALID_FORMAT: "invalid checksum digest format",
    ErrorKind.DIGEST_INVALID_LENGTH: "invalid checksum digest length",
    ErrorKind.DIGEST_UNSUPPORTED: "unsupported digest algorithm",
}


# --------------------------------------------------------------------------- Go string helpers


def go_lower(text: str) -> str:
    """Go's ``strings.ToLower``: simple (one-to-one) Unicode case mapping.

    Python's ``str.lower`` uses the full mapping, which differs for one code point
    whose lower case matters to ASCII grammar checks: U+0130 becomes ``i`` in Go.

    >>> go_lower("BusyBox"), go_lower("\\u0130")
    ('busybox', 'i')
    """
    if text.isascii():
        return text.lower()
    return text.replace("\u0130", "i").lower()


def go_len(text: str) -> int:
    """Go's ``len`` of a string: its length in UTF-8 bytes.

    Surrogate escapes (undecodable bytes of a command line) count one byte each.

    >>> go_len("abc"), go_len("é")
    (3, 2)
    """
    if text.isascii():
        return len(text)
    total = 0
    for char in text:
        code = ord(char)
        if code < 0x80 or 0xDC80 <= code <= 0xDCFF:
            total += 1
        elif code < 0x800:
            total += 2
        elif code < 0x10000:
            total += 3  # a lone surrogate counts as the replacement rune Go would see
        else:
            total += 4
    return total


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    r"""Go's ``%q`` (``strconv.Quote``): a double-quoted string with Go escapes.

    Printable characters (including non-ASCII ones) stay; other characters become
    ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``. Undecodable bytes of a command line
    (surrogate escapes) become ``\xNN`` as Go prints invalid UTF-8.

    >>> print(go_quote('a"b\tc\x1bé'))
    "a\"b\tc\x1bé"
    """
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    pieces = ['"']
    for char in text:
        code = ord(char)
        escape = _GO_ESCAPES.get(char)
        if escape is not None:
            pieces.append(escape)
        elif code < 0x20 or code == 0x7F:
            pieces.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            pieces.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            pieces.append("\\ufffd")  # Go sees invalid UTF-8 as the replacement rune
        elif char.isprintable():
            pieces.append(char)
        elif code < 0x10000:
            pieces.append(f"\\u{code:04x}")
        else:
            pieces.append(f"\\U{code:08x}")
    pieces.append('"')
    return "".join(pieces)


# --------------------------------------------------------------------------- the value


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference: domain, path, and optional tag and digest (REF-3).

    ``domain`` is ``""`` when plain parsing found none (REF-2). ``tag`` and ``digest``
    are ``""`` when absent. The four result types of upstream are read off the
    fields: name-only, tagged, canonical (digested) and tagged-and-digested.

    >>> ref = Reference("quay.io", "a/b", tag="1")
    >>> str(ref), ref.name, ref.is_tagged, ref.is_digested
    ('quay.io/a/b:1', 'quay.io/a/b', True, False)
    """

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``domain/path``, or just ``path`` without a domain (REF-3 "String forms")."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def is_name_only(self) -> bool:
        """Neither tag nor digest (REF-5 ``IsNameOnly``)."""
        return not self.tag and not self.digest

    @property
    def is_tagged(self) -> bool:
        return bool(self.tag)

    @property
    def is_digested(self) -> bool:
        return bool(self.digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


class _Refusal(NamedTuple):
    """A cached parse failure: kind, message, rule (the subject is added on raising)."""

    kind: ErrorKind
    message: str
    rule: str


def _raise(outcome: _Refusal, subject: str) -> LibimageError:
    return fail(outcome.kind, subject, outcome.message, outcome.rule)


def _refusal(kind: ErrorKind, rule: str) -> _Refusal:
    return _Refusal(kind, _TEXTS[kind], rule)


# --------------------------------------------------------------------------- REF-4


def _check_digest(text: str) -> _Refusal | None:
    """go-digest's ``Digest.Validate``; ``None`` when valid (REF-4)."""
    colon = text.find(":")
    if colon <= 0 or colon + 1 == len(text):
        return _refusal(ErrorKind.CHECKSUM_INVALID_FORMAT, "REF-4")
    algorithm, encoded = text[:colon], text[colon + 1 :]
    size = DIGEST_ALGORITHM_SIZES.get(algorithm)
    if size is None:
        if _GO_DIGEST_RE.fullmatch(text) is None:
            return _refusal(ErrorKind.CHECKSUM_INVALID_FORMAT, "REF-4")
        return _refusal(ErrorKind.DIGEST_UNSUPPORTED, "REF-4")
    if go_len(encoded) != size:
        return _refusal(ErrorKind.DIGEST_INVALID_LENGTH, "REF-4")
    if _LOWER_HEX_RE.fullmatch(encoded) is None:
        return _refusal(ErrorKind.CHECKSUM_INVALID_FORMAT, "REF-4")
    return None


def validate_digest(text: str) -> str:
    """Validate a digest as go-digest's ``Parse`` does and return it (REF-4).

    The algorithm must be ``sha256``, ``sha384`` or ``sha512`` with 64, 96 or 128
    lowercase hex characters. Errors: no ``:`` (or at either end), a non-hex or
    upper-case value → ``CHECKSUM_INVALID_FORMAT``; a known algorithm with the
    wrong length → ``DIGEST_INVALID_LENGTH`` (checked before the characters); an
    unknown but well-formed algorithm → ``DIGEST_UNSUPPORTED``.

    >>> validate_digest("sha256:" + "a" * 64) == "sha256:" + "a" * 64
    True
    >>> validate_digest("sha256:" + "a" * 32)
    Traceback (most recent call last):
    libimage.pure.errors.LibimageError: invalid checksum digest length
    """
    refusal = _check_digest(text)
    if refusal is not None:
        raise _raise(refusal, text)
    return text


# --------------------------------------------------------------------------- REF-3


# Room for every stored name of a 100,000-image store: a listing parses each name in
# its summaries (RepoDigests) and again in the table, so a smaller bound, met in
# store order, would keep none of them (about 0.3 KiB per entry).
_NAME_MEMO_SIZE = 1 << 17


@lru_cache(maxsize=_NAME_MEMO_SIZE)
def _parse(text: str) -> Reference | _Refusal:
    """Plain ``Parse`` as a value (cached: it runs once per stored name)."""
    match = REFERENCE_RE.fullmatch(text)
    if match is None:
        if text == "":
            return _refusal(ErrorKind.NAME_EMPTY, "REF-3")
        if REFERENCE_RE.fullmatch(go_lower(text)) is not None:
            return _refusal(ErrorKind.NAME_CONTAINS_UPPERCASE, "REF-3")
        return _refusal(ErrorKind.REFERENCE_INVALID_FORMAT, "REF-3")
    name, tag, digest = match.group(1, 2, 3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:  # the name matched ASCII-only patterns
        return _refusal(ErrorKind.NAME_TOO_LONG, "REF-3")
    split = ANCHORED_NAME_RE.fullmatch(name)
    # The name already matched NAME_RE, which ANCHORED_NAME_RE only adds captures to.
    assert split is not None
    if digest is not None:
        refusal = _check_digest(digest)
        if refusal is not None:
            return refusal
    return Reference(split.group(1) or "", split.group(2), tag or "", digest or "")


def parse(text: str) -> Reference:
    """Parse a reference as docker/reference's plain ``Parse`` does (REF-2, REF-3).

    No normalisation: ``busybox`` has no domain, and the first part of a multi-part
    name is the domain whenever it matches the domain grammar (``foo/bar`` → domain
    ``foo``). Errors, in order: ``NAME_EMPTY`` for ``""``; ``NAME_CONTAINS_UPPERCASE``
    if the lower-cased input would parse; ``REFERENCE_INVALID_FORMAT``;
    ``NAME_TOO_LONG`` for a name over 255 characters; the digest errors of REF-4.

    >>> parse("localhost:5000/foo:1.0")
    Reference(domain='localhost:5000', path='foo', tag='1.0', digest='')
    >>> parse("localhost:5000")
    Reference(domain='', path='localhost', tag='5000', digest='')
    >>> parse("Busybox")
    Traceback (most recent call last):
    libimage.pure.errors.LibimageError: repository name must be lowercase
    """
    outcome = _parse(text)
    if isinstance(outcome, _Refusal):
        raise _raise(outcome, text)
    return outcome


# --------------------------------------------------------------------------- REF-5


def trim_named(ref: Reference) -> Reference:
    """The name-only reference with the same domain and path (REF-5 ``TrimNamed``).

    >>> str(trim_named(parse("foo/bar:1")))
    'foo/bar'
    """
    if ref.is_name_only:
        return ref
    return Reference(ref.domain, ref.path)


def with_tag(ref: Reference, tag: str) -> Reference:
    """``ref`` with tag ``tag``, keeping its digest (REF-5 ``WithTag``).

    ``tag`` must match the tag grammar, else ``TAG_INVALID_FORMAT``.

    >>> str(with_tag(parse("busybox"), "1"))
    'busybox:1'
    """
    if TAG_RE.fullmatch(tag) is None:
        raise fail(ErrorKind.TAG_INVALID_FORMAT, tag, _TEXTS[ErrorKind.TAG_INVALID_FORMAT], "REF-5")
    return Reference(ref.domain, ref.path, tag, ref.digest)


def with_digest(ref: Reference, digest: str) -> Reference:
    """``ref`` with digest ``digest``, keeping its tag (REF-5 ``WithDigest``).

    Only the reference grammar's digest *shape* is checked (not go-digest's rules):
    a mismatch is ``DIGEST_INVALID_FORMAT`` ("invalid digest format").

    >>> str(with_digest(parse("busybox:1"), "md5:" + "0" * 32))
    'busybox:1@md5:00000000000000000000000000000000'
    """
    if DIGEST_RE.fullmatch(digest) is None:
        raise fail(
            ErrorKind.DIGEST_INVALID_FORMAT,
            digest,
            _TEXTS[ErrorKind.DIGEST_INVALID_FORMAT],
            "REF-5",
        )
    return Reference(ref.domain, ref.path, ref.tag, digest)


def with_name(text: str) -> Reference:
    """A name-only reference from a name string (REF-5 ``WithName``).

    Longer than 255 bytes → ``NAME_TOO_LONG``; not a ``name`` → ``REFERENCE_INVALID_FORMAT``.

    >>> with_name("quay.io/a/b")
    Reference(domain='quay.io', path='a/b', tag='', digest='')
    """
    if go_len(text) > NAME_TOTAL_LENGTH_MAX:
        raise _raise(_refusal(ErrorKind.NAME_TOO_LONG, "REF-5"), text)
    match = ANCHORED_NAME_RE.fullmatch(text)
    if match is None:
        raise _raise(_refusal(ErrorKind.REFERENCE_INVALID_FORMAT, "REF-5"), text)
    return Reference(match.group(1) or "", match.group(2))


# --------------------------------------------------------------------------- NORM-1..NORM-4


def split_docker_domain(text: str) -> tuple[str, str]:
    """Split a name into domain and remainder by the docker rule (NORM-1 steps 2-4).

    The text before the first ``/`` is the domain only if it contains ``.`` or ``:``
    or is ``localhost``; otherwise the domain is ``docker.io``. ``index.docker.io``
    becomes ``docker.io``, and a one-part remainder on ``docker.io`` gets ``library/``.

    >>> split_docker_domain("busybox"), split_docker_domain("localhost/x")
    (('docker.io', 'library/busybox'), ('localhost', 'x'))
    """
    slash = text.find("/")
    if slash == -1 or not names_registry(text[:slash]):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = text[:slash], text[slash + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_REPO_NAME}/{remainder}"
    return domain, remainder


def names_registry(domain: str) -> bool:
    """True if ``domain`` is a registry by the docker rule: ``.``, ``:`` or ``localhost``.

    >>> names_registry("quay.io"), names_registry("localhost"), names_registry("library")
    (True, True, False)
    """
    return "." in domain or ":" in domain or domain == "localhost"


@lru_cache(maxsize=_NAME_MEMO_SIZE)
def _parse_normalized_named(text: str) -> Reference | _Refusal:
    if IDENTIFIER_RE.fullmatch(text) is not None:
        message = f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        return _Refusal(ErrorKind.NAME_IS_HEX_ID, message, "NORM-1")
    domain, remainder = split_docker_domain(text)
    colon = remainder.find(":")
    remote_name = remainder if colon == -1 else remainder[:colon]
    if go_lower(remote_name) != remote_name:
        message = "invalid reference format: " + _TEXTS[ErrorKind.NAME_CONTAINS_UPPERCASE]
        return _Refusal(ErrorKind.NAME_CONTAINS_UPPERCASE, message, "NORM-1")
    return _parse(f"{domain}/{remainder}")


def parse_normalized_named(text: str) -> Reference:
    """Parse with docker-style normalisation (NORM-1 ``ParseNormalizedNamed``).

    A 64-hex input is refused (``NAME_IS_HEX_ID``); the domain is split off by the
    docker rule (:func:`split_docker_domain`); an upper-case repository part is
    ``NAME_CONTAINS_UPPERCASE`` with the text "invalid reference format: repository
    name must be lowercase"; then ``domain/remainder`` is parsed with REF-3, whose
    errors pass through (naming the caller's input).

    >>> str(parse_normalized_named("busybox:1.2"))
    'docker.io/library/busybox:1.2'
    >>> str(parse_normalized_named("index.docker.io/foo/bar"))
    'docker.io/foo/bar'
    """
    outcome = _parse_normalized_named(text)
    if isinstance(outcome, _Refusal):
        raise _raise(outcome, text)
    return outcome


def tag_name_only(ref: Reference) -> Reference:
    """Add the tag ``latest`` to a name-only reference (NORM-2 ``TagNameOnly``).

    >>> str(tag_name_only(parse("busybox"))), str(tag_name_only(parse("a@sha256:" + "0" * 64)))
    ('busybox:latest', 'a@sha256:0000000000000000000000000000000000000000000000000000000000000000')
    """
    if ref.is_name_only:
        return Reference(ref.domain, ref.path, DEFAULT_TAG)
    return ref


def parse_docker_ref(text: str) -> Reference:
    """Normalise, then keep only the digest or add ``latest`` (NORM-3 ``ParseDockerRef``).

    >>> str(parse_docker_ref("busybox"))
    'docker.io/library/busybox:latest'
    """
    named = parse_normalized_named(text)
    if named.tag and named.digest:
        return Reference(named.domain, named.path, digest=named.digest)
    return tag_name_only(named)


def familiar(ref: Reference) -> Reference:
    """The familiar form of ``ref``, tag and digest kept (NORM-4 ``Familiar``).

    On ``docker.io`` the domain is dropped, and ``library/`` too when the path has
    exactly two parts. Upstream applies this to any parsed reference, normalised or
    not (every reference type of docker/reference has a ``Familiar`` method).

    >>> familiar(parse("docker.io/library/busybox:1"))
    Reference(domain='', path='busybox', tag='1', digest='')
    """
    if ref.domain != DEFAULT_DOMAIN:
        return ref
    path = ref.path
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == OFFICIAL_REPO_NAME:
        path = parts[1]
    return Reference("", path, ref.tag, ref.digest)


def familiar_name(ref: Reference) -> str:
    """``FamiliarName``: the familiar name without tag or digest (NORM-4).

    >>> familiar_name(parse_normalized_named("busybox:1"))
    'busybox'
    """
    return familiar(ref).name


def familiar_string(ref: Reference) -> str:
    """``FamiliarString``: the familiar form with tag and digest (NORM-4).

    >>> familiar_string(parse("docker.io/foo/bar:1")), familiar_string(parse("quay.io/library/x"))
    ('foo/bar:1', 'quay.io/library/x')
    """
    return str(familiar(ref))


# --------------------------------------------------------------------------- LN-1, LN-2


def normalize_tagged_digested_string(text: str) -> str:
    """Drop the tag of a tagged-and-digested reference, else return ``text`` (LN-1).

    The input is parsed with plain ``Parse`` (REF-3), whose errors are raised as
    they are; the domain and path stay exactly as written.

    >>> normalize_tagged_digested_string("fedora:latest@sha256:" + "0" * 64)[:14]
    'fedora@sha256:'
    >>> normalize_tagged_digested_string("fedora:tag")
    'fedora:tag'
    """
    ref = parse(text)
    if ref.tag and ref.digest:
        return str(Reference(ref.domain, ref.path, digest=ref.digest))
    return text


NORMALIZE_ERROR_PREFIX_SEED = "error normalizing name"
NORMALIZE_ERROR_PREFIX_PODMAN = "normalizing name"  # common c71a7835 ("Fix stutters")


def normalize_name(text: str, *, drop_error_prefix: bool = False) -> Reference:
    """libimage's ``NormalizeName``: qualify with ``localhost/``, add ``latest`` (LN-2).

    1. Parse with REF-3; an error is wrapped as ``error normalizing name "<text>": …``
       (``normalizing name "<text>": …`` with ``drop_error_prefix``, podman 4.3.1's
       wording: ``Semantics.normalize_name_error_drops_error_prefix``), keeping its kind.
    2. A name whose domain is not a registry (:func:`names_registry`) becomes
       ``localhost/<name>``.
    3. ``ParseNormalizedNamed`` (errors pass through), then: tagged → tag dropped if a
       digest is present; digested → as is; name-only → ``:latest``.

    >>> str(normalize_name("ns/busybox:latest")), str(normalize_name("docker.io/busybox"))
    ('localhost/ns/busybox:latest', 'docker.io/library/busybox:latest')
    """
    plain = _parse(text)
    if isinstance(plain, _Refusal):
        prefix = NORMALIZE_ERROR_PREFIX_PODMAN if drop_error_prefix else NORMALIZE_ERROR_PREFIX_SEED
        message = f"{prefix} {go_quote(text)}: {plain.message}"
        raise fail(plain.kind, text, message, "LN-2")
    qualified = text
    if not names_registry(plain.domain):
        qualified = "localhost/" + str(plain).lstrip("/")
    outcome = _parse_normalized_named(qualified)
    if isinstance(outcome, _Refusal):
        raise _raise(outcome, text)
    if outcome.tag:
        if outcome.digest:
            return Reference(outcome.domain, outcome.path, digest=outcome.digest)
        return outcome
    if outcome.digest:
        return outcome
    return tag_name_only(outcome)


# --------------------------------------------------------------------------- LN-3, LN-4


@dataclass(frozen=True, slots=True)
class NameTagPair:
    """One repo tag split into name and tag (LN-3); ``<none>`` stands for "absent"."""

    name: str
    tag: str
    ref: Reference | None = None  # the parsed stored name; None for the <none> pair


def to_name_tag_pairs(refs: Sequence[Reference]) -> tuple[NameTagPair, ...]:
    """``ToNameTagPairs``: ``(full name, tag or <none>)`` per reference (LN-3).

    A digest-only reference gets the tag ``<none>``; no references at all give the
    single pair ``(<none>, <none>)``.

    >>> [(p.name, p.tag) for p in to_name_tag_pairs([parse("quay.io/a:1"), parse("b")])]
    [('quay.io/a', '1'), ('b', '<none>')]
    >>> [(p.name, p.tag) for p in to_name_tag_pairs([])]
    [('<none>', '<none>')]
    """
    pairs = tuple(NameTagPair(ref.name, ref.tag or NONE, ref) for ref in refs)
    return pairs or (NameTagPair(NONE, NONE),)


@dataclass(frozen=True, slots=True)
class RepoTagsMatch:
    """What :func:`find_in_repo_tags` found: the stored name, and the names skipped.

    ``skipped`` holds, in stored order, the stored names that do not parse. Upstream
    aborts the whole lookup on the first one (LN-4 step 1); decision 18 skips them
    so that callers can warn, naming the image.
    """

    match: Reference | None
    skipped: PVector[str] = field(default_factory=pvector)


def _repo_tag_hit(ref: Reference, name: str, tag: str) -> bool:
    """LN-4 step 3 for one parsed stored name."""
    if ref.tag != tag:  # a stored name without a tag has the tag <none>, never asked for
        return False
    full = ref.name
    if not full.endswith(name):
        return False
    return len(full) == len(name) or full[len(full) - len(name) - 1] == "/"


def _query_parts(query: Reference) -> tuple[str, str]:
    if not query.tag:
        raise ValueError(f"in_repo_tags needs a tagged query (LK-8 step 5), got {query}")
    return query.name, query.tag


def find_in_repo_tags(names: Iterable[str], query: Reference) -> RepoTagsMatch:
    """``inRepoTags``: the first stored name matching a tagged query, and the skipped names.

    Every stored name is parsed with plain ``Parse`` (LN-4 step 1); one that does not
    parse is skipped and reported (decision 18). The first parsed name (stored
    order) whose tag equals the query's tag and whose name equals the query's name
    or ends with ``"/" + name`` is the match (LN-4 step 3). The query is the user's
    parsed input with a tag (LK-8 step 5 adds ``latest``), not docker-normalised.

    >>> stored = ["docker.io/library/busybox:latest", "quay.io/x/img:v1", "Bad"]
    >>> found = find_in_repo_tags(stored, parse("img:v1"))
    >>> str(found.match), list(found.skipped)
    ('quay.io/x/img:v1', ['Bad'])
    """
    name, tag = _query_parts(query)
    match: Reference | None = None
    skipped: list[str] = []
    for stored in names:
        outcome = _parse(stored)
        if isinstance(outcome, _Refusal):
            skipped.append(stored)
        elif match is None and _repo_tag_hit(outcome, name, tag):
            match = outcome
    return RepoTagsMatch(match, pvector(skipped))


def in_repo_tags(names: Iterable[str], query: Reference) -> Reference | None:
    """The first stored name matching a tagged query (LN-4); bad names are skipped.

    The same answer as :func:`find_in_repo_tags` without the list of skipped names,
    and faster: a stored name can only match if it contains ``<name>:<tag>``, so
    only such names are parsed.

    >>> stored = ["docker.io/library/busybox:latest", "quay.io/x/img:v1"]
    >>> str(in_repo_tags(stored, parse("busybox:latest")))
    'docker.io/library/busybox:latest'
    >>> in_repo_tags(stored, parse("box:latest")) is None
    True
    """
    name, tag = _query_parts(query)
    needle = f"{name}:{tag}"
    for stored in names:
        if needle not in stored:
            continue
        outcome = _parse(stored)
        if not isinstance(outcome, _Refusal) and _repo_tag_hit(outcome, name, tag):
            return outcome
    return None


# --------------------------------------------------------------------------- SN-1


def is_short_name(text: str) -> bool:
    """``IsShortName``: parses, and its domain is not a registry (SN-1).

    A parse error means "not short". ``ex_ample.com/foo`` is short: its first part is
    no domain (``_``), so plain parsing leaves the domain empty.

    >>> [is_short_name(t) for t in ("busybox:1", "library/busybox", "localhost/x", "quay.io/x")]
    [True, True, False, False]
    """
    outcome = _parse(text)
    if isinstance(outcome, _Refusal):
        return False
    return not names_registry(outcome.domain)
