"""Which organization (or the global scope) a config call addresses.

Inside a workflow execution (``BIFROST_EXECUTION_ID`` set) the organization is
``BIFROST_ORG_ID``. Outside, it is the ``org=`` argument (an id, or a name looked up with
``GET /api/v1/orgs?name=``), ``scope="global"``, or else the token's own organization
(``GET /api/v1/whoami``, asked once per process).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Dict, Optional, Tuple

from ._errors import BifrostError
from ._http import Transport, quote_segment

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")

_lock = threading.Lock()
_token_orgs: Dict[Tuple[str, str], str] = {}
_named_orgs: Dict[Tuple[str, str, str], str] = {}


def in_execution() -> bool:
    """True inside a workflow execution started by the server."""
    return bool(os.environ.get("BIFROST_EXECUTION_ID"))


def base_path(transport: Transport, org: Optional[str], scope: Optional[str]) -> str:
    """The API path the config routes hang under: ``/api/v1/orgs/ID`` or ``/api/v1/global``.

    Raises ValueError for a ``scope`` other than ``"global"`` or for both ``org`` and
    ``scope``; BifrostError when the organization cannot be determined.
    """
    if scope is not None and scope != "global":
        raise ValueError('scope must be "global" or None, not {!r}'.format(scope))
    if org is not None and scope is not None:
        raise ValueError('pass either org= or scope="global", not both')
    if scope == "global":
        return "/api/v1/global"
    if org is not None:
        return "/api/v1/orgs/" + quote_segment(_org_id(transport, org))
    if in_execution():
        org_id = os.environ.get("BIFROST_ORG_ID", "")
        if not org_id:
            raise BifrostError("bifrost: BIFROST_EXECUTION_ID is set but BIFROST_ORG_ID is not")
        return "/api/v1/orgs/" + quote_segment(org_id)
    return "/api/v1/orgs/" + quote_segment(_token_org(transport))


def _org_id(transport: Transport, org: str) -> str:
    if not isinstance(org, str):
        raise TypeError("org must be an organization id or name (str), not {}".format(
            type(org).__name__))
    if not org:
        raise ValueError("org must not be empty")
    if _UUID.fullmatch(org):
        return org
    if in_execution() and org == os.environ.get("BIFROST_ORG_NAME") and \
            os.environ.get("BIFROST_ORG_ID"):
        return os.environ["BIFROST_ORG_ID"]
    cache_key = transport.identity + (org,)
    with _lock:
        if cache_key in _named_orgs:
            return _named_orgs[cache_key]
    answer = transport.request("GET", "/api/v1/orgs", query={"name": org})
    if not answer.ok:
        raise answer.error()
    listing = answer.json()
    if not isinstance(listing, list):
        raise answer.unexpected("the organization list is not an array")
    for entry in listing:
        if isinstance(entry, dict) and entry.get("name") == org:
            org_id = entry.get("id")
            if not isinstance(org_id, str) or not org_id:
                raise answer.unexpected("an organization without an id")
            with _lock:
                _named_orgs[cache_key] = org_id
            return org_id
    raise BifrostError("bifrost: no organization named {!r} (or the token cannot see it)"
                       .format(org))


def _token_org(transport: Transport) -> str:
    cache_key = transport.identity
    with _lock:
        if cache_key in _token_orgs:
            return _token_orgs[cache_key]
    answer = transport.request("GET", "/api/v1/whoami")
    if not answer.ok:
        raise answer.error()
    principal = answer.json()
    if not isinstance(principal, dict):
        raise answer.unexpected("whoami is not an object")
    org_id = principal.get("org_id")
    if org_id is None:
        if principal.get("role") == "platform-admin":
            raise BifrostError(
                "bifrost: the token is a platform administrator's and belongs to no "
                'organization: pass org="ID or name" or scope="global"')
        raise BifrostError("bifrost: the token belongs to no organization: pass org=")
    if not isinstance(org_id, str) or not org_id:
        raise answer.unexpected("whoami has no valid org_id")
    with _lock:
        _token_orgs[cache_key] = org_id
    return org_id


def reset() -> None:
    """Forgets the cached whoami answers and organization names."""
    with _lock:
        _token_orgs.clear()
        _named_orgs.clear()
