"""What the demo prints while it works: numbered steps with their timings, and counters that
update in place on a terminal (one final line each when the output is a file or a pipe)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO


class Console:
    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.live = out.isatty()
        self.steps = 0
        self.started = time.monotonic()
        self.timings: list[tuple[str, float]] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def info(self, text: str) -> None:
        self.say(f"    {text}")

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.steps += 1
        self.say(f"\n{self.steps:>2}. {title}")
        started = time.monotonic()
        yield
        seconds = time.monotonic() - started
        self.timings.append((title, seconds))
        self.say(f"    ✔ {seconds:.1f}s")

    def counter(self, label: str, total: int) -> Progress:
        return Progress(self, label, total)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Progress:
    """``label done/total``, redrawn at most ten times a second on a terminal."""

    def __init__(self, console: Console, label: str, total: int) -> None:
        self.console, self.label, self.total = console, label, total
        self.done = 0
        self.drawn = 0.0

    def add(self, n: int = 1) -> None:
        self.done += n
        if self.console.live and (time.monotonic() - self.drawn > 0.1 or self.done == self.total):
            self.drawn = time.monotonic()
            print(f"\r    {self.label} {self.done}/{self.total}", end="", file=self.console.out, flush=True)

    def finish(self, text: str) -> None:
        prefix = "\r\033[K" if self.console.live else ""
        print(f"{prefix}    {text}", file=self.console.out, flush=True)
