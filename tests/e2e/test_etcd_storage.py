"""Coffer's storage on a real etcd (Debian's etcd-server), as an operator would run it: etcd with
client certificate authentication on 127.0.0.1, Coffer configured with Vault's etcd keys (two
endpoints, the first one down), init, unseal, secrets and certificates written, a SIGKILL, and
everything read back. etcd holds only ciphertext under the configured path."""
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import unittest
import urllib.request

from harness import COFFER_BIN, ServerTest, free_port, make_test_ca, run

ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")


def leaf_cert(d, name, eku, san):
    """A certificate (no CommonName) signed by the test CA in d."""
    key, csr, crt, ext = (os.path.join(d, name + e) for e in (".key", ".csr", ".crt", ".ext"))
    with open(ext, "w") as f:
        f.write(f"keyUsage=critical,digitalSignature\nextendedKeyUsage={eku}\n"
                f"subjectAltName={san}\n")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/O=coffer"])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.pem"), "-CAkey",
         os.path.join(d, "ca.key"), "-CAcreateserial", "-out", crt, "-days", "1", "-extfile", ext])
    return crt, key


@unittest.skipUnless(ETCD and ETCDCTL, "etcd-server and etcd-client are installed by scripts/install-deps.sh")
class EtcdStorage(ServerTest):
    def start_etcd(self):
        d = os.path.join(self.tmp, "etcd-pki")
        os.makedirs(d, exist_ok=True)
        self.etcd_ca, _, _ = make_test_ca(d, "unused")
        # etcd's gateway dials etcd itself with the server certificate: it needs clientAuth too,
        # as kubeadm's etcd/server.crt has.
        crt, key = leaf_cert(d, "etcd-server", "serverAuth,clientAuth", "IP:127.0.0.1")
        self.client_crt, self.client_key = leaf_cert(d, "coffer-client", "clientAuth", "DNS:coffer")
        self.etcd_port = free_port()
        self.etcd_url = f"https://127.0.0.1:{self.etcd_port}"
        self.etcd_log = open(os.path.join(self.tmp, "etcd.log"), "ab")
        self.etcd = subprocess.Popen([
            ETCD, "--name", "e2e", "--data-dir", os.path.join(self.tmp, "etcd-data"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{free_port()}",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            "--client-cert-auth", "--trusted-ca-file", self.etcd_ca,
            "--cert-file", crt, "--key-file", key], stdout=self.etcd_log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_etcd)
        for _ in range(100):
            if self.etcdctl("endpoint", "health").returncode == 0:
                return
            time.sleep(0.1)
        self.fail("etcd did not start: " + open(os.path.join(self.tmp, "etcd.log")).read())

    def stop_etcd(self):
        if self.etcd.poll() is None:
            self.etcd.kill()
            self.etcd.wait()
        self.etcd_log.close()

    def etcdctl(self, *args):
        return subprocess.run([ETCDCTL, "--endpoints", self.etcd_url, "--cacert", self.etcd_ca,
                               "--cert", self.client_crt, "--key", self.client_key, *args],
                              capture_output=True, text=True, timeout=30)

    def storage_block(self, extra="", address=None):
        dead = free_port()  # nothing listens there: Coffer moves on to the next endpoint
        address = address or f"https://127.0.0.1:{dead},{self.etcd_url}"
        return (f'storage "etcd" {{\n  address = "{address}"\n  etcd_api = "v3"\n'
                f'  path = "/coffer-e2e/"\n  ha_enabled = "false"\n'
                f'  tls_ca_file = "{self.etcd_ca}"\n  tls_cert_file = "{self.client_crt}"\n'
                f'  tls_key_file = "{self.client_key}"\n  request_timeout = "2s"\n'
                f'  lock_timeout = "5s"\n{extra}}}\n')

    def test_a_server_on_etcd_keeps_everything_across_a_kill(self):
        self.start_etcd()
        s = self.server(storage=self.storage_block()).start()
        st, body, _ = s.request("GET", "sys/seal-status")
        self.assertEqual((st, body["initialized"], body["storage_type"]), (200, False, "etcd"))
        s.init_and_unseal(3, 2)
        self.assertEqual(s.request("POST", "sys/mounts/secret", token=s.root, body={"type": "kv"})[0], 204)
        secret = "etcd-e2e-plaintext-7f3a"
        self.assertEqual(s.cli("kv", "put", "secret/app", f"password={secret}", token=s.root).returncode, 0)
        self.assertEqual(s.request("POST", "sys/mounts/pki", token=s.root, body={"type": "pki"})[0], 204)
        st, _, _ = s.request("POST", "pki/root/generate/internal", token=s.root,
                             body={"common_name": "etcd-backed root", "key_type": "ec"})
        self.assertEqual(st, 200)
        s.request("POST", "pki/roles/web", token=s.root,
                  body={"allow_any_name": True, "key_type": "ec", "ttl": "1h"})
        # A body over 64 KiB: its token is checked (on the blocking pool: the lookup may wait on
        # etcd) before the body is read; a bad token is refused unread, a good one stores it.
        big = json.dumps({"blob": "y" * 200_000}).encode()
        st, body, _ = s.request("PUT", "secret/big", token="hvs.not-a-token", raw_body=big)
        self.assertEqual(st, 403, body)
        self.assertEqual(s.request("PUT", "secret/big", token=s.root, raw_body=big)[0], 204)
        st, body, _ = s.request("GET", "secret/big", token=s.root)
        self.assertEqual((st, len(body["data"]["blob"])), (200, 200_000))
        serials = []
        for i in range(5):
            st, body, _ = s.request("POST", "pki/issue/web", token=s.root,
                                    body={"common_name": f"host-{i}.example"})
            self.assertEqual(st, 200, body)
            serials.append(body["data"]["serial_number"])

        # etcd holds Coffer's keys under the path, and none of them holds the secret in clear.
        p = self.etcdctl("get", "--prefix", "/coffer-e2e/", "-w", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        kvs = json.loads(p.stdout)["kvs"]
        keys = [base64.b64decode(kv["key"]).decode() for kv in kvs]
        self.assertIn("/coffer-e2e/core/seal-config", keys)
        self.assertTrue(all(k.startswith("/coffer-e2e/") for k in keys))
        for kv in kvs:
            self.assertNotIn(secret.encode(), base64.b64decode(kv.get("value", "")))

        # A second server on the same path does not start: one server per path, and it says who
        # holds the lock.
        s2 = self.server(storage=self.storage_block())
        p = subprocess.run([COFFER_BIN, "server", f"-config={s2.config}"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("another Coffer server holds /coffer-e2e/core/lock", p.stderr)
        self.assertIn(f"pid={s.proc.pid}", p.stderr)

        # Killed without closing: the restarted server waits for the old lease to lapse (5 s).
        s.kill9()
        s.start()
        st, body, _ = s.request("GET", "sys/seal-status")
        self.assertTrue(body["sealed"])
        s.unseal(2)
        p = s.cli("kv", "get", "-field=password", "secret/app", token=s.root)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, secret), p.stderr)
        for serial in serials:
            st, body, _ = s.request("GET", f"pki/cert/{serial}")
            self.assertEqual(st, 200, serial)
            self.assertIn("BEGIN CERTIFICATE", body["data"]["certificate"])
        st, body, _ = s.request("LIST", "pki/certs", token=s.root)
        self.assertEqual(st, 200)
        self.assertTrue({x.replace(":", "-") for x in serials} <= set(body["data"]["keys"]))

    def test_etcd_down_or_misconfigured_is_said_at_start(self):
        self.start_etcd()
        # A typo in a key: the line and the known keys.
        s = self.server(storage=self.storage_block('  tls_ca_fle = "x"\n'))
        p = subprocess.run([COFFER_BIN, "server", f"-config={s.config}"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn('unknown key "tls_ca_fle"', p.stderr)
        # No endpoint answers: the server does not start and names the addresses it tried.
        dead = free_port()
        s = self.server(storage=self.storage_block(address=f"https://127.0.0.1:{dead}"))
        p = subprocess.run([COFFER_BIN, "server", f"-config={s.config}"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"127.0.0.1:{dead}", p.stderr)
        self.assertIn("no endpoint", p.stderr)
        # etcd refuses a client without a certificate: the TLS failure is said, not "sealed".
        block = self.storage_block().replace(f'tls_cert_file = "{self.client_crt}"', "").replace(
            f'tls_key_file = "{self.client_key}"', "")
        s = self.server(storage=block)
        p = subprocess.run([COFFER_BIN, "server", f"-config={s.config}"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(self.etcd_url.replace("https://", ""), p.stderr)
        self.assertIn("etcd wants a client certificate: set tls_cert_file", p.stderr)

    def test_etcd_outage_is_an_error_then_service_resumes(self):
        self.start_etcd()
        s = self.server(storage=self.storage_block()).start()
        s.init_and_unseal(1, 1)
        self.assertEqual(s.request("POST", "sys/mounts/secret", token=s.root, body={"type": "kv"})[0], 204)
        self.assertEqual(s.cli("kv", "put", "secret/a", "v=1", token=s.root).returncode, 0)
        self.etcd.send_signal(signal.SIGSTOP)  # etcd hangs: requests time out after 5 s
        try:
            t0 = time.time()
            st, body, _ = s.request("PUT", "secret/b", token=s.root, body={"v": "2"})
            self.assertGreaterEqual(st, 500, body)
            self.assertLess(time.time() - t0, 30)
            st, _, _ = s.request("GET", "sys/health")  # the server itself keeps answering
            self.assertIn(st, (200, 429, 500, 503))
        finally:
            self.etcd.send_signal(signal.SIGCONT)
        for _ in range(50):
            st, body, _ = s.request("PUT", "secret/b", token=s.root, body={"v": "2"})
            if st == 204:
                break
            time.sleep(0.2)
        self.assertEqual(st, 204, body)
        p = s.cli("kv", "get", "-field=v", "secret/a", token=s.root)
        self.assertEqual(p.stdout.strip(), "1")


if __name__ == "__main__":
    unittest.main()
