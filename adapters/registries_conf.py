"""Reading registries.conf, its drop-ins and the short-name alias cache (SN-3..SN-6).

The files are found as containers/image finds them (SN-3), each is parsed with
``tomllib`` and decoded with the types containers/image's Go structs give them
(SN-4 steps 1-3: syntax and type errors, the v1 format, ``[[registry]]`` tables),
and the values are handed to the pure validators and merge of
``libimage.pure.registries`` (SN-4 steps 4-6, SN-5, SN-6). The user's short-name
alias cache is read too (only its ``[aliases]`` table), but never created: upstream
makes its directory and a lock file on every alias lookup; a read here writes
nothing (decision 6).

Upstream reads these files lazily, when a lookup first needs a short-name
expansion, and LK-7 turns any error of that step into "image not known". This
module raises :class:`LibimageError` (kind ``REGISTRIES_CONF``) at load time; a
caller that wants upstream's laziness catches it and applies LK-7 itself.

Version notes: validation follows containers/image v5.23 (podman 4.3.1), whose
``[[registry]]`` tables know ``pull-from-mirror``; the seed's v5.17 ignores that key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap

from libimage.adapters.storage_conf import (
    go_join,
    go_strerror,
    incompatible_types,
    table_mismatch,
    toml_field,
)
from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.reference import go_quote
from libimage.pure.registries import (
    RegistriesConfig,
    RegistriesFile,
    merge_registries,
    validate_aliases,
    validate_search_registry,
    validate_short_name_mode,
)

SYSTEM_REGISTRIES_CONF = "/etc/containers/registries.conf"
SYSTEM_REGISTRIES_CONF_DIR = "/etc/containers/registries.conf.d"
USER_REGISTRIES_CONF = ".config/containers/registries.conf"
USER_REGISTRIES_CONF_DIR = ".config/containers/registries.conf.d"
ROOT_ALIAS_CACHE = "/var/cache/containers/short-name-aliases.conf"
USER_ALIAS_CACHE = "containers/short-name-aliases.conf"

_MIRROR_USAGE = ("all", "digest-only", "tag-only")  # pull-from-mirror values


class _ConfigError(Exception):
    """One file's problem, without the file prefix (added by the caller)."""


@dataclass(frozen=True, slots=True)
class RegistriesConfPaths:
    """Which files SN-3 reads: the main file and the drop-in directories, in order."""

    main: str
    main_is_explicit: bool
    drop_in_dirs: tuple[str, ...]


def registries_conf_path_from_env(explicit_path: str | None, environ: Mapping[str, str]) -> str:
    """libimage ``setRegistriesConfPath``: the explicit path, else the environment (SN-3).

    ``CONTAINERS_REGISTRIES_CONF`` is used if it *exists* (an empty value leaves the
    path unset and stops the search), else ``REGISTRIES_CONFIG_PATH``. ``""`` = unset.
    """
    if explicit_path:
        return explicit_path
    if "CONTAINERS_REGISTRIES_CONF" in environ:
        return environ["CONTAINERS_REGISTRIES_CONF"]
    return environ.get("REGISTRIES_CONFIG_PATH", "")


def registries_conf_paths(
    explicit_path: str | None,
    environ: Mapping[str, str],
    home: str,
    conf_dir: str | None = None,
    root_prefix: str = "",
) -> RegistriesConfPaths:
    """containers/image ``newConfigWrapper``: the main file and drop-in directories (SN-3).

    Main file: the configured path; else ``$HOME/.config/containers/registries.conf``
    if it exists (then only that user's drop-in directory, unless ``conf_dir`` is
    given); else ``/etc/containers/registries.conf`` under ``root_prefix``. Drop-in
    directories: ``conf_dir`` alone when given; otherwise the system one (under
    ``root_prefix``) followed by the user's. An explicit main file does not switch
    the drop-ins off.
    """
    configured = registries_conf_path_from_env(explicit_path, environ)
    user_file = go_join(home, USER_REGISTRIES_CONF)
    user_dir = go_join(home, USER_REGISTRIES_CONF_DIR)
    if not configured and _stat_ok(user_file):
        return RegistriesConfPaths(user_file, False, (conf_dir,) if conf_dir else (user_dir,))
    if configured:
        main = configured
    elif root_prefix:
        main = go_join(root_prefix, SYSTEM_REGISTRIES_CONF)
    else:
        main = SYSTEM_REGISTRIES_CONF
    if conf_dir:
        dirs: tuple[str, ...] = (conf_dir,)
    elif root_prefix:
        dirs = (go_join(root_prefix, SYSTEM_REGISTRIES_CONF_DIR), user_dir)
    else:
        dirs = (SYSTEM_REGISTRIES_CONF_DIR, user_dir)
    return RegistriesConfPaths(main, bool(configured), dirs)


