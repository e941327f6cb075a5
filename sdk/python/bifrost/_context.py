"""ExecutionContext: what a workflow function learns about its run."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


class ExecutionContext:
    """The first argument of every workflow function.

    Attributes:
        org_id: the id of the organization the execution runs for.
        org_name: that organization's name.
        execution_id: the id of this execution.
        workflow_name: the name the workflow was run by.
        caller: the name of the token or user that started the run.
        parameters: the run's parameters (also passed to the function as keyword
            arguments).
    """

    def __init__(self, org_id: Optional[str] = None, org_name: Optional[str] = None,
                 execution_id: Optional[str] = None, workflow_name: Optional[str] = None,
                 caller: Optional[str] = None,
                 parameters: Optional[Dict[str, Any]] = None) -> None:
        self.org_id = org_id
        self.org_name = org_name
        self.execution_id = execution_id
        self.workflow_name = workflow_name
        self.caller = caller
        self.parameters: Dict[str, Any] = dict(parameters or {})

    @classmethod
    def from_document(cls, document: Mapping[str, Any],
                      environ: Optional[Mapping[str, str]] = None) -> "ExecutionContext":
        """Builds the context from the JSON document a run gets on stdin.

        A field the document lacks is taken from the matching ``BIFROST_*`` variable of
        ``environ``, when given. ValueError when a field has the wrong JSON type.
        """
        env = environ or {}
        org = document.get("org") or {}
        caller = document.get("caller")
        parameters = document.get("parameters")
        if not isinstance(org, dict):
            raise ValueError("the context's 'org' must be an object")
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise ValueError("the context's 'parameters' must be an object")
        if isinstance(caller, dict):
            caller = caller.get("name")
        if caller is not None and not isinstance(caller, str):
            raise ValueError("the context's 'caller' must be an object with a name")
        return cls(
            org_id=_text(org.get("id")) or env.get("BIFROST_ORG_ID"),
            org_name=_text(org.get("name")) or env.get("BIFROST_ORG_NAME"),
            execution_id=_text(document.get("execution_id")) or env.get("BIFROST_EXECUTION_ID"),
            workflow_name=_text(document.get("workflow")) or env.get("BIFROST_WORKFLOW"),
            caller=caller,
            parameters=parameters,
        )

    def __repr__(self) -> str:
        # Parameters may be sensitive (a webhook payload): only their names are shown.
        return ("ExecutionContext(org_id={!r}, org_name={!r}, execution_id={!r}, "
                "workflow_name={!r}, caller={!r}, parameters=<{}>)").format(
                    self.org_id, self.org_name, self.execution_id, self.workflow_name,
                    self.caller, ", ".join(sorted(self.parameters)))


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("the context holds a non-string where a string belongs")
    return value
