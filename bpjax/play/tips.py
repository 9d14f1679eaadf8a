"""Which tip each participant sees in each study round, by ``tip.mode``.

* ``none``: no tip;
* ``static``: one tip for everyone (a recommended tip of a pipeline's ``tips.json``);
* ``personalised`` / ``dynamic``: a :class:`bpjax.study.chooser.TipChooser` picks each participant's next tip
  between rounds, from that participant's rounds so far and the population's tips.

Choosing takes seconds (the chooser re-mines a person's tips by simulation), so it never runs on a request:
when a study round completes, a job on one worker thread reads the round back from the participant's trace
file, records it (``chooser.record``), re-mines (``chooser.remine``) and asks for the next tip
(``chooser.tip_for``). One thread, because the chooser is one piece of shared state; its jobs run in the order
the rounds ended. A job that fails logs why and leaves the participant with the tip it had: the trace is on
disk before any job starts, and a failure never reaches the game.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from bpjax.tips.candidates import Tip

MODES = ("none", "static", "personalised", "dynamic")
CHOSEN = ("personalised", "dynamic")   # the modes a chooser serves

log = logging.getLogger("bpjax.play")

RoundReader = Callable[[str], pd.DataFrame]   # episode_id -> that round's rows, read from the trace file


@dataclass(frozen=True)
class NextTip:
    """What the page shows before a study round: the tip it will show, or that it is still being chosen."""

    text: str | None
    ready: bool = True


class RoundTips:
    """``none`` and ``static``: the same tip (or none) for everyone and every round; nothing to wait for.

    The interface the game uses: :meth:`begin` when a participant joins, :meth:`next_tip` between rounds,
    :meth:`pending` before a study round starts, :meth:`take` as it starts, :meth:`round_done` when it ends."""

    def __init__(self, mode: str = "none", text: str | None = None):
        self.mode, self.text = mode, text

    def begin(self, participant_id: str, rounds: list[dict], read_round: RoundReader) -> None:
        """A participant joined (new, or back after a restart with the rounds of its status file)."""

    def next_tip(self, participant_id: str) -> NextTip:
        return NextTip(self.text)

    def pending(self, participant_id: str) -> Future | None:
        """The job choosing the participant's next tip, while it runs; None when the tip is ready."""
        return None

    def take(self, participant_id: str) -> tuple[str | None, bool]:
        """The tip of the study round starting now: (its text or None, whether it is the one chosen for this
        round — False when the choice is still running and the previous tip is shown again)."""
        return self.text, True

    def round_done(self, participant_id: str, record: dict, read_round: RoundReader) -> None:
        """A study round completed (its status-file record; its rows are on disk)."""

    def close(self) -> None:
        """The server stops: jobs not started are dropped (the traces are on disk, a restart catches up)."""


class ChosenTips(RoundTips):
    """``personalised`` / ``dynamic``: each participant's next tip chosen by `chooser`, off the request path."""

    def __init__(self, chooser):
        if chooser.mode not in CHOSEN:
            raise ValueError(f"tip.mode: a chooser serves personalised or dynamic tips, not {chooser.mode!r}")
        super().__init__(chooser.mode)
        self.chooser = chooser
        self.spec = chooser.spec
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpjax-tips")
        self._lock = threading.Lock()            # guards the two dicts below, never held during a job
        self._next: dict[str, Future] = {}       # participant -> the job choosing its next tip (its result)
        self._shown: dict[str, Tip | None] = {}  # participant -> the tip of its latest study round
        # the tips a status file may name: everything the chooser can show, by text
        known = [t.tip for t in chooser.population] + list(chooser.candidates)
        self._by_text = {tip.text(self.spec): tip for tip in reversed(known)}

    # ---- what the game asks ----------------------------------------------------------------------
    def begin(self, participant_id, rounds, read_round):
        with self._lock:
            if participant_id in self._next:
                return
            done = [dict(r) for r in rounds if r["stage"] == "study" and r["status"] == "complete"]
            self._next[participant_id] = self._worker.submit(self._catch_up, participant_id, done, read_round)

    def next_tip(self, participant_id):
        with self._lock:
            job = self._next.get(participant_id)
        if job is None or not job.done():
            return NextTip(None, ready=False)
        return NextTip(self._text(job.result()))

    def pending(self, participant_id):
        with self._lock:
            job = self._next.get(participant_id)
        return job if job is not None and not job.done() else None

    def take(self, participant_id):
        with self._lock:
            job = self._next.get(participant_id)
            fresh = job is not None and job.done()
            if fresh:
                tip = job.result()
            else:  # still choosing: the previous round's tip, or before any the population's #1
                population = self.chooser.population
                tip = self._shown.get(participant_id, population[0].tip if population else None)
            self._shown[participant_id] = tip
        return self._text(tip), fresh

    def round_done(self, participant_id, record, read_round):
        with self._lock:
            shown = self._shown.get(participant_id)
            self._next[participant_id] = self._worker.submit(self._after_round, participant_id, dict(record), shown,
                                                             read_round)

    def close(self):
        self._worker.shutdown(wait=False, cancel_futures=True)

    # ---- the jobs (on the worker thread: the only one that touches the chooser) ---------------------
    def _catch_up(self, participant_id: str, rounds: list[dict], read_round: RoundReader) -> Tip | None:
        """The first tip of a participant; one back after a restart has its completed rounds replayed first,
        each with the tip its status file says it was shown."""
        tip = self._first(participant_id)
        for record in rounds:
            text = record.get("tip")
            shown = self._by_text.get(text) if text is not None else None
            if text is not None and shown is None:
                log.warning("tip for %s: %r (round %s) is not a tip this chooser knows; replayed as no tip",
                            participant_id, text, record.get("round"))
            tip = self._after_round(participant_id, record, shown, read_round)
        with self._lock:
            if rounds:
                self._shown.setdefault(participant_id, tip)
        return tip

    def _first(self, participant_id: str) -> Tip | None:
        try:
            return self.chooser.tip_for(participant_id)
        except Exception as error:  # noqa: BLE001 - a failed choice must not stop the game
            population = self.chooser.population
            fallback = population[0].tip if population else None
            self._failed(participant_id, "its first tip", error, fallback)
            return fallback

    def _after_round(self, participant_id: str, record: dict, shown: Tip | None, read_round: RoundReader
                     ) -> Tip | None:
        chooser = self.chooser
        try:
            frame = read_round(record["episode_id"])
            if participant_id not in chooser.shown:
                chooser.tip_for(participant_id)      # sets up the person (dynamic: their bandit)
            chooser.shown[participant_id] = shown    # what this round was played with
            chooser.record(frame, {participant_id: int(record["ticks"])})
            chooser.remine([participant_id])
            return chooser.tip_for(participant_id)
        except Exception as error:  # noqa: BLE001 - a failed choice must not stop the game
            chooser.shown[participant_id] = shown
            self._failed(participant_id, f"the tip after {record.get('stage')} round {record.get('round')}", error,
                         shown)
            return shown

    def _failed(self, participant_id: str, what: str, error: Exception, kept: Tip | None) -> None:
        log.warning("tip for %s: choosing %s failed (%s: %s); showing %s", participant_id, what,
                    type(error).__name__, error, repr(self._text(kept)) if kept is not None else "no tip")
        log.info("the failure in full", exc_info=error)   # the job log only

    def _text(self, tip: Tip | None) -> str | None:
        return None if tip is None else tip.text(self.spec)
