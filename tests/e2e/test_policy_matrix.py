"""ACL policy matrix over HTTP against the real server: every case states the token, operation,
path, and the exact status the user must get. Loosening any rule (globs, '+', deny, sudo, list vs
read, create vs update, child subsets, token roles) flips at least one case."""
import unittest

from harness import ServerTest

POLICIES = {
    "app": '''
path "secret/app/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/app/locked" { capabilities = ["deny"] }
path "secret/app/readonly/*" { capabilities = ["read", "list"] }
path "secret/shared" { capabilities = ["read"] }
''',
    "team": '''
path "secret/teams/+/config" { capabilities = ["read"] }
path "secret/teams/+/+/deploy" { capabilities = ["update"] }
path "secret/teams/blue/*" { capabilities = ["read", "list"] }
path "secret/teams/+/secret" { capabilities = ["deny"] }
''',
    "lister": '''
path "secret/catalog" { capabilities = ["list"] }
path "secret/catalog/*" { capabilities = ["read"] }
''',
    "creator": '''
path "secret/inbox/*" { capabilities = ["create"] }
''',
    "updater": '''
path "secret/inbox/*" { capabilities = ["update", "read"] }
''',
    "ops": '''
path "sys/rotate" { capabilities = ["update"] }
path "sys/seal" { capabilities = ["update"] }
path "sys/mounts" { capabilities = ["read"] }
path "sys/mounts/*" { capabilities = ["create", "update", "read", "delete"] }
path "sys/policies/acl/*" { capabilities = ["read", "list"] }
path "sys/policies/acl" { capabilities = ["list"] }
path "auth/token/accessors/" { capabilities = ["list"] }
''',
    "sudoer": '''
path "sys/rotate" { capabilities = ["update", "sudo"] }
path "auth/token/accessors/" { capabilities = ["list", "sudo"] }
path "auth/token/create" { capabilities = ["update", "sudo"] }
''',
    "denier": '''
path "secret/app/*" { capabilities = ["deny"] }
''',
    "minter": '''
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create/*" { capabilities = ["update"] }
path "secret/app/*" { capabilities = ["read"] }
''',
}