def drop_in_files(directories: tuple[str, ...]) -> tuple[str, ...]:
    """containers/image ``dropInConfigs``: the ``.conf`` entries of each directory (SN-3).

    Directory by directory, the entries directly inside (sub-directories are not
    entered, whatever their name) whose path ends in ``.conf``, in byte order of
    their names. A missing directory is skipped; any other error is
    ``reading registries.conf.d: <err>``. As Go's ``WalkDir``, a "directory" that is
    in fact a file (or a symbolic link) counts as one entry.
    """
    files: list[str] = []
    for directory in directories:
        try:
            info = Path(directory).lstat()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise _dir_error("lstat", directory, error) from error
        if not _is_dir_mode(info.st_mode):
            if directory.endswith(".conf"):
                files.append(directory)
            continue
        try:
            with os.scandir(directory) as entries:
                listed = sorted(entries, key=lambda entry: os.fsencode(entry.name))
                for entry in listed:
                    if entry.is_dir(follow_symlinks=False):
                        continue
                    path = go_join(directory, entry.name)
                    if path.endswith(".conf"):
                        files.append(path)
        except OSError as error:
            raise _dir_error("open", directory, error) from error
    return tuple(files)


def load_registries_config(
    explicit_path: str | None,
    environ: Mapping[str, str],
    home: str,
    uid: int,
    *,
    conf_dir: str | None = None,
    root_prefix: str = "",
    alias_cache_path: str | None = None,
) -> RegistriesConfig:
    """Find, read, validate and merge registries.conf and the alias cache (SN-3..SN-6).

    ``explicit_path`` is the system context's ``SystemRegistriesConfPath`` (e.g.
    ``--registries-conf``); ``environ`` supplies ``CONTAINERS_REGISTRIES_CONF``,
    ``REGISTRIES_CONFIG_PATH``, ``XDG_CACHE_HOME`` and ``_CONTAINERS_ROOTLESS_UID``;
    ``home`` is the user's home; ``uid`` the effective UID; ``conf_dir`` the
    ``SystemRegistriesConfDirPath``; ``root_prefix`` the
    ``RootForImplicitAbsolutePaths``; ``alias_cache_path`` the
    ``UserShortNameAliasConfPath`` (default: :func:`short_name_alias_cache_path`).

    A missing main file is an empty configuration unless it was configured
    explicitly. Errors are :class:`LibimageError` of kind ``REGISTRIES_CONF`` with
    upstream's prefixes: ``loading registries configuration "<path>": …``,
    ``loading drop-in registries configuration "<path>": …``,
    ``reading registries.conf.d: …`` and
    ``loading short-name aliases config file "<path>": …``; TOML syntax errors end in
    tomllib's ``(at line N, column M)``.
    """
    paths = registries_conf_paths(explicit_path, environ, home, conf_dir, root_prefix)
    files: list[RegistriesFile] = []
    try:
        files.append(_load_file(paths.main, drop_in=False))
    except FileNotFoundError as error:
        if paths.main_is_explicit:
            raise _load_error(
                paths.main, f"open {paths.main}: no such file or directory", "main"
            ) from error
    except _ConfigError as error:
        raise _load_error(paths.main, str(error), "main") from error
    for path in drop_in_files(paths.drop_in_dirs):
        try:
            files.append(_load_file(path, drop_in=True))
        except FileNotFoundError as error:
            raise _load_error(path, f"open {path}: no such file or directory", "drop-in") from error
        except _ConfigError as error:
            raise _load_error(path, str(error), "drop-in") from error
    cache_path = alias_cache_path or short_name_alias_cache_path(environ, home, uid)
    return merge_registries(files, load_alias_cache(cache_path))


