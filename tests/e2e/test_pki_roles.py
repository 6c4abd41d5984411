"""PKI role name policy over HTTP: a matrix of allowed and denied requests (bare domains,
subdomains, globs, wildcards, localhost, IP SANs and CIDRs, URI SANs, CN required, CSR names
used or ignored), each checked for its status code and message; bad CSRs; TTL capping.
"""
import base64
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Server

ROLES = {
    "bare": {"allowed_domains": "example.com", "allow_bare_domains": True},
    "sub": {"allowed_domains": "example.com", "allow_subdomains": True},
    "glob": {"allowed_domains": "*.svc.cluster.local", "allow_glob_domains": True},
    "nowild": {"allowed_domains": "example.com", "allow_subdomains": True,
               "allow_wildcard_certificates": False},
    "local": {"allow_localhost": True},
    "nolocal": {"allow_localhost": False, "allowed_domains": "example.com", "allow_bare_domains": True},
    "noip": {"allowed_domains": "example.com", "allow_subdomains": True, "allow_ip_sans": False},
    "cidr": {"allowed_domains": "example.com", "allow_subdomains": True,
             "allowed_ip_sans_cidr": "10.0.0.0/8"},
    "uri": {"allowed_domains": "example.com", "allow_subdomains": True,
            "allowed_uri_sans": "spiffe://cluster.local/*"},
    "nocn": {"allowed_domains": "example.com", "allow_subdomains": True, "require_cn": False},
    "any": {"allow_any_name": True},
    "anyfree": {"allow_any_name": True, "enforce_hostnames": False},
    "csrnames": {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "any"},
    "csrignore": {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "any",
                  "use_csr_common_name": False, "use_csr_sans": False},
    "ec": {"allow_any_name": True, "key_type": "ec"},
    "rsa4k": {"allow_any_name": True, "key_type": "rsa", "key_bits": 4096},
    "short": {"allowed_domains": "example.com", "allow_subdomains": True, "ttl": "1h", "max_ttl": "2h"},
}

# (role, request, expected status, message substring)
ISSUE_CASES = [
    ("bare", {"common_name": "example.com"}, 200, None),
    ("bare", {"common_name": "a.example.com"}, 400, "common name a.example.com not allowed by this role"),
    ("bare", {"common_name": "user@example.com"}, 200, None),
    ("sub", {"common_name": "a.example.com"}, 200, None),
    ("sub", {"common_name": "a.b.example.com"}, 200, None),
    ("sub", {"common_name": "example.com"}, 400, "common name example.com not allowed by this role"),
    ("sub", {"common_name": "aexample.com"}, 400, "common name aexample.com not allowed"),
    ("sub", {"common_name": "a.example.org"}, 400, "common name a.example.org not allowed"),
    ("sub", {"common_name": "A.EXAMPLE.COM"}, 200, None),
    ("sub", {"common_name": "*.example.com"}, 200, None),
    ("sub", {"common_name": "-bad.example.com"}, 400, "not a valid hostname"),
    ("sub", {"common_name": "a.example.com", "alt_names": "b.example.com,c.example.com"}, 200, None),
    ("sub", {"common_name": "a.example.com", "alt_names": "evil.org"}, 400,
     "subject alternate name evil.org not allowed by this role"),
    ("sub", {"common_name": "a.example.com", "alt_names": "bad_name.example.com"}, 400,
     "not a valid hostname"),
    ("sub", {"common_name": "a.example.com", "ip_sans": "10.0.0.1"}, 200, None),
    ("sub", {"common_name": "a.example.com", "uri_sans": "spiffe://cluster.local/x"}, 400,
     "URI Subject Alternative Names are not allowed in this role"),
    ("sub", {}, 400, "the common_name field is required"),
    ("sub", {"common_name": "a.example.com", "exclude_cn_from_sans": True}, 200, None),
    ("nowild", {"common_name": "*.example.com"}, 400, "wildcard names are not allowed by this role"),
    ("nowild", {"common_name": "a.example.com"}, 200, None),
    ("nowild", {"common_name": "a.example.com", "alt_names": "*.example.com"}, 400,
     "subject alternate name *.example.com not allowed"),
    ("glob", {"common_name": "api.svc.cluster.local"}, 200, None),
    ("glob", {"common_name": "api.default.svc.cluster.local"}, 200, None),
    ("glob", {"common_name": "svc.cluster.local"}, 400, "common name svc.cluster.local not allowed"),
    ("glob", {"common_name": "api.svc.cluster.local.evil.org"}, 400, "not allowed by this role"),
    ("local", {"common_name": "localhost"}, 200, None),
    ("local", {"common_name": "foo.example.com"}, 400, "common name foo.example.com not allowed"),
    ("nolocal", {"common_name": "localhost"}, 400, "common name localhost not allowed"),
    ("nolocal", {"common_name": "example.com"}, 200, None),
    ("noip", {"common_name": "a.example.com", "ip_sans": "10.0.0.1"}, 400,
     "IP Subject Alternative Names are not allowed in this role, but was provided 10.0.0.1"),
    ("noip", {"common_name": "a.example.com"}, 200, None),
    ("cidr", {"common_name": "a.example.com", "ip_sans": "10.1.2.3"}, 200, None),
    ("cidr", {"common_name": "a.example.com", "ip_sans": "192.168.1.1"}, 400,
     "192.168.1.1 is not within the role's allowed_ip_sans_cidr"),
    ("cidr", {"common_name": "a.example.com", "ip_sans": "not-an-ip"}, 400, "is not an IP address"),
    ("uri", {"common_name": "a.example.com", "uri_sans": "spiffe://cluster.local/ns/a"}, 200, None),
    ("uri", {"common_name": "a.example.com", "uri_sans": "spiffe://other.local/ns/a"}, 400,
     "not allowed by this role's allowed_uri_sans"),
    ("nocn", {"alt_names": "a.example.com"}, 200, None),
    ("nocn", {}, 400, "neither a subject nor a subject alternative name"),
    ("any", {"common_name": "anything.org"}, 200, None),
    ("any", {"common_name": "not a hostname"}, 400, "not a valid hostname"),
    ("anyfree", {"common_name": "system:node:worker-1"}, 200, None),
    ("short", {"common_name": "a.example.com", "ttl": "24h"}, 200, None),
    ("short", {"common_name": "a.example.com", "ttl": "soon"}, 400, "ttl"),
]


