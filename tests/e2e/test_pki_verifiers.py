"""PKI chains checked by independent verifiers: OpenSSL (-x509_strict), GnuTLS certtool,
Python's ssl (a real TLS handshake with VERIFY_X509_STRICT) and Go's crypto/x509 (a program
built here). Also the RFC 5280 fields, revocation through the published CRL, and the
unauthenticated CA/CRL paths.
"""
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import Server, run

HERE = os.path.dirname(os.path.abspath(__file__))
KEY_TYPES = [("rsa", 2048), ("rsa", 3072), ("rsa", 4096), ("ec", 256), ("ec", 384), ("ec", 521),
             ("ed25519", 0)]


def write(path, text):
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return path


class PkiVerifiers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="coffer-pki-")
        srv_dir = os.path.join(cls.tmp, "srv")
        os.makedirs(srv_dir)
        cls.srv = Server(srv_dir)
        cls.srv.start()
        cls.srv.init_and_unseal(1, 1)
        cls.token = cls.srv.root
        go = shutil.which("go")
        if not go:
            raise RuntimeError("go is required (scripts/install-deps.sh installs golang-go)")
        cls.goverify = os.path.join(cls.tmp, "goverify")
        env = dict(os.environ, GOCACHE=os.path.join(cls.tmp, "gocache"), GO111MODULE="off",
                   GOPATH=os.path.join(cls.tmp, "gopath"))
        run([go, "build", "-o", cls.goverify, os.path.join(HERE, "goverify", "main.go")], env=env)

        r = cls.req
        cls.must(r("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}}))
        cls.must(r("POST", "sys/mounts/pki_int", {"type": "pki", "config": {"max_lease_ttl": "43800h"}}))
        cls.must(r("POST", "pki/config/urls", {
            "issuing_certificates": "http://127.0.0.1:1/v1/pki/ca",
            "crl_distribution_points": "http://127.0.0.1:1/v1/pki/crl"}))
        body = cls.must(r("POST", "pki/root/generate/internal", {
            "common_name": "Coffer Test Root", "key_type": "ec", "key_bits": 384, "ttl": "87600h",
            "issuer_name": "root-2026", "organization": "Coffer"}))
        cls.root_pem = body["data"]["certificate"]
        cls.root_file = write(os.path.join(cls.tmp, "root.pem"), cls.root_pem)
        csr = cls.must(r("POST", "pki_int/intermediate/generate/internal", {
            "common_name": "Coffer Test Intermediate", "key_type": "rsa", "key_bits": 2048}))["data"]["csr"]
        signed = cls.must(r("POST", "pki/root/sign-intermediate", {
            "csr": csr, "common_name": "Coffer Test Intermediate", "ttl": "43800h",
            "max_path_length": 0, "format": "pem_bundle"}))["data"]
        cls.int_pem = signed["certificate"].split("\n-----BEGIN")[0]
        cls.int_file = write(os.path.join(cls.tmp, "int.pem"), cls.int_pem)
        imported = cls.must(r("POST", "pki_int/intermediate/set-signed", {"certificate": signed["certificate"]}))
        assert imported["data"]["imported_issuers"], imported
        cls.leaves = {}
        for kt, kb in KEY_TYPES:
            name = f"{kt}{kb}"
            cls.must(r("POST", f"pki_int/roles/{name}", {
                "allowed_domains": "localhost,example.com", "allow_subdomains": True,
                "allow_bare_domains": True, "key_type": kt, "key_bits": kb, "ttl": "2h",
                "organization": "Coffer Tests"}))
            d = cls.must(r("POST", f"pki_int/issue/{name}", {
                "common_name": "localhost", "alt_names": "svc.example.com", "ip_sans": "127.0.0.1"}))["data"]
            cert = write(os.path.join(cls.tmp, f"{name}.pem"), d["certificate"])
            key = write(os.path.join(cls.tmp, f"{name}.key"), d["private_key"])
            chain = write(os.path.join(cls.tmp, f"{name}-chain.pem"), "\n".join(d["ca_chain"]))
            full = write(os.path.join(cls.tmp, f"{name}-full.pem"),
                         d["certificate"] + "\n" + "\n".join(d["ca_chain"]))
            cls.leaves[name] = dict(data=d, cert=cert, key=key, chain=chain, full=full)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def req(cls, method, path, body=None, token=True):
        return cls.srv.request(method, path, token=cls.token if token else None, body=body)

    @staticmethod
    def must(res):
        status, body, text = res
        assert status in (200, 204), f"{status}: {text}"
        return body

    # --- independent verifiers ---

    def test_openssl_strict_server_and_client(self):
        for name, leaf in self.leaves.items():
            for purpose in ("sslserver", "sslclient"):
                p = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", purpose,
                                    "-CAfile", self.root_file, "-untrusted", self.int_file, leaf["cert"]],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, f"{name} {purpose}: {p.stdout}{p.stderr}")
                self.assertIn(": OK", p.stdout)
        p = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", self.root_file, self.int_file],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_gnutls_certtool(self):
        for name, leaf in self.leaves.items():
            for purpose in ("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"):
                p = subprocess.run(["certtool", "--verify", "--verify-profile", "medium",
                                    "--load-ca-certificate", self.root_file, "--infile", leaf["full"],
                                    "--verify-hostname", "localhost", "--verify-purpose", purpose],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, f"{name}: {p.stdout}{p.stderr}")
                self.assertIn("Chain verification output: Verified", p.stdout, name)
                self.assertNotIn("Not verified", p.stdout, name)

    def test_go_crypto_x509_and_rfc5280_fields(self):
        for name, leaf in self.leaves.items():
            for usage in ("server", "client"):
                p = subprocess.run([self.goverify, self.root_file, leaf["chain"], leaf["cert"], usage],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, f"{name} {usage}: {p.stdout}{p.stderr}")
            info = json.loads(p.stdout)
            lf, (inter, root) = info["leaf"], info["chain"]
            exts = {e["oid"]: e["critical"] for e in lf["extensions"]}
            self.assertEqual(lf["version"], 3)
            self.assertFalse(lf["is_ca"])
            self.assertIs(exts.get("2.5.29.19"), True, "basicConstraints critical")
            self.assertIs(exts.get("2.5.29.15"), True, "keyUsage critical")
            self.assertIn("2.5.29.14", exts, "SKI")
            self.assertIn("2.5.29.35", exts, "AKI")
            self.assertIs(exts.get("2.5.29.17"), False, "SAN present, not critical (subject set)")
            self.assertEqual(len(lf["extensions"]), len(exts), "no extension twice")
            self.assertEqual(lf["aki"], inter["ski"])
            self.assertEqual(lf["serial_sign"], 1)
            self.assertGreaterEqual(lf["serial_bits"], 64)
            self.assertEqual(sorted(lf["dns"]), ["localhost", "svc.example.com"])
            self.assertEqual(lf["ips"], ["127.0.0.1"])
            self.assertEqual(sorted(lf["ext_key_usage"]), [1, 2])  # serverAuth, clientAuth
            now = time.time()
            self.assertLess(lf["not_before"], now - 20, "notBefore backdated by 30s")
            self.assertAlmostEqual(lf["not_after"] - lf["not_before"], 2 * 3600 + 30, delta=10)
            self.assertIn("O=Coffer Tests", lf["subject"])
            # Key usages by key type (RFC 5480 / RFC 8410): digitalSignature always.
            self.assertTrue(lf["key_usage"] & 1)
            if name.startswith("rsa"):
                self.assertTrue(lf["key_usage"] & 4, "RSA keeps keyEncipherment")
            else:
                self.assertFalse(lf["key_usage"] & 4, "no keyEncipherment for EC/Ed25519")
            # The CAs.
            for ca in (inter, root):
                cexts = {e["oid"]: e["critical"] for e in ca["extensions"]}
                self.assertTrue(ca["is_ca"])
                self.assertIs(cexts.get("2.5.29.19"), True)
                self.assertIs(cexts.get("2.5.29.15"), True)
                self.assertEqual(ca["key_usage"], 32 | 64, "keyCertSign + cRLSign")
                self.assertTrue(ca["ski"])
            self.assertEqual(inter["aki"], root["ski"])
            self.assertEqual(inter["max_path_len"], 0)
            self.assertEqual(inter["issuing_certificate_url"], ["http://127.0.0.1:1/v1/pki/ca"])
            self.assertEqual(inter["crl_distribution_points"], ["http://127.0.0.1:1/v1/pki/crl"])

    def test_python_tls_handshake_strict(self):
        for name, leaf in self.leaves.items():
            with self.subTest(name=name):
                sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                sctx.minimum_version = ssl.TLSVersion.TLSv1_2
                sctx.load_cert_chain(leaf["full"], leaf["key"])
                cctx = ssl.create_default_context(cafile=self.root_file)
                cctx.verify_flags |= ssl.VERIFY_X509_STRICT
                lsock = socket.socket()
                lsock.bind(("127.0.0.1", 0))
                lsock.listen(1)
                port = lsock.getsockname()[1]
                errors = []

                def serve():
                    try:
                        conn, _ = lsock.accept()
                        with sctx.wrap_socket(conn, server_side=True) as s:
                            s.sendall(s.recv(5))
                    except Exception as e:  # reported by the client side
                        errors.append(e)

                t = threading.Thread(target=serve)
                t.start()
                with socket.create_connection(("127.0.0.1", port)) as raw:
                    with cctx.wrap_socket(raw, server_hostname="localhost") as c:
                        c.sendall(b"hello")
                        self.assertEqual(c.recv(5), b"hello")
                t.join()
                lsock.close()
                self.assertEqual(errors, [])

    # --- revocation ---

    def test_revocation_shows_in_openssl_crl_check(self):
        r = self.req
        good = self.must(r("POST", "pki_int/issue/ec256", {"common_name": "good.example.com"}))["data"]
        bad = self.must(r("POST", "pki_int/issue/ec256", {"common_name": "bad.example.com"}))["data"]
        good_f = write(os.path.join(self.tmp, "good.pem"), good["certificate"])
        bad_f = write(os.path.join(self.tmp, "bad.pem"), bad["certificate"])
        rv = self.must(r("POST", "pki_int/revoke", {"serial_number": bad["serial_number"]}))["data"]
        self.assertEqual(rv["state"], "revoked")
        self.assertGreater(rv["revocation_time"], 0)
        # The CRL is public (no token) and DER.
        with urllib.request.urlopen(self.srv.addr + "/v1/pki_int/crl", context=self.srv.ssl_context()) as resp:
            der = resp.read()
            self.assertEqual(resp.headers["Content-Type"], "application/pkix-crl")
        crl_pem = os.path.join(self.tmp, "crl.pem")
        p = subprocess.run(["openssl", "crl", "-inform", "DER", "-outform", "PEM"], input=der,
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(crl_pem, "wb") as f:
            f.write(p.stdout)
        text = subprocess.run(["openssl", "crl", "-in", crl_pem, "-noout", "-text"],
                              capture_output=True, text=True).stdout
        self.assertIn("X509v3 CRL Number", text)
        self.assertIn("X509v3 Authority Key Identifier", text)
        self.assertIn(bad["serial_number"].replace(":", "").upper(), text.replace(":", "").upper())
        # The CRL verifies against the intermediate.
        p = subprocess.run(["openssl", "crl", "-in", crl_pem, "-noout", "-CAfile", self.int_file],
                           capture_output=True, text=True)
        self.assertIn("verify OK", p.stdout + p.stderr)
        both = write(os.path.join(self.tmp, "cas.pem"), self.root_pem + "\n" + self.int_pem)
        p = subprocess.run(["openssl", "verify", "-x509_strict", "-crl_check", "-CAfile", both,
                            "-CRLfile", crl_pem, bad_f], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("certificate revoked", p.stdout + p.stderr)
        p = subprocess.run(["openssl", "verify", "-x509_strict", "-crl_check", "-CAfile", both,
                            "-CRLfile", crl_pem, good_f], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # cert/:serial shows the revocation; certs/revoked lists it.
        body = self.must(r("GET", "pki_int/cert/" + bad["serial_number"].replace(":", "-")))
        self.assertEqual(body["data"]["revocation_time"], rv["revocation_time"])
        listed = self.must(r("LIST", "pki_int/certs/revoked"))["data"]["keys"]
        self.assertIn(bad["serial_number"].replace(":", "-"), listed)

    def test_unauthenticated_ca_paths(self):
        status, _, text = self.srv.request("GET", "pki/ca/pem")
        self.assertEqual(status, 200)
        self.assertEqual(text.strip(), self.root_pem.strip())
        status, _, text = self.srv.request("GET", "pki_int/ca_chain")
        self.assertEqual(status, 200)
        self.assertIn(self.int_pem.strip(), text)
        self.assertIn(self.root_pem.strip(), text)
        # Roles and issuance still need a token.
        status, body, _ = self.srv.request("POST", "pki_int/issue/ec256", body={"common_name": "x.example.com"})
        self.assertEqual(status, 403)
        status, body, _ = self.srv.request("LIST", "pki_int/certs")
        self.assertEqual(status, 403)


if __name__ == "__main__":
    unittest.main(verbosity=2)
