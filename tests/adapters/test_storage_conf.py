"""Finding the store: storage.conf, environment, command line (SF-CF-1..6, SF-L-4, SF-RO-1).

Every case builds its files under ``tmp_path`` and passes the environment as a dict;
``root_prefix`` redirects ``/etc`` and ``/usr/share``. The differential cases run
``podman info`` (4.3.1) on the same files and compare what it reports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from libimage.adapters.storage_conf import (
    StoreOptions,
    detect_driver,
    discover_store_options,
    expand_env_path,
    image_stores_for,
)
from libimage.pure.errors import ErrorKind, LibimageError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def discover(
    environ: Mapping[str, str],
    *,
    root: str | None = None,
    runroot: str | None = None,
    driver: str | None = None,
    storage_opts: Sequence[str] = (),
    storage_conf: str | None = None,
    uid: int = 0,
    home: str = "/nonexistent-home",
    root_prefix: str = "/nonexistent-prefix",
) -> StoreOptions:
    return discover_store_options(
        root=root,
        runroot=runroot,
        driver=driver,
        storage_opts=storage_opts,
        storage_conf=storage_conf,
        environ=environ,
        uid=uid,
        home=home,
        root_prefix=root_prefix,
    )


BASIC = """
[storage]
driver = "vfs"
graphroot = "/g"
runroot = "/r"
[storage.options]
additionalimagestores = ["/ro1", "/ro2"]
"""


class TestConfigurationFile:
    """SF-CF-1, SF-CF-2 (storage 1.43), SF-CF-3, SF-CF-4."""

    def test_environment_selects_the_file(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", BASIC)
        options = discover({"CONTAINERS_STORAGE_CONF": str(conf)})
        assert options == StoreOptions(
            graph_root="/g",
            run_root="/r",
            driver="vfs",
            image_stores=("/ro1", "/ro2"),
            driver_options=("vfs.imagestore=/ro1", "vfs.imagestore=/ro2"),
        )

    def test_explicit_option_beats_environment(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", BASIC)
        other = write(tmp_path / "other.conf", '[storage]\ngraphroot = "/other"\n')
        options = discover({"CONTAINERS_STORAGE_CONF": str(conf)}, storage_conf=str(other))
        assert options.graph_root == "/other"

    @pytest.mark.parametrize("value", ["", "missing.conf"], ids=["empty", "missing"])
    def test_explicit_file_must_exist(self, tmp_path: Path, value: str) -> None:
        path = str(tmp_path / value) if value else ""
        with pytest.raises(LibimageError) as caught:
            discover({"CONTAINERS_STORAGE_CONF": path})
        assert caught.value.kind is ErrorKind.STORE_CONFIG
        assert f'"{path}"' in str(caught.value)

    def test_rootful_defaults_without_any_file(self, tmp_path: Path) -> None:
        """SF-CF-4: root defaults; no driver configured means detect (SF-L-4)."""
        options = discover({}, root_prefix=str(tmp_path))
        assert (options.graph_root, options.run_root) == (
            "/var/lib/containers/storage",
            "/run/containers/storage",
        )
        assert options.driver_options == ()

    def test_etc_beats_usr_share(self, tmp_path: Path) -> None:
        write(tmp_path / "etc/containers/storage.conf", '[storage]\ngraphroot = "/etc-root"\n')
        write(tmp_path / "usr/share/containers/storage.conf", '[storage]\ngraphroot = "/usr"\n')
        assert discover({}, root_prefix=str(tmp_path)).graph_root == "/etc-root"

    def test_usr_share_when_etc_is_missing(self, tmp_path: Path) -> None:
        write(tmp_path / "usr/share/containers/storage.conf", '[storage]\nrunroot = "/usr-run"\n')
        options = discover({}, root_prefix=str(tmp_path))
        assert (options.graph_root, options.run_root) == ("/var/lib/containers/storage", "/usr-run")

    def test_xdg_config_home_applies_to_root_too(self, tmp_path: Path) -> None:
        write(tmp_path / "etc/containers/storage.conf", '[storage]\ngraphroot = "/etc-root"\n')
        write(tmp_path / "xdg/containers/storage.conf", '[storage]\ngraphroot = "/xdg-root"\n')
        environ = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        assert discover(environ, root_prefix=str(tmp_path)).graph_root == "/xdg-root"

    def test_xdg_config_home_without_file_falls_back(self, tmp_path: Path) -> None:
        write(tmp_path / "etc/containers/storage.conf", '[storage]\ngraphroot = "/etc-root"\n')
        environ = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        assert discover(environ, root_prefix=str(tmp_path)).graph_root == "/etc-root"

    def test_unknown_keys_are_ignored_and_keys_match_any_case(self, tmp_path: Path) -> None:
        """SF-CF-3: unknown keys only warn upstream; the Go decoder folds key case."""
        conf = write(
            tmp_path / "s.conf",
            '[Storage]\nDriver = "vfs"\nGraphRoot = "/g"\nfrobnicate = 3\n[other]\nx = 1\n',
        )
        options = discover({"CONTAINERS_STORAGE_CONF": str(conf)})
        assert (options.graph_root, options.driver) == ("/g", "vfs")

    def test_overlay2_is_overlay(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", '[storage]\ndriver = "overlay2"\n')
        assert discover({"CONTAINERS_STORAGE_CONF": str(conf)}).driver == "overlay"

    def test_driver_options_from_file(self, tmp_path: Path) -> None:
        """containers-storage 1.43: the generic options first, then the driver's, repeats kept."""
        conf = write(
            tmp_path / "s.conf",
            '[storage]\ndriver = "overlay"\n[storage.options]\nmount_program = "/bin/fuse"\n'
            '[storage.options.overlay]\nmountopt = "nodev"\n',
        )
        options = discover({"CONTAINERS_STORAGE_CONF": str(conf)})
        assert options.driver_options == (
            "overlay.mount_program=/bin/fuse",
            "overlay.mount_program=/bin/fuse",
            "overlay.mountopt=nodev",
        )


