"""sys/rekey and sys/generate-root against a real server, as Vault's: new unseal key shares (with
and without verification) after which only the new shares unseal, and a new root token from the
shares handed out XORed with a one-time pad (decoded here as Vault's CLI does)."""
import base64
import unittest

from harness import ServerTest

# hvac's OTP for Vault 1.10 and later (28 characters, the length of an "hvs." token).
OTP = "BMjzW3wAsEzINXCM05Wbas3u9zSl"


def decode_root(encoded, otp):
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode())).decode()


class Rekey(ServerTest):
    def setUp(self):
        super().setUp()
        self.s = self.server().start()
        self.s.init_and_unseal(shares=5, threshold=3)

    def req(self, method, path, body=None, token=None, want=200):
        status, resp, text = self.s.request(method, path, token=token, body=body)
        self.assertEqual(status, want, f"{method} {path}: {text}")
        return resp

    def unseal_with(self, keys):
        if not self.req("GET", "sys/seal-status")["sealed"]:
            self.req("PUT", "sys/seal", token=self.s.root, want=204)
        self.s.request("PUT", "sys/unseal", body={"reset": True})
        last = None
        for k in keys:
            status, last, text = self.s.request("PUT", "sys/unseal", body={"key": k})
            if status != 200:
                return status, text
        return 200, last

    def test_rekey_replaces_the_shares(self):
        st = self.req("GET", "sys/rekey/init")
        self.assertFalse(st["started"])
        self.assertEqual(st["required"], 3)
        st = self.req("PUT", "sys/rekey/init", {"secret_shares": 3, "secret_threshold": 2})
        self.assertTrue(st["started"])
        self.assertEqual((st["t"], st["n"]), (2, 3))
        nonce = st["nonce"]
        # A wrong nonce and a malformed key are refused without moving the progress.
        self.req("PUT", "sys/rekey/update", {"key": self.s.keys[0], "nonce": "wrong"}, want=400)
        self.req("PUT", "sys/rekey/update", {"key": "zz", "nonce": nonce}, want=400)
        for k in self.s.keys[:2]:
            st = self.req("PUT", "sys/rekey/update", {"key": k, "nonce": nonce})
            self.assertFalse(st.get("complete", False))
        done = self.req("PUT", "sys/rekey/update", {"key": self.s.keys[2], "nonce": nonce})
        self.assertTrue(done["complete"])
        new_keys = done["keys"]
        self.assertEqual(len(new_keys), 3)
        self.assertEqual(len(done["keys_base64"]), 3)
        self.assertFalse(self.req("GET", "sys/rekey/init")["started"])
        seal = self.req("GET", "sys/seal-status")
        self.assertEqual((seal["t"], seal["n"]), (2, 3))
        # The old shares no longer unseal; two of the new ones do.
        status, text = self.unseal_with(self.s.keys[:3])
        self.assertEqual(status, 400, text)
        self.assertIn("do not combine", text)
        status, last = self.unseal_with(new_keys[1:3])
        self.assertEqual(status, 200)
        self.assertFalse(last["sealed"])
        self.req("GET", "auth/token/lookup-self", token=self.s.root)
        # Backed-up keys: none (Vault's 400).
        self.req("GET", "sys/rekey/backup", want=400)

    def test_rekey_with_verification_waits_for_the_new_shares(self):
        st = self.req("PUT", "sys/rekey/init",
                      {"secret_shares": 4, "secret_threshold": 2, "require_verification": True})
        done = None
        for k in self.s.keys[:3]:
            done = self.req("PUT", "sys/rekey/update", {"key": k, "nonce": st["nonce"]})
        self.assertTrue(done["complete"])
        self.assertTrue(done["verification_required"])
        new_keys = done["keys"]
        v = self.req("GET", "sys/rekey/verify")
        self.assertEqual(v["nonce"], done["verification_nonce"])
        # Until verified, the old configuration (and so the old shares) stays in force.
        seal = self.req("GET", "sys/seal-status")
        self.assertEqual((seal["t"], seal["n"]), (3, 5))
        # Cancelling the verification gives a new nonce; the old one is refused.
        v2 = self.req("DELETE", "sys/rekey/verify")
        self.assertNotEqual(v2["nonce"], v["nonce"])
        self.req("PUT", "sys/rekey/verify", {"key": new_keys[0], "nonce": v["nonce"]}, want=400)
        # The old shares are not the new ones: refused once the threshold is reached.
        self.req("PUT", "sys/rekey/verify", {"key": self.s.keys[0], "nonce": v2["nonce"]})
        self.req("PUT", "sys/rekey/verify", {"key": self.s.keys[1], "nonce": v2["nonce"]}, want=400)
        self.assertEqual(self.req("GET", "sys/rekey/verify")["progress"], 0)
        self.req("PUT", "sys/rekey/verify", {"key": new_keys[0], "nonce": v2["nonce"]})
        fin = self.req("PUT", "sys/rekey/verify", {"key": new_keys[3], "nonce": v2["nonce"]})
        self.assertTrue(fin["complete"])
        seal = self.req("GET", "sys/seal-status")
        self.assertEqual((seal["t"], seal["n"]), (2, 4))
        status, text = self.unseal_with(self.s.keys[:3])
        self.assertEqual(status, 400, text)
        status, _ = self.unseal_with(new_keys[1:3])
        self.assertEqual(status, 200)

    def test_refusals_that_must_not_lose_keys(self):
        # A wrap asked for without a token is refused before anything changes.
        st = self.req("PUT", "sys/rekey/init", {"secret_shares": 1, "secret_threshold": 1})
        for k in self.s.keys[:2]:
            self.req("PUT", "sys/rekey/update", {"key": k, "nonce": st["nonce"]})
        status, _, text = self.s.request("PUT", "sys/rekey/update",
                                         body={"key": self.s.keys[2], "nonce": st["nonce"]},
                                         headers={"X-Vault-Wrap-TTL": "60"})
        self.assertEqual(status, 400, text)
        self.assertEqual(self.req("GET", "sys/rekey/init")["progress"], 2)
        # Sealing ends the rekey in progress (it held two shares).
        status, _ = self.unseal_with(self.s.keys[:3])
        self.assertEqual(status, 200)
        self.assertFalse(self.req("GET", "sys/rekey/init")["started"])
        # require_verification must be a boolean: "yes" would otherwise skip verification.
        self.req("PUT", "sys/rekey/init",
                 {"secret_shares": 3, "secret_threshold": 2, "require_verification": "yes"}, want=400)
        self.assertFalse(self.req("GET", "sys/rekey/init")["started"])

    def test_generate_root_with_an_otp(self):
        st = self.req("PUT", "sys/generate-root/attempt", {"otp": OTP})
        self.assertTrue(st["started"])
        self.assertEqual(st["otp_length"], 28)
        nonce = st["nonce"]
        self.assertTrue(self.req("GET", "sys/generate-root/attempt")["started"])
        # A share set that does not combine resets the progress, and says so.
        bad = [self.s.keys[0], self.s.keys[1], base64.b64encode(b"\x01" * 33).decode()]
        for k in bad[:2]:
            self.req("PUT", "sys/generate-root/update", {"key": k, "nonce": nonce})
        status, resp, text = self.s.request("PUT", "sys/generate-root/update",
                                            body={"key": bad[2], "nonce": nonce})
        self.assertEqual(status, 400, text)
        self.assertIn("progress was reset", text)
        self.assertEqual(self.req("GET", "sys/generate-root/attempt")["progress"], 0)
        done = None
        for k in self.s.keys[1:4]:
            done = self.req("PUT", "sys/generate-root/update", {"key": k, "nonce": nonce})
        self.assertTrue(done["complete"])
        self.assertFalse(self.req("GET", "sys/generate-root/attempt")["started"])
        token = decode_root(done["encoded_root_token"], OTP)
        self.assertTrue(token.startswith("hvs."), token)
        me = self.req("GET", "auth/token/lookup-self", token=token)
        self.assertEqual(me["data"]["policies"], ["root"])
        # The CLI decodes it as vault's does.
        p = self.s.cli("operator", "generate-root", "-decode=" + done["encoded_root_token"], "-otp=" + OTP)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), token)

    def test_generate_root_without_an_otp_makes_one_and_cancel_works(self):
        st = self.req("PUT", "sys/generate-root/attempt", {})
        self.assertEqual(len(st["otp"]), 28)
        self.req("PUT", "sys/generate-root/attempt", {}, want=400)  # one at a time
        self.req("DELETE", "sys/generate-root/attempt", want=204)
        self.assertFalse(self.req("GET", "sys/generate-root/attempt")["started"])
        self.req("PUT", "sys/generate-root/attempt", {"otp": "short"}, want=400)


if __name__ == "__main__":
    unittest.main()
