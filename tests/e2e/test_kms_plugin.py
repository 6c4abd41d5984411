"""`coffer kms-plugin`: the Kubernetes KMS v2 plugin, driven the way kube-apiserver drives it: a
gRPC client over the unix socket, built from src/kms/kms_v2.proto by grpc_tools.protoc into a
temporary folder. A real `coffer server` (TLS, init/unseal) holds the Transit key.

Checks Status (version, healthz, key_id), Encrypt/Decrypt round trips, key rotation (new key_id
in Status and Encrypt, old ciphertexts still decrypt), error codes (wrong token -> permission,
sealed -> unavailable, oversized -> invalid argument), the socket's mode, stale and live
sockets, SIGTERM, and the kubernetes auth login with renewal and re-login.

Needs Debian's python3-grpcio and python3-grpc-tools for /usr/bin/python3 (scripts/install-deps.sh):
without them the tests fail, they are not skipped.
"""
import base64
import http.server
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import COFFER_BIN, ServerTest, run

SOURCE_DIR = os.environ.get("COFFER_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
PROTO = os.path.join(SOURCE_DIR, "src", "kms", "kms_v2.proto")

try:
    import grpc
except ImportError as e:  # fail loudly: a missing package must not look like a pass
    raise SystemExit(f"test_kms_plugin: cannot import grpc ({e}): install python3-grpcio and "
                     f"python3-grpc-tools (scripts/install-deps.sh) and run with /usr/bin/python3")


def load_kms_stubs():
    """Compiles the proto with grpc_tools.protoc into a temporary folder; returns (pb2, pb2_grpc)."""
    out = tempfile.mkdtemp(prefix="coffer-kms-proto-")
    shutil.copy(PROTO, os.path.join(out, "kms_v2.proto"))
    p = subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", "-I", out,
                        f"--python_out={out}", f"--grpc_python_out={out}", "kms_v2.proto"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"test_kms_plugin: grpc_tools.protoc failed ({p.returncode}): {p.stderr}"
                         f"; install python3-grpc-tools (scripts/install-deps.sh)")
    sys.path.insert(0, out)
    import kms_v2_pb2
    import kms_v2_pb2_grpc
    return kms_v2_pb2, kms_v2_pb2_grpc


pb, pb_grpc = load_kms_stubs()

KEY = "kube-secrets"
POLICY = f"""
path "transit/encrypt/{KEY}" {{ capabilities = ["update"] }}
path "transit/decrypt/{KEY}" {{ capabilities = ["update"] }}
path "transit/keys/{KEY}" {{ capabilities = ["read"] }}
"""


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("VAULT_") or k.startswith("COFFER_"))}
    env["HOME"] = tempfile.gettempdir()  # no ~/.coffer-token of the user's
    return env


class Plugin:
    """A `coffer kms-plugin` subprocess and a gRPC stub on its socket."""

    def __init__(self, server, workdir, auth_args, extra=(), key_refresh="1s"):
        self.dir = workdir
        self.sock = os.path.join(workdir, "kms", "plugin.sock")
        self.log_path = os.path.join(workdir, "plugin.log")
        self.args = [COFFER_BIN, "kms-plugin", f"-listen=unix://{self.sock}",
                     f"-transit-key={KEY}", f"-address={server.addr}", f"-ca-cert={server.ca}",
                     f"-key-refresh={key_refresh}", "-log-level=debug", *auth_args, *extra]
        self.proc = None
        self.channel = None

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=clean_env())
        if not wait:
            return self
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"plugin exited {self.proc.returncode}: {self.log_text()}")
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no socket after 20s: " + self.log_text())
        self.channel = grpc.insecure_channel(f"unix://{self.sock}")
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.stub = pb_grpc.KeyManagementServiceStub(self.channel)
        return self

    def log_text(self):
        return read(self.log_path)

    def status(self):
        return self.stub.Status(pb.StatusRequest(), timeout=10)

    def encrypt(self, plaintext, uid="uid-e"):
        return self.stub.Encrypt(pb.EncryptRequest(plaintext=plaintext, uid=uid), timeout=10)

    def decrypt(self, enc, uid="uid-d"):
        return self.stub.Decrypt(pb.DecryptRequest(ciphertext=enc.ciphertext, key_id=enc.key_id,
                                                   uid=uid, annotations=enc.annotations),
                                 timeout=10).plaintext

    def stop(self):
        if self.channel:
            self.channel.close()
            self.channel = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()