class PolicyMatrix(ServerTest):
    def setUp(self):
        super().setUp()
        s = self.s = self.server(tls=False).start()
        s.init_and_unseal(1, 1)
        self.assertEqual(s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"})[0], 204)
        for name, text in POLICIES.items():
            st, body, _ = s.request("PUT", f"sys/policies/acl/{name}", s.root, {"policy": text})
            self.assertEqual(st, 204, body)
        for path in ("app/a", "app/locked", "app/readonly/r", "shared", "teams/red/config", "teams/red/secret",
                     "teams/blue/x", "teams/blue/prod/deploy", "teams/blue/secret", "teams/red/prod/deploy", "catalog/item", "inbox/existing", "other"):
            self.assertEqual(s.request("PUT", f"secret/{path}", s.root, {"v": path})[0], 204)
        self.assertEqual(s.request("PUT", "auth/token/roles/ci", s.root,
                                   {"allowed_policies": ["app"], "disallowed_policies": ["ops"]})[0], 204)
        self.tokens = {}
        for combo in (["app"], ["team"], ["lister"], ["creator"], ["updater"], ["ops"], ["sudoer"],
                      ["app", "denier"], ["minter"], ["app", "team"]):
            st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": combo})
            self.assertEqual(st, 200, body)
            self.tokens["+".join(combo)] = body["auth"]["client_token"]

    def check(self, who, method, path, want, body=None):
        token = self.tokens[who] if who in self.tokens else who
        st, resp, text = self.s.request(method, path, token, body)
        self.assertEqual(st, want, f"{who} {method} {path} -> {st} {text}")
        if want == 403:
            self.assertEqual(resp, {"errors": ["permission denied"]})
        return resp

    def test_matrix(self):
        cases = [
            # globs
            ("app", "GET", "secret/app/a", 200),
            ("app", "PUT", "secret/app/new", 204, {"v": "1"}),
            ("app", "DELETE", "secret/app/new", 204),
            ("app", "GET", "secret/apple", 403),                  # glob is a prefix of the path, not of words
            ("app", "GET", "secret/other", 403),                  # deny by default
            ("app", "LIST", "secret/app", 200),                   # "secret/app/*" covers the folder
            ("app", "GET", "secret/app/locked", 403),             # exact deny beats the glob
            ("app", "PUT", "secret/app/locked", 403, {"v": "x"}),
            ("app", "GET", "secret/app/readonly/r", 200),         # longer glob decides
            ("app", "PUT", "secret/app/readonly/r", 403, {"v": "x"}),
            ("app", "GET", "secret/shared", 200),                 # exact path
            ("app", "PUT", "secret/shared", 403, {"v": "x"}),
            ("app", "GET", "secret/shared/sub", 403),             # exact is not a prefix
            # '+' segments and their precedence
            ("team", "GET", "secret/teams/red/config", 200),
            ("team", "GET", "secret/teams/red/x/config", 403),    # '+' is one segment
            ("team", "GET", "secret/teams/red/secret", 403),      # deny on a '+' rule
            ("team", "GET", "secret/teams/blue/x", 200),
            ("team", "LIST", "secret/teams/blue", 200),
            ("team", "PUT", "secret/teams/red/prod/deploy", 204, {"v": "1"}),   # only +/+/deploy matches
            ("team", "GET", "secret/teams/red/prod/deploy", 403),   # ...and it grants only update
            ("team", "PUT", "secret/teams/blue/prod/deploy", 403, {"v": "1"}),  # blue/* wins: its first
            ("team", "GET", "secret/teams/blue/prod/deploy", 200),  # wildcard comes later than +/+/deploy's
            ("team", "GET", "secret/teams/blue/secret", 200),       # blue/* also beats the +/secret deny
            ("team", "GET", "secret/teams/green/x", 403),
            # list vs read
            ("lister", "LIST", "secret/catalog", 200),
            ("lister", "GET", "secret/catalog", 403),
            ("lister", "GET", "secret/catalog/item", 200),
            ("lister", "LIST", "secret/catalog/item", 403),
            # create vs update (existence check)
            ("creator", "PUT", "secret/inbox/fresh", 204, {"v": "1"}),
            ("creator", "PUT", "secret/inbox/existing", 403, {"v": "2"}),
            ("updater", "PUT", "secret/inbox/existing", 204, {"v": "3"}),
            ("updater", "PUT", "secret/inbox/brand-new", 403, {"v": "4"}),
            # deny overriding across policies
            ("app+denier", "GET", "secret/app/a", 403),
            ("app+denier", "GET", "secret/shared", 200),
            # union of policies
            ("app+team", "GET", "secret/teams/red/config", 200),
            ("app+team", "GET", "secret/app/a", 200),
            # sudo-only paths
            ("ops", "PUT", "sys/rotate", 403),
            ("sudoer", "PUT", "sys/rotate", 204),
            ("ops", "LIST", "auth/token/accessors", 403),
            ("sudoer", "LIST", "auth/token/accessors", 200),
            ("ops", "PUT", "sys/seal", 403),
            # system paths without sudo
            ("ops", "GET", "sys/mounts", 200),
            ("ops", "POST", "sys/mounts/extra", 204, {"type": "kv"}),
            ("ops", "DELETE", "sys/mounts/extra", 204),
            ("ops", "LIST", "sys/policies/acl", 200),
            ("ops", "PUT", "sys/policies/acl/evil", 403, {"policy": 'path "*" { capabilities = ["sudo"] }'}),
            ("app", "GET", "sys/mounts", 403),
            ("app", "GET", "sys/policies/acl/app", 403),
            # the default policy
            ("app", "GET", "auth/token/lookup-self", 200),
            ("app", "POST", "auth/token/lookup", 403, {"token": "x"}),
            ("app", "POST", "sys/capabilities-self", 200, {"path": "secret/app/a"}),
            ("app", "POST", "auth/token/create", 403, {}),
        ]
        self.assertGreaterEqual(len(cases), 40)
        for c in cases:
            with self.subTest(case=c[:3]):
                self.check(*c)

    def test_capabilities_report(self):
        resp = self.check("team", "POST", "sys/capabilities-self", 200,
                          {"paths": ["secret/teams/red/config", "secret/teams/red/secret", "secret/teams/blue/x"]})
        self.assertEqual(resp["data"]["secret/teams/red/config"], ["read"])
        self.assertEqual(resp["data"]["secret/teams/red/secret"], ["deny"])
        self.assertEqual(resp["data"]["secret/teams/blue/x"], ["list", "read"])
        resp = self.check(self.s.root, "POST", "sys/capabilities", 200,
                          {"token": self.tokens["app"], "path": "secret/app/a"})
        self.assertEqual(resp["data"]["capabilities"], ["create", "delete", "list", "read", "update"])

    def test_child_tokens_and_roles(self):
        s = self.s
        st, body, _ = s.request("POST", "auth/token/create", s.root, {"policies": ["minter", "app"]})
        minter = body["auth"]["client_token"]
        # A child may hold a subset of its parent's policies, never more.
        st, body, _ = s.request("POST", "auth/token/create", minter, {"policies": ["app"]})
        self.assertEqual(st, 200, body)
        child = body["auth"]["client_token"]
        self.assertEqual(body["auth"]["policies"], ["app", "default"])
        self.check(child, "GET", "secret/app/a", 200)
        self.check(child, "POST", "auth/token/create", 403, {})  # the child lacks minter
        st, body, _ = s.request("POST", "auth/token/create", minter, {"policies": ["ops"]})
        self.assertEqual(st, 400)
        self.assertIn("subset of parent", body["errors"][0])
        # A token role: allowed and disallowed policies.
        st, body, _ = s.request("POST", "auth/token/create/ci", minter, {"policies": ["app"]})
        self.assertEqual(st, 200, body)
        st, body, _ = s.request("POST", "auth/token/create/ci", minter, {"policies": ["ops"]})
        self.assertEqual(st, 400)
        self.assertIn("disallowed", body["errors"][0])
        st, body, _ = s.request("POST", "auth/token/create/ci", minter, {"policies": ["team"]})
        self.assertEqual(st, 400)
        self.assertIn("allowed policies", body["errors"][0])
        # Revoking the parent revokes the child.
        self.assertEqual(s.request("POST", "auth/token/revoke-self", minter)[0], 204)
        self.check(child, "GET", "secret/app/a", 403)

    def test_policy_endpoints(self):
        s = self.s
        st, body, _ = s.request("LIST", "sys/policies/acl", s.root)
        self.assertIn("app", body["data"]["keys"])
        self.assertIn("default", body["data"]["keys"])
        st, body, _ = s.request("GET", "sys/policies/acl/app", s.root)
        self.assertEqual(body["data"]["policy"], POLICIES["app"])
        st, body, _ = s.request("GET", "sys/policy", s.root)
        self.assertIn("root", body["policies"])
        st, body, _ = s.request("PUT", "sys/policies/acl/bad", s.root, {"policy": 'path "a" { capabilities = ["reed"] }'})
        self.assertEqual(st, 400)
        self.assertIn('unknown capability "reed"', body["errors"][0])
        self.assertEqual(s.request("DELETE", "sys/policies/acl/default", s.root)[0], 400)
        self.assertEqual(s.request("PUT", "sys/policies/acl/root", s.root, {"policy": 'path "a" { capabilities = ["read"] }'})[0], 400)
        # Deleting a policy takes effect at once for tokens holding it.
        self.check("app", "GET", "secret/app/a", 200)
        self.assertEqual(s.request("DELETE", "sys/policies/acl/app", s.root)[0], 204)
        self.check("app", "GET", "secret/app/a", 403)
        self.assertEqual(s.request("GET", "sys/policies/acl/app", s.root)[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
