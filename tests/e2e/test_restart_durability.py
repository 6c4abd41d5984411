"""Real binary, SQLite + TLS with a test CA: init 5/3, unseal with 3, write, SIGKILL, restart,
unseal, read back. Every write that was acknowledged before the kill must be there."""
import json
import os
import stat
import subprocess
import threading
import unittest

from harness import ServerTest


class RestartDurability(ServerTest):
    def test_secret_survives_sigkill(self):
        s = self.server().start()
        init = s.init_and_unseal(5, 3)
        self.assertEqual(len(init["keys"]), 5)
        self.assertEqual(len(init["keys_base64"]), 5)
        st, _, _ = s.request("POST", "sys/mounts/secret", s.root, {"type": "kv"})
        self.assertEqual(st, 204)
        st, _, _ = s.request("PUT", "secret/db", s.root, {"password": "canary-5f2e9d", "user": "app"})
        self.assertEqual(st, 204)

        # Concurrent writers: everything acknowledged must survive the kill.
        acked = []
        lock = threading.Lock()

        def writer(t):
            for i in range(40):
                st, _, _ = s.request("PUT", f"secret/load/{t}-{i}", s.root, {"v": f"{t}-{i}"})
                if st == 204:
                    with lock:
                        acked.append(f"{t}-{i}")

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(acked), 320)
        s.kill9()

        # Files holding ciphertext are private to the server's user.
        self.assertEqual(stat.S_IMODE(os.stat(s.db).st_mode), 0o600)
        raw = b""
        for f in os.listdir(os.path.dirname(s.db)):
            with open(os.path.join(os.path.dirname(s.db), f), "rb") as fh:
                raw += fh.read()
        self.assertNotIn(b"canary-5f2e9d", raw)

        s.start()
        st, body, _ = s.request("GET", "sys/seal-status")
        self.assertEqual((st, body["sealed"], body["t"], body["n"]), (200, True, 3, 5))
        st, body, _ = s.request("GET", "secret/db", s.root)
        self.assertEqual(st, 503, "a sealed server refuses reads")
        self.assertIn("sealed", body["errors"][0])
        # Unseal with a different subset of three keys.
        for k in (init["keys_base64"][4], init["keys"][2], init["keys"][0]):
            st, body, _ = s.request("PUT", "sys/unseal", body={"key": k})
            self.assertEqual(st, 200)
        self.assertFalse(body["sealed"])
        st, body, _ = s.request("GET", "secret/db", s.root)
        self.assertEqual(st, 200)
        self.assertEqual(body["data"], {"password": "canary-5f2e9d", "user": "app"})
        for key in acked:
            st, body, _ = s.request("GET", f"secret/load/{key}", s.root)
            self.assertEqual((st, body["data"]["v"]), (200, key))
        st, body, _ = s.request("LIST", "secret/load", s.root)
        self.assertEqual(len(body["data"]["keys"]), 320)

    def test_issued_certificates_survive_sigkill(self):
        """Certificates signed on a role that stores them: the answer is sent only once the
        record is durable (the event loop holds it until the group commit), so each one
        answered is readable at once, and still there after kill -9."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        st, _, _ = s.request("POST", "sys/mounts/pki", s.root, {"type": "pki"})
        self.assertEqual(st, 204)
        st, _, _ = s.request("POST", "pki/root/generate/internal", s.root,
                             {"common_name": "Durable Root", "key_type": "ec", "ttl": "87600h"})
        self.assertEqual(st, 200)
        st, _, _ = s.request("POST", "pki/roles/web", s.root,
                             {"allowed_domains": "example.com", "allow_subdomains": True,
                              "key_type": "ec", "ttl": "24h"})
        self.assertEqual(st, 200)
        d = self.tmp
        key, csr = os.path.join(d, "leaf.key"), os.path.join(d, "leaf.csr")
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", key], check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=a.example.com",
                        "-out", csr], check=True, capture_output=True)
        with open(csr) as f:
            csr_pem = f.read()

        acked, problems = [], []
        lock = threading.Lock()

        def signer(t):
            for i in range(25):
                st, body, _ = s.request("POST", "pki/sign/web", s.root,
                                        {"csr": csr_pem, "common_name": f"n{t}-{i}.example.com"})
                if st != 200:
                    with lock:
                        problems.append((st, body))
                    continue
                serial = body["data"]["serial_number"]
                # Answered, so stored: readable right away.
                st2, got, _ = s.request("GET", f"pki/cert/{serial}")
                with lock:
                    acked.append(serial)
                    if st2 != 200 or got["data"]["certificate"] != body["data"]["certificate"]:
                        problems.append(("not readable after the answer", serial, st2))

        threads = [threading.Thread(target=signer, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(problems, [])
        self.assertEqual(len(acked), 200)
        self.assertEqual(len(set(acked)), 200)
        s.kill9()

        s.start()
        s.unseal(1)
        for serial in acked:
            st, body, _ = s.request("GET", f"pki/cert/{serial}")
            self.assertEqual(st, 200, serial)
            self.assertIn("BEGIN CERTIFICATE", body["data"]["certificate"])
        st, body, _ = s.request("LIST", "pki/certs", s.root)
        self.assertEqual(st, 200)
        listed = {k.replace("-", ":") for k in body["data"]["keys"]}
        self.assertEqual(len(set(acked) - listed), 0, "answered certificates missing from the list")

        # With an audit device the answer is final when the engine returns (the response entry
        # is written then): the record is stored before the answer all the same.
        log = os.path.join(d, "audit.log")
        st, _, _ = s.request("PUT", "sys/audit/file", s.root,
                             {"type": "file", "options": {"file_path": log}})
        self.assertEqual(st, 204)
        st, body, _ = s.request("POST", "pki/sign/web", s.root,
                                {"csr": csr_pem, "common_name": "audited.example.com"})
        self.assertEqual(st, 200)
        serial = body["data"]["serial_number"]
        self.assertEqual(s.request("GET", f"pki/cert/{serial}")[0], 200)
        with open(log) as f:
            entries = [json.loads(line) for line in f if line.strip()]
        responses = [e for e in entries
                     if e.get("type") == "response" and e["request"]["path"] == "pki/sign/web"]
        self.assertEqual(len(responses), 1)
        self.assertFalse(responses[0].get("error"))
        self.assertIn("certificate", responses[0]["response"]["data"])

    def test_rotated_keyring_survives_restart(self):
        s = self.server().start()
        s.init_and_unseal(3, 2)
        s.request("POST", "sys/mounts/kv", s.root, {"type": "kv"})
        s.request("PUT", "kv/old", s.root, {"v": "1"})
        st, _, _ = s.request("PUT", "sys/rotate", s.root)
        self.assertEqual(st, 204)
        st, body, _ = s.request("GET", "sys/key-status", s.root)
        self.assertEqual(body["data"]["term"], 2)
        s.request("PUT", "kv/new", s.root, {"v": "2"})
        s.stop()
        s.start()
        s.unseal(2)
        self.assertEqual(s.request("GET", "kv/old", s.root)[1]["data"]["v"], "1")
        self.assertEqual(s.request("GET", "kv/new", s.root)[1]["data"]["v"], "2")
        self.assertEqual(s.request("GET", "sys/key-status", s.root)[1]["term"], 2)

    def test_read_cache_and_one_server_per_database(self):
        """SQLite storage has a read cache (Vault's cache_size / disable_cache): repeated reads
        are answered from it, every write is seen by the next read, and a second server on the
        same database file is refused (the cache relies on being the one writer)."""
        s = self.server().start()
        s.init_and_unseal(1, 1)
        s.request("POST", "sys/mounts/kv", s.root, {"type": "kv"})

        def cache(server):
            st, body, _ = server.request("GET", "sys/metrics", server.root)
            self.assertEqual(st, 200)
            return {g["Labels"]["result"]: g["Value"] for g in body["Gauges"]
                    if g["Name"] == "coffer.storage.cache"}

        before = cache(s)
        for v in ("1", "2", "3"):
            self.assertEqual(s.request("PUT", "kv/app", s.root, {"v": v})[0], 204)
            for _ in range(5):
                st, body, _ = s.request("GET", "kv/app", s.root)
                self.assertEqual((st, body["data"]["v"]), (200, v))
        s.request("DELETE", "kv/app", s.root)
        self.assertEqual(s.request("GET", "kv/app", s.root)[0], 404)
        after = cache(s)
        self.assertGreaterEqual(after["hit"] - before["hit"], 12, (before, after))

        second = self.server(storage=f'storage "sqlite" {{\n  path = "{s.db}"\n}}\n')
        with self.assertRaises(RuntimeError) as refused:
            second.start()
        self.assertIn("is in use by another process", str(refused.exception))
        self.assertIn(s.db, str(refused.exception))
        self.assertEqual(s.request("GET", "sys/health")[0], 200, "the first server serves on")

        # disable_cache: no cache (no metric), same answers; after a restart, same data.
        s.request("PUT", "kv/kept", s.root, {"v": "kept"})
        s.stop()
        with open(s.config, "a") as f:
            f.write("disable_cache = true\n")
        s.start()
        s.unseal(1)
        self.assertEqual(s.request("GET", "kv/kept", s.root)[1]["data"]["v"], "kept")
        self.assertEqual(cache(s), {})


if __name__ == "__main__":
    unittest.main(verbosity=2)
