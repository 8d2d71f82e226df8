"""Where the store is: storage.conf, the environment and the command line (SF-CF-1..6).

:func:`discover_store_options` reproduces how podman 4.3.1 (containers/storage 1.43)
arrives at the graph root, run root, driver and driver options of its store, and
turns the read-only additional image stores into a list (SF-RO-1). Everything the
process environment would say arrives as arguments (``environ``, ``uid``, ``home``),
so tests never touch ``os.environ``. Nothing here creates a file or a directory:
where upstream would create the rootless run directory, the path is only named.

Order (later steps win):

1. The configuration file (SF-CF-1, SF-CF-2): ``--storage-conf`` (ours), else
   ``CONTAINERS_STORAGE_CONF`` (must exist), else ``$XDG_CONFIG_HOME/containers/storage.conf``
   when that exists, else ``/etc/containers/storage.conf`` when it exists, else
   ``/usr/share/containers/storage.conf`` when it exists, else nothing. Missing
   roots take the rootful defaults (SF-CF-4).
2. Rootless callers (UID ≠ 0, after ``_CONTAINERS_ROOTLESS_UID``) get the rootless
   defaults derived from that file, replaced by their own file
   (``$XDG_CONFIG_HOME/containers/storage.conf`` or ``$HOME/.config/containers/storage.conf``)
   when it exists, whose missing roots come from those defaults (SF-CF-2, SF-CF-4).
3. Inside each file read: ``STORAGE_DRIVER`` replaces the driver and ``STORAGE_OPTS``
   replaces the driver options (SF-CF-5); ``$UID`` and environment variables are
   expanded in the roots.
4. The command line, as podman 4.3.1's ``getRuntime``: ``--root`` and
   ``--storage-driver`` also drop the file's driver options; ``--storage-opt``
   replaces them (a single empty option clears them) (SF-CF-6).

Divergence, on purpose: upstream ignores a malformed user file of a rootless caller
(it only prints a line); here every malformed storage.conf is an error naming the
file (and the line, for syntax errors).
"""

from __future__ import annotations

import datetime
import os
import posixpath
import re
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.reference import go_quote

ETC_STORAGE_CONF = "/etc/containers/storage.conf"
USR_STORAGE_CONF = "/usr/share/containers/storage.conf"
ROOTFUL_GRAPH_ROOT = "/var/lib/containers/storage"
ROOTFUL_RUN_ROOT = "/run/containers/storage"

# SF-L-4: drivers whose metadata may already be in a graph root, in containers-storage's
# priority order, then vfs.
DRIVER_PRIORITY = ("overlay", "aufs", "btrfs", "zfs", "vfs")
_ROOTLESS_DRIVERS = frozenset({"btrfs", "overlay", "overlay2", "vfs"})
_GO_DECIMAL = re.compile(r"[+-]?[0-9]+", re.ASCII)  # what strconv.Atoi accepts


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """The store to open: roots, driver (``""`` = detect, SF-L-4), options, image stores."""

    graph_root: str
    run_root: str
    driver: str
    image_stores: tuple[str, ...] = ()  # read-only additional image stores, in order
    driver_options: tuple[str, ...] = ()


@dataclass(slots=True)
class _FileOptions:
    """What one storage.conf (after the environment) says; a working value, never returned."""

    graph_root: str = ""
    run_root: str = ""
    rootless_storage_path: str = ""
    driver: str = ""
    driver_options: list[str] = field(default_factory=list)


def _store_config_error(path: str, detail: str) -> LibimageError:
    return fail(
        ErrorKind.STORE_CONFIG,
        path,
        f'loading storage configuration "{path}": {detail}',
        "SF-CF-3",
    )


