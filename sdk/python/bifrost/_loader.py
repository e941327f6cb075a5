"""Importing a workflow file by path, and finding functions in it (for _run and _discover)."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any, List, Set, Tuple

from ._workflow import WorkflowInfo, workflow_info

MODULE_PREFIX = "bifrost_workflow_"


def module_name(path: str) -> str:
    """The module name a workflow file is imported as: ``bifrost_workflow_<stem>``."""
    return MODULE_PREFIX + os.path.splitext(os.path.basename(path))[0]


def put_first_on_path(directory: str) -> None:
    """Puts ``directory`` first on sys.path (so a workflow's sibling imports work)."""
    if sys.path[:1] != [directory]:
        sys.path.insert(0, directory)


def load_module(path: str) -> ModuleType:
    """Imports the Python file ``path`` as :func:`module_name`; its errors propagate."""
    path = os.path.abspath(path)
    put_first_on_path(os.path.dirname(path))
    name = module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import {} as Python".format(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def resolve(module: ModuleType, qualname: str) -> Any:
    """The object at the dotted ``qualname`` in ``module`` (AttributeError if none)."""
    target: Any = module
    for part in qualname.split("."):
        if not part:
            raise AttributeError("{!r} is not a dotted name".format(qualname))
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AttributeError("{} has no function {!r}".format(
                getattr(module, "__file__", module.__name__), qualname)) from None
    return target


def find_workflows(module: ModuleType) -> List[Tuple[str, WorkflowInfo]]:
    """(qualname, info) of the @workflow functions defined in ``module`` (also inside its
    classes), in the order they are defined; functions imported from elsewhere are
    skipped."""
    found: List[Tuple[str, WorkflowInfo]] = []
    seen: Set[int] = set()

    def visit(namespace: Any) -> None:
        for value in list(vars(namespace).values()):
            if isinstance(value, staticmethod):
                value = value.__func__
            if isinstance(value, type):
                if value.__module__ == module.__name__ and id(value) not in seen:
                    seen.add(id(value))
                    visit(value)
                continue
            info = workflow_info(value)
            if info is None or id(value) in seen:
                continue
            if getattr(value, "__module__", None) != module.__name__:
                continue
            qualname = getattr(value, "__qualname__", None)
            if not isinstance(qualname, str):
                continue
            try:
                if resolve(module, qualname) is not value:
                    continue
            except AttributeError:
                continue
            seen.add(id(value))
            found.append((qualname, info))

    visit(module)
    return found


def describe_exception(exc: BaseException) -> str:
    """One line naming an exception: ``SyntaxError: invalid syntax (line 3)``,
    ``ValueError: message``."""
    kind = type(exc).__name__
    if isinstance(exc, SyntaxError):
        text = "{}: {}".format(kind, exc.msg)
        if exc.lineno:
            text += " (line {})".format(exc.lineno)
    else:
        message = str(exc)
        text = "{}: {}".format(kind, message) if message else kind
    return " ".join(text.split())
