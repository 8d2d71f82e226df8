"""Short names, registries.conf values and local resolution (SN-1, SN-2, SN-4..SN-6).

Every table row is an example of behaviour-lookup.md section 5 (or a rule the
section states); the ids name the row.
"""

from __future__ import annotations

import pytest
from pyrsistent import pmap, pvector

from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.reference import is_short_name
from libimage.pure.registries import (
    RegistriesConfig,
    RegistriesFile,
    merge_registries,
    resolve_alias,
    resolve_locally,
    validate_alias,
    validate_aliases,
    validate_search_registry,
    validate_short_name_mode,
)

HEX = "aa9d5b9c6e0a4f2e8b7c1d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"
DIGEST = f"sha256:{HEX}"
assert len(HEX) == 64


def conf_error(call: object, *args: object) -> LibimageError:
    assert callable(call)
    with pytest.raises(LibimageError) as caught:
        call(*args)
    return caught.value


class TestIsShortName:
    """SN-1: short iff it parses and its plain domain is not a registry."""

    @pytest.mark.parametrize(
        "text",
        ["busybox", "busybox:1", "library/busybox", "foo/bar/baz", "ex_ample.com/foo"],
        ids=["busybox", "tagged", "library", "three-parts", "underscore-domain"],
    )
    def test_short(self, text: str) -> None:
        assert is_short_name(text)

    @pytest.mark.parametrize(
        "text",
        ["quay.io/x", "localhost/x", "localhost:5000/x", "docker.io/busybox", "Busybox", ""],
        ids=["quay", "localhost", "localhost-port", "docker.io", "parse-error", "empty"],
    )
    def test_not_short(self, text: str) -> None:
        assert not is_short_name(text)


SEARCH = RegistriesConfig(
    unqualified_search_registries=pvector(["quay.io", "docker.io"]),
    aliases=pmap({"myalias": "quay.io/someone/thing"}),
)


class TestResolveLocally:
    """SN-2: the candidates a local lookup tries, in this exact order."""

    @pytest.mark.parametrize(
        ("name", "candidates"),
        [
            ("busybox", ["localhost/busybox:latest", "quay.io/busybox:latest",
                         "docker.io/library/busybox:latest"]),
            ("library/busybox:1", ["localhost/library/busybox:1", "quay.io/library/busybox:1",
                                   "docker.io/library/busybox:1"]),
            (f"busybox@{DIGEST}", [f"localhost/busybox@{DIGEST}", f"quay.io/busybox@{DIGEST}",
                                   f"docker.io/library/busybox@{DIGEST}"]),
            ("myalias:2", ["quay.io/someone/thing:2", "localhost/myalias:2", "quay.io/myalias:2",
                           "docker.io/library/myalias:2"]),
            ("quay.io/a/b", ["quay.io/a/b:latest"]),
            ("docker.io/busybox", ["docker.io/library/busybox:latest"]),
        ],
        ids=["busybox", "library-busybox-1", "digested", "alias-with-tag", "not-short-quay",
             "not-short-docker.io"],
    )  # fmt: skip
    def test_table(self, name: str, candidates: list[str]) -> None:
        assert [str(c) for c in resolve_locally(SEARCH, name)] == candidates

    def test_localhost_always_tried(self) -> None:
        assert [str(c) for c in resolve_locally(RegistriesConfig(), "busybox")] == [
            "localhost/busybox:latest"
        ]

    def test_alias_key_is_name_without_tag_and_digest(self) -> None:
        """SN-2 step 2: ``foo/bar:1@sha256:…`` looks up ``foo/bar``; tag and digest added."""
        conf = RegistriesConfig(aliases=pmap({"foo/bar": "quay.io/x/y"}))
        candidates = [str(c) for c in resolve_locally(conf, f"foo/bar:1@{DIGEST}")]
        assert candidates[0] == f"quay.io/x/y:1@{DIGEST}"
        assert candidates[1] == f"localhost/foo/bar:1@{DIGEST}"

    def test_alias_not_deduplicated(self) -> None:
        conf = RegistriesConfig(aliases=pmap({"foo": "localhost/foo"}))
        assert [str(c) for c in resolve_locally(conf, "foo")] == [
            "localhost/foo:latest",
            "localhost/foo:latest",
        ]

    def test_alias_cache_wins_even_with_empty_value(self) -> None:
        """SN-5: a key present in the alias cache hides registries.conf's alias."""
        conf = RegistriesConfig(
            aliases=pmap({"foo": "quay.io/a/foo", "bar": "quay.io/a/bar"}),
            cached_aliases=pmap({"foo": "", "bar": "example.com/b/bar"}),
        )
        assert [str(c) for c in resolve_locally(conf, "foo")] == ["localhost/foo:latest"]
        assert str(resolve_locally(conf, "bar")[0]) == "example.com/b/bar:latest"
        assert resolve_alias(conf, "foo") is None

    def test_mode_plays_no_role(self) -> None:
        enforcing = RegistriesConfig(
            unqualified_search_registries=SEARCH.unqualified_search_registries,
            aliases=SEARCH.aliases,
            short_name_mode="enforcing",
        )
        assert resolve_locally(enforcing, "busybox") == resolve_locally(SEARCH, "busybox")

    @pytest.mark.parametrize(
        ("config", "name", "kind", "message"),
        [
            (SEARCH, "a___b", ErrorKind.REFERENCE_INVALID_FORMAT,
             'cannot parse input: "a___b": invalid reference format'),
            (SEARCH, "docker.io/" + "a" * 245, ErrorKind.NAME_TOO_LONG,
             f'cannot normalize input: "docker.io/{"a" * 245}": '
             "repository name must not be more than 255 characters"),
            (RegistriesConfig(unqualified_search_registries=pvector(["a" * 30 + ".io"])),
             "b" * 230, ErrorKind.NAME_TOO_LONG,
             f'creating reference with unqualified-search registry "{"a" * 30}.io": '
             "repository name must not be more than 255 characters"),
        ],
        ids=["parse-error", "normalize-error", "search-registry-error"],
    )  # fmt: skip
    def test_errors(
        self, config: RegistriesConfig, name: str, kind: ErrorKind, message: str
    ) -> None:
        """SN-2: parse errors, and ``creating reference with unqualified-search registry``."""
        error = conf_error(resolve_locally, config, name)
        assert (error.kind, error.failure.message, error.failure.subject) == (kind, message, name)