def openssl(*args, data=None):
    p = subprocess.run(["openssl", *args], input=data, capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


class PkiRoles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="coffer-pki-roles-")
        d = os.path.join(cls.tmp, "srv")
        os.makedirs(d)
        cls.srv = Server(d, tls=False)
        cls.srv.start()
        cls.srv.init_and_unseal(1, 1)
        cls.must(cls.req("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "8760h"}}))
        cls.must(cls.req("POST", "pki/root/generate/internal",
                         {"common_name": "Roles Test CA", "key_type": "ec", "ttl": "8760h"}))
        for name, body in ROLES.items():
            cls.must(cls.req("POST", f"pki/roles/{name}", dict({"key_type": "ec"}, **body)))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def req(cls, method, path, body=None):
        return cls.srv.request(method, path, token=cls.srv.root, body=body)

    @staticmethod
    def must(res):
        status, body, text = res
        assert status in (200, 204), f"{status}: {text}"
        return body

    def csr(self, subj="/CN=a.example.com", san=None, key=("ec", "ec_paramgen_curve:P-256")):
        keyf = os.path.join(self.tmp, "k.pem")
        args = ["req", "-new", "-newkey", key[0], "-pkeyopt", key[1], "-nodes", "-keyout", keyf,
                "-subj", subj]
        if san:
            args += ["-addext", "subjectAltName=" + san]
        return openssl(*args).decode()

    def cert_text(self, pem):
        return openssl("x509", "-noout", "-text", data=pem.encode()).decode()

    def check(self, path, body, status, message):
        got, resp, text = self.req("POST", path, body)
        self.assertEqual(got, status, f"{path} {body}: {text}")
        if message:
            self.assertIn(message, " ".join(resp["errors"]), f"{path} {body}")
        return resp

    def test_issue_matrix(self):
        self.assertGreaterEqual(len(ISSUE_CASES), 40)
        for role, body, status, message in ISSUE_CASES:
            with self.subTest(role=role, body=body):
                resp = self.check(f"pki/issue/{role}", body, status, message)
                if status == 200:
                    self.assertIn("BEGIN CERTIFICATE", resp["data"]["certificate"])
                    self.assertEqual(resp["data"]["private_key_type"], "ec")

    def test_issued_names_and_ttl(self):
        d = self.check("pki/issue/sub", {"common_name": "a.example.com", "exclude_cn_from_sans": True,
                                         "alt_names": "b.example.com"}, 200, None)["data"]
        text = self.cert_text(d["certificate"])
        self.assertIn("DNS:b.example.com", text)
        self.assertNotIn("DNS:a.example.com", text)
        resp = self.check("pki/issue/short", {"common_name": "a.example.com", "ttl": "24h"}, 200, None)
        self.assertTrue(any("maxTTL" in w for w in resp["warnings"]), resp["warnings"])
        d = resp["data"]
        # 2h max TTL: expiration is about two hours from now.
        self.assertAlmostEqual(d["expiration"] - time.time(), 7200, delta=30)
        d = self.check("pki/issue/short", {"common_name": "a.example.com"}, 200, None)["data"]
        self.assertAlmostEqual(d["expiration"] - time.time(), 3600, delta=30)

    def test_sign_uses_or_ignores_csr_names(self):
        csr = self.csr("/CN=a.example.com", "DNS:b.example.com,IP:10.0.0.1")
        d = self.check("pki/sign/csrnames", {"csr": csr}, 200, None)["data"]
        text = self.cert_text(d["certificate"])
        self.assertIn("DNS:a.example.com", text)
        self.assertIn("DNS:b.example.com", text)
        self.assertIn("IP Address:10.0.0.1", text)
        self.assertNotIn("private_key", d)
        self.check("pki/sign/csrnames", {"csr": self.csr("/CN=evil.org")}, 400,
                   "common name evil.org not allowed by this role")
        self.check("pki/sign/csrnames", {"csr": self.csr("/CN=a.example.com", "DNS:evil.org")}, 400,
                   "subject alternate name evil.org not allowed by this role")
        # use_csr_common_name/use_csr_sans false: the request's names, the CSR's ignored.
        d = self.check("pki/sign/csrignore", {"csr": self.csr("/CN=evil.org", "DNS:evil.org"),
                                              "common_name": "a.example.com"}, 200, None)["data"]
        text = self.cert_text(d["certificate"])
        self.assertIn("Subject: CN = a.example.com", text)
        self.assertNotIn("evil.org", text)
        self.check("pki/sign/csrignore", {"csr": self.csr("/CN=a.example.com"), "common_name": "evil.org"},
                   400, "common name evil.org not allowed")

    def test_bad_csrs(self):
        self.check("pki/sign/csrnames", {"csr": "garbage"}, 400, "csr is not a PEM certificate request")
        self.check("pki/sign/csrnames", {}, 400, "the csr field is required")
        # A CSR whose signature does not match its key.
        pem = self.csr()
        der = bytearray(openssl("req", "-outform", "DER", data=pem.encode()))
        der[-3] ^= 0x55
        bad = "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(bytes(der)).decode() + \
              "-----END CERTIFICATE REQUEST-----\n"
        self.check("pki/sign/csrnames", {"csr": bad}, 400, "csr signature is invalid")
        self.check("pki/sign/csrnames", {"csr": self.csr(key=("rsa", "rsa_keygen_bits:1024"))}, 400,
                   "RSA key of 1024 bits is too weak")
        self.check("pki/sign/csrnames", {"csr": self.csr(key=("ec", "ec_paramgen_curve:secp256k1"))}, 400,
                   "unsupported elliptic curve \"secp256k1\"")
        self.check("pki/sign/ec", {"csr": self.csr(key=("rsa", "rsa_keygen_bits:2048"))}, 400,
                   "role requires keys of type ec")
        self.check("pki/sign/rsa4k", {"csr": self.csr(key=("rsa", "rsa_keygen_bits:2048"))}, 400,
                   "role requires a minimum of 4096 bits")
        self.check("pki/sign/sub", {"csr": self.csr("/CN=a.example.com", "DNS:outside.org")}, 400,
                   "subject alternate name outside.org not allowed by this role")
        # The server keeps serving.
        self.check("pki/sign/csrnames", {"csr": self.csr()}, 200, None)

    def test_role_crud_and_validation(self):
        body = self.must(self.req("GET", "pki/roles/sub"))["data"]
        self.assertEqual(body["allowed_domains"], ["example.com"])
        self.assertTrue(body["allow_localhost"])
        self.assertEqual(body["key_usage"], ["DigitalSignature", "KeyAgreement", "KeyEncipherment"])
        self.assertEqual(body["not_before_duration"], 30)
        self.assertEqual(body["key_bits"], 256)
        keys = self.must(self.req("LIST", "pki/roles"))["data"]["keys"]
        self.assertEqual(sorted(keys), sorted(ROLES))
        status, resp, _ = self.req("POST", "pki/roles/bad", {"key_type": "dsa"})
        self.assertEqual(status, 400)
        self.assertIn("unknown key_type", resp["errors"][0])
        status, resp, _ = self.req("POST", "pki/roles/bad", {"key_usage": "Nonsense"})
        self.assertEqual(status, 400)
        self.assertIn("unknown key_usage", resp["errors"][0])
        status, resp, _ = self.req("POST", "pki/roles/bad", {"ttl": "3h", "max_ttl": "1h"})
        self.assertEqual(status, 400)
        status, resp, _ = self.req("POST", "pki/issue/nosuchrole", {"common_name": "x"})
        self.assertEqual(status, 400)
        self.assertIn("unknown role", resp["errors"][0])
        # PATCH changes one field and keeps the others.
        self.must(self.req("PATCH", "pki/roles/nowild", {"allow_wildcard_certificates": True}))
        body = self.must(self.req("GET", "pki/roles/nowild"))["data"]
        self.assertTrue(body["allow_wildcard_certificates"])
        self.assertTrue(body["allow_subdomains"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