def short_name_alias_cache_path(environ: Mapping[str, str], home: str, uid: int) -> str:
    """containers/image ``shortNameAliasesConfPath`` without a configured path (SN-5).

    ``/var/cache/containers/short-name-aliases.conf`` for EUID 0 (after
    ``_CONTAINERS_ROOTLESS_UID``), else ``$XDG_CACHE_HOME/containers/…``, else
    ``$HOME/.cache/containers/…``.
    """
    euid = uid
    override = environ.get("_CONTAINERS_ROOTLESS_UID", "")
    if override:
        euid = int(override) if _is_go_int(override) else 0  # strconv.Atoi, error → 0
    if euid == 0:
        return ROOT_ALIAS_CACHE
    cache_home = environ.get("XDG_CACHE_HOME", "")
    if not cache_home:
        if not home:
            raise fail(
                ErrorKind.REGISTRIES_CONF,
                "",
                "could not get either XDG_CACHE_HOME or HOME",
                "SN-5",
            )
        cache_home = go_join(home, ".cache")
    return go_join(cache_home, USER_ALIAS_CACHE)


def load_alias_cache(path: str) -> PMap[str, str]:
    """The ``[aliases]`` of the short-name alias cache, validated; missing = empty (SN-5).

    Only reads: the directory and the ``.lock`` file upstream creates are never made.
    Errors: ``loading short-name aliases config file "<path>": …``.
    """
    prefix = f"loading short-name aliases config file {go_quote(path)}"
    try:
        document = _read_toml(path)
    except FileNotFoundError:
        return pmap()
    except _ConfigError as error:
        raise fail(ErrorKind.REGISTRIES_CONF, path, f"{prefix}: {error}", "SN-5") from error
    try:
        aliases = _string_map(document, "aliases")
    except _ConfigError as error:
        raise fail(ErrorKind.REGISTRIES_CONF, path, f"{prefix}: {error}", "SN-5") from error
    try:
        return validate_aliases(aliases)
    except LibimageError as error:
        message = f"{prefix}: {error.failure.message}"
        raise fail(ErrorKind.REGISTRIES_CONF, path, message, "SN-5") from error


# --- one file ------------------------------------------------------------------------


def _load_file(path: str, *, drop_in: bool) -> RegistriesFile:
    """containers/image ``loadConfigFile`` (SN-4): decode, v1/v2, validate, in upstream's order."""
    document = _read_toml(path)
    v1 = _decode_v1(document)
    search = _string_list(document, "unqualified-search-registries")
    helpers = _string_list(document, "credential-helpers")
    mode = _string(document, "short-name-mode", "short-name-mode")
    aliases = _string_map(document, "aliases")
    registries = _decode_registries(document)

    v1_nonempty = any(v1.values())
    v2_nonempty = bool(registries or search or helpers or mode or aliases)
    if v1_nonempty:
        if drop_in:
            raise _ConfigError("registry must be in v2 format but is in v1")
        if v2_nonempty:
            raise _ConfigError("mixing sysregistry v1/v2 is not supported")
        registries = _convert_v1(v1)
        search = v1["search"]
    _post_process_registries(registries)
    if search is not None:
        search = [_validated(validate_search_registry, entry) for entry in search]
    if mode:
        _validated(validate_short_name_mode, mode)
    _check_wildcard_prefixes(registries)
    try:
        validated_aliases = validate_aliases(aliases)
    except LibimageError as error:
        raise _ConfigError(f"validating short-name aliases: {error.failure.message}") from error
    return RegistriesFile(
        path=path,
        unqualified_search_registries=None if search is None else pvector(search),
        short_name_mode=mode or None,
        aliases=validated_aliases,
    )


def _validated(validator: Callable[[str], str], value: str) -> str:
    try:
        return validator(value)
    except LibimageError as error:
        raise _ConfigError(error.failure.message) from error


@dataclass(slots=True)
class _Endpoint:
    location: str
    insecure: bool
    pull_from_mirror: str


@dataclass(slots=True)
class _Registry:
    prefix: str
    endpoint: _Endpoint
    mirrors: list[_Endpoint]
    blocked: bool
    mirror_by_digest_only: bool