class TestSearchRegistries:
    """SN-4 step 4: trailing slashes removed, no URI scheme, a domain."""

    @pytest.mark.parametrize(
        ("entry", "cleaned"),
        [("quay.io/", "quay.io"), ("quay.io", "quay.io"), ("localhost:5000//", "localhost:5000")],
        ids=["trailing-slash", "plain", "port-slashes"],
    )
    def test_valid(self, entry: str, cleaned: str) -> None:
        assert validate_search_registry(entry) == cleaned

    @pytest.mark.parametrize(
        ("entry", "message"),
        [
            ("quay.io/ns", 'Invalid unqualified-search-registries entry "quay.io/ns"'),
            (
                "https://quay.io",
                "invalid location 'https://quay.io': URI schemes are not supported",
            ),
            (
                "http://quay.io/",
                "invalid location 'http://quay.io/': URI schemes are not supported",
            ),
            ("", 'Invalid unqualified-search-registries entry ""'),
            ("ex_ample.com", 'Invalid unqualified-search-registries entry "ex_ample.com"'),
        ],
        ids=["namespace", "https", "http-trailing-slash", "empty", "underscore"],
    )
    def test_invalid(self, entry: str, message: str) -> None:
        error = conf_error(validate_search_registry, entry)
        assert (error.kind, error.failure.message) == (ErrorKind.REGISTRIES_CONF, message)


class TestShortNameMode:
    """SN-4 step 5."""

    @pytest.mark.parametrize("mode", ["enforcing", "permissive", "disabled"])
    def test_valid(self, mode: str) -> None:
        assert validate_short_name_mode(mode) == mode

    @pytest.mark.parametrize("mode", ["Enforcing", "strict"], ids=["case", "unknown"])
    def test_invalid(self, mode: str) -> None:
        error = conf_error(validate_short_name_mode, mode)
        assert (error.kind, error.failure.message) == (
            ErrorKind.REGISTRIES_CONF,
            f'invalid short-name mode: "{mode}"',
        )


