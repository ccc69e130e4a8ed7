"""Time spent in CPython's garbage collections, for benches that time a step of a round."""

from __future__ import annotations

import gc
import time


class GcClock:
    """Seconds spent in collections since the last `reset` (through ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def reset(self) -> None:
        self.seconds = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
