"""The kubernetes auth method against a stand-in of the Kubernetes API server: a TLS server on
127.0.0.1 (its certificate made here with openssl, signed by a test CA given to Coffer as
kubernetes_ca_cert) answering POST /apis/authentication.k8s.io/v1/tokenreviews for known tokens.

A pod's token the API server vouches for logs in and gets the role's policies, and the token then
reads what its policy allows and nothing else; a token the API server says is not authenticated
is refused with its reason; a token for a namespace the role does not bind is refused before the
API server is asked; the API server is asked with the reviewer JWT as bearer and the login JWT in
spec; an API server whose certificate the configured CA did not sign is never trusted. Tokens are
RS256 JWTs signed here with the openssl CLI; one login checks the signature locally with pem_keys.
"""
import base64
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
import unittest

from harness import ServerTest, free_port, make_test_ca, run

def b64url(data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key_file, claims):
    """An RS256 compact JWS of claims, signed with the RSA key in key_file by openssl."""
    signing_input = b64url({"alg": "RS256", "kid": "test"}) + "." + b64url(claims)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file], input=signing_input.encode(),
                         check=True, capture_output=True).stdout
    return signing_input + "." + b64url(sig)


def sa_claims(namespace, name, uid, now):
    return {"iss": "https://kubernetes.default.svc.cluster.local", "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": ["vault"], "iat": now - 10, "nbf": now - 10, "exp": now + 600,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}}


