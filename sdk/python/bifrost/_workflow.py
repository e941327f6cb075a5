"""The ``@workflow`` decorator."""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple, Optional, TypeVar, Union, overload

F = TypeVar("F", bound=Callable[..., Any])

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MARKER = "__bifrost_workflow__"


class WorkflowInfo(NamedTuple):
    """What ``@workflow`` records on a function (its ``__bifrost_workflow__`` attribute)."""

    name: str
    description: Optional[str] = None
    timeout_seconds: Optional[int] = None


def _validate(name: Any, description: Any, timeout_seconds: Any) -> WorkflowInfo:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError("workflow name {!r} must match {}".format(name, NAME_PATTERN.pattern))
    if description is not None and not isinstance(description, str):
        raise TypeError("workflow description must be a str or None")
    if timeout_seconds is not None and (
            isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int)
            or timeout_seconds <= 0):
        raise ValueError("timeout_seconds must be a positive int or None, not {!r}".format(
            timeout_seconds))
    return WorkflowInfo(name, description, timeout_seconds)


@overload
def workflow(func: F) -> F: ...


@overload
def workflow(name: Optional[str] = None, *, description: Optional[str] = None,
             timeout_seconds: Optional[int] = None) -> Callable[[F], F]: ...


def workflow(name: Union[str, Callable[..., Any], None] = None, *,
             description: Optional[str] = None,
             timeout_seconds: Optional[int] = None) -> Any:
    """Marks a function (async or not) as a workflow.

    Usage::

        @workflow(name="call_api", description="Calls the API", timeout_seconds=30)
        async def call_api(context: ExecutionContext): ...

        @workflow                    # named after the function: "nightly"
        def nightly(context): ...

    ``name`` must match ``^[A-Za-z0-9_.-]{1,128}$`` (ValueError otherwise);
    ``timeout_seconds`` overrides the server's default time limit. The function is returned
    unchanged, with a :class:`WorkflowInfo` in its ``__bifrost_workflow__`` attribute.
    It is called with an ExecutionContext first and the run's parameters as keyword
    arguments; what it returns (JSON-serializable) is the execution's result.
    """
    if callable(name):  # bare @workflow
        func = name
        info = _validate(getattr(func, "__name__", None), description, timeout_seconds)
        setattr(func, MARKER, info)
        return func

    def mark(func: F) -> F:
        if not callable(func):
            raise TypeError("@workflow decorates a function, not {}".format(
                type(func).__name__))
        info = _validate(name if name is not None else getattr(func, "__name__", None),
                         description, timeout_seconds)
        setattr(func, MARKER, info)
        return func

    if name is not None:
        _validate(name, description, timeout_seconds)  # fail at the decorator line
    return mark


def workflow_info(obj: Any) -> Optional[WorkflowInfo]:
    """The WorkflowInfo ``@workflow`` put on ``obj``, or None."""
    try:
        info = getattr(obj, MARKER, None)
    except Exception:  # an object whose attribute lookup misbehaves is no workflow
        return None
    return info if isinstance(info, WorkflowInfo) else None
