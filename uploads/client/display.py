"""Progress as a person or a log wants it: a bar per file and one overall on a terminal
(bytes, rate, time left), a plain line every few seconds when stderr is a file or a pipe, and
nothing at all for --json, whose stdout is for machines."""

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from uploads.client.results import FileProgress

LINE_INTERVAL_SECONDS = 5.0


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Display:
    """Called from the transfer's worker threads (one lock keeps the output whole)."""

    def __init__(self, files: dict[str, Path], *, mode: str, stream: TextIO = sys.stderr) -> None:
        self.mode = mode  # "bars", "lines" or "quiet"
        self.stream = stream
        self._lock = threading.Lock()
        self._sizes = {label: path.stat().st_size for label, path in files.items()}
        self._done = dict.fromkeys(files, 0)
        self._bars: dict[str, tqdm[Any]] = {}
        self._last_line = dict.fromkeys(files, 0.0)
        self._started = time.monotonic()
        self._first_done: dict[str, int] = {}
        if mode == "bars":
            for position, (label, path) in enumerate(files.items()):
                self._bars[label] = self._bar(f"{label} {path.name}", self._sizes[label], position)
            if len(files) > 1:
                self._bars["*"] = self._bar("overall", sum(self._sizes.values()), len(files))

    @classmethod
    def choose(cls, files: dict[str, Path], *, json_output: bool, stream: TextIO = sys.stderr) -> "Display":
        mode = "quiet" if json_output else "bars" if stream.isatty() else "lines"
        return cls(files, mode=mode, stream=stream)

    def _bar(self, desc: str, total: int, position: int) -> "tqdm[Any]":
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (OSError, ValueError):
            size = os.terminal_size((0, 0))
        known = size.columns > 0 and size.lines > 0  # a pseudo-terminal may report 0 x 0: tqdm would draw nothing
        return tqdm(
            total=total,
            desc=desc,
            position=position,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self.stream,
            leave=True,
            dynamic_ncols=known,
            ncols=None if known else 100,
            nrows=None if known else 24,
            miniters=1,
        )

    def __call__(self, event: FileProgress) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            delta = event.done - self._done.get(event.label, 0)
            self._done[event.label] = event.done
            self._first_done.setdefault(event.label, event.done)
            if self.mode == "bars":
                self._bars[event.label].update(delta)
                if "*" in self._bars:
                    self._bars["*"].update(delta)
                if event.phase != "sending":
                    self._bars[event.label].set_postfix_str(event.phase, refresh=True)
                return
            now = time.monotonic()
            if event.phase == "done" or now - self._last_line[event.label] >= LINE_INTERVAL_SECONDS:
                self._last_line[event.label] = now
                print(self._line(event, now), file=self.stream, flush=True)

    def _line(self, event: FileProgress, now: float) -> str:
        total = max(event.total, 1)
        text = (
            f"{event.label} {event.path.name}: {human_bytes(event.done)} of {human_bytes(event.total)} "
            f"({100 * event.done // total}%)"
        )
        if event.phase == "done":
            return text + ", done"
        elapsed = now - self._started
        rate = (event.done - self._first_done[event.label]) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            text += f", {human_bytes(rate)}/s, {int((event.total - event.done) / rate)} s left"
        return text + ("" if event.phase == "sending" else f" ({event.phase})")

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
