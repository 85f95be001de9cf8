"""Per-stage wall and CPU time, so reports can say where the time went and what the pipeline adds around pycolmap."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class StageTiming:
    """One stage's cost: wall seconds and process CPU seconds (all threads; CPU/wall ≈ threads kept busy)."""

    stage: str
    wall_s: float
    cpu_s: float


class Stopwatch:
    """Collects ``StageTiming`` rows; ``with watch("extract"): ...`` times one stage."""

    def __init__(self) -> None:
        self.rows: list[StageTiming] = []

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.rows.append(StageTiming(stage, time.perf_counter() - wall, time.process_time() - cpu))

    def total(self, prefix: str = "") -> float:
        """Wall seconds of the stages whose name starts with ``prefix``."""
        return sum(row.wall_s for row in self.rows if row.stage.startswith(prefix))
