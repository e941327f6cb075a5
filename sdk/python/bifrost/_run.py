"""Runs one Python workflow: ``python -m bifrost._run FILE FUNCTION``.

The process protocol of docs/workflows.md: the context document is read from stdin, FILE is
imported by path, FUNCTION (a dotted qualname) is called with an ExecutionContext and the
parameters as keyword arguments (awaited with ``asyncio.run`` when it is a coroutine), and
``{"status": "success", "result": ...}`` or ``{"status": "failed", "error": "Type: message"}``
is written to the file descriptor named by ``BIFROST_RESULT_FD`` (default 3). A failure's
traceback goes to stderr; the exit status is 0 on success, 1 on failure.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import sys
import traceback
from typing import Any, Awaitable, Dict, List, Optional

from ._context import ExecutionContext
from ._loader import describe_exception, load_module, resolve

USAGE = "usage: python -m bifrost._run FILE FUNCTION"


class _ResultChannel:
    """The result file descriptor, taken over at start so the workflow's own child
    processes do not inherit it."""

    def __init__(self) -> None:
        self._fd: Optional[int] = None
        text = os.environ.get("BIFROST_RESULT_FD", "3").strip() or "3"
        try:
            original = int(text)
            self._fd = os.dup(original)  # a non-inheritable copy
        except (ValueError, OSError) as exc:
            print("bifrost: result file descriptor {!r} is not usable ({}); the result "
                  "goes to stderr".format(text, exc), file=sys.stderr)
            return
        if original > 2:
            os.close(original)

    def write(self, document: Dict[str, Any]) -> None:
        data = json.dumps(document, allow_nan=False).encode("utf-8")
        if self._fd is None:
            sys.stderr.write("bifrost: result: " + data.decode("utf-8") + "\n")
            return
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            print("bifrost: cannot write the result: {}".format(exc), file=sys.stderr)
        finally:
            os.close(self._fd)
            self._fd = None


def _read_document() -> Dict[str, Any]:
    raw = sys.stdin.buffer.read() if sys.stdin is not None else b""
    text = raw.decode("utf-8").strip()
    if not text:
        return {}
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("the context document on stdin is not a JSON object")
    return document


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _setup_logging() -> None:
    logger = logging.getLogger("bifrost")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def _fail(channel: _ResultChannel, error: str, with_traceback: bool = True) -> int:
    if with_traceback:
        traceback.print_exc()
    sys.stderr.flush()
    channel.write({"status": "failed", "error": error})
    return 1


def _exception_text(exc: BaseException) -> str:
    message = str(exc)
    return "{}: {}".format(type(exc).__name__, message) if message else type(exc).__name__


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the workflow named by ``argv`` (FILE FUNCTION); returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    channel = _ResultChannel()
    _setup_logging()
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        channel.write({"status": "failed", "error": USAGE})
        return 2
    path, qualname = args

    try:
        document = _read_document()
        context = ExecutionContext.from_document(document, os.environ)
    except (ValueError, UnicodeDecodeError) as exc:
        return _fail(channel, "bifrost: invalid context document on stdin: {}".format(exc),
                     with_traceback=False)

    try:
        module = load_module(path)
        function = resolve(module, qualname)
        if not callable(function):
            raise TypeError("{} in {} is not a function".format(qualname, path))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SyntaxError, SystemExit at import, ...
        return _fail(channel, describe_exception(exc))

    try:
        outcome = function(context, **context.parameters)
        if inspect.isawaitable(outcome):
            outcome = asyncio.run(_await(outcome))
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return _fail(channel, _exception_text(exc))
        outcome = None
    except Exception as exc:
        return _fail(channel, _exception_text(exc))

    try:
        channel.write({"status": "success", "result": outcome})
    except (TypeError, ValueError) as exc:
        print("bifrost: the result of {} is not JSON-serializable: {}".format(qualname, exc),
              file=sys.stderr)
        channel.write({"status": "failed", "error": "{}: the result of {} is not "
                       "JSON-serializable: {}".format(type(exc).__name__, qualname, exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
