"""Training progress: step, loss, it/s and ETA as a rich bar on a terminal, as log lines otherwise, and a callback.

Rates are measured over the current process only (a resumed run does not average in the time it was dead), while the
step count and the accumulated training time come from the checkpoint, so the bar of a resumed run starts where the
killed one stopped and its ETA is right from the first few steps.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, dict[str, Any]], None]
"""``progress(step, total, metrics)``: called every ``log_every`` steps and at the end (flows forward it)."""


class ProgressReporter:
    """Reports training progress; use as a context manager around the loop.

    Args:
        total: the run's final step count.
        start_step: the step the run (re)starts at.
        elapsed: training seconds already spent before this process (from the checkpoint).
        callback: optional ``(step, total, metrics)`` callback.
        bar: draw a rich bar; None decides by whether stderr is a terminal.
    """

    def __init__(
        self, total: int, start_step: int, elapsed: float = 0.0, *, callback: ProgressCallback | None = None,
        bar: bool | None = None,
    ) -> None:
        self.total, self.start_step, self.elapsed_before = total, start_step, elapsed
        self.callback = callback
        self.use_bar = sys.stderr.isatty() if bar is None else bar
        self._started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressReporter:
        self._started = time.perf_counter()
        if self.use_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(), transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total, completed=self.start_step, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    @property
    def session_seconds(self) -> float:
        """Seconds since this process started training."""
        return time.perf_counter() - self._started

    @property
    def elapsed(self) -> float:
        """Training seconds including earlier (killed) sessions."""
        return self.elapsed_before + self.session_seconds

    def rate(self, step: int) -> float:
        """Steps per second in this session (0 before the first step)."""
        done = step - self.start_step
        return done / self.session_seconds if done > 0 and self.session_seconds > 0 else 0.0

    def eta(self, step: int) -> float | None:
        """Seconds to ``total`` at the current rate, None while unknown."""
        rate = self.rate(step)
        return (self.total - step) / rate if rate > 0 else None

    def update(self, step: int, metrics: dict[str, Any], *, emit: bool) -> dict[str, Any]:
        """Report ``step`` (completed steps); ``emit`` writes a log line/callback, the bar always advances.

        Returns:
            ``metrics`` extended with ``it_s``, ``eta_s`` and ``elapsed_s``.
        """
        eta = self.eta(step)
        full = {**metrics, "it_s": round(self.rate(step), 4), "eta_s": None if eta is None else round(eta, 1),
                "elapsed_s": round(self.elapsed, 2)}
        if self._progress is not None:
            info = f"loss {metrics.get('loss', float('nan')):.4f}  {full['it_s']:.2f} it/s"
            self._progress.update(self._task, completed=step, info=info)
        if emit:
            if self._progress is None:
                eta_text = "?" if eta is None else f"{eta / 60:.1f} min"
                log.info("step %d/%d  loss %.4f  %.2f it/s  ETA %s", step, self.total,
                         metrics.get("loss", float("nan")), full["it_s"], eta_text)
            if self.callback is not None:
                self.callback(step, self.total, full)
        return full
