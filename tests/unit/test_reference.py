"""Reference grammar, normalisation and libimage's name helpers (REF-*, NORM-*, LN-*).

Every table row is an example of behaviour-lookup.md sections 1-3 (or a direct
consequence the section states); the ids name the row.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from libimage.adapters.cli import run
from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.reference import (
    Reference,
    familiar_name,
    familiar_string,
    find_in_repo_tags,
    go_len,
    go_quote,
    in_repo_tags,
    is_full_id,
    normalize_name,
    normalize_tagged_digested_string,
    parse,
    parse_docker_ref,
    parse_normalized_named,
    tag_name_only,
    to_name_tag_pairs,
    trim_named,
    validate_digest,
    with_digest,
    with_name,
    with_tag,
)
from libimage.pure.semantics import PODMAN_4_3, SEED

HEX = "140f4ef8c5ee4f9a2a94db4d0e3e01cbdc4cd8b0a1f7c0b5d6a1c9d8e7f6a5b4"
DIGEST = f"sha256:{HEX}"
assert len(HEX) == 64

K = ErrorKind
LENGTH = "invalid checksum digest length"


def error_of(call: object, *args: object) -> LibimageError:
    assert callable(call)
    with pytest.raises(LibimageError) as caught:
        call(*args)
    return caught.value


class TestGrammar:
    """REF-1: path components are lowercase with `.`, `_`, `__` or `-` runs between
    alphanumerics; domain components allow upper case and a port but no `_`; a tag is
    1..128 characters starting with a word character."""

    @pytest.mark.parametrize(
        "text",
        ["a__b", "a--b", "a-b_c.d", "busybox:_a", "busybox:Latest", "Foo.com:80/a",
         "a:" + "b" * 128],
        ids=["double-underscore", "dash-run", "mixed-separators", "tag-underscore-first",
             "tag-uppercase", "domain-uppercase-port", "tag-128"],
    )  # fmt: skip
    def test_valid(self, text: str) -> None:
        assert str(parse(text)) == text

    @pytest.mark.parametrize(
        "text",
        ["a___b", "a.-b", "-foo", "foo-", "foo//bar", "foo/", "busybox:-a", "busybox:.a",
         "ex_ample.com:80/foo", "a:" + "b" * 129],
        ids=["triple-underscore", "dot-dash", "leading-dash", "trailing-dash", "double-slash",
             "trailing-slash", "tag-dash-first", "tag-dot-first", "domain-underscore-port",
             "tag-129"],
    )  # fmt: skip
    def test_invalid(self, text: str) -> None:
        assert error_of(parse, text).kind is K.REFERENCE_INVALID_FORMAT


class TestDomainSplit:
    """REF-2: plain Parse makes the first part the domain whenever it can be one."""

    @pytest.mark.parametrize(
        ("text", "domain", "path", "tag", "digest"),
        [
            ("busybox", "", "busybox", "", ""),
            ("foo/bar", "foo", "bar", "", ""),
            ("a/b/c", "a", "b/c", "", ""),
            ("localhost/foo/bar:1.0", "localhost", "foo/bar", "1.0", ""),
            ("localhost:5000/foo", "localhost:5000", "foo", "", ""),
            ("localhost:5000", "", "localhost", "5000", ""),
            ("Foo.com:80/a:V1", "Foo.com:80", "a", "V1", ""),
            ("ex_ample.com/foo", "", "ex_ample.com/foo", "", ""),
            ("docker:busybox", "", "docker", "busybox", ""),
            (DIGEST, "", "sha256", HEX, ""),
        ],
        ids=["busybox", "foo/bar", "a/b/c", "localhost-path-tag", "localhost-port",
             "localhost-port-is-a-tag", "uppercase-domain", "underscore-not-domain",
             "transport-like", "bare-digest"],
    )  # fmt: skip
    def test_parts(self, text: str, domain: str, path: str, tag: str, digest: str) -> None:
        assert parse(text) == Reference(domain, path, tag, digest)


class TestParseErrors:
    """REF-3: errors in order: empty, upper case, invalid format, too long, digest."""

    @pytest.mark.parametrize(
        ("text", "kind", "message"),
        [
            ("", K.NAME_EMPTY, "repository name must have at least one component"),
            ("Busybox", K.NAME_CONTAINS_UPPERCASE, "repository name must be lowercase"),
            ("foo.com/Bar", K.NAME_CONTAINS_UPPERCASE, "repository name must be lowercase"),
            ("BUSYBOX:latest", K.NAME_CONTAINS_UPPERCASE, "repository name must be lowercase"),
            ("a___b", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("foo:", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            (":tag", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("foo:bar:baz", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("@" + DIGEST, K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("-foo", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("oci:/x", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("$$garbage", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
            ("a" * 256, K.NAME_TOO_LONG, "repository name must not be more than 255 characters"),
            ("a" * 256 + "@md5:" + "0" * 32, K.NAME_TOO_LONG,
             "repository name must not be more than 255 characters"),
            ("busybox\n", K.REFERENCE_INVALID_FORMAT, "invalid reference format"),
        ],
        ids=["empty", "Busybox", "uppercase-path-after-domain", "uppercase-with-tag",
             "triple-underscore", "empty-tag", "no-name", "two-tags", "digest-without-name",
             "leading-dash", "oci-transport", "garbage", "name-256", "length-before-digest",
             "trailing-newline"],
    )  # fmt: skip
    def test_error(self, text: str, kind: ErrorKind, message: str) -> None:
        error = error_of(parse, text)
        assert (error.kind, error.failure.message, error.failure.subject) == (kind, message, text)

    def test_name_of_255_characters_is_fine(self) -> None:
        """REF-3 step 2: only names *longer* than 255 characters are refused."""
        assert parse("a" * 255 + ":v1").path == "a" * 255

    def test_go_lowercase_of_dotted_capital_i(self) -> None:
        """REF-3 step 1 lower-cases as Go does: U+0130 becomes ``i``, so upper case."""
        assert error_of(parse, "\u0130mage").kind is K.NAME_CONTAINS_UPPERCASE
        assert error_of(parse, "\u00e9").kind is K.REFERENCE_INVALID_FORMAT

    @pytest.mark.parametrize(
        ("text", "tagged", "digested", "string"),
        [
            ("quay.io/a/b", False, False, "quay.io/a/b"),
            ("quay.io/a/b:t", True, False, "quay.io/a/b:t"),
            (f"quay.io/a/b@{DIGEST}", False, True, f"quay.io/a/b@{DIGEST}"),
            (f"quay.io/a/b:t@{DIGEST}", True, True, f"quay.io/a/b:t@{DIGEST}"),
        ],
        ids=["name-only", "tagged", "canonical", "tagged-and-digested"],
    )
    def test_result_types_and_string_forms(
        self, text: str, tagged: bool, digested: bool, string: str
    ) -> None:
        """REF-3 step 4 and "String forms"."""
        ref = parse(text)
        assert (ref.is_tagged, ref.is_digested, ref.is_name_only) == (
            tagged,
            digested,
            not tagged and not digested,
        )
        assert (str(ref), ref.name) == (string, "quay.io/a/b")


class TestDigests:
    """REF-4: go-digest validation of every parsed digest."""

    @pytest.mark.parametrize(
        ("text", "kind", "message"),
        [
            ("fedora@sha256:" + "a" * 32, K.DIGEST_INVALID_LENGTH, LENGTH),
            ("fedora@md5:" + "a" * 32, K.DIGEST_UNSUPPORTED, "unsupported digest algorithm"),
            ("fedora@sha256:" + "A" * 64, K.CHECKSUM_INVALID_FORMAT,
             "invalid checksum digest format"),
            ("fedora@sha384:" + "a" * 64, K.DIGEST_INVALID_LENGTH, LENGTH),
            ("fedora@sha256:" + "A" * 63, K.DIGEST_INVALID_LENGTH, LENGTH),
            ("fedora@SHA256:" + "a" * 64, K.CHECKSUM_INVALID_FORMAT,
             "invalid checksum digest format"),
        ],
        ids=["sha256-32-hex", "md5", "uppercase-hex", "sha384-64-hex", "length-before-case",
             "uppercase-algorithm"],
    )  # fmt: skip
    def test_in_references(self, text: str, kind: ErrorKind, message: str) -> None:
        error = error_of(parse, text)
        assert (error.kind, error.failure.message) == (kind, message)

    @pytest.mark.parametrize(
        "text",
        [f"sha256:{HEX}", "sha384:" + "0" * 96, "sha512:" + "f" * 128],
        ids=["sha256", "sha384", "sha512"],
    )
    def test_valid(self, text: str) -> None:
        assert validate_digest(text) == text
        assert parse(f"x@{text}").digest == text

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("sha256" + HEX, K.CHECKSUM_INVALID_FORMAT),
            (":" + HEX, K.CHECKSUM_INVALID_FORMAT),
            ("sha256:", K.CHECKSUM_INVALID_FORMAT),
            ("md5:" + "0" * 32, K.DIGEST_UNSUPPORTED),
            ("Md5:" + "0" * 32, K.CHECKSUM_INVALID_FORMAT),
            ("sha256:" + "g" * 64, K.CHECKSUM_INVALID_FORMAT),
            ("sha512:" + "0" * 64, K.DIGEST_INVALID_LENGTH),
            ("sha256:" + "0" * 63 + "\u00e9", K.DIGEST_INVALID_LENGTH),
        ],
        ids=["no-colon", "colon-first", "colon-last", "unsupported", "unknown-uppercase",
             "not-hex", "sha512-short", "length-in-bytes"],
    )  # fmt: skip
    def test_validate_digest(self, text: str, kind: ErrorKind) -> None:
        """REF-4 steps 1-3 (Go counts bytes: a two-byte character makes 65)."""
        assert error_of(validate_digest, text).kind is kind


class TestHelpers:
    """REF-5: TrimNamed, WithTag, WithDigest, WithName, IsNameOnly."""

    def test_trim_named(self) -> None:
        assert trim_named(parse(f"foo/bar:1@{DIGEST}")) == Reference("foo", "bar")

    def test_with_tag_keeps_digest(self) -> None:
        ref = with_tag(parse(f"quay.io/a@{DIGEST}"), "v1")
        assert str(ref) == f"quay.io/a:v1@{DIGEST}"

    @pytest.mark.parametrize(
        "tag", ["", "-a", "a" * 129, "a/b"], ids=["empty", "dash", "129", "slash"]
    )
    def test_with_bad_tag(self, tag: str) -> None:
        error = error_of(with_tag, parse("busybox"), tag)
        assert (error.kind, error.failure.message) == (K.TAG_INVALID_FORMAT, "invalid tag format")

    def test_with_digest_keeps_tag_and_checks_shape_only(self) -> None:
        assert str(with_digest(parse("a:1"), DIGEST)) == f"a:1@{DIGEST}"
        assert with_digest(parse("a"), "md5:" + "0" * 32).digest == "md5:" + "0" * 32

    @pytest.mark.parametrize(
        "digest",
        ["sha256:abc", "sha256", "1sha:" + "0" * 32],
        ids=["short", "no-hex", "digit-first"],
    )
    def test_with_bad_digest(self, digest: str) -> None:
        error = error_of(with_digest, parse("a"), digest)
        assert (error.kind, error.failure.message) == (
            K.DIGEST_INVALID_FORMAT,
            "invalid digest format",
        )

    def test_with_name(self) -> None:
        assert with_name("localhost:5000/a/b") == Reference("localhost:5000", "a/b")
        assert error_of(with_name, "a" * 256).kind is K.NAME_TOO_LONG
        assert error_of(with_name, "a:1").kind is K.REFERENCE_INVALID_FORMAT


class TestParseNormalizedNamed:
    """NORM-1: docker-style normalisation."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("busybox", "docker.io/library/busybox"),
            ("busybox:1.2", "docker.io/library/busybox:1.2"),
            ("library/busybox", "docker.io/library/busybox"),
            ("foo/bar", "docker.io/foo/bar"),
            ("docker.io/busybox", "docker.io/library/busybox"),
            ("index.docker.io/foo/bar", "docker.io/foo/bar"),
            ("localhost/busybox", "localhost/busybox"),
            ("localhost:5000/x", "localhost:5000/x"),
            (f"quay.io/a/b:t@{DIGEST}", f"quay.io/a/b:t@{DIGEST}"),
            (DIGEST, f"docker.io/library/{DIGEST}"),
        ],
        ids=["busybox", "tag", "library", "namespace", "docker.io", "index.docker.io",
             "localhost", "localhost-port", "tag-kept", "bare-digest-is-a-tag"],
    )  # fmt: skip
    def test_table(self, text: str, expected: str) -> None:
        assert str(parse_normalized_named(text)) == expected

    def test_parts_of_docker_io(self) -> None:
        assert parse_normalized_named("busybox") == Reference("docker.io", "library/busybox")

    def test_hex_id_refused(self) -> None:
        """NORM-1 rule 1."""
        error = error_of(parse_normalized_named, HEX)
        assert error.kind is K.NAME_IS_HEX_ID
        assert error.failure.message == (
            f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"
        )

    @pytest.mark.parametrize(
        "text", ["Foo/bar", "quay.io/Foo:1", "BUSYBOX"], ids=["namespace", "with-domain", "bare"]
    )
    def test_uppercase_repository(self, text: str) -> None:
        """NORM-1 rule 5: checked before parsing, with its own text."""
        error = error_of(parse_normalized_named, text)
        assert (error.kind, error.failure.message, error.failure.subject) == (
            K.NAME_CONTAINS_UPPERCASE,
            "invalid reference format: repository name must be lowercase",
            text,
        )

    def test_uppercase_domain_is_fine(self) -> None:
        assert parse_normalized_named("Foo.com:80/a").domain == "Foo.com:80"

    def test_parse_errors_pass_through(self) -> None:
        """NORM-1 rule 6: REF-3 errors, naming the caller's input."""
        error = error_of(parse_normalized_named, "a___b")
        assert (error.kind, error.failure.subject) == (K.REFERENCE_INVALID_FORMAT, "a___b")
        assert error_of(parse_normalized_named, "").kind is K.REFERENCE_INVALID_FORMAT


