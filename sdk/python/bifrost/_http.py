"""HTTP transport to the Bifrost API: kept-alive connections, one per concurrent request.

The address, token and CA file come from the environment (``BIFROST_ADDR``,
``BIFROST_TOKEN``, ``BIFROST_CACERT``) and are read at every call, so a script may set
them after importing the SDK. Nothing here logs or formats a request body or the token.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import ssl
import threading
import urllib.parse
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ._errors import BifrostError

DEFAULT_ADDR = "http://127.0.0.1:8420"
TIMEOUT_SECONDS = 30.0
USER_AGENT = "bifrost-python/0.1.0"
MAX_IDLE_CONNECTIONS = 8

logger = logging.getLogger("bifrost")

# Errors that mean a kept-alive connection was closed by the server while idle.
_DROPPED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
            ConnectionAbortedError)


class Settings(NamedTuple):
    """Where the SDK connects and with which credentials."""

    addr: str
    token: str
    cacert: Optional[str]


def current_settings() -> Settings:
    """The settings named by the environment now."""
    addr = os.environ.get("BIFROST_ADDR", "").strip() or DEFAULT_ADDR
    token = os.environ.get("BIFROST_TOKEN", "").strip()
    cacert = os.environ.get("BIFROST_CACERT", "").strip() or None
    return Settings(addr, token, cacert)


def quote_segment(segment: str) -> str:
    """Percent-encodes one path segment (a ``/`` is encoded too)."""
    return urllib.parse.quote(segment, safe="")


class Response:
    """A complete answer of the server."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON; BifrostError when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BifrostError(
                "bifrost: {} {}: the server answered {} with a body that is not JSON".format(
                    self.method, self.path, self.status),
                status=self.status) from None

    def error_details(self) -> Tuple[Optional[str], str]:
        """The API error's code and message, as far as the body has them."""
        try:
            error = json.loads(self.body.decode("utf-8"))["error"]
            code = error.get("code")
            message = error.get("message")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            return None, ""
        return (code if isinstance(code, str) else None,
                message if isinstance(message, str) else "")

    def error(self) -> Exception:
        """The exception for a non-2xx answer: PermissionError for 403, else BifrostError."""
        code, message = self.error_details()
        if self.status == 403:
            return PermissionError(message or "bifrost: 403 permission_denied: {} {}".format(
                self.method, self.path))
        text = "bifrost: {} {}: {} {}".format(
            self.method, self.path, self.status, code or http.client.responses.get(
                self.status, "error"))
        if message:
            text += ": " + message
        return BifrostError(text, status=self.status, code=code)

    def unexpected(self, what: str) -> BifrostError:
        """A BifrostError for a 2xx answer that is not what the API promises."""
        return BifrostError("bifrost: {} {}: unexpected answer from the server: {}".format(
            self.method, self.path, what), status=self.status)


class Transport:
    """Sends requests to one server with one token; thread-safe.

    Each request takes an idle kept-alive connection, or opens one, and puts it back when
    the answer is read: every thread (and so every concurrent call) has a connection of its
    own while it sends, and later calls, from any thread, reuse it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        addr = settings.addr if "://" in settings.addr else "http://" + settings.addr
        parts = urllib.parse.urlsplit(addr)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BifrostError(
                "bifrost: BIFROST_ADDR must be http://HOST:PORT or https://HOST:PORT, "
                "not {!r}".format(settings.addr))
        try:
            self._port = parts.port
        except ValueError:
            raise BifrostError("bifrost: BIFROST_ADDR has an invalid port: {!r}".format(
                settings.addr)) from None
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._prefix = parts.path.rstrip("/")
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._lock = threading.Lock()
        self._idle: List[http.client.HTTPConnection] = []
        self.addr = settings.addr

    @property
    def identity(self) -> Tuple[str, str]:
        """(address, token): a key for caching answers per server and token."""
        return (self._settings.addr, self._settings.token)

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl_context is None:
                try:
                    self._ssl_context = ssl.create_default_context(
                        cafile=self._settings.cacert)
                except (OSError, ssl.SSLError) as exc:
                    raise BifrostError("bifrost: cannot load BIFROST_CACERT {}: {}".format(
                        self._settings.cacert, exc)) from None
            return self._ssl_context

    def _new_connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port,
                                               timeout=TIMEOUT_SECONDS,
                                               context=self._context())
        return http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_SECONDS)

    def _acquire(self, fresh: bool) -> Tuple[http.client.HTTPConnection, bool]:
        """An idle kept-alive connection (reused=True) or a new one."""
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        return self._new_connection(), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Closes the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _headers(self, has_body: bool) -> Dict[str, str]:
        token = self._settings.token
        if not token:
            raise BifrostError("bifrost: BIFROST_TOKEN is not set")
        if not all(33 <= ord(ch) <= 126 for ch in token):
            raise BifrostError("bifrost: BIFROST_TOKEN holds characters a token cannot have")
        headers = {"Authorization": "Bearer " + token, "Accept": "application/json",
                   "User-Agent": USER_AGENT}
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def request(self, method: str, path: str, body: Any = None,
                query: Optional[Dict[str, str]] = None) -> Response:
        """Sends one request (``body`` as JSON unless None) and reads the whole answer.

        A connection kept alive from an earlier request that turns out to be closed is
        replaced once. Failures to connect or to read an answer are BifrostError.
        """
        payload = None
        if body is not None:
            payload = json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
        headers = self._headers(payload is not None)
        target = self._prefix + path
        if query:
            target += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        logger.debug("%s %s", method, path)
        for attempt in range(2):
            conn, reused = self._acquire(fresh=attempt > 0)
            try:
                conn.request(method, target, body=payload, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            except _DROPPED as exc:
                conn.close()
                if reused and attempt == 0:
                    logger.debug("kept-alive connection to %s was closed; reconnecting",
                                 self.addr)
                    continue
                raise BifrostError("bifrost: {} {}: the connection to {} failed: {}".format(
                    method, path, self.addr, exc)) from None
            except BifrostError:
                conn.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise BifrostError("bifrost: {} {}: cannot reach {}: {}".format(
                    method, path, self.addr, exc or type(exc).__name__)) from None
            if answer.will_close:
                conn.close()
            else:
                self._release(conn)
            return Response(method, path, answer.status, data)
        raise AssertionError("unreachable")


_transports: Dict[Settings, Transport] = {}
_transports_lock = threading.Lock()


def transport() -> Transport:
    """The transport for the current environment's settings (one per settings)."""
    settings = current_settings()
    with _transports_lock:
        found = _transports.get(settings)
        if found is None:
            found = Transport(settings)
            _transports[settings] = found
        return found


def reset() -> None:
    """Closes and forgets every transport."""
    with _transports_lock:
        transports = list(_transports.values())
        _transports.clear()
    for found in transports:
        found.close()
