"""Tests of the Python SDK (standard library only)."""

import sys

# Keep the source tree free of bytecode caches.
sys.dont_write_bytecode = True
