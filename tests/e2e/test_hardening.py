"""Hardening under abuse (issue 19): what an unauthenticated caller, a connection flood or a
descriptor shortage can cost the server, and what stays private in its logs."""
import hashlib
import json
import os
import socket
import threading
import time
import unittest

from harness import ServerTest


def rss_peak_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_raw(port, data, timeout=30):
    """Sends raw bytes on a new plain connection; returns everything read until close or a full
    header block with its declared body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep and not head.startswith(b"HTTP/1.1 100"):
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and \
                            len(body) >= int(line.split(b":")[1]):
                        return out.decode(errors="replace")
        return out.decode(errors="replace")


def closed_by_server(sock, wait):
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


class Hardening(ServerTest):
    def start(self, listener_extra="", **kw):
        s = self.server(tls=False, listener_extra=listener_extra, **kw).start()
        s.init_and_unseal(1, 1)
        return s

    def test_large_unauthenticated_bodies_are_refused_before_they_are_read(self):
        s = self.start()
        body = b'{"v":[0' + b",0" * 15_000_000 + b"]}"  # 30 MB: 15 M values once parsed
        head = (f"PUT /v1/secret/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        answers = []

        def attack():
            answers.append(http_raw(s.port, head + body, timeout=60))
        threads = [threading.Thread(target=attack) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each client, still sending when the server decided, reads the 403 (not a reset).
        self.assertEqual(len(answers), 4)
        for a in answers:
            self.assertTrue(a.startswith("HTTP/1.1 403"), a[:200])
            self.assertIn("permission denied", a)
        # Parsing one such body used to cost ~780 MB; now the bodies are never kept at all.
        self.assertLess(rss_peak_mb(s.proc.pid), 150)
        # The same body with a token is read, and refused by the JSON limits with Vault's key.
        head_tok = head.replace(b"Host: x\r\n", f"Host: x\r\nX-Vault-Token: {s.root}\r\n".encode())
        a = http_raw(s.port, head_tok + body, timeout=60)
        self.assertTrue(a.startswith("HTTP/1.1 400"), a[:200])
        self.assertIn("max_json_array_element_count = 10000", a)
        self.assertEqual(s.request("GET", "sys/health")[0], 200)

    def test_expect_100_continue_is_answered_only_for_an_admitted_caller(self):
        s = self.start()
        body = json.dumps({"blob": "x" * 200_000}).encode()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            sock.sendall((f"PUT /v1/cubbyhole/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {s.root}\r\n"
                          f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n").encode())
            self.assertTrue(sock.recv(4096).startswith(b"HTTP/1.1 100 Continue"))
            sock.sendall(body)
            self.assertTrue(sock.recv(4096).startswith(b"HTTP/1.1 204"))
        # Without a token: the refusal comes at once, no invitation to send the body.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            sock.sendall((f"PUT /v1/cubbyhole/big HTTP/1.1\r\nHost: x\r\n"
                          f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n").encode())
            self.assertTrue(sock.recv(4096).startswith(b"HTTP/1.1 403"))

    def test_a_number_overflowing_to_infinity_is_refused(self):
        s = self.start()
        st, _, text = s.request("POST", "sys/mounts/secret", s.root, body={"type": "kv"})
        self.assertEqual(st, 204, text)
        st, body, _ = s.request("PUT", "secret/x", s.root, raw_body=b'{"a":1e999999}')
        self.assertEqual(st, 400)
        self.assertIn("out of range", body["errors"][0])
        # Nothing was stored; a good value afterwards reads back, also after a restart.
        self.assertEqual(s.request("GET", "secret/x", s.root)[0], 404)
        self.assertEqual(s.request("PUT", "secret/x", s.root, body={"a": 1e300})[0], 204)
        s.stop()
        s.start()
        s.unseal(1)
        st, body, _ = s.request("GET", "secret/x", s.root)
        self.assertEqual((st, body["data"]["a"]), (200, 1e300))

    def test_a_token_in_the_url_is_hmacd_in_the_audit_log_and_hidden_in_the_server_log(self):
        s = self.start(log_level="debug")
        audit = os.path.join(s.dir, "audit.log")
        st, _, text = s.request("PUT", "sys/audit/file", s.root,
                                body={"type": "file", "options": {"file_path": audit}})
        self.assertEqual(st, 204, text)
        st, body, _ = s.request("POST", "auth/token/create", s.root, body={"policies": ["default"]})
        child = body["auth"]["client_token"]
        st, body, _ = s.request("GET", "auth/token/lookup/" + child, s.root)
        self.assertEqual((st, body["data"]["policies"]), (200, ["default"]))
        st, hashed, _ = s.request("PUT", "sys/audit-hash/file", s.root, body={"input": child})
        want = "auth/token/lookup/" + (hashed.get("data") or hashed)["hash"]
        with open(audit) as f:
            log = f.read()
        self.assertNotIn(child, log)
        paths = [json.loads(line)["request"]["path"] for line in log.splitlines()]
        self.assertIn(want, paths)
        s.stop()
        with open(s.log_path) as f:
            server_log = f.read()
        self.assertNotIn(child, server_log)
        self.assertIn("auth/token/lookup/<redacted>", server_log)

    def test_at_the_connection_limit_the_longest_idle_connection_makes_room(self):
        s = self.start('  max_connections = 20\n')
        idle = []
        for _ in range(40):
            idle.append(socket.create_connection(("127.0.0.1", s.port)))
            time.sleep(0.02)  # each is registered before the next arrives
        time.sleep(0.5)
        # A new client is served: the oldest idle connections were closed for the newcomers.
        st, _, _ = s.request("GET", "sys/health")
        self.assertEqual(st, 200)
        closed = [closed_by_server(c, 0.2) for c in idle]
        self.assertGreaterEqual(sum(closed), 20)
        self.assertGreaterEqual(sum(closed[:20]), 15, closed)
        self.assertFalse(closed[-1], "the newest connection was closed")
        for c in idle:
            c.close()

    def test_a_client_address_over_its_own_limit_is_refused(self):
        s = self.start('  max_connections_per_client = 5\n')
        held = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(5)]
        time.sleep(1.0)
        extra = socket.create_connection(("127.0.0.1", s.port))
        # The sixth connection of the address is refused. On a loaded machine the server may
        # register the six in another order than they were made: then one of the first five is
        # the one refused (the limit still holds: at most five stay open).
        refused = closed_by_server(extra, 5)
        if not refused:
            refused = sum(closed_by_server(c, 0.2) for c in held) == 1
        self.assertTrue(refused)
        for c in held:
            c.close()
        time.sleep(0.3)
        self.assertEqual(s.request("GET", "sys/health")[0], 200)

    def test_out_of_descriptors_the_server_backs_off_and_recovers(self):
        # 300 descriptors (about 200 go to the 64 event loops), and a connection limit above
        # them: accept() itself runs out.
        s = self.start('  max_connections = 1000\n', nofile=300)
        idle = []
        for _ in range(400):
            idle.append(socket.create_connection(("127.0.0.1", s.port)))
        time.sleep(1)
        before = cpu_seconds(s.proc.pid)
        time.sleep(3)
        used = cpu_seconds(s.proc.pid) - before
        # A spinning accept loop burns the whole 3 s; backing off costs next to nothing.
        self.assertLess(used, 0.6)
        # Idle connections are closed to make room: a new client gets its answer.
        st, _, _ = s.request("GET", "sys/health")
        self.assertEqual(st, 200)
        for c in idle:
            c.close()

    def test_an_anonymous_large_body_is_refused_even_on_a_path_that_needs_no_token(self):
        s = self.start()
        body = json.dumps({"key": "x" * 100_000}).encode()
        st, parsed, text = s.request("PUT", "sys/unseal", raw_body=body)
        self.assertEqual(st, 413, text)
        self.assertIn("a request without a token may carry at most 65536 bytes", parsed["errors"][0])
        self.assertEqual(s.request("GET", "sys/health")[0], 200)

    def test_a_connection_without_a_valid_token_gets_the_shorter_idle_time(self):
        s = self.start('  http_idle_timeout = "60s"\n  http_unauthenticated_idle_timeout = "1s"\n')
        silent = socket.create_connection(("127.0.0.1", s.port))
        anon = socket.create_connection(("127.0.0.1", s.port))
        anon.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(anon.recv(65536).startswith(b"HTTP/1.1 200"))
        authed = socket.create_connection(("127.0.0.1", s.port))
        req = f"GET /v1/sys/mounts HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {s.root}\r\n\r\n".encode()
        authed.sendall(req)
        self.assertTrue(authed.recv(65536).startswith(b"HTTP/1.1 200"))
        self.assertTrue(closed_by_server(silent, 5))
        self.assertTrue(closed_by_server(anon, 5))
        self.assertFalse(closed_by_server(authed, 2.5))
        authed.sendall(req)
        self.assertTrue(authed.recv(65536).startswith(b"HTTP/1.1 200"))
        for c in (silent, anon, authed):
            c.close()

    def test_custom_response_headers_as_vaults_listener(self):
        s = self.start('''  custom_response_headers {
    "default" = { "X-Custom" = ["default"], "Strict-Transport-Security" = ["max-age=60", "preload"] }
    "5xx" = { "server" = ["edge"] }
    "4xx" = { "X-Custom" = ["client error"] }
    "404" = { "x-custom" = ["not found"], "X-Vault-Ignored" = ["no"] }
  }
''')
        import urllib.request
        import urllib.error

        def headers(path, token=None):
            req = urllib.request.Request(s.addr + "/v1/" + path)
            if token:
                req.add_header("X-Vault-Token", token)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.headers
            except urllib.error.HTTPError as e:
                return e.code, e.headers
        st, h = headers("sys/health")
        self.assertEqual((st, h["X-Custom"], h["Strict-Transport-Security"]),
                         (200, "default", "max-age=60; preload"))
        self.assertEqual(h["X-Content-Type-Options"], "nosniff")
        self.assertEqual(h.get_all("Server"), ["coffer"])
        st, h = headers("sys/health?sealedcode=200&standbycode=200&activecode=503")
        self.assertEqual((st, h.get_all("Server")), (503, ["edge"]))  # replaces Coffer's, once
        st, h = headers("secret/nothing")
        self.assertEqual((st, h["X-Custom"]), (403, "client error"))
        st, h = headers("secret/nothing", s.root)
        self.assertEqual((st, h["X-Custom"], h["X-Vault-Ignored"]), (404, "not found", None))

    def test_hsts_is_sent_by_default(self):
        s = self.server(tls=True).start()
        import urllib.request
        with urllib.request.urlopen(s.addr + "/v1/sys/health?uninitcode=200",
                                    context=s.ssl_context(), timeout=10) as r:
            self.assertEqual(r.headers["Strict-Transport-Security"],
                             "max-age=31536000; includeSubDomains")


if __name__ == "__main__":
    unittest.main(verbosity=2)
