"""@workflow, ExecutionContext and the package's exports."""

from __future__ import annotations

import unittest

import bifrost
from bifrost import ExecutionContext, WorkflowInfo, workflow


class WorkflowDecoratorTest(unittest.TestCase):

    def test_the_function_is_returned_unchanged_and_marked(self) -> None:
        async def call_api(context):
            return 1

        marked = workflow(name="call_api", description="Calls", timeout_seconds=30)(call_api)
        self.assertIs(marked, call_api)
        self.assertEqual(call_api.__bifrost_workflow__,
                         WorkflowInfo("call_api", "Calls", 30))

    def test_bare_and_empty_forms_use_the_function_name(self) -> None:
        @workflow
        def nightly(context):
            return None

        @workflow()
        def hourly(context):
            return None

        self.assertEqual(nightly.__bifrost_workflow__, WorkflowInfo("nightly", None, None))
        self.assertEqual(hourly.__bifrost_workflow__.name, "hourly")
        self.assertIsNone(nightly(None))

    def test_the_name_may_be_positional(self) -> None:
        @workflow("ops.sync-1")
        def sync_it(context):
            return None

        self.assertEqual(sync_it.__bifrost_workflow__.name, "ops.sync-1")

    def test_names_are_validated(self) -> None:
        for good in ("a", "call_api", "A.b-c_9", "x" * 128):
            workflow(name=good)
        for bad in ("", "has space", "a/b", "x" * 129, "é", "a\n"):
            with self.assertRaises(ValueError, msg=bad):
                workflow(name=bad)
        with self.assertRaises(ValueError):
            workflow(lambda context: None)  # "<lambda>" is no name

    def test_timeout_and_description_are_validated(self) -> None:
        for bad in (0, -1, 1.5, True, "10"):
            with self.assertRaises(ValueError, msg=repr(bad)):
                workflow(name="w", timeout_seconds=bad)
        with self.assertRaises(TypeError):
            workflow(name="w", description=3)

    def test_only_callables_are_decorated(self) -> None:
        with self.assertRaises(TypeError):
            workflow(name="w")(42)


class ExecutionContextTest(unittest.TestCase):

    def test_from_the_stdin_document(self) -> None:
        context = ExecutionContext.from_document({
            "execution_id": "e1", "workflow": "call_api",
            "org": {"id": "o1", "name": "Contoso"},
            "caller": {"id": "t1", "name": "ops"},
            "parameters": {"payload": "p"}})
        self.assertEqual((context.org_id, context.org_name, context.execution_id,
                          context.workflow_name, context.caller, context.parameters),
                         ("o1", "Contoso", "e1", "call_api", "ops", {"payload": "p"}))

    def test_missing_fields_come_from_the_environment(self) -> None:
        context = ExecutionContext.from_document({}, {
            "BIFROST_ORG_ID": "o2", "BIFROST_ORG_NAME": "Fabrikam",
            "BIFROST_EXECUTION_ID": "e2", "BIFROST_WORKFLOW": "w"})
        self.assertEqual((context.org_id, context.org_name, context.execution_id,
                          context.workflow_name, context.caller, context.parameters),
                         ("o2", "Fabrikam", "e2", "w", None, {}))

    def test_malformed_documents(self) -> None:
        for document in ({"parameters": [1]}, {"org": "x"}, {"caller": 3},
                         {"org": {"id": 5}}):
            with self.assertRaises(ValueError, msg=repr(document)):
                ExecutionContext.from_document(document)

    def test_repr_shows_parameter_names_only(self) -> None:
        context = ExecutionContext(org_id="o", parameters={"payload": "s3cret-body"})
        self.assertIn("payload", repr(context))
        self.assertNotIn("s3cret-body", repr(context))


class PackageTest(unittest.TestCase):

    def test_exports(self) -> None:
        from bifrost import BifrostError, config, sync  # noqa: F401
        self.assertTrue(issubclass(BifrostError, Exception))
        for name in ("get", "set", "list", "delete", "get_sync", "set_sync", "list_sync",
                     "delete_sync"):
            self.assertTrue(callable(getattr(config, name)), name)
        for name in ("get", "set", "list", "delete"):
            self.assertTrue(callable(getattr(bifrost.sync, name)), name)
        self.assertEqual(bifrost.__version__, "0.1.0")