def discover_store_options(
    *,
    root: str | None,
    runroot: str | None,
    driver: str | None,
    storage_opts: Sequence[str],
    storage_conf: str | None,
    environ: Mapping[str, str],
    uid: int,
    home: str,
    root_prefix: str = "",
) -> StoreOptions:
    """The store options podman 4.3.1 would use for these flags and this environment.

    ``root``/``runroot``/``driver`` are the command-line flags (``None`` = not given);
    ``storage_opts`` the repeated ``--storage-opt`` values; ``storage_conf`` our
    ``--storage-conf`` (it takes the place of ``CONTAINERS_STORAGE_CONF``). ``uid`` is
    the effective UID and ``home`` the user's home directory. ``root_prefix`` is put
    in front of the system paths ``/etc/…`` and ``/usr/share/…`` (for tests). See the
    module docstring for the order (SF-CF-1..6). ``image_stores`` are the read-only
    stores of the effective driver (the configured one, else :func:`detect_driver`),
    in order (SF-RO-1, SF-RO-3).
    """
    rootless_uid = _rootless_uid(environ, uid)
    options = _system_options(storage_conf, environ, root_prefix)
    # podman's rootless.IsRootless(): a non-root EUID or a configured user namespace.
    rootless = uid != 0 or bool(environ.get("_CONTAINERS_USERNS_CONFIGURED", ""))
    if rootless and rootless_uid != 0:
        options = _rootless_options(options, storage_conf, environ, rootless_uid, home)
    for attribute in ("run_root", "graph_root", "rootless_storage_path"):
        value = getattr(options, attribute)
        if value:
            setattr(options, attribute, expand_env_path(value, rootless_uid, environ))

    graph_root, run_root = options.graph_root, options.run_root
    chosen_driver = options.driver
    driver_options = list(options.driver_options)
    # compat (SF-CF-6): podman 4.3.1 getRuntime drops the file's driver options when
    # --root or --storage-driver is given, and --storage-opt replaces them.
    if root is not None:
        graph_root = root or graph_root
        driver_options = []
    if runroot is not None:
        run_root = runroot or run_root
    if driver is not None:
        chosen_driver = driver or chosen_driver
        driver_options = []
    if storage_opts:
        driver_options = [] if list(storage_opts) == [""] else list(storage_opts)

    effective_driver = chosen_driver or detect_driver(graph_root)
    return StoreOptions(
        graph_root=graph_root,
        run_root=run_root,
        driver=chosen_driver,
        image_stores=image_stores_for(driver_options, effective_driver),
        driver_options=tuple(driver_options),
    )


def detect_driver(graph_root: str) -> str:
    """The driver whose ``<root>/<drv>-images`` exists, by SF-L-4 priority; ``""`` if none.

    Only looks; never creates anything.
    """
    for name in DRIVER_PRIORITY:
        if Path(go_join(graph_root, f"{name}-images")).is_dir():
            return name
    return ""


def image_stores_for(driver_options: Sequence[str], driver: str) -> tuple[str, ...]:
    """The read-only additional image stores the driver takes from its options (SF-RO-1).

    vfs (containers-storage 1.43 ``vfs.Init``) takes ``vfs.imagestore=`` and
    ``.imagestore=`` (key case-insensitive), values split at commas, as written.
    overlay takes ``imagestore``/``additionalimagestore`` after stripping an
    ``overlay.``, ``overlay2.`` or ``.`` prefix, skips empty values and cleans each
    path, which must be absolute. Other drivers: ``<driver>.imagestore`` and
    ``.imagestore``. Every option must be ``key=value``, as the drivers require.
    """
    stores: list[str] = []
    for option in driver_options:
        key, separator, value = option.partition("=")
        if not separator:
            raise fail(
                ErrorKind.STORE_CONFIG,
                option,
                f"unable to parse key/value option: {option}",
                "SF-RO-1",
            )
        key, value = key.strip().lower(), value.strip()
        if driver in ("overlay", "overlay2"):
            trimmed = key.removeprefix("overlay.").removeprefix("overlay2.").removeprefix(".")
            if trimmed not in ("imagestore", "additionalimagestore") or not value:
                continue
            for store in value.split(","):
                cleaned = go_clean(store)
                if not cleaned.startswith("/"):
                    raise fail(
                        ErrorKind.STORE_CONFIG,
                        store,
                        f'overlay: image path "{cleaned}" is not absolute.  Can not be relative',
                        "SF-RO-1",
                    )
                stores.append(cleaned)
        elif key in (f"{driver}.imagestore", ".imagestore"):
            # Empty entries name no store; upstream would add the relative path "".
            stores.extend(store for store in value.split(",") if store)
    return tuple(stores)


