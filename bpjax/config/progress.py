"""Progress of a command's long phases on stderr (``progress=false`` turns it off), and their timings in the
job log.

A phase that ends within :data:`QUIET_S` prints nothing; a longer one shows its label, elapsed time and an
optional count (``exact solve: 412,000 states, 6 s``), refreshed in place on a terminal and every
:data:`PIPE_EVERY_S` seconds otherwise, and a last line when it ends. stdout stays for results.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Callable, Iterator, TextIO

QUIET_S = 2.0        # phases shorter than this print nothing
TTY_EVERY_S = 0.5
PIPE_EVERY_S = 10.0

log = logging.getLogger("bpjax.progress")


class Progress:
    """Phases and bars of one command; `enabled=False` keeps the timings in the log only."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream

    @contextlib.contextmanager
    def phase(self, label: str, count: Callable[[], int] | None = None, unit: str = "") -> Iterator[None]:
        """Time the block; while it runs longer than QUIET_S, show `label` with the elapsed time and
        `count()` `unit` (read from another thread: keep it a cheap read such as a len())."""
        start = time.perf_counter()
        done = threading.Event()
        shown = threading.Event()
        tty = self.enabled and getattr(self.stream, "isatty", lambda: False)()

        def line() -> str:
            counted = f"{count():,} {unit}, " if count is not None else ""
            return f"{label}: {counted}{time.perf_counter() - start:.0f} s"

        def ticker() -> None:
            if done.wait(QUIET_S):
                return
            while True:
                shown.set()
                self.stream.write(f"\r{line()}\033[K" if tty else f"{line()}\n")
                self.stream.flush()
                if done.wait(TTY_EVERY_S if tty else PIPE_EVERY_S):
                    return

        thread = threading.Thread(target=ticker, daemon=True) if self.enabled else None
        if thread is not None:
            thread.start()
        try:
            yield
        finally:
            done.set()
            if thread is not None:
                thread.join()
            elapsed = time.perf_counter() - start
            counted = f", {count():,} {unit}" if count is not None else ""
            if shown.is_set():
                self.stream.write(f"{chr(13) if tty else ''}{label}: done in {elapsed:.1f} s{counted}"
                                  f"{chr(27) + '[K' if tty else ''}\n")
                self.stream.flush()
            log.info("%s: %.2f s%s", label, elapsed, counted)

    def bar(self, total: int, desc: str, unit: str):
        """A tqdm bar on stderr (disabled with progress=false)."""
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=not self.enabled, file=self.stream)
