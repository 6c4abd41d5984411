"""Requests that must not give a caller more than its policies and sudo allow, over HTTP against
the real server. Each case was a way around a sudo rule or a role's ACL: a path that reached a
sudo-protected action under another name (sys/audit-hash alone, sys/leases/revoke-force without
a prefix in the URL, an auth method disabled through sys/mounts), a token role named in the body
instead of the URL, a periodic or root token through a role, a child token shedding its
parent's CIDR binding, a child given the default policy its parent lacks, and a mount's
existence told to anyone guessing."""
import unittest

from harness import ServerTest

POLICIES = {
    # Everything under sys/ but sudo.
    "sysadmin": 'path "sys/*" { capabilities = ["create", "read", "update", "delete", "list"] }',
    # The leases' endpoints, without sudo (what hvac's lease tests grant).
    "leases": 'path "sys/leases/*" { capabilities = ["update", "read", "list"] }',
    # Tokens from auth/token/create only: no token role.
    "creator": 'path "auth/token/create" { capabilities = ["update"] }\n'
               'path "auth/token/create-orphan" { capabilities = ["update"] }',
    # Tokens from the role "helper" (whose allowed policies include root).
    "roleuser": 'path "auth/token/create/helper" { capabilities = ["update"] }',
    "ops": 'path "secret/*" { capabilities = ["read"] }',
}


