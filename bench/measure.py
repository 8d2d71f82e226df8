"""Measuring helpers of the benchmark suite: whole commands, in-process calls, growth.

* :func:`run_command` runs one command as a child process and returns its wall-clock
  time, its CPU time and its peak resident set size, read from the child's own
  ``rusage`` (``wait4``), so neither the parent nor other children count. Linux
  carries a process's peak across ``fork`` and ``exec`` (the forked copy of the
  parent's memory counts as the child's peak), so a command forked straight from a
  large process (a test run, or this suite after loading a 100,000-image snapshot)
  would report the parent's size. The command is therefore forked by a small
  launcher interpreter (``python -I -S``, about 10 MiB) that measures it and writes
  the numbers to a file: that launcher's size is the floor of every peak. Output
  goes to temporary files, not pipes: a listing of 100,000 images is megabytes, and
  draining a pipe would be part of the timing. A run that outlives its timeout is
  killed with its whole process group (the child is started in a session of its own).
* :func:`time_calls` and :func:`time_per_call` time Python calls with
  ``perf_counter``; the latter loops calls of microseconds until a batch is long
  enough to measure.
* :class:`Stats` is median, minimum and maximum of a series; :func:`growth_exponent`
  and :func:`predict_seconds` read the growth of a series of (N, seconds) points, which
  decides whether a slow command is run at the next size at all.
* ``format_*`` print times, sizes, counts and ratios for the results table.

Timings are taken on a shared machine: they are medians of repetitions, never
assertions.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

__all__ = [
    "CommandRun",
    "Stats",
    "format_count",
    "format_ratio",
    "format_rss",
    "format_seconds",
    "growth_exponent",
    "loglog_slope",
    "predict_seconds",
    "run_command",
    "time_calls",
    "time_calls_on",
    "time_per_call",
]


@dataclass(frozen=True, slots=True)
class CommandRun:
    """One finished (or killed) run of a command.

    ``seconds`` is wall-clock time from start to reaping; ``cpu_seconds`` user plus
    system time of the child and the children it waited for; ``max_rss_kib`` the peak
    resident set size in KiB (Linux ``ru_maxrss``). ``timed_out`` runs were killed:
    their ``returncode`` is the signal's negative number and their times are lower
    bounds.
    """

    argv: tuple[str, ...]
    seconds: float
    cpu_seconds: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


# The launcher times only fork to reaping, so its own start-up is not counted.
_LAUNCHER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
try:
    pid = os.fork()
except OSError:
    raise SystemExit(127)
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
with open(report, "w") as out:
    out.write(f"{elapsed!r} {usage.ru_utime + usage.ru_stime!r} {usage.ru_maxrss} {status}")
code = os.waitstatus_to_exitcode(status)
if code < 0:
    os.kill(os.getpid(), -code)
raise SystemExit(code)
"""


def _kill_group(pid: int, fired: list[bool]) -> None:
    fired.append(True)
    # It may have finished between the timer firing and the kill.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_command(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CommandRun:
    """Run ``argv`` to completion (or ``timeout`` seconds) and measure it.

    The child gets an empty stdin and a new session; its stdout and stderr are
    collected through temporary files and decoded as UTF-8 (invalid bytes replaced).
    A non-zero exit is returned, not raised: ``exists`` of a missing name exits 1.

    >>> import sys
    >>> run = run_command([sys.executable, "-c", "print('hi'); raise SystemExit(3)"])
    >>> (run.returncode, run.stdout, run.timed_out, run.max_rss_kib > 0)
    (3, 'hi\\n', False, True)
    """
    fired: list[bool] = []
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(prefix="libimage-bench-", suffix=".rusage") as report,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, report.name, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env=None if env is None else dict(env),
        )
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, _kill_group, (process.pid, fired))
            timer.daemon = True
            timer.start()
        try:
            _, launcher_status, launcher_usage = os.wait4(process.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        elapsed = time.perf_counter() - started
        # The launcher is reaped here, not by Popen: tell it, so it never waits again.
        process.returncode = os.waitstatus_to_exitcode(launcher_status)
        measured = report.read().decode("ascii").split()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if len(measured) == 4:
        seconds, cpu_seconds = float(measured[0]), float(measured[1])
        max_rss_kib = int(measured[2])
        returncode = os.waitstatus_to_exitcode(int(measured[3]))
    else:
        # Killed before the command was reaped: the launcher's own numbers are
        # the only ones there are, lower bounds like every timed-out run's.
        seconds = elapsed
        cpu_seconds = launcher_usage.ru_utime + launcher_usage.ru_stime
        max_rss_kib = launcher_usage.ru_maxrss
        returncode = process.returncode
    return CommandRun(
        argv=tuple(argv),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        max_rss_kib=max_rss_kib,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=bool(fired),
    )


def time_calls_on(
    setup: Callable[[], T],
    call: Callable[[T], object],
    repeat: int,
    *,
    budget: float | None = None,
) -> list[float]:
    """Seconds of up to ``repeat`` calls ``call(setup())``; only ``call`` is timed.

    With ``budget``, repetitions stop once the timed calls together took longer
    (there is always one).

    >>> time_calls_on(lambda: 2, lambda x: x * x, 3, budget=0.0).__len__()
    1
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    seconds: list[float] = []
    for _ in range(repeat):
        argument = setup()
        started = time.perf_counter()
        call(argument)
        seconds.append(time.perf_counter() - started)
        if budget is not None and sum(seconds) > budget:
            break
    return seconds


def time_calls(
    call: Callable[[], object], repeat: int, *, budget: float | None = None
) -> list[float]:
    """Wall-clock seconds of up to ``repeat`` single calls of ``call`` (see :func:`time_calls_on`).

    >>> len(time_calls(lambda: None, 3))
    3
    """
    return time_calls_on(lambda: None, lambda _: call(), repeat, budget=budget)


def time_per_call(
    call: Callable[[], object], repeat: int, *, min_batch_seconds: float = 0.02
) -> list[float]:
    """Seconds per call of a fast ``call``: ``repeat`` batches, each long enough to time.

    The batch size doubles until one batch takes ``min_batch_seconds``; each of the
    ``repeat`` results is that batch's time divided by its size.

    >>> values = time_per_call(lambda: None, 2, min_batch_seconds=0.001)
    >>> len(values), all(v >= 0 for v in values)
    (2, True)
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    loops = 1
    while True:
        started = time.perf_counter()
        for _ in range(loops):
            call()
        elapsed = time.perf_counter() - started
        if elapsed >= min_batch_seconds or loops >= 1 << 24:
            break
        loops *= 2
    per_call = [elapsed / loops]
    for _ in range(repeat - 1):
        started = time.perf_counter()
        for _ in range(loops):
            call()
        per_call.append((time.perf_counter() - started) / loops)
    return per_call


@dataclass(frozen=True, slots=True)
class Stats:
    """Median, minimum and maximum of a non-empty series, and its length.

    >>> Stats.of([3.0, 1.0, 2.0, 10.0])
    Stats(median=2.5, minimum=1.0, maximum=10.0, runs=4)
    """

    median: float
    minimum: float
    maximum: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values), len(values))