def _decode_registries(document: Mapping[str, Any]) -> list[_Registry]:
    """``[[registry]]`` as ``[]sysregistriesv2.Registry`` (fields matched in any case)."""
    raw = toml_field(document, "registry")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _ConfigError(incompatible_types("registry", raw, "slice"))
    registries = []
    for table in raw:
        if not isinstance(table, dict):
            raise _ConfigError(table_mismatch("registry", "sysregistriesv2.Registry", table))
        mirrors_raw = toml_field(table, "mirror")
        mirrors: list[_Endpoint] = []
        if mirrors_raw is not None:
            if not isinstance(mirrors_raw, list):
                raise _ConfigError(incompatible_types("registry.mirror", mirrors_raw, "slice"))
            for mirror in mirrors_raw:
                if not isinstance(mirror, dict):
                    raise _ConfigError(
                        table_mismatch("registry.mirror", "sysregistriesv2.Endpoint", mirror)
                    )
                mirrors.append(_decode_endpoint(mirror, "registry.mirror"))
        registries.append(
            _Registry(
                prefix=_string(table, "prefix", "registry.prefix"),
                endpoint=_decode_endpoint(table, "registry"),
                mirrors=mirrors,
                blocked=_bool(table, "blocked", "registry.blocked"),
                mirror_by_digest_only=_bool(
                    table, "mirror-by-digest-only", "registry.mirror-by-digest-only"
                ),
            )
        )
    return registries


def _decode_endpoint(table: Mapping[str, Any], context: str) -> _Endpoint:
    return _Endpoint(
        location=_string(table, "location", f"{context}.location"),
        insecure=_bool(table, "insecure", f"{context}.insecure"),
        pull_from_mirror=_string(table, "pull-from-mirror", f"{context}.pull-from-mirror"),
    )


def _decode_v1(document: Mapping[str, Any]) -> dict[str, list[str] | None]:
    """``[registries.search|insecure|block] registries = [...]`` (``V1RegistriesConf``)."""
    registries = toml_field(document, "registries")
    result: dict[str, list[str] | None] = {"search": None, "insecure": None, "block": None}
    if registries is None:
        return result
    if not isinstance(registries, dict):
        raise _ConfigError(table_mismatch("registries", "sysregistriesv2.V1TOMLConfig", registries))
    for section in result:
        table = toml_field(registries, section)
        if table is None:
            continue
        context = f"registries.{section}"
        if not isinstance(table, dict):
            raise _ConfigError(table_mismatch(context, "sysregistriesv2.V1TOMLregistries", table))
        result[section] = _string_list(table, "registries", f"{context}.registries")
    return result


def _convert_v1(v1: Mapping[str, list[str] | None]) -> list[_Registry]:
    """``V1RegistriesConf.ConvertToV2``: block, then insecure; one registry per location."""
    by_location: dict[str, _Registry] = {}
    for section in ("block", "insecure"):
        for location in v1[section] or []:
            cleaned = _parse_location(location)
            registry = by_location.setdefault(
                cleaned, _Registry(cleaned, _Endpoint(cleaned, False, ""), [], False, False)
            )
            if section == "block":
                registry.blocked = True
            else:
                registry.endpoint.insecure = True
    return list(by_location.values())


def _parse_location(text: str) -> str:
    """containers/image ``parseLocation``: trailing ``/`` removed, no URI scheme."""
    trimmed = text.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        raise _ConfigError(f"invalid location '{text}': URI schemes are not supported")
    return trimmed


def _post_process_registries(registries: list[_Registry]) -> None:
    """``V2RegistriesConf.postProcessRegistries`` for ``[[registry]]`` tables (SN-4 step 3)."""
    by_key: dict[str, list[_Registry]] = {}
    for registry in registries:
        registry.endpoint.location = _parse_location(registry.endpoint.location)
        location = registry.endpoint.location
        if not registry.prefix:
            if not location:
                raise _ConfigError("invalid condition: both location and prefix are unset")
            registry.prefix = location
        else:
            registry.prefix = _parse_location(registry.prefix)
            if not registry.prefix.startswith("*.") and not location:
                raise _ConfigError(
                    "invalid condition: location is unset and prefix is not in the format: "
                    "*.example.com"
                )
        if registry.endpoint.pull_from_mirror:
            raise _ConfigError(
                "pull-from-mirror must not be set for a non-mirror registry "
                f"{go_quote(registry.prefix)}"
            )
        for mirror in registry.mirrors:
            mirror_location = _parse_location(mirror.location)
            if not mirror_location:
                raise _ConfigError("invalid condition: mirror location is unset")
            if registry.mirror_by_digest_only and mirror.pull_from_mirror:
                raise _ConfigError(
                    "cannot set mirror usage mirror-by-digest-only for the registry "
                    f"({go_quote(registry.prefix)}) and pull-from-mirror for per-mirror "
                    f"({go_quote(mirror_location)}) at the same time"
                )
            if mirror.pull_from_mirror and mirror.pull_from_mirror not in _MIRROR_USAGE:
                raise _ConfigError(
                    f"unsupported pull-from-mirror value {go_quote(mirror.pull_from_mirror)} "
                    f"for mirror {go_quote(mirror_location)}"
                )
        by_key.setdefault(location or registry.prefix, []).append(registry)
    for registry in registries:
        location = registry.endpoint.location
        for other in by_key[location or registry.prefix]:
            if registry.endpoint.insecure != other.endpoint.insecure:
                raise _ConfigError(
                    f"registry '{location}' is defined multiple times with conflicting "
                    "'insecure' setting"
                )
            if registry.blocked != other.blocked:
                raise _ConfigError(
                    f"registry '{location}' is defined multiple times with conflicting "
                    "'blocked' setting"
                )