class KmsBase(ServerTest):
    """A TLS server with transit mounted, key KEY, the plugin's policy and a token file for it."""

    def setUp(self):
        super().setUp()
        self.plugins = []
        s = self.s = self.server().start()
        s.init_and_unseal(1, 1)
        self.ok(s.request("POST", "sys/mounts/transit", s.root, {"type": "transit"}), 204)
        st, body, _ = s.request("POST", f"transit/keys/{KEY}", s.root, {})
        self.assertIn(st, (200, 204), body)
        self.ok(s.request("PUT", "sys/policies/acl/kms-plugin", s.root, {"policy": POLICY}), 204)
        self.token = self.make_token(["kms-plugin"])
        self.token_file = os.path.join(self.tmp, "kms-token")
        self.write_token(self.token)

    def tearDown(self):
        for p in self.plugins:
            p.stop()
        super().tearDown()

    def ok(self, result, want):
        st, body, text = result
        self.assertEqual(st, want, text)
        return body

    def make_token(self, policies):
        body = self.ok(self.s.request("POST", "auth/token/create", self.s.root,
                                      {"policies": policies, "ttl": "1h"}), 200)
        return body["auth"]["client_token"]

    def write_token(self, token):
        tmp = self.token_file + ".new"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.token_file)

    def plugin(self, auth_args=None, extra=(), wait=True, key_refresh="1s"):
        d = tempfile.mkdtemp(dir=self.tmp)
        p = Plugin(self.s, d, auth_args or [f"-token-file={self.token_file}"], extra, key_refresh)
        self.plugins.append(p)
        return p.start(wait=wait)

    def wait_key_id(self, p, old, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            kid = p.status().key_id
            if kid != old:
                return kid
            time.sleep(0.2)
        self.fail(f"Status key_id stayed {old!r} for {seconds}s")


class KmsPluginTest(KmsBase):

    def test_status_round_trip_and_socket(self):
        p = self.plugin()
        s = p.status()
        self.assertEqual(s.version, "v2")
        self.assertEqual(s.healthz, "ok")
        self.assertTrue(s.key_id)
        self.assertIn(KEY, s.key_id)

        st = os.lstat(p.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(p.sock)).st_mode), 0o700,
                         "the folder the plugin made is the owner's only")

        secrets = []
        for n in (32, 1, 0, 4096, 512 << 10):
            dek = os.urandom(n)
            enc = p.encrypt(dek)
            self.assertEqual(enc.key_id, s.key_id)
            self.assertTrue(enc.ciphertext.startswith(b"vault:v1:"), enc.ciphertext[:20])
            if n >= 16:
                self.assertNotIn(dek, enc.ciphertext)
            self.assertEqual(p.decrypt(enc), dek, f"{n} bytes")
            if n == 32:
                secrets.append(dek)
        # The ciphertext is Transit's own: Coffer decrypts it directly too.
        dek = os.urandom(32)
        enc = p.encrypt(dek)
        body = self.ok(self.s.request("POST", f"transit/decrypt/{KEY}", self.s.root,
                                      {"ciphertext": enc.ciphertext.decode()}), 200)
        self.assertEqual(base64.b64decode(body["data"]["plaintext"]), dek)

        # 512 KiB at most: its ciphertext stays under Coffer's 1 MiB limit on a JSON string.
        for n in ((512 << 10) + 1, (1 << 20) + 1):
            with self.assertRaises(grpc.RpcError) as e:
                p.encrypt(b"x" * n)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("at most 524288", e.exception.details())

        with self.assertRaises(grpc.RpcError) as e:
            p.decrypt(pb.EncryptResponse(ciphertext=b"not-transit", key_id=s.key_id))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            p.decrypt(pb.EncryptResponse(ciphertext=b"vault:v1:" + base64.b64encode(os.urandom(40)),
                                         key_id=s.key_id))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         e.exception.details())

        # Neither the plaintext nor the token reach the log.
        log = p.log_text()
        self.assertNotIn(self.token, log)
        for dek in secrets:
            self.assertNotIn(base64.b64encode(dek).decode(), log)
        self.assertIn("uid-e", log)

    def test_rotation_changes_key_id_and_old_ciphertext_decrypts(self):
        p = self.plugin()
        kid1 = p.status().key_id
        old_dek = os.urandom(32)
        old = p.encrypt(old_dek)
        self.assertEqual(old.key_id, kid1)

        self.assertIn(self.s.request("POST", f"transit/keys/{KEY}/rotate", self.s.root, {})[0],
                      (200, 204))
        kid2 = self.wait_key_id(p, kid1, seconds=10)  # -key-refresh=1s
        self.assertNotEqual(kid2, kid1)
        new_dek = os.urandom(32)
        new = p.encrypt(new_dek)
        self.assertEqual(new.key_id, kid2)
        self.assertTrue(new.ciphertext.startswith(b"vault:v2:"))
        self.assertEqual(p.decrypt(old), old_dek)
        self.assertEqual(p.decrypt(new), new_dek)
        self.assertIn("new latest version", p.log_text())

    def test_encrypt_after_rotation_reports_the_version_it_used(self):
        # Status would not ask Coffer again for an hour: Encrypt still names the new version at
        # once, and Status follows it.
        p = self.plugin(key_refresh="1h")
        kid1 = p.status().key_id
        self.assertIn(self.s.request("POST", f"transit/keys/{KEY}/rotate", self.s.root, {})[0],
                      (200, 204))
        new = p.encrypt(os.urandom(32))
        self.assertNotEqual(new.key_id, kid1)
        self.assertEqual(p.status().key_id, new.key_id)

    def test_token_problems_are_permission_errors_and_the_file_is_reread(self):
        p = self.plugin()
        self.assertEqual(p.status().healthz, "ok")
        self.write_token("s.not-a-real-token-0000000000")
        with self.assertRaises(grpc.RpcError) as e:
            p.encrypt(os.urandom(32))
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("permission", e.exception.details())
        self.assertIn(f"transit/encrypt/{KEY}", e.exception.details())
        # A valid token whose policy does not cover the key.
        self.write_token(self.make_token(["default"]))
        with self.assertRaises(grpc.RpcError) as e:
            p.encrypt(os.urandom(32))
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        time.sleep(1.2)  # past the Status cache
        self.assertNotEqual(p.status().healthz, "ok")
        # The right token again: picked up without a restart.
        self.write_token(self.token)
        dek = os.urandom(32)
        self.assertEqual(p.decrypt(p.encrypt(dek)), dek)

    def test_sealed_server_is_unhealthy_and_unavailable(self):
        p = self.plugin()
        self.assertEqual(p.status().healthz, "ok")
        enc = p.encrypt(b"k" * 32)
        self.ok(self.s.request("PUT", "sys/seal", self.s.root), 204)
        time.sleep(1.2)
        s = p.status()
        self.assertEqual(s.version, "v2")
        self.assertNotEqual(s.healthz, "ok")
        self.assertIn("sealed", s.healthz)
        with self.assertRaises(grpc.RpcError) as e:
            p.decrypt(enc)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.s.unseal(1)
        self.assertEqual(p.status().healthz, "ok")
        self.assertEqual(p.decrypt(enc), b"k" * 32)

    def test_unreachable_server_is_unavailable(self):
        p = self.plugin()
        # The plugin knows the key before the server goes away (on a slow machine, such as a
        # ThreadSanitizer build, its first lookup may still be in flight when start() returns).
        known = self.wait_key_id(p, "")
        self.s.stop()
        time.sleep(1.2)
        s = p.status()
        self.assertNotEqual(s.healthz, "ok")
        self.assertEqual(s.key_id, known, "the last known key_id stays")
        with self.assertRaises(grpc.RpcError) as e:
            p.encrypt(os.urandom(32))
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("unreachable", e.exception.details())

    def test_sigterm_stops_cleanly_and_removes_the_socket(self):
        p = self.plugin()
        self.assertEqual(p.status().healthz, "ok")
        p.channel.close()
        p.channel = None
        p.proc.send_signal(signal.SIGTERM)
        self.assertEqual(p.proc.wait(timeout=15), 0, p.log_text())
        self.assertFalse(os.path.exists(p.sock))
        self.assertIn("socket removed", p.log_text())

    def test_stale_socket_is_replaced_and_a_live_one_refused(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        p = Plugin(self.s, d, [f"-token-file={self.token_file}"])
        os.makedirs(os.path.dirname(p.sock), mode=0o700)
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(p.sock)
        stale.close()  # what a killed plugin leaves behind
        self.plugins.append(p)
        p.start()
        self.assertEqual(p.status().healthz, "ok")
        self.assertIn("stale socket", p.log_text())

        second = Plugin(self.s, d, [f"-token-file={self.token_file}"])
        second.log_path = os.path.join(d, "second.log")
        second.start(wait=False)
        self.assertEqual(second.proc.wait(timeout=15), 1)
        second.log.close()
        self.assertIn("another process is serving", read(second.log_path))
        self.assertEqual(p.status().healthz, "ok", "the first plugin keeps its socket")

    def test_bad_flags(self):
        for args, want in (
                ([f"-listen=127.0.0.1:9000", f"-transit-key={KEY}",
                  f"-token-file={self.token_file}"], "unix"),
                ([f"-listen=unix://{self.tmp}/x.sock", f"-transit-key={KEY}"], "-token-file"),
                ([f"-listen=unix://{self.tmp}/x.sock", f"-transit-key={KEY}",
                  f"-token-file={self.tmp}/missing"], "missing")):
            p = subprocess.run([COFFER_BIN, "kms-plugin", *args], capture_output=True, text=True,
                               env=clean_env(), timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(want, p.stderr)

    def test_the_plugin_is_a_program_of_its_own(self):
        """`coffer kms-plugin` runs coffer-kms-plugin; only that program loads gRPC."""
        libs = subprocess.run(["ldd", COFFER_BIN], capture_output=True, text=True).stdout
        self.assertNotIn("libgrpc", libs, "the coffer binary (server, agent, CLI) links gRPC")
        self.assertNotIn("libprotobuf", libs)
        plugin = os.path.join(os.path.dirname(os.path.abspath(COFFER_BIN)), "coffer-kms-plugin")
        self.assertIn("libgrpc", subprocess.run(["ldd", plugin], capture_output=True,
                                                text=True).stdout)
        # -help reaches the plugin program's own flags (not the stub's).
        p = subprocess.run([COFFER_BIN, "kms-plugin", "-help"], capture_output=True, text=True,
                           env=clean_env(), timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--transit-key", p.stdout)
        self.assertIn("Usage: coffer kms-plugin", p.stdout)
        # A coffer binary copied alone says what is missing and where it looked.
        alone = os.path.join(self.tmp, "bin")
        os.makedirs(alone, exist_ok=True)
        shutil.copy(COFFER_BIN, os.path.join(alone, "coffer"))
        p = subprocess.run([os.path.join(alone, "coffer"), "kms-plugin", "-help"],
                           capture_output=True, text=True, env=clean_env(), timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("coffer-kms-plugin is not installed", p.stderr)
        self.assertIn(os.path.join(self.tmp, "libexec", "coffer", "coffer-kms-plugin") + ":",
                      p.stderr)
        self.assertIn(os.path.join(alone, "coffer-kms-plugin") + ": No such file", p.stderr)
        # Through a symlink, the program next to the real binary is found.
        os.symlink(os.path.abspath(COFFER_BIN), os.path.join(alone, "linked"))
        p = subprocess.run([os.path.join(alone, "linked"), "kms-plugin", "-help"],
                           capture_output=True, text=True, env=clean_env(), timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--transit-key", p.stdout)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeTokenReview(http.server.BaseHTTPRequestHandler):
    """kube-apiserver's TokenReview for the tokens in `known` (JWT -> (namespace, name, uid))."""
    known = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        sa = self.known.get(body.get("spec", {}).get("token"))
        status = {"authenticated": False}
        if self.path == "/apis/authentication.k8s.io/v1/tokenreviews" and sa:
            status = {"authenticated": True,
                      "user": {"username": f"system:serviceaccount:{sa[0]}:{sa[1]}", "uid": sa[2]}}
        out = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                          "status": status}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class KmsPluginKubernetesAuthTest(KmsBase):
    """-k8s-role: login at auth/kubernetes/login with a service account JWT (its signature checked
    with pem_keys, then a TokenReview by a fake API server), renewal, re-login."""

    def setUp(self):
        super().setUp()
        self.api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeTokenReview)
        threading.Thread(target=self.api.serve_forever, daemon=True).start()
        self.addCleanup(self.api.server_close)
        self.addCleanup(self.api.shutdown)
        s = self.s
        st, body, text = s.request("POST", "sys/auth/kubernetes", s.root, {"type": "kubernetes"})
        if st != 204:
            self.fail(f"this build has no kubernetes auth method: {text}")
        key = os.path.join(self.tmp, "sa.key")
        run(["openssl", "genrsa", "-out", key, "2048"])
        pub = run(["openssl", "rsa", "-in", key, "-pubout"]).stdout
        self.sa_key = key
        issuer = "https://kubernetes.default.svc.cluster.local"
        self.ok(s.request("POST", "auth/kubernetes/config", s.root,
                          {"kubernetes_host": f"http://127.0.0.1:{self.api.server_address[1]}",
                           "pem_keys": [pub],
                           "issuer": issuer, "disable_local_ca_jwt": True,
                           "kubernetes_ca_cert": read(self.s.ca)}), 204)
        # Short TTLs so renewal (at 2/3 of the TTL) and re-login (max TTL) happen in the test.
        self.ok(s.request("POST", "auth/kubernetes/role/kms", s.root,
                          {"bound_service_account_names": ["coffer-kms"],
                           "bound_service_account_namespaces": ["kube-system"],
                           "token_policies": ["kms-plugin"], "token_ttl": "6s",
                           "token_max_ttl": "10s"}), 204)
        self.jwt_file = os.path.join(self.tmp, "sa-token")
        now = int(time.time())
        claims = {"iss": issuer, "aud": ["https://kubernetes.default.svc"], "iat": now,
                  "nbf": now, "exp": now + 3600,
                  "sub": "system:serviceaccount:kube-system:coffer-kms",
                  "kubernetes.io": {"namespace": "kube-system",
                                    "serviceaccount": {"name": "coffer-kms",
                                                       "uid": "0b4f-test-uid"}}}
        jwt = self.sign(claims)
        FakeTokenReview.known = {jwt: ("kube-system", "coffer-kms", "0b4f-test-uid")}
        with open(self.jwt_file, "w") as f:
            f.write(jwt + "\n")

    def sign(self, claims):
        signing_input = (b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.sa_key],
                             input=signing_input.encode(), capture_output=True, check=True).stdout
        return signing_input + "." + b64url(sig)

    def k8s_args(self, role="kms"):
        return [f"-k8s-role={role}", f"-k8s-jwt-file={self.jwt_file}"]

    def test_login_renew_and_relogin(self):
        p = self.plugin(self.k8s_args())
        self.assertEqual(p.status().healthz, "ok")
        dek = os.urandom(32)
        enc = p.encrypt(dek)
        # 14s: past the 6s TTL and the 10s max TTL; the plugin renews at 4s and logs in again
        # when renewal stops extending the token.
        deadline = time.time() + 14
        while time.time() < deadline:
            self.assertEqual(p.decrypt(enc), dek)
            time.sleep(1)
        log = p.log_text()
        self.assertIn("renewed the token", log)
        self.assertGreaterEqual(log.count("logged in with the kubernetes auth method"), 2, log)
        self.assertEqual(p.decrypt(p.encrypt(dek)), dek)
        with open(self.jwt_file) as f:
            self.assertNotIn(f.read().strip(), log)

    def test_wrong_role_is_reported(self):
        p = self.plugin(self.k8s_args(role="nope"))
        s = p.status()
        self.assertNotEqual(s.healthz, "ok")
        self.assertIn("kubernetes login", s.healthz)
        with self.assertRaises(grpc.RpcError) as e:
            p.encrypt(os.urandom(32))
        self.assertIn(e.exception.code(), (grpc.StatusCode.INVALID_ARGUMENT,
                                           grpc.StatusCode.PERMISSION_DENIED))


if __name__ == "__main__":
    unittest.main()
