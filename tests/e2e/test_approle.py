"""AppRole over HTTP: roles, RoleID, SecretIDs (TTL, uses, lookup, destroy, CIDRs), login's auth
block, tokens bound to CIDRs, and hvac's AppRole login."""
import time
import unittest

from harness import ServerTest

try:
    import hvac
except ImportError:  # pragma: no cover
    hvac = None


class AppRole(ServerTest):
    def setUp(self):
        super().setUp()
        s = self.s = self.server(tls=False).start()
        s.init_and_unseal(1, 1)
        self.assertEqual(s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"})[0], 204)
        s.request("PUT", "secret/ci/key", s.root, {"v": "ci"})
        s.request("PUT", "secret/other", s.root, {"v": "no"})
        s.request("PUT", "sys/policies/acl/ci", s.root, {"policy": 'path "secret/ci/*" { capabilities = ["read"] }'})
        st, body, _ = s.request("POST", "sys/auth/approle", s.root, {"type": "approle"})
        self.assertEqual(st, 204, body)

    def role(self, name, **params):
        st, body, _ = self.s.request("POST", f"auth/approle/role/{name}", self.s.root, params)
        self.assertEqual(st, 204, body)
        role_id = self.s.request("GET", f"auth/approle/role/{name}/role-id", self.s.root)[1]["data"]["role_id"]
        return role_id

    def secret_id(self, name, **params):
        st, body, _ = self.s.request("POST", f"auth/approle/role/{name}/secret-id", self.s.root, params)
        self.assertEqual(st, 200, body)
        return body["data"]

    def login(self, role_id, secret_id):
        return self.s.request("POST", "auth/approle/login", None, {"role_id": role_id, "secret_id": secret_id})

    def test_login_and_secret_id_lifecycle(self):
        s = self.s
        st, body, _ = s.request("GET", "sys/auth", s.root)
        self.assertEqual(body["data"]["approle/"]["type"], "approle")
        self.assertEqual(body["data"]["token/"]["type"], "token")
        role_id = self.role("ci", token_policies=["ci"], token_ttl="20m", token_max_ttl="1h", secret_id_num_uses=2)
        sid = self.secret_id("ci", metadata={"job": "build-42"})
        self.assertEqual(sid["secret_id_num_uses"], 2)
        st, body, _ = self.login(role_id, sid["secret_id"])
        self.assertEqual(st, 200, body)
        auth = body["auth"]
        for key in ("client_token", "accessor", "policies", "token_policies", "metadata", "lease_duration", "renewable"):
            self.assertIn(key, auth)
        self.assertEqual(auth["policies"], ["ci", "default"])
        self.assertEqual(auth["lease_duration"], 1200)
        self.assertEqual(auth["metadata"], {"job": "build-42", "role_name": "ci"})
        tok = auth["client_token"]
        self.assertEqual(s.request("GET", "secret/ci/key", tok)[0], 200)
        self.assertEqual(s.request("GET", "secret/other", tok)[0], 403)
        look = s.request("GET", "auth/token/lookup-self", tok)[1]["data"]
        self.assertEqual(look["path"], "auth/approle/login")
        # Second use is the last one; the third login fails.
        self.assertEqual(self.login(role_id, sid["secret_id"])[0], 200)
        st, body, _ = self.login(role_id, sid["secret_id"])
        self.assertEqual(st, 400)
        self.assertEqual(body["errors"], ["invalid role_id or secret_id"])
        # Wrong secret, wrong role, missing fields.
        sid2 = self.secret_id("ci")
        self.assertEqual(self.login(role_id, "nope")[0], 400)
        self.assertEqual(self.login("nope", sid2["secret_id"])[0], 400)
        self.assertIn("missing secret_id", s.request("POST", "auth/approle/login", None, {"role_id": role_id})[1]["errors"][0])
        # Lookup and destroy, by value and by accessor.
        st, body, _ = s.request("POST", "auth/approle/role/ci/secret-id/lookup", s.root, {"secret_id": sid2["secret_id"]})
        self.assertEqual(body["data"]["secret_id_accessor"], sid2["secret_id_accessor"])
        st, body, _ = s.request("LIST", "auth/approle/role/ci/secret-id", s.root)
        self.assertIn(sid2["secret_id_accessor"], body["data"]["keys"])
        self.assertEqual(s.request("POST", "auth/approle/role/ci/secret-id-accessor/destroy", s.root,
                                   {"secret_id_accessor": sid2["secret_id_accessor"]})[0], 204)
        self.assertEqual(self.login(role_id, sid2["secret_id"])[0], 400)
        sid3 = self.secret_id("ci")
        self.assertEqual(s.request("POST", "auth/approle/role/ci/secret-id/destroy", s.root, {"secret_id": sid3["secret_id"]})[0], 204)
        self.assertEqual(self.login(role_id, sid3["secret_id"])[0], 400)
        # SecretID TTL.
        sid4 = self.secret_id("ci", ttl="1s")
        time.sleep(1.5)
        self.assertEqual(self.login(role_id, sid4["secret_id"])[0], 400)
        # Only privileged tokens manage roles.
        self.assertEqual(s.request("GET", "auth/approle/role/ci/role-id", tok)[0], 403)

    def test_cidr_bindings(self):
        s = self.s
        role_id = self.role("far", token_policies=["ci"], secret_id_bound_cidrs=["10.0.0.0/8"])
        sid = self.secret_id("far")
        st, body, _ = self.login(role_id, sid["secret_id"])
        self.assertEqual(st, 400)
        self.assertIn("unauthorized through CIDR restrictions", body["errors"][0])
        role_id = self.role("bound", token_policies=["ci"], token_bound_cidrs=["10.0.0.0/8"])
        st, body, _ = self.login(role_id, self.secret_id("bound")["secret_id"])
        self.assertEqual(st, 200, body)
        self.assertEqual(s.request("GET", "secret/ci/key", body["auth"]["client_token"])[0], 403)
        role_id = self.role("local", token_policies=["ci"], token_bound_cidrs=["127.0.0.0/8"])
        st, body, _ = self.login(role_id, self.secret_id("local")["secret_id"])
        self.assertEqual(s.request("GET", "secret/ci/key", body["auth"]["client_token"])[0], 200)
        self.assertEqual(s.request("POST", "auth/approle/role/x", s.root, {"token_bound_cidrs": ["not-a-cidr"]})[0], 400)
        self.assertEqual(s.request("POST", "auth/approle/role/y", s.root, {"bind_secret_id": False})[0], 400)

    @unittest.skipIf(hvac is None, "python3-hvac is not installed")
    def test_hvac_approle_login(self):
        role_id = self.role("hv", token_policies=["ci"])
        sid = self.secret_id("hv")["secret_id"]
        client = hvac.Client(url=self.s.addr)
        client.auth.approle.login(role_id=role_id, secret_id=sid)
        self.assertTrue(client.is_authenticated())
        self.assertEqual(client.read("secret/ci/key")["data"]["v"], "ci")

    def test_disable_removes_roles(self):
        s = self.s
        role_id = self.role("gone", token_policies=["ci"])
        st, body, _ = self.login(role_id, self.secret_id("gone")["secret_id"])
        self.assertEqual(st, 200, body)
        token = body["auth"]["client_token"]
        self.assertEqual(s.request("GET", "secret/ci/key", token)[0], 200)
        self.assertEqual(s.request("DELETE", "sys/auth/approle", s.root)[0], 204)
        # The tokens it issued are revoked with it (Vault's rule).
        st, body, _ = s.request("GET", "auth/token/lookup-self", token)
        self.assertEqual(st, 403, body)
        self.assertEqual(s.request("GET", "secret/ci/key", token)[0], 403)
        self.assertEqual(s.request("POST", "sys/auth/approle", s.root, {"type": "approle"})[0], 204)
        self.assertEqual(s.request("GET", "auth/approle/role/gone", s.root)[0], 404)
        self.assertEqual(s.request("DELETE", "sys/auth/token", s.root)[0], 400)
        self.assertEqual(s.request("POST", "sys/auth/x", s.root, {"type": "kv"})[0], 400)


if __name__ == "__main__":
    unittest.main(verbosity=2)
