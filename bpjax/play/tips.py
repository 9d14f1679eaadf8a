"""Which tip each participant sees in each study round, by ``tip.mode``.

* ``none``: no tip;
* ``static``: one tip for everyone (a recommended tip of a pipeline's ``tips.json``);
* ``personalised`` / ``dynamic``: a :class:`bpjax.study.chooser.TipChooser` picks each participant's next tip
  between rounds, from that participant's rounds so far and the population's tips.

Choosing takes seconds (the chooser re-mines a person's tips by simulation), so it never runs on a request:
when a study round completes, a job on one worker thread reads the round back from the participant's trace
file, records it (``chooser.record``), re-mines (``chooser.remine``) and asks for the next tip
(``chooser.tip_for``). One thread, because the chooser is one piece of shared state; a participant's jobs run
in the order its rounds ended, and the rounds that end while the thread is busy are re-mined together. A job
that fails logs why and leaves the participant with the tip it had: the trace is on disk before any job
starts, and a failure never reaches the game.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
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


@dataclass
class _Job:
    """The rounds of one participant to record (with the tip each was shown), then its next tip."""

    participant_id: str
    rounds: list[tuple[dict, Tip | None]]   # (status-file record, tip shown), in the order played
    read_round: RoundReader
    kept: Tip | None                         # the tip to keep if choosing fails
    first: bool = False                      # the participant's first job: the chooser meets them first
    future: Future = field(default_factory=Future)


class ChosenTips(RoundTips):
    """``personalised`` / ``dynamic``: each participant's next tip chosen by `chooser`, off the request path.

    Jobs of different participants queued together are served as one batch: each round recorded on its own,
    then one ``remine`` of everyone in it (the simulation is batched), so many participants ending a round
    at once wait about as long as one. A batch that fails is retried person by person."""

    def __init__(self, chooser):
        if chooser.mode not in CHOSEN:
            raise ValueError(f"tip.mode: a chooser serves personalised or dynamic tips, not {chooser.mode!r}")
        super().__init__(chooser.mode)
        self.chooser = chooser
        self.spec = chooser.spec
        self._lock = threading.Lock()            # guards the state below; never held while choosing
        self._wake = threading.Condition(self._lock)
        self._queue: list[_Job] = []
        self._closed = False
        self._next: dict[str, Future] = {}       # participant -> the job choosing its next tip (its result)
        self._shown: dict[str, Tip | None] = {}  # participant -> the tip of its latest study round
        # the tips a status file may name: everything the chooser can show, by text
        known = [t.tip for t in chooser.population] + list(chooser.candidates)
        self._by_text = {tip.text(self.spec): tip for tip in reversed(known)}
        self._worker = threading.Thread(target=self._run, name="bpjax-tips", daemon=True)
        self._worker.start()

    # ---- what the game asks ----------------------------------------------------------------------
    def begin(self, participant_id, rounds, read_round):
        with self._lock:
            if participant_id in self._next:
                return
            replay = []   # back after a restart: its completed rounds, each with the tip it was shown
            for r in rounds:
                if r["stage"] == "study" and r["status"] == "complete":
                    text = r.get("tip")
                    if text is not None and text not in self._by_text:
                        log.warning("tip for %s: %r (round %s) is not a tip this chooser knows; replayed as no "
                                    "tip", participant_id, text, r.get("round"))
                    replay.append((dict(r), self._by_text.get(text) if text is not None else None))
            if replay:
                self._shown[participant_id] = replay[-1][1]
            population = self.chooser.population
            kept = replay[-1][1] if replay else population[0].tip if population else None
            self._submit(_Job(participant_id, replay, read_round, kept, first=True))

    def next_tip(self, participant_id):
        with self._lock:
            job = self._next.get(participant_id)
        if job is None or not job.done() or job.cancelled():
            return NextTip(None, ready=False)
        return NextTip(self._text(job.result()))

    def pending(self, participant_id):
        with self._lock:
            job = self._next.get(participant_id)
        return job if job is not None and not job.done() else None

    def take(self, participant_id):
        with self._lock:
            job = self._next.get(participant_id)
            fresh = job is not None and job.done() and not job.cancelled()
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
            self._submit(_Job(participant_id, [(dict(record), shown)], read_round, shown))

    def close(self):
        with self._lock:
            self._closed = True
            for job in self._queue:
                job.future.cancel()
            self._queue.clear()
            self._wake.notify()

    def _submit(self, job: _Job) -> None:
        """Queue `job` (the lock held): it becomes the participant's pending choice."""
        if self._closed:
            job.future.cancel()
        else:
            self._queue.append(job)
            self._wake.notify()
        self._next[job.participant_id] = job.future

    # ---- the worker (the only thread that touches the chooser) --------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                batch, later, taken = [], [], set()
                for job in self._queue:   # one job per participant per batch: its jobs stay in order
                    (later if job.participant_id in taken else batch).append(job)
                    taken.add(job.participant_id)
                self._queue = later
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            try:
                tips = self._serve(batch)
            except Exception as error:  # noqa: BLE001 - a bug here must not leave anyone waiting
                log.warning("tips: choosing failed (%s: %s); everyone in the batch keeps their tip",
                            type(error).__name__, error)
                log.info("the failure in full", exc_info=error)
                tips = {job.participant_id: job.kept for job in batch}
            for job in batch:
                job.future.set_result(tips[job.participant_id])

    def _serve(self, batch: list[_Job]) -> dict[str, Tip | None]:
        chooser, tips = self.chooser, {}
        for job in batch:
            pid = job.participant_id
            tips[pid] = job.kept
            if job.first and pid not in chooser.shown:
                try:
                    tips[pid] = chooser.tip_for(pid)   # a new person (dynamic: their bandit's first draw)
                except Exception as error:  # noqa: BLE001 - a failed choice must not stop the game
                    self._failed(pid, "its first tip", error, job.kept)
        for step in range(max((len(job.rounds) for job in batch), default=0)):
            recorded = []
            for job in batch:
                if step >= len(job.rounds):
                    continue
                pid, (record, shown) = job.participant_id, job.rounds[step]
                try:
                    frame = job.read_round(record["episode_id"])
                    if pid not in chooser.shown:
                        chooser.tip_for(pid)         # sets up the person
                    chooser.shown[pid] = shown       # what this round was played with
                    chooser.record(frame, {pid: int(record["ticks"])})
                    recorded.append((job, record, shown))
                except Exception as error:  # noqa: BLE001
                    chooser.shown[pid] = shown
                    tips[pid] = shown
                    self._failed(pid, f"the tip after study round {record.get('round')}", error, shown)
            mined = self._remine([job.participant_id for job, _, _ in recorded])
            for job, record, shown in recorded:
                pid = job.participant_id
                failure = mined[pid]
                if failure is None:
                    try:
                        tips[pid] = chooser.tip_for(pid)
                        continue
                    except Exception as error:  # noqa: BLE001
                        failure = error
                chooser.shown[pid] = shown
                tips[pid] = shown
                self._failed(pid, f"the tip after study round {record.get('round')}", failure, shown)
        return tips

    def _remine(self, people: list[str]) -> dict[str, Exception | None]:
        """Re-mine `people` together; if that fails, one by one. Each person's error (None: re-mined)."""
        if not people:
            return {}
        try:
            self.chooser.remine(people)
            return dict.fromkeys(people)
        except Exception as error:  # noqa: BLE001
            if len(people) == 1:
                return {people[0]: error}
        errors = {}
        for person in people:
            try:
                self.chooser.remine([person])
                errors[person] = None
            except Exception as error:  # noqa: BLE001
                errors[person] = error
        return errors

    def _failed(self, participant_id: str, what: str, error: Exception, kept: Tip | None) -> None:
        log.warning("tip for %s: choosing %s failed (%s: %s); showing %s", participant_id, what,
                    type(error).__name__, error, repr(self._text(kept)) if kept is not None else "no tip")
        log.info("the failure in full", exc_info=error)   # the job log only

    def _text(self, tip: Tip | None) -> str | None:
        return None if tip is None else tip.text(self.spec)
