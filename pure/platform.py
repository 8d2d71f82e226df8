"""Platform names: specifier parsing, normalisation and instance wishes (PLAT-*, DIV-4, DIV-5).

Everything here is containerd's ``platforms`` package and containers/image's
``WantedPlatforms`` as libimage uses them, with the host platform passed in as a value
(decision 6): ``pure/`` never asks the machine which OS, architecture or CPU variant
it runs on. The adapter ``libimage.adapters.host`` builds that value.

Two vintages of containerd's normalisation table matter:

* the seed's vendored copy (PLAT-2): ``x86_64``/``x86-64`` become ``amd64`` and lose
  any variant, while ``amd64`` itself keeps whatever variant it has;
* containerd 1.6.8, vendored by containers/common v0.50.1 (podman 4.3.1):
  ``x86_64``, ``x86-64`` and ``amd64`` all become ``amd64``, keep their variant, and
  only ``v1`` is dropped (the amd64 micro-architecture levels ``v2``..``v4`` are
  kept). Its known-OS and known-architecture lists also gained ``ios`` and
  ``loong64`` (they matter only for one-part specifiers).

The switch between them is ``amd64_variants``; the podman 4.3.1 ``NormalizePlatform``
(DIV-5) always uses the newer table, so :func:`normalize_platform` picks it together
with ``keep_default_variant``.

>>> normalize_platform("linux", "armhf", "", Platform("linux", "amd64"), False)
('linux', 'arm', '')
>>> normalize_platform("linux", "armhf", "", Platform("linux", "amd64"), True)
('linux', 'arm', 'v7')
"""

from __future__ import annotations

import re

from libimage.pure.context import Platform

# containerd platforms.go: specifierRe, applied to every "/"-separated component.
_SPECIFIER_COMPONENT = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)

# containerd database.go isKnownOS / isKnownArch (seed vendoring, then 1.6.8 additions).
_KNOWN_OS_SEED = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
    }
)
_KNOWN_OS_1_6 = _KNOWN_OS_SEED | {"ios"}
_KNOWN_ARCH_SEED = frozenset(
    {
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    }
)
_KNOWN_ARCH_1_6 = _KNOWN_ARCH_SEED | {"loong64"}

# containers/image internal/pkg/platform: the variants an architecture can run (PLAT-4 3).
_COMPATIBLE_VARIANTS: dict[str, tuple[str, ...]] = {
    "arm": ("v8", "v7", "v6", "v5"),
    "arm64": ("v8",),
}

# containers/image getCPUVariantArm: the "CPU architecture" value, lower-cased (PLAT-4 1).
_CPU_ARCHITECTURE_VARIANTS: dict[str, str] = {
    "8": "v8",
    "aarch64": "v8",
    "7": "v7",
    "7m": "v7",
    "?(12)": "v7",
    "?(13)": "v7",
    "?(14)": "v7",
    "?(15)": "v7",
    "?(16)": "v7",
    "?(17)": "v7",
    "6": "v6",
    "6tej": "v6",
    "5": "v5",
    "5t": "v5",
    "5te": "v5",
    "5tej": "v5",
    "4": "v4",
    "4t": "v4",
    "3": "v3",
}

# uname machine -> Go GOARCH, for the machines Linux reports (decision 6 conventions).
_GO_ARCH: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "x64": "amd64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "x86": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "aarch64_be": "arm64be",
    "armv8l": "arm",
    "armv7l": "arm",
    "armv7": "arm",
    "armv6l": "arm",
    "armv5tel": "arm",
    "armv5l": "arm",
    "arm": "arm",
    "armeb": "armbe",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "ppc": "ppc",
    "s390x": "s390x",
    "s390": "s390",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
    "mips64": "mips64",
    "mips64el": "mips64le",
    "mips": "mips",
    "mipsel": "mipsle",
    "sparc64": "sparc64",
}


def normalize_os(os_name: str, host_os: str) -> str:
    """containerd ``normalizeOS``: empty → the host OS; lower-case; ``macos`` → ``darwin``.

    >>> normalize_os("MacOS", "linux"), normalize_os("", "linux")
    ('darwin', 'linux')
    """
    if not os_name:
        return host_os
    lowered = os_name.lower()
    return "darwin" if lowered == "macos" else lowered


