"""The benchmark suite's tools: measuring, growth, formatting, the plot, the report logic.

``bench/measure.py``, ``bench/plot.py`` and the decision logic of ``bench/run.py``
(which podman runs are skipped, how outputs are compared, how targets are judged)
on tiny inputs. Expected values follow from the definitions (a power law has the
exponent it was built with, a decade is one tick apart), never from a benchmark
run. Nothing here asserts how fast anything is. One differential test runs the
suite's command lines with both tools on a small synthesised store.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from bench.measure import (
    CommandRun,
    Stats,
    format_count,
    format_ratio,
    format_rss,
    format_seconds,
    growth_exponent,
    loglog_slope,
    predict_seconds,
    run_command,
    time_calls,
    time_calls_on,
    time_per_call,
)
from bench.plot import LogAxis, Panel, Series, render_svg, seconds_label, size_label
from bench.run import (
    CACHED,
    LIBIMAGE,
    NO_CACHE,
    PODMAN,
    RACY_SECONDS,
    READ_KEYS,
    Cell,
    Operation,
    Results,
    Samples,
    Settings,
    Suite,
    cache_files,
    cache_state,
    check_runroot,
    command_argv,
    command_env,
    evaluate_targets,
    operations,
    outputs_agree,
    ratio_bound,
    render_markdown,
    render_plot,
    run_roots,
    why_not_pristine,
)

SVG = "{http://www.w3.org/2000/svg}"
SAMPLES = Samples(
    full_name="localhost/app:1",
    short_name="app:1",
    id_prefix="0123456789ab",
    missing_name="localhost/none:never",
    names_to_remove=tuple(f"localhost/r{i}:1" for i in range(150)),
    reference_pattern="quay.io/org/*",
)


# --------------------------------------------------------------------------- statistics


class TestStats:
    """Median, minimum, maximum and count of a series."""

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ([5.0], Stats(5.0, 5.0, 5.0, 1)),
            ([3.0, 1.0, 2.0], Stats(2.0, 1.0, 3.0, 3)),
            ([4.0, 1.0, 3.0, 2.0], Stats(2.5, 1.0, 4.0, 4)),
        ],
        ids=["single", "odd", "even"],
    )
    def test_of(self, values: list[float], expected: Stats) -> None:
        assert Stats.of(values) == expected

    def test_empty_series_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no values"):
            Stats.of([])


class TestGrowth:
    """``t = c * N**k`` through two points gives back ``k``; predictions extrapolate it."""

    @pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0, 3.0], ids=str)
    def test_exponent_of_a_power_law(self, exponent: float) -> None:
        def law(n: int) -> float:
            return 0.002 * math.pow(n, exponent)

        assert growth_exponent((1_000, law(1_000)), (30_000, law(30_000))) == pytest.approx(
            exponent
        )

    @pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0], ids=str)
    def test_fitted_slope_of_a_power_law(self, exponent: float) -> None:
        points = [(n, 0.01 * math.pow(n, exponent)) for n in (1_000, 3_000, 10_000, 100_000)]
        assert loglog_slope(points) == pytest.approx(exponent)

    def test_fitted_slope_dampens_one_noisy_size(self) -> None:
        """A linear series whose 3,000 point is twice too slow: the fit stays near 1."""
        points = [(1_000, 1.0), (3_000, 6.0), (10_000, 10.0), (100_000, 100.0)]
        steps = [growth_exponent(a, b) for a, b in itertools.pairwise(points)]
        assert max(steps) > 1.6
        assert 0.9 < loglog_slope(points) < 1.1

    def test_fitted_slope_needs_two_sizes(self) -> None:
        with pytest.raises(ValueError, match="two"):
            loglog_slope([(1_000, 1.0)])
        with pytest.raises(ValueError, match="two different sizes"):
            loglog_slope([(1_000, 1.0), (1_000, 2.0)])

    @pytest.mark.parametrize(
        ("small", "large"),
        [((1_000, 1.0), (1_000, 2.0)), ((0, 1.0), (10, 2.0)), ((10, 0.0), (100, 1.0))],
        ids=["same-size", "zero-size", "zero-time"],
    )
    def test_bad_points_are_refused(
        self, small: tuple[int, float], large: tuple[int, float]
    ) -> None:
        with pytest.raises(ValueError, match="need 0 < N1 < N2"):
            growth_exponent(small, large)

    @pytest.mark.parametrize(
        ("points", "size", "expected"),
        [
            ([], 1_000, None),
            ([(100, 0.5)], 1_000, 5.0),  # one point: linear
            ([(1_000, 6.0), (3_000, 54.0)], 9_000, 486.0),  # quadratic
            ([(100, 1.0), (1_000, 2.0)], 10_000, 20.0),  # sub-linear is floored at linear
            ([(100, 1.0), (1_000, 100.0), (10_000, 1_000.0)], 100_000, 10_000.0),  # last two
        ],
        ids=["none", "one-point", "quadratic", "floored", "last-two"],
    )
    def test_predict(
        self, points: list[tuple[int, float]], size: int, expected: float | None
    ) -> None:
        predicted = predict_seconds(points, size)
        if expected is None:
            assert predicted is None
        else:
            assert predicted == pytest.approx(expected)


class TestFormatting:
    """Three significant digits, readable units; sizes with separators."""

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (0.0000123, "12.3 µs"),
            (0.000999, "999 µs"),
            (0.00123, "1.23 ms"),
            (0.5, "500 ms"),
            (1.0, "1.00 s"),
            (58.26, "58.3 s"),
            (1234.0, "1234 s"),
        ],
        ids=str,
    )
    def test_seconds(self, seconds: float, text: str) -> None:
        assert format_seconds(seconds) == text

    @pytest.mark.parametrize(
        ("kib", "text"),
        [(1024, "1.00 MiB"), (25_600, "25.0 MiB"), (10 * 1024 * 1024, "10.0 GiB")],
        ids=str,
    )
    def test_rss(self, kib: int, text: str) -> None:
        assert format_rss(kib) == text

    @pytest.mark.parametrize(
        ("ratio", "text"),
        [(0.0004, "4.0e-04"), (0.0456, "0.046"), (0.5, "0.50"), (3.14, "3.1"), (42.0, "42")],
        ids=str,
    )
    def test_ratio(self, ratio: float, text: str) -> None:
        assert format_ratio(ratio) == text

    def test_count(self) -> None:
        assert [format_count(n) for n in (100, 3_000, 100_000)] == ["100", "3,000", "100,000"]


# --------------------------------------------------------------------------- running things


class TestRunCommand:
    """A child's exit, output, CPU time and peak memory come from its own rusage."""

    def test_exit_code_and_output(self) -> None:
        code = "import sys; print('out'); print('err', file=sys.stderr); raise SystemExit(7)"
        run = run_command([sys.executable, "-c", code])
        assert (run.returncode, run.stdout, run.stderr, run.timed_out) == (
            7,
            "out\n",
            "err\n",
            False,
        )

    def test_peak_memory_is_the_childs(self) -> None:
        """A child that touches 96 MiB peaks above that; an idle one far below."""
        touch = "b = bytearray(96 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1"
        big = run_command([sys.executable, "-c", touch])
        small = run_command([sys.executable, "-c", "pass"])
        assert big.max_rss_kib >= 96 * 1024
        assert small.max_rss_kib < 64 * 1024

    def test_peak_memory_ignores_a_large_parent(self) -> None:
        """Linux counts the forked copy of the parent as the child's peak: not ours."""
        ballast = bytearray(256 * 1024 * 1024)
        for offset in range(0, len(ballast), 4096):
            ballast[offset] = 1
        small = run_command([sys.executable, "-c", "pass"])
        assert len(ballast) == 256 * 1024 * 1024  # still alive while the child ran
        assert small.max_rss_kib < 64 * 1024

    def test_cpu_time_is_counted(self) -> None:
        busy = run_command([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"])
        assert busy.cpu_seconds > 0

    def test_timeout_kills_the_process_group(self, tmp_path: Path) -> None:
        """The child and its own child are both killed; the run says it timed out."""
        marker = tmp_path / "grandchild.pid"
        script = f"sleep 60 & echo $! > {marker}; wait"
        run = run_command(["sh", "-c", script], timeout=0.5)
        assert run.timed_out
        assert run.returncode == -9
        grandchild = int(marker.read_text())
        # Reaped by init once killed; a live process would still be listed.
        state = Path(f"/proc/{grandchild}/stat")
        assert not state.exists() or state.read_text().split()[2] in {"Z", "X"}


class TestTimingHelpers:
    """The helpers call what they time the stated number of times."""

    def test_time_calls_counts(self) -> None:
        calls: list[int] = []
        assert len(time_calls(lambda: calls.append(1), 4)) == 4
        assert len(calls) == 4

    def test_setup_feeds_the_call(self) -> None:
        made: list[int] = []
        seen: list[int] = []

        def setup() -> int:
            made.append(len(made))
            return made[-1]

        values = time_calls_on(setup, seen.append, 3)
        assert (len(values), made, seen) == (3, [0, 1, 2], [0, 1, 2])

    def test_budget_stops_repetitions(self) -> None:
        calls: list[int] = []
        assert len(time_calls(lambda: calls.append(1), 10, budget=0.0)) == 1
        assert calls == [1]

    def test_time_per_call_batches(self) -> None:
        calls: list[int] = []
        values = time_per_call(lambda: calls.append(1), 3, min_batch_seconds=0.0)
        # The first batch of one call is already long enough: 3 batches of 1.
        assert (len(values), len(calls)) == (3, 3)

    @pytest.mark.parametrize("repeat", [0, -1], ids=str)
    def test_repeat_must_be_positive(self, repeat: int) -> None:
        with pytest.raises(ValueError, match="repeat"):
            time_calls(lambda: None, repeat)
        with pytest.raises(ValueError, match="repeat"):
            time_per_call(lambda: None, repeat)


# --------------------------------------------------------------------------- the plot


class TestLogAxis:
    """Whole decades, equally spaced; values in between at their logarithm."""

    @pytest.mark.parametrize(
        ("values", "decades"),
        [
            ([100, 100_000], (2, 5)),
            ([150, 2_000], (2, 4)),
            ([0.00002, 3.0], (-5, 1)),
            ([5.0], (0, 1)),
            ([], (0, 1)),
        ],
        ids=["exact", "between", "small", "single", "empty"],
    )
    def test_covering(self, values: list[float], decades: tuple[int, int]) -> None:
        axis = LogAxis.covering(values, 0.0, 100.0)
        assert (axis.low, axis.high) == decades

    def test_positions(self) -> None:
        axis = LogAxis.covering([100, 10_000], 50.0, 250.0)
        assert axis.position(100) == pytest.approx(50.0)
        assert axis.position(1_000) == pytest.approx(150.0)
        assert axis.position(10_000) == pytest.approx(250.0)
        assert axis.position(3_000) == pytest.approx(50.0 + 200.0 * (math.log10(30) / 2))

    def test_reversed_pixels_for_the_y_axis(self) -> None:
        axis = LogAxis.covering([0.001, 1.0], 400.0, 100.0)
        assert axis.position(0.001) == pytest.approx(400.0)
        assert axis.position(1.0) == pytest.approx(100.0)

    @pytest.mark.parametrize(
        ("exponent", "text"), [(0, "1"), (2, "100"), (3, "1k"), (4, "10k"), (6, "1M")], ids=str
    )
    def test_size_labels(self, exponent: int, text: str) -> None:
        assert size_label(exponent) == text

    @pytest.mark.parametrize(
        ("exponent", "text"),
        [(-6, "1 µs"), (-4, "100 µs"), (-3, "1 ms"), (-2, "10 ms"), (0, "1 s"), (3, "1000 s")],
        ids=str,
    )
    def test_seconds_labels(self, exponent: int, text: str) -> None:
        assert seconds_label(exponent) == text


def _points(element: ET.Element) -> list[tuple[float, float]]:
    pairs = element.attrib["points"].split()
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in pairs)]


