"""python -m bifrost._discover DIR, through subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest
from typing import Any, Dict

from .support import PYTHON, child_env


class DiscoverTest(unittest.TestCase):

    def setUp(self) -> None:
        self.directory = os.path.realpath(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.directory)

    def write(self, name: str, source: str) -> str:
        path = os.path.join(self.directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(source))
        return path

    def discover(self, directory: str = "") -> "subprocess.CompletedProcess[str]":
        return subprocess.run([PYTHON, "-m", "bifrost._discover", directory or self.directory],
                              capture_output=True, text=True, timeout=60, env=child_env(),
                              cwd="/")

    def scan(self) -> Dict[str, Any]:
        done = self.discover()
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)

    def test_a_directory_with_good_broken_and_duplicate_files(self) -> None:
        first = self.write("a_first.py", """
            from bifrost import workflow, ExecutionContext

            @workflow(name="call_api", description="Calls the API", timeout_seconds=30)
            async def call_api(context: ExecutionContext):
                return None

            @workflow(name="shared")
            def shared(context):
                return 1

            def not_a_workflow(context):
                return 2

            class Billing:
                @workflow(name="billing.total")
                def total(context):
                    return 3
        """)
        second = self.write("b_second.py", """
            from bifrost import workflow
            from a_first import call_api as imported   # not defined here: not listed again

            @workflow(name="shared")
            def shared_again(context):
                return 1

            @workflow
            def nightly(context):
                return None
        """)
        broken = self.write("c_broken.py", "import os\n\ndef broken(:\n    pass\n")
        raising = self.write("d_raising.py", """
            raise RuntimeError("no database\\nat import")
        """)
        exiting = self.write("e_exiting.py", "import sys\nsys.exit(4)\n")
        self.write("f_noisy.py", """
            import os
            print("printed at import")
            os.write(1, b"written to fd 1 at import\\n")
            from bifrost import workflow

            @workflow(name="noisy")
            def noisy(context):
                return None
        """)
        self.write("_private.py", "def broken(:\n")
        self.write(".hidden.py", "def broken(:\n")
        self.write("notes.txt", "not python")
        self.write("sub/deep.py", "from bifrost import workflow\n@workflow\ndef deep(c): pass\n")

        done = self.discover()
        self.assertEqual(done.returncode, 0, done.stderr)
        answer = json.loads(done.stdout)
        self.assertIn("printed at import", done.stderr)
        self.assertIn("written to fd 1 at import", done.stderr)

        self.assertEqual(answer["workflows"], [
            {"name": "call_api", "description": "Calls the API", "timeout_seconds": 30,
             "file": first, "function": "call_api"},
            {"name": "shared", "description": None, "timeout_seconds": None,
             "file": first, "function": "shared"},
            {"name": "billing.total", "description": None, "timeout_seconds": None,
             "file": first, "function": "Billing.total"},
            {"name": "nightly", "description": None, "timeout_seconds": None,
             "file": second, "function": "nightly"},
            {"name": "noisy", "description": None, "timeout_seconds": None,
             "file": os.path.join(self.directory, "f_noisy.py"), "function": "noisy"},
        ])
        errors = answer["errors"]
        self.assertEqual([error["file"] for error in errors], [second, broken, raising, exiting])
        self.assertEqual(errors[0]["error"], "workflow name 'shared' is already defined in "
                         "a_first.py")
        self.assertTrue(errors[1]["error"].startswith("SyntaxError: "), errors[1])
        self.assertTrue(errors[1]["error"].endswith("(line 3)"), errors[1])
        self.assertEqual(errors[2]["error"], "RuntimeError: no database at import")
        self.assertEqual(errors[3]["error"], "SystemExit: 4")
        for error in errors:
            self.assertNotIn("\n", error["error"])

    def test_an_empty_directory(self) -> None:
        self.assertEqual(self.scan(), {"workflows": [], "errors": []})

    def test_a_relative_directory_gives_absolute_paths(self) -> None:
        path = self.write("flows.py", "from bifrost import workflow\n@workflow\n"
                                      "def one(c): pass\n")
        done = subprocess.run([PYTHON, "-m", "bifrost._discover", "."], capture_output=True,
                              text=True, timeout=60, env=child_env(), cwd=self.directory)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["workflows"][0]["file"], path)

    def test_a_missing_directory_is_an_error(self) -> None:
        done = self.discover(os.path.join(self.directory, "nowhere"))
        self.assertNotEqual(done.returncode, 0)
        self.assertEqual(done.stdout, "")
        self.assertIn("not a directory", done.stderr)

    def test_a_lingering_thread_does_not_hold_the_scan(self) -> None:
        self.write("threads.py", """
            import threading, time
            threading.Thread(target=time.sleep, args=(3600,)).start()
        """)
        self.assertEqual(self.scan(), {"workflows": [], "errors": []})