class PrivilegeEscalation(ServerTest):
    def setUp(self):
        super().setUp()
        s = self.s = self.server(tls=False).start()
        s.init_and_unseal(1, 1)
        self.assertEqual(s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"})[0], 204)
        self.assertEqual(s.request("POST", "sys/auth/approle", s.root, {"type": "approle"})[0], 204)
        for name, text in POLICIES.items():
            st, body, _ = s.request("PUT", f"sys/policies/acl/{name}", s.root, {"policy": text})
            self.assertEqual(st, 204, body)
        st, body, _ = s.request("POST", "auth/token/roles/helper", s.root,
                                {"allowed_policies": ["ops", "root"]})
        self.assertEqual(st, 204, body)
        st, body, _ = s.request("POST", "auth/token/roles/opsrole", s.root,
                                {"allowed_policies": ["ops"]})
        self.assertEqual(st, 204, body)

    def token(self, *policies, **extra):
        body = {"policies": list(policies)}
        body.update(extra)
        st, resp, _ = self.s.request("POST", "auth/token/create", self.s.root, body)
        self.assertEqual(st, 200, resp)
        return resp["auth"]["client_token"]

    def test_audit_hash_without_a_device_path_enables_nothing(self):
        s = self.s
        t = self.token("sysadmin")
        for who in (t, s.root):
            st, body, text = s.request("PUT", "sys/audit-hash", who,
                                       {"type": "file", "options": {"file_path": "stdout"}})
            self.assertIn(st, (400, 403, 404), text)
        st, body, _ = s.request("GET", "sys/audit", s.root)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["data"], {}, "an audit device was enabled through sys/audit-hash")
        # Enabling a device is sudo, at sys/audit/<path>.
        st, _, text = s.request("PUT", "sys/audit/file", t,
                                {"type": "file", "options": {"file_path": "stdout"}})
        self.assertEqual(st, 403, text)

    def test_lease_revoke_prefix_and_force_need_the_prefix_in_the_url(self):
        s = self.s
        t = self.token("leases")
        for what in ("revoke-prefix", "revoke-force"):
            st, _, text = s.request("PUT", f"sys/leases/{what}", t, {"prefix": "secret/"})
            self.assertIn(st, (400, 403, 404), text)
            self.assertNotEqual(st, 204, text)
            # The URL form is sudo.
            st, _, text = s.request("PUT", f"sys/leases/{what}/secret/", t)
            self.assertEqual(st, 403, text)
            # An empty prefix in the URL revokes nothing, even for root.
            st, body, text = s.request("PUT", f"sys/leases/{what}/", s.root)
            self.assertEqual(st, 400, text)
            self.assertIn("prefix is required", body["errors"][0])

    def test_auth_methods_are_not_disabled_through_sys_mounts(self):
        s = self.s
        t = self.token("sysadmin")
        for who in (t, s.root):
            st, body, text = s.request("DELETE", "sys/mounts/auth/approle", who)
            self.assertEqual(st, 400, text)
            self.assertIn("sys/auth/<path>", body["errors"][0])
        st, body, _ = s.request("GET", "sys/auth", s.root)
        self.assertIn("approle/", body["data"], "the auth method is gone")
        # sys/auth/<path> is sudo.
        st, _, text = s.request("DELETE", "sys/auth/approle", t)
        self.assertEqual(st, 403, text)
        # A secrets engine is still disabled through sys/mounts without sudo.
        self.assertEqual(s.request("POST", "sys/mounts/scratch", t, {"type": "kv"})[0], 204)
        self.assertEqual(s.request("DELETE", "sys/mounts/scratch", t)[0], 204)

    def test_a_role_is_used_through_its_own_path_only(self):
        s = self.s
        t = self.token("creator")
        for path in ("auth/token/create", "auth/token/create-orphan"):
            # Not read (as in Vault): the parent's policies bound the token, not the role's.
            st, body, text = s.request("POST", path, t, {"role_name": "opsrole", "policies": ["ops"]})
            self.assertEqual(st, 400, text)
            self.assertIn("subset of parent", body["errors"][0])
        # Root asking with role_name in the body gets a token without the role, and is told.
        st, body, text = s.request("POST", "auth/token/create-orphan", s.root,
                                   {"role_name": "opsrole", "policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertIn("auth/token/create/<role_name>", body["warnings"][0])
        st, look, text = s.request("POST", "auth/token/lookup", s.root,
                                   {"token": body["auth"]["client_token"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(look["data"].get("role", ""), "")
        st, _, text = s.request("POST", "auth/token/create/opsrole", t, {"policies": ["ops"]})
        self.assertEqual(st, 403, text)
        # Without role_name the caller's own policies bound the child, as before.
        st, body, text = s.request("POST", "auth/token/create", t, {"policies": ["ops"]})
        self.assertEqual(st, 400, text)
        self.assertIn("subset of parent", body["errors"][0])

    def test_a_role_mints_neither_root_nor_periodic_tokens_for_others(self):
        s = self.s
        t = self.token("roleuser")
        st, body, text = s.request("POST", "auth/token/create/helper", t, {"policies": ["root"]})
        self.assertEqual(st, 400, text)
        self.assertIn("root tokens may not be created", body["errors"][0])
        st, body, text = s.request("POST", "auth/token/create/helper", t, {})  # the role's policies
        self.assertEqual(st, 400, text)
        st, body, text = s.request("POST", "auth/token/create/helper", t,
                                   {"policies": ["ops"], "period": "8760h"})
        self.assertEqual(st, 400, text)
        self.assertIn("sudo privileges required to create periodic token", body["errors"][0])
        st, body, text = s.request("POST", "auth/token/create/helper", t, {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["default", "ops"])
        # Root may still: a periodic token through the role, and a root token.
        st, body, text = s.request("POST", "auth/token/create/helper", s.root,
                                   {"policies": ["ops"], "period": "2h"})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["lease_duration"], 7200)

    def test_a_child_keeps_its_parents_cidr_binding(self):
        s = self.s
        st, body, text = s.request("POST", "auth/token/roles/bound", s.root,
                                   {"allowed_policies": ["creator", "ops"],
                                    "token_bound_cidrs": ["127.0.0.1/32"]})
        self.assertEqual(st, 204, text)
        st, body, text = s.request("POST", "auth/token/create/bound", s.root,
                                   {"policies": ["creator", "ops"]})
        self.assertEqual(st, 200, text)
        parent = body["auth"]["client_token"]
        st, body, text = s.request("POST", "auth/token/create", parent, {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        child = body["auth"]["client_token"]
        st, body, text = s.request("GET", "auth/token/lookup-self", child)
        self.assertEqual(st, 200, text)
        self.assertEqual(body["data"]["bound_cidrs"], ["127.0.0.1/32"])

    def test_default_policy_comes_only_from_a_parent_holding_it(self):
        s = self.s
        bare = self.token("creator", "ops", no_default_policy=True)
        st, body, text = s.request("GET", "auth/token/lookup-self", bare)
        self.assertEqual(st, 403, text)  # no default policy: not even lookup-self
        st, body, text = s.request("POST", "auth/token/create", bare, {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["ops"])
        child = body["auth"]["client_token"]
        st, _, text = s.request("GET", "auth/token/lookup-self", child)
        self.assertEqual(st, 403, text)
        st, body, text = s.request("POST", "auth/token/create", bare,
                                   {"policies": ["ops", "default"]})
        self.assertEqual(st, 400, text)
        self.assertIn('"default" is not held by the calling token', body["errors"][0])
        # A parent holding default passes it on, as before.
        st, body, text = s.request("POST", "auth/token/create", self.token("creator", "ops"),
                                   {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["default", "ops"])

    def test_a_role_does_not_hand_out_default_either(self):
        s = self.s
        # A role with no policy rules (TTLs only) makes tokens under the rules for no role.
        st, _, text = s.request("POST", "auth/token/roles/ttlonly", s.root, {"token_ttl": "1h"})
        self.assertEqual(st, 204, text)
        st, _, text = s.request("PUT", "sys/policies/acl/useroles", s.root, {
            "policy": 'path "auth/token/create/*" { capabilities = ["update"] }'})
        self.assertEqual(st, 204, text)
        st, body, text = s.request("POST", "auth/token/create", s.root,
                                   {"policies": ["ops", "useroles"], "no_default_policy": True})
        self.assertEqual(st, 200, text)
        bare = body["auth"]["client_token"]
        st, body, text = s.request("POST", "auth/token/create/ttlonly", bare, {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["ops"])
        st, body, text = s.request("POST", "auth/token/create/ttlonly", bare,
                                   {"policies": ["ops", "default"]})
        self.assertEqual(st, 400, text)
        # A role with token_no_default_policy keeps default out even when it is asked for.
        st, _, text = s.request("POST", "auth/token/roles/nodefault", s.root,
                                {"allowed_policies": ["ops"], "token_no_default_policy": True})
        self.assertEqual(st, 204, text)
        st, body, text = s.request("POST", "auth/token/create/nodefault", s.root,
                                   {"policies": ["ops", "default"]})
        self.assertEqual(st, 400, text)
        self.assertIn("allowed policies", body["errors"][0])
        # no_default_policy drops an inherited default.
        st, body, text = s.request("POST", "auth/token/create", self.token("creator", "ops"),
                                   {"no_default_policy": True})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["creator", "ops"])
        # The wrapping policy is the server's own: not even root hands it out.
        st, body, text = s.request("POST", "auth/token/create", s.root,
                                   {"policies": ["response-wrapping"]})
        self.assertEqual(st, 400, text)
        self.assertIn('cannot assign policy "response-wrapping"', body["errors"][0])

    def test_role_policy_globs_bound_what_the_role_gives(self):
        s = self.s
        st, _, text = s.request("POST", "auth/token/roles/teams", s.root, {
            "allowed_policies_glob": "team-*", "disallowed_policies_glob": ["*-admin"]})
        self.assertEqual(st, 204, text)
        st, body, text = s.request("GET", "auth/token/roles/teams", s.root)
        self.assertEqual(st, 200, text)
        self.assertEqual(body["data"]["allowed_policies_glob"], ["team-*"])
        self.assertEqual(body["data"]["disallowed_policies_glob"], ["*-admin"])
        self.assertEqual(body["data"]["allowed_policies"], [])
        st, _, text = s.request("PUT", "sys/policies/acl/useteams", s.root, {
            "policy": 'path "auth/token/create/teams" { capabilities = ["update"] }'})
        self.assertEqual(st, 204, text)
        # A caller holding none of the team policies gets one the role's glob allows (the role,
        # not the caller, bounds what it gives, as allowed_policies does).
        caller = self.token("useteams")
        st, body, text = s.request("POST", "auth/token/create/teams", caller,
                                   {"policies": ["team-a"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["default", "team-a"])
        # Matching an allowed glob and a disallowed one: disallowed wins.
        st, body, text = s.request("POST", "auth/token/create/teams", caller,
                                   {"policies": ["team-admin"]})
        self.assertEqual(st, 400, text)
        self.assertIn("disallowed", body["errors"][0])
        # Matching no allowed glob: refused, naming the rule.
        st, body, text = s.request("POST", "auth/token/create/teams", caller, {"policies": ["ops"]})
        self.assertEqual(st, 400, text)
        self.assertIn("allowed_policies_glob", body["errors"][0])
        # Globs name no policy to give: nothing asked gives "default" alone, as Vault.
        st, body, text = s.request("POST", "auth/token/create/teams", caller, {})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["default"])
        # A disallowed glob matching "default" keeps it from being added.
        st, _, text = s.request("POST", "auth/token/roles/nodefglob", s.root, {
            "allowed_policies": ["ops"], "disallowed_policies_glob": ["def*"]})
        self.assertEqual(st, 204, text)
        st, body, text = s.request("POST", "auth/token/create/nodefglob", s.root,
                                   {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["ops"])
        # A role with only a disallowed glob: the caller's own policies bound the rest.
        st, _, text = s.request("POST", "auth/token/roles/denyonly", s.root, {
            "disallowed_policies_glob": ["*-admin"]})
        self.assertEqual(st, 204, text)
        st, _, text = s.request("PUT", "sys/policies/acl/usedeny", s.root, {
            "policy": 'path "auth/token/create/denyonly" { capabilities = ["update"] }'})
        self.assertEqual(st, 204, text)
        limited = self.token("usedeny", "ops")
        st, body, text = s.request("POST", "auth/token/create/denyonly", limited,
                                   {"policies": ["team-a"]})
        self.assertEqual(st, 400, text)
        st, body, text = s.request("POST", "auth/token/create/denyonly", limited,
                                   {"policies": ["ops"]})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["auth"]["policies"], ["default", "ops"])

    def test_a_login_does_not_grant_the_wrapping_policy(self):
        s = self.s
        st, _, text = s.request("POST", "auth/approle/role/wrapper", s.root,
                                {"token_policies": ["response-wrapping"],
                                 "token_no_default_policy": True})
        self.assertEqual(st, 204, text)
        st, body, text = s.request("GET", "auth/approle/role/wrapper/role-id", s.root)
        self.assertEqual(st, 200, text)
        role_id = body["data"]["role_id"]
        st, body, text = s.request("POST", "auth/approle/role/wrapper/secret-id", s.root, {})
        self.assertEqual(st, 200, text)
        secret_id = body["data"]["secret_id"]
        st, body, text = s.request("POST", "auth/approle/login", None,
                                   {"role_id": role_id, "secret_id": secret_id})
        self.assertEqual(st, 400, text)
        self.assertIn('cannot assign policy "response-wrapping"', body["errors"][0])

    def test_ui_mounts_does_not_tell_which_mounts_exist(self):
        s = self.s
        t = self.token("ops")
        missing = s.request("GET", "sys/internal/ui/mounts/no-such-mount", t)
        hidden = s.request("GET", "sys/internal/ui/mounts/approle-not-mine", t)
        self.assertEqual(missing[0], 403, missing[2])
        self.assertEqual(missing[1], {"errors": ["permission denied"]})
        self.assertEqual(hidden[:2], missing[:2])
        st, body, text = s.request("GET", "sys/internal/ui/mounts/secret/x", t)
        self.assertEqual(st, 200, text)
        self.assertEqual(body["data"]["path"], "secret/")


if __name__ == "__main__":
    unittest.main()
