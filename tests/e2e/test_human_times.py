"""Times a person reads (issue 17): tables show TTLs as durations and expiries as an RFC 3339
date with what remains; -format=json keeps the API's numbers."""
import json
import re
import unittest

from harness import ServerTest


class HumanTimes(ServerTest):
    def test_token_and_pki_times(self):
        s = self.server().start()
        s.init_and_unseal(1, 1)
        tok = s.cli("token", "create", "-ttl=2h", "-format=json", token=s.root, check=True)
        child = json.loads(tok.stdout)["auth"]["client_token"]
        p = s.cli("token", "lookup", token=child, check=True)
        self.assertRegex(p.stdout, r"\nttl +1h59m\d+s\n|\nttl +2h\n")
        self.assertRegex(p.stdout, r"\ncreation_ttl +2h\n")
        self.assertRegex(p.stdout, r"\nexplicit_max_ttl +0s\n")
        p = s.cli("token", "lookup", "-format=json", token=child, check=True)
        self.assertIsInstance(json.loads(p.stdout)["data"]["ttl"], int)

        s.cli("secrets", "enable", "pki", token=s.root, check=True)
        s.cli("write", "pki/root/generate/internal", "common_name=Times CA", "ttl=8760h",
              token=s.root, check=True)
        s.cli("write", "pki/roles/web", "allow_any_name=true", token=s.root, check=True)
        p = s.cli("write", "pki/issue/web", "common_name=a.example", "ttl=24h", token=s.root,
                  check=True)
        self.assertRegex(p.stdout, r"\nexpiration +20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                                   r"\(in 23h 59m\)\n|\nexpiration +20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                                   r"\(in 1d\)\n")
        p = s.cli("write", "-format=json", "pki/issue/web", "common_name=b.example", "ttl=24h",
                  token=s.root, check=True)
        self.assertIsInstance(json.loads(p.stdout)["data"]["expiration"], int)
        out = self.tmp + "/leaf"
        p = s.cli("pki", "issue", "pki", "web", "common_name=c.example", "ttl=24h",
                  "--cert-file", out + ".crt", "--key-file", out + ".key", token=s.root)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"expires 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (23h 59m|1d)\)")


if __name__ == "__main__":
    unittest.main()