def _rootless_uid(environ: Mapping[str, str], uid: int) -> int:
    """containers-storage ``getRootlessUID``: ``_CONTAINERS_ROOTLESS_UID`` (Atoi, 0 on junk)."""
    override = environ.get("_CONTAINERS_ROOTLESS_UID", "")
    if not override:
        return uid
    return int(override) if _GO_DECIMAL.fullmatch(override) else 0


def _system_options(
    storage_conf: str | None, environ: Mapping[str, str], root_prefix: str
) -> _FileOptions:
    """containers-storage ``loadDefaultStoreOptions``: the file and the rootful defaults."""
    explicit = storage_conf if storage_conf is not None else environ.get("CONTAINERS_STORAGE_CONF")
    if explicit is not None:
        if not _exists(explicit):
            raise _store_config_error(explicit, f"stat {explicit}: no such file or directory")
        options = _read_storage_conf(explicit, environ)
    else:
        override = root_prefix + ETC_STORAGE_CONF
        if "XDG_CONFIG_HOME" in environ:
            home_conf = go_join(environ["XDG_CONFIG_HOME"], "containers", "storage.conf")
            if _exists(home_conf):
                override = home_conf
        if _exists(override):
            options = _read_storage_conf(override, environ)
        elif _exists(root_prefix + USR_STORAGE_CONF):
            options = _read_storage_conf(root_prefix + USR_STORAGE_CONF, environ)
        else:
            options = _FileOptions()
    options.run_root = options.run_root or ROOTFUL_RUN_ROOT
    options.graph_root = options.graph_root or ROOTFUL_GRAPH_ROOT
    return options


def _rootless_options(
    system: _FileOptions,
    storage_conf: str | None,
    environ: Mapping[str, str],
    uid: int,
    home: str,
) -> _FileOptions:
    """containers-storage ``getRootlessStorageOpts`` and the user's own file (SF-CF-2/4)."""
    run_root = go_join(_rootless_runtime_dir(environ, uid, home), "containers")
    if system.rootless_storage_path:
        graph_root = expand_env_path(system.rootless_storage_path, uid, environ)
    else:
        data_home = environ.get("XDG_DATA_HOME", "") or go_join(home, ".local", "share")
        graph_root = go_join(data_home, "containers", "storage")
    driver = system.driver if system.driver in _ROOTLESS_DRIVERS else ""
    driver = environ.get("STORAGE_DRIVER", "") or driver
    if driver == "overlay2":
        driver = "overlay"
    driver_options: list[str] = []
    if driver == "overlay":
        driver_options = [o for o in system.driver_options if "ignore_chown_errors" in o][:1]
    driver = driver or "vfs"
    if environ.get("STORAGE_OPTS", ""):
        driver_options.extend(environ["STORAGE_OPTS"].split(","))
    defaults = _FileOptions(
        graph_root=graph_root, run_root=run_root, driver=driver, driver_options=driver_options
    )

    user_conf = _user_storage_conf(storage_conf, environ, home)
    if not _exists(user_conf):
        return defaults
    options = _read_storage_conf(user_conf, environ)
    options.run_root = options.run_root or defaults.run_root
    options.graph_root = options.graph_root or options.rootless_storage_path or defaults.graph_root
    return options


def _user_storage_conf(storage_conf: str | None, environ: Mapping[str, str], home: str) -> str:
    """containers-storage ``DefaultConfigFile(rootless=true)``."""
    if storage_conf is not None:
        return storage_conf
    if "CONTAINERS_STORAGE_CONF" in environ:
        return environ["CONTAINERS_STORAGE_CONF"]
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if config_home:
        return go_join(config_home, "containers/storage.conf")
    if not home:
        raise fail(ErrorKind.STORE_CONFIG, "", "cannot determine user's homedir", "SF-CF-2")
    return go_join(home, ".config/containers/storage.conf")


