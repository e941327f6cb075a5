"""Lists the Python workflows of a directory: ``python -m bifrost._discover DIR``.

Imports each ``*.py`` file of DIR (not recursively; names starting with ``_`` or ``.`` are
skipped), in sorted order, and prints one JSON document on stdout::

    {"workflows": [{"name", "description", "timeout_seconds", "file", "function"}],
     "errors": [{"file", "error"}]}

A file that fails to import is reported in ``errors`` and the scan goes on; a workflow name
already taken by an earlier file is reported too (the first one wins). Whatever the files
print while imported goes to stderr. Exit status 0 whenever the scan completed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

from ._loader import describe_exception, find_workflows, load_module, put_first_on_path

USAGE = "usage: python -m bifrost._discover DIR"


def _python_files(directory: str) -> List[str]:
    names = sorted(name for name in os.listdir(directory)
                   if name.endswith(".py") and not name.startswith(("_", ".")))
    return [os.path.join(directory, name) for name in names
            if os.path.isfile(os.path.join(directory, name))]


def scan(directory: str) -> Dict[str, List[Dict[str, Any]]]:
    """The workflows and errors of ``directory`` (an absolute path)."""
    workflows: List[Dict[str, Any]] = []
    errors: List[Dict[str, Any]] = []
    owners: Dict[str, str] = {}
    put_first_on_path(directory)
    for path in _python_files(directory):
        try:
            module = load_module(path)
            found = find_workflows(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SyntaxError, ImportError, SystemExit, ...
            print("bifrost: cannot load {}:".format(path), file=sys.stderr)
            traceback.print_exc()
            errors.append({"file": path, "error": describe_exception(exc)})
            continue
        for qualname, info in found:
            if info.name in owners:
                errors.append({"file": path, "error": "workflow name {!r} is already defined "
                               "in {}".format(info.name, owners[info.name])})
                continue
            owners[info.name] = os.path.basename(path)
            workflows.append({"name": info.name, "description": info.description,
                              "timeout_seconds": info.timeout_seconds, "file": path,
                              "function": qualname})
    return {"workflows": workflows, "errors": errors}


def _redirect_stdout() -> Tuple[Optional[int], Any]:
    """Points file descriptor 1 and sys.stdout at stderr; returns a private copy of the
    original stdout to write the answer to."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        saved = None
    original = sys.stdout
    sys.stdout = sys.stderr
    return saved, original


def main(argv: Optional[List[str]] = None) -> int:
    """Scans the directory named by ``argv`` and prints the JSON document."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    directory = os.path.abspath(args[0])
    if not os.path.isdir(directory):
        print("bifrost: not a directory: {}".format(directory), file=sys.stderr)
        return 2
    saved, original = _redirect_stdout()
    try:
        answer = scan(directory)
    finally:
        sys.stderr.flush()
        sys.stdout = original
    data = (json.dumps(answer) + "\n").encode("utf-8")
    if saved is None:
        original.write(data.decode("utf-8"))
        original.flush()
        return 0
    view = memoryview(data)
    while view:
        view = view[os.write(saved, view):]
    os.close(saved)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    # A module may have left non-daemon threads running; they must not keep the scan alive.
    os._exit(status)
