"""Reading registries.conf, drop-ins and the alias cache (SN-3, SN-4, SN-5, SN-6).

Files live under ``tmp_path``; the environment is a dict; ``root_prefix`` stands for
``RootForImplicitAbsolutePaths`` so that "system" files are temporary too. The
differential cases ask podman 4.3.1 (``podman info``) for the search registries it
merged from the same files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from pyrsistent import pmap, pvector

from libimage.adapters.registries_conf import (
    ROOT_ALIAS_CACHE,
    drop_in_files,
    load_alias_cache,
    load_registries_config,
    registries_conf_paths,
    short_name_alias_cache_path,
)
from libimage.pure.errors import ErrorKind, LibimageError
from libimage.pure.registries import RegistriesConfig


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Layout:
    """A home directory, a system prefix and an alias cache, all under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.prefix = tmp_path / "sys"
        self.cache = tmp_path / "cache" / "short-name-aliases.conf"
        self.home.mkdir()

    @property
    def system_file(self) -> Path:
        return self.prefix / "etc/containers/registries.conf"

    @property
    def system_dir(self) -> Path:
        return self.prefix / "etc/containers/registries.conf.d"

    @property
    def user_file(self) -> Path:
        return self.home / ".config/containers/registries.conf"

    @property
    def user_dir(self) -> Path:
        return self.home / ".config/containers/registries.conf.d"

    def load(
        self,
        explicit: str | None = None,
        environ: Mapping[str, str] | None = None,
        conf_dir: str | None = None,
    ) -> RegistriesConfig:
        return load_registries_config(
            explicit,
            environ or {},
            str(self.home),
            1000,
            conf_dir=conf_dir,
            root_prefix=str(self.prefix),
            alias_cache_path=str(self.cache),
        )


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def search(config: RegistriesConfig) -> list[str]:
    return list(config.unqualified_search_registries)


def usr(*registries: str) -> str:
    quoted = ", ".join(f'"{r}"' for r in registries)
    return f"unqualified-search-registries = [{quoted}]\n"


def load_error(layout: Layout, explicit: str | None = None) -> LibimageError:
    with pytest.raises(LibimageError) as caught:
        layout.load(explicit=explicit)
    assert caught.value.kind is ErrorKind.REGISTRIES_CONF
    return caught.value


