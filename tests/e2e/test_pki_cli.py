"""`coffer pki issue|sign|revoke|list|crl|verify` and generic `coffer write pki/issue/...`
against a real server over TLS: files written with the right modes, verified locally and by
openssl, revocation seen through the CRL.
"""
import os
import stat
import subprocess
import unittest

from harness import ServerTest


class PkiCli(ServerTest):
    def test_issue_sign_revoke_verify(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        t = s.root
        s.cli("secrets", "enable", "-path=pki", "pki", token=t, check=True)
        s.cli("write", "pki/root/generate/internal", "common_name=CLI Root", "key_type=ec",
              "ttl=87600h", token=t, check=True)
        s.cli("write", "pki/roles/web", "allowed_domains=example.com", "allow_subdomains=true",
              "key_type=ec", "ttl=1h", token=t, check=True)
        d = self.tmp
        cert, key, ca = (os.path.join(d, n) for n in ("web.pem", "web.key", "ca.pem"))
        p = s.cli("pki", "issue", "pki", "web", "common_name=a.example.com", "--cert-file", cert,
                  "--key-file", key, "--ca-file", ca, token=t, check=True)
        self.assertIn("Success! serial", p.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(cert).st_mode), 0o644)
        v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", ca, cert],
                           capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        p = s.cli("pki", "verify", "pki", cert, token=t)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(": OK", p.stdout)

        # sign: the key stays here.
        csr_key, csr = os.path.join(d, "n.key"), os.path.join(d, "n.csr")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", csr_key, "-out", csr, "-subj", "/CN=n.example.com"],
                       check=True, capture_output=True)
        signed = os.path.join(d, "n.pem")
        p = s.cli("pki", "sign", "pki", "web", csr, "--cert-file", signed, token=t, check=True)
        out = subprocess.run(["openssl", "x509", "-in", signed, "-noout", "-subject"],
                             capture_output=True, text=True).stdout
        self.assertIn("CN = n.example.com", out)

        # Generic write works too, and -field prints one field.
        p = s.cli("write", "-field=serial_number", "pki/issue/web", "common_name=b.example.com",
                  token=t, check=True)
        serial = p.stdout.strip()
        self.assertRegex(serial, r"^[0-9a-f]{2}(:[0-9a-f]{2}){7,}$")

        # Revoke the first certificate: verify now fails with the CRL's verdict.
        serial1 = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-serial"],
                                 capture_output=True, text=True).stdout.strip().split("=")[1].lower()
        serial1 = ":".join(serial1[i:i + 2] for i in range(0, len(serial1), 2))
        p = s.cli("pki", "revoke", "pki", serial1, token=t, check=True)
        self.assertIn("revoked", p.stdout)
        p = s.cli("pki", "verify", "pki", cert, token=t)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("certificate revoked", p.stdout)
        p = s.cli("pki", "list", "pki", "--revoked", token=t, check=True)
        self.assertIn(serial1.replace(":", "-"), p.stdout)
        p = s.cli("pki", "list", "pki", token=t, check=True)
        self.assertEqual(len(p.stdout.split()), 4)  # the three issued and the root, as Vault lists
        p = s.cli("pki", "crl", "pki", token=t, check=True)
        self.assertIn("BEGIN X509 CRL", p.stdout)
        # Errors are the server's, with exit code 2.
        p = s.cli("pki", "issue", "pki", "web", "common_name=evil.org", token=t)
        self.assertEqual(p.returncode, 2)
        self.assertIn("common name evil.org not allowed by this role", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
