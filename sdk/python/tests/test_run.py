"""python -m bifrost._run FILE FUNCTION: the process protocol, through subprocesses."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import threading
import unittest
from typing import Any, Dict, Optional

from .fake_server import FakeBifrost
from .support import PYTHON, child_env

# Makes the pipe's write end file descriptor 3 (the protocol's default) and runs _run.
_LAUNCHER = textwrap.dedent("""
    import os, sys
    fd = int(sys.argv[1])
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.execv(sys.executable, [sys.executable, "-m", "bifrost._run"] + sys.argv[2:])
""")

ISSUE_EXAMPLES = textwrap.dedent('''
    import hashlib
    import hmac
    from bifrost import config, workflow, ExecutionContext

    @workflow(name="call_api")
    async def call_api(context: ExecutionContext):
        api_key = await config.get("api_key")          # the running org's value
        headers = {"Authorization": f"Bearer {api_key}"}
        ...

    @workflow(name="safe_api_call")
    async def safe_api_call(context: ExecutionContext):
        try:
            api_key = await config.get("api_key")
        except KeyError:
            return {"success": False, "error": "API key not configured",
                    "action": "Add 'api_key' to Configuration in Settings"}
        return {"success": True}

    @workflow(name="verify_webhook")
    async def verify_webhook(context: ExecutionContext, payload: str, signature: str):
        webhook_secret = await config.get("webhook_secret")
        expected = hmac.new(webhook_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ValueError("Invalid webhook signature")
        return {"verified": True}
''')


class Outcome:
    def __init__(self, code: int, result: Optional[Dict[str, Any]], stdout: str,
                 stderr: str) -> None:
        self.code = code
        self.result = result
        self.stdout = stdout
        self.stderr = stderr


class RunTestBase(unittest.TestCase):

    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def write(self, name: str, source: str) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(source))
        return path

    def run_workflow(self, path: str, function: str, document: Optional[Dict[str, Any]] = None,
                     env: Optional[Dict[str, str]] = None,
                     result_fd_variable: bool = False) -> Outcome:
        """Runs the workflow as the server does; the result pipe is fd 3 unless
        ``result_fd_variable``, where it keeps its own number, named by BIFROST_RESULT_FD."""
        if document is None:
            document = {"execution_id": "e1", "workflow": function,
                        "org": {"id": "o1", "name": "Contoso"},
                        "caller": {"id": "t1", "name": "ops"}, "parameters": {}}
        read_end, write_end = os.pipe()
        variables = dict(env or {})
        if result_fd_variable:
            variables["BIFROST_RESULT_FD"] = str(write_end)
            argv = [PYTHON, "-m", "bifrost._run", path, function]
        else:
            argv = [PYTHON, "-c", _LAUNCHER, str(write_end), path, function]
        chunks = []
        reader = threading.Thread(target=lambda: chunks.append(_read_all(read_end)))
        reader.start()
        try:
            done = subprocess.run(argv, input=json.dumps(document), capture_output=True,
                                  text=True, timeout=60, env=child_env(variables),
                                  pass_fds=(write_end,), cwd=self.directory)
        finally:
            os.close(write_end)
            reader.join(60)
            os.close(read_end)
        raw = chunks[0] if chunks else b""
        result = json.loads(raw) if raw else None
        return Outcome(done.returncode, result, done.stdout, done.stderr)


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


class RunTest(RunTestBase):

    def test_success_gets_the_context_and_parameters(self) -> None:
        path = self.write("flows.py", """
            from bifrost import workflow

            @workflow(name="echo")
            def echo(context, greeting, count=1):
                print("running", context.workflow_name)
                return {"org_id": context.org_id, "org_name": context.org_name,
                        "execution_id": context.execution_id,
                        "workflow_name": context.workflow_name, "caller": context.caller,
                        "parameters": context.parameters, "greeting": greeting * count}
        """)
        outcome = self.run_workflow(path, "echo", {
            "execution_id": "e9", "workflow": "echo", "org": {"id": "o9", "name": "Contoso"},
            "caller": {"id": "t9", "name": "ops"},
            "parameters": {"greeting": "hi", "count": 2}})
        self.assertEqual(outcome.code, 0, outcome.stderr)
        self.assertEqual(outcome.result, {"status": "success", "result": {
            "org_id": "o9", "org_name": "Contoso", "execution_id": "e9",
            "workflow_name": "echo", "caller": "ops",
            "parameters": {"greeting": "hi", "count": 2}, "greeting": "hihi"}})
        self.assertEqual(outcome.stdout, "running echo\n")

    def test_async_functions_are_awaited(self) -> None:
        path = self.write("flows.py", """
            import asyncio
            from bifrost import workflow

            @workflow(name="slow")
            async def slow(context):
                await asyncio.sleep(0.01)
                return [1, "two", None, True]
        """)
        outcome = self.run_workflow(path, "slow")
        self.assertEqual(outcome.code, 0, outcome.stderr)
        self.assertEqual(outcome.result, {"status": "success", "result": [1, "two", None, True]})

    def test_none_is_a_null_result(self) -> None:
        path = self.write("flows.py", """
            def nothing(context):
                pass
        """)
        outcome = self.run_workflow(path, "nothing")
        self.assertEqual((outcome.code, outcome.result),
                         (0, {"status": "success", "result": None}))

    def test_an_exception_fails_with_its_type_and_message(self) -> None:
        path = self.write("flows.py", """
            async def boom(context):
                raise RuntimeError("the upstream said no")
        """)
        outcome = self.run_workflow(path, "boom")
        self.assertEqual(outcome.code, 1)
        self.assertEqual(outcome.result,
                         {"status": "failed", "error": "RuntimeError: the upstream said no"})
        self.assertIn("Traceback (most recent call last)", outcome.stderr)
        self.assertIn('raise RuntimeError("the upstream said no")', outcome.stderr)

    def test_a_result_that_is_not_json_fails(self) -> None:
        path = self.write("flows.py", """
            def sets(context):
                return {"ids": {1, 2}}
        """)
        outcome = self.run_workflow(path, "sets")
        self.assertEqual(outcome.code, 1)
        self.assertEqual(outcome.result["status"], "failed")
        self.assertIn("not JSON-serializable", outcome.result["error"])
        self.assertIn("set", outcome.result["error"])
        self.assertTrue(outcome.result["error"].startswith("TypeError: "))

    def test_a_nan_result_fails(self) -> None:
        path = self.write("flows.py", """
            def nan(context):
                return float("nan")
        """)
        outcome = self.run_workflow(path, "nan")
        self.assertEqual(outcome.code, 1)
        self.assertTrue(outcome.result["error"].startswith("ValueError: the result of nan is "
                                                           "not JSON-serializable"),
                        outcome.result)

    def test_missing_and_extra_parameters_fail_with_the_type_error(self) -> None:
        path = self.write("flows.py", """
            def needs(context, payload, signature):
                return "ok"
        """)
        document = {"org": {"id": "o", "name": "n"}, "parameters": {"payload": "p"}}
        outcome = self.run_workflow(path, "needs", document)
        self.assertEqual(outcome.code, 1)
        self.assertEqual(outcome.result["status"], "failed")
        self.assertTrue(outcome.result["error"].startswith("TypeError: "))
        self.assertIn("missing 1 required positional argument: 'signature'",
                      outcome.result["error"])
        document["parameters"] = {"payload": "p", "signature": "s", "extra": 1}
        outcome = self.run_workflow(path, "needs", document)
        self.assertEqual(outcome.code, 1)
        self.assertIn("unexpected keyword argument 'extra'", outcome.result["error"])

    def test_a_file_that_does_not_import_fails(self) -> None:
        path = self.write("broken.py", "def broken(:\n    pass\n")
        outcome = self.run_workflow(path, "broken")
        self.assertEqual(outcome.code, 1)
        self.assertTrue(outcome.result["error"].startswith("SyntaxError: "), outcome.result)
        self.assertIn("(line 1)", outcome.result["error"])

    def test_an_unknown_function_fails(self) -> None:
        path = self.write("flows.py", "x = 1\n")
        outcome = self.run_workflow(path, "missing")
        self.assertEqual(outcome.code, 1)
        self.assertIn("'missing'", outcome.result["error"])
        outcome = self.run_workflow(path, "x")
        self.assertEqual(outcome.code, 1)
        self.assertIn("not a function", outcome.result["error"])

    def test_dotted_qualnames_and_sibling_imports(self) -> None:
        self.write("helpers.py", "def double(n):\n    return n * 2\n")
        path = self.write("flows.py", """
            import helpers
            from bifrost import workflow

            class Billing:
                @workflow(name="billing.total")
                def total(context, amount):
                    return helpers.double(int(amount))
        """)
        outcome = self.run_workflow(path, "Billing.total", {"parameters": {"amount": "21"}})
        self.assertEqual(outcome.result, {"status": "success", "result": 42}, outcome.stderr)
        self.assertEqual(outcome.code, 0)

    def test_the_module_name(self) -> None:
        path = self.write("my_flows.py", """
            def name(context):
                return __name__
        """)
        outcome = self.run_workflow(path, "name")
        self.assertEqual(outcome.result["result"], "bifrost_workflow_my_flows")

    def test_sys_exit(self) -> None:
        path = self.write("flows.py", """
            import sys
            def quits(context):
                sys.exit(3)
            def quits_cleanly(context):
                sys.exit(0)
        """)
        outcome = self.run_workflow(path, "quits")
        self.assertEqual((outcome.code, outcome.result),
                         (1, {"status": "failed", "error": "SystemExit: 3"}))
        outcome = self.run_workflow(path, "quits_cleanly")
        self.assertEqual((outcome.code, outcome.result),
                         (0, {"status": "success", "result": None}))

    def test_the_result_fd_can_be_named(self) -> None:
        path = self.write("flows.py", "def one(context):\n    return 1\n")
        outcome = self.run_workflow(path, "one", result_fd_variable=True)
        self.assertEqual((outcome.code, outcome.result),
                         (0, {"status": "success", "result": 1}))

    def test_child_processes_do_not_get_the_result_fd(self) -> None:
        path = self.write("flows.py", """
            import subprocess
            def spawn(context):
                done = subprocess.run(["sh", "-c", "echo junk >&3"], close_fds=False)
                return done.returncode
        """)
        outcome = self.run_workflow(path, "spawn")
        self.assertEqual(outcome.code, 0, outcome.stderr)
        self.assertEqual(outcome.result["status"], "success")
        self.assertNotEqual(outcome.result["result"], 0)

    def test_an_invalid_context_document_fails(self) -> None:
        path = self.write("flows.py", "def one(context):\n    return 1\n")
        outcome = self.run_workflow(path, "one", {"parameters": "not an object"})
        self.assertEqual(outcome.code, 1)
        self.assertIn("invalid context document", outcome.result["error"])


class RunWithServerTest(RunTestBase):
    """Workflows that read config through a fake server, with an execution's environment."""

    def setUp(self) -> None:
        super().setUp()
        self.server = FakeBifrost().start()
        self.addCleanup(self.server.stop)
        self.org = self.server.add_org("Contoso")
        self.other = self.server.add_org("Fabrikam")
        self.token = self.server.add_token("admin", self.org, name="bfx_exec")
        self.path = self.write("examples.py", ISSUE_EXAMPLES)

    def run_example(self, function: str, parameters: Optional[Dict[str, Any]] = None) -> Outcome:
        document = {"execution_id": "e1", "workflow": function,
                    "org": {"id": self.org, "name": "Contoso"},
                    "caller": {"id": "t1", "name": "ops"}, "parameters": parameters or {}}
        env = {"BIFROST_ADDR": self.server.addr(), "BIFROST_TOKEN": self.token,
               "BIFROST_EXECUTION_ID": "e1", "BIFROST_WORKFLOW": function,
               "BIFROST_ORG_ID": self.org, "BIFROST_ORG_NAME": "Contoso"}
        return self.run_workflow(self.path, function, document, env)

    def assert_no_whoami(self) -> None:
        self.assertEqual(self.server.requests_to("/api/v1/whoami"), [])
        for request in self.server.requests:
            self.assertTrue(request.path.startswith("/api/v1/orgs/{}/".format(self.org)),
                            request.path)

    def test_call_api(self) -> None:
        self.server.put(self.org, "api_key", "secret", "sk_live_contoso")
        self.server.put(self.other, "api_key", "secret", "sk_live_fabrikam")
        outcome = self.run_example("call_api")
        self.assertEqual((outcome.code, outcome.result),
                         (0, {"status": "success", "result": None}), outcome.stderr)
        self.assertEqual([r.path for r in self.server.requests],
                         ["/api/v1/orgs/{}/configs/api_key/reveal".format(self.org)])
        self.assertNotIn("sk_live", outcome.stdout + outcome.stderr)
        self.assert_no_whoami()

    def test_call_api_without_the_key_fails_with_key_error(self) -> None:
        outcome = self.run_example("call_api")
        self.assertEqual((outcome.code, outcome.result),
                         (1, {"status": "failed", "error": "KeyError: 'api_key'"}))

    def test_call_api_with_the_global_value(self) -> None:
        self.server.put(None, "api_key", "secret", "sk_live_global")
        outcome = self.run_example("call_api")
        self.assertEqual(outcome.code, 0, outcome.stderr)

    def test_safe_api_call(self) -> None:
        outcome = self.run_example("safe_api_call")
        self.assertEqual(outcome.result, {"status": "success", "result": {
            "success": False, "error": "API key not configured",
            "action": "Add 'api_key' to Configuration in Settings"}})
        self.server.put(self.org, "api_key", "secret", "sk_live_contoso")
        outcome = self.run_example("safe_api_call")
        self.assertEqual(outcome.result, {"status": "success", "result": {"success": True}})
        self.assert_no_whoami()

    def test_verify_webhook(self) -> None:
        self.server.put(self.org, "webhook_secret", "secret", "whsec_123")
        payload = '{"event": "paid"}'
        signature = hmac.new(b"whsec_123", payload.encode(), hashlib.sha256).hexdigest()
        outcome = self.run_example("verify_webhook",
                                   {"payload": payload, "signature": signature})
        self.assertEqual((outcome.code, outcome.result),
                         (0, {"status": "success", "result": {"verified": True}}),
                         outcome.stderr)
        outcome = self.run_example("verify_webhook", {"payload": payload, "signature": "0" * 64})
        self.assertEqual((outcome.code, outcome.result),
                         (1, {"status": "failed", "error": "ValueError: Invalid webhook signature"}))
        self.assertIn("Traceback", outcome.stderr)
        self.assertNotIn("whsec_123", outcome.stdout + outcome.stderr)
        self.assert_no_whoami()

    def test_a_server_error_fails_the_execution(self) -> None:
        self.server.force("GET", "/api/v1/orgs/{}/configs/api_key/reveal".format(self.org),
                          500, "internal", "internal error")
        outcome = self.run_example("safe_api_call")
        self.assertEqual(outcome.code, 1)
        self.assertTrue(outcome.result["error"].startswith("BifrostError: bifrost: "),
                        outcome.result)
        self.assertIn("500", outcome.result["error"])