def _rootless_runtime_dir(environ: Mapping[str, str], uid: int, home: str) -> str:
    """containers-storage ``getRootlessRuntimeDir``, without creating anything."""
    runtime_dir = environ.get("XDG_RUNTIME_DIR", "")
    if runtime_dir:
        try:
            return os.path.realpath(runtime_dir, strict=True)
        except OSError:
            pass
    init_command: bytes | None
    try:
        init_command = Path("/proc/1/comm").read_bytes()
    except OSError:
        init_command = None
    # quirk (SF-CF-4): /proc/1/comm ends in a newline, so upstream's comparison with
    # "systemd" only succeeds when the file cannot be read.
    if init_command is None or init_command == b"systemd":
        run_user_dir = f"/run/user/{uid}"
        if _is_private_dir_of(run_user_dir, uid):
            return run_user_dir
    temp_dir = environ.get("TMPDIR", "") or "/tmp"
    per_user = f"{temp_dir}/containers-user-{uid}"
    if not os.path.lexists(per_user) or _is_private_dir_of(per_user, uid):
        # Upstream creates a missing one (mode 0700) and uses it; we only name it.
        return per_user
    if not home:
        raise fail(
            ErrorKind.STORE_CONFIG,
            "",
            "neither XDG_RUNTIME_DIR nor temp dir nor HOME was set non-empty",
            "SF-CF-4",
        )
    return go_join(os.path.realpath(home), "rundir")


def _is_private_dir_of(path: str, uid: int) -> bool:
    try:
        info = Path(path).lstat()
    except OSError:
        return False
    mode = stat.S_IMODE(info.st_mode)
    return info.st_uid == uid and mode & 0o700 == 0o700 and mode & 0o066 == 0


def _exists(path: str) -> bool:
    """Go ``os.Stat`` success; errors other than "does not exist" are the caller's problem."""
    try:
        Path(path).stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        raise _store_config_error(path, f"stat {path}: {go_strerror(error)}") from error
    return True


# containers-storage types.TomlConfig: the expected type of each key we read; a value
# of another type fails the whole file, as the Go decoder does.
_STRING_OPTIONS = (
    "size",
    "remap-uids",
    "remap-gids",
    "ignore_chown_errors",
    "remap-user",
    "remap-group",
    "root-auto-userns-user",
    "skip_mount_home",
    "mount_program",
    "mountopt",
)
_DRIVER_TABLES: dict[str, tuple[str, ...]] = {
    "aufs": ("mountopt",),
    "btrfs": ("min_space", "size"),
    "overlay": (
        "ignore_chown_errors",
        "mountopt",
        "mount_program",
        "size",
        "inodes",
        "skip_mount_home",
        "force_mask",
    ),
    "vfs": ("ignore_chown_errors",),
    "zfs": ("mountopt", "fsname", "size"),
    "thinpool": (
        "autoextend_percent",
        "autoextend_threshold",
        "basesize",
        "blocksize",
        "directlvm_device",
        "directlvm_device_force",
        "fs",
        "log_level",
        "metadatasize",
        "min_free_space",
        "mkfsarg",
        "mountopt",
        "size",
        "use_deferred_deletion",
        "use_deferred_removal",
        "xfs_nospace_max_retries",
    ),
}
_UINT32_MAX = 2**32 - 1
_DRIVER_TABLE_TYPES = {
    "aufs": "config.AufsOptionsConfig",
    "btrfs": "config.BtrfsOptionsConfig",
    "overlay": "config.OverlayOptionsConfig",
    "vfs": "config.VfsOptionsConfig",
    "zfs": "config.ZfsOptionsConfig",
    "thinpool": "config.ThinpoolOptionsConfig",
}