class TestMalformedFile:
    """A malformed storage.conf is an error naming the file (and the line for syntax)."""

    def test_syntax_error_names_file_and_line(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", '[storage]\ndriver = "vfs"\ngraphroot = \n')
        with pytest.raises(LibimageError) as caught:
            discover({"CONTAINERS_STORAGE_CONF": str(conf)})
        assert caught.value.kind is ErrorKind.STORE_CONFIG
        assert f'"{conf}"' in str(caught.value)
        assert "line 3" in str(caught.value)

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("[storage]\ndriver = 1\n", "storage.driver"),
            ("storage = 3\n", "storage"),
            (
                "[storage.options]\nadditionalimagestores = '/x'\n",
                "storage.options.additionalimagestores",
            ),
            ("[storage.options]\nforce_mask = -1\n", "storage.options.force_mask"),
            ("[storage.options.overlay]\nsize = 5\n", "storage.options.overlay.size"),
        ],
        ids=["driver-int", "storage-not-table", "stores-not-array", "mask-negative", "nested"],
    )
    def test_type_error_names_file_and_key(self, tmp_path: Path, text: str, key: str) -> None:
        conf = write(tmp_path / "s.conf", text)
        with pytest.raises(LibimageError) as caught:
            discover({"CONTAINERS_STORAGE_CONF": str(conf)})
        assert caught.value.kind is ErrorKind.STORE_CONFIG
        assert str(conf) in str(caught.value)
        assert f'"{key}"' in str(caught.value)

    def test_invalid_utf8(self, tmp_path: Path) -> None:
        conf = tmp_path / "s.conf"
        conf.write_bytes(b'[storage]\ndriver = "\xff"\n')
        with pytest.raises(LibimageError, match=r"s\.conf"):
            discover({"CONTAINERS_STORAGE_CONF": str(conf)})