class TestDiscovery:
    """SN-3: the main file, the drop-in directories, and the environment."""

    def test_nothing_anywhere_is_the_default(self, layout: Layout) -> None:
        assert layout.load() == RegistriesConfig()

    def test_system_file_then_system_and_user_drop_ins(self, layout: Layout) -> None:
        write(layout.system_file, usr("a.io") + 'short-name-mode = "enforcing"\n')
        write(layout.system_dir / "1.conf", usr("b.io"))
        write(layout.user_dir / "0.conf", usr("c.io"))
        config = layout.load()
        # The user directory comes after the system directory, whatever the names.
        assert search(config) == ["c.io"]
        assert config.short_name_mode == "enforcing"
        paths = registries_conf_paths(None, {}, str(layout.home), root_prefix=str(layout.prefix))
        assert paths.main == str(layout.system_file)
        assert paths.drop_in_dirs == (str(layout.system_dir), str(layout.user_dir))

    def test_user_file_replaces_system_file_and_system_drop_ins(self, layout: Layout) -> None:
        write(layout.system_file, usr("system.io"))
        write(layout.system_dir / "1.conf", 'short-name-mode = "disabled"\n')
        write(layout.user_file, usr("user.io"))
        config = layout.load()
        assert (search(config), config.short_name_mode) == (["user.io"], "permissive")

    def test_user_file_with_explicit_dir(self, layout: Layout) -> None:
        write(layout.user_file, usr("user.io"))
        write(layout.user_dir / "1.conf", usr("userdir.io"))
        write(layout.tmp / "d/1.conf", usr("dir.io"))
        assert search(layout.load(conf_dir=str(layout.tmp / "d"))) == ["dir.io"]

    def test_explicit_file_keeps_drop_ins(self, layout: Layout) -> None:
        main = write(layout.tmp / "main.conf", usr("main.io"))
        write(layout.system_file, usr("system.io"))
        write(layout.user_file, usr("user.io"))
        write(layout.system_dir / "1.conf", 'short-name-mode = "disabled"\n')
        config = layout.load(explicit=str(main))
        assert (search(config), config.short_name_mode) == (["main.io"], "disabled")

    def test_explicit_dir_alone(self, layout: Layout) -> None:
        write(layout.system_file, usr("system.io"))
        write(layout.system_dir / "1.conf", usr("sysdir.io"))
        write(layout.user_dir / "1.conf", usr("userdir.io"))
        (layout.tmp / "empty").mkdir()
        assert search(layout.load(conf_dir=str(layout.tmp / "empty"))) == ["system.io"]

    def test_missing_explicit_file_is_an_error(self, layout: Layout) -> None:
        missing = str(layout.tmp / "nope.conf")
        error = load_error(layout, explicit=missing)
        assert str(error).startswith(f'loading registries configuration "{missing}": ')

    @pytest.mark.parametrize(
        ("environ_keys", "expected"),
        [
            ({"CONTAINERS_REGISTRIES_CONF": "env1"}, ["env1.io"]),
            ({"REGISTRIES_CONFIG_PATH": "env2"}, ["env2.io"]),
            ({"CONTAINERS_REGISTRIES_CONF": "env1", "REGISTRIES_CONFIG_PATH": "env2"}, ["env1.io"]),
            # Exists but empty: the path stays unset and the second variable is not read.
            ({"CONTAINERS_REGISTRIES_CONF": "", "REGISTRIES_CONFIG_PATH": "env2"}, ["system.io"]),
        ],
        ids=["containers-var", "legacy-var", "containers-var-first", "empty-stops-search"],
    )
    def test_environment(
        self, layout: Layout, environ_keys: dict[str, str], expected: list[str]
    ) -> None:
        write(layout.system_file, usr("system.io"))
        for name in ("env1", "env2"):
            write(layout.tmp / f"{name}.conf", usr(f"{name}.io"))
        environ = {k: str(layout.tmp / f"{v}.conf") if v else "" for k, v in environ_keys.items()}
        assert search(layout.load(environ=environ)) == expected

    def test_explicit_path_beats_environment(self, layout: Layout) -> None:
        main = write(layout.tmp / "main.conf", usr("main.io"))
        env = write(layout.tmp / "env.conf", usr("env.io"))
        environ = {"CONTAINERS_REGISTRIES_CONF": str(env)}
        assert search(layout.load(explicit=str(main), environ=environ)) == ["main.io"]


class TestDropInFiles:
    """SN-3: ``.conf`` entries directly inside, byte order, no recursion, missing is fine."""

    def test_filter_and_order(self, tmp_path: Path) -> None:
        d = tmp_path / "d"
        for name in ["b.conf", "a.conf", "10.conf", "9.conf", "Z.conf", "x.txt", "conf", ".conf"]:
            write(d / name, "")
        write(d / "sub.conf" / "inner.conf", "")
        write(d / "sub" / "deep.conf", "")
        (d / "link.conf").symlink_to(d / "a.conf")
        names = [Path(p).name for p in drop_in_files((str(d),))]
        assert names == [".conf", "10.conf", "9.conf", "Z.conf", "a.conf", "b.conf", "link.conf"]

    def test_directories_in_order_and_missing_ones(self, tmp_path: Path) -> None:
        write(tmp_path / "one/z.conf", "")
        write(tmp_path / "two/a.conf", "")
        dirs = (str(tmp_path / "one"), str(tmp_path / "absent"), str(tmp_path / "two"))
        assert drop_in_files(dirs) == (str(tmp_path / "one/z.conf"), str(tmp_path / "two/a.conf"))

    def test_a_file_given_as_directory(self, tmp_path: Path) -> None:
        """Go's WalkDir visits a non-directory root as one entry."""
        single = write(tmp_path / "single.conf", "")
        other = write(tmp_path / "single.txt", "")
        assert drop_in_files((str(single), str(other))) == (str(single),)

    def test_unreadable_directory_path(self, tmp_path: Path) -> None:
        blocker = write(tmp_path / "file", "")
        with pytest.raises(LibimageError, match=r"^reading registries\.conf\.d: "):
            drop_in_files((str(blocker / "sub"),))