def _read_storage_conf(path: str, environ: Mapping[str, str]) -> _FileOptions:
    """containers-storage ``ReloadConfigurationFile`` (SF-CF-3, SF-CF-5, SF-RO-1)."""
    document = _load_toml(path)
    storage = _table(document, "storage", path, "storage", "types.TomlConfig.Storage")
    options_table = _table(storage, "options", path, "storage.options", "config.OptionsConfig")

    def text(table: Mapping[str, Any], key: str, where: str) -> str:
        value = toml_field(table, key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _store_config_error(path, incompatible_types(where, value, "string"))
        return value

    def strings(table: Mapping[str, Any], key: str, where: str) -> list[str]:
        value = toml_field(table, key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _store_config_error(path, incompatible_types(where, value, "slice"))
        for item in value:
            if not isinstance(item, str):
                raise _store_config_error(path, incompatible_types(where, item, "string"))
        return list(value)

    def uint32(table: Mapping[str, Any], key: str, where: str) -> int:
        value = toml_field(table, key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise _store_config_error(path, incompatible_types(where, value, "integer"))
        if not 0 <= value <= _UINT32_MAX:
            detail = f"toml: (last key {go_quote(where)}): {value} is out of range for uint32"
            raise _store_config_error(path, detail)
        return value

    file_driver = text(storage, "driver", "storage.driver")
    run_root = text(storage, "runroot", "storage.runroot")
    graph_root = text(storage, "graphroot", "storage.graphroot")
    rootless_storage_path = text(storage, "rootless_storage_path", "storage.rootless_storage_path")
    image_stores = strings(
        options_table, "additionalimagestores", "storage.options.additionalimagestores"
    )
    layer_stores = strings(
        options_table, "additionallayerstores", "storage.options.additionallayerstores"
    )
    common = {key: text(options_table, key, f"storage.options.{key}") for key in _STRING_OPTIONS}
    force_mask = uint32(options_table, "force_mask", "storage.options.force_mask")
    uint32(options_table, "auto-userns-min-size", "storage.options.auto-userns-min-size")
    uint32(options_table, "auto-userns-max-size", "storage.options.auto-userns-max-size")
    pull_options = toml_field(options_table, "pull_options")
    if pull_options is not None:
        where = "storage.options.pull_options"
        if not isinstance(pull_options, dict):
            raise _store_config_error(path, incompatible_types(where, pull_options, "map"))
        for key, item in pull_options.items():
            if not isinstance(item, str):
                detail = incompatible_types(f"{where}.{key}", item, "string")
                raise _store_config_error(path, detail)
    disable_volatile = toml_field(options_table, "disable-volatile")
    if disable_volatile is not None and not isinstance(disable_volatile, bool):
        detail = incompatible_types("storage.options.disable-volatile", disable_volatile, "boolean")
        raise _store_config_error(path, detail)
    per_driver: dict[str, dict[str, str]] = {}
    for table_name, keys in _DRIVER_TABLES.items():
        where = f"storage.options.{table_name}"
        sub = _table(options_table, table_name, path, where, _DRIVER_TABLE_TYPES[table_name])
        per_driver[table_name] = {key: text(sub, key, f"{where}.{key}") for key in keys}

    # STORAGE_DRIVER also renames the prefix of the options built below; "overlay2"
    # is only mapped to "overlay" for the driver itself (as upstream).
    prefix = environ.get("STORAGE_DRIVER", "") or file_driver
    driver = "overlay" if prefix == "overlay2" else prefix
    driver_options = [f"{prefix}.imagestore={store}" for store in image_stores]
    driver_options += [f"{prefix}.additionallayerstore={store}" for store in layer_stores]
    for key in ("size", "mount_program", "skip_mount_home", "ignore_chown_errors"):
        if common[key]:
            driver_options.append(f"{prefix}.{key}={common[key]}")
    if force_mask:
        driver_options.append(f"{prefix}.force_mask={force_mask:o}")
    if common["mountopt"]:
        driver_options.append(f"{prefix}.mountopt={common['mountopt']}")
    driver_options += _graph_driver_options(driver, common, force_mask, per_driver)
    if "STORAGE_OPTS" in environ:
        driver_options = environ["STORAGE_OPTS"].split(",")
    if driver_options == [""]:
        driver_options = []
    return _FileOptions(
        graph_root=graph_root,
        run_root=run_root,
        rootless_storage_path=rootless_storage_path,
        driver=driver,
        driver_options=driver_options,
    )


def _graph_driver_options(
    driver: str, common: Mapping[str, str], force_mask: int, per_driver: Mapping[str, Any]
) -> list[str]:
    """containers-storage ``config.GetGraphDriverOptions`` (device-mapper rows omitted)."""

    def first(table: str, key: str, fallback: str = "") -> str:
        return str(per_driver[table][key]) or fallback

    options: list[str] = []
    if driver == "aufs":
        mountopt = first("aufs", "mountopt", common["mountopt"])
        if mountopt:
            options.append(f"aufs.mountopt={mountopt}")
    elif driver == "btrfs":
        if per_driver["btrfs"]["min_space"]:
            return [f"btrfs.min_space={per_driver['btrfs']['min_space']}"]
        size = first("btrfs", "size", common["size"])
        if size:
            options.append(f"btrfs.size={size}")
    elif driver in ("overlay", "overlay2"):
        for key in ("ignore_chown_errors", "mount_program", "mountopt", "size"):
            value = first("overlay", key, common[key])
            if value:
                options.append(f"{driver}.{key}={value}")
        if per_driver["overlay"]["inodes"]:
            options.append(f"{driver}.inodes={per_driver['overlay']['inodes']}")
        skip = first("overlay", "skip_mount_home", common["skip_mount_home"])
        if skip:
            options.append(f"{driver}.skip_mount_home={skip}")
        if per_driver["overlay"]["force_mask"]:
            options.append(f"{driver}.force_mask={per_driver['overlay']['force_mask']}")
        elif force_mask:
            options.append(f"{driver}.force_mask={_go_file_mode(force_mask)}")
    elif driver == "vfs":
        value = first("vfs", "ignore_chown_errors", common["ignore_chown_errors"])
        if value:
            options.append(f"vfs.ignore_chown_errors={value}")
    elif driver == "zfs":
        if per_driver["zfs"]["fsname"]:
            options.append(f"zfs.fsname={per_driver['zfs']['fsname']}")
        for key in ("mountopt", "size"):
            value = first("zfs", key, common[key])
            if value:
                options.append(f"zfs.{key}={value}")
    return options


def _go_file_mode(mode: int) -> str:
    """Go ``os.FileMode.String`` for permission bits (what ``%s`` prints for ``force_mask``)."""
    bits = "".join(
        letter if mode & (1 << (8 - index)) else "-" for index, letter in enumerate("rwxrwxrwx")
    )
    return "-" + bits


def _load_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends in "(at line N, column M)": the file is named in front.
        raise _store_config_error(path, f"toml: {error}") from error
    except UnicodeDecodeError as error:
        raise _store_config_error(path, f"toml: invalid UTF-8: {error.reason}") from error
    except OSError as error:
        raise _store_config_error(path, f"open {path}: {go_strerror(error)}") from error


def go_strerror(error: OSError) -> str:
    """An OS error's text as Go prints it (``no such file or directory``: lower case)."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def toml_field(table: Mapping[str, Any], name: str) -> Any:
    """A Go struct field as BurntSushi/toml fills it: the exact key, else a case-folded match.

    ``None`` when the table has no such key. (Go's decoder matches field names
    without regard to case; with several spellings present its pick depends on map
    order, so the first in sorted order is taken here.)
    """
    if name in table:
        return table[name]
    for key in sorted(table):
        if key.casefold() == name.casefold():
            return table[key]
    return None


def go_type_name(value: object) -> str:
    """What Go's ``%T`` prints for a value BurntSushi/toml decoded (``int64``, ``string``…)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, datetime.datetime):
        return "time.Time"
    return "toml.Local" + type(value).__name__.capitalize()  # datetime.date / datetime.time


def incompatible_types(context: str, value: object, destination: str) -> str:
    """BurntSushi/toml's ``badtype`` text (without a line: tomllib does not keep positions)."""
    return (
        f"toml: (last key {go_quote(context)}): incompatible types: "
        f"TOML value has type {go_type_name(value)}; destination has type {destination}"
    )


def table_mismatch(context: str, go_type: str, value: object) -> str:
    """BurntSushi/toml's text for a non-table where a Go struct is decoded."""
    return (
        f"toml: (last key {go_quote(context)}): type mismatch for {go_type}: "
        f"expected table but found {go_type_name(value)}"
    )


def _table(
    table: Mapping[str, Any], name: str, path: str, where: str, go_type: str
) -> Mapping[str, Any]:
    value = toml_field(table, name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _store_config_error(path, table_mismatch(where, go_type, value))
    return value


def expand_env_path(path: str, uid: int, environ: Mapping[str, str]) -> str:
    """containers-storage ``expandEnvPath``: ``$UID``, then ``os.ExpandEnv``, then symlinks.

    ``$UID`` becomes ``uid``; every other ``$NAME``/``${NAME}`` is looked up in
    ``environ`` (unset = empty, SF-CF-5); an absolute path that exists has its
    symlinks resolved, any other is only cleaned.
    """
    expanded = go_expand_env(path.replace("$UID", str(uid)), environ)
    if expanded.startswith("/"):
        try:
            return os.path.realpath(expanded, strict=True)
        except OSError:
            pass
    return go_clean(expanded)


def go_join(*parts: str) -> str:
    """Go ``filepath.Join``: the non-empty parts joined by ``/`` and cleaned; ``""`` if none.

    >>> go_join("/a/", "../b", ""), go_join("", "")
    ('/b', '')
    """
    kept = [part for part in parts if part]
    return go_clean("/".join(kept)) if kept else ""


def go_clean(path: str) -> str:
    """Go ``filepath.Clean`` (Unix): like ``normpath``, but ``//x`` becomes ``/x``.

    >>> go_clean(""), go_clean("//a/./b/../c/"), go_clean("a//b")
    ('.', '/a/c', 'a/b')
    """
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


_SHELL_SPECIAL = frozenset("*#$@!?-0123456789")


def _is_name_char(char: str) -> bool:
    return char == "_" or (char.isascii() and char.isalnum())


def go_expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Go ``os.ExpandEnv``: ``$NAME``, ``${NAME}``, one-character specials; bad syntax eaten.

    >>> go_expand_env("$HOME/x${HOME}y$", {"HOME": "/h"})
    '/h/x/hy$'
    >>> go_expand_env("a${}b${c", {})
    'abc'
    """
    pieces: list[str] = []
    start = 0
    index = 0
    while index < len(text):
        if text[index] == "$" and index + 1 < len(text):
            pieces.append(text[start:index])
            name, width = _shell_name(text[index + 1 :])
            if name:
                pieces.append(environ.get(name, ""))
            elif width == 0:
                pieces.append("$")  # "$" not followed by a name stays
            index += width
            start = index + 1
        index += 1
    pieces.append(text[start:])
    return "".join(pieces)


def _shell_name(rest: str) -> tuple[str, int]:
    """Go ``getShellName``: the variable name after ``$`` and how many characters it used."""
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SHELL_SPECIAL and rest[2] == "}":
            return rest[1], 3
        closing = rest.find("}", 1)
        if closing == -1:
            return "", 1  # bad syntax: eat "${"
        if closing == 1:
            return "", 2  # bad syntax: eat "${}"
        return rest[1:closing], closing + 1
    if rest[0] in _SHELL_SPECIAL:
        return rest[0], 1
    width = 0
    while width < len(rest) and _is_name_char(rest[width]):
        width += 1
    return rest[:width], width
