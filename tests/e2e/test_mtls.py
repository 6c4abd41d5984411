"""mTLS on the listener, as Vault's keys: tls_client_ca_file with
tls_require_and_verify_client_cert refuses a client without a certificate or with one from
another CA, and serves one whose certificate chains to the CA (Python's ssl and coffer's CLI);
without the requirement a client may come without a certificate but not with a bad one. Also
Vault settings Coffer does not honour are accepted with a warning."""
import os
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import COFFER_BIN, ServerTest, run


def make_client_ca(d, name):
    """A client CA and a client certificate (clientAuth) signed by it."""
    ca_key, ca = os.path.join(d, name + "-ca.key"), os.path.join(d, name + "-ca.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", f"/CN={name} client CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])
    key, csr, crt = (os.path.join(d, name + ext) for ext in ("-client.key", ".csr", "-client.pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", f"/CN={name}-client"])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "1", "-extfile", ext])
    return ca, crt, key


class MutualTls(ServerTest):
    def get(self, s, cert=None):
        ctx = ssl.create_default_context(cafile=s.ca)
        if cert:
            ctx.load_cert_chain(*cert)
        try:
            with urllib.request.urlopen(s.addr + "/v1/sys/health", context=ctx, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, ssl.SSLError, ConnectionError, OSError) as e:
            return "refused: " + str(e)

    def test_required_client_certificate(self):
        d = self.tmp
        good_ca, good_crt, good_key = make_client_ca(d, "good")
        _, bad_crt, bad_key = make_client_ca(d, "bad")
        s = self.server(listener_extra=f'  tls_client_ca_file = "{good_ca}"\n'
                                       '  tls_require_and_verify_client_cert = "true"\n',
                        extra_config='disable_mlock = true\nui = true\n')
        # harness.start() polls seal-status without a client certificate: start by hand.
        s.log = open(s.log_path, "ab")
        s.proc = subprocess.Popen([COFFER_BIN, "server",
                                   f"-config={s.config}"], stdout=s.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline and self.get(s, (good_crt, good_key)) not in (501, 200, 503):
            time.sleep(0.1)
        self.assertEqual(self.get(s, (good_crt, good_key)), 501)  # not initialized: reachable
        self.assertIn("refused", str(self.get(s)))
        self.assertIn("refused", str(self.get(s, (bad_crt, bad_key))))
        # The CLI with -client-cert/-client-key, and without.
        p = s.cli("status", "-client-cert", good_crt, "-client-key", good_key)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)  # reached: not initialized, sealed
        p = s.cli("status", env_extra={"VAULT_CLIENT_CERT": good_crt, "VAULT_CLIENT_KEY": good_key})
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        p = s.cli("status")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        with open(s.log_path) as f:
            log = f.read()
        self.assertIn('"disable_mlock" is a Vault setting Coffer accepts but does not honour', log)
        self.assertIn('"ui" is a Vault setting', log)

    def test_optional_client_certificate(self):
        good_ca, good_crt, good_key = make_client_ca(self.tmp, "good")
        _, bad_crt, bad_key = make_client_ca(self.tmp, "bad")
        s = self.server(listener_extra=f'  tls_client_ca_file = "{good_ca}"\n').start()
        self.assertEqual(self.get(s), 501)
        self.assertEqual(self.get(s, (good_crt, good_key)), 501)
        self.assertIn("refused", str(self.get(s, (bad_crt, bad_key))))

    def test_contradictions_are_config_errors(self):
        s = self.server(listener_extra='  tls_require_and_verify_client_cert = true\n')
        p = subprocess.run([COFFER_BIN, "server",
                            f"-config={s.config}"], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("needs tls_client_ca_file", p.stderr)


if __name__ == "__main__":
    unittest.main()
