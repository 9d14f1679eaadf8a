"""One participant's game: practice rounds, then the study's rounds, played decision by decision.

The rules are the reference simulator's (``bpjax.env.reference``): an assignment is legal exactly when it is
in its action mask, and every decision is one reference step, so time passes by itself after a decision
that leaves no legal assignment — the same ticks a replay of the trace gives. Each decision is appended to
the participant's trace file (and forced to disk) before the game moves on, so a closed tab or a crashed
server loses nothing already decided. A small status file beside it marks each round ``playing``,
``complete`` or ``incomplete`` (left unfinished: server stopped, or the participant came back after a
restart and went on with a new round), and holds the SHA-256 digest of the participant's secret: joining
as a new participant returns a random secret (once; only its digest is kept), and every later request of
that participant must present it.

Files, in the output folder: ``<participant>.csv`` (study rounds), ``practice/<participant>.csv`` (practice
rounds: another kitchen, so the study folder reads as one kitchen) and ``<participant>.status.json`` (each
round's record holds the text of the tip it showed, null for none).

Which tip a study round shows is :mod:`bpjax.play.tips`' (``tip.mode``): one for everyone, or chosen per
participant between rounds, off the request path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from bpjax.data.traces import append_trace_rows, kitchen_column, read_traces, shown, trace_row
from bpjax.env.config import KitchenSpec
from bpjax.env.joint import action_pair, assignment_action
from bpjax.env.legality import why_illegal
from bpjax.env.reference import ReferenceKitchen, RefState
from bpjax.play.tips import ChosenTips, RoundTips

PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SECRET_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"   # no 0/o, 1/l/i: read aloud or copied by hand
SECRET_LENGTH = 16                                    # about 79 random bits
_VERBS = {"chop": "Chopping", "cook": "Cooking", "plate": "Plating", "boil": "Boiling"}


def _ticks(n: int) -> str:
    return f"{n} tick{'' if n == 1 else 's'}"


class PlayError(Exception):
    """A request the game refuses; nothing changed. `status` is the HTTP status to answer with (`headers`
    go with it)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def check_participant_id(participant_id: Any) -> str:
    """The id itself if it is 1-64 letters, digits, '_' or '-' (it names files); PlayError(400) otherwise."""
    if not isinstance(participant_id, str) or not PARTICIPANT_ID.fullmatch(participant_id):
        raise PlayError(400, f"participant_id: expected 1-64 letters, digits, '_' or '-', got {shown(participant_id)}")
    return participant_id


def new_secret() -> str:
    """A random secret, shown in groups of four (``k3m9-x2pq-...``); dashes, spaces and case do not count."""
    code = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return "-".join(code[i:i + 4] for i in range(0, SECRET_LENGTH, 4))


def secret_digest(secret: str) -> str:
    """What is stored: SHA-256 of the secret without dashes, spaces or case (a random secret of ~79 bits
    needs no slow hash)."""
    return hashlib.sha256("".join(secret.split()).replace("-", "").lower().encode()).hexdigest()


@dataclass(frozen=True)
class Stage:
    """A block of rounds in one kitchen: the practice rounds or the study's."""

    kind: str                  # "practice" | "study"
    spec: KitchenSpec
    rounds: int
    folder: Path               # where this stage's trace files go
    ref: ReferenceKitchen      # the rules
    kitchen: str               # the trace's kitchen column


@dataclass(frozen=True)
class GameSetup:
    """What every participant plays, and where their files go. The study rounds show `tip` to everyone
    (``tip.mode=static``), or each participant the tip `chooser` picks for them (a
    :class:`bpjax.study.chooser.TipChooser` of the personalised or dynamic mode, for this study kitchen);
    neither: no tip. A study round waits up to `tip_wait_s` for its tip, then shows the previous one."""

    study: KitchenSpec
    rounds: int
    out_dir: Path
    practice: KitchenSpec | None = None
    practice_rounds: int = 0
    tip: str | None = None
    chooser: Any = None
    tip_wait_s: float = 30.0

    def __post_init__(self):
        if self.tip is not None and self.chooser is not None:
            raise ValueError("tip: a static tip and a chooser exclude each other")

    @property
    def tip_mode(self) -> str:
        return self.chooser.mode if self.chooser is not None else "static" if self.tip is not None else "none"

    def round_tips(self) -> RoundTips:
        """A new tip service for one server (participants' choices live in it)."""
        return ChosenTips(self.chooser) if self.chooser is not None else RoundTips(self.tip_mode, self.tip)

    @cached_property
    def stages(self) -> tuple[Stage, ...]:
        """Built once, shared by every participant."""
        blocks = [("study", self.study, self.rounds, self.out_dir)]
        if self.practice is not None and self.practice_rounds > 0:
            blocks.insert(0, ("practice", self.practice, self.practice_rounds, self.out_dir / "practice"))
        return tuple(Stage(kind, spec, rounds, folder, ReferenceKitchen(spec.to_dict()), kitchen_column(spec))
                     for kind, spec, rounds, folder in blocks)


