"""Platform normalisation, specifier parsing and instance wishes (PLAT-1..PLAT-4, DIV-4, DIV-5).

Expected values are the tables of behaviour-lookup.md section 4 and the examples of
DIV-5. The podman 4.3.1 rows that the reference does not list were derived from
containers/common v0.50.1 ``NormalizePlatform`` with containerd 1.6.8 and then
confirmed on the installed podman 4.3.1: ``podman --log-level debug create --arch A
--variant V <local image>`` logs ``Normalized platform linux/386/v2 to {386 linux  []
v2}`` and the like (marked "observed" below).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libimage.adapters.host import host_platform
from libimage.pure.context import Platform
from libimage.pure.platform import (
    cpu_variant,
    go_arch,
    normalize_arch,
    normalize_platform,
    parse_platform_specifier,
    platform_matches_podman,
    wanted_platforms,
)

AMD64_HOST = Platform("linux", "amd64")
ARM_HOST = Platform("linux", "arm", "v7")
ARM64_HOST = Platform("linux", "arm64", "v8")

Triple = tuple[str, str, str]

# PLAT-3, host linux/amd64: (input, seed output).
PLAT_3: list[tuple[str, Triple, Triple]] = [
    ("all-empty", ("", "", ""), ("", "", "")),
    ("os-upper", ("LINUX", "", ""), ("linux", "", "")),
    ("macos-x86_64", ("macos", "x86_64", ""), ("darwin", "amd64", "")),
    ("aarch64-alone", ("", "aarch64", ""), ("", "arm64", "")),
    ("arm64-v8", ("linux", "arm64", "v8"), ("linux", "arm64", "v8")),
    ("aarch64-8", ("linux", "aarch64", "8"), ("linux", "arm64", "v8")),
    ("arm-no-variant", ("linux", "arm", ""), ("linux", "arm", "")),
    ("arm-7", ("linux", "arm", "7"), ("linux", "arm", "v7")),
    ("arm-6", ("linux", "arm", "6"), ("linux", "arm", "v6")),
    ("arm-4", ("linux", "arm", "4"), ("linux", "arm", "4")),
    ("armhf-implied-v7-lost", ("linux", "armhf", ""), ("linux", "arm", "")),
    ("armhf-v6", ("linux", "armhf", "v6"), ("linux", "arm", "v7")),
    ("armel", ("linux", "armel", ""), ("linux", "arm", "")),
    ("i386", ("linux", "i386", ""), ("linux", "386", "")),
    ("x86_64-variant-dropped", ("linux", "x86_64", "v2"), ("linux", "amd64", "")),
    ("amd64-v2", ("linux", "amd64", "v2"), ("linux", "amd64", "v2")),
    ("amd64-upper", ("linux", "AMD64", ""), ("linux", "amd64", "")),
    ("unknown-os-garbage-variant", ("foo", "", "garbage"), ("foo", "", "garbage")),
    ("parse-failure-ampersand", ("&", "invalid", "os"), ("&", "invalid", "os")),
    ("parse-failure-dot", ("linux", "x86_64", "v1.0"), ("linux", "x86_64", "v1.0")),
    ("variant-alone-7", ("linux", "", "7"), ("linux", "", "7")),
]


class TestSeedNormalisation:
    """PLAT-1: empty inputs stay empty; given values are normalised (PLAT-3 table)."""

    @pytest.mark.parametrize(
        ("raw", "expected"), [c[1:] for c in PLAT_3], ids=[c[0] for c in PLAT_3]
    )
    def test_plat_3_amd64_host(self, raw: Triple, expected: Triple) -> None:
        assert normalize_platform(*raw, AMD64_HOST, False) == expected

    def test_plat_3_arm_host_row(self) -> None:
        """PLAT-3 last row: on arm hosts the specifier is linux/arm/7, so 7 becomes v7."""
        assert normalize_platform("linux", "", "7", ARM_HOST, False) == ("linux", "", "v7")

    def test_host_variant_is_not_used(self) -> None:
        """PLAT-1 uses HOST_OS/HOST_ARCH only (Go's runtime.GOARCH), never the CPU variant."""
        assert normalize_platform("", "", "", Platform("linux", "arm", "v6"), False) == ("", "", "")
        assert normalize_platform("linux", "", "7", Platform("linux", "arm", "v5"), False) == (
            "linux",
            "",
            "v7",
        )


# DIV-5 (podman 4.3.1), host linux/amd64.
DIV_5: list[tuple[str, Triple, Triple]] = [
    ("armhf-default-variant-kept", ("linux", "armhf", ""), ("linux", "arm", "v7")),
    ("arm-default-variant-added", ("linux", "arm", ""), ("linux", "arm", "v7")),
    ("x86_64-raw-variant-restored", ("linux", "x86_64", "v2"), ("linux", "amd64", "v2")),
    # Derived (armel's implied v6 is kept like armhf's v7).
    ("armel-default-variant-kept", ("linux", "armel", ""), ("linux", "arm", "v6")),
    # Observed: Normalize drops i386's variant, it is restored, and "386" keeps it.
    ("i386-raw-variant-restored", ("linux", "i386", "v2"), ("linux", "386", "v2")),
    # Observed: containerd 1.6.8 drops amd64 v1 at both steps.
    ("amd64-v1-dropped", ("linux", "amd64", "v1"), ("linux", "amd64", "")),
    # Observed: an amd64 host keeps a bare "7".
    ("variant-alone-7", ("", "", "7"), ("", "", "7")),
    # Unchanged from PLAT-3.
    ("all-empty", ("", "", ""), ("", "", "")),
    ("os-upper", ("LINUX", "", ""), ("linux", "", "")),
    ("aarch64-8", ("linux", "aarch64", "8"), ("linux", "arm64", "v8")),
    ("arm64-v8", ("linux", "arm64", "v8"), ("linux", "arm64", "v8")),
    ("aarch64-alone", ("", "aarch64", ""), ("", "arm64", "")),
    ("armhf-v6", ("linux", "armhf", "v6"), ("linux", "arm", "v7")),
    ("arm-4", ("linux", "arm", "4"), ("linux", "arm", "4")),
    ("parse-failure-ampersand", ("&", "invalid", "os"), ("&", "invalid", "os")),
    ("parse-failure-dot", ("linux", "x86_64", "v1.0"), ("linux", "x86_64", "v1.0")),
]


class TestPodmanNormalisation:
    """DIV-5: default variants are kept or added; a raw variant wiped by the table is restored."""

    @pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in DIV_5], ids=[c[0] for c in DIV_5])
    def test_div_5_amd64_host(self, raw: Triple, expected: Triple) -> None:
        assert normalize_platform(*raw, AMD64_HOST, True) == expected

    def test_empty_stays_empty_on_arm_host(self) -> None:
        """linux/arm (two parts) parses to arm + "", so nothing is added for an empty request."""
        assert normalize_platform("", "", "", ARM_HOST, True) == ("", "", "")

    def test_variant_alone_on_arm_host(self) -> None:
        assert normalize_platform("", "", "7", ARM_HOST, True) == ("", "", "v7")