class TestSvg:
    """The figure is well-formed SVG with one line per series, drawn on log axes."""

    @pytest.fixture
    def tree(self) -> ET.Element:
        panel = Panel(
            "commands",
            (
                Series("images", "#111111", ((100, 0.1), (1_000, 1.0), (10_000, 10.0))),
                Series(
                    "images",
                    "#111111",
                    ((100, 0.2), (1_000, 20.0)),
                    dashed=True,
                    lower_bounds=((10_000, 480.0),),
                ),
            ),
        )
        other = Panel("steps", (Series("load", "#222222", ((100, 0.001), (10_000, 0.1))),))
        return ET.fromstring(render_svg([panel, other], title="t", subtitle="s"))

    def test_one_polyline_per_series(self, tree: ET.Element) -> None:
        lines = tree.findall(f"{SVG}polyline")
        assert [line.attrib["data-series"] for line in lines] == [
            "images",
            "images (dashed)",
            "load",
        ]
        assert "stroke-dasharray" in lines[1].attrib
        assert "stroke-dasharray" not in lines[0].attrib

    def test_linear_series_is_a_straight_line_on_log_axes(self, tree: ET.Element) -> None:
        """Equal steps in log N and log t: equal pixel steps (a straight line)."""
        (x1, y1), (x2, y2), (x3, y3) = _points(tree.findall(f"{SVG}polyline")[0])
        assert x1 < x2 < x3
        assert y1 > y2 > y3  # larger times are higher up
        assert x2 - x1 == pytest.approx(x3 - x2, abs=0.11)
        assert y1 - y2 == pytest.approx(y2 - y3, abs=0.11)

    def test_panels_share_the_x_decades(self, tree: ET.Element) -> None:
        first = _points(tree.findall(f"{SVG}polyline")[0])
        steps = _points(tree.findall(f"{SVG}polyline")[2])
        # N=100 and N=10,000 sit at the same offsets inside their panels.
        assert steps[-1][0] - steps[0][0] == pytest.approx(first[2][0] - first[0][0], abs=0.11)

    def test_killed_runs_are_marked(self, tree: ET.Element) -> None:
        marks = [p for p in tree.iter(f"{SVG}path") if "data-lower-bound" in p.attrib]
        assert [m.attrib["data-lower-bound"] for m in marks] == ["images (dashed)"]

    def test_text_is_escaped(self) -> None:
        svg = render_svg([Panel("a < b & c", ())], title="x")
        assert "a &lt; b &amp; c" in svg
        ET.fromstring(svg)


