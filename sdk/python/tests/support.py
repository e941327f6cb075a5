"""Helpers shared by the SDK's tests."""

from __future__ import annotations

import os
import socket
import sys
import unittest
from typing import Dict, Optional

from bifrost import _http, _scope

SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BIFROST_VARIABLES = ("BIFROST_ADDR", "BIFROST_TOKEN", "BIFROST_CACERT",
                     "BIFROST_EXECUTION_ID", "BIFROST_WORKFLOW", "BIFROST_ORG_ID",
                     "BIFROST_ORG_NAME", "BIFROST_RESULT_FD")


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A minimal environment for a child Python with the SDK on its path."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHONPATH": SDK_DIR, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra or {})
    return env


def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class SdkEnvTestCase(unittest.TestCase):
    """Sets exactly the given BIFROST_* variables for a test and resets the SDK's caches."""

    def setUp(self) -> None:
        super().setUp()
        self._saved = {name: os.environ.get(name) for name in BIFROST_VARIABLES}
        for name in BIFROST_VARIABLES:
            os.environ.pop(name, None)
        _http.reset()
        _scope.reset()

    def tearDown(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _http.reset()
        _scope.reset()
        super().tearDown()

    def set_env(self, **variables: str) -> None:
        for name, value in variables.items():
            os.environ[name] = value


PYTHON = sys.executable