SPECIFIERS: list[tuple[str, str, Platform | None]] = [
    ("two-parts", "linux/amd64", Platform("linux", "amd64")),
    ("arm-two-parts-drops-v7", "linux/arm", Platform("linux", "arm")),
    ("armhf-two-parts", "linux/armhf", Platform("linux", "arm")),
    ("armel-two-parts", "linux/armel", Platform("linux", "arm", "v6")),
    ("arm64-three-parts-adds-v8", "linux/arm64/8", Platform("linux", "arm64", "v8")),
    ("aarch64-three-parts", "linux/aarch64/v8", Platform("linux", "arm64", "v8")),
    ("arm64-other-variant", "linux/arm64/v9", Platform("linux", "arm64", "v9")),
    ("arm-5", "linux/arm/5", Platform("linux", "arm", "v5")),
    ("x86-64-dash", "linux/x86-64/v3", Platform("linux", "amd64")),
    ("macos", "MacOS/AMD64", Platform("darwin", "amd64")),
    ("wildcard", "linux/*", None),
    ("empty-part", "linux//v7", None),
    ("trailing-slash", "linux/amd64/", None),
    ("dot", "linux/arm/v7.1", None),
    ("space", "linux/amd 64", None),
    ("four-parts", "linux/arm/v7/x", None),
    ("empty", "", None),
]


