"""The web app: the page (static files) and a small JSON API over :class:`~bpjax.play.game.Participant`.

The server is authoritative: the page only sends intents, every one is checked against the rules here, and a
refused one answers 4xx with ``{"error": "..."}`` and changes nothing.

=====================  ====================================  ===========================================
``POST /api/join``     ``{"participant_id"}``                 creates (or resumes) the participant
``GET  /api/state``    ``?participant_id=``                   the board
``POST /api/start``    ``{"participant_id"}``                 starts the next round
``POST /api/assign``   ``{"participant_id", "worker",         one assignment (``tick`` = the tick the page
                       "slot", "tick"}``                      shows, so a stale page cannot act twice)
``POST /api/next_tick`` ``{"participant_id", "tick"}``        ends the tick
=====================  ====================================  ===========================================

Every answer with status 200 is the participant's new state. Errors: 400 malformed request or participant
id, 404 unknown participant, 409 stale tick or wrong phase (no round in play, round already in play, all
done), 413 body too large, 422 an assignment against the rules (unknown worker or subtask, busy worker,
missing skill, subtask started, done or not available yet), 503 the decision could not be written to disk.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Iterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bpjax.play.game import GameSetup, Participant, PlayError, check_participant_id

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 4096


class Participants:
    """Participants in memory, created (or resumed from their files) on first join."""

    def __init__(self, setup: GameSetup):
        self.setup = setup
        self._by_id: dict[str, Participant] = {}
        self._lock = threading.Lock()

    def join(self, participant_id: str) -> Participant:
        with self._lock:
            if participant_id not in self._by_id:
                self._by_id[participant_id] = Participant(participant_id, self.setup)
            return self._by_id[participant_id]

    def get(self, participant_id: str) -> Participant:
        with self._lock:
            participant = self._by_id.get(participant_id)
        if participant is None:
            raise PlayError(404, f"participant_id: unknown participant {participant_id!r}; join first")
        return participant

    def abandon_all(self) -> None:
        with self._lock:
            participants = list(self._by_id.values())
        for participant in participants:
            participant.abandon()


def _field(body: dict, name: str, kind: type) -> Any:
    if name not in body:
        raise PlayError(400, f"{name}: missing")
    value = body[name]
    # bool is an int in Python; a JSON true is not a slot or a tick
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PlayError(400, f"{name}: expected {'an integer' if kind is int else 'a string'}, got {value!r}")
    return value


async def _body(request: Request) -> dict:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PlayError(413, f"request body: over {MAX_BODY_BYTES} bytes")
    raw = b""
    async for chunk in request.stream():  # stop reading at the limit, whatever the headers claimed
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PlayError(413, f"request body: over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise PlayError(400, "request body: not valid JSON") from None
    if not isinstance(body, dict):
        raise PlayError(400, f"request body: expected a JSON object, got {type(body).__name__}")
    return body


def create_app(setup: GameSetup) -> Starlette:
    """The game's web app for `setup` (participants' files go to ``setup.out_dir``)."""
    participants = Participants(setup)

    def act_and_view(participant: Participant, action=None, *args) -> dict:
        if action is not None:
            action(*args)
        return participant.view()

    async def answer(participant: Participant, action=None, *args) -> JSONResponse:
        # in a worker thread: actions write to disk and take the participant's lock
        return JSONResponse(await run_in_threadpool(act_and_view, participant, action, *args))

    def find(body: dict) -> Participant:
        return participants.get(check_participant_id(_field(body, "participant_id", str)))

    async def join(request: Request) -> JSONResponse:
        participant_id = check_participant_id(_field(await _body(request), "participant_id", str))
        return await answer(await run_in_threadpool(participants.join, participant_id))

    async def state(request: Request) -> JSONResponse:
        return await answer(participants.get(check_participant_id(request.query_params.get("participant_id"))))

    async def start(request: Request) -> JSONResponse:
        participant = find(await _body(request))
        return await answer(participant, participant.start_round)

    async def assign(request: Request) -> JSONResponse:
        body = await _body(request)
        participant = find(body)
        worker, slot, tick = _field(body, "worker", str), _field(body, "slot", int), _field(body, "tick", int)
        return await answer(participant, participant.assign, worker, slot, tick)

    async def next_tick(request: Request) -> JSONResponse:
        body = await _body(request)
        participant = find(body)
        return await answer(participant, participant.next_tick, _field(body, "tick", int))

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    async def refused(request: Request, error: PlayError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    @asynccontextmanager
    async def lifespan(app):
        yield
        participants.abandon_all()  # rounds still in play when the server stops are incomplete

    app = Starlette(
        routes=[Route("/", index), Route("/api/join", join, methods=["POST"]),
                Route("/api/state", state, methods=["GET"]), Route("/api/start", start, methods=["POST"]),
                Route("/api/assign", assign, methods=["POST"]), Route("/api/next_tick", next_tick, methods=["POST"]),
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")],
        exception_handlers={PlayError: refused, HTTPException: http_error}, lifespan=lifespan)
    app.state.participants = participants
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on (host, port); port 0 picks a free one (read it back from the socket)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if sock.family == socket.AF_INET6 else host}:{port}/"


@contextmanager
def running(app: Starlette, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread (tests, screenshots); yields the base URL and stops
    the server (its shutdown included) on exit."""
    import uvicorn

    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the game server did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