class TestEnvironment:
    """SF-CF-5: STORAGE_DRIVER, STORAGE_OPTS, $HOME and $UID expansion."""

    def test_storage_driver_replaces_driver_and_option_prefix(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", BASIC.replace('"vfs"', '"overlay"'))
        options = discover({"CONTAINERS_STORAGE_CONF": str(conf), "STORAGE_DRIVER": "vfs"})
        assert options.driver == "vfs"
        assert options.image_stores == ("/ro1", "/ro2")

    def test_storage_opts_replace_options(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", BASIC)
        environ = {"CONTAINERS_STORAGE_CONF": str(conf), "STORAGE_OPTS": "vfs.imagestore=/a,/b"}
        with pytest.raises(LibimageError, match="unable to parse key/value option: /b"):
            discover(environ)
        environ["STORAGE_OPTS"] = "vfs.imagestore=/a,.imagestore=/b"
        assert discover(environ).image_stores == ("/a", "/b")

    def test_empty_storage_opts_clear_options(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", BASIC)
        options = discover({"CONTAINERS_STORAGE_CONF": str(conf), "STORAGE_OPTS": ""})
        assert (options.driver_options, options.image_stores) == ((), ())

    def test_home_and_uid_expansion(self, tmp_path: Path) -> None:
        conf = write(
            tmp_path / "s.conf",
            '[storage]\ngraphroot = "$HOME/g-$UID"\nrunroot = "${RUN}/x/../r"\n',
        )
        environ = {"CONTAINERS_STORAGE_CONF": str(conf), "HOME": "/h", "RUN": "/run2"}
        options = discover(environ)
        assert (options.graph_root, options.run_root) == ("/h/g-0", "/run2/r")

    def test_rootless_uid_override_is_used_for_uid(self, tmp_path: Path) -> None:
        conf = write(tmp_path / "s.conf", '[storage]\ngraphroot = "/g-$UID"\n')
        environ = {"CONTAINERS_STORAGE_CONF": str(conf), "_CONTAINERS_ROOTLESS_UID": "0"}
        assert discover(environ, uid=1000).graph_root == "/g-0"

    def test_symlinked_root_is_resolved(self, tmp_path: Path) -> None:
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real")
        assert expand_env_path(str(tmp_path / "link"), 0, {}) == str(tmp_path / "real")
        assert expand_env_path("rel//x/", 0, {}) == "rel/x"


class TestRootless:
    """SF-CF-2 and SF-CF-4 for a non-root caller."""

    def environ(self, tmp_path: Path) -> dict[str, str]:
        (tmp_path / "runtime").mkdir(exist_ok=True)
        return {
            "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }

    def test_defaults(self, tmp_path: Path) -> None:
        options = discover(self.environ(tmp_path), uid=1000, root_prefix=str(tmp_path))
        assert options.graph_root == str(tmp_path / "data/containers/storage")
        assert options.run_root == str(tmp_path / "runtime/containers")
        assert options.driver == "vfs"  # no rootless-capable driver configured

    def test_home_data_dir_without_xdg(self, tmp_path: Path) -> None:
        environ = self.environ(tmp_path)
        del environ["XDG_DATA_HOME"]
        options = discover(environ, uid=1000, home="/home/u", root_prefix=str(tmp_path))
        assert options.graph_root == "/home/u/.local/share/containers/storage"

    def test_system_file_driver_and_rootless_storage_path(self, tmp_path: Path) -> None:
        write(
            tmp_path / "etc/containers/storage.conf",
            '[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/x"\n'
            'rootless_storage_path = "/srv/$UID/storage"\n'
            '[storage.options]\nmount_program = "/bin/fuse"\nignore_chown_errors = "true"\n',
        )
        options = discover(self.environ(tmp_path), uid=1000, root_prefix=str(tmp_path))
        assert options.graph_root == "/srv/1000/storage"
        assert options.driver == "overlay"
        # Only ignore_chown_errors survives from the system file for overlay.
        assert options.driver_options == ("overlay.ignore_chown_errors=true",)

    def test_system_driver_not_rootless_capable(self, tmp_path: Path) -> None:
        write(tmp_path / "etc/containers/storage.conf", '[storage]\ndriver = "zfs"\n')
        options = discover(self.environ(tmp_path), uid=1000, root_prefix=str(tmp_path))
        assert options.driver == "vfs"

    def test_user_file_replaces_defaults_and_fills_roots(self, tmp_path: Path) -> None:
        environ = self.environ(tmp_path)
        write(tmp_path / "etc/containers/storage.conf", '[storage]\ndriver = "overlay"\n')
        user = '[storage]\ndriver = "vfs"\nrootless_storage_path = "/mine"\n'
        write(tmp_path / "config/containers/storage.conf", user)
        options = discover(environ, uid=1000, root_prefix=str(tmp_path))
        assert (options.graph_root, options.run_root, options.driver) == (
            "/mine",
            str(tmp_path / "runtime/containers"),
            "vfs",
        )

    def test_storage_driver_and_opts(self, tmp_path: Path) -> None:
        environ = self.environ(tmp_path) | {
            "STORAGE_DRIVER": "vfs",
            "STORAGE_OPTS": ".imagestore=/ro",
        }
        options = discover(environ, uid=1000, root_prefix=str(tmp_path))
        assert (options.driver, options.image_stores) == ("vfs", ("/ro",))


class TestCommandLine:
    """SF-CF-6, as podman 4.3.1: --root and --storage-driver drop the file's options."""

    @pytest.fixture
    def conf(self, tmp_path: Path) -> dict[str, str]:
        return {"CONTAINERS_STORAGE_CONF": str(write(tmp_path / "s.conf", BASIC))}

    def test_root_overrides_and_drops_options(self, conf: dict[str, str]) -> None:
        options = discover(conf, root="/R")
        assert (options.graph_root, options.run_root, options.image_stores) == ("/R", "/r", ())

    def test_runroot_keeps_options(self, conf: dict[str, str]) -> None:
        options = discover(conf, runroot="/RR")
        assert (options.run_root, options.image_stores) == ("/RR", ("/ro1", "/ro2"))

    def test_driver_drops_options(self, conf: dict[str, str]) -> None:
        options = discover(conf, driver="vfs")
        assert (options.driver, options.driver_options) == ("vfs", ())

    def test_storage_opt_replaces_options(self, conf: dict[str, str]) -> None:
        options = discover(conf, root="/R", storage_opts=["vfs.imagestore=/x,/y"])
        assert options.image_stores == ("/x", "/y")
        assert options.driver_options == ("vfs.imagestore=/x,/y",)

    def test_single_empty_storage_opt_clears(self, conf: dict[str, str]) -> None:
        assert discover(conf, storage_opts=[""]).driver_options == ()

    def test_empty_root_keeps_the_file_root(self, conf: dict[str, str]) -> None:
        options = discover(conf, root="")
        assert (options.graph_root, options.image_stores) == ("/g", ())


class TestDriverDetection:
    """SF-L-4: existing <root>/<drv>-images, overlay first, vfs last; never creates."""

    @pytest.mark.parametrize(
        ("present", "expected"),
        [
            ([], ""),
            (["vfs-images"], "vfs"),
            (["vfs-images", "overlay-images"], "overlay"),
            (["btrfs-images", "zfs-images", "vfs-images"], "btrfs"),
            (["aufs-images", "zfs-images"], "aufs"),
            (["vfs"], ""),
        ],
        ids=["none", "vfs", "overlay-first", "btrfs-before-zfs", "aufs", "driver-dir-only"],
    )
    def test_detect(self, tmp_path: Path, present: list[str], expected: str) -> None:
        for name in present:
            (tmp_path / name).mkdir()
        before = sorted(p.name for p in tmp_path.iterdir())
        assert detect_driver(str(tmp_path)) == expected
        assert sorted(p.name for p in tmp_path.iterdir()) == before

    def test_missing_root_creates_nothing(self, tmp_path: Path) -> None:
        assert detect_driver(str(tmp_path / "absent")) == ""
        assert not (tmp_path / "absent").exists()

    def test_detected_driver_selects_image_store_options(self, tmp_path: Path) -> None:
        (tmp_path / "vfs-images").mkdir()
        options = discover({}, root=str(tmp_path), storage_opts=["vfs.imagestore=/ro"])
        assert (options.driver, options.image_stores) == ("", ("/ro",))


class TestImageStoreOptions:
    """SF-RO-1: which driver options name read-only image stores."""

    @pytest.mark.parametrize(
        ("options", "driver", "expected"),
        [
            (["vfs.imagestore=/a,/b"], "vfs", ("/a", "/b")),
            ([".imagestore=/a", "VFS.ImageStore = /b"], "vfs", ("/a", "/b")),
            (["overlay.imagestore=/a"], "vfs", ()),
            (["vfs.ignore_chown_errors=true"], "vfs", ()),
            (["overlay.imagestore=/a//b/"], "overlay", ("/a/b",)),
            (["overlay2.additionalimagestore=/a", ".imagestore=/b"], "overlay", ("/a", "/b")),
            (["overlay.imagestore="], "overlay", ()),
            (["zfs.imagestore=/a", ".imagestore=/b"], "zfs", ("/a", "/b")),
        ],
        ids=[
            "vfs-commas",
            "vfs-bare-and-case",
            "other-driver-prefix",
            "not-a-store",
            "overlay-cleaned",
            "overlay-aliases",
            "overlay-empty",
            "other-driver",
        ],
    )
    def test_stores(self, options: list[str], driver: str, expected: tuple[str, ...]) -> None:
        assert image_stores_for(options, driver) == expected

    def test_overlay_relative_store_is_an_error(self) -> None:
        with pytest.raises(LibimageError, match='image path "rel" is not absolute'):
            image_stores_for(["overlay.imagestore=rel"], "overlay")


# --- podman 4.3.1 reads the same files -------------------------------------------------

PODMAN = shutil.which("podman")


def podman_store(
    environ: Mapping[str, str], flags: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``podman info`` with exactly this environment (plus PATH); the store section."""
    command = [
        PODMAN or "podman",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
        *flags,
        "info",
        "--format",
        "json",
    ]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **environ}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.mark.differential
class TestAgainstPodman:
    """SF-CF-1..6: podman 4.3.1 reports the same roots, driver and driver options."""

    @pytest.fixture(autouse=True)
    def _need_podman(self) -> None:
        if PODMAN is None:
            pytest.skip("podman is not installed")

    def compare(
        self, tmp_path: Path, environ: dict[str, str], flags: Sequence[str] = ()
    ) -> StoreOptions:
        result = podman_store(environ, flags)
        assert result.returncode == 0, result.stderr
        store = json.loads(result.stdout)["store"]
        values = dict(zip(flags[::2], flags[1::2], strict=True))
        ours = discover(
            environ,
            root=values.get("--root"),
            runroot=values.get("--runroot"),
            driver=values.get("--storage-driver"),
            storage_opts=[
                v for k, v in zip(flags[::2], flags[1::2], strict=True) if k == "--storage-opt"
            ],
            home=environ.get("HOME", ""),
            root_prefix=str(tmp_path / "no-system-files"),
        )
        assert (ours.graph_root, ours.run_root, ours.driver) == (
            store["graphRoot"],
            store["runRoot"],
            store["graphDriverName"],
        )
        assert dict(o.split("=", 1) for o in ours.driver_options) == store["graphOptions"]
        return ours

    def conf(self, tmp_path: Path, text: str) -> dict[str, str]:
        (tmp_path / "ro").mkdir(exist_ok=True)
        path = write(tmp_path / "s.conf", text.replace("TMP", str(tmp_path)))
        return {"CONTAINERS_STORAGE_CONF": str(path), "HOME": str(tmp_path)}

    CONF = (
        '[storage]\ndriver = "vfs"\ngraphroot = "$HOME/g-$UID"\nrunroot = "TMP/run"\n'
        '[storage.options]\nadditionalimagestores = ["TMP/ro"]\n'
    )

    def test_file_with_expansion_and_image_store(self, tmp_path: Path) -> None:
        ours = self.compare(tmp_path, self.conf(tmp_path, self.CONF))
        assert ours.image_stores == (str(tmp_path / "ro"),)

    def test_storage_opts_environment(self, tmp_path: Path) -> None:
        environ = self.conf(tmp_path, self.CONF) | {"STORAGE_OPTS": "vfs.imagestore=/a"}
        self.compare(tmp_path, environ)

    def test_root_flag_drops_file_options(self, tmp_path: Path) -> None:
        self.compare(tmp_path, self.conf(tmp_path, self.CONF), ["--root", str(tmp_path / "R")])

    def test_storage_opt_flag(self, tmp_path: Path) -> None:
        flags = ["--storage-opt", f"vfs.imagestore={tmp_path}/other"]
        self.compare(tmp_path, self.conf(tmp_path, self.CONF), flags)

    def test_keys_in_any_case(self, tmp_path: Path) -> None:
        text = self.CONF.replace("[storage]", "[Storage]").replace("graphroot", "GraphRoot")
        text = text.replace("[storage.options]", "[Storage.Options]")
        self.compare(tmp_path, self.conf(tmp_path, text))

    def test_malformed_file_fails_in_both(self, tmp_path: Path) -> None:
        environ = self.conf(tmp_path, '[storage]\ndriver = "vfs"\ngraphroot = \n')
        result = podman_store(environ)
        assert result.returncode != 0
        with pytest.raises(LibimageError):
            discover(environ)