class TestMerging:
    """SN-5, SN-6 through real files: later files win; only keys that are set replace."""

    def test_search_list_replaced_only_when_set(self, layout: Layout) -> None:
        write(layout.system_file, usr("a.io", "b.io"))
        write(layout.system_dir / "1.conf", 'short-name-mode = "disabled"\n')
        assert search(layout.load()) == ["a.io", "b.io"]
        write(layout.system_dir / "2.conf", "unqualified-search-registries = []\n")
        assert search(layout.load()) == []

    def test_aliases_later_wins_and_empty_masks(self, layout: Layout) -> None:
        write(layout.system_file, '[aliases]\n"a" = "quay.io/a"\n"b" = "docker.io/b"\n')
        write(layout.system_dir / "1.conf", '[aliases]\n"a" = ""\n"c" = "quay.io/c"\n')
        config = layout.load()
        assert config.aliases == pmap({"a": "", "b": "docker.io/library/b", "c": "quay.io/c"})

    def test_search_registry_entries_are_cleaned(self, layout: Layout) -> None:
        write(layout.system_file, usr("quay.io/", "localhost:5000"))
        assert search(layout.load()) == ["quay.io", "localhost:5000"]

    def test_unknown_keys_ignored_and_field_names_any_case(self, layout: Layout) -> None:
        text = (
            'Unqualified-Search-Registries = ["x.io"]\ncolour = "blue"\n[Aliases]\n"a" = "q.io/a"\n'
        )
        write(layout.system_file, text)
        config = layout.load()
        assert (search(config), dict(config.aliases)) == (["x.io"], {"a": "q.io/a"})


class TestV1Format:
    """SN-4 step 2: v1 tables are converted in the main file, refused elsewhere or mixed."""

    def test_main_file_v1_is_converted(self, layout: Layout) -> None:
        write(
            layout.system_file,
            '[registries.search]\nregistries = ["a.io", "b.io/"]\n'
            '[registries.insecure]\nregistries = ["c.io"]\n',
        )
        assert search(layout.load()) == ["a.io", "b.io"]

    def test_empty_v1_lists_do_not_count(self, layout: Layout) -> None:
        write(layout.system_file, usr("x.io") + "[registries.search]\nregistries = []\n")
        assert search(layout.load()) == ["x.io"]

    def test_v1_in_drop_in(self, layout: Layout) -> None:
        drop_in = write(layout.system_dir / "1.conf", '[registries.block]\nregistries = ["x"]\n')
        error = load_error(layout)
        assert str(error) == (
            f'loading drop-in registries configuration "{drop_in}": '
            "registry must be in v2 format but is in v1"
        )

    def test_mixing(self, layout: Layout) -> None:
        write(layout.system_file, usr("b.io") + '[registries.search]\nregistries = ["a.io"]\n')
        error = load_error(layout)
        assert str(error).endswith(": mixing sysregistry v1/v2 is not supported")

    def test_v1_location_with_scheme(self, layout: Layout) -> None:
        write(layout.system_file, '[registries.insecure]\nregistries = ["http://a.io"]\n')
        error = load_error(layout)
        assert str(error).endswith(
            ": invalid location 'http://a.io': URI schemes are not supported"
        )


