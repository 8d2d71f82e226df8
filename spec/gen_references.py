"""Hypothesis strategies for image references, built from the grammar pieces (REF-1).

Shared by the property tests and the oracle. Valid references are assembled from
their parts, so each carries the parts plain parsing must give back (REF-2's
domain rule applied by hand); invalid ones carry the error kind they must produce
(REF-3, REF-4, NORM-1).

The literal transcription of the upstream grammar lives here too
(``LITERAL_REFERENCE_RE`` and friends, with upstream's ``[-]*`` separator): the
implementation in :mod:`libimage.pure.reference` rewrites two pieces to avoid
backtracking blow-ups, and a property test compares both on short strings, where
the literal form is still fast.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from libimage.pure.errors import ErrorKind

if TYPE_CHECKING:
    # Imported for mypy only: typeguard skips names imported this way, and it cannot
    # check hypothesis's DrawFn protocol against the drawing method it is given.
    from hypothesis.strategies import DrawFn

# ---------------------------------------------------------------- the grammar as written (REF-1)

LITERAL_SEPARATOR = r"(?:[._]|__|[-]*)"
LITERAL_COMPONENT = rf"[a-z0-9]+(?:{LITERAL_SEPARATOR}[a-z0-9]+)*"
LITERAL_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
LITERAL_DOMAIN = rf"{LITERAL_DOMAIN_COMPONENT}(?:\.{LITERAL_DOMAIN_COMPONENT})*(?::[0-9]+)?"
LITERAL_TAG = r"[\w][\w.-]{0,127}"
LITERAL_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
LITERAL_NAME = rf"(?:{LITERAL_DOMAIN}/)?{LITERAL_COMPONENT}(?:/{LITERAL_COMPONENT})*"
LITERAL_REFERENCE_RE = re.compile(
    rf"({LITERAL_NAME})(?::({LITERAL_TAG}))?(?:@({LITERAL_DIGEST}))?", re.ASCII
)
LITERAL_ANCHORED_NAME_RE = re.compile(
    rf"(?:({LITERAL_DOMAIN})/)?({LITERAL_COMPONENT}(?:/{LITERAL_COMPONENT})*)", re.ASCII
)
LITERAL_DOMAIN_RE = re.compile(LITERAL_DOMAIN, re.ASCII)

DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALNUM = string.ascii_lowercase + string.digits
_HEX = "0123456789abcdef"
_WORD = string.ascii_letters + string.digits + "_"


@dataclass(frozen=True, slots=True)
class GeneratedReference:
    """A valid reference string and the parts plain ``Parse`` must give (REF-2, REF-3)."""

    text: str
    domain: str
    path: str
    tag: str = ""
    digest: str = ""


@dataclass(frozen=True, slots=True)
class InvalidReference:
    """A string that plain ``Parse`` must refuse, with the kind of the refusal."""

    text: str
    kind: ErrorKind
    rule: str


# ---------------------------------------------------------------- pieces


def alnums(max_size: int = 6) -> st.SearchStrategy[str]:
    """``[a-z0-9]+``, often from a tiny pool so that names collide."""
    return st.one_of(
        st.sampled_from(["a", "b", "foo", "busybox", "library", "x1"]),
        st.text(alphabet=_ALNUM, min_size=1, max_size=max_size),
    )


def separators() -> st.SearchStrategy[str]:
    """The separators of REF-1: ``.``, ``_``, ``__`` or a run of ``-``."""
    return st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def components(draw: DrawFn) -> str:
    """A path component: alphanumeric runs joined by separators (REF-1)."""
    first = draw(alnums())
    rest = draw(st.lists(st.tuples(separators(), alnums()), max_size=2))
    return first + "".join(sep + run for sep, run in rest)


@st.composite
def domain_components(draw: DrawFn) -> str:
    """A domain component: letters of either case, digits, inner ``-`` (REF-1)."""
    edge = string.ascii_letters + string.digits
    first = draw(st.sampled_from(edge))
    if draw(st.booleans()):
        return first
    middle = draw(st.text(alphabet=edge + "-", max_size=5))
    return first + middle + draw(st.sampled_from(edge))


@st.composite
def domains(draw: DrawFn) -> str:
    """A domain, possibly with a port; often a well-known registry."""
    known = st.sampled_from(
        ["localhost", "localhost:5000", "docker.io", "index.docker.io", "quay.io", "Foo.com:80"]
    )
    if draw(st.booleans()):
        return draw(known)
    parts = draw(st.lists(domain_components(), min_size=1, max_size=3))
    port = draw(st.one_of(st.just(""), st.integers(0, 65535).map(lambda p: f":{p}")))
    return ".".join(parts) + port


def paths() -> st.SearchStrategy[list[str]]:
    """One to four path components."""
    return st.lists(components(), min_size=1, max_size=4)


def tags() -> st.SearchStrategy[str]:
    """A tag: a word character, then up to 127 of ``[\\w.-]`` (REF-1)."""
    short = st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_WORD),
        st.text(alphabet=_WORD + ".-", max_size=8),
    )
    longest = st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_WORD),
        st.text(alphabet=_WORD + ".-", min_size=127, max_size=127),
    )
    return st.one_of(st.sampled_from(["latest", "1.0", "V1", "_a"]), short, longest)


@st.composite
def digests(draw: DrawFn) -> str:
    """A valid digest: sha256, sha384 or sha512 with lowercase hex of the right length."""
    algorithm = draw(st.sampled_from(sorted(DIGEST_HEX_LENGTHS)))
    size = DIGEST_HEX_LENGTHS[algorithm]
    hex_value = draw(st.text(alphabet=_HEX, min_size=size, max_size=size))
    return f"{algorithm}:{hex_value}"


def _split_like_parse(domain: str, path_parts: list[str]) -> tuple[str, str]:
    """REF-2: without a drawn domain, a first part that can be a domain becomes one."""
    if domain:
        return domain, "/".join(path_parts)
    if len(path_parts) >= 2 and LITERAL_DOMAIN_RE.fullmatch(path_parts[0]):
        return path_parts[0], "/".join(path_parts[1:])
    return "", "/".join(path_parts)


@st.composite
def valid_references(draw: DrawFn) -> GeneratedReference:
    """A valid reference with its expected parts; the name stays within 255 characters."""
    domain = draw(st.one_of(st.just(""), domains()))
    path_parts = draw(paths())
    tag = draw(st.one_of(st.just(""), tags()))
    digest = draw(st.one_of(st.just(""), digests()))
    name = "/".join([domain, *path_parts]) if domain else "/".join(path_parts)
    text = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    expected_domain, expected_path = _split_like_parse(domain, path_parts)
    return GeneratedReference(text, expected_domain, expected_path, tag, digest)


def hex_ids() -> st.SearchStrategy[str]:
    """64 lowercase hex characters: an image ID, refused as a name by NORM-1."""
    return st.text(alphabet=_HEX, min_size=64, max_size=64)


# ---------------------------------------------------------------- invalid references


@st.composite
def _uppercase_in_path(draw: DrawFn) -> InvalidReference:
    ref = draw(valid_references().filter(lambda r: any(c.isalpha() for c in r.path)))
    letters = [i for i, c in enumerate(ref.path) if c.isalpha()]
    index = draw(st.sampled_from(letters))
    original = f"{ref.domain}/{ref.path}" if ref.domain else ref.path
    path = ref.path[:index] + ref.path[index].upper() + ref.path[index + 1 :]
    name = f"{ref.domain}/{path}" if ref.domain else path
    suffix = ref.text[len(original) :]
    return InvalidReference(name + suffix, ErrorKind.NAME_CONTAINS_UPPERCASE, "REF-3")


def _mutations() -> st.SearchStrategy[tuple[str, str]]:
    """(where, what): lower-case damage that no re-reading can repair."""
    return st.sampled_from(
        [
            ("suffix", ":"),
            ("suffix", "@"),
            ("suffix", "/"),
            ("prefix", "-"),
            ("prefix", "/"),
            ("prefix", "@"),
            ("prefix", ":"),
            ("suffix", ":-a"),
            ("suffix", ":.a"),
            ("suffix", ":" + "a" * 129),
            ("suffix", "/a___b"),
            ("suffix", "//a"),
            ("suffix", "@sha256:" + "a" * 31),
            ("suffix", "@sha256"),
            ("suffix", " "),
            ("suffix", "\n"),
        ]
    )


@st.composite
def _bad_format(draw: DrawFn) -> InvalidReference:
    ref = draw(valid_references())
    where, what = draw(_mutations())
    text = what + ref.text if where == "prefix" else ref.text + what
    return InvalidReference(text, ErrorKind.REFERENCE_INVALID_FORMAT, "REF-3")


@st.composite
def _too_long(draw: DrawFn) -> InvalidReference:
    # Seven parts of at least 40 characters: always longer than 255.
    parts = draw(
        st.lists(st.text(alphabet=_ALNUM, min_size=40, max_size=60), min_size=7, max_size=9)
    )
    name = "/".join(parts)
    # The length is checked before the digest: a bad digest does not change the kind.
    suffix = draw(st.sampled_from(["", ":v1", "@sha256:" + "a" * 32, "@md5:" + "a" * 32]))
    return InvalidReference(name + suffix, ErrorKind.NAME_TOO_LONG, "REF-3")


def _names_without_digest() -> st.SearchStrategy[str]:
    return valid_references().map(lambda ref: ref.text.split("@")[0])


def _hex_text(size: int, alphabet: str = _HEX) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=size, max_size=size)


@st.composite
def _digest_of_wrong_length(draw: DrawFn) -> InvalidReference:
    """A known algorithm with 32+ hex characters of any case, but not its length."""
    algorithm = draw(st.sampled_from(sorted(DIGEST_HEX_LENGTHS)))
    size = draw(st.integers(32, 160).filter(lambda n: n != DIGEST_HEX_LENGTHS[algorithm]))
    hex_value = draw(_hex_text(size, _HEX + "ABCDEF"))
    text = f"{draw(_names_without_digest())}@{algorithm}:{hex_value}"
    return InvalidReference(text, ErrorKind.DIGEST_INVALID_LENGTH, "REF-4")


@st.composite
def _digest_of_unknown_algorithm(draw: DrawFn) -> InvalidReference:
    """A well-formed algorithm go-digest does not know."""
    algorithm = draw(st.sampled_from(["md5", "sha1", "blake3", "sha256+b64", "sha256.b64", "x"]))
    hex_value = draw(st.integers(32, 80).flatmap(lambda n: _hex_text(n, _HEX + "ABCDEF")))
    text = f"{draw(_names_without_digest())}@{algorithm}:{hex_value}"
    return InvalidReference(text, ErrorKind.DIGEST_UNSUPPORTED, "REF-4")


@st.composite
def _digest_with_uppercase_hex(draw: DrawFn) -> InvalidReference:
    """The right length, one upper-case hex digit."""
    algorithm = draw(st.sampled_from(sorted(DIGEST_HEX_LENGTHS)))
    size = DIGEST_HEX_LENGTHS[algorithm]
    hex_value = draw(_hex_text(size - 1))
    index = draw(st.integers(0, size - 1))
    hex_value = hex_value[:index] + draw(st.sampled_from("ABCDEF")) + hex_value[index:]
    text = f"{draw(_names_without_digest())}@{algorithm}:{hex_value}"
    return InvalidReference(text, ErrorKind.CHECKSUM_INVALID_FORMAT, "REF-4")


@st.composite
def _digest_with_uppercase_algorithm(draw: DrawFn) -> InvalidReference:
    """An algorithm the reference grammar allows but go-digest's pattern does not."""
    algorithm = draw(st.sampled_from(["SHA256", "Sha512", "MD5", "sha256.X"]))
    text = f"{draw(_names_without_digest())}@{algorithm}:{'0' * 64}"
    return InvalidReference(text, ErrorKind.CHECKSUM_INVALID_FORMAT, "REF-4")


def invalid_references() -> st.SearchStrategy[InvalidReference]:
    """Strings plain ``Parse`` refuses, each with the kind it must refuse them with."""
    return st.one_of(
        st.just(InvalidReference("", ErrorKind.NAME_EMPTY, "REF-3")),
        _uppercase_in_path(),
        _bad_format(),
        _too_long(),
        _digest_of_wrong_length(),
        _digest_of_unknown_algorithm(),
        _digest_with_uppercase_hex(),
        _digest_with_uppercase_algorithm(),
    )