class TestAliases:
    """SN-5: alias keys are short names; values are registries' repositories."""

    @pytest.mark.parametrize(
        ("key", "value", "expected"),
        [
            ("fedora", "registry.fedoraproject.org/fedora", "registry.fedoraproject.org/fedora"),
            ("busybox", "docker.io/busybox", "docker.io/library/busybox"),
            ("foo/bar", "localhost/foo", "localhost/foo"),
            ("fedora", "", ""),
        ],
        ids=["fedora", "docker-normalised", "namespaced-key", "explicitly-none"],
    )
    def test_valid(self, key: str, value: str, expected: str) -> None:
        assert validate_alias(key, value) == (key, expected)

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("quay.io/x", "quay.io/x", 'invalid short name "quay.io/x": must not contain registry'),
            ("localhost/x", "quay.io/x",
             'invalid short name "localhost/x": must not contain registry'),
            ("x:1", "quay.io/x", 'invalid short name "x:1": must not contain tag'),
            (f"x@{DIGEST}", "quay.io/x",
             f'invalid short name "x@{DIGEST}": must not contain digest'),
            (f"x:1@{DIGEST}", "quay.io/x",
             f'invalid short name "x:1@{DIGEST}": must not contain digest'),
            ("X", "quay.io/x", 'cannot parse short name: "X": repository name must be lowercase'),
            ("x", f"quay.io/x@{DIGEST}",
             f'invalid alias "quay.io/x@{DIGEST}": must not contain digest'),
            ("x", "quay.io/x:1", 'invalid alias "quay.io/x:1": must not contain tag'),
            ("x", "busybox", 'invalid alias "busybox": must contain registry and repository'),
            ("x", "library/busybox",
             'invalid alias "library/busybox": must contain registry and repository'),
            ("x", "quay.io/X", 'parsing alias "quay.io/X": repository name must be lowercase'),
            ("x", "docker.io/" + "a" * 245,
             "repository name must not be more than 255 characters"),
        ],
        ids=["key-registry", "key-localhost", "key-tag", "key-digest", "key-digest-before-tag",
             "key-unparsable", "value-digest", "value-tag", "value-no-registry",
             "value-no-registry-two-parts", "value-unparsable", "value-too-long-once-normalised"],
    )  # fmt: skip
    def test_invalid(self, key: str, value: str, message: str) -> None:
        error = conf_error(validate_alias, key, value)
        assert (error.kind, error.failure.message) == (ErrorKind.REGISTRIES_CONF, message)

    def test_all_errors_joined(self) -> None:
        """SN-4 step 6: every bad entry is reported, latest first, joined by "\\n: "."""
        error = conf_error(validate_aliases, {"a:1": "quay.io/a", "b": "b", "c": "quay.io/c"})
        assert error.failure.message == (
            'invalid alias "b": must contain registry and repository\n'
            ': invalid short name "a:1": must not contain tag'
        )

    def test_table_normalised(self) -> None:
        assert dict(validate_aliases({"a": "docker.io/a", "b": ""})) == {
            "a": "docker.io/library/a",
            "b": "",
        }


class TestMerging:
    """SN-5 merging and SN-6: later files win only for the keys they set."""

    MAIN = RegistriesFile(
        "/etc/containers/registries.conf",
        unqualified_search_registries=pvector(["quay.io", "docker.io"]),
        short_name_mode="enforcing",
        aliases=pmap({"a": "quay.io/a", "b": "quay.io/b"}),
    )

    def test_unset_keys_keep_earlier_values(self) -> None:
        drop_in = RegistriesFile("/etc/containers/registries.conf.d/1.conf")
        merged = merge_registries([self.MAIN, drop_in], {})
        assert list(merged.unqualified_search_registries) == ["quay.io", "docker.io"]
        assert merged.short_name_mode == "enforcing"
        assert dict(merged.aliases) == {"a": "quay.io/a", "b": "quay.io/b"}

    def test_later_files_replace_and_mask(self) -> None:
        drop_in = RegistriesFile(
            "/etc/containers/registries.conf.d/1.conf",
            unqualified_search_registries=pvector([]),
            short_name_mode="disabled",
            aliases=pmap({"a": "", "c": "quay.io/c"}),
        )
        merged = merge_registries([self.MAIN, drop_in], {"z": "example.com/z"})
        assert list(merged.unqualified_search_registries) == []
        assert merged.short_name_mode == "disabled"
        assert dict(merged.aliases) == {"a": "", "b": "quay.io/b", "c": "quay.io/c"}
        assert dict(merged.cached_aliases) == {"z": "example.com/z"}

    def test_default_mode_is_permissive(self) -> None:
        files = [RegistriesFile("/a.conf", short_name_mode=None), RegistriesFile("/b", None, "")]
        assert merge_registries(files, {}).short_name_mode == "permissive"
        assert merge_registries([], {}) == RegistriesConfig()
