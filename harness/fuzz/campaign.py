"""Long campaigns: ``progress.json``, a clean stop on SIGTERM or SIGINT, and resuming.

Both fuzzers run ``Campaign.watch`` beside their driver. It

- rewrites ``REPORT_DIR/progress.json`` every ``PROGRESS_EVERY`` seconds, atomically (a
  temporary file in the same directory, then ``os.replace``), so another process or a CI
  step can read it at any time and never sees half a file;
- hands the memory the process freed back to the system (``release_free_memory``) before
  each write, so that the RSS it reports is what the campaign holds;
- turns SIGTERM and SIGINT into ``Driver.stop()``: the example running ends, the driver
  returns, the fuzzer stops its servers and the command writes its report, reproducers
  and example database as after any other end. The exit status is then the one the
  findings call for (0 nothing, 1 found), not 130/143: the campaign ended cleanly, and
  ``progress.json`` says ``"stopped_by"``.

``progress.json`` also holds what ``fuzz --resume REPORT_DIR`` needs to go on: the
command's settings (``"settings"``), the cases so far and the next hypothesis round (each
round has its own seed, see ``harness.fuzz.driver``).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from harness.errors import UsageError

#: Seconds between two writes of progress.json.
PROGRESS_EVERY = 3.0
PROGRESS = "progress.json"


def rss_bytes() -> int:
    """The resident set size of this (the harness) process, in bytes, from ``/proc``
    (psutil where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        return int(psutil.Process().memory_info().rss)


_malloc_trim: Callable[[int], int] | None = None


def release_free_memory() -> None:
    """Give the C allocator's free memory back to the system (glibc's ``malloc_trim``;
    nothing elsewhere).

    A fuzz campaign allocates and frees cases and observations of up to hundreds of KiB
    all the time: glibc keeps what is freed in its heaps, spread between pages still in
    use, and the RSS of a ``--family http`` run grew by 10 MB between its first and
    fourth minute (to 75 MB) while its live objects did not (tracemalloc); trimmed every
    30 s it stayed at 62-67 MB. Trimming costs a few milliseconds.
    """
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = lambda pad: 0  # noqa: E731 (no glibc: nothing to do)
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _malloc_trim = libc.malloc_trim
        except (OSError, AttributeError):
            pass
    _malloc_trim(0)


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` so that a reader sees the old or the new file,
    never a part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_progress(report_dir: Path) -> dict[str, Any]:
    """The ``progress.json`` of an earlier campaign (``fuzz --resume``); ``UsageError``
    when there is none or it cannot be read."""
    path = Path(report_dir) / PROGRESS
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--resume {report_dir}: no {PROGRESS} there (not a fuzz campaign)")
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume {report_dir}: cannot read {PROGRESS} ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise UsageError(f"--resume {report_dir}: {PROGRESS} has no settings to resume")
    return data


class Campaign:
    """The progress file and the signal watch of one fuzz run.

    ``settings`` are the command's settings (kept for ``--resume``); ``figures`` returns
    the run's current figures (``cases``, ``findings``, ...), merged into each write;
    ``stop`` is called once on SIGTERM or SIGINT. ``previous`` is the progress of the
    campaign this run resumes (its cases and elapsed time are carried on).
    """

    def __init__(
        self,
        report_dir: Path,
        settings: dict[str, Any],
        figures: Callable[[], dict[str, Any]],
        stop: Callable[[], None],
        previous: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(report_dir) / PROGRESS
        self.settings = settings
        self.figures = figures
        self.stop = stop
        self.previous = previous or {}
        self.stopped_by: str | None = None
        self.started = time.monotonic()
        self.started_at = self.previous.get("started") or _now()
        self.rss_start = rss_bytes()
        self.rss_max = self.rss_start
        self.runs = int(self.previous.get("runs", 0)) + 1

    def progress(self, state: str) -> dict[str, Any]:
        """What ``progress.json`` says now."""
        figures = self.figures()
        seconds = time.monotonic() - self.started
        cases = int(figures.get("cases", 0))
        before = int(self.previous.get("cases", 0))
        rss = rss_bytes()
        self.rss_max = max(self.rss_max, rss)
        # ``findings`` are this run's; the campaign's reproducers include earlier runs'.
        earlier = self.previous.get("reproducers") or []
        reproducers = list(dict.fromkeys([*earlier, *figures.get("reproducers", [])]))
        return {
            **figures,
            "reproducers": reproducers,
            "campaign_findings": len(reproducers),
            "state": state,
            "stopped_by": self.stopped_by,
            "started": self.started_at,
            "updated": _now(),
            "runs": self.runs,
            "seconds": round(float(self.previous.get("seconds", 0.0)) + seconds, 1),
            "run_seconds": round(seconds, 1),
            # This run's own rate: a resumed campaign's earlier cases took earlier time.
            "rate": round((cases - before) / seconds, 1) if seconds > 0 else 0.0,
            "rss_bytes": rss,
            "rss_start_bytes": self.rss_start,
            "rss_max_bytes": self.rss_max,
            "pid": os.getpid(),
            "settings": self.settings,
        }

    def write(self, state: str = "running") -> dict[str, Any]:
        """Rewrite ``progress.json`` now; what it says."""
        release_free_memory()
        data = self.progress(state)
        write_atomically(self.path, data)
        return data

    async def watch(self, every: float = PROGRESS_EVERY) -> None:
        """Until cancelled: rewrite the progress file every ``every`` seconds, and stop
        the run on SIGTERM or SIGINT (a second signal changes nothing: the stop is under
        way, and the servers must still be stopped)."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._on_signals, signals)
                while True:
                    self.write()
                    await trio.sleep(every)

    async def _on_signals(self, signals: Any) -> None:
        async for signum in signals:
            if self.stopped_by is None:
                self.stopped_by = signal.Signals(signum).name
                self.stop()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