class TestTagNameOnlyAndDockerRef:
    """NORM-2 and NORM-3."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [("busybox", "busybox:latest"), ("busybox:1", "busybox:1"), (f"a@{DIGEST}", f"a@{DIGEST}")],
        ids=["name-only", "tagged", "canonical-gets-no-tag"],
    )
    def test_tag_name_only(self, text: str, expected: str) -> None:
        assert str(tag_name_only(parse(text))) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("busybox", "docker.io/library/busybox:latest"),
            (f"busybox:1@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        ],
        ids=["adds-latest", "drops-tag-of-digested"],
    )
    def test_parse_docker_ref(self, text: str, expected: str) -> None:
        assert str(parse_docker_ref(text)) == expected

    def test_parse_docker_ref_refuses_hex(self) -> None:
        """LK-7 relies on it: ParseDockerRef fails for a bare 64-hex name."""
        assert error_of(parse_docker_ref, HEX).kind is K.NAME_IS_HEX_ID


class TestFamiliar:
    """NORM-4: familiar forms drop docker.io, and library/ of two-part paths."""

    def test_examples(self) -> None:
        assert familiar_name(parse_normalized_named("docker.io/library/busybox:1")) == "busybox"
        assert familiar_string(parse_normalized_named("docker.io/foo/bar:1")) == "foo/bar:1"
        assert familiar_string(parse_normalized_named("quay.io/library/x")) == "quay.io/library/x"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("docker.io/library/busybox:1", "busybox:1"),
            ("docker.io/busybox", "busybox"),
            ("busybox", "busybox"),
            ("index.docker.io/library/x", "index.docker.io/library/x"),
            ("docker.io/library/a/b", "library/a/b"),
        ],
        ids=["normalised-input", "docker.io-one-part", "no-domain", "legacy-domain-kept",
             "library-three-parts"],
    )  # fmt: skip
    def test_of_plain_references(self, text: str, expected: str) -> None:
        """Upstream familiarises any parsed reference as it is, without normalising it."""
        assert familiar_string(parse(text)) == expected

    def test_familiar_of_a_hex_repository_does_not_renormalise(self) -> None:
        """NORM-1 rule 1 meets NORM-4: ``docker.io/library/<hex>`` is familiar ``<hex>``."""
        ref = parse_normalized_named(f"library/{HEX}")
        assert familiar_string(ref) == HEX
        assert error_of(parse_normalized_named, familiar_string(ref)).kind is K.NAME_IS_HEX_ID


class TestIdentifiers:
    """NORM-5: a full identifier is 64 lowercase hex characters."""

    @pytest.mark.parametrize(
        ("text", "full"),
        [(HEX, True), (HEX.upper(), False), (HEX[:63], False), (DIGEST, False)],
        ids=["full", "uppercase", "63", "digest"],
    )
    def test_is_full_id(self, text: str, full: bool) -> None:
        assert is_full_id(text) is full


class TestNormalizeTaggedDigested:
    """LN-1: LookupImage's first step."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("fedora", "fedora"),
            ("fedora:tag", "fedora:tag"),
            (f"fedora@{DIGEST}", f"fedora@{DIGEST}"),
            (f"fedora:latest@{DIGEST}", f"fedora@{DIGEST}"),
            (f"repo/fedora:123456@{DIGEST}", f"repo/fedora@{DIGEST}"),
            (f"localhost:5000/fedora:v1.2.3.4.5@{DIGEST}", f"localhost:5000/fedora@{DIGEST}"),
            (DIGEST, DIGEST),
        ],
        ids=["name", "tag", "digest", "tag-and-digest", "repo", "port", "bare-digest"],
    )
    def test_table(self, text: str, expected: str) -> None:
        assert normalize_tagged_digested_string(text) == expected

    @pytest.mark.parametrize(
        "text",
        ["$$garbage", f"@{DIGEST}", "docker://fedora:latest"],
        ids=["garbage", "digest-only", "transport"],
    )
    def test_errors(self, text: str) -> None:
        assert error_of(normalize_tagged_digested_string, text).kind is K.REFERENCE_INVALID_FORMAT