def normalize_arch(arch: str, variant: str, *, amd64_variants: bool = False) -> tuple[str, str]:
    """containerd ``normalizeArch``: the table of PLAT-2 (both inputs lower-cased first).

    ``amd64_variants`` selects containerd 1.6.8's amd64 rows (see the module docstring).

    >>> normalize_arch("x86_64", "v2"), normalize_arch("x86_64", "v2", amd64_variants=True)
    (('amd64', ''), ('amd64', 'v2'))
    >>> normalize_arch("arm", ""), normalize_arch("aarch64", "8")
    (('arm', 'v7'), ('arm64', ''))
    """
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if amd64_variants and arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if not amd64_variants and arch in ("x86_64", "x86-64"):
        return "amd64", ""
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


def parse_platform_specifier(
    spec: str, *, host: Platform | None = None, amd64_variants: bool = False
) -> Platform | None:
    """containerd ``platforms.Parse`` (PLAT-2); ``None`` where it returns an error.

    A ``*`` anywhere fails; every ``/``-separated component must match
    ``[A-Za-z0-9_-]+``. ``os/arch`` normalises through the table and then turns
    ``arm``+``v7`` back into ``arm``+``""``; ``os/arch/variant`` normalises and then
    gives ``arm64`` without a variant the variant ``v8``. A one-part specifier is an OS
    (the host's architecture is added, and on an ``arm`` host its CPU variant unless
    that is ``v7``) or an architecture (the host's OS is added); that needs ``host``,
    and asking without one is a caller bug (``ValueError``). containerd reads the CPU
    variant itself; here it is ``host.variant``.

    >>> parse_platform_specifier("linux/aarch64/8")
    Platform(os='linux', architecture='arm64', variant='v8')
    >>> parse_platform_specifier("linux/armhf")
    Platform(os='linux', architecture='arm', variant='')
    >>> parse_platform_specifier("linux/x86_64/v1.0") is None
    True
    """
    if "*" in spec:
        return None
    parts = spec.split("/")
    if not all(_SPECIFIER_COMPONENT.fullmatch(part) for part in parts):
        return None
    known_os = _KNOWN_OS_1_6 if amd64_variants else _KNOWN_OS_SEED
    known_arch = _KNOWN_ARCH_1_6 if amd64_variants else _KNOWN_ARCH_SEED
    if len(parts) == 1:
        if host is None:
            raise ValueError(f"one-part platform specifier {spec!r} needs the host platform")
        os_name = normalize_os(parts[0], host.os)
        if os_name in known_os:
            variant = ""
            if host.architecture == "arm" and host.variant != "v7":
                variant = host.variant
            return Platform(os_name, host.architecture, variant)
        arch, variant = normalize_arch(parts[0], "", amd64_variants=amd64_variants)
        if arch == "arm" and variant == "v7":
            variant = ""
        if arch in known_arch:
            return Platform(host.os, arch, variant)
        return None
    if len(parts) == 2:
        arch, variant = normalize_arch(parts[1], "", amd64_variants=amd64_variants)
        if arch == "arm" and variant == "v7":
            variant = ""
        # A two-part component is never empty, so the host OS is never substituted here.
        return Platform(normalize_os(parts[0], ""), arch, variant)
    if len(parts) == 3:
        arch, variant = normalize_arch(parts[1], parts[2], amd64_variants=amd64_variants)
        if arch == "arm64" and not variant:
            variant = "v8"
        return Platform(normalize_os(parts[0], ""), arch, variant)
    return None


def _platform_string(os_name: str, arch: str, variant: str, host: Platform) -> str:
    """libimage ``toPlatformString``: empty OS/arch become the host's; no variant, no part."""
    os_name = os_name or host.os
    arch = arch or host.architecture
    return f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}"