# --------------------------------------------------------------------------- the suite's logic


class TestOperations:
    """The commands of issue #7, with podman's equivalents."""

    def test_keys_and_podman_commands(self) -> None:
        ops = {op.key: op for op in operations(SAMPLES)}
        assert ops["lookup"].podman_args == (
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "localhost/app:1",
        )
        assert ops["exists-id"].podman_args == ("image", "exists", "0123456789ab")
        assert ops["exists-missing"].expect_exit == 1
        assert ops["images-reference"].libimage_args == (
            "images",
            "--filter",
            "reference=quay.io/org/*",
        )
        assert ops["rmi-all"].podman_args == ("rmi", "-a", "-f")

    def test_rmi_of_100_names_in_one_call(self) -> None:
        ops = {op.key: op for op in operations(SAMPLES)}
        assert ops["rmi-100"].libimage_args == ("rmi", *SAMPLES.names_to_remove[:100])
        assert ops["rmi-1"].libimage_args == ("rmi", "localhost/r0:1")
        assert all(ops[key].removes for key in ("rmi-1", "rmi-100", "rmi-all"))
        assert not any(ops[key].removes for key in READ_KEYS)

    def test_both_tools_get_the_same_store(self) -> None:
        op = operations(SAMPLES)[0]
        for tool in (CACHED, NO_CACHE, LIBIMAGE, PODMAN):
            argv = command_argv(tool, op, Path("/s/root"), Path("/s/run"))
            flags = argv[argv.index("--root") : argv.index("--root") + 6]
            assert flags == ["--root", "/s/root", "--runroot", "/s/run", "--storage-driver", "vfs"]
        for tool in (CACHED, NO_CACHE, LIBIMAGE):
            assert "podman-4.3" in command_argv(tool, op, Path("/r"), Path("/rr"))
        assert "podman-4.3" not in command_argv(PODMAN, op, Path("/r"), Path("/rr"))

    def test_reading_commands_run_cached_and_uncached(self) -> None:
        """Reading commands: libimage twice (cached, no cache) and podman; removals: once."""
        for op in operations(SAMPLES):
            if op.removes:
                assert (op.tools, op.libimage_tool) == ((LIBIMAGE, PODMAN), LIBIMAGE)
            else:
                assert (op.tools, op.libimage_tool) == ((CACHED, NO_CACHE, PODMAN), CACHED)