def _check_wildcard_prefixes(registries: list[_Registry]) -> None:
    """``*.`` prefixes may not hold ``/``, ``@`` or ``:`` (checked in sorted prefix order)."""
    prefixes = sorted({registry.prefix for registry in registries})
    for prefix in prefixes:
        if prefix.startswith("*.") and any(char in prefix for char in "/@:"):
            raise _ConfigError(
                "Wildcarded prefix should be in the format: *.example.com. "
                f"Current prefix {go_quote(prefix)} is incorrectly formatted"
            )


# --- TOML as Go decodes it -------------------------------------------------------------


def _read_toml(path: str) -> dict[str, Any]:
    """Parse one file; a missing file is ``FileNotFoundError``, other problems ``_ConfigError``."""
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise
    except tomllib.TOMLDecodeError as error:
        raise _ConfigError(f"toml: {error}") from error
    except UnicodeDecodeError as error:
        raise _ConfigError(f"toml: invalid UTF-8: {error.reason}") from error
    except OSError as error:
        raise _ConfigError(f"open {path}: {go_strerror(error)}") from error


def _string(table: Mapping[str, Any], key: str, context: str) -> str:
    value = toml_field(table, key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _ConfigError(incompatible_types(context, value, "string"))
    return value


def _bool(table: Mapping[str, Any], key: str, context: str) -> bool:
    value = toml_field(table, key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _ConfigError(incompatible_types(context, value, "bool"))
    return value


def _string_list(
    table: Mapping[str, Any], key: str, context: str | None = None
) -> list[str] | None:
    """A ``[]string`` field: ``None`` when absent (Go's nil), which differs from ``[]``."""
    context = context or key
    value = toml_field(table, key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _ConfigError(incompatible_types(context, value, "slice"))
    for item in value:
        if not isinstance(item, str):
            raise _ConfigError(incompatible_types(context, item, "string"))
    return list(value)


def _string_map(table: Mapping[str, Any], key: str) -> dict[str, str]:
    """A ``map[string]string`` field (its keys are taken as written)."""
    value = toml_field(table, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _ConfigError(incompatible_types(key, value, "map"))
    for name, item in value.items():
        if not isinstance(item, str):
            raise _ConfigError(incompatible_types(f"{key}.{name}", item, "string"))
    return dict(value)


# --- small helpers -----------------------------------------------------------------------


def _load_error(path: str, detail: str, which: str) -> LibimageError:
    label = "drop-in registries configuration" if which == "drop-in" else "registries configuration"
    return fail(
        ErrorKind.REGISTRIES_CONF, path, f"loading {label} {go_quote(path)}: {detail}", "SN-4"
    )


def _dir_error(operation: str, directory: str, error: OSError) -> LibimageError:
    detail = f"{operation} {directory}: {go_strerror(error)}"
    return fail(
        ErrorKind.REGISTRIES_CONF, directory, f"reading registries.conf.d: {detail}", "SN-3"
    )


def _stat_ok(path: str) -> bool:
    """Go ``os.Stat(path) == nil``: any error, not only absence, counts as "no"."""
    try:
        Path(path).stat()
    except OSError:
        return False
    return True


def _is_dir_mode(mode: int) -> bool:
    return (mode & 0o170000) == 0o040000


def _is_go_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isascii() and body.isdigit()
