"""Logs never hold a secret; metrics count per mount and operation; TLS reloads on SIGHUP;
health codes and overrides as Vault's."""
import json
import signal
import socket
import ssl
import subprocess
import time
import unittest

from harness import ServerTest, make_test_ca


class Observability(ServerTest):
    def test_logs_hold_no_secrets_in_text_or_json(self):
        for fmt in ("text", "json"):
            s = self.server(log_format=fmt, log_level="trace").start()
            init = s.init_and_unseal(3, 2)
            s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"})
            secret = "log-canary-0b7c41"
            self.assertEqual(s.request("PUT", "secret/x", s.root, {"password": secret})[0], 204)
            self.assertEqual(s.request("GET", "secret/x", s.root)[1]["data"]["password"], secret)
            s.request("GET", "secret/x", "hvs.guessedtoken12345678")
            s.request("PUT", "sys/unseal", body={"key": init["keys"][0]})
            s.stop()
            log = open(s.log_path).read()
            self.assertIn("server unsealed", log)
            self.assertIn("path=secret/x" if fmt == "text" else '"path":"secret/x"', log)
            for needle in [secret, s.root, "hvs.guessedtoken12345678", *init["keys"], *init["keys_base64"]]:
                self.assertNotIn(needle, log)
            if fmt == "json":
                for line in log.splitlines():
                    if line.startswith("{"):
                        rec = json.loads(line)
                        self.assertIn("@level", rec)

    def test_metrics_prometheus(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"})
        for _ in range(3):
            s.request("PUT", "secret/a", s.root, {"v": "1"})
        s.request("GET", "secret/a", s.root)
        s.request("GET", "secret/missing", s.root)
        st, _, text = s.request("GET", "sys/metrics?format=prometheus", s.root)
        self.assertEqual(st, 200)
        # The first write to a missing key is a "create" (Vault's existence check), the others "update".
        self.assertIn('coffer_requests_total{mount="secret/",operation="create",code="204"} 1', text)
        self.assertIn('coffer_requests_total{mount="secret/",operation="update",code="204"} 2', text)
        self.assertIn('coffer_requests_total{mount="secret/",operation="read",code="404"} 1', text)
        self.assertIn('coffer_request_duration_seconds_count{mount="secret/",operation="update"} 2', text)
        self.assertIn('coffer_request_duration_seconds_bucket{mount="secret/",operation="read",le="+Inf"} 2', text)
        self.assertEqual(s.request("GET", "sys/metrics?format=prometheus")[0], 403)
        st, body, _ = s.request("GET", "sys/metrics", s.root)
        self.assertTrue(any(c["Labels"]["mount"] == "secret/" for c in body["Counters"]))

    def test_health_codes(self):
        s = self.server().start()
        self.assertEqual(s.request("GET", "sys/health")[0], 501)
        self.assertEqual(s.request("GET", "sys/health?uninitcode=200")[0], 200)
        st, body, _ = s.request("PUT", "sys/init", body={"secret_shares": 1, "secret_threshold": 1})
        root, key = body["root_token"], body["keys"][0]
        st, body, _ = s.request("GET", "sys/health")
        self.assertEqual((st, body["initialized"], body["sealed"], body["standby"]), (503, True, True, False))
        self.assertEqual(s.request("GET", "sys/health?sealedcode=299")[0], 299)
        self.assertEqual(s.request("HEAD", "sys/health")[0], 503)
        s.request("PUT", "sys/unseal", body={"key": key})
        st, body, _ = s.request("GET", "sys/health")
        self.assertEqual((st, body["sealed"]), (200, False))
        self.assertTrue(body["cluster_id"])
        self.assertEqual(s.request("GET", "sys/health?activecode=204")[0], 204)
        self.assertEqual(s.request("GET", "sys/health?standbyok=true")[0], 200)
        st, body, _ = s.request("GET", "sys/seal-status")
        for field in ("type", "initialized", "sealed", "t", "n", "progress", "nonce", "version", "storage_type"):
            self.assertIn(field, body)
        self.assertEqual(body["storage_type"], "sqlite")
        self.assertEqual(s.request("PUT", "sys/seal", root)[0], 204)
        self.assertEqual(s.request("GET", "sys/health")[0], 503)

    def peer_cert_der(self, s):
        ctx = ssl.create_default_context(cafile=s.ca)
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as t:
                return t.getpeercert(binary_form=True)

    def test_sighup_reloads_tls_certificate(self):
        s = self.server().start()
        before = self.peer_cert_der(s)
        make_test_ca(s.dir, "server")  # same CA, new certificate and key at the same paths
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        after = before
        while after == before and time.time() < deadline:
            time.sleep(0.1)
            after = self.peer_cert_der(s)
        self.assertNotEqual(before, after)
        self.assertEqual(s.request("GET", "sys/seal-status")[0], 200)
        # A broken file on reload keeps the old certificate and the server serving.
        with open(s.cert, "w") as f:
            f.write("garbage")
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertEqual(self.peer_cert_der(s), after)
        s.stop()
        self.assertIn("TLS reload failed", open(s.log_path).read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