class TestCommandEnv:
    """libimage's variants differ only in the environment: the cache directory and the switch."""

    BASE: ClassVar[dict[str, str]] = {
        "HOME": "/h",
        "LIBIMAGE_NO_CACHE": "1",
        "LIBIMAGE_CACHE_DIR": "/elsewhere",
    }

    def test_cached_has_the_cache_directory_and_no_switch(self) -> None:
        env = command_env(CACHED, Path("/c"), self.BASE)
        assert env == {"HOME": "/h", "LIBIMAGE_CACHE_DIR": "/c"}

    def test_no_cache_sets_the_switch(self) -> None:
        env = command_env(NO_CACHE, Path("/c"), self.BASE)
        assert env == {"HOME": "/h", "LIBIMAGE_NO_CACHE": "1", "LIBIMAGE_CACHE_DIR": "/c"}

    def test_removals_use_the_cache_directory_as_a_user_would(self) -> None:
        assert command_env(LIBIMAGE, Path("/c"), {"HOME": "/h"}) == {
            "HOME": "/h",
            "LIBIMAGE_CACHE_DIR": "/c",
        }

    def test_podman_gets_the_environment_unchanged(self) -> None:
        assert command_env(PODMAN, Path("/c"), self.BASE) == self.BASE


class TestCacheState:
    """A cache file written (by rename, as libimage writes them) changes the state."""

    def test_rewrite_by_rename_is_seen(self, tmp_path: Path) -> None:
        (tmp_path / "k.sqlite").write_bytes(b"x" * 10)
        before = cache_state(tmp_path)
        assert cache_state(tmp_path) == before
        (tmp_path / "k.sqlite.1.tmp").write_bytes(b"x" * 10)
        (tmp_path / "k.sqlite.1.tmp").replace(tmp_path / "k.sqlite")
        assert cache_state(tmp_path) != before

    def test_new_file_is_seen(self, tmp_path: Path) -> None:
        before = cache_state(tmp_path)
        (tmp_path / "k.facts").write_bytes(b"")
        assert cache_state(tmp_path) != before

    def test_missing_directory(self, tmp_path: Path) -> None:
        assert cache_state(tmp_path / "none") == {}
        assert cache_files(tmp_path / "none") == []

    def test_cache_files_skip_temporaries(self, tmp_path: Path) -> None:
        (tmp_path / "k.facts").write_bytes(b"abc")
        (tmp_path / "k.facts.7.tmp").write_bytes(b"abcdef")
        assert cache_files(tmp_path) == [(tmp_path / "k.facts", 3)]


