"""The GitHub auth method against a stand-in of the GitHub API (a local HTTP server answering
/user, /user/orgs and /user/teams for known tokens): a member of the organization logs in and gets
token_policies plus the policies of the teams and the user it is mapped by; a refused token, a
user outside the organization and a base_url that would send tokens in clear are refused; the
GitHub token appears in no log.
"""
import http.server
import json
import os
import threading
import unittest

from harness import ServerTest, free_port

USERS = {
    "gh-token-alice": {"user": {"login": "Alice", "id": 1},
                       "orgs": [{"login": "Acme", "id": 77}, {"login": "other", "id": 5}],
                       "teams": [{"name": "Ops Team", "slug": "ops-team", "organization": {"login": "acme"}},
                                 {"name": "Ops Team", "slug": "ops-team", "organization": {"login": "other"}}]},
    "gh-token-mallory": {"user": {"login": "mallory", "id": 2},
                         "orgs": [{"login": "other", "id": 5}], "teams": []},
}


class FakeGithub(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        FakeGithub.seen.append((self.path, auth))
        who = USERS.get(auth.removeprefix("Bearer "))
        if not who:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"message":"Bad credentials"}')
            return
        path = self.path.split("?")[0]
        body = {"/user": who["user"], "/user/orgs": who["orgs"], "/user/teams": who["teams"]}.get(path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body if body is not None else {"message": "Not Found"}).encode())

    def log_message(self, *args):
        pass


class GithubAuth(ServerTest):
    def test_login_with_a_github_token(self):
        api_port = free_port()
        api = http.server.ThreadingHTTPServer(("127.0.0.1", api_port), FakeGithub)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        self.addCleanup(api.shutdown)
        s = self.server().start()
        s.init_and_unseal(1, 1)
        t = s.root
        audit = os.path.join(self.tmp, "audit.log")
        self.assertEqual(s.request("PUT", "sys/audit/file", t, {"type": "file", "options": {"file_path": audit}})[0], 204)
        self.assertEqual(s.request("POST", "sys/auth/github", t, {"type": "github"})[0], 204)
        # base_url in clear to another host is refused.
        st, body, _ = s.request("POST", "auth/github/config", t, {"organization": "acme", "base_url": "http://example.com/"})
        self.assertEqual(st, 400)
        self.assertIn("https", body["errors"][0])
        st, body, _ = s.request("POST", "auth/github/config", t,
                                {"organization": "acme", "base_url": f"http://127.0.0.1:{api_port}/",
                                 "token_policies": "base", "token_ttl": "1h"})
        self.assertEqual(st, 204, body)
        st, body, _ = s.request("GET", "auth/github/config", t)
        self.assertEqual((body["data"]["organization"], body["data"]["token_ttl"]), ("acme", 3600))
        self.assertEqual(s.request("POST", "auth/github/map/teams/ops-team", t, {"value": "ops,deploy"})[0], 204)
        self.assertEqual(s.request("POST", "auth/github/map/users/alice", t, {"value": "alice-own"})[0], 204)
        st, body, _ = s.request("LIST", "auth/github/map/teams", t)
        self.assertEqual(body["data"]["keys"], ["ops-team"])

        st, body, _ = s.request("POST", "auth/github/login", None, {"token": "gh-token-alice"})
        self.assertEqual(st, 200, body)
        auth = body["auth"]
        self.assertEqual(sorted(auth["policies"]), ["alice-own", "base", "default", "deploy", "ops"])
        self.assertEqual(auth["metadata"], {"org": "acme", "username": "Alice"})
        self.assertEqual(auth["lease_duration"], 3600)
        st, look, _ = s.request("GET", "auth/token/lookup-self", auth["client_token"])
        self.assertEqual(st, 200)
        self.assertEqual(look["data"]["display_name"], "github-Alice")
        self.assertIn(("/user", "Bearer gh-token-alice"), FakeGithub.seen)

        st, body, _ = s.request("POST", "auth/github/login", None, {"token": "gh-token-mallory"})
        self.assertEqual(st, 403)
        self.assertIn("not part of required org", body["errors"][0])
        st, body, _ = s.request("POST", "auth/github/login", None, {"token": "nope"})
        self.assertEqual(st, 403)
        st, body, _ = s.request("POST", "auth/github/login", None, {})
        self.assertEqual(st, 400)

        # The GitHub tokens are in no log.
        for path in (audit, s.log_path):
            with open(path) as f:
                text = f.read()
            self.assertNotIn("gh-token-alice", text, path)
            self.assertNotIn("gh-token-mallory", text, path)

        # Enabled, listed, disabled as any auth method (hvac's test_auth_backend_manipulation).
        self.assertEqual(s.request("POST", "sys/auth/test-github", t, {"type": "github"})[0], 204)
        self.assertIn("test-github/", s.request("GET", "sys/auth", t)[1]["data"])
        self.assertEqual(s.request("DELETE", "sys/auth/test-github", t)[0], 204)
        self.assertNotIn("test-github/", s.request("GET", "sys/auth", t)[1]["data"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
