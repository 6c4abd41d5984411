"""Auto seals with real processes (docs/seals.md): a Transit seal on another Coffer server, a
PKCS#11 seal on SoftHSM2, recovery keys (root generation, rekey), and seal migration Shamir ->
Transit -> Shamir with every entry and the CA kept."""
import base64
import hashlib
import os
import subprocess
import time
import unittest

from harness import ServerTest

OTP = "BMjzW3wAsEzINXCM05Wbas3u9zSl"
SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so"


def decode_root(encoded, otp):
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode())).decode()


def wait_for(fn, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


class SealBase(ServerTest):
    def req(self, s, method, path, body=None, token=None, want=200):
        status, resp, text = s.request(method, path, token=token, body=body)
        self.assertEqual(status, want, f"{method} {path}: {text}")
        return resp

    def set_extra(self, s, extra):
        """Rewrites the server's config with `extra` (seal blocks) after the base config."""
        if not hasattr(s, "base_config"):
            with open(s.config) as f:
                s.base_config = f.read()
        with open(s.config, "w") as f:
            f.write(s.base_config + extra)

    def log_tail(self, s, n=2000):
        with open(s.log_path) as f:
            return f.read()[-n:]

    def sealed(self, s):
        return self.req(s, "GET", "sys/seal-status")["sealed"]

    def unsealed_within(self, s, seconds):
        return wait_for(lambda: not self.sealed(s), seconds)

    # ---- the Transit seal's server (A) --------------------------------------------------------

    def start_transit_server(self):
        a = self.server().start()
        a.init_and_unseal(shares=3, threshold=2)
        self.req(a, "POST", "sys/mounts/transit", {"type": "transit"}, token=a.root, want=204)
        self.req(a, "POST", "transit/keys/autounseal", {}, token=a.root)
        policy = ('path "transit/encrypt/autounseal" { capabilities = ["update"] }\n'
                  'path "transit/decrypt/autounseal" { capabilities = ["update"] }\n')
        self.req(a, "PUT", "sys/policies/acl/autounseal", {"policy": policy}, token=a.root,
                 want=204)
        return a

    def seal_token(self, a, ttl="1h"):
        t = self.req(a, "POST", "auth/token/create",
                     {"policies": ["autounseal"], "ttl": ttl, "explicit_max_ttl": "24h"},
                     token=a.root)
        return t["auth"]["client_token"]

    def transit_block(self, a, token, disabled=False, key="autounseal"):
        return (f'seal "transit" {{\n  address = "{a.addr}"\n  token = "{token}"\n'
                f'  key_name = "{key}"\n  mount_path = "transit/"\n  tls_ca_cert = "{a.ca}"\n'
                + ('  disabled = "true"\n' if disabled else "") + "}\n")

    def init_auto(self, s, shares=5, threshold=3):
        st, body, text = s.request("PUT", "sys/init", body={"recovery_shares": shares,
                                                            "recovery_threshold": threshold})
        self.assertEqual(st, 200, text)
        self.assertEqual(body["keys"], [])
        self.assertEqual(len(body["recovery_keys"]), shares)
        self.assertEqual(len(body["recovery_keys_base64"]), shares)
        s.root = body["root_token"]
        s.recovery = body["recovery_keys"]
        return body

    def generate_root(self, s, keys):
        self.req(s, "DELETE", "sys/generate-root/attempt", want=204)
        st = self.req(s, "PUT", "sys/generate-root/attempt", {"otp": OTP})
        nonce, last = st["nonce"], None
        for k in keys:
            status, last, text = s.request("PUT", "sys/generate-root/update",
                                           body={"key": k, "nonce": nonce})
            if status != 200:
                return status, text
        return 200, decode_root(last["encoded_root_token"], OTP)



class TransitSeal(SealBase):

    def test_transit_seal_unseals_by_itself_and_waits_for_its_server(self):
        a = self.start_transit_server()
        b = self.server()
        self.set_extra(b, self.transit_block(a, self.seal_token(a)))
        b.start()
        st = self.req(b, "GET", "sys/seal-status")
        self.assertEqual((st["type"], st["initialized"], st["sealed"]), ("transit", False, True))
        # The CLI's init prints recovery keys (and says they do not unseal).
        p = b.cli("operator", "init", "-recovery-shares=5", "-recovery-threshold=3")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("Unseal Key", p.stdout)
        rec = [l.split(": ")[1] for l in p.stdout.splitlines() if l.startswith("Recovery Key ")]
        self.assertEqual(len(rec), 5, p.stdout)
        self.assertIn("do not open the root key", p.stdout)
        b.root = [l.split(": ")[1] for l in p.stdout.splitlines()
                  if l.startswith("Initial Root Token")][0]
        st = self.req(b, "GET", "sys/seal-status")
        self.assertEqual((st["sealed"], st["recovery_seal"], st["t"], st["n"]),
                         (False, True, 3, 5))
        self.req(b, "POST", "sys/mounts/kv", {"type": "kv"}, token=b.root, want=204)
        self.req(b, "PUT", "kv/a", {"v": "1"}, token=b.root, want=204)
        # The CLI's view.
        p = b.cli("status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Recovery Seal Type", p.stdout)
        self.assertIn("transit", p.stdout)

        # SIGKILL and restart: unsealed by the seal within 2 seconds of listening.
        b.kill9()
        b.start()
        t0 = time.time()
        self.assertTrue(self.unsealed_within(b, 2.0), self.log_tail(b))
        self.assertLess(time.time() - t0, 2.0)
        self.assertEqual(self.req(b, "GET", "kv/a", token=b.root)["data"]["v"], "1")

        # A down: B stays sealed and says why; back up, B unseals within seconds.
        a.stop()
        b.kill9()
        b.start()
        time.sleep(1.5)
        st = self.req(b, "GET", "sys/seal-status")
        self.assertTrue(st["sealed"])
        self.assertIn("cannot reach the transit seal's server", st.get("seal_error", ""), st)
        self.assertIn("auto unseal failed", self.log_tail(b, 100000))
        a.start()
        a.unseal(2)
        t0 = time.time()
        self.assertTrue(self.unsealed_within(b, 5.0), self.req(b, "GET", "sys/seal-status"))
        self.assertLess(time.time() - t0, 2.5)
        self.assertNotIn("seal_error", self.req(b, "GET", "sys/seal-status"))
        self.assertEqual(self.req(b, "GET", "kv/a", token=b.root)["data"]["v"], "1")

        # operator rotate keeps working under the auto seal, across a restart.
        self.req(b, "PUT", "sys/rotate", token=b.root, want=204)
        self.req(b, "PUT", "kv/b", {"v": "2"}, token=b.root, want=204)
        b.kill9()
        b.start()
        self.assertTrue(self.unsealed_within(b, 2.0))
        self.assertEqual(self.req(b, "GET", "kv/b", token=b.root)["data"]["v"], "2")
        self.assertEqual(self.req(b, "GET", "sys/key-status", token=b.root)["term"], 2)

        # The seal's token refused (revoked on A): sealed, with the reason.
        a_token = self.seal_token(a)
        self.set_extra(b, self.transit_block(a, a_token))
        b.stop()
        self.req(a, "PUT", "auth/token/revoke", {"token": a_token}, token=a.root, want=204)
        b.start()
        time.sleep(1.0)
        st = self.req(b, "GET", "sys/seal-status")
        self.assertTrue(st["sealed"])
        self.assertIn("403", st.get("seal_error", ""), st)

    def test_recovery_keys_generate_root_and_rekey(self):
        a = self.start_transit_server()
        b = self.server()
        # A short TTL: B must renew its token to keep using the seal.
        self.set_extra(b, self.transit_block(a, self.seal_token(a, ttl="4s")))
        b.start()
        self.init_auto(b, 5, 3)
        # Unseal keys are refused for what recovery keys authorize: a wrong key fails.
        status, text = self.generate_root(
            b, [base64.b64encode(os.urandom(33)).decode() for _ in range(3)])
        self.assertEqual(status, 400, text)
        status, root = self.generate_root(b, b.recovery[1:4])
        self.assertEqual(status, 200, root)
        me = self.req(b, "GET", "auth/token/lookup-self", token=root)
        self.assertEqual(me["data"]["policies"], ["root"])

        # sys/rekey (the barrier's) is refused under an auto seal and points to the recovery path.
        st, _, text = b.request("PUT", "sys/rekey/init", body={"secret_shares": 1,
                                                               "secret_threshold": 1})
        self.assertEqual(st, 400, text)
        self.assertIn("rekey-recovery-key", text)
        # Rekey the recovery keys (Vault's path); the old ones stop working.
        st = self.req(b, "PUT", "sys/rekey-recovery-key/init",
                      {"secret_shares": 3, "secret_threshold": 2})
        nonce = st["nonce"]
        self.assertEqual(st["required"], 3)
        done = None
        for k in b.recovery[:3]:
            done = self.req(b, "PUT", "sys/rekey-recovery-key/update", {"key": k, "nonce": nonce})
        self.assertTrue(done["complete"])
        new = done["keys"]
        self.assertEqual(len(new), 3)
        status, text = self.generate_root(b, b.recovery[:3])
        self.assertEqual(status, 400, text)
        p = b.cli("operator", "rekey", "-target=recovery", "-status")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Rekey Progress", p.stdout)
        self.assertEqual(b.cli("operator", "rekey", "-target=bogus", "-status").returncode, 1)
        status, root2 = self.generate_root(b, new[:2])
        self.assertEqual(status, 200, root2)
        self.req(b, "GET", "auth/token/lookup-self", token=root2)
        st = self.req(b, "GET", "sys/seal-status")
        self.assertEqual((st["t"], st["n"]), (2, 3))

        # 10 s later (the seal token's TTL is 4 s) a manual seal and unseal with the new
        # recovery keys still reaches the seal: the token was renewed.
        time.sleep(10)
        self.req(b, "PUT", "sys/seal", token=b.root, want=204)
        for k in new[:2]:
            st = self.req(b, "PUT", "sys/unseal", {"key": k})
        self.assertFalse(st["sealed"], st)
        self.assertIn("transit", self.req(b, "GET", "sys/seal-status")["type"])

    def kv_dump(self, s, n):
        out = {}
        for i in range(n):
            out[i] = self.req(s, "GET", f"kv/e{i}", token=s.root)["data"]["v"]
        return out

    def test_migration_shamir_transit_shamir_keeps_everything(self):
        a = self.start_transit_server()
        c = self.server()
        self.set_extra(c, "")
        c.start()
        c.init_and_unseal(shares=3, threshold=2)
        unseal_keys = list(c.keys)
        self.req(c, "POST", "sys/mounts/kv", {"type": "kv"}, token=c.root, want=204)
        n = 1000
        for i in range(n):
            self.req(c, "PUT", f"kv/e{i}", {"v": f"value-{i}"}, token=c.root, want=204)
        self.req(c, "POST", "sys/mounts/pki", {"type": "pki"}, token=c.root, want=204)
        self.req(c, "POST", "pki/root/generate/internal", {"common_name": "Migration CA"},
                 token=c.root)
        ca = c.request("GET", "pki/ca/pem")[2]
        self.assertIn("BEGIN CERTIFICATE", ca)
        want = {i: f"value-{i}" for i in range(n)}

        def check():
            self.assertEqual(self.kv_dump(c, n), want)
            self.assertEqual(c.request("GET", "pki/ca/pem")[2], ca)

        # Shamir -> Transit.
        c.stop()
        self.set_extra(c, self.transit_block(a, self.seal_token(a)))
        c.start()
        st = self.req(c, "GET", "sys/seal-status")
        self.assertEqual((st["type"], st["migration"], st["sealed"]), ("shamir", True, True))
        p = c.cli("operator", "unseal", unseal_keys[0])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("migrat", p.stderr)
        for k in unseal_keys[:2]:
            c.cli("operator", "unseal", "-migrate", k, check=True)
        st = self.req(c, "GET", "sys/seal-status")
        self.assertEqual((st["type"], st["sealed"], st["recovery_seal"], st["n"], st["t"]),
                         ("transit", False, True, 3, 2))
        check()
        c.kill9()
        c.start()
        self.assertTrue(self.unsealed_within(c, 2.0))
        check()

        # Transit -> Shamir: the transit block disabled; the recovery keys (the old unseal keys)
        # become the unseal keys again.
        c.stop()
        self.set_extra(c, self.transit_block(a, self.seal_token(a), disabled=True))
        c.start()
        st = self.req(c, "GET", "sys/seal-status")
        self.assertEqual((st["type"], st["migration"]), ("transit", True))
        for k in unseal_keys[1:3]:
            c.cli("operator", "unseal", "-migrate", k, check=True)
        st = self.req(c, "GET", "sys/seal-status")
        self.assertEqual((st["type"], st["sealed"], st["recovery_seal"]), ("shamir", False, False))
        check()
        c.stop()
        a.stop()  # no longer needed
        self.set_extra(c, "")
        c.start()
        self.assertTrue(self.sealed(c))
        c.keys = unseal_keys
        c.unseal(2)
        check()


@unittest.skipUnless(os.path.exists(SOFTHSM_LIB), "softhsm2 is installed by scripts/install-deps.sh")
class Pkcs11Seal(SealBase):
    def setUp(self):
        super().setUp()
        hsm = os.path.join(self.tmp, "softhsm")
        os.makedirs(os.path.join(hsm, "tokens"))
        self.conf = os.path.join(hsm, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write(f"directories.tokendir = {hsm}/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
        self.saved_env = {k: os.environ.get(k) for k in ("SOFTHSM2_CONF", "COFFER_HSM_PIN")}
        os.environ["SOFTHSM2_CONF"] = self.conf
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "coffer",
                        "--pin", "1234", "--so-pin", "5678"], check=True, capture_output=True)

    def tearDown(self):
        super().tearDown()
        for k, v in self.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def block(self, key_label="coffer-root", generate="true"):
        return (f'seal "pkcs11" {{\n  lib = "{SOFTHSM_LIB}"\n  token_label = "coffer"\n'
                f'  key_label = "{key_label}"\n  generate_key = "{generate}"\n}}\n')

    def dump(self, s):
        return hashlib.sha256(subprocess.run(["sqlite3", s.db, ".dump"], check=True,
                                             capture_output=True).stdout).hexdigest()

    def test_pkcs11_seal(self):
        # A wrong PIN on a new server: init fails with the reason, nothing is initialized.
        os.environ["COFFER_HSM_PIN"] = "9999"
        e = self.server()
        self.set_extra(e, self.block())
        e.start()
        st, body, text = e.request("PUT", "sys/init", body={"recovery_shares": 1,
                                                            "recovery_threshold": 1})
        self.assertIn(st, (400, 403), text)
        self.assertIn("PIN", text)
        self.assertFalse(self.req(e, "GET", "sys/init")["initialized"])
        e.stop()

        os.environ["COFFER_HSM_PIN"] = "1234"
        d = self.server()
        self.set_extra(d, self.block())
        d.start()
        self.init_auto(d, 3, 2)
        self.assertFalse(self.sealed(d))
        self.req(d, "POST", "sys/mounts/kv", {"type": "kv"}, token=d.root, want=204)
        self.req(d, "PUT", "kv/hsm", {"v": "kept"}, token=d.root, want=204)
        self.req(d, "PUT", "sys/rotate", token=d.root, want=204)  # works under this seal too
        self.req(d, "PUT", "kv/hsm2", {"v": "after-rotate"}, token=d.root, want=204)
        d.kill9()
        d.start()
        self.assertTrue(self.unsealed_within(d, 2.0), self.log_tail(d))
        self.assertEqual(self.req(d, "GET", "kv/hsm", token=d.root)["data"]["v"], "kept")
        self.assertEqual(self.req(d, "GET", "kv/hsm2", token=d.root)["data"]["v"], "after-rotate")
        self.assertEqual(self.req(d, "GET", "sys/key-status", token=d.root)["term"], 2)
        status, root = self.generate_root(d, d.recovery[:2])
        self.assertEqual(status, 200, root)
        d.stop()
        before = self.dump(d)

        # Wrong PIN at restart: sealed with a clear error, nothing written.
        os.environ["COFFER_HSM_PIN"] = "0000"
        d.start()
        time.sleep(1.0)
        st = self.req(d, "GET", "sys/seal-status")
        self.assertTrue(st["sealed"])
        self.assertIn("PIN", st.get("seal_error", ""), st)
        d.stop()
        self.assertEqual(self.dump(d), before)

        # A key label the token does not hold (and generate_key off): sealed, label named.
        os.environ["COFFER_HSM_PIN"] = "1234"
        self.set_extra(d, self.block(key_label="no-such-key", generate="false"))
        d.start()
        time.sleep(1.0)
        st = self.req(d, "GET", "sys/seal-status")
        self.assertTrue(st["sealed"])
        self.assertIn("no-such-key", st.get("seal_error", ""), st)
        d.stop()
        self.assertEqual(self.dump(d), before)

        # The right label again: unsealed, data there.
        self.set_extra(d, self.block())
        d.start()
        self.assertTrue(self.unsealed_within(d, 2.0))
        self.assertEqual(self.req(d, "GET", "kv/hsm", token=d.root)["data"]["v"], "kept")


if __name__ == "__main__":
    unittest.main()