class TestRunRoots:
    """Every run root of a size is known before the run, so a long one fails at the start."""

    def test_short_out_dir_passes(self) -> None:
        for runroot in run_roots(Path("/o"), 100_000, 1, 5):
            check_runroot(runroot)

    def test_every_copy_is_listed(self) -> None:
        names = {p.parent.name for p in run_roots(Path("/o"), 10, 1, 2)}
        assert names == {"n10-s1", "read-l", "read-p", "l0", "l1", "p0", "p1"}

    def test_long_out_dir_is_refused(self) -> None:
        """/xxx…/work/n100000/read-l/run: 31 + 24 characters, over podman's 50."""
        read_copy = run_roots(Path("/" + "x" * 30), 100_000, 1, 1)[1]
        with pytest.raises(SystemExit, match="longer than 50 characters"):
            check_runroot(read_copy)


class TestPristine:
    """A cached store is reused only from the same synthesiser and never after podman ran."""

    def test_reusable(self, tmp_path: Path) -> None:
        assert why_not_pristine({"synth": "abc"}, "abc", tmp_path) is None

    def test_other_synthesiser(self, tmp_path: Path) -> None:
        reason = why_not_pristine({"synth": "old"}, "abc", tmp_path)
        assert reason is not None
        assert "another version" in reason

    def test_podman_ran_on_it(self, tmp_path: Path) -> None:
        (tmp_path / "libpod").mkdir()
        reason = why_not_pristine({"synth": "abc"}, "abc", tmp_path)
        assert reason is not None
        assert "libpod" in reason


def _run(stdout: str, code: int = 0) -> CommandRun:
    return CommandRun((), 0.0, 0.0, 0, code, stdout, "")


class TestOutputsAgree:
    """Listings compare as sorted lines, exists by exit code, lookup by its output."""

    LINES = Operation("l", "l", (), (), "lines")
    EXIT = Operation("e", "e", (), (), "exit", expect_exit=1)
    STDOUT = Operation("s", "s", (), (), "stdout")

    @pytest.mark.parametrize(
        ("op", "ours", "theirs", "agree"),
        [
            (LINES, _run("b\na\n"), _run("a\nb\n"), True),
            (LINES, _run("a\n"), _run("a\nb\n"), False),
            (LINES, _run("a\n", 1), _run("a\n", 0), False),
            (EXIT, _run("", 1), _run("", 1), True),
            (EXIT, _run("", 0), _run("", 0), False),  # both found what must be missing
            (STDOUT, _run("abc\n"), _run("abc"), True),
            (STDOUT, _run("abc\n"), _run("abd\n"), False),
        ],
        ids=[
            "order-ignored",
            "missing-line",
            "exit-differs",
            "both-missing",
            "unexpected-exit",
            "same-id",
            "other-id",
        ],
    )
    def test_cases(self, op: Operation, ours: CommandRun, theirs: CommandRun, agree: bool) -> None:
        assert (outputs_agree(op, ours, theirs) is None) == agree


def _suite(budget: float, cells: list[Cell]) -> Suite:
    settings = Settings(
        sizes=(1_000, 3_000, 10_000, 100_000),
        repeat=3,
        budget=budget,
        seed=1,
        out_dir=Path("/nonexistent"),
        output_dir=Path("/nonexistent"),
        profile_sizes=(),
        resume=False,
        command="test",
    )
    results = Results()
    for cell in cells:
        results.cells[(cell.op, cell.size, cell.tool)] = cell
    return Suite(settings, results)