class TestNormalizeName:
    """LN-2: NormalizeName qualifies with localhost/ and adds latest."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("example.com/busybox", "example.com/busybox:latest"),
            ("example.com/busybox:notlatest", "example.com/busybox:notlatest"),
            (f"example.com/busybox:notlatest@{DIGEST}", f"example.com/busybox@{DIGEST}"),
            ("busybox:latest", "localhost/busybox:latest"),
            (f"busybox:latest@{DIGEST}", f"localhost/busybox@{DIGEST}"),
            ("localhost/busybox", "localhost/busybox:latest"),
            ("ns/busybox:latest", "localhost/ns/busybox:latest"),
            ("docker.io/busybox:latest", "docker.io/library/busybox:latest"),
            (HEX, f"localhost/{HEX}:latest"),
            (DIGEST, f"localhost/{DIGEST}"),
        ],
        ids=["domain", "domain-tag", "domain-tag-digest", "short", "short-tag-digest",
             "localhost", "namespace", "docker.io", "hex", "bare-digest"],
    )  # fmt: skip
    def test_table(self, text: str, expected: str) -> None:
        assert str(normalize_name(text)) == expected

    @pytest.mark.parametrize(
        ("drop_prefix", "message"),
        [
            (SEED.normalize_name_error_drops_error_prefix,
             'error normalizing name "#": invalid reference format'),
            (PODMAN_4_3.normalize_name_error_drops_error_prefix,
             'normalizing name "#": invalid reference format'),
        ],
        ids=["seed", "podman-4.3"],
    )  # fmt: skip
    def test_error_wording_per_profile(self, drop_prefix: bool, message: str) -> None:
        """LN-2 step 1; podman 4.3.1 drops "error " (containers/common c71a7835)."""
        error = error_of(lambda: normalize_name("#", drop_error_prefix=drop_prefix))
        assert (error.kind, error.failure.message, error.failure.subject) == (
            K.REFERENCE_INVALID_FORMAT,
            message,
            "#",
        )

    def test_error_keeps_kind(self) -> None:
        assert error_of(normalize_name, "BusyBox").kind is K.NAME_CONTAINS_UPPERCASE

    def test_too_long_once_qualified(self) -> None:
        """LN-2 step 3: ``localhost/`` can push a 250-character name over 255."""
        error = error_of(normalize_name, "a" * 250)
        assert (error.kind, error.failure.subject) == (K.NAME_TOO_LONG, "a" * 250)


class TestGoQuote:
    """Go's %q, used in the wrapped texts ("normalizing name %q")."""

    @pytest.mark.parametrize(
        ("text", "quoted"),
        [
            ("busybox", '"busybox"'),
            ('a"b\\c', '"a\\"b\\\\c"'),
            ("a\tb\nc\x1b\x7f", '"a\\tb\\nc\\x1b\\x7f"'),
            ("caf\u00e9", '"caf\u00e9"'),
            ("\u200b\U000e0001", '"\\u200b\\U000e0001"'),
            ("a\udcff", '"a\\xff"'),
            ("\ud800", '"\\ufffd"'),
        ],
        ids=["plain", "quote-backslash", "controls", "printable-unicode", "format-chars",
             "undecodable-byte", "lone-surrogate"],
    )  # fmt: skip
    def test_quote(self, text: str, quoted: str) -> None:
        assert go_quote(text) == quoted

    @pytest.mark.parametrize(
        ("text", "length"),
        [("abc", 3), ("\u00e9", 2), ("\u20ac", 3), ("\U0001d11e", 4), ("\udcff", 1), ("\ud800", 3)],
        ids=["ascii", "two-bytes", "three-bytes", "four-bytes", "undecodable-byte", "surrogate"],
    )
    def test_go_len_counts_utf8_bytes(self, text: str, length: int) -> None:
        """Go's len() of a string, used for REF-4's digest length and WithName's limit."""
        assert go_len(text) == length


