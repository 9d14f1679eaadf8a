"""The game's request guard and participants' secrets, against a real uvicorn server on loopback: every
refusal (foreign Host, foreign or missing Origin, not JSON, no or a wrong secret, too many joins) answers one
line naming the header and changes no byte of any file; what the page itself sends passes."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from bpjax.play.game import GameSetup, secret_digest
from bpjax.play.guard import Guard, JoinLimit
from bpjax.play.server import create_app, running
from tests.conftest import connect, files, post, spec_for, state

GUARD = Guard(allowed_hosts=("lab-pc.local", "kiosk:8443"), allowed_origins=("https://lab-pc.example.org",),
              join_limit=1000)


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    """One burger, two rounds; alice has joined and plays a round, bob has joined."""
    out = tmp_path_factory.mktemp("guarded")
    with running(create_app(GameSetup(spec_for("kitchen/orders=one_burger"), 2, out), GUARD)) as url, \
            connect(url) as client:
        post(client, "join", participant_id="alice")
        post(client, "start", participant_id="alice")
        post(client, "join", participant_id="bob")
        yield url, out, client


def send(url: str, method: str, path: str, headers: dict, body: dict | None = None) -> httpx.Response:
    """One request with exactly these headers (beyond Host, Content-Length and httpx's basics)."""
    with httpx.Client(base_url=url, timeout=10) as raw:
        content = None if body is None else json.dumps(body).encode()
        return raw.request(method, path, headers=headers, content=content)


def page_headers(url: str, client, pid: str = "alice", **more) -> dict:
    """What the page sends for `pid`: its Origin, JSON, the participant's secret."""
    return {"Origin": url.rstrip("/"), "Content-Type": "application/json",
            "Authorization": f"Bearer {client.secrets[pid]}", **more}


def refused(game, method, path, headers, body, status, says):
    url, out, client = game
    before, board = files(out), state(client, "alice")
    response = send(url, method, path, headers, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert re.search(says, error), error
    assert "\n" not in error and len(error) < 300
    assert files(out) == before and state(client, "alice") == board   # no byte of any file changed
    return response


def _port(url):
    return urlsplit(url).port


@pytest.mark.parametrize("case, status, says", [
    ("foreign host", 400, r"^Host: 'evil\.example:\d+' is not a name this server answers to \(it answers to "
                          r"127\.0\.0\.1:\d+, localhost:\d+, lab-pc\.local, kiosk:8443"),
    ("foreign host, page", 400, r"^Host: 'evil\.example:\d+'"),
    ("own address, other port", 400, r"^Host: '127\.0\.0\.1:1'"),
    ("allowed name, other port", 400, r"^Host: 'kiosk:8444'"),
    ("foreign origin", 403, r"^Origin: 'http://evil\.example' is not this game's page \(expected http://127"),
    ("null origin", 403, r"^Origin: 'null' is not this game's page"),
    ("origin on another port", 403, r"^Origin: 'http://127\.0\.0\.1:1'"),
    ("origin over https", 403, r"^Origin: 'https://127\.0\.0\.1:\d+'"),
    ("foreign referer", 403, r"^Referer: 'http://evil\.example/page\?x=1' is not this game's page"),
    ("no origin, no referer", 403, r"^Origin: missing \(and no Referer\)"),
    ("text/plain", 415, r"^Content-Type: expected application/json, got 'text/plain'$"),
    ("form", 415, r"^Content-Type: expected application/json, got 'application/x-www-form-urlencoded'$"),
    ("no content type", 415, r"^Content-Type: expected application/json, got none$"),
    ("rejoin without secret", 401, r"^Authorization: participant 'alice' has joined already; send its secret"),
    ("rejoin with a wrong secret", 403, r"^Authorization: wrong secret for participant 'alice'$"),
    ("rejoin with another's secret", 403, r"^Authorization: wrong secret for participant 'alice'$"),
    ("not a bearer token", 401, r"^Authorization: participant 'alice' has joined already"),
    ("state without secret", 401, r"^Authorization: participant 'alice'"),
    ("state with a wrong secret", 403, r"^Authorization: wrong secret for participant 'alice'$"),
    ("assign without secret", 401, r"^Authorization: participant 'alice'"),
    ("next tick with a wrong secret", 403, r"^Authorization: wrong secret for participant 'alice'$"),
    ("start with another's secret", 403, r"^Authorization: wrong secret for participant 'alice'$"),
])
def test_each_refusal_names_the_header_and_writes_nothing(game, case, status, says):
    url, out, client = game
    port, own = _port(url), page_headers(url, client)
    join = ("POST", "/api/join", {"participant_id": "alice"})
    move = ("POST", "/api/next_tick", {"participant_id": "alice", "tick": 0})
    cases = {
        "foreign host": (*join, {**own, "Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}),
        "foreign host, page": ("GET", "/", None, {"Host": f"evil.example:{port}"}),
        "own address, other port": (*move, {**own, "Host": "127.0.0.1:1"}),
        "allowed name, other port": ("GET", "/", None, {"Host": "kiosk:8444"}),
        "foreign origin": (*move, {**own, "Origin": "http://evil.example"}),
        "null origin": (*move, {**own, "Origin": "null"}),
        "origin on another port": (*move, {**own, "Origin": "http://127.0.0.1:1"}),
        "origin over https": (*move, {**own, "Origin": f"https://127.0.0.1:{port}"}),
        "foreign referer": (*move, {k: v for k, v in own.items() if k != "Origin"}
                            | {"Referer": "http://evil.example/page?x=1"}),
        "no origin, no referer": (*move, {k: v for k, v in own.items() if k != "Origin"}),
        "text/plain": (*move, {**own, "Content-Type": "text/plain"}),
        "form": (*move, {**own, "Content-Type": "application/x-www-form-urlencoded"}),
        "no content type": (*move, {k: v for k, v in own.items() if k != "Content-Type"}),
        "rejoin without secret": (*join, {k: v for k, v in own.items() if k != "Authorization"}),
        "rejoin with a wrong secret": (*join, {**own, "Authorization": "Bearer aaaa-bbbb-cccc-dddd"}),
        "rejoin with another's secret": (*join, {**own, "Authorization": f"Bearer {client.secrets['bob']}"}),
        "not a bearer token": (*join, {**own, "Authorization": f"Basic {client.secrets['alice']}"}),
        "state without secret": ("GET", "/api/state?participant_id=alice", None, {}),
        "state with a wrong secret": ("GET", "/api/state?participant_id=alice", None,
                                      {"Authorization": "Bearer aaaa-bbbb-cccc-dddd"}),
        "assign without secret": ("POST", "/api/assign", {"participant_id": "alice", "worker": "chef", "slot": 0,
                                                          "tick": 0},
                                  {k: v for k, v in own.items() if k != "Authorization"}),
        "next tick with a wrong secret": (*move, {**own, "Authorization": "Bearer x"}),
        "start with another's secret": ("POST", "/api/start", {"participant_id": "alice"},
                                        {**own, "Authorization": f"Bearer {client.secrets['bob']}"}),
    }
    method, path, body, headers = cases[case]
    response = refused(game, method, path, headers, body, status, says)
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="bpjax-play"'
    assert response.headers["Cache-Control"] == "no-store"


def test_a_request_without_host_is_refused(game):
    url, out, _ = game
    before = files(out)
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=10) as sock:   # HTTP/1.0 needs no Host
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and json.loads(body) == {"error": "Host: missing"}
    assert files(out) == before


def test_what_the_page_and_the_settings_allow_passes(game):
    url, _, client = game
    port, own = _port(url), page_headers(url, client)
    assert send(url, "GET", "/", {"Host": f"localhost:{port}"}).status_code == 200
    assert send(url, "GET", "/", {"Host": "LAB-PC.local:9999"}).status_code == 200   # a name alone: any port
    assert send(url, "GET", "/", {"Host": "kiosk:8443"}).status_code == 200
    body = {"participant_id": "alice"}
    for headers in [own, {**own, "Content-Type": "application/json; charset=utf-8"},
                    {**own, "Origin": "https://lab-pc.example.org"},                      # allowed_origins
                    {**own, "Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"},
                    {k: v for k, v in own.items() if k != "Origin"} | {"Referer": f"{url}?participant=alice"},
                    {**own, "Authorization": "Bearer " + client.secrets["alice"].upper().replace("-", " ")}]:
        response = send(url, "POST", "/api/join", headers, body)
        assert response.status_code == 200, (headers, response.text)
        assert "secret" not in response.json() and response.json()["phase"] == "playing"


def test_secrets_are_random_and_only_their_digest_is_stored(game):
    url, out, client = game
    alice, bob = client.secrets["alice"], client.secrets["bob"]
    assert re.fullmatch(r"([2-9a-hjkmnp-z]{4}-){3}[2-9a-hjkmnp-z]{4}", alice) and alice != bob
    status = (out / "alice.status.json").read_text()
    assert alice not in status and alice.replace("-", "") not in status
    assert json.loads(status)["secret_sha256"] == hashlib.sha256(alice.replace("-", "").encode()).hexdigest()
    assert secret_digest(alice) == secret_digest(" " + alice.upper() + " ")


def test_after_a_restart_only_the_secret_continues_and_a_refused_join_writes_nothing(tmp_path):
    """Server A still runs (its status file says 'playing'); server B, started on the same folder, loads
    alice only for her secret: without it nothing is written; with it her round is marked incomplete."""
    setup = GameSetup(spec_for("kitchen/orders=one_burger"), 2, tmp_path)
    with running(create_app(setup)) as url_a, connect(url_a) as first:
        post(first, "join", participant_id="alice")
        post(first, "start", participant_id="alice")
        with running(create_app(setup)) as url_b, connect(url_b) as second:
            before = files(tmp_path)
            for secret in (None, "aaaa-bbbb-cccc-dddd"):
                if secret:
                    second.secrets["alice"] = secret
                response = post(second, "join", participant_id="alice")
                assert response.status_code == (403 if secret else 401)
                assert files(tmp_path) == before
            second.secrets["alice"] = first.secrets["alice"]
            view = post(second, "join", participant_id="alice").json()
            assert view["phase"] == "between" and view["summary"]["status"] == "incomplete"
            status = json.loads((tmp_path / "alice.status.json").read_text())
            assert [r["status"] for r in status["rounds"]] == ["incomplete"]


def test_files_without_a_secret_are_not_claimed(tmp_path):
    """A status file written without a secret, or trace files without a status file: nobody can join as
    that participant (nothing is written); a new id works."""
    (tmp_path / "old.status.json").write_text(json.dumps({"participant_id": "old", "rounds": []}))
    (tmp_path / "orphan.csv").write_text("player_id,round,episode_id,tick,worker,slot,kitchen\n")
    with running(create_app(GameSetup(spec_for("kitchen/orders=one_burger"), 1, tmp_path))) as url, \
            connect(url) as client:
        before = files(tmp_path)
        response = post(client, "join", participant_id="old")
        assert response.status_code == 403 and "recorded without a secret" in response.json()["error"]
        response = post(client, "join", participant_id="orphan")
        assert response.status_code == 409 and "has trace files but no status file" in response.json()["error"]
        assert files(tmp_path) == before
        assert post(client, "join", participant_id="new").status_code == 200


def test_joins_beyond_the_limit_get_429_with_retry_after(tmp_path):
    guard = Guard(join_limit=3, join_window_s=60)
    with running(create_app(GameSetup(spec_for("kitchen/orders=one_burger"), 1, tmp_path), guard)) as url, \
            connect(url) as client:
        for i in range(3):
            assert post(client, "join", participant_id=f"p{i}").status_code == 200
        before = files(tmp_path)
        for pid in ("p9", "p0"):   # new or coming back: every join counts
            response = post(client, "join", participant_id=pid)
            assert response.status_code == 429
            wait = response.headers["Retry-After"]
            assert response.json()["error"] == f"too many joins: at most 3 in 60 s; try again in {wait} s"
            assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert files(tmp_path) == before
        assert post(client, "start", participant_id="p0").status_code == 200   # playing is not limited


def test_the_join_limit_is_a_sliding_window():
    now = [100.0]
    limit = JoinLimit(2, 10.0, clock=lambda: now[0])
    limit.take()
    now[0] = 104.0
    limit.take()
    with pytest.raises(Exception) as refused_at:
        limit.take()
    assert refused_at.value.status == 429 and refused_at.value.headers == {"Retry-After": "6"}
    now[0] = 110.0      # the first join has left the window
    limit.take()
    with pytest.raises(Exception):
        limit.take()
    now[0] = 114.0
    limit.take()
