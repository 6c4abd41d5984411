"""Bad input over HTTP: every case gets a 4xx with a message a person can act on, and the server
keeps serving and loses nothing."""
import json
import re
import socket
import ssl
import time
import unittest

from harness import ServerTest


class BadInput(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()

    def assert_still_serving(self):
        s = self.s
        st, body, _ = s.request("GET", "sys/health")
        self.assertIn(st, (200, 501, 503))
        if getattr(self, "kept", False):
            st, body, _ = s.request("GET", "secret/keep", s.root)
            self.assertEqual((st, body["data"]["v"]), (200, "kept"))

    def assert_error(self, resp, status, fragment):
        st, body, text = resp
        self.assertEqual(st, status, text)
        self.assertIsInstance(body, dict, text)
        self.assertTrue(body["errors"], text)
        self.assertIn(fragment, " ".join(body["errors"]))
        self.assert_still_serving()

    def raw_http(self, data, read_limit=65536):
        sock = socket.create_connection(("127.0.0.1", self.s.port), timeout=10)
        tls = self.s.ssl_context().wrap_socket(sock, server_hostname="127.0.0.1")
        try:
            tls.sendall(data)
            out = b""
            while b"\r\n\r\n" not in out:
                chunk = tls.recv(read_limit)
                if not chunk:
                    break
                out += chunk
            return out.decode(errors="replace")
        finally:
            tls.close()

    def test_init_parameters(self):
        s = self.s
        self.assert_error(s.request("PUT", "sys/init", body={"secret_shares": 2, "secret_threshold": 3}),
                          400, "cannot be larger than secret_shares")
        self.assert_error(s.request("PUT", "sys/init", body={"secret_shares": 5, "secret_threshold": 1}),
                          400, "greater than one for multiple shares")
        self.assert_error(s.request("PUT", "sys/init", body={"secret_shares": 300, "secret_threshold": 3}),
                          400, "at most 255")
        self.assert_error(s.request("PUT", "sys/init", body={"secret_shares": "five", "secret_threshold": 3}),
                          400, 'field "secret_shares" must be an integer, got string')
        self.assert_error(s.request("PUT", "sys/init", body={"secret_threshold": 3}), 400, "secret_shares is required")
        self.assert_error(s.request("PUT", "sys/init", raw_body=b'{"secret_shares": 5,'), 400, "failed to parse JSON")
        self.assert_error(s.request("PUT", "sys/unseal", body={"key": "00" * 33}), 400, "not initialized")
        st, body, _ = s.request("GET", "sys/init")
        self.assertEqual((st, body), (200, {"initialized": False}))
        st, _, _ = s.request("GET", "sys/health")
        self.assertEqual(st, 501)

    def test_unseal_keys(self):
        s = self.s
        st, body, _ = s.request("PUT", "sys/init", body={"secret_shares": 5, "secret_threshold": 3})
        self.assertEqual(st, 200)
        keys, s.root = body["keys"], body["root_token"]
        self.assertEqual(s.request("GET", "sys/health")[0], 503)
        self.assert_error(s.request("PUT", "sys/unseal", body={"key": "zz-not-a-key"}), 400, "valid hex or base64")
        self.assert_error(s.request("PUT", "sys/unseal", body={"key": "abcd"}), 400, "wrong length")
        self.assert_error(s.request("PUT", "sys/unseal", body={}), 400, "'key' must be specified")
        self.assert_error(s.request("PUT", "sys/unseal", body={"key": 12}), 400, "must be a string")
        # reset discards the shares submitted so far.
        st, body, _ = s.request("PUT", "sys/unseal", body={"key": keys[0]})
        self.assertEqual(body["progress"], 1)
        st, body, _ = s.request("PUT", "sys/unseal", body={"reset": True})
        self.assertEqual((st, body["progress"], body["sealed"]), (200, 0, True))
        # Two real keys and one wrong key of the right shape: refused, progress reset.
        s.request("PUT", "sys/unseal", body={"key": keys[0]})
        s.request("PUT", "sys/unseal", body={"key": keys[1]})
        wrong = "11" * 32 + "07"
        self.assert_error(s.request("PUT", "sys/unseal", body={"key": wrong}), 400, "do not combine")
        st, body, _ = s.request("GET", "sys/seal-status")
        self.assertEqual((body["sealed"], body["progress"]), (True, 0))
        # The sealed server answers 503 with a clear error to everything else.
        self.assert_error(s.request("GET", "secret/keep", s.root), 503, "sealed")
        for k in keys[2:5]:
            st, body, _ = s.request("PUT", "sys/unseal", body={"key": k})
        self.assertFalse(body["sealed"])
        # A key after unseal completed: the status, as Vault answers (the key is not used).
        st, body, _ = s.request("PUT", "sys/unseal", body={"key": keys[0]})
        self.assertEqual((st, body["sealed"], body["progress"]), (200, False, 0))
        self.assert_error(s.request("PUT", "sys/init", body={"secret_shares": 1, "secret_threshold": 1}),
                          400, "already initialized")

    def init(self):
        self.s.init_and_unseal(1, 1)
        self.assertEqual(self.s.request("POST", "sys/mounts/secret", self.s.root, {"type": "kv"})[0], 204)
        self.assertEqual(self.s.request("PUT", "secret/keep", self.s.root, {"v": "kept"})[0], 204)
        self.kept = True

    def test_requests(self):
        self.init()
        s = self.s
        self.assert_error(s.request("PUT", "secret/x", s.root, raw_body=b"{not json"), 400, "failed to parse JSON input")
        self.assert_error(s.request("PUT", "secret/x", s.root, raw_body=b"[1,2]"), 400, "must be a JSON object")
        self.assert_error(s.request("PUT", "secret/x", s.root, raw_body=b'"str"'), 400, "must be a JSON object")
        self.assert_error(s.request("PUT", "secret/x", s.root, raw_body=b"[" * 10000), 400,
                          "max_json_depth = 500")
        self.assert_error(s.request("POST", "sys/mounts/m1", s.root, {"type": 5}), 400, 'field "type" must be a string')
        self.assert_error(s.request("POST", "sys/mounts/m1", s.root, {"type": "kv", "config": "x"}), 400,
                          "config must be an object")
        self.assert_error(s.request("POST", "sys/mounts/m1", s.root, {"type": "kv", "config": {"max_lease_ttl": "forever"}}),
                          400, "invalid duration")
        self.assert_error(s.request("POST", "sys/mounts/m1", s.root, {"type": "pki9"}), 400, "unknown secrets engine type")
        self.assert_error(s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"}), 400, "already in use")
        self.assert_error(s.request("GET", "nowhere/at/all", s.root), 404, "no handler for route")
        st, body, _ = s.request("GET", "secret/missing", s.root)
        self.assertEqual((st, body), (404, {"errors": []}))
        self.assert_error(s.request("PATCH", "secret/keep", s.root, {"v": "x"}), 405, "unsupported operation")
        self.assert_error(s.request("PUT", "sys/seal-status"), 405, "unsupported operation")
        self.assert_error(s.request("BREW", "secret/keep", s.root), 405, "is not allowed")
        self.assert_error(s.request("GET", "secret/keep"), 403, "permission denied")
        self.assert_error(s.request("GET", "secret/keep", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA"), 403, "permission denied")
        self.assert_error(s.request("GET", "secret/keep", None, headers={"Authorization": "Bearer nope"}), 403,
                          "permission denied")
        self.assert_error(s.request("PUT", "secret/a/../keep", s.root, {"v": "overwrite"}), 400, "not allowed")
        self.assert_error(s.request("GET", "sys/health?activecode=abc"), 400, "not an HTTP status code")
        # GET ?list=true is a list, as LIST is.
        st, body, _ = s.request("GET", "secret/?list=true", s.root)
        self.assertEqual((st, body["data"]["keys"]), (200, ["keep"]))
        # Bearer works as well as X-Vault-Token.
        st, body, _ = s.request("GET", "secret/keep", None, headers={"Authorization": "Bearer " + s.root})
        self.assertEqual(st, 200)

    def read_responses(self, tls, count):
        """Reads `count` HTTP responses with Content-Length bodies; returns [(head, body)]."""
        buf, out = b"", []
        while len(out) < count:
            while b"\r\n\r\n" not in buf:
                chunk = tls.recv(65536)
                self.assertTrue(chunk, f"connection closed after {len(out)} responses: {buf!r}")
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?i)\r\ncontent-length: (\d+)", head)
            self.assertTrue(m or head.startswith(b"HTTP/1.1 204"), head)  # 204: no body, no length
            length = int(m.group(1)) if m else 0
            while len(buf) < length:
                chunk = tls.recv(65536)
                self.assertTrue(chunk, "connection closed inside a body")
                buf += chunk
            out.append((head.decode(), buf[:length]))
            buf = buf[length:]
        return out

    # The server parses a request that arrived whole straight from its buffer, and reads the
    # rest of one that did not: pipelined requests, a header split across packets, a body sent
    # later, and HTTP/1.0's keep-alive rules.
    def test_request_framing(self):
        self.init()
        s = self.s
        tls = self.s.ssl_context().wrap_socket(
            socket.create_connection(("127.0.0.1", s.port), timeout=10), server_hostname="127.0.0.1")
        try:
            get = f"GET /v1/secret/keep HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {s.root}\r\n\r\n".encode()
            body = b'{"v":"split"}'
            put = (f"PUT /v1/secret/split HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {s.root}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode()
            tls.sendall(get + get + put + body)  # three requests in one write
            rs = self.read_responses(tls, 3)
            self.assertEqual([h.split("\r\n")[0] for h, _ in rs],
                             ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 204 No Content"])
            self.assertEqual(json.loads(rs[1][1])["data"], {"v": "kept"})
            for h, _ in rs:
                self.assertNotIn("connection: close", h.lower())
            # A header in three pieces, then its body 200 ms later.
            for piece in (put[:7], put[7:30], put[30:]):
                tls.sendall(piece)
                time.sleep(0.1)
            time.sleep(0.2)
            tls.sendall(body.replace(b"split", b"later"))
            self.assertTrue(self.read_responses(tls, 1)[0][0].startswith("HTTP/1.1 204"))
            tls.sendall(get.replace(b"keep", b"split"))
            self.assertEqual(json.loads(self.read_responses(tls, 1)[0][1])["data"], {"v": "later"})
            # Chunked bodies cut inside a chunk's size line and inside its data.
            chunked = (f"PUT /v1/secret/chunked HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {s.root}\r\n"
                       f"Transfer-Encoding: chunked\r\n\r\n").encode()
            # The first write ends inside the size line, before its CRLF, inside the data.
            for i, cut in enumerate([1, 2, 4 + 5]):
                value = f'{{"v":"chunk{i}", "pad": "xx"}}'.encode()  # 27 bytes: size "1b"
                stream = f"{len(value):x}\r\n".encode() + value + b"\r\n0\r\n\r\n"
                tls.sendall(chunked + stream[:cut])
                time.sleep(0.2)
                tls.sendall(stream[cut:])
                head, payload = self.read_responses(tls, 1)[0]
                self.assertTrue(head.startswith("HTTP/1.1 204"), (cut, head, payload))
                tls.sendall(get.replace(b"keep", b"chunked"))
                self.assertEqual(json.loads(self.read_responses(tls, 1)[0][1])["data"], {"v": f"chunk{i}", "pad": "xx"})
        finally:
            tls.close()
        # HTTP/1.0: closed after the answer unless the client asks to keep the connection.
        for keep in (False, True):
            tls = self.s.ssl_context().wrap_socket(
                socket.create_connection(("127.0.0.1", s.port), timeout=10),
                server_hostname="127.0.0.1")
            try:
                extra = "Connection: keep-alive\r\n" if keep else ""
                tls.sendall(f"GET /v1/secret/keep HTTP/1.0\r\nX-Vault-Token: {s.root}\r\n{extra}\r\n".encode())
                head, payload = self.read_responses(tls, 1)[0]
                self.assertTrue(head.startswith("HTTP/1.0 200 OK"), head)
                self.assertEqual(json.loads(payload)["data"], {"v": "kept"})
                self.assertEqual("connection: keep-alive" in head.lower(), keep, head)
                if keep:
                    tls.sendall(f"GET /v1/sys/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
                    self.assertTrue(self.read_responses(tls, 1)[0][0].startswith("HTTP/1.0 200"))
                else:
                    self.assertEqual(tls.recv(100), b"")  # closed by the server
            finally:
                tls.close()
        self.assert_still_serving()

    def test_oversized_and_malformed_http(self):
        self.init()
        s = self.s
        head = (f"PUT /v1/secret/big HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {s.root}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {32 * 1024 * 1024 + 1}\r\n\r\n")
        out = self.raw_http(head.encode())
        self.assertTrue(out.startswith("HTTP/1.1 413"), out)
        self.assertIn("request body too large", out)
        self.assert_still_serving()
        # Just under the limit is accepted (each string under max_json_string_value_length, 1 MiB).
        big = json.dumps({f"b{i}": "x" * 1_000_000 for i in range(33)}).encode()
        self.assertGreater(len(big), 33_000_000)
        self.assertEqual(s.request("PUT", "secret/big", s.root, raw_body=big)[0], 204)
        self.assertEqual(len(s.request("GET", "secret/big", s.root)[1]["data"]["b32"]), 1_000_000)
        # One string over 1 MiB is refused, naming Vault's listener key.
        over = json.dumps({"blob": "x" * (1024 * 1024 + 1)}).encode()
        self.assert_error(s.request("PUT", "secret/big", s.root, raw_body=over), 400,
                          "max_json_string_value_length")
        out = self.raw_http(b"THIS IS NOT HTTP\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 400"), out)
        out = self.raw_http(b"GET /v1/sys/health HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 431"), out)
        out = self.raw_http(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(out.startswith("HTTP/1.1 404"), out)
        self.assert_still_serving()

    def test_tls_versions(self):
        self.init()
        ctx = self.s.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.s.port)) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as t:
                self.assertEqual(t.version(), "TLSv1.2")
        # An old client offering only TLS 1.1 is refused by the server.
        import subprocess
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.s.port}", "-tls1_1",
                            "-cipher", "DEFAULT:@SECLEVEL=0"], input="", capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assert_still_serving()


if __name__ == "__main__":
    unittest.main(verbosity=2)