class TestNameTagPairs:
    """LN-3: ToNameTagPairs."""

    def test_pairs(self) -> None:
        refs = [parse("quay.io/a/b:1"), parse(f"quay.io/a/c@{DIGEST}"), parse("d")]
        pairs = [(p.name, p.tag) for p in to_name_tag_pairs(refs)]
        assert pairs == [("quay.io/a/b", "1"), ("quay.io/a/c", "<none>"), ("d", "<none>")]

    def test_empty(self) -> None:
        assert [(p.name, p.tag) for p in to_name_tag_pairs([])] == [("<none>", "<none>")]


STORED = ["docker.io/library/busybox:latest", "quay.io/x/img:v1"]


class TestInRepoTags:
    """LN-4: the first stored name whose tag matches and whose name ends at a '/'."""

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("busybox:latest", "docker.io/library/busybox:latest"),
            ("library/busybox:latest", "docker.io/library/busybox:latest"),
            ("box:latest", None),
            ("img:v1", "quay.io/x/img:v1"),
            ("img:latest", None),
            ("x/img:v1", "quay.io/x/img:v1"),
        ],
        ids=["busybox", "library-busybox", "box", "img-v1", "img-latest", "x-img-v1"],
    )
    def test_examples(self, query: str, expected: str | None) -> None:
        for found in (
            in_repo_tags(STORED, parse(query)),
            find_in_repo_tags(STORED, parse(query)).match,
        ):
            assert (None if found is None else str(found)) == expected

    def test_stored_order_decides(self) -> None:
        stored = ["quay.io/a/img:v1", "docker.io/b/img:v1"]
        assert str(in_repo_tags(stored, parse("img:v1"))) == "quay.io/a/img:v1"

    def test_digested_stored_name_keeps_its_tag(self) -> None:
        """LN-3: a tagged-and-digested stored name pairs with its tag, and is returned whole."""
        stored = [f"quay.io/a/img:v1@{DIGEST}"]
        assert str(in_repo_tags(stored, parse("img:v1"))) == f"quay.io/a/img:v1@{DIGEST}"
        assert in_repo_tags([f"quay.io/a/img@{DIGEST}"], parse("img:latest")) is None

    def test_bad_stored_names_are_skipped(self) -> None:
        """Decision 18: a stored name that does not parse is skipped and reported."""
        stored = ["Quay.io/X/Img:v1", "quay.io/x/img:v1", "bad\u00a0name:v1"]
        found = find_in_repo_tags(stored, parse("img:v1"))
        assert str(found.match) == "quay.io/x/img:v1"
        assert list(found.skipped) == ["Quay.io/X/Img:v1", "bad\u00a0name:v1"]
        assert str(in_repo_tags(stored, parse("img:v1"))) == "quay.io/x/img:v1"

    def test_untagged_query_is_a_caller_bug(self) -> None:
        with pytest.raises(ValueError, match="tagged query"):
            in_repo_tags(STORED, parse("busybox"))


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


