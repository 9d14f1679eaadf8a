"""The web app: the page (static files) and a small JSON API over :class:`~bpjax.play.game.Participant`.

The server is authoritative: the page only sends intents, every one is checked against the rules here, and a
refused one answers 4xx with ``{"error": "..."}`` and changes nothing (no byte of any file).

=====================  ====================================  ===========================================
``POST /api/join``     ``{"participant_id"}``                 creates the participant (the answer holds its
                                                              ``secret``, once) or, with its secret, resumes it
``GET  /api/state``    ``?participant_id=``                   the board
``POST /api/start``    ``{"participant_id"}``                 starts the next round (a study round whose
                                                              tip is still being chosen waits for it, at
                                                              most ``tip_wait_s``)
``POST /api/assign``   ``{"participant_id", "worker",         one assignment (``tick`` = the tick the page
                       "slot", "tick"}``                      shows, so a stale page cannot act twice)
``POST /api/next_tick`` ``{"participant_id", "tick"}``        ends the tick
=====================  ====================================  ===========================================

Every request but the first join of a participant carries its secret, ``Authorization: Bearer SECRET``.
Before any of this, :mod:`bpjax.play.guard` checks the Host, and for POSTs the Origin and
``Content-Type: application/json``, and limits joins.

Every answer with status 200 is the participant's new state. Errors: 400 malformed request, participant id
or Host, 401 no secret for a participant who has joined, 403 a wrong secret or a foreign Origin, 404
unknown participant (or not joined since the server started), 405 wrong method (with ``Allow``), 409 stale
tick or wrong phase (no round in play, round already in play, all done), 413 body too large, 415 not JSON,
422 an assignment against the rules (unknown worker or subtask, busy worker, missing skill, subtask
started, done or not available yet), 429 too many joins (with ``Retry-After``), 503 the decision could not
be written to disk.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bpjax.data.traces import shown
from bpjax.play.game import GameSetup, Participant, PlayError, check_participant_id
from bpjax.play.guard import Guard, JoinLimit, RequestGuard

if TYPE_CHECKING:
    import uvicorn

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 4096
NO_STORE = {"Cache-Control": "no-store"}   # answers hold a participant's board (and once its secret)


class Participants:
    """Participants in memory: created on their first join, or loaded from their files when they come
    back with their secret."""

    def __init__(self, setup: GameSetup):
        self.setup = setup
        self.tips = setup.round_tips()   # one per server: the participants' tip choices
        self._by_id: dict[str, Participant] = {}
        self._lock = threading.Lock()

    def join(self, participant_id: str, secret: str | None) -> tuple[Participant, str | None]:
        """(the participant, its new secret if it was created now, else None)."""
        with self._lock:   # one join at a time: two first joins of one id cannot both get a secret
            participant, created = self._by_id.get(participant_id), None
            if participant is not None:
                participant.check_secret(secret)
            else:
                participant = Participant(participant_id, self.setup, self.tips)  # reads its files, writes nothing
                if participant.status_path.exists():
                    participant.check_secret(secret)
                    participant.save_loaded()
                else:
                    created = participant.register()
                participant.begin_tips()
            self._by_id[participant_id] = participant
            return participant, created

    def get(self, participant_id: str, secret: str | None) -> Participant:
        with self._lock:
            participant = self._by_id.get(participant_id)
        if participant is None:
            raise PlayError(404, f"participant_id: unknown participant {shown(participant_id)}; join first")
        participant.check_secret(secret)
        return participant

    def abandon_all(self) -> None:
        with self._lock:
            participants = list(self._by_id.values())
        for participant in participants:
            participant.abandon()
        self.tips.close()


async def settled(job, timeout_s: float) -> bool:
    """Wait (without a thread) until a concurrent.futures job is done, at most `timeout_s`; True if it is."""
    if job.done():
        return True
    loop, done = asyncio.get_running_loop(), asyncio.Event()

    def wake(_):
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:  # the loop has closed (the server stopped meanwhile)
            pass

    job.add_done_callback(wake)
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except asyncio.TimeoutError:
        return False
    return True


def _field(body: dict, name: str, kind: type) -> Any:
    if name not in body:
        raise PlayError(400, f"{name}: missing")
    value = body[name]
    # bool is an int in Python; a JSON true is not a slot or a tick
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PlayError(400, f"{name}: expected {'an integer' if kind is int else 'a string'}, got {shown(value)}")
    return value


def _secret(request: Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


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


def create_app(setup: GameSetup, guard: Guard = Guard()) -> Starlette:
    """The game's web app for `setup` (participants' files go to ``setup.out_dir``), behind `guard`."""
    participants = Participants(setup)
    joins = JoinLimit(guard.join_limit, guard.join_window_s)

    def act_and_view(participant: Participant, action=None, *args) -> dict:
        if action is not None:
            action(*args)
        return participant.view()

    async def answer(participant: Participant, action=None, *args, extra: dict | None = None) -> JSONResponse:
        # in a worker thread: actions write to disk and take the participant's lock
        view = await run_in_threadpool(act_and_view, participant, action, *args)
        return JSONResponse({**(extra or {}), **view}, headers=NO_STORE)

    def find(request: Request, body: dict) -> Participant:
        return participants.get(check_participant_id(_field(body, "participant_id", str)), _secret(request))

    async def join(request: Request) -> JSONResponse:
        joins.take()
        participant_id = check_participant_id(_field(await _body(request), "participant_id", str))
        participant, secret = await run_in_threadpool(participants.join, participant_id, _secret(request))
        return await answer(participant, extra={"secret": secret} if secret else None)

    async def state(request: Request) -> JSONResponse:
        participant_id = check_participant_id(request.query_params.get("participant_id"))
        return await answer(participants.get(participant_id, _secret(request)))

    async def start(request: Request) -> JSONResponse:
        participant = find(request, await _body(request))
        job = await run_in_threadpool(participant.tip_pending)   # takes the participant's lock
        if job is not None:  # its tip is being chosen: wait on the event loop, no thread held
            await settled(job, setup.tip_wait_s)
        return await answer(participant, participant.start_round)

    async def assign(request: Request) -> JSONResponse:
        body = await _body(request)
        participant = find(request, body)
        worker, slot, tick = _field(body, "worker", str), _field(body, "slot", int), _field(body, "tick", int)
        return await answer(participant, participant.assign, worker, slot, tick)

    async def next_tick(request: Request) -> JSONResponse:
        body = await _body(request)
        participant = find(request, body)
        return await answer(participant, participant.next_tick, _field(body, "tick", int))

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    async def refused(request: Request, error: PlayError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers={**NO_STORE, **error.headers})

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        # keeps Starlette's headers: a 405 says which methods are allowed (Allow)
        return JSONResponse({"error": error.detail}, status_code=error.status_code,
                            headers={**NO_STORE, **(error.headers or {})})

    @asynccontextmanager
    async def lifespan(app):
        yield
        participants.abandon_all()  # rounds still in play when the server stops are incomplete

    app = Starlette(
        routes=[Route("/", index), Route("/api/join", join, methods=["POST"]),
                Route("/api/state", state, methods=["GET"]), Route("/api/start", start, methods=["POST"]),
                Route("/api/assign", assign, methods=["POST"]), Route("/api/next_tick", next_tick, methods=["POST"]),
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")],
        middleware=[Middleware(RequestGuard, guard=guard)],
        exception_handlers={PlayError: refused, HTTPException: http_error}, lifespan=lifespan)
    app.state.participants = participants
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one (read it back from the socket). It listens
    at once, so connections made as soon as the URL is printed wait in the backlog until the server runs."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)   # uvicorn's own backlog
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if sock.family == socket.AF_INET6 else host}:{port}/"


def server_for(app: Starlette) -> uvicorn.Server:
    """The game's uvicorn server, one for the CLI and the tests: idle connections stay open 75 s (nginx's
    default), not uvicorn's 5, since closing one as a page sends its next decision on it fails that decision;
    a request still running at shutdown gets a few seconds to finish."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5,
                                         timeout_keep_alive=75))


@contextmanager
def running(app: Starlette, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread (tests, screenshots); yields the base URL and stops
    the server (its shutdown included) on exit."""
    sock = bind(host, port)
    server = server_for(app)
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