class TestPodmanBudget:
    """podman's series stops where a run passes the budget or growth predicts it would."""

    def test_first_size_always_runs(self) -> None:
        assert _suite(100.0, []).podman_skip_reason("images", 1_000) is None

    def test_quadratic_growth_predicted_over_twice_the_budget(self) -> None:
        suite = _suite(
            100.0,
            [
                Cell("images", 1_000, PODMAN, seconds=[6.0]),
                Cell("images", 3_000, PODMAN, seconds=[54.0]),
            ],
        )
        # 54 s * (10/3)**2 = 600 s > 2 * 100 s.
        reason = suite.podman_skip_reason("images", 10_000)
        assert reason is not None
        assert reason.startswith("podman not run at 10,000: 3,000 took 54.0 s and grows as N^2.0")

    def test_prediction_within_twice_the_budget_runs(self) -> None:
        suite = _suite(100.0, [Cell("exists-full", 1_000, PODMAN, seconds=[15.0])])
        assert suite.podman_skip_reason("exists-full", 10_000) is None  # 150 s <= 200 s

    def test_a_run_over_the_budget_ends_the_series(self) -> None:
        suite = _suite(100.0, [Cell("rmi-all", 1_000, PODMAN, seconds=[120.0, 90.0])])
        reason = suite.podman_skip_reason("rmi-all", 100_000)
        assert reason is not None
        assert "one run at 1,000 took 120 s, over the 100 s budget" in reason

    def test_a_killed_run_ends_the_series(self) -> None:
        suite = _suite(100.0, [Cell("images", 1_000, PODMAN, status="timed-out", seconds=[200.0])])
        reason = suite.podman_skip_reason("images", 3_000)
        assert reason is not None
        assert "stopped after 200 s" in reason

    def test_libimage_cells_do_not_count(self) -> None:
        suite = _suite(100.0, [Cell("images", 1_000, LIBIMAGE, seconds=[500.0])])
        assert suite.podman_skip_reason("images", 3_000) is None