class TestParseCommand:
    """``libimage parse``: the parts of REF-3 / NORM-1 / NORM-3 / LN-2 as JSON."""

    @pytest.mark.parametrize(
        ("argv", "expected"),
        [
            (["busybox"], {"name": "busybox", "domain": "", "path": "busybox", "tag": "",
                           "digest": "", "string": "busybox", "familiar": "busybox"}),
            (["localhost:5000"], {"name": "localhost", "domain": "", "path": "localhost",
                                  "tag": "5000", "digest": "", "string": "localhost:5000",
                                  "familiar": "localhost:5000"}),
            (["--mode", "plain", "docker.io/library/busybox:1"],
             {"name": "docker.io/library/busybox", "domain": "docker.io",
              "path": "library/busybox", "tag": "1", "digest": "",
              "string": "docker.io/library/busybox:1", "familiar": "busybox:1"}),
            (["--mode", "normalized", "busybox:1.2"],
             {"name": "docker.io/library/busybox", "domain": "docker.io",
              "path": "library/busybox", "tag": "1.2", "digest": "",
              "string": "docker.io/library/busybox:1.2", "familiar": "busybox:1.2"}),
            (["--mode", "docker-ref", f"busybox:1@{DIGEST}"],
             {"name": "docker.io/library/busybox", "domain": "docker.io",
              "path": "library/busybox", "tag": "", "digest": DIGEST,
              "string": f"docker.io/library/busybox@{DIGEST}", "familiar": f"busybox@{DIGEST}"}),
            (["--mode", "libimage", "ns/busybox:latest"],
             {"name": "localhost/ns/busybox", "domain": "localhost", "path": "ns/busybox",
              "tag": "latest", "digest": "", "string": "localhost/ns/busybox:latest",
              "familiar": "localhost/ns/busybox:latest"}),
        ],
        ids=["plain-default", "plain-port-is-tag", "plain-familiar", "normalized",
             "docker-ref", "libimage"],
    )  # fmt: skip
    def test_success(self, argv: list[str], expected: dict[str, str]) -> None:
        code, out, err = run_cli("parse", *argv)
        assert (code, err) == (0, "")
        assert json.loads(out) == expected

    @pytest.mark.parametrize(
        ("argv", "kind", "message"),
        [
            (["a___b"], "ErrReferenceInvalidFormat", "invalid reference format"),
            (["Busybox"], "ErrNameContainsUppercase", "repository name must be lowercase"),
            ([""], "ErrNameEmpty", "repository name must have at least one component"),
            (["fedora@sha256:" + "a" * 32], "ErrDigestInvalidLength",
             "invalid checksum digest length"),
            (["fedora@md5:" + "a" * 32], "ErrDigestUnsupported", "unsupported digest algorithm"),
            (["fedora@sha256:" + "A" * 64], "ErrChecksumInvalidFormat",
             "invalid checksum digest format"),
            (["--mode", "normalized", HEX], "ErrNameIsHexID",
             f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
            (["--mode", "libimage", "#"], "ErrReferenceInvalidFormat",
             'error normalizing name "#": invalid reference format'),
            (["--mode", "plain", "--", "-foo"], "ErrReferenceInvalidFormat",
             "invalid reference format"),
        ],
        ids=["invalid", "uppercase", "empty", "digest-length", "digest-unsupported",
             "checksum-format", "hex-id", "libimage-seed-wording", "leading-dash"],
    )  # fmt: skip
    def test_error(self, argv: list[str], kind: str, message: str) -> None:
        code, out, err = run_cli("parse", *argv)
        assert code == 125
        assert json.loads(out) == {"error": kind, "message": message}
        assert err == f"Error: {message}\n"

    def test_libimage_mode_follows_the_profile(self) -> None:
        """LN-2 wording under ``--semantics podman-4.3`` (containers/common c71a7835)."""
        code, out, _ = run_cli("--semantics", "podman-4.3", "parse", "--mode", "libimage", "#")
        assert code == 125
        assert json.loads(out)["message"] == 'normalizing name "#": invalid reference format'

    def test_bad_mode_is_a_usage_error(self) -> None:
        code, out, err = run_cli("parse", "--mode", "fancy", "busybox")
        assert (code, out) == (125, "")
        assert err.startswith("Error: ")
        assert err.count("\n") == 1

    def test_console_script(self) -> None:
        """The installed ``libimage`` entry point, once, in a separate process."""
        script = Path(sys.executable).with_name("libimage")
        done = subprocess.run(
            [str(script), "parse", "--mode", "normalized", "index.docker.io/foo/bar"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["string"] == "docker.io/foo/bar"
