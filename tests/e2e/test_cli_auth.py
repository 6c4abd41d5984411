"""CLI for tokens, policies, auth methods and audit devices, against a real server: what an
operator types, the exit codes, and the effect on the server."""
import json
import os
import stat
import unittest

from harness import ServerTest


class CliAuth(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()
        self.s.init_and_unseal(1, 1)
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home)

    def cli(self, *args, token=None, stdin=None, check=True):
        token = self.s.root if token is None else token
        env = {"HOME": self.home}
        p = self.s.cli(*args, token=token or None, stdin=stdin, env_extra=env)
        if check and p.returncode != 0:
            raise AssertionError(f"coffer {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def test_policies_tokens_and_capabilities(self):
        s = self.s
        self.cli("secrets", "enable", "-path=secret", "kv")
        self.cli("write", "secret/app/db", "password=pw")
        pol = os.path.join(self.tmp, "app.hcl")
        with open(pol, "w") as f:
            f.write('path "secret/app/*" {\n    capabilities = ["read","list"]  # readers\n}\n')
        p = self.cli("policy", "fmt", pol)
        self.assertIn("comments are not kept", p.stderr)
        self.assertEqual(open(pol).read(), 'path "secret/app/*" {\n  capabilities = ["list", "read"]\n}\n')
        bad = os.path.join(self.tmp, "bad.hcl")
        with open(bad, "w") as f:
            f.write('path "x" { capabilities = ["reed"] }\n')
        p = self.cli("policy", "fmt", bad, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn('unknown capability "reed"', p.stderr)
        self.assertIn("Uploaded policy: app", self.cli("policy", "write", "app", pol).stdout)
        self.cli("policy", "write", "stdin-pol", "-", stdin='path "secret/x" { capabilities = ["read"] }')
        self.assertEqual(self.cli("policy", "list").stdout.split(), ["app", "default", "root", "stdin-pol"])
        self.assertIn('path "secret/app/*"', self.cli("policy", "read", "app").stdout)
        self.assertEqual(self.cli("policy", "write", "bad", bad, check=False).returncode, 2)

        p = self.cli("token", "create", "-policy=app", "-ttl=1h", "-display-name=ci", "-format=json")
        auth = json.loads(p.stdout)["auth"]
        child = auth["client_token"]
        self.assertEqual(auth["policies"], ["app", "default"])
        self.assertEqual(auth["lease_duration"], 3600)
        p = self.cli("token", "create", "-policy=app", "-field=token")
        self.assertTrue(p.stdout.startswith("hvs."))
        p = self.cli("token", "lookup", token=child)
        self.assertRegex(p.stdout, r"display_name\s+token-ci")
        p = self.cli("token", "lookup", "-accessor", auth["accessor"])
        self.assertRegex(p.stdout, r"policies\s+\[\"app\",\"default\"\]")
        self.assertEqual(self.cli("token", "capabilities", "secret/app/db", token=child).stdout.strip(), "list, read")
        self.assertEqual(self.cli("token", "capabilities", child, "secret/other").stdout.strip(), "deny")
        self.assertEqual(self.cli("read", "-field=password", "secret/app/db", token=child).stdout, "pw")
        p = self.cli("write", "secret/app/db", "password=x", token=child, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("permission denied", p.stderr)
        p = self.cli("token", "renew", "-increment=30m", "-format=json", token=child)
        self.assertEqual(json.loads(p.stdout)["auth"]["lease_duration"], 1800)
        self.cli("token", "revoke", "-self", token=child)
        self.assertEqual(self.cli("read", "secret/app/db", token=child, check=False).returncode, 2)
        self.assertEqual(self.cli("token", "revoke", check=False).returncode, 1)

    def test_login_token_and_approle(self):
        s = self.s
        # login stores the token in ~/.coffer-token (0600) and later commands use it.
        p = self.cli("login", s.root, token="")
        self.assertIn("Success! You are now authenticated", p.stdout)
        path = os.path.join(self.home, ".coffer-token")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(open(path).read().strip(), s.root)
        p = s.cli("secrets", "list", env_extra={"HOME": self.home})
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.cli("login", "hvs.wrongwrongwrongwrongwrong", token="", check=False)
        self.assertEqual(p.returncode, 2)

        self.assertIn("Enabled the approle auth method at: approle/", self.cli("auth", "enable", "approle").stdout)
        self.assertRegex(self.cli("auth", "list").stdout, r"approle/\s+approle")
        self.cli("policy", "write", "ci", "-", stdin='path "sys/mounts" { capabilities = ["read"] }')
        self.cli("write", "auth/approle/role/ci", "token_policies=ci")
        role_id = self.cli("read", "-field=role_id", "auth/approle/role/ci/role-id").stdout
        p = self.cli("write", "-format=json", "auth/approle/role/ci/secret-id", "num_uses=1")
        secret_id = json.loads(p.stdout)["data"]["secret_id"]
        p = self.cli("login", "-method=approle", f"role_id={role_id}", f"secret_id={secret_id}", token="")
        self.assertRegex(p.stdout, r"token_policies\s+\[\"ci\",\"default\"\]")
        tok = open(path).read().strip()
        self.assertNotEqual(tok, s.root)
        self.assertEqual(s.cli("secrets", "list", env_extra={"HOME": self.home}).returncode, 0)
        self.assertEqual(s.cli("policy", "list", env_extra={"HOME": self.home}).returncode, 2)
        p = self.cli("login", "-method=approle", f"role_id={role_id}", f"secret_id={secret_id}", token="", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("invalid role_id or secret_id", p.stderr)
        self.cli("auth", "disable", "approle")
        self.assertNotIn("approle", self.cli("auth", "list").stdout)

    def test_audit_commands(self):
        log = os.path.join(self.tmp, "audit.log")
        p = self.cli("audit", "enable", "file", f"file_path={log}")
        self.assertIn("Enabled the file audit device at: file/", p.stdout)
        self.assertIn(f"file_path={log}", self.cli("audit", "list").stdout)
        self.assertEqual(self.cli("audit", "enable", "-path=x", "syslog", check=False).returncode, 2)
        self.cli("audit", "disable", "file")
        self.assertIn("No audit devices are enabled", self.cli("audit", "list").stdout)
        self.assertTrue(os.path.getsize(log) > 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
