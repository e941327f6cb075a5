"""The SDK's own exception type."""

from __future__ import annotations

from typing import Optional


class BifrostError(Exception):
    """Something went wrong talking to the Bifrost server.

    Raised when the server cannot be reached, answers with an error other than 403
    (``PermissionError``) or a missing key (``KeyError``), or answers with something the
    API does not promise. The message says what happened; it never holds a config value
    or the token.

    Attributes:
        status: the HTTP status of the answer, or ``None`` when there was none.
        code: the API's error code (``"internal"``, ``"unauthenticated"``, ...), or ``None``.
    """

    def __init__(self, message: str, status: Optional[int] = None,
                 code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
