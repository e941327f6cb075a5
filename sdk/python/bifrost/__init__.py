"""Bifrost SDK for Python: configuration and secrets for workflows and scripts.

::

    from bifrost import config, workflow, ExecutionContext

    @workflow(name="call_api")
    async def call_api(context: ExecutionContext):
        api_key = await config.get("api_key")

``config`` reads and writes the configuration of the organization a workflow runs for (or,
in a script, the token's organization, ``org=`` or ``scope="global"``); ``bifrost.sync``
has blocking twins of its calls. See docs/workflows.md.
"""

from . import sync
from ._config import Config, config
from ._context import ExecutionContext
from ._errors import BifrostError
from ._workflow import WorkflowInfo, workflow

__version__ = "0.1.0"

__all__ = ["BifrostError", "Config", "ExecutionContext", "WorkflowInfo", "config", "sync",
           "workflow"]