class Participant:
    """The server-side game of one participant. Every public method holds the participant's lock."""

    def __init__(self, participant_id: str, setup: GameSetup, tips: RoundTips | None = None):
        self.id = check_participant_id(participant_id)
        self.setup = setup
        self.tips = tips if tips is not None else setup.round_tips()
        self.stages = setup.stages
        self.lock = threading.Lock()
        self.status_path = setup.out_dir / f"{self.id}.status.json"
        self.history: list[dict] = []          # one entry per round started: stage, round, episode_id, status,
                                               # ticks, finished, tip (its text, None for none)
        self.known: set[tuple[str, str, int]] = set()  # (stage, worker, task type) speeds revealed
        self.stage_index = 0
        self.state: RefState | None = None     # the round in play, or None between rounds
        self.last_event = ""
        self.secret_sha256: str | None = None
        self._unsaved = False                  # rounds marked incomplete on loading, not yet written
        if self.status_path.exists():
            self._load()
        self._advance_stage()

    # ------------------------------------------------------------------ who may play

    @property
    def is_new(self) -> bool:
        """Nothing of this participant on disk (no status file, no trace file)."""
        return not self.status_path.exists() and not any((s.folder / f"{self.id}.csv").exists() for s in self.stages)

    def register(self) -> str:
        """A new participant: its secret (returned once; its digest goes to the status file, on disk before
        this returns)."""
        with self.lock:
            if not self.is_new:
                raise PlayError(409, f"participant_id: {self.id!r} has trace files but no status file here; "
                                     "join under a new id")
            secret = new_secret()
            self.secret_sha256 = secret_digest(secret)
            self._write_status()
            return secret

    def check_secret(self, secret: str | None) -> None:
        """PlayError 401 (no secret) or 403 (not this participant's) unless `secret` is this participant's."""
        if self.secret_sha256 is None:
            raise PlayError(403, f"participant_id: {self.id!r} was recorded without a secret; join under a new id")
        if secret is None:
            raise PlayError(401, f"Authorization: participant {self.id!r} has joined already; send its secret "
                                 "(Authorization: Bearer SECRET) to continue",
                            headers={"WWW-Authenticate": 'Bearer realm="bpjax-play"'})
        if not hmac.compare_digest(secret_digest(secret), self.secret_sha256):
            raise PlayError(403, f"Authorization: wrong secret for participant {self.id!r}")

    def begin_tips(self) -> None:
        """Start choosing this participant's tip (called once it has joined: a refused join starts nothing)."""
        with self.lock:
            rounds = [dict(r) for r in self.history]
        self.tips.begin(self.id, rounds, self.round_frame)

    def round_frame(self, episode_id: str) -> pd.DataFrame:
        """The rows of one study round, read back from the participant's trace file (under the participant's
        lock: no decision is being appended meanwhile)."""
        with self.lock:
            frame = read_traces(self.setup.out_dir / f"{self.id}.csv").frame
        return frame[frame["episode_id"] == episode_id].reset_index(drop=True)

    def tip_pending(self):
        """The job still choosing the tip of the next round, if that round is a study round (else None)."""
        with self.lock:
            if self.state is not None or self.finished or self.stage.kind != "study":
                return None
        return self.tips.pending(self.id)

    def save_loaded(self) -> None:
        """Write what loading changed (rounds left in play before a restart are incomplete); called once the
        participant has shown its secret, so a refused join writes nothing."""
        with self.lock:
            if self._unsaved:
                self._write_status()
                self._unsaved = False

    # ------------------------------------------------------------------ actions

    def start_round(self) -> None:
        with self.lock:
            if self.state is not None:
                raise PlayError(409, "a round is in progress; finish it first")
            if self.finished:
                raise PlayError(409, "all rounds are done; thank you")
            stage = self.stage
            number = self._next_round(stage)
            tip, fresh = self.tips.take(self.id) if stage.kind == "study" else (None, True)
            self.history.append({"stage": stage.kind, "round": number,
                                 "episode_id": f"{self.id}-{stage.kind}{number}-{uuid.uuid4().hex[:8]}",
                                 "status": "playing", "ticks": 0, "finished": False, "tip": tip})
            self.state = stage.ref.reset()
            self.last_event = "" if fresh else ("Your tip for this round is still being chosen, so it shows your "
                                                "previous tip." if tip is not None else
                                                "Your tip for this round is still being chosen; none this time.")
            self._write_status()

    def assign(self, worker: str, slot: int, tick: int) -> None:
        with self.lock:
            state, stage = self._playing(tick)
            spec, ref = stage.spec, stage.ref
            names = [w.name for w in spec.workers]
            if worker not in names:
                raise PlayError(422, f"worker: unknown worker {shown(worker)} (this kitchen has {', '.join(names)})")
            if not 0 <= slot < ref.n_slots or not ref.slot_is_real[slot]:
                raise PlayError(422, f"slot: no subtask {slot} in this kitchen (subtasks: "
                                     f"{', '.join(map(str, ref.real_slots))})")
            w = names.index(worker)
            action = assignment_action(w, slot, ref.n_slots)
            if action not in ref.legal_actions(state):
                raise PlayError(422, f"assigning {worker} to {spec.slot_label(slot)} is against the rules at "
                                     f"Tick #{state.tick + 1}: {why_illegal(ref, spec, state, w, slot)}")
            self._decide(action, reveal=(stage.kind, worker, ref.slot_type[slot]))

    def next_tick(self, tick: int) -> None:
        with self.lock:
            stage = self._playing(tick)[1]
            self._decide(stage.ref.end_tick_action)

    def abandon(self) -> None:
        """Mark the round in play incomplete (the server is stopping)."""
        with self.lock:
            if self.state is not None:
                self.history[-1]["status"] = "incomplete"
                self.state = None
                self._write_status()

    # ------------------------------------------------------------------ views

    @property
    def stage(self) -> Stage:
        return self.stages[min(self.stage_index, len(self.stages) - 1)]

    @property
    def finished(self) -> bool:
        return self.stage_index >= len(self.stages)

    def view(self) -> dict:
        """Everything the page shows, as JSON-ready data (speeds only where revealed)."""
        with self.lock:
            phase = "playing" if self.state is not None else "finished" if self.finished else "between"
            last = self.history[-1] if self.history else None
            view = {"participant_id": self.id, "phase": phase, "event": self.last_event,
                    "rounds": [dict(r) for r in self.history],
                    "summary": self._summary(last) if phase != "playing" and last else None}
            if phase == "between":
                stage = self.stage
                tip = self.tips.next_tip(self.id) if stage.kind == "study" else None
                view["next"] = {"stage": stage.kind, "round": self._next_round(stage), "of": stage.rounds,
                                "completed": self._completed(stage), "tip": tip.text if tip else None,
                                "tip_pending": tip is not None and not tip.ready}
            if phase == "playing":
                view.update(self._board())
            return view

    # ------------------------------------------------------------------ internals

    def _playing(self, tick: int) -> tuple[RefState, Stage]:
        if self.state is None:
            raise PlayError(409, "no round in progress" + ("; all rounds are done" if self.finished else
                                                           "; start the next round first"))
        if tick != self.state.tick:
            raise PlayError(409, f"tick: the kitchen is at Tick #{self.state.tick + 1} (tick {self.state.tick}), "
                                 f"the request was made at tick {tick}; reload the state")
        return self.state, self.stage

    def _decide(self, action: int, reveal: tuple[str, str, int] | None = None) -> None:
        """One decision: step the rules, write the trace row to disk, then commit the new state (and the
        worker speed the assignment reveals)."""
        stage, state, record = self.stage, self.state, self.history[-1]
        ref = stage.ref
        new_state, _, terminated, truncated, info = ref.step(state, action)
        assert not info["illegal_action"], "legality is checked before a decision"
        row = trace_row(stage.spec, stage.kitchen, self.id, record["round"], record["episode_id"], state.tick, action)
        stage.folder.mkdir(parents=True, exist_ok=True)
        try:
            append_trace_rows([row], stage.folder / f"{self.id}.csv")
        except OSError as error:
            raise PlayError(503, f"the decision could not be saved ({error}); nothing changed, try again") from None
        self.state = new_state
        revealed = reveal is not None and reveal not in self.known
        if reveal is not None:
            self.known.add(reveal)
        record["ticks"] = new_state.tick
        passed = new_state.tick - state.tick - (action == ref.end_tick_action)
        self.last_event = (f"No assignment was possible, so time moved on by itself to Tick #{new_state.tick + 1}."
                           if passed > 0 and not (terminated or truncated) else "")
        if terminated or truncated:
            record.update(status="complete", finished=bool(terminated))
            self.state = None
            self._advance_stage()
            self._write_status()
            if stage.kind == "study":   # on disk: the next tip is chosen from it, on the tips' worker
                self.tips.round_done(self.id, dict(record), self.round_frame)
        elif revealed:
            self._write_status()

    def _advance_stage(self) -> None:
        while not self.finished and self._completed(self.stage) >= self.stage.rounds:
            self.stage_index += 1

    def _next_round(self, stage: Stage) -> int:
        """Round numbers count every round started in the stage, complete or not."""
        return 1 + sum(1 for r in self.history if r["stage"] == stage.kind)

    def _completed(self, stage: Stage) -> int:
        return sum(1 for r in self.history if r["stage"] == stage.kind and r["status"] == "complete")

    def _board(self) -> dict:
        stage, state = self.stage, self.state
        spec, ref = stage.spec, stage.ref
        available = set(ref.available_slots(state))
        holder = {slot: w for w, slot in enumerate(state.worker_slot) if slot is not None}
        orders = []
        for index, order in enumerate(spec.orders):
            if order.arrival > state.tick:
                continue  # not arrived yet: people do not know what is coming
            subtasks = []
            for j, subtask in enumerate(spec.dishes[order.dish]):
                slot = index * spec.slots_per_order + j
                if state.done[slot]:
                    status = "done"
                elif slot in holder:
                    status = "in_progress"
                elif slot in available:
                    status = "available"
                else:
                    status = "waiting"
                subtasks.append({"slot": slot, "name": subtask.name, "type": spec.task_types[subtask.task_type],
                                 "state": status,
                                 "worker": spec.workers[holder[slot]].name if slot in holder else None,
                                 "after": [spec.dishes[order.dish][p].name for p in subtask.after]})
            orders.append({"order": index + 1, "dish": order.dish, "subtasks": subtasks,
                           "done": all(s["state"] == "done" for s in subtasks)})
        workers = []
        for w, worker in enumerate(spec.workers):
            speeds = {}
            for k, task_type in enumerate(spec.task_types):
                ticks = worker.ticks[k]
                speeds[task_type] = ("cannot" if ticks is None else ticks
                                     if (stage.kind, worker.name, k) in self.known else None)
            slot = state.worker_slot[w]
            if slot is None:
                status, left = "Idle", 0
            else:
                task_type = spec.task_types[ref.slot_type[slot]]
                duration = ref.duration(w, slot)
                left = state.worker_finish[w] - state.tick
                verb = _VERBS.get(task_type, f"Doing {task_type}")
                status = (f"{verb} – just assigned, {_ticks(duration)}" if left == duration + ref.handoff
                          else f"{verb} – {_ticks(left)} left")
            workers.append({"name": worker.name, "idle": slot is None, "status": status, "ticks_left": left,
                            "slot": slot, "speeds": speeds})
        legal = [action_pair(a, ref.n_workers, ref.n_slots) for a in ref.legal_actions(state)[:-1]]
        record = self.history[-1]
        return {"stage": stage.kind, "round": record["round"], "of": stage.rounds, "tick": state.tick,
                "counter": state.tick + 1, "max_ticks": spec.max_ticks, "tip": record.get("tip"),
                "task_types": list(spec.task_types), "orders": orders, "workers": workers,
                "legal": [{"worker": spec.workers[w].name, "slot": s} for w, s in legal]}

    def _summary(self, record: dict) -> dict:
        stage = next(s for s in self.stages if s.kind == record["stage"])
        return {"stage": record["stage"], "round": record["round"], "of": stage.rounds, "ticks": record["ticks"],
                "status": record["status"], "finished": record["finished"], "max_ticks": stage.spec.max_ticks}

    # ------------------------------------------------------------------ status file

    def _write_status(self) -> None:
        """Rewrite the status file atomically (temporary file, fsync, rename)."""
        data = {"participant_id": self.id, "secret_sha256": self.secret_sha256, "tip_mode": self.tips.mode,
                "rounds": self.history, "known_speeds": sorted([list(k) for k in self.known])}
        self.setup.out_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.status_path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            json.dump(data, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.status_path)

    def _load(self) -> None:
        """Continue after a server restart: rounds left in play are marked incomplete (in memory; written by
        :meth:`save_loaded`); the next round starts fresh."""
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
            self.history = [dict(r) for r in data["rounds"]]
            self.known = {(str(s), str(w), int(k)) for s, w, k in data.get("known_speeds", [])}
            self.secret_sha256 = data.get("secret_sha256")
            if self.secret_sha256 is not None and not isinstance(self.secret_sha256, str):
                raise TypeError("secret_sha256 is not text")
            for record in self.history:
                if record["status"] == "playing":
                    record["status"] = "incomplete"
                    self._unsaved = True
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise PlayError(500, f"{self.status_path.name}: unreadable status file ({error})") from None