REGISTRY_ERRORS: list[tuple[str, str, str]] = [
    ("both-unset", "[[registry]]\ninsecure = true\n", "both location and prefix are unset"),
    (
        "prefix-without-location",
        '[[registry]]\nprefix = "a.io/x"\n',
        "location is unset and prefix is not in the format: *.example.com",
    ),
    (
        "scheme",
        '[[registry]]\nlocation = "https://a.io"\n',
        "invalid location 'https://a.io': URI schemes are not supported",
    ),
    (
        "conflicting-insecure",
        '[[registry]]\nlocation = "a.io"\nprefix = "a.io/x"\ninsecure = true\n'
        '[[registry]]\nlocation = "a.io"\nprefix = "a.io/y"\n',
        "registry 'a.io' is defined multiple times with conflicting 'insecure' setting",
    ),
    (
        "conflicting-blocked",
        '[[registry]]\nlocation = "a.io"\nprefix = "a.io/x"\n'
        '[[registry]]\nlocation = "a.io"\nprefix = "a.io/y"\nblocked = true\n',
        "registry 'a.io' is defined multiple times with conflicting 'blocked' setting",
    ),
    (
        "wildcard-with-port",
        '[[registry]]\nprefix = "*.a.io:5000"\n',
        'Current prefix "*.a.io:5000" is incorrectly formatted',
    ),
    (
        "mirror-without-location",
        '[[registry]]\nlocation = "a.io"\n[[registry.mirror]]\ninsecure = true\n',
        "invalid condition: mirror location is unset",
    ),
    (
        "pull-from-mirror-on-primary",
        '[[registry]]\nlocation = "a.io"\npull-from-mirror = "all"\n',
        'pull-from-mirror must not be set for a non-mirror registry "a.io"',
    ),
    (
        "bad-pull-from-mirror",
        '[[registry]]\nlocation = "a.io"\n[[registry.mirror]]\nlocation = "m.io"\n'
        'pull-from-mirror = "sometimes"\n',
        'unsupported pull-from-mirror value "sometimes" for mirror "m.io"',
    ),
    (
        "search-entry-with-namespace",
        usr("quay.io/ns"),
        'Invalid unqualified-search-registries entry "quay.io/ns"',
    ),
    ("search-entry-scheme", usr("https://quay.io"), "URI schemes are not supported"),
    ("mode", 'short-name-mode = "strict"\n', 'invalid short-name mode: "strict"'),
    (
        "alias-with-tag",
        '[aliases]\n"a" = "quay.io/a:1"\n',
        'validating short-name aliases: invalid alias "quay.io/a:1": must not contain tag',
    ),
    (
        "alias-key-with-registry",
        '[aliases]\n"quay.io/a" = "quay.io/a"\n',
        'validating short-name aliases: invalid short name "quay.io/a": must not contain registry',
    ),
    (
        "type-search-string",
        'unqualified-search-registries = "quay.io"\n',
        'toml: (last key "unqualified-search-registries"): incompatible types: '
        "TOML value has type string; destination has type slice",
    ),
    (
        "type-insecure-string",
        '[[registry]]\nlocation = "a.io"\ninsecure = "yes"\n',
        '(last key "registry.insecure"): incompatible types',
    ),
    ("type-alias-value", '[aliases]\n"a" = 1\n', '(last key "aliases.a")'),
]


class TestValidation:
    """SN-4 steps 3-6 and their texts, prefixed with the file that holds the problem."""

    @pytest.mark.parametrize(
        ("text", "message"), [c[1:] for c in REGISTRY_ERRORS], ids=[c[0] for c in REGISTRY_ERRORS]
    )
    def test_error(self, layout: Layout, text: str, message: str) -> None:
        write(layout.system_file, text)
        error = load_error(layout)
        assert str(error).startswith(f'loading registries configuration "{layout.system_file}": ')
        assert message in str(error)
        assert error.failure.subject == str(layout.system_file)

    def test_valid_registry_tables(self, layout: Layout) -> None:
        write(
            layout.system_file,
            usr("a.io")
            + '[[registry]]\nlocation = "a.io/"\n[[registry.mirror]]\nlocation = "m.io"\n'
            + 'pull-from-mirror = "digest-only"\n'
            + '[[registry]]\nprefix = "*.b.io"\nblocked = true\n',
        )
        assert search(layout.load()) == ["a.io"]

    def test_syntax_error_names_file_and_line(self, layout: Layout) -> None:
        write(layout.system_dir / "5.conf", usr("a.io") + "short-name-mode = \n")
        error = load_error(layout)
        text = str(error)
        assert text.startswith(
            f'loading drop-in registries configuration "{layout.system_dir / "5.conf"}": toml: '
        )
        assert "line 2" in text

    def test_first_bad_file_is_named(self, layout: Layout) -> None:
        write(layout.system_dir / "1.conf", usr("fine.io"))
        write(layout.system_dir / "2.conf", 'short-name-mode = "nope"\n')
        write(layout.system_dir / "3.conf", "unqualified-search-registries = 1\n")
        assert '2.conf": invalid short-name mode' in str(load_error(layout))


