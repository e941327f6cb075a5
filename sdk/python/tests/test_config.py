"""config.get/set/list/delete against a fake Bifrost server."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import ssl
import tempfile
import textwrap

import bifrost
from bifrost import BifrostError, config

from .fake_server import FakeBifrost
from .support import PYTHON, SdkEnvTestCase, child_env, closed_port


def run(coroutine):
    return asyncio.run(coroutine)


class ConfigTestBase(SdkEnvTestCase):
    """A fake server with the organizations Contoso and Fabrikam and an admin token of
    Contoso in BIFROST_TOKEN."""

    def setUp(self) -> None:
        super().setUp()
        self.server = FakeBifrost().start()
        self.addCleanup(self.server.stop)
        self.contoso = self.server.add_org("Contoso")
        self.fabrikam = self.server.add_org("Fabrikam")
        self.admin = self.server.add_token("admin", self.contoso)
        self.platform = self.server.add_token("platform-admin", None, name="root")
        self.set_env(BIFROST_ADDR=self.server.addr(), BIFROST_TOKEN=self.admin)

    def org_path(self, org_id: str, suffix: str = "") -> str:
        return "/api/v1/orgs/{}/configs{}".format(org_id, suffix)


class GetTest(ConfigTestBase):

    def test_values_are_typed_by_the_config_type(self) -> None:
        self.server.put(self.contoso, "retries", "int", 42)
        self.server.put(self.contoso, "enabled", "bool", True)
        self.server.put(self.contoso, "off", "bool", False)
        self.server.put(self.contoso, "limits", "json", {"a": [1, 2.5, None], "b": "x"})
        self.server.put(self.contoso, "items", "json", [1, 2])
        self.server.put(self.contoso, "name", "string", "hello")
        self.server.put(self.contoso, "number_text", "string", "42")
        self.server.put(self.contoso, "api_key", "secret", "sk_live_xxxxx")

        async def read_all():
            return [await config.get(key) for key in
                    ("retries", "enabled", "off", "limits", "items", "name", "number_text",
                     "api_key")]

        values = run(read_all())
        self.assertEqual(values[0], 42)
        self.assertIs(type(values[0]), int)
        self.assertIs(values[1], True)
        self.assertIs(values[2], False)
        self.assertEqual(values[3], {"a": [1, 2.5, None], "b": "x"})
        self.assertEqual(values[4], [1, 2])
        self.assertEqual(values[5], "hello")
        self.assertEqual(values[6], "42")
        self.assertEqual(values[7], "sk_live_xxxxx")

    def test_get_always_uses_reveal_with_the_bearer_token(self) -> None:
        self.server.put(self.contoso, "name", "string", "hello")
        run(config.get("name"))
        reveal = self.server.requests_to(self.org_path(self.contoso))
        self.assertEqual([r.path for r in reveal], [self.org_path(self.contoso, "/name/reveal")])
        self.assertEqual(reveal[0].method, "GET")
        self.assertEqual(reveal[0].headers["Authorization"], "Bearer " + self.admin)

    def test_the_servers_global_fallback_is_returned(self) -> None:
        self.server.put(None, "region", "string", "eu-west")
        self.assertEqual(run(config.get("region")), "eu-west")
        self.server.put(self.contoso, "region", "string", "us-east")
        self.assertEqual(run(config.get("region")), "us-east")

    def test_a_missing_key_raises_key_error(self) -> None:
        with self.assertRaises(KeyError) as caught:
            run(config.get("api_key"))
        self.assertEqual(caught.exception.args, ("api_key",))

    def test_a_default_is_returned_for_a_missing_key(self) -> None:
        self.assertEqual(run(config.get("api_key", "fallback")), "fallback")
        self.assertEqual(run(config.get("api_key", default=0)), 0)
        self.assertIsNone(run(config.get("api_key", default=None)))

    def test_403_is_permission_error(self) -> None:
        self.set_env(BIFROST_TOKEN=self.server.add_token("reader", self.contoso))
        self.server.put(self.contoso, "api_key", "secret", "sk_live_xxxxx")
        with self.assertRaises(PermissionError) as caught:
            run(config.get("api_key", default="never"))
        self.assertIn("reader cannot reveal", str(caught.exception))
        self.assertNotIn("sk_live", str(caught.exception))

    def test_another_organization_is_permission_error(self) -> None:
        with self.assertRaises(PermissionError):
            run(config.get("api_key", org=self.fabrikam))

    def test_500_is_bifrost_error_never_the_default(self) -> None:
        self.server.force("GET", self.org_path(self.contoso, "/api_key/reveal"), 500,
                          "internal", "internal error (request id 7)")
        with self.assertRaises(BifrostError) as caught:
            run(config.get("api_key", default="fallback"))
        message = str(caught.exception)
        self.assertIn("500", message)
        self.assertIn("internal", message)
        self.assertIn("request id 7", message)
        self.assertEqual(caught.exception.status, 500)
        self.assertEqual(caught.exception.code, "internal")

    def test_503_is_bifrost_error(self) -> None:
        self.server.force("GET", self.org_path(self.contoso, "/api_key/reveal"), 503,
                          "unavailable", "the database is unavailable")
        with self.assertRaises(BifrostError):
            run(config.get("api_key", default=None))

    def test_401_is_bifrost_error_never_the_default(self) -> None:
        self.set_env(BIFROST_TOKEN="bft_unknown")
        with self.assertRaises(BifrostError) as caught:
            run(config.get("api_key", default="fallback", org=self.contoso))
        self.assertIn("401", str(caught.exception))
        self.assertNotIn("bft_unknown", str(caught.exception))

    def test_connection_refused_is_bifrost_error_naming_the_address(self) -> None:
        addr = "http://127.0.0.1:{}".format(closed_port())
        self.set_env(BIFROST_ADDR=addr)
        with self.assertRaises(BifrostError) as caught:
            run(config.get("api_key", default="fallback", org=self.contoso))
        self.assertIn(addr, str(caught.exception))
        self.assertNotIn(self.admin, str(caught.exception))

    def test_an_answer_that_is_not_json_is_bifrost_error(self) -> None:
        self.server.force("GET", self.org_path(self.contoso, "/api_key/reveal"), 200,
                          raw=b"<html>proxy</html>")
        with self.assertRaises(BifrostError) as caught:
            run(config.get("api_key"))
        self.assertIn("not JSON", str(caught.exception))

    def test_a_value_that_does_not_match_its_type_is_bifrost_error(self) -> None:
        self.server.put(self.contoso, "retries", "int", "three")
        with self.assertRaises(BifrostError) as caught:
            run(config.get("retries"))
        self.assertNotIn("three", str(caught.exception))

    def test_keys_are_percent_encoded(self) -> None:
        with self.assertRaises(BifrostError) as caught:
            run(config.get("a/b c"))
        self.assertEqual(caught.exception.status, 422)
        raw = self.server.requests_to(self.org_path(self.contoso))[0].raw_path
        self.assertTrue(raw.endswith("/configs/a%2Fb%20c/reveal"), raw)

    def test_a_key_must_be_a_string(self) -> None:
        with self.assertRaises(TypeError):
            config.get_sync(42)  # type: ignore[arg-type]

    def test_a_missing_token_is_bifrost_error(self) -> None:
        os.environ.pop("BIFROST_TOKEN")
        with self.assertRaises(BifrostError) as caught:
            run(config.get("api_key", org=self.contoso))
        self.assertIn("BIFROST_TOKEN", str(caught.exception))

    def test_concurrent_gets(self) -> None:
        for number in range(20):
            self.server.put(self.contoso, "k{}".format(number), "int", number)

        async def read_all():
            return await asyncio.gather(*(config.get("k{}".format(n)) for n in range(20)))

        self.assertEqual(run(read_all()), list(range(20)))


class SetTest(ConfigTestBase):

    def sent(self, key: str):
        puts = [r for r in self.server.requests_to(self.org_path(self.contoso, "/" + key))
                if r.method == "PUT"]
        self.assertEqual(len(puts), 1)
        return puts[0].body

    def test_the_type_follows_the_value(self) -> None:
        async def write_all():
            results = [
                await config.set("doc", {"a": [1, {"b": None}]}),
                await config.set("items", [1, "two"]),
                await config.set("flag", True),
                await config.set("off", False),
                await config.set("retries", 7),
                await config.set("ratio", 1.5),
                await config.set("name", "hello"),
                await config.set("nothing", None),
                await config.set("api_key", "sk_live_xxxxx", is_secret=True),
            ]
            return results

        self.assertEqual(run(write_all()), [None] * 9)
        self.assertEqual(self.sent("doc"), {"type": "json", "value": {"a": [1, {"b": None}]}})
        self.assertEqual(self.sent("items"), {"type": "json", "value": [1, "two"]})
        self.assertEqual(self.sent("flag"), {"type": "bool", "value": True})
        self.assertIs(self.sent("flag")["value"], True)
        self.assertEqual(self.sent("off"), {"type": "bool", "value": False})
        self.assertEqual(self.sent("retries"), {"type": "int", "value": 7})
        self.assertEqual(self.sent("ratio"), {"type": "string", "value": "1.5"})
        self.assertEqual(self.sent("name"), {"type": "string", "value": "hello"})
        self.assertEqual(self.sent("nothing"), {"type": "string", "value": "None"})
        self.assertEqual(self.sent("api_key"), {"type": "secret", "value": "sk_live_xxxxx"})
        self.assertEqual(self.server.configs[self.contoso]["api_key"]["type"], "secret")

    def test_values_read_back_typed(self) -> None:
        async def round_trip():
            await config.set("doc", {"x": 1})
            await config.set("flag", True)
            await config.set("retries", 3)
            return [await config.get("doc"), await config.get("flag"),
                    await config.get("retries")]

        self.assertEqual(run(round_trip()), [{"x": 1}, True, 3])

    def test_description_is_sent_only_when_given(self) -> None:
        run(config.set("name", "x", description="the name"))
        run(config.set("other", "y"))
        self.assertEqual(self.sent("name"),
                         {"type": "string", "value": "x", "description": "the name"})
        self.assertNotIn("description", self.sent("other"))

    def test_a_secret_must_be_a_string(self) -> None:
        with self.assertRaises(TypeError):
            run(config.set("api_key", 12345, is_secret=True))
        self.assertEqual(self.server.requests, [])

    def test_a_json_value_must_be_serializable(self) -> None:
        with self.assertRaises(TypeError):
            run(config.set("doc", {"a": {1, 2}}))
        self.assertEqual(self.server.requests, [])

    def test_errors(self) -> None:
        self.set_env(BIFROST_TOKEN=self.server.add_token("member", self.contoso))
        with self.assertRaises(PermissionError):
            run(config.set("name", "x"))
        self.server.force("PUT", self.org_path(self.contoso, "/name"), 500, "internal", "boom")
        with self.assertRaises(BifrostError):
            run(config.set("name", "x"))

    def test_the_issue_script(self) -> None:
        script = textwrap.dedent("""
            import asyncio
            from bifrost import config

            async def main():
                await config.set("api_key", "sk_live_xxxxx", is_secret=True)

            asyncio.run(main())
        """)
        done = subprocess.run(
            [PYTHON, "-c", script], capture_output=True, text=True, timeout=60,
            env=child_env({"BIFROST_ADDR": self.server.addr(), "BIFROST_TOKEN": self.admin}))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.server.configs[self.contoso]["api_key"],
                         {"type": "secret", "value": "sk_live_xxxxx", "description": None,
                          "version": 1})
        self.assertNotIn("sk_live", done.stdout + done.stderr)


class ListDeleteTest(ConfigTestBase):

    def test_list_types_values_and_masks_secrets(self) -> None:
        self.server.put(self.contoso, "retries", "int", 3)
        self.server.put(self.contoso, "api_key", "secret", "sk_live_xxxxx")
        self.server.put(self.contoso, "doc", "json", {"a": 1})
        self.server.put(None, "region", "string", "eu-west")
        self.server.put(None, "retries", "int", 1)
        self.assertEqual(run(config.list()), {"retries": 3, "api_key": "[SECRET]",
                                              "doc": {"a": 1}, "region": "eu-west"})

    def test_list_of_an_empty_organization(self) -> None:
        self.assertEqual(config.list_sync(), {})

    def test_delete(self) -> None:
        self.server.put(self.contoso, "name", "string", "x")
        self.assertIs(run(config.delete("name")), True)
        self.assertIs(run(config.delete("name")), False)
        self.assertNotIn("name", self.server.configs[self.contoso])

    def test_delete_errors(self) -> None:
        self.server.force("DELETE", self.org_path(self.contoso, "/name"), 500, "internal", "x")
        with self.assertRaises(BifrostError):
            run(config.delete("name"))
        self.set_env(BIFROST_TOKEN=self.server.add_token("reader", self.contoso))
        with self.assertRaises(PermissionError):
            run(config.delete("other"))


class OrganizationTest(ConfigTestBase):

    def test_outside_a_workflow_the_org_is_the_tokens(self) -> None:
        self.server.put(self.contoso, "name", "string", "contoso's")
        self.assertEqual(run(config.get("name")), "contoso's")
        self.assertEqual(config.get_sync("name"), "contoso's")
        run(config.set("other", 1))
        whoami = self.server.requests_to("/api/v1/whoami")
        self.assertEqual(len(whoami), 1, "whoami is asked once per process")

    def test_org_by_id(self) -> None:
        self.set_env(BIFROST_TOKEN=self.platform)
        self.server.put(self.fabrikam, "name", "string", "fabrikam's")
        self.assertEqual(run(config.get("name", org=self.fabrikam)), "fabrikam's")
        self.assertEqual(self.server.requests_to("/api/v1/whoami"), [])
        self.assertEqual(self.server.requests_to("/api/v1/orgs")[0].path,
                         self.org_path(self.fabrikam, "/name/reveal"))

    def test_org_by_name(self) -> None:
        self.set_env(BIFROST_TOKEN=self.platform)
        self.server.put(self.fabrikam, "name", "string", "fabrikam's")
        self.assertEqual(run(config.get("name", org="Fabrikam")), "fabrikam's")
        run(config.set("other", True, org="Fabrikam"))
        self.assertIs(self.server.configs[self.fabrikam]["other"]["value"], True)
        lookups = [r for r in self.server.requests if r.path == "/api/v1/orgs"]
        self.assertEqual(len(lookups), 1)
        self.assertEqual(lookups[0].query, {"name": ["Fabrikam"]})

    def test_an_unknown_org_name_is_bifrost_error(self) -> None:
        self.set_env(BIFROST_TOKEN=self.platform)
        with self.assertRaises(BifrostError) as caught:
            run(config.get("name", org="Nowhere", default=None))
        self.assertIn("no organization named 'Nowhere'", str(caught.exception))

    def test_global_scope(self) -> None:
        self.set_env(BIFROST_TOKEN=self.platform)

        async def work():
            await config.set("region", "eu-west", scope="global")
            region = await config.get("region", scope="global")
            listing = await config.list(scope="global")
            deleted = await config.delete("region", scope="global")
            return region, listing, deleted

        self.assertEqual(run(work()), ("eu-west", {"region": "eu-west"}, True))
        paths = [r.path for r in self.server.requests]
        self.assertEqual(paths, ["/api/v1/global/configs/region",
                                 "/api/v1/global/configs/region/reveal",
                                 "/api/v1/global/configs",
                                 "/api/v1/global/configs/region"])

    def test_global_scope_with_an_org_token_is_permission_error(self) -> None:
        with self.assertRaises(PermissionError):
            run(config.get("region", scope="global"))

    def test_a_platform_admin_without_org_or_scope_is_told_to_pass_one(self) -> None:
        self.set_env(BIFROST_TOKEN=self.platform)
        with self.assertRaises(BifrostError) as caught:
            run(config.get("name", default=None))
        self.assertIn("org=", str(caught.exception))
        self.assertIn('scope="global"', str(caught.exception))

    def test_org_and_scope_together_are_rejected(self) -> None:
        with self.assertRaises(ValueError):
            run(config.get("name", org=self.contoso, scope="global"))
        with self.assertRaises(ValueError):
            run(config.get("name", scope="everywhere"))
        self.assertEqual(self.server.requests, [])

    def test_inside_a_workflow_the_org_is_the_executions(self) -> None:
        token = self.server.add_token("admin", self.fabrikam, name="bfx_execution")
        self.set_env(BIFROST_TOKEN=token, BIFROST_EXECUTION_ID="exec-1",
                     BIFROST_ORG_ID=self.fabrikam, BIFROST_ORG_NAME="Fabrikam",
                     BIFROST_WORKFLOW="call_api")
        self.server.put(self.fabrikam, "api_key", "secret", "fab-key")
        self.assertEqual(run(config.get("api_key")), "fab-key")
        self.assertEqual(run(config.get("api_key", org="Fabrikam")), "fab-key")
        self.assertEqual(self.server.requests_to("/api/v1/whoami"), [])
        self.assertEqual(self.server.requests_to("/api/v1/orgs?"), [])
        self.assertEqual({r.path for r in self.server.requests},
                         {self.org_path(self.fabrikam, "/api_key/reveal")})


class SyncTest(ConfigTestBase):

    def test_config_sync_twins(self) -> None:
        self.assertIsNone(config.set_sync("retries", 5, description="how often"))
        self.assertEqual(config.get_sync("retries"), 5)
        self.assertEqual(config.get_sync("missing", None), None)
        self.assertEqual(config.list_sync(), {"retries": 5})
        self.assertTrue(config.delete_sync("retries"))
        self.assertFalse(config.delete_sync("retries"))
        with self.assertRaises(KeyError):
            config.get_sync("retries")

    def test_the_sync_module(self) -> None:
        from bifrost import sync
        self.assertIs(bifrost.sync, sync)
        self.assertIsNone(sync.set("doc", {"a": 1}))
        self.assertIsNone(sync.set("api_key", "k", is_secret=True))
        self.assertEqual(sync.get("doc"), {"a": 1})
        self.assertEqual(sync.get("nope", default="d"), "d")
        self.assertEqual(sync.list(), {"doc": {"a": 1}, "api_key": "[SECRET]"})
        self.assertTrue(sync.delete("doc"))
        self.assertFalse(sync.delete("doc"))
        self.set_env(BIFROST_TOKEN=self.platform)
        sync.set("region", "eu", scope="global")
        self.assertEqual(sync.get("region", org="Contoso"), "eu")


class TransportTest(ConfigTestBase):

    def test_one_connection_is_kept_alive(self) -> None:
        self.server.put(self.contoso, "name", "string", "x")
        for _ in range(5):
            config.get_sync("name")
        self.assertEqual(self.server.connections, 1)

    def test_a_dropped_idle_connection_is_replaced(self) -> None:
        self.server.close_after_each_response = True
        self.server.put(self.contoso, "name", "string", "x")
        for _ in range(3):
            self.assertEqual(config.get_sync("name"), "x")
        self.assertEqual(len(self.server.requests), 4)  # whoami and three reveals

    def test_https_with_a_ca_file(self) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            self.skipTest("no openssl command to make a certificate")
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        cert = os.path.join(directory, "cert.pem")
        key = os.path.join(directory, "key.pem")
        subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = FakeBifrost().start(ssl_context=context)
        self.addCleanup(server.stop)
        org = server.add_org("Contoso")
        server.put(org, "name", "string", "over tls")
        self.set_env(BIFROST_ADDR=server.addr("https"), BIFROST_TOKEN=server.add_token(
            "admin", org), BIFROST_CACERT=cert)
        self.assertEqual(config.get_sync("name"), "over tls")
        os.environ.pop("BIFROST_CACERT")
        with self.assertRaises(BifrostError) as caught:
            config.get_sync("name")
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(caught.exception))
