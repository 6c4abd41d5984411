"""Vault's HTTP conventions that clients rely on, over real HTTP: X-Vault-* headers (the ones
Coffer implements work, the others are refused with their name, never ignored), response
wrapping through X-Vault-Wrap-TTL, ?list= read as Go's ParseBool, mount options sent as numbers,
and sys/unseal answered with the status on an unsealed server.
"""
import json
import os
import unittest

from harness import ServerTest


class VaultHttpCompat(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()
        self.s.init_and_unseal(1, 1)
        self.t = self.s.root

    def req(self, method, path, body=None, headers=None, token=True):
        return self.s.request(method, path, token=self.t if token else None, body=body,
                              headers=headers)

    def test_headers(self):
        status, body, _ = self.req("GET", "sys/mounts", headers={"X-Vault-Request": "true"})
        self.assertEqual(status, 200, body)
        status, body, _ = self.req("GET", "sys/mounts", headers={"X-Vault-Namespace": "root"})
        self.assertEqual(status, 200, body)
        for h, v in (("X-Vault-Namespace", "team-a"), ("X-Vault-Inconsistent", "forward-active-node"),
                     ("X-Vault-Index", "abc"), ("X-Vault-Policy-Override", "true")):
            status, body, _ = self.req("GET", "sys/mounts", headers={h: v})
            self.assertEqual(status, 400, h)
            self.assertIn(h, body["errors"][0])
        # A write's parameter in the URL would be ignored: refused with its name.
        status, body, _ = self.req("POST", "sys/mounts/q?type=kv", {"type": "kv"})
        self.assertEqual(status, 400)
        self.assertIn('query parameter "type"', body["errors"][0])
        self.assertEqual(self.req("GET", "sys/mounts/q")[0], 404)
        status, body, _ = self.req("GET", "sys/mounts", headers={"X-Vault-Wrap-TTL": "soon"})
        self.assertEqual(status, 400)
        self.assertIn("X-Vault-Wrap-TTL", body["errors"][0])

    def test_wrapping_over_http(self):
        status, body, _ = self.req("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": 1}})
        self.assertEqual(status, 204, body)
        status, body, _ = self.req("GET", "sys/mounts/kv")
        self.assertEqual(body["data"]["options"], {"version": "1"})
        self.assertEqual(self.req("POST", "kv/db", {"password": "hunter2"})[0], 204)
        status, body, _ = self.req("GET", "kv/db", headers={"X-Vault-Wrap-TTL": "90s"})
        self.assertEqual(status, 200, body)
        self.assertIsNone(body["data"])
        info = body["wrap_info"]
        self.assertEqual(info["ttl"], 90)
        self.assertEqual(info["creation_path"], "kv/db")
        self.assertNotIn("hunter2", _)
        # Unwrapped with the wrapping token alone, once.
        status, body, _ = self.s.request("POST", "sys/wrapping/unwrap", token=info["token"])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["data"], {"password": "hunter2"})
        status, body, _ = self.s.request("POST", "sys/wrapping/unwrap", token=info["token"])
        self.assertEqual(status, 400)
        self.assertEqual(body["errors"], ["wrapping token is not valid or does not exist"])
        # Wrapped AppRole SecretIDs (vault write -wrap-ttl=... auth/approle/role/x/secret-id).
        self.assertEqual(self.req("POST", "sys/auth/approle", {"type": "approle"})[0], 204)
        self.assertEqual(self.req("POST", "auth/approle/role/ci", {"token_policies": "default"})[0], 204)
        status, body, _ = self.req("POST", "auth/approle/role/ci/secret-id", {},
                                   headers={"X-Vault-Wrap-TTL": "60"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["wrap_info"]["creation_path"], "auth/approle/role/ci/secret-id")
        status, body, _ = self.req("POST", "sys/wrapping/unwrap", {"token": body["wrap_info"]["token"]})
        self.assertEqual(status, 200, body)
        self.assertIn("secret_id", body["data"])
        self.assertIn("secret_id_accessor", body["data"])

    def test_wrapping_is_audited_with_the_token_hmaced(self):
        log = os.path.join(self.tmp, "audit.log")
        status, body, _ = self.req("PUT", "sys/audit/file", {"type": "file", "options": {"file_path": log}})
        self.assertEqual(status, 204, body)
        status, body, _ = self.req("POST", "sys/wrapping/wrap", {"db": "hunter2"},
                                   headers={"X-Vault-Wrap-TTL": "60s"})
        self.assertEqual(status, 200, body)
        token = body["wrap_info"]["token"]
        status, _, _ = self.s.request("POST", "sys/wrapping/unwrap", token=token)
        self.assertEqual(status, 200)
        with open(log) as f:
            text = f.read()
        self.assertNotIn(token, text)
        self.assertNotIn("hunter2", text)
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        wrapped = [e for e in entries if e["type"] == "response" and e["response"].get("wrap_info")]
        self.assertEqual(len(wrapped), 1, entries)
        hmac_token = wrapped[0]["response"]["wrap_info"]["token"]
        self.assertTrue(hmac_token.startswith("hmac-sha256:"), hmac_token)
        # The unwrap is audited with the same HMAC as its client token: the two can be matched.
        unwraps = [e for e in entries if e["type"] == "request" and e["request"]["path"] == "sys/wrapping/unwrap"]
        self.assertEqual(len(unwraps), 1)
        self.assertEqual(unwraps[0]["auth"].get("client_token", unwraps[0]["request"].get("client_token")),
                         hmac_token, unwraps[0])

    def test_list_parameter_and_unseal(self):
        self.req("POST", "sys/mounts/kv", {"type": "kv"})
        self.req("POST", "kv/a", {"x": "1"})
        for v in ("true", "True", "1", "t", "TRUE"):
            status, body, _ = self.req("GET", "kv/?list=" + v)
            self.assertEqual(status, 200, v)
            self.assertEqual(body["data"]["keys"], ["a"], v)
        status, body, _ = self.req("GET", "kv/a?list=false")
        self.assertEqual(body["data"], {"x": "1"})
        status, body, _ = self.req("GET", "kv/?list=maybe")
        self.assertEqual(status, 400)
        self.assertIn("list", body["errors"][0])
        status, body, _ = self.s.request("PUT", "sys/unseal", body={"key": self.s.keys[0]})
        self.assertEqual(status, 200, body)
        self.assertFalse(body["sealed"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
