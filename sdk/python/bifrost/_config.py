"""The ``config`` object: reading and writing an organization's configuration."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Dict, Optional, TypeVar

from . import _http, _scope, _values

T = TypeVar("T")


class _Missing:
    """The default of ``default=``: no default given (so ``default=None`` is one)."""

    def __repr__(self) -> str:
        return "<no default>"


MISSING: Any = _Missing()


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError("a config key must be a str, not {}".format(type(key).__name__))
    if not key:
        raise ValueError("a config key must not be empty")
    return key


async def _in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(call, *args, **kwargs))


class Config:
    """Configuration of the organization a workflow runs for (or of ``org=``/``scope=``).

    Each call exists as a coroutine (``await config.get(...)``) and as a blocking twin
    (``config.get_sync(...)``); the coroutines run the blocking call in a thread.

    Every call takes ``org=`` (an organization id, or its name) or ``scope="global"``.
    Without them the organization is the execution's inside a workflow, else the token's.

    Errors: a 403 answer is ``PermissionError``; anything else that goes wrong (server
    unreachable, 401, 5xx, an answer the API does not promise) is ``BifrostError``.
    """

    # ----- blocking calls -------------------------------------------------------------

    def get_sync(self, key: str, default: Any = MISSING, *, org: Optional[str] = None,
                 scope: Optional[str] = None) -> Any:
        """The value of ``key``, typed by the config's type.

        ``int`` → int, ``bool`` → bool, ``json`` → the parsed document, ``string`` and
        ``secret`` → str. The organization's entry, else the global one it inherits.
        A missing key raises KeyError unless ``default`` is given (``None`` too), which is
        then returned. Errors are never turned into the default.
        """
        _check_key(key)
        transport = _http.transport()
        path = "{}/configs/{}/reveal".format(_scope.base_path(transport, org, scope),
                                            _http.quote_segment(key))
        answer = transport.request("GET", path)
        if answer.status == 404:
            if default is MISSING:
                raise KeyError(key)
            return default
        if not answer.ok:
            raise answer.error()
        return _values.decode(answer.json(), answer)

    def set_sync(self, key: str, value: Any, is_secret: bool = False,
                 description: Optional[str] = None, *, org: Optional[str] = None,
                 scope: Optional[str] = None) -> None:
        """Creates or replaces ``key`` in the organization (or the global scope).

        The type follows the value: ``dict``/``list`` → json, ``bool`` → bool, ``int`` →
        int, anything else → string (its ``str()``); ``is_secret=True`` → secret, whose
        value must be a str (TypeError otherwise).
        """
        _check_key(key)
        if description is not None and not isinstance(description, str):
            raise TypeError("description must be a str or None, not {}".format(
                type(description).__name__))
        kind, wire_value = _values.encode(value, bool(is_secret))
        body: Dict[str, Any] = {"type": kind, "value": wire_value}
        if description is not None:
            body["description"] = description
        transport = _http.transport()
        path = "{}/configs/{}".format(_scope.base_path(transport, org, scope),
                                      _http.quote_segment(key))
        answer = transport.request("PUT", path, body=body)
        if not answer.ok:
            raise answer.error()

    def list_sync(self, *, org: Optional[str] = None,
                  scope: Optional[str] = None) -> Dict[str, Any]:
        """A dict of key → value (typed as for ``get``) of the organization's entries and
        the global entries it inherits; secrets are ``"[SECRET]"``."""
        transport = _http.transport()
        path = "{}/configs".format(_scope.base_path(transport, org, scope))
        answer = transport.request("GET", path)
        if not answer.ok:
            raise answer.error()
        entries = answer.json()
        if not isinstance(entries, list):
            raise answer.unexpected("the config list is not an array")
        values: Dict[str, Any] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise answer.unexpected("a config entry without a key")
            values[entry["key"]] = _values.decode(entry, answer)
        return values

    def delete_sync(self, key: str, *, org: Optional[str] = None,
                    scope: Optional[str] = None) -> bool:
        """Deletes the organization's own entry ``key``: True if it was deleted, False if
        there was none (a global entry behind it stays)."""
        _check_key(key)
        transport = _http.transport()
        path = "{}/configs/{}".format(_scope.base_path(transport, org, scope),
                                      _http.quote_segment(key))
        answer = transport.request("DELETE", path)
        if answer.status == 404:
            return False
        if not answer.ok:
            raise answer.error()
        return True

    # ----- coroutines -----------------------------------------------------------------

    async def get(self, key: str, default: Any = MISSING, *, org: Optional[str] = None,
                  scope: Optional[str] = None) -> Any:
        """Coroutine of :meth:`get_sync`: the typed value of ``key`` (KeyError if missing,
        unless ``default`` is given)."""
        return await _in_thread(self.get_sync, key, default, org=org, scope=scope)

    async def set(self, key: str, value: Any, is_secret: bool = False,
                  description: Optional[str] = None, *, org: Optional[str] = None,
                  scope: Optional[str] = None) -> None:
        """Coroutine of :meth:`set_sync`: creates or replaces ``key``."""
        await _in_thread(self.set_sync, key, value, is_secret, description, org=org,
                         scope=scope)

    async def list(self, *, org: Optional[str] = None,
                   scope: Optional[str] = None) -> Dict[str, Any]:
        """Coroutine of :meth:`list_sync`: key → typed value, secrets ``"[SECRET]"``."""
        return await _in_thread(self.list_sync, org=org, scope=scope)

    async def delete(self, key: str, *, org: Optional[str] = None,
                     scope: Optional[str] = None) -> bool:
        """Coroutine of :meth:`delete_sync`: True if deleted, False if there was none."""
        return await _in_thread(self.delete_sync, key, org=org, scope=scope)

    def __repr__(self) -> str:
        return "<bifrost.config>"


config = Config()
"""The SDK's config object: ``await config.get("api_key")``."""