class TestAliasCache:
    """SN-5: the user's short-name alias cache; read only, never created."""

    @pytest.mark.parametrize(
        ("environ", "uid", "expected"),
        [
            ({}, 0, ROOT_ALIAS_CACHE),
            ({"XDG_CACHE_HOME": "/xdg"}, 0, ROOT_ALIAS_CACHE),
            ({"XDG_CACHE_HOME": "/xdg"}, 1000, "/xdg/containers/short-name-aliases.conf"),
            ({}, 1000, "/home/u/.cache/containers/short-name-aliases.conf"),
            (
                {"_CONTAINERS_ROOTLESS_UID": "1000"},
                0,
                "/home/u/.cache/containers/short-name-aliases.conf",
            ),
            ({"_CONTAINERS_ROOTLESS_UID": "0"}, 1000, ROOT_ALIAS_CACHE),
            ({"_CONTAINERS_ROOTLESS_UID": "junk"}, 1000, ROOT_ALIAS_CACHE),
        ],
        ids=["root", "root-ignores-xdg", "xdg", "home", "env-rootless", "env-root", "env-junk"],
    )
    def test_path(self, environ: dict[str, str], uid: int, expected: str) -> None:
        assert short_name_alias_cache_path(environ, "/home/u", uid) == expected

    def test_cache_is_kept_apart_and_wins(self, layout: Layout) -> None:
        write(layout.system_file, '[aliases]\n"a" = "quay.io/a"\n"b" = "quay.io/b"\n')
        write(layout.cache, '[aliases]\n"a" = ""\n"c" = "docker.io/c"\n[other]\nx = 1\n')
        config = layout.load()
        assert config.aliases == pmap({"a": "quay.io/a", "b": "quay.io/b"})
        assert config.cached_aliases == pmap({"a": "", "c": "docker.io/library/c"})

    def test_missing_cache_is_empty_and_nothing_is_created(self, layout: Layout) -> None:
        assert layout.load().cached_aliases == pmap()
        assert not layout.cache.parent.exists()
        assert not Path(f"{layout.cache}.lock").exists()

    def test_reading_creates_no_lock(self, tmp_path: Path) -> None:
        cache = write(tmp_path / "c/short-name-aliases.conf", '[aliases]\n"a" = "q.io/a"\n')
        assert load_alias_cache(str(cache)) == pmap({"a": "q.io/a"})
        assert sorted(p.name for p in cache.parent.iterdir()) == ["short-name-aliases.conf"]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('[aliases]\n"a" = "a"\n', 'invalid alias "a": must contain registry and repository'),
            ("[aliases\n", "line 1"),
            ("aliases = 3\n", '(last key "aliases")'),
        ],
        ids=["bad-alias", "syntax", "type"],
    )
    def test_bad_cache(self, layout: Layout, text: str, message: str) -> None:
        write(layout.cache, text)
        error = load_error(layout)
        assert str(error).startswith(f'loading short-name aliases config file "{layout.cache}": ')
        assert message in str(error)


class TestSystemShortnames:
    """The distribution's own drop-in (if this machine has one) loads cleanly (SN-5)."""

    def test_real_drop_in(self, tmp_path: Path) -> None:
        shipped = Path("/etc/containers/registries.conf.d/shortnames.conf")
        if not shipped.exists():
            pytest.skip("no shortnames.conf on this machine")
        config = load_registries_config(
            str(write(tmp_path / "main.conf", "")),
            {},
            str(tmp_path),
            0,
            conf_dir=str(shipped.parent),
            alias_cache_path=str(tmp_path / "cache.conf"),
        )
        assert config.aliases  # the file is nothing but aliases
        assert all(value.count("/") >= 1 for value in config.aliases.values())


