"""A fake Bifrost API server for the SDK's tests.

It mimics the routes the SDK uses (docs/openapi.json) with their status codes and error
bodies: whoami, the organization list, and the org and global config routes (list, get,
reveal with the global fallback, put, delete), with bearer tokens and roles. It records
every request, counts connections, and can be told to answer a route with an error.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

KEY = re.compile(r"^[A-Za-z0-9_]{1,255}$")
TYPES = ("string", "int", "bool", "json", "secret")


class Recorded(NamedTuple):
    """One request the server received."""

    method: str
    raw_path: str      # the path as sent, percent-encoding kept
    path: str          # decoded
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: Any          # parsed JSON or None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class FakeBifrost:
    """The fake server; ``start()`` it, use ``addr``, ``stop()`` it."""

    def __init__(self, close_after_each_response: bool = False) -> None:
        self.orgs: Dict[str, str] = {}                       # id -> name
        self.tokens: Dict[str, Dict[str, Any]] = {}          # token -> principal
        self.configs: Dict[Optional[str], Dict[str, Dict[str, Any]]] = {None: {}}
        self.requests: List[Recorded] = []
        self.connections = 0
        self.close_after_each_response = close_after_each_response
        self.forced: Dict[Tuple[str, str], Tuple[int, bytes]] = {}
        self.lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ----- set-up -----------------------------------------------------------------------

    def start(self, ssl_context: Any = None) -> "FakeBifrost":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def addr(self, scheme: str = "http") -> str:
        assert self._httpd is not None
        return "{}://127.0.0.1:{}".format(scheme, self._httpd.server_address[1])

    def add_org(self, name: str) -> str:
        org_id = str(uuid.uuid4())
        with self.lock:
            self.orgs[org_id] = name
            self.configs[org_id] = {}
        return org_id

    def add_token(self, role: str, org_id: Optional[str] = None, name: str = "ops") -> str:
        token = "bft_" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = {"token_id": str(uuid.uuid4()), "name": name, "role": role,
                                  "org_id": org_id}
        return token

    def put(self, org_id: Optional[str], key: str, kind: str, value: Any,
            description: Optional[str] = None) -> None:
        with self.lock:
            self.configs[org_id][key] = {"type": kind, "value": value,
                                         "description": description, "version": 1}

    def force(self, method: str, path: str, status: int, code: str = "",
              message: str = "", raw: Optional[bytes] = None) -> None:
        """Answers ``method path`` (decoded) with this error (or ``raw`` body) from now on."""
        body = raw if raw is not None else json.dumps(
            {"error": {"code": code, "message": message}}).encode()
        with self.lock:
            self.forced[(method, path)] = (status, body)

    def requests_to(self, path_prefix: str) -> List[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    # ----- the API ----------------------------------------------------------------------

    def handle(self, method: str, parts: List[str], query: Dict[str, List[str]],
               token: Optional[str], body: Any) -> Tuple[int, Any]:
        """Answers a request to the path of the decoded segments ``parts``."""
        principal = self.tokens.get(token or "")
        if principal is None:
            raise ApiError(401, "unauthenticated", "missing, unknown or revoked token")
        if parts[:2] != ["api", "v1"]:
            raise ApiError(404, "not_found", "no such route")
        parts = parts[2:]
        if parts == ["whoami"] and method == "GET":
            return 200, dict(principal)
        if parts == ["orgs"] and method == "GET":
            return 200, self._list_orgs(principal, query)
        if len(parts) >= 3 and parts[0] == "orgs" and parts[2] == "configs":
            org_id = parts[1]
            self._check_org(principal, org_id)
            return self._configs(method, principal, org_id, parts[3:], body)
        if len(parts) >= 2 and parts[0] == "global" and parts[1] == "configs":
            if principal["role"] != "platform-admin":
                raise ApiError(403, "permission_denied", "the global scope needs a "
                               "platform-admin token")
            return self._configs(method, principal, None, parts[2:], body)
        raise ApiError(404, "not_found", "no such route")

    def _list_orgs(self, principal: Dict[str, Any],
                   query: Dict[str, List[str]]) -> List[Dict[str, Any]]:
        name = query.get("name", [None])[0]
        visible = []
        for org_id, org_name in sorted(self.orgs.items(), key=lambda item: item[1]):
            if principal["role"] != "platform-admin" and principal["org_id"] != org_id:
                continue
            if name is not None and org_name != name:
                continue
            visible.append({"id": org_id, "name": org_name,
                            "created_at": "2024-01-01T00:00:00Z"})
        return visible

    def _check_org(self, principal: Dict[str, Any], org_id: str) -> None:
        if principal["role"] == "platform-admin":
            if org_id not in self.orgs:
                raise ApiError(404, "not_found", "organization not found")
            return
        if principal["org_id"] != org_id:
            raise ApiError(403, "permission_denied", "the token belongs to another "
                           "organization")

    def _configs(self, method: str, principal: Dict[str, Any], org_id: Optional[str],
                 rest: List[str], body: Any) -> Tuple[int, Any]:
        role = principal["role"]
        if not rest:
            if method != "GET":
                raise ApiError(405, "method_not_allowed", "method not allowed")
            return 200, self._list(org_id)
        key = rest[0]
        if not KEY.match(key):
            raise ApiError(422, "invalid_argument", "invalid config key")
        reveal = rest[1:] == ["reveal"]
        if len(rest) > 2 or (len(rest) == 2 and not reveal):
            raise ApiError(404, "not_found", "no such route")
        if reveal:
            if method != "GET":
                raise ApiError(405, "method_not_allowed", "method not allowed")
            if role == "reader":
                raise ApiError(403, "permission_denied", "a reader cannot reveal values")
            found, scope = self._lookup(org_id, key)
            return 200, self._entry(key, found, scope, org_id, masked=False)
        if method == "GET":
            found, scope = self._lookup(org_id, key)
            return 200, self._entry(key, found, scope, org_id, masked=True)
        if role not in ("platform-admin", "admin"):
            raise ApiError(403, "permission_denied", "writing configs needs an admin token")
        if method == "PUT":
            return self._put(org_id, key, body)
        if method == "DELETE":
            with self.lock:
                if key not in self.configs[org_id]:
                    raise ApiError(404, "not_found", "config not found")
                del self.configs[org_id][key]
            return 204, None
        raise ApiError(405, "method_not_allowed", "method not allowed")

    def _lookup(self, org_id: Optional[str], key: str) -> Tuple[Dict[str, Any], str]:
        with self.lock:
            if org_id is not None and key in self.configs[org_id]:
                return self.configs[org_id][key], "org"
            if key in self.configs[None]:
                return self.configs[None][key], "global"
        raise ApiError(404, "not_found", "config not found")

    def _list(self, org_id: Optional[str]) -> List[Dict[str, Any]]:
        with self.lock:
            merged = {key: (entry, "global") for key, entry in self.configs[None].items()}
            if org_id is not None:
                merged.update({key: (entry, "org")
                               for key, entry in self.configs[org_id].items()})
        return [self._entry(key, entry, scope, org_id, masked=True)
                for key, (entry, scope) in sorted(merged.items())]

    @staticmethod
    def _entry(key: str, entry: Dict[str, Any], scope: str, org_id: Optional[str],
               masked: bool) -> Dict[str, Any]:
        value = entry["value"]
        if masked and entry["type"] == "secret":
            value = "[SECRET]"
        answer = {"key": key, "type": entry["type"], "value": value, "scope": scope,
                  "org_id": org_id if scope == "org" else None, "version": entry["version"],
                  "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                  "updated_by": "ops"}
        if entry.get("description") is not None:
            answer["description"] = entry["description"]
        return answer

    def _put(self, org_id: Optional[str], key: str, body: Any) -> Tuple[int, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        unknown = set(body) - {"type", "value", "description", "expected_version"}
        if unknown:
            raise ApiError(400, "bad_request", "unknown field {}".format(sorted(unknown)[0]))
        if "type" not in body or "value" not in body:
            raise ApiError(400, "bad_request", "type and value are required")
        kind, value = body["type"], body["value"]
        if kind not in TYPES:
            raise ApiError(422, "invalid_argument", "unknown type")
        valid = {
            "string": isinstance(value, str),
            "secret": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "json": True,
        }[kind]
        if not valid:
            raise ApiError(422, "invalid_argument", "the value does not match the type")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise ApiError(400, "bad_request", "description must be a string")
        with self.lock:
            existed = key in self.configs[org_id]
            version = self.configs[org_id][key]["version"] + 1 if existed else 1
            entry = {"type": kind, "value": value, "description": description,
                     "version": version}
            self.configs[org_id][key] = entry
        return (200 if existed else 201), self._entry(
            key, entry, "org" if org_id else "global", org_id, masked=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    fake: FakeBifrost

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.fake
        split = urllib.parse.urlsplit(self.path)
        raw_path = split.path
        segments = [urllib.parse.unquote(part) for part in raw_path.strip("/").split("/")]
        path = "/" + "/".join(segments)
        query = urllib.parse.parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        body = None
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        status: int
        payload: Optional[bytes]
        try:
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    raise ApiError(400, "bad_request", "malformed JSON") from None
            with fake.lock:
                fake.requests.append(Recorded(self.command, raw_path, path, query,
                                              dict(self.headers.items()), body))
                forced = fake.forced.get((self.command, path))
            if forced is not None:
                status, payload = forced
            else:
                status, answer = fake.handle(self.command, segments, query, token, body)
                payload = None if status == 204 else json.dumps(answer).encode()
        except ApiError as err:
            status = err.status
            payload = json.dumps({"error": {"code": err.code, "message": err.message}}).encode()
        self.send_response(status)
        self.send_header("Cache-Control", "no-store")
        if payload is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if payload:
            self.wfile.write(payload)
        self.wfile.flush()
        if fake.close_after_each_response:
            # Close without announcing it, as a server does with an idle connection.
            self.close_connection = True