def normalize_platform(
    os_name: str, arch: str, variant: str, host: Platform, keep_default_variant: bool
) -> tuple[str, str, str]:
    """libimage ``NormalizePlatform``: the seed's (PLAT-1) or podman 4.3.1's (DIV-5).

    Only ``host.os`` and ``host.architecture`` are used (Go's ``runtime.GOOS`` and
    ``runtime.GOARCH``); the host CPU variant plays no part. A specifier that does
    not parse returns the three raw inputs.

    Seed (``keep_default_variant`` False, PLAT-1): the specifier is built from the
    raw values with the host filling an empty OS or architecture, parsed (seed
    table), and each output is the normalised value where the input was given and
    ``""`` where it was not, so empty stays empty.

    podman 4.3.1 (``keep_default_variant`` True, DIV-5; containers/common v0.50.1
    ``libimage/platform.go``): the raw triple first goes through containerd's
    ``Normalize`` (1.6.8 table; an empty OS becomes the host's); a variant that the
    table wiped out is restored to the raw input; the specifier built from that is
    parsed once more; OS and architecture are reported only where given, but the
    variant is always the parsed one, so default variants are kept or added
    (``arm`` → ``v7``) and a variant given for ``x86_64`` survives as ``amd64``'s.
    Assumption, from reading the source: podman 4.3.1 links containerd 1.6.8 or a
    later 1.6 release with the same table (containers/common v0.50.1 requires 1.6.8).

    >>> host = Platform("linux", "amd64")
    >>> normalize_platform("linux", "x86_64", "v2", host, False)
    ('linux', 'amd64', '')
    >>> normalize_platform("linux", "x86_64", "v2", host, True)
    ('linux', 'amd64', 'v2')
    """
    if not keep_default_variant:
        spec = _platform_string(os_name, arch, variant, host)
        parsed = parse_platform_specifier(spec, host=host)
        if parsed is None:
            return os_name, arch, variant
        return (
            parsed.os if os_name else "",
            parsed.architecture if arch else "",
            parsed.variant if variant else "",
        )
    normal_os = normalize_os(os_name, host.os)
    normal_arch, normal_variant = normalize_arch(arch, variant, amd64_variants=True)
    if not normal_variant and variant:
        # compat (DIV-5): a raw variant the table dropped is tried again after parsing.
        normal_variant = variant
    spec = _platform_string(normal_os, normal_arch, normal_variant, host)
    parsed = parse_platform_specifier(spec, host=host, amd64_variants=True)
    if parsed is None:
        return os_name, arch, variant
    return (
        parsed.os if os_name else os_name,
        parsed.architecture if arch else arch,
        # compat (DIV-5): upstream takes the parsed variant when the raw one was given
        # or the parsed one is non-empty; otherwise both are "", so it is always this.
        parsed.variant,
    )


def platform_matches_podman(wanted: Platform, image: Platform, host: Platform) -> bool:
    """podman 4.3.1's platform comparison of a lookup candidate (DIV-4).

    containers/common v0.50.1 ``Image.matchesPlatform``: each side becomes a
    specifier with empty OS/architecture defaulted to the host's
    (``toPlatformString``), is parsed with containerd 1.6.8 ``platforms.Parse``, and
    the two are compared by ``platforms.NewMatcher(expected).Match(image)``, which
    normalises both once more and compares OS, architecture and variant for
    equality. An image that reports no variant therefore matches ``arm/v7`` (both
    normalise to ``v7``) but not ``arm/v6``.

    A side that does not parse is a "fatal" error upstream, which
    ``lookupImageInLocalStorage`` ignores and keeps the image; this returns True
    then. The caller's own steps (DIV-4): candidates found by ID prefix are not
    checked, corrupted images are kept (``matchesPlatform`` reports them with
    ``customPlatform`` false), and a mismatch discards the image only when the
    caller asked for a platform (any of ``wanted``'s fields non-empty).

    >>> host = Platform("linux", "arm")
    >>> platform_matches_podman(Platform("", "", ""), Platform("linux", "arm", ""), host)
    True
    >>> platform_matches_podman(Platform("", "", ""), Platform("linux", "arm", "v6"), host)
    False
    """
    expected = parse_platform_specifier(
        _platform_string(wanted.os, wanted.architecture, wanted.variant, host),
        host=host,
        amd64_variants=True,
    )
    from_image = parse_platform_specifier(
        _platform_string(image.os, image.architecture, image.variant, host),
        host=host,
        amd64_variants=True,
    )
    if expected is None or from_image is None:
        # compat (DIV-4): the parse error is dropped by the caller, the image is kept.
        return True
    return _matcher_normal_form(expected, host) == _matcher_normal_form(from_image, host)