class TestTargets:
    """Targets are judged on medians of the variant they name; 'not measured' when absent."""

    def _results(self) -> Results:
        results = Results()
        for cell in (
            Cell("images", 1_000, CACHED, seconds=[1.0, 1.2, 0.9]),
            Cell("images", 1_000, NO_CACHE, seconds=[2.0]),
            Cell("images", 1_000, PODMAN, seconds=[30.0]),
            Cell("images", 10_000, CACHED, seconds=[2.0]),
            Cell("images", 10_000, NO_CACHE, seconds=[0.5]),
            Cell("images", 10_000, PODMAN, seconds=[400.0]),
            Cell("exists-full", 10_000, CACHED, seconds=[0.1]),
            Cell("exists-full", 10_000, NO_CACHE, seconds=[0.6]),
            Cell("exists-full", 10_000, PODMAN, seconds=[1.0]),
            Cell("exists-full", 100_000, CACHED, seconds=[0.09]),
            Cell("exists-full", 100_000, NO_CACHE, seconds=[5.0]),
            Cell("lookup", 100_000, CACHED, seconds=[0.2]),
            Cell("lookup", 100_000, NO_CACHE, seconds=[0.05]),
            Cell("rmi-all", 1_000, LIBIMAGE, seconds=[10.0]),
            Cell("rmi-all", 1_000, PODMAN, seconds=[80.0]),
            Cell("rmi-all", 3_000, LIBIMAGE, seconds=[3.6]),
            Cell("rmi-all", 3_000, PODMAN, status="timed-out", seconds=[240.0]),
            Cell("rmi-100", 3_000, LIBIMAGE, seconds=[30.0]),
            Cell("rmi-100", 3_000, PODMAN, status="timed-out", seconds=[240.0]),
            Cell("rmi-all", 10_000, PODMAN, status="skipped", note="podman not run at 10,000"),
        ):
            results.cells[(cell.op, cell.size, cell.tool)] = cell
        results.in_process[("lookup full name", 100_000)] = [15e-6, 18e-6]
        return results

    def _find(
        self, results: Results, target: str, where: str
    ) -> list[tuple[bool | None, str, str]]:
        return [
            (v.met, v.judged_on, v.measured)
            for v in evaluate_targets(results)
            if v.target.startswith(target) and v.where == where
        ]

    def _verdict(self, results: Results, target: str, where: str) -> bool | None:
        found = self._find(results, target, where)
        assert len(found) == 1, f"{len(found)} verdicts for {target!r} at {where!r}"
        return found[0][0]

    def test_ratio_targets(self) -> None:
        results = self._results()
        assert self._verdict(results, "≤ 0.05x podman", "`images` at 1,000") is True  # 1/30
        assert self._verdict(results, "≤ 0.05x podman", "`images` at 3,000") is None
        assert self._verdict(results, "≤ 0.05x podman where", "`rmi -a -f` at 1,000") is False

    def test_listing_is_judged_cached_with_the_uncached_beside(self) -> None:
        """Cached 1/30 meets 0.05x; the uncached 2/30 would not: the cached one counts."""
        [(met, judged_on, measured)] = self._find(
            self._results(), "≤ 0.05x podman", "`images` at 1,000"
        )
        assert (met, judged_on) == (True, "cached")
        assert measured == "ratio 0.033 (no cache 0.067)"

    def test_absolute_listing_target_is_judged_cached(self) -> None:
        """At 10,000 the cached run (2 s) misses 1 s although the uncached one (0.5 s) meets it."""
        [(met, judged_on, measured)] = self._find(self._results(), "≤ 1 s", "`images` at 10,000")
        assert (met, judged_on, measured) == (False, "cached", "2.00 s (no cache 500 ms)")

    def test_without_the_index_is_judged_uncached(self) -> None:
        """0.1x cached, 0.6x uncached: the target without the index is not met."""
        [(met, judged_on, measured)] = self._find(
            self._results(), "≤ 0.5x podman without the index", "`exists` full name at 10,000"
        )
        assert (met, judged_on) == (False, "no cache")
        assert measured == "ratio 0.60 (cached 0.10)"

    def test_with_the_index_is_judged_cached(self) -> None:
        results = self._results()
        where = "`exists` full name at 100,000"
        assert self._find(results, "≤ 0.1 s with the index", where) == [
            (True, "cached", "90.0 ms (no cache 5.00 s)")
        ]
        lookup = "`lookup` (podman: `image inspect --format {{.Id}}`) at 100,000"
        assert self._verdict(results, "≤ 0.1 s with the index", lookup) is False  # 0.2 s cached

    def test_killed_podman_bounds_the_ratio(self) -> None:
        """podman killed at 240 s: 3.6 s / 240 s = 0.015 bounds the ratio, within 0.05x."""
        results = self._results()
        assert ratio_bound(results, "rmi-all", 3_000) == pytest.approx(0.015)
        assert ratio_bound(results, "rmi-all", 1_000) is None  # podman finished there
        [(met, _, measured)] = self._find(results, "≤ 0.05x podman where", "`rmi -a -f` at 3,000")
        assert met is True
        assert measured.startswith("ratio < 0.015")
        assert "podman killed after 240 s" in measured

    def test_a_bound_outside_the_target_is_not_measured(self) -> None:
        """30 s / 240 s = 0.125: the true ratio may still be below 0.05, or not."""
        results = self._results()
        assert (
            self._verdict(
                results, "≤ 0.05x podman where", "`rmi` of 100 images in one call at 3,000"
            )
            is None
        )

    def test_absolute_targets(self) -> None:
        results = self._results()
        assert self._verdict(results, "library lookup", "lookup full name") is True
        assert self._verdict(results, "library lookup", "lookup ID prefix") is None

    def test_growth_of_both_variants(self) -> None:
        results = self._results()
        # Cached 1 s at 1,000 to 2 s at 10,000: fitted exponent 0.3, linear or better.
        assert self._verdict(results, "growth", "`images`, libimage, cached") is True
        # No cache 2 s to 0.5 s: shrinking, also "linear or better".
        assert self._verdict(results, "growth", "`images`, libimage, no cache") is True
        assert self._verdict(results, "growth", "`rmi -a -f`, libimage") is True

    def test_report_names_skips_and_round_trips(self) -> None:
        results = self._results()
        results.meta["sizes"] = [1_000, 3_000, 10_000, 100_000]
        text = render_markdown(results)
        assert "podman not run at 10,000" in text
        assert (
            "| 1,000 | 1.00 s [900 ms - 1.20 s] n=3 | 2.00 s n=1 | 30.0 s n=1 | 0.033 | 0.067 |"
            in text
        )
        assert "| 3,000 | not measured | not measured | not measured | — | — |" in text
        assert "| 3,000 | 3.60 s n=1 | > 240 s (killed) | < 0.015 |" in text
        assert "This run did not finish" in text
        again = Results.from_json(json.loads(json.dumps(results.to_json())))
        assert render_markdown(again) == text
        svg = ET.fromstring(render_plot(again))
        series = [line.attrib["data-series"] for line in svg.iter(f"{SVG}polyline")]
        # Panel 1: cached images against podman; panel 2: cached against no cache.
        assert series.count("images") == 2
        assert series.count("images (dashed)") == 2

    def test_finished_run_has_no_warning(self) -> None:
        results = self._results()
        results.meta["finished"] = "2026-01-01 00:00 UTC"
        assert "This run did not finish" not in render_markdown(results)