# --- podman 4.3.1 reads the same files -------------------------------------------------

PODMAN = shutil.which("podman")


def podman_registries(store: Path, environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``podman info`` on a throw-away store (``store`` is short: podman limits --runroot)."""
    command = [
        PODMAN or "podman",
        "--root",
        str(store / "g"),
        "--runroot",
        str(store / "r"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
        "info",
        "--format",
        "json",
    ]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **environ}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.mark.differential
class TestAgainstPodman:
    """SN-3, SN-6: podman 4.3.1 merges the same search registries; bad files fail both."""

    @pytest.fixture(autouse=True)
    def _need_podman(self) -> None:
        if PODMAN is None:
            pytest.skip("podman is not installed")

    @pytest.fixture
    def store(self) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(prefix="li-", dir="/tmp"))
        yield path
        shutil.rmtree(path, ignore_errors=True)

    def both(self, store: Path, environ: dict[str, str]) -> tuple[list[str], list[str]]:
        result = podman_registries(store, environ)
        assert result.returncode == 0, result.stderr
        theirs = json.loads(result.stdout)["registries"].get("search", [])
        ours = load_registries_config(
            None, environ, environ["HOME"], 0, alias_cache_path=str(store / "cache.conf")
        )
        return search(ours), theirs

    @pytest.mark.parametrize(
        ("main", "drop_ins", "expected"),
        [
            (usr("quay.io", "docker.io"), {}, ["quay.io", "docker.io"]),
            (usr("quay.io"), {"50-a.conf": usr("a.io"), "60-b.conf": "x = 1\n"}, ["a.io"]),
            (usr("quay.io"), {"50-a.conf": usr("a.io"), "70-c.conf": usr()}, []),
            ('[registries.search]\nregistries = ["v1.io/"]\n', {}, ["v1.io"]),
            (usr("quay.io"), {"sub.conf/1.conf": usr("no.io"), "b.txt": usr("no.io")}, ["quay.io"]),
        ],
        ids=["main-only", "drop-in-wins", "empty-list-clears", "v1", "filter"],
    )
    def test_search_registries(
        self, tmp_path: Path, store: Path, main: str, drop_ins: dict[str, str], expected: list[str]
    ) -> None:
        home = tmp_path / "home"
        conf = write(tmp_path / "main.conf", main)
        for name, text in drop_ins.items():
            write(home / ".config/containers/registries.conf.d" / name, text)
        environ = {"HOME": str(home), "CONTAINERS_REGISTRIES_CONF": str(conf)}
        ours, theirs = self.both(store, environ)
        assert ours == theirs == expected

    @pytest.mark.parametrize(
        "main",
        [
            'unqualified-search-registries = "quay.io"\n',
            usr("quay.io/ns"),
            usr("b.io") + '[registries.search]\nregistries = ["a.io"]\n',
            'short-name-mode = "strict"\n',
            "[[registry]]\ninsecure = true\n",
        ],
        ids=["type", "namespace", "mixing", "mode", "registry-table"],
    )
    def test_bad_file_fails_in_both(self, tmp_path: Path, store: Path, main: str) -> None:
        conf = write(tmp_path / "main.conf", main)
        environ = {"HOME": str(tmp_path), "CONTAINERS_REGISTRIES_CONF": str(conf)}
        result = podman_registries(store, environ)
        assert result.returncode != 0
        with pytest.raises(LibimageError) as caught:
            load_registries_config(
                None, environ, str(tmp_path), 0, alias_cache_path=str(tmp_path / "c.conf")
            )
        # podman prints "Error: getting registries: <the same text>".
        assert str(caught.value).split(": toml: ")[0] in result.stderr


def test_registries_file_records_are_pyrsistent(layout: Layout) -> None:
    """The merged value is built from persistent collections (style.md section 2)."""
    write(layout.system_file, usr("a.io"))
    config = layout.load()
    assert config.unqualified_search_registries == pvector(["a.io"])