class TestParse:
    """PLAT-2: containerd platforms.Parse (seed table)."""

    @pytest.mark.parametrize(
        ("spec", "expected"), [c[1:] for c in SPECIFIERS], ids=[c[0] for c in SPECIFIERS]
    )
    def test_specifier(self, spec: str, expected: Platform | None) -> None:
        assert parse_platform_specifier(spec) == expected

    def test_amd64_variant_tables_differ(self) -> None:
        """containerd 1.6.8 keeps amd64 levels v2..v4 and drops v1; the seed table drops all."""
        assert parse_platform_specifier("linux/x86_64/v3") == Platform("linux", "amd64")
        assert parse_platform_specifier("linux/x86_64/v3", amd64_variants=True) == Platform(
            "linux", "amd64", "v3"
        )
        assert parse_platform_specifier("linux/amd64/v1", amd64_variants=True) == Platform(
            "linux", "amd64"
        )
        assert parse_platform_specifier("linux/amd64/v1") == Platform("linux", "amd64", "v1")

    @pytest.mark.parametrize(
        ("spec", "host", "expected"),
        [
            ("linux", AMD64_HOST, Platform("linux", "amd64")),
            ("LINUX", ARM_HOST, Platform("linux", "arm")),
            ("linux", Platform("linux", "arm", "v6"), Platform("linux", "arm", "v6")),
            ("aarch64", AMD64_HOST, Platform("linux", "arm64")),
            ("armhf", AMD64_HOST, Platform("linux", "arm")),
            ("nonsense", AMD64_HOST, None),
        ],
        ids=["os", "os-arm-v7-host", "os-arm-v6-host", "arch", "armhf", "unknown"],
    )
    def test_one_part(self, spec: str, host: Platform, expected: Platform | None) -> None:
        assert parse_platform_specifier(spec, host=host) == expected

    def test_one_part_without_host_is_a_caller_bug(self) -> None:
        with pytest.raises(ValueError, match="needs the host platform"):
            parse_platform_specifier("linux")

    def test_ios_is_known_only_in_containerd_1_6(self) -> None:
        assert parse_platform_specifier("ios", host=AMD64_HOST) is None
        assert parse_platform_specifier("ios", host=AMD64_HOST, amd64_variants=True) == Platform(
            "ios", "amd64"
        )


class TestNormalizeArchTable:
    """PLAT-2 table rows, one per row."""

    @pytest.mark.parametrize(
        ("arch", "variant", "expected"),
        [
            ("i386", "v2", ("386", "")),
            ("x86_64", "v2", ("amd64", "")),
            ("X86-64", "", ("amd64", "")),
            ("aarch64", "8", ("arm64", "")),
            ("arm64", "v8", ("arm64", "")),
            ("arm64", "v9", ("arm64", "v9")),
            ("armhf", "v6", ("arm", "v7")),
            ("armel", "", ("arm", "v6")),
            ("arm", "", ("arm", "v7")),
            ("arm", "7", ("arm", "v7")),
            ("arm", "8", ("arm", "v8")),
            ("arm", "V6", ("arm", "v6")),
            ("ARM", "x", ("arm", "x")),
            ("PPC64LE", "Q", ("ppc64le", "q")),
        ],
        ids=repr,
    )
    def test_row(self, arch: str, variant: str, expected: tuple[str, str]) -> None:
        assert normalize_arch(arch, variant) == expected


class TestWantedPlatforms:
    """PLAT-4 examples; the list holds (wantedOS, wantedArch, v) for each variant."""

    @pytest.mark.parametrize(
        ("arch", "variant", "host", "expected"),
        [
            ("arm", "v7", AMD64_HOST, ["v7", "v6", "v5", ""]),
            ("arm", "", AMD64_HOST, ["", "v8", "v7", "v6", "v5"]),
            ("amd64", "", AMD64_HOST, [""]),
            ("arm64", "v8", AMD64_HOST, ["v8", ""]),
            ("amd64", "v3", AMD64_HOST, ["v3", ""]),
            ("arm", "v4", AMD64_HOST, ["v4", ""]),
            ("", "", AMD64_HOST, [""]),
            ("", "", ARM64_HOST, ["v8", ""]),
            ("", "", Platform("linux", "arm", "v6"), ["v6", "v5", ""]),
            ("", "v5", Platform("linux", "arm", "v7"), ["v5", ""]),
            # An explicit architecture never takes the host CPU variant, even the host's own.
            ("arm64", "", ARM64_HOST, ["", "v8"]),
            # Only arm hosts have a CPU variant (containers/image getCPUVariant).
            ("", "", Platform("linux", "amd64", "v3"), [""]),
        ],
        ids=[
            "arm-v7",
            "arm-none",
            "amd64-none",
            "arm64-v8",
            "amd64-v3",
            "arm-v4-not-in-table",
            "host-amd64",
            "host-arm64-cpu-v8",
            "host-arm-cpu-v6",
            "host-arm-variant-choice",
            "explicit-arch-ignores-host-variant",
            "non-arm-host-variant-ignored",
        ],
    )
    def test_variants(self, arch: str, variant: str, host: Platform, expected: list[str]) -> None:
        platforms = wanted_platforms(arch, "", variant, host)
        assert [p.variant for p in platforms] == expected
        assert {(p.os, p.architecture) for p in platforms} == {("linux", arch or host.architecture)}

    def test_os_choice(self) -> None:
        assert wanted_platforms("", "windows", "", AMD64_HOST) == (Platform("windows", "amd64"),)


