"""Blocking config calls, for code that is not async::

    from bifrost import sync
    api_key = sync.get("api_key")

The same as ``config.get_sync``, ``config.set_sync``, ``config.list_sync`` and
``config.delete_sync``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._config import MISSING as _MISSING
from ._config import config as _config

__all__ = ["get", "set", "list", "delete"]


def get(key: str, default: Any = _MISSING, *, org: Optional[str] = None,
        scope: Optional[str] = None) -> Any:
    """The typed value of ``key``; KeyError if missing, unless ``default`` is given."""
    return _config.get_sync(key, default, org=org, scope=scope)


def set(key: str, value: Any, is_secret: bool = False, description: Optional[str] = None,
        *, org: Optional[str] = None, scope: Optional[str] = None) -> None:
    """Creates or replaces ``key``; the type follows the value (see ``config.set``)."""
    _config.set_sync(key, value, is_secret, description, org=org, scope=scope)


def list(*, org: Optional[str] = None, scope: Optional[str] = None) -> Dict[str, Any]:
    """Key → typed value of the organization and the global entries it inherits."""
    return _config.list_sync(org=org, scope=scope)


def delete(key: str, *, org: Optional[str] = None, scope: Optional[str] = None) -> bool:
    """Deletes the organization's own ``key``: True if deleted, False if there was none."""
    return _config.delete_sync(key, org=org, scope=scope)
