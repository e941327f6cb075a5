"""Converting between Python values and the API's typed config values."""

from __future__ import annotations

import json
from typing import Any, Tuple

from ._http import Response

SECRET_MASK = "[SECRET]"


def encode(value: Any, is_secret: bool) -> Tuple[str, Any]:
    """The config type and JSON value to send for a Python value.

    ``is_secret`` → ``secret`` (the value must be a str); otherwise ``bool`` → ``bool``,
    ``int`` → ``int``, ``dict``/``list`` → ``json``, anything else → ``string`` (its
    ``str()``). A json value must be JSON-serializable (TypeError or ValueError otherwise).
    """
    if is_secret:
        if not isinstance(value, str):
            raise TypeError("a secret value must be a str, not {}".format(type(value).__name__))
        return "secret", value
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "bool", value
    if isinstance(value, int):
        return "int", int(value)
    if isinstance(value, (dict, list)):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise type(exc)("the value is not JSON-serializable: {}".format(exc)) from None
        return "json", value
    return "string", str(value)


def decode(entry: Any, answer: Response) -> Any:
    """The Python value of a config entry from the API (``type`` and ``value``).

    A masked secret stays the string ``"[SECRET]"``. BifrostError when the entry does not
    look like the API promises.
    """
    if not isinstance(entry, dict) or "type" not in entry or "value" not in entry:
        raise answer.unexpected("a config entry without type and value")
    kind = entry["type"]
    value = entry["value"]
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "json":
        return value
    elif kind in ("string", "secret"):
        if isinstance(value, str):
            return value
    else:
        raise answer.unexpected("unknown config type {!r}".format(kind))
    raise answer.unexpected("a {} entry whose value is a JSON {}".format(
        kind, _json_kind(value)))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
