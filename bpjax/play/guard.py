"""What a request must show before the game looks at it: a Host this server answers to, and, for requests
that change state, the page's own Origin and a JSON body. Joins are rate-limited.

* **Host** (every request): the connection's local address or ``localhost``, on the server's port, or a name
  in ``allowed_hosts`` (``name`` matches any port, ``name:port`` that port). Refused 400: a page of another site
  that rebinds its DNS name to this machine sends its own name.
* **Origin** (every request but GET / HEAD / OPTIONS): the origin the page was served from
  (``http://`` + the Host) or one in ``allowed_origins``; without an Origin header, the Referer's origin;
  with neither, refused too. Refused 403: browsers always send an Origin with such requests, and a page
  of another site cannot forge it.
* **Content-Type** (the same requests): ``application/json``, refused 415 otherwise: a form or a
  ``text/plain`` fetch of another site is sent without asking, a JSON one only after a CORS preflight this
  server never grants.
* **Joins**: at most ``joins`` in any ``seconds`` seconds, all participants together; beyond, 429 with
  ``Retry-After``.

Every refusal answers ``{"error": "..."}`` naming the header, before the request body is read.
"""

from __future__ import annotations

import collections
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bpjax.data.traces import shown
from bpjax.env.config import ConfigError
from bpjax.play.game import PlayError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_JOINS = 100_000
MAX_WINDOW_S = 86_400.0
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?|\[[0-9a-f:.]+\]|[0-9a-f:]*:[0-9a-f:.]+")


@dataclass(frozen=True)
class Guard:
    """The checks' settings (``conf/play.yaml``); :meth:`from_config` validates them."""

    allowed_hosts: tuple[str, ...] = ()    # Host names served besides the local address and localhost
    allowed_origins: tuple[str, ...] = ()  # page origins accepted besides the server's own
    join_limit: int = 60                   # joins allowed ...
    join_window_s: float = 60.0            # ... in any window of this many seconds

    @classmethod
    def from_config(cls, allowed_hosts, allowed_origins, joins, seconds) -> Guard:
        """Validated settings; ConfigError naming the setting otherwise."""
        hosts = []
        for entry in _strings("allowed_hosts", allowed_hosts):
            name, port = _split_host(entry.strip().lower())
            if name is None or not _NAME.fullmatch(name):
                raise ConfigError(f"allowed_hosts: {shown(entry)} is not a host name or host:port")
            hosts.append(entry.strip().lower())
        origins = []
        for entry in _strings("allowed_origins", allowed_origins):
            origin = _origin_of(entry.strip(), strict=True)
            if origin is None:
                raise ConfigError(f"allowed_origins: {shown(entry)} is not an origin (http[s]://host[:port], "
                                  "no path)")
            origins.append(entry.strip())
        if not isinstance(joins, int) or isinstance(joins, bool) or not 1 <= joins <= MAX_JOINS:
            raise ConfigError(f"join_limit.joins: expected an integer in 1..{MAX_JOINS}, got {shown(joins)}")
        if (not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds)
                or not 0 < seconds <= MAX_WINDOW_S):
            raise ConfigError(f"join_limit.seconds: expected a number in (0, {MAX_WINDOW_S:g}], got {shown(seconds)}")
        return cls(tuple(hosts), tuple(origins), joins, float(seconds))


def _strings(name: str, value) -> list[str]:
    value = [] if value is None else list(value) if not isinstance(value, str) else [value]
    bad = next((v for v in value if not isinstance(v, str)), None)
    if bad is not None:
        raise ConfigError(f"{name}: expected a list of strings, got {shown(bad)}")
    return value


def _split_host(text: str) -> tuple[str | None, int | None]:
    """("name", port or None) of a Host header value; (None, None) when it is malformed."""
    if text.startswith("["):   # [IPv6]:port
        end = text.find("]")
        name, rest = text[1:end], text[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            return None, None
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        name, port = text.split(":")
    else:
        name, port = text, None
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return None, None
    return (name or None), (int(port) if port is not None else None)


def _origin_of(url: str, strict: bool = False) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or a URL (`strict`: nothing but an origin), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if strict and (parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


class JoinLimit:
    """At most `limit` joins in any window of `window_s` seconds (a sliding log of join times)."""

    def __init__(self, limit: int, window_s: float, clock=time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def take(self) -> None:
        """Count one join; PlayError(429) with the seconds to wait when the window is full."""
        with self._lock:
            now = self.clock()
            while self._times and self._times[0] <= now - self.window_s:
                self._times.popleft()
            if len(self._times) >= self.limit:
                wait = max(1, math.ceil(self._times[0] + self.window_s - now))
                raise PlayError(429, f"too many joins: at most {self.limit} in {self.window_s:g} s; "
                                     f"try again in {wait} s", headers={"Retry-After": str(wait)})
            self._times.append(now)


class RequestGuard:
    """ASGI middleware: refuses, before the app sees it, a request whose Host, Origin or Content-Type is
    not what the module docstring says."""

    def __init__(self, app, guard: Guard):
        self.app, self.guard = app, guard
        self.origins = {_origin_of(origin) for origin in guard.allowed_origins}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            problem = self.check(scope)
            if problem is not None:
                status, message = problem
                body = json.dumps({"error": message}, separators=(",", ":")).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()),
                                        (b"cache-control", b"no-store")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def check(self, scope) -> tuple[int, str] | None:
        """(status, message) of the first check the request fails, or None."""
        headers = {}
        for key, value in scope["headers"]:
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        host = headers.get("host")
        served = self.served(scope)
        if host is None:
            return 400, "Host: missing"
        if not self.host_allowed(host, scope):
            return 400, (f"Host: {shown(host)} is not a name this server answers to (it answers to "
                         f"{', '.join(served)}; add names with allowed_hosts)")
        if scope["method"] in SAFE_METHODS:
            return None
        own = _origin_of(f"{scope.get('scheme', 'http')}://{host}")
        origin, header = headers.get("origin"), "Origin"
        if origin is None and "referer" in headers:
            origin, header = headers["referer"], "Referer"
        if origin is None:
            return 403, ("Origin: missing (and no Referer); a request that changes the game must come from "
                         f"its page, or send Origin: {scope.get('scheme', 'http')}://{host}")
        found = _origin_of(origin.strip())
        if found is None or (found != own and found not in self.origins):
            return 403, (f"{header}: {shown(origin)} is not this game's page (expected "
                         f"{scope.get('scheme', 'http')}://{host}; add origins with allowed_origins)")
        kind = headers.get("content-type")
        if kind is None or kind.split(";")[0].strip().lower() != "application/json":
            return 415, f"Content-Type: expected application/json, got {shown(kind) if kind else 'none'}"
        return None

    def served(self, scope) -> list[str]:
        server = scope.get("server")
        names = [] if not server else [
            f"{_bracketed(server[0])}:{server[1]}", f"localhost:{server[1]}"]
        return list(dict.fromkeys(names + list(self.guard.allowed_hosts)))

    def host_allowed(self, host: str, scope) -> bool:
        name, port = _split_host(host.strip().lower())
        if name is None:
            return False
        port = port or DEFAULT_PORTS.get(scope.get("scheme", "http"), 80)
        server = scope.get("server")
        if server and port == server[1] and name in (str(server[0]).lower(), "localhost"):
            return True
        for entry in self.guard.allowed_hosts:
            allowed_name, allowed_port = _split_host(entry)
            if allowed_name == name and allowed_port in (None, port):
                return True
        return False


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in str(address) else str(address)