def growth_exponent(small: tuple[int, float], large: tuple[int, float]) -> float:
    """The exponent ``k`` of ``t ∝ N**k`` through two (N, seconds) points.

    1 is linear, 2 quadratic; start-up time makes small commands look sub-linear.

    >>> round(growth_exponent((1_000, 2.0), (10_000, 200.0)), 6)
    2.0
    """
    (n_small, t_small), (n_large, t_large) = small, large
    if n_small <= 0 or n_large <= n_small or t_small <= 0 or t_large <= 0:
        raise ValueError("need 0 < N1 < N2 and positive times")
    return math.log(t_large / t_small) / math.log(n_large / n_small)


def loglog_slope(points: Sequence[tuple[int, float]]) -> float:
    """The least-squares slope of log t against log N: the growth exponent of a series.

    Less sensitive to one noisy point than the exponent between two neighbours.

    >>> round(loglog_slope([(1_000, 1.0), (10_000, 10.0), (100_000, 100.0)]), 6)
    1.0
    """
    usable = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t > 0]
    if len(usable) < 2:
        raise ValueError("need two points with positive N and time")
    mean_x = statistics.fmean(x for x, _ in usable)
    mean_y = statistics.fmean(y for _, y in usable)
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    if spread == 0:
        raise ValueError("need two different sizes")
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread


def predict_seconds(points: Sequence[tuple[int, float]], size: int) -> float | None:
    """Extrapolate a series of (N, seconds) points, in increasing N, to ``size``.

    The growth is the exponent of the last two points, but never below linear, so a
    start-up-bound command is not predicted to get cheaper; with one point it is
    linear; with none there is no prediction.

    >>> round(predict_seconds([(1_000, 6.0), (3_000, 54.0)], 9_000), 6)
    486.0
    >>> predict_seconds([(100, 0.5)], 1_000)
    5.0
    """
    if not points:
        return None
    last_n, last_t = points[-1]
    exponent = 1.0
    if len(points) >= 2:
        exponent = max(1.0, growth_exponent(points[-2], points[-1]))
    return float(last_t * (size / last_n) ** exponent)


# --------------------------------------------------------------------------- formatting


def _significant(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def format_seconds(seconds: float) -> str:
    """A duration with three significant digits in a readable unit.

    >>> [format_seconds(s) for s in (0.0000123, 0.01234, 1.2345, 58.26, 1234.0)]
    ['12.3 µs', '12.3 ms', '1.23 s', '58.3 s', '1234 s']
    """
    if seconds < 1e-3:
        return f"{_significant(seconds * 1e6)} µs"
    if seconds < 1:
        return f"{_significant(seconds * 1e3)} ms"
    return f"{_significant(seconds)} s"


def format_rss(kib: int) -> str:
    """A memory size given in KiB, in MiB (or GiB from 10 GiB).

    >>> format_rss(25_520), format_rss(1_048_576), format_rss(12_000_000)
    ('24.9 MiB', '1024 MiB', '11.4 GiB')
    """
    mib = kib / 1024
    if mib >= 10 * 1024:
        return f"{_significant(mib / 1024)} GiB"
    return f"{_significant(mib)} MiB"


def format_count(count: int) -> str:
    """An integer with thousands separators, as the tables print sizes.

    >>> format_count(100_000)
    '100,000'
    """
    return f"{count:,}"


def format_ratio(ratio: float) -> str:
    """A ratio with two significant digits (three decimals at most below 0.01).

    >>> [format_ratio(r) for r in (0.01234, 0.5, 1.256, 12.5)]
    ['0.012', '0.50', '1.3', '12']
    """
    if ratio >= 10:
        return f"{ratio:.0f}"
    if ratio < 0.001:
        return f"{ratio:.1e}"
    return _significant(ratio, 2)