class TestHostHelpers:
    """Host facts as values: uname machine names and /proc/cpuinfo (PLAT-4 item 1)."""

    @pytest.mark.parametrize(
        ("machine", "expected"),
        [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("armv7l", "arm"),
            ("armv6l", "arm"),
            ("i686", "386"),
            ("i386", "386"),
            ("ppc64le", "ppc64le"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
            ("loongarch64", "loong64"),
            ("AMD64", "amd64"),
        ],
    )
    def test_go_arch(self, machine: str, expected: str) -> None:
        assert go_arch(machine) == expected

    @pytest.mark.parametrize(
        ("arch", "text", "expected"),
        [
            ("arm64", "processor\t: 0\nCPU architecture: 8\nCPU variant\t: 0x0\n", "v8"),
            ("arm", "model name\t: ARMv7 Processor rev 4 (v7l)\nCPU architecture: 7\n", "v7"),
            ("arm", "CPU architecture: 7M\n", "v7"),
            ("arm", "CPU architecture: ?(12)\n", "v7"),
            ("arm", "CPU architecture: 6TEJ\n", "v6"),
            ("arm", "CPU architecture: 5TE\n", "v5"),
            ("arm", "CPU architecture: 4T\n", "v4"),
            ("arm", "CPU architecture: 3\n", "v3"),
            ("arm64", "Cpu Architecture : AArch64\r\n", "v8"),
            ("arm", "CPU architecture: 9\n", ""),
            ("arm", "processor: 0\n", ""),
            ("arm64", "CPU architecture: 8\nCPU architecture: 7\n", "v8"),
            ("amd64", "CPU architecture: 8\n", ""),
        ],
        ids=[
            "arm64",
            "arm-7",
            "7M",
            "?(12)",
            "6TEJ",
            "5TE",
            "4T",
            "3",
            "case-and-crlf",
            "unknown",
            "missing",
            "first-line-wins",
            "not-arm",
        ],
    )
    def test_cpu_variant(self, arch: str, text: str, expected: str) -> None:
        assert cpu_variant(arch, text) == expected


class TestPodmanMatch:
    """DIV-4: both sides normalised (containerd 1.6.8), empty OS/arch defaulted to the host."""

    @pytest.mark.parametrize(
        ("wanted", "image", "host", "expected"),
        [
            (Platform("", "", ""), Platform("linux", "amd64"), AMD64_HOST, True),
            (Platform("", "", ""), Platform("", "", ""), AMD64_HOST, True),
            (Platform("", "arm64", ""), Platform("linux", "amd64"), AMD64_HOST, False),
            (Platform("", "arm64", "v8"), Platform("linux", "arm64", ""), AMD64_HOST, True),
            (Platform("", "arm", "v7"), Platform("linux", "arm", ""), AMD64_HOST, True),
            (Platform("", "arm", "v6"), Platform("linux", "arm", ""), AMD64_HOST, False),
            (Platform("", "", ""), Platform("linux", "arm", ""), ARM_HOST, True),
            (Platform("", "", ""), Platform("linux", "arm", "v6"), ARM_HOST, False),
            (Platform("linux", "amd64", ""), Platform("LINUX", "x86_64", ""), AMD64_HOST, True),
            (Platform("", "amd64", "v2"), Platform("linux", "amd64", ""), AMD64_HOST, False),
            (Platform("", "", "v2"), Platform("linux", "amd64", "v1"), AMD64_HOST, False),
            (Platform("windows", "", ""), Platform("linux", "amd64", ""), AMD64_HOST, False),
            # A side that does not parse is a fatal error upstream that the caller drops.
            (Platform("", "arm64", ""), Platform("linux", "amd64", "v1.0"), AMD64_HOST, True),
        ],
        ids=[
            "default-matches-host-image",
            "image-without-platform",
            "arch-differs",
            "arm64-v8-vs-none",
            "arm-v7-vs-none",
            "arm-v6-vs-none",
            "arm-host-default",
            "arm-host-v6-image",
            "case-and-alias",
            "amd64-level",
            "amd64-v1-is-none",
            "os-differs",
            "unparsable-image",
        ],
    )
    def test_match(self, wanted: Platform, image: Platform, host: Platform, expected: bool) -> None:
        assert platform_matches_podman(wanted, image, host) is expected


# Small pools so that table rows collide with generated values.
_OS = st.sampled_from(["", "linux", "LINUX", "macos", "windows", "foo", "&"])
_ARCH = st.sampled_from(
    ["", "amd64", "x86_64", "X86-64", "i386", "386", "arm", "armhf", "armel", "arm64", "aarch64"]
)
_VARIANT = st.sampled_from(["", "v1", "v2", "v5", "v6", "7", "v7", "8", "v8", "V8", "x", "v1.0"])
_HOST = st.sampled_from([AMD64_HOST, ARM_HOST, ARM64_HOST, Platform("linux", "386")])


@pytest.mark.property
@given(os_name=_OS, arch=_ARCH, variant=_VARIANT, host=_HOST, keep=st.booleans())
def test_normalisation_is_idempotent(
    os_name: str, arch: str, variant: str, host: Platform, keep: bool
) -> None:
    """PLAT-1/DIV-5: normalising a normalised triple changes nothing, in both profiles."""
    once = normalize_platform(os_name, arch, variant, host, keep)
    assert normalize_platform(*once, host, keep) == once


@pytest.mark.property
@given(os_name=_OS, arch=_ARCH, variant=_VARIANT, host=_HOST)
def test_seed_keeps_empty_empty(os_name: str, arch: str, variant: str, host: Platform) -> None:
    """PLAT-1 step 4: an empty input is an empty output in the seed profile."""
    result = normalize_platform(os_name, arch, variant, host, False)
    for given_value, normalised in zip((os_name, arch, variant), result, strict=True):
        if not given_value:
            assert normalised == ""


@pytest.mark.property
@given(os_name=_OS, arch=_ARCH, variant=_VARIANT, host=_HOST)
def test_podman_keeps_empty_os_and_arch_empty(
    os_name: str, arch: str, variant: str, host: Platform
) -> None:
    """DIV-5: only the variant may be filled in; OS and architecture stay empty when not given."""
    result = normalize_platform(os_name, arch, variant, host, True)
    assert (result[0] == "") == (os_name == "")
    assert (result[1] == "") == (arch == "")


@pytest.mark.property
@given(
    wanted=st.builds(Platform, _OS, _ARCH, _VARIANT),
    image=st.builds(Platform, _OS, _ARCH, _VARIANT),
    host=_HOST,
)
def test_podman_match_is_reflexive_and_symmetric(
    wanted: Platform, image: Platform, host: Platform
) -> None:
    """DIV-4: the matcher normalises both sides the same way."""
    assert platform_matches_podman(wanted, wanted, host)
    assert platform_matches_podman(wanted, image, host) == platform_matches_podman(
        image, wanted, host
    )


@pytest.mark.property
@given(
    arch=st.sampled_from(["", "amd64", "arm", "arm64", "386"]),
    variant=st.sampled_from(["", "v5", "v6", "v7", "v8", "v3"]),
    os_choice=st.sampled_from(["", "linux", "windows"]),
    host=_HOST,
)
def test_wanted_platforms_have_exactly_one_empty_variant(
    arch: str, variant: str, os_choice: str, host: Platform
) -> None:
    """PLAT-4 step 4: a candidate with an empty variant is always there, once, first or last."""
    variants = [p.variant for p in wanted_platforms(arch, os_choice, variant, host)]
    assert variants.count("") == 1
    assert variants[0] == "" or variants[-1] == ""
    assert len(set(variants)) == len(variants)


class TestHostAdapter:
    """adapters.host: uname and /proc/cpuinfo become the host Platform (PLAT-4 item 1)."""

    def test_this_machine(self) -> None:
        expected_arch = go_arch(os.uname().machine)
        host = host_platform()
        assert (host.os, host.architecture) == ("linux", expected_arch)
        if expected_arch not in ("arm", "arm64"):
            assert host.variant == ""

    @pytest.mark.parametrize(
        ("machine", "cpuinfo", "expected"),
        [
            ("aarch64", "CPU architecture: 8\n", Platform("linux", "arm64", "v8")),
            ("armv7l", "CPU architecture: 7\n", Platform("linux", "arm", "v7")),
            ("armv6l", None, Platform("linux", "arm", "")),
            ("x86_64", "CPU architecture: 8\n", Platform("linux", "amd64", "")),
        ],
        ids=["arm64", "arm-v7", "arm-no-cpuinfo", "amd64-ignores-cpuinfo"],
    )
    def test_arm_variant_from_cpuinfo(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        machine: str,
        cpuinfo: str | None,
        expected: Platform,
    ) -> None:
        monkeypatch.setattr(platform, "machine", lambda: machine)
        path = tmp_path / "cpuinfo"
        if cpuinfo is not None:
            path.write_text(cpuinfo)
        assert host_platform(path) == expected
