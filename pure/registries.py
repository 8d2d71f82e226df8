"""The registries.conf v2 model and local short-name resolution (SN-*).

Reading the files is an adapter (``libimage.adapters.registries_conf``); the core
takes the merged configuration as a value. This module holds what is pure about
them: the validation of the values one file contributes (SN-4 steps 4-6, SN-5),
merging the files in order (SN-5, SN-6), and the candidate list of a local lookup
(SN-2).

Every validation error is a :class:`~libimage.pure.errors.LibimageError` of kind
``REGISTRIES_CONF`` carrying containers/image's text; the adapter prefixes it with
``loading registries configuration "<path>": `` and friends (SN-4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap, PVector

from libimage.pure.errors import ErrorKind, LibimageError, fail
from libimage.pure.reference import (
    DOMAIN_RE,
    Reference,
    go_quote,
    names_registry,
    parse,
    parse_normalized_named,
    tag_name_only,
    trim_named,
    with_digest,
    with_tag,
)

SHORT_NAME_MODES = ("enforcing", "permissive", "disabled")
DEFAULT_SHORT_NAME_MODE = "permissive"  # SN-6


@dataclass(frozen=True, slots=True)
class RegistriesConfig:
    """The merged registries configuration that local lookups need (SN-4..SN-6).

    ``aliases`` come from registries.conf and its drop-ins, merged (later files win,
    ``""`` masks an earlier alias). ``cached_aliases`` come from the user's
    short-name alias cache, which has priority whenever it has the key (SN-5).
    Alias values are stored docker-normalised; ``""`` means "explicitly no alias".
    """

    unqualified_search_registries: PVector[str] = field(default_factory=pvector)
    aliases: PMap[str, str] = field(default_factory=pmap)
    cached_aliases: PMap[str, str] = field(default_factory=pmap)
    short_name_mode: str = DEFAULT_SHORT_NAME_MODE


@dataclass(frozen=True, slots=True)
class RegistriesFile:
    """What one parsed registries.conf (main file or drop-in) contributes (SN-4).

    ``unqualified_search_registries`` and ``short_name_mode`` are ``None`` when the
    file does not set the key; an explicit empty array is an empty vector, which
    does replace earlier values (SN-6). Aliases are already validated and
    normalised (:func:`validate_alias`).
    """

    path: str
    unqualified_search_registries: PVector[str] | None = None
    short_name_mode: str | None = None
    aliases: PMap[str, str] = field(default_factory=pmap)


def _conf_error(subject: str, message: str, rule: str) -> LibimageError:
    return fail(ErrorKind.REGISTRIES_CONF, subject, message, rule)


def validate_search_registry(entry: str) -> str:
    """Clean and check one ``unqualified-search-registries`` entry (SN-4 step 4).

    Trailing ``/`` characters are removed; an ``http://`` or ``https://`` prefix is
    refused (``invalid location '<entry>': URI schemes are not supported``); the rest
    must be a ``domain`` (REF-1), else ``Invalid unqualified-search-registries entry
    "<rest>"``.

    >>> validate_search_registry("quay.io/")
    'quay.io'
    >>> validate_search_registry("quay.io/ns")
    Traceback (most recent call last):
    libimage.pure.errors.LibimageError: Invalid unqualified-search-registries entry "quay.io/ns"
    """
    trimmed = entry.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        message = f"invalid location '{entry}': URI schemes are not supported"
        raise _conf_error(entry, message, "SN-4")
    if DOMAIN_RE.fullmatch(trimmed) is None:
        message = f"Invalid unqualified-search-registries entry {go_quote(trimmed)}"
        raise _conf_error(entry, message, "SN-4")
    return trimmed


def validate_short_name_mode(mode: str) -> str:
    """Check a ``short-name-mode`` value (SN-4 step 5).

    Callers treat an empty value as "not set" before calling, as upstream does; any
    other value must be ``enforcing``, ``permissive`` or ``disabled``.

    >>> validate_short_name_mode("enforcing")
    'enforcing'
    >>> validate_short_name_mode("strict")
    Traceback (most recent call last):
    libimage.pure.errors.LibimageError: invalid short-name mode: "strict"
    """
    if mode not in SHORT_NAME_MODES:
        raise _conf_error(mode, f"invalid short-name mode: {go_quote(mode)}", "SN-4")
    return mode


def _alias_key_error(key: str) -> LibimageError | None:
    """``validateShortName``: the left-hand side of an alias (SN-5)."""
    quoted = go_quote(key)
    try:
        ref = parse(key)
    except LibimageError as error:
        return _conf_error(
            key, f"cannot parse short name: {quoted}: {error.failure.message}", "SN-5"
        )
    if ref.digest:
        return _conf_error(key, f"invalid short name {quoted}: must not contain digest", "SN-5")
    if ref.tag:
        return _conf_error(key, f"invalid short name {quoted}: must not contain tag", "SN-5")
    if names_registry(ref.domain):
        return _conf_error(key, f"invalid short name {quoted}: must not contain registry", "SN-5")
    return None


def _alias_value(value: str) -> str | LibimageError:
    """``parseShortNameValue``: the normalised right-hand side of an alias (SN-5)."""
    quoted = go_quote(value)
    try:
        ref = parse(value)
    except LibimageError as error:
        return _conf_error(value, f"parsing alias {quoted}: {error.failure.message}", "SN-5")
    if ref.digest:
        return _conf_error(value, f"invalid alias {quoted}: must not contain digest", "SN-5")
    if ref.tag:
        return _conf_error(value, f"invalid alias {quoted}: must not contain tag", "SN-5")
    if not names_registry(ref.domain):
        message = f"invalid alias {quoted}: must contain registry and repository"
        return _conf_error(value, message, "SN-5")
    try:
        return str(parse_normalized_named(value))
    except LibimageError as error:
        return _conf_error(value, error.failure.message, "SN-5")


def validate_alias(key: str, value: str) -> tuple[str, str]:
    """Check one short-name alias and normalise its value (SN-5).

    The key must parse and have no digest, no tag and no registry (checked in that
    order). The value ``""`` stays ``""`` ("explicitly no alias"); any other value
    must parse and have no digest, no tag, and a registry; it is returned
    docker-normalised (``docker.io/busybox`` → ``docker.io/library/busybox``).

    >>> validate_alias("fedora", "docker.io/busybox")
    ('fedora', 'docker.io/library/busybox')
    >>> validate_alias("fedora", "quay.io/f:1")
    Traceback (most recent call last):
    libimage.pure.errors.LibimageError: invalid alias "quay.io/f:1": must not contain tag
    """
    key_error = _alias_key_error(key)
    if key_error is not None:
        raise key_error
    if value == "":
        return key, ""
    normalized = _alias_value(value)
    if isinstance(normalized, LibimageError):
        raise normalized
    return key, normalized


def validate_aliases(aliases: Mapping[str, str]) -> PMap[str, str]:
    """Validate a whole ``[aliases]`` table, reporting every bad entry (SN-4 step 6).

    Upstream collects all errors (a bad key, then its bad value) and joins them as
    ``"<e_n>\\n: … \\n: <e_1>"``; its order follows Go's map iteration, which we fix to
    the sorted key order (decision 3). The caller adds the prefix
    (``validating short-name aliases: `` for registries.conf files). The joined
    error has kind ``REGISTRIES_CONF`` and names the first bad key.

    >>> sorted(validate_aliases({"a": "quay.io/a", "b": ""}).items())
    [('a', 'quay.io/a'), ('b', '')]
    """
    errors: list[LibimageError] = []
    normalized: dict[str, str] = {}
    first_bad = ""
    for key in sorted(aliases):
        value = aliases[key]
        key_error = _alias_key_error(key)
        if key_error is not None:
            errors.append(key_error)
            first_bad = first_bad or key
        if value == "":
            normalized[key] = ""
            continue
        outcome = _alias_value(value)
        if isinstance(outcome, LibimageError):
            errors.append(outcome)
            first_bad = first_bad or key
        else:
            normalized[key] = outcome
    if errors:
        message = errors[0].failure.message
        for error in errors[1:]:
            message = f"{error.failure.message}\n: {message}"
        raise _conf_error(first_bad, message, "SN-5")
    return pmap(normalized)


def merge_registries(
    files: Sequence[RegistriesFile], cached_aliases: Mapping[str, str]
) -> RegistriesConfig:
    """Merge parsed files in order (main file, then drop-ins) into one config (SN-5, SN-6).

    A later file replaces the search registries or the mode only if it sets the key
    (an explicit empty list does clear the list; an empty mode counts as unset);
    aliases merge per key, later files winning (a later ``""`` masks an earlier
    alias). Without any mode the result is ``permissive``. ``cached_aliases`` (the
    user's alias cache, validated by the caller) are kept apart: they win over all
    files whenever they have the key (SN-5).

    >>> main = RegistriesFile("/etc/r.conf", pvector(["quay.io"]), None, pmap({"a": "quay.io/a"}))
    >>> drop = RegistriesFile("/etc/r.d/1.conf", pvector([]), "enforcing", pmap({"a": ""}))
    >>> merged = merge_registries([main, drop], {})
    >>> list(merged.unqualified_search_registries), merged.short_name_mode, dict(merged.aliases)
    ([], 'enforcing', {'a': ''})
    """
    search: PVector[str] = pvector()
    mode = ""
    aliases: dict[str, str] = {}
    for conf in files:
        if conf.unqualified_search_registries is not None:
            search = pvector(conf.unqualified_search_registries)
        if conf.short_name_mode:
            mode = conf.short_name_mode
        for key in sorted(conf.aliases):  # order is irrelevant within one file
            aliases[key] = conf.aliases[key]
    return RegistriesConfig(
        unqualified_search_registries=search,
        aliases=pmap(aliases),
        cached_aliases=pmap(cached_aliases),
        short_name_mode=mode or DEFAULT_SHORT_NAME_MODE,
    )


def _wrapped(error: LibimageError, subject: str, prefix: str) -> LibimageError:
    return fail(error.kind, subject, f"{prefix}: {error.failure.message}", "SN-2")


def resolve_alias(config: RegistriesConfig, key: str) -> Reference | None:
    """The alias of a short name (a name-only string, e.g. ``foo/bar``), if any (SN-5).

    The alias cache wins whenever it has the key, even with ``""``; then
    registries.conf aliases. ``""`` means "no alias".

    >>> conf = RegistriesConfig(aliases=pmap({"a": "quay.io/x/a"}), cached_aliases=pmap({"b": ""}))
    >>> str(resolve_alias(conf, "a")), resolve_alias(conf, "b")
    ('quay.io/x/a', None)
    """
    if key in config.cached_aliases:
        value = config.cached_aliases[key]
    else:
        value = config.aliases.get(key, "")
    if value == "":
        return None
    _, normalized = validate_alias(key, value)
    return parse(normalized)


def resolve_locally(config: RegistriesConfig, name: str) -> tuple[Reference, ...]:
    """``ResolveLocally``: the candidates a local lookup tries, in order (SN-2).

    A name that is not short (SN-1) has one candidate, ``TagNameOnly(
    ParseNormalizedNamed(name))``. A short name has its alias first (the alias of
    the name without tag or digest, with the user's tag and digest added, then
    ``latest`` if name-only), then ``localhost`` and each search registry in order,
    each ``TagNameOnly(ParseNormalizedNamed(reg + "/" + name))``. Nothing is
    de-duplicated; the short-name mode plays no role. (Upstream's "force Docker Hub"
    flag is podman-only and never set by libimage.)

    Errors keep the kind of the underlying parse error and upstream's wrapping:
    ``cannot parse input: "<name>": …``, ``cannot normalize input: "<name>": …``,
    ``creating reference with unqualified-search registry "<reg>": …``.

    >>> conf = RegistriesConfig(unqualified_search_registries=pvector(["quay.io", "docker.io"]))
    >>> [str(c) for c in resolve_locally(conf, "busybox")]
    ['localhost/busybox:latest', 'quay.io/busybox:latest', 'docker.io/library/busybox:latest']
    """
    try:
        ref = parse(name)
    except LibimageError as error:
        raise _wrapped(error, name, f"cannot parse input: {go_quote(name)}") from None
    if names_registry(ref.domain):
        try:
            named = parse_normalized_named(name)
        except LibimageError as error:
            raise _wrapped(error, name, f"cannot normalize input: {go_quote(name)}") from None
        return (tag_name_only(named),)

    candidates: list[Reference] = []
    alias = resolve_alias(config, trim_named(ref).name)
    if alias is not None:
        if ref.tag:
            alias = with_tag(alias, ref.tag)
        if ref.digest:
            alias = with_digest(alias, ref.digest)
        candidates.append(tag_name_only(alias))
    for registry in ("localhost", *config.unqualified_search_registries):
        try:
            named = parse_normalized_named(f"{registry}/{name}")
        except LibimageError as error:
            prefix = f"creating reference with unqualified-search registry {go_quote(registry)}"
            raise _wrapped(error, name, prefix) from None
        candidates.append(tag_name_only(named))
    return tuple(candidates)