class FakeApiServer(http.server.BaseHTTPRequestHandler):
    reviews = []   # (path, Authorization header, request body)
    verdicts = {}  # token -> TokenReview status

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        FakeApiServer.reviews.append((self.path, self.headers.get("Authorization", ""), body))
        if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
            self.send_response(404)
            self.end_headers()
            return
        token = body.get("spec", {}).get("token", "")
        status = FakeApiServer.verdicts.get(token, {"authenticated": False, "error": "invalid bearer token"})
        answer = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "spec": body.get("spec", {}), "status": status}
        data = json.dumps(answer).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class KubernetesAuth(ServerTest):
    def start_api_server(self, folder):
        os.makedirs(folder)
        ca, crt, key = make_test_ca(folder, name="apiserver")
        port = free_port()
        api = http.server.ThreadingHTTPServer(("127.0.0.1", port), FakeApiServer)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        api.socket = ctx.wrap_socket(api.socket, server_side=True)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        self.addCleanup(api.server_close)  # cleanups run last first: after shutdown
        self.addCleanup(api.shutdown)
        with open(ca) as f:
            return f"https://127.0.0.1:{port}", f.read()

    def test_login_through_the_token_review_api(self):
        now = int(time.time())
        host, api_ca = self.start_api_server(os.path.join(self.tmp, "apiserver"))
        sa_key = os.path.join(self.tmp, "sa.key")
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sa_key])

        s = self.server().start()
        s.init_and_unseal(1, 1)
        t = s.root
        self.assertEqual(s.request("POST", "sys/auth/kubernetes", t, {"type": "kubernetes"})[0], 204)
        self.assertEqual(s.request("POST", "sys/mounts/kv", t, {"type": "kv"})[0], 204)
        self.assertEqual(s.request("PUT", "kv/app/config", t, {"password": "app-secret"})[0], 204)
        self.assertEqual(s.request("PUT", "kv/other/config", t, {"password": "other-secret"})[0], 204)
        policy = 'path "kv/app/*" { capabilities = ["read"] }'
        self.assertEqual(s.request("PUT", "sys/policies/acl/app-read", t, {"policy": policy})[0], 204)

        # Never written: 404. Then the API server, its CA and the reviewer's token.
        self.assertEqual(s.request("GET", "auth/kubernetes/config", t)[0], 404)
        st, body, _ = s.request("POST", "auth/kubernetes/config", t,
                                {"kubernetes_host": host, "kubernetes_ca_cert": api_ca,
                                 "token_reviewer_jwt": "reviewer-token", "disable_local_ca_jwt": True})
        self.assertIn(st, (200, 204), body)
        st, body, _ = s.request("GET", "auth/kubernetes/config", t)
        self.assertEqual(st, 200)
        self.assertEqual(body["data"]["kubernetes_host"], host)
        self.assertTrue(body["data"]["token_reviewer_jwt_set"])
        self.assertNotIn("reviewer-token", json.dumps(body))
        st, body, _ = s.request("POST", "auth/kubernetes/role/app", t,
                                {"bound_service_account_names": ["app"],
                                 "bound_service_account_namespaces": ["default", "team-*"],
                                 "token_policies": ["app-read"], "token_ttl": "1h"})
        self.assertEqual(st, 204, body)

        # The API server vouches for the token: a Coffer token with the role's policy.
        good = make_jwt(sa_key, sa_claims("default", "app", "uid-app", now))
        FakeApiServer.verdicts[good] = {"authenticated": True, "audiences": ["vault"],
                                        "user": {"username": "system:serviceaccount:default:app", "uid": "uid-app"}}
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": good})
        self.assertEqual(st, 200, body)
        auth = body["auth"]
        self.assertEqual(sorted(auth["policies"]), ["app-read", "default"])
        self.assertEqual(auth["metadata"], {"role": "app", "service_account_name": "app",
                                            "service_account_namespace": "default",
                                            "service_account_secret_name": "", "service_account_uid": "uid-app"})
        self.assertEqual(auth["lease_duration"], 3600)
        # It was asked as Vault asks: the reviewer's bearer token, the login JWT and its audiences.
        path, authorization, review = FakeApiServer.reviews[-1]
        self.assertEqual(path, "/apis/authentication.k8s.io/v1/tokenreviews")
        self.assertEqual(authorization, "Bearer reviewer-token")
        self.assertEqual(review["apiVersion"], "authentication.k8s.io/v1")
        self.assertEqual(review["kind"], "TokenReview")
        self.assertEqual(review["spec"], {"token": good, "audiences": ["vault"]})
        # The token reads what its policy allows, and nothing else.
        token = auth["client_token"]
        st, body, _ = s.request("GET", "kv/app/config", token)
        self.assertEqual((st, body["data"]), (200, {"password": "app-secret"}))
        self.assertEqual(s.request("GET", "kv/other/config", token)[0], 403)
        st, body, _ = s.request("GET", "auth/token/lookup-self", token)
        self.assertEqual(body["data"]["display_name"], "kubernetes-default-app")

        # The API server says the token is not authenticated: 403 with its reason.
        revoked = make_jwt(sa_key, sa_claims("team-a", "app", "uid-old", now))
        FakeApiServer.verdicts[revoked] = {"authenticated": False, "error": "token has been invalidated"}
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": revoked})
        self.assertEqual(st, 403, body)
        self.assertIn("token has been invalidated", body["errors"][0])

        # A namespace the role does not bind: refused before the API server is asked.
        asked = len(FakeApiServer.reviews)
        stranger = make_jwt(sa_key, sa_claims("kube-system", "app", "uid-ks", now))
        FakeApiServer.verdicts[stranger] = {"authenticated": True,
                                            "user": {"username": "system:serviceaccount:kube-system:app", "uid": "uid-ks"}}
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": stranger})
        self.assertEqual(st, 403, body)
        self.assertIn("namespace not authorized", body["errors"][0])
        self.assertEqual(len(FakeApiServer.reviews), asked)

        # Malformed and unsigned tokens: 400, the API server is not asked.
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": "a.b"})
        self.assertEqual(st, 400, body)
        none = b64url({"alg": "none"}) + "." + good.split(".")[1] + "."
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": none})
        self.assertEqual(st, 400, body)
        self.assertIn('"none" is not accepted', body["errors"][0])
        self.assertEqual(len(FakeApiServer.reviews), asked)

        # An API server whose certificate the configured CA did not sign is not trusted.
        _, other_ca = self.start_api_server(os.path.join(self.tmp, "other"))
        st, body, _ = s.request("POST", "auth/kubernetes/config", t,
                                {"kubernetes_host": host, "kubernetes_ca_cert": other_ca,
                                 "token_reviewer_jwt": "reviewer-token", "disable_local_ca_jwt": True})
        self.assertIn(st, (200, 204), body)
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": good})
        self.assertEqual(st, 503, body)
        self.assertIn("TLS handshake", body["errors"][0])
        self.assertEqual(len(FakeApiServer.reviews), asked)

        # With pem_keys the signature is checked here first (a forged one never reaches the API
        # server), and a well-signed token is still reviewed, as Vault does.
        pub = run(["openssl", "pkey", "-in", sa_key, "-pubout"]).stdout
        st, body, _ = s.request("POST", "auth/kubernetes/config", t,
                                {"kubernetes_host": host, "pem_keys": [pub], "disable_local_ca_jwt": True,
                                 "kubernetes_ca_cert": api_ca})
        self.assertIn(st, (200, 204), body)
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": good})
        self.assertEqual(st, 200, body)
        self.assertEqual(len(FakeApiServer.reviews), asked + 1)
        forged = good.rsplit(".", 1)[0] + "." + b64url(b"\x00" * 256)
        st, body, _ = s.request("POST", "auth/kubernetes/login", None, {"role": "app", "jwt": forged})
        self.assertEqual(st, 403, body)
        self.assertEqual(len(FakeApiServer.reviews), asked + 1)

        # Neither the service account tokens nor the reviewer's token are in the server's log.
        with open(s.log_path) as f:
            text = f.read()
        for secret in (good, revoked, "reviewer-token"):
            self.assertNotIn(secret, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
