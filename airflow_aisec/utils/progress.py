"""Progress of long operations (hashing, scans, audits, profiles): ``done/total``, rate and ETA.

One small helper for every engine: :class:`Progress` logs through the standard :mod:`logging` logger
of the caller (the task log in Airflow) at most once per ``interval`` seconds, never per item. On an
interactive terminal the ``aisec`` command line renders the same records as one progress bar
(:func:`install_tty_bar`); with ``--format json`` (or any non-text format) it stays silent.

No Airflow import here; the clock is injectable for tests.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

#: Default seconds between two progress lines.
DEFAULT_INTERVAL_SECONDS = 10.0
#: ``LogRecord`` attribute carrying ``(label, done, total)`` for the terminal bar.
RECORD_ATTRIBUTE = "aisec_progress"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Thread-safe counter of work done that logs ``done/total (pct), rate, ETA`` at a steady interval.

    :param label: what is being done, e.g. ``"hashing model/"`` (a path is fine: it is the caller's).
    :param total: amount of work, in ``unit``; ``None`` or 0 when unknown (no percentage, no ETA).
    :param unit: unit of the counts shown (``"files"``, ``"rows"``, ``"MiB"`` …).
    :param scale: counts are divided by this for display (``2**20`` to count bytes and show MiB).
    :param logger: where to log (default: this module's logger).
    :param interval: seconds between two lines (default :data:`DEFAULT_INTERVAL_SECONDS`).
    :param clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        label: str,
        total: float | None = None,
        *,
        unit: str = "items",
        scale: float = 1.0,
        logger: logging.Logger | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.scale = label, total or 0, unit, scale
        self.log = logger or logging.getLogger(__name__)
        self.interval = DEFAULT_INTERVAL_SECONDS if interval is None else interval
        self.clock = clock
        self.done = 0.0
        self.started = self._last = clock()
        self._lock = threading.Lock()

    def advance(self, n: float = 1) -> None:
        """Count ``n`` more units done; log a line when ``interval`` has passed since the last one."""
        with self._lock:
            self.done += n
            now = self.clock()
            if now - self._last < self.interval:
                return
            self._last = now
            done = self.done
        self._emit(done, now)

    def finish(self, *, min_elapsed: float = 0.0) -> None:
        """Log the final line (total and mean rate) when the operation took at least ``min_elapsed`` seconds."""
        now = self.clock()
        if now - self.started >= min_elapsed:
            self._emit(self.done, now, final=True)

    def line(self, done: float, now: float, *, final: bool = False) -> str:
        """The text of one progress line (also used by tests)."""
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        shown = f"{done / self.scale:.1f}" if self.scale != 1 else f"{done:.0f}"
        parts = [f"{self.label}: {shown}"]
        if self.total:
            total = f"{self.total / self.scale:.1f}" if self.scale != 1 else f"{self.total:.0f}"
            parts[0] += f"/{total} {self.unit} ({100.0 * min(done, self.total) / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        parts.append(f"{rate / self.scale:.1f} {self.unit}/s")
        if final:
            parts.append(f"done in {_duration(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"ETA {_duration(max(self.total - done, 0) / rate)}")
        return ", ".join(parts)

    def _emit(self, done: float, now: float, *, final: bool = False) -> None:
        self.log.info(
            "%s", self.line(done, now, final=final), extra={RECORD_ATTRIBUTE: (self.label, done, self.total, final)}
        )


class _TerminalBar(logging.Handler):
    """Renders progress records as one ``\\r``-rewritten bar on a terminal; ignores every other record."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        super().__init__(logging.INFO)
        self.stream, self.width = stream, width

    def emit(self, record: logging.LogRecord) -> None:
        info = getattr(record, RECORD_ATTRIBUTE, None)
        if info is None:
            return
        _label, done, total, final = info
        filled = int(self.width * min(done / total, 1.0)) if total else 0
        bar = "#" * filled + "-" * (self.width - filled) if total else ""
        try:
            self.stream.write(f"\r\033[K[{bar}] {record.getMessage()}" + ("\n" if final else ""))
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: progress is best effort
            pass


def install_tty_bar(fmt: str, stream: TextIO | None = None) -> logging.Handler | None:
    """Show progress as a bar on ``stream`` (stderr) when it is a terminal and ``fmt`` is ``text``.

    Returns the handler installed on the ``airflow_aisec`` logger, or ``None`` (not a terminal, or a
    machine-readable format: silent).
    """
    stream = stream or sys.stderr
    if fmt != "text" or not getattr(stream, "isatty", lambda: False)():
        return None
    handler = _TerminalBar(stream)
    logger = logging.getLogger("airflow_aisec")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