class TestMeasure:
    """The suite runs each variant with its environment, alternating, and notes cache writes."""

    def test_variants_alternate_and_a_cache_write_is_noted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        suite = _suite(100.0, [])
        suite.settings.out_dir = tmp_path
        suite.empty_cache_dir()
        calls: list[str] = []

        def fake_run(
            argv: list[str], *, timeout: float | None = None, env: dict[str, str] | None = None
        ) -> CommandRun:
            assert env is not None
            if "podman-4.3" not in argv:
                calls.append(PODMAN)
            elif env.get("LIBIMAGE_NO_CACHE") == "1":
                calls.append(NO_CACHE)
            else:
                calls.append(CACHED)
                assert env["LIBIMAGE_CACHE_DIR"] == str(tmp_path / "cache")
                if calls.count(CACHED) == 2:  # the second cached run writes a cache file
                    (tmp_path / "cache" / "k.sqlite").write_bytes(b"index")
            return CommandRun(tuple(argv), 0.01, 0.01, 1024, 0, "", "")

        monkeypatch.setattr("bench.run.run_command", fake_run)
        op = operations(SAMPLES)[0]
        firsts = suite.measure(op, 1_000, lambda _t, _r: (Path("/r"), Path("/rr")), lambda _p: None)
        assert calls == [CACHED, NO_CACHE, PODMAN] * 3
        assert set(firsts) == {CACHED, NO_CACHE, PODMAN}
        notes = {tool: suite.results.cells[("images", 1_000, tool)].note for tool in op.tools}
        assert "written during run 2" in notes[CACHED]
        assert notes[NO_CACHE] == notes[PODMAN] == ""
        assert all(len(suite.results.cells[("images", 1_000, t)].seconds) == 3 for t in op.tools)


# --------------------------------------------------------------------------- with the real tools


@pytest.fixture(scope="module")
def small_store() -> Iterator[tuple[Path, Path, Samples]]:
    """A synthesised store of 30 images with a run root short enough for podman."""
    from bench.synth import synthesise

    base = Path(tempfile.mkdtemp(prefix="lb-bench-", dir="/tmp"))
    try:
        summary = synthesise(base / "root", 30, seed=3, runroot=base / "run")
        samples = Samples.from_json(summary.samples())
        yield base / "root", base / "run", samples
    finally:
        subprocess.run(["rm", "-rf", "--", str(base)], check=False)


def test_in_process_worker_measures_every_step(
    small_store: tuple[Path, Path, Samples], tmp_path: Path
) -> None:
    """The worker runs the library's steps on a real store and times each of them."""
    from bench.run import IN_PROCESS_STEPS

    root, runroot, samples = small_store
    spec = tmp_path / "spec.json"
    out = tmp_path / "out.json"
    spec.write_text(
        json.dumps(
            {
                "root": str(root),
                "runroot": str(runroot),
                "samples": {
                    "full_name": samples.full_name,
                    "short_name": samples.short_name,
                    "id_prefix": samples.id_prefix,
                    "missing_name": samples.missing_name,
                    "names_to_remove": list(samples.names_to_remove),
                    "reference_pattern": samples.reference_pattern,
                },
                "repeat": 1,
                "profile": True,
            }
        )
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--worker", str(spec), str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(out.read_text())
    assert list(measured["seconds"]) == [step for step, _ in IN_PROCESS_STEPS]
    assert all(values and min(values) > 0 for values in measured["seconds"].values())
    assert measured["profiles"]["snapshot load"][0]["calls"] >= 1


@pytest.mark.differential
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_suite_commands_agree_with_podman(
    small_store: tuple[Path, Path, Samples], tmp_path: Path
) -> None:
    """Every reading command answers alike with podman and libimage, cached and uncached.

    The store is tiny, so the caches are forced (``LIBIMAGE_CACHE_MIN_BYTES=0``); the
    warm-up must leave both the index and the facts file, and the cached runs then
    answer like podman and like the uncached ones.
    """
    root, runroot, samples = small_store
    cache = tmp_path / "cache"
    base = {**os.environ, "LIBIMAGE_CACHE_MIN_BYTES": "0"}
    missing = Operation("w", "w", ("exists", samples.missing_name), (), "exit", 1)
    listing = Operation("w", "w", ("images", "-a"), (), "lines")
    # libimage keeps no facts of files changed less than two seconds before a run.
    newest = max(path.lstat().st_ctime for path in root.rglob("*"))
    time.sleep(max(0.0, RACY_SECONDS - (time.time() - newest)))
    for warm_up in (listing, missing):
        run_command(
            command_argv(CACHED, warm_up, root, runroot), env=command_env(CACHED, cache, base)
        )
    assert sorted(path.suffix for path, _ in cache_files(cache)) == [".facts", ".sqlite"]
    for op in operations(samples):
        if op.removes:
            continue
        runs = {
            tool: run_command(
                command_argv(tool, op, root, runroot),
                timeout=300,
                env=command_env(tool, cache, base),
            )
            for tool in op.tools
        }
        for tool in (CACHED, NO_CACHE):
            detail = outputs_agree(op, runs[tool], runs[PODMAN])
            assert detail is None, (op.key, tool, detail, runs[tool].stderr)