def _matcher_normal_form(platform: Platform, host: Platform) -> tuple[str, str, str]:
    """containerd ``Normalize`` (1.6.8), as ``NewMatcher`` and ``Match`` apply it."""
    arch, variant = normalize_arch(platform.architecture, platform.variant, amd64_variants=True)
    return normalize_os(platform.os, host.os), arch, variant


def wanted_platforms(
    arch_choice: str, os_choice: str, variant_choice: str, host: Platform
) -> tuple[Platform, ...]:
    """containers/image ``WantedPlatforms``: the platforms a list instance may have (PLAT-4).

    The choices are what ``LookupInstance`` hands to its system context (ML-3: the
    caller applies the rule that a variant counts only with an architecture). The
    architecture is the chosen one, else the host's, in which case the starting
    variant is the host CPU variant (only on ``arm``/``arm64`` hosts); a chosen
    variant overrides it. With a variant the list walks the compatibility table down
    from it (or holds just the variant) and ends in ``""``; without one it starts
    with ``""`` followed by the whole table of the architecture.

    >>> [p.variant for p in wanted_platforms("arm", "", "v7", Platform("linux", "amd64"))]
    ['v7', 'v6', 'v5', '']
    >>> [p.variant for p in wanted_platforms("", "", "", Platform("linux", "amd64"))]
    ['']
    """
    if arch_choice:
        wanted_arch = arch_choice
        wanted_variant = ""
    else:
        wanted_arch = host.architecture
        # getCPUVariant reads /proc/cpuinfo only on arm hosts; elsewhere it is "".
        wanted_variant = host.variant if host.architecture in _COMPATIBLE_VARIANTS else ""
    if variant_choice:
        wanted_variant = variant_choice
    wanted_os = os_choice or host.os

    compatible = _COMPATIBLE_VARIANTS.get(wanted_arch)
    variants: tuple[str, ...]
    if wanted_variant:
        if compatible is not None and wanted_variant in compatible:
            variants = (*compatible[compatible.index(wanted_variant) :], "")
        else:
            variants = (wanted_variant, "")
    else:
        variants = ("", *(compatible or ()))
    return tuple(Platform(wanted_os, wanted_arch, variant) for variant in variants)


def go_arch(machine: str) -> str:
    """The Go architecture name (``GOARCH``) for a ``uname`` machine string.

    Unknown machines are returned lower-cased, unchanged otherwise.

    >>> go_arch("x86_64"), go_arch("aarch64"), go_arch("armv7l"), go_arch("i686")
    ('amd64', 'arm64', 'arm', '386')
    """
    lowered = machine.lower()
    return _GO_ARCH.get(lowered, lowered)


def cpu_variant(arch: str, cpuinfo_text: str) -> str:
    """The host CPU variant from ``/proc/cpuinfo`` text (PLAT-4 item 1).

    Only ``arm`` and ``arm64`` have one. The first line whose text before the first
    ``:`` is ``CPU architecture`` (any case, surrounding blanks ignored) gives the
    value between that colon and the next; it maps ``8``/``aarch64`` → ``v8``, ``7``,
    ``7M``, ``?(12)``…``?(17)`` → ``v7``, ``6``, ``6TEJ`` → ``v6``, ``5``, ``5T``,
    ``5TE``, ``5TEJ`` → ``v5``, ``4``, ``4T`` → ``v4``, ``3`` → ``v3``; anything else,
    or no such line, is ``""`` (containers/image ``getCPUVariantArm``).

    >>> cpu_variant("arm64", "processor\\t: 0\\nCPU architecture: 8\\n")
    'v8'
    >>> cpu_variant("amd64", "CPU architecture: 8\\n")
    ''
    """
    if arch not in _COMPATIBLE_VARIANTS:
        return ""
    for line in cpuinfo_text.split("\n"):
        fields = line.removesuffix("\r").split(":")
        if len(fields) > 1 and fields[0].strip().casefold() == "cpu architecture":
            return _CPU_ARCHITECTURE_VARIANTS.get(fields[1].strip().lower(), "")
    return ""
