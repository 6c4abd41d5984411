"""Vault's PKI tutorial ("Build your own certificate authority") run as written, with Coffer's
binary on PATH under the name `vault` (tests/e2e/pki_walkthrough.sh), against a real TLS server.
Then the results are checked with openssl: the leaf chains to the 2023 root through the
intermediate, the intermediate's CRL lists the revoked leaf, the cross-signed intermediate
carries root-2024's key under root-2023's signature, and the new default issuer signs new leaves.
"""
import json
import os
import subprocess
import unittest

from harness import COFFER_BIN, ServerTest

HERE = os.path.dirname(os.path.abspath(__file__))


def read(path):
    with open(path) as fh:
        return fh.read()


def write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)


class PkiWalkthrough(ServerTest):
    def test_vault_pki_tutorial_as_written(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        work = os.path.join(self.tmp, "walk")
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(work)
        os.makedirs(bindir)
        os.symlink(COFFER_BIN, os.path.join(bindir, "vault"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "COFFER_"))}
        env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), VAULT_ADDR=s.addr,
                   VAULT_TOKEN=s.root, VAULT_CACERT=s.ca)
        p = subprocess.run(["bash", os.path.join(HERE, "pki_walkthrough.sh")], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-4000:] + p.stderr[-6000:])
        f = lambda n: os.path.join(work, n)

        # The leaf chains to the 2023 root through the intermediate.
        v = openssl("verify", "-x509_strict", "-CAfile", f("root_2023_ca.crt"), "-untrusted",
                    f("intermediate.cert.pem"), f("leaf.pem"))
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("test.example.com", openssl("x509", "-noout", "-subject", "-in", f("leaf.pem")).stdout)
        # The revoked leaf is on the intermediate's CRL.
        leaf = json.loads(read(f("leaf.json")))["data"]
        status, _, crl_pem = s.request("GET", "pki_int/crl/pem")
        self.assertEqual(status, 200)
        crl = openssl("crl", "-noout", "-text", stdin=crl_pem)
        self.assertEqual(crl.returncode, 0, crl.stderr)
        self.assertIn(leaf["serial_number"].replace(":", "").upper(), crl.stdout.replace(":", "").upper())

        # Two roots; the cross-signed intermediate is root-2024's key signed by root-2023.
        self.assertEqual(len(read(f("issuers.txt")).split()), 2)
        status, r24, _ = s.request("GET", "pki/issuer/root-2024", token=s.root)
        self.assertEqual(status, 200)
        root24 = os.path.join(work, "root_2024.pem")
        write(root24, r24["data"]["certificate"] + "\n")
        pub = lambda path: openssl("x509", "-noout", "-pubkey", "-in", path).stdout
        self.assertEqual(pub(f("cross-signed-intermediate.crt")), pub(root24))
        v = openssl("verify", "-CAfile", f("root_2023_ca.crt"), f("cross-signed-intermediate.crt"))
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # root-2024 is the default now and signs the new leaves; root-2023 issues nothing.
        status, cfg, _ = s.request("GET", "pki/config/issuers", token=s.root)
        self.assertEqual(cfg["data"]["default"], r24["data"]["issuer_id"])
        for name in ("new_leaf.json", "default_leaf.json"):
            new_leaf = os.path.join(work, name + ".pem")
            write(new_leaf, json.loads(read(f(name)))["data"]["certificate"] + "\n")
            v = openssl("verify", "-x509_strict", "-CAfile", root24, new_leaf)
            self.assertEqual(v.returncode, 0, name + ": " + v.stdout + v.stderr)
        self.assertIn("not allowed to issue", read(f("old_root_error.txt")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
